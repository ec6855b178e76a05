/**
 * A token bucket for rate limits in the core. Time is passed in: the bucket
 * refills continuously from the `now` each take brings.
 *
 * @module
 */

/**
 * `rate` tokens per second, at most `burst` held (full at the start).
 *
 * @example
 * ```ts
 * const bucket = new TokenBucket(100); // 100 per second, bursts of 100
 * if (bucket.take(now)) sendIcmpError();
 * ```
 */
export class TokenBucket {
  /** Tokens added per second. */
  readonly rate: number;
  /** The most tokens held. */
  readonly burst: number;
  #tokens: number;
  #at: number | undefined;

  /** Creates a full bucket; RangeError unless `rate` and `burst` are finite and non-negative. */
  constructor(rate: number, burst: number = rate) {
    if (!Number.isFinite(rate) || rate < 0 || !Number.isFinite(burst) || burst < 0) {
      throw new RangeError(
        `TokenBucket: rate and burst must be finite and >= 0, got ${rate} and ${burst}`,
      );
    }
    this.rate = rate;
    this.burst = burst;
    this.#tokens = burst;
  }

  /** Takes one token at `now` (ms); false when none is left. A clock that steps back adds nothing. */
  take(now: number): boolean {
    const last = this.#at;
    if (last === undefined || now > last) {
      if (last !== undefined) {
        this.#tokens = Math.min(this.burst, this.#tokens + (now - last) * this.rate / 1000);
      }
      this.#at = now;
    }
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
