/**
 * IP addresses of both families for the egress policy: parsing and
 * formatting (RFC 4291 §2.2 text forms, RFC 5952 output), CIDR prefixes, and
 * the IPv4 address embedded in an IPv6 one (IPv4-mapped `::ffff:0:0/96`,
 * RFC 4291 §2.5.5.2; IPv4-compatible `::/96`, §2.5.5.1; the NAT64 well-known
 * prefix `64:ff9b::/96`, RFC 6052 §2.1), so that a rule about an IPv4 range
 * also holds for the IPv6 spellings of its addresses.
 *
 * An address is four 32-bit words in network order: an IPv4 address `a` is
 * `[0, 0, 0xffff, a]` (its IPv4-mapped form) with `family` 4. The core's
 * addresses (src/wire's `IpAddress`: a number, or 8 code units) become
 * this form at the gateway's boundary, in one place: {@linkcode ipFromWire}
 * and {@linkcode ipToWire}.
 *
 * @module
 */

import {
  formatIpv4Address,
  type IpAddress as WireIpAddress,
  type Ipv4Address,
  ipv6FromGroups,
} from "../../wire/mod.ts";

/** An IPv4 or IPv6 address. */
export interface IpAddress {
  /** 4 for IPv4 (held in its IPv4-mapped form), 6 for IPv6. */
  readonly family: 4 | 6;
  /** The 128 bits as four u32 words, most significant first. */
  readonly words: readonly [number, number, number, number];
}

/**
 * The address of an IPv4 u32.
 *
 * @example
 * ```ts
 * ipFromV4(parseIpv4Address("127.0.0.1")).words; // [0, 0, 0xffff, 0x7f000001]
 * ```
 */
export function ipFromV4(v4: Ipv4Address): IpAddress {
  return { family: 4, words: [0, 0, 0xffff, v4 >>> 0] };
}

/**
 * The policy's form of a core address (src/wire's `IpAddress`: an IPv4
 * number or an IPv6 value of 8 code units), as the events of the stack's
 * egress carry them.
 *
 * @example
 * ```ts
 * ipFromWire(parseIpv6Address("2001:db8::10")).family; // 6
 * ipFromWire(0x7f000001).words; // [0, 0, 0xffff, 0x7f000001]
 * ```
 */
export function ipFromWire(addr: WireIpAddress): IpAddress {
  if (typeof addr === "number") return ipFromV4(addr);
  const g = (i: number) => addr.charCodeAt(i);
  const w = (i: number) => ((g(2 * i) << 16) | g(2 * i + 1)) >>> 0;
  return { family: 6, words: [w(0), w(1), w(2), w(3)] };
}

/**
 * The core's form of an address (the inverse of {@linkcode ipFromWire}):
 * an IPv4 number, or an IPv6 value of 8 code units.
 *
 * @example
 * ```ts
 * ipToWire(parseIpAddress("198.18.0.10")!); // 0xc612000a
 * ```
 */
export function ipToWire(ip: IpAddress): WireIpAddress {
  if (ip.family === 4) return ip.words[3] >>> 0;
  const g: number[] = [];
  for (const w of ip.words) g.push(w >>> 16, w & 0xffff);
  return ipv6FromGroups(g);
}

/**
 * `address:port` for a core address, an IPv6 address in brackets
 * (`[2001:db8::10]:80`, RFC 3986 §3.2.2), as the session view lists flows.
 *
 * @example
 * ```ts
 * formatEndpoint(0xc612000a, 80); // "198.18.0.10:80"
 * ```
 */
export function formatEndpoint(addr: WireIpAddress, port: number): string {
  return typeof addr === "number"
    ? `${formatIpv4Address(addr)}:${port}`
    : `[${formatIpAddress(ipFromWire(addr))}]:${port}`;
}

const V4_PART = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function parseV4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (!V4_PART.test(p)) return undefined;
    v = v * 256 + Number(p);
  }
  return v >>> 0;
}

