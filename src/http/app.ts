/**
 * The Hono app: the HTTP API of netisle. Runtime-neutral: the adapters in
 * `serve_*.ts` give it a way to upgrade a request to a WebSocket.
 *
 * The composition point: the route tables (`session_routes.ts`,
 * `socket_routes.ts`) are registered here and the same tables build
 * `/openapi.json`; errors become problem+json in the one `onError` below.
 *
 * @module
 */

import { Hono } from "hono";
import type { SessionRegistry } from "../session/mod.ts";
import { NetError } from "../errors/mod.ts";
import type { TunnelSocket } from "../session/tunnel_server.ts";
import { HttpProblem, problemResponse } from "./problem.ts";
import { HttpMetrics, type MetricsCollector } from "./metrics.ts";
import { consoleRequestLogger, type RequestLogger, requestObserver } from "./request_log.ts";
import { type AnyRoute, type AppEnv, registerRoutes } from "./route_table.ts";
import { corsMiddleware } from "./cors.ts";
import { serviceRoutes, sessionRoutes } from "./session_routes.ts";
import { socketRoutes } from "./socket_routes.ts";
import type { SocketStreamOptions } from "./socket_stream.ts";

/**
 * Upgrades a request to a WebSocket, as each runtime does it
 * (`Deno.upgradeWebSocket`, Bun's `server.upgrade`, workerd's `WebSocketPair`).
 */
export type WebSocketUpgrader = (req: Request) => { socket: TunnelSocket; response: Response };

/** Options of {@linkcode createApp}. */
export interface AppOptions {
  /** The sessions this app serves. */
  registry: SessionRegistry;
  /** The runtime's WebSocket upgrade; without it the tunnel route answers 501. */
  upgradeWebSocket?: WebSocketUpgrader;
  /** When set, `POST /v1/sessions` requires `Authorization: Bearer <adminToken>`. */
  adminToken?: string;
  /** Largest JSON body accepted, in bytes. */
  maxJsonBodyBytes?: number;
  /** How long a request body may take to arrive before 408 `EBODYTIMEOUT` (default 30 s). */
  bodyTimeoutMs?: number;
  /** When set, `GET /metrics` requires `Authorization: Bearer <metricsToken>`. */
  metricsToken?: string;
  /** Extra families for `GET /metrics` (components add their own gauges and counters). */
  metricsCollectors?: readonly MetricsCollector[];
  /** One entry per request; default {@linkcode consoleRequestLogger}; `false` disables. */
  requestLog?: RequestLogger | false;
  /** Tuning of socket WebSocket streams (`GET .../sockets/:id/stream`). */
  stream?: SocketStreamOptions;
  /** Where requests are counted (default: a new one); lets an embedder render the counts. */
  httpMetrics?: HttpMetrics;
  /**
   * Origins whose pages may call the API (CORS, `*` for any); WebSocket
   * upgrades from other origins answer 403. Default: no CORS headers.
   */
  corsOrigins?: readonly string[];
}

/**
 * The route table of the app: every route with its schemas, used both to
 * register the routes and to build `/openapi.json`.
 *
 * @example
 * ```ts
 * const routes = apiRoutes({ registry });
 * routes.map((r) => `${r.method} ${r.path}`);
 * ```
 */
export function apiRoutes(
  options: AppOptions,
  httpMetrics: HttpMetrics = new HttpMetrics(),
): AnyRoute[] {
  const routes: AnyRoute[] = [
    ...sessionRoutes({ registry: options.registry, upgradeWebSocket: options.upgradeWebSocket }),
    ...socketRoutes({ upgradeWebSocket: options.upgradeWebSocket, stream: options.stream }),
    ...serviceRoutes({
      registry: options.registry,
      httpMetrics,
      metricsCollectors: options.metricsCollectors,
      allRoutes: () => routes,
    }),
  ];
  return routes;
}

/**
 * Creates the HTTP API.
 *
 * @example
 * ```ts
 * const app = createApp({ registry: new SessionRegistry({ clock: new SystemClock() }) });
 * const res = await app.request("/v1/sessions", { method: "POST" });
 * ```
 */
export function createApp(options: AppOptions): Hono<AppEnv> {
  const { registry } = options;
  const maxJson = options.maxJsonBodyBytes ?? 16 * 1024;
  const app = new Hono<AppEnv>();
  const httpMetrics = options.httpMetrics ?? new HttpMetrics();
  app.use(
    requestObserver({ log: options.requestLog ?? consoleRequestLogger, metrics: httpMetrics }),
  );

  if (options.corsOrigins?.length) app.use(corsMiddleware(options.corsOrigins));

  app.onError((err) => {
    if (err instanceof HttpProblem) {
      return problemResponse(err.code, err.message, { issues: err.issues, headers: err.headers });
    }
    if (err instanceof NetError) return problemResponse(err.code, err.message);
    console.error("netisle: unhandled error in request:", err);
    return problemResponse("EINTERNAL", "internal error; see the server log");
  });
  app.notFound((c) => problemResponse("ENOTFOUND", `no route for ${c.req.method} ${c.req.path}`));

  registerRoutes(app, apiRoutes(options, httpMetrics), {
    registry,
    adminToken: options.adminToken,
    metricsToken: options.metricsToken,
    maxJsonBodyBytes: maxJson,
    bodyTimeoutMs: options.bodyTimeoutMs,
  });
  return app;
}
