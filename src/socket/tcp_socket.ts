/**
 * TCP endpoints over the core: connections with Web Streams (a
 * `ReadableStream` and a `WritableStream` with backpressure) and listeners
 * with `accept()`. Every call enters the core through the session's core
 * lock; the core's events wake waiting callers after the lock is released.
 *
 * @module
 */

import type { Stack } from "../stack/stack.ts";
import {
  LISTENER_ACCEPTABLE,
  type TcpConfig,
  type TcpConnection,
  TcpEvent,
  type TcpInfo,
  type TcpListener,
} from "../stack/tcp/mod.ts";
import { type IpAddress, toIpAddress } from "../wire/mod.ts";
import { NetError } from "../errors/net_error.ts";
import { PollDeadline, type TimerClock } from "./poll_deadline.ts";
import { Waiters } from "./waiters.ts";

/** How endpoints enter the core: a session (or anything that serializes calls). */
export interface CoreAccess {
  /** Runs `fn` under the core lock with the stack and the current time. */
  withCore<T>(fn: (stack: Stack, now: number) => T): T;
  /** The session's clock: timeouts of waits run on it. */
  readonly clock: TimerClock;
}

function closedError(conn: TcpConnection): NetError {
  switch (conn.error) {
    case "ECONNREFUSED":
      return new NetError("ECONNREFUSED", `connection to port ${conn.remotePort} refused`);
    case "ECONNRESET":
      return new NetError("ECONNRESET", "connection reset by peer");
    case "ETIMEDOUT":
      return new NetError("ETIMEDOUT", "connection timed out");
    default:
      return new NetError(conn.error ?? "ENOTCONN", "the connection is closed");
  }
}

/** Options of {@linkcode TcpSocket.connect}. */
export interface TcpConnectOptions {
  /** The peer's address: IPv4 (dotted quad or u32) or IPv6 (text or `Ipv6Address`). */
  address: string | IpAddress;
  port: number;
  /** Local port; 0 or absent picks an ephemeral one. */
  localPort?: number;
  /** Whether `localPort` was reserved by a bind() first (the reservation passes to the connection). */
  fromBound?: boolean;
  /** Per-connection TCP options. */
  config?: Partial<TcpConfig>;
  /** Gives up (ETIMEDOUT, the connection is aborted) after this long. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * A TCP connection endpoint with Web Streams.
 *
 * - `readable` yields the bytes received, in order, and closes at the peer's
 *   FIN; reading is what opens the receive window (backpressure to the peer).
 * - `writable` accepts bytes; a write resolves once the bytes are in the send
 *   buffer, so a full buffer pushes back on the writer. Closing it sends FIN.
 *
 * @example
 * ```ts
 * const sock = await TcpSocket.connect(session, { address: "10.0.2.15", port: 7 });
 * const w = sock.writable.getWriter();
 * await w.write(new TextEncoder().encode("hello"));
 * ```
 */
export class TcpSocket {
  readonly conn: TcpConnection;
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  #core: CoreAccess;
  #readWaiters = new Waiters();
  #writeWaiters = new Waiters();
  #stateWaiters = new Waiters();

