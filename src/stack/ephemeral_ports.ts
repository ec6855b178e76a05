/**
 * Ephemeral port selection shared by TCP and UDP: the IANA dynamic range
 * 49152..65535 (RFC 6335 §6), walked from a random start (RFC 6056 §3.3.1's
 * simple "random start, then sequential" algorithm).
 *
 * @module
 */

import { NetError } from "../errors/net_error.ts";

/** First port of the dynamic range (RFC 6335 §6). */
export const EPHEMERAL_LOW = 49152;
/** Last port of the dynamic range. */
export const EPHEMERAL_HIGH = 65535;

/**
 * Hands out free ports of the dynamic range, one protocol's port space each.
 *
 * @example
 * ```ts
 * const ports = new EphemeralPorts("TCP", (b) => crypto.getRandomValues(b));
 * const p = ports.pick((port) => inUse.has(port));
 * ```
 */
export class EphemeralPorts {
  #next: number;
  #protocol: string;

  /** @param protocol named in the error when the range is exhausted. */
  constructor(protocol: string, random: (buf: Uint8Array) => void) {
    this.#protocol = protocol;
    const r = new Uint8Array(2);
    random(r);
    this.#next = EPHEMERAL_LOW + (((r[0] << 8) | r[1]) % (EPHEMERAL_HIGH - EPHEMERAL_LOW + 1));
  }

  /** The next port for which `inUse` is false; NetError EADDRINUSE when none is. */
  pick(inUse: (port: number) => boolean): number {
    const span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1;
    for (let i = 0; i < span; i++) {
      const p = this.#next;
      this.#next = p === EPHEMERAL_HIGH ? EPHEMERAL_LOW : p + 1;
      if (!inUse(p)) return p;
    }
    throw new NetError(
      "EADDRINUSE",
      `no ephemeral ${this.#protocol} port is free (${EPHEMERAL_LOW}..${EPHEMERAL_HIGH} all in use)`,
    );
  }
}
