/**
 * A bounded free list of equally sized `ArrayBuffer`s, for storage that
 * would otherwise be allocated fresh per packet or per message: a fresh
 * 64 KiB `ArrayBuffer` (zero-filled, an external-memory finalizer, garbage
 * for the next collection) per packet cost the server half of its CPU time
 * when it sends to a kernel peer. Used for large packets' buffers
 * (large_buffer_pool.ts) and for the messages a WebSocket lends its
 * listener (src/http/message_buffer_pool.ts).
 *
 * The pool knows which buffers it handed out: giving back a buffer it did
 * not hand out, or one already given back, is ignored, so a buffer can
 * never sit in the list twice (and serve two holders at once). A buffer of
 * another size (detached by a transfer, or one made outside the pool and
 * marked with {@linkcode BufferPool.hold}) is dropped when given back.
 *
 * @module
 */

/** Options of a {@linkcode BufferPool}. */
export interface BufferPoolOptions {
  /**
   * Zero a reused buffer before handing it out, as a fresh one is: for
   * holders that expose bytes of the buffer they did not write themselves.
   * Default false (a reused buffer holds what its last holder left).
   */
  zeroOnReuse?: boolean;
}

/**
 * A free list of at most `maxFree` buffers of `size` bytes, and the set of
 * buffers it handed out and has not seen given back.
 *
 * @example
 * ```ts
 * const pool = new BufferPool(64 * 1024, 4);
 * const buffer = pool.take();
 * const message = new Uint8Array(buffer, 0, 5000); // filled, then used
 * pool.give(buffer); // once done with `message`
 * ```
 */
export class BufferPool {
  /** Bytes per buffer. */
  readonly size: number;
  /** Free buffers kept at most. */
  readonly maxFree: number;
  readonly #zero: boolean;
  #free: ArrayBuffer[] = [];
  /** Buffers taken (or held) and not given back yet. */
  #out = new WeakSet<ArrayBuffer>();

  /** A pool of `size`-byte buffers that keeps at most `maxFree` free ones. */
  constructor(size: number, maxFree: number, options: BufferPoolOptions = {}) {
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`BufferPool: size must be an integer >= 1, got ${size}`);
    }
    if (!Number.isInteger(maxFree) || maxFree < 0) {
      throw new RangeError(`BufferPool: maxFree must be an integer >= 0, got ${maxFree}`);
    }
    this.size = size;
    this.maxFree = maxFree;
    this.#zero = options.zeroOnReuse === true;
  }

  /** Free buffers held now. */
  get free(): number {
    return this.#free.length;
  }

  /**
   * A buffer of `size` bytes, reused when one was given back: zero-filled
   * with `zeroOnReuse`, otherwise holding what an earlier holder left.
   */
  take(): ArrayBuffer {
    const reused = this.#free.pop();
    if (reused !== undefined && this.#zero) new Uint8Array(reused).fill(0);
    const buffer = reused ?? new ArrayBuffer(this.size);
    this.#out.add(buffer);
    return buffer;
  }

  /**
   * Counts a buffer made outside the pool (of another size) as handed out,
   * so that {@linkcode BufferPool.holds} knows it; giving it back drops it.
   */
  hold(buffer: ArrayBuffer): void {
    this.#out.add(buffer);
  }

  /** Whether `buffer` was taken (or held) and not given back since. */
  holds(buffer: ArrayBufferLike): boolean {
    return this.#out.has(buffer as ArrayBuffer);
  }

  /**
   * Gives back a buffer from {@linkcode BufferPool.take}; the caller must
   * not touch it, or any view of it, again. Kept unless `maxFree` are free
   * already.
   */
  give(buffer: ArrayBuffer): void {
    if (!this.#out.delete(buffer)) return; // not ours, or given back already
    if (buffer.byteLength !== this.size) return; // detached by a transfer, or not a pool's size
    if (this.#free.length < this.maxFree) this.#free.push(buffer);
  }
}
