/**
 * The request head of HTTP/1.1 (RFC 9112 §2–§7), parsed in two steps that
 * never throw on hostile bytes (the second in `http1_request_head.ts`):
 *
 * 1. {@linkcode RequestHeadParser.feed} scans the bytes as they arrive,
 *    byte by byte, carrying its state across reads (a head may arrive one
 *    byte at a time; no byte is looked at twice). It checks the syntax and
 *    the bounds while it scans — head size (431), field-line length and
 *    count (431), request-line length (414), every byte's class — and finds
 *    the end of the head. A malformed head is refused as soon as its first
 *    bad byte arrives, never buffered further.
 * 2. {@linkcode RequestHeadParser.parse} reads the complete head (once)
 *    into strings and applies the message-framing rules: Host (§3.2),
 *    Content-Length and Transfer-Encoding (§6.1, §6.3: duplicates or both at
 *    once are refused, request smuggling), persistence (§9.3), Expect
 *    (RFC 9110 §10.1.1), Upgrade (RFC 9110 §7.8), the request target's four
 *    forms (§3.2).
 *
 * Strict where RFC 9112 lets a server choose: a bare LF or a bare CR ends
 * nothing and is refused (§2.2), obs-fold is refused (§5.2), whitespace
 * before a colon is refused (§5.1), a duplicate Content-Length is refused
 * even when both values agree. Empty lines before the request line are
 * skipped (§2.2).
 *
 * Pure and runtime-neutral: bytes in, a result or a refusal out.
 *
 * @module
 */

import { type HeadRefusal, readRequestHead, type RequestHead } from "./http1_request_head.ts";

/** Bounds of a request head. */
export interface HeadLimits {
  /** The whole head, request line to the empty line, at most (431 beyond). */
  maxHeadBytes: number;
  /** One line at most: the request line (414 beyond) or a field line (431 beyond). */
  maxLineBytes: number;
  /** Field lines at most (431 beyond). */
  maxFields: number;
}

/**
 * The default bounds: 16 KiB of head (Node's HTTP server's bound), 12 KiB per
 * line (a 10 KiB bearer token fits), 100 field lines (Apache's bound).
 */
export const DEFAULT_HEAD_LIMITS: Readonly<HeadLimits> = {
  maxHeadBytes: 16 * 1024,
  maxLineBytes: 12 * 1024,
  maxFields: 100,
};

export type { HeadRefusal, RequestHead } from "./http1_request_head.ts";

// Byte classes (one table lookup per byte).
const TCHAR = 1;
const VCHAR = 2;
const OBS = 4;
const WS = 8;
/** What a field value may hold: VCHAR, obs-text, SP, HTAB (RFC 9110 §5.5). */
const VALUE = VCHAR | OBS | WS;
const CLASS = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) CLASS[c] |= VCHAR;
for (let c = 0x80; c <= 0xff; c++) CLASS[c] |= OBS;
CLASS[0x20] |= WS;
CLASS[0x09] |= WS;
for (const ch of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  CLASS[ch.charCodeAt(0)] |= TCHAR;
}

/** Whether byte `c` is a tchar (RFC 9110 §5.6.2). */
export function isTchar(c: number): boolean {
  return (CLASS[c] & TCHAR) !== 0;
}

/** Whether byte `c` may appear in a field value: VCHAR, obs-text, SP, HTAB (RFC 9110 §5.5). */
export function isFieldValueByte(c: number): boolean {
  return (CLASS[c] & VALUE) !== 0;
}

const CR = 13;
const LF = 10;
const SP = 32;
const COLON = 58;

// Scanner states.
const S_LEADING = 0; // before the request line: empty lines allowed
const S_LEADING_LF = 1;
const S_METHOD = 2;
const S_TARGET = 3;
const S_VERSION = 4;
const S_LINE_LF = 5; // after the CR of the request line or a field line
const S_LINE_START = 6; // start of a field line or of the final empty line
const S_NAME = 7;
const S_VALUE = 8;
const S_END_LF = 9; // after the CR of the empty line
const S_DONE = 10;
const S_FAILED = 11;

/** {@linkcode RequestHeadParser.feed}: more bytes are needed. */
export const HEAD_INCOMPLETE = 0;
/** {@linkcode RequestHeadParser.feed}: the head is refused (see `refusal`). */
export const HEAD_REFUSED = -1;

/** Decodes heads of ASCII bytes only (obs-text goes through `latin1String`). */
const ascii = new TextDecoder("utf-8");

