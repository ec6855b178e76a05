/**
 * The sender's SACK scoreboard (RFC 6675 §3): which ranges above SND.UNA the
 * receiver reported holding. Ranges are kept sorted and merged; their count is
 * bounded.
 *
 * @module
 */

import type { TcpSackBlock } from "../../wire/mod.ts";
import { seqGe, seqGt, seqLe, seqLt, seqMax, seqMin, seqSpan } from "./seq.ts";

/**
 * Sorted, merged SACKed ranges (half-open `[left, right)` in sequence space).
 *
 * @example
 * ```ts
 * const sb = new SackScoreboard();
 * sb.update([{ left: 2000, right: 3000 }], 1000, 5000);
 * sb.sackedBytes; // 1000
 * ```
 */
export class SackScoreboard {
  #ranges: TcpSackBlock[] = [];
  #sacked = 0;

  /** @param maxRanges the most ranges kept; the oldest-by-position beyond it are forgotten. */
  constructor(readonly maxRanges = 64) {}

  /** Bytes covered by SACKed ranges. */
  get sackedBytes(): number {
    return this.#sacked;
  }

  /** Number of distinct ranges. */
  get rangeCount(): number {
    return this.#ranges.length;
  }

  /** The right edge of the highest SACKed range, or undefined when empty. */
  get highestSacked(): number | undefined {
    const r = this.#ranges;
    return r.length === 0 ? undefined : r[r.length - 1].right;
  }

  /** A copy of the ranges, lowest first. */
  ranges(): TcpSackBlock[] {
    return this.#ranges.map((r) => ({ ...r }));
  }

  /**
   * Merges the blocks of an ACK (RFC 2018 §4). Blocks outside
   * `(sndUna, sndMax]` (D-SACKs, bogus ones) are ignored. Returns the number of
   * bytes newly SACKed.
   */
  update(blocks: readonly TcpSackBlock[], sndUna: number, sndMax: number): number {
    const before = this.#sacked;
    for (const b of blocks) {
      let left = b.left;
      const right = b.right;
      if (!seqLt(left, right) || seqGt(right, sndMax) || seqLe(right, sndUna)) continue;
      if (seqLt(left, sndUna)) left = sndUna;
      this.#insert(left, right);
    }
    return this.#sacked - before;
  }

  /** Forgets everything at or below the new cumulative ACK. */
  advance(sndUna: number): void {
    const r = this.#ranges;
    let drop = 0;
    while (drop < r.length && seqLe(r[drop].right, sndUna)) {
      this.#sacked -= seqSpan(r[drop].left, r[drop].right);
      drop++;
    }
    if (drop > 0) r.splice(0, drop);
    if (r.length > 0 && seqLt(r[0].left, sndUna)) {
      this.#sacked -= seqSpan(r[0].left, sndUna);
      r[0].left = sndUna;
    }
  }

  /** If `seq` lies in a SACKed range, that range's right edge; otherwise undefined. */
  sackedRangeEnd(seq: number): number | undefined {
    for (const r of this.#ranges) {
      if (seqLt(seq, r.left)) return undefined;
      if (seqLt(seq, r.right)) return r.right;
    }
    return undefined;
  }

  /** The first SACKed range's left edge above or at `seq`, or undefined. */
  nextSackedStart(seq: number): number | undefined {
    for (const r of this.#ranges) if (seqGe(r.left, seq)) return r.left;
    return undefined;
  }

  /** Bytes SACKed within `[from, to)`. */
  sackedBetween(from: number, to: number): number {
    let n = 0;
    for (const r of this.#ranges) {
      n += seqSpan(seqMax(r.left, from), seqMin(r.right, to));
    }
    return n;
  }

  /** Forgets every range (RFC 6675 §5.1 allows discarding SACK state after an RTO). */
  clear(): void {
    this.#ranges = [];
    this.#sacked = 0;
  }

  #insert(left: number, right: number): void {
    const r = this.#ranges;
    // Find the first range whose right edge is >= left (could merge).
    let i = 0;
    while (i < r.length && seqLt(r[i].right, left)) i++;
    let j = i;
    let newLeft = left;
    let newRight = right;
    let removed = 0;
    while (j < r.length && seqLe(r[j].left, newRight)) {
      newLeft = seqMin(newLeft, r[j].left);
      newRight = seqMax(newRight, r[j].right);
      removed += seqSpan(r[j].left, r[j].right);
      j++;
    }
    r.splice(i, j - i, { left: newLeft, right: newRight });
    this.#sacked += seqSpan(newLeft, newRight) - removed;
    if (r.length > this.maxRanges) {
      const last = r.pop()!;
      this.#sacked -= seqSpan(last.left, last.right);
    }
  }
}
