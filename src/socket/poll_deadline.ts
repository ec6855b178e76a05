/**
 * The one timeout mechanism of the socket layer: a wait (accept, connect,
 * receive, send-buffer space) ends when one of the caller's signals aborts or
 * when its timeout passes on the session's clock, whichever comes first.
 * Because the clock is the session's injected one, tests advance time instead
 * of sleeping; a server runs on the system clock.
 *
 * @module
 */

/**
 * The clock a wait runs on: monotonic milliseconds and one-shot timers. The
 * session's `Clock` (src/session/clock.ts) is one; this layer names only
 * what it uses, since it sits below the session.
 */
export interface TimerClock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Calls `fn` once when `now()` reaches `at`; returns a handle for {@linkcode TimerClock.clearTimer}. */
  setTimer(at: number, fn: () => void): number;
  /** Cancels a timer; unknown or fired handles are ignored. */
  clearTimer(handle: number): void;
}

/** How long a long-poll of the socket table waits when the caller names no timeout (ms). */
export const DEFAULT_POLL_TIMEOUT_MS = 30_000;
/** The longest wait a long-poll of the socket table accepts (ms). */
export const MAX_POLL_TIMEOUT_MS = 60_000;

/** Options every long-poll takes. */
export interface PollOptions {
  /** The caller going away (an HTTP request's signal). */
  signal?: AbortSignal;
  /** How long to wait; {@linkcode DEFAULT_POLL_TIMEOUT_MS} when absent. */
  timeoutMs?: number;
}

/**
 * The timeout of a socket-table long-poll: `timeoutMs`, or the default, and
 * at most {@linkcode MAX_POLL_TIMEOUT_MS}.
 *
 * @example
 * ```ts
 * pollTimeout(undefined); // 30000
 * pollTimeout(90_000); // 60000
 * ```
 */
export function pollTimeout(timeoutMs: number | undefined): number {
  return Math.min(timeoutMs ?? DEFAULT_POLL_TIMEOUT_MS, MAX_POLL_TIMEOUT_MS);
}

/**
 * The end of one wait: the first of `signals` to abort, or `timeoutMs` on
 * `clock` (a `TimeoutError` DOMException as the reason, and
 * {@linkcode PollDeadline.timedOut} set). A timeout of 0 or less has passed
 * already: the wait checks its condition once. Without a timeout only the
 * signals end it. {@linkcode PollDeadline.dispose} removes the timer and
 * every listener, so nothing stays behind.
 *
 * @example
 * ```ts
 * const wait = new PollDeadline(session.clock, [request.signal], 5000);
 * try {
 *   await waiters.wait(wait.signal);
 * } catch (err) {
 *   if (wait.timedOut) return undefined; // nothing came in 5 s
 *   throw err;
 * } finally {
 *   wait.dispose();
 * }
 * ```
 */
export class PollDeadline {
  /** Aborts when the wait ends early (a signal or the timeout). */
  readonly signal: AbortSignal;
  /** The timeout in force, or undefined for none. */
  readonly timeoutMs: number | undefined;
  /** Whether the timeout (not a signal) ended the wait. */
  timedOut = false;
  #ac = new AbortController();
  #deadline: Deadline | undefined;
  #sources: Array<[AbortSignal, () => void]> = [];

