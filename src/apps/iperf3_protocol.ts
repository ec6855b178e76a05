/**
 * The iperf3 control protocol, shared by {@linkcode Iperf3Server} and
 * {@linkcode runIperf3Client}: state bytes, the 37-byte cookie, length-prefixed
 * JSON messages, test parameters and results, and a byte reader over any
 * stream-like connection (a {@linkcode TcpSocket} or an in-memory pipe).
 *
 * The protocol has no RFC; it is the one iperf3 3.x speaks (observed on the
 * wire with iperf 3.12):
 *
 * 1. The client opens the control connection and sends the cookie (36
 *    characters of `[a-z2-7]` and a NUL).
 * 2. The server answers PARAM_EXCHANGE; the client sends its parameters as a
 *    4-byte big-endian length and a JSON object.
 * 3. The server answers CREATE_STREAMS; the client opens one TCP connection per
 *    stream and sends the same cookie on each.
 * 4. The server sends TEST_START and TEST_RUNNING; data flows (client to server,
 *    or server to client with `reverse`).
 * 5. The client sends TEST_END when the duration or byte count is reached; the
 *    server answers EXCHANGE_RESULTS; the client sends its results JSON, the
 *    server its own; the server sends DISPLAY_RESULTS, the client IPERF_DONE.
 *
 * @module
 */

/** The control states, one signed byte each on the control connection. */
export const Iperf3State = {
  TEST_START: 1,
  TEST_RUNNING: 2,
  TEST_END: 4,
  PARAM_EXCHANGE: 9,
  CREATE_STREAMS: 10,
  SERVER_TERMINATE: 11,
  CLIENT_TERMINATE: 12,
  EXCHANGE_RESULTS: 13,
  DISPLAY_RESULTS: 14,
  IPERF_DONE: 16,
  ACCESS_DENIED: -1,
  SERVER_ERROR: -2,
} as const;

/** The iperf3 default port. */
export const IPERF3_PORT = 5201;
/** Cookie length on the wire: 36 characters and a NUL. */
export const IPERF3_COOKIE_SIZE = 37;
/** The default block size of a TCP test (iperf3's `-l`), 128 KiB. */
export const IPERF3_BLOCK_SIZE = 128 * 1024;
/** The largest JSON message accepted (parameters or results). */
export const IPERF3_MAX_JSON_BYTES = 64 * 1024;
/** The most parallel streams one test may open. */
export const IPERF3_MAX_STREAMS = 128;
/** The longest test accepted, in seconds (iperf3's own limit is one day). */
export const IPERF3_MAX_DURATION_S = 86_400;

const COOKIE_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

/** The name of a state byte, for messages ("TEST_END", or "state 99"). */
export function iperf3StateName(state: number): string {
  for (const [k, v] of Object.entries(Iperf3State)) if (v === state) return k;
  return `state ${state}`;
}

/**
 * A new cookie: 36 random characters of `[a-z2-7]` and a NUL, as bytes.
 *
 * @example
 * ```ts
 * const cookie = makeIperf3Cookie();
 * cookie.length; // 37
 * ```
 */
export function makeIperf3Cookie(
  random: (buf: Uint8Array) => Uint8Array = (b) => crypto.getRandomValues(b),
): Uint8Array {
  const out = random(new Uint8Array(IPERF3_COOKIE_SIZE));
  for (let i = 0; i < IPERF3_COOKIE_SIZE - 1; i++) out[i] = COOKIE_ALPHABET.charCodeAt(out[i] & 31);
  out[IPERF3_COOKIE_SIZE - 1] = 0;
  return out;
}

