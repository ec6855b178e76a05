/**
 * QEMU stream framing: each Ethernet frame is preceded by its length as a
 * 32-bit big-endian unsigned integer, repeated over a byte stream. It is what
 * QEMU `-netdev stream`, passt and gvisor-tap-vsock speak, and what
 * container2wasm carries inside WebSocket messages.
 *
 * The encoder is pure. The decoder keeps state across chunk boundaries (a
 * length prefix or a frame may be split anywhere) and refuses a length over its
 * limit instead of buffering it: the stream cannot be resynchronised after a bad
 * length, so the caller must close it.
 *
 * @module
 */

/** Bytes of the big-endian length prefix in front of every frame. */
export const STREAM_LENGTH_PREFIX = 4;

/**
 * Encodes frames as one buffer of `length, frame, length, frame, ...`.
 *
 * @example
 * ```ts
 * const bytes = encodeStreamFrames([new Uint8Array(60)]); // 64 bytes: 0,0,0,60 then the frame
 * ```
 */
export function encodeStreamFrames(frames: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(streamFramesLength(frames));
  writeStreamFrames(out, frames);
  return out;
}

/**
 * The bytes {@linkcode encodeStreamFrames} makes of `frames`: each frame
 * and its length prefix.
 *
 * @example
 * ```ts
 * streamFramesLength([new Uint8Array(60), new Uint8Array(70)]); // 138
 * ```
 */
export function streamFramesLength(frames: readonly Uint8Array[]): number {
  let total = 0;
  for (const f of frames) total += STREAM_LENGTH_PREFIX + f.length;
  return total;
}

/**
 * Writes the stream framing of `frames` at the start of `out` (which must
 * hold {@linkcode streamFramesLength} bytes), for a caller that builds the
 * message in a buffer of its own; returns the bytes written.
 *
 * @example
 * ```ts
 * const frames = [new Uint8Array(60)];
 * const out = new Uint8Array(streamFramesLength(frames));
 * writeStreamFrames(out, frames); // 64
 * ```
 */
export function writeStreamFrames(out: Uint8Array, frames: readonly Uint8Array[]): number {
  let at = 0;
  for (const f of frames) {
    const len = f.length;
    out[at] = len >>> 24;
    out[at + 1] = (len >>> 16) & 0xff;
    out[at + 2] = (len >>> 8) & 0xff;
    out[at + 3] = len & 0xff;
    out.set(f, at + STREAM_LENGTH_PREFIX);
    at += STREAM_LENGTH_PREFIX + len;
  }
  return at;
}

/** Why a {@linkcode StreamDeframer} gave up on its stream. */
export type StreamFramingError = { reason: "frame-too-long"; length: number; limit: number };

/**
 * Incremental decoder of QEMU stream framing. Feed it chunks as they arrive;
 * it calls `onFrame` with every complete frame (a fresh copy or a view into
 * the chunk that the callee may keep) and returns an error when a length
 * prefix exceeds `maxFrameLen`, after which it must not be fed again.
 *
 * @example
 * ```ts
 * const d = new StreamDeframer(65550, (f) => console.log(f.length));
 * d.push(encodeStreamFrames([new Uint8Array(60), new Uint8Array(70)]).subarray(0, 10));
 * ```
 */
export class StreamDeframer {
  #header = new Uint8Array(STREAM_LENGTH_PREFIX);
  #headerFill = 0;
  #frame: Uint8Array | undefined;
  #frameFill = 0;
  #failed: StreamFramingError | undefined;

  /**
   * @param maxFrameLen the longest frame accepted (a longer prefix is an error)
   * @param onFrame called once per complete frame, in stream order
   */
  constructor(
    readonly maxFrameLen: number,
    private readonly onFrame: (frame: Uint8Array) => void,
  ) {
    if (!Number.isInteger(maxFrameLen) || maxFrameLen < 1) {
      throw new RangeError(
        `StreamDeframer: maxFrameLen must be a positive integer, got ${maxFrameLen}`,
      );
    }
  }

  /** Bytes of a partial frame or prefix held between chunks. */
  get pendingBytes(): number {
    return this.#headerFill + this.#frameFill;
  }

  /** Consumes one chunk; returns an error (and stays failed) on a bad length. */
  push(chunk: Uint8Array): StreamFramingError | undefined {
    if (this.#failed) return this.#failed;
    let at = 0;
    while (at < chunk.length) {
      if (this.#frame === undefined) {
        // Fast path: a whole prefix and frame inside this chunk, nothing pending.
        if (this.#headerFill === 0 && chunk.length - at >= STREAM_LENGTH_PREFIX) {
          const len = ((chunk[at] << 24) | (chunk[at + 1] << 16) | (chunk[at + 2] << 8) |
            chunk[at + 3]) >>> 0;
          if (len > this.maxFrameLen) return this.#fail(len);
          if (chunk.length - at - STREAM_LENGTH_PREFIX >= len) {
            const start = at + STREAM_LENGTH_PREFIX;
            this.onFrame(chunk.subarray(start, start + len));
            at = start + len;
            continue;
          }
          this.#header.set(chunk.subarray(at, at + STREAM_LENGTH_PREFIX));
          this.#headerFill = STREAM_LENGTH_PREFIX;
          at += STREAM_LENGTH_PREFIX;
        } else {
          const take = Math.min(STREAM_LENGTH_PREFIX - this.#headerFill, chunk.length - at);
          this.#header.set(chunk.subarray(at, at + take), this.#headerFill);
          this.#headerFill += take;
          at += take;
          if (this.#headerFill < STREAM_LENGTH_PREFIX) break;
        }
        const h = this.#header;
        const len = ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0;
        if (len > this.maxFrameLen) return this.#fail(len);
        this.#frame = new Uint8Array(len);
        this.#frameFill = 0;
      }
      const take = Math.min(this.#frame.length - this.#frameFill, chunk.length - at);
      this.#frame.set(chunk.subarray(at, at + take), this.#frameFill);
      this.#frameFill += take;
      at += take;
      if (this.#frameFill === this.#frame.length) {
        const frame = this.#frame;
        this.#frame = undefined;
        this.#frameFill = 0;
        this.#headerFill = 0;
        this.onFrame(frame);
      }
    }
    return undefined;
  }

  #fail(length: number): StreamFramingError {
    this.#failed = { reason: "frame-too-long", length, limit: this.maxFrameLen };
    return this.#failed;
  }
}
