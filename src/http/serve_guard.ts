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
 *
 * @module
 */

import { checkWebSocketHandshake, wantsWebSocket } from "./websocket_handshake.ts";
import { clientAddress, SessionRateLimit } from "./session_rate_limit.ts";

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
}

/** A fetch handler that also gets the connection's peer address. */
export type PeerHandler = (req: Request, peer: string) => Response | Promise<Response>;

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
): PeerHandler {
  const limit = options.sessionsPerMinute
    ? new SessionRateLimit({ perMinute: options.sessionsPerMinute })
    : undefined;
  const hops = options.trustProxy ?? 0;
  return (req, peer) => {
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
    return handler(req);
  };
}