  /** Wraps a core connection (from `connect` or `accept`). */
  constructor(core: CoreAccess, conn: TcpConnection) {
    this.#core = core;
    this.conn = conn;
    conn.owner = this;
    const chunkMax = 64 * 1024;
    this.readable = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        for (;;) {
          const r = this.read(chunkMax);
          if (r === null) {
            controller.close();
            return;
          }
          if (r !== undefined) {
            controller.enqueue(r);
            return;
          }
          await this.#readWaiters.wait();
        }
      },
      cancel: () => {
        this.#core.withCore((_s, now) => this.conn.close(now));
      },
    }, { highWaterMark: 0 });
    this.writable = new WritableStream<Uint8Array>({
      write: (chunk) => this.write(chunk),
      close: () => this.shutdown("write"),
      abort: () => this.abort(),
    }, { highWaterMark: 1 });
  }

  /** Opens a connection (RFC 9293 active OPEN) and resolves once it is established. */
  static async connect(core: CoreAccess, options: TcpConnectOptions): Promise<TcpSocket> {
    const sock = TcpSocket.open(core, options);
    await sock.established({ signal: options.signal, timeoutMs: options.timeoutMs });
    return sock;
  }

  /**
   * Starts an active OPEN and returns at once, with the SYN sent and the
   * connection in SYN_SENT; {@linkcode TcpSocket.established} waits for the
   * handshake. Throws NetError EADDRINUSE or EMFILE, RangeError for a bad port.
   *
   * @example
   * ```ts
   * const sock = TcpSocket.open(session, { address: "10.0.2.15", port: 22 });
   * await sock.established({ timeoutMs: 5000 });
   * ```
   */
  static open(core: CoreAccess, options: Omit<TcpConnectOptions, "signal">): TcpSocket {
    const addr = toIpAddress(options.address);
    const conn = core.withCore((stack, now) =>
      stack.tcp.connect(addr, options.port, now, {
        localPort: options.localPort,
        fromBound: options.fromBound,
        config: options.config,
      })
    );
    return new TcpSocket(core, conn);
  }

  /**
   * Waits until the handshake of an opening connection completes. On timeout
   * (NetError ETIMEDOUT) or abort (the signal's reason) the connection is
   * aborted; a refused or reset handshake throws its NetError.
   */
  async established(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
    const conn = this.conn;
    const wait = new PollDeadline(this.#core.clock, [options.signal], options.timeoutMs);
    try {
      while (conn.state === "SYN_SENT" || conn.state === "SYN_RECEIVED") {
        await this.#stateWaiters.wait(wait.signal);
      }
    } catch (err) {
      this.abort();
      if (wait.timedOut) {
        throw new NetError("ETIMEDOUT", `connect to port ${conn.remotePort} timed out`);
      }
      throw err;
    } finally {
      wait.dispose();
    }
    if (conn.state === "CLOSED") throw closedError(conn);
  }

  /** Called by the session, outside the core lock, with the events raised since last time. */
  onEvents(bits: number): void {
    if (bits & (TcpEvent.READABLE | TcpEvent.CLOSED)) this.#readWaiters.wakeAll();
    if (bits & (TcpEvent.WRITABLE | TcpEvent.CLOSED)) this.#writeWaiters.wakeAll();
    if (bits & (TcpEvent.CONNECTED | TcpEvent.CLOSED)) this.#stateWaiters.wakeAll();
  }

  /**
   * Takes up to `max` received bytes: a chunk, `undefined` when nothing is
   * queued yet, or `null` at the end of the stream. Throws the connection's
   * error (ECONNRESET, ETIMEDOUT) when it failed.
   */
  read(max: number): Uint8Array | null | undefined {
    return this.#core.withCore((_s, now) => {
      const c = this.conn;
      const data = c.read(max, now);
      if (data !== undefined) return data;
      if (c.readEnded) return null;
      if (c.state === "CLOSED") {
        if (c.error) throw closedError(c);
        return null;
      }
      return undefined;
    });
  }

  /**
   * Receives up to `max` bytes, waiting for data: resolves with a chunk, with
   * `null` at the end of the stream, or rejects (the signal's reason on abort).
   */
  async receive(max: number, signal?: AbortSignal): Promise<Uint8Array | null> {
    for (;;) {
      const r = this.read(max);
      if (r !== undefined) return r;
      await this.#readWaiters.wait(signal);
    }
  }

  /** Writes all of `data`, waiting for send-buffer space as needed. */
  async write(data: Uint8Array, signal?: AbortSignal): Promise<void> {
    let off = 0;
    while (off < data.length) {
      off += this.trySend(off === 0 ? data : data.subarray(off));
      if (off < data.length) await this.#writeWaiters.wait(signal);
    }
  }

  /**
   * Queues as much of `data` as the send buffer takes now and returns that
   * count (0 when it is full). Throws NetError EPIPE after a write shutdown,
   * ENOBUFS when the buffer has room but the session's memory quota refuses
   * it more storage, or the connection's error when it failed.
   */
  trySend(data: Uint8Array): number {
    return this.#core.withCore((_s, now) => {
      const c = this.conn;
      if (!c.canWrite) {
        if (c.state === "CLOSED" && c.error) throw closedError(c);
        throw new NetError(
          "EPIPE",
          "cannot write: the connection was shut down for writing or closed",
        );
      }
      const n = c.send(data, now);
      if (n === 0 && data.length > 0 && c.writableBytes > 0) {
        // The send buffer has room but could not grow: the session's memory quota refused it.
        throw new NetError(
          "ENOBUFS",
          `the session's memory quota is full: the send buffer cannot grow for ${data.length} ` +
            "more bytes",
        );
      }
      return n;
    });
  }

  /**
   * Resolves at the next event that may have freed send-buffer space (or
   * closed the connection); rejects with the signal's reason on abort.
   */
  waitWritable(signal?: AbortSignal): Promise<void> {
    return this.#writeWaiters.wait(signal);
  }

  /**
   * Resolves at the next event that may have made data (or the end of the
   * stream) readable, without reading it; rejects with the signal's reason on
   * abort. With {@linkcode TcpSocket.read} it lets a caller decide when to
   * take the bytes (a bridge that waits for its own consumer to drain).
   */
  waitReadable(signal?: AbortSignal): Promise<void> {
    return this.#readWaiters.wait(signal);
  }

  /** Shuts down one or both directions (`write` sends FIN). */
  shutdown(how: "read" | "write" | "both"): void {
    this.#core.withCore((_s, now) => {
      if (how === "write" || how === "both") this.conn.shutdownWrite(now);
    });
    if (how === "read" || how === "both") this.#readShut = true;
  }
  #readShut = false;

  /** Whether {@linkcode TcpSocket.shutdown} closed the read side. */
  get readShutdown(): boolean {
    return this.#readShut;
  }

  /** Closes gracefully: FIN after the queued data (RST if unread data is left, RFC 2525). */
  close(): void {
    this.#core.withCore((_s, now) => this.conn.close(now));
  }

  /** Resets the connection (RST) and discards everything queued. */
  abort(): void {
    this.#core.withCore((_s, now) => this.conn.abort(now));
  }

  /** Resolves once the connection reaches CLOSED. */
  async closed(signal?: AbortSignal): Promise<void> {
    while (this.conn.state !== "CLOSED") await this.#stateWaiters.wait(signal);
  }

  /** The connection's state, estimates and counters. */
  info(): TcpInfo {
    return this.conn.info();
  }

  /** Number of callers waiting on this socket (for leak tests). */
  get waiterCount(): number {
    return this.#readWaiters.size + this.#writeWaiters.size + this.#stateWaiters.size;
  }
}

