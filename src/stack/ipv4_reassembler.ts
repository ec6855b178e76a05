/**
 * IPv4 fragment reassembly (RFC 791 §3.2, RFC 815) with hard limits on
 * memory, the number of datagrams in progress, fragments per datagram and
 * time (RFC 1122 §3.3.2).
 *
 * Policy, chosen to be simple and safe:
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
import { bufferCost, MemoryQuota } from "./session_quota.ts";

/** Limits of an {@linkcode Ipv4Reassembler}. */
export interface Ipv4ReassemblyLimits {
  /** Payload bytes held over all datagrams in progress; 1 MiB by default. */
  maxBytes: number;
  /** Datagrams in progress at once; 64 by default. */
  maxDatagrams: number;
  /** Fragments held per datagram; 64 by default (45 carry 65535 bytes at MTU 1500). */
  maxFragments: number;
  /** Milliseconds from a datagram's first fragment until it is given up; 30 s by default. */
  timeoutMs: number;
}

/** Default reassembly limits. */
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
export interface Ipv4ReassemblyStats {
  /** Datagrams completed and handed on. */
  completed: number;
  /** Datagrams given up after `timeoutMs` (RFC 1122 "reassembly timeout"). */
  timedOut: number;
  /** Datagrams discarded because of an overlap or an inconsistent length. */
  discarded: number;
}

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

interface Fragment {
  offset: number;
  data: Uint8Array;
}

interface Pending {
  key: string;
  src: Ipv4Address;
  dst: Ipv4Address;
  deadline: number;
  /** Sorted by offset, never overlapping. */
  frags: Fragment[];
  /** Total payload length, known once the last fragment (MF clear) arrived. */
  totalLen: number | undefined;
  /** The header of the offset-0 fragment, options included. */
  first: Uint8Array | undefined;
  bytes: number;
  /** What this datagram's copies cost the session's memory quota. */
  charged: number;
  linkBroadcast: boolean;
}

/** The largest IPv4 datagram. */
const MAX_DATAGRAM = 65535;

/**
 * Reassembles fragmented IPv4 datagrams. Never reads the time: `now` is
 * passed in; {@linkcode Ipv4Reassembler.poll} expires datagrams.
 *
 * @example
 * ```ts
 * const r = new Ipv4Reassembler();
 * const res = r.input(fragmentPacket, false, now);
 * if (res.kind === "complete") demux(res.datagram);
 * ```
 */
export class Ipv4Reassembler {
  /** The limits in force. */
  readonly limits: Ipv4ReassemblyLimits;
  /** Datagram outcomes. */
  readonly stats: Ipv4ReassemblyStats = { completed: 0, timedOut: 0, discarded: 0 };
  #pending = new Map<string, Pending>();
  #bytes = 0;
  #memory: MemoryQuota;

