/**
 * IPv4 fragment reassembly (RFC 791 §3.2, RFC 815) with hard limits on
 * memory, the number of datagrams in progress, fragments per datagram and
 * time (RFC 1122 §3.3.2).
 *
 * The IPv4 glue over the shared `fragment_reassembler.ts` (which holds the
 * table, the overlap policy, the limits and the quota charges). Policy:
 * - Datagrams are keyed by (source, destination, protocol, identification).
 * - An exact duplicate of a held fragment (same offset, length and bytes) is
 *   dropped as `ipv4_reassembly_duplicate` and the datagram kept. Any other
 *   overlap discards the whole datagram (`ipv4_reassembly_overlap`), in the
 *   spirit of RFC 5722: overlapping fragments are an evasion technique, never
 *   produced by a correct sender.
 * - Every fragment but the last must carry a non-zero multiple of 8 bytes
 *   (`ipv4_fragment_bad_length`); a TCP fragment at offset 8 is refused
 *   (`ipv4_fragment_tiny`, RFC 1858 §4); a datagram may not exceed 65535
 *   bytes with its header (`ipv4_reassembly_too_big`).
 * - When the byte budget, the datagram count or the per-datagram fragment
 *   count is exhausted, the new fragment is refused (`ipv4_reassembly_full`);
 *   held datagrams are never evicted early, they time out.
 * - Fragments are copied out of their frames (frames are borrowed) and each
 *   copy is charged to the session's memory quota, `bufferCost` of its bytes
 *   (and of the first fragment's header copy), until its datagram completes,
 *   times out or is discarded; a refused charge drops the fragment
 *   (`ipv4_reassembly_quota`).
 *
 * A stored fragment counts as a handled frame; a datagram that later times
 * out or is discarded is counted in {@linkcode Ipv4Reassembler.stats}, not as
 * a frame drop, so `rxFrames === rxHandled + drops` holds.
 *
 * @module
 */

import { IpProtocol, type Ipv4Address, type Ipv4Packet } from "../wire/mod.ts";
import {
  assembleDatagram,
  FragmentReassembler,
  MAX_REASSEMBLED,
  type ReassemblyLimits,
  type ReassemblyStats,
} from "./fragment_reassembler.ts";
import type { MemoryQuota } from "./session_quota.ts";

/** Limits of an {@linkcode Ipv4Reassembler} (the shared {@linkcode ReassemblyLimits}). */
export type Ipv4ReassemblyLimits = ReassemblyLimits;

/** Default IPv4 reassembly limits: 1 MiB, 64 datagrams, 64 fragments each, 30 s. */
export const DEFAULT_IPV4_REASSEMBLY_LIMITS: Ipv4ReassemblyLimits = {
  maxBytes: 1 << 20,
  maxDatagrams: 64,
  maxFragments: 64,
  timeoutMs: 30_000,
};

/** Drop reasons of fragments (pre-registered as stack counters). */
export const IPV4_REASSEMBLY_DROP_REASONS: readonly string[] = [
  "ipv4_fragment_bad_length",
  "ipv4_fragment_tiny",
  "ipv4_reassembly_too_big",
  "ipv4_reassembly_duplicate",
  "ipv4_reassembly_overlap",
  "ipv4_reassembly_full",
  "ipv4_reassembly_quota",
];

/** What happened to datagrams (not frames) in the reassembler. */
export type Ipv4ReassemblyStats = ReassemblyStats;

/** A datagram given up at its deadline. */
export interface ExpiredDatagram {
  /** Source address of the datagram. */
  src: Ipv4Address;
  /** Destination address of the datagram. */
  dst: Ipv4Address;
  /** The first fragment (offset 0) as received, header included, if it arrived. */
  firstFragment: Uint8Array | undefined;
}

