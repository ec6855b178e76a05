/**
 * CORS for browser programs (Fetch standard §3.2, "CORS protocol"): with a
 * list of allowed origins, pages on those origins may call the API, preflight
 * included, and read the `Netisle-*` response headers; WebSocket upgrades
 * (the tunnel, socket streams), which CORS does not cover, are refused with
 * 403 `EACCES` when their `Origin` is not on the list (RFC 6455 §10.2). A
 * request without `Origin` (curl, the CLI, the SDK outside a browser) is not
 * a page's and passes. Without a list, nothing changes: no CORS headers and
 * no Origin check.
 *
 * Built on `hono/cors`. Tokens travel as `Authorization: Bearer` (or
 * `?token=` for WebSockets), never as cookies, so credentials stay off.
 *
 * @module
 */

import { cors } from "hono/cors";
import type { MiddlewareHandler } from "hono";
import { HttpProblem } from "./problem.ts";
import {
  EOF_HEADER,
  PEER_ADDRESS_HEADER,
  PEER_PORT_HEADER,
  TRUNCATED_HEADER,
} from "./socket_routes.ts";

/** Response headers a page may read: the socket API's own and the ones the API documents. */
export const CORS_EXPOSED_HEADERS: readonly string[] = [
  EOF_HEADER,
  PEER_ADDRESS_HEADER,
  PEER_PORT_HEADER,
  TRUNCATED_HEADER,
  "Location",
  "WWW-Authenticate",
];

/** How long a browser may cache a preflight answer (seconds). */
export const CORS_MAX_AGE_SECONDS = 600;

/**
 * Parses a comma-separated list of origins (`NETISLE_CORS_ORIGINS`):
 * `scheme://host[:port]` each (a trailing `/` is dropped), or `*` for any
 * origin. Returns the origins, or a message that names the bad entry.
 *
 * @example
 * ```ts
 * parseCorsOrigins("https://app.example, http://localhost:5173");
 * // ["https://app.example", "http://localhost:5173"]
 * ```
 */
export function parseCorsOrigins(text: string): string[] | string {
  const out: string[] = [];
  for (const raw of text.split(",")) {
    const entry = raw.trim();
    if (entry === "") continue;
    if (entry === "*") {
      out.push("*");
      continue;
    }
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      return `"${entry}" is not an origin (scheme://host[:port], or *)`;
    }
    if (url.origin === "null" || (url.pathname !== "/" && url.pathname !== "") || url.search) {
      return `"${entry}" is not an origin: give scheme://host[:port] without a path`;
    }
    out.push(url.origin);
  }
  if (out.length === 0) return "the list is empty: give origins separated by commas, or *";
  return out;
}

/**
 * Whether `origin` (an `Origin` header) is allowed by `origins`.
 *
 * @example
 * ```ts
 * originAllowed(["https://app.example"], "https://evil.example"); // false
 * ```
 */
export function originAllowed(origins: readonly string[], origin: string): boolean {
  return origins.includes("*") || origins.includes(origin);
}

/**
 * The CORS middleware of the app: CORS headers and preflight answers for
 * `origins` on every route, and the `Origin` check of WebSocket upgrades.
 *
 * @example
 * ```ts
 * app.use(corsMiddleware(["https://app.example"]));
 * ```
 */
export function corsMiddleware(origins: readonly string[]): MiddlewareHandler {
  const any = origins.includes("*");
  const headers = cors({
    origin: any ? "*" : [...origins],
    allowMethods: ["GET", "HEAD", "POST", "DELETE"],
    allowHeaders: ["Authorization", "Content-Type"],
    exposeHeaders: [...CORS_EXPOSED_HEADERS],
    maxAge: CORS_MAX_AGE_SECONDS,
  });
  return async (c, next) => {
    if (c.req.header("upgrade")?.toLowerCase() === "websocket") {
      // CORS does not apply to WebSockets: a browser opens one from any page and sends
      // its Origin; the server decides. (The 101 response must also stay untouched.)
      const origin = c.req.header("origin");
      if (origin !== undefined && !originAllowed(origins, origin)) {
        throw new HttpProblem(
          "EACCES",
          `WebSocket from origin "${origin}" refused: it is not in NETISLE_CORS_ORIGINS`,
        );
      }
      await next();
      return;
    }
    return await headers(c, next);
  };
}
