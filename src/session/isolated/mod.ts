/**
 * Sessions in their own isolates: the messages between the front door and
 * a session worker, the front door's handle on a worker, the WebSocket
 * relay, and the worker side.
 *
 * @module
 */

export * from "./protocol.ts";
export * from "./port_socket.ts";
export * from "./relay.ts";
export * from "./session_worker.ts";
export * from "./worker_side.ts";
