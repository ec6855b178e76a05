/**
 * A minimal DNS message codec (RFC 1035 §4): the header, the question
 * section (names with compression pointers, followed safely) and responses
 * with answers in the answer section. Enough for a responder of a few
 * names; no other section is parsed.
 *
 * @module
 */

import { readU16, writeU16 } from "./_bytes.ts";
import { fail, ok, type ParseResult } from "./parse_result.ts";

/** Length of the DNS header (RFC 1035 §4.1.1). */
export const DNS_HEADER_LEN = 12;

/**
 * Record types netisle names (RFC 1035 §3.2.2, RFC 3596).
 *
 * @example
 * ```ts
 * if (question.type === DnsType.A) answerA();
 * ```
 */
export const DnsType = { A: 1, AAAA: 28, ANY: 255 } as const;

/**
 * Classes (RFC 1035 §3.2.4).
 *
 * @example
 * ```ts
 * if (question.class !== DnsClass.IN) refuse();
 * ```
 */
export const DnsClass = { IN: 1, ANY: 255 } as const;

/**
 * Response codes (RFC 1035 §4.1.1).
 *
 * @example
 * ```ts
 * const reply = emitDnsResponse({ ...header, rcode: DnsRcode.REFUSED });
 * ```
 */
export const DnsRcode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

/** The header of a DNS message. */
export interface DnsHeader {
  /** Identifier copied from query to response. */
  id: number;
  /** True for a response. */
  qr: boolean;
  /** Kind of query; 0 is a standard query (QUERY). */
  opcode: number;
  /** Authoritative answer. */
  aa: boolean;
  /** Truncated. */
  tc: boolean;
  /** Recursion desired. */
  rd: boolean;
  /** Recursion available. */
  ra: boolean;
  /** Response code, e.g. {@link DnsRcode.NXDOMAIN}. */
  rcode: number;
  /** Entries in the question section. */
  qdcount: number;
  /** Resource records in the answer section. */
  ancount: number;
  /** Resource records in the authority section. */
  nscount: number;
  /** Resource records in the additional section. */
  arcount: number;
}

/** One question. `name` is dotted, without a trailing dot, as received (case kept). */
export interface DnsQuestion {
  /** The dotted name, e.g. `netisle.internal`. */
  name: string;
  /** QTYPE, e.g. {@link DnsType.A}. */
  type: number;
  /** QCLASS, e.g. {@link DnsClass.IN}. */
  class: number;
}

/** One resource record of an answer; its owner name is the question's. */
export interface DnsAnswer {
  /** TYPE of the record. */
  type: number;
  /** CLASS of the record. */
  class: number;
  /** Seconds the record may be cached. */
  ttl: number;
  /** The record data, e.g. four address bytes for A. */
  rdata: Uint8Array;
}

/** Most compression pointers followed in one name before it is rejected. */
const MAX_POINTERS = 16;
/** Longest name on the wire (RFC 1035 §2.3.4). */
const MAX_NAME_LEN = 255;

/**
 * Parses the 12-byte header. Reason: `dns_truncated`.
 *
 * @example
 * ```ts
 * const h = parseDnsHeader(udpPayload);
 * if (h.ok && !h.value.qr) answer(h.value);
 * ```
 */
export function parseDnsHeader(bytes: Uint8Array): ParseResult<DnsHeader> {
  if (bytes.length < DNS_HEADER_LEN) return fail("dns_truncated");
  const flags = readU16(bytes, 2);
  return ok({
    id: readU16(bytes, 0),
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >>> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    rcode: flags & 0xf,
    qdcount: readU16(bytes, 4),
    ancount: readU16(bytes, 6),
    nscount: readU16(bytes, 8),
    arcount: readU16(bytes, 10),
  });
}

/**
 * Reads the name at `offset`, following compression pointers (RFC 1035
 * §4.1.4). A pointer must point strictly before itself and at most 16 are
 * followed, so a loop is rejected; labels are at most 63 bytes and the name
 * at most 255. Returns the dotted name and the offset just past the name
 * where it started (after the first pointer, if any).
 *
 * Reasons: `dns_truncated`, `dns_bad_label` (also for a label holding a
 * dot, which a dotted name cannot represent), `dns_bad_pointer`,
 * `dns_name_too_long`.
 *
 * @example
 * ```ts
 * const n = parseDnsName(msg, 12);
 * if (n.ok) console.log(n.value.name, n.value.end);
 * ```
 */
