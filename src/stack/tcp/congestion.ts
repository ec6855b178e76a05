/**
 * TCP congestion control: NewReno (RFC 5681, RFC 6582, with appropriate
 * byte counting from RFC 3465) and CUBIC (RFC 9438, the default), behind one
 * interface. Windows are in bytes; time is passed in as milliseconds.
 *
 * The algorithms own cwnd and ssthresh; the caller owns loss detection,
 * retransmission and the `recover` sequence number. What the caller does,
 * for both algorithms:
 *
 * - Every ACK that advances SND.UNA outside recovery:
 *   `onAck(bytesAcked, now, rttSample, flightSizeBeforeThisAck)`.
 * - Loss detected (the third duplicate ACK, RFC 5681 §3.2 step 2 with the
 *   RFC 6582 §3.2 step 1 `recover` check; or SACK loss detection, RFC 6675):
 *   set recover = SND.NXT - 1, call `onCongestionEvent(now, FlightSize)`
 *   with FlightSize = SND.NXT - SND.UNA, retransmit the first unacknowledged
 *   segment. This sets ssthresh and cwnd = ssthresh.
 * - Without SACK (window inflation, RFC 5681 §3.2 steps 3-4): call
 *   `onDupAck()` once for each of the duplicate ACKs that triggered the fast
 *   retransmit (normally 3, giving cwnd = ssthresh + 3*SMSS), then once per
 *   further duplicate ACK (cwnd += SMSS); send new data when cwnd allows.
 * - Without SACK, a partial ACK (advances SND.UNA but not past `recover`,
 *   RFC 6582 §3.2 step 3): retransmit the first unacknowledged segment, call
 *   `onPartialAck(bytesAcked)` (deflates cwnd by the bytes acknowledged and
 *   adds back SMSS if at least SMSS was acknowledged), restart the
 *   retransmission timer on the first partial ACK of the recovery only, send
 *   new data when cwnd allows.
 * - With SACK (RFC 6675) never call `onDupAck`/`onPartialAck`: cwnd stays
 *   at ssthresh and the caller sends while pipe < cwnd.
 * - The full ACK (acknowledges `recover`, RFC 6582 §3.2 step 3): call
 *   `onRecoveryExit(now, FlightSize)` with the flight size after the ACK;
 *   cwnd becomes min(ssthresh, max(FlightSize, SMSS) + SMSS).
 * - Retransmission timeout: `onRetransmissionTimeout(now, FlightSize)`, set
 *   recover = SND.NXT - 1 (RFC 6582 §3.2 step 4), leave recovery. Repeated
 *   timeouts without an ACK of new data in between keep ssthresh
 *   (RFC 5681 §3.1, after eq. 4); the algorithm tracks that itself.
 * - Sending after an idle period longer than the RTO: `onIdleRestart(now)`
 *   before sending (RFC 5681 §4.1).
 *
 * `onAck` only grows cwnd while the sender is cwnd-limited (RFC 9438 §5.8,
 * RFC 7661): in slow start at least half of cwnd must have been in flight,
 * in congestion avoidance all but less than one SMSS. Pass
 * `inFlightBeforeAck = Infinity` to skip the check.
 *
 * @module
 */

/** Names of the available algorithms. */
export type CongestionControlName = "newreno" | "cubic";

/**
 * A congestion control algorithm for one connection. See the module
 * documentation for the calls the sender makes around loss recovery.
 */
