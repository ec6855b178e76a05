/**
 * Reusable byte buffers of one size, for writes in flight: a connection
 * takes one to build a response head (and a small body) in, and gives it
 * back once the write completed, so the hot path allocates none and a
 * connection at rest holds none. At most `maxFree` are kept.
 *
 * Runtime-neutral.
 *
 * @module
 */

/**
 * A pool of `size`-byte buffers.
 *
 * @example
 * ```ts
 * const pool = new BufferPool(16 * 1024, 64);
 * const buf = pool.take();
 * await conn.write(buf.subarray(0, n));
 * pool.give(buf);
 * ```
 */
export class BufferPool {
  /** Bytes per buffer. */
  readonly size: number;
  /** Free buffers kept at most. */
  readonly maxFree: number;
  #free: Uint8Array[] = [];

  /** A pool of `size`-byte buffers that keeps at most `maxFree` free ones. */
  constructor(size: number, maxFree: number) {
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`a buffer size must be an integer >= 1, got ${size}`);
    }
    this.size = size;
    this.maxFree = maxFree;
  }

  /** Free buffers held now. */
  get free(): number {
    return this.#free.length;
  }

  /** A buffer of `size` bytes (its contents are whatever was left in it). */
  take(): Uint8Array {
    return this.#free.pop() ?? new Uint8Array(this.size);
  }

  /** Returns a buffer taken from this pool; kept unless `maxFree` are free already. */
  give(buf: Uint8Array): void {
    if (buf.length === this.size && this.#free.length < this.maxFree) this.#free.push(buf);
  }
}
