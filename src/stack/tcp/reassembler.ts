/**
 * The receive side's out-of-order store of a TCP connection: segment text
 * that arrived beyond RCV.NXT (RFC 9293 §3.10.7.4) and the SACK blocks that
 * describe it (RFC 2018 §4).
 *
 * @module
 */

import type { TcpSackBlock } from "../../wire/mod.ts";
import { MemoryQuota } from "../session_quota.ts";
import { DEFAULT_PAGE_BYTES, PagedRing } from "./paged_ring.ts";
import { seqAdd, seqLe, seqSub } from "./seq.ts";

/** The largest capacity: the largest TCP receive window, 2^30 bytes (RFC 7323 §2.3). */
const MAX_CAPACITY = 0x40000000;

/**
 * Options of a {@linkcode Reassembler}.
 *
 * @example
 * ```ts
 * const options: ReassemblerOptions = { capacity: 256 * 1024, maxRanges: 32 };
 * ```
 */
export interface ReassemblerOptions {
  /**
   * Bytes the reassembler can hold, from RCV.NXT onwards: the receive window
   * it backs. A positive integer of at most 2^30 (RFC 7323 §2.3).
   */
  capacity: number;
  /**
   * Most distinct ranges (runs of held bytes separated by holes) kept beyond
   * RCV.NXT; a segment that would start one more is dropped. Default 32.
   */
  maxRanges?: number;
  /**
   * The memory quota charged for the pages that hold bytes. Default: a quota
   * of its own without a practical limit (for standalone use).
   */
  quota?: MemoryQuota;
  /** Bytes of one storage page, a power of two. Default {@linkcode DEFAULT_PAGE_BYTES}. */
  pageBytes?: number;
}

/**
 * What {@linkcode Reassembler.add} did with a segment's bytes.
 * `data.length - accepted - dropped` bytes were already held (duplicates of
 * held data; they were rewritten with the new copy).
 *
 * @example
 * ```ts
 * const r = new Reassembler({ capacity: 100 });
 * const result: ReassemblerAddResult = r.add(95, new Uint8Array(10), 0);
 * result.accepted + result.dropped; // 5 + 5: five bytes beyond the window
 * ```
 */
export interface ReassemblerAddResult {
  /** Bytes stored that were not held before. */
  accepted: number;
  /**
   * Bytes not stored: before RCV.NXT (already delivered), beyond the window,
   * or refused because a new range would exceed `maxRanges`.
   */
  dropped: number;
}

/**
 * Cumulative byte counts of a {@linkcode Reassembler}, by what happened to
 * the bytes. Cleared only by constructing a new reassembler.
 *
 * @example
 * ```ts
 * const r = new Reassembler({ capacity: 100 });
 * r.add(0, new Uint8Array(10), 5);
 * const c: Readonly<ReassemblerCounters> = r.counters; // c.oldBytes === 5
 * ```
 */
export interface ReassemblerCounters {
  /** Bytes newly stored. */
  acceptedBytes: number;
  /** Bytes that rewrote bytes already held (overlap with held data). */
  duplicateBytes: number;
  /** Bytes before RCV.NXT: already delivered. */
  oldBytes: number;
  /** Bytes at or after RCV.NXT + window. */
  beyondWindowBytes: number;
  /** Bytes refused because their range would have exceeded `maxRanges`. */
  rangeLimitBytes: number;
  /** Segments refused because their range would have exceeded `maxRanges`. */
  rangeLimitSegments: number;
  /** Bytes refused because the memory quota refused the storage they needed. */
  quotaBytes: number;
  /** Segments refused because the memory quota refused the storage they needed. */
  quotaSegments: number;
}

