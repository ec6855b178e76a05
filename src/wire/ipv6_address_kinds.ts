/**
 * Well-known IPv6 addresses (RFC 4291 §2.5, §2.7.1), the classes of an
 * address (unspecified, loopback, multicast and its scope, link-local,
 * unique local, IPv4-compatible, unicast), prefixes, and the addresses
 * derived from others: solicited-node multicast, the multicast MAC, the
 * modified EUI-64 link-local address of a MAC; and what is a martian source.
 *
 * @module
 */

import type { MacAddress } from "./address.ts";
import { type Ipv6Address, ipv6FromGroups } from "./ipv6_address.ts";

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
