/**
 * The front door's end of a relayed WebSocket: carries messages between the
 * client's real WebSocket and the session worker's `MessagePort` (see
 * `RelayMessage`), with a bounded queue towards the worker.
 *
 * @module
 */

import { relayedSize, type RelayMessage } from "./protocol.ts";

/** The part of a server-side WebSocket the relay uses (Deno's, Bun's, `ws`'s). */
export interface RelaySocket {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: ArrayBuffer | string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open", listener: () => void): void;
  addEventListener(type: "error", listener: () => void): void;
  addEventListener(type: "close", listener: (ev: { code?: number; reason?: string }) => void): void;
  addEventListener(type: "message", listener: (ev: { data: unknown }) => void): void;
}

/** What to do when the worker falls behind by more than `maxQueuedBytes`. */
export type RelayOverflow = "drop" | "close";

/** Options of {@linkcode relayWebSocket}. */
export interface RelayOptions {
  /** Client bytes sent to the worker and not yet handled there. Default 4 MiB. */
  maxQueuedBytes?: number;
  /**
   * `drop`: drop client messages over the limit and count them (the tunnel:
   * frames are datagrams, TCP retransmits); `close`: close the client with 1009
   * (a byte stream must not lose bytes).
   */
  overflow: RelayOverflow;
  /** Called for each dropped message. */
  onDrop?: () => void;
}

/** WebSocket close code sent to clients whose session worker died (final for the tunnel CLI). */
export const CLOSE_SESSION_DEAD = 4004;

const OPEN = 1;

/**
 * Relays `socket` (the client) and `port` (the worker). Returns a function
 * that closes the client with {@linkcode CLOSE_SESSION_DEAD} (for when the
 * worker died).
 *
 * @example
 * ```ts
 * const kill = relayWebSocket(socket, channel.port1, { overflow: "drop" });
 * ```
 */
export function relayWebSocket(
  socket: RelaySocket,
  port: MessagePort,
  options: RelayOptions,
): () => void {
  const maxQueued = options.maxQueuedBytes ?? 4 * 1024 * 1024;
  socket.binaryType = "arraybuffer";
  let queued = 0;
  let acked = 0;
  let ackTimer: ReturnType<typeof setTimeout> | undefined;
  let lastBuffered = 0;
  let done = false;
  const toWorker = (m: RelayMessage, transfer: Transferable[] = []) => {
    if (!done) port.postMessage(m, transfer);
  };
  const finish = () => {
    if (done) return;
    done = true;
    if (ackTimer !== undefined) clearTimeout(ackTimer);
    port.close();
  };
  // Tell the worker how much of what it sent reached the socket, and keep telling it while
  // the socket's own buffer drains (its bufferedAmount is the worker's backpressure signal).
  const report = () => {
    ackTimer = undefined;
    if (done) return;
    const buffered = socket.bufferedAmount;
    if (acked === 0 && buffered === lastBuffered) return;
    toWorker({ t: "ack", bytes: acked, buffered });
    acked = 0;
    lastBuffered = buffered;
    if (buffered > 0) ackTimer = setTimeout(report, 10);
  };
  port.onmessage = (ev: MessageEvent) => {
    const m = ev.data as RelayMessage;
    if (m.t === "send") {
      if (socket.readyState === OPEN) {
        try {
          socket.send(m.data);
        } catch {
          // The socket is closing; its close event ends the relay.
        }
      }
      acked += relayedSize(m.data);
      if (ackTimer === undefined) ackTimer = setTimeout(report, 0);
    } else if (m.t === "close") {
      try {
        socket.close(m.code, m.reason);
      } catch {
        try {
          socket.close(1000, m.reason);
        } catch {
          // Already closed.
        }
      }
    } else if (m.t === "consumed") {
      queued = Math.max(0, queued - m.bytes);
    }
  };
  socket.addEventListener("open", () => toWorker({ t: "open" }));
  if (socket.readyState === OPEN) toWorker({ t: "open" });
  socket.addEventListener("message", (ev) => {
    let data: ArrayBuffer | string;
    if (typeof ev.data === "string") data = ev.data;
    else if (ev.data instanceof ArrayBuffer) data = ev.data;
    else if (ev.data instanceof Uint8Array) data = ev.data.slice().buffer;
    else return;
    const size = relayedSize(data);
    if (queued + size > maxQueued) {
      if (options.overflow === "drop") {
        options.onDrop?.();
        return;
      }
      try {
        socket.close(1009, `the session fell ${queued} bytes behind: too much unread data`);
      } catch {
        // Already closing.
      }
      return;
    }
    queued += size;
    toWorker({ t: "msg", data }, typeof data === "string" ? [] : [data]);
  });
  const onClose = (ev: { code?: number; reason?: string }) => {
    toWorker({ t: "close", code: ev?.code ?? 1005, reason: ev?.reason ?? "" });
    finish();
  };
  socket.addEventListener("close", onClose);
  socket.addEventListener("error", () => onClose({ code: 1006, reason: "" }));
  return () => {
    finish();
    try {
      socket.close(CLOSE_SESSION_DEAD, "ESESSIONDEAD: the session's worker died");
    } catch {
      // Already closed.
    }
  };
}
