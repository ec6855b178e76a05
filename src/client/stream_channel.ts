/**
 * The client end of one `netisle.stream.v1` WebSocket
 * (src/http/socket_stream_protocol.ts): opens it, decodes what the server
 * sends, and keeps the credit both ways — how much the client may still
 * send, and how much of what it received its reader has consumed and not yet
 * acknowledged. TCP sockets and UDP sockets of the SDK sit on top.
 *
 * @module
 */

import {
  decodeStreamMessage,
  encodeStreamAck,
  encodeStreamData,
  encodeStreamFin,
  STREAM_SUBPROTOCOL,
  STREAM_WINDOW_BYTES,
  type StreamErrorInfo,
  StreamMessageType,
  type StreamOpenInfo,
} from "../http/socket_stream_protocol.ts";
import { errorFromClose, NetisleError } from "./netisle_error.ts";

/** A `WebSocket` constructor compatible with the standard one (browsers, Deno, Bun, `ws`). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocket;

/** What a channel tells its socket. */
export interface StreamChannelEvents {
  /** The server's OPEN: the endpoints. */
  open(info: StreamOpenInfo): void;
  /** A DATA body (TCP bytes, or a UDP datagram with its 6-byte address). */
  data(body: Uint8Array): void;
  /** The peer's FIN: no more DATA. */
  fin(): void;
  /** An ERROR message (UDP: one datagram failed; the stream goes on). */
  error(error: StreamErrorInfo): void;
  /** The WebSocket ended: undefined when cleanly (1000), else why. */
  closed(error: NetisleError | undefined): void;
}

/** Close code the SDK uses to drop a stream on purpose (the server resets the connection). */
export const CLOSE_ABORT = 4000;

/**
 * One v1 stream WebSocket.
 *
 * @example
 * ```ts
 * const ch = new StreamChannel(url, WebSocket, events);
 * await ch.reserve(5);
 * ch.send(encodeStreamData(bytes));
 * ```
 */
export class StreamChannel {
  #ws: WebSocket;
  #events: StreamChannelEvents;
  #sendCredit = STREAM_WINDOW_BYTES;
  #creditWaiters: Array<() => void> = [];
  #toAck = 0;
  #ended = false;
  #opened = false;
  /** The server sent FIN: it sends no more DATA, so it needs no more credit. */
  #peerFin = false;