export interface CongestionControl {
  /** Which algorithm this is. */
  readonly name: CongestionControlName;
  /** The congestion window in bytes, including any recovery inflation. */
  readonly cwnd: number;
  /** The slow start threshold in bytes; `Infinity` until the first loss (RFC 5681 §3.1). */
  readonly ssthresh: number;
  /** The sender maximum segment size in bytes (SMSS). */
  readonly mss: number;
  /** Between `onCongestionEvent` and `onRecoveryExit` / `onRetransmissionTimeout`. */
  readonly inRecovery: boolean;
  /**
   * New data cumulatively acknowledged outside recovery (RFC 5681 §3.1).
   * Ignored unless `bytesAcked > 0`, and during recovery. `rttMs` is the
   * latest RTT sample if this ACK gave one; `inFlightBeforeAck` the bytes
   * outstanding before this ACK (SND.NXT - SND.UNA), used to detect an
   * application-limited sender (pass `Infinity` to disable).
   */
  onAck(
    bytesAcked: number,
    now: number,
    rttMs: number | undefined,
    inFlightBeforeAck: number,
  ): void;
  /**
   * Loss detected by fast retransmit or SACK (RFC 5681 §3.2 step 2;
   * RFC 9438 §4.6): enter recovery, set ssthresh from `flightSize` (bytes)
   * and cwnd = ssthresh. A no-op while already in recovery (one reduction
   * per window of data, RFC 6582).
   */
  onCongestionEvent(now: number, flightSize: number): void;
  /**
   * One duplicate ACK during non-SACK recovery: cwnd += SMSS
   * (RFC 5681 §3.2 steps 3 and 4). Ignored outside recovery.
   */
  onDupAck(): void;
  /**
   * A partial ACK during non-SACK recovery (RFC 6582 §3.2 step 3): deflate
   * cwnd by `bytesAcked`, then add back SMSS if `bytesAcked >= SMSS`.
   * Ignored outside recovery.
   */
  onPartialAck(bytesAcked: number): void;
  /**
   * The full ACK ended recovery (RFC 6582 §3.2 step 3): cwnd =
   * min(ssthresh, max(flightSize, SMSS) + SMSS), which deflates any
   * inflation without a burst. After SACK recovery, where cwnd was never
   * inflated, pass `Infinity`: cwnd = ssthresh (RFC 6675, RFC 6937 §3).
   * Ignored outside recovery.
   */
  onRecoveryExit(now: number, flightSize: number): void;
  /**
   * The retransmission timer expired (RFC 5681 §3.1 eq. 4; RFC 9438 §4.8):
   * ssthresh from `flightSize` unless this is a repeated timeout, cwnd = 1
   * SMSS (the loss window), recovery ends.
   */
  onRetransmissionTimeout(now: number, flightSize: number): void;
  /**
   * Sending resumes after an idle period longer than the RTO
   * (RFC 5681 §4.1): cwnd = min(cwnd, IW).
   */
  onIdleRestart(now: number): void;
  /**
   * The SMSS changed (e.g. path MTU discovery): cwnd and ssthresh keep their
   * size in segments.
   *
   * @throws {RangeError} when `mss` is not a positive integer.
   */
  setMss(mss: number): void;
}

/** Options shared by the algorithms. */
export interface CongestionOptions {
  /** The sender maximum segment size (SMSS) in bytes. */
  mss: number;
  /**
   * Initial window in segments (RFC 6928: 10). The initial window is
   * min(n*SMSS, max(2*SMSS, n*1460)), RFC 6928 §2 with 10 replaced by n.
   */
  initialWindowSegments?: number;
  /** CUBIC only: fast convergence (RFC 9438 §4.7), default `true` like Linux. */
  fastConvergence?: boolean;
  /**
   * Ends slow start on HyStart's ACK train (see `hystart`) while cwnd is at
   * most {@linkcode HYSTART_ACK_TRAIN_MAX_BYTES}, as a paced sender does
   * (default `false`): for receivers with small queues, where a flight
   * overflows within the first round.
   */
  ackTrain?: boolean;
  /**
   * Congestion avoidance holds cwnd while the flow's own queue is long: an
   * ACK whose RTT exceeds the minimum RTT of the last 10 s by HyStart++'s
   * margin (RFC 9406 §4.2: max(4 ms, min(RTT/8, 16 ms))) does not grow the
   * window, as if the sender were application-limited (default `false`;
   * paced senders set it), while cwnd is at most
   * {@linkcode DELAY_BOUND_MAX_BYTES}. Loss-based growth alone refills a
   * queue of a few frames (v86's NE2000) until it overflows, one drop every
   * few dozen segments; bounded by delay the queue stays below the margin.
   * The reduction on loss is unchanged, so a path whose RTT rose for good
   * holds its window at most 10 s before the new RTT becomes the minimum.
   */
  delayBound?: boolean;
}

/**
 * The initial window in bytes for an SMSS (RFC 6928 §2):
 * min(n*SMSS, max(2*SMSS, n*1460)) with n = `segments` (default 10).
 *
 * @example
 * ```ts
 * initialWindow(1460); // 14600
 * initialWindow(536); // 5360
 * initialWindow(9000); // 18000
 * ```
 */
export function initialWindow(mss: number, segments = 10): number {
  const cap = Math.max(2 * mss, segments * 1460);
  return Math.min(segments * mss, cap);
}

/** HyStart++ (RFC 9406 §4.3): the smallest RTT increase that ends slow start, ms. */
export const HYSTART_MIN_RTT_THRESH_MS = 4;
/** HyStart++: the largest RTT increase threshold, ms. */
export const HYSTART_MAX_RTT_THRESH_MS = 16;
/** HyStart++: the threshold is the last round's minimum RTT divided by this. */
const HYSTART_MIN_RTT_DIVISOR = 8;
/** HyStart++: RTT samples a round needs before it is compared. */
const HYSTART_N_RTT_SAMPLE = 8;
/** HyStart++: growth in conservative slow start is this many times slower. */
const HYSTART_CSS_GROWTH_DIVISOR = 4;
/** HyStart++: rounds of conservative slow start before congestion avoidance. */
const HYSTART_CSS_ROUNDS = 5;
/**
 * HyStart's ACK train acts only while cwnd is at most this many bytes: it
 * is there for receivers whose queue is smaller than a few flights (an
 * emulated NIC's ring: v86's NE2000 holds 16 KiB). Above it, a flight that
 * takes longer than the minimum RTT to be acknowledged is mostly a sender
 * bound by its own CPU (a queue that waits, not one that drops), and ending
 * slow start there left a kernel peer at 0.79× of its unpaced throughput;
 * HyStart++'s RTT test and loss govern larger windows.
 */
