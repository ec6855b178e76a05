/**
 * Round-trip time estimation and the retransmission timeout (RTO) of
 * RFC 6298 "Computing TCP's Retransmission Timer".
 *
 * Karn's rule (RFC 6298 §3) is the caller's job: sample only segments that
 * were never retransmitted, or use the RFC 7323 timestamp echo, which is
 * unambiguous.
 *
 * @module
 */

/** Tunables of {@linkcode RttEstimator}; every value is in milliseconds. */
export interface RttOptions {
  /** RTO before the first sample (RFC 6298 §2.1: 1 s). */
  initialRtoMs: number;
  /**
   * Lower bound of the RTO. RFC 6298 §2.4 says the RTO SHOULD be rounded up
   * to 1 s; like Linux (`TCP_RTO_MIN`) we default to 200 ms, which recovers
   * from tail losses on short paths far faster and has proven safe in
   * practice. Set 1000 for the letter of the RFC.
   */
  minRtoMs: number;
  /** Upper bound of the RTO, also after backoff (RFC 6298 §2.5 allows ≥ 60 s; Linux: 120 s). */
  maxRtoMs: number;
  /** The clock granularity G of RFC 6298 §2: the RTO is at least SRTT + G. */
  clockGranularityMs: number;
}

/**
 * Defaults: RFC 6298 with Linux's bounds.
 *
 * @example
 * ```ts
 * const rtt = new RttEstimator({ ...DEFAULT_RTT_OPTIONS, minRtoMs: 1000 });
 * ```
 */
export const DEFAULT_RTT_OPTIONS: Readonly<RttOptions> = Object.freeze({
  initialRtoMs: 1000,
  minRtoMs: 200,
  maxRtoMs: 120_000,
  clockGranularityMs: 1,
});

/** RFC 6298 §2.3 gains. */
const ALPHA = 1 / 8;
const BETA = 1 / 4;
/** RFC 6298 §2.2: RTO = SRTT + max(G, K*RTTVAR). */
const K = 4;
/** Beyond this many doublings every RTO is already clamped to the maximum. */
const MAX_BACKOFF_SHIFT = 40;

/**
 * The smoothed RTT, its variation and the RTO of one connection
 * (RFC 6298 §2), with exponential backoff (RFC 6298 §5.5).
 *
 * Time is passed in as milliseconds; the estimator never reads a clock.
 *
 * @example
 * ```ts
 * const rtt = new RttEstimator();
 * rtt.rto; // 1000 (RFC 6298 §2.1)
 * rtt.sample(100); // SRTT 100, RTTVAR 50 (§2.2)
 * rtt.rto; // 300 = 100 + 4 * 50
 * rtt.backoff(); // the retransmission timer expired (§5.5)
 * rtt.currentRto; // 600
 * rtt.resetBackoff(); // new data was acknowledged
 * ```
 */
export class RttEstimator {
  readonly #initialRto: number;
  readonly #minRto: number;
  readonly #maxRto: number;
  readonly #granularity: number;
  #srtt = 0;
  #rttvar = 0;
  #hasSample = false;
  #latest = 0;
  #min = Infinity;
  #rto: number;
  #backoff = 0;

