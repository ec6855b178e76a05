/**
 * The send buffer of a TCP connection: bytes the application has handed over
 * that the peer has not yet acknowledged (RFC 9293 §3.3.1, the span from
 * SND.UNA onwards).
 *
 * @module
 */

import { bufferCost, MemoryQuota } from "../session_quota.ts";

/** Bytes of storage the first write allocates (less when the capacity is smaller). */
export const SEND_BUFFER_INITIAL_STORAGE = 4096;

function checkCapacity(what: string, capacity: number): void {
  if (!Number.isSafeInteger(capacity) || capacity <= 0) {
    throw new RangeError(`${what}: capacity must be a positive integer, got ${capacity}`);
  }
}

/**
 * A fixed-capacity ring buffer holding the unacknowledged part of a TCP send
 * stream (RFC 9293 §3.3.1). Offset 0 is the byte at SND.UNA, the oldest byte
 * not yet acknowledged; the bytes between SND.UNA and SND.NXT (sent, awaiting
 * acknowledgement) come first, then the bytes not yet sent. The connection
 * maps sequence numbers to offsets with `seqSub(seq, sndUna)` (seq.ts).
 *
 * The storage is allocated on the first {@linkcode SendBuffer.write}, so a
 * connection that never sends costs no buffer memory, and it grows by
 * doubling (from {@linkcode SEND_BUFFER_INITIAL_STORAGE} bytes) up to the
 * capacity only as the bytes held require, so a connection that exchanges
 * small messages keeps a small buffer. The storage is charged to a memory
 * quota (`bufferCost(byteLength)`) from its allocation until it is replaced
 * or cleared; when the quota refuses a growth the buffer keeps its size and a
 * write takes only what fits. Whenever the buffer
 * becomes empty its read position returns to the start of the storage, which
 * keeps most {@linkcode SendBuffer.peek} calls contiguous (zero-copy).
 *
 * @example
 * ```ts
 * const sb = new SendBuffer(64 * 1024);
 * sb.write(new TextEncoder().encode("hello, world"));
 * const segment = sb.peek(0, 5); // "hello": a view, valid until the next write/consume
 * segment.length; // 5
 * // ... the peer acknowledges 5 bytes (SND.UNA += 5):
 * sb.consume(5);
 * sb.length; // 7
 * ```
 */
export class SendBuffer {
  #buf: Uint8Array;
  #capacity: number;
  /** Index in `#buf` of offset 0 (the byte at SND.UNA). */
  #head = 0;
  #length = 0;
  readonly #quota: MemoryQuota;
  /** What the storage costs the quota now (0 while none is allocated). */
  #charged = 0;

  /**
   * Creates an empty buffer that holds at most `capacity` bytes, charging
   * its storage to `quota` (default: a quota without a practical limit).
   *
   * @throws {RangeError} when `capacity` is not a positive integer.
   */
  constructor(capacity: number, quota: MemoryQuota = new MemoryQuota(Number.MAX_SAFE_INTEGER)) {
    checkCapacity("SendBuffer", capacity);
    this.#capacity = capacity;
    this.#buf = new Uint8Array(0);
    this.#quota = quota;
  }

  /** Bytes of storage charged to the quota now. */
  get chargedBytes(): number {
    return this.#charged;
  }

  /** Bytes held: sent but unacknowledged, plus not yet sent. */
  get length(): number {
    return this.#length;
  }

  /** The most bytes the buffer can hold. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Room left for {@linkcode SendBuffer.write}, in bytes. */
  get free(): number {
    return this.#capacity - this.#length;
  }

