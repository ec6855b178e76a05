/**
 * Routes as data: each route of the HTTP API is one {@linkcode RouteDef} —
 * method, path, authentication, the zod schemas of its path parameters,
 * query and body, its responses and error codes, and its handler. The same
 * table registers the routes with Hono ({@linkcode registerRoutes}) and
 * builds the OpenAPI document (`openapi.ts`), so the two cannot drift.
 *
 * Also here: the pieces every route shares — `validate()` (a 400 naming the
 * field), JSON body reading, bearer-token authentication of session routes.
 *
 * @module
 */

import type { Context, Hono, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { z } from "zod";
import type { Session, SessionRegistry } from "../session/mod.ts";
import { bearerToken, constantTimeEqual } from "./auth.ts";
import { type HttpErrorCode, HttpProblem, problemResponse } from "./problem.ts";
import { SessionParamsSchema, TunnelQuerySchema } from "./schemas.ts";

/** Hono environment of the app: session routes find their session here. */
export type AppEnv = { Variables: { session: Session } };

/**
 * Who may call a route: anyone, the admin or metrics token holder (when
 * one is configured), or the session's token holder — as a bearer header, or for
 * WebSocket routes also as `?token=` (browsers cannot set headers there).
 */
export type RouteAuth = "none" | "admin" | "metrics" | "session" | "session-or-query";

/** One response of a route, for the document. */
export interface RouteResponse {
  /** What the response means. */
  description: string;
  /** Schema of a JSON body. */
  json?: z.ZodType;
  /** Content type of a non-JSON body (e.g. `application/octet-stream`). */
  contentType?: string;
  /** Response headers: name → description. */
  headers?: Record<string, string>;
}

/** Type of a parsed part of the input: the schema's output, or undefined without one. */
export type Parsed<T> = T extends z.ZodType ? z.output<T> : undefined;

/** What a handler receives, already validated. */
export interface RouteInput<P, Q, B> {
  /** Path parameters. */
  params: Parsed<P>;
  /** Query parameters. */
  query: Parsed<Q>;
  /** The JSON body (an empty body is `{}`). */
  body: Parsed<B>;
  /** The raw body of a route with {@linkcode RouteDef.binaryBody}; empty otherwise. */
  bytes: Uint8Array;
}

/**
 * One route. `P`, `Q` and `B` are the zod schemas of the path parameters,
 * query and JSON body; the handler receives their parsed values.
 */
export interface RouteDef<
  P extends z.ZodType | undefined = z.ZodType | undefined,
  Q extends z.ZodType | undefined = z.ZodType | undefined,
  B extends z.ZodType | undefined = z.ZodType | undefined,
> {
  /** Unique name (OpenAPI `operationId`). */
  operationId: string;
  /** HTTP method. */
  method: "GET" | "POST" | "DELETE";
  /** Hono path (`/v1/sessions/:sid`). */
  path: string;
  /** One line for the document. */
  summary: string;
  /** Longer text for the document (Markdown). */
  description?: string;
  /** Document groups. */
  tags: string[];
  /** Who may call it. */
  auth: RouteAuth;
  /** Path parameters (a `z.strictObject`). */
  params?: P;
  /** Query parameters (a `z.strictObject` of strings or coerced values). */
  query?: Q;
  /** JSON body; an empty body parses as `{}`. */
  body?: B;
  /** An `application/octet-stream` body of at most this many bytes, in `input.bytes`. */
  binaryBody?: { maxBytes: number };
  /** Largest JSON body in bytes (default: the app's JSON limit). */
  maxJsonBytes?: number;
  /** Whether the route is a WebSocket upgrade (documented as `x-websocket`). */
  websocket?: boolean;
  /** Success responses by status. */
  responses: Record<number, RouteResponse>;
  /** Error codes the route can answer with (auth and validation codes are added). */
  errors: HttpErrorCode[];
  /** Answers a validated request. */
  handler(
    c: Context<AppEnv>,
    input: RouteInput<P, Q, B>,
  ): Response | Promise<Response>;
}

/** A route of any schemas, as the table stores it. */
// deno-lint-ignore no-explicit-any
export type AnyRoute = RouteDef<any, any, any>;

/**
 * Declares a route, inferring the handler's input types from its schemas.
 *
 * @example
 * ```ts
 * const health = defineRoute({
 *   operationId: "health", method: "GET", path: "/healthz", summary: "Liveness",
 *   tags: ["service"], auth: "none", responses: { 200: { description: "ok" } }, errors: [],
 *   handler: (c) => c.json({ status: "ok" }),
 * });
 * ```
 */
export function defineRoute<
  P extends z.ZodType | undefined = undefined,
  Q extends z.ZodType | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
>(def: RouteDef<P, Q, B>): AnyRoute {
  return def as AnyRoute;
}

/** The error codes a route can answer with: its own plus those its auth and input imply. */
export function routeErrorCodes(route: AnyRoute): HttpErrorCode[] {
  const codes = new Set<HttpErrorCode>();
  if (route.params || route.query || route.body || route.auth !== "none") codes.add("EINVAL");
  if (route.auth !== "none") codes.add("EUNAUTHORIZED");
  if (route.auth === "session" || route.auth === "session-or-query") codes.add("ENOTFOUND");
  if (route.body || route.binaryBody) codes.add("ETOOLARGE").add("EBODYTIMEOUT");
  for (const c of route.errors) codes.add(c);
  return [...codes];
}

/** What {@linkcode registerRoutes} needs from the app. */
export interface RouteContext {
  /** The sessions (for session authentication). */
  registry: SessionRegistry;
  /** The admin token, when creating sessions needs one. */
  adminToken?: string;
  /** The metrics token, when `GET /metrics` needs one. */
  metricsToken?: string;
  /** Default largest JSON body, in bytes. */
  maxJsonBodyBytes: number;
  /** How long a request body may take to arrive (default {@linkcode DEFAULT_BODY_TIMEOUT_MS}). */
  bodyTimeoutMs?: number;
}

/** Default time a request body may take to arrive: 30 s (at least 35 KB/s for a 1 MiB send). */
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;

/**
 * Bounds how long a request body may take to arrive, counted from when the
 * route starts reading: past `ms`, reading it fails with 408 `EBODYTIMEOUT`
 * and the body is cancelled, so a client that trickles a body cannot hold a
 * request open forever (Deno.serve has no such timeout of its own).
 */
export function bodyDeadline(ms: number): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const raw = c.req.raw;
    if (!raw.body) return await next();
    const reader = raw.body.getReader();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new HttpProblem("EBODYTIMEOUT", `the request body did not arrive within ${ms} ms`),
          ),
        ms,
      );
    });
    expired.catch(() => {});
    const body = new ReadableStream<Uint8Array>({
      async pull(ctrl) {
        try {
          const r = await Promise.race([reader.read(), expired]);
          if (r.done) {
            clearTimeout(timer);
            ctrl.close();
          } else ctrl.enqueue(r.value);
        } catch (err) {
          clearTimeout(timer);
          reader.cancel().catch(() => {});
          ctrl.error(err);
        }
      },
      cancel(reason) {
        clearTimeout(timer);
        return reader.cancel(reason);
      },
    });
    c.req.raw = new Request(raw, { body, duplex: "half" } as RequestInit);
    try {
      await next();
    } finally {
      clearTimeout(timer);
    }
  };
}

