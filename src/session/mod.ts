/**
 * Sessions: a stack, its core lock, its clock-driven timer, its tunnel; and
 * the registry that holds them.
 *
 * @module
 */
export * from "./clock.ts";
export * from "./core_lock.ts";
export * from "./delay_histogram.ts";
export * from "./session.ts";
export * from "./registry.ts";
export * from "./capture_queue.ts";
export * from "./frame_capture.ts";
export * from "./session_totals.ts";
export * from "./tunnel_server.ts";
