/**
 * Whole DNS messages for the egress resolver (RFC 1035 §4): parsing every
 * section of an upstream's response into records whose data holds no
 * compression pointers (the names inside CNAME, NS, PTR, MX, SRV and SOA
 * data are expanded, RFC 1035 §4.1.4, RFC 3597 §4), and building queries and
 * responses from records. A response the gateway sends is always built
 * afresh from parsed records: an upstream's bytes never reach the guest
 * verbatim.
 *
 * Record data helpers build the types the system resolvers report (A, AAAA,
 * CNAME, NS, PTR, MX, TXT, SRV, SOA).
 *
 * @module
 */

import {
  DNS_HEADER_LEN,
  type DnsQuestion,
  fail,
  ok,
  parseDnsHeader,
  parseDnsName,
  type ParseResult,
} from "../../../wire/mod.ts";
import { parseIpAddress } from "../ip_address.ts";

/** Record types the resolver knows by name (RFC 1035 §3.2.2, RFC 3596, RFC 2782, RFC 6891). */
export const DnsRecordType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  ANY: 255,
} as const;

/** One resource record; `data` holds no compression pointer. */
export interface DnsRecord {
  /** The owner name, dotted, without the trailing dot. */
  name: string;
  /** TYPE. */
  type: number;
  /** CLASS (for OPT: the sender's UDP payload size, RFC 6891 §6.1.2). */
  class: number;
  /** TTL in seconds (for OPT: extended RCODE and flags). */
  ttl: number;
  /** RDATA, names expanded. */
  data: Uint8Array;
}

/** A parsed message. */
export interface DnsMessage {
  /** Identifier. */
  id: number;
  /** QR: a response. */
  qr: boolean;
  /** OPCODE. */
  opcode: number;
  /** AA, TC, RD, RA. */
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  /** RCODE (the header's four bits). */
  rcode: number;
  /** The questions (a query has one). */
  questions: DnsQuestion[];
  /** The answer, authority and additional sections. */
  answers: DnsRecord[];
  authority: DnsRecord[];
  additional: DnsRecord[];
}

/** Most records read from one message (a message of 64 KiB holds at most ~5,000). */
const MAX_RECORDS = 512;

function u16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

/** The wire form of a dotted name (uncompressed); RangeError for a bad label. */
export function encodeDnsName(name: string): Uint8Array {
  const n = name.endsWith(".") ? name.slice(0, -1) : name;
  const labels = n === "" ? [] : n.split(".");
  let len = 1;
  for (const l of labels) {
    if (l.length < 1 || l.length > 63) {
      throw new RangeError(`DNS name ${JSON.stringify(name)}: label "${l}" must be 1..63 bytes`);
    }
    len += l.length + 1;
  }
  if (len > 255) throw new RangeError(`DNS name ${JSON.stringify(name)} is over 255 bytes`);
  const out = new Uint8Array(len);
  let p = 0;
  for (const l of labels) {
    out[p++] = l.length;
    for (let i = 0; i < l.length; i++) out[p++] = l.charCodeAt(i) & 0xff;
  }
  return out;
}

/**
 * Expands the names inside the data of the types that may compress them
 * (RFC 3597 §4: only the types of RFC 1035 and a few others). Returns the
 * data with names uncompressed, or a reason.
 */
