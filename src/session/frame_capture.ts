/**
 * The capture tap of a session: the frames it receives from the tunnel and
 * the frames its stack sends, offered to subscribers (a pcap stream, a test)
 * with a wall-clock timestamp.
 *
 * The tap runs outside the core lock: the session offers received frames as
 * they arrive and emitted frames when it flushes them to the tunnel, after
 * releasing the lock. With no subscriber an offer costs one size check.
 * Frames are copied (the stack owns its buffers and reuses them); each
 * subscriber has a bounded queue and drops, and counts, what does not fit, so
 * a slow reader never holds up the session nor grows without limit.
 *
 * @module
 */

import { NetError } from "../errors/net_error.ts";

/** Which way a frame went: `rx` from the tunnel into the stack, `tx` from the stack to the tunnel. */
export type CaptureDirection = "rx" | "tx";

/** One captured frame. */
export interface CapturedFrame {
  /** Wall-clock time of the offer in milliseconds since the Unix epoch (fractional). */
  readonly timeMs: number;
  /** Which way the frame went. */
  readonly direction: CaptureDirection;
  /** A private copy of the frame. */
  readonly data: Uint8Array;
}

/** Options of {@linkcode FrameCapture.subscribe}. */
export interface CaptureSubscribeOptions {
  /** Most bytes of frames queued for this subscriber; frames that do not fit are dropped. */
  maxQueuedBytes?: number;
}

/** Default bound of a subscriber's queue: 4 MiB. */
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
  #closed = false;
  /** Most subscribers at once; one more fails with EMFILE. */
  readonly maxSubscribers: number;
  /** Frames queued to some subscriber, summed over all subscribers ever (for /metrics). */
  captured = 0;
  /** Frames a subscriber dropped because its queue was full, summed over all subscribers ever. */
  dropped = 0;

  /**
   * Creates a tap with no subscribers.
   *
   * @param wallClock epoch milliseconds for timestamps; default {@linkcode defaultWallClock}.
   * @param maxSubscribers most subscribers at once; default {@linkcode DEFAULT_MAX_CAPTURE_SUBSCRIBERS}.
   */
  constructor(
    wallClock: () => number = defaultWallClock,
    maxSubscribers = DEFAULT_MAX_CAPTURE_SUBSCRIBERS,
  ) {
    this.#now = wallClock;
    this.maxSubscribers = maxSubscribers;
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
    if (this.#subs.size >= this.maxSubscribers) {
      throw new NetError(
        "EMFILE",
        `this session already serves its maximum of ${this.maxSubscribers} packet captures`,
      );
    }
    const sub = new CaptureSubscription(this, max, (s) => this.#subs.delete(s));
    if (this.#closed) sub.close();
    else this.#subs.add(sub);
    return sub;
  }

  /**
   * Offers frames that went `direction` to every subscriber, copied, with one
   * timestamp for the batch. Never throws and never keeps a reference to `frames`.
   */
  offer(frames: readonly Uint8Array[], direction: CaptureDirection): void {
    if (this.#subs.size === 0 || frames.length === 0) return;
    const timeMs = this.#now();
    // One allocation for the whole batch; each frame is a view into it.
    let total = 0;
    for (const f of frames) total += f.length;
    const copy = new Uint8Array(total);
    let off = 0;
    for (const f of frames) {
      copy.set(f, off);
      const data = copy.subarray(off, off + f.length);
      off += f.length;
      const captured: CapturedFrame = { timeMs, direction, data };
      for (const sub of this.#subs) sub._push(captured);
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
  #queue: CapturedFrame[] = [];
  #head = 0;
  #queuedBytes = 0;
  #maxQueuedBytes: number;
  #closed = false;
  #wake: (() => void) | undefined;
  #onClose: (s: CaptureSubscription) => void;
  /** Frames accepted into the queue. */
  accepted = 0;
  /** Frames dropped because the queue was full. */
  dropped = 0;

  /** Made by {@linkcode FrameCapture.subscribe}. */
  constructor(
    hub: FrameCapture,
    maxQueuedBytes: number,
    onClose: (s: CaptureSubscription) => void,
  ) {
    this.#hub = hub;
    this.#maxQueuedBytes = maxQueuedBytes;
    this.#onClose = onClose;
  }

  /** Whether the subscription ended (no frames are added any more; queued ones can still be taken). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Frames waiting to be taken. */
  get queuedFrames(): number {
    return this.#queue.length - this.#head;
  }

  /** Bytes of the frames waiting to be taken. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Internal: called by the hub for each offered frame. */
  _push(frame: CapturedFrame): void {
    if (this.#closed) return;
    if (this.#queuedBytes + frame.data.length > this.#maxQueuedBytes) {
      this.dropped++;
      this.#hub.dropped++;
      return;
    }
    this.#queue.push(frame);
    this.#queuedBytes += frame.data.length;
    this.accepted++;
    this.#hub.captured++;
    this.#signal();
  }

  /** Removes and returns up to `max` queued frames, oldest first. */
  take(max = Infinity): CapturedFrame[] {
    const n = Math.min(max, this.#queue.length - this.#head);
    if (n <= 0) return [];
    const out = this.#queue.slice(this.#head, this.#head + n);
    this.#head += n;
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    for (const f of out) this.#queuedBytes -= f.data.length;
    return out;
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
