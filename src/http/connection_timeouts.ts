/**
 * Deadlines of many connections behind one runtime timer, at a cost that
 * does not grow with the number of connections.
 *
 * Each kind of timeout (request head, keep-alive idle, request body, close
 * linger) has one fixed duration, so a deadline armed later is never earlier
 * than one armed before it: each kind is a FIFO list (intrusive, doubly
 * linked through the {@linkcode TimeoutEntry} each connection owns), its
 * head the earliest. Arming, re-arming and disarming unlink and append: no
 * allocation, no search. One timer ticks while anything is armed (every
 * eighth of the shortest duration, 10 ms to 1 s) and fires the expired
 * heads, so a deadline fires at most two ticks late (never early) and a
 * connection at rest costs no timer of its own; arming reads no clock while
 * the timer ticks.
 *
 * Runtime-neutral: time and the timer come from an injected {@linkcode Clock}.
 *
 * @module
 */

import type { Clock, TimerHandle } from "../session/clock.ts";

/**
 * A connection's place in the lists: allocate one per connection, arm and
 * disarm it through {@linkcode ConnectionTimeouts}.
 *
 * @example
 * ```ts
 * const entry = new TimeoutEntry((kind) => conn.close());
 * timeouts.arm(entry, HEAD_TIMEOUT);
 * ```
 */
export class TimeoutEntry {
  /** Called once the armed deadline passed, with the kind that was armed. */
  readonly fire: (kind: number) => void;
  /** The armed kind; -1 when not armed. */
  kind = -1;
  /** The deadline (clock milliseconds) while armed. */
  at = 0;
  /** @internal List links. */
  prev: TimeoutEntry | undefined;
  /** @internal List links. */
  next: TimeoutEntry | undefined;

  /** An entry that calls `fire` when its deadline passes. */
  constructor(fire: (kind: number) => void) {
    this.fire = fire;
  }
}

/**
 * FIFO deadline lists, one per kind, with one shared timer.
 *
 * @example
 * ```ts
 * const timeouts = new ConnectionTimeouts(new SystemClock(), [10_000, 30_000]);
 * const entry = new TimeoutEntry(() => conn.close());
 * timeouts.arm(entry, 0);    // closes in 10 s unless re-armed or disarmed
 * timeouts.disarm(entry);
 * ```
 */
export class ConnectionTimeouts {
  /** Duration of each kind (ms). */
  readonly durations: readonly number[];
  /** Time between ticks (ms). */
  readonly tickMs: number;
  #clock: Clock;
  #heads: (TimeoutEntry | undefined)[];
  #tails: (TimeoutEntry | undefined)[];
  #armed = 0;
  #timer: TimerHandle | undefined;
  /** The clock's time at the last tick (or the last arm that started the timer). */
  #now = 0;
  #stopped = false;

  /** Lists for `durations` (one kind per index, each > 0 ms), timed by `clock`. */
  constructor(clock: Clock, durations: readonly number[]) {
    for (const d of durations) {
      if (!(d > 0)) throw new RangeError(`a timeout must be > 0 ms, got ${d}`);
    }
    this.#clock = clock;
    this.durations = durations;
    this.#heads = durations.map(() => undefined);
    this.#tails = durations.map(() => undefined);
    this.tickMs = Math.max(10, Math.min(1000, Math.floor(Math.min(...durations) / 8)));
  }

  /** Entries armed now. */
  get armed(): number {
    return this.#armed;
  }

  /**
   * Arms `entry` with `kind`'s duration from now (re-arming it if it was
   * armed). While the timer ticks, "now" is the last tick's time plus one
   * tick (no clock read per arm): a deadline fires between its duration and
   * its duration plus two ticks after it was armed, never before.
   */
  arm(entry: TimeoutEntry, kind: number): void {
    if (entry.kind >= 0) this.#unlink(entry);
    const ticking = this.#timer !== undefined;
    if (!ticking) this.#now = this.#clock.now();
    entry.kind = kind;
    entry.at = this.#now + (ticking ? this.tickMs : 0) + this.durations[kind];
    const tail = this.#tails[kind];
    entry.prev = tail;
    entry.next = undefined;
    if (tail) tail.next = entry;
    else this.#heads[kind] = entry;
    this.#tails[kind] = entry;
    this.#armed++;
    if (!ticking && !this.#stopped) {
      this.#timer = this.#clock.setTimer(this.#now + this.tickMs, this.#tick);
    }
  }

  /** Disarms `entry` (nothing when it is not armed). */
  disarm(entry: TimeoutEntry): void {
    if (entry.kind >= 0) this.#unlink(entry);
  }

  /** Stops the timer for good (server shutdown); nothing fires afterwards. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  #unlink(entry: TimeoutEntry): void {
    const kind = entry.kind;
    if (entry.prev) entry.prev.next = entry.next;
    else this.#heads[kind] = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else this.#tails[kind] = entry.prev;
    entry.prev = entry.next = undefined;
    entry.kind = -1;
    this.#armed--;
  }

  #tick = (): void => {
    this.#timer = undefined;
    if (this.#stopped) return;
    const now = this.#now = this.#clock.now();
    for (let kind = 0; kind < this.#heads.length; kind++) {
      for (;;) {
        const head = this.#heads[kind];
        if (head === undefined || head.at > now) break;
        this.#unlink(head);
        try {
          head.fire(kind);
        } catch (err) {
          console.error("netisle: a connection timeout failed:", err);
        }
      }
    }
    if (this.#armed > 0 && this.#timer === undefined && !this.#stopped) {
      this.#timer = this.#clock.setTimer(now + this.tickMs, this.#tick);
    }
  };
}
