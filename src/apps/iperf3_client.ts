/**
 * An iperf3 client on the stack: runs a TCP test against the real
 * `iperf3 -s` (or against {@linkcode Iperf3Server}), forward or reverse.
 *
 * @module
 */

import { type CoreAccess, TcpSocket } from "../socket/tcp_socket.ts";
import {
  decodeIperf3Results,
  encodeIperf3Json,
  encodeIperf3Params,
  encodeIperf3Results,
  encodeIperf3State,
  IPERF3_BLOCK_SIZE,
  IPERF3_PORT,
  iperf3Block,
  type Iperf3Conn,
  Iperf3Error,
  type Iperf3Params,
  Iperf3Reader,
  type Iperf3Results,
  Iperf3State,
  iperf3StateName,
  iperf3StreamId,
  makeIperf3Cookie,
} from "./iperf3_protocol.ts";

/** Options of {@linkcode runIperf3Client}. */
export interface Iperf3ClientOptions {
  /** Seconds to run (`-t`, default 10); ignored when `bytes` is set. */
  time?: number;
  /** Bytes to send or receive in total (`-n`). */
  bytes?: number;
  /** The server sends (`-R`). */
  reverse?: boolean;
  /** Streams (`-P`, default 1). */
  parallel?: number;
  /** Block size (`-l`, default 128 KiB). */
  len?: number;
  /** Gives up (abort, Iperf3Error) when the test has not ended this long after its bound. */
  graceMs?: number;
}

/** The outcome of a test, from both sides. */
export interface Iperf3ClientResult {
  /** Bytes this client sent (forward) or received (reverse), all streams. */
  bytes: number;
  /** Seconds from TEST_RUNNING to TEST_END. */
  seconds: number;
  /** This side's results message as sent. */
  local: Iperf3Results;
  /** The server's results message. */
  server: Iperf3Results;
  /** Bytes the server reported (received forward, sent reverse), all streams. */
  serverBytes: number;
  /** The receiver's rate in bit/s over `seconds`. */
  receiverBitsPerSecond: number;
}

/** Opens one TCP connection to the server. */
export type Iperf3Connect = () => Promise<Iperf3Conn>;

interface ClientStream {
  id: number;
  conn: Iperf3Conn;
  bytes: number;
}

/**
 * Runs one test over connections that `connect` opens: the protocol logic,
 * independent of the transport. {@linkcode iperf3Client} connects over a
 * session's stack.
 */
