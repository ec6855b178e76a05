/**
 * Buffers the API holds on a socket's behalf while it waits to queue their
 * bytes in the core (a send body waiting for send-buffer space, a WebSocket
 * stream's queued messages). Each is charged to the session's memory quota
 * at its cost (`bufferCost` of its capacity) for as long as it is held, and
 * its bytes not yet queued count in the socket's `pendingBytes`.
 *
 * @module
 */

import type { MemoryQuota } from "../stack/session_quota.ts";
import type { BaseEntry } from "./socket_entry.ts";

/**
 * One held buffer. Made by `SocketTable.holdBuffer` (which charged its
 * cost); {@linkcode BufferHold.release} gives the charge back once the API
 * lets go of the buffer.
 *
 * @example
 * ```ts
 * const hold = table.holdBuffer(entry, data); // ENOBUFS when the quota refuses
 * try {
 *   hold.taken(sock.trySend(data)); // bytes now in the core's send buffer
 * } finally {
 *   hold.release();
 * }
 * ```
 */
export class BufferHold {
  /** What the buffer is charged: its capacity plus the per-buffer overhead. */
  readonly cost: number;
  #entry: BaseEntry;
  #memory: MemoryQuota;
  #pending: number;
  #released = false;

  /** Records a buffer of `bytes` bytes whose `cost` was charged to `memory`. */
  constructor(entry: BaseEntry, memory: MemoryQuota, cost: number, bytes: number) {
    this.cost = cost;
    this.#entry = entry;
    this.#memory = memory;
    this.#pending = bytes;
    entry.pendingBytes += bytes;
  }

  /** Bytes of the buffer not yet queued in the core. */
  get pending(): number {
    return this.#pending;
  }

  /** Whether {@linkcode BufferHold.release} ran. */
  get released(): boolean {
    return this.#released;
  }

  /** Notes that `n` more bytes of the buffer were queued in the core. */
  taken(n: number): void {
    const k = Math.min(n, this.#pending);
    this.#pending -= k;
    this.#entry.pendingBytes -= k;
  }

  /** Lets go of the buffer: its charge and its bytes still pending leave the accounts. Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#entry.pendingBytes -= this.#pending;
    this.#pending = 0;
    this.#memory.release(this.cost);
  }
}
