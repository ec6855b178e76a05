/**
 * A fixed-size histogram of delays: power-of-two buckets of microseconds, so
 * recording costs a few arithmetic operations and never allocates. The
 * session keeps two: how long received frames waited for the core lock, and
 * how late its timers fired.
 *
 * @module
 */

/** Buckets: [0, 1) µs, then [2^(i-1), 2^i) µs for i = 1..30, and everything from 2^30 µs up. */
const BUCKETS = 32;

/** A summary of a {@linkcode DelayHistogram}, in milliseconds (JSON-friendly). */
export interface DelaySummary {
  /** Delays recorded. */
  count: number;
  /** The median, as the upper bound of its bucket (at most the maximum); 0 when empty. */
  p50Ms: number;
  /** The 99th percentile, as the upper bound of its bucket (at most the maximum); 0 when empty. */
  p99Ms: number;
  /** The largest delay recorded, exact; 0 when empty. */
  maxMs: number;
  /** The mean, exact; 0 when empty. */
  meanMs: number;
}

/**
 * Counts delays in power-of-two buckets (resolution: a factor of two).
 *
 * @example
 * ```ts
 * const h = new DelayHistogram();
 * h.record(0.003); // 3 µs
 * h.record(12);
 * h.summary(); // { count: 2, p50Ms: 0.004, p99Ms: 12, maxMs: 12, meanMs: 6.0015 }
 * ```
 */
export class DelayHistogram {
  readonly #buckets = new Uint32Array(BUCKETS);
  #count = 0;
  #sumMs = 0;
  #maxMs = 0;

  /** Delays recorded so far. */
  get count(): number {
    return this.#count;
  }

  /** Records one delay in milliseconds; a negative or non-finite value counts as 0. */
  record(ms: number): void {
    const v = ms > 0 && ms < Infinity ? ms : 0;
    const us = v * 1000;
    const i = us < 1 ? 0 : us >= 2 ** 30 ? BUCKETS - 1 : 32 - Math.clz32(us);
    this.#buckets[i]++;
    this.#count++;
    this.#sumMs += v;
    if (v > this.#maxMs) this.#maxMs = v;
  }

  /**
   * The `q` quantile (0..1), as the upper bound in milliseconds of the bucket
   * holding it, capped at the maximum recorded; 0 when empty.
   *
   * @throws {RangeError} when `q` is not in 0..1.
   */
  quantile(q: number): number {
    if (!(q >= 0 && q <= 1)) {
      throw new RangeError(`DelayHistogram.quantile: q must be in 0..1, got ${q}`);
    }
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#buckets[i];
      // The last bucket is open-ended: its only bound is the maximum.
      if (seen >= rank) {
        return i === BUCKETS - 1 ? this.#maxMs : Math.min(2 ** i / 1000, this.#maxMs);
      }
    }
    return this.#maxMs;
  }

  /** Count, median, 99th percentile, maximum and mean, in milliseconds. */
  summary(): DelaySummary {
    return {
      count: this.#count,
      p50Ms: this.quantile(0.5),
      p99Ms: this.quantile(0.99),
      maxMs: this.#maxMs,
      meanMs: this.#count === 0 ? 0 : this.#sumMs / this.#count,
    };
  }

  /** Adds every delay `other` recorded to this histogram (to sum several sessions). */
  merge(other: DelayHistogram): void {
    for (let i = 0; i < BUCKETS; i++) this.#buckets[i] += other.#buckets[i];
    this.#count += other.#count;
    this.#sumMs += other.#sumMs;
    if (other.#maxMs > this.#maxMs) this.#maxMs = other.#maxMs;
  }

  /** Forgets every recorded delay. */
  reset(): void {
    this.#buckets.fill(0);
    this.#count = 0;
    this.#sumMs = 0;
    this.#maxMs = 0;
  }
}
