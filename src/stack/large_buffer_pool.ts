/**
 * One free list per process of the buffers that hold a large packet's bytes:
 * a segmentation-offload frame the stack emits ({@linkcode FrameArena}) and a
 * large segment's text in a receive queue. Allocating a fresh 64 KiB
 * `ArrayBuffer` per packet (zero-filled, an external-memory finalizer,
 * garbage for the next collection) cost the server half of its CPU time when
 * it sends to a kernel peer (`deno task bench -- e2e`: 1.7–1.8 s/GB without
 * reuse, 0.8–1.0 with it), and a fifth when it receives.
 *
 * Whoever holds such a buffer and is done with it may give it back with
 * {@linkcode recycleLargeBuffer} (the tunnel, once the socket wrote a frame;
 * a socket stream, once the WebSocket wrote a received chunk; a receive queue
 * that copied a chunk out). The free list keeps at most
 * {@linkcode LARGE_BUFFER_POOL_BUFFERS} (4.2 MiB whatever the number of
 * sessions), and a buffer is zeroed again before it is handed out, so no
 * bytes pass from one session to another.
 *
 * @module
 */

import { BufferPool } from "./buffer_pool.ts";

/** The size of a pooled buffer: an IP packet of 64 KiB behind an Ethernet header, with headroom. */
export const LARGE_BUFFER_BYTES = 65_536 + 256;

/** The most buffers kept for reuse, for the whole process. */
export const LARGE_BUFFER_POOL_BUFFERS = 64;

/** The process's pool of large buffers, zeroed before reuse. */
const pool = new BufferPool(LARGE_BUFFER_BYTES, LARGE_BUFFER_POOL_BUFFERS, { zeroOnReuse: true });

/**
 * A zero-filled buffer of {@linkcode LARGE_BUFFER_BYTES}, reused when one
 * was given back, that the caller holds until it gives it back (or drops it
 * for the garbage collector).
 *
 * @example
 * ```ts
 * const buffer = takeLargeBuffer();
 * new Uint8Array(buffer, 32, 60_000).set(payload);
 * ```
 */
export function takeLargeBuffer(): ArrayBuffer {
  return pool.take();
}

/**
 * Marks a buffer made for one large packet outside the pool (longer than
 * {@linkcode LARGE_BUFFER_BYTES}: a jumbo frame with its headroom) as held,
 * so that {@linkcode isLargeBuffer} knows it; giving it back drops it.
 */
export function holdLargeBuffer(buffer: ArrayBuffer): void {
  pool.hold(buffer);
}

/**
 * Whether `buffer` was taken from the pool (or marked with
 * {@linkcode holdLargeBuffer}) and not given back since: the buffer of one
 * packet, whose holder may write before and after the packet's bytes.
 *
 * @example
 * ```ts
 * isLargeBuffer(takeLargeBuffer()); // true
 * isLargeBuffer(new ArrayBuffer(65_792)); // false
 * ```
 */
export function isLargeBuffer(buffer: ArrayBufferLike): boolean {
  return pool.holds(buffer);
}

/**
 * Gives the buffer of `bytes` back for reuse once its holder is done with
 * it: the caller must not touch `bytes`, or any view of its buffer, again.
 * Any other array (a view into a shared chunk, a buffer the pool never
 * handed out, one already given back) is ignored, as is a buffer when the
 * free list already holds {@linkcode LARGE_BUFFER_POOL_BUFFERS}.
 *
 * @example
 * ```ts
 * const frame = new FrameArena().alloc(60_000);
 * // ... written to a socket, the write completed:
 * recycleLargeBuffer(frame);
 * ```
 */
export function recycleLargeBuffer(bytes: Uint8Array): void {
  pool.give(bytes.buffer as ArrayBuffer);
}
