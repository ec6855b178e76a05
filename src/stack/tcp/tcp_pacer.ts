/**
 * Pacing of a TCP sender: new data leaves at a rate derived from the
 * congestion window and the smoothed RTT, as Linux paces (`sk_pacing_rate`
 * with `tcp_pacing_ss_ratio` 200 % and `tcp_pacing_ca_ratio` 120 %): twice
 * cwnd per SRTT in slow start, 1.2 times in congestion avoidance. Without
 * pacing a sender puts each window on the wire in one burst, at whatever
 * speed the core runs, and a receiver with a small queue (an emulated NIC
 * with a 16 KiB buffer, a slow tunnel) drops what overflows it.
 *
 * A token bucket: the bytes allowed accrue at the rate since the last send,
 * up to a burst of the larger of two segments and one tick of the rate
 * (1 ms), so the sender releases small batches per timer tick at low rates
 * and is not held back by timer granularity at high ones. The sender asks
 * before each new segment and, when refused, arms its pacing timer for the
 * time the bucket allows the next one.
 *
 * @module
 */

/** Pacing gain in slow start (Linux `tcp_pacing_ss_ratio`, 200 %). */
export const PACING_GAIN_SLOW_START = 2;
/** Pacing gain in congestion avoidance (Linux `tcp_pacing_ca_ratio`, 120 %). */
export const PACING_GAIN_AVOIDANCE = 1.2;
/** The tick a burst covers at the pacing rate, in ms (the session's timer granularity). */
export const PACING_TICK_MS = 1;
/** The most timer lateness (ms) a held-back sender is compensated for in one burst. */
export const PACING_MAX_LATE_MS = 8;
/** Below this smoothed RTT (ms) a sender is not paced: the clock cannot tell. */
const MIN_PACED_SRTT_MS = 0.05;

/**
 * The pacing state of one sender.
 *
 * @example
 * ```ts
 * const pacer = new TcpPacer();
 * pacer.setRate(14_600, Infinity, 10, 1460); // slow start: 2 × 14,600 B / 10 ms
 * if (pacer.allows(now)) { send(1460); pacer.spend(1460, now); }
 * else timers.start(TcpTimer.PACE, pacer.nextSendAt(now));
 * ```
 */
export class TcpPacer {
  /** The rate in bytes per ms; 0 while unpaced (no RTT sample yet, or pacing off). */
  #rate = 0;
  /** Bytes that may leave now (negative: owed after a segment that overdrew). */
  #tokens = 0;
  /** Most tokens held: the burst. */
  #burst = 0;
  /** When the tokens were last brought up to date. */
  #at = 0;
  /** When the sender, held back, was told it may send again; undefined when not held. */
  #due: number | undefined = undefined;

  /** The pacing rate in bytes per ms, 0 when unpaced. */
  get rate(): number {
    return this.#rate;
  }

  /**
   * Sets the rate from the congestion state: `cwnd` and `ssthresh` in bytes,
   * the smoothed RTT in ms (undefined before the first sample: unpaced),
   * `mss` for the smallest burst.
   */
  setRate(cwnd: number, ssthresh: number, srtt: number | undefined, mss: number): void {
    if (srtt === undefined || srtt < MIN_PACED_SRTT_MS) {
      this.#rate = 0;
      return;
    }
    const gain = cwnd < ssthresh ? PACING_GAIN_SLOW_START : PACING_GAIN_AVOIDANCE;
    this.#rate = (gain * cwnd) / srtt;
    this.#burst = Math.max(2 * mss, this.#rate * PACING_TICK_MS);
  }

  /** Whether a segment may leave at `now` (always, while unpaced). */
  allows(now: number): boolean {
    if (this.#rate === 0) return true;
    this.#refill(now);
    return this.#tokens > 0;
  }

  /** Records `bytes` sent at `now` (retransmissions included). */
  spend(bytes: number, now: number): void {
    if (this.#rate === 0) {
      this.#at = now;
      return;
    }
    this.#refill(now);
    this.#tokens -= bytes;
  }

  /** When the next segment may leave: once the bucket holds a token again. */
  nextSendAt(now: number): number {
    if (this.#rate === 0 || this.#tokens > 0) return now;
    const due = now + (1 - this.#tokens) / this.#rate;
    this.#due = due;
    return due;
  }

  #refill(now: number): void {
    const elapsed = now - this.#at;
    this.#at = now;
    // A sender held back and woken late (a runtime timer fires a few ms after its time, which
    // Linux's high-resolution timers do not) is owed what the rate allowed since it was due:
    // the burst grows by that lateness, at most PACING_MAX_LATE_MS of it. A sender that was
    // not held back (waiting for ACKs, idle) gains no burst.
    let cap = this.#burst;
    const due = this.#due;
    if (due !== undefined) {
      this.#due = undefined;
      const late = now - due;
      if (late > 0) cap += (late < PACING_MAX_LATE_MS ? late : PACING_MAX_LATE_MS) * this.#rate;
    }
    if (elapsed <= 0) return;
    const t = this.#tokens + elapsed * this.#rate;
    this.#tokens = t > cap ? cap : t;
  }
}
