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

/** Options of {@linkcode requestObserver}. */
export interface RequestObserverOptions {
  /** Where lines go; `false` or omitted writes none. */
  log?: RequestLogger | false;
  /** Where requests are counted. */
  metrics?: HttpMetrics;
  /** Milliseconds clock; default `performance.now`. */
  now?: () => number;
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
export function requestObserver(options: RequestObserverOptions): MiddlewareHandler {
  const now = options.now ?? (() => performance.now());
  const log = options.log || undefined;
  const metrics = options.metrics;
  return async (c, next) => {
    const start = now();
    try {
      await next();
    } finally {
      const route = routePattern(c);
      const status = c.res.status;
      metrics?.record(c.req.method, route, status);
      if (log) {
        const session = c.get("session") as { id?: unknown } | undefined;
        const entry: RequestLogEntry = {
          method: c.req.method,
          route,
          status,
          durationMs: now() - start,
        };
        if (typeof session?.id === "string") entry.sessionId = session.id;
        try {
          log(entry);
        } catch {
          // A failing logger must not fail the request.
        }
      }
    }
  };
}
