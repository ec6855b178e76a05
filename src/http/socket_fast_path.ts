/**
 * The lean path of the socket API's two hot routes, `POST
 * /v1/sessions/:sid/sockets/:id/send` and `.../recv`: a request of the
 * common, valid shape is answered here, before Hono's dispatch, with the
 * same work and the same answer as its Hono route; any other request is left
 * to Hono (the router of everything else, and the one source of every error
 * a request's input can earn).
 *
 * Why: measured in process, the route's framework work (dispatch, the
 * middleware chain, zod's parse of the path and query, the validators' copies
 * of params and query) cost more than the socket operation itself for a
 * 64-byte send or recv.
 *
 * What the lean path takes (everything else falls through to Hono, which
 * then answers exactly as it always did):
 *
 * - the method is `POST` and the path is exactly one of the two routes, with
 *   a session id and a socket id of their schemas' patterns;
 * - the query is empty or names only `timeoutMs` (and, for recv,
 *   `maxBytes`), each once, as plain decimal digits within the schema's
 *   range: values that zod's coercion reads as the same numbers;
 * - the session exists and the bearer token matches (compared in constant
 *   time, as the Hono route compares it again for a request that falls
 *   through);
 * - the app has no CORS origins configured and the host is not one of share
 *   links (those add headers or answer first).
 *
 * From there it does what the route's middleware and handler do, in their
 * order: the body of a send is read under the same bounds
 * (`readRequestBody`: size, deadline, the session's memory quota), the
 * socket operation is the routes' own (`socket_transfer.ts`), a failure
 * becomes the problem response of the app's `onError`
 * ({@linkcode problemOfError}), and the request is logged and counted under
 * its route pattern ({@linkcode RequestRecorder}).
 *
 * @module
 */

import type { Clock, Session, SessionRegistry } from "../session/mod.ts";
import { MAX_POLL_TIMEOUT_MS } from "../socket/poll_deadline.ts";
import { bearerToken, constantTimeEqual } from "./auth.ts";
import { problemOfError } from "./problem.ts";
import { requestHeader } from "./incoming_request.ts";
import { readRequestBody } from "./request_body.ts";
import type { RequestRecorder } from "./request_log.ts";
import { SESSION_ID_PATTERN } from "./schemas.ts";
import { MAX_RECV_BYTES, SOCKET_ID_PATTERN } from "./socket_schemas.ts";
import {
  MAX_SEND_BODY_BYTES,
  recvFromSocket,
  type RecvQuery,
  sendToSocket,
  sentResponse,
} from "./socket_transfer.ts";

/** Route pattern of `send` in the request log and metrics (what Hono's router names it). */
export const SEND_ROUTE = "/v1/sessions/:sid/sockets/:id/send";
/** Route pattern of `recv` in the request log and metrics. */
export const RECV_ROUTE = "/v1/sessions/:sid/sockets/:id/recv";

/** What {@linkcode socketFastPath} needs from the app. */
export interface SocketFastPathOptions {
  /** The sessions. */
  registry: SessionRegistry;
  /** How long a request body may take to arrive, in ms. */
  bodyTimeoutMs: number;
  /** The clock of body deadlines. */
  clock: Clock;
  /** Where requests are logged and counted (the app's). */
  recorder: RequestRecorder;
  /** True for a request the share middleware may answer (it runs before the API). */
  mayBeShare: (req: Request) => boolean;
}

/** A request's target as the lean path takes it. */
export interface FastTarget {
  /** The session id. */
  sid: string;
  /** The socket id. */
  id: string;
  /** The operation. */
  op: "send" | "recv";
  /** The query (maxBytes only for recv). */
  query: RecvQuery;
}

const PREFIX = "/v1/sessions/";
/** `s_` and 22 characters. */
const SID_LENGTH = 24;
const SOCKETS = "/sockets/";
/** `k_` and 16 characters. */
const ID_LENGTH = 18;
const QUESTION = 0x3f;
/** Digits the lean path reads as a number (zod's coercion reads them alike). */
const DIGITS = /^[0-9]{1,7}$/;

/**
 * The target of a request URL when it is one the lean path takes (see the
 * module), else undefined. The path is read from the URL string as Hono's
 * router reads it.
 *
 * @example
 * ```ts
 * fastTarget(`http://h/v1/sessions/${sid}/sockets/${id}/recv?maxBytes=64`);
 * // { sid, id, op: "recv", query: { maxBytes: 64 } }
 * fastTarget(`http://h/v1/sessions/${sid}/sockets/${id}/recv?maxBytes=0x40`); // undefined
 * ```
 */
