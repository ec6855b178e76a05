/**
 * Clocks that drive a session: the system clock for servers and a manual clock
 * for deterministic tests. The stack core never reads time itself; the
 * session passes `clock.now()` into every call.
 *
 * @module
 */

/** A handle returned by {@linkcode Clock.setTimer}. */
export type TimerHandle = number;

/** Monotonic time in milliseconds and one-shot timers. */
export interface Clock {
  /** Monotonic milliseconds (fractional allowed). */
  now(): number;
  /** Calls `fn` once when `now()` reaches `at`. */
  setTimer(at: number, fn: () => void): TimerHandle;
  /** Cancels a timer; unknown or fired handles are ignored. */
  clearTimer(handle: TimerHandle): void;
}

/**
 * The real clock: `performance.now()` and `setTimeout`.
 *
 * @example
 * ```ts
 * const clock = new SystemClock();
 * clock.setTimer(clock.now() + 10, () => console.log("10 ms later"));
 * ```
 */
export class SystemClock implements Clock {
  /** Monotonic milliseconds since the time origin. */
  now(): number {
    return performance.now();
  }

  /** Schedules `fn` at `at` with `setTimeout`. */
  setTimer(at: number, fn: () => void): TimerHandle {
    const delay = Math.max(0, at - this.now());
    return setTimeout(fn, delay) as unknown as TimerHandle;
  }

  /** Cancels a timer from {@linkcode SystemClock.setTimer}. */
  clearTimer(handle: TimerHandle): void {
    clearTimeout(handle as unknown as ReturnType<typeof setTimeout>);
  }
}

/**
 * A clock that only moves when a test moves it. Timers fire in deadline order
 * during {@linkcode ManualClock.advance}.
 *
 * @example
 * ```ts
 * const clock = new ManualClock(1000);
 * let fired = false;
 * clock.setTimer(1500, () => fired = true);
 * clock.advance(500); // fired === true
 * ```
 */
export class ManualClock implements Clock {
  #now: number;
  #next = 1;
  #timers = new Map<TimerHandle, { at: number; fn: () => void }>();

  /** Starts at `start` milliseconds. */
  constructor(start = 0) {
    this.#now = start;
  }

  /** The current manual time. */
  now(): number {
    return this.#now;
  }

  /** Registers a timer that fires when the clock reaches `at`. */
  setTimer(at: number, fn: () => void): TimerHandle {
    const handle = this.#next++;
    this.#timers.set(handle, { at, fn });
    return handle;
  }

  /** Removes a pending timer. */
  clearTimer(handle: TimerHandle): void {
    this.#timers.delete(handle);
  }

  /** Number of pending timers. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing due timers in deadline order. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`ManualClock.advance: ms must be >= 0, got ${ms}`);
    this.advanceTo(this.#now + ms);
  }

  /** Moves time forward to `at`, firing due timers in deadline order. */
  advanceTo(at: number): void {
    if (at < this.#now) {
      throw new RangeError(`ManualClock.advanceTo: ${at} is before now (${this.#now})`);
    }
    for (;;) {
      let due: [TimerHandle, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#timers) {
        if (entry[1].at <= at && (!due || entry[1].at < due[1].at)) due = entry;
      }
      if (!due) break;
      this.#timers.delete(due[0]);
      this.#now = Math.max(this.#now, due[1].at);
      due[1].fn();
    }
    this.#now = at;
  }
}