  /**
   * An estimator with no samples yet; missing options take
   * {@linkcode DEFAULT_RTT_OPTIONS}.
   *
   * @throws {RangeError} when an option is not a finite number ≥ 0, when
   * `minRtoMs` or `maxRtoMs` is not positive, or when
   * `minRtoMs <= initialRtoMs <= maxRtoMs` does not hold.
   */
  constructor(options: Partial<RttOptions> = {}) {
    const o = { ...DEFAULT_RTT_OPTIONS, ...options };
    for (const name of Object.keys(DEFAULT_RTT_OPTIONS) as (keyof RttOptions)[]) {
      const v = o[name];
      if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
        throw new RangeError(`RttEstimator: ${name} must be a finite number >= 0, got ${v}`);
      }
    }
    if (o.minRtoMs <= 0 || o.maxRtoMs <= 0) {
      throw new RangeError(
        `RttEstimator: minRtoMs and maxRtoMs must be > 0, got ${o.minRtoMs} and ${o.maxRtoMs}`,
      );
    }
    if (!(o.minRtoMs <= o.initialRtoMs && o.initialRtoMs <= o.maxRtoMs)) {
      throw new RangeError(
        `RttEstimator: need minRtoMs <= initialRtoMs <= maxRtoMs, got ${o.minRtoMs}, ${o.initialRtoMs}, ${o.maxRtoMs}`,
      );
    }
    this.#initialRto = o.initialRtoMs;
    this.#minRto = o.minRtoMs;
    this.#maxRto = o.maxRtoMs;
    this.#granularity = o.clockGranularityMs;
    this.#rto = o.initialRtoMs;
  }

  /**
   * Feeds one RTT measurement R (RFC 6298 §2.2 for the first, §2.3 after).
   * Non-finite and negative values are ignored. Does not touch the backoff:
   * call {@linkcode RttEstimator.resetBackoff} when new data is acknowledged.
   *
   * `expectedSamples` (default 1) implements RFC 7323 Appendix G: with
   * timestamps every ACK gives a sample, so α and β are divided by the number
   * of samples expected per window, ceil(FlightSize / (2 * SMSS)), to keep
   * the filter's memory at about one RTT per 1/α windows.
   */
  sample(rttMs: number, expectedSamples = 1): void {
    if (!(rttMs >= 0) || rttMs === Infinity) return;
    this.#latest = rttMs;
    if (rttMs < this.#min) this.#min = rttMs;
    if (!this.#hasSample) {
      // RFC 6298 §2.2.
      this.#srtt = rttMs;
      this.#rttvar = rttMs / 2;
      this.#hasSample = true;
    } else {
      // RFC 6298 §2.3: RTTVAR first, with the old SRTT.
      const n = expectedSamples >= 1 ? expectedSamples : 1;
      const beta = BETA / n;
      const alpha = ALPHA / n;
      const err = this.#srtt - rttMs;
      this.#rttvar = (1 - beta) * this.#rttvar + beta * (err < 0 ? -err : err);
      this.#srtt = (1 - alpha) * this.#srtt + alpha * rttMs;
    }
    const variance = K * this.#rttvar;
    const rto = this.#srtt + (variance > this.#granularity ? variance : this.#granularity);
    // RFC 6298 §2.4 (lower bound) and §2.5 (upper bound).
    this.#rto = rto < this.#minRto ? this.#minRto : rto > this.#maxRto ? this.#maxRto : rto;
  }

  /** SRTT in ms (RFC 6298 §2), `undefined` before the first sample. */
  get srtt(): number | undefined {
    return this.#hasSample ? this.#srtt : undefined;
  }

  /** RTTVAR in ms (RFC 6298 §2), `undefined` before the first sample. */
  get rttvar(): number | undefined {
    return this.#hasSample ? this.#rttvar : undefined;
  }

  /**
   * The base RTO in ms without backoff (RFC 6298 §2): the initial RTO until
   * the first sample, then SRTT + max(G, 4 * RTTVAR) clamped to
   * [minRtoMs, maxRtoMs].
   */
  get rto(): number {
    return this.#rto;
  }

  /** The most recent sample in ms, `undefined` before the first. */
  get latestRtt(): number | undefined {
    return this.#hasSample ? this.#latest : undefined;
  }

  /** The smallest sample seen in ms, `undefined` before the first. */
  get minRtt(): number | undefined {
    return this.#hasSample ? this.#min : undefined;
  }

  /**
   * The retransmission timer expired: double the RTO (RFC 6298 §5.5), up to
   * maxRtoMs. Tracked as a count so the base RTO stays intact.
   */
  backoff(): void {
    this.#backoff++;
  }

  /**
   * Forget the backoff, e.g. when an ACK for new data arrives (RFC 6298 §5.3
   * restarts the timer with the current, un-backed-off RTO).
   */
  resetBackoff(): void {
    this.#backoff = 0;
  }

  /** How many times {@linkcode RttEstimator.backoff} was called since the last reset. */
  get backoffCount(): number {
    return this.#backoff;
  }

  /** The RTO to arm the timer with, in ms: rto * 2^backoffCount, at most maxRtoMs. */
  get currentRto(): number {
    const shift = this.#backoff;
    if (shift === 0) return this.#rto;
    if (shift >= MAX_BACKOFF_SHIFT) return this.#maxRto;
    const rto = this.#rto * 2 ** shift;
    return rto > this.#maxRto ? this.#maxRto : rto;
  }

  /** The configured initial RTO in ms (RFC 6298 §2.1). */
  get initialRto(): number {
    return this.#initialRto;
  }
}