export function fastTarget(url: string): FastTarget | undefined {
  const scheme = url.indexOf("://");
  if (scheme < 0) return undefined;
  const path = url.indexOf("/", scheme + 3);
  if (path < 0 || !url.startsWith(PREFIX, path)) return undefined;
  const sidAt = path + PREFIX.length;
  const idAt = sidAt + SID_LENGTH + SOCKETS.length;
  if (!url.startsWith(SOCKETS, sidAt + SID_LENGTH)) return undefined;
  const opAt = idAt + ID_LENGTH;
  let op: "send" | "recv";
  if (url.startsWith("/send", opAt)) op = "send";
  else if (url.startsWith("/recv", opAt)) op = "recv";
  else return undefined;
  const end = opAt + 5;
  if (end < url.length && url.charCodeAt(end) !== QUESTION) return undefined;
  const sid = url.slice(sidAt, sidAt + SID_LENGTH);
  const id = url.slice(idAt, opAt);
  if (!SESSION_ID_PATTERN.test(sid) || !SOCKET_ID_PATTERN.test(id)) return undefined;
  const query = end < url.length ? fastQuery(url.slice(end + 1), op === "recv") : {};
  return query ? { sid, id, op, query } : undefined;
}

/**
 * A query of only `timeoutMs` (and with `maxBytes`, `maxBytes`), each at
 * most once, as decimal digits within their schema's range; undefined for
 * any other (Hono and zod answer those).
 */
function fastQuery(text: string, maxBytes: boolean): RecvQuery | undefined {
  const query: RecvQuery = {};
  if (text === "") return query;
  let at = 0;
  for (;;) {
    let amp = text.indexOf("&", at);
    if (amp < 0) amp = text.length;
    const eq = text.indexOf("=", at);
    if (eq < 0 || eq > amp) return undefined;
    const value = text.slice(eq + 1, amp);
    if (!DIGITS.test(value)) return undefined;
    const n = Number(value);
    const key = text.slice(at, eq);
    if (key === "timeoutMs") {
      if (query.timeoutMs !== undefined || n > MAX_POLL_TIMEOUT_MS) return undefined;
      query.timeoutMs = n;
    } else if (key === "maxBytes" && maxBytes) {
      if (query.maxBytes !== undefined || n < 1 || n > MAX_RECV_BYTES) return undefined;
      query.maxBytes = n;
    } else {
      return undefined;
    }
    if (amp === text.length) return query;
    at = amp + 1;
  }
}

/**
 * Makes the lean path: a function that answers a request it takes (a
 * promise of the response) or returns undefined for Hono to answer it.
 *
 * @example
 * ```ts
 * const fast = socketFastPath({ registry, bodyTimeoutMs, clock, recorder, mayBeShare });
 * const hono = app.fetch;
 * app.fetch = (req, env, ctx) => fast(req) ?? hono(req, env, ctx);
 * ```
 */
export function socketFastPath(
  options: SocketFastPathOptions,
): (req: Request) => Promise<Response> | undefined {
  const { registry, recorder, mayBeShare, clock, bodyTimeoutMs } = options;
  return (req) => {
    if (req.method !== "POST") return undefined;
    const start = recorder.now();
    const target = fastTarget(req.url);
    if (target === undefined) return undefined;
    const session = registry.get(target.sid);
    if (session === undefined) return undefined;
    const given = bearerToken(requestHeader(req, "authorization"));
    if (given === undefined || !constantTimeEqual(given, session.token)) return undefined;
    if (mayBeShare(req)) return undefined;
    return answer(req, session, target, start);
  };

  async function answer(
    req: Request,
    session: Session,
    target: FastTarget,
    start: number,
  ): Promise<Response> {
    let res: Response;
    try {
      if (target.op === "recv") {
        res = await recvFromSocket(session, target.id, target.query, req.signal);
      } else {
        const body = await readRequestBody(req, {
          maxBytes: MAX_SEND_BODY_BYTES,
          timeoutMs: bodyTimeoutMs,
          clock,
          quota: session.stack.quota.memory,
        });
        try {
          res = sentResponse(
            await sendToSocket(session, target.id, body.bytes, target.query, req.signal, body),
          );
        } finally {
          body.release();
        }
      }
    } catch (err) {
      res = problemOfError(err, "request");
    }
    recorder.record(
      "POST",
      target.op === "send" ? SEND_ROUTE : RECV_ROUTE,
      res.status,
      start,
      session.id,
    );
    return res;
  }
}
