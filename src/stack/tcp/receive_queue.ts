/**
 * The receive queue of a TCP connection: in-order bytes the application has
 * not read yet (RFC 9293 §3.3.1, the span before RCV.NXT), beside the
 * out-of-order store (reassembler.ts) and the send buffer (send_buffer.ts).
 *
 * Frames are borrowed (DESIGN.md): the queue copies every segment's text
 * into chunks it owns and appends small segments to the same chunk, so a
 * byte held costs about a byte, whatever the frames that carried it, and
 * no tunnel message stays pinned by an unread byte.
 *
 * @module
 */

import { bufferCost, MemoryQuota } from "../session_quota.ts";
import {
  isLargeBuffer,
  LARGE_BUFFER_BYTES,
  recycleLargeBuffer,
  takeLargeBuffer,
} from "../large_buffer_pool.ts";

/**
 * The largest chunk, and the size of every chunk after the first few of a
 * burst: the largest TCP segment, and what a socket reads at once, so that
 * a full chunk is handed to the reader without a copy.
 */
export const RECEIVE_CHUNK_BYTES = 64 * 1024;
/** The smallest chunk: the first of a burst into an empty queue. */
export const RECEIVE_MIN_CHUNK_BYTES = 1024;
/** Segments of at least this many bytes get a chunk of exactly their size. */
export const RECEIVE_OWN_CHUNK_BYTES = 8 * 1024;
/**
 * Bytes free before the data of a chunk of its own, in the same buffer:
 * room for the headers of whoever carries the chunk on (a WebSocket frame
 * header and a message type byte), so that a chunk handed over whole goes
 * out without a copy (see {@linkcode receivedHeadroom}).
 */
export const RECEIVE_HEADROOM_BYTES = 16;
/**
 * Segments of at least this many bytes (a large segment from a peer's
 * segmentation offload or GRO) take their chunk's buffer from the process's
 * pool of large buffers (large_buffer_pool.ts), charged at the buffer's full
 * size; whoever reads the chunk whole may give it back with
 * `recycleLargeBuffer` once done (a socket stream does, once the WebSocket
 * wrote it), and the queue gives back those it copied out or dropped.
 */
export const RECEIVE_POOLED_CHUNK_BYTES = 48 * 1024;

/**
 * The bytes before `data` in its buffer that belong to it:
 * {@linkcode RECEIVE_HEADROOM_BYTES} for a chunk a {@linkcode ReceiveQueue}
 * handed over whole (a large segment's own chunk, which fills its buffer
 * after the headroom), 0 for any other array. Whoever holds `data` may
 * write its own headers there.
 *
 * @example
 * ```ts
 * const q = new ReceiveQueue();
 * q.append(new Uint8Array(9000));
 * receivedHeadroom(q.read(65536)!); // 16
 * receivedHeadroom(new Uint8Array(9000)); // 0
 * ```
 */
export function receivedHeadroom(data: Uint8Array): number {
  return data.byteOffset === RECEIVE_HEADROOM_BYTES &&
      data.length >= RECEIVE_OWN_CHUNK_BYTES &&
      (data.byteOffset + data.length === data.buffer.byteLength || isLargeBuffer(data.buffer))
    ? RECEIVE_HEADROOM_BYTES
    : 0;
}

interface Chunk {
  /**
   * Storage owned by the queue: `capacity` bytes, or, for the first chunk
   * of a burst until a second segment joins it, only the first segment's
   * (see {@linkcode ReceiveQueue}).
   */
  buf: Uint8Array;
  /** Bytes written. */
  end: number;
  /** The chunk's size: what the quota was charged for (`cost`), and what it may hold. */
  capacity: number;
  /** `bufferCost` of the chunk's buffer at its full size: what the quota was charged. */
  cost: number;
}

