/**
 * The address type both IP families share: an {@linkcode Ipv4Address} is a
 * number, an {@linkcode Ipv6Address} a string of 8 code units, so `typeof`
 * tells them apart, `===` compares either, and either is a `Map` key.
 *
 * Not re-exported by `mod.ts` yet: the egress policy has an `IpAddress` of
 * its own (`src/apps/egress/ip_address.ts`, four words); the two meet when
 * TCP and UDP run over IPv6.
 *
 * @module
 */

import { formatIpv4Address, type Ipv4Address, parseIpv4Address } from "./address.ts";
import { formatIpv6Address, type Ipv6Address, parseIpv6Address } from "./ipv6_address.ts";

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
