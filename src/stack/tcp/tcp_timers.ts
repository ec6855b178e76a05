/**
 * The deadlines of one TCP connection, in one object: every timer the
 * connection runs is a slot here, so one look shows what can wake it and
 * {@linkcode TcpTimers.nextDeadline} is the earliest of them. Deadlines are
 * absolute times of the injected clock (the core never reads a clock);
 * what a timer does when it fires is the connection's business
 * (`TcpConnection.poll`).
 *
 * @module
 */

/**
 * The timers of a connection, as slots of {@linkcode TcpTimers}. They fire
 * in this order when several are due at once.
 */
export const TcpTimer = {
  /** Tail loss probe (RFC 8985 §7). */
  TLP: 0,
  /** TIME-WAIT's 2·MSL (RFC 9293 §3.4.2). */
  TIME_WAIT: 1,
  /** How long an orphan waits in FIN-WAIT-2 for the peer's FIN. */
  FIN_WAIT_2: 2,
  /** Retransmission timeout (RFC 6298), which also retransmits a SYN or SYN-ACK. */
  RTO: 3,
  /** Zero-window probes and the SWS override (RFC 9293 §3.8.6.1, §3.8.6.2.1). */
  PERSIST: 4,
  /** Delayed ACK (RFC 9293 §3.8.6.3). */
  DELAYED_ACK: 5,
  /** Keepalive (RFC 9293 §3.8.4). */
  KEEPALIVE: 6,
} as const;

/** One of the {@linkcode TcpTimer} slots. */
export type TcpTimerKind = typeof TcpTimer[keyof typeof TcpTimer];

const SLOTS = 7;

/**
 * The deadlines of one connection: each slot is stopped or holds an absolute
 * time. Nothing here allocates; {@linkcode TcpTimers.nextDeadline} runs for
 * every connection after every core entry.
 *
 * @example
 * ```ts
 * const timers = new TcpTimers();
 * timers.start(TcpTimer.RTO, 1000);
 * timers.startIfStopped(TcpTimer.DELAYED_ACK, 1040);
 * timers.nextDeadline(); // 1000
 * timers.expire(TcpTimer.RTO, 1000); // true: due, and now stopped
 * ```
 */
export class TcpTimers {
  /** Deadline of each slot; Infinity when stopped. */
  readonly #at = new Float64Array(SLOTS).fill(Infinity);

  /** (Re)starts timer `kind` to fire at `at`. */
  start(kind: TcpTimerKind, at: number): void {
    this.#at[kind] = at;
  }

  /** Starts timer `kind` at `at` unless it is already running. */
  startIfStopped(kind: TcpTimerKind, at: number): void {
    if (this.#at[kind] === Infinity) this.#at[kind] = at;
  }

  /** Stops timer `kind`. */
  stop(kind: TcpTimerKind): void {
    this.#at[kind] = Infinity;
  }

  /** Stops every timer (the connection closed). */
  stopAll(): void {
    this.#at.fill(Infinity);
  }

  /** Whether timer `kind` is running. */
  running(kind: TcpTimerKind): boolean {
    return this.#at[kind] !== Infinity;
  }

  /** The deadline of timer `kind`, or undefined when it is stopped. */
  deadline(kind: TcpTimerKind): number | undefined {
    const at = this.#at[kind];
    return at === Infinity ? undefined : at;
  }

  /** Whether timer `kind` is due at `now`; a due timer is stopped (it fires once). */
  expire(kind: TcpTimerKind, now: number): boolean {
    if (now < this.#at[kind]) return false;
    this.#at[kind] = Infinity;
    return true;
  }

  /** The earliest deadline of all running timers, or undefined when none runs. */
  nextDeadline(): number | undefined {
    const at = this.#at;
    let d = at[0];
    for (let i = 1; i < SLOTS; i++) if (at[i] < d) d = at[i];
    return d === Infinity ? undefined : d;
  }
}