function parseV6(text: string): IpAddress | undefined {
  if (text.length === 0 || text.length > 45) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (s: string): number[] | undefined => {
    if (s === "") return [];
    const out: number[] = [];
    const parts = s.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (i === parts.length - 1 && p.includes(".")) {
        const v4 = parseV4(p);
        if (v4 === undefined) return undefined;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) {
        out.push(parseInt(p, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return undefined;
  // A dotted quad may only end the address.
  if (halves.length === 2 && halves[0].includes(".")) return undefined;
  let all: number[];
  if (halves.length === 2) {
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return undefined;
    all = [...head, ...new Array(fill).fill(0), ...tail];
  } else {
    if (head.length !== 8) return undefined;
    all = head;
  }
  const w = (i: number) => ((all[2 * i] << 16) | all[2 * i + 1]) >>> 0;
  return { family: 6, words: [w(0), w(1), w(2), w(3)] };
}

/**
 * Parses a dotted-quad IPv4 address (no leading zeros, which some parsers
 * read as octal) or an IPv6 address (RFC 4291 §2.2, `::` and a trailing
 * dotted quad allowed, no zone). Returns undefined for anything else.
 *
 * @example
 * ```ts
 * parseIpAddress("10.0.0.1")?.family; // 4
 * parseIpAddress("::ffff:10.0.0.1")?.family; // 6 (its embedded IPv4 is 10.0.0.1)
 * parseIpAddress("010.0.0.1"); // undefined
 * ```
 */
export function parseIpAddress(text: string): IpAddress | undefined {
  if (text.includes(":")) return parseV6(text);
  const v4 = parseV4(text);
  return v4 === undefined ? undefined : ipFromV4(v4);
}

/**
 * The IPv4 address of an IPv4 address, or the one embedded in an IPv6
 * address that is IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible
 * (`::a.b.c.d`, but not `::` or `::1`) or NAT64 (`64:ff9b::a.b.c.d`);
 * undefined otherwise.
 *
 * @example
 * ```ts
 * embeddedIpv4(parseIpAddress("64:ff9b::7f00:1")!); // 0x7f000001
 * ```
 */
export function embeddedIpv4(ip: IpAddress): Ipv4Address | undefined {
  const [a, b, c, d] = ip.words;
  if (ip.family === 4) return d;
  if (a === 0 && b === 0 && c === 0xffff) return d;
  if (a === 0 && b === 0 && c === 0 && d > 1) return d;
  if (a === 0x0064ff9b && b === 0 && c === 0) return d;
  return undefined;
}

/**
 * The text form: a dotted quad for IPv4, RFC 5952 for IPv6 (lower case, the
 * longest run of two or more zero groups as `::`).
 *
 * @example
 * ```ts
 * formatIpAddress(parseIpAddress("2001:DB8:0:0:0:0:0:1")!); // "2001:db8::1"
 * ```
 */
export function formatIpAddress(ip: IpAddress): string {
  if (ip.family === 4) return formatIpv4Address(ip.words[3]);
  const g: number[] = [];
  for (const w of ip.words) g.push(w >>> 16, w & 0xffff);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** An address prefix: the first `prefixLength` bits (of 128; IPv4 prefixes start at bit 96). */
export interface IpCidr {
  /** The family the prefix was written in. */
  readonly family: 4 | 6;
  /** The network address (host bits cleared). */
  readonly base: IpAddress;
  /** Bits that must match, 0..128 (an IPv4 /n is 96 + n). */
  readonly prefixLength: number;
}

function maskWord(w: number, i: number, prefixLength: number): number {
  const bits = Math.max(0, Math.min(32, prefixLength - 32 * i));
  return bits === 0 ? 0 : bits === 32 ? w >>> 0 : (w & (~0 << (32 - bits))) >>> 0;
}

/**
 * Parses `ADDRESS[/LENGTH]` (IPv4 lengths 0..32, IPv6 0..128; no length is
 * the single address). Host bits are cleared. Returns undefined when
 * malformed.
 *
 * @example
 * ```ts
 * const c = parseIpCidr("198.18.0.0/15")!;
 * cidrContains(c, parseIpAddress("198.19.255.1")!); // true
 * ```
 */
export function parseIpCidr(text: string): IpCidr | undefined {
  const slash = text.indexOf("/");
  const addr = parseIpAddress(slash < 0 ? text : text.slice(0, slash));
  if (!addr) return undefined;
  const max = addr.family === 4 ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const l = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(l) || Number(l) > max) return undefined;
    len = Number(l);
  }
  const prefixLength = addr.family === 4 ? 96 + len : len;
  const words = addr.words.map((w, i) => maskWord(w, i, prefixLength)) as unknown as [
    number,
    number,
    number,
    number,
  ];
  return { family: addr.family, base: { family: addr.family, words }, prefixLength };
}

/**
 * Whether `ip` lies in `cidr` (an IPv4 prefix matches IPv4 addresses only,
 * an IPv6 prefix IPv6 addresses only; see {@linkcode embeddedIpv4} for the
 * IPv6 spellings of IPv4 addresses).
 *
 * @example
 * ```ts
 * cidrContains(parseIpCidr("fe80::/10")!, parseIpAddress("fe80::1")!); // true
 * ```
 */
export function cidrContains(cidr: IpCidr, ip: IpAddress): boolean {
  if (cidr.family !== ip.family) return false;
  for (let i = 0; i < 4; i++) {
    if (maskWord(ip.words[i], i, cidr.prefixLength) !== cidr.base.words[i]) return false;
  }
  return true;
}

/**
 * The text form of a prefix, e.g. `10.0.0.0/8` or `fc00::/7`.
 *
 * @example
 * ```ts
 * formatIpCidr(parseIpCidr("10.1.2.3/8")!); // "10.0.0.0/8"
 * ```
 */
export function formatIpCidr(cidr: IpCidr): string {
  const len = cidr.family === 4 ? cidr.prefixLength - 96 : cidr.prefixLength;
  return `${formatIpAddress(cidr.base)}/${len}`;
}
