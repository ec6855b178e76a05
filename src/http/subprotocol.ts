/**
 * The WebSocket subprotocol an upgrade answers (RFC 6455 §4.2.2): the one
 * the route picked when it names one (a tunnel framing, `netisle.stream.v1`,
 * Wisp's), otherwise the first of ours among those offered. One rule for
 * every runtime adapter.
 *
 * @module
 */

import { selectTunnelSubprotocol } from "../wire/tunnel_protocol.ts";
import { selectStreamSubprotocol } from "./socket_stream_protocol.ts";

/**
 * The subprotocol to answer for `req`: `options.protocol` when the route
 * passed the key (undefined there means none), else a tunnel framing or the
 * stream protocol from `Sec-WebSocket-Protocol`.
 *
 * @example
 * ```ts
 * const protocol = answeredSubprotocol(req, options); // e.g. "netisle.qemu-stream.v1"
 * ```
 */
export function answeredSubprotocol(
  req: Request,
  options?: { protocol?: string },
): string | undefined {
  if (options && "protocol" in options) return options.protocol;
  const offered = req.headers.get("sec-websocket-protocol");
  return selectTunnelSubprotocol(offered) ?? selectStreamSubprotocol(offered);
}