  /** Starts the deadline now. */
  constructor(
    clock: TimerClock,
    signals: ReadonlyArray<AbortSignal | undefined>,
    timeoutMs: number | undefined,
  ) {
    this.signal = this.#ac.signal;
    this.timeoutMs = timeoutMs;
    for (const s of signals) {
      if (!s) continue;
      if (s.aborted) {
        this.#ac.abort(s.reason);
        return;
      }
      const on = () => this.#ac.abort(s.reason);
      s.addEventListener("abort", on, { once: true });
      this.#sources.push([s, on]);
    }
    if (timeoutMs === undefined) return;
    if (timeoutMs <= 0) {
      this.#expire();
      return;
    }
    this.#deadline = deadlinesOf(clock).add(clock.now() + timeoutMs, () => {
      this.#deadline = undefined;
      this.#expire();
    });
  }

  /** Whether a caller's signal (not the timeout) ended the wait. */
  get cancelled(): boolean {
    return this.#ac.signal.aborted && !this.timedOut;
  }

  /** Removes the timer and the listeners on the caller's signals. Idempotent. */
  dispose(): void {
    if (this.#deadline !== undefined) this.#deadline.list.remove(this.#deadline);
    this.#deadline = undefined;
    for (const [s, on] of this.#sources) s.removeEventListener("abort", on);
    this.#sources = [];
  }

  #expire(): void {
    if (this.#ac.signal.aborted) return;
    this.timedOut = true;
    this.#ac.abort(new DOMException("the wait timed out", "TimeoutError"));
  }
}

/** One wait's deadline in its clock's {@linkcode DeadlineList}. */
interface Deadline {
  readonly list: DeadlineList;
  readonly at: number;
  readonly expire: () => void;
  prev: Deadline | undefined;
  next: Deadline | undefined;
}

/**
 * The deadlines of every wait on one clock, in order, behind one timer of
 * the clock: most waits end long before their timeout (a recv that data
 * answers), so setting and clearing a runtime timer per wait would cost more
 * than the wait. The timer is set for the earliest deadline when it is
 * earlier than the one set; a wait that ends leaves it (it fires early once
 * and is set again for the deadline then first), except the last, which
 * clears it: no timer stays behind when no wait is left.
 */
class DeadlineList {
  #clock: TimerClock;
  #first: Deadline | undefined;
  #last: Deadline | undefined;
  #timer: number | undefined;
  #timerAt = Infinity;

  constructor(clock: TimerClock) {
    this.#clock = clock;
  }

  /** Calls `expire` once the clock reaches `at`, unless removed first. */
  add(at: number, expire: () => void): Deadline {
    const d: Deadline = { list: this, at, expire, prev: undefined, next: undefined };
    // Waits of one timeout come in deadline order: the place is found from the end.
    let after = this.#last;
    while (after !== undefined && after.at > at) after = after.prev;
    d.prev = after;
    d.next = after === undefined ? this.#first : after.next;
    if (d.next !== undefined) d.next.prev = d;
    else this.#last = d;
    if (after !== undefined) after.next = d;
    else this.#first = d;
    if (at < this.#timerAt) this.#arm(at);
    return d;
  }

  /** Takes `d` out (it will not expire); the last one out clears the timer. */
  remove(d: Deadline): void {
    if (d.prev !== undefined) d.prev.next = d.next;
    else if (this.#first === d) this.#first = d.next;
    else return; // removed already
    if (d.next !== undefined) d.next.prev = d.prev;
    else this.#last = d.prev;
    d.prev = d.next = undefined;
    if (this.#first === undefined && this.#timer !== undefined) {
      this.#clock.clearTimer(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Infinity;
    }
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timerAt = at;
    this.#timer = this.#clock.setTimer(at, () => this.#fire());
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#clock.now();
    const due: Deadline[] = [];
    for (let d = this.#first; d !== undefined && d.at <= now; d = this.#first) {
      this.remove(d);
      due.push(d);
    }
    // Set for what is left before the expired waits run (and perhaps start new ones).
    if (this.#first !== undefined) this.#arm(this.#first.at);
    for (const d of due) d.expire();
  }
}

const lists = new WeakMap<TimerClock, DeadlineList>();

function deadlinesOf(clock: TimerClock): DeadlineList {
  let list = lists.get(clock);
  if (list === undefined) lists.set(clock, list = new DeadlineList(clock));
  return list;
}

/**
 * Resolves after `ms` on `clock` (the session's), or rejects with the
 * signal's reason; leaves no timer or listener behind. For loops that poll
 * something no event announces (a WebSocket's `bufferedAmount`, a quota).
 *
 * @example
 * ```ts
 * while (ws.bufferedAmount > highWater) await sleepOn(session.clock, 10, signal);
 * ```
 */
export function sleepOn(clock: TimerClock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clock.clearTimer(t);
      reject(signal.reason);
    };
    const t = clock.setTimer(clock.now() + ms, () => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
