/**
 * The address a request came from, as the runtime adapter saw it (the TCP
 * peer of its connection), for the app's routes: the guard of every adapter
 * notes it, routes read it without knowing the runtime (share links append it
 * to `X-Forwarded-For`, as a proxy does).
 *
 * @module
 */

import { incomingNote, noteIncoming } from "./incoming_request.ts";

const peers = new WeakMap<Request, string>();

/**
 * Records that `req` arrived from `address` (called by the adapters' guard).
 *
 * @example
 * ```ts
 * noteRequestPeer(req, "192.0.2.7");
 * requestPeer(req); // "192.0.2.7"
 * ```
 */
export function noteRequestPeer(req: Request, address: string): void {
  // The engine's own requests keep it in a field: no WeakMap entry per request.
  if (address && !noteIncoming(req, "peer", address)) peers.set(req, address);
}

/** The address `req` arrived from, when an adapter noted one. */
export function requestPeer(req: Request): string | undefined {
  return (incomingNote(req, "peer") as string | undefined) ?? peers.get(req);
}
