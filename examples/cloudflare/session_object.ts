/**
 * `NetisleSession`: the Durable Object that holds one netisle session. Its
 * stack, core lock, timers, sockets and tunnel live in this object's memory;
 * the Hono app (`createApp`) serves the session's routes inside it, so the
 * HTTP contract is the same as on Deno and Bun.
 *
 * - The Worker names the object after the session id (`idFromName(sid)`) and
 *   passes that id on `POST /v1/sessions` in the `netisle-session-id` header;
 *   the object checks that the name really is its own.
 * - Storage holds only the session's identity (id, token, MAC, addresses,
 *   MTU, DHCP switch) so that an evicted object can bring the session back
 *   under the same id and token; TCP connections, ARP cache, leases and
 *   counters are memory and do not survive an eviction.
 * - An alarm expires the session after the idle timeout (no tunnel, no
 *   frames, no API calls), like the registry's sweep on Deno and Bun.
 * - The tunnel WebSocket is accepted in memory (`server.accept()`), never
 *   with the hibernation API: a hibernated object loses its isolate, and with
 *   it every TCP control block, timer and socket buffer of the stack.
 *
 * @module
 */

import { createApp } from "../../src/http/app.ts";
import { bearerToken, constantTimeEqual } from "../../src/http/auth.ts";
import { problemResponse } from "../../src/http/problem.ts";
import { upgradeWorkerdWebSocket } from "../../src/http/serve_workerd.ts";
import { SessionIdSchema } from "../../src/http/schemas.ts";
import { SystemClock } from "../../src/session/mod.ts";
import { createEgressService, readEgressConfig } from "../../src/apps/egress/egress_config.ts";
import { type IpAddress, parseIpAddress } from "../../src/apps/egress/ip_address.ts";
import { workerdDialer } from "../../src/apps/egress/dial_workerd.ts";
import { egressMetricsCollector } from "../../src/http/egress_metrics.ts";
import { SingleSessionRegistry, type StoredSession } from "./single_session_registry.ts";
import type { DurableObjectState, Env } from "./workers_types.ts";

/** Header on `POST /v1/sessions` from the Worker to a new object: the session id (= its name). */
export const SESSION_ID_HEADER = "netisle-session-id";
/** Storage key of the {@linkcode StoredSession}. */
const SESSION_KEY = "session";
/** Default idle timeout (as the registry's on Deno and Bun). */
const DEFAULT_IDLE_TIMEOUT_MS = 30 * 60_000;
/** Per-session metrics route, answered by the object (the Worker has no global view). */
const METRICS_PATH = /^\/v1\/sessions\/([^/]+)\/metrics$/;
/** DNS-over-HTTPS upstream of egress when `NETISLE_DNS_UPSTREAM` is unset (Workers have no resolver). */
export const WORKERS_DNS_UPSTREAM = "https://cloudflare-dns.com/dns-query";

/**
 * Egress from the environment (`NETISLE_EGRESS=on`): `connect()` for TCP
 * (6 at once per request context, more queue), no UDP, DNS over HTTPS.
 * Undefined when off; TypeError naming the variable when misconfigured.
 */
export function egressFromEnv(env: Env): ReturnType<typeof createEgressService> | undefined {
  const vars: Record<string, string | undefined> = {};
  for (
    const k of [
      "NETISLE_EGRESS",
      "NETISLE_EGRESS_ALLOW",
      "NETISLE_EGRESS_DENY",
      "NETISLE_DNS_UPSTREAM",
    ] as const
  ) {
    vars[k] = env[k] ?? undefined;
  }
  const config = readEgressConfig(vars, WORKERS_DNS_UPSTREAM);
  if (typeof config === "string") throw new TypeError(config);
  if (!config) return undefined;
  // On Cloudflare the platform keeps a Worker from its own addresses; locally, the script
  // that serves workerd names the addresses it listens on.
  const serverAddresses = (env.NETISLE_SERVER_ADDRESSES ?? "").split(",").map((a) =>
    parseIpAddress(a.trim())
  ).filter((a): a is IpAddress => a !== undefined);
  return createEgressService(config, { dialer: workerdDialer(), serverAddresses });
}

/** Reads `NETISLE_IDLE_TIMEOUT_MS`; the default when unset, TypeError when invalid. */
export function idleTimeoutFromEnv(env: Pick<Env, "NETISLE_IDLE_TIMEOUT_MS">): number {
  const raw = env.NETISLE_IDLE_TIMEOUT_MS;
  if (raw === undefined || raw === null || raw === "") return DEFAULT_IDLE_TIMEOUT_MS;
  const ms = Number(raw);
  if (!Number.isFinite(ms) || ms < 1000) {
    throw new TypeError(`NETISLE_IDLE_TIMEOUT_MS must be a number of ms >= 1000, got "${raw}"`);
  }
  return ms;
}

