/**
 * Storage for the frames a stack emits. Allocating a fresh `Uint8Array` per
 * frame costs V8 about 2 µs for a full-size frame (a zero-filled backing
 * store, an external-memory finalizer, garbage for the next collection),
 * more than building the frame; carving frames out of large chunks costs a
 * view each and one allocation per chunk.
 *
 * Frames are handed to the link and belong to whoever takes them, so a chunk
 * is never written again once its frames are handed out: a full chunk is
 * dropped for the garbage collector (with the frames still referencing it)
 * and a new one started. Each frame starts at an offset of 2 modulo 4, so
 * that the IP header behind the 14-byte Ethernet header, and a transport
 * header behind a 20-byte IPv4 header, are 4-byte aligned (NET_IP_ALIGN),
 * and `headroom` bytes before every frame are reserved for the link's own
 * header (a stream length prefix, a virtio-net header): a tunnel can send a
 * run of consecutive frames of one chunk as one message without copying
 * them (see {@linkcode FrameArena.headroom}).
 *
 * A large frame (over 16 KiB: a segmentation-offload packet, a jumbo frame)
 * gets a buffer of its own from the process's pool of large buffers
 * (large_buffer_pool.ts). Whoever takes one and is done with it may give the
 * buffer back with `recycleLargeBuffer` (the tunnel does, once the
 * socket wrote it).
 *
 * @module
 */

import {
  holdLargeBuffer,
  isLargeBuffer,
  LARGE_BUFFER_BYTES,
  takeLargeBuffer,
} from "./large_buffer_pool.ts";

/** Default size of an arena chunk. */
export const FRAME_ARENA_CHUNK_BYTES = 64 * 1024;

/** Frames longer than this get a buffer of their own (a chunk would hold too few). */
const OWN_BUFFER_BYTES = 16 * 1024;

/**
 * Bytes a frame with a buffer of its own always has free before it (more
 * when the arena's headroom is larger): room for a tunnel's record header
 * and a WebSocket frame header, so that a segmentation-offload packet goes
 * out without being copied (see {@linkcode largeFrameHeadroom}).
 */
export const LARGE_FRAME_HEADROOM = 32;

/**
 * The bytes before `frame` in its buffer that belong to it: at least
 * {@linkcode LARGE_FRAME_HEADROOM} for a frame over 16 KiB that a
 * {@linkcode FrameArena} allocated (it has a buffer of its own); 0 for any
 * other, whose preceding bytes may belong to another frame, and for one
 * already given back with `recycleLargeBuffer`. Whoever holds the
 * frame may write its own headers there.
 *
 * @example
 * ```ts
 * const f = new FrameArena().alloc(60_000);
 * largeFrameHeadroom(f) >= 32; // true
 * ```
 */
export function largeFrameHeadroom(frame: Uint8Array): number {
  return frame.length > OWN_BUFFER_BYTES && isLargeBuffer(frame.buffer) ? frame.byteOffset : 0;
}

/**
 * Chunked storage for emitted frames.
 *
 * @example
 * ```ts
 * const arena = new FrameArena();
 * const frame = arena.alloc(1514); // a view into the current chunk, zero-filled
 * frame.byteOffset % 4; // 2: the IPv4 header at frame[14] is 4-byte aligned
 * ```
 */
export class FrameArena {
  readonly #chunkBytes: number;
  #buffer: ArrayBuffer;
  #at: number;
  #headroom = 0;

  /** Creates an arena whose chunks hold `chunkBytes` bytes. */
  constructor(chunkBytes: number = FRAME_ARENA_CHUNK_BYTES) {
    if (!Number.isInteger(chunkBytes) || chunkBytes < 4096) {
      throw new RangeError(`FrameArena: chunkBytes must be an integer >= 4096, got ${chunkBytes}`);
    }
    this.#chunkBytes = chunkBytes;
    this.#buffer = new ArrayBuffer(0);
    this.#at = 0;
  }

  /**
   * Bytes reserved before every frame for the link's own header, at most
   * 64. A frame `f` from {@linkcode FrameArena.alloc} may be preceded in
   * `f.buffer` by this many bytes that belong to it: a tunnel writes its
   * per-frame header there, and when consecutive frames of one message are
   * adjacent in one buffer (each `headroom` bytes after the previous one's
   * end) it sends them as one view. Zero by default.
   */
  get headroom(): number {
    return this.#headroom;
  }

  set headroom(bytes: number) {
    if (!Number.isInteger(bytes) || bytes < 0 || bytes > 64) {
      throw new RangeError(`FrameArena: headroom must be an integer in 0..64, got ${bytes}`);
    }
    this.#headroom = bytes;
  }

  /**
   * A zero-filled frame of `len` bytes, with the arena's headroom before it.
   * The caller owns it (the arena never writes it again).
   */
  alloc(len: number): Uint8Array {
    const head = this.#headroom;
    if (len > OWN_BUFFER_BYTES) {
      // A large frame (jumbo MTU, a segmentation-offload packet): its own buffer, with room
      // before it for the headers a tunnel puts in front (largeFrameHeadroom).
      const start = alignedStart(Math.max(head, LARGE_FRAME_HEADROOM));
      if (start + len > LARGE_BUFFER_BYTES) {
        const own = new ArrayBuffer(start + len);
        holdLargeBuffer(own);
        return new Uint8Array(own, start, len);
      }
      return new Uint8Array(takeLargeBuffer(), start, len);
    }
    let start = alignedStart(this.#at + head);
    if (start + len > this.#buffer.byteLength) {
      this.#buffer = new ArrayBuffer(this.#chunkBytes);
      start = alignedStart(head);
    }
    this.#at = start + len;
    return new Uint8Array(this.#buffer, start, len);
  }
}

/** The first offset at or after `at` that is 2 modulo 4. */
function alignedStart(at: number): number {
  return at + ((6 - (at & 3)) & 3);
}
