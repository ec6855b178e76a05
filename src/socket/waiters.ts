/**
 * The one wait-and-wake mechanism of the socket layer: callers wait for an
 * endpoint's events, and the endpoint's `onEvents` (called by the session
 * after it releases the core lock) wakes them. A wait ends early through an
 * abort signal; timeouts are signals of a {@linkcode PollDeadline} on the
 * session's clock (poll_deadline.ts).
 *
 * @module
 */

import { PollDeadline, type TimerClock } from "./poll_deadline.ts";

/**
 * Callers waiting for an event of one endpoint. `wakeAll` resolves every
 * pending wait; a waiter then re-checks the core state under the lock.
 *
 * @example
 * ```ts
 * const readers = new Waiters();
 * // in a read loop, outside the core lock:
 * await readers.wait(signal);
 * // in onEvents(bits):
 * if (bits & READABLE) readers.wakeAll();
 * ```
 */
export class Waiters {
  #list: Array<() => void> = [];

  /** Resolves at the next {@linkcode Waiters.wakeAll}; rejects with the signal's reason on abort. */
  wait(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const done = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        const i = this.#list.indexOf(done);
        if (i >= 0) this.#list.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#list.push(done);
    });
  }

  /**
   * Calls `attempt` until it returns a value, waiting for the next wake
   * between tries. Ends with `timeoutError()` when `options.timeoutMs` passes
   * first on `clock`, with the signal's reason when it aborts, or with what
   * `attempt` throws.
   *
   * @example
   * ```ts
   * const conn = await waiters.until(session.clock, { timeoutMs: 5000 }, () => tryAccept(), () =>
   *   new NetError("ETIMEDOUT", "no connection arrived before the timeout"));
   * ```
   */
  async until<T>(
    clock: TimerClock,
    options: { signal?: AbortSignal; timeoutMs?: number },
    attempt: () => T | undefined,
    timeoutError: () => Error,
  ): Promise<T> {
    const wait = new PollDeadline(clock, [options.signal], options.timeoutMs);
    try {
      for (;;) {
        const v = attempt();
        if (v !== undefined) return v;
        await this.wait(wait.signal);
      }
    } catch (err) {
      if (wait.timedOut) throw timeoutError();
      throw err;
    } finally {
      wait.dispose();
    }
  }

  /** Wakes every caller waiting now. */
  wakeAll(): void {
    const l = this.#list;
    this.#list = [];
    for (const w of l) w();
  }

  /** Number of callers waiting (for leak tests). */
  get size(): number {
    return this.#list.length;
  }
}
