/**
 * The core lock: one per session, serializing every entry into the
 * synchronous stack core (frames from the tunnel, timer ticks, socket calls
 * from the API), in the manner of lwIP's `LOCK_TCPIP_CORE`.
 *
 * Because the core never awaits, a critical section always runs to
 * completion inside one macrotask, so within one isolate two callers can
 * never contend: taking the lock costs a flag check, with no microtask hop.
 * What the lock enforces is the other half of lwIP's rule: nothing may enter
 * the core from inside the core (a callback that calls back in, lwIP's
 * classic deadlock) — that throws at once — and work that leaves the core
 * runs after release, from the `afterRelease` hook.
 *
 * @module
 */

/** Statistics the core lock keeps, for /metrics and the lock benchmark. */
export interface CoreLockStats {
  /** Critical sections run. */
  acquisitions: number;
  /** Milliseconds spent inside critical sections, summed. */
  heldMs: number;
  /** The longest critical section, in milliseconds. */
  maxHeldMs: number;
  /** Attempts to enter from inside a critical section (each one threw). */
  reentries: number;
}

/**
 * Runs synchronous critical sections one at a time.
 *
 * @example
 * ```ts
 * const lock = new CoreLock();
 * const n = lock.run(() => 40 + 2); // 42
 * ```
 */
export class CoreLock {
  #held = false;
  #now: () => number;
  #afterRelease: (() => void) | undefined;
  /** Counters; read-only for callers. */
  readonly stats: CoreLockStats = { acquisitions: 0, heldMs: 0, maxHeldMs: 0, reentries: 0 };

  /**
   * @param now a monotonic clock in milliseconds, used for hold-time statistics.
   * @param afterRelease called after every release, outside the critical
   *   section: the place where queued output is sent, events are delivered and
   *   queued input is picked up.
   */
  constructor(now: () => number = () => performance.now(), afterRelease?: () => void) {
    this.#now = now;
    this.#afterRelease = afterRelease;
  }

  /** Whether a critical section is executing right now. */
  get held(): boolean {
    return this.#held;
  }

  /**
   * Runs `section` under the lock and returns its result (or rethrows what it
   * threw, after releasing). Throws an Error without running `section` when
   * called from inside a critical section. `section` gets the lock's clock
   * time at entry (read once: the session passes it on as the core's `now`).
   */
  run<T>(section: (start: number) => T): T {
    if (this.#held) {
      this.stats.reentries++;
      throw new Error(
        "CoreLock: entered the core lock from inside a critical section (this would deadlock); " +
          "defer the work until after the lock is released",
      );
    }
    this.#held = true;
    const start = this.#now();
    try {
      return section(start);
    } finally {
      const held = this.#now() - start;
      this.stats.acquisitions++;
      this.stats.heldMs += held;
      if (held > this.stats.maxHeldMs) this.stats.maxHeldMs = held;
      this.#held = false;
      this.#afterRelease?.();
    }
  }
}
