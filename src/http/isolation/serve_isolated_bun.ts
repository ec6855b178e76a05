/**
 * The Bun adapter of the isolated front door: the same Bun server as
 * `serve_bun.ts` ({@linkcode serveBunFetch}: Bun's WebSocket server, each
 * upgraded request with a `BunTunnelSocket` as `ws.data`) around the front door.
 *
 * @module
 */

import { type BunListenOptions, type BunServer, serveBunFetch } from "../serve_bun.ts";
import { createIsolatedApp, type IsolatedApp, type IsolatedAppOptions } from "./front_door.ts";

/** Options of {@linkcode serveIsolatedBun}. */
export interface ServeIsolatedBunOptions
  extends Omit<IsolatedAppOptions, "upgradeWebSocket">, BunListenOptions {}

/**
 * Serves the netisle API on Bun with every session in its own worker.
 *
 * @example
 * ```ts
 * const { server, isolated } = serveIsolatedBun({ hostname: "127.0.0.1", port: 8787 });
 * ```
 */
export function serveIsolatedBun(
  options: ServeIsolatedBunOptions,
): { server: BunServer; isolated: IsolatedApp } {
  let isolated: IsolatedApp | undefined;
  const server = serveBunFetch(options, (upgradeWebSocket) => {
    isolated = createIsolatedApp({ ...options, upgradeWebSocket });
    return isolated.app.fetch;
  });
  return { server, isolated: isolated! };
}
