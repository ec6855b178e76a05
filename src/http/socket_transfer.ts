/**
 * What the socket API's data routes do once a request is authenticated and
 * its input validated: `send` and `recv` on one of a session's sockets, and
 * the responses they answer with. Shared by their Hono routes
 * (`socket_routes.ts`) and the lean path that serves their common requests
 * (`socket_fast_path.ts`), so that both answer alike by construction.
 *
 * @module
 */

import type { Session } from "../session/mod.ts";
import type { SocketEntry } from "../socket/socket_entry.ts";
import type { BodyCharge } from "./app_env.ts";
import { HttpProblem } from "./problem.ts";
import { fixedResponse } from "./fixed_response.ts";
import { DEFAULT_RECV_BYTES } from "./socket_schemas.ts";

/** Largest body of `POST .../send` (1 MiB). */
export const MAX_SEND_BODY_BYTES = 1024 * 1024;

/** Response header of a recv at the end of the stream. */
export const EOF_HEADER = "Netisle-Eof";
/** Response header of a UDP recv: the sender's address. */
export const PEER_ADDRESS_HEADER = "Netisle-Peer-Address";
/** Response header of a UDP recv: the sender's port. */
export const PEER_PORT_HEADER = "Netisle-Peer-Port";
/** Response header of a UDP recv whose datagram was longer than `maxBytes`. */
export const TRUNCATED_HEADER = "Netisle-Truncated";

/** The validated query of `POST .../send`. */
export interface SendQuery {
  /** UDP: the destination (with `port`). */
  address?: string;
  /** UDP: the destination port (with `address`). */
  port?: number;
  /** How long to wait for send-buffer space, in ms. */
  timeoutMs?: number;
}

/** The validated query of `POST .../recv`. */
export interface RecvQuery {
  /** Most bytes to return. */
  maxBytes?: number;
  /** How long to wait for data, in ms. */
  timeoutMs?: number;
}

/**
 * The socket `id` of `session`; 404 `ENOTFOUND` when there is none.
 *
 * @example
 * ```ts
 * const entry = socketOf(session, "k_AAAAAAAAAAAAAAAA");
 * ```
 */
export function socketOf(session: Session, id: string): SocketEntry {
  const entry = session.sockets.get(id);
  if (!entry) {
    throw new HttpProblem("ENOTFOUND", `no socket with id "${id}" in session "${session.id}"`);
  }
  return entry;
}

/**
 * Sends `bytes` (a request body read under the session's quota, whose
 * charge is `body`) on socket `id`; resolves with the count taken. A TCP
 * send that waits for buffer space keeps the body's charge (the socket
 * releases it). Throws what the socket table throws (a `NetError`).
 *
 * @example
 * ```ts
 * const n = await sendToSocket(session, id, held.bytes, {}, req.signal, held);
 * ```
 */
export async function sendToSocket(
  session: Session,
  id: string,
  bytes: Uint8Array,
  query: SendQuery,
  signal: AbortSignal | undefined,
  body: BodyCharge,
): Promise<number> {
  const entry = socketOf(session, id);
  return await session.sockets.send(entry, bytes, {
    to: query.address !== undefined && query.port !== undefined
      ? { address: query.address, port: query.port }
      : undefined,
    timeoutMs: query.timeoutMs,
    signal,
    // A TCP send may wait for buffer space: the socket keeps the body's charge.
    charged: entry.protocol === "tcp" ? body.handOver() : undefined,
  });
}

const JSON_HEADERS = { "content-type": "application/json" } as const;

/**
 * The answer to a send that took `n` bytes: `200 {"bytes": n}`, as Hono's
 * `c.json({ bytes: n }, 200)` makes it.
 *
 * @example
 * ```ts
 * sentResponse(64); // 200, content-type application/json, {"bytes":64}
 * ```
 */
export function sentResponse(n: number): Response {
  return fixedResponse(JSON.stringify({ bytes: n }), { status: 200, headers: JSON_HEADERS });
}

/**
 * Receives from socket `id` and answers: 200 with the bytes
 * (`application/octet-stream`; at the end of a TCP stream empty, with
 * `Netisle-Eof: 1`; for UDP with the sender in `Netisle-Peer-*`), or 204
 * when nothing arrived before the timeout. Throws what the socket table
 * throws (a `NetError`).
 *
 * @example
 * ```ts
 * const res = await recvFromSocket(session, id, { maxBytes: 4096 }, req.signal);
 * ```
 */
export async function recvFromSocket(
  session: Session,
  id: string,
  query: RecvQuery,
  signal: AbortSignal | undefined,
): Promise<Response> {
  const entry = socketOf(session, id);
  const r = await session.sockets.receive(entry, {
    maxBytes: query.maxBytes ?? DEFAULT_RECV_BYTES,
    timeoutMs: query.timeoutMs,
    signal,
  });
  if (!r) return new Response(null, { status: 204 });
  const headers: Record<string, string> = { "content-type": "application/octet-stream" };
  if (r.eof) headers[EOF_HEADER] = "1";
  if (r.from) {
    headers[PEER_ADDRESS_HEADER] = r.from.address;
    headers[PEER_PORT_HEADER] = String(r.from.port);
  }
  if (r.truncated) headers[TRUNCATED_HEADER] = "1";
  return fixedResponse(r.data, { status: 200, headers });
}
