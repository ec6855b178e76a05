/**
 * The parts of HTTP/1.1 (RFC 9112) a share link's proxy speaks to the server
 * inside the session: a request head it writes, a response head it parses
 * incrementally (bounded), and the chunked transfer coding both ways. Pure:
 * no I/O; parsers keep their state across chunk boundaries and answer a
 * reason instead of throwing on hostile bytes.
 *
 * @module
 */

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");

/**
 * Hop-by-hop header fields (RFC 9110 §7.6.1), which a proxy does not forward,
 * plus the ones the proxy sets itself.
 */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * The header fields of `headers` a proxy forwards: without the hop-by-hop
 * ones and those the `Connection` field names (RFC 9110 §7.6.1).
 *
 * @example
 * ```ts
 * forwardableHeaders(new Headers({ connection: "x-a", "x-a": "1", accept: "*\/*" })); // [["accept", "*\/*"]]
 * ```
 */
export function forwardableHeaders(headers: Headers): Array<[string, string]> {
  const named = new Set(
    (headers.get("connection") ?? "").split(",").map((s) => s.trim().toLowerCase()),
  );
  const out: Array<[string, string]> = [];
  for (const [k, v] of headers) {
    if (HOP_BY_HOP_HEADERS.has(k) || named.has(k)) continue;
    out.push([k, v]);
  }
  return out;
}

/**
 * A request head: `METHOD target HTTP/1.1`, the fields, a blank line.
 * Refuses CR, LF and NUL in any part (header injection).
 *
 * @example
 * ```ts
 * encodeRequestHead("GET", "/", [["host", "example"], ["connection", "close"]]);
 * ```
 */
export function encodeRequestHead(
  method: string,
  target: string,
  headers: ReadonlyArray<readonly [string, string]>,
): Uint8Array {
  const bad = /[\r\n\0]/;
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(method)) {
    throw new TypeError(`not an HTTP method: "${method}"`);
  }
  if (bad.test(target) || target.includes(" ") || !target.startsWith("/")) {
    throw new TypeError(`not an origin-form request target: "${target}"`);
  }
  let head = `${method} ${target} HTTP/1.1\r\n`;
  for (const [k, v] of headers) {
    if (bad.test(k) || bad.test(v) || k.includes(":")) {
      throw new TypeError(`a header field with a line break or colon in its name: "${k}"`);
    }
    head += `${k}: ${v}\r\n`;
  }
  return encoder.encode(head + "\r\n");
}

/** A parsed response head. */
export interface ResponseHead {
  /** The status code. */
  status: number;
  /** The reason phrase. */
  statusText: string;
  /** The fields, in order, names lowercased. */
  headers: Array<[string, string]>;
}

/**
 * Collects bytes until the end of a response head (`\r\n\r\n`), at most
 * `maxBytes`, and parses it. Skips interim 1xx responses other than 101
 * (RFC 9110 §15.2).
 *
 * @example
 * ```ts
 * const p = new ResponseHeadParser(65536);
 * const r = p.push(new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"));
 * // r = { head: { status: 200, ... }, rest: "hi" as bytes }
 * ```
 */
export class ResponseHeadParser {
  #buf = new Uint8Array(0);
  #max: number;

  /** A parser that refuses heads longer than `maxBytes`. */
  constructor(maxBytes: number) {
    this.#max = maxBytes;
  }

