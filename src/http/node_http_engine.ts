/**
 * The HTTP engine of the Deno adapter: Node's HTTP/1.1 server (`node:http`,
 * which Deno implements) fed with connections the adapter accepted itself,
 * Hono through `@hono/node-server`, and WebSockets through this project's
 * bounded {@linkcode ServerWebSocket} on the raw connection.
 *
 * Why not `Deno.serve`: it has no timeout for request heads (an idle
 * connection stays forever), no hook per connection (so no connection cap),
 * its accept loop ends the server on EMFILE, and `Deno.upgradeWebSocket`
 * buffers whole messages of any size. node:http has head, request and
 * keep-alive timeouts; its own accept loop dies silently on EMFILE, so the
 * adapter keeps the accept loop and hands each connection over with
 * `server.emit("connection", socket)`.
 *
 * - Requests: `getRequestListener` of `@hono/node-server` (the Hono
 *   ecosystem's adapter: `request.signal` aborts when the client goes away),
 *   with its lightweight `Request`/`Response` (`overrideGlobalObjects`: once
 *   the server starts, the process's global `Request` and `Response` are
 *   its subclasses). Without them a response body is read through a stream
 *   and written one timer tick later: 3× fewer `GET /healthz` per second.
 *   A response with status 408 or 413 carries `Connection: close`: the
 *   connection goes once it is written (a half-sent body is not read on).
 * - Upgrades: node:http's `upgrade` event. The request goes through the same
 *   handler; when a route calls the upgrader (`upgradeWebSocket`), a
 *   {@linkcode ServerWebSocket} is made for it, and once the handler returns
 *   its placeholder response the `101` is written on the raw connection and
 *   the socket starts. Any other response is written as is, then the
 *   connection closes.
 *
 * @module
 */

import { markExactBody } from "./request_body.ts";
import http from "node:http";
import type { Duplex } from "node:stream";
import { getRequestListener } from "@hono/node-server";
import type { WebSocketUpgrader } from "./app.ts";
import type { TunnelSocket } from "../session/tunnel_server.ts";
import { DEFAULT_MAX_MESSAGE_BYTES } from "../session/tunnel_server.ts";
import { answeredSubprotocol } from "./subprotocol.ts";
import { type ByteConn, ServerWebSocket } from "./websocket_conn.ts";
import { websocketAccept } from "./websocket_handshake.ts";
import { HttpProblem, problemResponse } from "./problem.ts";
import type { PeerHandler } from "./serve_guard.ts";

/** A connection node:http can take, and that can hand its raw bytes to a WebSocket. */
export interface UpgradableSocket extends Duplex {
  readonly remoteAddress: string;
  /** Detaches the connection after an upgrade (see `DenoConnSocket.takeOver`). */
  takeOver(head: Uint8Array): { conn: ByteConn; initial: Uint8Array };
  /** Closes the connection at once. */
  terminate(): void;
}

/** Timeouts and limits of the engine. */
export interface NodeHttpEngineOptions {
  /** Time for a request head to arrive, from the connection or the previous response (ms). Default 10000. */
  headersTimeoutMs?: number;
  /** Time for a whole request (head and body) to arrive (ms). Default 60000. */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this long (ms). Default 30000. */
  keepAliveTimeoutMs?: number;
  /** Largest WebSocket message accepted (fragments together); close 1009 above. Default 1 MiB. */
  maxMessageBytes?: number;
  /** WebSockets idle this long get a ping, and close when no pong comes back (s). Default 60. */
  idleTimeoutSeconds?: number;
}

/** The engine: feed it connections. */
export interface NodeHttpEngine {
  /** Serves one accepted connection. */
  handle(socket: UpgradableSocket): void;
  /** Open WebSockets (for shutdown). */
  readonly websockets: Set<ServerWebSocket>;
  /** Stops node:http's timers. */
  close(): void;
}

interface PendingUpgrade {
  ws?: ServerWebSocket;
  placeholder?: Response;
}

/**
 * Builds the engine around `build`'s handler (which gets the upgrader its
 * routes call); `wrap` puts the adapter's checks (`guardHandler`) around it.
 *
 * @example
 * ```ts
 * const engine = createNodeHttpEngine({}, (up) => createApp({ registry, upgradeWebSocket: up }).fetch,
 *   (h) => guardHandler(h, {}));
 * engine.handle(new DenoConnSocket(conn, release));
 * ```
 */
