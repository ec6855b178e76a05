/**
 * The channel link: a bounded queue of frames the stack emitted. It is both
 * the test device (tests drain it and assert the exact frames) and the bridge
 * to a tunnel (the session drains it after releasing the core lock).
 *
 * @module
 */

/** Where the stack puts frames it emits. Implementations must not throw. */
export interface Link {
  /** Takes ownership of `frame`; returns false when the frame was dropped. */
  transmit(frame: Uint8Array): boolean;
}

/**
 * A bounded FIFO of emitted frames.
 *
 * @example
 * ```ts
 * const link = new ChannelLink(1024);
 * link.transmit(new Uint8Array(60));
 * link.drain().length; // 1
 * ```
 */
export class ChannelLink implements Link {
  #queue: Uint8Array[] = [];
  /** Frames refused because the queue was full. */
  overflows = 0;

  /** @param limit the most frames held before {@linkcode ChannelLink.drain}. */
  constructor(readonly limit = 4096) {
    if (!(limit >= 1)) throw new RangeError(`ChannelLink: limit must be >= 1, got ${limit}`);
  }

  /** Queues a frame, or refuses it and counts an overflow when full. */
  transmit(frame: Uint8Array): boolean {
    if (this.#queue.length >= this.limit) {
      this.overflows++;
      return false;
    }
    this.#queue.push(frame);
    return true;
  }

  /** Number of queued frames. */
  get length(): number {
    return this.#queue.length;
  }

  /** Removes and returns every queued frame, oldest first. */
  drain(): Uint8Array[] {
    const out = this.#queue;
    this.#queue = [];
    return out;
  }
}
