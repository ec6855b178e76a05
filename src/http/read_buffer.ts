/**
 * The read side of a connection: one buffer, at most one read in flight,
 * unconsumed bytes between `start` and `end`. The buffer starts small (a
 * connection at rest holds `idleBytes`), grows ×4 up to the caller's bound
 * only while reads fill it, and is given up for a small one at rest
 * (`shrink`). The HTTP/1.1 engine's heads, bodies and linger all read
 * through it.
 *
 * Runtime-neutral: reads from a {@linkcode ByteConn}.
 *
 * @module
 */

import type { ByteConn } from "./websocket_conn.ts";

const EMPTY = new Uint8Array(0);

/**
 * A connection's read buffer.
 *
 * @example
 * ```ts
 * const input = new ReadBuffer(conn, 1024, () => abort());
 * input.makeRoom(16 * 1024);
 * await input.fill();
 * use(input.buf.subarray(input.start, input.end));
 * input.start = input.end; // consumed
 * ```
 */
export class ReadBuffer {
  /** The buffer; unconsumed bytes are `buf[start..end)`. */
  buf: Uint8Array;
  /** First unconsumed byte. */
  start = 0;
  /** End of the bytes read. */
  end = 0;
  /** The peer closed its side (or the connection failed): no more bytes. */
  eof = false;
  readonly #conn: ByteConn;
  readonly #idleBytes: number;
  readonly #onEof: () => void;
  /** The last read filled all the room it had: grow before the next. */
  #filled = false;
  #reading: Promise<void> | undefined;
  /** The buffer the read in flight reads into, and where. */
  #readBuf: Uint8Array = EMPTY;
  #readAt = 0;

  /** Reads from `conn` into `idleBytes` at first; `onEof` runs once the peer is gone. */
  constructor(conn: ByteConn, idleBytes: number, onEof: () => void) {
    this.#conn = conn;
    this.#idleBytes = idleBytes;
    this.#onEof = onEof;
    this.buf = new Uint8Array(idleBytes);
  }

  /** A read is in flight. */
  get reading(): boolean {
    return this.#reading !== undefined;
  }

  /** Waits for the read in flight, or starts one into the buffer's free tail. */
  fill(): Promise<void> {
    if (this.#reading === undefined) {
      const buf = this.buf;
      const at = this.end;
      this.#readBuf = buf;
      this.#readAt = at;
      this.#reading = this.#conn.read(at === 0 ? buf : buf.subarray(at)).then(
        this.#onRead,
        this.#onReadError,
      );
    }
    return this.#reading;
  }

  readonly #onRead = (n: number | null): void => {
    this.#reading = undefined;
    if (this.#readBuf !== this.buf) return; // released meanwhile
    if (n === null) this.#gone();
    else {
      this.end = this.#readAt + n;
      this.#filled = this.end === this.buf.length;
    }
  };

  readonly #onReadError = (): void => {
    // Reset by the peer, or closed here.
    this.#reading = undefined;
    this.#gone();
  };

  #gone(): void {
    if (this.eof) return;
    this.eof = true;
    this.#onEof();
  }

  /**
   * Room for a read (call with no read in flight): compacts, or grows (×4,
   * up to `max`) when the last read filled the buffer or it is full.
   */
  makeRoom(max: number): void {
    const buf = this.buf;
    if (this.start === this.end) this.start = this.end = 0;
    const used = this.end - this.start;
    if ((this.#filled || used === buf.length) && buf.length < max) {
      const next = new Uint8Array(Math.min(max, buf.length * 4));
      next.set(buf.subarray(this.start, this.end));
      this.buf = next;
      this.start = 0;
      this.end = used;
    } else if (this.end === buf.length && this.start > 0) {
      buf.copyWithin(0, this.start, this.end);
      this.start = 0;
      this.end = used;
    }
    this.#filled = false;
  }

  /** Gives up a grown buffer when nothing is buffered or in flight (a connection at rest). */
  shrink(): void {
    if (
      this.buf.length > this.#idleBytes && this.#reading === undefined && this.start === this.end
    ) {
      this.buf = new Uint8Array(this.#idleBytes);
      this.start = this.end = 0;
    }
  }

  /** Drops what is buffered; returns how many bytes that was. */
  drop(): number {
    const n = this.end - this.start;
    this.start = this.end;
    return n;
  }

  /** The buffered bytes (a copy), and the buffer given up: after an upgrade. */
  release(): Uint8Array {
    const rest = this.buf.slice(this.start, this.end);
    this.discard();
    return rest;
  }

  /** Gives up the buffer and what it holds (a read in flight completes into nothing). */
  discard(): void {
    this.buf = EMPTY;
    this.start = this.end = 0;
  }
}
