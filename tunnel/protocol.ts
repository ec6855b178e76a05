/**
 * Tunnel wire formats.
 *
 * Frame per message (the default, compatible with v86's "wsproxy" relays):
 * every binary WebSocket message is exactly one Ethernet II frame, destination
 * MAC first, no FCS and no length prefix. No WebSocket subprotocol is needed.
 *
 * @module
 */

/** The shortest frame a tunnel accepts: an Ethernet header with no payload. */
export const MIN_FRAME_LEN = 14;

/** The path of a session's tunnel, relative to the server's origin. */
export function tunnelPath(sessionId: string): string {
  return `/v1/sessions/${encodeURIComponent(sessionId)}/tunnel`;
}

/**
 * The WebSocket URL of a session's tunnel for a server base URL
 * (`http://host:port` becomes `ws://host:port/v1/sessions/ID/tunnel`).
 * `token`, when given, is carried in the query, for clients that cannot set
 * headers (browsers, v86).
 *
 * @example
 * ```ts
 * tunnelUrl("http://127.0.0.1:8787", "s_abc"); // "ws://127.0.0.1:8787/v1/sessions/s_abc/tunnel"
 * ```
 */
export function tunnelUrl(server: string | URL, sessionId: string, token?: string): string {
  const url = new URL(tunnelPath(sessionId), server);
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  else if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new TypeError(
      `tunnelUrl: unsupported server URL scheme in ${JSON.stringify(String(server))}`,
    );
  }
  if (token !== undefined) url.searchParams.set("token", token);
  return url.href;
}
