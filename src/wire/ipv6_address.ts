/**
 * IPv6 addresses (RFC 4291): parsing, formatting (RFC 5952), classification,
 * prefixes, and the addresses derived from others (solicited-node multicast,
 * the multicast MAC, modified EUI-64 link-local, IPv4-mapped).
 *
 * An {@link Ipv6Address} is a string of exactly 8 UTF-16 code units, each
 * one 16-bit group in network order (`fd00::2` is
 * `"\ufd00\0\0\0\0\0\0\u0002"`), the way gVisor's netstack keeps an address
 * as a string of its bytes: reading one from a packet is one
 * `String.fromCharCode`, equality is `===`, it is a `Map` key as it is, and
 * `typeof` tells it from an {@linkcode Ipv4Address} (a number). It is not
 * text: show it with {@linkcode formatIpv6Address}. The type is branded so
 * that text cannot be passed where an address is meant.
 *
 * @module
 */

import {
  formatIpv4Address,
  type Ipv4Address,
  type MacAddress,
  parseIpv4Address,
} from "./address.ts";

declare const IPV6_BRAND: unique symbol;

/**
 * An IPv6 address: 8 UTF-16 code units, each a 16-bit group (RFC 4291 §2.2),
 * built only by this module's functions.
 *
 * @example
 * ```ts
 * const a: Ipv6Address = parseIpv6Address("fd00::2");
 * formatIpv6Address(a); // "fd00::2"
 * ```
 */
export type Ipv6Address = string & { readonly [IPV6_BRAND]: true };

/** Length of an IPv6 address in bytes. */
export const IPV6_ADDRESS_LEN = 16;

/**
 * An address from its eight 16-bit groups (each taken modulo 2^16).
 *
 * @throws {RangeError} when `groups` does not hold exactly 8 numbers.
 * @example
 * ```ts
 * ipv6FromGroups([0xfd00, 0, 0, 0, 0, 0, 0, 2]) === parseIpv6Address("fd00::2"); // true
 * ```
 */
export function ipv6FromGroups(groups: ArrayLike<number>): Ipv6Address {
  if (groups.length !== 8) {
    throw new RangeError(`ipv6FromGroups: expected 8 groups, got ${groups.length}`);
  }
  return String.fromCharCode(
    groups[0] & 0xffff,
    groups[1] & 0xffff,
    groups[2] & 0xffff,
    groups[3] & 0xffff,
    groups[4] & 0xffff,
    groups[5] & 0xffff,
    groups[6] & 0xffff,
    groups[7] & 0xffff,
  ) as Ipv6Address;
}

/**
 * Group `i` (0..7) of `addr`, a number in 0..0xffff.
 *
 * @example
 * ```ts
 * ipv6Group(parseIpv6Address("fd00::2"), 0); // 0xfd00
 * ```
 */
export function ipv6Group(addr: Ipv6Address, i: number): number {
  return addr.charCodeAt(i);
}

/**
 * Reads 16 bytes at `offset` as an address. Unchecked variant for codecs
 * that already checked the bounds; see {@linkcode readIpv6}.
 *
 * @example
 * ```ts
 * if (packet.length >= 40) readIpv6Unchecked(packet, 24); // the destination
 * ```
 */
export function readIpv6Unchecked(buf: Uint8Array, o: number): Ipv6Address {
  return String.fromCharCode(
    (buf[o] << 8) | buf[o + 1],
    (buf[o + 2] << 8) | buf[o + 3],
    (buf[o + 4] << 8) | buf[o + 5],
    (buf[o + 6] << 8) | buf[o + 7],
    (buf[o + 8] << 8) | buf[o + 9],
    (buf[o + 10] << 8) | buf[o + 11],
    (buf[o + 12] << 8) | buf[o + 13],
    (buf[o + 14] << 8) | buf[o + 15],
  ) as Ipv6Address;
}

/**
 * Reads the 16 bytes at `offset` as an address.
 *
 * @throws {RangeError} when `offset..offset+16` is outside `buf`.
 * @example
 * ```ts
 * const src = readIpv6(packet, 8); // the source address of an IPv6 header
 * ```
 */
