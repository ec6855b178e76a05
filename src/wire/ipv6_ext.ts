/**
 * Walking the IPv6 extension-header chain (RFC 8200 §4) from the fixed
 * header to the upper-layer protocol, within limits: hop-by-hop options
 * (only first, §4.3), routing (§4.4), fragment (§4.5), destination options
 * (§4.6). A hostile chain (too many headers, too long, truncated, a
 * malformed option, hop-by-hop not first) yields a reason, never an
 * exception, and where RFC 8200 asks for an ICMPv6 parameter problem the
 * code and pointer to send.
 *
 * @module
 */

import { readU16, readU32 } from "./_bytes.ts";
import { IPV6_HEADER_LEN, type Ipv6Packet } from "./ipv6.ts";

/**
 * Next-header values (IANA "Assigned Internet Protocol Numbers") the walker
 * and the stack know.
 *
 * @example
 * ```ts
 * if (chain.protocol === Ipv6NextHeader.ICMPV6) icmpv6Input(chain.payload);
 * ```
 */
export const Ipv6NextHeader = {
  HOP_BY_HOP: 0,
  TCP: 6,
  UDP: 17,
  ROUTING: 43,
  FRAGMENT: 44,
  ESP: 50,
  AH: 51,
  ICMPV6: 58,
  NO_NEXT_HEADER: 59,
  DESTINATION_OPTIONS: 60,
} as const;

/**
 * Limits of {@linkcode walkIpv6Headers}. RFC 8504 §5.3 lets a node bound
 * the number of extension headers and the bytes of the chain; 8 headers
 * and 1 KiB are far beyond anything a legitimate sender uses.
 *
 * @example
 * ```ts
 * walkIpv6Headers(pkt, { maxHeaders: 4, maxChainBytes: 256 });
 * ```
 */
export interface Ipv6ExtLimits {
  /** Most extension headers before the upper layer. */
  maxHeaders: number;
  /** Most bytes of extension headers before the upper layer. */
  maxChainBytes: number;
}

/**
 * The default {@linkcode Ipv6ExtLimits}: 8 headers, 1024 bytes.
 *
 * @example
 * ```ts
 * const limits = { ...DEFAULT_IPV6_EXT_LIMITS, maxHeaders: 4 };
 * ```
 */
export const DEFAULT_IPV6_EXT_LIMITS: Readonly<Ipv6ExtLimits> = Object.freeze({
  maxHeaders: 8,
  maxChainBytes: 1024,
});

/** A (non-atomic) fragment header (RFC 8200 §4.5). */
export interface Ipv6Fragment {
  /** Fragment offset in bytes (a multiple of 8). */
  offset: number;
  /** The M flag: more fragments follow. */
  more: boolean;
  /** Identification. */
  ident: number;
}

/**
 * The chain of a packet as far as the walker went.
 *
 * @example
 * ```ts
 * const r = walkIpv6Headers(pkt);
 * if (r.ok && r.value.fragment === undefined) deliver(r.value.protocol, r.value.payload);
 * ```
 */
export interface Ipv6HeaderChain {
  /** The upper-layer protocol (or 59, no next header; or what follows a fragment header). */
  protocol: number;
  /** Offset in the packet of the byte naming `protocol` (the pointer of RFC 8200 §4 code 1). */
  protocolPointer: number;
  /** Offset in the packet where the upper-layer header starts. */
  offset: number;
  /** The upper-layer data (a view): `packet.bytes.subarray(offset)`. */
  payload: Uint8Array;
  /** Extension headers walked. */
  headers: number;
  /**
   * A fragment header that is not atomic: walking stopped at it and
   * `payload` is the fragment's data. Atomic fragments (offset 0, M clear,
   * RFC 6946) are walked through and leave this undefined.
   */
  fragment: Ipv6Fragment | undefined;
  /** The value of a hop-by-hop router alert option (RFC 2711; 0 is MLD), if any. */
  routerAlert: number | undefined;
}

/**
 * The ICMPv6 parameter problem RFC 8200 asks for about a rejected chain
 * (RFC 4443 §3.4): `code` 0 erroneous header field, 1 unrecognized next
 * header, 2 unrecognized option; `pointer` is the offset in the packet.
 * `unlessMulticast` marks an option whose type says "only if the
 * destination was not multicast" (RFC 8200 §4.2, action 11).
 */
export interface Ipv6ParamProblem {
  /** ICMPv6 parameter problem code. */
  code: number;
  /** Offset of the offending byte in the packet. */
  pointer: number;
  /** Send it only when the packet's destination was unicast. */
  unlessMulticast: boolean;
}

/**
 * The outcome of {@linkcode walkIpv6Headers}: the chain, or the reason to
 * drop the packet and, where RFC 8200 asks for one, the parameter problem
 * to answer with.
 *
 * @example
 * ```ts
 * const r = walkIpv6Headers(pkt);
 * if (!r.ok && r.paramProblem) sendParamProblem(r.paramProblem);
 * ```
 */
export type Ipv6ChainResult =
  | { ok: true; value: Ipv6HeaderChain }
  | { ok: false; reason: string; paramProblem?: Ipv6ParamProblem };

