/**
 * The chunked transfer coding of request bodies (RFC 9112 §7.1), decoded
 * incrementally from a connection's buffer without copying: each call
 * consumes framing bytes and reports where the next run of data lies in the
 * caller's buffer. Bounded: a chunk-size line (with its extensions) at most
 * `maxLineBytes`, chunk sizes of at most 13 hex digits, the trailer section
 * at most `maxTrailerBytes` and `maxTrailers` field lines (trailers are
 * checked and discarded, RFC 9110 §6.5.1). A chunk whose data is not
 * followed by CRLF (data longer than its size) is an error: request
 * smuggling hides in such bodies.
 *
 * Pure and runtime-neutral; hostile bytes never throw, they set `error`.
 *
 * @module
 */

import { isFieldValueByte, isTchar } from "./http1_head_parser.ts";

/** Bounds of a chunked body's framing. */
export interface ChunkedLimits {
  /** A chunk-size line with its extensions, at most. Default 1024. */
  maxLineBytes: number;
  /** The trailer section, at most (bytes). Default 8192. */
  maxTrailerBytes: number;
  /** Trailer field lines, at most. Default 32. */
  maxTrailers: number;
}

/** The default bounds of {@linkcode ChunkedDecoder}. */
export const DEFAULT_CHUNKED_LIMITS: Readonly<ChunkedLimits> = {
  maxLineBytes: 1024,
  maxTrailerBytes: 8192,
  maxTrailers: 32,
};

const CR = 13;
const LF = 10;

const C_SIZE = 0;
const C_EXT = 1;
const C_SIZE_LF = 2;
const C_DATA = 3;
const C_DATA_CR = 4;
const C_DATA_LF = 5;
const C_TRAILER_START = 6;
const C_TRAILER_NAME = 7;
const C_TRAILER_VALUE = 8;
const C_TRAILER_LF = 9;
const C_END_LF = 10;
const C_DONE = 11;
const C_FAILED = 12;

/** Hex digit values, -1 for other bytes. */
const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[0x41 + i] = 10 + i;
  HEX[0x61 + i] = 10 + i;
}

/**
 * Decodes one chunked body. Call {@linkcode ChunkedDecoder.decode} with the
 * buffered bytes; it returns how many it consumed and sets `dataStart` /
 * `dataEnd` to the data among them (empty when `dataEnd === dataStart`).
 *
 * @example
 * ```ts
 * const d = new ChunkedDecoder();
 * const bytes = new TextEncoder().encode("3\r\nabc\r\n0\r\n\r\n");
 * let at = 0;
 * while (!d.done && !d.error && at < bytes.length) {
 *   at += d.decode(bytes, at, bytes.length);
 *   if (d.dataEnd > d.dataStart) use(bytes.subarray(d.dataStart, d.dataEnd));
 * }
 * ```
 */
export class ChunkedDecoder {
  /** The framing's bounds. */
  readonly limits: Readonly<ChunkedLimits>;
  /** Start of the data found by the last `decode` (an index into its buffer). */
  dataStart = 0;
  /** End of that data; equal to `dataStart` when the call found none. */
  dataEnd = 0;
  /** What was wrong with the framing, once it failed. */
  error: string | undefined;
  #state = C_SIZE;
  #size = 0;
  #digits = 0;
  #line = 0;
  #remaining = 0;
  #trailerBytes = 0;
  #trailers = 0;
  /** Data bytes decoded so far. */
  #total = 0;

  /** A decoder with `limits` (default {@linkcode DEFAULT_CHUNKED_LIMITS}). */
  constructor(limits: Readonly<ChunkedLimits> = DEFAULT_CHUNKED_LIMITS) {
    this.limits = limits;
  }

  /** The last chunk and the trailer section are in. */
  get done(): boolean {
    return this.#state === C_DONE;
  }

  /** Data bytes decoded so far. */
  get total(): number {
    return this.#total;
  }

