/**
 * What a `netisle.stream.v1` stream has sent its client and the client has
 * not acknowledged yet (with ACK messages that return credit), charged to the
 * session's memory quota: until the client acknowledges them, those bytes sit
 * in the WebSocket's send buffer or on the way, on the session's behalf.
 *
 * @module
 */

import { bufferCost, type MemoryQuota } from "../stack/session_quota.ts";

/**
 * A ledger of unacknowledged messages, oldest first, each charged
 * `bufferCost` of its size.
 *
 * @example
 * ```ts
 * const unacked = new UnackedCharges(session.stack.quota.memory);
 * if (unacked.tryCharge(chunk.length)) ws.send(encodeStreamData(chunk));
 * // later, on the client's ACK of n bytes:
 * unacked.acked(n);
 * ```
 */
export class UnackedCharges {
  #quota: MemoryQuota;
  #messages: Array<{ bytes: number; cost: number }> = [];

  /** A ledger charging `quota`. */
  constructor(quota: MemoryQuota) {
    this.#quota = quota;
  }

  /** Charges a message of `bytes` about to be sent; false (nothing charged) when the quota refuses. */
  tryCharge(bytes: number): boolean {
    const cost = bufferCost(bytes);
    if (!this.#quota.tryCharge(cost)) return false;
    this.#messages.push({ bytes, cost });
    return true;
  }

  /**
   * Charges ahead for a message of at most `bytes` whose size is known only
   * after reading it; {@linkcode UnackedCharges.settle} fixes the charge.
   */
  tryReserve(bytes: number): boolean {
    return this.tryCharge(bytes);
  }

  /**
   * Fixes the last reservation to the `bytes` actually sent (0: nothing was
   * sent, the reservation is given back).
   */
  settle(bytes: number): void {
    const last = this.#messages.pop();
    if (!last) throw new RangeError("UnackedCharges.settle: nothing is reserved");
    this.#quota.release(last.cost);
    if (bytes > 0) {
      const cost = bufferCost(bytes);
      this.#quota.forceCharge(cost); // no more than the reservation just released
      this.#messages.push({ bytes, cost });
    }
  }

  /** The client acknowledged `bytes`: what they were charged is given back, oldest first. */
  acked(bytes: number): void {
    let left = bytes;
    while (left > 0 && this.#messages.length > 0) {
      const m = this.#messages[0];
      if (m.bytes > left) {
        // Part of a message: its bytes leave the charge, its overhead stays with the rest.
        m.bytes -= left;
        m.cost -= left;
        this.#quota.release(left);
        return;
      }
      this.#messages.shift();
      this.#quota.release(m.cost);
      left -= m.bytes;
    }
  }

  /** Bytes charged now. */
  get charged(): number {
    let n = 0;
    for (const m of this.#messages) n += m.cost;
    return n;
  }

  /** Gives every charge back (the stream ended). */
  releaseAll(): void {
    for (const m of this.#messages) this.#quota.release(m.cost);
    this.#messages = [];
  }
}