/**
 * Parses request heads, one at a time (reset between requests). One per
 * connection: its state is a few numbers.
 *
 * @example
 * ```ts
 * const parser = new RequestHeadParser();
 * const bytes = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
 * const n = parser.feed(bytes, 0, bytes.length); // 27: the head's length
 * const head = parser.parse(bytes, 0);            // { method: "GET", url: "http://a/", ... }
 * parser.reset();
 * ```
 */
export class RequestHeadParser {
  /** The bounds this parser enforces. */
  readonly limits: Readonly<HeadLimits>;
  /** Why the head was refused, once `feed` returned {@linkcode HEAD_REFUSED}. */
  refusal: HeadRefusal | undefined;
  #state = S_LEADING;
  /** Bytes of the head scanned so far (offset from the head's start). */
  #pos = 0;
  #lineStart = 0;
  #fields = 0;
  #versionStart = 0;
  #requestLineStart = 0;
  #high = false;
  #minor = 1;

  /** A parser with `limits` (default {@linkcode DEFAULT_HEAD_LIMITS}). */
  constructor(limits: Readonly<HeadLimits> = DEFAULT_HEAD_LIMITS) {
    this.limits = limits;
  }

  /** Bytes of the current head scanned so far (0 before its first byte). */
  get scanned(): number {
    return this.#pos;
  }

  /** Forgets the current head: the next `feed` starts a new one. */
  reset(): void {
    this.#state = S_LEADING;
    this.#pos = 0;
    this.#lineStart = 0;
    this.#fields = 0;
    this.#versionStart = 0;
    this.#requestLineStart = 0;
    this.#high = false;
    this.#minor = 1;
    this.refusal = undefined;
  }

  /**
   * Scans the head that starts at `buf[start]` and is buffered up to
   * `buf[end]`; bytes scanned by earlier calls (the same head, at the same
   * offsets from `start`) are not looked at again. Returns the head's length
   * in bytes once its empty line is in, {@linkcode HEAD_INCOMPLETE} when
   * more bytes are needed, {@linkcode HEAD_REFUSED} when the head is
   * malformed or too large (`refusal` says why).
   */
  feed(buf: Uint8Array, start: number, end: number): number {
    if (this.#state === S_DONE) return this.#pos;
    if (this.#state === S_FAILED) return HEAD_REFUSED;
    const limits = this.limits;
    let state = this.#state;
    let i = start + this.#pos;
    const stop = Math.min(end, start + limits.maxHeadBytes);
    let lineStart = start + this.#lineStart;
    for (; i < stop; i++) {
      const c = buf[i];
      switch (state) {
        case S_LEADING:
          if (c === CR) state = S_LEADING_LF;
          else if ((CLASS[c] & TCHAR) !== 0) {
            lineStart = i;
            this.#requestLineStart = i - start;
            state = S_METHOD;
          } else return this.#fail(i - start, 400, describe("a request line", c));
          break;
        case S_LEADING_LF:
          if (c !== LF) {
            return this.#fail(i - start, 400, "a CR without LF before the request line");
          }
          state = S_LEADING;
          break;
        case S_METHOD:
          if (c === SP) state = S_TARGET;
          else if ((CLASS[c] & TCHAR) === 0) {
            return this.#fail(i - start, 400, describe("the method", c));
          }
          break;
        case S_TARGET:
          if (c === SP) {
            if (buf[i - 1] === SP) return this.#fail(i - start, 400, "an empty request target");
            this.#versionStart = i + 1 - start;
            state = S_VERSION;
          } else if ((CLASS[c] & VCHAR) === 0) {
            return this.#fail(i - start, 400, describe("the request target", c));
          } else {
            while (i + 1 < stop && (CLASS[buf[i + 1]] & VCHAR) !== 0) i++;
          }
          break;
        case S_VERSION:
          if (c === CR) {
            const v = this.#version(buf, start + this.#versionStart, i);
            if (v !== undefined) return this.#fail(i - start, v.status, v.reason);
            state = S_LINE_LF;
          } else if ((CLASS[c] & VCHAR) === 0 || i - (start + this.#versionStart) >= 8) {
            return this.#fail(i - start, 400, describe("the HTTP version", c));
          }
          break;
        case S_LINE_LF:
          if (c !== LF) return this.#fail(i - start, 400, "a bare CR in the head");
          if (i - lineStart > limits.maxLineBytes) return this.#lineTooLong(i - start);
          state = S_LINE_START;
          lineStart = i + 1;
          break;
        case S_LINE_START:
          if (c === CR) state = S_END_LF;
          else if ((CLASS[c] & TCHAR) !== 0) {
            if (++this.#fields > limits.maxFields) {
              return this.#fail(
                i - start,
                431,
                `more than ${limits.maxFields} header fields`,
              );
            }
            state = S_NAME;
          } else if ((CLASS[c] & WS) !== 0) {
            return this.#fail(
              i - start,
              400,
              "a field line starts with whitespace (obs-fold, RFC 9112 §5.2)",
            );
          } else return this.#fail(i - start, 400, describe("a field name", c));
          break;
        case S_NAME:
          if (c === COLON) state = S_VALUE;
          else if ((CLASS[c] & TCHAR) === 0) {
            return this.#fail(
              i - start,
              400,
              (CLASS[c] & WS) !== 0
                ? "whitespace between a field name and its colon (RFC 9112 §5.1)"
                : describe("a field name", c),
            );
          } else {
            while (i + 1 < stop && (CLASS[buf[i + 1]] & TCHAR) !== 0) i++;
          }
          break;
        case S_VALUE:
          if (c === CR) state = S_LINE_LF;
          else if ((CLASS[c] & VALUE) === 0) {
            return this.#fail(i - start, 400, describe("a field value", c));
          } else {
            // The rest of the value in one run; obs-text noted (the head is then not ASCII).
            let high = c;
            while (i + 1 < stop) {
              const d = buf[i + 1];
              if ((CLASS[d] & VALUE) === 0) break;
              high |= d;
              i++;
            }
            if (high >= 0x80) this.#high = true;
          }
          break;
        case S_END_LF:
          if (c !== LF) return this.#fail(i - start, 400, "a bare CR in the head");
          this.#state = S_DONE;
          this.#pos = i + 1 - start;
          return this.#pos;
      }
    }
    this.#state = state;
    this.#pos = i - start;
    this.#lineStart = lineStart - start;
    if (i - lineStart > limits.maxLineBytes) return this.#lineTooLong(i - start);
    if (this.#pos >= limits.maxHeadBytes) {
      return this.#fail(this.#pos, 431, `the request head exceeds ${limits.maxHeadBytes} bytes`);
    }
    return HEAD_INCOMPLETE;
  }