export function readIpv6(buf: Uint8Array, offset: number): Ipv6Address {
  if (!(offset >= 0 && offset + IPV6_ADDRESS_LEN <= buf.length)) {
    throw new RangeError(`readIpv6: offset ${offset} is outside a ${buf.length}-byte buffer`);
  }
  return readIpv6Unchecked(buf, offset);
}

/**
 * Writes `addr` as 16 bytes at `offset`.
 *
 * @throws {RangeError} when `offset..offset+16` is outside `buf`;
 *   {TypeError} when `addr` is not an {@linkcode Ipv6Address}.
 * @example
 * ```ts
 * writeIpv6(header, 24, parseIpv6Address("fd00::15")); // the destination field
 * ```
 */
export function writeIpv6(buf: Uint8Array, offset: number, addr: Ipv6Address): void {
  if (!(offset >= 0 && offset + IPV6_ADDRESS_LEN <= buf.length)) {
    throw new RangeError(`writeIpv6: offset ${offset} is outside a ${buf.length}-byte buffer`);
  }
  if (!isIpv6Address(addr)) {
    throw new TypeError(`writeIpv6: expected an Ipv6Address, got ${String(addr)}`);
  }
  for (let i = 0; i < 8; i++) {
    const g = addr.charCodeAt(i);
    buf[offset + 2 * i] = g >>> 8;
    buf[offset + 2 * i + 1] = g;
  }
}

/**
 * The 16 bytes of `addr`, as a fresh array.
 *
 * @example
 * ```ts
 * ipv6ToBytes(parseIpv6Address("::1")); // Uint8Array [0, …, 0, 1]
 * ```
 */
export function ipv6ToBytes(addr: Ipv6Address): Uint8Array {
  const out = new Uint8Array(IPV6_ADDRESS_LEN);
  writeIpv6(out, 0, addr);
  return out;
}

/**
 * Whether `value` is an {@linkcode Ipv6Address} (a string of 8 code units).
 *
 * @example
 * ```ts
 * isIpv6Address(parseIpv6Address("::")); // true
 * isIpv6Address("fd00::2"); // false: text, not an address
 * ```
 */
