/**
 * Sessions in their own isolates: the front door. Like one Durable Object
 * per session on Cloudflare, each session runs in its own Web Worker with
 * the normal app (`createApp`) inside; the front door (this app, in the main
 * isolate) creates sessions, checks tokens, serves `/healthz`, `/metrics`
 * (summed over the workers), `/openapi.json` and `/docs`, and forwards every
 * `/v1/sessions/:sid/...` request — long-polls, streamed pcaps and WebSocket
 * upgrades included — to the session's worker.
 *
 * A worker that throws an uncaught error, or answers no heartbeat for
 * `heartbeatTimeoutMs`, is terminated; its WebSockets close with 4004 and
 * its session's routes answer 503 `ESESSIONDEAD` until the session is
 * deleted or `deadRetentionMs` passed (then 404). Other sessions carry on:
 * they run on other threads.
 *
 * @module
 */

import { type Context, Hono } from "hono";
import { HttpProblem, problemNotFound, problemOnError } from "../problem.ts";
import { createApp } from "../app.ts";
import type { WebSocketUpgrader } from "../app_env.ts";
import { corsMiddleware } from "../cors.ts";
import { bearerToken, constantTimeEqual } from "../auth.ts";
import { HttpMetrics, MetricsWriter, PROMETHEUS_CONTENT_TYPE } from "../metrics.ts";
import { DEFAULT_BODY_TIMEOUT_MS, readRequestBody } from "../request_body.ts";
import { consoleRequestLogger, type RequestLogger, routePattern } from "../request_log.ts";
import { tokenAuth, unauthorized } from "../route_auth.ts";
import { CreateSessionBodySchema, SessionParamsSchema } from "../schemas.ts";
import { validate } from "../validation.ts";
import { NetError } from "../../errors/mod.ts";
import { SessionRegistry, SystemClock } from "../../session/mod.ts";
import {
  type RelaySocket,
  relayWebSocket,
  SessionDeadError,
  SessionWorker,
  type WorkerLike,
} from "../../session/isolated/mod.ts";
import {
  mergeMetrics,
  type ParsedFamily,
  parseMetrics,
  renderParsedMetrics,
} from "./metrics_merge.ts";

/** The problem code of a request to a session whose worker died (HTTP 503). */
export const SESSION_DEAD_CODE = "ESESSIONDEAD";

/** Options of {@linkcode createIsolatedApp}. */
export interface IsolatedAppOptions {
  /** The runtime's WebSocket upgrade; without it WebSocket routes answer 501. */
  upgradeWebSocket?: WebSocketUpgrader;
  /** When set, `POST /v1/sessions` requires `Authorization: Bearer <adminToken>`. */
  adminToken?: string;
  /** When set, `GET /metrics` requires `Authorization: Bearer <metricsToken>`. */
  metricsToken?: string;
  /** Request log of the front door and the workers; `false` disables. */
  requestLog?: RequestLogger | false;
  /** How long a request body may take to arrive before 408 `EBODYTIMEOUT` (default 30 s). */
  bodyTimeoutMs?: number;
  /** Most live sessions (each is a worker, several MiB): default 100. */
  maxSessions?: number;
  /** Interval of heartbeat pings (ms). Default 1000. */
  heartbeatIntervalMs?: number;
  /** A worker silent this long is terminated (ms). Default 10000. */
  heartbeatTimeoutMs?: number;
  /** A worker not ready this long after its start is terminated (ms). Default 30000. */
  readyTimeoutMs?: number;
  /** Idle expiry of sessions (ms), as in the registry. Default 30 minutes. */
  idleTimeoutMs?: number;
  /** Interval of each worker's idle sweep (ms). Default 60000. */
  sweepIntervalMs?: number;
  /** How long a dead session answers 503 before it is forgotten (ms). Default 10 minutes. */
  deadRetentionMs?: number;
  /**
   * TEST ONLY (`NETISLE_TEST_HOOKS=1`): adds `POST /v1/sessions/:sid/_test/spin|crash`,
   * which make the session's worker busy-loop forever or throw an uncaught error.
   */
  testHooks?: boolean;
  /** Starts a worker; default: `session_worker_main.ts` as a module worker. */
  workerFactory?: () => WorkerLike;
  /** Origins whose pages may call the API (CORS; see `createApp`). */
  corsOrigins?: readonly string[];
  /** Egress for every session's worker (see `WorkerInit.egress`). */
  egress?: { env: Record<string, string>; hostname: string };
}

