/**
 * TCP: connections, the layer with its pcb lists, listeners, and their
 * building blocks.
 *
 * @module
 */
export * from "./tcp_config.ts";
export * from "./tcp_connection.ts";
export * from "./tcp_layer.ts";
export * from "./tcp_listener.ts";
export * from "./tcp_egress.ts";
export * from "./sack_scoreboard.ts";
export * from "./send_buffer.ts";
export * from "./receive_queue.ts";
export * from "./reassembler.ts";
export * from "./rtt_estimator.ts";
export * from "./congestion.ts";
export * from "./isn.ts";
export * from "./seq.ts";