function expandData(
  msg: Uint8Array,
  type: number,
  at: number,
  len: number,
): ParseResult<Uint8Array> {
  const end = at + len;
  const name = (o: number): ParseResult<{ bytes: Uint8Array; end: number }> => {
    const n = parseDnsName(msg, o);
    if (!n.ok) return n;
    if (n.value.end > end) return fail("dns_truncated");
    try {
      return ok({ bytes: encodeDnsName(n.value.name), end: n.value.end });
    } catch {
      return fail("dns_bad_label");
    }
  };
  const join = (parts: Uint8Array[]) => {
    const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  };
  switch (type) {
    case DnsRecordType.CNAME:
    case DnsRecordType.NS:
    case DnsRecordType.PTR: {
      const n = name(at);
      if (!n.ok) return n;
      return n.value.end === end ? ok(n.value.bytes) : fail("dns_bad_rdata");
    }
    case DnsRecordType.MX: {
      if (len < 3) return fail("dns_bad_rdata");
      const n = name(at + 2);
      if (!n.ok) return n;
      if (n.value.end !== end) return fail("dns_bad_rdata");
      return ok(join([msg.subarray(at, at + 2), n.value.bytes]));
    }
    case DnsRecordType.SRV: {
      if (len < 7) return fail("dns_bad_rdata");
      const n = name(at + 6);
      if (!n.ok) return n;
      if (n.value.end !== end) return fail("dns_bad_rdata");
      return ok(join([msg.subarray(at, at + 6), n.value.bytes]));
    }
    case DnsRecordType.SOA: {
      const m = name(at);
      if (!m.ok) return m;
      const r = name(m.value.end);
      if (!r.ok) return r;
      if (r.value.end + 20 !== end) return fail("dns_bad_rdata");
      return ok(join([m.value.bytes, r.value.bytes, msg.subarray(r.value.end, end)]));
    }
    case DnsRecordType.A:
      return len === 4 ? ok(msg.slice(at, end)) : fail("dns_bad_rdata");
    case DnsRecordType.AAAA:
      return len === 16 ? ok(msg.slice(at, end)) : fail("dns_bad_rdata");
    default:
      return ok(msg.slice(at, end));
  }
}

/**
 * Parses a whole message: header, questions, and every record of the three
 * sections. Never throws; reasons: `dns_truncated`, `dns_bad_label`,
 * `dns_bad_pointer`, `dns_name_too_long`, `dns_bad_rdata`,
 * `dns_too_many_records`, `dns_trailing_bytes`.
 *
 * @example
 * ```ts
 * const m = parseDnsMessage(responseBytes);
 * if (m.ok) for (const a of m.value.answers) console.log(a.name, a.type, a.ttl);
 * ```
 */
export function parseDnsMessage(bytes: Uint8Array): ParseResult<DnsMessage> {
  const h = parseDnsHeader(bytes);
  if (!h.ok) return h;
  const hd = h.value;
  const total = hd.qdcount + hd.ancount + hd.nscount + hd.arcount;
  if (total > MAX_RECORDS) return fail("dns_too_many_records");
  let pos = DNS_HEADER_LEN;
  const questions: DnsQuestion[] = [];
  for (let i = 0; i < hd.qdcount; i++) {
    const n = parseDnsName(bytes, pos);
    if (!n.ok) return n;
    pos = n.value.end;
    if (pos + 4 > bytes.length) return fail("dns_truncated");
    questions.push({ name: n.value.name, type: u16(bytes, pos), class: u16(bytes, pos + 2) });
    pos += 4;
  }
  const sections: DnsRecord[][] = [[], [], []];
  const counts = [hd.ancount, hd.nscount, hd.arcount];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s]; i++) {
      const n = parseDnsName(bytes, pos);
      if (!n.ok) return n;
      pos = n.value.end;
      if (pos + 10 > bytes.length) return fail("dns_truncated");
      const type = u16(bytes, pos);
      const cls = u16(bytes, pos + 2);
      const ttl = ((bytes[pos + 4] << 24) | (bytes[pos + 5] << 16) | (bytes[pos + 6] << 8) |
        bytes[pos + 7]) >>> 0;
      const len = u16(bytes, pos + 8);
      pos += 10;
      if (pos + len > bytes.length) return fail("dns_truncated");
      const data = expandData(bytes, type, pos, len);
      if (!data.ok) return data;
      pos += len;
      sections[s].push({ name: n.value.name, type, class: cls, ttl, data: data.value });
    }
  }
  if (pos !== bytes.length) return fail("dns_trailing_bytes");
  return ok({
    id: hd.id,
    qr: hd.qr,
    opcode: hd.opcode,
    aa: hd.aa,
    tc: hd.tc,
    rd: hd.rd,
    ra: hd.ra,
    rcode: hd.rcode,
    questions,
    answers: sections[0],
    authority: sections[1],
    additional: sections[2],
  });
}

