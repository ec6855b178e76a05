/**
 * The deadlines of one TCP connection, in one object: every timer the
 * connection runs is a slot here, so one look shows what can wake it and
 * {@linkcode TcpTimers.nextDeadline} is the earliest of them. Deadlines are
 * absolute times of the injected clock (the core never reads a clock);
 * what a timer does when it fires is the connection's business
 * (`TcpConnection.poll`).
 *
 * The layer keeps every connection's timers in one {@linkcode TcpTimerQueue}
 * (a heap by deadline), so that finding what is due costs in proportion to
 * the timers that changed, not to the connections. A connection's place in
 * the heap is a lower bound of its earliest deadline: a timer started
 * earlier moves it up at once (O(log n)); a timer stopped or moved later
 * (the common case: every ACK restarts the RTO further out) costs nothing
 * until the entry reaches the top, where its true deadline is looked up and
 * it sinks back.
 *
 * @module
 */

import { type DeadlineEntry, DeadlineHeap } from "../deadline_heap.ts";

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
  /** Pacing: when the next paced segment may leave (tcp_pacer.ts). */
  PACE: 7,
} as const;

/** One of the {@linkcode TcpTimer} slots. */
export type TcpTimerKind = typeof TcpTimer[keyof typeof TcpTimer];

const SLOTS = 8;

/** What the timer queue calls when a connection's timers are due. */
export interface TcpTimerOwner {
  /** Fires the timers due at `now`. */
  poll(now: number): void;
  /** Creation order: connections due at once are polled in this order. */
  readonly serial: number;
}

/**
 * The deadlines of one connection: each slot is stopped or holds an absolute
 * time. Nothing here allocates. With a queue, starting a timer earlier than
 * the connection's place in the queue moves it there.
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
export class TcpTimers implements DeadlineEntry {
  /** Position in the queue's heap (see {@linkcode DeadlineEntry}). */
  heapIndex = -1;
  /** The queue's key: a lower bound of the earliest deadline; Infinity outside the queue. */
  heapKey = Infinity;
  /** The connection the timers belong to (what the queue polls). */
  readonly owner: TcpTimerOwner | undefined;
  /** Deadline of each slot; Infinity when stopped. */
  readonly #at = new Float64Array(SLOTS).fill(Infinity);
  readonly #queue: TcpTimerQueue | undefined;

  /** Creates stopped timers, kept in `queue` (when given) for `owner`. */
  constructor(queue?: TcpTimerQueue, owner?: TcpTimerOwner) {
    this.#queue = queue;
    this.owner = owner;
  }

  /** (Re)starts timer `kind` to fire at `at`. */
  start(kind: TcpTimerKind, at: number): void {
    this.#at[kind] = at;
    if (at < this.heapKey) this.#earlier(at);
  }

  /** Starts timer `kind` at `at` unless it is already running. */
  startIfStopped(kind: TcpTimerKind, at: number): void {
    if (this.#at[kind] !== Infinity) return;
    this.#at[kind] = at;
    if (at < this.heapKey) this.#earlier(at);
  }

  /** Stops timer `kind`. */
  stop(kind: TcpTimerKind): void {
    this.#at[kind] = Infinity;
  }

  /** Stops every timer (the connection closed) and leaves the queue. */
  stopAll(): void {
    this.#at.fill(Infinity);
    if (this.#queue) this.#queue.remove(this);
    else this.heapKey = Infinity;
  }

  /** A deadline earlier than the queue's key: move up in the queue. */
  #earlier(at: number): void {
    if (this.#queue) this.#queue.schedule(this, at);
    else this.heapKey = at;
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

/**
 * The timers of every connection of a layer, by deadline (a min-heap of
 * {@linkcode TcpTimers} keyed by a lower bound of each one's earliest
 * deadline; see the module documentation).
 *
 * @example
 * ```ts
 * const queue = new TcpTimerQueue();
 * const timers = new TcpTimers(queue, conn);
 * timers.start(TcpTimer.RTO, 1200);
 * queue.nextDeadline(); // 1200
 * queue.poll(1200); // conn.poll(1200)
 * ```
 */
export class TcpTimerQueue {
  readonly #heap = new DeadlineHeap<TcpTimers>();
  #due: TcpTimers[] = [];

  /** Connections with a timer (or a stale place) in the queue. */
  get size(): number {
    return this.#heap.size;
  }

  /** Moves `timers` to `at` (called by {@linkcode TcpTimers} when a deadline comes earlier). */
  schedule(timers: TcpTimers, at: number): void {
    this.#heap.set(timers, at);
  }

  /** Takes `timers` out of the queue. */
  remove(timers: TcpTimers): void {
    this.#heap.delete(timers);
    timers.heapKey = Infinity;
  }

  /**
   * The earliest deadline of all connections, exact: entries at the top whose
   * key is stale (their timers stopped or moved later) are fixed on the way.
   */
  nextDeadline(): number | undefined {
    const heap = this.#heap;
    for (;;) {
      const t = heap.peek();
      if (t === undefined) return undefined;
      const d = t.nextDeadline() ?? Infinity;
      if (d === t.heapKey) return d;
      if (d === Infinity) this.remove(t);
      else heap.set(t, d);
    }
  }

  /**
   * Polls every connection with a timer due at `now`, once each, in creation
   * order, then puts each back at its next deadline.
   */
  poll(now: number): void {
    const heap = this.#heap;
    const due = this.#due;
    for (;;) {
      const t = heap.peek();
      if (t === undefined || t.heapKey > now) break;
      const d = t.nextDeadline() ?? Infinity;
      if (d > now) {
        if (d === Infinity) this.remove(t);
        else heap.set(t, d);
        continue;
      }
      this.remove(t);
      due.push(t);
    }
    if (due.length === 0) return;
    if (due.length > 1) due.sort((a, b) => a.owner!.serial - b.owner!.serial);
    for (let i = 0; i < due.length; i++) {
      const t = due[i];
      t.owner?.poll(now);
      const d = t.nextDeadline();
      if (d !== undefined && d < t.heapKey) heap.set(t, d);
    }
    due.length = 0;
  }
}
