/**
 * The Bun adapter: serves the app with `Bun.serve` and upgrades tunnels and
 * socket streams with `server.upgrade`. The only file of src/http that uses
 * `Bun.*`.
 *
 * Bun's server-side WebSocket (`ServerWebSocket`) has no event listeners: its
 * events go to the handlers given to `Bun.serve({ websocket })`, and each
 * socket carries its own `ws.data`. The shim {@linkcode BunTunnelSocket} puts
 * the standard-looking {@linkcode TunnelSocket} on top: the upgrade hook
 * creates one per request and passes it as `ws.data`; the handlers forward
 * `open`, `message` and `close` to it.
 *
 * - Backpressure: `ws.send` returns -1 when the message was queued behind
 *   others (backpressure) and 0 when Bun dropped it (over
 *   `backpressureLimit`, or closed). `bufferedAmount` is
 *   `ws.getBufferedAmount()`, which the tunnel and the socket streams already
 *   watch; a drop (0) on an open socket throws, which the tunnel counts as a
 *   lost frame and a socket stream turns into a 1011 close (a byte stream
 *   cannot lose a chunk).
 * - Keepalive: `idleTimeout` with `sendPings`: Bun pings a socket idle for
 *   `idleTimeoutSeconds` and closes it when nothing (no pong) arrives, like
 *   Deno's `idleTimeout`.
 * - Long-polls (`recv`, `accept`, the pcap stream) would hit Bun's HTTP idle
 *   timeout (10 s by default), so each request has it switched off with
 *   `server.timeout(req, 0)`.
 *
 * @module
 */

import { type AppOptions, createApp, type WebSocketUpgrader } from "./app.ts";
import type { TunnelSocket } from "../session/tunnel_server.ts";
import { answeredSubprotocol } from "./subprotocol.ts";
import { problemResponse } from "./problem.ts";
import { DEFAULT_MAX_MESSAGE_BYTES } from "../session/tunnel_server.ts";
import { guardHandler, type ServeGuardOptions } from "./serve_guard.ts";

/** The part of Bun's `ServerWebSocket` this adapter uses. */
export interface BunServerWebSocket {
  data: BunTunnelSocket;
  readonly readyState: number;
  binaryType?: string;
  send(data: Uint8Array | ArrayBuffer | string): number;
  close(code?: number, reason?: string): void;
  getBufferedAmount(): number;
}

/** The part of Bun's `Server` this adapter uses. */
export interface BunServer {
  readonly url: URL;
  readonly hostname?: string;
  readonly port?: number;
  upgrade(req: Request, options: { data: BunTunnelSocket; headers?: HeadersInit }): boolean;
  timeout(req: Request, seconds: number): void;
  requestIP?(req: Request): { address: string } | null;
  stop(closeActiveConnections?: boolean): Promise<void>;
}

/** The part of the `Bun` global this adapter uses. */
interface BunGlobal {
  serve(options: {
    hostname: string;
    port: number;
    idleTimeout?: number;
    fetch(req: Request, server: BunServer): Promise<Response | undefined>;
    websocket: {
      idleTimeout: number;
      sendPings: boolean;
      maxPayloadLength: number;
      backpressureLimit: number;
      open(ws: BunServerWebSocket): void;
      message(ws: BunServerWebSocket, message: string | Uint8Array | ArrayBuffer): void;
      close(ws: BunServerWebSocket, code: number, reason: string): void;
    };
  }): BunServer;
}

type Listener = (ev: { data: unknown }) => void;

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/**
 * A {@linkcode TunnelSocket} over a Bun `ServerWebSocket`: created before the
 * upgrade (state CONNECTING), bound to the Bun socket in the `open` handler.
 * `close()` before `open` closes the socket as soon as it opens.
 */
export class BunTunnelSocket implements TunnelSocket {
  /** `"arraybuffer"` (what the tunnel and streams ask for) or `"uint8array"`. */
  binaryType = "arraybuffer";
  #ws: BunServerWebSocket | undefined;
  #state = CONNECTING;
  #pendingClose: { code?: number; reason?: string } | undefined;
  #listeners = new Map<string, Listener[]>();

