/**
 * The socket table's TCP operations: bind a port, listen, accept (a
 * long-poll that adds the connection to the table), connect (a long-poll
 * until established), send (waits for send-buffer space), receive (a
 * long-poll), shutdown.
 *
 * @module
 */

import type { IpAddress } from "../wire/mod.ts";
import { NetError } from "../errors/net_error.ts";
import type { Endpoint } from "./local_address.ts";
import type { PollOptions } from "./poll_deadline.ts";
import type { TcpSocketEntry } from "./socket_entry.ts";
import {
  connectedSocket,
  longPoll,
  newAddress,
  type ReceiveResult,
  type TableContext,
  waitFailure,
} from "./table_context.ts";
import { TcpServer, TcpSocket } from "./tcp_socket.ts";

/** The backlog of a listener when the caller names none. */
export const DEFAULT_LISTEN_BACKLOG = 128;

/**
 * TCP operations on table entries; {@linkcode SocketTable} checks the entry
 * (live, TCP, not streaming) and calls these.
 *
 * @example
 * ```ts
 * const tcp = new TcpOperations(ctx);
 * tcp.bind(entry, 8080, ours);
 * tcp.listen(entry, {});
 * const child = await tcp.accept(entry, { timeoutMs: 1000 });
 * ```
 */
export class TcpOperations {
  #ctx: TableContext;

  /** Operations over the table behind `ctx`. */
  constructor(ctx: TableContext) {
    this.#ctx = ctx;
  }

  /** Reserves `port` (0: an ephemeral one) in the core; the entry's new address object holds it. */
  bind(entry: TcpSocketEntry, port: number, ours: IpAddress): void {
    const p = this.#ctx.host.withCore((stack) => stack.tcp.bindPort(port));
    entry.local = newAddress("tcp", ours, p, true);
  }

