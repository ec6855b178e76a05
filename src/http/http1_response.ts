/**
 * Writing an app's `Response` on HTTP/1.1 (RFC 9112 §4–§7): its head as
 * text (status line, the app's fields less the hop-by-hop ones the engine
 * decides itself, `Date`), whether a body is all there at once
 * ({@linkcode ReadProbe}), and a streamed body with backpressure in one of
 * three framings: the app's Content-Length, chunked, or until the close.
 *
 * Runtime-neutral.
 *
 * @module
 */

import { statusLine, writeLatin1 } from "./http1_response_head.ts";

/** The interim response of RFC 9110 §15.2.1, sent when a client expects it. */
export const CONTINUE_100: Uint8Array = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");
/** The last chunk and an empty trailer section (RFC 9112 §7.1). */
const LAST_CHUNK = new TextEncoder().encode("0\r\n\r\n");
const CRLF = "\r\n";
const CLOSE_TOKEN = /(^|,)[ \t]*close[ \t]*(,|$)/i;
const DIGITS = /^[0-9]{1,15}$/;

type ReadResult = ReadableStreamReadResult<Uint8Array>;

/** A response head in the making: {@linkcode responseHead}'s result. */
export interface ResponseHead {
  /** Status line and fields, each ending in CRLF; framing fields and the empty line still to come. */
  text: string;
  /** The app asked for `Connection: close`. */
  close: boolean;
  /** The app's Content-Length; -1 when it gave none (or an invalid one). */
  length: number;
}

/**
 * The head of `res` without its framing: the status line, the app's fields
 * except Connection, Content-Length, Transfer-Encoding and Keep-Alive (the
 * engine writes those), and `Date` (`date()`) unless the app set one.
 *
 * @example
 * ```ts
 * const { text, close, length } = responseHead(res, () => httpDate.value());
 * ```
 */
export function responseHead(res: Response, date: () => string): ResponseHead {
  const head: ResponseHead = { text: statusLine(res.status), close: false, length: -1 };
  let hasDate = false;
  res.headers.forEach((value, name) => {
    switch (name) {
      case "connection":
        if (CLOSE_TOKEN.test(value)) head.close = true;
        return;
      case "content-length":
        head.length = DIGITS.test(value) ? Number(value) : -1;
        return;
      case "transfer-encoding":
      case "keep-alive":
        return;
      case "date":
        hasDate = true;
    }
    head.text += name + ": " + value + CRLF;
  });
  if (!hasDate) head.text += "date: " + date() + CRLF;
  return head;
}

/**
 * The end of a head: `Connection: close`, `Connection: keep-alive` for a
 * persistent HTTP/1.0 connection (RFC 9112 §9.3), and the empty line.
 *
 * @example
 * ```ts
 * text += headEnd(false, 1); // "\r\n"
 * ```
 */
export function headEnd(close: boolean, minor: number): string {
  return close
    ? "connection: close\r\n\r\n"
    : minor === 0
    ? "connection: keep-alive\r\n\r\n"
    : CRLF;
}

/**
 * Tells whether a read settles at once (within a few microtasks: a `Response`
 * made from a string or bytes has its chunk queued) without a closure per
 * read; a read that does not stays in `pending`, so that a stream that
 * produces later gets its head out now. One per connection: reads are
 * probed one at a time.
 *
 * @example
 * ```ts
 * const first = await probe.now(reader.read()); // undefined: not there yet (see probe.pending)
 * ```
 */
export class ReadProbe {
  /** The last probed read. */
  pending: Promise<ReadResult> = Promise.resolve({ done: true, value: undefined });
  #settled = false;
  #result: ReadResult | undefined;
  readonly #ok = (r: ReadResult): void => {
    this.#settled = true;
    this.#result = r;
  };
  readonly #failed = (): void => {
    this.#settled = true;
  };

  /** The read's result if it settles within 3 microtasks (undefined: not yet, or it failed). */
  async now(read: Promise<ReadResult>): Promise<ReadResult | undefined> {
    this.pending = read;
    this.#settled = false;
    this.#result = undefined;
    read.then(this.#ok, this.#failed);
    for (let i = 0; i < 3 && !this.#settled; i++) await null;
    return this.#settled ? this.#result : undefined;
  }
}

/** How a streamed body is delimited. */
export type StreamFraming = "length" | "chunked" | "close";

/**
 * Writes a body that is not all there, each chunk written (`write`) before
 * the next is read, in `framing`: exactly `length` bytes (more are cut off),
 * chunks (RFC 9112 §7.1) ended by the last chunk, or the bytes as they come
 * (until the close). `first` and `next` are what was read already.
 * Returns whether the body is complete by its framing. Throws what a write
 * or a read throws, or when `open()` turns false between chunks.
 *
 * @example
 * ```ts
 * const complete = await streamBody((p) => writeAll(p), reader, "chunked", -1, chunk, reader.read(), () => open);
 * ```
 */
export async function streamBody(
  write: (p: Uint8Array) => Promise<void>,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  framing: StreamFraming,
  length: number,
  first: Uint8Array | undefined,
  next: Promise<ReadResult>,
  open: () => boolean,
): Promise<boolean> {
  let sent = 0;
  let cut = false;
  const send = async (chunk: Uint8Array): Promise<void> => {
    if (chunk.length === 0) return;
    if (framing === "length") {
      const room = length - sent;
      if (chunk.length > room) {
        cut = true;
        chunk = chunk.subarray(0, room);
      }
      sent += chunk.length;
      if (chunk.length > 0) await write(chunk);
    } else if (framing === "chunked") {
      await write(chunkFrame(chunk));
    } else {
      await write(chunk);
    }
  };
  if (first !== undefined) await send(first);
  let pending = next;
  for (;;) {
    const r = await pending;
    if (r.done) break;
    await send(r.value);
    if (!open()) throw new Error("the connection closed");
    pending = reader.read();
  }
  if (framing === "chunked") await write(LAST_CHUNK);
  return framing !== "length" || (sent === length && !cut);
}

/** One chunk of the chunked coding: size in hex, CRLF, the data, CRLF (RFC 9112 §7.1). */
function chunkFrame(data: Uint8Array): Uint8Array {
  const size = data.length.toString(16);
  const out = new Uint8Array(size.length + 4 + data.length);
  for (let i = 0; i < size.length; i++) out[i] = size.charCodeAt(i);
  out[size.length] = 13;
  out[size.length + 1] = 10;
  out.set(data, size.length + 2);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

/**
 * `text` (code units up to 0xFF) as ISO-8859-1 bytes.
 *
 * @example
 * ```ts
 * await write(latin1Bytes("HTTP/1.1 101 Switching Protocols\r\n\r\n"));
 * ```
 */
export function latin1Bytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  writeLatin1(text, out, 0);
  return out;
}

/**
 * Cancels a body that will not be written (HEAD, 204, a connection that is
 * gone), so that its source stops.
 *
 * @example
 * ```ts
 * cancelBody(res);
 * ```
 */
export function cancelBody(res: Response): void {
  if (res.body !== null && !res.bodyUsed) res.body.cancel().catch(() => {});
}
