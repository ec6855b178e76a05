/**
 * The session registry: creates sessions with fresh ids and tokens, finds
 * them, enforces the session quota, and expires idle ones.
 *
 * @module
 */

import { NetError } from "../errors/mod.ts";
import {
  type Ipv4Address,
  type Ipv6Address,
  type MacAddress,
  randomLocalMac,
} from "../wire/mod.ts";
import type { DhcpServerConfig, TcpConfig } from "../stack/mod.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import { Session, type SessionLimits } from "./session.ts";
import { addSessionTotals, emptySessionTotals, type SessionTotals } from "./session_totals.ts";

/** Limits of a registry. */
export interface RegistryLimits {
  /** Most sessions alive at once; creating one more fails with ENFILE. */
  maxSessions: number;
  /** A session with no tunnel and no activity for this long is deleted (ms). */
  idleTimeoutMs: number;
  /** Interval of the idle sweep (ms). */
  sweepIntervalMs: number;
}

/** Defaults for {@linkcode RegistryLimits}. */
export const DEFAULT_REGISTRY_LIMITS: RegistryLimits = {
  maxSessions: 1000,
  idleTimeoutMs: 30 * 60_000,
  sweepIntervalMs: 60_000,
};

/** Parameters of a new session; every field has a default. */
export interface CreateSessionParams {
  ipv4?: { address: Ipv4Address; prefixLength: number };
  mac?: MacAddress;
  mtu?: number;
  /**
   * Runs the DHCP server on the session's stack (QEMU user-networking
   * defaults: guests from .15 of the stack's /24, the stack as router and
   * DNS server). True by default, like QEMU; an object sets the pool size,
   * the leases per MAC and the lease time.
   */
  dhcp?: boolean | { poolSize?: number; leasesPerMac?: number; leaseSeconds?: number };
  /**
   * Whether the session's machine reaches the world through the session
   * (egress). Default: whether the registry has an egress provider (the
   * server's `NETISLE_EGRESS`); `true` without one is refused (EINVAL).
   */
  egress?: boolean;
  /**
   * IPv6 on the session's link: its /64 prefix and the stack's address
   * (`fd00::/64` and `fd00::2` by default), or false for none.
   */
  ipv6?: { prefix: Ipv6Address; address: Ipv6Address } | false;
}

/**
 * What gives sessions egress: the server's egress service
 * (src/apps/egress), attached to each session created with egress on.
 */
export interface SessionEgressProvider {
  /** Starts egress for `session`, whose stack has egress on; it ends with the session. */
  attach(session: Session): void;
}

/** Defaults like QEMU's user networking: the stack at 10.0.2.2/24. */
export const DEFAULT_SESSION_IPV4 = { address: 0x0a000202, prefixLength: 24 } as const;
/** Default IP MTU of a session. */
export const DEFAULT_SESSION_MTU = 1500;

/**
 * All sessions of one server process.
 *
 * @example
 * ```ts
 * const registry = new SessionRegistry({ clock: new SystemClock() });
 * const session = registry.create({});
 * registry.get(session.id) === session; // true
 * ```
 */
export class SessionRegistry {
  readonly limits: RegistryLimits;
  #sessions = new Map<string, Session>();
  #clock: Clock;
  #random: (buf: Uint8Array) => void;
  #sessionLimits: Partial<SessionLimits> | undefined;
  #egress: SessionEgressProvider | undefined;
  #tcp: Partial<TcpConfig> | undefined;
  #sweepTimer: TimerHandle | undefined;
  /** Sessions created since start. */
  created = 0;
  /** Sessions deleted by idle expiry. */
  expired = 0;
  /** Counters of deleted sessions, summed, so /metrics counters never go down. */
  readonly retired: SessionTotals = emptySessionTotals();

  /** Creates an empty registry; call {@linkcode SessionRegistry.startSweeping} to expire idle sessions. */
  constructor(options: {
    clock: Clock;
    random?: (buf: Uint8Array) => void;
    limits?: Partial<RegistryLimits>;
    sessionLimits?: Partial<SessionLimits>;
    /** Egress for the sessions (on by default for each when given). */
    egress?: SessionEgressProvider;
    /** Defaults for every TCP connection of every session (e.g. `{pacing: false}`). */
    tcp?: Partial<TcpConfig>;
  }) {
    this.#clock = options.clock;
    this.#random = options.random ?? ((buf) => crypto.getRandomValues(buf));
    this.limits = { ...DEFAULT_REGISTRY_LIMITS, ...options.limits };
    this.#sessionLimits = options.sessionLimits;
    this.#egress = options.egress;
    this.#tcp = options.tcp;
  }

