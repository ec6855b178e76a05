/**
 * The Deno adapter: serves the app with `Deno.serve` and upgrades tunnels with
 * `Deno.upgradeWebSocket`. The only file of src/http that uses `Deno.*`.
 *
 * @module
 */

import { type AppOptions, createApp } from "./app.ts";
import type { TunnelSocket } from "../../tunnel/server.ts";

/** Options of {@linkcode serveDeno}. */
export interface ServeDenoOptions extends Omit<AppOptions, "upgradeWebSocket"> {
  hostname: string;
  port: number;
  /** Called once the server listens, with its base URL. */
  onListen?: (url: string) => void;
  /** Aborts the server. */
  signal?: AbortSignal;
}

/**
 * Serves the netisle API on Deno.
 *
 * @example
 * ```ts
 * serveDeno({ registry, hostname: "127.0.0.1", port: 8787 });
 * ```
 */
export function serveDeno(options: ServeDenoOptions): Deno.HttpServer {
  const app = createApp({
    ...options,
    upgradeWebSocket: (req) => {
      const { socket, response } = Deno.upgradeWebSocket(req, { idleTimeout: 60 });
      return { socket: socket as unknown as TunnelSocket, response };
    },
  });
  return Deno.serve({
    hostname: options.hostname,
    port: options.port,
    signal: options.signal,
    onListen: ({ hostname, port }) => {
      const host = hostname.includes(":") ? `[${hostname}]` : hostname;
      options.onListen?.(`http://${host}:${port}`);
    },
  }, app.fetch);
}