/** One session as the front door knows it. */
export interface IsolatedSessionEntry {
  id: string;
  token: string;
  worker: SessionWorker;
  /** When the worker died (ms since the epoch), if it did. */
  diedAt?: number;
}

/** The front door: its Hono app, its sessions, and how to stop it. */
export interface IsolatedApp {
  app: Hono<FrontEnv>;
  /** Live and dead sessions by id. */
  sessions: ReadonlyMap<string, IsolatedSessionEntry>;
  /** Terminates every worker and stops the timers. */
  close(): void;
}

/** Hono environment of the front door. */
export type FrontEnv = { Variables: { forwarded: boolean; sessionId: string } };

const MAX_FORWARDED_BODY = 1024 * 1024 + 64 * 1024;
const MAX_JSON_BODY = 16 * 1024;
/** Families the front door writes itself (from its own view), not summed from workers. */
const OWN_FAMILIES = new Set([
  "netisle_sessions",
  "netisle_sessions_created_total",
  "netisle_sessions_expired_total",
  "netisle_process_memory_bytes",
]);
const MAX_FAMILIES = new Set([
  "netisle_core_lock_max_held_seconds",
  "netisle_core_timer_max_lateness_seconds",
]);

/** The default worker: `session_worker_main.ts` next to this file, as an ES module worker. */
export function defaultSessionWorker(): WorkerLike {
  return new Worker(new URL("./session_worker_main.ts", import.meta.url), {
    type: "module",
  }) as unknown as WorkerLike;
}

/** A 503 `ESESSIONDEAD` problem for session `sid`. */
export function sessionDeadResponse(sid: string, detail: string): Response {
  return new Response(
    JSON.stringify({
      type: "about:blank",
      title: "Service Unavailable",
      status: 503,
      code: SESSION_DEAD_CODE,
      detail: `session "${sid}" is dead: ${detail}`,
    }),
    { status: 503, headers: { "content-type": "application/problem+json" } },
  );
}

/**
 * Reads a body to forward (at most `max` bytes, within the body deadline:
 * 413 and 408 as the app answers them); null when the request has none.
 */
async function readForwarded(
  req: Request,
  max: number,
  timeoutMs: number,
  clock: SystemClock,
): Promise<ArrayBuffer | null> {
  if (!req.body) return null;
  const { bytes } = await readRequestBody(req, { maxBytes: max, timeoutMs, clock });
  // Exactly the body's bytes: the buffer goes to the worker as it is.
  return bytes.byteLength === bytes.buffer.byteLength
    ? bytes.buffer as ArrayBuffer
    : bytes.slice().buffer;
}

function headerList(h: Headers): [string, string][] {
  const out: [string, string][] = [];
  h.forEach((v, k) => out.push([k, v]));
  return out;
}

/**
 * Creates the front door of isolated sessions.
 *
 * @example
 * ```ts
 * const { app, close } = createIsolatedApp({ upgradeWebSocket });
 * Deno.serve(app.fetch);
 * ```
 */