  /** Whether sessions get egress unless created with `egress: false`. */
  get egressAvailable(): boolean {
    return this.#egress !== undefined;
  }

  /** Number of live sessions. */
  get size(): number {
    return this.#sessions.size;
  }

  /**
   * Creates a session; throws NetError ENFILE when the quota is full, EINVAL
   * when `egress: true` is asked of a registry without egress.
   */
  create(params: CreateSessionParams = {}): Session {
    const egress = params.egress ?? this.#egress !== undefined;
    if (egress && this.#egress === undefined) {
      throw new NetError("EINVAL", "egress is off on this server (NETISLE_EGRESS)");
    }
    if (this.#sessions.size >= this.limits.maxSessions) {
      throw new NetError(
        "ENFILE",
        `session quota is full: this server holds its maximum of ${this.limits.maxSessions} sessions`,
      );
    }
    const ipv4 = params.ipv4 ?? DEFAULT_SESSION_IPV4;
    let id: string;
    do id = "s_" + this.#randomText(16); while (this.#sessions.has(id));
    const session = new Session({
      id,
      token: this.#randomText(32),
      clock: this.#clock,
      stack: {
        mac: params.mac ?? randomLocalMac(this.#random),
        ipv4: { address: ipv4.address, prefixLength: ipv4.prefixLength },
        mtu: params.mtu ?? DEFAULT_SESSION_MTU,
        dhcp: dhcpConfig(params.dhcp),
        egress: { enabled: egress },
        tcp: this.#tcp,
        ipv6: params.ipv6,
      },
      limits: this.#sessionLimits,
    });
    if (egress) {
      try {
        this.#egress!.attach(session);
      } catch (err) {
        session.close();
        throw err;
      }
    }
    this.#sessions.set(id, session);
    this.created++;
    return session;
  }

  /** The session with `id`, or undefined. */
  get(id: string): Session | undefined {
    return this.#sessions.get(id);
  }

  /** All live sessions. */
  list(): Session[] {
    return [...this.#sessions.values()];
  }

  /** Closes and removes a session; returns false when it did not exist. */
  delete(id: string): boolean {
    const s = this.#sessions.get(id);
    if (!s) return false;
    this.#sessions.delete(id);
    s.close();
    addSessionTotals(this.retired, s);
    return true;
  }

  /** Deletes sessions idle longer than the limit that have no tunnel attached. */
  sweep(): number {
    const now = this.#clock.now();
    let n = 0;
    for (const s of this.#sessions.values()) {
      if (!s.tunnelAttached && now - s.lastActivity >= this.limits.idleTimeoutMs) {
        this.delete(s.id);
        n++;
      }
    }
    this.expired += n;
    return n;
  }

  /** Runs {@linkcode SessionRegistry.sweep} periodically until {@linkcode SessionRegistry.close}. */
  startSweeping(): void {
    if (this.#sweepTimer !== undefined) return;
    const tick = () => {
      this.sweep();
      this.#sweepTimer = this.#clock.setTimer(
        this.#clock.now() + this.limits.sweepIntervalMs,
        tick,
      );
    };
    this.#sweepTimer = this.#clock.setTimer(this.#clock.now() + this.limits.sweepIntervalMs, tick);
  }

  /** Deletes every session and stops the sweep. */
  close(): void {
    if (this.#sweepTimer !== undefined) this.#clock.clearTimer(this.#sweepTimer);
    this.#sweepTimer = undefined;
    for (const id of [...this.#sessions.keys()]) this.delete(id);
  }

  #randomText(bytes: number): string {
    const b = new Uint8Array(bytes);
    this.#random(b);
    return base64Url(b);
  }
}

/** Unpadded base64url (RFC 4648 §5) of `bytes`. */
export function base64Url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * The stack's DHCP settings for {@linkcode CreateSessionParams.dhcp}.
 *
 * @example
 * ```ts
 * dhcpConfig({ poolSize: 4 }); // { enabled: true, poolSize: 4, leasesPerMac: undefined, leaseMs: undefined }
 * ```
 */
export function dhcpConfig(dhcp: CreateSessionParams["dhcp"]): DhcpServerConfig {
  if (dhcp === undefined || typeof dhcp === "boolean") return { enabled: dhcp ?? true };
  return {
    enabled: true,
    poolSize: dhcp.poolSize,
    leasesPerMac: dhcp.leasesPerMac,
    leaseMs: dhcp.leaseSeconds === undefined ? undefined : dhcp.leaseSeconds * 1000,
  };
}