/** What {@linkcode buildDnsMessage} writes. */
export interface DnsMessageInit {
  id: number;
  /** A response (QR set). */
  response: boolean;
  opcode?: number;
  aa?: boolean;
  rd?: boolean;
  ra?: boolean;
  rcode?: number;
  question?: DnsQuestion;
  answers?: readonly DnsRecord[];
  authority?: readonly DnsRecord[];
  additional?: readonly DnsRecord[];
  /**
   * The largest message to produce: beyond it the additional section goes,
   * then the authority, then answers from the end, and TC is set (RFC 2181
   * §9). Default 65535.
   */
  maxSize?: number;
}

function recordLen(r: DnsRecord, owner: Uint8Array): number {
  return owner.length + 10 + r.data.length;
}

/**
 * Builds a message. Owner names equal to the question's name are written
 * as a pointer to it (RFC 1035 §4.1.4); every other name in full.
 *
 * @throws {RangeError} for a name that cannot be encoded.
 *
 * @example
 * ```ts
 * const q = buildDnsMessage({ id: 0, response: false, rd: true, question: { name: "example.com", type: 1, class: 1 } });
 * ```
 */
export function buildDnsMessage(m: DnsMessageInit): Uint8Array {
  const qname = m.question ? encodeDnsName(m.question.name) : undefined;
  const qkey = m.question?.name.toLowerCase().replace(/\.$/, "");
  const pointer = new Uint8Array([0xc0, DNS_HEADER_LEN]);
  const owner = (r: DnsRecord) =>
    qkey !== undefined && r.name.toLowerCase().replace(/\.$/, "") === qkey
      ? pointer
      : encodeDnsName(r.name);
  const sections = [m.answers ?? [], m.authority ?? [], m.additional ?? []].map((s) =>
    s.map((r) => ({ r, o: owner(r) }))
  );
  const max = m.maxSize ?? 65535;
  let size = DNS_HEADER_LEN + (qname ? qname.length + 4 : 0);
  for (const s of sections) for (const { r, o } of s) size += recordLen(r, o);
  let tc = false;
  // Drop from the end of the message until it fits: additional (an OPT record stays,
  // RFC 6891 §7), authority, answers.
  sections[2].sort((a, b) =>
    (b.r.type === DnsRecordType.OPT ? 1 : 0) - (a.r.type === DnsRecordType.OPT ? 1 : 0)
  );
  for (let s = 2; s >= 0 && size > max; s--) {
    while (sections[s].length > 0 && size > max) {
      if (s === 2 && sections[2].at(-1)!.r.type === DnsRecordType.OPT) break;
      const { r, o } = sections[s].pop()!;
      size -= recordLen(r, o);
      if (s === 0) tc = true;
    }
  }
  const out = new Uint8Array(size);
  out[0] = m.id >>> 8;
  out[1] = m.id & 0xff;
  out[2] = (m.response ? 0x80 : 0) | (((m.opcode ?? 0) & 0xf) << 3) | (m.aa ? 0x04 : 0) |
    (tc ? 0x02 : 0) | (m.rd ? 0x01 : 0);
  out[3] = (m.ra ? 0x80 : 0) | ((m.rcode ?? 0) & 0xf);
  out[5] = qname ? 1 : 0;
  for (let s = 0; s < 3; s++) {
    out[6 + 2 * s] = sections[s].length >>> 8;
    out[7 + 2 * s] = sections[s].length & 0xff;
  }
  let p = DNS_HEADER_LEN;
  if (qname && m.question) {
    out.set(qname, p);
    p += qname.length;
    out[p++] = m.question.type >>> 8;
    out[p++] = m.question.type & 0xff;
    out[p++] = m.question.class >>> 8;
    out[p++] = m.question.class & 0xff;
  }
  for (const s of sections) {
    for (const { r, o } of s) {
      out.set(o, p);
      p += o.length;
      out[p++] = r.type >>> 8;
      out[p++] = r.type & 0xff;
      out[p++] = r.class >>> 8;
      out[p++] = r.class & 0xff;
      out[p++] = r.ttl >>> 24;
      out[p++] = (r.ttl >>> 16) & 0xff;
      out[p++] = (r.ttl >>> 8) & 0xff;
      out[p++] = r.ttl & 0xff;
      out[p++] = r.data.length >>> 8;
      out[p++] = r.data.length & 0xff;
      out.set(r.data, p);
      p += r.data.length;
    }
  }
  return out;
}

// ------------------------------------------------------------ record data

