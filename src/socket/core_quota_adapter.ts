/**
 * The seam between the socket table and the core's side of the session
 * quotas (issue 11), kept in one file so that the merge with the core's work
 * is one small edit here.
 *
 * **Contract assumed with the TCP core.** A connection the core queues on a
 * listener takes one unit of `stack.quota.sockets` when it enters the accept
 * queue (the core refuses or counts the connection when none is free) and
 * gives it back when it dies unaccepted. `TcpConnection.takeQuotaUnit():
 * boolean` hands that unit over: it returns whether the connection held one
 * and clears it, so the core will not release it again. The socket table
 * calls it, under the core lock, on every connection it accepts; the unit
 * then belongs to the table's entry and is released when the entry is
 * removed. A connection that holds no unit gets a fresh one from the table
 * (EMFILE when none is free).
 *
 * Until the core has `takeQuotaUnit`, connections hold no unit and the
 * functions below say so.
 *
 * **Memory.** The core charges its own queues (receive, out-of-order, send
 * buffers) to `stack.quota.memory`; the socket layer charges only what the
 * API holds ({@linkcode passesUnchargedLimit} covers the time before the
 * core does).
 *
 * @module
 */

import type { TcpConnection } from "../stack/tcp/mod.ts";

/** `TcpConnection` as the contract above extends it. */
type WithQuotaUnit = { takeQuotaUnit?: () => boolean };

/**
 * Takes over the socket unit `conn` holds (call under the core lock): true
 * when it held one, which now belongs to the caller; false when it held none.
 *
 * @example
 * ```ts
 * const held = session.withCore(() => takeQuotaUnit(sock.conn));
 * if (!held && !quota.sockets.tryTake()) throw new NetError("EMFILE", "...");
 * ```
 */
export function takeQuotaUnit(conn: TcpConnection): boolean {
  const c = conn as TcpConnection & WithQuotaUnit;
  return typeof c.takeQuotaUnit === "function" ? c.takeQuotaUnit() : false;
}

/**
 * Whether `conn` can hand over a socket unit (the core has `takeQuotaUnit`).
 * When the next connection in an accept queue can, accepting it needs no free
 * unit; when it cannot, an accept on a full quota fails before it takes the
 * connection off the queue (which would then have to be reset).
 *
 * @example
 * ```ts
 * const next = listener.acceptQueue[0];
 * if (quotaFull && !(next && bringsQuotaUnit(next))) throw new NetError("EMFILE", "...");
 * ```
 */
export function bringsQuotaUnit(conn: TcpConnection): boolean {
  return typeof (conn as TcpConnection & WithQuotaUnit).takeQuotaUnit === "function";
}

/**
 * Whether holding `bytes` more for the API would pass `limit` counting the
 * bytes queued in the core for the table's sockets (`queuedBytes`, the sum of
 * the sockets' queues and what the API already holds).
 *
 * Until the core charges its own queues to `stack.quota.memory` (the TCP and
 * UDP side of issue 11), those bytes are outside the quota, and this is the
 * check that keeps them bounded. Once the core charges them, the quota's
 * `used` already includes every one of those bytes (each charged at least its
 * length), so this never refuses what the quota accepts: delete it then.
 *
 * @example
 * ```ts
 * if (passesUnchargedLimit(table.bufferedBytes(), data.length, memory.limit)) throw enobufs;
 * ```
 */
export function passesUnchargedLimit(queuedBytes: number, bytes: number, limit: number): boolean {
  return queuedBytes + bytes > limit;
}
