/**
 * An iperf3 server on the stack: the real `iperf3 -c` (and `-R`) runs TCP
 * tests against it. One test at a time, as iperf3 does; a second client gets
 * ACCESS_DENIED. See {@linkcode Iperf3State} for the protocol.
 *
 * @module
 */

import type { CoreAccess } from "../socket/tcp_socket.ts";
import { recycleLargeBuffer } from "../stack/large_buffer_pool.ts";
import { TcpServer } from "../socket/tcp_socket.ts";
import {
  decodeIperf3Params,
  decodeIperf3Results,
  encodeIperf3Json,
  encodeIperf3Results,
  encodeIperf3State,
  IPERF3_COOKIE_SIZE,
  IPERF3_PORT,
  iperf3Block,
  type Iperf3Conn,
  iperf3CookieEquals,
  Iperf3Error,
  type Iperf3Params,
  Iperf3Reader,
  type Iperf3Results,
  Iperf3State,
  iperf3StateName,
  iperf3StreamId,
} from "./iperf3_protocol.ts";

/** What one test did, as this server counted it. */
export interface Iperf3TestReport {
  /** The client's parameters (undefined when the exchange failed before them). */
  params?: Iperf3Params;
  /** Whether this server sent (the client ran `-R`). */
  reverse: boolean;
  /** Bytes this server received (forward) or queued for sending (reverse), all streams. */
  bytes: number;
  /** Per stream, in iperf3's numbering. */
  streams: { id: number; bytes: number }[];
  /** Seconds from TEST_RUNNING to TEST_END. */
  seconds: number;
  /** The client's results message, when it came. */
  clientResults?: Iperf3Results;
  /** Why the test failed, when it did. */
  error?: string;
}

/** Options of {@linkcode Iperf3Server}. */
export interface Iperf3ServerOptions {
  /** Called once per test, finished or failed. */
  onTest?: (report: Iperf3TestReport) => void;
  /** How long a connection may take to send its cookie, and a test to open its streams (ms). */
  setupTimeoutMs?: number;
}

class DataStream {
  bytes = 0;
  stopped = false;
  constructor(readonly id: number, readonly conn: Iperf3Conn, readonly reader: Iperf3Reader) {}
}