  /**
   * Creates a reassembler that charges its copies to `memory` (the session's
   * quota; unlimited when not given). Throws RangeError for a limit that is
   * not a positive integer.
   */
  constructor(limits: Partial<Ipv4ReassemblyLimits> = {}, memory?: MemoryQuota) {
    this.#memory = memory ?? new MemoryQuota(Number.MAX_SAFE_INTEGER);
    const l = { ...DEFAULT_IPV4_REASSEMBLY_LIMITS, ...limits };
    for (const [k, v] of Object.entries(l)) {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`Ipv4Reassembler: ${k} must be a positive integer, got ${v}`);
      }
    }
    this.limits = l;
  }

  /** Datagrams in progress. */
  get datagrams(): number {
    return this.#pending.size;
  }

  /** Payload bytes held. */
  get bytesHeld(): number {
    return this.#bytes;
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
    const end = offset + data.length;
    if (more && (data.length === 0 || data.length % 8 !== 0)) {
      return { kind: "dropped", reason: "ipv4_fragment_bad_length" };
    }
    if (offset === 8 && pkt.protocol === IpProtocol.TCP) {
      return { kind: "dropped", reason: "ipv4_fragment_tiny" };
    }
    if (end + pkt.headerLen > MAX_DATAGRAM) {
      return { kind: "dropped", reason: "ipv4_reassembly_too_big" };
    }
    const key = `${pkt.src}/${pkt.dst}/${pkt.protocol}/${pkt.ident}`;
    let p = this.#pending.get(key);
    if (p === undefined) {
      if (this.#pending.size >= this.limits.maxDatagrams) {
        return { kind: "dropped", reason: "ipv4_reassembly_full" };
      }
      p = {
        key,
        src: pkt.src,
        dst: pkt.dst,
        deadline: now + this.limits.timeoutMs,
        frags: [],
        totalLen: undefined,
        first: undefined,
        bytes: 0,
        charged: 0,
        linkBroadcast: false,
      };
    }
    // The last fragment fixes the length; fragments must stay within it.
    if (
      (!more && p.totalLen !== undefined && p.totalLen !== end) ||
      (p.totalLen !== undefined && end > p.totalLen) ||
      (!more && p.frags.length > 0 && p.frags[p.frags.length - 1].offset +
              p.frags[p.frags.length - 1].data.length > end)
    ) {
      this.#discard(p);
      return { kind: "dropped", reason: "ipv4_reassembly_overlap" };
    }
    // Find the insertion point and check both neighbours for overlap.
    const frags = p.frags;
    let i = 0;
    while (i < frags.length && frags[i].offset < offset) i++;
    const prev = i > 0 ? frags[i - 1] : undefined;
    const next = i < frags.length ? frags[i] : undefined;
    if (next && next.offset === offset && next.data.length === data.length) {
      if (bytesEqual(next.data, data)) {
        return { kind: "dropped", reason: "ipv4_reassembly_duplicate" };
      }
    }
    if (
      (prev && prev.offset + prev.data.length > offset) || (next && next.offset < end) ||
      (next && next.offset === offset)
    ) {
      this.#discard(p);
      return { kind: "dropped", reason: "ipv4_reassembly_overlap" };
    }
    if (
      frags.length >= this.limits.maxFragments || this.#bytes + data.length > this.limits.maxBytes
    ) {
      return { kind: "dropped", reason: "ipv4_reassembly_full" };
    }
    const cost = bufferCost(data.length) + (offset === 0 ? bufferCost(pkt.headerLen) : 0);
    if (!this.#memory.tryCharge(cost)) return { kind: "dropped", reason: "ipv4_reassembly_quota" };
    p.charged += cost;
    if (!this.#pending.has(key)) this.#pending.set(key, p);
    // Copies: the frame is borrowed.
    frags.splice(i, 0, { offset, data: data.slice() });
    p.bytes += data.length;
    this.#bytes += data.length;
    if (linkBroadcast) p.linkBroadcast = true;
    if (offset === 0) p.first = pkt.header.slice();
    if (!more) p.totalLen = end;
    // Complete when the fragments cover 0..totalLen without a hole.
    if (p.totalLen === undefined || p.first === undefined) return { kind: "stored" };
    let covered = 0;
    for (const f of frags) {
      if (f.offset !== covered) return { kind: "stored" };
      covered += f.data.length;
    }
    if (covered !== p.totalLen) return { kind: "stored" };
    const first = p.first;
    const hl = first.length;
    if (hl + p.totalLen > MAX_DATAGRAM) {
      // Possible when the first fragment carries more options than the last.
      this.#discard(p);
      return { kind: "dropped", reason: "ipv4_reassembly_too_big" };
    }
    this.#remove(p);
    this.stats.completed++;
    const out = new Uint8Array(hl + p.totalLen);
    out.set(first);
    for (const f of frags) out.set(f.data, hl + f.offset);
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
    return { kind: "complete", datagram: out, linkBroadcast: p.linkBroadcast };
  }

  /** The earliest deadline of a datagram in progress, or undefined. */
  nextDeadline(): number | undefined {
    let d: number | undefined;
    for (const p of this.#pending.values()) if (d === undefined || p.deadline < d) d = p.deadline;
    return d;
  }

  /** Gives up every datagram whose deadline is at or before `now` and returns them. */
  poll(now: number): ExpiredDatagram[] {
    const out: ExpiredDatagram[] = [];
    for (const p of [...this.#pending.values()]) {
      if (p.deadline > now) continue;
      this.#remove(p);
      this.stats.timedOut++;
      let firstFragment: Uint8Array | undefined;
      if (p.first) {
        const data = p.frags[0].data; // offset 0, since the first fragment arrived
        firstFragment = new Uint8Array(p.first.length + data.length);
        firstFragment.set(p.first);
        firstFragment.set(data, p.first.length);
      }
      out.push({ src: p.src, dst: p.dst, firstFragment });
    }
    return out;
  }

  #discard(p: Pending): void {
    if (this.#pending.get(p.key) !== p) return;
    this.#remove(p);
    this.stats.discarded++;
  }

  #remove(p: Pending): void {
    this.#pending.delete(p.key);
    this.#bytes -= p.bytes;
    this.#memory.release(p.charged);
    p.charged = 0;
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
