/**
 * Types the app and its route modules share: the Hono environment and the
 * runtime's WebSocket upgrade. They live here, below `app.ts` and the route
 * modules, so that no two files of the HTTP layer import each other.
 *
 * @module
 */

import type { Session } from "../session/mod.ts";
import type { TunnelSocket } from "../session/tunnel_server.ts";

/**
 * Hono environment of the app: a session route finds its authenticated
 * session in `c.var.session`, a route that takes bytes its body in
 * `c.var.bytes` and its quota charge in `c.var.body` (set by the body
 * middleware of `request_body.ts`).
 *
 * @example
 * ```ts
 * const app = new OpenAPIHono<AppEnv>();
 * app.get("/v1/sessions/:sid", sessionAuth(registry, false), (c) => c.json(c.var.session.describe()));
 * ```
 */
export type AppEnv = { Variables: { session: Session; bytes: Uint8Array; body: BodyCharge } };

/**
 * The quota charge of a body the body middleware read (`c.var.body`): a
 * handler that keeps the bytes beyond the request (a send that waits for
 * buffer space) takes the charge over instead of charging the bytes again.
 */
export interface BodyCharge {
  /** Returns the charge and forgets it; the caller releases it later. */
  handOver(): number;
}

/**
 * Upgrades a request to a WebSocket, as each runtime does it
 * (`Deno.upgradeWebSocket`, Bun's `server.upgrade`, workerd's `WebSocketPair`),
 * answering `options.protocol` (the subprotocol the route picked from the
 * offered ones) when given.
 *
 * @example
 * ```ts
 * const upgrade: WebSocketUpgrader = (req) => Deno.upgradeWebSocket(req);
 * ```
 */
export type WebSocketUpgrader = (
  req: Request,
  options?: { protocol?: string },
) => { socket: TunnelSocket; response: Response };