/**
 * In-order received bytes waiting for the application, oldest first, in
 * chunks the queue owns. A segment is appended to the last chunk while it
 * has room; a new chunk is allocated when it does not: twice the size of
 * the last one, up to {@linkcode RECEIVE_CHUNK_BYTES}, or, in a queue that
 * was emptied, half of it, from {@linkcode RECEIVE_MIN_CHUNK_BYTES} (and at
 * least the segment's size rounded up to a power of two); a segment of at least
 * {@linkcode RECEIVE_OWN_CHUNK_BYTES} gets a chunk of exactly its size.
 * Every chunk costs
 * `bufferCost(byteLength)` of the memory quota from its allocation until it
 * is read out or the queue is cleared.
 *
 * The first chunk of a burst (a small segment into an empty queue) is
 * charged at its size as any other, but its storage is made at the size of
 * the segment first, and grown to the chunk's size only when a second
 * segment joins it: a request or an answer that is read whole before more
 * arrives costs one allocation of its size (on V8, a 64-byte one is made on
 * the heap, where a 1 KiB one is not), and the read takes that storage
 * instead of copying it out. The charge, the window and what a read returns
 * are those of the full-size chunk.
 *
 * @example
 * ```ts
 * const q = new ReceiveQueue(new MemoryQuota(1 << 20));
 * for (let i = 0; i < 1000; i++) q.append(new Uint8Array([i & 0xff])); // 1,000 one-byte segments
 * q.chargedBytes; // bufferCost(1024): one chunk holds them
 * q.read(2); // Uint8Array [0, 1] (a copy)
 * q.length; // 998
 * ```
 */
export class ReceiveQueue {
  readonly #quota: MemoryQuota;
  #chunks: Chunk[] = [];
  /** Index in `#chunks` of the oldest chunk. */
  #head = 0;
  /** Read position in the oldest chunk. */
  #headOffset = 0;
  #length = 0;
  #charged = 0;
  /** Size of the last chunk allocated (own chunks excluded). */
  #lastChunkSize = 0;

  /** Creates an empty queue charging `quota` (default: one without a practical limit). */
  constructor(quota: MemoryQuota = new MemoryQuota(Number.MAX_SAFE_INTEGER)) {
    this.#quota = quota;
  }

  /** Bytes queued. */
  get length(): number {
    return this.#length;
  }

  /** Bytes of storage charged to the quota now. */
  get chargedBytes(): number {
    return this.#charged;
  }

