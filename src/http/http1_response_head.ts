/**
 * The pieces of an HTTP/1.1 response head (RFC 9112 §4, §5): status lines
 * made once per status, the `Date` field value made once per second
 * (RFC 9110 §6.6.1), and the head's text written into a caller's buffer as
 * ISO-8859-1 bytes (header values are byte strings; ASCII takes the fast
 * path of `TextEncoder.encodeInto`).
 *
 * Runtime-neutral.
 *
 * @module
 */

/** Reason phrases of the statuses this server sends (RFC 9110 §15). */
const REASONS: Record<number, string> = {
  100: "Continue",
  101: "Switching Protocols",
  200: "OK",
  201: "Created",
  202: "Accepted",
  204: "No Content",
  206: "Partial Content",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  417: "Expectation Failed",
  426: "Upgrade Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  499: "Client Closed Request",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

/**
 * The reason phrase of `status` ("" for one this table does not know: the
 * phrase is optional, RFC 9112 §4).
 *
 * @example
 * ```ts
 * reasonPhrase(431); // "Request Header Fields Too Large"
 * ```
 */
export function reasonPhrase(status: number): string {
  return REASONS[status] ?? "";
}

const STATUS_LINES = new Map<number, string>();

/**
 * `HTTP/1.1 <status> <reason>\r\n`, made once per status.
 *
 * @example
 * ```ts
 * statusLine(200); // "HTTP/1.1 200 OK\r\n"
 * ```
 */
export function statusLine(status: number): string {
  let line = STATUS_LINES.get(status);
  if (line === undefined) {
    line = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`;
    if (STATUS_LINES.size < 1000) STATUS_LINES.set(status, line);
  }
  return line;
}

/**
 * The IMF-fixdate of now (RFC 9110 §5.6.7), made at most once per second.
 *
 * @example
 * ```ts
 * const date = new HttpDate();
 * date.value(); // "Sun, 06 Nov 1994 08:49:37 GMT"
 * ```
 */
export class HttpDate {
  #second = -1;
  #value = "";
  #now: () => number;

  /** Reads wall-clock time from `now` (milliseconds since the epoch; default `Date.now`). */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The date of the current second. */
  value(): string {
    const ms = this.#now();
    const second = Math.floor(ms / 1000);
    if (second !== this.#second) {
      this.#second = second;
      this.#value = new Date(second * 1000).toUTCString();
    }
    return this.#value;
  }
}

const encoder = new TextEncoder();

/**
 * Writes `text` (code units up to 0xFF) into `buf` from `offset` as
 * ISO-8859-1, one byte per code unit. Returns the byte count, or -1 when it
 * does not fit.
 *
 * @example
 * ```ts
 * const n = writeLatin1("HTTP/1.1 200 OK\r\n\r\n", buf, 0); // 19
 * ```
 */
export function writeLatin1(text: string, buf: Uint8Array, offset: number): number {
  if (text.length > buf.length - offset) return -1;
  const r = encoder.encodeInto(text, offset === 0 ? buf : buf.subarray(offset));
  if (r.read === text.length && r.written === text.length) return r.written;
  // Not ASCII: one byte per code unit.
  for (let i = 0; i < text.length; i++) buf[offset + i] = text.charCodeAt(i) & 0xff;
  return text.length;
}

/** The `code` of a refusal's problem body, by status. */
function refusalCode(status: number): string {
  if (status === 408) return "EBODYTIMEOUT";
  if (status === 413 || status === 414 || status === 431) return "ETOOLARGE";
  if (status === 501 || status === 505) return "ENOTSUP";
  if (status >= 500) return "EINTERNAL";
  return "EINVAL";
}

/**
 * A complete response refusing a request before it reached the app
 * (malformed or oversized head, a body that timed out, a bad chunked body):
 * `status`, an RFC 9457 problem body naming `reason`, `Connection: close`.
 *
 * @example
 * ```ts
 * await conn.write(refusalResponse(431, "more than 100 header fields", date.value()));
 * ```
 */
export function refusalResponse(status: number, reason: string, date: string): Uint8Array {
  const body = JSON.stringify({
    type: "about:blank",
    title: reasonPhrase(status) || "Error",
    status,
    code: refusalCode(status),
    detail: reason,
  });
  const bytes = encoder.encode(body);
  const head = `${statusLine(status)}content-type: application/problem+json\r\n` +
    `content-length: ${bytes.length}\r\ndate: ${date}\r\nconnection: close\r\n\r\n`;
  const out = new Uint8Array(head.length + bytes.length);
  writeLatin1(head, out, 0);
  out.set(bytes, head.length);
  return out;
}
