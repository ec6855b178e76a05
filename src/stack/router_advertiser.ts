/**
 * When the stack sends router advertisements (RFC 4861 §6.2.4, §6.2.6):
 * unsolicited ones at random intervals once the link is up (the first few
 * sooner), and answers to router solicitations, delayed by a random time
 * and never closer than MIN_DELAY_BETWEEN_RAS to the previous multicast
 * advertisement. Time is passed in; the stack sends what
 * {@linkcode RouterAdvertiser.poll} says is due. What an advertisement says
 * is {@linkcode RouterAdvertOptions}.
 *
 * @module
 */

/** Timings and contents of the stack's router advertisements. */
export interface RouterAdvertOptions {
  /** MaxRtrAdvInterval, in ms (RFC 4861 §6.2.1: 4 s .. 1800 s; default 600 s). */
  maxIntervalMs: number;
  /** MinRtrAdvInterval, in ms (default 0.33 × the maximum). */
  minIntervalMs: number;
  /** MAX_INITIAL_RTR_ADVERTISEMENTS (§10): how many come sooner after the link comes up. */
  initialCount: number;
  /** MAX_INITIAL_RTR_ADVERT_INTERVAL (§10), in ms. */
  initialIntervalMs: number;
  /** MIN_DELAY_BETWEEN_RAS (§10), in ms. */
  minDelayBetweenMs: number;
  /** MAX_RA_DELAY_TIME (§10), in ms: answers to solicitations wait up to this. */
  maxResponseDelayMs: number;
  /** The prefix's valid lifetime, in s (RFC 4861 §4.6.2). */
  validLifetime: number;
  /** The prefix's preferred lifetime, in s. */
  preferredLifetime: number;
  /** The RDNSS lifetime, in s (RFC 8106 §5.1: between MaxRtrAdvInterval and twice it). */
  rdnssLifetime: number;
  /** The hop limit hosts should use (Cur Hop Limit). */
  curHopLimit: number;
  /**
   * Router lifetime, in s: 0, the default, says "not a default router":
   * the session has no IPv6 beyond the link, and a host that has IPv6
   * elsewhere keeps its own default route.
   */
  routerLifetime: number;
  /**
   * The O flag, "other configuration" (RFC 4861 §4.2): hosts may ask
   * DHCPv6 for other settings (DNS servers) with an Information-request
   * (RFC 8415 §6.1). Set while the stack's stateless DHCPv6 server runs;
   * false by default.
   */
  otherConfig: boolean;
}

/** The defaults: RFC 4861 §6.2.1 and §10, RFC 8106 §5.1, router lifetime 0. */
export const DEFAULT_ROUTER_ADVERT_OPTIONS: RouterAdvertOptions = {
  maxIntervalMs: 600_000,
  minIntervalMs: 198_000,
  initialCount: 3,
  initialIntervalMs: 16_000,
  minDelayBetweenMs: 3_000,
  maxResponseDelayMs: 500,
  validLifetime: 86_400,
  preferredLifetime: 14_400,
  rdnssLifetime: 1_200,
  curHopLimit: 64,
  routerLifetime: 0,
  otherConfig: false,
};

/**
 * The schedule of router advertisements.
 *
 * @example
 * ```ts
 * const ra = new RouterAdvertiser(DEFAULT_ROUTER_ADVERT_OPTIONS, (buf) => crypto.getRandomValues(buf));
 * ra.start(now); // the link is up: one now, then periodically
 * ra.solicited(now); // a router solicitation arrived
 * if (ra.poll(now)) sendRouterAdvert();
 * ```
 */
export class RouterAdvertiser {
  readonly options: RouterAdvertOptions;
  /** Advertisements sent, and solicitations folded into one already scheduled. */
  readonly stats = { sent: 0, solicited: 0, coalesced: 0 };
  #random: (buf: Uint8Array) => void;
  #periodicAt: number | undefined;
  #answerAt: number | undefined;
  #lastSent = -Infinity;
  #initialLeft = 0;

  /** Creates an idle schedule; RangeError for inconsistent timings. */
  constructor(options: Partial<RouterAdvertOptions>, random: (buf: Uint8Array) => void) {
    this.options = { ...DEFAULT_ROUTER_ADVERT_OPTIONS, ...options };
    const o = this.options;
    if (typeof o.otherConfig !== "boolean") {
      throw new RangeError(`RouterAdvertiser: otherConfig must be a boolean, got ${o.otherConfig}`);
    }
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === "boolean") continue;
      if (!Number.isInteger(v) || v < 0) {
        throw new RangeError(`RouterAdvertiser: ${k} must be an integer >= 0, got ${v}`);
      }
    }
    if (o.minIntervalMs > o.maxIntervalMs || o.maxIntervalMs < 1) {
      throw new RangeError(
        `RouterAdvertiser: need 0 <= minIntervalMs <= maxIntervalMs and maxIntervalMs > 0, got ${o.minIntervalMs} and ${o.maxIntervalMs}`,
      );
    }
    this.#random = random;
  }

  /**
   * The link came up (a tunnel attached): advertise now, then the initial
   * ones, then periodically (RFC 4861 §6.2.4).
   */
  start(now: number): void {
    this.#initialLeft = this.options.initialCount;
    this.#periodicAt = now;
  }

  /**
   * A valid router solicitation arrived (RFC 4861 §6.2.6): schedules a
   * multicast advertisement within MAX_RA_DELAY_TIME, but no sooner than
   * MIN_DELAY_BETWEEN_RAS after the last one; one already scheduled
   * answers it too.
   */
  solicited(now: number): void {
    this.stats.solicited++;
    const at = Math.max(
      now + this.#uniform(0, this.options.maxResponseDelayMs),
      this.#lastSent + this.options.minDelayBetweenMs,
    );
    if (this.#answerAt !== undefined && this.#answerAt <= at) {
      this.stats.coalesced++;
      return;
    }
    if (this.#periodicAt !== undefined && this.#periodicAt <= at) {
      this.stats.coalesced++;
      return;
    }
    this.#answerAt = at;
  }

  /** Whether an advertisement is due at `now`; if so it counts as sent and the next is scheduled. */
  poll(now: number): boolean {
    const periodic = this.#periodicAt !== undefined && this.#periodicAt <= now;
    const answer = this.#answerAt !== undefined && this.#answerAt <= now;
    if (!periodic && !answer) return false;
    this.#answerAt = undefined;
    this.#lastSent = now;
    this.stats.sent++;
    if (this.#periodicAt !== undefined) {
      // Any multicast advertisement restarts the periodic interval (§6.2.4); the
      // first few after the link came up are at most MAX_INITIAL_RTR_ADVERT_INTERVAL apart.
      const o = this.options;
      let interval = this.#uniform(o.minIntervalMs, o.maxIntervalMs);
      if (this.#initialLeft > 0) {
        this.#initialLeft--;
        interval = Math.min(interval, o.initialIntervalMs);
      }
      this.#periodicAt = now + interval;
    }
    return true;
  }

  /** When {@linkcode RouterAdvertiser.poll} next has work, or undefined. */
  nextDeadline(): number | undefined {
    const a = this.#periodicAt;
    const b = this.#answerAt;
    if (a === undefined) return b;
    if (b === undefined) return a;
    return a < b ? a : b;
  }

  /** A uniformly random integer in `lo..hi` (16 random bits). */
  #uniform(lo: number, hi: number): number {
    if (hi <= lo) return lo;
    const b = new Uint8Array(2);
    this.#random(b);
    return lo + Math.floor(((b[0] << 8) | b[1]) / 65536 * (hi - lo + 1));
  }
}
