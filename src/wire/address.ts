/**
 * IPv4 and Ethernet MAC addresses: parsing, formatting, subnet arithmetic and
 * big-endian helpers.
 *
 * An {@link Ipv4Address} is a plain unsigned 32-bit number (always `>>> 0`),
 * so comparisons and map keys are cheap. A {@link MacAddress} is a 6-byte
 * `Uint8Array`.
 *
 * @module
 */

import { checkUint } from "./_validate.ts";

/**
 * An IPv4 address as an unsigned 32-bit number in network order
 * (`10.0.2.2` is `0x0a000202`), always normalised with `>>> 0` (RFC 791 §2.3).
 */
export type Ipv4Address = number;

/** An IEEE 802 MAC address: exactly 6 bytes. */
export type MacAddress = Uint8Array;

/**
 * Parses a strict dotted-quad IPv4 address: four decimal octets 0..255, no
 * leading zeros (except a lone `"0"`), no whitespace.
 *
 * @throws {TypeError} when `text` is not a dotted quad.
 * @example
 * ```ts
 * parseIpv4Address("10.0.2.2"); // 0x0a000202
 * ```
 */
export function parseIpv4Address(text: string): Ipv4Address {
  if (typeof text !== "string") {
    throw new TypeError(`parseIpv4Address: expected a string, got ${String(text)}`);
  }
  let addr = 0;
  let octets = 0;
  let i = 0;
  const n = text.length;
  while (i <= n && octets < 4) {
    const start = i;
    let value = 0;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c < 0x30 || c > 0x39) break;
      value = value * 10 + (c - 0x30);
      i++;
    }
    const digits = i - start;
    if (
      digits === 0 || digits > 3 || value > 255 || (digits > 1 && text.charCodeAt(start) === 0x30)
    ) {
      break;
    }
    addr = addr * 256 + value;
    octets++;
    if (octets === 4) {
      if (i === n) return addr >>> 0;
      break;
    }
    if (i >= n || text.charCodeAt(i) !== 0x2e) break;
    i++;
  }
  throw new TypeError(`parseIpv4Address: invalid IPv4 address "${text}"`);
}

/**
 * Formats an IPv4 address as a dotted quad.
 *
 * @throws {RangeError} when `addr` is not an integer in 0..2^32-1.
 * @example
 * ```ts
 * formatIpv4Address(0x0a000202); // "10.0.2.2"
 * ```
 */
