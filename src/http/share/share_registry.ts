/**
 * Share links: capability URLs that proxy HTTP/1.1 (and WebSocket upgrades)
 * to one address and port inside one session. The key in the link is the
 * only credential: 34 characters of lowercase base32 (a DNS label, since
 * host-based links put it in the host name), an 8-character public id
 * followed by 130 bits of secret. The registry finds a share by its id and
 * compares the secret in constant time; an unknown id is compared against a
 * dummy secret, so unknown, revoked, expired and wrong keys all take the same
 * path to the same 404.
 *
 * One registry serves every session of an app (a link names no session).
 * Shares end when revoked, when they expire, or with their session; their
 * connections in flight are cut then (each arms a timer for its share's
 * deadline while it lasts: the registry itself holds no timer).
 *
 * @module
 */

import type { Clock, Session } from "../../session/mod.ts";
import { constantTimeEqual } from "../auth.ts";

/** Default lifetime of a share (1 hour). */
export const DEFAULT_SHARE_TTL_SECONDS = 3600;
/** Longest lifetime of a share (7 days). */
export const MAX_SHARE_TTL_SECONDS = 7 * 24 * 3600;
/** Default number of live shares per session. */
export const DEFAULT_SHARES_PER_SESSION = 16;
/** Default number of live shares in the whole registry. */
export const DEFAULT_MAX_SHARES = 10_000;

const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";
const ID_CHARS = 8;
const SECRET_CHARS = 26; // 130 bits
/** Length of a share key. */
export const SHARE_KEY_LENGTH = ID_CHARS + SECRET_CHARS;
const DUMMY_SECRET = "a".repeat(SECRET_CHARS);

/** Options of {@linkcode ShareRegistry}. */
export interface ShareRegistryOptions {
  /** The monotonic clock of expiry (the app's). */
  clock: Clock;
  /** Wall-clock milliseconds, for `createdAt`/`expiresAt` (default `Date.now`). */
  wallNow?: () => number;
  /** Live shares per session (429 EMFILE beyond). Default 16. */
  maxPerSession?: number;
  /** Live shares in all (429 ENFILE beyond). Default 10,000. */
  maxShares?: number;
  /** Random bytes (default `crypto.getRandomValues`). */
  random?: (b: Uint8Array) => void;
}

/** One share link. */
export class Share {
  /** The public id (`sh_` and 8 base32 characters). */
  readonly id: string;
  /** The session it reaches into. */
  readonly session: Session;
  /** The address inside the session. */
  readonly address: string;
  /** The port. */
  readonly port: number;
  /** A label of the creator's choosing. */
  readonly name: string | null;
  /** Wall-clock creation time (ms since the epoch). */
  readonly createdAt: number;
  /** Wall-clock expiry (ms since the epoch). */
  readonly expiresAt: number;
  /** Expiry on the registry's monotonic clock. */
  readonly deadline: number;
  /** The registry's clock (connections in flight arm a timer for the deadline on it). */
  readonly clock: Clock;
  /** Requests proxied so far. */
  requests = 0;
  /** Connections in flight: each aborts when the share ends. */
  readonly active = new Set<AbortController>();
  #secret: string;
  #ended = false;

  /** Made by the registry. */
  constructor(init: {
    id: string;
    secret: string;
    session: Session;
    address: string;
    port: number;
    name: string | null;
    createdAt: number;
    expiresAt: number;
    deadline: number;
    clock: Clock;
  }) {
    this.id = init.id;
    this.#secret = init.secret;
    this.session = init.session;
    this.address = init.address;
    this.port = init.port;
    this.name = init.name;
    this.createdAt = init.createdAt;
    this.expiresAt = init.expiresAt;
    this.deadline = init.deadline;
    this.clock = init.clock;
  }

  /** Whether the share was revoked, expired or its session ended. */
  get ended(): boolean {
    return this.#ended || this.session.closed;
  }

  /** Whether `secret` is this share's, in time independent of where they differ. */
  matches(secret: string): boolean {
    return constantTimeEqual(secret, this.#secret);
  }

  /** Ends the share and cuts its connections. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const ac of [...this.active]) ac.abort(new Error("the share link ended"));
    this.active.clear();
  }

  /** The share as JSON (never the key). */
  view(): ShareView {
    return {
      id: this.id,
      name: this.name,
      address: this.address,
      port: this.port,
      createdAt: new Date(this.createdAt).toISOString(),
      expiresAt: new Date(this.expiresAt).toISOString(),
      requests: this.requests,
      activeConnections: this.active.size,
    };
  }
}

/** A share as the API shows it. */
export interface ShareView {
  id: string;
  name: string | null;
  address: string;
  port: number;
  createdAt: string;
  expiresAt: string;
  requests: number;
  activeConnections: number;
}

/**
 * The share links of an app.
 *
 * @example
 * ```ts
 * const shares = new ShareRegistry({ clock });
 * const { share, key } = shares.create(session, { address: "10.0.2.15", port: 80 });
 * shares.lookup(key) === share; // true, until it is revoked or expires
 * ```
 */
export class ShareRegistry {
  #byId = new Map<string, Share>();
  #clock: Clock;
  #wallNow: () => number;
  #random: (b: Uint8Array) => void;
  /** Live shares per session. */
  readonly maxPerSession: number;
  /** Live shares in all. */
  readonly maxShares: number;

