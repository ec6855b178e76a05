/**
 * netisle: a user-space TCP/IP stack for edge runtimes. A local client tunnels
 * Ethernet frames over a WebSocket into a session (one isolated stack with its
 * own MAC, IPv4 address and ARP cache); an HTTP API serves sessions.
 *
 * Embed a session without any server: feed it frames, read what it answers.
 *
 * @example
 * ```ts
 * import { ManualClock, Session, parseIpv4Address, parseMacAddress } from "./mod.ts";
 *
 * const session = new Session({
 *   id: "demo",
 *   token: "demo",
 *   clock: new ManualClock(),
 *   stack: {
 *     mac: parseMacAddress("02:00:00:00:00:02"),
 *     ipv4: { address: parseIpv4Address("10.0.2.2"), prefixLength: 24 },
 *     mtu: 1500,
 *   },
 * });
 * session.attachTunnel({
 *   description: "console",
 *   send: (frames) => console.log(`stack sent ${frames.length} frame(s)`),
 *   close: () => {},
 * });
 * // session.input([ethernetFrame]) hands frames to the stack.
 * ```
 *
 * @module
 */

export * from "./src/wire/mod.ts";
export * from "./src/stack/mod.ts";
export * from "./src/socket/mod.ts";
export * from "./src/session/mod.ts";
export * from "./src/http/mod.ts";
export * from "./src/apps/mod.ts";
export { attachWebSocketTunnel, type TunnelSocket } from "./src/session/tunnel_server.ts";
export { TunnelClient, type TunnelClientOptions } from "./tunnel/client.ts";
export { tunnelUrl } from "./src/wire/tunnel_protocol.ts";
export type { FramePort, FramePortStats, FrameSink } from "./tunnel/ports/frame_port.ts";