export const HYSTART_ACK_TRAIN_MAX_BYTES = 64 * 1024;

/** The window over which the minimum RTT of {@linkcode CongestionOptions.delayBound} is kept, ms. */
export const MIN_RTT_WINDOW_MS = 10_000;
/**
 * {@linkcode CongestionOptions.delayBound} holds windows of at most this
 * many bytes. The loss-based sawtooth overflows a queue about once per W²
 * segments (W in segments, Reno-friendly growth): 1.1 % at the 12 segments
 * of an emulated NIC, about 1 in 16,000 segments at 256 KiB. Above it,
 * holding growth on delay can only cost throughput on paths whose RTT
 * rises with batching rather than with the window (a sender bound by its
 * own CPU: against a kernel peer at MTU 65520, samples of 4-8 ms beside a
 * minimum of 0 ms with cwnd at 8 MB), where a window cut by a loss would
 * stay cut.
 */
export const DELAY_BOUND_MAX_BYTES = 256 * 1024;

/** Whether an ACK brought a usable RTT sample (ms): present, finite and not negative. */
function isRttSample(rttMs: number | undefined): rttMs is number {
  return rttMs !== undefined && rttMs >= 0 && rttMs !== Infinity;
}

/**
 * HyStart++'s margin for an RTT `rttMs` (RFC 9406 §4.2): RTT/8, at least 4
 * ms and at most 16 ms: a rise of a round's minimum RTT by this much means
 * a queue is building.
 */
function hystartEta(rttMs: number): number {
  const d = rttMs / HYSTART_MIN_RTT_DIVISOR;
  return Math.max(
    HYSTART_MIN_RTT_THRESH_MS,
    d < HYSTART_MAX_RTT_THRESH_MS ? d : HYSTART_MAX_RTT_THRESH_MS,
  );
}

function checkMss(mss: number, who: string): void {
  if (!(Number.isInteger(mss) && mss > 0)) {
    throw new RangeError(`${who}: mss must be a positive integer, got ${mss}`);
  }
}

/**
 * State and rules shared by {@linkcode NewReno} and {@linkcode Cubic}: the
 * initial window (RFC 6928), slow start with appropriate byte counting
 * (RFC 3465), window inflation and deflation during fast recovery
 * (RFC 5681 §3.2, RFC 6582 §3.2), restart after idle (RFC 5681 §4.1), MSS
 * changes. An algorithm supplies `onAck`, `onCongestionEvent`,
 * `onRetransmissionTimeout` and the three hooks.
 *
 * @example
 * ```ts
 * const cc: CongestionControlBase = new NewReno({ mss: 1460 });
 * cc.onDupAck(); // outside recovery: no effect
 * ```
 */
export abstract class CongestionControlBase {
  /** SMSS in bytes. */
  protected smss: number;
  /** Initial window in segments (RFC 6928). */
  protected readonly iwSegments: number;
  /** Whether HyStart's ACK train may end slow start ({@linkcode CongestionOptions.ackTrain}). */
  readonly #ackTrain: boolean;
  /** Whether a long queue holds growth in congestion avoidance ({@linkcode CongestionOptions.delayBound}). */
  readonly #delayBound: boolean;
  /** The minimum RTT sample (ms) of the window that began at `#minRttAt`. */
  #minRtt = Infinity;
  /** When the current minimum RTT was taken (ms). */
  #minRttAt = 0;
  /** The latest RTT sample exceeded the minimum by HyStart++'s margin. */
  #queueLong = false;
  /** cwnd in bytes; may be fractional (CUBIC), the getter floors it. */
  protected cwndBytes: number;
  /** ssthresh in bytes. */
  protected ssthreshBytes: number = Infinity;
  /** In fast recovery. */
  protected recovering = false;
  /** An RTO fired and no new data has been acknowledged since (RFC 5681 §3.1). */
  protected afterRto = false;
  /** Slow start following an RTO counts at most 1 SMSS per ACK (RFC 3465 §2.3). */
  protected slowStartAfterRto = false;
  /** HyStart++ (RFC 9406): bytes left to acknowledge in the current round; 0 before one. */
  #hsRoundLeft = 0;
  /** HyStart++: the previous round's minimum RTT (ms). */
  #hsLastMin = Infinity;
  /** HyStart++: this round's minimum RTT (ms). */
  #hsMin = Infinity;
  /** HyStart++: RTT samples this round. */
  #hsSamples = 0;
  /** HyStart++: the minimum RTT that started conservative slow start; Infinity outside it. */
  #hsCssBaseline = Infinity;
  /** HyStart++: rounds completed in conservative slow start. */
  #hsCssRounds = 0;
  /** HyStart's ACK train: when the current round began (ms). */
  #hsRoundStart = 0;
  /** HyStart's ACK train: the smallest RTT seen in slow start (ms). */
  #hsDelayMin = Infinity;

