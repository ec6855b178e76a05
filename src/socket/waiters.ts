/**
 * The one wait-and-wake mechanism of the socket layer: callers wait for an
 * endpoint's events, and the endpoint's `onEvents` (called by the session
 * after it releases the core lock) wakes them. Timeouts are abort signals.
 *
 * @module
 */

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

/**
 * A signal that aborts after `timeoutMs` (with a `TimeoutError`
 * DOMException), combined with `signal`; undefined when neither is given.
 *
 * @example
 * ```ts
 * const signal = timeoutSignal(options.signal, options.timeoutMs);
 * try { await waiters.wait(signal); } catch (err) { if (isTimeout(err)) throw etimedout; throw err; }
 * ```
 */
export function timeoutSignal(
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
): AbortSignal | undefined {
  const parts: AbortSignal[] = [];
  if (signal) parts.push(signal);
  if (timeoutMs !== undefined) {
    parts.push(AbortSignal.timeout(timeoutMs));
  }
  if (parts.length === 0) return undefined;
  return parts.length === 1 ? parts[0] : AbortSignal.any(parts);
}

/**
 * Whether `err` is the reason of a signal from {@linkcode timeoutSignal} that
 * timed out.
 *
 * @example
 * ```ts
 * if (isTimeout(err)) throw new NetError("ETIMEDOUT", "no datagram arrived before the timeout");
 * ```
 */
export function isTimeout(err: unknown): boolean {
  return err instanceof DOMException && err.name === "TimeoutError";
}