/** Whether two cookies are the same bytes. */
export function iperf3CookieEquals(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/** The cookie as text (without its NUL), for logs and JSON output. */
export function iperf3CookieText(cookie: Uint8Array): string {
  const end = cookie.indexOf(0);
  return new TextDecoder().decode(cookie.subarray(0, end < 0 ? cookie.length : end));
}

/** One state byte (signed, so ACCESS_DENIED is 0xff). */
export function encodeIperf3State(state: number): Uint8Array {
  return Uint8Array.of(state & 0xff);
}

/** Reads a state byte back as the signed value iperf3 uses. */
export function decodeIperf3State(byte: number): number {
  return byte > 127 ? byte - 256 : byte;
}

/**
 * A JSON message: a 4-byte big-endian length, then the UTF-8 JSON text.
 * Throws RangeError when the text is longer than {@linkcode IPERF3_MAX_JSON_BYTES}.
 */
export function encodeIperf3Json(value: unknown): Uint8Array {
  const text = new TextEncoder().encode(JSON.stringify(value));
  if (text.length > IPERF3_MAX_JSON_BYTES) {
    throw new RangeError(
      `iperf3 JSON message of ${text.length} bytes exceeds ${IPERF3_MAX_JSON_BYTES}`,
    );
  }
  const out = new Uint8Array(4 + text.length);
  new DataView(out.buffer).setUint32(0, text.length);
  out.set(text, 4);
  return out;
}

/** The byte stream a protocol endpoint talks over; a {@linkcode TcpSocket} is one. */
export interface Iperf3Conn {
  /** Up to `max` bytes, or null at the end of the stream. */
  receive(max: number): Promise<Uint8Array | null>;
  /** Resolves once all of `data` is queued for sending. */
  write(data: Uint8Array): Promise<void>;
  /** Sends FIN (`"write"`). */
  shutdown(how: "write"): void;
  /** Closes gracefully. */
  close(): void;
  /** Resets the connection. */
  abort(): void;
  /** Retransmission count, when the transport knows it. */
  info?(): { retransmits: number };
}

/** A protocol violation or a peer that went away; `message` says what was expected. */
export class Iperf3Error extends Error {
  /** Names the error class in stack traces. */
  override name = "Iperf3Error";
}

/**
 * Reads whole protocol units (state bytes, cookies, JSON messages) from a
 * connection, keeping what arrived beyond the unit for the next read.
 */
export class Iperf3Reader {
  #conn: Iperf3Conn;
  #pending: Uint8Array = new Uint8Array(0);

  /** Reads from `conn`. */
  constructor(conn: Iperf3Conn) {
    this.#conn = conn;
  }

  /** Bytes received but not consumed yet. */
  get buffered(): number {
    return this.#pending.length;
  }

  /** Takes the bytes received beyond the last unit (e.g. data right after a cookie). */
  takeBuffered(): Uint8Array {
    const out = this.#pending;
    this.#pending = new Uint8Array(0);
    return out;
  }

  /** Exactly `n` bytes; throws Iperf3Error when the stream ends first. */
  async readExact(n: number, what: string): Promise<Uint8Array> {
    while (this.#pending.length < n) {
      const c = await this.#conn.receive(Math.max(n - this.#pending.length, 4096));
      if (c === null) {
        throw new Iperf3Error(
          `connection closed while reading ${what} (${this.#pending.length} of ${n} bytes)`,
        );
      }
      if (this.#pending.length === 0) {
        this.#pending = c;
      } else {
        const m = new Uint8Array(this.#pending.length + c.length);
        m.set(this.#pending);
        m.set(c, this.#pending.length);
        this.#pending = m;
      }
    }
    const out = this.#pending.slice(0, n);
    this.#pending = this.#pending.subarray(n);
    return out;
  }

  /** One state byte, signed. */
  async readState(): Promise<number> {
    return decodeIperf3State((await this.readExact(1, "a state byte"))[0]);
  }

  /** A length-prefixed JSON object; throws Iperf3Error for a bad length or bad JSON. */
  async readJson(what: string): Promise<Record<string, unknown>> {
    const len = new DataView((await this.readExact(4, `the length of ${what}`)).buffer)
      .getUint32(0);
    if (len === 0 || len > IPERF3_MAX_JSON_BYTES) {
      throw new Iperf3Error(`${what}: JSON length ${len} is outside 1..${IPERF3_MAX_JSON_BYTES}`);
    }
    const text = new TextDecoder().decode(await this.readExact(len, what));
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new Iperf3Error(`${what} is not JSON: ${JSON.stringify(text.slice(0, 80))}`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new Iperf3Error(`${what} is not a JSON object: ${JSON.stringify(text.slice(0, 80))}`);
    }
    return value as Record<string, unknown>;
  }
}

/** The test parameters a client sends in PARAM_EXCHANGE (the TCP subset). */
export interface Iperf3Params {
  /** Seconds to run (`-t`); 0 when `bytes` or `blocks` bounds the test. */
  time: number;
  /** Bytes to send (`-n`); 0 for none. */
  bytes: number;
  /** Blocks to send (`-k`); 0 for none. */
  blocks: number;
  /** Streams (`-P`). */
  parallel: number;
  /** Whether the server sends (`-R`). */
  reverse: boolean;
  /** Block size (`-l`). */
  len: number;
  /** Seconds at the start not counted (`-O`); accepted, but counted here. */
  omit: number;
}

/** Parameters as iperf3 puts them on the wire. */
export function encodeIperf3Params(
  p: Iperf3Params,
  clientVersion = "3.12",
): Record<string, unknown> {
  const out: Record<string, unknown> = {
    tcp: true,
    omit: p.omit,
    time: p.time,
    num: p.bytes,
    blockcount: p.blocks,
    parallel: p.parallel,
  };
  if (p.reverse) out.reverse = true;
  out.len = p.len;
  out.pacing_timer = 1000;
  out.client_version = clientVersion;
  return out;
}

function intField(
  o: Record<string, unknown>,
  key: string,
  dflt: number,
  min: number,
  max: number,
): number | string {
  const v = o[key];
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    return `parameter ${key} must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`;
  }
  return v;
}

/**
 * Validates a client's parameters. Returns the TCP test they describe, or a
 * string saying what is wrong (UDP and SCTP tests are not supported).
 */
export function decodeIperf3Params(o: Record<string, unknown>): Iperf3Params | string {
  if (o.udp === true) return "UDP tests are not supported (parameter udp)";
  if (o.sctp === true) return "SCTP tests are not supported (parameter sctp)";
  if (o.bidirectional === true) return "bidirectional tests are not supported";
  const time = intField(o, "time", 10, 0, IPERF3_MAX_DURATION_S);
  const bytes = intField(o, "num", 0, 0, Number.MAX_SAFE_INTEGER);
  const blocks = intField(o, "blockcount", 0, 0, Number.MAX_SAFE_INTEGER);
  const parallel = intField(o, "parallel", 1, 1, IPERF3_MAX_STREAMS);
  const len = intField(o, "len", IPERF3_BLOCK_SIZE, 1, 16 * 1024 * 1024);
  const omit = intField(o, "omit", 0, 0, IPERF3_MAX_DURATION_S);
  for (const v of [time, bytes, blocks, parallel, len, omit]) if (typeof v === "string") return v;
  if (o.reverse !== undefined && typeof o.reverse !== "boolean") {
    return `parameter reverse must be a boolean, got ${JSON.stringify(o.reverse)}`;
  }
  if (time === 0 && bytes === 0 && blocks === 0) {
    return "the test has no bound: time, num and blockcount are all 0";
  }
  return {
    time: time as number,
    bytes: bytes as number,
    blocks: blocks as number,
    parallel: parallel as number,
    reverse: o.reverse === true,
    len: len as number,
    omit: omit as number,
  };
}

/** One stream's figures in a results message. */
export interface Iperf3StreamResult {
  /** iperf3's stream id (1, 3, 4, ...). */
  id: number;
  /** Bytes the side sent or received on this stream. */
  bytes: number;
  /** -1 when the side does not know (it did not send). */
  retransmits: number;
  /** Seconds from the test start. */
  startTime: number;
  /** Seconds from the test start to the stream's end. */
  endTime: number;
}

/** One side's results message. */
export interface Iperf3Results {
  /** Whether `retransmits` are meaningful (the side sent). */
  senderHasRetransmits: boolean;
  /** The congestion control algorithm, when the side names it ("cubic", "bbr"). */
  congestionUsed?: string;
  /** One entry per stream. */
  streams: Iperf3StreamResult[];
}

/** A results message as iperf3 puts it on the wire (CPU figures are 0: not measured). */
export function encodeIperf3Results(r: Iperf3Results): Record<string, unknown> {
  const out: Record<string, unknown> = {
    cpu_util_total: 0,
    cpu_util_user: 0,
    cpu_util_system: 0,
    sender_has_retransmits: r.senderHasRetransmits ? 1 : 0,
  };
  if (r.congestionUsed) out.congestion_used = r.congestionUsed;
  out.streams = r.streams.map((s) => ({
    id: s.id,
    bytes: s.bytes,
    retransmits: s.retransmits,
    jitter: 0,
    errors: 0,
    packets: 0,
    start_time: s.startTime,
    end_time: s.endTime,
  }));
  return out;
}

/**
 * Reads a peer's results message; a string says what is wrong. iperf3 writes
 * "unknown" (-1) as an unsigned 64-bit integer, which is read back as -1.
 */
export function decodeIperf3Results(o: Record<string, unknown>): Iperf3Results | string {
  if (!Array.isArray(o.streams)) return `results have no streams array: ${JSON.stringify(o)}`;
  if (o.streams.length > IPERF3_MAX_STREAMS) return `results list ${o.streams.length} streams`;
  const num = (v: unknown): number =>
    typeof v !== "number" || !Number.isFinite(v) ? 0 : v >= 2 ** 63 ? -1 : v;
  const streams: Iperf3StreamResult[] = [];
  for (const s of o.streams as unknown[]) {
    if (typeof s !== "object" || s === null) return `a results stream is not an object`;
    const r = s as Record<string, unknown>;
    if (typeof r.id !== "number" || typeof r.bytes !== "number") {
      return `a results stream lacks id or bytes: ${JSON.stringify(r)}`;
    }
    streams.push({
      id: r.id,
      bytes: r.bytes,
      retransmits: num(r.retransmits),
      startTime: num(r.start_time),
      endTime: num(r.end_time),
    });
  }
  const shr = num(o.sender_has_retransmits);
  return {
    senderHasRetransmits: shr === 1,
    congestionUsed: typeof o.congestion_used === "string" ? o.congestion_used : undefined,
    streams,
  };
}

/** iperf3's stream ids: 1 for the first stream, then 3, 4, 5, ... (both sides number alike). */
export function iperf3StreamId(index: number): number {
  return index === 0 ? 1 : index + 2;
}

/** The bytes one block of a test sends: pseudo-random, so compression cannot help. */
export function iperf3Block(len: number): Uint8Array {
  const b = new Uint8Array(len);
  let s = 0x9e3779b9;
  for (let i = 0; i < len; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    b[i] = s;
  }
  return b;
}
