/**
 * The Cloudflare Worker of netisle: the front door. It answers the service
 * routes and sends every session route to that session's Durable Object
 * ({@linkcode NetisleSession}), routed with itty-router.
 *
 * - `POST /v1/sessions` picks a fresh session id (`s_` and 22 base64url
 *   characters, the format of every netisle server) and the object named
 *   after it (`SESSIONS.idFromName(sid)`), which creates the session.
 * - `/v1/sessions/:sid` and everything below it go to `idFromName(sid)`:
 *   the session id alone finds the object again, on any Worker instance.
 * - `/healthz`, `/openapi.json` and `/docs` are answered here. `/metrics` is
 *   per session (`GET /v1/sessions/:sid/metrics`, with the session's token):
 *   no single place sees every object.
 *
 * Run it locally with `npm run start:workerd`; deploy with `npx wrangler deploy`.
 *
 * @module
 */

import { type IRequest, IttyRouter } from "itty-router";
import { createApp } from "../../src/http/app.ts";
import { bearerToken, constantTimeEqual } from "../../src/http/auth.ts";
import { problemResponse } from "../../src/http/problem.ts";
import { SessionIdSchema } from "../../src/http/schemas.ts";
import { base64Url, SessionRegistry, SystemClock } from "../../src/session/mod.ts";
import { SESSION_ID_HEADER } from "./session_object.ts";
import type { Env } from "./workers_types.ts";

export { NetisleSession } from "./session_object.ts";

type Handler = (request: IRequest, env: Env) => Response | Promise<Response>;

let serviceApp: ReturnType<typeof createApp> | undefined;

/** The app that renders /openapi.json and /docs (it holds no session). */
function service(): ReturnType<typeof createApp> {
  serviceApp ??= createApp({
    registry: new SessionRegistry({ clock: new SystemClock(), limits: { maxSessions: 0 } }),
    requestLog: false,
  });
  return serviceApp;
}

/** A new session id: `s_` and 16 random bytes in base64url, as the registry makes them. */
function newSessionId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return "s_" + base64Url(bytes);
}

const createSession: Handler = (request, env) => {
  const admin = env.NETISLE_ADMIN_TOKEN || undefined;
  if (admin !== undefined) {
    const given = bearerToken(request.headers.get("authorization"));
    if (given === undefined || !constantTimeEqual(given, admin)) {
      return problemResponse(
        "EUNAUTHORIZED",
        "creating a session needs the admin token (Authorization: Bearer ...)",
        { headers: { "www-authenticate": 'Bearer realm="netisle"' } },
      );
    }
  }
  const sid = newSessionId();
  const headers = new Headers(request.headers);
  headers.set(SESSION_ID_HEADER, sid);
  const stub = env.SESSIONS.get(env.SESSIONS.idFromName(sid));
  return stub.fetch(new Request(request, { headers }));
};

const toSession: Handler = (request, env) => {
  const sid = request.params.sid;
  const parsed = SessionIdSchema.safeParse(sid);
  if (!parsed.success) {
    return problemResponse(
      "EINVAL",
      `invalid path: sid: a session id is "s_" followed by 22 base64url characters, got "${sid}"`,
      { issues: parsed.error.issues },
    );
  }
  const headers = new Headers(request.headers);
  headers.delete(SESSION_ID_HEADER);
  const stub = env.SESSIONS.get(env.SESSIONS.idFromName(sid));
  return stub.fetch(new Request(request, { headers }));
};

const router = IttyRouter<IRequest, [Env]>();
router
  .get("/healthz", () => Response.json({ status: "ok", runtime: "workerd" }))
  .get("/openapi.json", (request) => service().fetch(request))
  .get("/docs", (request) => service().fetch(request))
  .get("/metrics", () =>
    problemResponse(
      "ENOTFOUND",
      "on Cloudflare, metrics are per session: GET /v1/sessions/:sid/metrics with the " +
        "session's token",
    ))
  .post("/v1/sessions", createSession)
  .all("/v1/sessions/:sid", toSession)
  .all("/v1/sessions/:sid/*", toSession)
  .all("*", (request) => {
    const url = new URL(request.url);
    return problemResponse("ENOTFOUND", `no route for ${request.method} ${url.pathname}`);
  });

/** The Worker's entry point. */
export default {
  /** Routes one request. */
  fetch(request: Request, env: Env): Promise<Response> {
    return router.fetch(request, env);
  },
};