/** A record of the system resolver's kinds, as a runtime reports it. */
export type SystemDnsRecord =
  | { type: "A" | "AAAA" | "CNAME" | "NS" | "PTR"; value: string; ttl?: number }
  | { type: "MX"; preference: number; exchange: string; ttl?: number }
  | { type: "TXT"; strings: string[]; ttl?: number }
  | { type: "SRV"; priority: number; weight: number; port: number; target: string; ttl?: number }
  | {
    type: "SOA";
    mname: string;
    rname: string;
    serial: number;
    refresh: number;
    retry: number;
    expire: number;
    minimum: number;
    ttl?: number;
  };

function be16(n: number): Uint8Array {
  return new Uint8Array([(n >>> 8) & 0xff, n & 0xff]);
}

function be32(n: number): Uint8Array {
  return new Uint8Array([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * The wire record of what a system resolver reported for `name`, or
 * undefined when the value cannot be encoded (an address that does not
 * parse, a bad name). TXT strings longer than 255 bytes are split
 * (RFC 1035 §3.3.14).
 *
 * @example
 * ```ts
 * systemRecordToDns("example.com", { type: "A", value: "192.0.2.1" }, 60)?.data; // [192, 0, 2, 1]
 * ```
 */
export function systemRecordToDns(
  name: string,
  r: SystemDnsRecord,
  defaultTtl: number,
): DnsRecord | undefined {
  const ttl = Math.max(0, Math.min(0x7fffffff, Math.floor(r.ttl ?? defaultTtl)));
  const rec = (type: number, data: Uint8Array): DnsRecord => ({ name, type, class: 1, ttl, data });
  try {
    switch (r.type) {
      case "A":
      case "AAAA": {
        const ip = parseIpAddress(r.value);
        if (!ip || (ip.family === 4) !== (r.type === "A")) return undefined;
        if (ip.family === 4) return rec(DnsRecordType.A, be32(ip.words[3]));
        return rec(DnsRecordType.AAAA, concat(ip.words.map(be32)));
      }
      case "CNAME":
      case "NS":
      case "PTR":
        return rec(DnsRecordType[r.type], encodeDnsName(r.value));
      case "MX":
        return rec(DnsRecordType.MX, concat([be16(r.preference), encodeDnsName(r.exchange)]));
      case "SRV":
        return rec(
          DnsRecordType.SRV,
          concat([be16(r.priority), be16(r.weight), be16(r.port), encodeDnsName(r.target)]),
        );
      case "TXT": {
        const parts: Uint8Array[] = [];
        for (const s of r.strings) {
          const bytes = new TextEncoder().encode(s);
          for (let o = 0; o < bytes.length || o === 0; o += 255) {
            const piece = bytes.subarray(o, o + 255);
            parts.push(new Uint8Array([piece.length]), piece);
            if (bytes.length === 0) break;
          }
        }
        return rec(DnsRecordType.TXT, concat(parts));
      }
      case "SOA":
        return rec(
          DnsRecordType.SOA,
          concat([
            encodeDnsName(r.mname),
            encodeDnsName(r.rname),
            be32(r.serial),
            be32(r.refresh),
            be32(r.retry),
            be32(r.expire),
            be32(r.minimum),
          ]),
        );
    }
  } catch {
    return undefined;
  }
}

/** The type name of a type number the system resolvers understand, or undefined. */
export function systemRecordTypeName(type: number): SystemDnsRecord["type"] | undefined {
  for (const k of ["A", "AAAA", "CNAME", "NS", "PTR", "MX", "TXT", "SRV", "SOA"] as const) {
    if (DnsRecordType[k] === type) return k;
  }
  return undefined;
}

/**
 * The negative-caching TTL of an answer without records (RFC 2308 §5): the
 * smaller of the SOA record's TTL and its MINIMUM field, from the authority
 * section; undefined without an SOA.
 */
export function negativeTtl(authority: readonly DnsRecord[]): number | undefined {
  const soa = authority.find((r) => r.type === DnsRecordType.SOA);
  if (!soa || soa.data.length < 22) return undefined;
  const d = soa.data;
  const at = d.length - 4;
  const minimum = ((d[at] << 24) | (d[at + 1] << 16) | (d[at + 2] << 8) | d[at + 3]) >>> 0;
  return Math.min(soa.ttl, minimum);
}
