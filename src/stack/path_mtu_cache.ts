/**
 * Path MTU estimates learned from validated ICMPv6 packet too big messages
 * (RFC 8201 §4, §5.3): per destination, never below the IPv6 minimum of
 * 1280 and never raised by a message, forgotten after a while so that a
 * larger path MTU is found again. A bounded table; expiry is checked on use.
 *
 * @module
 */

import { IPV6_MIN_MTU, type Ipv6Address } from "../wire/mod.ts";

/** Limits of the path MTU table. */
export interface PathMtuCacheOptions {
  /** Most destinations remembered; the oldest estimate goes first. */
  maxEntries: number;
  /** How long an estimate holds, in ms (RFC 8201 §5.3: at least 5 minutes, 10 recommended). */
  expireMs: number;
}

/** The defaults: 64 destinations, 10 minutes. */
export const DEFAULT_PATH_MTU_CACHE_OPTIONS: PathMtuCacheOptions = {
  maxEntries: 64,
  expireMs: 600_000,
};

/**
 * Path MTU estimates below the link MTU, by destination.
 *
 * @example
 * ```ts
 * const pmtu = new PathMtuCache(1500);
 * pmtu.record(peer, 1400, now); // true: lowered
 * pmtu.get(peer, now); // 1400
 * ```
 */
export class PathMtuCache {
  readonly options: PathMtuCacheOptions;
  /** The link MTU: the estimate of every destination without an entry. */
  readonly linkMtu: number;
  #entries = new Map<Ipv6Address, { mtu: number; expires: number }>();

  /** Creates an empty table for a link of `linkMtu`. */
  constructor(linkMtu: number, options: Partial<PathMtuCacheOptions> = {}) {
    this.linkMtu = linkMtu;
    this.options = { ...DEFAULT_PATH_MTU_CACHE_OPTIONS, ...options };
  }

  /** Destinations with an estimate (some may have expired and not yet been noticed). */
  get size(): number {
    return this.#entries.size;
  }

  /** The path MTU estimate for `dst` at `now`. */
  get(dst: Ipv6Address, now: number): number {
    const e = this.#entries.get(dst);
    if (!e) return this.linkMtu;
    if (e.expires <= now) {
      this.#entries.delete(dst);
      return this.linkMtu;
    }
    return e.mtu;
  }

  /**
   * Records a packet too big's MTU for `dst`, raised to 1280 (RFC 8201 §4);
   * true when it lowered the estimate, false when it would not (a message
   * never raises it).
   */
  record(dst: Ipv6Address, mtu: number, now: number): boolean {
    const estimate = Math.max(IPV6_MIN_MTU, mtu);
    if (estimate >= this.get(dst, now)) return false;
    this.#entries.delete(dst);
    if (this.#entries.size >= this.options.maxEntries) {
      const oldest = this.#entries.keys().next().value!;
      this.#entries.delete(oldest);
    }
    this.#entries.set(dst, { mtu: estimate, expires: now + this.options.expireMs });
    return true;
  }

  /** A JSON-friendly list of the estimates held. */
  entries(): Array<{ dst: Ipv6Address; mtu: number; expires: number }> {
    return [...this.#entries].map(([dst, e]) => ({ dst, ...e }));
  }
}