export function parseDnsName(
  bytes: Uint8Array,
  offset: number,
): ParseResult<{ name: string; end: number }> {
  const labels: string[] = [];
  let pos = offset;
  let end: number | undefined;
  let wireLen = 1;
  let jumps = 0;
  for (;;) {
    if (pos >= bytes.length) return fail("dns_truncated");
    const len = bytes[pos];
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= bytes.length) return fail("dns_truncated");
      const target = ((len & 0x3f) << 8) | bytes[pos + 1];
      if (target >= pos || ++jumps > MAX_POINTERS) return fail("dns_bad_pointer");
      end ??= pos + 2;
      pos = target;
      continue;
    }
    if ((len & 0xc0) !== 0) return fail("dns_bad_label");
    if (len === 0) {
      end ??= pos + 1;
      break;
    }
    if (pos + 1 + len > bytes.length) return fail("dns_truncated");
    wireLen += len + 1;
    if (wireLen > MAX_NAME_LEN) return fail("dns_name_too_long");
    let label = "";
    for (let i = pos + 1; i <= pos + len; i++) {
      // A dot inside a label is legal DNS but cannot round-trip a dotted name.
      if (bytes[i] === 0x2e) return fail("dns_bad_label");
      label += String.fromCharCode(bytes[i]);
    }
    labels.push(label);
    pos += 1 + len;
  }
  return ok({ name: labels.join("."), end });
}

/**
 * Parses the header and the single question of a query. Reasons: those of
 * {@linkcode parseDnsHeader} and {@linkcode parseDnsName}, and
 * `dns_bad_question_count` when QDCOUNT is not 1.
 *
 * @example
 * ```ts
 * const q = parseDnsQuery(udpPayload);
 * if (q.ok) console.log(q.value.question.name);
 * ```
 */
export function parseDnsQuery(
  bytes: Uint8Array,
): ParseResult<{ header: DnsHeader; question: DnsQuestion }> {
  const h = parseDnsHeader(bytes);
  if (!h.ok) return h;
  if (h.value.qdcount !== 1) return fail("dns_bad_question_count");
  const n = parseDnsName(bytes, DNS_HEADER_LEN);
  if (!n.ok) return n;
  const at = n.value.end;
  if (at + 4 > bytes.length) return fail("dns_truncated");
  return ok({
    header: h.value,
    question: { name: n.value.name, type: readU16(bytes, at), class: readU16(bytes, at + 2) },
  });
}

/** What {@linkcode emitDnsResponse} writes. */
export interface DnsResponse {
  /** The query's identifier. */
  id: number;
  /** The query's opcode. */
  opcode: number;
  /** Authoritative answer. */
  aa: boolean;
  /** Recursion desired, copied from the query. */
  rd: boolean;
  /** Response code. */
  rcode: number;
  /** The question to echo; none for a header-only answer (e.g. FORMERR). */
  question?: DnsQuestion;
  /** Answers, each owned by the question's name (a pointer to offset 12). */
  answers?: DnsAnswer[];
}

/**
 * Builds a response message (QR set, RA clear). The question name is
 * written uncompressed; answers point at it.
 *
 * @throws {RangeError} for a label over 63 bytes or answers without a question.
 *
 * @example
 * ```ts
 * const msg = emitDnsResponse({ id, opcode: 0, aa: true, rd: false, rcode: DnsRcode.NXDOMAIN, question });
 * ```
 */
export function emitDnsResponse(r: DnsResponse): Uint8Array {
  const answers = r.answers ?? [];
  if (answers.length > 0 && r.question === undefined) {
    throw new RangeError("emitDnsResponse: answers need a question to own them");
  }
  const labels = r.question && r.question.name !== "" ? r.question.name.split(".") : [];
  for (const l of labels) {
    if (l.length < 1 || l.length > 63) {
      throw new RangeError(`emitDnsResponse: label "${l}" must be 1..63 bytes`);
    }
  }
  const nameLen = labels.reduce((n, l) => n + l.length + 1, 1);
  let len = DNS_HEADER_LEN + (r.question ? nameLen + 4 : 0);
  for (const a of answers) len += 12 + a.rdata.length;
  const out = new Uint8Array(len);
  writeU16(out, 0, r.id);
  writeU16(
    out,
    2,
    0x8000 | ((r.opcode & 0xf) << 11) | (r.aa ? 0x0400 : 0) | (r.rd ? 0x0100 : 0) |
      (r.rcode & 0xf),
  );
  writeU16(out, 4, r.question ? 1 : 0);
  writeU16(out, 6, answers.length);
  let pos = DNS_HEADER_LEN;
  if (r.question) {
    for (const l of labels) {
      out[pos++] = l.length;
      for (let i = 0; i < l.length; i++) out[pos++] = l.charCodeAt(i) & 0xff;
    }
    out[pos++] = 0;
    writeU16(out, pos, r.question.type);
    writeU16(out, pos + 2, r.question.class);
    pos += 4;
  }
  for (const a of answers) {
    writeU16(out, pos, 0xc000 | DNS_HEADER_LEN);
    writeU16(out, pos + 2, a.type);
    writeU16(out, pos + 4, a.class);
    writeU16(out, pos + 6, (a.ttl >>> 16) & 0xffff);
    writeU16(out, pos + 8, a.ttl & 0xffff);
    writeU16(out, pos + 10, a.rdata.length);
    out.set(a.rdata, pos + 12);
    pos += 12 + a.rdata.length;
  }
  return out;
}