  /**
   * Decodes from `buf[start]` up to `buf[end]`: consumes framing bytes and at
   * most one run of data (then returns, with `dataStart`/`dataEnd` set to it).
   * Returns the bytes consumed; stops at the end of the body (`done`) or at
   * the first framing error (`error`).
   */
  decode(buf: Uint8Array, start: number, end: number): number {
    this.dataStart = this.dataEnd = start;
    let i = start;
    let state = this.#state;
    const limits = this.limits;
    while (i < end) {
      if (state === C_DATA) {
        const take = Math.min(this.#remaining, end - i);
        this.dataStart = i;
        this.dataEnd = i + take;
        this.#remaining -= take;
        this.#total += take;
        i += take;
        if (this.#remaining === 0) state = C_DATA_CR;
        break;
      }
      const c = buf[i++];
      switch (state) {
        case C_SIZE: {
          const h = HEX[c];
          if (h >= 0) {
            if (this.#size === 0 && h === 0 && this.#digits === 0) {
              // Leading zeros do not count toward the digit bound.
            } else if (++this.#digits > 13) {
              return this.#fail(i, "a chunk size of more than 13 hex digits");
            }
            this.#size = this.#size * 16 + h;
            if (++this.#line > limits.maxLineBytes) {
              return this.#fail(i, `a chunk-size line longer than ${limits.maxLineBytes} bytes`);
            }
          } else if (this.#line === 0) {
            return this.#fail(i, `a chunk size must start with a hex digit, got byte 0x${hex(c)}`);
          } else if (c === CR) state = C_SIZE_LF;
          else if (c === 0x3b /* ; */ || c === 0x20 || c === 0x09) {
            state = C_EXT;
            this.#line++;
          } else return this.#fail(i, `byte 0x${hex(c)} in a chunk size`);
          break;
        }
        case C_EXT:
          if (c === CR) state = C_SIZE_LF;
          else if (!isFieldValueByte(c)) {
            return this.#fail(i, `byte 0x${hex(c)} in a chunk extension`);
          } else if (++this.#line > limits.maxLineBytes) {
            return this.#fail(i, `a chunk-size line longer than ${limits.maxLineBytes} bytes`);
          }
          break;
        case C_SIZE_LF:
          if (c !== LF) return this.#fail(i, "a chunk-size line not ended by CRLF");
          if (this.#size === 0) state = C_TRAILER_START;
          else {
            this.#remaining = this.#size;
            state = C_DATA;
          }
          break;
        case C_DATA_CR:
          if (c !== CR) return this.#fail(i, "chunk data longer than its chunk size");
          state = C_DATA_LF;
          break;
        case C_DATA_LF:
          if (c !== LF) return this.#fail(i, "chunk data not followed by CRLF");
          state = C_SIZE;
          this.#size = 0;
          this.#digits = 0;
          this.#line = 0;
          break;
        case C_TRAILER_START:
          if (c === CR) state = C_END_LF;
          else if (isTchar(c)) {
            if (++this.#trailers > limits.maxTrailers) {
              return this.#fail(i, `more than ${limits.maxTrailers} trailer fields`);
            }
            state = C_TRAILER_NAME;
          } else return this.#fail(i, `byte 0x${hex(c)} at the start of a trailer field`);
          break;
        case C_TRAILER_NAME:
          if (c === 0x3a /* : */) state = C_TRAILER_VALUE;
          else if (!isTchar(c)) return this.#fail(i, `byte 0x${hex(c)} in a trailer field name`);
          break;
        case C_TRAILER_VALUE:
          if (c === CR) state = C_TRAILER_LF;
          else if (!isFieldValueByte(c)) {
            return this.#fail(i, `byte 0x${hex(c)} in a trailer field value`);
          }
          break;
        case C_TRAILER_LF:
          if (c !== LF) return this.#fail(i, "a trailer field not ended by CRLF");
          state = C_TRAILER_START;
          break;
        case C_END_LF:
          if (c !== LF) return this.#fail(i, "the chunked body not ended by CRLF");
          this.#state = C_DONE;
          return i - start;
        default:
          return this.#fail(i, this.error ?? "the chunked body already ended");
      }
      if (state >= C_TRAILER_START && state <= C_END_LF) {
        if (++this.#trailerBytes > limits.maxTrailerBytes) {
          return this.#fail(i, `a trailer section longer than ${limits.maxTrailerBytes} bytes`);
        }
      }
    }
    this.#state = state;
    return i - start;
  }

  #fail(at: number, reason: string): number {
    this.#state = C_FAILED;
    this.error ??= reason;
    this.dataEnd = this.dataStart;
    return at - this.dataStart;
  }
}

function hex(c: number): string {
  return c.toString(16).padStart(2, "0");
}