/**
 * Registers every route of `routes` on `app`: authentication, then path,
 * query and body validation (400 naming the field), body limits (413), then
 * the handler.
 */
export function registerRoutes(app: Hono<AppEnv>, routes: AnyRoute[], ctx: RouteContext): void {
  for (const route of routes) {
    const chain: MiddlewareHandler<AppEnv>[] = [];
    if (route.auth === "admin") {
      chain.push(tokenAuth(ctx.adminToken, "creating a session needs the admin token"));
    }
    if (route.auth === "metrics") {
      chain.push(tokenAuth(ctx.metricsToken, "/metrics needs the metrics token"));
    }
    if (route.auth === "session") chain.push(sessionAuth(ctx.registry, false));
    if (route.auth === "session-or-query") chain.push(sessionAuth(ctx.registry, true));
    const maxBody = route.binaryBody?.maxBytes ??
      (route.body ? route.maxJsonBytes ?? ctx.maxJsonBodyBytes : undefined);
    if (maxBody !== undefined) {
      chain.push(bodyDeadline(ctx.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS));
      chain.push(bodyLimit({
        maxSize: maxBody,
        onError: () =>
          problemResponse("ETOOLARGE", `request body exceeds the limit of ${maxBody} bytes`),
      }));
    }
    const handler: MiddlewareHandler<AppEnv> = async (c) => {
      const params = route.params ? validate(route.params, c.req.param(), "path") : undefined;
      const query = route.query ? validate(route.query, c.req.query(), "query") : undefined;
      const body = route.body ? validate(route.body, await readJson(c), "request body") : undefined;
      const bytes = route.binaryBody
        ? new Uint8Array(await readBody(() => c.req.arrayBuffer()))
        : new Uint8Array(0);
      return await route.handler(c, { params, query, body, bytes });
    };
    app.on(route.method, [route.path], ...chain, handler);
  }
}

