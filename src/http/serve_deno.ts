/**
 * The Deno adapter. It owns the accept loop (`Deno.listen`) and feeds each
 * connection to this project's HTTP/1.1 engine (`http1_engine.ts`: head,
 * body and keep-alive timeouts; bounded heads; bounded WebSockets of
 * `websocket_conn.ts`), so that:
 *
 * - an accept error (EMFILE, ENFILE, ECONNABORTED, …) is logged (at most one
 *   line per kind per 5 s) and retried after a short back-off; it never ends
 *   the server (`Deno.serve` ends on it);
 * - connections are capped in total and per client address, refused ones
 *   closed at once, before a byte is read;
 * - an idle or half-sent request head is closed after `headersTimeoutMs`;
 * - WebSocket messages are bounded before they are buffered.
 *
 * On Deno Deploy (`DENO_DEPLOYMENT_ID` set, or `engine: "deno-serve"`) the
 * platform owns the sockets: `Deno.serve` and `Deno.upgradeWebSocket` are
 * used as before (see the README's security section for what that leaves
 * unbounded). With the isolated front door's adapter, the only file of
 * src/http that uses `Deno.*`.
 *
 * @module
 */

import { type AppOptions, createApp, type WebSocketUpgrader } from "./app.ts";
import type { TunnelSocket } from "../session/tunnel_server.ts";
import { answeredSubprotocol } from "./subprotocol.ts";
import { ConnectionGate, RateLimitedLog } from "./connection_gate.ts";
import { Http1Engine, type Http1EngineOptions } from "./http1_engine.ts";
import { type GuardedHandler, guardHandler, type ServeGuardOptions } from "./serve_guard.ts";
import { HttpProblem } from "./problem.ts";

/** How {@linkcode serveDenoFetch} listens (shared by the in-process and the isolated server). */
export interface DenoListenOptions extends Http1EngineOptions, ServeGuardOptions {
  /** Omitted: 0.0.0.0 (on Deno Deploy the platform picks; see examples/deno/deploy.ts). */
  hostname?: string;
  /** Omitted: 8000 (ignored on Deno Deploy). */
  port?: number;
  /** Called once the server listens, with its base URL. */
  onListen?: (url: string) => void;
  /** Aborts the server: stops accepting and closes every connection. */
  signal?: AbortSignal;
  /**
   * Open connections at most (WebSockets included); more are closed at once.
   * Default: 3/4 of the process's file-descriptor limit, at most 10,000.
   */
  maxConnections?: number;
  /**
   * Open connections at most per client address (IPv6: per /64). Default 0 =
   * none. Not applied behind a trusted proxy (`trustProxy`): every connection
   * comes from the proxy there.
   */
  maxConnectionsPerAddress?: number;
  /**
   * `"deno-serve"`: `Deno.serve` and `Deno.upgradeWebSocket` (the default on
   * Deno Deploy): no head timeout, no connection caps, WebSocket messages
   * buffered whole before the size check, and an accept error ends it (it is
   * then started again after a back-off). Default `"netisle"`.
   */
  engine?: "netisle" | "deno-serve";
}

/** Options of {@linkcode serveDeno}. */
export interface ServeDenoOptions extends Omit<AppOptions, "upgradeWebSocket">, DenoListenOptions {}

/** A running Deno server. */
export interface DenoServer {
  /** Where it listens. */
  readonly addr: { hostname: string; port: number };
  /** Resolves once the server stopped (after `shutdown` or the signal). */
  readonly finished: Promise<void>;
  /** Stops accepting, closes every connection; resolves when done. */
  shutdown(): Promise<void>;
  /** Bytes of request bodies reserved in the body budget now (default engine). */
  readonly bodyBytesInFlight?: () => number;
  /** Connections open now and refused so far (by reason); undefined with `Deno.serve`. */
  readonly connections?: { open(): number; refused: { total: number; "per-address": number } };
}

/** Default {@linkcode DenoListenOptions.maxConnections}: 3/4 of the fd limit, in 64..10000. */
export function defaultMaxConnections(): number {
  let soft = 1024;
  try {
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
    if (m) soft = m[1] === "unlimited" ? 1 << 20 : Number(m[1]);
  } catch {
    // Not Linux, or no permission (Deno reads /proc/self only with --allow-all):
    // assume the common 1024.
  }
  return Math.max(64, Math.min(10_000, Math.floor(soft * 0.75)));
}

/**
 * Serves a fetch handler on Deno. `build` gets the WebSocket upgrader the
 * handler's routes call and returns the handler. One mechanism for
 * `serveDeno` and the isolated front door.
 *
 * @example
 * ```ts
 * serveDenoFetch({ port: 8787 }, (upgradeWebSocket) => createApp({ registry, upgradeWebSocket }).fetch);
 * ```
 */
