/**
 * The quotas of one session, shared by every layer that holds something on
 * the session's behalf: the core (receive, out-of-order, reassembly and
 * accept queues, send buffers), the socket layer, the session (captures) and
 * the HTTP layer (request bodies in flight, WebSocket streams).
 *
 * **Accounting unit.** A {@linkcode MemoryQuota} counts bytes of storage the
 * process holds: the `byteLength` of every buffer the session owns (its
 * capacity, not the payload in it) plus {@linkcode BUFFER_OVERHEAD_BYTES} for
 * each separately allocated buffer, so that the quota bounds what RSS may
 * grow by. Whoever allocates charges; whoever frees releases the same amount.
 *
 * A {@linkcode SocketQuota} counts endpoints: the API's sockets and the
 * connections waiting in a listener's accept queue alike (an accepted
 * connection hands its unit over to the socket that takes it).
 *
 * @module
 */

/**
 * What one separately allocated buffer costs beyond its bytes: the
 * `Uint8Array` and `ArrayBuffer` objects and the backing store's record.
 * Measured on Deno 2.9 (V8 15): 200,000 buffers of 16 bytes grew RSS by about
 * 560 bytes each; Bun by about 150.
 */
export const BUFFER_OVERHEAD_BYTES = 512;

/** The cost of holding one buffer of `byteLength` bytes. */
export function bufferCost(byteLength: number): number {
  return byteLength + BUFFER_OVERHEAD_BYTES;
}

/** Counters of a {@linkcode MemoryQuota}. */
export interface MemoryQuotaStats {
  /** Bytes charged now. */
  used: number;
  /** The most ever charged at once. */
  peak: number;
  /** The limit. */
  limit: number;
  /** Charges refused because they would have passed the limit. */
  refused: number;
}

/**
 * A byte budget: {@linkcode MemoryQuota.tryCharge} before holding memory,
 * {@linkcode MemoryQuota.release} after freeing it.
 *
 * @example
 * ```ts
 * const quota = new MemoryQuota(32 * 1024 * 1024);
 * const cost = bufferCost(16 * 1024);
 * if (quota.tryCharge(cost)) {
 *   const chunk = new Uint8Array(16 * 1024);
 *   // … later, when the chunk is dropped:
 *   quota.release(cost);
 * }
 * ```
 */
export class MemoryQuota {
  /** The most that may be charged at once, in bytes. */
  readonly limit: number;
  #used = 0;
  #peak = 0;
  #refused = 0;

  /** Creates a quota of `limit` bytes; RangeError unless a non-negative integer. */
  constructor(limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new RangeError(`MemoryQuota: limit must be a non-negative integer, got ${limit}`);
    }
    this.limit = limit;
  }

  /** Bytes charged now. */
  get used(): number {
    return this.#used;
  }

  /** Bytes that may still be charged. */
  get available(): number {
    return Math.max(0, this.limit - this.#used);
  }

  /** Charges `bytes` when they fit; false (and counted) when they would pass the limit. */
  tryCharge(bytes: number): boolean {
    if (this.#used + bytes > this.limit) {
      this.#refused++;
      return false;
    }
    this.#used += bytes;
    if (this.#used > this.#peak) this.#peak = this.#used;
    return true;
  }

  /**
   * Charges `bytes` even past the limit, for memory already held that cannot
   * be refused (used sparingly; {@linkcode MemoryQuota.tryCharge} is the rule).
   */
  forceCharge(bytes: number): void {
    this.#used += bytes;
    if (this.#used > this.#peak) this.#peak = this.#used;
  }

  /** Releases `bytes` charged before; RangeError when more is released than was charged. */
  release(bytes: number): void {
    if (bytes > this.#used) {
      throw new RangeError(
        `MemoryQuota: releasing ${bytes} bytes, but only ${this.#used} are charged`,
      );
    }
    this.#used -= bytes;
  }

  /** The counters, for the session view and /metrics. */
  stats(): MemoryQuotaStats {
    return { used: this.#used, peak: this.#peak, limit: this.limit, refused: this.#refused };
  }
}

/** Counters of a {@linkcode SocketQuota}. */
export interface SocketQuotaStats {
  /** Units taken now. */
  used: number;
  /** The limit. */
  limit: number;
  /** Takes refused because the quota was full. */
  refused: number;
}

/**
 * A count of endpoints: the API's sockets plus connections waiting to be
 * accepted.
 *
 * @example
 * ```ts
 * const sockets = new SocketQuota(256);
 * if (!sockets.tryTake()) throw new NetError("EMFILE", "256 sockets are open");
 * sockets.release();
 * ```
 */
export class SocketQuota {
  /** The most units taken at once. */
  readonly limit: number;
  #used = 0;
  #refused = 0;

  /** Creates a quota of `limit` endpoints; RangeError unless a non-negative integer. */
  constructor(limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new RangeError(`SocketQuota: limit must be a non-negative integer, got ${limit}`);
    }
    this.limit = limit;
  }

  /** Units taken now. */
  get used(): number {
    return this.#used;
  }

  /** Takes one unit when one is free; false (and counted) when the quota is full. */
  tryTake(): boolean {
    if (this.#used >= this.limit) {
      this.#refused++;
      return false;
    }
    this.#used++;
    return true;
  }

  /** Gives one unit back; RangeError when none is taken. */
  release(): void {
    if (this.#used === 0) throw new RangeError("SocketQuota: releasing a unit that was not taken");
    this.#used--;
  }

  /** The counters, for the session view and /metrics. */
  stats(): SocketQuotaStats {
    return { used: this.#used, limit: this.limit, refused: this.#refused };
  }
}

/** The quotas of one session. */
export interface SessionQuota {
  /** Bytes of storage the session makes the process hold. */
  readonly memory: MemoryQuota;
  /** Sockets of the API plus connections waiting in accept queues. */
  readonly sockets: SocketQuota;
}

/**
 * Creates the quotas of a session.
 *
 * @example
 * ```ts
 * const quota = createSessionQuota({ maxBufferedBytes: 32 << 20, maxSockets: 256 });
 * ```
 */
export function createSessionQuota(
  limits: { maxBufferedBytes: number; maxSockets: number },
): SessionQuota {
  return {
    memory: new MemoryQuota(limits.maxBufferedBytes),
    sockets: new SocketQuota(limits.maxSockets),
  };
}
