/**
 * The messages between the front door (the main isolate) and a session
 * worker (one Web Worker per session). Plain structured-clone objects; byte
 * payloads travel as transferred `ArrayBuffer`s.
 *
 * Request/response: the front door posts {@linkcode WorkerRequestMessage}
 * with the whole (bounded) request body; the worker answers with
 * {@linkcode WorkerResponseHead}, then body chunks under a credit window
 * (the worker sends at most {@linkcode RESPONSE_CREDIT_BYTES} bytes ahead of
 * what the client consumed), then `end` or `error`.
 *
 * WebSockets: the front door sends a `MessagePort` with the upgrade request;
 * once the worker's app accepted the upgrade (head with `upgrade: true`),
 * the port carries {@linkcode RelayMessage}s both ways.
 *
 * @module
 */

/** Bytes a worker may send ahead of the client's reads on one response body. */
export const RESPONSE_CREDIT_BYTES = 256 * 1024;

/** Header a worker's app sets on the stand-in response of an accepted WebSocket upgrade. */
export const UPGRADE_ACCEPTED_HEADER = "x-netisle-upgrade-accepted";

/** What the front door tells a new worker before anything else. */
export interface WorkerInit {
  t: "init";
  /** Honour {@linkcode WorkerTestMessage} (test-only; never set in production). */
  testHooks: boolean;
  /** Whether the front door can upgrade WebSockets (else the worker's app answers 501). */
  websocket: boolean;
  /** Whether the worker's app writes the request log (console of the process). */
  requestLog: boolean;
  /** The session expires after this long without a tunnel and without activity (ms). */
  idleTimeoutMs?: number;
  /** Interval of the worker's idle sweep (ms). */
  sweepIntervalMs?: number;
  /**
   * Egress for the worker's session (the server runs with `NETISLE_EGRESS=on`):
   * the server's egress variables as given, and the address it listens on
   * (its own addresses, which egress never dials, follow from it). The
   * worker builds its egress from them.
   */
  egress?: { env: Record<string, string>; hostname: string };
}

/** A request forwarded to a worker. */
export interface WorkerRequestMessage {
  t: "req";
  id: number;
  method: string;
  url: string;
  headers: [string, string][];
  body: ArrayBuffer | null;
  /** Present on WebSocket upgrades: the relay port, used when the app accepts. */
  port?: MessagePort;
}

/** Front door → worker messages. */
export type ToWorkerMessage =
  | WorkerInit
  | WorkerRequestMessage
  | { t: "abort"; id: number }
  | { t: "credit"; id: number; bytes: number }
  | { t: "cancel"; id: number }
  | { t: "ping"; seq: number }
  | { t: "metrics"; seq: number }
  | WorkerTestMessage;

/** Test hooks: spin the worker's event loop forever, or throw an uncaught error. */
export interface WorkerTestMessage {
  t: "test";
  action: "spin" | "crash";
}

/** The head of a worker's response. */
export interface WorkerResponseHead {
  t: "res";
  id: number;
  status: number;
  headers: [string, string][];
  /** The app accepted a WebSocket upgrade: relay over the request's port. */
  upgrade: boolean;
  /** Whether body chunks follow (then `end` or `error`). */
  hasBody: boolean;
}

/** Worker → front door messages. */
export type FromWorkerMessage =
  | { t: "ready" }
  | WorkerResponseHead
  | { t: "chunk"; id: number; data: ArrayBuffer }
  | { t: "end"; id: number }
  | { t: "error"; id: number; message: string }
  | { t: "pong"; seq: number }
  | { t: "metrics"; seq: number; text: string }
  /** The session is gone (deleted or expired); `metrics` is the worker's last document. */
  | { t: "ended"; reason: "deleted" | "expired"; metrics: string };

/**
 * WebSocket relay messages on a request's `MessagePort`.
 *
 * Front door → worker: `open`, `msg` (a client message), `close` (the client
 * closed), `ack` (bytes of `send` written to the real socket, and its
 * `bufferedAmount` now). Worker → front door: `send`, `close`, `consumed`
 * (bytes of `msg` the worker has handled, which bounds the front door's queue).
 */
export type RelayMessage =
  | { t: "open" }
  | { t: "msg"; data: ArrayBuffer | string }
  | { t: "close"; code: number; reason: string }
  | { t: "ack"; bytes: number; buffered: number }
  | { t: "send"; data: ArrayBuffer | string }
  | { t: "consumed"; bytes: number };

/** Size of a relayed message for queue accounting. */
export function relayedSize(data: ArrayBuffer | string): number {
  return typeof data === "string" ? data.length * 2 : data.byteLength;
}

/**
 * Copies `bytes` into a fresh `ArrayBuffer` that can be transferred (a view
 * into a pooled or larger buffer must not be detached).
 */
export function ownedBuffer(bytes: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(out).set(bytes);
  return out;
}
