/**
 * The Deno adapter of the isolated front door: the same accept loop, engine
 * and checks as `serve_deno.ts` ({@linkcode serveDenoFetch}) around the front
 * door.
 *
 * @module
 */

import { type DenoListenOptions, type DenoServer, serveDenoFetch } from "../serve_deno.ts";
import { createIsolatedApp, type IsolatedApp, type IsolatedAppOptions } from "./front_door.ts";

/** Options of {@linkcode serveIsolatedDeno}. */
export interface ServeIsolatedDenoOptions
  extends Omit<IsolatedAppOptions, "upgradeWebSocket">, DenoListenOptions {}

/**
 * Serves the netisle API on Deno with every session in its own worker.
 *
 * @example
 * ```ts
 * const { server, isolated } = serveIsolatedDeno({ hostname: "127.0.0.1", port: 8787 });
 * ```
 */
export function serveIsolatedDeno(
  options: ServeIsolatedDenoOptions,
): { server: DenoServer; isolated: IsolatedApp } {
  let isolated: IsolatedApp | undefined;
  const server = serveDenoFetch(options, (upgradeWebSocket) => {
    isolated = createIsolatedApp({ ...options, upgradeWebSocket });
    return isolated.app.fetch;
  });
  void server.finished.then(() => isolated!.close());
  return { server, isolated: isolated! };
}
