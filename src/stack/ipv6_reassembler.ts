/**
 * IPv6 fragment reassembly (RFC 8200 §4.5): the IPv6 glue over the shared
 * `fragment_reassembler.ts`, which holds the table, the overlap policy, the
 * limits and the quota charges, as it does for IPv4.
 *
 * - Fragments are keyed by (source, destination, identification); the next
 *   header of the offset-0 fragment is what is delivered.
 * - Every fragment but the last carries a non-zero multiple of 8 bytes, else
 *   `ipv6_fragment_bad_length` and a parameter problem (code 0) pointing at
 *   the payload length field (RFC 8200 §4.5).
 * - A fragment that would make the reassembled payload longer than 65535
 *   bytes is `ipv6_reassembly_too_big`, with a parameter problem (code 0)
 *   pointing at its fragment offset field (RFC 8200 §4.5).
 * - A first fragment that does not hold the whole header chain up to and
 *   including the upper-layer header is `ipv6_fragment_incomplete_chain`,
 *   with a parameter problem code 3 (RFC 7112 §5, RFC 8200 §4.5).
 * - Any overlap discards the whole datagram silently (RFC 5722 §4); an exact
 *   duplicate is dropped alone (`ipv6_reassembly_duplicate`).
 * - A datagram not complete 60 s after its first-arrived fragment is given
 *   up; the stack then sends time exceeded code 1 if the offset-0 fragment
 *   arrived (RFC 8200 §4.5), never about a multicast packet.
 * - A fragment header inside a reassembled packet is
 *   `ipv6_fragment_nested`. Atomic fragments (RFC 6946) never get here: the
 *   header walker processes them as whole packets.
 *
 * The reassembled packet is the offset-0 fragment's unfragmentable part (its
 * next header set to the fragment header's) followed by the fragmentable
 * parts in order, with its payload length set: IPv6 input walks it again
 * with the same limits and hands it to the same upper-layer dispatch.
 *
 * @module
 */

import {
  type Ipv6Address,
  type Ipv6ExtLimits,
  type Ipv6HeaderChain,
  Ipv6NextHeader,
  Ipv6Packet,
  walkIpv6Headers,
} from "../wire/mod.ts";
import {
  assembleDatagram,
  type ExpiredFragments,
  FragmentReassembler,
  MAX_REASSEMBLED,
  type ReassemblyLimits,
  type ReassemblyStats,
} from "./fragment_reassembler.ts";
import type { MemoryQuota } from "./session_quota.ts";

/** Default IPv6 reassembly limits: 1 MiB, 64 datagrams, 64 fragments each, 60 s (RFC 8200 §4.5). */
export const DEFAULT_IPV6_REASSEMBLY_LIMITS: ReassemblyLimits = {
  maxBytes: 1 << 20,
  maxDatagrams: 64,
  maxFragments: 64,
  timeoutMs: 60_000,
};

/** Drop reasons of IPv6 fragments (pre-registered as stack counters). */
export const IPV6_REASSEMBLY_DROP_REASONS: readonly string[] = [
  "ipv6_fragment_bad_length",
  "ipv6_fragment_incomplete_chain",
  "ipv6_fragment_nested",
  "ipv6_reassembly_too_big",
  "ipv6_reassembly_duplicate",
  "ipv6_reassembly_overlap",
  "ipv6_reassembly_full",
  "ipv6_reassembly_quota",
];

/** ICMPv6 parameter problem code 3: first fragment has an incomplete header chain (RFC 7112 §7). */
export const PARAM_PROBLEM_INCOMPLETE_CHAIN = 3;

/** The result of {@linkcode Ipv6Reassembler.input}. */
export type Ipv6ReassemblyResult =
  | { kind: "stored" }
  /** `paramProblem`: what RFC 8200 §4.5 asks to answer the fragment with. */
  | { kind: "dropped"; reason: string; paramProblem?: { code: number; pointer: number } }
  /** The reassembled packet, and whether a fragment came in a link-layer multicast frame. */
  | { kind: "complete"; packet: Uint8Array; linkMulticast: boolean };

/** A datagram given up at its deadline. */
export type ExpiredIpv6Datagram = ExpiredFragments<Ipv6Address>;

/** Bytes of the fixed header and the fragment header: not counted toward the payload limit. */
const EXEMPT = 40 + 8;

/**
 * Upper-layer header bytes a first fragment must hold (RFC 7112 §5): the
 * fixed TCP and UDP headers and the ICMPv6 type, code and checksum.
 */
function upperHeaderLen(protocol: number): number {
  switch (protocol) {
    case Ipv6NextHeader.TCP:
      return 20;
    case Ipv6NextHeader.UDP:
      return 8;
    case Ipv6NextHeader.ICMPV6:
      return 4;
    default:
      return 0;
  }
}

/**
 * Turns `out`, whose first `fragStart` bytes are a fragment's
 * unfragmentable part, into an unfragmented packet: the byte that named the
 * fragment header now names `nextHeader`, the payload length covers `out`.
 * The headers before `fragStart` were checked by the walker.
 */
