/**
 * IPv6 addresses (RFC 4291): the type, reading and writing the 16 bytes,
 * parsing (RFC 4291 §2.2) and formatting (RFC 5952), and the IPv4-mapped
 * form. Well-known addresses, classes and derived addresses are in
 * `ipv6_address_kinds.ts`.
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

import { formatIpv4Address, type Ipv4Address, parseIpv4Address } from "./address.ts";

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
 * Whether the 16 bytes at `buf[o..]` (in bounds: unchecked) are `addr`:
 * lets a hot path reuse an address string it already holds instead of
 * making a new one per packet.
 *
 * @example
 * ```ts
 * const src = ipv6BytesEqual(packet, 8, last) ? last : readIpv6Unchecked(packet, 8);
 * ```
 */
export function ipv6BytesEqual(buf: Uint8Array, o: number, addr: Ipv6Address): boolean {
  for (let i = 0; i < 8; i++) {
    if (((buf[o + 2 * i] << 8) | buf[o + 2 * i + 1]) !== addr.charCodeAt(i)) return false;
  }
  return true;
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
