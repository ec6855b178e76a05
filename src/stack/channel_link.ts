/**
 * The channel link: a bounded queue of frames the stack emitted. It is both
 * the test device (tests drain it and assert the exact frames) and the bridge
 * to a tunnel (the session drains it after releasing the core lock).
 *
 * A frame may carry offload metadata (`FrameOffload` (frame_offload.ts)), for a link
 * that takes large TCP segments and partial checksums (a tunnel with
 * segmentation offload, see `Stack.setLinkOffload`): the queue keeps it
 * beside the frame.
 *
 * @module
 */

/** Where the stack puts frames it emits. Implementations must not throw. */
export interface Link {
  /**
   * Takes ownership of `frame`; returns false when the frame was dropped.
   * `offload` (`FrameOffload` (frame_offload.ts)) is non-zero only when the stack was
   * told that the link takes offloaded frames.
   */
  transmit(frame: Uint8Array, offload?: number): boolean;
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
  /** Offload metadata per queued frame; undefined while every frame's is 0. */
  #offload: number[] | undefined;
  /** Frames refused because the queue was full. */
  overflows = 0;

  /** @param limit the most frames held before {@linkcode ChannelLink.drain}. */
  constructor(readonly limit = 4096) {
    if (!(limit >= 1)) throw new RangeError(`ChannelLink: limit must be >= 1, got ${limit}`);
  }

  /** Queues a frame, or refuses it and counts an overflow when full. */
  transmit(frame: Uint8Array, offload = 0): boolean {
    const q = this.#queue;
    if (q.length >= this.limit) {
      this.overflows++;
      return false;
    }
    if (offload !== 0 && this.#offload === undefined) this.#offload = new Array(q.length).fill(0);
    q.push(frame);
    this.#offload?.push(offload);
    return true;
  }

  /** Number of queued frames. */
  get length(): number {
    return this.#queue.length;
  }

  /**
   * Removes and returns every queued frame, oldest first. Offload metadata
   * is dropped: a caller of a link the stack offloads to uses
   * {@linkcode ChannelLink.drainWithOffload}.
   */
  drain(): Uint8Array[] {
    const out = this.#queue;
    this.#queue = [];
    this.#offload = undefined;
    return out;
  }

  /**
   * Removes every queued frame, oldest first, with the offload metadata of
   * each (`offload[i]` for `frames[i]`; undefined when all are 0).
   */
  drainWithOffload(): { frames: Uint8Array[]; offload: number[] | undefined } {
    const frames = this.#queue;
    const offload = this.#offload;
    this.#queue = [];
    this.#offload = undefined;
    return { frames, offload };
  }
}