  /** CONNECTING until Bun's `open`, then the Bun socket's state; CLOSED after `close`. */
  get readyState(): number {
    if (this.#state !== OPEN || !this.#ws) return this.#state;
    return this.#ws.readyState;
  }

  /** Bytes Bun has queued for the client and not yet written (`getBufferedAmount()`). */
  get bufferedAmount(): number {
    return this.#ws && this.#state === OPEN ? this.#ws.getBufferedAmount() : 0;
  }

  /**
   * Sends one binary message. Throws when the socket is not open or Bun
   * dropped the message (status 0, over its backpressure limit).
   */
  send(data: Uint8Array | ArrayBuffer): void {
    const ws = this.#ws;
    if (!ws || this.#state !== OPEN) {
      throw new Error(`WebSocket is not open (readyState ${this.readyState})`);
    }
    const status = ws.send(data);
    if (status === 0) {
      throw new Error(
        `Bun dropped a ${data.byteLength}-byte WebSocket message (status 0: ` +
          `buffered ${ws.getBufferedAmount()} bytes, over the backpressure limit, or closed)`,
      );
    }
  }

  /** Closes the WebSocket (after it opens, when called before). */
  close(code?: number, reason?: string): void {
    if (this.#state >= CLOSING) return;
    if (!this.#ws) {
      this.#pendingClose = { code, reason };
      return;
    }
    this.#state = CLOSING;
    this.#ws.close(code, reason);
  }

  /** Adds a listener for `open`, `message`, `close` or `error`. */
  addEventListener(type: string, listener: Listener): void {
    const list = this.#listeners.get(type) ?? [];
    list.push(listener);
    this.#listeners.set(type, list);
  }

  /** Bun's `open` handler: binds the Bun socket. */
  handleOpen(ws: BunServerWebSocket): void {
    this.#ws = ws;
    ws.binaryType = this.binaryType === "arraybuffer" ? "arraybuffer" : "uint8array";
    this.#state = OPEN;
    if (this.#pendingClose) {
      const { code, reason } = this.#pendingClose;
      this.close(code, reason);
      return;
    }
    this.#emit("open", undefined);
  }

  /** Bun's `message` handler. */
  handleMessage(message: string | Uint8Array | ArrayBuffer): void {
    if (this.#state !== OPEN) return;
    this.#emit("message", message);
  }

  /** Bun's `close` handler; also marks a failed upgrade. */
  handleClose(): void {
    if (this.#state === CLOSED) return;
    this.#state = CLOSED;
    this.#emit("close", undefined);
  }

  #emit(type: string, data: unknown): void {
    for (const l of this.#listeners.get(type) ?? []) l({ data });
  }
}

/** How {@linkcode serveBunFetch} listens (shared by the in-process and the isolated server). */
export interface BunListenOptions extends ServeGuardOptions {
  hostname: string;
  port: number;
  /** Called once the server listens, with its base URL. */
  onListen?: (url: string) => void;
  /** Stops the server. */
  signal?: AbortSignal;
  /**
   * WebSockets idle this long get a ping and are closed when nothing comes
   * back (Bun's `idleTimeout` with `sendPings`). Default 60.
   */
  idleTimeoutSeconds?: number;
  /**
   * Largest WebSocket message accepted, fragments together (Bun closes with
   * 1009 above it, before buffering more). Default 1 MiB, the tunnel's and the
   * streams' own limit.
   */
  maxMessageBytes?: number;
  /**
   * A connection that sends no request (head) for this long is closed: Bun's
   * HTTP `idleTimeout`, in whole seconds (1..255). Default 10000 ms. Each
   * request switches it off for itself once its head arrived (long-polls).
   */
  headersTimeoutMs?: number;
}

/** Options of {@linkcode serveBun}. */
export interface ServeBunOptions extends Omit<AppOptions, "upgradeWebSocket">, BunListenOptions {}

/**
 * Serves a fetch handler on Bun with Bun's WebSocket server. `build` gets the
 * WebSocket upgrader that the handler's routes call (it answers the tunnel
 * subprotocol the route picks and gives each socket a {@linkcode BunTunnelSocket})
 * and returns the handler. One mechanism for `serveBun` and the isolated
 * front door.
 *
 * @example
 * ```ts
 * const server = serveBunFetch({ hostname: "127.0.0.1", port: 8787 }, (upgradeWebSocket) =>
 *   createApp({ registry, upgradeWebSocket }).fetch);
 * ```
 */
export function serveBunFetch(
  options: BunListenOptions,
  build: (upgradeWebSocket: WebSocketUpgrader) => (req: Request) => Response | Promise<Response>,
): BunServer {
  const bun = (globalThis as unknown as { Bun?: BunGlobal }).Bun;
  if (!bun) throw new TypeError("serveBun needs the Bun runtime (no global Bun here)");
  /** Requests upgraded by the hook: their fetch answers nothing (Bun sends the 101). */
  const upgraded = new WeakSet<Request>();
  let current: BunServer | undefined;
  const app = build((req, upgradeOptions) => {
    const socket = new BunTunnelSocket();
    // Answer the subprotocol the route picks (RFC 6455 §4.2.2), like serve_deno.ts. Left to
    // itself Bun echoes the first one offered; an empty value makes it send none.
    const offered = req.headers.get("sec-websocket-protocol");
    const protocol = answeredSubprotocol(req, upgradeOptions);
    const headers: Record<string, string> = {};
    if (offered) headers["sec-websocket-protocol"] = protocol ?? "";
    if (current?.upgrade(req, { data: socket, headers })) {
      upgraded.add(req);
      // Bun answers 101 itself; this response is never sent (fetch returns undefined).
      return { socket, response: new Response(null, { status: 200 }) };
    }
    socket.handleClose();
    return {
      socket,
      response: problemResponse("EUPGRADE", "the WebSocket upgrade failed (bad handshake)"),
    };
  });
  const handler = guardHandler(app, options);
  const server = bun.serve({
    hostname: options.hostname,
    port: options.port,
    // Closes connections idle before their request head (and between requests).
    idleTimeout: Math.max(1, Math.min(255, Math.ceil((options.headersTimeoutMs ?? 10_000) / 1000))),
    async fetch(req, srv) {
      current = srv;
      // Long-polls and streams end on their own terms, not on Bun's idle timeout.
      srv.timeout(req, 0);
      const res = await handler(req, srv.requestIP?.(req)?.address ?? "");
      if (upgraded.has(req)) return undefined;
      // A body that timed out or was too large is not read on: close the connection.
      if (res.status === 408 || res.status === 413) {
        const headers = new Headers(res.headers);
        headers.set("connection", "close");
        return new Response(res.body, { status: res.status, headers });
      }
      return res;
    },
    websocket: {
      idleTimeout: options.idleTimeoutSeconds ?? 60,
      sendPings: true,
      maxPayloadLength: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      // Above the tunnel's and the streams' own high-water marks (4 MiB, 1 MiB): Bun
      // only drops once they already stopped sending.
      backpressureLimit: 16 * 1024 * 1024,
      open: (ws) => ws.data.handleOpen(ws),
      message: (ws, message) => ws.data.handleMessage(message),
      close: (ws) => ws.data.handleClose(),
    },
  });
  current = server;
  if (options.signal) {
    if (options.signal.aborted) void server.stop(true);
    else options.signal.addEventListener("abort", () => void server.stop(true), { once: true });
  }
  const host = options.hostname.includes(":") ? `[${options.hostname}]` : options.hostname;
  options.onListen?.(`http://${host}:${server.port ?? options.port}`);
  return server;
}

/**
 * Serves the netisle API on Bun, tunnels and socket streams included.
 *
 * @example
 * ```ts
 * const server = serveBun({ registry, hostname: "127.0.0.1", port: 8787 });
 * await server.stop();
 * ```
 */
export function serveBun(options: ServeBunOptions): BunServer {
  return serveBunFetch(
    options,
    (upgradeWebSocket) => createApp({ ...options, upgradeWebSocket }).fetch,
  );
}