  /**
   * Adds bytes: the head and the bytes after it once complete, undefined
   * while incomplete, or a reason when the head is malformed or too long.
   */
  push(
    chunk: Uint8Array,
  ): { head: ResponseHead; rest: Uint8Array } | { error: string } | undefined {
    const b = new Uint8Array(this.#buf.length + chunk.length);
    b.set(this.#buf);
    b.set(chunk, this.#buf.length);
    this.#buf = b;
    for (;;) {
      const end = indexOfHeadEnd(this.#buf);
      if (end < 0) {
        return this.#buf.length > this.#max
          ? { error: `the response head is longer than ${this.#max} bytes` }
          : undefined;
      }
      if (end > this.#max) return { error: `the response head is longer than ${this.#max} bytes` };
      const text = latin1.decode(this.#buf.subarray(0, end));
      const rest = this.#buf.subarray(end + 4);
      const head = parseHead(text);
      if ("error" in head) return head;
      if (head.status >= 100 && head.status < 200 && head.status !== 101) {
        this.#buf = rest.slice();
        continue;
      }
      this.#buf = new Uint8Array(0);
      return { head, rest };
    }
  }
}

function indexOfHeadEnd(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

function parseHead(text: string): ResponseHead | { error: string } {
  const lines = text.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (!m) return { error: "the response does not start with an HTTP/1.x status line" };
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    const i = line.indexOf(":");
    if (i <= 0) return { error: "a response header line without a field name" };
    const name = line.slice(0, i).trim().toLowerCase();
    if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(name)) {
      return { error: "a response header field name with invalid characters" };
    }
    headers.push([name, line.slice(i + 1).trim()]);
  }
  return { status: Number(m[1]), statusText: m[2] ?? "", headers };
}

/**
 * How a response body ends (RFC 9112 §6.3): no body, a length, chunked, or
 * the connection's close.
 *
 * @example
 * ```ts
 * responseBodyFraming("GET", { status: 200, statusText: "OK", headers: [["content-length", "5"]] });
 * // { kind: "length", length: 5 }
 * ```
 */
export function responseBodyFraming(
  method: string,
  head: ResponseHead,
):
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "close" }
  | { error: string } {
  const s = head.status;
  if (method === "HEAD" || s === 204 || s === 304 || (s >= 100 && s < 200)) return { kind: "none" };
  const te = head.headers.filter(([k]) => k === "transfer-encoding").map(([, v]) => v).join(",");
  if (te) {
    const codings = te.split(",").map((c) => c.trim().toLowerCase()).filter((c) => c);
    return codings[codings.length - 1] === "chunked" ? { kind: "chunked" } : { kind: "close" };
  }
  const lengths = head.headers.filter(([k]) => k === "content-length").map(([, v]) => v.trim());
  if (lengths.length > 0) {
    const all = new Set(lengths.flatMap((v) => v.split(",").map((x) => x.trim())));
    if (all.size !== 1) return { error: "conflicting Content-Length fields" };
    const [v] = all;
    if (!/^\d{1,15}$/.test(v)) return { error: `a Content-Length that is not a number: "${v}"` };
    return { kind: "length", length: Number(v) };
  }
  return { kind: "close" };
}

/**
 * Decodes the chunked transfer coding (RFC 9112 §7.1) incrementally: data
 * out, chunk sizes, extensions and trailers dropped. Bounded: a size line or
 * trailer section longer than 8 KiB is an error.
 *
 * @example
 * ```ts
 * const d = new ChunkedDecoder();
 * d.push(new TextEncoder().encode("2\r\nhi\r\n0\r\n\r\n")); // { data: [hi], done: true }
 * ```
 */
export class ChunkedDecoder {
  #state: "size" | "data" | "data-crlf" | "trailer" | "done" = "size";
  #line = "";
  #left = 0;
  #trailerLine = "";

  /** Whether the last chunk and the trailers were read. */
  get done(): boolean {
    return this.#state === "done";
  }

  /** Decodes `chunk`: the data in it (views), whether the body ended, or an error. */
  push(chunk: Uint8Array): { data: Uint8Array[]; done: boolean; rest: Uint8Array } | {
    error: string;
  } {
    const data: Uint8Array[] = [];
    let i = 0;
    while (i < chunk.length && this.#state !== "done") {
      switch (this.#state) {
        case "size": {
          const b = chunk[i++];
          if (b === 10) {
            const line = this.#line.replace(/\r$/, "");
            this.#line = "";
            const m = /^([0-9a-fA-F]{1,12})[ \t]*(;.*)?$/.exec(line);
            if (!m) return { error: "a malformed chunk size line" };
            this.#left = parseInt(m[1], 16);
            this.#state = this.#left === 0 ? "trailer" : "data";
          } else {
            this.#line += String.fromCharCode(b);
            if (this.#line.length > 8192) return { error: "a chunk size line over 8 KiB" };
          }
          break;
        }
        case "data": {
          const n = Math.min(this.#left, chunk.length - i);
          data.push(chunk.subarray(i, i + n));
          i += n;
          this.#left -= n;
          if (this.#left === 0) this.#state = "data-crlf";
          break;
        }
        case "data-crlf": {
          const b = chunk[i++];
          if (b === 10) this.#state = "size";
          else if (b !== 13) return { error: "chunk data not followed by CRLF" };
          break;
        }
        case "trailer": {
          const b = chunk[i++];
          if (b === 10) {
            const line = this.#trailerLine.replace(/\r$/, "");
            this.#trailerLine = "";
            if (line === "") this.#state = "done";
          } else {
            this.#trailerLine += String.fromCharCode(b);
            if (this.#trailerLine.length > 8192) return { error: "a trailer line over 8 KiB" };
          }
          break;
        }
      }
    }
    return { data, done: this.#state === "done", rest: chunk.subarray(i) };
  }
}

/**
 * One chunk of the chunked transfer coding: size line, data, CRLF (an empty
 * `data` gives the last chunk and the empty trailer section).
 *
 * @example
 * ```ts
 * encodeChunk(new TextEncoder().encode("hi")); // "2\r\nhi\r\n"
 * ```
 */
export function encodeChunk(data: Uint8Array): Uint8Array {
  if (data.length === 0) return encoder.encode("0\r\n\r\n");
  const size = encoder.encode(data.length.toString(16) + "\r\n");
  const out = new Uint8Array(size.length + data.length + 2);
  out.set(size);
  out.set(data, size.length);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}