/** The result of {@linkcode Ipv4Reassembler.input}. */
export type ReassemblyResult =
  | { kind: "stored" }
  | { kind: "dropped"; reason: string }
  /** The reassembled datagram: the first fragment's header (fixed up) and the whole payload. */
  | { kind: "complete"; datagram: Uint8Array; linkBroadcast: boolean };

/**
 * Reassembles fragmented IPv4 datagrams: the IPv4 glue over the shared
 * {@linkcode FragmentReassembler}. Never reads the time: `now` is passed
 * in; {@linkcode Ipv4Reassembler.poll} expires datagrams.
 *
 * @example
 * ```ts
 * const r = new Ipv4Reassembler();
 * const res = r.input(fragmentPacket, false, now);
 * if (res.kind === "complete") demux(res.datagram);
 * ```
 */
export class Ipv4Reassembler {
  #core: FragmentReassembler<Ipv4Address>;

  /**
   * Creates a reassembler that charges its copies to `memory` (the session's
   * quota; unlimited when not given). Throws RangeError for a limit that is
   * not a positive integer.
   */
  constructor(limits: Partial<Ipv4ReassemblyLimits> = {}, memory?: MemoryQuota) {
    this.#core = new FragmentReassembler(
      "Ipv4Reassembler",
      { ...DEFAULT_IPV4_REASSEMBLY_LIMITS, ...limits },
      { family: "ipv4", headerExempt: 0 },
      memory,
    );
  }

  /** The limits in force. */
  get limits(): Ipv4ReassemblyLimits {
    return this.#core.limits;
  }

  /** Datagram outcomes. */
  get stats(): Ipv4ReassemblyStats {
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
   * Takes one fragment (a packet whose `isFragment` is true, header checksum
   * already verified). `linkBroadcast` tells whether it came in a link-layer
   * broadcast frame.
   */
  input(pkt: Ipv4Packet, linkBroadcast: boolean, now: number): ReassemblyResult {
    const offset = pkt.fragmentOffset;
    const data = pkt.payload;
    const more = pkt.moreFragments;
    if (more && (data.length === 0 || data.length % 8 !== 0)) {
      return { kind: "dropped", reason: "ipv4_fragment_bad_length" };
    }
    if (offset === 8 && pkt.protocol === IpProtocol.TCP) {
      return { kind: "dropped", reason: "ipv4_fragment_tiny" };
    }
    if (offset + data.length + pkt.headerLen > MAX_REASSEMBLED) {
      return { kind: "dropped", reason: "ipv4_reassembly_too_big" };
    }
    const r = this.#core.input({
      key: `${pkt.src}/${pkt.dst}/${pkt.protocol}/${pkt.ident}`,
      src: pkt.src,
      dst: pkt.dst,
      offset,
      more,
      data,
      header: pkt.header,
      linkBroadcast,
    }, now);
    if (r.kind !== "complete") return r;
    const out = assembleDatagram(r.datagram, r.datagram.header.length);
    const hl = r.datagram.header.length;
    const total = out.length;
    out[2] = total >>> 8;
    out[3] = total & 0xff;
    out[6] &= 0x40; // keep DF, clear MF and the offset
    out[7] = 0;
    out[10] = out[11] = 0;
    let sum = 0;
    for (let j = 0; j < hl; j += 2) sum += (out[j] << 8) | out[j + 1];
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    const ck = ~sum & 0xffff;
    out[10] = ck >>> 8;
    out[11] = ck & 0xff;
    return { kind: "complete", datagram: out, linkBroadcast: r.datagram.linkBroadcast };
  }

  /** The earliest deadline of a datagram in progress, or undefined. */
  nextDeadline(): number | undefined {
    return this.#core.nextDeadline();
  }

  /** Gives up every datagram whose deadline is at or before `now` and returns them. */
  poll(now: number): ExpiredDatagram[] {
    return this.#core.poll(now).map((e) => ({
      src: e.src,
      dst: e.dst,
      firstFragment: e.firstFragment,
    }));
  }
}