export function createIsolatedApp(options: IsolatedAppOptions = {}): IsolatedApp {
  const maxSessions = options.maxSessions ?? 100;
  const bodyTimeoutMs = options.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS;
  const clock = new SystemClock();
  const deadRetention = options.deadRetentionMs ?? 10 * 60_000;
  const factory = options.workerFactory ?? defaultSessionWorker;
  const log = options.requestLog === false ? undefined : options.requestLog ?? consoleRequestLogger;
  const sessions = new Map<string, IsolatedSessionEntry>();
  const httpMetrics = new HttpMetrics();
  const retired = new Map<string, ParsedFamily>();
  const counts = { created: 0, expired: 0, crash: 0, unresponsive: 0, relayDrops: 0, starting: 0 };
  let live = 0;
  const docsApp = createApp({
    registry: new SessionRegistry({ clock: new SystemClock() }),
    requestLog: false,
  });

  const app = new Hono<FrontEnv>();
  app.use(async (c, next) => {
    const start = performance.now();
    try {
      await next();
    } finally {
      if (!c.get("forwarded")) {
        const route = routePattern(c);
        httpMetrics.record(c.req.method, route, c.res.status);
        if (log) {
          const sid = c.get("sessionId");
          try {
            log({
              method: c.req.method,
              route,
              status: c.res.status,
              durationMs: performance.now() - start,
              ...(sid ? { sessionId: sid } : {}),
            });
          } catch {
            // A failing logger must not fail the request.
          }
        }
      }
    }
  });
  if (options.corsOrigins?.length) app.use(corsMiddleware(options.corsOrigins));
  app.onError(problemOnError("the front door"));
  app.notFound(problemNotFound);

  const forget = (id: string) => {
    const e = sessions.get(id);
    if (!e) return;
    sessions.delete(id);
    if (e.diedAt === undefined) live--;
  };

  /** Starts a worker; `bind` names its session once the worker created it. */
  const startWorker = (): { worker: SessionWorker; bind(id: string): void } => {
    let entryId: string | undefined;
    const worker = new SessionWorker(factory(), {
      init: {
        t: "init",
        testHooks: options.testHooks === true,
        websocket: options.upgradeWebSocket !== undefined,
        requestLog: log !== undefined,
        idleTimeoutMs: options.idleTimeoutMs,
        sweepIntervalMs: options.sweepIntervalMs,
        egress: options.egress,
      },
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs,
      readyTimeoutMs: options.readyTimeoutMs,
      onDeath: (reason, detail) => {
        counts[reason]++;
        console.error(`netisle: session ${entryId ?? "(starting)"} ${detail}; worker terminated`);
        const e = entryId === undefined ? undefined : sessions.get(entryId);
        if (e && e.diedAt === undefined) {
          e.diedAt = Date.now();
          live--;
        }
      },
      onEnded: (reason, text) => {
        if (reason === "expired") counts.expired++;
        mergeMetrics(retired, parseMetrics(text), { countersOnly: true, omit: OWN_FAMILIES });
        if (entryId !== undefined) forget(entryId);
      },
    });
    return { worker, bind: (id) => entryId = id };
  };

  const sweepTimer = setInterval(() => {
    const now = Date.now();
    for (const e of [...sessions.values()]) {
      if (e.diedAt !== undefined && now - e.diedAt >= deadRetention) sessions.delete(e.id);
    }
  }, Math.min(60_000, Math.max(1000, deadRetention / 2)));

  app.post(
    "/v1/sessions",
    tokenAuth(options.adminToken, "creating a session needs the admin token"),
    async (c) => {
      const raw = await readForwarded(c.req.raw, MAX_JSON_BODY, bodyTimeoutMs, clock);
      const text = raw ? new TextDecoder().decode(raw) : "";
      let parsed: unknown = {};
      if (text.trim() !== "") {
        try {
          parsed = JSON.parse(text);
        } catch (err) {
          throw new HttpProblem(
            "EINVAL",
            `request body is not valid JSON: ${(err as Error).message}`,
          );
        }
      }
      validate(CreateSessionBodySchema, parsed, "request body");
      if (live + counts.starting >= maxSessions) {
        throw new NetError(
          "ENFILE",
          `session quota is full: this server holds its maximum of ${maxSessions} isolated sessions`,
        );
      }
      counts.starting++;
      const { worker, bind } = startWorker();
      try {
        await worker.ready;
        const res = await worker.request({
          method: "POST",
          url: c.req.url,
          headers: headerList(c.req.raw.headers),
          body: raw,
        });
        const bytes = res.body ? new Uint8Array(await new Response(res.body).arrayBuffer()) : null;
        c.set("forwarded", true);
        if (res.status !== 201 || !bytes) {
          worker.terminate("the session was not created");
          return new Response(bytes, { status: res.status, headers: res.headers });
        }
        const created = JSON.parse(new TextDecoder().decode(bytes)) as {
          id: string;
          token: string;
        };
        if (sessions.has(created.id)) {
          worker.terminate("duplicate session id");
          throw new HttpProblem("EINTERNAL", `session id "${created.id}" collided; try again`);
        }
        bind(created.id);
        sessions.set(created.id, { id: created.id, token: created.token, worker });
        live++;
        counts.created++;
        c.set("sessionId", created.id);
        return new Response(bytes, { status: 201, headers: res.headers });
      } catch (err) {
        worker.terminate("the session was not created");
        if (err instanceof SessionDeadError) {
          c.set("forwarded", false);
          return sessionDeadResponse("(new)", err.message);
        }
        throw err;
      } finally {
        counts.starting--;
      }
    },
  );

  app.get("/healthz", (c) =>
    c.json({
      status: "ok",
      sessions: live,
      isolation: "worker",
      deadSessions: sessions.size - live,
    }));

  app.get(
    "/metrics",
    tokenAuth(options.metricsToken, "/metrics needs the metrics token"),
    async (c) => {
      const own = new MetricsWriter();
      own.family("netisle_sessions", "gauge", "Sessions alive now.").sample(live);
      own.family("netisle_sessions_created_total", "counter", "Sessions created since start.")
        .sample(counts.created);
      own.family("netisle_sessions_expired_total", "counter", "Sessions deleted by idle expiry.")
        .sample(counts.expired);
      own.family(
        "netisle_isolated_session_deaths_total",
        "counter",
        "Session workers terminated, by reason: crash (uncaught error), unresponsive (no heartbeat).",
      ).sample(counts.crash, { reason: "crash" }).sample(counts.unresponsive, {
        reason: "unresponsive",
      });
      own.family("netisle_isolated_dead_sessions", "gauge", "Dead sessions still answering 503.")
        .sample(sessions.size - live);
      own.family(
        "netisle_isolated_relay_drops_total",
        "counter",
        "Tunnel frames dropped because the session worker fell behind.",
      ).sample(counts.relayDrops);
      const h = own.family(
        "netisle_http_requests_total",
        "counter",
        "HTTP requests by method, route pattern and status.",
      );
      for (const e of httpMetrics.entries()) {
        h.sample(e.count, { method: e.method, route: e.route, status: String(e.status) });
      }
      const mem =
        (globalThis as unknown as { process?: { memoryUsage?: () => Record<string, number> } })
          .process?.memoryUsage?.();
      if (mem) {
        const f = own.family("netisle_process_memory_bytes", "gauge", "Process memory by kind.");
        const kinds: Record<string, string> = {
          rss: "rss",
          heapTotal: "heap_total",
          heapUsed: "heap_used",
          external: "external",
          arrayBuffers: "array_buffers",
        };
        for (const k in kinds) if (typeof mem[k] === "number") f.sample(mem[k], { kind: kinds[k] });
      }
      const total = parseMetrics(own.toString());
      mergeMetrics(total, retired);
      const texts = await Promise.all(
        [...sessions.values()].filter((e) => e.diedAt === undefined).map((e) => e.worker.metrics()),
      );
      for (const t of texts) {
        if (t !== undefined) {
          mergeMetrics(total, parseMetrics(t), { omit: OWN_FAMILIES, maxFamilies: MAX_FAMILIES });
        }
      }
      return c.body(renderParsedMetrics(total), 200, { "content-type": PROMETHEUS_CONTENT_TYPE });
    },
  );

  app.get("/openapi.json", (c) => docsApp.fetch(c.req.raw));
  app.get("/docs", (c) => docsApp.fetch(c.req.raw));

  /** Finds the session and checks its token (constant time); 400/404/401 otherwise. */
  const authenticate = (c: Context<FrontEnv>): IsolatedSessionEntry => {
    const { sid } = validate(SessionParamsSchema, { sid: c.req.param("sid") }, "path");
    const entry = sessions.get(sid);
    if (!entry) throw new HttpProblem("ENOTFOUND", `no session with id "${sid}"`);
    let given = bearerToken(c.req.header("authorization"));
    if (given === undefined && c.req.header("upgrade")?.toLowerCase() === "websocket") {
      const q = c.req.query("token");
      if (q !== undefined && q.length <= 256) given = q;
      // Wisp clients take only a URL: the token may be its last segment (`/wisp/<token>/`).
      const w = /^\/v1\/sessions\/[^/]+\/wisp\/([^/]{1,256})\/$/.exec(c.req.path);
      if (given === undefined && w) given = w[1];
    }
    if (given === undefined) {
      throw unauthorized(`session "${sid}" needs its token (Authorization: Bearer <token>)`);
    }
    if (!constantTimeEqual(given, entry.token)) {
      throw unauthorized(`wrong token for session "${sid}"`);
    }
    c.set("sessionId", sid);
    return entry;
  };

  if (options.testHooks) {
    app.post("/v1/sessions/:sid/_test/:action", (c) => {
      const entry = authenticate(c);
      const action = c.req.param("action");
      if (action !== "spin" && action !== "crash") {
        throw new HttpProblem("EINVAL", `unknown test hook "${action}": use spin or crash`);
      }
      if (entry.diedAt !== undefined) {
        return sessionDeadResponse(entry.id, entry.worker.deathDetail);
      }
      entry.worker.testHook(action);
      return c.json({ hook: action }, 202);
    });
  }

  const forward = async (c: Context<FrontEnv>): Promise<Response> => {
    const entry = authenticate(c);
    if (entry.diedAt !== undefined) {
      if (c.req.method === "DELETE" && c.req.path === `/v1/sessions/${entry.id}`) {
        sessions.delete(entry.id);
        return c.body(null, 204);
      }
      return sessionDeadResponse(entry.id, entry.worker.deathDetail);
    }
    const req = c.req.raw;
    const body = req.method === "GET" || req.method === "HEAD"
      ? null
      : await readForwarded(req, MAX_FORWARDED_BODY, bodyTimeoutMs, clock);
    const isUpgrade = c.req.header("upgrade")?.toLowerCase() === "websocket" &&
      options.upgradeWebSocket !== undefined;
    const channel = isUpgrade ? new MessageChannel() : undefined;
    let res;
    try {
      res = await entry.worker.request({
        method: req.method,
        url: req.url,
        headers: headerList(req.headers),
        body,
        port: channel?.port2,
        signal: req.signal,
      });
    } catch (err) {
      channel?.port1.close();
      if (err instanceof SessionDeadError && entry.worker.state === "ended") {
        throw new HttpProblem("ENOTFOUND", `no session with id "${entry.id}" (it ended)`);
      }
      if (err instanceof SessionDeadError) return sessionDeadResponse(entry.id, err.message);
      throw err;
    }
    c.set("forwarded", true);
    if (
      req.method === "DELETE" && res.status === 204 && c.req.path === `/v1/sessions/${entry.id}`
    ) {
      // Gone for new requests at once; the worker still sends its last metrics and ends.
      forget(entry.id);
      const w = entry.worker;
      setTimeout(() => w.terminate(), 5000);
    }
    if (res.upgrade && channel && options.upgradeWebSocket) {
      let upgraded;
      try {
        upgraded = options.upgradeWebSocket(req);
      } catch (err) {
        channel.port1.postMessage({ t: "close", code: 1006, reason: "upgrade failed" });
        channel.port1.close();
        throw err;
      }
      const untrack = entry.worker.trackRelay(() => kill());
      const kill = relayWebSocket(upgraded.socket as unknown as RelaySocket, channel.port1, {
        overflow: c.req.path.endsWith("/tunnel") ? "drop" : "close",
        onDrop: () => counts.relayDrops++,
      });
      upgraded.socket.addEventListener("close", () => untrack());
      return upgraded.response;
    }
    channel?.port1.close();
    return new Response(res.body, { status: res.status, headers: res.headers });
  };
  app.all("/v1/sessions/:sid", forward);
  app.all("/v1/sessions/:sid/*", forward);

  return {
    app,
    sessions,
    close() {
      clearInterval(sweepTimer);
      for (const e of sessions.values()) e.worker.terminate("the server is shutting down");
      sessions.clear();
      live = 0;
    },
  };
}
