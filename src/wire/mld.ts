/**
 * Multicast Listener Discovery, recognised (RFC 2710 §3 for MLDv1, RFC 3810
 * §5 for MLDv2): queries, reports and done messages are told apart and
 * their fixed fields read, enough for a node that listens to no group
 * beyond its own to accept them and do nothing.
 *
 * @module
 */

import { readU16 } from "./_bytes.ts";
import { type Icmpv6Packet, Icmpv6Type } from "./icmpv6.ts";
import { type Ipv6Address, readIpv6Unchecked } from "./ipv6_address.ts";
import { fail, ok, type ParseResult } from "./parse_result.ts";

/**
 * Whether an ICMPv6 type is an MLD message: query (130), MLDv1 report (131)
 * and done (132), MLDv2 report (143).
 *
 * @example
 * ```ts
 * isMldType(Icmpv6Type.MLDV2_REPORT); // true
 * ```
 */
export function isMldType(type: number): boolean {
  return type === Icmpv6Type.MLD_QUERY || type === Icmpv6Type.MLD_REPORT ||
    type === Icmpv6Type.MLD_DONE || type === Icmpv6Type.MLDV2_REPORT;
}

/**
 * An MLD message as a plain object.
 *
 * - query: `group` is :: for a general query; `maxResponseDelay` in ms
 *   (the raw code for MLDv2, RFC 3810 §5.1.3).
 * - report / done (MLDv1): the `group`.
 * - report_v2: how many multicast address records follow.
 *
 * @example
 * ```ts
 * const r = MldRepr.parse(pkt);
 * if (r.ok && r.value.type === "report_v2") console.log(r.value.records);
 * ```
 */
export type MldRepr =
  | { type: "query"; maxResponseDelay: number; group: Ipv6Address }
  | { type: "report" | "done"; group: Ipv6Address }
  | { type: "report_v2"; records: number };

/**
 * Decodes MLD messages (the checksum is the caller's to verify).
 *
 * @example
 * ```ts
 * if (isMldType(pkt.type)) MldRepr.parse(pkt); // accepted and ignored by the stack
 * ```
 */
export const MldRepr = {
  /**
   * Reads the fixed part of an MLD message.
   *
   * Reasons: `mld_truncated` (a query, report or done under 24 bytes, an
   * MLDv2 report under 8), `mld_not_mld` (another type).
   */
  parse(pkt: Icmpv6Packet): ParseResult<MldRepr> {
    const b = pkt.bytes;
    switch (b[0]) {
      case Icmpv6Type.MLDV2_REPORT:
        return ok({ type: "report_v2", records: readU16(b, 6) });
      case Icmpv6Type.MLD_QUERY:
      case Icmpv6Type.MLD_REPORT:
      case Icmpv6Type.MLD_DONE: {
        if (b.length < 24) return fail("mld_truncated");
        const group = readIpv6Unchecked(b, 8);
        if (b[0] === Icmpv6Type.MLD_QUERY) {
          return ok({ type: "query", maxResponseDelay: readU16(b, 4), group });
        }
        return ok({ type: b[0] === Icmpv6Type.MLD_REPORT ? "report" : "done", group });
      }
      default:
        return fail("mld_not_mld");
    }
  },
};