/**
 * Holds the bytes of a TCP receive stream that arrived beyond RCV.NXT until
 * the hole in front of them is filled (RFC 9293 §3.10.7.4), and reports them
 * as SACK blocks (RFC 2018 §4).
 *
 * Storage is a ring of at least `capacity` bytes addressed by the sequence
 * number's distance from RCV.NXT, kept in pages ({@linkcode PagedRing})
 * that exist only where bytes are held and are charged to the memory quota,
 * plus a sorted list of at most `maxRanges` (+1, see below) disjoint,
 * non-adjacent ranges kept in typed arrays. Every operation is O(ranges)
 * plus the bytes copied (and O(pages) when bytes leave); nothing is
 * allocated per segment except the small result objects and new pages.
 *
 * Decisions the caller relies on:
 * - **Last copy wins.** Bytes that overlap held data overwrite it (one copy
 *   per segment); RFC 9293 allows either choice.
 * - **The window base moves.** Every call takes the caller's RCV.NXT. If
 *   RCV.NXT has moved forward since the last call (the caller delivered
 *   in-order data itself), held bytes before it are discarded. RCV.NXT must
 *   never move backwards while bytes are held.
 * - **Range limit.** A segment that touches no held range starts a new one;
 *   when `maxRanges` ranges are held it is dropped, unless it starts exactly
 *   at RCV.NXT (in-order data is always taken: it is delivered by the next
 *   {@linkcode Reassembler.pop}).
 * - **Views.** {@linkcode Reassembler.pop} hands out views of the pages,
 *   valid only during the `sink` call.
 * - **Quota.** A segment that needs a new page the quota refuses is dropped
 *   whole and counted (`quotaSegments`); held bytes are never given up.
 *
 * @example
 * ```ts
 * const r = new Reassembler({ capacity: 65535 });
 * const received: Uint8Array[] = [];
 * let rcvNxt = 1000;
 * r.add(1005, new Uint8Array(5), rcvNxt); // out of order: held
 * r.sackBlocks(4); // [{ left: 1005, right: 1010 }]
 * r.add(1000, new Uint8Array(5), rcvNxt); // fills the hole
 * rcvNxt = seqAdd(rcvNxt, r.pop(rcvNxt, (chunk) => received.push(chunk.slice())));
 * // rcvNxt === 1010
 * ```
 */
