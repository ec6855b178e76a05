/**
 * `GET /v1/sessions/:sid/wisp/` (and `/v1/sessions/:sid/wisp/<token>/`): a
 * Wisp server whose streams open TCP and UDP connections inside the session's
 * network (wisp_connection.ts).
 *
 * Real Wisp clients take nothing but a URL, and `wisp-js` refuses one that
 * does not end in `/`, so the session's token may ride as the last path
 * segment. It may also come as `Authorization: Bearer`, as `?token=`, or,
 * for a v2 client (one that offers a subprotocol) that sent none of these,
 * as the password of v2's password extension. The request log names the
 * route pattern only, so the token never reaches it.
 *
 * @module
 */

import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { Session } from "../../session/mod.ts";
import { apiRoute, type RouteContext } from "../api_route.ts";
import type { AppEnv, WebSocketUpgrader } from "../app_env.ts";
import { bearerToken, constantTimeEqual } from "../auth.ts";
import { HttpProblem } from "../problem.ts";
import { unauthorized } from "../route_auth.ts";
import { SessionIdSchema } from "../schemas.ts";
import { validationHook } from "../validation.ts";
import { WispConnection } from "./wisp_connection.ts";
import type { WispOptions } from "./wisp_link.ts";

/** Options of {@linkcode wispRoutes}. */
export interface WispRouteOptions {
  /** The runtime's WebSocket upgrade; without it the route answers 501. */
  upgradeWebSocket?: WebSocketUpgrader;
  /** Tuning and limits of the connections. */
  wisp?: WispOptions;
  /** Wisp connections one session may have open at once (429 EMFILE beyond). Default 16. */
  maxConnectionsPerSession?: number;
}

/** Default of {@linkcode WispRouteOptions.maxConnectionsPerSession}. */
export const DEFAULT_WISP_CONNECTIONS_PER_SESSION = 16;

const TokenSchema = z.string().min(1).max(256).regex(/^[A-Za-z0-9\-._~+/]+=*$/, {
  message: "a token is RFC 6750 b64token characters",
});
const WispParamsSchema = z.strictObject({ sid: SessionIdSchema });
const WispTokenParamsSchema = z.strictObject({ sid: SessionIdSchema, token: TokenSchema });
const WispQuerySchema = z.object({ token: TokenSchema.optional() });

const TAGS = ["wisp"];

/** Open Wisp connections of each session (authenticated). */
const OPEN = new WeakMap<Session, number>();
/** Wisp v2 handshakes of each session still waiting for the password. */
const PENDING = new WeakMap<Session, number>();
/** Handshakes without a token one session may have waiting at once (429 EMFILE beyond). */
export const MAX_PENDING_PER_SESSION = 4;

const DESCRIPTION = "Upgrade to a WebSocket speaking Wisp (v1.2; v2 when the client offers a " +
  "subprotocol, which is echoed): TCP and UDP streams to hosts inside the session's network " +
  "(the tunnelled machine; UDP 53 on the stack's own address reaches its DNS responder). " +
  "Destinations outside it are closed with 0x48, refused connections 0x44, unreachable hosts " +
  "0x42, timeouts 0x43, limits 0x49, invalid ones 0x41. Every stream is a socket of the " +
  "session (its socket quota, its listing). The token: `Authorization: Bearer`, `?token=`, " +
  "the last path segment (`/wisp/<token>/`), or v2's password extension.";

/**
 * The Wisp routes.
 *
 * @example
 * ```ts
 * app.route("/", wispRoutes(ctx, { upgradeWebSocket }));
 * // a client: new ClientConnection(`ws://host/v1/sessions/${sid}/wisp/${token}/`)
 * ```
 */