  /** Starts listening on the entry's bound port; the reservation passes to the listener. */
  listen(entry: TcpSocketEntry, options: { backlog?: number }): {
    local: Endpoint;
    backlog: number;
  } {
    switch (entry.state) {
      case "bound":
        break;
      case "listening":
        throw new NetError("EALREADY", `socket ${entry.id} is already listening`);
      default:
        throw new NetError(
          "EISCONN",
          `socket ${entry.id} is ${entry.state}; only a new socket can listen`,
        );
    }
    const local = entry.local!;
    entry.server = TcpServer.listen(this.#ctx.host, {
      port: local.port,
      backlog: options.backlog ?? DEFAULT_LISTEN_BACKLOG,
      fromBound: true,
    });
    local.reserved = false;
    return { local: local.endpoint, backlog: entry.server.listener.backlog };
  }

  /**
   * Waits for a connection and adds it to the table. Resolves undefined when
   * the timeout passed with none; EMFILE when the table is full.
   */
  async accept(entry: TcpSocketEntry, options: PollOptions): Promise<TcpSocketEntry | undefined> {
    const server = entry.server;
    if (!server || server.listener.closed) {
      throw new NetError("ENOTCONN", `socket ${entry.id} is not listening (it is ${entry.state})`);
    }
    this.#ctx.checkCanAccept(entry);
    const wait = longPoll(this.#ctx.host, entry, options);
    let sock: TcpSocket;
    try {
      sock = await server.accept({ signal: wait.signal });
    } catch (err) {
      if (wait.timedOut) return undefined;
      throw waitFailure(wait, err, entry.id);
    } finally {
      wait.dispose();
    }
    return this.#ctx.adoptAccepted(entry, sock);
  }

  /**
   * An active open that resolves once established (ETIMEDOUT after the
   * timeout, ECONNREFUSED, ECONNRESET); a failed or abandoned attempt leaves
   * the socket closed.
   */
  async connect(
    entry: TcpSocketEntry,
    to: { address: IpAddress; text: string; port: number },
    ours: IpAddress,
    options: PollOptions,
  ): Promise<{ local: Endpoint; remote: Endpoint }> {
    switch (entry.state) {
      case "created":
      case "bound":
        break;
      case "connecting":
        throw new NetError("EALREADY", `socket ${entry.id} is already connecting`);
      case "closed":
        throw new NetError(
          "EISCONN",
          `socket ${entry.id} is closed; create a new socket to connect again`,
        );
      default:
        throw new NetError("EISCONN", `socket ${entry.id} is ${entry.state}`);
    }
    const bound = entry.local;
    const sock = TcpSocket.open(this.#ctx.host, {
      address: to.address,
      port: to.port,
      localPort: bound?.port,
      fromBound: bound?.reserved,
    });
    entry.socket = sock;
    if (bound) bound.reserved = false;
    else entry.local = newAddress("tcp", ours, sock.conn.localPort, false);
    const wait = longPoll(this.#ctx.host, entry, options);
    try {
      await sock.established({ signal: wait.signal });
    } catch (err) {
      // established() aborted the connection on timeout or abort.
      const e = wait.timedOut
        ? new NetError(
          "ETIMEDOUT",
          `connect to ${to.text}:${to.port} timed out after ${wait.timeoutMs} ms`,
        )
        : waitFailure(wait, err, entry.id);
      entry.error = e instanceof NetError ? e.code : "ECONNRESET";
      throw e;
    } finally {
      wait.dispose();
    }
    return { local: entry.localEndpoint!, remote: entry.remote! };
  }

  /**
   * Waits until all of `data` is queued in the send buffer; when the timeout
   * passes first, resolves with the count queued, or fails with ETIMEDOUT if
   * that is 0. `data` is charged to the session's memory quota while it is
   * held (ENOBUFS when the quota refuses it), or takes over `charged`, a
   * charge the caller made for it.
   */
  async send(
    entry: TcpSocketEntry,
    data: Uint8Array,
    options: PollOptions & { charged?: number },
  ): Promise<number> {
    let sock: TcpSocket;
    try {
      sock = connectedSocket(entry, "send");
    } catch (err) {
      this.#ctx.releaseCharge(options.charged);
      throw err;
    }
    if (data.length === 0) {
      this.#ctx.releaseCharge(options.charged);
      return 0;
    }
    const hold = this.#ctx.holdBuffer(entry, data, options.charged);
    // The common case first: the send buffer takes it all, and no deadline is needed.
    let off = 0;
    try {
      off = sock.trySend(data);
      hold.taken(off);
    } catch (err) {
      hold.release();
      throw err;
    }
    if (off >= data.length) {
      hold.release();
      return off;
    }
    const wait = longPoll(this.#ctx.host, entry, options);
    try {
      for (;;) {
        await sock.waitWritable(wait.signal);
        const n = sock.trySend(data.subarray(off));
        off += n;
        hold.taken(n);
        if (off >= data.length) return off;
      }
    } catch (err) {
      if (wait.timedOut) {
        if (off > 0) return off;
        throw new NetError(
          "ETIMEDOUT",
          `the send buffer of socket ${entry.id} stayed full for ${wait.timeoutMs} ms`,
        );
      }
      throw waitFailure(wait, err, entry.id);
    } finally {
      hold.release();
      wait.dispose();
    }
  }

  /**
   * Up to `maxBytes` of the stream, or `eof` at its end; undefined when the
   * timeout passed with nothing to read.
   */
  async receive(
    entry: TcpSocketEntry,
    options: PollOptions & { maxBytes: number },
  ): Promise<ReceiveResult | undefined> {
    const sock = connectedSocket(entry, "recv");
    if (entry.readShut) return { data: new Uint8Array(0), eof: true };
    // Data already queued: no deadline, no waiter.
    const ready = sock.read(options.maxBytes);
    if (ready !== undefined) {
      return ready === null ? { data: new Uint8Array(0), eof: true } : { data: ready, eof: false };
    }
    const wait = longPoll(this.#ctx.host, entry, options);
    try {
      const r = await sock.receive(options.maxBytes, wait.signal);
      return r === null ? { data: new Uint8Array(0), eof: true } : { data: r, eof: false };
    } catch (err) {
      if (wait.timedOut) return undefined;
      throw waitFailure(wait, err, entry.id);
    } finally {
      wait.dispose();
    }
  }

  /** Shuts down one or both directions (`write` sends FIN; after `read`, receive answers eof). */
  shutdown(entry: TcpSocketEntry, how: "read" | "write" | "both"): void {
    const sock = connectedSocket(entry, "shutdown");
    sock.shutdown(how);
    if (how !== "write") entry.readShut = true;
  }
}
