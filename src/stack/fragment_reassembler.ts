/**
 * Fragment reassembly shared by IPv4 and IPv6 (RFC 815, RFC 791 §3.2,
 * RFC 8200 §4.5): the table of datagrams in progress, their fragments by
 * offset, the overlap policy, the limits on memory, datagrams, fragments
 * per datagram and time, and the charges to the session's memory quota.
 * What differs per family (the key, the checks of a single fragment, the
 * header of the reassembled packet) lives in the thin glue of
 * `ipv4_reassembler.ts` and `ipv6_reassembler.ts`.
 *
 * Policy, chosen to be simple and safe:
 * - An exact duplicate of a held fragment (same offset, length and bytes) is
 *   dropped as `<family>_reassembly_duplicate` and the datagram kept. Any
 *   other overlap discards the whole datagram (`<family>_reassembly_overlap`),
 *   as RFC 5722 asks for IPv6: overlapping fragments are an evasion
 *   technique, never produced by a correct sender.
 * - When the byte budget, the datagram count or the per-datagram fragment
 *   count is exhausted, the new fragment is refused
 *   (`<family>_reassembly_full`); held datagrams are never evicted early,
 *   they time out.
 * - Fragments are copied out of their frames (frames are borrowed) and each
 *   copy is charged to the session's memory quota, `bufferCost` of its bytes
 *   (and of the first fragment's header copy), until its datagram completes,
 *   times out or is discarded; a refused charge drops the fragment
 *   (`<family>_reassembly_quota`).
 *
 * A stored fragment counts as a handled frame; a datagram that later times
 * out or is discarded is counted in {@linkcode FragmentReassembler.stats},
 * not as a frame drop, so `rxFrames === rxHandled + drops` holds.
 *
 * @module
 */

import { bufferCost, MemoryQuota } from "./session_quota.ts";

/** Limits of a reassembler. */
export interface ReassemblyLimits {
  /** Payload bytes held over all datagrams in progress; 1 MiB by default. */
  maxBytes: number;
  /** Datagrams in progress at once; 64 by default. */
  maxDatagrams: number;
  /** Fragments held per datagram; 64 by default (45 carry 65535 bytes at MTU 1500). */
  maxFragments: number;
  /** Milliseconds from a datagram's first fragment until it is given up. */
  timeoutMs: number;
}

/** What happened to datagrams (not frames) in a reassembler. */
export interface ReassemblyStats {
  /** Datagrams completed and handed on. */
  completed: number;
  /** Datagrams given up after `timeoutMs`. */
  timedOut: number;
  /** Datagrams discarded because of an overlap or an inconsistent length. */
  discarded: number;
}

/** A datagram given up at its deadline. */
export interface ExpiredFragments<A> {
  /** Source address of the datagram. */
  src: A;
  /** Destination address of the datagram. */
  dst: A;
  /** The first fragment (offset 0) as received, header included, if it arrived. */
  firstFragment: Uint8Array | undefined;
  /** Whether one of its fragments came in a link-layer broadcast or multicast frame. */
  linkBroadcast: boolean;
}

/** One fragment, as the family's glue describes it. */
export interface FragmentIn<A> {
  /** The datagram it belongs to (the family's key, as a string). */
  key: string;
  /** Source address. */
  src: A;
  /** Destination address. */
  dst: A;
  /** Offset of `data` in the datagram's fragmentable part, in bytes. */
  offset: number;
  /** More fragments follow (M / MF). */
  more: boolean;
  /** The fragment's data (a view into a borrowed frame: copied when kept). */
  data: Uint8Array;
  /** The headers before `data` (a view, copied when kept); read only at offset 0. */
  header: Uint8Array;
  /** Whether it came in a link-layer broadcast or multicast frame. */
  linkBroadcast: boolean;
}

/** A completed datagram: the first fragment's headers and the fragments, in order, without holes. */
export interface Reassembled {
  /** The headers of the offset-0 fragment (a copy the reassembler no longer holds). */
  header: Uint8Array;
  /** The fragments, sorted by offset, covering 0..`totalLen` without a hole or overlap. */
  fragments: readonly { offset: number; data: Uint8Array }[];
  /** Bytes of the fragmentable part. */
  totalLen: number;
  /** Whether one of its fragments came in a link-layer broadcast or multicast frame. */
  linkBroadcast: boolean;
}

