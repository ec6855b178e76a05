/**
 * The framing rules of an HTTP/1.1 request head (RFC 9112 §3, §6, §9.3;
 * RFC 9110 §7.2, §7.8, §10.1.1), applied to the text of a head whose syntax
 * the scanner of `http1_head_parser.ts` checked: Host, Content-Length and
 * Transfer-Encoding (duplicates, or both at once, are refused: request
 * smuggling), persistence, Expect, Upgrade, and the request target's four
 * forms. Pure; a refusal is a value, never an exception.
 *
 * @module
 */

/** Why a request head is refused: the status to answer and what was wrong. */
export interface HeadRefusal {
  /** 400, 414, 417, 431, 501 or 505. */
  readonly status: number;
  /** What failed, quoting the offending value where it helps. */
  readonly reason: string;
}

/** A parsed request head. */
export interface RequestHead {
  /** The method token, as sent (case-sensitive, RFC 9110 §9.1). */
  readonly method: string;
  /** The request target, as sent. */
  readonly target: string;
  /** The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1 (and 1.2–1.9, treated as 1.1). */
  readonly minor: number;
  /** Field lines in order, flat: each name as sent at an even index, its value (OWS trimmed) after it. */
  readonly fields: string[];
  /** The absolute URL of the request: `http://` + Host + target, or the absolute-form target. */
  readonly url: string;
  /** The declared body length; -1 when there is none (chunked, or no body). */
  readonly contentLength: number;
  /** The body is chunked (Transfer-Encoding: chunked). */
  readonly chunked: boolean;
  /** The connection persists after this request as far as its head says (RFC 9112 §9.3). */
  readonly keepAlive: boolean;
  /** HTTP/1.1 with `Connection: upgrade` and an `Upgrade` field (RFC 9110 §7.8). */
  readonly upgrade: boolean;
  /** `Expect: 100-continue` in HTTP/1.1 (RFC 9110 §10.1.1). */
  readonly expectContinue: boolean;
  /** `OPTIONS *` (asterisk-form, RFC 9112 §3.2.4): the server itself answers. */
  readonly asterisk: boolean;
}

const SP = 32;

