/**
 * The few Cloudflare Workers / Durable Object types this example uses,
 * declared here so the example type-checks without `@cloudflare/workers-types`.
 * They follow the shapes documented at developers.cloudflare.com.
 *
 * @module
 */

/** A Durable Object's id (`ctx.id`, `namespace.idFromName()`). */
export interface DurableObjectId {
  toString(): string;
  equals(other: DurableObjectId): boolean;
  readonly name?: string;
}

/** A stub to one Durable Object: requests to it run in that object. */
export interface DurableObjectStub {
  fetch(request: Request): Promise<Response>;
}

/** A Durable Object namespace binding (`env.SESSIONS`). */
export interface DurableObjectNamespace {
  idFromName(name: string): DurableObjectId;
  idFromString(hex: string): DurableObjectId;
  newUniqueId(): DurableObjectId;
  get(id: DurableObjectId): DurableObjectStub;
}

/** The transactional storage of one Durable Object (the async KV API). */
export interface DurableObjectStorage {
  get<T = unknown>(key: string): Promise<T | undefined>;
  put<T>(key: string, value: T): Promise<void>;
  deleteAll(): Promise<void>;
  getAlarm(): Promise<number | null>;
  setAlarm(scheduledTime: number | Date): Promise<void>;
  deleteAlarm(): Promise<void>;
}

/** The state a Durable Object is constructed with (`ctx`). */
export interface DurableObjectState {
  readonly id: DurableObjectId;
  readonly storage: DurableObjectStorage;
  blockConcurrencyWhile<T>(fn: () => Promise<T>): Promise<T>;
  waitUntil(promise: Promise<unknown>): void;
}

/**
 * The bindings of the Worker and of its Durable Object (wrangler.jsonc, workerd.capnp).
 * workerd gives `null` for a `fromEnvironment` binding whose variable is unset.
 */
export interface Env {
  /** The Durable Object namespace of the sessions. */
  SESSIONS: DurableObjectNamespace;
  /** When set, `POST /v1/sessions` requires `Authorization: Bearer <token>`. */
  NETISLE_ADMIN_TOKEN?: string | null;
  /** A session with no tunnel and no activity this long is deleted (ms; default 30 min). */
  NETISLE_IDLE_TIMEOUT_MS?: string | null;
  /** `"0"` turns the request log off. */
  NETISLE_LOG?: string | null;
  /** `"on"`: sessions reach the world through `connect()` (README "Egress"). */
  NETISLE_EGRESS?: string | null;
  /** Egress rules the operator opens (`CIDR[:PORT[-PORT]]`, comma-separated). */
  NETISLE_EGRESS_ALLOW?: string | null;
  /** Egress rules the operator closes. */
  NETISLE_EGRESS_DENY?: string | null;
  /**
   * Addresses egress never dials (the server's own; local workerd's --serve
   * sets them). On Cloudflare the platform keeps Workers from its own ranges.
   */
  NETISLE_SERVER_ADDRESSES?: string | null;
  /** Where other names are resolved: an `https://` DNS-over-HTTPS URL (the default is Cloudflare's). */
  NETISLE_DNS_UPSTREAM?: string | null;
}
