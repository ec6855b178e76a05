/**
 * The capture tap of a session: the frames it receives from the tunnel and
 * the frames its stack sends, offered to subscribers (a pcap stream, a test)
 * with a wall-clock timestamp.
 *
 * The tap runs outside the core lock: the session offers received frames as
 * they arrive and emitted frames when it flushes them to the tunnel, after
 * releasing the lock. With no subscriber an offer costs one size check.
 * Frames are copied (frames are borrowed) into each subscriber's
 * {@linkcode CaptureQueue}, bounded by what it holds (its chunks' cost, per
 * frame its bytes plus a record header) and charged to the session's memory
 * quota; a subscriber drops, and counts, what does not fit or what the quota
 * refuses, so a slow reader never holds up the session nor grows without
 * limit.
 *
 * @module
 */

import { NetError } from "../errors/net_error.ts";
import type { MemoryQuota } from "../stack/session_quota.ts";
import { type CapturedFrame, type CaptureDirection, CaptureQueue } from "./capture_queue.ts";

/** Options of {@linkcode FrameCapture.subscribe}. */
export interface CaptureSubscribeOptions {
  /**
   * Most bytes of storage this subscriber's queue may hold (its chunks'
   * capacity plus per-buffer overhead); frames that do not fit are dropped.
   */
  maxQueuedBytes?: number;
}

/** Default bound of a subscriber's queue: 4 MiB of storage. */
export const DEFAULT_CAPTURE_QUEUE_BYTES = 4 * 1024 * 1024;
/** Default number of captures one session serves at once. */
export const DEFAULT_MAX_CAPTURE_SUBSCRIBERS = 4;