export function createNodeHttpEngine(
  options: NodeHttpEngineOptions,
  build: (upgradeWebSocket: WebSocketUpgrader) => (req: Request) => Response | Promise<Response>,
  wrap: (handler: (req: Request) => Response | Promise<Response>) => PeerHandler,
): NodeHttpEngine {
  const headersTimeout = options.headersTimeoutMs ?? 10_000;
  const requestTimeout = Math.max(options.requestTimeoutMs ?? 60_000, headersTimeout);
  const maxMessage = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const idleMs = (options.idleTimeoutSeconds ?? 60) * 1000;
  const pending = new WeakMap<Request, PendingUpgrade>();
  const websockets = new Set<ServerWebSocket>();

  const upgrader: WebSocketUpgrader = (req, upgradeOptions) => {
    const ctx = pending.get(req);
    if (!ctx) {
      throw new HttpProblem(
        "EUPGRADE",
        "this request cannot be upgraded (not an HTTP/1.1 upgrade)",
      );
    }
    const protocol = answeredSubprotocol(req, upgradeOptions);
    const ws = new ServerWebSocket({
      maxMessageBytes: maxMessage,
      idleTimeoutMs: idleMs,
      protocol,
    });
    ctx.ws = ws;
    ctx.placeholder = new Response(null, { status: 200 });
    return { socket: ws as TunnelSocket, response: ctx.placeholder };
  };
  const handler = wrap(build(upgrader));

  const closeOnError = (res: Response): Response => {
    if (res.status !== 408 && res.status !== 413) return res;
    const headers = new Headers(res.headers);
    headers.set("connection", "close");
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
  };

  const listener = getRequestListener(
    async (req, env) => {
      const incoming = (env as { incoming: http.IncomingMessage }).incoming;
      const peer = (incoming.socket as unknown as UpgradableSocket).remoteAddress ?? "";
      // node:http's parser delivers exactly the declared body: small ones are read whole.
      return closeOnError(await handler(markExactBody(req), peer));
    },
    { overrideGlobalObjects: true },
  );

  const server = http.createServer({
    headersTimeout,
    requestTimeout,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000,
    connectionsCheckingInterval: Math.min(1000, headersTimeout),
  }, listener);
  // The server never listens itself: node:http keeps keep-alive connections and
  // checks its timeouts only for a listening server.
  Object.defineProperty(server, "listening", { get: () => true });
  server.emit("listening");
  server.on("clientError", (err: Error & { code?: string }, socket: Duplex) => {
    // A malformed head, or a head/request timeout: answer when possible, then close
    // (after the linger of destroySoon, so that the answer is read).
    const soon = (socket as unknown as { destroySoon?: () => void }).destroySoon;
    if (socket.writable && soon) {
      const status = err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? "408 Request Timeout"
        : err.code === "HPE_HEADER_OVERFLOW"
        ? "431 Request Header Fields Too Large"
        : "400 Bad Request";
      socket.write(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      soon.call(socket);
    } else {
      socket.destroy();
    }
  });
  server.on("upgrade", (incoming: http.IncomingMessage, socket: Duplex, head: Uint8Array) => {
    void upgrade(incoming, socket as UpgradableSocket, head);
  });

  const upgrade = async (
    incoming: http.IncomingMessage,
    socket: UpgradableSocket,
    head: Uint8Array,
  ): Promise<void> => {
    const headers = new Headers();
    const raw = incoming.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      try {
        headers.append(raw[i], raw[i + 1]);
      } catch {
        // A header the fetch API refuses: node:http already checked the syntax.
      }
    }
    const ac = new AbortController();
    socket.once("close", () => ac.abort());
    const req = new Request(`http://${headers.get("host") || "localhost"}${incoming.url ?? "/"}`, {
      method: incoming.method,
      headers,
      signal: ac.signal,
    });
    const ctx: PendingUpgrade = {};
    pending.set(req, ctx);
    let res: Response;
    try {
      res = await handler(req, socket.remoteAddress ?? "");
    } catch (err) {
      console.error("netisle: unhandled error in an upgrade:", err);
      res = problemResponse("EINTERNAL", "internal error; see the server log");
    }
    const ws = ctx.ws;
    if (ws && res === ctx.placeholder) {
      if (socket.destroyed) {
        ws.terminate();
        return;
      }
      const accept = await websocketAccept(req.headers.get("sec-websocket-key") ?? "");
      const { conn, initial } = socket.takeOver(head);
      const lines = [
        "HTTP/1.1 101 Switching Protocols",
        "upgrade: websocket",
        "connection: Upgrade",
        `sec-websocket-accept: ${accept}`,
      ];
      if (ws.protocol) lines.push(`sec-websocket-protocol: ${ws.protocol}`);
      try {
        await writeAll(conn, new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
      } catch {
        conn.close();
        ws.terminate();
        return;
      }
      websockets.add(ws);
      ws.addEventListener("close", () => websockets.delete(ws));
      ws.start(conn, initial);
      return;
    }
    ws?.terminate();
    await writeResponse(socket, res);
  };

  return {
    handle(socket) {
      server.emit("connection", socket);
    },
    websockets,
    close() {
      server.close(() => {});
    },
  };
}

async function writeAll(conn: ByteConn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(off === 0 ? data : data.subarray(off));
}

/** Writes `res` on a connection that is not upgraded, then closes it. */
async function writeResponse(socket: UpgradableSocket, res: Response): Promise<void> {
  let body: Uint8Array;
  try {
    body = new Uint8Array(await res.arrayBuffer());
  } catch {
    body = new Uint8Array(0);
  }
  const lines = [`HTTP/1.1 ${res.status} ${http.STATUS_CODES[res.status] ?? "Unknown"}`];
  res.headers.forEach((value, name) => {
    if (name !== "connection" && name !== "content-length" && name !== "transfer-encoding") {
      lines.push(`${name}: ${value}`);
    }
  });
  lines.push(`content-length: ${body.length}`, "connection: close");
  if (socket.destroyed) return;
  socket.write(new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
  if (body.length > 0) socket.write(body);
  (socket as unknown as { destroySoon(): void }).destroySoon();
}