/** Options of {@linkcode TcpServer.listen}. */
export interface TcpListenOptions {
  port: number;
  /** Most half-open and most not-yet-accepted connections each; SYN cookies beyond. */
  backlog?: number;
  /** Options for the accepted connections. */
  config?: Partial<TcpConfig>;
  /** Whether `port` was reserved by a bind() first. */
  fromBound?: boolean;
}

/**
 * A listening TCP endpoint.
 *
 * @example
 * ```ts
 * const server = TcpServer.listen(session, { port: 8080 });
 * const conn = await server.accept();
 * ```
 */
export class TcpServer {
  readonly listener: TcpListener;
  #core: CoreAccess;
  #waiters = new Waiters();

  /** Wraps a core listener. */
  constructor(core: CoreAccess, listener: TcpListener) {
    this.#core = core;
    this.listener = listener;
    listener.owner = this;
  }

  /** Starts listening on `options.port` (EADDRINUSE when taken). */
  static listen(core: CoreAccess, options: TcpListenOptions): TcpServer {
    const l = core.withCore((stack) =>
      stack.tcp.listen(options.port, options.backlog ?? 128, options.config, options.fromBound)
    );
    return new TcpServer(core, l);
  }

  /** Called by the session outside the core lock. */
  onEvents(bits: number): void {
    if (bits & (LISTENER_ACCEPTABLE | TcpEvent.CLOSED)) this.#waiters.wakeAll();
  }

  /** Takes an established connection now, or undefined when none waits. */
  tryAccept(): TcpSocket | undefined {
    const c = this.#core.withCore(() => {
      if (this.listener.closed) throw new NetError("ENOTCONN", "the listener is closed");
      return this.listener.accept();
    });
    return c ? new TcpSocket(this.#core, c) : undefined;
  }

  /** Waits for the next connection (ETIMEDOUT after `timeoutMs`). */
  accept(options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<TcpSocket> {
    return this.#waiters.until(
      this.#core.clock,
      options,
      () => this.tryAccept(),
      () => new NetError("ETIMEDOUT", "no connection arrived before the timeout"),
    );
  }

  /**
   * Accepts connections until the listener closes or `signal` aborts (which
   * also closes it), handing each to `handler` without waiting for it; a
   * handler that throws gets its connection reset.
   */
  serve(handler: (sock: TcpSocket) => void | Promise<void>, signal?: AbortSignal): void {
    signal?.addEventListener("abort", () => this.close(), { once: true });
    void (async () => {
      for (;;) {
        let sock: TcpSocket;
        try {
          sock = await this.accept({ signal });
        } catch {
          return;
        }
        void (async () => {
          try {
            await handler(sock);
          } catch {
            sock.abort();
          }
        })();
      }
    })();
  }

  /** Stops listening; connections not yet accepted are reset. */
  close(): void {
    this.#core.withCore((stack, now) => stack.tcp.closeListener(this.listener, now));
    this.#waiters.wakeAll();
  }

  /** Number of callers waiting on this listener (for leak tests). */
  get waiterCount(): number {
    return this.#waiters.size;
  }
}