  /** Bytes that still fit in the last chunk without new storage. */
  get tailRoom(): number {
    if (this.#head === this.#chunks.length) return 0;
    const tail = this.#chunks[this.#chunks.length - 1];
    return tail.capacity - tail.end;
  }

  /**
   * Appends a copy of `data` (which may be reused at once). Returns false,
   * and keeps nothing of it, when the quota refuses the storage it needs;
   * with `force`, charges the quota even past its limit (for bytes the core
   * already holds elsewhere and is only moving here).
   */
  append(data: Uint8Array, force = false): boolean {
    const n = data.length;
    if (n === 0) return true;
    const room = this.tailRoom;
    if (n <= room) {
      const tail = this.#chunks[this.#chunks.length - 1];
      if (tail.buf.length < tail.end + n) this.#grow(tail);
      tail.buf.set(data, tail.end);
      tail.end += n;
      this.#length += n;
      return true;
    }
    // A large segment gets a chunk of its own; a small one fills the room left first.
    const own = n >= RECEIVE_OWN_CHUNK_BYTES;
    const pooled = own && n >= RECEIVE_POOLED_CHUNK_BYTES &&
      RECEIVE_HEADROOM_BYTES + n <= LARGE_BUFFER_BYTES;
    const rest = own ? n : n - room;
    const size = pooled
      ? LARGE_BUFFER_BYTES
      : own
      ? RECEIVE_HEADROOM_BYTES + n
      : this.#nextChunkSize(rest);
    const cost = bufferCost(size);
    if (!this.#quota.tryCharge(cost)) {
      if (!force) return false;
      this.#quota.forceCharge(cost);
    }
    this.#charged += cost;
    if (!own && room > 0) {
      const tail = this.#chunks[this.#chunks.length - 1];
      if (tail.buf.length < tail.capacity) this.#grow(tail);
      tail.buf.set(data.subarray(0, room), tail.end);
      tail.end += room;
    }
    let buf: Uint8Array;
    if (own) {
      const storage = pooled ? takeLargeBuffer() : new ArrayBuffer(size);
      buf = new Uint8Array(storage, RECEIVE_HEADROOM_BYTES, n);
      buf.set(data);
    } else {
      this.#lastChunkSize = size;
      if (this.#length === 0) {
        // The first chunk of a burst: storage of the segment's size until another joins it.
        buf = data.slice();
      } else {
        buf = new Uint8Array(size);
        buf.set(room === 0 ? data : data.subarray(room));
      }
    }
    this.#chunks.push({ buf, end: rest, capacity: own ? n : size, cost });
    this.#length += n;
    return true;
  }

  /** What appending `n` bytes in one call would charge the quota now (0 when they fit in the last chunk). */
  costToAppend(n: number): number {
    const room = this.tailRoom;
    if (n <= room) return 0;
    if (n >= RECEIVE_POOLED_CHUNK_BYTES && RECEIVE_HEADROOM_BYTES + n <= LARGE_BUFFER_BYTES) {
      return bufferCost(LARGE_BUFFER_BYTES);
    }
    return bufferCost(
      n >= RECEIVE_OWN_CHUNK_BYTES ? RECEIVE_HEADROOM_BYTES + n : this.#nextChunkSize(n - room),
    );
  }

  /**
   * Takes up to `max` bytes from the front, or undefined when the queue is
   * empty. A full chunk at the front that fits in `max` is handed over
   * whole, without a copy (its charge goes with it); otherwise the bytes up
   * to `max` are copied into one new array, stopping before a full chunk
   * that the next read can hand over. Either way the result is the
   * caller's, one array per read whatever the segments were, and a chunk
   * read out is freed and its charge released.
   */
  read(max: number): Uint8Array | undefined {
    if (this.#length === 0 || max <= 0) return undefined;
    const chunks = this.#chunks;
    const first = chunks[this.#head];
    if (
      this.#headOffset === 0 && first.end <= max &&
      // A full chunk; or a first chunk of a burst that holds all there is, in storage of its
      // size: what the copy below would make, made already.
      (first.end === first.capacity ||
        (first.end === first.buf.length && first.end === this.#length))
    ) {
      this.#consume(first.end, true);
      return first.buf;
    }
    const limit = Math.min(max, this.#length);
    let n = first.end - this.#headOffset;
    for (let i = this.#head + 1; n < limit; i++) {
      const c = chunks[i];
      if (c.end === c.capacity && c.end <= max) break; // the next read takes it whole
      n += c.end;
    }
    if (n > limit) n = limit;
    const out = new Uint8Array(n);
    let done = 0;
    let offset = this.#headOffset;
    for (let i = this.#head; done < n; i++) {
      const c = chunks[i];
      const take = Math.min(c.end - offset, n - done);
      out.set(c.buf.subarray(offset, offset + take), done);
      done += take;
      offset = 0;
    }
    this.#consume(n);
    return out;
  }

  /** Drops every byte and frees every chunk. */
  clear(): void {
    for (let i = this.#head; i < this.#chunks.length; i++) recycleLargeBuffer(this.#chunks[i].buf);
    this.#chunks = [];
    this.#head = 0;
    this.#headOffset = 0;
    this.#length = 0;
    this.#releaseCharge(this.#charged);
  }

  /**
   * Removes `n` bytes from the front, freeing the chunks emptied; a pooled
   * chunk's buffer goes back to the pool, unless `handedOver` (the reader
   * took the first chunk whole).
   */
  #consume(n: number, handedOver = false): void {
    this.#length -= n;
    const chunks = this.#chunks;
    while (n > 0) {
      const c = chunks[this.#head];
      const left = c.end - this.#headOffset;
      if (n < left) {
        this.#headOffset += n;
        return;
      }
      n -= left;
      this.#releaseCharge(c.cost);
      if (!handedOver) recycleLargeBuffer(c.buf); // copied out: ours to give back
      this.#head++;
      this.#headOffset = 0;
    }
    if (this.#head === chunks.length) {
      this.#chunks = [];
      this.#head = 0;
    } else if (this.#head > 32 && this.#head * 2 > chunks.length) {
      chunks.splice(0, this.#head);
      this.#head = 0;
    }
  }

  /** Gives a first chunk of a burst its full storage (it was charged for it when made). */
  #grow(c: Chunk): void {
    const buf = new Uint8Array(c.capacity);
    buf.set(c.buf.subarray(0, c.end));
    c.buf = buf;
  }

  #releaseCharge(bytes: number): void {
    if (bytes === 0) return;
    this.#charged -= bytes;
    this.#quota.release(bytes);
  }

  /** The size of a new chunk for `need` bytes: doubling from a small first chunk. */
  #nextChunkSize(need: number): number {
    // Twice the last chunk while bytes stream in; an emptied queue starts again from half the
    // last one, so that a connection that keeps receiving does not climb from 1 KiB each time
    // and one that receives little comes back down to small chunks.
    const empty = this.#head === this.#chunks.length;
    const from = empty ? this.#lastChunkSize / 2 : this.#lastChunkSize * 2;
    let size = Math.max(RECEIVE_MIN_CHUNK_BYTES, from);
    while (size < need) size *= 2;
    return Math.min(size, RECEIVE_CHUNK_BYTES);
  }
}
