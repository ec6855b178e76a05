/**
 * A {@linkcode SessionRegistry} that holds at most one session whose id is
 * chosen by its owner: the registry of one Durable Object. The Worker names
 * the object after the session id (`idFromName(sid)`), so the object creates
 * its session under exactly that id, and can re-create it (same id, token,
 * MAC, addresses) from storage after the runtime evicted the object.
 *
 * @module
 */

import { NetError } from "../../src/errors/mod.ts";
import {
  addSessionTotals,
  base64Url,
  type Clock,
  type CreateSessionParams,
  DEFAULT_SESSION_IPV4,
  DEFAULT_SESSION_MTU,
  dhcpConfig,
  Session,
  type SessionEgressProvider,
  type SessionLimits,
  SessionRegistry,
} from "../../src/session/mod.ts";
import { formatMacAddress, parseMacAddress, randomLocalMac } from "../../src/wire/mod.ts";

/** What a Durable Object stores to re-create its session after eviction. */
export interface StoredSession {
  id: string;
  token: string;
  mac: string;
  ipv4: { address: number; prefixLength: number };
  mtu: number;
  dhcp: CreateSessionParams["dhcp"];
  /** Whether the session has egress (absent in records of older versions: none). */
  egress?: boolean;
}

/** Options of {@linkcode SingleSessionRegistry}. */
export interface SingleSessionRegistryOptions {
  clock: Clock;
  random?: (buf: Uint8Array) => void;
  sessionLimits?: Partial<SessionLimits>;
  /** A session with no tunnel and no activity this long is expired by `sweep` (ms). */
  idleTimeoutMs?: number;
  /** Called with the record of a newly created session (to persist it). */
  onCreate?: (record: StoredSession) => void;
  /** Called after the session was deleted. */
  onDelete?: (id: string) => void;
  /** Egress for the session (on unless it is created with `egress: false`). */
  egress?: SessionEgressProvider;
}

/**
 * The registry of one Durable Object: one session at most, under the id set
 * with {@linkcode SingleSessionRegistry.expectId} before `create`.
 *
 * @example
 * ```ts
 * const registry = new SingleSessionRegistry({ clock: new SystemClock() });
 * registry.expectId("s_AAAAAAAAAAAAAAAAAAAAAA");
 * registry.create({}).id; // "s_AAAAAAAAAAAAAAAAAAAAAA"
 * ```
 */
export class SingleSessionRegistry extends SessionRegistry {
  #session: Session | undefined;
  #expectedId: string | undefined;
  #clock: Clock;
  #random: (buf: Uint8Array) => void;
  #sessionLimits: Partial<SessionLimits> | undefined;
  #onCreate: ((record: StoredSession) => void) | undefined;
  #onDelete: ((id: string) => void) | undefined;
  #egress: SessionEgressProvider | undefined;

  /** An empty registry; idle expiry is the Durable Object's alarm, not a timer. */
  constructor(options: SingleSessionRegistryOptions) {
    super({
      clock: options.clock,
      random: options.random,
      limits: options.idleTimeoutMs === undefined
        ? { maxSessions: 1 }
        : { maxSessions: 1, idleTimeoutMs: options.idleTimeoutMs },
      sessionLimits: options.sessionLimits,
      egress: options.egress,
    });
    this.#clock = options.clock;
    this.#random = options.random ?? ((buf) => crypto.getRandomValues(buf));
    this.#sessionLimits = options.sessionLimits;
    this.#onCreate = options.onCreate;
    this.#onDelete = options.onDelete;
    this.#egress = options.egress;
  }

  /** The session, if there is one. */
  get session(): Session | undefined {
    return this.#session;
  }

  /** Sets the id the next `create` uses (the Durable Object's name). */
  expectId(id: string): void {
    this.#expectedId = id;
  }

  /** 0 or 1. */
  override get size(): number {
    return this.#session ? 1 : 0;
  }

  /**
   * Creates the one session under the expected id; ENFILE when it exists,
   * TypeError when no id was set.
   */
  override create(params: CreateSessionParams = {}): Session {
    if (this.#session) {
      throw new NetError(
        "ENFILE",
        `this Durable Object already holds session "${this.#session.id}"`,
      );
    }
    const id = this.#expectedId;
    if (id === undefined) {
      throw new TypeError("SingleSessionRegistry.create: no session id was set with expectId()");
    }
    const egress = params.egress ?? this.#egress !== undefined;
    if (egress && this.#egress === undefined) {
      throw new NetError("EINVAL", "egress is off on this server (NETISLE_EGRESS)");
    }
    const token = new Uint8Array(32);
    this.#random(token);
    const record: StoredSession = {
      id,
      token: base64Url(token),
      mac: formatMacAddress(params.mac ?? randomLocalMac(this.#random)),
      ipv4: { ...(params.ipv4 ?? DEFAULT_SESSION_IPV4) },
      mtu: params.mtu ?? DEFAULT_SESSION_MTU,
      dhcp: params.dhcp ?? true,
      egress,
    };
    const session = this.restore(record);
    this.created++;
    this.#onCreate?.(record);
    return session;
  }

  /** Re-creates a session from its stored record (after eviction): same id, token, addresses. */
  restore(record: StoredSession): Session {
    if (this.#session) {
      throw new NetError(
        "ENFILE",
        `this Durable Object already holds session "${this.#session.id}"`,
      );
    }
    this.#session = new Session({
      id: record.id,
      token: record.token,
      clock: this.#clock,
      stack: {
        mac: parseMacAddress(record.mac),
        ipv4: { address: record.ipv4.address, prefixLength: record.ipv4.prefixLength },
        mtu: record.mtu,
        dhcp: dhcpConfig(record.dhcp),
        // A stored session keeps egress only while the server still offers it.
        egress: { enabled: record.egress === true && this.#egress !== undefined },
      },
      limits: this.#sessionLimits,
    });
    if (record.egress === true && this.#egress) this.#egress.attach(this.#session);
    return this.#session;
  }

  /** The session when `id` is its id. */
  override get(id: string): Session | undefined {
    return this.#session?.id === id ? this.#session : undefined;
  }

  /** The session, as a list. */
  override list(): Session[] {
    return this.#session ? [this.#session] : [];
  }

  /** Closes the session when `id` is its id. */
  override delete(id: string): boolean {
    const s = this.#session;
    if (!s || s.id !== id) return false;
    this.#session = undefined;
    s.close();
    addSessionTotals(this.retired, s);
    this.#onDelete?.(id);
    return true;
  }

  /** Expires the session when idle; returns 1 when it did. */
  override sweep(): number {
    const s = this.#session;
    if (!s || s.tunnelAttached) return 0;
    if (this.#clock.now() - s.lastActivity < this.limits.idleTimeoutMs) return 0;
    this.delete(s.id);
    this.expired++;
    return 1;
  }

  /** Does nothing: the Durable Object's alarm calls `sweep`. */
  override startSweeping(): void {}

  /** Deletes the session. */
  override close(): void {
    if (this.#session) this.delete(this.#session.id);
  }
}
