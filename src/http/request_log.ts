/**
 * The request log and HTTP request counters: one Hono middleware that times
 * every request and, once it is answered, writes one log line and counts it
 * for /metrics.
 *
 * A line names the route *pattern* (`/v1/sessions/:sid`), never the raw path
 * or query, so tokens (`?token=`) and ids in paths never reach the log; the
 * session id appears only once the request proved it holds the session's
 * token. For a streamed response (a pcap, a long-poll) the duration is the
 * time to the response headers.
 *
 * @module
 */

import type { Context, MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { HttpMetrics } from "./metrics.ts";

/** One answered request. */
export interface RequestLogEntry {
  /** Request method. */
  method: string;
  /** Route pattern that answered, or `(unmatched)` when no route matched. */
  route: string;
  /** Response status. */
  status: number;
  /** Milliseconds from the request to its response (headers, for a streamed body). */
  durationMs: number;
  /** Id of the session the request authenticated for, if any. */
  sessionId?: string;
}

/** Receives one entry per request. Must not throw. */
export type RequestLogger = (entry: RequestLogEntry) => void;

/** Route label of requests that matched no route (a bounded stand-in for the raw path). */
export const UNMATCHED_ROUTE = "(unmatched)";

/**
 * Formats an entry as one logfmt-style line.
 *
 * @example
 * ```ts
 * formatRequestLogLine({ method: "GET", route: "/healthz", status: 200, durationMs: 0.42 });
 * // "http method=GET route=/healthz status=200 ms=0.4"
 * ```
 */
export function formatRequestLogLine(entry: RequestLogEntry): string {
  let line = `http method=${entry.method} route=${entry.route} status=${entry.status} ms=${
    entry.durationMs.toFixed(1)
  }`;
  if (entry.sessionId !== undefined) line += ` session=${entry.sessionId}`;
  return line;
}

/**
 * The default logger: {@linkcode formatRequestLogLine} to `console.log`.
 *
 * @example
 * ```ts
 * createApp({ registry, requestLog: consoleRequestLogger });
 * ```
 */
export const consoleRequestLogger: RequestLogger = (entry) => {
  console.log(formatRequestLogLine(entry));
};

/** The route pattern that answered `c`, or {@linkcode UNMATCHED_ROUTE}. Call after `next()`. */
export function routePattern(c: Context): string {
  // A route that answers from a middleware (share links) names itself.
  const label = c.get("routeLabel" as never) as unknown;
  if (typeof label === "string") return label;
  let p = "";
  try {
    p = routePath(c, -1);
  } catch {
    // No match information (the request never reached the router).
  }
  return p === "" || p === "*" || p === "/*" ? UNMATCHED_ROUTE : p;
}

/** Options of {@linkcode requestObserver} and {@linkcode RequestRecorder}. */
export interface RequestObserverOptions {
  /** Where lines go; `false` or omitted writes none. */
  log?: RequestLogger | false;
  /** Where requests are counted. */
  metrics?: HttpMetrics;
  /** Milliseconds clock; default `performance.now`. */
  now?: () => number;
}

/**
 * Counts and logs answered requests: what {@linkcode requestObserver} does
 * for Hono's routes, also for code that answers without Hono (the lean
 * socket path), so that both write the same entries.
 *
 * @example
 * ```ts
 * const recorder = new RequestRecorder({ log: consoleRequestLogger, metrics: new HttpMetrics() });
 * const start = recorder.now();
 * // ... answer the request ...
 * recorder.record("POST", "/v1/sessions/:sid/sockets/:id/send", 200, start, session.id);
 * ```
 */
export class RequestRecorder {
  readonly #now: () => number;
  readonly #log: RequestLogger | undefined;
  readonly #metrics: HttpMetrics | undefined;

  /** A recorder writing to `options.log` and counting in `options.metrics`. */
  constructor(options: RequestObserverOptions) {
    this.#now = options.now ?? (() => performance.now());
    this.#log = options.log || undefined;
    this.#metrics = options.metrics;
  }

  /**
   * The clock's time now: pass it to {@linkcode RequestRecorder.record} as
   * the start (0 without a logger: only log entries have a duration).
   */
  now(): number {
    return this.#log === undefined ? 0 : this.#now();
  }

  /** Counts one answered request and writes its entry (a failing logger is ignored). */
  record(method: string, route: string, status: number, start: number, sessionId?: string): void {
    this.#metrics?.record(method, route, status);
    const log = this.#log;
    if (!log) return;
    const entry: RequestLogEntry = { method, route, status, durationMs: this.#now() - start };
    if (sessionId !== undefined) entry.sessionId = sessionId;
    try {
      log(entry);
    } catch {
      // A failing logger must not fail the request.
    }
  }
}

/**
 * A middleware that logs and counts every request. Register it first
 * (`app.use(requestObserver(...))`) so it sees the final status of every
 * route, errors and 404s included.
 *
 * @example
 * ```ts
 * const metrics = new HttpMetrics();
 * app.use(requestObserver({ log: consoleRequestLogger, metrics }));
 * ```
 */
export function requestObserver(
  options: RequestObserverOptions | RequestRecorder,
): MiddlewareHandler {
  const recorder = options instanceof RequestRecorder ? options : new RequestRecorder(options);
  return async (c, next) => {
    const start = recorder.now();
    try {
      await next();
    } finally {
      const session = c.get("session") as { id?: unknown } | undefined;
      recorder.record(
        c.req.method,
        routePattern(c),
        c.res.status,
        start,
        typeof session?.id === "string" ? session.id : undefined,
      );
    }
  };
}
