/**
 * The DHCP server's lease table and its allocation policy (RFC 2131 §4.3.1,
 * §4.3.2): one entry per client, a bound per hardware address, and what is
 * taken back first when the pool is full. The protocol lives in
 * `dhcp_server.ts`; this file decides who holds which address.
 *
 * Policy, against one tunnel peer taking the whole pool:
 * - A client (option 61's client identifier, else its MAC) holds one entry.
 * - A MAC holds at most `leasesPerMac` offers and `leasesPerMac` bound
 *   leases across client identifiers; a client that needs one more for its
 *   MAC first gives back that MAC's oldest entry in the same state (the
 *   newest client on a piece of hardware wins: a reinstalled or PXE-booted
 *   host gets its address at once).
 * - An offer is held for a few seconds ({@linkcode DHCP_OFFER_HOLD_MS}).
 * - When no address is free, a DISCOVER takes back the oldest offer, else
 *   the oldest declined address; a bound lease is never taken before it
 *   expires. A REQUEST for an address that only another client's offer
 *   holds takes it (a confirmation beats a reservation), so a flood of
 *   DISCOVERs with fresh MACs cannot keep a real client from its address.
 *
 * @module
 */

import { type Ipv4Address, type MacAddress, macEquals } from "../wire/mod.ts";

/** How long an offered address is held for the client that was offered it (ms). */
export const DHCP_OFFER_HOLD_MS = 10_000;

/** One entry of the lease table. */
export interface DhcpLease {
  /** The leased (or offered, or declined) address. */
  address: Ipv4Address;
  /** The client's hardware address. */
  mac: MacAddress;
  /** The client key: `id:<hex>` from option 61, else `mac:<hex>`. */
  clientKey: string;
  /** `offered` until REQUEST, `bound` after ACK, `declined` after DECLINE. */
  state: "offered" | "bound" | "declined";
  /** When the entry took its state (ms, the stack's clock): "oldest" means smallest. */
  since: number;
  /** When the entry expires (ms, the stack's clock). */
  expiresAt: number;
  /** The hostname the client sent, if any. */
  hostname?: string;
}

/** What {@linkcode DhcpLeaseTable} counts. */
export interface DhcpLeaseTableStats {
  /** Entries removed at expiry. */
  expired: number;
  /** Offers and declined addresses taken back early for another client. */
  reclaimed: number;
  /** Entries given back because their MAC reached `leasesPerMac`. */
  perMacReleased: number;
}

/**
 * The addresses of one pool and who holds them.
 *
 * @example
 * ```ts
 * const table = new DhcpLeaseTable({ poolStart, poolSize: 16, exclude: stackAddress, leasesPerMac: 1 });
 * const a = table.pickFree() ?? table.reclaim();
 * if (a !== undefined) table.set({ clientKey, mac, address: a, state: "offered" }, now, now + DHCP_OFFER_HOLD_MS);
 * ```
 */
export class DhcpLeaseTable {
  /** The first pool address. */
  readonly poolStart: Ipv4Address;
  /** Number of pool addresses. */
  readonly poolSize: number;
  /** Offers, and bound leases, one MAC may hold. */
  readonly leasesPerMac: number;
  /** Counters. */
  readonly stats: DhcpLeaseTableStats = { expired: 0, reclaimed: 0, perMacReleased: 0 };
  #exclude: Ipv4Address;
  #byAddress = new Map<Ipv4Address, DhcpLease>();
  /** Offered and bound entries by client key (declined ones are the address's, not a client's). */
  #byKey = new Map<string, DhcpLease>();

  /** Creates an empty table; `exclude` (the stack's address) is never handed out. */
  constructor(
    o: { poolStart: Ipv4Address; poolSize: number; exclude: Ipv4Address; leasesPerMac: number },
  ) {
    this.poolStart = o.poolStart;
    this.poolSize = o.poolSize;
    this.leasesPerMac = o.leasesPerMac;
    this.#exclude = o.exclude;
  }

  /** Entries held (offered, bound and declined). */
  get size(): number {
    return this.#byAddress.size;
  }