export async function runIperf3Client(
  connect: Iperf3Connect,
  options: Iperf3ClientOptions = {},
): Promise<Iperf3ClientResult> {
  const params: Iperf3Params = {
    time: options.bytes ? 0 : options.time ?? 10,
    bytes: options.bytes ?? 0,
    blocks: 0,
    parallel: options.parallel ?? 1,
    reverse: options.reverse ?? false,
    len: options.len ?? IPERF3_BLOCK_SIZE,
    omit: 0,
  };
  if (!Number.isInteger(params.time) || params.time < 0) {
    throw new RangeError(`iperf3 time must be whole seconds, got ${JSON.stringify(options.time)}`);
  }
  const cookie = makeIperf3Cookie();
  const control = await connect();
  const reader = new Iperf3Reader(control);
  const streams: ClientStream[] = [];
  let stopped = false;
  let t0 = 0;
  let seconds = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let guard: ReturnType<typeof setTimeout> | undefined;
  let guardFired = false;
  let local: Iperf3Results | undefined;
  const total = () => streams.reduce((a, s) => a + s.bytes, 0);

  const end = () => {
    if (stopped) return;
    stopped = true;
    seconds = (performance.now() - t0) / 1000;
    clearTimeout(timer);
    void control.write(encodeIperf3State(Iperf3State.TEST_END)).catch(() => {});
  };

  const send = async (s: ClientStream, block: Uint8Array) => {
    while (!stopped) {
      const left = params.bytes > 0 ? params.bytes - total() : Infinity;
      if (left <= 0) return end();
      const n = Math.min(block.length, left);
      s.bytes += n; // before the write: parallel streams never overshoot `bytes` together
      await s.conn.write(n === block.length ? block : block.subarray(0, n));
    }
  };
  const receive = async (s: ClientStream) => {
    while (!stopped) {
      const c = await s.conn.receive(256 * 1024);
      if (c === null || stopped) return;
      s.bytes += c.length;
      if (params.bytes > 0 && total() >= params.bytes) return end();
    }
  };

  try {
    await control.write(cookie);
    for (;;) {
      const state = await reader.readState();
      switch (state) {
        case Iperf3State.PARAM_EXCHANGE:
          await control.write(encodeIperf3Json(encodeIperf3Params(params)));
          break;
        case Iperf3State.CREATE_STREAMS:
          for (let i = 0; i < params.parallel; i++) {
            const conn = await connect();
            streams.push({ id: iperf3StreamId(i), conn, bytes: 0 });
            await conn.write(cookie);
          }
          break;
        case Iperf3State.TEST_START:
          break;
        case Iperf3State.TEST_RUNNING: {
          t0 = performance.now();
          const block = iperf3Block(params.len);
          for (const s of streams) {
            void (params.reverse ? receive(s) : send(s, block)).catch(() => {});
          }
          if (params.time > 0) timer = setTimeout(end, params.time * 1000);
          const boundMs = params.time > 0 ? params.time * 1000 : 3_600_000;
          guard = setTimeout(() => {
            guardFired = true;
            control.abort();
            for (const s of streams) s.conn.abort();
          }, boundMs + (options.graceMs ?? 30_000));
          break;
        }
        case Iperf3State.EXCHANGE_RESULTS: {
          if (!stopped) end();
          local = {
            senderHasRetransmits: !params.reverse,
            streams: streams.map((s) => ({
              id: s.id,
              bytes: s.bytes,
              retransmits: params.reverse ? -1 : (s.conn.info?.().retransmits ?? -1),
              startTime: 0,
              endTime: seconds,
            })),
          };
          await control.write(encodeIperf3Json(encodeIperf3Results(local)));
          const server = decodeIperf3Results(await reader.readJson("the server's results"));
          if (typeof server === "string") throw new Iperf3Error(server);
          const display = await reader.readState();
          if (display !== Iperf3State.DISPLAY_RESULTS) {
            throw new Iperf3Error(`expected DISPLAY_RESULTS, got ${iperf3StateName(display)}`);
          }
          await control.write(encodeIperf3State(Iperf3State.IPERF_DONE));
          const serverBytes = server.streams.reduce((a, s) => a + s.bytes, 0);
          const received = params.reverse ? total() : serverBytes;
          return {
            bytes: total(),
            seconds,
            local,
            server,
            serverBytes,
            receiverBitsPerSecond: seconds > 0 ? received * 8 / seconds : 0,
          };
        }
        case Iperf3State.ACCESS_DENIED:
          throw new Iperf3Error("the server is busy with another test (ACCESS_DENIED)");
        case Iperf3State.SERVER_ERROR: {
          const e = new DataView((await reader.readExact(8, "the server's error")).buffer);
          throw new Iperf3Error(
            `the server failed the test (SERVER_ERROR i_errno=${e.getInt32(0)} errno=${
              e.getInt32(4)
            })`,
          );
        }
        case Iperf3State.SERVER_TERMINATE:
          throw new Iperf3Error("the server terminated the test (SERVER_TERMINATE)");
        default:
          throw new Iperf3Error(`unexpected ${iperf3StateName(state)} from the server`);
      }
    }
  } catch (err) {
    if (guardFired) {
      throw new Iperf3Error(`the test did not end within its bound: ${(err as Error).message}`);
    }
    throw err;
  } finally {
    stopped = true;
    clearTimeout(timer);
    clearTimeout(guard);
    for (const s of streams) s.conn.close();
    control.close();
  }
}

/**
 * Runs an iperf3 TCP test from a session's stack to `address:port`
 * (default 5201), like `iperf3 -c address`.
 *
 * @example
 * ```ts
 * const r = await iperf3Client(session, { address: "10.0.2.15", time: 5 });
 * console.log(`${(r.receiverBitsPerSecond / 1e9).toFixed(2)} Gbit/s`);
 * ```
 */
export function iperf3Client(
  core: CoreAccess,
  options: Iperf3ClientOptions & { address: string; port?: number; connectTimeoutMs?: number },
): Promise<Iperf3ClientResult> {
  return runIperf3Client(
    () =>
      TcpSocket.connect(core, {
        address: options.address,
        port: options.port ?? IPERF3_PORT,
        timeoutMs: options.connectTimeoutMs ?? 10_000,
        config: { noDelay: true },
      }),
    options,
  );
}
