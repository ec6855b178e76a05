/**
 * The receive queue of a TCP connection: in-order bytes the application has
 * not read yet (RFC 9293 §3.3.1, the span before RCV.NXT), beside the
 * out-of-order store (reassembler.ts) and the send buffer (send_buffer.ts).
 *
 * @module
 */

/**
 * In-order received bytes waiting for the application, oldest first.
 *
 * @example
 * ```ts
 * const q = new ReceiveQueue();
 * q.append(new Uint8Array([1, 2, 3]));
 * q.read(2); // Uint8Array [1, 2]
 * q.length; // 1
 * ```
 */
export class ReceiveQueue {
  #chunks: Uint8Array[] = [];
  #head = 0;
  #length = 0;

  /** Bytes queued. */
  get length(): number {
    return this.#length;
  }

  /** Appends `data` (kept as given). */
  append(data: Uint8Array): void {
    this.#chunks.push(data);
    this.#length += data.length;
  }

  /**
   * Takes up to `max` bytes from the front, or undefined when the queue is
   * empty: whole chunks (copied together when there are several) or the
   * front part of the first one.
   */
  read(max: number): Uint8Array | undefined {
    if (this.#length === 0) return undefined;
    const q = this.#chunks;
    let out: Uint8Array;
    const first = q[this.#head];
    if (first.length <= max) {
      let total = 0;
      let i = this.#head;
      while (i < q.length && total + q[i].length <= max) total += q[i++].length;
      if (i === this.#head + 1) {
        out = first;
      } else {
        out = new Uint8Array(total);
        let off = 0;
        for (let k = this.#head; k < i; k++) {
          out.set(q[k], off);
          off += q[k].length;
        }
      }
      this.#head = i;
    } else {
      out = first.subarray(0, max);
      q[this.#head] = first.subarray(max);
    }
    if (this.#head > 64 && this.#head * 2 > q.length) {
      q.splice(0, this.#head);
      this.#head = 0;
    }
    this.#length -= out.length;
    return out;
  }
}
