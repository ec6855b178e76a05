/**
 * Applications on the stack, above src/socket: an iperf3 server and client
 * that the real `iperf3` program tests against, and the egress gateway
 * (a session's machine reaches the world through the runtime's sockets).
 *
 * @module
 */
export * from "./iperf3_protocol.ts";
export * from "./iperf3_server.ts";
export * from "./iperf3_client.ts";
export * from "./egress/mod.ts";
