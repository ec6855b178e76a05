/**
 * Endpoints over the core, and the errors they raise.
 *
 * @module
 */
export * from "../errors/net_error.ts";
export * from "./tcp_socket.ts";
export * from "./udp_socket.ts";
export * from "./local_address.ts";
export * from "./socket_entry.ts";
export * from "./poll_deadline.ts";
export * from "./socket_table.ts";
export type { ReceiveResult, SocketTableHost } from "./table_context.ts";
export * from "./tcp_operations.ts";
export * from "./udp_operations.ts";
export * from "./buffer_hold.ts";
