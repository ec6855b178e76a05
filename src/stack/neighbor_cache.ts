/**
 * The IPv6 neighbour cache (RFC 4861 §5.1, §7.3): each neighbour's
 * link-layer address and reachability state (INCOMPLETE, REACHABLE, STALE,
 * DELAY, PROBE, §7.3.2), with a size limit, expiry, and a bounded queue of
 * frames waiting for an address to be resolved. Pure state: the caller
 * sends the solicitations it asks for and the frames it hands back.
 *
 * @module
 */

import type { Ipv6Address, MacAddress } from "../wire/mod.ts";
import { earliestDeadline } from "./deadline.ts";

/** Limits and timings of the neighbour cache (RFC 4861 §10 constants by default). */
export interface NeighborCacheOptions {
  /** Most entries before one is evicted (the soonest to expire). */
  maxEntries: number;
  /** ReachableTime: how long a confirmed neighbour stays REACHABLE, in ms. */
  reachableMs: number;
  /** RetransTimer: between solicitations, in ms. */
  retransMs: number;
  /** MAX_MULTICAST_SOLICIT: solicitations for an INCOMPLETE entry before giving up. */
  maxMulticastSolicit: number;
  /** MAX_UNICAST_SOLICIT: probes of a PROBE entry before it is deleted. */
  maxUnicastSolicit: number;
  /** DELAY_FIRST_PROBE_TIME, in ms. */
  delayFirstProbeMs: number;
  /** How long an unused STALE entry is kept before it is collected, in ms. */
  staleMs: number;
  /** Frames queued per INCOMPLETE neighbour; more are dropped. */
  maxQueuedPerEntry: number;
  /** Frames queued for all neighbours together; more are dropped. */
  maxQueuedTotal: number;
}

/** The defaults: RFC 4861 §10 (30 s reachable, 1 s retransmit, 3 solicitations, 5 s delay). */
export const DEFAULT_NEIGHBOR_CACHE_OPTIONS: NeighborCacheOptions = {
  maxEntries: 256,
  reachableMs: 30_000,
  retransMs: 1_000,
  maxMulticastSolicit: 3,
  maxUnicastSolicit: 3,
  delayFirstProbeMs: 5_000,
  staleMs: 600_000,
  maxQueuedPerEntry: 8,
  maxQueuedTotal: 64,
};

/** Reachability states of RFC 4861 §7.3.2. */
export type NeighborState = "incomplete" | "reachable" | "stale" | "delay" | "probe";

interface Entry {
  state: NeighborState;
  mac: MacAddress | undefined;
  /** When the state's timer fires. */
  deadline: number;
  /** Solicitations sent in INCOMPLETE or PROBE. */
  probes: number;
  /** Frames (Ethernet header still blank) waiting for the address. */
  queue: Uint8Array[];
}

/** What {@linkcode NeighborCache.poll} asks the caller to do. */
export interface NeighborPollResult {
  /** Neighbours to send a multicast solicitation for (INCOMPLETE). */
  multicast: Ipv6Address[];
  /** Neighbours to probe with a unicast solicitation (PROBE), with their address. */
  unicast: Array<{ ip: Ipv6Address; mac: MacAddress }>;
  /** Frames dropped because their neighbour never answered. */
  unresolvedDrops: number;
}

/** A received advertisement's flags and target link-layer address (RFC 4861 §7.2.5). */
export interface NeighborAdvertInfo {
  /** The S flag. */
  solicited: boolean;
  /** The O flag. */
  override: boolean;
  /** The target link-layer address option, if any. */
  mac: MacAddress | undefined;
}

/** Frames an update released, to send to `mac`. */
export interface NeighborRelease {
  /** The neighbour's link-layer address. */
  mac: MacAddress;
  /** The frames that waited for it. */
  frames: Uint8Array[];
}

/**
 * Maps IPv6 neighbours to MAC addresses with RFC 4861 §7.3 reachability.
 *
 * @example
 * ```ts
 * const cache = new NeighborCache();
 * cache.enqueue(peer, frame, now); // "solicit": send a neighbour solicitation
 * const released = cache.advert(peer, { solicited: true, override: true, mac }, now);
 * for (const f of released?.frames ?? []) send(f, released!.mac);
 * ```
 */