/** The result of {@linkcode FragmentReassembler.input}. */
export type FragmentResult =
  | { kind: "stored" }
  | { kind: "dropped"; reason: string }
  | { kind: "complete"; datagram: Reassembled };

/** How a family configures the shared reassembler. */
export interface FragmentReassemblerOptions {
  /** The family's prefix of drop reasons: `ipv4` or `ipv6`. */
  family: "ipv4" | "ipv6";
  /**
   * Bytes of the stored first header that do not count toward the 65535
   * limit of the reassembled datagram (0 for IPv4, whose total length
   * includes its header; for IPv6 the fixed header and the fragment header).
   */
  headerExempt: number;
}

interface Fragment {
  offset: number;
  data: Uint8Array;
}

interface Pending<A> {
  key: string;
  src: A;
  dst: A;
  deadline: number;
  /** Sorted by offset, never overlapping. */
  frags: Fragment[];
  /** Total payload length, known once the last fragment (M clear) arrived. */
  totalLen: number | undefined;
  /** The headers of the offset-0 fragment. */
  first: Uint8Array | undefined;
  bytes: number;
  /** What this datagram's copies cost the session's memory quota. */
  charged: number;
  linkBroadcast: boolean;
}

/** The largest datagram (IPv4 total length, IPv6 payload length). */
export const MAX_REASSEMBLED = 65535;

/**
 * Copies a completed datagram into one buffer: the first `headerLen` bytes
 * of its header, then the fragments at `headerLen + offset`.
 *
 * @example
 * ```ts
 * const out = assembleDatagram(r.datagram, r.datagram.header.length);
 * ```
 */
export function assembleDatagram(r: Reassembled, headerLen: number): Uint8Array {
  const out = new Uint8Array(headerLen + r.totalLen);
  out.set(headerLen === r.header.length ? r.header : r.header.subarray(0, headerLen));
  for (const f of r.fragments) out.set(f.data, headerLen + f.offset);
  return out;
}

/**
 * The family-neutral reassembler: keys, offsets, overlap policy, limits,
 * quota charges and time-outs. Never reads the time: `now` is passed in;
 * {@linkcode FragmentReassembler.poll} expires datagrams.
 *
 * @example
 * ```ts
 * const r = new FragmentReassembler<number>(limits, { family: "ipv4", headerExempt: 0 });
 * const res = r.input({ key, src, dst, offset, more, data, header, linkBroadcast }, now);
 * if (res.kind === "complete") deliver(assembleDatagram(res.datagram, res.datagram.header.length));
 * ```
 */
export class FragmentReassembler<A> {
  /** The limits in force. */
  readonly limits: ReassemblyLimits;
  /** Datagram outcomes. */
  readonly stats: ReassemblyStats = { completed: 0, timedOut: 0, discarded: 0 };
  #pending = new Map<string, Pending<A>>();
  #bytes = 0;
  #memory: MemoryQuota;
  #exempt: number;
  #duplicate: string;
  #overlap: string;
  #full: string;
  #quota: string;
  #tooBig: string;

