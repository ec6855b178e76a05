/**
 * Tunnel wire formats.
 *
 * Frame per message (the default, compatible with v86's "wsproxy" relays):
 * every binary WebSocket message is exactly one Ethernet II frame, destination
 * MAC first, no FCS and no length prefix. No WebSocket subprotocol is needed.
 *
 * QEMU stream in WebSocket (subprotocol {@linkcode QEMU_STREAM_SUBPROTOCOL}):
 * the binary messages carry a byte stream in QEMU `-netdev stream` framing
 * (a `u32` big-endian length, then the frame, repeated; see
 * `stream_framing.ts`). A message may hold many frames and a frame may be split
 * across messages. It is what container2wasm's WebSocket network delegate
 * carries; container2wasm offers the subprotocol name `binary` (websockify's
 * name), which is accepted as an alias.
 *
 * Stream with offload metadata (subprotocol {@linkcode VNET_STREAM_SUBPROTOCOL}):
 * the same length-prefixed stream, each record a 10-byte virtio-net header
 * (`vnet_header.ts`) and then the frame, as a Linux TAP with `IFF_VNET_HDR`
 * reads and writes them. A frame may be a TCP/IPv4 segment of up to 64 KiB
 * with the segment size to cut it into, or carry a partial checksum: the
 * kernel's TSO packets reach the stack whole, and the stack's large segments
 * reach the kernel in one write. The CLI offers it first when its port is a
 * TAP with offloads, with QEMU stream as the fallback.
 *
 * @module
 */

/** The shortest frame a tunnel accepts: an Ethernet header with no payload. */
export const MIN_FRAME_LEN = 14;

/** The WebSocket subprotocol of QEMU stream framing inside binary messages. */
export const QEMU_STREAM_SUBPROTOCOL = "netisle.qemu-stream.v1";

/**
 * The WebSocket subprotocol of the stream of virtio-net-header records
 * (segmentation and checksum offload across the tunnel).
 */
export const VNET_STREAM_SUBPROTOCOL = "netisle.vnet-stream.v1";

/** Default largest WebSocket message of the vnet stream: four 64 KiB segments. */
export const DEFAULT_MAX_VNET_BATCH_BYTES = 256 * 1024;

/**
 * Subprotocol names that select QEMU stream framing, in order of preference:
 * ours, then `binary` (what container2wasm's `ws-delegate.js` offers, after
 * websockify).
 */
export const QEMU_STREAM_SUBPROTOCOLS: readonly string[] = [QEMU_STREAM_SUBPROTOCOL, "binary"];

/**
 * WebSocket close code for a QEMU stream whose length prefix is out of range
 * (longer than the session's largest frame): the stream cannot be
 * resynchronised, so the WebSocket is closed; the session stays.
 */
export const CLOSE_STREAM_FRAMING_ERROR = 4002;

/** How a tunnel's WebSocket messages carry frames. */
export type TunnelFraming = "frame" | "qemu-stream" | "vnet-stream";

/**
 * Picks the subprotocol a server answers for a `Sec-WebSocket-Protocol`
 * request header (RFC 6455 §4.2.2: one of the offered values, or none): the
 * vnet stream when offered, else QEMU stream. Returns `undefined` when no
 * offered value selects a tunnel framing; the tunnel then uses one frame per
 * message.
 *
 * @example
 * ```ts
 * selectTunnelSubprotocol("binary, netisle.qemu-stream.v1"); // "netisle.qemu-stream.v1"
 * selectTunnelSubprotocol("netisle.vnet-stream.v1, netisle.qemu-stream.v1"); // the first
 * selectTunnelSubprotocol(null); // undefined
 * ```
 */
export function selectTunnelSubprotocol(header: string | null | undefined): string | undefined {
  if (!header) return undefined;
  const offered = header.split(",").map((p) => p.trim());
  if (offered.includes(VNET_STREAM_SUBPROTOCOL)) return VNET_STREAM_SUBPROTOCOL;
  return QEMU_STREAM_SUBPROTOCOLS.find((p) => offered.includes(p));
}

/** The framing a negotiated subprotocol (or none) selects. */
export function framingForSubprotocol(protocol: string | null | undefined): TunnelFraming {
  if (protocol === VNET_STREAM_SUBPROTOCOL) return "vnet-stream";
  return protocol && QEMU_STREAM_SUBPROTOCOLS.includes(protocol) ? "qemu-stream" : "frame";
}

/** A short description of a framing for logs and the session view. */
export function describeFraming(framing: TunnelFraming, protocol?: string): string {
  switch (framing) {
    case "frame":
      return "websocket frame-per-message";
    case "vnet-stream":
      return `websocket vnet-stream (subprotocol ${VNET_STREAM_SUBPROTOCOL}: ` +
        "TCP segmentation and checksum offload)";
    default:
      return `websocket qemu-stream (subprotocol ${protocol ?? QEMU_STREAM_SUBPROTOCOL})`;
  }
}

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

/** Default largest WebSocket message of a batching tunnel (QEMU stream framing). */
export const DEFAULT_MAX_BATCH_BYTES = 64 * 1024;

/**
 * Splits frames into consecutive groups whose QEMU stream encoding (4 bytes
 * of length plus the frame each) stays within `maxBytes`; a frame larger than
 * that goes alone. Order is kept.
 *
 * @example
 * ```ts
 * batchFrames([new Uint8Array(1000), new Uint8Array(1000)], 1500).length; // 2
 * ```
 */
export function batchFrames(frames: readonly Uint8Array[], maxBytes: number): Uint8Array[][] {
  const out: Uint8Array[][] = [];
  let group: Uint8Array[] = [];
  let size = 0;
  for (const f of frames) {
    const need = 4 + f.length;
    if (group.length > 0 && size + need > maxBytes) {
      out.push(group);
      group = [];
      size = 0;
    }
    group.push(f);
    size += need;
  }
  if (group.length > 0) out.push(group);
  return out;
}