  /**
   * Appends as much of `data` as fits (copied; `data` may be reused at once)
   * and returns how many bytes were taken, from 0 to `data.length`. The
   * caller keeps the rest until {@linkcode SendBuffer.free} grows again
   * (backpressure towards the application). When the memory quota refuses
   * the storage to grow, only what fits in the storage held is taken
   * (possibly nothing, with {@linkcode SendBuffer.free} still positive).
   *
   * @example
   * ```ts
   * const sb = new SendBuffer(4);
   * sb.write(new Uint8Array([1, 2, 3, 4, 5, 6])); // 4
   * ```
   */
  write(data: Uint8Array): number {
    const cap = this.#capacity;
    let n = Math.min(data.length, cap - this.#length);
    if (n === 0) return 0;
    if (this.#buf.length < this.#length + n && !this.#grow(this.#length + n)) {
      n = this.#buf.length - this.#length;
      if (n === 0) return 0;
    }
    const buf = this.#buf;
    const size = buf.length;
    let tail = this.#head + this.#length;
    if (tail >= size) tail -= size;
    const first = Math.min(n, size - tail);
    buf.set(first === data.length ? data : data.subarray(0, first), tail);
    if (first < n) buf.set(data.subarray(first, n), 0);
    this.#length += n;
    return n;
  }

  /**
   * Returns the `len` bytes starting at `offset` (offset 0 = SND.UNA), for
   * building a segment or a retransmission.
   *
   * When the range is contiguous in the ring, the result is a view of the
   * buffer's own storage (no copy): it is valid only until the next
   * {@linkcode SendBuffer.write}, {@linkcode SendBuffer.consume},
   * {@linkcode SendBuffer.resize} or {@linkcode SendBuffer.clear}, so copy it
   * (for instance into the outgoing frame) before any of those. When the range
   * wraps around the end of the ring, the bytes are copied into `out`
   * (which must hold at least `len` bytes; the result is then
   * `out.subarray(0, len)`) or, without `out`, into a new array.
   *
   * @throws {RangeError} when `offset`/`len` are not non-negative integers,
   * when `offset + len` exceeds {@linkcode SendBuffer.length}, or when `out`
   * is too small for a wrapped range.
   *
   * @example
   * ```ts
   * const sb = new SendBuffer(1024);
   * sb.write(new Uint8Array([10, 20, 30, 40]));
   * sb.peek(1, 2); // Uint8Array [20, 30]
   * ```
   */
  peek(offset: number, len: number, out?: Uint8Array): Uint8Array {
    if (
      !Number.isSafeInteger(offset) || !Number.isSafeInteger(len) || offset < 0 || len < 0 ||
      offset + len > this.#length
    ) {
      throw new RangeError(
        `SendBuffer.peek: range [${offset}, ${offset} + ${len}) is outside the ${this.#length} bytes held`,
      );
    }
    const size = this.#buf.length;
    let start = this.#head + offset;
    if (start >= size) start -= size;
    if (start + len <= size) return this.#buf.subarray(start, start + len);
    if (out === undefined) out = new Uint8Array(len);
    else if (out.length < len) {
      throw new RangeError(
        `SendBuffer.peek: out holds ${out.length} bytes, the wrapped range needs ${len}`,
      );
    }
    const first = size - start;
    out.set(this.#buf.subarray(start, size), 0);
    out.set(this.#buf.subarray(0, len - first), first);
    return out.length === len ? out : out.subarray(0, len);
  }

  /**
   * Copies the `len` bytes starting at `offset` (offset 0 = SND.UNA) into
   * `dst` at `dstOffset`: a segment's payload written straight into its
   * frame, without a view of the range in between.
   *
   * @throws {RangeError} when the range is outside the bytes held or `dst`
   * is too small.
   *
   * @example
   * ```ts
   * const sb = new SendBuffer(1024);
   * sb.write(new Uint8Array([10, 20, 30, 40]));
   * const frame = new Uint8Array(8);
   * sb.copyOut(1, 2, frame, 6); // frame[6..8] = [20, 30]
   * ```
   */
  copyOut(offset: number, len: number, dst: Uint8Array, dstOffset: number): void {
    if (
      !(offset >= 0 && len >= 0 && offset + len <= this.#length && dstOffset >= 0 &&
        dstOffset + len <= dst.length)
    ) {
      throw new RangeError(
        `SendBuffer.copyOut: range [${offset}, ${offset} + ${len}) of the ${this.#length} bytes ` +
          `held into ${dst.length} bytes at ${dstOffset} does not fit`,
      );
    }
    if (len === 0) return;
    const buf = this.#buf;
    const size = buf.length;
    let start = this.#head + offset;
    if (start >= size) start -= size;
    const first = Math.min(len, size - start);
    dst.set(buf.subarray(start, start + first), dstOffset);
    if (first < len) dst.set(buf.subarray(0, len - first), dstOffset + first);
  }

  /**
   * Drops the `n` oldest bytes because the peer acknowledged them
   * (SND.UNA advanced by `n`, RFC 9293 §3.10.7.4).
   *
   * @throws {RangeError} when `n` is not a non-negative integer or exceeds
   * {@linkcode SendBuffer.length}.
   */
  consume(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0 || n > this.#length) {
      throw new RangeError(
        `SendBuffer.consume: cannot drop ${n} bytes, ${this.#length} are held`,
      );
    }
    this.#length -= n;
    if (this.#length === 0) {
      this.#head = 0;
      return;
    }
    let head = this.#head + n;
    if (head >= this.#buf.length) head -= this.#buf.length;
    this.#head = head;
  }

  /**
   * Grows the capacity to `capacity` bytes, keeping the bytes held (for
   * send-buffer autotuning). Shrinking is not supported; the same capacity is
   * a no-op.
   *
   * @throws {RangeError} when `capacity` is not a positive integer or is
   * smaller than the current capacity.
   */
  resize(capacity: number): void {
    checkCapacity("SendBuffer.resize", capacity);
    if (capacity < this.#capacity) {
      throw new RangeError(
        `SendBuffer.resize: cannot shrink from ${this.#capacity} to ${capacity} bytes`,
      );
    }
    // The storage grows on the next write that needs it.
    this.#capacity = capacity;
  }

  /**
   * Grows the storage (doubling, at most to the capacity; just enough when
   * the quota refuses the doubling) to hold `need` bytes, linearized.
   * Returns false, keeping the storage, when the quota refuses even that.
   */
  #grow(need: number): boolean {
    let size = Math.max(this.#buf.length * 2, SEND_BUFFER_INITIAL_STORAGE);
    while (size < need) size *= 2;
    size = Math.min(size, this.#capacity);
    if (!this.#quota.tryCharge(bufferCost(size))) {
      size = need;
      if (!this.#quota.tryCharge(bufferCost(size))) return false;
    }
    const next = new Uint8Array(size);
    if (this.#length > 0) next.set(this.peek(0, this.#length, next), 0);
    this.#buf = next;
    this.#head = 0;
    if (this.#charged > 0) this.#quota.release(this.#charged);
    this.#charged = bufferCost(size);
    return true;
  }

  /** Drops every byte held and frees the storage (the connection was closed or reset). */
  clear(): void {
    this.#head = 0;
    this.#length = 0;
    this.#buf = new Uint8Array(0);
    if (this.#charged > 0) this.#quota.release(this.#charged);
    this.#charged = 0;
  }
}
