/**
 * The netisle client SDK: sessions, TCP connections, listeners and UDP
 * sockets inside a session's network, from any runtime with fetch and
 * WebSocket (browsers, Deno, Bun, Node 20+, workerd). It imports no server
 * code: types come from the server's zod schemas, and the stream protocol
 * from the one module both ends share.
 *
 * ```ts
 * import { NetisleClient } from "./src/client/mod.ts";
 *
 * const client = new NetisleClient({ server: "http://127.0.0.1:8787" });
 * const session = client.session(id, token);
 * const socket = session.connect({ hostname: "10.0.2.15", port: 22 });
 * await socket.opened;
 * ```
 *
 * @module
 */

export { type CreatedSession, type CreateSessionOptions, NetisleClient } from "./netisle_client.ts";
export type { NetisleClientOptions, NewSession } from "./netisle_client.ts";
export { NetisleSession } from "./netisle_session.ts";
export type { ListenOptions, SessionView, SocketList } from "./netisle_session.ts";
export { NetisleSocket } from "./netisle_socket.ts";
export type { SocketAddress, SocketInfo, SocketOptions } from "./netisle_socket.ts";
export { NetisleListener } from "./netisle_listener.ts";
export { joinHostPort, NetisleUdpSocket, splitHostPort } from "./netisle_udp_socket.ts";
export type { Datagram, UdpOptions } from "./netisle_udp_socket.ts";
export { NetisleError } from "./netisle_error.ts";
export type { NetisleErrorCode } from "./netisle_error.ts";
export type { WebSocketConstructor } from "./stream_channel.ts";
export type { TransportOptions } from "./api_transport.ts";
export type { StreamEndpoint } from "../http/socket_stream_protocol.ts";
