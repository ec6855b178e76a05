/**
 * Who may call a route ({@linkcode RouteAuth}): the middlewares that check it
 * and the OpenAPI `security` that documents it, side by side so the two
 * cannot disagree.
 *
 * @module
 */

import type { MiddlewareHandler } from "hono";
import type { SessionRegistry } from "../session/mod.ts";
import type { AppEnv } from "./app_env.ts";
import { bearerToken, constantTimeEqual } from "./auth.ts";
import { HttpProblem } from "./problem.ts";
import { SESSION_ID_PATTERN, SessionParamsSchema, TunnelQuerySchema } from "./schemas.ts";
import { validate } from "./validation.ts";

/**
 * Who may call a route: anyone, the admin or metrics token holder (when
 * one is configured), or the session's token holder — as a bearer header, or for
 * WebSocket routes also as `?token=` (browsers cannot set headers there).
 */
export type RouteAuth = "none" | "admin" | "metrics" | "session" | "session-or-query";

/** What the auth middlewares need: the sessions and the configured tokens. */
export interface AuthContext {
  /** The sessions (for session authentication). */
  registry: SessionRegistry;
  /** The admin token, when creating sessions needs one. */
  adminToken?: string;
  /** The metrics token, when `GET /metrics` needs one. */
  metricsToken?: string;
}

/**
 * The OpenAPI `security` of a route (the schemes are declared in `openapi.ts`).
 *
 * @example
 * ```ts
 * securityOf("session-or-query"); // [{ sessionToken: [] }, { sessionTokenQuery: [] }]
 * ```
 */
export function securityOf(auth: RouteAuth): Record<string, string[]>[] {
  switch (auth) {
    case "admin":
      return [{ adminToken: [] }, {}];
    case "metrics":
      return [{ metricsToken: [] }, {}];
    case "session":
      return [{ sessionToken: [] }];
    case "session-or-query":
      return [{ sessionToken: [] }, { sessionTokenQuery: [] }];
    case "none":
      return [];
  }
}

/**
 * The middleware that enforces `auth` (none for `"none"`).
 *
 * @example
 * ```ts
 * app.get("/metrics", ...authMiddleware("metrics", { registry, metricsToken }), handler);
 * ```
 */
export function authMiddleware(auth: RouteAuth, ctx: AuthContext): MiddlewareHandler<AppEnv>[] {
  switch (auth) {
    case "admin":
      return [tokenAuth(ctx.adminToken, "creating a session needs the admin token")];
    case "metrics":
      return [tokenAuth(ctx.metricsToken, "/metrics needs the metrics token")];
    case "session":
      return [sessionAuth(ctx.registry, false)];
    case "session-or-query":
      return [sessionAuth(ctx.registry, true)];
    case "none":
      return [];
  }
}

/**
 * Authenticates a session route: validates `:sid`, finds the session (404)
 * and compares the bearer token (or `?token=` when allowed) in constant
 * time (401). Sets `c.var.session`.
 *
 * @example
 * ```ts
 * app.get("/v1/sessions/:sid", sessionAuth(registry, false), (c) => c.json(c.var.session.describe()));
 * ```
 */
export function sessionAuth(
  registry: SessionRegistry,
  allowQueryToken: boolean,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const param = c.req.param("sid");
    // zod only for an id of another shape: it words the 400.
    const sid = param !== undefined && SESSION_ID_PATTERN.test(param)
      ? param
      : validate(SessionParamsSchema, { sid: param }, "path").sid;
    const session = registry.get(sid);
    if (!session) throw new HttpProblem("ENOTFOUND", `no session with id "${sid}"`);
    let given = bearerToken(c.req.header("authorization"));
    if (given === undefined && allowQueryToken) {
      given = validate(TunnelQuerySchema, c.req.query(), "query").token;
    }
    if (given === undefined) {
      throw unauthorized(`session "${sid}" needs its token (Authorization: Bearer <token>)`);
    }
    if (!constantTimeEqual(given, session.token)) {
      throw unauthorized(`wrong token for session "${sid}"`);
    }
    c.set("session", session);
    await next();
  };
}

/**
 * Requires `Authorization: Bearer <token>` when `token` is configured (401 with `what`).
 *
 * @example
 * ```ts
 * app.post("/v1/sessions", tokenAuth(adminToken, "creating a session needs the admin token"), h);
 * ```
 */
export function tokenAuth(token: string | undefined, what: string): MiddlewareHandler {
  return async (c, next) => {
    if (token !== undefined) {
      const given = bearerToken(c.req.header("authorization"));
      if (given === undefined || !constantTimeEqual(given, token)) {
        throw unauthorized(`${what} (Authorization: Bearer ...)`);
      }
    }
    await next();
  };
}

/**
 * A 401 problem with the `WWW-Authenticate` challenge of RFC 6750 (§3).
 *
 * @example
 * ```ts
 * throw unauthorized(`wrong token for session "${sid}"`);
 * ```
 */
export function unauthorized(detail: string): HttpProblem {
  return new HttpProblem("EUNAUTHORIZED", detail, {
    headers: { "www-authenticate": 'Bearer realm="netisle"' },
  });
}