export class Reassembler {
  readonly #capacity: number;
  readonly #maxRanges: number;
  readonly #ring: PagedRing;
  /** Sequence number of ring offset 0 (the caller's RCV.NXT at the last call). */
  #base = 0;
  /** Ring index of `#base`. */
  #baseIdx = 0;
  /** Range starts and ends (exclusive), absolute u32 sequence numbers, sorted. */
  readonly #starts: Uint32Array;
  readonly #ends: Uint32Array;
  /** Recency stamp of each range's last update. */
  readonly #stamps: Float64Array;
  #count = 0;
  #clock = 0;
  #buffered = 0;
  readonly #counters: ReassemblerCounters = {
    acceptedBytes: 0,
    duplicateBytes: 0,
    oldBytes: 0,
    beyondWindowBytes: 0,
    rangeLimitBytes: 0,
    rangeLimitSegments: 0,
    quotaBytes: 0,
    quotaSegments: 0,
  };

  /**
   * Creates an empty reassembler.
   *
   * @throws {RangeError} when `capacity` is not an integer in 1..2^30,
   * `maxRanges` is not a positive integer or `pageBytes` not a power of two.
   */
  constructor(options: ReassemblerOptions) {
    const { capacity, maxRanges = 32 } = options;
    if (!Number.isSafeInteger(capacity) || capacity <= 0 || capacity > MAX_CAPACITY) {
      throw new RangeError(
        `Reassembler: capacity must be an integer in 1..${MAX_CAPACITY}, got ${capacity}`,
      );
    }
    if (!Number.isSafeInteger(maxRanges) || maxRanges <= 0) {
      throw new RangeError(`Reassembler: maxRanges must be a positive integer, got ${maxRanges}`);
    }
    this.#capacity = capacity;
    this.#maxRanges = maxRanges;
    this.#ring = new PagedRing(
      capacity,
      options.pageBytes ?? DEFAULT_PAGE_BYTES,
      options.quota ?? new MemoryQuota(Number.MAX_SAFE_INTEGER),
    );
    // One spare slot: a range starting at RCV.NXT is admitted beyond the limit.
    // The three tables in one buffer (one allocation per connection, not three).
    const slots = maxRanges + 1;
    const table = new ArrayBuffer(slots * 16);
    this.#stamps = new Float64Array(table, 0, slots);
    this.#starts = new Uint32Array(table, slots * 8, slots);
    this.#ends = new Uint32Array(table, slots * 12, slots);
  }

  /** Bytes the reassembler can hold from RCV.NXT onwards. */
  get capacity(): number {
    return this.#capacity;
  }

  /** The most ranges held beyond RCV.NXT. */
  get maxRanges(): number {
    return this.#maxRanges;
  }

  /** Bytes held (all beyond RCV.NXT, or starting at it until popped). */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** Distinct ranges of held bytes. */
  get rangeCount(): number {
    return this.#count;
  }

  /** Bytes of storage charged to the quota now (the pages and, while any is held, their table). */
  get chargedBytes(): number {
    return this.#ring.chargedBytes;
  }

  /** Pages of storage held now. */
  get pageCount(): number {
    return this.#ring.pageCount;
  }

  /**
   * Bytes held contiguously from `rcvNxt` on: what
   * {@linkcode Reassembler.pop} would deliver now.
   */
  contiguousBytes(rcvNxt: number): number {
    for (let i = 0; i < this.#count; i++) {
      const end = this.#ends[i];
      if (seqLe(end, rcvNxt)) continue; // already delivered by the caller
      return seqLe(this.#starts[i], rcvNxt) ? seqSub(end, rcvNxt) : 0;
    }
    return 0;
  }

  /**
   * Bytes held contiguously from `rcvNxt` on within its storage page: what
   * {@linkcode Reassembler.pop} with that `max` hands over in one view.
   */
  nextPopSize(rcvNxt: number): number {
    const n = this.contiguousBytes(rcvNxt);
    if (n === 0) return 0;
    const idx = this.#ringIndex(seqSub(rcvNxt, this.#base));
    const page = this.#ring.pageBytes;
    return Math.min(n, page - (idx & (page - 1)));
  }

  /** Cumulative counts of bytes by fate (a live object; read, don't write). */
  get counters(): Readonly<ReassemblerCounters> {
    return this.#counters;
  }

  /**
   * Stores the part of `data` (whose first byte has sequence number `seq`)
   * that lies in [rcvNxt, rcvNxt + min(window, capacity)) and returns what
   * happened to its bytes. Bytes before `rcvNxt` and beyond the window are
   * dropped (RFC 9293 §3.10.7.4: trim to the window); bytes overlapping held
   * data replace it (last copy wins). `data` is copied and may be reused at
   * once; a segment whose storage the memory quota refuses is dropped whole
   * (counted as `quotaBytes`). Even a segment starting at `rcvNxt` is stored: deliver it with
   * {@linkcode Reassembler.pop} (or, when nothing is held, skip the
   * reassembler entirely and deliver it directly).
   *
   * The range the segment landed in becomes the most recent one, reported
   * first by {@linkcode Reassembler.sackBlocks} (RFC 2018 §4).
   *
   * @param seq sequence number of `data[0]` (u32).
   * @param data the segment text.
   * @param rcvNxt the connection's RCV.NXT (u32).
   * @param window the receive window (RCV.WND) to enforce; defaults to, and is
   *   capped at, the capacity.
   * @throws {RangeError} when `rcvNxt` is before the RCV.NXT of an earlier
   * call while bytes are held.
   *
   * @example
   * ```ts
   * const r = new Reassembler({ capacity: 100 });
   * r.add(10, new Uint8Array(20), 0); // { accepted: 20, dropped: 0 }
   * r.add(20, new Uint8Array(20), 0); // { accepted: 10, dropped: 0 }: 10 already held
   * r.add(90, new Uint8Array(20), 0); // { accepted: 10, dropped: 10 }: 10 beyond the window
   * ```
   */
  add(
    seq: number,
    data: Uint8Array,
    rcvNxt: number,
    window: number = this.#capacity,
  ): ReassemblerAddResult {
    this.#sync(rcvNxt);
    const counters = this.#counters;
    const len = data.length;
    const lo = seqSub(seq, rcvNxt); // signed offset of data[0] from RCV.NXT
    const hi = lo + len;
    const limit = window >= this.#capacity ? this.#capacity : window > 0 ? Math.floor(window) : 0;
    const s = lo > 0 ? lo : 0;
    const e = hi < limit ? hi : limit;
    if (s >= e) {
      const old = lo < 0 ? Math.min(hi, 0) - lo : 0;
      counters.oldBytes += old;
      counters.beyondWindowBytes += len - old;
      return { accepted: 0, dropped: len };
    }
    const old = s - lo;
    const beyond = hi - e;

    // Ranges [a, b] touch or overlap [s, e) and merge with it.
    const base = this.#base;
    const starts = this.#starts;
    const ends = this.#ends;
    const count = this.#count;
    let a = 0;
    while (a < count && seqSub(ends[a], base) < s) a++;
    let b = a;
    let covered = 0;
    let mergedStart = s;
    let mergedEnd = e;
    while (b < count) {
      const rs = seqSub(starts[b], base);
      if (rs > e) break;
      const re = seqSub(ends[b], base);
      const ov = (re < e ? re : e) - (rs > s ? rs : s);
      if (ov > 0) covered += ov;
      if (rs < mergedStart) mergedStart = rs;
      if (re > mergedEnd) mergedEnd = re;
      b++;
    }
    // Now ranges a..b-1 merge with the segment.
    const merging = b - a;
    if (merging === 0 && count >= this.#maxRanges && s !== 0) {
      counters.oldBytes += old;
      counters.beyondWindowBytes += beyond;
      counters.rangeLimitBytes += e - s;
      counters.rangeLimitSegments++;
      return { accepted: 0, dropped: len };
    }
    if (!this.#ring.reserve(this.#ringIndex(s), e - s)) {
      counters.quotaBytes += len;
      counters.quotaSegments++;
      return { accepted: 0, dropped: len };
    }
    if (merging === 0) {
      if (a < count) {
        starts.copyWithin(a + 1, a, count);
        ends.copyWithin(a + 1, a, count);
        this.#stamps.copyWithin(a + 1, a, count);
      }
      this.#count = count + 1;
    } else if (merging > 1) {
      starts.copyWithin(a + 1, b, count);
      ends.copyWithin(a + 1, b, count);
      this.#stamps.copyWithin(a + 1, b, count);
      this.#count = count - merging + 1;
    }
    starts[a] = seqAdd(base, mergedStart);
    ends[a] = seqAdd(base, mergedEnd);
    this.#stamps[a] = ++this.#clock;

    this.#ring.write(this.#ringIndex(s), data.subarray(s - lo, e - lo));
    const accepted = e - s - covered;
    this.#buffered += accepted;
    counters.acceptedBytes += accepted;
    counters.duplicateBytes += covered;
    counters.oldBytes += old;
    counters.beyondWindowBytes += beyond;
    return { accepted, dropped: old + beyond };
  }

  /**
   * Removes the bytes contiguous from `rcvNxt` (at most `max` of them),
   * hands them to `sink` in order (one view per storage page), and returns
   * how many there were; the caller advances RCV.NXT by that (RFC 9293
   * §3.10.7.4). Returns 0 when the byte at `rcvNxt` is not held. The pages
   * emptied are freed and released.
   *
   * Each chunk is a view valid only during its `sink` call: copy it (into the
   * application's receive buffer) before returning. `sink` must not call into
   * this reassembler.
   *
   * @throws {RangeError} when `rcvNxt` is before the RCV.NXT of an earlier
   * call while bytes are held.
   *
   * @example
   * ```ts
   * const r = new Reassembler({ capacity: 100 });
   * r.add(0, new Uint8Array([1, 2, 3]), 0);
   * const chunks: Uint8Array[] = [];
   * r.pop(0, (c) => chunks.push(c.slice())); // 3
   * ```
   */
  pop(rcvNxt: number, sink: (chunk: Uint8Array) => void, max = Infinity): number {
    this.#sync(rcvNxt);
    if (this.#count === 0 || this.#starts[0] !== this.#base) return 0;
    const whole = seqSub(this.#ends[0], this.#starts[0]);
    const n = Math.min(whole, max);
    if (n <= 0) return 0;
    const from = this.#baseIdx;
    // Update the state first so that it is consistent whatever sink does.
    if (n === whole) {
      const count = this.#count - 1;
      this.#starts.copyWithin(0, 1, count + 1);
      this.#ends.copyWithin(0, 1, count + 1);
      this.#stamps.copyWithin(0, 1, count + 1);
      this.#count = count;
    } else {
      this.#starts[0] = seqAdd(this.#starts[0], n);
    }
    this.#buffered -= n;
    this.#base = seqAdd(this.#base, n);
    this.#baseIdx = this.#count === 0 ? 0 : (from + n) % this.#ring.size;
    this.#ring.read(from, n, sink);
    this.#releaseSpan(from, n);
    return n;
  }

  /**
   * The held ranges as SACK blocks (RFC 2018 §4): the block holding the most
   * recently received segment first, then the others by how recently they
   * were last updated, at most `max` of them. `right` is the sequence number
   * just after the block's last byte. A block starting at RCV.NXT (stored but
   * not yet popped) is included; call {@linkcode Reassembler.pop} first.
   *
   * @example
   * ```ts
   * const r = new Reassembler({ capacity: 10000 });
   * r.add(5500, new Uint8Array(500), 5000);
   * r.add(6500, new Uint8Array(500), 5000);
   * r.sackBlocks(3); // [{ left: 6500, right: 7000 }, { left: 5500, right: 6000 }]
   * ```
   */
  sackBlocks(max: number): TcpSackBlock[] {
    const out: TcpSackBlock[] = [];
    const count = this.#count;
    const stamps = this.#stamps;
    let bound = Infinity;
    while (out.length < max) {
      let best = -1;
      let bestStamp = -1;
      for (let i = 0; i < count; i++) {
        const st = stamps[i];
        if (st < bound && st > bestStamp) {
          bestStamp = st;
          best = i;
        }
      }
      if (best < 0) break;
      out.push({ left: this.#starts[best], right: this.#ends[best] });
      bound = bestStamp;
    }
    return out;
  }

  /**
   * Discards what is held before `rcvNxt`: ranges that in-order text
   * covered (a retransmission or a large segment spanning them) would
   * otherwise stay, be reported as SACK blocks and hold their storage.
   *
   * @example
   * ```ts
   * const r = new Reassembler({ capacity: 10000 });
   * r.add(5500, new Uint8Array(500), 5000);
   * r.discardBefore(6000); // the caller got 5000..6000 in order
   * r.bufferedBytes; // 0
   * ```
   */
  discardBefore(rcvNxt: number): void {
    this.#sync(rcvNxt);
  }

  /** Drops every held byte and range and frees the storage (the connection closed or was reset). */
  clear(): void {
    this.#count = 0;
    this.#buffered = 0;
    this.#baseIdx = 0;
    this.#ring.clear();
  }

  /** Moves the window base to `rcvNxt`, discarding held bytes before it. */
  #sync(rcvNxt: number): void {
    rcvNxt >>>= 0;
    if (this.#count === 0) {
      this.#base = rcvNxt;
      this.#baseIdx = 0;
      return;
    }
    const d = seqSub(rcvNxt, this.#base);
    if (d === 0) return;
    if (d < 0) {
      throw new RangeError(
        `Reassembler: rcvNxt ${rcvNxt} is before the previous rcvNxt ${this.#base} while ${this.#buffered} bytes are held`,
      );
    }
    const starts = this.#starts;
    const ends = this.#ends;
    const count = this.#count;
    let gone = 0;
    while (gone < count && seqLe(ends[gone], rcvNxt)) {
      this.#buffered -= seqSub(ends[gone], starts[gone]);
      gone++;
    }
    if (gone > 0) {
      starts.copyWithin(0, gone, count);
      ends.copyWithin(0, gone, count);
      this.#stamps.copyWithin(0, gone, count);
      this.#count = count - gone;
    }
    this.#base = rcvNxt;
    if (this.#count === 0) {
      this.#baseIdx = 0;
      this.#ring.clear();
      return;
    }
    const early = seqSub(rcvNxt, starts[0]);
    if (early > 0) {
      this.#buffered -= early;
      starts[0] = rcvNxt;
    }
    const from = this.#baseIdx;
    this.#baseIdx = (from + d) % this.#ring.size;
    if (gone > 0 || early > 0) this.#releaseSpan(from, d);
  }

  /** The ring index of offset `offset` from the base (RCV.NXT). */
  #ringIndex(offset: number): number {
    const idx = this.#baseIdx + offset;
    return idx >= this.#ring.size ? idx - this.#ring.size : idx;
  }

  /**
   * Frees the pages of the ring span `[from, from + len)` that bytes left,
   * but not the page where the first held range starts nor the one where the
   * last held byte lies: ranges are sorted, so held bytes reach into the
   * span only there (the last one across the ring's wrap).
   */
  #releaseSpan(from: number, len: number): void {
    const n = this.#count;
    if (n === 0) {
      this.#ring.releaseSpan(from, len, -1, -1);
      return;
    }
    const first = this.#ringIndex(seqSub(this.#starts[0], this.#base));
    const last = this.#ringIndex(seqSub(this.#ends[n - 1], this.#base) - 1);
    this.#ring.releaseSpan(from, len, first, last);
  }
}