/** Whether `name` is `lower` in any case (ASCII letters). */
function isName(name: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    const c = name.charCodeAt(i);
    if ((c >= 65 && c <= 90 ? c | 0x20 : c) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** Field values: OWS trimmed (SP and HTAB only; RFC 9110 §5.5). */
function trimmed(text: string, from: number, to: number): string {
  while (from < to && isOws(text.charCodeAt(from))) from++;
  while (to > from && isOws(text.charCodeAt(to - 1))) to--;
  return text.slice(from, to);
}

function isOws(c: number): boolean {
  return c === SP || c === 9;
}

/** The tokens of a comma-separated list, lowercase, empty elements left out (RFC 9110 §5.6.1). */
function tokens(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(",")) {
    const t = part.replace(/^[ \t]+|[ \t]+$/g, "").toLowerCase();
    if (t !== "") out.push(t);
  }
  return out;
}

function hasToken(value: string, token: string): boolean {
  return value.length >= token.length && tokens(value).includes(token);
}

/** A Host value: uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2). */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?$/;
/** An absolute-form target's scheme and authority (RFC 9112 §3.2.2), no userinfo. */
const ABSOLUTE = /^https?:\/\/([^/?#@]+)([/?].*)?$/i;

function refuse(status: number, reason: string): HeadRefusal {
  return { status, reason };
}

/**
 * The framing rules, on the text of a syntactically valid head (from its
 * request line to its empty line; `minor` is its HTTP minor version).
 *
 * @example
 * ```ts
 * readRequestHead("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1); // { method: "GET", url: "http://a/", ... }
 * ```
 */
export function readRequestHead(text: string, minor: number): RequestHead | HeadRefusal {
  const sp1 = text.indexOf(" ");
  const sp2 = text.indexOf(" ", sp1 + 1);
  const method = text.slice(0, sp1);
  const target = text.slice(sp1 + 1, sp2);
  let pos = text.indexOf("\r\n", sp2) + 2;
  const fields: string[] = [];
  let host: string | undefined;
  let hosts = 0;
  let contentLength = -1;
  let lengths = 0;
  let transferEncoding: string | undefined;
  let connection = "";
  let upgradeField = false;
  let expect: string | undefined;
  const end = text.length - 2;
  while (pos < end) {
    const eol = text.indexOf("\r\n", pos);
    const colon = text.indexOf(":", pos);
    const name = text.slice(pos, colon);
    const value = trimmed(text, colon + 1, eol);
    fields.push(name, value);
    pos = eol + 2;
    // The names that matter here, compared without making lowercase copies.
    switch (name.length) {
      case 4:
        if (!isName(name, "host")) continue;
        break;
      case 6:
        if (!isName(name, "expect")) continue;
        break;
      case 7:
        if (!isName(name, "upgrade")) continue;
        break;
      case 10:
        if (!isName(name, "connection")) continue;
        break;
      case 14:
        if (!isName(name, "content-length")) continue;
        break;
      case 17:
        if (!isName(name, "transfer-encoding")) continue;
        break;
      default:
        continue;
    }
    switch (name.length === 4 ? "host" : name.toLowerCase()) {
      case "host":
        hosts++;
        host = value;
        break;
      case "content-length":
        lengths++;
        if (!/^[0-9]{1,15}$/.test(value)) {
          return refuse(400, `invalid Content-Length "${value.slice(0, 40)}" (RFC 9112 §6.3)`);
        }
        contentLength = Number(value);
        break;
      case "transfer-encoding":
        if (transferEncoding !== undefined) {
          return refuse(400, "more than one Transfer-Encoding field line (RFC 9112 §6.3)");
        }
        transferEncoding = value;
        break;
      case "connection":
        connection = connection === "" ? value : `${connection}, ${value}`;
        break;
      case "upgrade":
        upgradeField = true;
        break;
      case "expect":
        expect = expect === undefined ? value : `${expect}, ${value}`;
        break;
    }
  }
  if (lengths > 1) return refuse(400, "more than one Content-Length (RFC 9112 §6.3)");
  let chunked = false;
  if (transferEncoding !== undefined) {
    if (minor === 0) {
      return refuse(400, "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1)");
    }
    if (lengths > 0) {
      return refuse(400, "both Transfer-Encoding and Content-Length (RFC 9112 §6.3)");
    }
    const codings = tokens(transferEncoding);
    const last = codings.length - 1;
    if (last < 0 || codings[last] !== "chunked") {
      return refuse(
        400,
        `Transfer-Encoding "${
          transferEncoding.slice(0, 40)
        }" does not end with chunked (RFC 9112 §6.3)`,
      );
    }
    if (codings.indexOf("chunked") !== last) {
      return refuse(400, "chunked applied more than once (RFC 9112 §7)");
    }
    if (last > 0) {
      return refuse(501, `unsupported transfer coding "${codings[0]}" (only chunked)`);
    }
    chunked = true;
  }
  if (hosts > 1) return refuse(400, "more than one Host field line (RFC 9112 §3.2)");
  if (hosts === 0 && minor === 1) {
    return refuse(400, "an HTTP/1.1 request without Host (RFC 9112 §3.2)");
  }
  if (host !== undefined && !HOST.test(host)) {
    return refuse(400, `invalid Host "${host.slice(0, 64)}" (RFC 9112 §3.2)`);
  }
  let url: string;
  let asterisk = false;
  const first = target.charCodeAt(0);
  if (first === 0x2f /* / */) {
    if (target.includes("#")) {
      return refuse(400, "a fragment in the request target (RFC 9112 §3.2)");
    }
    url = `http://${host || "localhost"}${target}`;
  } else if (target === "*") {
    if (method !== "OPTIONS") {
      return refuse(400, `the asterisk-form target is only for OPTIONS, not ${method}`);
    }
    asterisk = true;
    url = `http://${host || "localhost"}/`;
  } else {
    const m = ABSOLUTE.exec(target);
    if (m === null || target.includes("#")) {
      if (method === "CONNECT") return refuse(501, "CONNECT is not supported");
      return refuse(400, `invalid request target "${target.slice(0, 64)}" (RFC 9112 §3.2)`);
    }
    if (!HOST.test(m[1])) {
      return refuse(400, `invalid authority "${m[1].slice(0, 64)}" in the request target`);
    }
    // The target's authority wins over Host (RFC 9112 §3.2.2).
    url = `http://${m[1]}${m[2] ?? "/"}`;
  }
  if (method === "CONNECT") return refuse(501, "CONNECT is not supported");
  let expectContinue = false;
  if (expect !== undefined && minor === 1) {
    // RFC 9110 §10.1.1: 100-continue is the only expectation; HTTP/1.0 ignores Expect.
    const members = tokens(expect);
    for (const e of members) {
      if (e !== "100-continue") {
        return refuse(417, `unsupported expectation "${e.slice(0, 40)}"`);
      }
    }
    expectContinue = members.length > 0;
  }
  const close = connection !== "" && hasToken(connection, "close");
  const keepAlive = minor === 1
    ? !close
    : !close && connection !== "" && hasToken(connection, "keep-alive");
  return {
    method,
    target,
    minor,
    fields,
    url,
    contentLength: chunked ? -1 : contentLength,
    chunked,
    keepAlive,
    upgrade: minor === 1 && upgradeField && connection !== "" && hasToken(connection, "upgrade"),
    expectContinue,
    asterisk,
  };
}