  /** Copies of the entries, by address. */
  leases(): DhcpLease[] {
    return [...this.#byAddress.values()].sort((a, b) => a.address - b.address)
      .map((l) => ({ ...l, mac: l.mac.slice() }));
  }

  /** The entry on `a`, if any. */
  at(a: Ipv4Address): DhcpLease | undefined {
    return this.#byAddress.get(a);
  }

  /** The client's offered or bound entry. */
  ofClient(key: string): DhcpLease | undefined {
    return this.#byKey.get(key);
  }

  /** Whether `a` is a pool address the server may hand out. */
  inPool(a: Ipv4Address): boolean {
    return a >= this.poolStart && a < this.poolStart + this.poolSize && a !== this.#exclude;
  }

  /** Whether `a` is in the pool and held by nobody but the client `key` (not declined). */
  isFree(a: Ipv4Address, key: string): boolean {
    if (!this.inPool(a)) return false;
    const l = this.#byAddress.get(a);
    return l === undefined || (l.clientKey === key && l.state !== "declined");
  }

  /**
   * Whether the client `key` may be bound to `a` now: it is free for the
   * client, or only another client's offer holds it (which the binding takes
   * back).
   */
  canBind(a: Ipv4Address, key: string): boolean {
    return this.isFree(a, key) || (this.inPool(a) && this.#byAddress.get(a)?.state === "offered");
  }

  /** The lowest pool address nobody holds, or undefined. */
  pickFree(): Ipv4Address | undefined {
    for (let i = 0; i < this.poolSize; i++) {
      const a = this.poolStart + i;
      if (!this.#byAddress.has(a) && a !== this.#exclude) return a;
    }
    return undefined;
  }

  /**
   * Takes back the oldest offer, else the oldest declined address, and
   * returns it; undefined when every entry is bound (counted in
   * `stats.reclaimed`).
   */
  reclaim(): Ipv4Address | undefined {
    const victim = this.#oldest((l) => l.state === "offered") ??
      this.#oldest((l) => l.state === "declined");
    if (victim === undefined) return undefined;
    this.#remove(victim);
    this.stats.reclaimed++;
    return victim.address;
  }

  /**
   * Makes room for the client `key` to hold one more `state` entry for
   * `mac`: gives back that MAC's oldest entries in that state held under
   * other client keys until fewer than `leasesPerMac` remain.
   */
  limitMac(mac: MacAddress, key: string, state: "offered" | "bound"): void {
    const same = (l: DhcpLease) =>
      l.state === state && l.clientKey !== key && macEquals(l.mac, mac);
    let n = 0;
    for (const l of this.#byKey.values()) if (same(l)) n++;
    for (; n >= this.leasesPerMac; n--) {
      this.#remove(this.#oldest(same)!);
      this.stats.perMacReleased++;
    }
  }

  /**
   * Gives the client `key` the entry on `address` in `state` until
   * `expiresAt`: its entry at another address goes, and so does another
   * client's offer on this one (counted as reclaimed). Returns the entry.
   */
  set(
    e: { clientKey: string; mac: MacAddress; address: Ipv4Address; state: DhcpLease["state"] },
    now: number,
    expiresAt: number,
    hostname?: string,
  ): DhcpLease {
    const old = this.#byKey.get(e.clientKey);
    if (old) this.#remove(old);
    const held = this.#byAddress.get(e.address);
    if (held) {
      this.#remove(held);
      if (held.clientKey !== e.clientKey) this.stats.reclaimed++;
    }
    const lease: DhcpLease = {
      address: e.address,
      mac: e.mac.slice(),
      clientKey: e.clientKey,
      state: e.state,
      since: now,
      expiresAt,
    };
    if (hostname !== undefined) lease.hostname = hostname;
    this.#byAddress.set(lease.address, lease);
    if (lease.state !== "declined") this.#byKey.set(lease.clientKey, lease);
    return lease;
  }

  /** Marks the client's entry on `a` declined until `expiresAt` (RFC 2131 §4.3.3). */
  decline(a: Ipv4Address, key: string, now: number, expiresAt: number): void {
    const l = this.#byAddress.get(a);
    if (l === undefined || l.clientKey !== key || l.state === "declined") return;
    this.#byKey.delete(key);
    l.state = "declined";
    l.since = now;
    l.expiresAt = expiresAt;
  }

  /** Removes the client's offered or bound entry on `a` (RFC 2131 §4.3.4). */
  release(a: Ipv4Address, key: string): void {
    const l = this.#byAddress.get(a);
    if (l && l.clientKey === key && l.state !== "declined") this.#remove(l);
  }

  /** Removes the client's entry when it is an offer (the client chose another server). */
  forgetOffer(key: string): void {
    const l = this.#byKey.get(key);
    if (l?.state === "offered") this.#remove(l);
  }

  /** Removes the entries whose time is up. */
  expire(now: number): void {
    for (const l of [...this.#byAddress.values()]) {
      if (l.expiresAt <= now) {
        this.#remove(l);
        this.stats.expired++;
      }
    }
  }

  /** The earliest expiry, or undefined when the table is empty. */
  nextDeadline(): number | undefined {
    let t: number | undefined;
    for (const l of this.#byAddress.values()) {
      if (t === undefined || l.expiresAt < t) t = l.expiresAt;
    }
    return t;
  }

  #oldest(match: (l: DhcpLease) => boolean): DhcpLease | undefined {
    let found: DhcpLease | undefined;
    for (const l of this.#byAddress.values()) {
      if (match(l) && (found === undefined || l.since < found.since)) found = l;
    }
    return found;
  }

  #remove(l: DhcpLease): void {
    this.#byAddress.delete(l.address);
    if (this.#byKey.get(l.clientKey) === l) this.#byKey.delete(l.clientKey);
  }
}