function timeout<T>(p: Promise<T>, ms: number, what: string, onTimeout: () => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new Iperf3Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

class Test {
  streams: DataStream[] = [];
  params?: Iperf3Params;
  #streamsWanted = 0;
  #streamsReady?: () => void;
  #block?: Uint8Array;

  constructor(
    readonly cookie: Uint8Array,
    readonly control: Iperf3Conn,
    readonly reader: Iperf3Reader,
  ) {}

  get acceptingStreams(): boolean {
    return this.#streamsReady !== undefined && this.streams.length < this.#streamsWanted;
  }

  addStream(conn: Iperf3Conn, reader: Iperf3Reader): void {
    this.streams.push(new DataStream(iperf3StreamId(this.streams.length), conn, reader));
    if (this.streams.length === this.#streamsWanted) this.#streamsReady?.();
  }

  async run(setupTimeoutMs: number): Promise<Iperf3TestReport> {
    const report: Iperf3TestReport = { reverse: false, bytes: 0, streams: [], seconds: 0 };
    const c = this.control;
    await c.write(encodeIperf3State(Iperf3State.PARAM_EXCHANGE));
    const raw = await timeout(
      this.reader.readJson("the parameters"),
      setupTimeoutMs,
      "the parameters",
      () => c.abort(),
    );
    const params = decodeIperf3Params(raw);
    if (typeof params === "string") {
      // SERVER_ERROR, then iperf3's error number and errno (EINVAL), big-endian.
      const err = new Uint8Array(9);
      err[0] = Iperf3State.SERVER_ERROR & 0xff;
      new DataView(err.buffer).setInt32(5, 22);
      await c.write(err);
      throw new Iperf3Error(params);
    }
    this.params = report.params = params;
    report.reverse = params.reverse;
    this.#streamsWanted = params.parallel;
    const ready = new Promise<void>((r) => (this.#streamsReady = r));
    await c.write(encodeIperf3State(Iperf3State.CREATE_STREAMS));
    await timeout(ready, setupTimeoutMs, `${params.parallel} data stream(s)`, () => c.abort());
    this.#streamsReady = undefined;
    await c.write(encodeIperf3State(Iperf3State.TEST_START));
    await c.write(encodeIperf3State(Iperf3State.TEST_RUNNING));
    const t0 = performance.now();
    for (const s of this.streams) {
      // A loop ends with an error when its connection closes under it; the count stands.
      void (params.reverse ? this.#send(s) : this.#receive(s)).catch(() => {});
    }
    // A timed test whose client never sends TEST_END must not hold the server forever.
    const guard = params.time > 0
      ? setTimeout(() => c.abort(), (params.time + params.omit) * 1000 + 3 * setupTimeoutMs)
      : undefined;
    let state: number;
    try {
      state = await this.reader.readState();
    } finally {
      clearTimeout(guard);
      for (const s of this.streams) s.stopped = true;
    }
    const seconds = (performance.now() - t0) / 1000;
    report.seconds = seconds;
    report.streams = this.streams.map((s) => ({ id: s.id, bytes: s.bytes }));
    report.bytes = this.streams.reduce((a, s) => a + s.bytes, 0);
    if (state === Iperf3State.CLIENT_TERMINATE) throw new Iperf3Error("the client terminated");
    if (state !== Iperf3State.TEST_END) {
      throw new Iperf3Error(`expected TEST_END, got ${iperf3StateName(state)}`);
    }
    if (params.reverse) { for (const s of this.streams) s.conn.shutdown("write"); }
    await c.write(encodeIperf3State(Iperf3State.EXCHANGE_RESULTS));
    const theirs = decodeIperf3Results(await this.reader.readJson("the client's results"));
    if (typeof theirs === "string") throw new Iperf3Error(theirs);
    report.clientResults = theirs;
    const ours: Iperf3Results = {
      senderHasRetransmits: params.reverse,
      streams: this.streams.map((s) => ({
        id: s.id,
        bytes: s.bytes,
        retransmits: params.reverse ? (s.conn.info?.().retransmits ?? -1) : -1,
        startTime: 0,
        endTime: seconds,
      })),
    };
    await c.write(encodeIperf3Json(encodeIperf3Results(ours)));
    await c.write(encodeIperf3State(Iperf3State.DISPLAY_RESULTS));
    const done = await this.reader.readState().catch(() => Iperf3State.IPERF_DONE);
    if (done !== Iperf3State.IPERF_DONE) {
      throw new Iperf3Error(`expected IPERF_DONE, got ${iperf3StateName(done)}`);
    }
    return report;
  }

  async #receive(s: DataStream): Promise<void> {
    s.bytes += s.reader.takeBuffered().length;
    while (!s.stopped) {
      const c = await s.conn.receive(256 * 1024);
      if (c === null || s.stopped) return;
      s.bytes += c.length;
      recycleLargeBuffer(c); // counted and dropped: a large segment's buffer serves the next
    }
  }

  async #send(s: DataStream): Promise<void> {
    const p = this.params!;
    const block = this.#block ??= iperf3Block(p.len);
    const limit = p.bytes > 0 ? p.bytes : p.blocks > 0 ? p.blocks * p.len : Infinity;
    while (!s.stopped) {
      // Counted before the write, so that parallel streams never overshoot the limit together.
      const total = this.streams.reduce((a, x) => a + x.bytes, 0);
      if (total >= limit) return;
      const n = Math.min(block.length, limit - total);
      s.bytes += n;
      await s.conn.write(n === block.length ? block : block.subarray(0, n));
    }
  }

  close(): void {
    for (const s of this.streams) s.conn.close();
    this.control.close();
  }
}

/**
 * The iperf3 server's protocol logic over any connections: call
 * {@linkcode Iperf3Server.handle} with each accepted connection.
 * {@linkcode Iperf3Server.listen} does that for a TCP port of a session.
 *
 * @example
 * ```ts
 * const server = Iperf3Server.listen(session, { onTest: (r) => console.log(r.bytes) });
 * // Linux: iperf3 -c 10.0.2.2 -t 5
 * ```
 */
export class Iperf3Server {
  #test?: Test;
  #opts: Iperf3ServerOptions;
  #tcp?: TcpServer;

  /** A server whose tests report to `options.onTest`. */
  constructor(options: Iperf3ServerOptions = {}) {
    this.#opts = options;
  }

  /** Listens on `port` (5201 by default) of a session's stack. */
  static listen(
    core: CoreAccess,
    options: Iperf3ServerOptions & { port?: number } = {},
  ): Iperf3Server {
    const server = new Iperf3Server(options);
    const tcp = TcpServer.listen(core, {
      port: options.port ?? IPERF3_PORT,
      backlog: 64,
      config: { noDelay: true },
    });
    server.#tcp = tcp;
    tcp.serve((sock) => server.handle(sock));
    return server;
  }

  /** Whether a test is in progress. */
  get busy(): boolean {
    return this.#test !== undefined;
  }

  /**
   * Serves one accepted connection: a control connection starts a test, a
   * data connection (the running test's cookie) joins it, anything else while
   * a test runs gets ACCESS_DENIED. Resolves when the connection's part is done.
   */
  async handle(conn: Iperf3Conn): Promise<void> {
    const setupMs = this.#opts.setupTimeoutMs ?? 10_000;
    const reader = new Iperf3Reader(conn);
    let cookie: Uint8Array;
    try {
      cookie = await timeout(
        reader.readExact(IPERF3_COOKIE_SIZE, "the cookie"),
        setupMs,
        "the cookie",
        () => conn.abort(),
      );
    } catch {
      conn.abort();
      return;
    }
    const running = this.#test;
    if (running) {
      if (running.acceptingStreams && iperf3CookieEquals(running.cookie, cookie)) {
        running.addStream(conn, reader);
        return;
      }
      await conn.write(encodeIperf3State(Iperf3State.ACCESS_DENIED)).catch(() => {});
      conn.close();
      return;
    }
    const test = new Test(cookie, conn, reader);
    this.#test = test;
    let report: Iperf3TestReport;
    try {
      report = await test.run(setupMs);
    } catch (err) {
      report = {
        params: test.params,
        reverse: test.params?.reverse ?? false,
        bytes: test.streams.reduce((a, s) => a + s.bytes, 0),
        streams: test.streams.map((s) => ({ id: s.id, bytes: s.bytes })),
        seconds: 0,
        error: err instanceof Error ? err.message : String(err),
      };
    } finally {
      this.#test = undefined;
      test.close();
    }
    this.#opts.onTest?.(report);
  }

  /** Stops listening (a test in progress runs to its end). */
  close(): void {
    this.#tcp?.close();
  }
}
