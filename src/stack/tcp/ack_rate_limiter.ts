/**
 * A per-layer limit on ACKs sent in answer to segments the stack does not
 * take: RFC 5961 §7 challenge ACKs, and the ACKs RFC 9293 §3.10.7.4 asks
 * for after unacceptable segments (out of window, PAWS, unsent data
 * acknowledged, data the memory quota cannot hold). Without a limit every
 * forged segment draws a reply.
 *
 * @module
 */

/**
 * At most `perSecond` ACKs in each one-second window of the injected clock;
 * the ones beyond are suppressed and counted.
 *
 * @example
 * ```ts
 * const limit = new AckRateLimiter(2);
 * [limit.allow(0), limit.allow(10), limit.allow(20)]; // [true, true, false]
 * limit.suppressed; // 1
 * limit.allow(1000); // true: a new window
 * ```
 */
export class AckRateLimiter {
  /** ACKs allowed per second. */
  readonly perSecond: number;
  /** ACKs suppressed so far. */
  suppressed = 0;
  #windowStart = 0;
  #count = 0;

  /** Creates a limiter of `perSecond` ACKs (a non-negative integer). */
  constructor(perSecond: number) {
    if (!Number.isInteger(perSecond) || perSecond < 0) {
      throw new RangeError(
        `AckRateLimiter: perSecond must be a non-negative integer, got ${perSecond}`,
      );
    }
    this.perSecond = perSecond;
  }

  /** Whether one more ACK may be sent at `now`; counts it when it may, and the refusal when not. */
  allow(now: number): boolean {
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#count = 0;
    }
    if (this.#count >= this.perSecond) {
      this.suppressed++;
      return false;
    }
    this.#count++;
    return true;
  }
}
