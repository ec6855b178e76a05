/**
 * The address type both IP families share: an {@linkcode Ipv4Address} is a
 * number, an {@linkcode Ipv6Address} a string of 8 code units, so `typeof`
 * tells them apart, `===` compares either, and either is a `Map` key.
 *
 * The transports (TCP, UDP) carry their addresses as this type, so one
 * connection table and one checksum path serve both families.
 *
 * @module
 */

import { formatIpv4Address, type Ipv4Address, parseIpv4Address } from "./address.ts";
import { formatIpv6Address, type Ipv6Address, parseIpv6Address } from "./ipv6_address.ts";
import { ipv4PseudoHeaderSum } from "./checksum.ts";
import { ipv6PseudoHeaderSum } from "./ipv6.ts";

/**
 * An IPv4 or IPv6 address.
 *
 * @example
 * ```ts
 * const a: IpAddress = parseIpAddress("fd00::15");
 * if (isIpv6(a)) console.log("IPv6", formatIpAddress(a));
 * ```
 */
export type IpAddress = Ipv4Address | Ipv6Address;

/**
 * Whether `addr` is an IPv6 address (else it is IPv4).
 *
 * @example
 * ```ts
 * isIpv6(parseIpAddress("10.0.2.2")); // false
 * ```
 */
export function isIpv6(addr: IpAddress): addr is Ipv6Address {
  return typeof addr === "string";
}

/**
 * Parses either family's text form: IPv6 when it holds a `:`
 * ({@linkcode parseIpv6Address}), else a dotted quad ({@linkcode parseIpv4Address}).
 *
 * @throws {TypeError} when `text` is neither.
 * @example
 * ```ts
 * parseIpAddress("10.0.2.15"); // 0x0a00020f
 * parseIpAddress("fd00::15"); // an Ipv6Address
 * ```
 */
export function parseIpAddress(text: string): IpAddress {
  if (typeof text === "string" && text.includes(":")) return parseIpv6Address(text);
  return parseIpv4Address(text);
}

/**
 * Formats either family (RFC 5952 for IPv6).
 *
 * @example
 * ```ts
 * formatIpAddress(0x0a000202); // "10.0.2.2"
 * ```
 */
export function formatIpAddress(addr: IpAddress): string {
  return typeof addr === "string" ? formatIpv6Address(addr) : formatIpv4Address(addr);
}

/**
 * The partial sum of the pseudo-header of a UDP or TCP checksum for either
 * family: RFC 9293 §3.1 / RFC 768 for IPv4, RFC 8200 §8.1 for IPv6. Both
 * addresses must be of one family.
 *
 * @example
 * ```ts
 * const sum = ipPseudoHeaderSum(src, dst, IpProtocol.TCP, segment.length);
 * const valid = checksumFinish(checksumAdd(sum, segment)) === 0;
 * ```
 */
export function ipPseudoHeaderSum(
  src: IpAddress,
  dst: IpAddress,
  protocol: number,
  length: number,
): number {
  return typeof src === "string"
    ? ipv6PseudoHeaderSum(src, dst as Ipv6Address, protocol, length)
    : ipv4PseudoHeaderSum(src, dst as Ipv4Address, protocol, length);
}

/**
 * The size of the network header a transport segment travels behind: 20
 * bytes for IPv4 (no options), 40 for IPv6 (no extension headers). A TCP
 * MSS is the MTU less this and the 20-byte TCP header (RFC 9293 §3.7.1,
 * RFC 8200 §8.3).
 *
 * @example
 * ```ts
 * 1500 - ipHeaderLen(peer) - 20; // 1460 for IPv4, 1440 for IPv6
 * ```
 */
export function ipHeaderLen(addr: IpAddress): number {
  return typeof addr === "string" ? 40 : 20;
}

/**
 * An address given as text or as a value: a number is an IPv4 address; a
 * string is parsed as text when it is valid text (`"fd00::15"`,
 * `"10.0.2.15"`), else taken as an {@linkcode Ipv6Address} value when it has
 * 8 code units. (An `Ipv6Address` is a string too, so text wins: no on-link
 * address of a session's prefix spells valid text.)
 *
 * @throws {TypeError} when `value` is neither.
 * @example
 * ```ts
 * toIpAddress("fd00::15") === parseIpAddress("fd00::15"); // true
 * toIpAddress(parseIpAddress("fd00::15")) === parseIpAddress("fd00::15"); // true
 * ```
 */
export function toIpAddress(value: string | IpAddress): IpAddress {
  if (typeof value === "number") return value;
  try {
    return parseIpAddress(value);
  } catch (err) {
    if (typeof value === "string" && value.length === 8) return value as Ipv6Address;
    throw err;
  }
}
