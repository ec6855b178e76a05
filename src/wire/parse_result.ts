/**
 * The result type returned by every wire parser, and the list of every drop
 * reason the parsers can produce.
 *
 * Hostile bytes never throw: a parser answers `{ ok: false, reason }` with a
 * snake_case reason prefixed by the protocol (`"ipv4_bad_checksum"`), which
 * the stack uses as the key of its drop counters.
 *
 * @module
 */

/**
 * The outcome of parsing untrusted bytes: the parsed value, or the reason the
 * input was rejected.
 *
 * @example
 * ```ts
 * import { EthernetFrame } from "./ethernet.ts";
 * const result = EthernetFrame.parse(new Uint8Array(10));
 * if (!result.ok) console.log(result.reason); // "ethernet_truncated"
 * ```
 */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/**
 * Wraps a successfully parsed value.
 *
 * @example
 * ```ts
 * const result = ok(42); // { ok: true, value: 42 }
 * ```
 */
export function ok<T>(value: T): ParseResult<T> {
  return { ok: true, value };
}

/**
 * Builds a rejection with a snake_case reason (one of {@link WIRE_DROP_REASONS}
 * for the wire parsers).
 *
 * @example
 * ```ts
 * const result = fail<number>("udp_truncated"); // { ok: false, reason: "udp_truncated" }
 * ```
 */
export function fail<T>(reason: string): ParseResult<T> {
  return { ok: false, reason };
}

/**
 * Every reason the parsers in `src/wire` can return, so that the stack can
 * pre-register one drop counter per reason.
 *
 * @example
 * ```ts
 * const drops = new Map(WIRE_DROP_REASONS.map((r) => [r, 0]));
 * ```
 */
export const WIRE_DROP_REASONS: readonly string[] = Object.freeze([
  "ethernet_truncated",
  "ethernet_not_ethernet_ii",
  "arp_truncated",
  "arp_unsupported_hardware",
  "arp_unsupported_protocol",
  "arp_unsupported_operation",
  "ipv4_truncated",
  "ipv4_bad_version",
  "ipv4_bad_header_len",
  "ipv4_bad_total_len",
  "ipv4_bad_checksum",
  "icmp_truncated",
  "icmp_bad_checksum",
  "udp_truncated",
  "udp_bad_length",
  "udp_bad_checksum",
  "tcp_truncated",
  "tcp_bad_data_offset",
  "tcp_bad_checksum",
  "tcp_bad_option",
  "ipv6_truncated",
  "ipv6_bad_version",
  "ipv6_bad_payload_len",
  "ipv6_ext_truncated",
  "ipv6_ext_too_many",
  "ipv6_ext_too_long",
  "ipv6_ext_hop_by_hop_not_first",
  "ipv6_ext_bad_option",
  "ipv6_ext_unknown_option",
  "ipv6_ext_routing_unsupported",
  "icmpv6_truncated",
  "icmpv6_bad_checksum",
  "ndp_truncated",
  "ndp_bad_code",
  "ndp_bad_option",
  "ndp_too_many_options",
  "ndp_multicast_target",
  "ndp_not_ndp",
  "mld_truncated",
  "mld_not_mld",
]);
