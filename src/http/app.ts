/**
 * The Hono app: the HTTP API of netisle. Runtime-neutral: the adapters in
 * `serve_*.ts` give it a way to upgrade a request to a WebSocket.
 *
 * @module
 */

import { Hono } from "hono";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { z } from "zod";
import { type Session, type SessionRegistry } from "../session/mod.ts";
import { NetError } from "../socket/mod.ts";
import { parseIpv4Address, parseMacAddress } from "../wire/mod.ts";
import { attachWebSocketTunnel, type TunnelSocket } from "../../tunnel/server.ts";
import { tunnelUrl } from "../../tunnel/protocol.ts";
import { bearerToken, constantTimeEqual } from "./auth.ts";
import { HttpProblem, problemResponse } from "./problem.ts";
import { CreateSessionBodySchema, SessionParamsSchema, TunnelQuerySchema } from "./schemas.ts";

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
}

type Env = { Variables: { session: Session } };

/**
 * Creates the HTTP API.
 *
 * @example
 * ```ts
 * const app = createApp({ registry: new SessionRegistry({ clock: new SystemClock() }) });
 * const res = await app.request("/v1/sessions", { method: "POST" });
 * ```
 */
export function createApp(options: AppOptions): Hono<Env> {
  const { registry } = options;
  const maxJson = options.maxJsonBodyBytes ?? 16 * 1024;
  const app = new Hono<Env>();

  app.onError((err) => {
    if (err instanceof HttpProblem) {
      return problemResponse(err.code, err.message, { issues: err.issues, headers: err.headers });
    }
    if (err instanceof NetError) return problemResponse(err.code, err.message);
    console.error("netisle: unhandled error in request:", err);
    return problemResponse("EINTERNAL", "internal error; see the server log");
  });
  app.notFound((c) => problemResponse("ENOTFOUND", `no route for ${c.req.method} ${c.req.path}`));

  app.get("/healthz", (c) => c.json({ status: "ok", sessions: registry.size }));

  const jsonLimit = bodyLimit({
    maxSize: maxJson,
    onError: () =>
      problemResponse("ETOOLARGE", `request body exceeds the limit of ${maxJson} bytes`),
  });

  app.post("/v1/sessions", jsonLimit, async (c) => {
    if (options.adminToken !== undefined) {
      const given = bearerToken(c.req.header("authorization"));
      if (given === undefined || !constantTimeEqual(given, options.adminToken)) {
        throw unauthorized("creating a session needs the admin token (Authorization: Bearer ...)");
      }
    }
    const body = validate(CreateSessionBodySchema, await readJson(c), "request body");
    const session = registry.create({
      ipv4: body.ipv4 && {
        address: parseIpv4Address(body.ipv4.address),
        prefixLength: body.ipv4.prefixLength,
      },
      mac: body.mac === undefined ? undefined : parseMacAddress(body.mac),
      mtu: body.mtu,
    });
    const view = session.describe();
    return c.json(
      {
        id: session.id,
        token: session.token,
        mac: view.mac,
        ipv4: view.ipv4,
        mtu: view.mtu,
        tunnel: {
          url: tunnelUrl(new URL(c.req.url).origin, session.id),
          framing: "frame-per-message",
        },
      },
      201,
      { location: `/v1/sessions/${session.id}` },
    );
  });

  const sessionAuth =
    (allowQueryToken: boolean) => async (c: Context<Env>, next: () => Promise<void>) => {
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

  app.get("/v1/sessions/:sid/tunnel", sessionAuth(true), (c) => {
    const session = c.get("session");
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new HttpProblem("EUPGRADE", "the tunnel is a WebSocket: send Upgrade: websocket", {
        headers: { upgrade: "websocket" },
      });
    }
    if (!options.upgradeWebSocket) {
      throw new HttpProblem("ENOTSUP", "this server was started without WebSocket support");
    }
    const { socket, response } = options.upgradeWebSocket(c.req.raw);
    attachWebSocketTunnel(session, socket);
    return response;
  });

  app.get("/v1/sessions/:sid", sessionAuth(false), (c) => c.json(c.get("session").describe()));

  app.delete("/v1/sessions/:sid", sessionAuth(false), (c) => {
    registry.delete(c.get("session").id);
    return c.body(null, 204);
  });

  return app;
}

function unauthorized(detail: string): HttpProblem {
  return new HttpProblem("EUNAUTHORIZED", detail, {
    headers: { "www-authenticate": 'Bearer realm="netisle"' },
  });
}

/** Parses `input` with `schema`, or throws a 400 problem listing zod's issues. */
function validate<T extends z.ZodType>(schema: T, input: unknown, where: string): z.infer<T> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const first = r.error.issues[0];
  const field = first && first.path.length > 0 ? first.path.join(".") : "(root)";
  throw new HttpProblem("EINVAL", `invalid ${where}: ${field}: ${first?.message ?? "invalid"}`, {
    issues: r.error.issues,
  });
}

/** Reads a JSON body (its size is capped by the route's body limit); an empty body is `{}`. */
async function readJson(c: Context): Promise<unknown> {
  const text = (await c.req.text()).trim();
  if (text === "") return {};
  // The body is read as JSON whatever its declared type: `curl -d '{...}'` says form-urlencoded.
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpProblem("EINVAL", `request body is not valid JSON: ${(err as Error).message}`);
  }
}
