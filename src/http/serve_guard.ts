/**
 * What every runtime adapter checks before a request reaches the app (the
 * in-process app or the isolated front door): the same answers on Deno and
 * Bun, whichever server runs underneath.
 *
 * - A malformed WebSocket handshake answers 400 `EINVAL` (426 `EUPGRADE` for
 *   a version other than 13), never a 500 with a stack trace
 *   (`websocket_handshake.ts`).
 * - `POST /v1/sessions` is rate-limited per client address when a
 *   {@linkcode SessionRateLimit} is given (429 `ERATELIMIT` + `Retry-After`).
 * - Request bodies in flight are budgeted before a byte of them is read: a
 *   request with a body reserves its `Content-Length` (a chunked one the
 *   largest body a route takes, 1 MiB + 64 KiB) until its handler answered;
 *   past the budget (in total, or a quarter of it from one address) it gets
 *   429 `ENOBUFS` with `Retry-After: 1` at once. Slow bodies (each held up to
 *   the 30 s body timeout) can then hold at most the budget.
 *
 * @module
 */

import { checkWebSocketHandshake, wantsWebSocket } from "./websocket_handshake.ts";
import { clientAddress, SessionRateLimit } from "./session_rate_limit.ts";
import { noteRequestPeer } from "./request_peer.ts";
import { addressGroup } from "./connection_gate.ts";
import { problemResponse } from "./problem.ts";
import { requestHasBody, requestHeader } from "./incoming_request.ts";

/** Options of {@linkcode guardHandler}. */
export interface ServeGuardOptions {
  /**
   * Sessions one client address may create per minute (`POST /v1/sessions`),
   * 429 `ERATELIMIT` beyond. Omitted or 0: no limit.
   */
  sessionsPerMinute?: number;
  /**
   * Take the client address from `X-Forwarded-For`, this many proxies from the
   * right (1: the entry the one proxy in front of the server appended). 0 or
   * omitted: the connection's peer address. Only for servers that are reached
   * through that proxy alone: anyone else can write the header.
   */
  trustProxy?: number;
  /**
   * Bytes of request bodies in flight at most (one client address: a
   * quarter). Omitted or 0: no budget.
   */
  bodyBudgetBytes?: number;
}

/** The largest body a route takes (a `send` of 1 MiB) plus slack: what a chunked body reserves. */
const CHUNKED_RESERVE = 1024 * 1024 + 64 * 1024;

/** A fetch handler that also gets the connection's peer address. */
export type PeerHandler = (req: Request, peer: string) => Response | Promise<Response>;

/** The guarded handler, with its body budget's use. */
export type GuardedHandler = PeerHandler & {
  /** Bytes of request bodies reserved now. */
  bodyBytesInFlight(): number;
};

/**
 * Wraps `handler` with the checks above.
 *
 * @example
 * ```ts
 * const guarded = guardHandler(app.fetch, { sessionsPerMinute: 30 });
 * await guarded(request, "192.0.2.7");
 * ```
 */
export function guardHandler(
  handler: (req: Request) => Response | Promise<Response>,
  options: ServeGuardOptions,
  now: () => number = Date.now,
): GuardedHandler {
  const limit = options.sessionsPerMinute
    ? new SessionRateLimit({ perMinute: options.sessionsPerMinute })
    : undefined;
  const hops = options.trustProxy ?? 0;
  const budget = options.bodyBudgetBytes ?? 0;
  const perAddressBudget = Math.floor(budget / 4);
  let inFlight = 0;
  const byAddress = new Map<string, number>();
  const guarded: PeerHandler = (req, peer) => {
    noteRequestPeer(req, peer);
    if (wantsWebSocket(req)) {
      const refusal = checkWebSocketHandshake(req);
      if (refusal) return refusal;
    }
    if (limit && req.method === "POST") {
      const path = new URL(req.url).pathname;
      if (path === "/v1/sessions" || path === "/v1/sessions/") {
        const refusal = limit.check(clientAddress(req.headers, peer, hops), now());
        if (refusal) return refusal;
      }
    }
    if (budget > 0 && req.method !== "GET" && req.method !== "HEAD" && requestHasBody(req)) {
      const length = requestHeader(req, "content-length");
      const reserve = length === null
        ? CHUNKED_RESERVE
        : Math.min(Math.max(0, Number(length) || 0), CHUNKED_RESERVE);
      if (reserve > 0) {
        // The headers are read only behind a trusted proxy (most requests never need them made).
        const who = addressGroup(hops > 0 ? clientAddress(req.headers, peer, hops) : peer);
        const mine = byAddress.get(who) ?? 0;
        if (inFlight + reserve > budget || mine + reserve > perAddressBudget) {
          const res = problemResponse(
            "ENOBUFS",
            `too many request bodies in flight (${inFlight} bytes in total, ${mine} from ${who}; ` +
              `budget ${budget}, ${perAddressBudget} per address): retry shortly`,
            { headers: { "retry-after": "1", connection: "close" } },
          );
          return res;
        }
        inFlight += reserve;
        byAddress.set(who, mine + reserve);
        const release = () => {
          inFlight -= reserve;
          const left = (byAddress.get(who) ?? reserve) - reserve;
          if (left <= 0) byAddress.delete(who);
          else byAddress.set(who, left);
        };
        let result: Response | Promise<Response>;
        try {
          result = handler(req);
        } catch (err) {
          release();
          throw err;
        }
        return Promise.resolve(result).finally(release);
      }
    }
    return handler(req);
  };
  return Object.assign(guarded, { bodyBytesInFlight: () => inFlight });
}