export function formatIpv4Address(addr: Ipv4Address): string {
  checkUint("formatIpv4Address", "addr", addr, 0xffffffff);
  return `${addr >>> 24}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

/**
 * The netmask of a prefix length (RFC 4632 §3.1).
 *
 * @throws {RangeError} when `prefixLength` is not an integer in 0..32.
 * @example
 * ```ts
 * ipv4Netmask(24); // 0xffffff00
 * ```
 */
export function ipv4Netmask(prefixLength: number): Ipv4Address {
  checkUint("ipv4Netmask", "prefixLength", prefixLength, 32);
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

/**
 * Whether `addr` lies in `network/prefixLength` (host bits of `network` are
 * ignored).
 *
 * @throws {RangeError} when `prefixLength` is not an integer in 0..32.
 * @example
 * ```ts
 * ipv4InSubnet(parseIpv4Address("10.0.2.15"), parseIpv4Address("10.0.2.0"), 24); // true
 * ```
 */
export function ipv4InSubnet(
  addr: Ipv4Address,
  network: Ipv4Address,
  prefixLength: number,
): boolean {
  return ((addr ^ network) & ipv4Netmask(prefixLength)) === 0;
}

/**
 * The directed broadcast address of the subnet `addr/prefixLength`
 * (RFC 919 §7, RFC 1122 §3.2.1.3): all host bits set.
 *
 * @throws {RangeError} when `prefixLength` is not an integer in 0..32.
 * @example
 * ```ts
 * formatIpv4Address(ipv4SubnetBroadcast(parseIpv4Address("10.0.2.2"), 24)); // "10.0.2.255"
 * ```
 */
export function ipv4SubnetBroadcast(addr: Ipv4Address, prefixLength: number): Ipv4Address {
  return (addr | ~ipv4Netmask(prefixLength)) >>> 0;
}

/**
 * The limited broadcast address 255.255.255.255 (RFC 919 §7).
 *
 * @example
 * ```ts
 * formatIpv4Address(IPV4_BROADCAST); // "255.255.255.255"
 * ```
 */
export const IPV4_BROADCAST: Ipv4Address = 0xffffffff;

/**
 * Whether `addr` is a class D multicast address, 224.0.0.0/4 (RFC 5771).
 *
 * @example
 * ```ts
 * isIpv4Multicast(parseIpv4Address("224.0.0.1")); // true
 * ```
 */
export function isIpv4Multicast(addr: Ipv4Address): boolean {
  return (addr >>> 28) === 0xe;
}

/**
 * Whether `addr` may be a unicast host address anywhere (RFC 1122 §3.2.1.3,
 * RFC 1812 §5.3.7): not in 0.0.0.0/8 ("this network"), 127.0.0.0/8
 * (loopback), 224.0.0.0/4 (multicast) or 240.0.0.0/4 (class E, the limited
 * broadcast 255.255.255.255 included).
 *
 * @example
 * ```ts
 * isIpv4Unicast(parseIpv4Address("10.0.2.15")); // true
 * isIpv4Unicast(parseIpv4Address("127.0.0.1")); // false
 * ```
 */
export function isIpv4Unicast(addr: Ipv4Address): boolean {
  const first = addr >>> 24;
  return first !== 0 && first !== 127 && first < 224;
}

/**
 * Whether `src` is a martian source for a host at `own` on a subnet of
 * `prefixLength` bits: not unicast ({@linkcode isIpv4Unicast}), the host's own
 * address, or the subnet's network or broadcast address (RFC 1812 §5.3.7,
 * RFC 1122 §3.2.1.3). Packets from such sources create no connection,
 * datagram delivery or ARP entry.
 *
 * @example
 * ```ts
 * const own = parseIpv4Address("10.0.2.2");
 * isIpv4MartianSource(parseIpv4Address("10.0.2.255"), own, 24); // true
 * isIpv4MartianSource(parseIpv4Address("10.0.2.15"), own, 24); // false
 * ```
 */
export function isIpv4MartianSource(
  src: Ipv4Address,
  own: Ipv4Address,
  prefixLength: number,
): boolean {
  if (!isIpv4Unicast(src) || src === own) return true;
  if (prefixLength >= 31) return false; // RFC 3021: /31 links have no network or broadcast address
  const mask = ipv4Netmask(prefixLength);
  const network = (own & mask) >>> 0;
  return src === network || src === ipv4SubnetBroadcast(own, prefixLength);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/**
 * Parses a MAC address written as six two-digit hex groups separated by `:`
 * or `-` (one separator throughout), in either case.
 *
 * @throws {TypeError} when `text` is not such an address.
 * @example
 * ```ts
 * parseMacAddress("02:00:00:00:00:01"); // Uint8Array [2, 0, 0, 0, 0, 1]
 * ```
 */
export function parseMacAddress(text: string): MacAddress {
  if (typeof text === "string" && text.length === 17) {
    const sep = text.charCodeAt(2);
    if (sep === 0x3a || sep === 0x2d) {
      const mac = new Uint8Array(6);
      let i = 0;
      for (; i < 6; i++) {
        const p = i * 3;
        const hi = hexValue(text.charCodeAt(p));
        const lo = hexValue(text.charCodeAt(p + 1));
        if (hi < 0 || lo < 0 || (i < 5 && text.charCodeAt(p + 2) !== sep)) break;
        mac[i] = (hi << 4) | lo;
      }
      if (i === 6) return mac;
    }
  }
  throw new TypeError(`parseMacAddress: invalid MAC address "${String(text)}"`);
}

const HEX = "0123456789abcdef";

/**
 * Formats the first 6 bytes of `mac` as lowercase, colon-separated hex.
 *
 * @throws {TypeError} when `mac` is shorter than 6 bytes.
 * @example
 * ```ts
 * formatMacAddress(new Uint8Array([2, 0, 0, 0, 0, 0xab])); // "02:00:00:00:00:ab"
 * ```
 */
export function formatMacAddress(mac: Uint8Array): string {
  if (!(mac instanceof Uint8Array) || mac.length < 6) {
    throw new TypeError(`formatMacAddress: expected 6 bytes, got ${String(mac)}`);
  }
  let out = "";
  for (let i = 0; i < 6; i++) {
    if (i > 0) out += ":";
    out += HEX[mac[i] >>> 4] + HEX[mac[i] & 0xf];
  }
  return out;
}

/**
 * The Ethernet broadcast address ff:ff:ff:ff:ff:ff. Shared: never mutate it.
 *
 * @example
 * ```ts
 * formatMacAddress(BROADCAST_MAC); // "ff:ff:ff:ff:ff:ff"
 * ```
 */
export const BROADCAST_MAC: MacAddress = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

/**
 * Whether the first 6 bytes of `a` and `b` are equal.
 *
 * @example
 * ```ts
 * macEquals(parseMacAddress("ff-ff-ff-ff-ff-ff"), BROADCAST_MAC); // true
 * ```
 */
export function macEquals(a: Uint8Array, b: Uint8Array): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3] && a[4] === b[4] &&
    a[5] === b[5];
}

/**
 * Whether `mac` is ff:ff:ff:ff:ff:ff.
 *
 * @example
 * ```ts
 * isBroadcastMac(BROADCAST_MAC); // true
 * ```
 */
export function isBroadcastMac(mac: Uint8Array): boolean {
  return (mac[0] & mac[1] & mac[2] & mac[3] & mac[4] & mac[5]) === 0xff;
}

/**
 * Whether the group (I/G) bit of `mac` is set (IEEE 802 §8.2): multicast,
 * including broadcast.
 *
 * @example
 * ```ts
 * isMulticastMac(parseMacAddress("01:00:5e:00:00:01")); // true
 * ```
 */
export function isMulticastMac(mac: Uint8Array): boolean {
  return (mac[0] & 0x01) !== 0;
}

/**
 * A random locally administered (U/L bit 0x02 set), unicast (I/G bit 0x01
 * clear) MAC address, as a fresh 6-byte array.
 *
 * @param random fills its argument with random bytes, e.g.
 *   `(b) => crypto.getRandomValues(b)` or a seeded PRNG's `fill`.
 * @example
 * ```ts
 * const mac = randomLocalMac((b) => crypto.getRandomValues(b)); // e.g. 02:..., 4e:..., fa:...
 * ```
 */
export function randomLocalMac(random: (buf: Uint8Array) => void): MacAddress {
  const mac = new Uint8Array(6);
  random(mac);
  mac[0] = (mac[0] & 0xfc) | 0x02;
  return mac;
}

/**
 * Reads a big-endian u32 (an IPv4 address) at `offset`.
 *
 * @throws {RangeError} when `offset..offset+4` is outside `buf`.
 * @example
 * ```ts
 * readIpv4(new Uint8Array([10, 0, 2, 2]), 0); // 0x0a000202
 * ```
 */
export function readIpv4(buf: Uint8Array, offset: number): Ipv4Address {
  if (!(offset >= 0 && offset + 4 <= buf.length)) {
    throw new RangeError(`readIpv4: offset ${offset} is outside a ${buf.length}-byte buffer`);
  }
  return ((buf[offset] << 24) | (buf[offset + 1] << 16) | (buf[offset + 2] << 8) |
    buf[offset + 3]) >>> 0;
}

/**
 * Writes `addr` big-endian at `offset`.
 *
 * @throws {RangeError} when `offset..offset+4` is outside `buf` or `addr` is
 *   not a u32.
 * @example
 * ```ts
 * const buf = new Uint8Array(4);
 * writeIpv4(buf, 0, parseIpv4Address("10.0.2.2")); // buf = [10, 0, 2, 2]
 * ```
 */
export function writeIpv4(buf: Uint8Array, offset: number, addr: Ipv4Address): void {
  if (!(offset >= 0 && offset + 4 <= buf.length)) {
    throw new RangeError(`writeIpv4: offset ${offset} is outside a ${buf.length}-byte buffer`);
  }
  checkUint("writeIpv4", "addr", addr, 0xffffffff);
  buf[offset] = addr >>> 24;
  buf[offset + 1] = addr >>> 16;
  buf[offset + 2] = addr >>> 8;
  buf[offset + 3] = addr;
}