  /**
   * Creates a reassembler that charges its copies to `memory` (the session's
   * quota; unlimited when not given). Throws RangeError for a limit that is
   * not a positive integer (`name` says whose).
   */
  constructor(
    name: string,
    limits: ReassemblyLimits,
    options: FragmentReassemblerOptions,
    memory?: MemoryQuota,
  ) {
    this.#memory = memory ?? new MemoryQuota(Number.MAX_SAFE_INTEGER);
    for (const [k, v] of Object.entries(limits)) {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`${name}: ${k} must be a positive integer, got ${v}`);
      }
    }
    this.limits = { ...limits };
    this.#exempt = options.headerExempt;
    const f = options.family;
    this.#duplicate = `${f}_reassembly_duplicate`;
    this.#overlap = `${f}_reassembly_overlap`;
    this.#full = `${f}_reassembly_full`;
    this.#quota = `${f}_reassembly_quota`;
    this.#tooBig = `${f}_reassembly_too_big`;
  }

  /** Datagrams in progress. */
  get datagrams(): number {
    return this.#pending.size;
  }

  /** Payload bytes held. */
  get bytesHeld(): number {
    return this.#bytes;
  }

  /** Takes one fragment, already checked by its family's glue. */
  input(frag: FragmentIn<A>, now: number): FragmentResult {
    const { key, offset, data, more } = frag;
    const end = offset + data.length;
    let p = this.#pending.get(key);
    if (p === undefined) {
      if (this.#pending.size >= this.limits.maxDatagrams) {
        return { kind: "dropped", reason: this.#full };
      }
      p = {
        key,
        src: frag.src,
        dst: frag.dst,
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
    const frags = p.frags;
    const last = frags.length > 0 ? frags[frags.length - 1] : undefined;
    if (
      (!more && p.totalLen !== undefined && p.totalLen !== end) ||
      (p.totalLen !== undefined && end > p.totalLen) ||
      (!more && last !== undefined && last.offset + last.data.length > end)
    ) {
      this.#discard(p);
      return { kind: "dropped", reason: this.#overlap };
    }
    // Find the insertion point and check both neighbours for overlap.
    let i = 0;
    while (i < frags.length && frags[i].offset < offset) i++;
    const prev = i > 0 ? frags[i - 1] : undefined;
    const next = i < frags.length ? frags[i] : undefined;
    if (next && next.offset === offset && next.data.length === data.length) {
      if (bytesEqual(next.data, data)) return { kind: "dropped", reason: this.#duplicate };
    }
    if (
      (prev && prev.offset + prev.data.length > offset) || (next && next.offset < end) ||
      (next && next.offset === offset)
    ) {
      this.#discard(p);
      return { kind: "dropped", reason: this.#overlap };
    }
    if (
      frags.length >= this.limits.maxFragments || this.#bytes + data.length > this.limits.maxBytes
    ) {
      return { kind: "dropped", reason: this.#full };
    }
    const cost = bufferCost(data.length) + (offset === 0 ? bufferCost(frag.header.length) : 0);
    if (!this.#memory.tryCharge(cost)) return { kind: "dropped", reason: this.#quota };
    p.charged += cost;
    if (!this.#pending.has(key)) this.#pending.set(key, p);
    // Copies: the frame is borrowed.
    frags.splice(i, 0, { offset, data: data.slice() });
    p.bytes += data.length;
    this.#bytes += data.length;
    if (frag.linkBroadcast) p.linkBroadcast = true;
    if (offset === 0) p.first = frag.header.slice();
    if (!more) p.totalLen = end;
    // Complete when the fragments cover 0..totalLen without a hole.
    if (p.totalLen === undefined || p.first === undefined) return { kind: "stored" };
    let covered = 0;
    for (const f of frags) {
      if (f.offset !== covered) return { kind: "stored" };
      covered += f.data.length;
    }
    if (covered !== p.totalLen) return { kind: "stored" };
    if (p.first.length - this.#exempt + p.totalLen > MAX_REASSEMBLED) {
      // Possible when the first fragment carries more header than a later one assumed.
      this.#discard(p);
      return { kind: "dropped", reason: this.#tooBig };
    }
    this.#remove(p);
    this.stats.completed++;
    return {
      kind: "complete",
      datagram: {
        header: p.first,
        fragments: frags,
        totalLen: p.totalLen,
        linkBroadcast: p.linkBroadcast,
      },
    };
  }

  /** The earliest deadline of a datagram in progress, or undefined. */
  nextDeadline(): number | undefined {
    let d: number | undefined;
    for (const p of this.#pending.values()) if (d === undefined || p.deadline < d) d = p.deadline;
    return d;
  }

  /** Gives up every datagram whose deadline is at or before `now` and returns them. */
  poll(now: number): ExpiredFragments<A>[] {
    const out: ExpiredFragments<A>[] = [];
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
      out.push({ src: p.src, dst: p.dst, firstFragment, linkBroadcast: p.linkBroadcast });
    }
    return out;
  }

  #discard(p: Pending<A>): void {
    if (this.#pending.get(p.key) !== p) return;
    this.#remove(p);
    this.stats.discarded++;
  }

  #remove(p: Pending<A>): void {
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