/**
 * The Durable Object class of one session (binding `SESSIONS`, see
 * wrangler.jsonc and workerd.capnp).
 *
 * @example
 * ```ts
 * // In the Worker:
 * const stub = env.SESSIONS.get(env.SESSIONS.idFromName(sid));
 * return stub.fetch(request);
 * ```
 */
export class NetisleSession {
  #state: DurableObjectState;
  #env: Env;
  #clock = new SystemClock();
  #registry: SingleSessionRegistry;
  #app: ReturnType<typeof createApp>;
  #idleTimeoutMs: number;
  #writes: Promise<unknown>[] = [];

  /** Builds the app and brings back a stored session (after an eviction). */
  constructor(state: DurableObjectState, env: Env) {
    this.#state = state;
    this.#env = env;
    this.#idleTimeoutMs = idleTimeoutFromEnv(env);
    const egress = egressFromEnv(env);
    this.#registry = new SingleSessionRegistry({
      clock: this.#clock,
      idleTimeoutMs: this.#idleTimeoutMs,
      egress,
      onCreate: (record) => {
        this.#writes.push(state.storage.put(SESSION_KEY, record));
        this.#writes.push(state.storage.setAlarm(Date.now() + this.#idleTimeoutMs));
      },
      onDelete: () => {
        this.#writes.push(state.storage.deleteAlarm().then(() => state.storage.deleteAll()));
      },
    });
    this.#app = createApp({
      registry: this.#registry,
      upgradeWebSocket: upgradeWorkerdWebSocket,
      adminToken: env.NETISLE_ADMIN_TOKEN || undefined,
      requestLog: env.NETISLE_LOG === "0" ? false : undefined,
      metricsCollectors: egress ? [egressMetricsCollector(egress)] : undefined,
    });
    void state.blockConcurrencyWhile(async () => {
      const record = await state.storage.get<StoredSession>(SESSION_KEY);
      if (record) this.#registry.restore(record);
    });
  }

  /** Serves one request of this session (the Worker forwards them). */
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    let response: Response;
    if (request.method === "POST" && url.pathname === "/v1/sessions") {
      const sid = request.headers.get(SESSION_ID_HEADER) ?? "";
      if (!SessionIdSchema.safeParse(sid).success) {
        return problemResponse("EINVAL", `${SESSION_ID_HEADER} must be a session id, got "${sid}"`);
      }
      if (!this.#env.SESSIONS.idFromName(sid).equals(this.#state.id)) {
        return problemResponse("EINVAL", `session id "${sid}" does not name this Durable Object`);
      }
      this.#registry.expectId(sid);
      response = await this.#app.fetch(request);
    } else {
      const m = METRICS_PATH.exec(url.pathname);
      response = m && request.method === "GET"
        ? await this.#metrics(request, decodeURIComponent(m[1]), url)
        : await this.#app.fetch(request);
    }
    await this.#flushWrites();
    return response;
  }

  /** The alarm: expire the idle session, or look again when it could next be idle. */
  async alarm(): Promise<void> {
    const session = this.#registry.session;
    if (!session) {
      await this.#state.storage.deleteAll();
      return;
    }
    if (this.#registry.sweep() === 0) {
      const idle = session.tunnelAttached ? 0 : this.#clock.now() - session.lastActivity;
      await this.#state.storage.setAlarm(
        Date.now() + Math.max(1000, this.#idleTimeoutMs - idle),
      );
    }
    await this.#flushWrites();
  }

  /** `GET /v1/sessions/:sid/metrics`: this session's /metrics, behind its token. */
  #metrics(request: Request, sid: string, url: URL): Promise<Response> | Response {
    const session = this.#registry.get(sid);
    if (!session) return problemResponse("ENOTFOUND", `no session with id "${sid}"`);
    const given = bearerToken(request.headers.get("authorization"));
    if (given === undefined || !constantTimeEqual(given, session.token)) {
      return problemResponse(
        "EUNAUTHORIZED",
        `session "${sid}" needs its token (Authorization: Bearer <token>)`,
        { headers: { "www-authenticate": 'Bearer realm="netisle"' } },
      );
    }
    return this.#app.fetch(new Request(new URL("/metrics", url), { method: "GET" }));
  }

  async #flushWrites(): Promise<void> {
    while (this.#writes.length > 0) {
      const writes = this.#writes.splice(0);
      await Promise.all(writes);
    }
  }
}
