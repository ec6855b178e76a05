/**
 * What a server has handed one WebSocket and not yet seen it send, for a
 * protocol with no credit towards the client (Wisp): writers reserve room
 * before they read from TCP, so a client that stops reading stops them.
 * Room is a byte budget for the whole socket (the high-water mark) and the
 * session's memory quota, which is charged for every message until
 * `bufferedAmount` says it left. No event tells when `bufferedAmount`
 * drops, so one timer on the session's clock looks while anything waits or
 * is charged.
 *
 * @module
 */

import type { TunnelSocket } from "../../session/tunnel_server.ts";
import type { TimerClock } from "../../socket/poll_deadline.ts";
import { bufferCost, type MemoryQuota } from "../../stack/session_quota.ts";

const OPEN = 1;
const CLOSED = 3;

/**
 * The ledger of one WebSocket.
 *
 * @example
 * ```ts
 * const ledger = new WsSendLedger(ws, session.stack.quota.memory, session.clock, 1 << 20, 10);
 * await ledger.reserve(65541, signal);
 * ledger.sendReserved(encodeWispData(id, chunk), 65541);
 * ```
 */
export class WsSendLedger {
  #ws: TunnelSocket;
  #quota: MemoryQuota;
  #clock: TimerClock;
  #highWater: number;
  #pollMs: number;
  #sent: Array<{ bytes: number; cost: number }> = [];
  #sentBytes = 0;
  #reservedBytes = 0;
  #waiters: Array<{ bytes: number; resolve: () => void; drop: () => void }> = [];
  #timer: number | undefined;
  #closed = false;

  /** A ledger of `ws`, charging `quota`, looking every `pollMs` on `clock`. */
  constructor(
    ws: TunnelSocket,
    quota: MemoryQuota,
    clock: TimerClock,
    highWaterBytes: number,
    pollMs: number,
  ) {
    this.#ws = ws;
    this.#quota = quota;
    this.#clock = clock;
    this.#highWater = highWaterBytes;
    this.#pollMs = pollMs;
  }

  /** Sends a small message now (a control packet), uncharged but within the budget's count. */
  sendNow(message: Uint8Array<ArrayBuffer>): void {
    if (this.#closed || this.#ws.readyState !== OPEN) return;
    this.#ws.send(message);
    this.#sent.push({ bytes: message.length, cost: 0 });
    this.#sentBytes += message.length;
    this.#arm();
  }

  /** Resolves once `bytes` fit the budget and the quota took their cost; rejects on abort or close. */
  reserve(bytes: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.#closed) return Promise.reject(new DOMException("the WebSocket ended", "AbortError"));
    this.#releaseDrained();
    if (this.#waiters.length === 0 && this.#tryTake(bytes)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.#waiters.indexOf(w);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(signal.reason);
      };
      const w = {
        bytes,
        resolve: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
        drop: () => {
          signal.removeEventListener("abort", onAbort);
          reject(new DOMException("the WebSocket ended", "AbortError"));
        },
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(w);
      this.#arm();
    });
  }

  /** Sends `message` (at most the reserved size) against a reservation of `reserved` bytes. */
  sendReserved(message: Uint8Array<ArrayBuffer>, reserved: number): void {
    this.#giveBack(reserved);
    if (this.#closed || this.#ws.readyState !== OPEN) return;
    const cost = bufferCost(message.length);
    // No more than the reservation just given back.
    this.#quota.forceCharge(cost);
    this.#ws.send(message);
    this.#sent.push({ bytes: message.length, cost });
    this.#sentBytes += message.length;
    this.#arm();
  }

  /** Gives a reservation back unused. */
  cancelReservation(reserved: number): void {
    this.#giveBack(reserved);
    this.#grant();
  }

  /** The WebSocket ended: waiters are rejected, every charge given back, the timer stopped. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.drop();
    for (const m of this.#sent) if (m.cost) this.#quota.release(m.cost);
    this.#sent = [];
    this.#sentBytes = 0;
  }

  #tryTake(bytes: number): boolean {
    const pending = this.#sentBytes + this.#reservedBytes;
    if (pending > 0 && pending + bytes > this.#highWater) return false;
    if (!this.#quota.tryCharge(bufferCost(bytes))) return false;
    this.#reservedBytes += bytes;
    return true;
  }

  #giveBack(reserved: number): void {
    this.#reservedBytes -= reserved;
    this.#quota.release(bufferCost(reserved));
  }

  /** Of what the WebSocket was handed, `bufferedAmount` (the newest) still waits: the rest left. */
  #releaseDrained(): void {
    const buffered = this.#ws.readyState === CLOSED ? 0 : this.#ws.bufferedAmount;
    while (this.#sent.length > 0 && this.#sentBytes - this.#sent[0].bytes >= buffered) {
      const m = this.#sent.shift()!;
      this.#sentBytes -= m.bytes;
      if (m.cost) this.#quota.release(m.cost);
    }
  }

  #grant(): void {
    while (this.#waiters.length > 0 && this.#tryTake(this.#waiters[0].bytes)) {
      this.#waiters.shift()!.resolve();
    }
  }

  #arm(): void {
    if (this.#timer !== undefined || this.#closed) return;
    if (this.#sent.length === 0 && this.#waiters.length === 0) return;
    this.#timer = this.#clock.setTimer(this.#clock.now() + this.#pollMs, () => {
      this.#timer = undefined;
      if (this.#closed) return;
      this.#releaseDrained();
      this.#grant();
      this.#arm();
    });
  }
}