export function isIpv6Address(value: unknown): value is Ipv6Address {
  return typeof value === "string" && value.length === 8;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/**
 * Parses the text form of RFC 4291 §2.2: eight groups of 1 to 4 hex digits
 * separated by `:`, one `::` standing for one or more zero groups, and
 * optionally the last 32 bits as a dotted quad (`::ffff:10.0.2.15`). Either
 * case. No zone (`%eth0`), no brackets, no prefix length, no whitespace.
 *
 * @throws {TypeError} when `text` is not such an address.
 * @example
 * ```ts
 * parseIpv6Address("fd00::2");
 * parseIpv6Address("::ffff:10.0.2.15"); // IPv4-mapped
 * ```
 */
export function parseIpv6Address(text: string): Ipv6Address {
  const groups = typeof text === "string" ? parseGroups(text) : undefined;
  if (groups === undefined) {
    throw new TypeError(`parseIpv6Address: invalid IPv6 address "${String(text)}"`);
  }
  return ipv6FromGroups(groups);
}

/** The groups of `text`, or undefined when it is not an address. */
function parseGroups(text: string): number[] | undefined {
  const n = text.length;
  if (n < 2 || n > 45) return undefined;
  const head: number[] = [];
  const tail: number[] = [];
  let out = head;
  let compressed = false;
  let i = 0;
  if (text.charCodeAt(0) === 0x3a) {
    // Only "::" may start an address.
    if (text.charCodeAt(1) !== 0x3a) return undefined;
    compressed = true;
    out = tail;
    i = 2;
    if (i === n) return [0, 0, 0, 0, 0, 0, 0, 0];
  }
  for (;;) {
    // One group, or a dotted quad in the last 32 bits.
    let value = 0;
    let digits = 0;
    const start = i;
    while (i < n && digits < 5) {
      const d = hexDigit(text.charCodeAt(i));
      if (d < 0) break;
      value = value * 16 + d;
      digits++;
      i++;
    }
    if (i < n && text.charCodeAt(i) === 0x2e) {
      // A dotted quad: the rest of the text, 2 groups, and nothing after it.
      let v4: Ipv4Address;
      try {
        v4 = parseIpv4Address(text.slice(start));
      } catch {
        return undefined;
      }
      out.push(v4 >>> 16, v4 & 0xffff);
      break;
    }
    if (digits === 0 || digits > 4) return undefined;
    out.push(value);
    if (i === n) break;
    if (text.charCodeAt(i) !== 0x3a) return undefined;
    i++;
    if (i < n && text.charCodeAt(i) === 0x3a) {
      if (compressed) return undefined;
      compressed = true;
      out = tail;
      i++;
      if (i === n) break;
    } else if (i === n) {
      return undefined; // a trailing single ":"
    }
  }
  const total = head.length + tail.length;
  if (compressed ? total > 7 : total !== 8) return undefined;
  const zeros = 8 - total;
  const groups = head.slice();
  for (let k = 0; k < zeros; k++) groups.push(0);
  for (const g of tail) groups.push(g);
  return groups;
}

/**
 * Formats `addr` as RFC 5952 §4 recommends: lowercase hex, no leading zeros,
 * the longest run of two or more zero groups (the first of equal runs)
 * written `::`; an IPv4-mapped address ends in a dotted quad (§5).
 *
 * @throws {TypeError} when `addr` is not an {@linkcode Ipv6Address}.
 * @example
 * ```ts
 * formatIpv6Address(parseIpv6Address("FD00:0:0:0:0:0:0:0002")); // "fd00::2"
 * formatIpv6Address(parseIpv6Address("2001:db8:0:1:1:1:1:1")); // "2001:db8:0:1:1:1:1:1"
 * ```
 */
export function formatIpv6Address(addr: Ipv6Address): string {
  if (!isIpv6Address(addr)) {
    throw new TypeError(`formatIpv6Address: expected an Ipv6Address, got ${String(addr)}`);
  }
  if (isIpv6Ipv4Mapped(addr)) {
    return "::ffff:" + formatIpv4Address(ipv6ToIpv4Mapped(addr)!);
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (addr.charCodeAt(i) !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && addr.charCodeAt(j) === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  let out = "";
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += i === 0 ? "::" : ":";
      i += bestLen - 1;
      continue;
    }
    out += addr.charCodeAt(i).toString(16);
    if (i < 7) out += ":";
  }
  return out;
}

/** The unspecified address `::` (RFC 4291 §2.5.2). */
export const IPV6_UNSPECIFIED: Ipv6Address = ipv6FromGroups([0, 0, 0, 0, 0, 0, 0, 0]);
/** The loopback address `::1` (RFC 4291 §2.5.3). */
export const IPV6_LOOPBACK: Ipv6Address = ipv6FromGroups([0, 0, 0, 0, 0, 0, 0, 1]);
/** All nodes on the link, `ff02::1` (RFC 4291 §2.7.1). */
export const IPV6_ALL_NODES: Ipv6Address = ipv6FromGroups([0xff02, 0, 0, 0, 0, 0, 0, 1]);
/** All routers on the link, `ff02::2` (RFC 4291 §2.7.1). */
export const IPV6_ALL_ROUTERS: Ipv6Address = ipv6FromGroups([0xff02, 0, 0, 0, 0, 0, 0, 2]);
/** All MLDv2-capable routers, `ff02::16` (RFC 3810 §5.2.14), where MLDv2 reports go. */
export const IPV6_ALL_MLDV2_ROUTERS: Ipv6Address = ipv6FromGroups([
  0xff02,
  0,
  0,
  0,
  0,
  0,
  0,
  0x16,
]);
/** All_DHCP_Relay_Agents_and_Servers, `ff02::1:2` (RFC 8415 §7.1). */
export const IPV6_ALL_DHCP_AGENTS: Ipv6Address = ipv6FromGroups([0xff02, 0, 0, 0, 0, 0, 1, 2]);
/** All_DHCP_Servers, `ff05::1:3` (RFC 8415 §7.1). */
export const IPV6_ALL_DHCP_SERVERS: Ipv6Address = ipv6FromGroups([0xff05, 0, 0, 0, 0, 0, 1, 3]);

/**
 * Whether `addr` is the unspecified address `::`.
 *
 * @example
 * ```ts
 * isIpv6Unspecified(IPV6_UNSPECIFIED); // true
 * ```
 */
export function isIpv6Unspecified(addr: Ipv6Address): boolean {
  return addr === IPV6_UNSPECIFIED;
}

/**
 * Whether `addr` is a multicast address, `ff00::/8` (RFC 4291 §2.7).
 *
 * @example
 * ```ts
 * isIpv6Multicast(IPV6_ALL_NODES); // true
 * ```
 */
export function isIpv6Multicast(addr: Ipv6Address): boolean {
  return (addr.charCodeAt(0) >>> 8) === 0xff;
}

/**
 * The scope of a multicast address (RFC 4291 §2.7): 1 interface-local, 2
 * link-local, 5 site-local, 8 organization-local, 0xe global.
 *
 * @example
 * ```ts
 * ipv6MulticastScope(IPV6_ALL_NODES); // 2
 * ```
 */
export function ipv6MulticastScope(addr: Ipv6Address): number {
  return addr.charCodeAt(0) & 0xf;
}

/**
 * Whether `addr` is a link-local unicast address, `fe80::/10` (RFC 4291 §2.5.6).
 *
 * @example
 * ```ts
 * isIpv6LinkLocal(parseIpv6Address("fe80::1")); // true
 * ```
 */
export function isIpv6LinkLocal(addr: Ipv6Address): boolean {
  return (addr.charCodeAt(0) & 0xffc0) === 0xfe80;
}

/**
 * Whether `addr` is the loopback address `::1` (RFC 4291 §2.5.3).
 *
 * @example
 * ```ts
 * isIpv6Loopback(IPV6_LOOPBACK); // true
 * ```
 */
export function isIpv6Loopback(addr: Ipv6Address): boolean {
  return addr === IPV6_LOOPBACK;
}

/**
 * Whether `addr` is a unique local address, `fc00::/7` (RFC 4193 §3).
 *
 * @example
 * ```ts
 * isIpv6UniqueLocal(parseIpv6Address("fd00::2")); // true
 * ```
 */
export function isIpv6UniqueLocal(addr: Ipv6Address): boolean {
  return (addr.charCodeAt(0) & 0xfe00) === 0xfc00;
}

/**
 * Whether `addr` is an IPv4-mapped address, `::ffff:0:0/96` (RFC 4291 §2.5.5.2).
 *
 * @example
 * ```ts
 * isIpv6Ipv4Mapped(parseIpv6Address("::ffff:10.0.2.15")); // true
 * ```
 */
export function isIpv6Ipv4Mapped(addr: Ipv6Address): boolean {
  return addr.charCodeAt(0) === 0 && addr.charCodeAt(1) === 0 && addr.charCodeAt(2) === 0 &&
    addr.charCodeAt(3) === 0 && addr.charCodeAt(4) === 0 && addr.charCodeAt(5) === 0xffff;
}

/**
 * The IPv4-mapped form `::ffff:a.b.c.d` of an IPv4 address (RFC 4291 §2.5.5.2).
 *
 * @example
 * ```ts
 * formatIpv6Address(ipv4ToIpv6Mapped(0x0a00020f)); // "::ffff:10.0.2.15"
 * ```
 */
export function ipv4ToIpv6Mapped(v4: Ipv4Address): Ipv6Address {
  return ipv6FromGroups([0, 0, 0, 0, 0, 0xffff, v4 >>> 16, v4 & 0xffff]);
}

/**
 * The IPv4 address inside an IPv4-mapped address, or undefined for any other.
 *
 * @example
 * ```ts
 * ipv6ToIpv4Mapped(parseIpv6Address("::ffff:10.0.2.15")); // 0x0a00020f
 * ```
 */
export function ipv6ToIpv4Mapped(addr: Ipv6Address): Ipv4Address | undefined {
  if (!isIpv6Ipv4Mapped(addr)) return undefined;
  return ((addr.charCodeAt(6) << 16) | addr.charCodeAt(7)) >>> 0;
}

/**
 * Whether `addr` is in the deprecated IPv4-compatible range `::/96` other
 * than `::` and `::1` (RFC 4291 §2.5.5.1).
 *
 * @example
 * ```ts
 * isIpv6Ipv4Compatible(parseIpv6Address("::10.0.2.15")); // true
 * ```
 */
export function isIpv6Ipv4Compatible(addr: Ipv6Address): boolean {
  for (let i = 0; i < 6; i++) if (addr.charCodeAt(i) !== 0) return false;
  return addr !== IPV6_UNSPECIFIED && addr !== IPV6_LOOPBACK;
}

/**
 * Whether `addr` may be the unicast address of a host on a link: not the
 * unspecified address, loopback, multicast, IPv4-mapped or IPv4-compatible
 * (RFC 4291 §2.5.2, §2.5.3, §2.5.5, §2.7).
 *
 * @example
 * ```ts
 * isIpv6Unicast(parseIpv6Address("fd00::15")); // true
 * isIpv6Unicast(IPV6_LOOPBACK); // false
 * ```
 */
export function isIpv6Unicast(addr: Ipv6Address): boolean {
  if (isIpv6Multicast(addr)) return false;
  for (let i = 0; i < 5; i++) if (addr.charCodeAt(i) !== 0) return true;
  // ::/80 holds ::, ::1, the IPv4-compatible and -mapped ranges and reserved space.
  return false;
}

/**
 * The netmask of a prefix length as 8 groups, for {@linkcode ipv6InPrefix}.
 */
function maskGroup(prefixLength: number, i: number): number {
  const bits = prefixLength - 16 * i;
  if (bits >= 16) return 0xffff;
  if (bits <= 0) return 0;
  return (0xffff << (16 - bits)) & 0xffff;
}

function checkPrefixLength(where: string, prefixLength: number): void {
  if (!(Number.isInteger(prefixLength) && prefixLength >= 0 && prefixLength <= 128)) {
    throw new RangeError(
      `${where}: prefixLength must be an integer in 0..128, got ${prefixLength}`,
    );
  }
}

/**
 * Whether `addr` lies in `prefix/prefixLength` (host bits of `prefix` are ignored).
 *
 * @throws {RangeError} when `prefixLength` is not an integer in 0..128.
 * @example
 * ```ts
 * ipv6InPrefix(parseIpv6Address("fd00::15"), parseIpv6Address("fd00::"), 64); // true
 * ```
 */
export function ipv6InPrefix(
  addr: Ipv6Address,
  prefix: Ipv6Address,
  prefixLength: number,
): boolean {
  checkPrefixLength("ipv6InPrefix", prefixLength);
  for (let i = 0; i * 16 < prefixLength; i++) {
    if (((addr.charCodeAt(i) ^ prefix.charCodeAt(i)) & maskGroup(prefixLength, i)) !== 0) {
      return false;
    }
  }
  return true;
}

/**
 * `addr` with its host bits (beyond `prefixLength`) cleared: the prefix.
 *
 * @throws {RangeError} when `prefixLength` is not an integer in 0..128.
 * @example
 * ```ts
 * formatIpv6Address(ipv6Prefix(parseIpv6Address("fd00::2"), 64)); // "fd00::"
 * ```
 */
export function ipv6Prefix(addr: Ipv6Address, prefixLength: number): Ipv6Address {
  checkPrefixLength("ipv6Prefix", prefixLength);
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(addr.charCodeAt(i) & maskGroup(prefixLength, i));
  return ipv6FromGroups(g);
}

/**
 * The solicited-node multicast address of `addr`, `ff02::1:ffXX:XXXX` with
 * its low 24 bits (RFC 4291 §2.7.1), where neighbour solicitations for it go.
 *
 * @example
 * ```ts
 * formatIpv6Address(ipv6SolicitedNode(parseIpv6Address("fd00::2"))); // "ff02::1:ff00:2"
 * ```
 */
export function ipv6SolicitedNode(addr: Ipv6Address): Ipv6Address {
  return ipv6FromGroups([
    0xff02,
    0,
    0,
    0,
    0,
    1,
    0xff00 | (addr.charCodeAt(6) & 0xff),
    addr.charCodeAt(7),
  ]);
}

/**
 * Whether `addr` is a solicited-node multicast address (`ff02::1:ff00:0/104`).
 *
 * @example
 * ```ts
 * isIpv6SolicitedNode(parseIpv6Address("ff02::1:ff00:2")); // true
 * ```
 */
export function isIpv6SolicitedNode(addr: Ipv6Address): boolean {
  return addr.charCodeAt(0) === 0xff02 && addr.charCodeAt(1) === 0 && addr.charCodeAt(2) === 0 &&
    addr.charCodeAt(3) === 0 && addr.charCodeAt(4) === 0 && addr.charCodeAt(5) === 1 &&
    (addr.charCodeAt(6) & 0xff00) === 0xff00;
}

/**
 * The Ethernet MAC a multicast address maps to, `33:33` and its low 32 bits
 * (RFC 2464 §7), as a fresh array.
 *
 * @example
 * ```ts
 * ipv6MulticastMac(IPV6_ALL_NODES); // 33:33:00:00:00:01
 * ```
 */
export function ipv6MulticastMac(addr: Ipv6Address): MacAddress {
  const g6 = addr.charCodeAt(6);
  const g7 = addr.charCodeAt(7);
  return new Uint8Array([0x33, 0x33, g6 >>> 8, g6 & 0xff, g7 >>> 8, g7 & 0xff]);
}

/**
 * The link-local address `fe80::/64` with the modified EUI-64 interface
 * identifier of `mac`: `ff:fe` inserted in the middle and the
 * universal/local bit inverted (RFC 4291 §2.5.1 and appendix A, RFC 2464 §4, §5).
 *
 * @throws {TypeError} when `mac` is not 6 bytes.
 * @example
 * ```ts
 * formatIpv6Address(ipv6LinkLocalFromMac(parseMacAddress("52:54:00:12:34:56")));
 * // "fe80::5054:ff:fe12:3456"
 * ```
 */
export function ipv6LinkLocalFromMac(mac: MacAddress): Ipv6Address {
  if (!(mac instanceof Uint8Array) || mac.length !== 6) {
    throw new TypeError(`ipv6LinkLocalFromMac: expected 6 bytes, got ${String(mac)}`);
  }
  return ipv6FromGroups([
    0xfe80,
    0,
    0,
    0,
    ((mac[0] ^ 0x02) << 8) | mac[1],
    (mac[2] << 8) | 0xff,
    0xfe00 | mac[3],
    (mac[4] << 8) | mac[5],
  ]);
}

/**
 * Whether `src` is a martian source address for a host owning `own`: one
 * that names no sender on the link (RFC 4291 §2.5.2, §2.5.3, §2.5.5, §2.7;
 * RFC 4942 §2.1.4, §2.1.6): multicast, loopback, IPv4-mapped or
 * IPv4-compatible, or one of the host's own addresses. The unspecified
 * address is not judged here: it is a legal source of the messages a node
 * sends before it has an address (RFC 4861 §4.1, §4.3; RFC 3810 §5.2.13)
 * and nothing else, which only the message's type tells.
 *
 * @example
 * ```ts
 * const own = [parseIpv6Address("fd00::2")];
 * isIpv6MartianSource(parseIpv6Address("ff02::1"), own); // true
 * isIpv6MartianSource(parseIpv6Address("fd00::15"), own); // false
 * ```
 */
export function isIpv6MartianSource(src: Ipv6Address, own: readonly Ipv6Address[]): boolean {
  if (src === IPV6_UNSPECIFIED) return false;
  if (!isIpv6Unicast(src)) return true;
  for (const a of own) if (a === src) return true;
  return false;
}
