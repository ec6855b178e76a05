/**
 * The ARP cache (RFC 826) with expiry, a size limit, and a bounded queue of
 * frames waiting for a neighbour to be resolved.
 *
 * @module
 */

import type { Ipv4Address, MacAddress } from "../wire/mod.ts";
import { earliestDeadline } from "./deadline.ts";

/** Limits and timings of the ARP cache. */
export interface ArpCacheOptions {
  /** Most entries (resolved and pending) before the oldest is evicted. */
  maxEntries: number;
  /** How long a resolved entry stays valid, in ms. */
  reachableMs: number;
  /** Interval between ARP requests for a pending entry, in ms. */
  retryMs: number;
  /** Requests sent for a pending entry before its queued frames are dropped. */
  maxRequests: number;
  /** Frames queued per pending neighbour; more are dropped. */
  maxQueuedPerEntry: number;
}

/** Defaults close to Linux's neighbour table for a small link. */
export const DEFAULT_ARP_CACHE_OPTIONS: ArpCacheOptions = {
  maxEntries: 256,
  reachableMs: 60_000,
  retryMs: 1_000,
  maxRequests: 3,
  maxQueuedPerEntry: 16,
};

/**
 * A queued IPv4 packet waiting for its next hop's MAC; `build` makes the
 * finished Ethernet frame once the MAC is known.
 */
export type PendingFrame = (dstMac: MacAddress) => Uint8Array;

interface Entry {
  mac: MacAddress | undefined;
  /** Resolved: expiry time. Pending: time of the next request. */
  deadline: number;
  requests: number;
  queue: PendingFrame[];
}

/** What {@linkcode ArpCache.poll} asks the stack to do. */
export interface ArpPollResult {
  /** Neighbours to send an ARP request for now. */
  request: Ipv4Address[];
  /** Frames dropped because their neighbour never answered. */
  unresolvedDrops: number;
}

/**
 * Maps IPv4 neighbours to MAC addresses.
 *
 * @example
 * ```ts
 * const cache = new ArpCache();
 * cache.update(0x0a00020f, mac, 0);
 * cache.lookup(0x0a00020f, 0); // mac
 * ```
 */
export class ArpCache {
  readonly options: ArpCacheOptions;
  /** Queued frames lost because their pending entry was evicted to make room. */
  evictedFrames = 0;
  #entries = new Map<Ipv4Address, Entry>();

  /** Creates an empty cache. */
  constructor(options: Partial<ArpCacheOptions> = {}) {
    this.options = { ...DEFAULT_ARP_CACHE_OPTIONS, ...options };
  }

  /** Number of entries, resolved and pending. */
  get size(): number {
    return this.#entries.size;
  }

  /** The resolved MAC of `ip`, or undefined when unknown, pending or expired. */
  lookup(ip: Ipv4Address, now: number): MacAddress | undefined {
    const e = this.#entries.get(ip);
    if (!e || !e.mac || e.deadline <= now) return undefined;
    return e.mac;
  }

  /** Whether an entry (resolved or pending) exists for `ip`. */
  has(ip: Ipv4Address): boolean {
    return this.#entries.has(ip);
  }

  /**
   * Records `ip` at `mac` (RFC 826 "merge"), returning the frames that were
   * waiting for it, already built. `onlyIfPresent` implements the rule that a
   * packet not addressed to us only refreshes an existing entry.
   */
  update(ip: Ipv4Address, mac: MacAddress, now: number, onlyIfPresent = false): Uint8Array[] {
    const e = this.#entries.get(ip);
    if (!e) {
      if (onlyIfPresent) return [];
      this.#makeRoom();
      this.#entries.set(ip, {
        mac: mac.slice(),
        deadline: now + this.options.reachableMs,
        requests: 0,
        queue: [],
      });
      return [];
    }
    e.mac = mac.slice();
    e.deadline = now + this.options.reachableMs;
    e.requests = 0;
    const queued = e.queue;
    e.queue = [];
    return queued.map((build) => build(e.mac!));
  }

  /**
   * Queues a frame for an unresolved neighbour. Returns `"request"` when an ARP
   * request should be sent now (a new pending entry), `"queued"` when one is
   * already outstanding, or `"full"` when the per-neighbour queue is full and
   * the frame was dropped.
   */
  enqueue(ip: Ipv4Address, frame: PendingFrame, now: number): "request" | "queued" | "full" {
    let e = this.#entries.get(ip);
    if (e && e.mac && e.deadline <= now) {
      // Expired: start resolving again.
      e.mac = undefined;
      e.requests = 0;
    }
    if (!e) {
      this.#makeRoom();
      e = { mac: undefined, deadline: 0, requests: 0, queue: [] };
      this.#entries.set(ip, e);
    }
    if (e.queue.length >= this.options.maxQueuedPerEntry) return "full";
    e.queue.push(frame);
    if (e.requests === 0) {
      e.requests = 1;
      e.deadline = now + this.options.retryMs;
      return "request";
    }
    return "queued";
  }

  /** Expires entries and retries pending requests whose time has come. */
  poll(now: number): ArpPollResult {
    const result: ArpPollResult = { request: [], unresolvedDrops: 0 };
    for (const [ip, e] of this.#entries) {
      if (e.deadline > now) continue;
      if (e.mac) {
        this.#entries.delete(ip);
      } else if (e.requests >= this.options.maxRequests) {
        result.unresolvedDrops += e.queue.length;
        this.#entries.delete(ip);
      } else {
        e.requests++;
        e.deadline = now + this.options.retryMs;
        result.request.push(ip);
      }
    }
    return result;
  }

  /** The earliest time {@linkcode ArpCache.poll} has work, or undefined. */
  nextDeadline(): number | undefined {
    return earliestDeadline(this.#entries.values());
  }

  /** A JSON-friendly list of the entries. */
  entries(): Array<
    { ip: Ipv4Address; mac: MacAddress | undefined; deadline: number; queued: number }
  > {
    return [...this.#entries].map(([ip, e]) => ({
      ip,
      mac: e.mac,
      deadline: e.deadline,
      queued: e.queue.length,
    }));
  }

  #makeRoom(): void {
    if (this.#entries.size < this.options.maxEntries) return;
    // Evict the entry that expires soonest (Map order is insertion order, good enough as tie-break).
    let victim: Ipv4Address | undefined;
    let soonest = Infinity;
    for (const [ip, e] of this.#entries) {
      if (e.deadline < soonest) {
        soonest = e.deadline;
        victim = ip;
      }
    }
    if (victim !== undefined) {
      this.evictedFrames += this.#entries.get(victim)!.queue.length;
      this.#entries.delete(victim);
    }
  }
}