  /**
   * Starts with cwnd = IW (RFC 6928) and ssthresh = Infinity (RFC 5681 §3.1).
   *
   * @throws {RangeError} on a bad `mss` or `initialWindowSegments`.
   */
  constructor(options: CongestionOptions, who: string) {
    checkMss(options?.mss, who);
    const n = options.initialWindowSegments ?? 10;
    if (!(Number.isInteger(n) && n > 0)) {
      throw new RangeError(`${who}: initialWindowSegments must be a positive integer, got ${n}`);
    }
    this.smss = options.mss;
    this.iwSegments = n;
    this.#ackTrain = options.ackTrain ?? false;
    this.#delayBound = options.delayBound ?? false;
    this.cwndBytes = initialWindow(this.smss, n);
  }

  /** The congestion window in bytes. */
  get cwnd(): number {
    return Math.floor(this.cwndBytes);
  }

  /** The slow start threshold in bytes, `Infinity` before the first loss. */
  get ssthresh(): number {
    return this.ssthreshBytes;
  }

  /** The sender maximum segment size in bytes. */
  get mss(): number {
    return this.smss;
  }

  /** Whether a fast recovery is in progress. */
  get inRecovery(): boolean {
    return this.recovering;
  }

  /**
   * Whether the sender used its window (RFC 9438 §5.8, RFC 7661): in slow
   * start at least half of cwnd was in flight, in congestion avoidance all
   * but less than one SMSS.
   */
  protected cwndLimited(inFlight: number): boolean {
    if (this.cwndBytes < this.ssthreshBytes) return 2 * inFlight >= this.cwndBytes;
    return inFlight + this.smss > this.cwndBytes;
  }

