/**
 * The worker's end of a relayed WebSocket: an object with the part of the
 * standard `WebSocket` interface the tunnel and socket streams use
 * (`send`, `close`, `readyState`, `bufferedAmount`, events), backed by a
 * `MessagePort` whose other end the front door wires to the real socket.
 *
 * @module
 */

import { ownedBuffer, relayedSize, type RelayMessage } from "./protocol.ts";

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/** Consumed bytes are reported to the front door once this many accumulate (or on the next tick). */
const CONSUMED_REPORT_BYTES = 64 * 1024;

type Listener = (ev: { data?: unknown; code?: number; reason?: string }) => void;

/**
 * A WebSocket look-alike over a `MessagePort` (see {@linkcode RelayMessage}).
 * `bufferedAmount` is what was sent but not yet written to the real socket,
 * plus the real socket's own `bufferedAmount` at the last report, so the
 * backpressure of the real client reaches the session.
 *
 * @example
 * ```ts
 * const ws = new PortSocket(port);
 * ws.addEventListener("message", (ev) => console.log(ev.data));
 * ```
 */
export class PortSocket {
  /** Only `"arraybuffer"` is produced; kept for interface compatibility. */
  binaryType = "arraybuffer";
  #state = CONNECTING;
  #port: MessagePort;
  #unacked = 0;
  #remoteBuffered = 0;
  #consumed = 0;
  #consumedScheduled = false;
  #listeners = new Map<string, Listener[]>();

  /** Wraps `port` and starts listening on it. */
  constructor(port: MessagePort) {
    this.#port = port;
    port.onmessage = (ev: MessageEvent) => this.#onRelay(ev.data as RelayMessage);
  }

  /** `WebSocket.readyState`: 0 connecting, 1 open, 2 closing, 3 closed. */
  get readyState(): number {
    return this.#state;
  }

  /** Bytes sent and not yet on the wire of the real socket. */
  get bufferedAmount(): number {
    return this.#unacked + this.#remoteBuffered;
  }

  /** Sends one message; throws while connecting, ignores after close (like `WebSocket`). */
  send(data: Uint8Array | ArrayBuffer | string): void {
    if (this.#state === CONNECTING) {
      throw new TypeError("PortSocket.send: the WebSocket is still connecting (readyState 0)");
    }
    if (this.#state !== OPEN) return;
    const payload = typeof data === "string"
      ? data
      : data instanceof ArrayBuffer
      ? data.slice(0)
      : ownedBuffer(data);
    this.#unacked += relayedSize(payload);
    const msg: RelayMessage = { t: "send", data: payload };
    this.#port.postMessage(msg, typeof payload === "string" ? [] : [payload]);
  }

  /** Starts the closing handshake with the client. */
  close(code = 1000, reason = ""): void {
    if (this.#state >= CLOSING) return;
    this.#state = CLOSING;
    const msg: RelayMessage = { t: "close", code, reason };
    this.#port.postMessage(msg);
  }

  /** Adds a listener for `open`, `message`, `close` or `error`. */
  addEventListener(type: string, listener: Listener): void {
    const list = this.#listeners.get(type);
    if (list) list.push(listener);
    else this.#listeners.set(type, [listener]);
  }

  #emit(type: string, ev: { data?: unknown; code?: number; reason?: string }): void {
    for (const l of this.#listeners.get(type) ?? []) l(ev);
  }

  #onRelay(m: RelayMessage): void {
    switch (m.t) {
      case "open":
        if (this.#state !== CONNECTING) return;
        this.#state = OPEN;
        this.#emit("open", {});
        return;
      case "msg":
        if (this.#state === CLOSED) return;
        this.#emit("message", { data: m.data });
        this.#consumed += relayedSize(m.data);
        this.#reportConsumed();
        return;
      case "ack":
        this.#unacked = Math.max(0, this.#unacked - m.bytes);
        this.#remoteBuffered = m.buffered;
        return;
      case "close":
        if (this.#state === CLOSED) return;
        this.#state = CLOSED;
        this.#port.close();
        this.#emit("close", { code: m.code, reason: m.reason });
        return;
    }
  }

  #reportConsumed(): void {
    const flush = () => {
      this.#consumedScheduled = false;
      if (this.#consumed === 0 || this.#state === CLOSED) return;
      const msg: RelayMessage = { t: "consumed", bytes: this.#consumed };
      this.#consumed = 0;
      this.#port.postMessage(msg);
    };
    if (this.#consumed >= CONSUMED_REPORT_BYTES) flush();
    else if (!this.#consumedScheduled) {
      this.#consumedScheduled = true;
      setTimeout(flush, 0);
    }
  }
}