  /** An empty registry. */
  constructor(options: ShareRegistryOptions) {
    this.#clock = options.clock;
    this.#wallNow = options.wallNow ?? (() => Date.now());
    this.#random = options.random ?? ((b) => crypto.getRandomValues(b));
    this.maxPerSession = options.maxPerSession ?? DEFAULT_SHARES_PER_SESSION;
    this.maxShares = options.maxShares ?? DEFAULT_MAX_SHARES;
  }

  /** Live shares. */
  get size(): number {
    this.sweep();
    return this.#byId.size;
  }

  /**
   * Creates a share; returns it and its key (shown once: the registry keeps
   * no way to show it again). Throws a `RangeError` naming the limit reached
   * (`per-session` or `total`).
   */
  create(
    session: Session,
    spec: { address: string; port: number; ttlSeconds?: number; name?: string },
  ): { share: Share; key: string } {
    this.sweep();
    if (this.list(session).length >= this.maxPerSession) {
      throw new RangeError("per-session");
    }
    if (this.#byId.size >= this.maxShares) throw new RangeError("total");
    const ttl = spec.ttlSeconds ?? DEFAULT_SHARE_TTL_SECONDS;
    let idPart: string;
    do idPart = this.#randomBase32(ID_CHARS); while (this.#byId.has(idPart));
    const secret = this.#randomBase32(SECRET_CHARS);
    const wall = this.#wallNow();
    const share = new Share({
      id: `sh_${idPart}`,
      secret,
      session,
      address: spec.address,
      port: spec.port,
      name: spec.name ?? null,
      createdAt: wall,
      expiresAt: wall + ttl * 1000,
      deadline: this.#clock.now() + ttl * 1000,
      clock: this.#clock,
    });
    this.#byId.set(idPart, share);
    return { share, key: idPart + secret };
  }

  /**
   * The live share whose key is `key`, or undefined: unknown, malformed,
   * revoked and expired keys are compared against a secret all the same.
   */
  lookup(key: string): Share | undefined {
    const k = key.toLowerCase();
    const wellFormed = k.length === SHARE_KEY_LENGTH && /^[a-z2-7]+$/.test(k);
    const share = wellFormed ? this.#byId.get(k.slice(0, ID_CHARS)) : undefined;
    const secret = wellFormed ? k.slice(ID_CHARS) : DUMMY_SECRET;
    let matches = false;
    if (share) matches = share.matches(secret);
    else constantTimeEqual(secret, DUMMY_SECRET); // the same work as for a known id
    if (!share || !matches) return undefined;
    if (this.#expired(share)) {
      this.#remove(share);
      return undefined;
    }
    return share;
  }

  /** The live shares of `session`, oldest first. */
  list(session: Session): Share[] {
    return [...this.#byId.values()].filter((s) => s.session === session && !this.#expired(s));
  }

  /** The live share `id` of `session`, or undefined. */
  get(session: Session, id: string): Share | undefined {
    const s = id.startsWith("sh_") ? this.#byId.get(id.slice(3)) : undefined;
    return s && s.session === session && !this.#expired(s) ? s : undefined;
  }

  /** Revokes share `id` of `session`: its link answers 404 and its connections are cut. */
  revoke(session: Session, id: string): boolean {
    const s = this.get(session, id);
    if (!s) return false;
    this.#remove(s);
    return true;
  }

  /** Forgets expired shares and those of ended sessions, cutting their connections. */
  sweep(): void {
    for (const s of [...this.#byId.values()]) if (this.#expired(s)) this.#remove(s);
  }

  /** Ends every share. */
  close(): void {
    for (const s of [...this.#byId.values()]) this.#remove(s);
  }

  #expired(s: Share): boolean {
    return s.ended || this.#clock.now() >= s.deadline;
  }

  #remove(s: Share): void {
    this.#byId.delete(s.id.slice(3));
    s.end();
  }

  #randomBase32(n: number): string {
    const b = new Uint8Array(n);
    this.#random(b);
    let out = "";
    for (const x of b) out += ALPHABET[x & 31];
    return out;
  }
}