  /**
   * With {@linkcode CongestionOptions.delayBound}: whether the flow's queue
   * is long enough that congestion avoidance holds the window. Takes every
   * RTT sample (undefined: none with this ACK, the last verdict stands).
   */
  protected queueHolds(now: number, rttMs: number | undefined): boolean {
    if (!this.#delayBound) return false;
    if (isRttSample(rttMs)) {
      if (rttMs <= this.#minRtt || now - this.#minRttAt > MIN_RTT_WINDOW_MS) {
        this.#minRtt = rttMs;
        this.#minRttAt = now;
      }
      this.#queueLong = rttMs >= this.#minRtt + hystartEta(this.#minRtt);
    }
    return this.#queueLong && this.cwndBytes <= DELAY_BOUND_MAX_BYTES;
  }

  /** Whether HyStart++ has the initial slow start in its conservative phase (RFC 9406 §4.2). */
  get conservativeSlowStart(): boolean {
    return this.#hsCssBaseline !== Infinity && this.ssthreshBytes === Infinity;
  }

  /**
   * HyStart++ (RFC 9406 §4.2), in the initial slow start only (ssthresh
   * still Infinity): rounds of one flight each; when the minimum RTT of a
   * round with at least 8 samples exceeds the previous round's by
   * max(4 ms, min(RTT/8, 16 ms)) — a queue is building — slow start turns
   * conservative (a quarter of the growth); if the RTT falls back, slow
   * start resumes; after 5 conservative rounds, congestion avoidance
   * begins (ssthresh = cwnd). Besides, with `ackTrain` (paced senders), as
   * Linux's HyStart, the ACK train: a round whose ACKs still arrive a minimum RTT after it began carried
   * more than the path holds, and congestion avoidance begins at once; this
   * acts within the first flight, which the comparison of rounds cannot (an
   * initial window into a NIC of 10 frames). A round begins with the first
   * ACK past the previous flight. Called with every ACK of new data in slow
   * start, before the window grows. `inFlight` is what was outstanding
   * before this ACK.
   */
  protected hystart(
    bytesAcked: number,
    now: number,
    rttMs: number | undefined,
    inFlight: number,
  ): void {
    if (this.ssthreshBytes !== Infinity) return;
    this.#hsRoundLeft -= bytesAcked;
    if (this.#hsRoundLeft < 0) {
      // A new round: one flight from now on.
      const left = inFlight - bytesAcked;
      this.#hsRoundLeft = left > 0 ? left : 0;
      this.#hsRoundStart = now;
      if (this.#hsCssBaseline !== Infinity && ++this.#hsCssRounds >= HYSTART_CSS_ROUNDS) {
        this.ssthreshBytes = Math.floor(this.cwndBytes); // congestion avoidance from here
        this.#hsCssBaseline = Infinity;
        return;
      }
      this.#hsLastMin = this.#hsMin;
      this.#hsMin = Infinity;
      this.#hsSamples = 0;
    }
    if (rttMs !== undefined && rttMs > 0 && rttMs < this.#hsDelayMin) this.#hsDelayMin = rttMs;
    // The ACK train (Linux HyStart's first test): the ACKs of one flight still arrive a minimum
    // RTT after the round began, so the flight is more than the path holds. Samples are whole
    // ms (RFC 7323 timestamps), hence >=. From the initial window on (Linux waits for 16
    // segments, which into a NIC that holds 10 is already an overflow), and only for windows
    // a small queue cannot hold (HYSTART_ACK_TRAIN_MAX_BYTES).
    if (
      this.#ackTrain && now - this.#hsRoundStart >= this.#hsDelayMin &&
      this.cwndBytes <= HYSTART_ACK_TRAIN_MAX_BYTES && this.cwndLimited(inFlight) &&
      this.cwndBytes >= initialWindow(this.smss, this.iwSegments)
    ) {
      this.ssthreshBytes = Math.floor(this.cwndBytes);
      this.#hsCssBaseline = Infinity;
      return;
    }
    if (rttMs === undefined || !(rttMs >= 0)) return;
    if (rttMs < this.#hsMin) this.#hsMin = rttMs;
    if (++this.#hsSamples < HYSTART_N_RTT_SAMPLE) return;
    if (this.#hsCssBaseline === Infinity) {
      if (this.#hsLastMin === Infinity || this.#hsMin === Infinity) return;
      if (this.#hsMin >= this.#hsLastMin + hystartEta(this.#hsLastMin)) {
        this.#hsCssBaseline = this.#hsMin;
        this.#hsCssRounds = 0;
      }
    } else if (this.#hsMin < this.#hsCssBaseline) {
      this.#hsCssBaseline = Infinity; // the RTT rise was spurious: back to slow start
    }
  }

  /**
   * Slow start with appropriate byte counting (RFC 3465 §2.2, RFC 5681 §3.1):
   * cwnd += min(bytesAcked, L), L = 2*SMSS (1*SMSS after an RTO), a quarter
   * of it in HyStart++'s conservative slow start, never past ssthresh.
   */
  protected slowStart(bytesAcked: number): void {
    const limit = this.slowStartAfterRto ? this.smss : 2 * this.smss;
    let grow = bytesAcked < limit ? bytesAcked : limit;
    if (this.conservativeSlowStart) grow /= HYSTART_CSS_GROWTH_DIVISOR;
    const next = this.cwndBytes + grow;
    if (next >= this.ssthreshBytes) {
      this.cwndBytes = this.ssthreshBytes;
      this.slowStartAfterRto = false;
    } else {
      this.cwndBytes = next;
    }
  }

  /** One duplicate ACK during non-SACK recovery: cwnd += SMSS (RFC 5681 §3.2 steps 3-4). */
  onDupAck(): void {
    if (this.recovering) this.cwndBytes += this.smss;
  }

  /**
   * A partial ACK during non-SACK recovery (RFC 6582 §3.2 step 3): cwnd -=
   * bytesAcked, then += SMSS if bytesAcked >= SMSS; never below 1 SMSS.
   */
  onPartialAck(bytesAcked: number): void {
    if (!this.recovering || !(bytesAcked > 0)) return;
    let cwnd = this.cwndBytes - bytesAcked;
    if (bytesAcked >= this.smss) cwnd += this.smss;
    this.cwndBytes = cwnd > this.smss ? cwnd : this.smss;
  }

  /** The full ACK (RFC 6582 §3.2 step 3): cwnd = min(ssthresh, max(flightSize, SMSS) + SMSS). */
  onRecoveryExit(now: number, flightSize: number): void {
    if (!this.recovering) return;
    this.recovering = false;
    const flight = flightSize > this.smss ? flightSize : this.smss;
    const cwnd = flight + this.smss;
    this.cwndBytes = cwnd < this.ssthreshBytes ? cwnd : this.ssthreshBytes;
    this.exitedRecovery(now);
  }

  /** Restart after idle (RFC 5681 §4.1): cwnd = min(cwnd, IW). */
  onIdleRestart(now: number): void {
    const iw = initialWindow(this.smss, this.iwSegments);
    if (this.cwndBytes > iw) this.cwndBytes = iw;
    this.restarted(now);
  }

  /**
   * The SMSS changed: cwnd and ssthresh keep their size in segments.
   *
   * @throws {RangeError} when `mss` is not a positive integer.
   */
  setMss(mss: number): void {
    checkMss(mss, `${this.constructor.name}.setMss`);
    const old = this.smss;
    if (mss === old) return;
    this.smss = mss;
    const cwnd = Math.round((this.cwndBytes * mss) / old);
    this.cwndBytes = cwnd > mss ? cwnd : mss;
    if (this.ssthreshBytes !== Infinity) {
      const ssthresh = Math.round((this.ssthreshBytes * mss) / old);
      this.ssthreshBytes = ssthresh > 2 * mss ? ssthresh : 2 * mss;
    }
    this.mssChanged(old, mss);
  }

  /** Hook: recovery ended (cwnd already set). */
  protected abstract exitedRecovery(now: number): void;
  /** Hook: idle restart (cwnd already reduced). */
  protected abstract restarted(now: number): void;
  /** Hook: the SMSS changed (cwnd and ssthresh already rescaled). */
  protected abstract mssChanged(oldMss: number, newMss: number): void;
}

/**
 * NewReno: RFC 5681 slow start and congestion avoidance with RFC 3465
 * appropriate byte counting, RFC 5681 §3.2 fast recovery with the RFC 6582
 * partial-ACK rules (driven by the caller, see the module documentation).
 *
 * - Slow start: cwnd += min(bytesAcked, 2*SMSS) per ACK.
 * - Congestion avoidance (RFC 3465 §2.1 / RFC 5681 §3.1 byte counting):
 *   once a whole cwnd of bytes has been acknowledged, cwnd += SMSS, i.e.
 *   SMSS*SMSS/cwnd per SMSS acknowledged, about 1 SMSS per RTT whatever the
 *   ACK pattern.
 * - Loss and RTO: ssthresh = max(FlightSize/2, 2*SMSS) (RFC 5681 eq. 4).
 *
 * @example
 * ```ts
 * const cc = new NewReno({ mss: 1460 });
 * cc.cwnd; // 14600
 * cc.onAck(1460, 0, 50, 14600); // slow start: 16060
 * cc.onCongestionEvent(100, 20000); // ssthresh = cwnd = 10000
 * ```
 */
export class NewReno extends CongestionControlBase implements CongestionControl {
  /** Always `"newreno"`. */
  readonly name = "newreno" as const;
  #bytesAcked = 0;

  /**
   * A NewReno window with cwnd = IW (RFC 6928) and ssthresh = Infinity.
   *
   * @throws {RangeError} on a bad `mss` or `initialWindowSegments`.
   */
  constructor(options: CongestionOptions) {
    super(options, "NewReno");
  }

  onAck(
    bytesAcked: number,
    now: number,
    rttMs: number | undefined,
    inFlightBeforeAck: number,
  ): void {
    const held = this.queueHolds(now, rttMs);
    if (!(bytesAcked > 0) || this.recovering) return;
    this.afterRto = false;
    if (this.cwndBytes < this.ssthreshBytes) {
      this.hystart(bytesAcked, now, rttMs, inFlightBeforeAck);
    }
    if (!this.cwndLimited(inFlightBeforeAck)) return;
    if (this.cwndBytes < this.ssthreshBytes) {
      this.slowStart(bytesAcked);
      return;
    }
    if (held) return;
    // RFC 3465 §2.1: count bytes; one SMSS per cwnd's worth acknowledged.
    this.#bytesAcked += bytesAcked;
    if (this.#bytesAcked >= this.cwndBytes) {
      this.#bytesAcked -= this.cwndBytes;
      this.cwndBytes += this.smss;
    }
  }

  onCongestionEvent(_now: number, flightSize: number): void {
    if (this.recovering) return;
    this.#reduceSsthresh(flightSize);
    this.cwndBytes = this.ssthreshBytes;
    this.#bytesAcked = 0;
    this.recovering = true;
    this.slowStartAfterRto = false;
  }

  onRetransmissionTimeout(_now: number, flightSize: number): void {
    if (!this.afterRto) this.#reduceSsthresh(flightSize);
    this.cwndBytes = this.smss;
    this.#bytesAcked = 0;
    this.recovering = false;
    this.afterRto = true;
    this.slowStartAfterRto = true;
  }

  /** RFC 5681 eq. 4: ssthresh = max(FlightSize / 2, 2*SMSS). */
  #reduceSsthresh(flightSize: number): void {
    const half = Math.floor((flightSize > 0 ? flightSize : 0) / 2);
    this.ssthreshBytes = half > 2 * this.smss ? half : 2 * this.smss;
  }

  /** Restarts the congestion avoidance byte count. */
  protected exitedRecovery(): void {
    this.#bytesAcked = 0;
  }

  /** Restarts the congestion avoidance byte count. */
  protected restarted(): void {
    this.#bytesAcked = 0;
  }

  /** Rescales the congestion avoidance byte count. */
  protected mssChanged(oldMss: number, newMss: number): void {
    this.#bytesAcked = Math.round((this.#bytesAcked * newMss) / oldMss);
  }
}

/** CUBIC's scaling constant C (RFC 9438 §4.1.1): 0.4 segments/s³. */
export const CUBIC_C = 0.4;
/** CUBIC's multiplicative decrease factor β_cubic (RFC 9438 §4.1.1): 0.7. */
export const CUBIC_BETA = 0.7;
/** α_cubic = 3 * (1 - β) / (1 + β) (RFC 9438 §4.3), about 0.529. */
export const CUBIC_ALPHA = (3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA);

/**
 * CUBIC (RFC 9438). The window is kept in bytes but the cubic function is
 * evaluated in segments, as in the RFC:
 *
 * - W_cubic(t) = C*(t - K)³ + W_max, K = ∛((W_max - cwnd_epoch) / C), with t
 *   in seconds since the start of the congestion avoidance epoch (§4.2).
 *   The epoch starts at the first ACK in congestion avoidance after a
 *   reduction; application-limited and idle periods are excluded from t by
 *   moving the epoch start (§5.8).
 * - Each ACK moves cwnd towards target = W_cubic(t + RTT), clamped to
 *   [cwnd, 1.5*cwnd], by (target - cwnd)/cwnd per segment acknowledged
 *   (§4.4, §4.5). RTT is a smoothed value of the samples given to `onAck`.
 * - Reno-friendly region (§4.3): W_est starts at cwnd_epoch and grows by
 *   α_cubic * segments_acked / cwnd (α = 1 once W_est ≥ cwnd_prior); while
 *   W_cubic(t) < W_est, cwnd follows W_est.
 * - Loss (§4.6): ssthresh = max(FlightSize * β, 2*SMSS), cwnd = ssthresh;
 *   W_max = cwnd before the reduction, or cwnd * (1 + β)/2 with fast
 *   convergence when cwnd had not reached the previous W_max (§4.7).
 * - Timeout (§4.8): ssthresh as on loss, cwnd = 1 SMSS; the next epoch uses
 *   K = 0 and W_max = cwnd_epoch.
 * - Slow start (§4.10) is standard slow start with appropriate byte
 *   counting, with HyStart++ (RFC 9406) in the initial slow start.
 *
 * @example
 * ```ts
 * const cc = new Cubic({ mss: 1460 });
 * cc.onCongestionEvent(0, cc.cwnd); // W_max = 10 segments, ssthresh = cwnd = 10220
 * cc.onRecoveryExit(50, cc.cwnd);
 * cc.onAck(1460, 100, 50, cc.cwnd); // the congestion avoidance epoch starts
 * cc.k; // ∛((10 - 7) / 0.4) ≈ 1.96 s
 * ```
 */
export class Cubic extends CongestionControlBase implements CongestionControl {
  /** Always `"cubic"`. */
  readonly name = "cubic" as const;
  readonly #fastConvergence: boolean;
  /** Segments. 0 until the first congestion event. */
  #wMax = 0;
  /** Segments: cwnd before the last reduction. */
  #cwndPrior = 0;
  /** Segments: the Reno-friendly estimate. */
  #wEst = 0;
  /** Seconds. */
  #k = 0;
  /** ms; NaN when no epoch is running. */
  #epochStart = NaN;
  /** ms; time of the last `onAck`. */
  #lastAck = NaN;
  /** ms; smoothed RTT of the samples passed in, NaN before the first. */
  #srtt = NaN;
  /** The next epoch follows a timeout (RFC 9438 §4.8). */
  #epochAfterTimeout = false;

  /**
   * A CUBIC window with cwnd = IW (RFC 6928), ssthresh = Infinity and fast
   * convergence unless `fastConvergence: false` (RFC 9438 §4.7).
   *
   * @throws {RangeError} on a bad `mss` or `initialWindowSegments`.
   */
  constructor(options: CongestionOptions) {
    super(options, "Cubic");
    this.#fastConvergence = options.fastConvergence ?? true;
  }

  /** W_max in segments (RFC 9438 §4.1.2); 0 before the first congestion event. */
  get wMax(): number {
    return this.#wMax;
  }

  /** K in seconds of the current epoch (RFC 9438 §4.2). */
  get k(): number {
    return this.#k;
  }

  /** W_est in segments (RFC 9438 §4.3) of the current epoch. */
  get wEst(): number {
    return this.#wEst;
  }

  /** Start of the current congestion avoidance epoch in ms, `undefined` when none runs. */
  get epochStart(): number | undefined {
    return this.#epochStart === this.#epochStart ? this.#epochStart : undefined;
  }

  onAck(
    bytesAcked: number,
    now: number,
    rttMs: number | undefined,
    inFlightBeforeAck: number,
  ): void {
    if (isRttSample(rttMs)) {
      this.#srtt = this.#srtt === this.#srtt ? this.#srtt + (rttMs - this.#srtt) / 8 : rttMs;
    }
    const held = this.queueHolds(now, rttMs);
    if (!(bytesAcked > 0) || this.recovering) return;
    this.afterRto = false;
    const slowStart = this.cwndBytes < this.ssthreshBytes;
    if (slowStart) this.hystart(bytesAcked, now, rttMs, inFlightBeforeAck);
    const sinceLast = now - this.#lastAck;
    this.#lastAck = now;
    if (!this.cwndLimited(inFlightBeforeAck) || (held && !slowStart)) {
      // RFC 9438 §4.2/§5.8: t must not include application-limited periods (nor, bounded by
      // delay, those the queue held the window).
      if (this.#epochStart === this.#epochStart && sinceLast > 0) this.#epochStart += sinceLast;
      return;
    }
    if (this.cwndBytes < this.ssthreshBytes) {
      this.slowStart(bytesAcked);
      return;
    }
    this.#congestionAvoidance(bytesAcked, now);
  }

  #congestionAvoidance(bytesAcked: number, now: number): void {
    const mss = this.smss;
    let cwnd = this.cwndBytes / mss;
    if (this.#epochStart !== this.#epochStart) {
      // A new congestion avoidance epoch (RFC 9438 §4.2, §4.8, §4.10).
      this.#epochStart = now;
      if (this.#epochAfterTimeout || this.#wMax <= cwnd) {
        this.#wMax = cwnd;
        this.#k = 0;
      } else {
        this.#k = Math.cbrt((this.#wMax - cwnd) / CUBIC_C);
      }
      this.#wEst = cwnd;
      this.#epochAfterTimeout = false;
    }
    const segmentsAcked = bytesAcked / mss;
    const t = (now - this.#epochStart) / 1000;
    // §4.3 eq. 4, α = 1 once W_est has reached cwnd_prior.
    const alpha = this.#wEst >= this.#cwndPrior ? 1 : CUBIC_ALPHA;
    this.#wEst += (alpha * segmentsAcked) / cwnd;
    const d = t - this.#k;
    const wCubic = CUBIC_C * d * d * d + this.#wMax;
    if (wCubic < this.#wEst) {
      // Reno-friendly region: follow W_est (never shrink on an ACK).
      if (this.#wEst > cwnd) cwnd = this.#wEst;
    } else {
      // Concave (cwnd < W_max) or convex region, §4.4 / §4.5.
      const rtt = this.#srtt === this.#srtt ? this.#srtt / 1000 : 0;
      const e = t + rtt - this.#k;
      let target = CUBIC_C * e * e * e + this.#wMax;
      if (target < cwnd) target = cwnd;
      else if (target > 1.5 * cwnd) target = 1.5 * cwnd;
      cwnd += ((target - cwnd) / cwnd) * segmentsAcked;
    }
    this.cwndBytes = cwnd * mss;
  }

  onCongestionEvent(_now: number, flightSize: number): void {
    if (this.recovering) return;
    const cwnd = this.cwndBytes / this.smss;
    // §4.7 fast convergence, before the reduction.
    this.#wMax = this.#fastConvergence && cwnd < this.#wMax ? (cwnd * (1 + CUBIC_BETA)) / 2 : cwnd;
    this.#cwndPrior = cwnd;
    this.#reduceSsthresh(flightSize);
    this.cwndBytes = this.ssthreshBytes;
    this.#epochStart = NaN;
    this.recovering = true;
    this.slowStartAfterRto = false;
  }

  onRetransmissionTimeout(_now: number, flightSize: number): void {
    if (!this.afterRto) {
      this.#cwndPrior = this.cwndBytes / this.smss;
      this.#reduceSsthresh(flightSize);
    }
    this.cwndBytes = this.smss;
    this.#epochStart = NaN;
    this.#epochAfterTimeout = true;
    this.recovering = false;
    this.afterRto = true;
    this.slowStartAfterRto = true;
  }

  /** §4.6: ssthresh = max(FlightSize * β_cubic, 2*SMSS). */
  #reduceSsthresh(flightSize: number): void {
    const reduced = Math.round((flightSize > 0 ? flightSize : 0) * CUBIC_BETA);
    this.ssthreshBytes = reduced > 2 * this.smss ? reduced : 2 * this.smss;
  }

  /** Notes the time, for the application-limited check of the next ACK. */
  protected exitedRecovery(now: number): void {
    this.#lastAck = now;
  }

  /** Shifts the epoch start by the idle time (RFC 9438 §5.8). */
  protected restarted(now: number): void {
    // Shift the epoch by the idle time so the curve keeps its shape (§5.8).
    const idle = now - this.#lastAck;
    if (this.#epochStart === this.#epochStart && idle > 0) this.#epochStart += idle;
    this.#lastAck = now;
  }

  /** Nothing to do: W_max, W_est and cwnd_prior are kept in segments. */
  protected mssChanged(): void {
    // W_max, W_est and cwnd_prior are in segments already.
  }
}

/**
 * Creates the named algorithm.
 *
 * @throws {TypeError} for an unknown name; {@linkcode RangeError} for bad options.
 * @example
 * ```ts
 * const cc = createCongestionControl("cubic", { mss: 1460 });
 * cc.cwnd; // 14600 (RFC 6928)
 * ```
 */
export function createCongestionControl(
  name: CongestionControlName,
  options: CongestionOptions,
): CongestionControl {
  switch (name) {
    case "newreno":
      return new NewReno(options);
    case "cubic":
      return new Cubic(options);
    default:
      throw new TypeError(
        `createCongestionControl: unknown algorithm ${
          JSON.stringify(name)
        }, expected "newreno" or "cubic"`,
      );
  }
}
