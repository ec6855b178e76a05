/**
 * Applications on the stack, above src/socket: an iperf3 server and client
 * that the real `iperf3` program tests against.
 *
 * @module
 */
export * from "./iperf3_protocol.ts";
export * from "./iperf3_server.ts";
export * from "./iperf3_client.ts";
