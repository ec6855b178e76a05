/**
 * This project's HTTP/1.1 server engine, for connections an adapter accepted
 * itself (the Deno adapter's accept loop on `Deno.listen`): requests become
 * web-standard `Request`s for the app's fetch handler, behind the adapter's
 * guard; responses are written back; WebSocket upgrades go to the bounded
 * RFC 6455 engine of `websocket_conn.ts`.
 *
 * Why not `Deno.serve`: it has no timeout for request heads, no hook per
 * connection (so no connection cap), its accept loop ends the server on
 * EMFILE, and `Deno.upgradeWebSocket` buffers whole messages of any size.
 * Why not `node:http` (the engine before this one): its JavaScript per
 * request and the stream wrapper around each `Deno.Conn` cost about half of
 * `Deno.serve`'s request rate.
 *
 * The engine owns what its connections share: the head parser's bounds, the
 * deadlines of every connection behind one timer (`connection_timeouts.ts`),
 * a pool of write buffers, the cached `Date`, the upgrader the app's routes
 * call. Each connection is an {@linkcode Http1Connection}.
 *
 * Runtime-neutral: connections are {@linkcode Http1Transport}s, time comes
 * from a {@linkcode Clock}.
 *
 * @module
 */

import type { WebSocketUpgrader } from "./app_env.ts";
import type { TunnelSocket } from "../session/tunnel_server.ts";
import { DEFAULT_MAX_MESSAGE_BYTES } from "../session/tunnel_server.ts";
import { type Clock, SystemClock } from "../session/clock.ts";
import { answeredSubprotocol } from "./subprotocol.ts";
import { ServerWebSocket } from "./websocket_conn.ts";
import { HttpProblem } from "./problem.ts";
import type { PeerHandler } from "./serve_guard.ts";
import { RateLimitedLog } from "./connection_gate.ts";
import { DEFAULT_HEAD_LIMITS, type HeadLimits } from "./http1_head_parser.ts";
import { ConnectionTimeouts } from "./connection_timeouts.ts";
import { BufferPool } from "./buffer_pool.ts";
import { HttpDate } from "./http1_response_head.ts";
import { lazyRequestsWork } from "./incoming_request.ts";
import {
  Http1Connection,
  type Http1Context,
  type Http1Transport,
  LINGER_MS,
  type PendingUpgrade,
} from "./http1_connection.ts";

export type { Http1Transport } from "./http1_connection.ts";

/** Timeouts and limits of the engine. */
export interface Http1EngineOptions {
  /**
   * Time for a request head to arrive, from the connection or from the first
   * byte of a keep-alive connection's next request (ms). Default 10000.
   */
  headersTimeoutMs?: number;
  /** Time for a request body to arrive, from the end of its head (ms). Default 60000. */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this long (ms). Default 30000. */
  keepAliveTimeoutMs?: number;
  /** Largest WebSocket message accepted (fragments together); close 1009 above. Default 1 MiB. */
  maxMessageBytes?: number;
  /** WebSockets idle this long get a ping, and close when no pong comes back (s). Default 60. */
  idleTimeoutSeconds?: number;
  /** Bounds of request heads (default {@linkcode DEFAULT_HEAD_LIMITS}: 16 KiB, 12 KiB lines, 100 fields). */
  headLimits?: Partial<HeadLimits>;
}

/** What the engine takes from its surroundings (tests pass a manual clock and a fixed date). */
export interface Http1EngineEnv {
  /** The clock of the timeouts (default the system clock). */
  clock?: Clock;
  /** The `Date` field value (default: now, IMF-fixdate, made once per second). */
  date?: () => string;
  /** Where rate-limited log lines go (default console.error). */
  print?: (line: string) => void;
  /**
   * Hand the app `IncomingRequest`s (`incoming_request.ts`; default: when
   * {@linkcode lazyRequestsWork} says they work) or real `Request`s (false).
   */
  lazyRequests?: boolean;
}

/** Size of the pooled write buffers: a response head and a small body in one write. */
const WRITE_BUFFER_BYTES = 16 * 1024;

/**
 * The engine: give it connections with {@linkcode Http1Engine.serve}.
 *
 * @example
 * ```ts
 * const engine = new Http1Engine({}, (up) => createApp({ registry, upgradeWebSocket: up }).fetch,
 *   (h) => guardHandler(h, {}));
 * engine.serve(conn, (conn.remoteAddr as Deno.NetAddr).hostname, () => ticket());
 * ```
 */
