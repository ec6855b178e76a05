/**
 * Counters kept by one stack: frames and bytes each way, and every dropped
 * frame counted under the reason it was dropped (gVisor netstack style).
 *
 * @module
 */

/**
 * Frame and byte counters plus drops by reason.
 *
 * Invariant: every frame given to the stack ends in exactly one place, so
 * `rxFrames === rxHandled + sum(drops)`; the fuzz tests check it.
 *
 * @example
 * ```ts
 * const c = new StackCounters(["ethernet_truncated"]);
 * c.drop("ethernet_truncated");
 * c.totalDrops(); // 1
 * ```
 */
export class StackCounters {
  /** Frames given to the stack. */
  rxFrames = 0;
  /** Bytes in the frames given to the stack. */
  rxBytes = 0;
  /** Frames the stack consumed (answered, delivered, learned from). */
  rxHandled = 0;
  /** Frames the stack emitted towards the link. */
  txFrames = 0;
  /** Bytes in the frames the stack emitted. */
  txBytes = 0;
  /** Dropped frames by reason; known reasons start at zero so they are always listed. */
  readonly drops: Record<string, number> = {};
  /** Frames the stack built but could not send, by reason (e.g. `arp_unresolved`). */
  readonly txDrops: Record<string, number> = {};

  /** Creates counters with `reasons` pre-registered at zero. */
  constructor(reasons: Iterable<string> = []) {
    for (const r of reasons) this.drops[r] = 0;
  }

  /** Counts one frame dropped for `reason`. */
  drop(reason: string): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
  }

  /** Counts one outgoing frame lost for `reason`. */
  txDrop(reason: string, n = 1): void {
    if (n > 0) this.txDrops[reason] = (this.txDrops[reason] ?? 0) + n;
  }

  /** The sum of all drops. */
  totalDrops(): number {
    let n = 0;
    for (const k in this.drops) n += this.drops[k];
    return n;
  }

  /** A plain JSON-friendly copy. */
  snapshot(): StackCountersSnapshot {
    return {
      rxFrames: this.rxFrames,
      rxBytes: this.rxBytes,
      rxHandled: this.rxHandled,
      txFrames: this.txFrames,
      txBytes: this.txBytes,
      drops: { ...this.drops },
      txDrops: { ...this.txDrops },
    };
  }
}

/** The JSON shape of {@linkcode StackCounters}. */
export interface StackCountersSnapshot {
  rxFrames: number;
  rxBytes: number;
  rxHandled: number;
  txFrames: number;
  txBytes: number;
  drops: Record<string, number>;
  txDrops: Record<string, number>;
}
