/**
 * The Hono app: the HTTP API of netisle. Runtime-neutral: the adapters in
 * `serve_*.ts` give it a way to upgrade a request to a WebSocket.
 *
 * The composition point: an `OpenAPIHono` (`@hono/zod-openapi`) that mounts
 * the route modules (`session_routes.ts`, `socket_routes.ts`), whose routes
 * also make `/openapi.json`; validation failures and errors become
 * problem+json in the one `onError` of `problem.ts`.
 *
 * @module
 */

import { OpenAPIHono } from "@hono/zod-openapi";
import { type Clock, type SessionRegistry, SystemClock } from "../session/mod.ts";
import type { RouteContext } from "./api_route.ts";
import type { AppEnv, WebSocketUpgrader } from "./app_env.ts";
import { HttpMetrics, type MetricsCollector } from "./metrics.ts";
import { openApiDocument, registerOpenApiComponents } from "./openapi.ts";
import { problemNotFound, problemOnError } from "./problem.ts";
import { DEFAULT_BODY_TIMEOUT_MS } from "./request_body.ts";
import {
  consoleRequestLogger,
  type RequestLogger,
  requestObserver,
  RequestRecorder,
} from "./request_log.ts";
import { corsMiddleware } from "./cors.ts";
import { serviceRoutes, sessionRoutes } from "./session_routes.ts";
import { socketRoutes } from "./socket_routes.ts";
import { socketFastPath } from "./socket_fast_path.ts";
import type { SocketStreamOptions } from "./socket_stream.ts";
import { validationHook } from "./validation.ts";
import { wispRoutes } from "./wisp/wisp_routes.ts";
import type { WispOptions } from "./wisp/wisp_link.ts";
import {
  shareHostMatcher,
  shareLinkMiddleware,
  type ShareOptions,
  ShareRegistry,
  shareRoutes,
} from "./share/share_routes.ts";

// The runtime adapters import the upgrade's type from here.
export type { WebSocketUpgrader } from "./app_env.ts";

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
  /** The clock of body deadlines (default the system clock; tests pass a manual one). */
  clock?: Clock;
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
  /** Tuning and limits of Wisp connections (`GET /v1/sessions/:sid/wisp/`). */
  wisp?: WispOptions;
  /** Share links: the share domain (host-based links) and limits. */
  shares?: ShareOptions;
  /**
   * Whether the common requests of `send` and `recv` take the lean path
   * (`socket_fast_path.ts`; default true). It answers exactly as the routes
   * do; `false` sends every request through Hono (tests compare the two).
   * Off anyway with CORS origins.
   */
  socketFastPath?: boolean;
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
export function createApp(options: AppOptions): OpenAPIHono<AppEnv> {
  const ctx: RouteContext = {
    registry: options.registry,
    adminToken: options.adminToken,
    metricsToken: options.metricsToken,
    maxJsonBodyBytes: options.maxJsonBodyBytes ?? 16 * 1024,
    bodyTimeoutMs: options.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS,
    clock: options.clock ?? new SystemClock(),
  };
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const httpMetrics = options.httpMetrics ?? new HttpMetrics();
  const recorder = new RequestRecorder({
    log: options.requestLog ?? consoleRequestLogger,
    metrics: httpMetrics,
  });
  app.use(requestObserver(recorder));
  app.onError(problemOnError("request"));
  app.notFound(problemNotFound);
  registerOpenApiComponents(app);
  // Share links answer before CORS and the API: their requests belong to the app behind them.
  const shares = new ShareRegistry({
    clock: ctx.clock,
    maxPerSession: options.shares?.maxPerSession,
    maxShares: options.shares?.maxShares,
  });
  app.use(shareLinkMiddleware(shares, {
    domain: options.shares?.domain,
    upgradeWebSocket: options.upgradeWebSocket,
    proxy: options.shares?.proxy,
  }));

  if (options.corsOrigins?.length) app.use(corsMiddleware(options.corsOrigins));

  app.route("/", sessionRoutes(ctx, { upgradeWebSocket: options.upgradeWebSocket }));
  app.route(
    "/",
    socketRoutes(ctx, { upgradeWebSocket: options.upgradeWebSocket, stream: options.stream }),
  );
  app.route(
    "/",
    wispRoutes(ctx, { upgradeWebSocket: options.upgradeWebSocket, wisp: options.wisp }),
  );
  app.route("/", shareRoutes(ctx, shares, options.shares));
  app.route(
    "/",
    serviceRoutes(ctx, {
      httpMetrics,
      metricsCollectors: options.metricsCollectors,
      document: () => openApiDocument(app),
    }),
  );
  if (options.socketFastPath !== false && !options.corsOrigins?.length) {
    // The hot socket routes' common requests, answered before Hono's dispatch (as Hono would).
    const fast = socketFastPath({
      registry: ctx.registry,
      bodyTimeoutMs: ctx.bodyTimeoutMs,
      clock: ctx.clock,
      recorder,
      mayBeShare: shareHostMatcher(options.shares?.domain),
    });
    const hono = app.fetch;
    app.fetch = (req, env, executionCtx) => fast(req) ?? hono(req, env, executionCtx);
  }
  return app;
}
