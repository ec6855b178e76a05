/**
 * {@linkcode apiRoute}: `createRoute` of `@hono/zod-openapi` with the
 * conventions every netisle route shares, so that a route module reads like
 * plain `@hono/zod-openapi` code (`app.openapi(apiRoute(ctx, {...}), handler)`):
 *
 * - `auth` becomes both the route's middleware (`route_auth.ts`) and its
 *   OpenAPI `security`;
 * - `jsonBody` / `binaryBody` become the request body of the document and
 *   the body middleware (`request_body.ts`: size, deadline, session quota);
 * - `errors` (plus the codes auth, validation and bodies imply) become the
 *   problem+json responses of the document, grouped by status.
 *
 * Validation of path, query and JSON body is the library's (with the app's
 * `defaultHook`, `validation.ts`); the handler reads `c.req.valid(...)`.
 *
 * @module
 */

import { createRoute, type RouteConfig } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { z } from "zod";
import type { Clock } from "../session/mod.ts";
import type { AppEnv } from "./app_env.ts";
import { type HttpErrorCode, STATUS_BY_CODE } from "./problem.ts";
import { binaryBody, jsonBody } from "./request_body.ts";
import { type AuthContext, authMiddleware, type RouteAuth, securityOf } from "./route_auth.ts";

/** What routes need from the app: authentication, body limits, the deadline's clock. */
export interface RouteContext extends AuthContext {
  /** Default largest JSON body, in bytes. */
  maxJsonBodyBytes: number;
  /** How long a request body may take to arrive, in ms. */
  bodyTimeoutMs: number;
  /** The clock of body deadlines. */
  clock: Clock;
}

type RequestConfig = NonNullable<RouteConfig["request"]>;

/** The path and query schemas of a route. */
export interface ApiRequest {
  /** Path parameters (a `z.strictObject`). */
  params?: RequestConfig["params"];
  /** Query parameters (a `z.strictObject` of strings or coerced values). */
  query?: RequestConfig["query"];
}

/** A route as a route module declares it: `createRoute`'s config plus netisle's conventions. */
export interface ApiRouteDef extends Omit<RouteConfig, "request" | "middleware" | "security"> {
  /** Unique name (OpenAPI `operationId`). */
  operationId: string;
  /** Who may call it. */
  auth: RouteAuth;
  /** Path parameters and query. */
  request?: ApiRequest;
  /** A JSON body (any declared type; an empty body is `{}`), validated by this schema. */
  jsonBody?: z.ZodType;
  /** Largest JSON body in bytes (default: the app's JSON limit). */
  maxJsonBytes?: number;
  /** An `application/octet-stream` body of at most this many bytes, in `c.var.bytes`. */
  binaryBody?: { maxBytes: number };
  /** Whether the route is a WebSocket upgrade (documented as `x-websocket`). */
  websocket?: boolean;
  /** Error codes the route can answer with (auth, validation and body codes are added). */
  errors: HttpErrorCode[];
}

type JsonRequestOf<D extends ApiRouteDef> = D["jsonBody"] extends z.ZodType
  ? { body: { required: false; content: { "application/json": { schema: D["jsonBody"] } } } }
  // deno-lint-ignore ban-types
  : {};

/** The `createRoute` config {@linkcode apiRoute} makes of `D`, typed for `app.openapi`. */
export type ApiRoute<D extends ApiRouteDef> =
  & Omit<
    D,
    "auth" | "request" | "jsonBody" | "maxJsonBytes" | "binaryBody" | "websocket" | "errors"
  >
  & {
    // deno-lint-ignore ban-types
    request: (D["request"] extends ApiRequest ? D["request"] : {}) & JsonRequestOf<D>;
    middleware: MiddlewareHandler<AppEnv>[];
    getRoutingPath(): string;
  };

/**
 * The error codes a route can answer with: its own plus those its auth,
 * input and body imply (a body on a session route is charged to the
 * session's quota: 429 `ENOBUFS`).
 *
 * @example
 * ```ts
 * routeErrorCodes({ auth: "none", errors: [] }); // []
 * ```
 */
export function routeErrorCodes(
  def: Pick<ApiRouteDef, "auth" | "request" | "jsonBody" | "binaryBody" | "errors">,
): HttpErrorCode[] {
  const codes = new Set<HttpErrorCode>();
  const session = def.auth === "session" || def.auth === "session-or-query";
  const body = def.jsonBody !== undefined || def.binaryBody !== undefined;
  if (def.request?.params || def.request?.query || body || def.auth !== "none") {
    codes.add("EINVAL");
  }
  if (def.auth !== "none") codes.add("EUNAUTHORIZED");
  if (session) codes.add("ENOTFOUND");
  if (body) codes.add("ETOOLARGE").add("EBODYTIMEOUT");
  if (body && session) codes.add("ENOBUFS");
  for (const c of def.errors) codes.add(c);
  return [...codes];
}