  /** Opens the WebSocket at `url` offering `netisle.stream.v1`. */
  constructor(url: string, WS: WebSocketConstructor, events: StreamChannelEvents) {
    this.#events = events;
    let ws: WebSocket;
    try {
      ws = new WS(url, [STREAM_SUBPROTOCOL]);
    } catch (err) {
      throw new NetisleError("EUNREACHABLE", `cannot open a WebSocket to ${redact(url)}`, {
        cause: err,
      });
    }
    this.#ws = ws;
    ws.binaryType = "arraybuffer";
    ws.addEventListener("open", () => {
      this.#opened = true;
      if (ws.protocol !== STREAM_SUBPROTOCOL) {
        this.#end(
          new NetisleError(
            "EPROTO",
            `the server did not accept ${STREAM_SUBPROTOCOL} (answered ${
              JSON.stringify(ws.protocol)
            }): it is older than this SDK`,
          ),
        );
        ws.close(1000);
      }
    });
    ws.addEventListener("message", (ev: MessageEvent) => this.#onMessage(ev.data));
    ws.addEventListener("close", (ev: CloseEvent) => {
      if (ev.code === 1000) this.#end(undefined);
      else if (!this.#opened) {
        this.#end(
          new NetisleError(
            "EUNREACHABLE",
            `the stream's WebSocket to ${redact(url)} failed before it opened (code ${ev.code})`,
          ),
        );
      } else this.#end(errorFromClose(ev.code, ev.reason));
    });
    // An error event is followed by close, which says why.
    ws.addEventListener("error", () => {});
  }

  /** Bytes the WebSocket has queued and not yet sent. */
  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  /** What may be sent now without waiting for an ACK. */
  get credit(): number {
    return this.#sendCredit;
  }

  /** Whether the WebSocket ended. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Waits until at least `bytes` of credit are available (or any, with
   * `partial`), then takes them: resolves with how many may be sent.
   * Rejects once the stream ended.
   */
  async reserve(bytes: number, partial = false): Promise<number> {
    for (;;) {
      if (this.#ended) throw new NetisleError("EPIPE", "the stream has ended");
      const have = this.#sendCredit;
      if (have >= bytes || (partial && have > 0)) {
        const n = Math.min(have, bytes);
        this.#sendCredit -= n;
        return n;
      }
      await new Promise<void>((r) => this.#creditWaiters.push(r));
    }
  }

  /** Sends one encoded message (its credit reserved first for DATA). */
  send(message: Uint8Array<ArrayBuffer>): void {
    if (this.#ended || this.#ws.readyState !== 1) {
      throw new NetisleError("EPIPE", "the stream's WebSocket is not open");
    }
    this.#ws.send(message);
  }

  /**
   * Sends `bytes` as one DATA message (its credit reserved first), built in
   * the WebSocket's frame where the WebSocket can (`sendWithFirstByte`:
   * one copy instead of two).
   */
  sendData(bytes: Uint8Array): void {
    if (this.#ended || this.#ws.readyState !== 1) {
      throw new NetisleError("EPIPE", "the stream's WebSocket is not open");
    }
    const ws = this.#ws as WebSocket & {
      sendWithFirstByte?(first: number, rest: Uint8Array): void;
    };
    if (ws.sendWithFirstByte) ws.sendWithFirstByte(StreamMessageType.DATA, bytes);
    else ws.send(encodeStreamData(bytes));
  }

  /** Sends FIN: nothing more from this side. */
  fin(): void {
    this.send(encodeStreamFin());
  }

  /** The reader consumed `bytes` of DATA bodies: return credit in steps of window/8. */
  consumed(bytes: number): void {
    // After the server's FIN no ACK goes out: the server may already be closing the
    // WebSocket (both directions ended), and a message after its close frame is a
    // protocol error to some servers, which then drop what they had not flushed.
    if (this.#peerFin) return;
    this.#toAck += bytes;
    if (this.#toAck >= STREAM_WINDOW_BYTES / 8) this.#flushAck();
  }

  /** Grants the server `bytes` more credit than the base window (a bigger receive window). */
  grant(bytes: number): void {
    if (bytes > 0 && !this.#ended && this.#ws.readyState === 1) {
      this.#ws.send(encodeStreamAck(bytes));
    }
  }

  /** Closes the WebSocket; a code other than 1000 makes the server reset the connection. */
  close(code = 1000, reason = ""): void {
    try {
      if (this.#ws.readyState <= 1) this.#ws.close(code, reason);
    } catch {
      // Already closing.
    }
  }

  #flushAck(): void {
    if (this.#toAck === 0 || this.#ended || this.#ws.readyState !== 1) return;
    this.#ws.send(encodeStreamAck(this.#toAck));
    this.#toAck = 0;
  }

  #onMessage(data: unknown): void {
    if (this.#ended) return;
    if (!(data instanceof ArrayBuffer)) {
      this.#fail("a message that is not binary");
      return;
    }
    const m = decodeStreamMessage(new Uint8Array(data));
    if ("invalid" in m) {
      this.#fail(m.invalid);
      return;
    }
    switch (m.type) {
      case "data":
        this.#events.data(m.data);
        return;
      case "ack": {
        this.#sendCredit += m.bytes;
        for (const w of this.#creditWaiters.splice(0)) w();
        return;
      }
      case "fin":
        this.#peerFin = true;
        this.#events.fin();
        return;
      case "open":
        this.#events.open(m.info);
        return;
      case "error":
        this.#events.error(m.error);
        return;
    }
  }

  #fail(what: string): void {
    this.#end(new NetisleError("EPROTO", `the server sent ${what}`));
    this.close(CLOSE_ABORT, "protocol error");
  }

  #end(error: NetisleError | undefined): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const w of this.#creditWaiters.splice(0)) w();
    this.#events.closed(error);
  }
}

/**
 * A URL without its token, for messages.
 *
 * @example
 * ```ts
 * redact("ws://h/x?token=abc"); // "ws://h/x?token=…"
 * ```
 */
export function redact(url: string): string {
  return url.replace(/([?&]token=)[^&]*/, "$1…");
}
