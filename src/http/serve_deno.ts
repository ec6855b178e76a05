/**
 * The Deno adapter: serves the app with `Deno.serve` and upgrades tunnels with
 * `Deno.upgradeWebSocket`. With the isolated front door's
 * adapter (which reuses {@linkcode serveDenoFetch}), the only file of src/http that uses `Deno.*`.
 *
 * @module
 */

import { type AppOptions, createApp, type WebSocketUpgrader } from "./app.ts";
import type { TunnelSocket } from "../session/tunnel_server.ts";
import { selectTunnelSubprotocol } from "../wire/tunnel_protocol.ts";
import { selectStreamSubprotocol } from "./socket_stream_protocol.ts";

/** How {@linkcode serveDenoFetch} listens (shared by the in-process and the isolated server). */
export interface DenoListenOptions {
  /** Omitted: `Deno.serve`'s default (on Deno Deploy the platform picks; see examples/deno/deploy.ts). */
  hostname?: string;
  /** Omitted: `Deno.serve`'s default (8000 locally; ignored on Deno Deploy). */
  port?: number;
  /** Called once the server listens, with its base URL. */
  onListen?: (url: string) => void;
  /** Aborts the server. */
  signal?: AbortSignal;
  /**
   * WebSockets idle this long get a ping, and are closed when no pong arrives
   * within as long again (a dead tunnel peer is detached). Default 60.
   */
  idleTimeoutSeconds?: number;
}

/** Options of {@linkcode serveDeno}. */
export interface ServeDenoOptions extends Omit<AppOptions, "upgradeWebSocket">, DenoListenOptions {}

/**
 * Serves a fetch handler with `Deno.serve`. `build` gets the WebSocket
 * upgrader the handler's routes call (`Deno.upgradeWebSocket`, answering the
 * tunnel subprotocol the route picks) and returns the handler. One mechanism
 * for `serveDeno` and the isolated front door.
 *
 * @example
 * ```ts
 * serveDenoFetch({ port: 8787 }, (upgradeWebSocket) => createApp({ registry, upgradeWebSocket }).fetch);
 * ```
 */
export function serveDenoFetch(
  options: DenoListenOptions,
  build: (upgradeWebSocket: WebSocketUpgrader) => (req: Request) => Response | Promise<Response>,
): Deno.HttpServer {
  const handler = build((req, upgradeOptions) => {
    // Echo the tunnel subprotocol the route picks; Deno pings an idle peer and closes
    // the socket when no pong comes back within idleTimeout (dead tunnel detection).
    const offered = req.headers.get("sec-websocket-protocol");
    const protocol = upgradeOptions?.protocol ?? selectTunnelSubprotocol(offered) ??
      selectStreamSubprotocol(offered);
    const { socket, response } = Deno.upgradeWebSocket(req, {
      idleTimeout: options.idleTimeoutSeconds ?? 60,
      protocol,
    });
    return { socket: socket as unknown as TunnelSocket, response };
  });
  return Deno.serve({
    hostname: options.hostname,
    port: options.port,
    signal: options.signal,
    onListen: ({ hostname, port }) => {
      const host = hostname.includes(":") ? `[${hostname}]` : hostname;
      options.onListen?.(`http://${host}:${port}`);
    },
  }, handler);
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
  return serveDenoFetch(
    options,
    (upgradeWebSocket) => createApp({ ...options, upgradeWebSocket }).fetch,
  );
}