  /**
   * Reads the head that {@linkcode RequestHeadParser.feed} found complete at
   * `buf[start]` and applies the framing rules; a refusal when they fail.
   * The strings are copies: `buf` may be reused afterwards.
   */
  parse(buf: Uint8Array, start: number): RequestHead | HeadRefusal {
    if (this.#state !== S_DONE) {
      return { status: 400, reason: "the request head is not complete" };
    }
    const bytes = buf.subarray(start + this.#requestLineStart, start + this.#pos);
    const text = this.#high ? latin1String(bytes) : ascii.decode(bytes);
    return readRequestHead(text, this.#minor);
  }

  #version(buf: Uint8Array, from: number, to: number): HeadRefusal | undefined {
    // HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3)
    if (
      to - from !== 8 || buf[from] !== 0x48 || buf[from + 1] !== 0x54 || buf[from + 2] !== 0x54 ||
      buf[from + 3] !== 0x50 || buf[from + 4] !== 0x2f || buf[from + 6] !== 0x2e ||
      !isDigit(buf[from + 5]) || !isDigit(buf[from + 7])
    ) {
      return {
        status: 400,
        reason: `malformed HTTP version "${latin1String(buf.subarray(from, to))}"`,
      };
    }
    const major = buf[from + 5] - 0x30;
    if (major !== 1) {
      return {
        status: 505,
        reason: `HTTP version "${latin1String(buf.subarray(from, to))}" is not supported`,
      };
    }
    // A higher minor version is processed as 1.1 (RFC 9110 §6.2).
    this.#minor = buf[from + 7] === 0x30 ? 0 : 1;
    return undefined;
  }

  #lineTooLong(at: number): number {
    // No field line has started yet: the line is the request line.
    return this.#fields === 0
      ? this.#fail(at, 414, `the request line exceeds ${this.limits.maxLineBytes} bytes`)
      : this.#fail(at, 431, `a header field line exceeds ${this.limits.maxLineBytes} bytes`);
  }

  #fail(at: number, status: number, reason: string): number {
    this.#state = S_FAILED;
    this.#pos = at;
    this.refusal = { status, reason };
    return HEAD_REFUSED;
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function describe(where: string, c: number): string {
  if (c === LF) return `a bare LF in ${where}`;
  if (c === CR) return `a CR in ${where}`;
  return `byte 0x${c.toString(16).padStart(2, "0")} is not allowed in ${where}`;
}

/** Bytes as a string of the same code units (ISO-8859-1; obs-text stays one unit each). */
function latin1String(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096) as unknown as number[]);
  }
  return s;
}