export function serveDenoFetch(
  options: DenoListenOptions,
  build: (upgradeWebSocket: WebSocketUpgrader) => (req: Request) => Response | Promise<Response>,
): DenoServer {
  const engine = options.engine ??
    (safeEnv("DENO_DEPLOYMENT_ID") ? "deno-serve" : "netisle");
  if (engine === "deno-serve") return serveWithDenoServe(options, build);

  const log = new RateLimitedLog(5000);
  const trustProxy = options.trustProxy ?? 0;
  const gate = new ConnectionGate({
    maxConnections: options.maxConnections ?? defaultMaxConnections(),
    maxConnectionsPerAddress: trustProxy > 0 ? 0 : options.maxConnectionsPerAddress ?? 0,
  });
  let guard: GuardedHandler | undefined;
  const http = new Http1Engine(options, build, (h) => guard = guardHandler(h, options));
  const listener = Deno.listen({
    hostname: options.hostname ?? "0.0.0.0",
    port: options.port ?? 8000,
  });
  const addr = listener.addr as Deno.NetAddr;
  let stopping = false;
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => resolveFinished = r);

  const acceptLoop = async () => {
    let backoff = 10;
    while (!stopping) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept() as Deno.TcpConn;
      } catch (err) {
        if (stopping) break;
        if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) break;
        const code = (err as { code?: string }).code ?? (err as Error).name;
        log.log(
          `accept:${code}`,
          `accept failed (${code}: ${(err as Error).message}); retrying in ${backoff} ms ` +
            `(${gate.open} connections open)`,
          Date.now(),
        );
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 1000);
        continue;
      }
      backoff = 10;
      const peer = (conn.remoteAddr as Deno.NetAddr).hostname;
      const ticket = gate.admit(peer);
      if (typeof ticket === "string") {
        try {
          conn.close();
        } catch {
          // Gone already.
        }
        log.log(
          `refuse:${ticket}`,
          ticket === "total"
            ? `refused a connection from ${peer}: ${gate.limits.maxConnections} connections open (maxConnections)`
            : `refused a connection from ${peer}: ${gate.limits.maxConnectionsPerAddress} open from that address (maxConnectionsPerAddress)`,
          Date.now(),
        );
        continue;
      }
      try {
        conn.setNoDelay(true);
      } catch {
        // Closed already: the engine finds out.
      }
      http.serve(conn, peer, ticket);
    }
  };

  const shutdown = (): Promise<void> => {
    if (!stopping) {
      stopping = true;
      try {
        listener.close();
      } catch {
        // Closed already.
      }
      http.close();
      resolveFinished();
    }
    return finished;
  };
  if (options.signal) {
    if (options.signal.aborted) void shutdown();
    else options.signal.addEventListener("abort", () => void shutdown(), { once: true });
  }
  void acceptLoop();
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  options.onListen?.(`http://${host}:${addr.port}`);
  return {
    addr: { hostname: addr.hostname, port: addr.port },
    finished,
    shutdown,
    connections: { open: () => gate.open, refused: gate.refused },
    bodyBytesInFlight: () => guard?.bodyBytesInFlight() ?? 0,
  };
}

/** `Deno.serve` and `Deno.upgradeWebSocket`: where the platform owns the sockets (Deno Deploy). */
function serveWithDenoServe(
  options: DenoListenOptions,
  build: (upgradeWebSocket: WebSocketUpgrader) => (req: Request) => Response | Promise<Response>,
): DenoServer {
  const handler = guardHandler(
    build((req, upgradeOptions) => {
      const protocol = answeredSubprotocol(req, upgradeOptions);
      try {
        const { socket, response } = Deno.upgradeWebSocket(req, {
          idleTimeout: options.idleTimeoutSeconds ?? 60,
          protocol,
        });
        return { socket: socket as unknown as TunnelSocket, response };
      } catch (err) {
        throw new HttpProblem("EINVAL", `malformed WebSocket handshake: ${(err as Error).message}`);
      }
    }),
    options,
  );
  let addr = { hostname: options.hostname ?? "0.0.0.0", port: options.port ?? 8000 };
  const log = new RateLimitedLog(5000);
  const stop = new AbortController();
  options.signal?.addEventListener("abort", () => stop.abort(), { once: true });
  let current: Deno.HttpServer | undefined;
  let listened = false;
  const start = () =>
    Deno.serve({
      hostname: options.hostname,
      // After an accept error ended the first server, the next one takes the same port.
      port: listened ? addr.port : options.port,
      signal: stop.signal,
      onListen: ({ hostname, port }) => {
        addr = { hostname, port };
        if (listened) return;
        listened = true;
        const host = hostname.includes(":") ? `[${hostname}]` : hostname;
        options.onListen?.(`http://${host}:${port}`);
      },
    }, (req, info) => handler(req, (info.remoteAddr as Deno.NetAddr).hostname ?? ""));
  // Deno.serve ends when an accept fails (EMFILE): serve again after a back-off, until stopped.
  const finished = (async () => {
    let backoff = 100;
    while (!stop.signal.aborted) {
      try {
        current = start();
        await current.finished;
        return;
      } catch (err) {
        if (stop.signal.aborted) return;
        log.log(
          "deno-serve",
          `Deno.serve stopped (${(err as Error).message}); serving again in ${backoff} ms`,
          Date.now(),
        );
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  })();
  return {
    get addr() {
      return addr;
    },
    finished,
    shutdown: async () => {
      stop.abort();
      await current?.shutdown();
      await finished;
    },
  };
}

function safeEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/**
 * Serves the netisle API on Deno.
 *
 * @example
 * ```ts
 * serveDeno({ registry, hostname: "127.0.0.1", port: 8787 });
 * ```
 */
export function serveDeno(options: ServeDenoOptions): DenoServer {
  return serveDenoFetch(
    options,
    (upgradeWebSocket) => createApp({ ...options, upgradeWebSocket }).fetch,
  );
}
