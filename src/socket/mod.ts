/**
 * Endpoints over the core, and the errors they raise.
 *
 * @module
 */
export * from "../errors/net_error.ts";
export * from "./tcp_socket.ts";
export * from "./udp_socket.ts";
export * from "./socket_table.ts";
