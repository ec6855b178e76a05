/**
 * A per-client rate limit on session creation (`POST /v1/sessions`): a token
 * bucket per client address (IPv6: per /64) holding `perMinute` tokens and
 * refilled at `perMinute` per minute. Past it, 429 `ERATELIMIT` with
 * `Retry-After` (RFC 9110 §10.2.3, in seconds). Without it, one client with
 * no admin token fills an open server's 1,000 sessions in under a second.
 *
 * The client address is the connection's peer, or with a trusted proxy the
 * entry of `X-Forwarded-For` that proxy appended ({@linkcode clientAddress}).
 *
 * @module
 */

import { addressGroup } from "./connection_gate.ts";
import { problemResponse } from "./problem.ts";

/** Options of {@linkcode SessionRateLimit}. */
export interface SessionRateLimitOptions {
  /** Sessions one address may create per minute (and at once, from a full bucket); >= 1. */
  perMinute: number;
  /** Addresses remembered at most; the fullest buckets are forgotten first. Default 100,000. */
  maxAddresses?: number;
}

/**
 * Token buckets per address.
 *
 * @example
 * ```ts
 * const limit = new SessionRateLimit({ perMinute: 30 });
 * const refusal = limit.check("192.0.2.7", Date.now()); // undefined, or a 429 response
 * ```
 */
export class SessionRateLimit {
  readonly perMinute: number;
  #max: number;
  #buckets = new Map<string, { tokens: number; at: number }>();
  /** Requests refused so far. */
  refused = 0;

  /** A limit of `perMinute` creations per minute per address. */
  constructor(options: SessionRateLimitOptions) {
    if (!(options.perMinute >= 1)) {
      throw new RangeError(`perMinute must be >= 1, got ${options.perMinute}`);
    }
    this.perMinute = options.perMinute;
    this.#max = options.maxAddresses ?? 100_000;
  }

  /** Takes a token for `address` at `now` (ms); returns the 429 response when there is none. */
  check(address: string, now: number): Response | undefined {
    const key = addressGroup(address);
    const rate = this.perMinute / 60_000;
    let b = this.#buckets.get(key);
    if (b) {
      b.tokens = Math.min(this.perMinute, b.tokens + (now - b.at) * rate);
      b.at = now;
    } else {
      if (this.#buckets.size >= this.#max) this.#forget(now);
      b = { tokens: this.perMinute, at: now };
      this.#buckets.set(key, b);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return undefined;
    }
    this.refused++;
    const retryAfter = Math.max(1, Math.ceil((1 - b.tokens) / rate / 1000));
    return problemResponse(
      "ERATELIMIT",
      `too many sessions created from ${key}: at most ${this.perMinute} per minute; ` +
        `retry in ${retryAfter} s`,
      { headers: { "retry-after": String(retryAfter) } },
    );
  }

  /** Forgets the buckets that have refilled by `now`, or the older half when none has. */
  #forget(now: number): void {
    const rate = this.perMinute / 60_000;
    for (const [k, b] of this.#buckets) {
      if (b.tokens + (now - b.at) * rate >= this.perMinute) this.#buckets.delete(k);
    }
    if (this.#buckets.size < this.#max) return;
    let drop = Math.ceil(this.#buckets.size / 2);
    for (const k of this.#buckets.keys()) {
      if (drop-- <= 0) break;
      this.#buckets.delete(k);
    }
  }
}

/**
 * The client's address: `peer` (the connection's remote address), or with
 * `trustProxyHops` = N > 0 the N-th entry from the right of
 * `X-Forwarded-For` (the one the outermost trusted proxy appended; the
 * entries left of it are the client's own claims and cannot be trusted).
 * When the header has fewer entries, its leftmost.
 *
 * @example
 * ```ts
 * clientAddress(new Headers({ "x-forwarded-for": "203.0.113.9, 198.51.100.2" }), "10.0.0.1", 1);
 * // "198.51.100.2"
 * ```
 */
export function clientAddress(headers: Headers, peer: string, trustProxyHops: number): string {
  if (trustProxyHops <= 0) return peer;
  const xff = headers.get("x-forwarded-for");
  if (!xff) return peer;
  const entries = xff.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (entries.length === 0) return peer;
  return entries[Math.max(0, entries.length - trustProxyHops)];
}