/**
 * Reasons {@linkcode walkIpv6Headers} rejects a chain.
 *
 * - `ipv6_ext_truncated`: a header runs past the packet.
 * - `ipv6_ext_too_many`: more headers than `maxHeaders`.
 * - `ipv6_ext_too_long`: more bytes of headers than `maxChainBytes`.
 * - `ipv6_ext_hop_by_hop_not_first`: hop-by-hop options after another
 *   header (RFC 8200 §4.1; parameter problem code 1).
 * - `ipv6_ext_bad_option`: an option runs past its header, or a router
 *   alert of the wrong length.
 * - `ipv6_ext_unknown_option`: an option whose type says discard
 *   (RFC 8200 §4.2; parameter problem code 2 for actions 10 and 11).
 * - `ipv6_ext_routing_unsupported`: a routing header with segments left
 *   (RFC 8200 §4.4; the stack forwards nothing; parameter problem code 0).
 *
 * @example
 * ```ts
 * const drops = new Map(IPV6_EXT_DROP_REASONS.map((r) => [r, 0]));
 * ```
 */
export const IPV6_EXT_DROP_REASONS: readonly string[] = Object.freeze([
  "ipv6_ext_truncated",
  "ipv6_ext_too_many",
  "ipv6_ext_too_long",
  "ipv6_ext_hop_by_hop_not_first",
  "ipv6_ext_bad_option",
  "ipv6_ext_unknown_option",
  "ipv6_ext_routing_unsupported",
]);

const OPT_PAD1 = 0;
const OPT_PADN = 1;
const OPT_ROUTER_ALERT = 5;

function reject(reason: string, problem?: Ipv6ParamProblem): Ipv6ChainResult {
  return problem ? { ok: false, reason, paramProblem: problem } : { ok: false, reason };
}

/**
 * Walks the extension headers of `pkt` (RFC 8200 §4) to the upper layer.
 * Work is bounded by `limits`; no input throws.
 *
 * @example
 * ```ts
 * const r = walkIpv6Headers(pkt);
 * if (!r.ok) drops[r.reason]++;
 * else if (r.value.fragment) reassemble(pkt, r.value);
 * else if (r.value.protocol === Ipv6NextHeader.ICMPV6) icmp(r.value.payload);
 * ```
 */
export function walkIpv6Headers(
  pkt: Ipv6Packet,
  limits: Ipv6ExtLimits = DEFAULT_IPV6_EXT_LIMITS,
): Ipv6ChainResult {
  const bytes = pkt.bytes;
  const len = bytes.length;
  let nh = bytes[6];
  let pointer = 6;
  let off = IPV6_HEADER_LEN;
  let headers = 0;
  let routerAlert: number | undefined;
  for (;;) {
    let hlen: number;
    switch (nh) {
      case Ipv6NextHeader.HOP_BY_HOP:
      case Ipv6NextHeader.DESTINATION_OPTIONS:
      case Ipv6NextHeader.ROUTING: {
        if (nh === Ipv6NextHeader.HOP_BY_HOP && headers !== 0) {
          return reject("ipv6_ext_hop_by_hop_not_first", {
            code: 1,
            pointer,
            unlessMulticast: false,
          });
        }
        if (off + 8 > len) return reject("ipv6_ext_truncated");
        hlen = (bytes[off + 1] + 1) * 8;
        break;
      }
      case Ipv6NextHeader.FRAGMENT:
        if (off + 8 > len) return reject("ipv6_ext_truncated");
        hlen = 8;
        break;
      default:
        return {
          ok: true,
          value: {
            protocol: nh,
            protocolPointer: pointer,
            offset: off,
            payload: bytes.subarray(off),
            headers,
            fragment: undefined,
            routerAlert,
          },
        };
    }
    if (headers >= limits.maxHeaders) return reject("ipv6_ext_too_many");
    if (off + hlen - IPV6_HEADER_LEN > limits.maxChainBytes) return reject("ipv6_ext_too_long");
    if (off + hlen > len) return reject("ipv6_ext_truncated");
    headers++;
    if (nh === Ipv6NextHeader.ROUTING) {
      // RFC 8200 §4.4: with segments left the packet would have to be forwarded.
      if (bytes[off + 3] !== 0) {
        return reject("ipv6_ext_routing_unsupported", {
          code: 0,
          pointer: off + 2,
          unlessMulticast: false,
        });
      }
    } else if (nh === Ipv6NextHeader.FRAGMENT) {
      const field = readU16(bytes, off + 2);
      const fragment = {
        offset: field & 0xfff8,
        more: (field & 1) !== 0,
        ident: readU32(bytes, off + 4),
      };
      if (fragment.offset !== 0 || fragment.more) {
        return {
          ok: true,
          value: {
            protocol: bytes[off],
            protocolPointer: off,
            offset: off + 8,
            payload: bytes.subarray(off + 8),
            headers,
            fragment,
            routerAlert,
          },
        };
      }
      // An atomic fragment (RFC 6946 §4): processed as if unfragmented.
    } else {
      // Options (RFC 8200 §4.2), each type-length-value but Pad1.
      const end = off + hlen;
      const hopByHop = nh === Ipv6NextHeader.HOP_BY_HOP;
      for (let i = off + 2; i < end;) {
        const type = bytes[i];
        if (type === OPT_PAD1) {
          i++;
          continue;
        }
        if (i + 2 > end || i + 2 + bytes[i + 1] > end) return reject("ipv6_ext_bad_option");
        const olen = bytes[i + 1];
        if (type === OPT_ROUTER_ALERT && hopByHop) {
          if (olen !== 2) return reject("ipv6_ext_bad_option");
          routerAlert = readU16(bytes, i + 2);
        } else if (type !== OPT_PADN) {
          switch (type >>> 6) {
            case 0:
              break; // skip over this option
            case 1:
              return reject("ipv6_ext_unknown_option");
            default:
              return reject("ipv6_ext_unknown_option", {
                code: 2,
                pointer: i,
                unlessMulticast: type >>> 6 === 3,
              });
          }
        }
        i += 2 + olen;
      }
    }
    nh = bytes[off];
    pointer = off;
    off += hlen;
  }
}
