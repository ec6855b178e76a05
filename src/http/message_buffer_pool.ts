/**
 * The buffers a lending `ServerWebSocket` (websocket_conn.ts) receives large binary
 * messages into (see `ServerWebSocket.lendBinaryMessages`): one pool per
 * process, whatever the number of connections and sessions. A fresh,
 * zero-filled `ArrayBuffer` per message of up to 256 KiB, 1,500+ per
 * second on a tunnel's upload path, costs CPU in the garbage collector,
 * the zero fill and page faults; the send side measured half of the
 * server's CPU for the same habit (see `recycleLargeBuffer` in
 * src/stack/frame_arena.ts).
 *
 * A connection holds a buffer only while one message is received into it
 * (across reads) and while that message is dispatched; then the buffer
 * comes back here. The pool keeps at most {@linkcode LENT_MESSAGE_POOL_BUFFERS}
 * free buffers of {@linkcode LENT_MESSAGE_MAX_BYTES} (4,210,688 bytes in
 * all); when it is empty a buffer is allocated, and one given back to a
 * full pool is left to the garbage collector.
 *
 * Runtime-neutral.
 *
 * @module
 */

import { DEFAULT_MAX_VNET_BATCH_BYTES } from "../wire/tunnel_protocol.ts";

/** A binary message shorter than this is not worth lending: it gets a fresh buffer. */
export const LENT_MESSAGE_MIN_BYTES = 4 * 1024;

/**
 * The longest binary message lent, and the size of every pooled buffer: a
 * vnet-stream batch (the largest message the tunnel client sends) and 1 KiB
 * to spare. A longer message gets a fresh buffer.
 */
export const LENT_MESSAGE_MAX_BYTES = DEFAULT_MAX_VNET_BATCH_BYTES + 1024;

/** The most free buffers the process-wide pool keeps (16 × 257 KiB). */
export const LENT_MESSAGE_POOL_BUFFERS = 16;

/**
 * A bounded free list of equally sized `ArrayBuffer`s that knows which
 * buffers it handed out: giving back a buffer it did not hand out, or one
 * already given back, is ignored, so a buffer can never sit in the list
 * twice (and be lent to two messages at once). A buffer that was detached
 * meanwhile (transferred: its `byteLength` is 0) is dropped.
 *
 * @example
 * ```ts
 * const pool = new MessageBufferPool(64 * 1024, 4);
 * const buffer = pool.take();
 * const message = new Uint8Array(buffer, 0, 5000); // filled, then used
 * pool.give(buffer); // once done with `message`
 * ```
 */
export class MessageBufferPool {
  /** Bytes per buffer. */
  readonly size: number;
  /** Free buffers kept at most. */
  readonly maxFree: number;
  #free: ArrayBuffer[] = [];
  /** Buffers taken and not given back yet. */
  #out = new WeakSet<ArrayBuffer>();

  /** A pool of `size`-byte buffers that keeps at most `maxFree` free ones. */
  constructor(size: number, maxFree: number) {
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`MessageBufferPool: size must be an integer >= 1, got ${size}`);
    }
    if (!Number.isInteger(maxFree) || maxFree < 0) {
      throw new RangeError(`MessageBufferPool: maxFree must be an integer >= 0, got ${maxFree}`);
    }
    this.size = size;
    this.maxFree = maxFree;
  }

  /** Free buffers held now. */
  get free(): number {
    return this.#free.length;
  }

  /** A buffer of `size` bytes; its contents are what an earlier holder left in it. */
  take(): ArrayBuffer {
    const buffer = this.#free.pop() ?? new ArrayBuffer(this.size);
    this.#out.add(buffer);
    return buffer;
  }

  /**
   * Gives back a buffer from {@linkcode MessageBufferPool.take}; the caller
   * must not touch it, or any view of it, again. Kept unless `maxFree` are
   * free already.
   */
  give(buffer: ArrayBuffer): void {
    if (!this.#out.delete(buffer)) return; // not ours, or given back already
    if (buffer.byteLength !== this.size) return; // detached by a transfer
    if (this.#free.length < this.maxFree) this.#free.push(buffer);
  }
}

/**
 * The process-wide pool of the buffers lending WebSockets receive messages
 * into: at most {@linkcode LENT_MESSAGE_POOL_BUFFERS} free buffers of
 * {@linkcode LENT_MESSAGE_MAX_BYTES}.
 */
export const lentMessagePool: MessageBufferPool = new MessageBufferPool(
  LENT_MESSAGE_MAX_BYTES,
  LENT_MESSAGE_POOL_BUFFERS,
);