/**
 * The problem+json responses of `codes` for the document: one per status,
 * naming its codes, with the shared `Problem` schema.
 *
 * @example
 * ```ts
 * problemResponses(["ENOTCONN", "EBUSY"]); // { "409": { description: "Problem: ENOTCONN, EBUSY", ... } }
 * ```
 */
export function problemResponses(codes: HttpErrorCode[]): RouteConfig["responses"] {
  const byStatus = new Map<number, HttpErrorCode[]>();
  for (const code of codes) {
    const status = STATUS_BY_CODE[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: RouteConfig["responses"] = {};
  for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[String(status)] = {
      description: `Problem: ${list.join(", ")}`,
      content: {
        "application/problem+json": {
          schema: { $ref: "#/components/schemas/Problem" },
          example: { code: list[0] },
        },
      },
    };
  }
  return out;
}

/**
 * A JSON response body of the document, validated by nothing at run time
 * (the schema documents what the handler returns; the types check it).
 *
 * @example
 * ```ts
 * responses: { 200: { description: "The session.", content: jsonContent(SessionViewSchema) } }
 * ```
 */
export function jsonContent<T extends z.ZodType>(
  schema: T,
): { "application/json": { schema: T } } {
  return { "application/json": { schema } };
}

/**
 * A binary response body of `type` for the document.
 *
 * @example
 * ```ts
 * responses: { 200: { description: "The capture.", content: binaryContent("application/vnd.tcpdump.pcap") } }
 * ```
 */
export function binaryContent<T extends string>(
  type: T,
): Record<T, { schema: { type: "string"; format: "binary" } }> {
  return { [type]: { schema: { type: "string", format: "binary" } } } as Record<
    T,
    { schema: { type: "string"; format: "binary" } }
  >;
}

/**
 * Response headers for the document: name → description.
 *
 * @example
 * ```ts
 * headers: headerDocs({ Location: "The session's URL." })
 * ```
 */
export function headerDocs(
  headers: Record<string, string>,
): Record<string, { description: string; schema: { type: "string" } }> {
  return Object.fromEntries(
    Object.entries(headers).map(([name, description]) => [
      name,
      { description, schema: { type: "string" as const } },
    ]),
  );
}

/**
 * Makes the `createRoute` config of one netisle route (see the module): the
 * auth and body middleware, `security`, the request body and the problem
 * responses added to what `def` declares.
 *
 * @example
 * ```ts
 * app.openapi(
 *   apiRoute(ctx, {
 *     operationId: "getSession", method: "get", path: "/v1/sessions/{sid}", summary: "A session",
 *     tags: ["sessions"], auth: "session", request: { params: SessionParamsSchema },
 *     responses: { 200: { description: "The session.", content: jsonContent(SessionViewSchema) } },
 *     errors: [],
 *   }),
 *   (c) => c.json(c.var.session.describe(), 200),
 * );
 * ```
 */
export function apiRoute<const D extends ApiRouteDef>(ctx: RouteContext, def: D): ApiRoute<D> {
  const {
    auth,
    request,
    jsonBody: jsonSchema,
    maxJsonBytes,
    binaryBody: binary,
    websocket,
    errors: _errors,
    responses,
    ...rest
  } = def;
  const limits = { timeoutMs: ctx.bodyTimeoutMs, clock: ctx.clock };
  const middleware: MiddlewareHandler<AppEnv>[] = [...authMiddleware(auth, ctx)];
  let body: RequestConfig["body"];
  if (jsonSchema) {
    middleware.push(jsonBody(maxJsonBytes ?? ctx.maxJsonBodyBytes, limits));
    body = { required: false, content: { "application/json": { schema: jsonSchema } } };
  } else if (binary) {
    middleware.push(binaryBody(binary.maxBytes, limits));
    body = {
      required: true,
      description: `At most ${binary.maxBytes} bytes.`,
      content: binaryContent("application/octet-stream"),
    };
  }
  const route = createRoute({
    ...rest,
    security: securityOf(auth),
    middleware,
    request: { ...request, ...(body ? { body } : {}) },
    responses: { ...responses, ...problemResponses(routeErrorCodes(def)) },
    ...(websocket ? { "x-websocket": true } : {}),
  });
  return route as unknown as ApiRoute<D>;
}
