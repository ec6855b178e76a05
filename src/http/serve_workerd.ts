/**
 * The workerd adapter (Cloudflare Workers, Durable Objects): upgrades a
 * request with `new WebSocketPair()`, accepts the server end in this isolate
 * (`server.accept()`, never hibernation: see README.md, "Cloudflare
 * Workers") and answers `101` with the client end. The only file of src/http
 * that uses workerd's own API.
 *
 * workerd's server-side WebSocket has no `open` event (it is open once
 * accepted), defaults `binaryType` to `"blob"` (the tunnel sets
 * `"arraybuffer"`) and may not report `bufferedAmount`; the wrapper reports
 * 0 then, so the tunnel and the socket streams never stall on an unknown
 * value (workerd queues outgoing messages itself).
 *
 * @module
 */

import type { WebSocketUpgrader } from "./app.ts";
import type { TunnelSocket } from "../session/tunnel_server.ts";
import { handshakeProblem } from "./websocket_handshake.ts";

/** The part of workerd's `WebSocket` this adapter uses. */
export interface WorkerdWebSocket {
  binaryType?: string;
  readonly readyState: number;
  readonly bufferedAmount?: number;
  accept(): void;
  send(data: Uint8Array | ArrayBuffer | string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (ev: { data?: unknown }) => void): void;
}

/** workerd's `WebSocketPair` constructor: `{0: client, 1: server}`. */
type WebSocketPairConstructor = new () => { 0: WorkerdWebSocket; 1: WorkerdWebSocket };

/**
 * Wraps an accepted workerd WebSocket as a {@linkcode TunnelSocket}.
 *
 * @example
 * ```ts
 * const pair = new WebSocketPair();
 * pair[1].accept();
 * attachWebSocketTunnel(session, workerdTunnelSocket(pair[1]));
 * ```
 */
export function workerdTunnelSocket(ws: WorkerdWebSocket): TunnelSocket {
  return {
    get binaryType() {
      return ws.binaryType ?? "arraybuffer";
    },
    set binaryType(v: string) {
      // workerd delivers binary messages as ArrayBuffer; older versions have no binaryType.
      if ("binaryType" in ws) ws.binaryType = v;
    },
    get readyState() {
      return ws.readyState;
    },
    get bufferedAmount() {
      return typeof ws.bufferedAmount === "number" ? ws.bufferedAmount : 0;
    },
    send(data) {
      ws.send(data);
    },
    close(code, reason) {
      ws.close(code, reason);
    },
    addEventListener(type: string, listener: (ev: { data: unknown }) => void) {
      ws.addEventListener(type, (ev) => listener({ data: ev?.data }));
    },
  } as TunnelSocket;
}

/**
 * Upgrades `req` the workerd way: a `WebSocketPair`, the server end accepted
 * here, the client end in a `101` response. `protocol`, when given, is
 * answered in `Sec-WebSocket-Protocol`. Throws TypeError outside workerd, and
 * the `HttpProblem` of a malformed handshake (400 `EINVAL`, 426 `EUPGRADE`).
 *
 * @example
 * ```ts
 * const app = createApp({ registry, upgradeWebSocket: upgradeWorkerdWebSocket });
 * ```
 */
export const upgradeWorkerdWebSocket: WebSocketUpgrader = (
  req: Request,
  options?: { protocol?: string },
) => {
  // A malformed handshake answers 400 (426 for another version), as on Deno and Bun.
  // (Cloudflare's front end handles the hop-by-hop Connection header itself.)
  const problem = handshakeProblem(req, { requireConnectionUpgrade: false });
  if (problem) throw problem;
  const Pair = (globalThis as { WebSocketPair?: WebSocketPairConstructor }).WebSocketPair;
  if (typeof Pair !== "function") {
    throw new TypeError("upgradeWorkerdWebSocket: this runtime has no WebSocketPair (not workerd)");
  }
  const pair = new Pair();
  const client = pair[0];
  const server = pair[1];
  server.accept();
  const headers = new Headers();
  if (options?.protocol) headers.set("sec-websocket-protocol", options.protocol);
  // `webSocket` is workerd's extension of ResponseInit.
  const init = { status: 101, headers, webSocket: client } as ResponseInit;
  return { socket: workerdTunnelSocket(server), response: new Response(null, init) };
};