export class Http1Engine {
  /** Open WebSockets (upgraded connections). */
  readonly websockets = new Set<ServerWebSocket>();
  #live = new Set<Http1Connection>();
  #context: Http1Context;
  #timeouts: ConnectionTimeouts;
  #stopping = false;

  /**
   * Builds the engine around `build`'s handler (which gets the upgrader its
   * routes call); `wrap` puts the adapter's checks (`guardHandler`) around it.
   */
  constructor(
    options: Http1EngineOptions,
    build: (upgradeWebSocket: WebSocketUpgrader) => (req: Request) => Response | Promise<Response>,
    wrap: (handler: (req: Request) => Response | Promise<Response>) => PeerHandler,
    env: Http1EngineEnv = {},
  ) {
    const headersTimeout = options.headersTimeoutMs ?? 10_000;
    const keepAlive = options.keepAliveTimeoutMs ?? 30_000;
    const requestTimeout = options.requestTimeoutMs ?? 60_000;
    const maxMessage = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    const idleMs = (options.idleTimeoutSeconds ?? 60) * 1000;
    const headLimits: HeadLimits = { ...DEFAULT_HEAD_LIMITS, ...options.headLimits };
    for (const [name, v] of Object.entries(headLimits)) {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`headLimits.${name} must be an integer >= 1, got ${v}`);
      }
    }
    const clock = env.clock ?? new SystemClock();
    // Order: TIMEOUT_HEAD, TIMEOUT_IDLE, TIMEOUT_BODY, TIMEOUT_LINGER.
    this.#timeouts = new ConnectionTimeouts(clock, [
      headersTimeout,
      keepAlive,
      requestTimeout,
      LINGER_MS,
    ]);
    const upgrades = new WeakMap<Request, PendingUpgrade>();
    const upgrader: WebSocketUpgrader = (req, upgradeOptions) => {
      const ctx = upgrades.get(req);
      if (!ctx) {
        throw new HttpProblem(
          "EUPGRADE",
          "this request cannot be upgraded (not an HTTP/1.1 upgrade)",
        );
      }
      if (ctx.ws) ctx.ws.terminate();
      const ws = new ServerWebSocket({
        maxMessageBytes: maxMessage,
        idleTimeoutMs: idleMs,
        protocol: answeredSubprotocol(req, upgradeOptions),
      });
      ctx.ws = ws;
      ctx.placeholder = new Response(null, { status: 200 });
      return { socket: ws as TunnelSocket, response: ctx.placeholder };
    };
    const handler = wrap(build(upgrader));
    const date = env.date ?? ((d) => () => d.value())(new HttpDate());
    const log = new RateLimitedLog(5000, env.print);
    const live = this.#live;
    const stopping = () => this.#stopping;
    this.#context = {
      handler,
      lazyRequests: env.lazyRequests ?? lazyRequestsWork(),
      timeouts: this.#timeouts,
      pool: new BufferPool(WRITE_BUFFER_BYTES, 64),
      headLimits,
      date,
      get stopping() {
        return stopping();
      },
      upgrades,
      websockets: this.websockets,
      ended: (conn) => live.delete(conn),
      log: (key, message) => log.log(key, message, clock.now()),
    };
  }

  /** Connections open now (WebSockets included). */
  get open(): number {
    return this.#live.size;
  }

  /** Bounds of request heads. */
  get headLimits(): Readonly<HeadLimits> {
    return this.#context.headLimits;
  }

  /**
   * Serves `conn` (from `peer`) until it closes; `onClose` runs once when it
   * is gone (also when a WebSocket took it over and ended).
   */
  serve(conn: Http1Transport, peer: string, onClose?: () => void): Http1Connection {
    const c = new Http1Connection(this.#context, conn, peer, onClose);
    if (this.#stopping) {
      c.terminate();
      return c;
    }
    this.#live.add(c);
    void c.run();
    return c;
  }

  /** Closes every connection and WebSocket at once and stops the timers (shutdown). */
  close(): void {
    this.#stopping = true;
    for (const ws of this.websockets) ws.terminate();
    for (const c of [...this.#live]) c.terminate();
    this.#timeouts.stop();
  }
}