/**
 * Authenticates a session route: validates `:sid`, finds the session (404)
 * and compares the bearer token (or `?token=` when allowed) in constant
 * time (401). Sets `c.var.session`.
 */
export function sessionAuth(
  registry: SessionRegistry,
  allowQueryToken: boolean,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const { sid } = validate(SessionParamsSchema, { sid: c.req.param("sid") }, "path");
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

/** Requires `Authorization: Bearer <token>` when `token` is configured (401 with `what`). */
export function tokenAuth(token: string | undefined, what: string): MiddlewareHandler<AppEnv> {
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

/** A 401 problem with the `WWW-Authenticate` challenge of RFC 6750. */
export function unauthorized(detail: string): HttpProblem {
  return new HttpProblem("EUNAUTHORIZED", detail, {
    headers: { "www-authenticate": 'Bearer realm="netisle"' },
  });
}

/**
 * Parses `input` with `schema`, or throws a 400 problem whose detail names
 * the first failing field and whose `issues` list zod's issues.
 *
 * @example
 * ```ts
 * const body = validate(CreateSocketBodySchema, await readJson(c), "request body");
 * ```
 */
export function validate<T extends z.ZodType>(
  schema: T,
  input: unknown,
  where: string,
): z.output<T> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const first = r.error.issues[0];
  const field = first && first.path.length > 0 ? first.path.join(".") : "(root)";
  throw new HttpProblem("EINVAL", `invalid ${where}: ${field}: ${first?.message ?? "invalid"}`, {
    issues: r.error.issues,
  });
}

/**
 * Reads a request body; a client that goes away while sending it gets 499
 * `ECANCELED` (and the request log a clean line), not a 500.
 */
async function readBody<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof HttpProblem) throw err;
    throw new HttpProblem(
      "ECANCELED",
      `the client went away while sending the request body (${(err as Error)?.name})`,
    );
  }
}

/** Reads a JSON body (its size is capped by the route's body limit); an empty body is `{}`. */
export async function readJson(c: Context): Promise<unknown> {
  const text = (await readBody(() => c.req.text())).trim();
  if (text === "") return {};
  // The body is read as JSON whatever its declared type: `curl -d '{...}'` says form-urlencoded.
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpProblem("EINVAL", `request body is not valid JSON: ${(err as Error).message}`);
  }
}