export function wispRoutes(
  ctx: RouteContext,
  options: WispRouteOptions = {},
): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const maxPerSession = options.maxConnectionsPerSession ?? DEFAULT_WISP_CONNECTIONS_PER_SESSION;

  const handle = (c: Context<AppEnv>, sid: string, pathToken: string | undefined) => {
    const session = ctx.registry.get(sid);
    if (!session) throw new HttpProblem("ENOTFOUND", `no session with id "${sid}"`);
    let given = pathToken ?? bearerToken(c.req.header("authorization"));
    given ??= WispQuerySchema.safeParse(c.req.query()).data?.token;
    const offered = c.req.header("sec-websocket-protocol");
    const protocol = offered?.split(",").map((s) => s.trim()).find((s) => s !== "");
    if (given !== undefined) {
      if (!constantTimeEqual(given, session.token)) {
        throw unauthorized(`wrong token for session "${sid}"`);
      }
      c.set("session", session);
    } else if (protocol === undefined) {
      throw unauthorized(
        `session "${sid}" needs its token: /wisp/<token>/, Authorization: Bearer, ?token=, ` +
          "or Wisp v2's password extension",
      );
    }
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new HttpProblem("EUPGRADE", "Wisp runs over a WebSocket: send Upgrade: websocket", {
        headers: { upgrade: "websocket" },
      });
    }
    const upgrade = options.upgradeWebSocket;
    if (!upgrade) {
      throw new HttpProblem("ENOTSUP", "this server was started without WebSocket support");
    }
    // Connections that authenticate with v2's password wait in their own small pool, so
    // that holding handshakes open without the token cannot crowd out token holders.
    const authenticated = given !== undefined;
    const pool = authenticated ? OPEN : PENDING;
    const max = authenticated ? maxPerSession : MAX_PENDING_PER_SESSION;
    const n = pool.get(session) ?? 0;
    if (n >= max) {
      throw new HttpProblem(
        "EMFILE",
        authenticated
          ? `session "${sid}" has its maximum of ${maxPerSession} Wisp connections open`
          : `session "${sid}" has ${max} Wisp handshakes waiting for a password; send the token`,
      );
    }
    const { socket, response } = upgrade(c.req.raw, { protocol });
    pool.set(session, n + 1);
    let counted: WeakMap<Session, number> | undefined = pool;
    const less = (m: WeakMap<Session, number>) =>
      m.set(session, Math.max(0, (m.get(session) ?? 1) - 1));
    new WispConnection({
      session,
      socket,
      v2: protocol !== undefined,
      authenticated,
      options: options.wisp,
      onAuthenticated: () => {
        less(PENDING);
        counted = undefined;
        const open = OPEN.get(session) ?? 0;
        if (open >= maxPerSession) return false;
        OPEN.set(session, open + 1);
        counted = OPEN;
        return true;
      },
      onEnd: () => {
        if (counted) less(counted);
        counted = undefined;
      },
    }).start();
    return response;
  };

  app.openapi(
    apiRoute(ctx, {
      operationId: "wisp",
      method: "get",
      path: "/v1/sessions/{sid}/wisp/",
      summary: "A Wisp server into the session (WebSocket)",
      description: DESCRIPTION,
      tags: TAGS,
      auth: "none",
      websocket: true,
      request: { params: WispParamsSchema, query: WispQuerySchema },
      responses: { 101: { description: "Switching to the WebSocket protocol." } },
      errors: ["ENOTFOUND", "EUNAUTHORIZED", "EUPGRADE", "ENOTSUP", "EMFILE"],
    }),
    (c) => handle(c, c.req.valid("param").sid, undefined),
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "wispWithToken",
      method: "get",
      path: "/v1/sessions/{sid}/wisp/{token}/",
      summary: "A Wisp server into the session, the token in the path (WebSocket)",
      description: DESCRIPTION,
      tags: TAGS,
      auth: "none",
      websocket: true,
      request: { params: WispTokenParamsSchema },
      responses: { 101: { description: "Switching to the WebSocket protocol." } },
      errors: ["ENOTFOUND", "EUNAUTHORIZED", "EUPGRADE", "ENOTSUP", "EMFILE"],
    }),
    (c) => {
      const p = c.req.valid("param");
      return handle(c, p.sid, p.token);
    },
  );
  return app;
}
