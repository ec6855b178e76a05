/**
 * The queue of one packet capture: captured frames copied as records into
 * chunks of memory the queue owns, so that a frame costs its bytes plus a
 * 16-byte record header rather than an object and a buffer of its own (the
 * 14-byte frames of a flood would otherwise cost some 40 times their size).
 * The queue is bounded by what it holds — the cost of its chunks, each its
 * capacity plus `BUFFER_OVERHEAD_BYTES` — and charges that cost to the
 * session's memory quota when it allocates a chunk and releases it when it
 * frees one.
 *
 * @module
 */

import { bufferCost, type MemoryQuota } from "../stack/session_quota.ts";

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

/** Bytes of a record's header in a chunk: time (f64), length (u32), direction (u8), padding. */
export const CAPTURE_RECORD_HEADER_BYTES = 16;
/** Capacity of the queue's chunks (a larger frame gets a chunk of its own size). */
export const CAPTURE_CHUNK_BYTES = 16 * 1024;

/** Why {@linkcode CaptureQueue.push} did not queue a frame. */
export type CaptureRefusal = "full" | "quota";

interface Chunk {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly cost: number;
  read: number;
  write: number;
}

/**
 * A bounded FIFO of captured frames, accounted by cost.
 *
 * @example
 * ```ts
 * const q = new CaptureQueue({ maxCost: 4 << 20, memory: session.stack.quota.memory });
 * if (q.push(Date.now(), "rx", frame) !== undefined) dropped++;
 * for (const f of q.take(256)) write(f);
 * q.clear(); // frees every chunk and releases its charge
 * ```
 */
export class CaptureQueue {
  /** The most the queue may hold, in bytes of cost. */
  readonly maxCost: number;
  #memory: MemoryQuota | undefined;
  #chunks: Chunk[] = [];
  #cost = 0;
  #frames = 0;
  #bytes = 0;

  /** An empty queue of at most `maxCost` bytes of cost, charged to `memory` when given. */
  constructor(options: { maxCost: number; memory?: MemoryQuota }) {
    if (!(options.maxCost >= 1)) {
      throw new RangeError(`CaptureQueue: maxCost must be >= 1, got ${options.maxCost}`);
    }
    this.maxCost = options.maxCost;
    this.#memory = options.memory;
  }

  /** Frames queued. */
  get frames(): number {
    return this.#frames;
  }

  /** Bytes of the frames queued (their payload, headers of the records left out). */
  get bytes(): number {
    return this.#bytes;
  }

  /** What the queue holds and is charged: the cost of its chunks. */
  get cost(): number {
    return this.#cost;
  }

  /** The buffers the queue owns and their bytes (for tests that count memory). */
  storage(): { buffers: number; bytes: number } {
    let bytes = 0;
    for (const c of this.#chunks) bytes += c.bytes.byteLength;
    return { buffers: this.#chunks.length, bytes };
  }

  /**
   * Copies `data` in as a record; returns undefined when queued, `full` when
   * the queue's bound leaves no room, `quota` when the memory quota refused
   * the chunk it needed.
   */
  push(timeMs: number, direction: CaptureDirection, data: Uint8Array): CaptureRefusal | undefined {
    const size = CAPTURE_RECORD_HEADER_BYTES + data.length;
    let tail: Chunk | undefined = this.#chunks[this.#chunks.length - 1];
    if (tail && this.#frames === 0 && tail.bytes.length < size) {
      // The chunk kept from before is too small for this frame: let it go.
      this.clear();
      tail = undefined;
    }
    if (!tail || tail.write + size > tail.bytes.length) {
      const room = this.maxCost - this.#cost;
      if (bufferCost(size) > room) return "full";
      const capacity = Math.max(size, Math.min(CAPTURE_CHUNK_BYTES, room - bufferCost(0)));
      const chunk = this.#allocate(capacity) ??
        (capacity > size ? this.#allocate(size) : undefined);
      if (!chunk) return "quota";
      this.#chunks.push(chunk);
      tail = chunk;
    }
    const at = tail.write;
    tail.view.setFloat64(at, timeMs, true);
    tail.view.setUint32(at + 8, data.length, true);
    tail.bytes[at + 12] = direction === "rx" ? 0 : 1;
    tail.bytes.set(data, at + CAPTURE_RECORD_HEADER_BYTES);
    tail.write = at + size;
    this.#frames++;
    this.#bytes += data.length;
    return undefined;
  }

  /**
   * Removes and returns up to `max` frames, oldest first, copied into one
   * new buffer (so the chunks can be reused while the caller keeps them).
   */
  take(max = Infinity): CapturedFrame[] {
    const n = Math.min(max, this.#frames);
    if (n <= 0) return [];
    const records: Array<
      { timeMs: number; direction: CaptureDirection; chunk: Chunk; at: number }
    > = [];
    let total = 0;
    let ci = 0;
    let read = this.#chunks[0].read;
    for (let i = 0; i < n; i++) {
      let c = this.#chunks[ci];
      if (read >= c.write) {
        c = this.#chunks[++ci];
        read = c.read;
      }
      const len = c.view.getUint32(read + 8, true);
      records.push({
        timeMs: c.view.getFloat64(read, true),
        direction: c.bytes[read + 12] === 0 ? "rx" : "tx",
        chunk: c,
        at: read,
      });
      total += len;
      read += CAPTURE_RECORD_HEADER_BYTES + len;
    }
    const copy = new Uint8Array(total);
    const out: CapturedFrame[] = [];
    let off = 0;
    for (const r of records) {
      const len = r.chunk.view.getUint32(r.at + 8, true);
      const start = r.at + CAPTURE_RECORD_HEADER_BYTES;
      copy.set(r.chunk.bytes.subarray(start, start + len), off);
      out.push({ timeMs: r.timeMs, direction: r.direction, data: copy.subarray(off, off + len) });
      off += len;
    }
    this.#frames -= n;
    this.#bytes -= total;
    this.#advance(ci, read);
    return out;
  }

  /** Drops every frame and frees every chunk, releasing its charge. */
  clear(): void {
    for (const c of this.#chunks) this.#free(c);
    this.#chunks = [];
    this.#frames = 0;
    this.#bytes = 0;
  }

  /** Moves the read position to `read` in chunk `ci`, freeing the chunks read to their end. */
  #advance(ci: number, read: number): void {
    const chunks = this.#chunks;
    chunks[ci].read = read;
    let drop = ci;
    if (read >= chunks[ci].write) {
      if (ci === chunks.length - 1) {
        // The queue is empty: keep the last chunk for the next frames.
        chunks[ci].read = 0;
        chunks[ci].write = 0;
      } else {
        drop = ci + 1;
      }
    }
    for (let i = 0; i < drop; i++) this.#free(chunks[i]);
    if (drop > 0) this.#chunks = chunks.slice(drop);
  }

  #allocate(capacity: number): Chunk | undefined {
    const cost = bufferCost(capacity);
    if (this.#memory && !this.#memory.tryCharge(cost)) return undefined;
    this.#cost += cost;
    const bytes = new Uint8Array(capacity);
    return { bytes, view: new DataView(bytes.buffer), cost, read: 0, write: 0 };
  }

  #free(c: Chunk): void {
    this.#cost -= c.cost;
    this.#memory?.release(c.cost);
  }
}
