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
 * `c.var.bytes` (set by the body middleware of `request_body.ts`).
 *
 * @example
 * ```ts
 * const app = new OpenAPIHono<AppEnv>();
 * app.get("/v1/sessions/:sid", sessionAuth(registry, false), (c) => c.json(c.var.session.describe()));
 * ```
 */
export type AppEnv = { Variables: { session: Session; bytes: Uint8Array } };

/**
 * Upgrades a request to a WebSocket, as each runtime does it
 * (`Deno.upgradeWebSocket`, Bun's `server.upgrade`, workerd's `WebSocketPair`).
 *
 * @example
 * ```ts
 * const upgrade: WebSocketUpgrader = (req) => Deno.upgradeWebSocket(req);
 * ```
 */
export type WebSocketUpgrader = (req: Request) => { socket: TunnelSocket; response: Response };