/** The wall clock used by default: epoch milliseconds with sub-millisecond resolution. */
export function defaultWallClock(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * The capture tap of one session: a small set of subscribers.
 *
 * @example
 * ```ts
 * const capture = new FrameCapture();
 * const sub = capture.subscribe();
 * capture.offer([frame], "rx");
 * sub.take(); // [{ timeMs, direction: "rx", data: <copy of frame> }]
 * sub.close();
 * ```
 */
export class FrameCapture {
  #subs = new Set<CaptureSubscription>();
  #now: () => number;
  #memory: MemoryQuota | undefined;
  #closed = false;
  /** Most subscribers at once; one more fails with EMFILE. */
  readonly maxSubscribers: number;
  /** Frames queued to some subscriber, summed over all subscribers ever (for /metrics). */
  captured = 0;
  /** Frames a subscriber dropped (queue full or quota refused), summed over all subscribers ever. */
  dropped = 0;
  /** Of {@linkcode FrameCapture.dropped}, those the session's memory quota refused. */
  droppedOverQuota = 0;

  /**
   * Creates a tap with no subscribers.
   *
   * @param wallClock epoch milliseconds for timestamps; default {@linkcode defaultWallClock}.
   * @param maxSubscribers most subscribers at once; default {@linkcode DEFAULT_MAX_CAPTURE_SUBSCRIBERS}.
   * @param memory the session's memory quota, charged for every subscriber's queue.
   */
  constructor(
    wallClock: () => number = defaultWallClock,
    maxSubscribers = DEFAULT_MAX_CAPTURE_SUBSCRIBERS,
    memory?: MemoryQuota,
  ) {
    this.#now = wallClock;
    this.maxSubscribers = maxSubscribers;
    this.#memory = memory;
  }

  /** Number of live subscribers. */
  get size(): number {
    return this.#subs.size;
  }

  /**
   * Adds a subscriber that sees every frame offered from now on. After
   * {@linkcode FrameCapture.close} the subscription starts closed. Throws
   * RangeError for a queue bound below 1, and NetError EMFILE when
   * {@linkcode FrameCapture.maxSubscribers} captures already run (every
   * subscriber may hold its whole queue bound in memory).
   */
  subscribe(options: CaptureSubscribeOptions = {}): CaptureSubscription {
    const max = options.maxQueuedBytes ?? DEFAULT_CAPTURE_QUEUE_BYTES;
    if (!(max >= 1)) {
      throw new RangeError(`FrameCapture: maxQueuedBytes must be >= 1, got ${max}`);
    }
    this.checkRoom();
    const queue = new CaptureQueue({ maxCost: max, memory: this.#memory });
    const sub = new CaptureSubscription(this, queue, (s) => this.#subs.delete(s));
    if (this.#closed) sub.close();
    else this.#subs.add(sub);
    return sub;
  }

  /**
   * Throws NetError EMFILE when {@linkcode FrameCapture.maxSubscribers}
   * captures already run (what {@linkcode FrameCapture.subscribe} would
   * throw), without subscribing.
   */
  checkRoom(): void {
    if (this.#subs.size >= this.maxSubscribers) {
      throw new NetError(
        "EMFILE",
        `this session already serves its maximum of ${this.maxSubscribers} packet captures`,
      );
    }
  }

  /**
   * Offers frames that went `direction` to every subscriber, copied into its
   * queue, with one timestamp for the batch. Never throws and never keeps a
   * reference to `frames`.
   */
  offer(frames: readonly Uint8Array[], direction: CaptureDirection): void {
    if (this.#subs.size === 0 || frames.length === 0) return;
    const timeMs = this.#now();
    for (const f of frames) {
      for (const sub of this.#subs) sub._push(timeMs, direction, f);
    }
  }

  /** Closes every subscription (the session ended); later subscriptions start closed. */
  close(): void {
    this.#closed = true;
    for (const sub of [...this.#subs]) sub.close();
  }
}

/**
 * One subscriber of a {@linkcode FrameCapture}: a bounded FIFO of captured
 * frames and a way to wait for more.
 *
 * @example
 * ```ts
 * const sub = capture.subscribe({ maxQueuedBytes: 1 << 20 });
 * while (!sub.closed || sub.queuedFrames > 0) {
 *   for (const f of sub.take()) write(f);
 *   await sub.wait();
 * }
 * ```
 */
export class CaptureSubscription {
  #hub: FrameCapture;
  #queue: CaptureQueue;
  #closed = false;
  #wake: (() => void) | undefined;
  #onClose: (s: CaptureSubscription) => void;
  /** Frames accepted into the queue. */
  accepted = 0;
  /** Frames dropped because the queue was full or the session's memory quota refused them. */
  dropped = 0;

  /** Made by {@linkcode FrameCapture.subscribe}. */
  constructor(
    hub: FrameCapture,
    queue: CaptureQueue,
    onClose: (s: CaptureSubscription) => void,
  ) {
    this.#hub = hub;
    this.#queue = queue;
    this.#onClose = onClose;
  }

  /** Whether the subscription ended (no frames are added any more; queued ones can still be taken). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Frames waiting to be taken. */
  get queuedFrames(): number {
    return this.#queue.frames;
  }

  /** Bytes of the frames waiting to be taken. */
  get queuedBytes(): number {
    return this.#queue.bytes;
  }

  /** Bytes of storage the queue holds and is charged for (bounded by `maxQueuedBytes`). */
  get queuedCost(): number {
    return this.#queue.cost;
  }

  /** The buffers the queue owns (for tests that count memory). */
  storage(): { buffers: number; bytes: number } {
    return this.#queue.storage();
  }

  /** Internal: called by the hub for each offered frame. */
  _push(timeMs: number, direction: CaptureDirection, data: Uint8Array): void {
    if (this.#closed) return;
    const refused = this.#queue.push(timeMs, direction, data);
    if (refused !== undefined) {
      this.dropped++;
      this.#hub.dropped++;
      if (refused === "quota") this.#hub.droppedOverQuota++;
      return;
    }
    this.accepted++;
    this.#hub.captured++;
    this.#signal();
  }

  /** Removes and returns up to `max` queued frames, oldest first. */
  take(max = Infinity): CapturedFrame[] {
    return this.#queue.take(max);
  }

  /**
   * Resolves when a frame is queued or the subscription closes; at once if
   * either is already the case. One waiter at a time.
   */
  wait(): Promise<void> {
    if (this.#closed || this.queuedFrames > 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  /**
   * Stops receiving frames, drops the queued ones and frees the queue's
   * memory (the reader is gone). Idempotent.
   */
  discard(): void {
    this.close();
    this.#queue.clear();
  }

  /** Stops receiving frames and wakes a waiter. Idempotent. Queued frames stay takeable. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose(this);
    this.#signal();
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