function finishUnfragmented(out: Uint8Array, fragStart: number, nextHeader: number): Uint8Array {
  let pointer = 6;
  let off = 40;
  while (off < fragStart) {
    const type = out[pointer];
    pointer = off;
    off += type === Ipv6NextHeader.FRAGMENT ? 8 : (out[off + 1] + 1) * 8;
  }
  out[pointer] = nextHeader;
  const len = out.length - 40;
  out[4] = len >>> 8;
  out[5] = len & 0xff;
  return out;
}

/**
 * Reassembles fragmented IPv6 packets addressed to the stack. Never reads
 * the time: `now` is passed in; {@linkcode Ipv6Reassembler.poll} expires
 * datagrams.
 *
 * @example
 * ```ts
 * const r = new Ipv6Reassembler({}, quota.memory);
 * const res = r.input(pkt, chain, false, now); // chain.fragment is set
 * if (res.kind === "complete") deliver(res.packet);
 * ```
 */
export class Ipv6Reassembler {
  #core: FragmentReassembler<Ipv6Address>;
  #extLimits: Ipv6ExtLimits | undefined;

  /**
   * Creates a reassembler that charges its copies to `memory` (the session's
   * quota; unlimited when not given) and checks first fragments' chains
   * within `extLimits`. Throws RangeError for a limit that is not a
   * positive integer.
   */
  constructor(
    limits: Partial<ReassemblyLimits> = {},
    memory?: MemoryQuota,
    extLimits?: Ipv6ExtLimits,
  ) {
    this.#core = new FragmentReassembler(
      "Ipv6Reassembler",
      { ...DEFAULT_IPV6_REASSEMBLY_LIMITS, ...limits },
      { family: "ipv6", headerExempt: EXEMPT },
      memory,
    );
    this.#extLimits = extLimits;
  }

  /** The limits in force. */
  get limits(): ReassemblyLimits {
    return this.#core.limits;
  }

  /** Datagram outcomes. */
  get stats(): ReassemblyStats {
    return this.#core.stats;
  }

  /** Datagrams in progress. */
  get datagrams(): number {
    return this.#core.datagrams;
  }

  /** Payload bytes held. */
  get bytesHeld(): number {
    return this.#core.bytesHeld;
  }

  /**
   * Takes one fragment: `pkt` and its walked `chain`, whose `fragment` is
   * set. `linkMulticast` tells whether it came in a link-layer multicast frame.
   */
  input(
    pkt: Ipv6Packet,
    chain: Ipv6HeaderChain,
    linkMulticast: boolean,
    now: number,
  ): Ipv6ReassemblyResult {
    const frag = chain.fragment!;
    const fragStart = chain.protocolPointer; // where the fragment header starts
    const data = chain.payload;
    const bytes = pkt.bytes;
    if (frag.more && (data.length === 0 || data.length % 8 !== 0)) {
      return {
        kind: "dropped",
        reason: "ipv6_fragment_bad_length",
        paramProblem: { code: 0, pointer: 4 },
      };
    }
    if (fragStart - 40 + frag.offset + data.length > MAX_REASSEMBLED) {
      return {
        kind: "dropped",
        reason: "ipv6_reassembly_too_big",
        paramProblem: { code: 0, pointer: fragStart + 2 },
      };
    }
    if (frag.offset === 0 && !this.#holdsChain(bytes, fragStart, data)) {
      return {
        kind: "dropped",
        reason: "ipv6_fragment_incomplete_chain",
        paramProblem: { code: PARAM_PROBLEM_INCOMPLETE_CHAIN, pointer: 0 },
      };
    }
    const r = this.#core.input({
      key: `${pkt.src}/${pkt.dst}/${frag.ident}`,
      src: pkt.src,
      dst: pkt.dst,
      offset: frag.offset,
      more: frag.more,
      data,
      header: bytes.subarray(0, fragStart + 8),
      linkBroadcast: linkMulticast,
    }, now);
    if (r.kind !== "complete") return r;
    const header = r.datagram.header;
    const start = header.length - 8;
    const out = assembleDatagram(r.datagram, start);
    return {
      kind: "complete",
      packet: finishUnfragmented(out, start, header[start]),
      linkMulticast: r.datagram.linkBroadcast,
    };
  }

  /** The earliest deadline of a datagram in progress, or undefined. */
  nextDeadline(): number | undefined {
    return this.#core.nextDeadline();
  }

  /**
   * Gives up every datagram whose deadline is at or before `now` and
   * returns them (with the offset-0 fragment as received, if it arrived).
   */
  poll(now: number): ExpiredIpv6Datagram[] {
    return this.#core.poll(now);
  }

  /**
   * RFC 7112 §5: whether a first fragment holds the whole header chain, up
   * to and including the upper-layer header; walked as the reassembled
   * packet will be, on a copy without the fragment header.
   */
  #holdsChain(bytes: Uint8Array, fragStart: number, data: Uint8Array): boolean {
    const probe = new Uint8Array(fragStart + data.length);
    probe.set(bytes.subarray(0, fragStart));
    probe.set(data, fragStart);
    const parsed = Ipv6Packet.parse(finishUnfragmented(probe, fragStart, bytes[fragStart]));
    if (!parsed.ok) return false;
    const walked = walkIpv6Headers(parsed.value, this.#extLimits);
    // Other faults of the chain are answered once the packet is whole.
    if (!walked.ok) return walked.reason !== "ipv6_ext_truncated";
    return walked.value.payload.length >= upperHeaderLen(walked.value.protocol);
  }
}
