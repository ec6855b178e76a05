/**
 * The egress resolver's answer cache, one per session: answers are kept for
 * their TTL (the smallest TTL of the answer records, RFC 1035 §3.2.1;
 * negative answers for the SOA's negative TTL, RFC 2308 §5, or 30 s without
 * one), at most an hour, and served with their TTLs counted down. Bounded
 * in entries and bytes (least recently used first out), and every entry is
 * charged to the session's memory quota. Failures (SERVFAIL, REFUSED) are
 * not cached.
 *
 * @module
 */

import { type DnsQuestion, DnsRcode } from "../../../wire/mod.ts";
import { bufferCost, type MemoryQuota } from "../../../stack/session_quota.ts";
import { type DnsRecord, negativeTtl } from "./dns_message.ts";
import type { DnsAnswerSet } from "./dns_upstream.ts";

/** Limits of a {@linkcode DnsCache}. */
export interface DnsCacheLimits {
  /** Entries kept. */
  maxEntries: number;
  /** Estimated bytes kept (names, record data, per-record overhead). */
  maxBytes: number;
  /** Longest time an answer is kept (seconds). */
  maxTtlSeconds: number;
  /** How long a negative answer without an SOA is kept (seconds). */
  negativeTtlSeconds: number;
}

/** Defaults for {@linkcode DnsCacheLimits}: 512 entries, 256 KiB, 1 h, 30 s. */
export const DEFAULT_DNS_CACHE_LIMITS: DnsCacheLimits = {
  maxEntries: 512,
  maxBytes: 256 * 1024,
  maxTtlSeconds: 3600,
  negativeTtlSeconds: 30,
};

interface Entry {
  set: DnsAnswerSet;
  storedAt: number;
  expiresAt: number;
  bytes: number;
  charge: number;
}

function keyOf(q: DnsQuestion): string {
  return `${q.name.toLowerCase().replace(/\.$/, "")}|${q.type}|${q.class}`;
}

function sizeOf(set: DnsAnswerSet): number {
  let n = 64;
  for (const r of [...set.answers, ...set.authority]) n += r.name.length + r.data.length + 48;
  return n;
}

/**
 * A TTL cache of answer sets.
 *
 * @example
 * ```ts
 * const cache = new DnsCache({}, session.stack.quota.memory);
 * cache.put(question, set, now);
 * cache.get(question, now + 5000); // TTLs 5 s lower
 * ```
 */
export class DnsCache {
  /** The limits in force. */
  readonly limits: DnsCacheLimits;
  /** Lookups answered from the cache, and those that missed. */
  readonly stats = { hits: 0, misses: 0, evictions: 0 };
  #entries = new Map<string, Entry>();
  #bytes = 0;
  #memory: MemoryQuota | undefined;

  /** Creates an empty cache charging `memory` for what it keeps. */
  constructor(limits: Partial<DnsCacheLimits> = {}, memory?: MemoryQuota) {
    this.limits = { ...DEFAULT_DNS_CACHE_LIMITS, ...limits };
    this.#memory = memory;
  }

  /** Entries held. */
  get size(): number {
    return this.#entries.size;
  }

  /** Estimated bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * The cached answer to `q` at `now` (ms), with every TTL lowered by the
   * whole seconds it spent here; undefined when absent or expired.
   */
  get(q: DnsQuestion, now: number): DnsAnswerSet | undefined {
    const key = keyOf(q);
    const e = this.#entries.get(key);
    if (e === undefined || now >= e.expiresAt) {
      if (e) this.#remove(key, e);
      this.stats.misses++;
      return undefined;
    }
    this.#entries.delete(key);
    this.#entries.set(key, e);
    this.stats.hits++;
    const age = Math.floor((now - e.storedAt) / 1000);
    const down = (r: DnsRecord): DnsRecord => ({ ...r, ttl: Math.max(0, r.ttl - age) });
    return {
      rcode: e.set.rcode,
      answers: e.set.answers.map(down),
      authority: e.set.authority.map(down),
    };
  }

  /** Keeps `set` as the answer to `q` for its TTL (nothing for failures or a TTL of 0). */
  put(q: DnsQuestion, set: DnsAnswerSet, now: number): void {
    const ttl = this.#ttl(set);
    if (ttl === undefined || ttl <= 0) return;
    const key = keyOf(q);
    const old = this.#entries.get(key);
    if (old) this.#remove(key, old);
    const bytes = sizeOf(set);
    if (bytes > this.limits.maxBytes) return;
    while (
      this.#entries.size >= this.limits.maxEntries || this.#bytes + bytes > this.limits.maxBytes
    ) {
      const [k, e] = this.#entries.entries().next().value!;
      this.#remove(k, e);
      this.stats.evictions++;
    }
    const charge = bufferCost(bytes);
    if (this.#memory && !this.#memory.tryCharge(charge)) return;
    this.#entries.set(key, {
      set,
      storedAt: now,
      expiresAt: now + ttl * 1000,
      bytes,
      charge: this.#memory ? charge : 0,
    });
    this.#bytes += bytes;
  }

  /** Empties the cache and releases its charges. */
  clear(): void {
    for (const [k, e] of [...this.#entries]) this.#remove(k, e);
  }

  #ttl(set: DnsAnswerSet): number | undefined {
    const max = this.limits.maxTtlSeconds;
    if (set.rcode === DnsRcode.NOERROR && set.answers.length > 0) {
      return Math.min(max, ...set.answers.map((r) => r.ttl));
    }
    if (set.rcode === DnsRcode.NOERROR || set.rcode === DnsRcode.NXDOMAIN) {
      return Math.min(max, negativeTtl(set.authority) ?? this.limits.negativeTtlSeconds);
    }
    return undefined;
  }

  #remove(key: string, e: Entry): void {
    this.#entries.delete(key);
    this.#bytes -= e.bytes;
    if (e.charge) this.#memory?.release(e.charge);
  }
}