export class NeighborCache {
  readonly options: NeighborCacheOptions;
  /** Entries evicted to make room, and the queued frames lost with them. */
  readonly evictions = { entries: 0, frames: 0 };
  #entries = new Map<Ipv6Address, Entry>();
  #queued = 0;

  /** Creates an empty cache; RangeError for a non-positive limit or timing. */
  constructor(options: Partial<NeighborCacheOptions> = {}) {
    this.options = { ...DEFAULT_NEIGHBOR_CACHE_OPTIONS, ...options };
    for (const [k, v] of Object.entries(this.options)) {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`NeighborCache: ${k} must be a positive integer, got ${v}`);
      }
    }
  }

  /** Number of entries. */
  get size(): number {
    return this.#entries.size;
  }

  /** Frames queued for all INCOMPLETE neighbours. */
  get queued(): number {
    return this.#queued;
  }

  /** The state of `ip`'s entry, or undefined when there is none. */
  state(ip: Ipv6Address): NeighborState | undefined {
    return this.#entries.get(ip)?.state;
  }

  /**
   * The link-layer address to send a packet for `ip` to, or undefined when
   * it is unknown (then {@linkcode NeighborCache.enqueue}). Sending to a
   * STALE neighbour starts the DELAY timer (RFC 4861 §7.3.3); a REACHABLE
   * entry past its time turns STALE (then DELAY) first.
   */
  resolve(ip: Ipv6Address, now: number): MacAddress | undefined {
    const e = this.#entries.get(ip);
    if (!e || !e.mac) return undefined;
    if (e.state === "reachable" && e.deadline <= now) e.state = "stale";
    if (e.state === "stale") {
      e.state = "delay";
      e.deadline = now + this.options.delayFirstProbeMs;
    }
    return e.mac;
  }

  /**
   * Queues a frame for a neighbour without a link-layer address. Returns
   * `"solicit"` when a solicitation should be sent now (a new INCOMPLETE
   * entry), `"queued"` when one is outstanding, `"full"` when the frame was
   * dropped (its neighbour's queue, or all queues together, are full).
   */
  enqueue(ip: Ipv6Address, frame: Uint8Array, now: number): "solicit" | "queued" | "full" {
    let e = this.#entries.get(ip);
    if (!e) {
      this.#makeRoom();
      e = { state: "incomplete", mac: undefined, deadline: now, probes: 0, queue: [] };
      this.#entries.set(ip, e);
    }
    if (
      e.queue.length >= this.options.maxQueuedPerEntry ||
      this.#queued >= this.options.maxQueuedTotal
    ) {
      return "full";
    }
    e.queue.push(frame);
    this.#queued++;
    if (e.probes === 0) {
      e.probes = 1;
      e.deadline = now + this.options.retransMs;
      return "solicit";
    }
    return "queued";
  }

  /**
   * Learns from a solicitation (neighbour or router) or redirect carrying
   * the sender's link-layer address (RFC 4861 §7.2.3, §6.2.6): a new entry
   * is STALE; an INCOMPLETE one gets the address, turns STALE and releases
   * its frames; a different address replaces the cached one (STALE).
   */
  solicitation(ip: Ipv6Address, mac: MacAddress, now: number): NeighborRelease | undefined {
    const e = this.#entries.get(ip);
    if (!e) {
      this.#makeRoom();
      this.#entries.set(ip, {
        state: "stale",
        mac: mac.slice(),
        deadline: now + this.options.staleMs,
        probes: 0,
        queue: [],
      });
      return undefined;
    }
    if (e.mac && sameMac(e.mac, mac)) return undefined;
    e.mac = mac.slice();
    e.state = "stale";
    e.deadline = now + this.options.staleMs;
    e.probes = 0;
    return this.#release(e);
  }

  /**
   * Applies a neighbour advertisement (RFC 4861 §7.2.5). Returns undefined
   * when there is no entry for `ip` (the advertisement is ignored: `false`
   * tells that apart) or nothing to send, else the released frames.
   */
  advert(
    ip: Ipv6Address,
    na: NeighborAdvertInfo,
    now: number,
  ): NeighborRelease | false | undefined {
    const e = this.#entries.get(ip);
    if (!e) return false;
    if (e.state === "incomplete") {
      if (!na.mac) return undefined;
      e.mac = na.mac.slice();
      this.#confirm(e, na.solicited, now);
      return this.#release(e);
    }
    const differs = na.mac !== undefined && !sameMac(na.mac, e.mac!);
    if (!na.override && differs) {
      // Keep the cached address; only doubt it (§7.2.5, "If the Override flag is clear").
      if (e.state === "reachable") {
        e.state = "stale";
        e.deadline = now + this.options.staleMs;
      }
      return undefined;
    }
    if (differs) e.mac = na.mac!.slice();
    if (na.solicited) this.#confirm(e, true, now);
    else if (differs) this.#confirm(e, false, now);
    return undefined;
  }

  /** Runs the timers: solicitations to retransmit, probes, expiry and collection. */
  poll(now: number): NeighborPollResult {
    const out: NeighborPollResult = { multicast: [], unicast: [], unresolvedDrops: 0 };
    const o = this.options;
    for (const [ip, e] of this.#entries) {
      if (e.deadline > now) continue;
      switch (e.state) {
        case "incomplete":
          if (e.probes >= o.maxMulticastSolicit) {
            // §7.3.3: give up; the queued packets are dropped.
            out.unresolvedDrops += e.queue.length;
            this.#delete(ip, e);
          } else {
            e.probes++;
            e.deadline = now + o.retransMs;
            out.multicast.push(ip);
          }
          break;
        case "reachable":
          e.state = "stale";
          e.deadline = now + o.staleMs;
          break;
        case "stale":
          this.#delete(ip, e);
          break;
        case "delay":
          e.state = "probe";
          e.probes = 1;
          e.deadline = now + o.retransMs;
          out.unicast.push({ ip, mac: e.mac! });
          break;
        case "probe":
          if (e.probes >= o.maxUnicastSolicit) {
            this.#delete(ip, e);
          } else {
            e.probes++;
            e.deadline = now + o.retransMs;
            out.unicast.push({ ip, mac: e.mac! });
          }
          break;
      }
    }
    return out;
  }

  /** The earliest time {@linkcode NeighborCache.poll} has work, or undefined. */
  nextDeadline(): number | undefined {
    return earliestDeadline(this.#entries.values());
  }

  /** A JSON-friendly list of the entries. */
  entries(): Array<
    { ip: Ipv6Address; mac: MacAddress | undefined; state: NeighborState; queued: number }
  > {
    return [...this.#entries].map(([ip, e]) => ({
      ip,
      mac: e.mac,
      state: e.state,
      queued: e.queue.length,
    }));
  }

  #confirm(e: Entry, reachable: boolean, now: number): void {
    e.probes = 0;
    e.state = reachable ? "reachable" : "stale";
    e.deadline = now + (reachable ? this.options.reachableMs : this.options.staleMs);
  }

  #release(e: Entry): NeighborRelease | undefined {
    if (e.queue.length === 0) return undefined;
    const frames = e.queue;
    e.queue = [];
    this.#queued -= frames.length;
    return { mac: e.mac!, frames };
  }

  #delete(ip: Ipv6Address, e: Entry): void {
    this.#queued -= e.queue.length;
    this.#entries.delete(ip);
  }

  #makeRoom(): void {
    if (this.#entries.size < this.options.maxEntries) return;
    let victim: Ipv6Address | undefined;
    let soonest = Infinity;
    for (const [ip, e] of this.#entries) {
      if (e.deadline < soonest) {
        soonest = e.deadline;
        victim = ip;
      }
    }
    if (victim === undefined) return;
    const e = this.#entries.get(victim)!;
    this.evictions.entries++;
    this.evictions.frames += e.queue.length;
    this.#delete(victim, e);
  }
}

function sameMac(a: MacAddress, b: MacAddress): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3] && a[4] === b[4] &&
    a[5] === b[5];
}
