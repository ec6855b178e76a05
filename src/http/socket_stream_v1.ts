/**
 * The server end of `netisle.stream.v1` (socket_stream_protocol.ts) for TCP
 * sockets: a connected socket carried over a WebSocket with credit-based flow
 * control both ways, a half-close each way, and a stream that owns its
 * socket. UDP sockets are carried by udp_stream.ts; without the subprotocol
 * the original stream of socket_stream.ts answers.
 *
 * - Client → peer: DATA bodies are queued and written to the connection in
 *   order; ACKs go back as the send buffer takes them. The queue counts
 *   against the session's buffer quota; a client past its credit (more than
 *   `maxQueuedBytes` waiting) is closed with 1009.
 * - Peer → client: bytes are read from the connection only while the client
 *   has credit, so a slow reader closes the TCP window on the peer. The
 *   credit honoured is capped at `maxQueuedBytes`, which also bounds what
 *   waits in the WebSocket's send buffer (no `bufferedAmount` polling).
 * - FIN each way; both ended: the socket is deleted gracefully and the
 *   client closes the WebSocket (the server does after 10 s otherwise). The
 *   WebSocket ending earlier deletes the socket with a RST unless the client
 *   had sent FIN. A reset closes with 1011 and the code as reason; deleting the
 *   socket over HTTP closes with 1001.
 *
 * @module
 */

import { NetError } from "../errors/net_error.ts";
import type { BufferHold } from "../socket/buffer_hold.ts";
import type { SocketAttachment, SocketEntry } from "../socket/socket_entry.ts";
import type { SocketTable } from "../socket/socket_table.ts";
import { sleepOn } from "../socket/poll_deadline.ts";
import { UnackedCharges } from "./unacked_charges.ts";
import type { TcpSocket } from "../socket/tcp_socket.ts";
import { receivedHeadroom } from "../stack/tcp/receive_queue.ts";
import { recycleLargeBuffer } from "../stack/large_buffer_pool.ts";
import type { TunnelSocket } from "../session/tunnel_server.ts";
import {
  type PendingSocketStream,
  type SocketStreamOptions,
  STREAM_CLOSE_DELETED,
  STREAM_CLOSE_EOF,
  STREAM_CLOSE_ERROR,
  STREAM_CLOSE_TOO_MUCH,
} from "./socket_stream.ts";
import {
  decodeStreamMessage,
  encodeStreamAck,
  encodeStreamData,
  encodeStreamFin,
  encodeStreamOpen,
  STREAM_WINDOW_BYTES,
  StreamMessageType,
} from "./socket_stream_protocol.ts";

/** WebSocket close code: the client broke the v1 protocol (the reason says how). */
export const STREAM_CLOSE_PROTOCOL_ERROR = 1002;

/** How long the server waits for the client to close a stream whose both directions ended. */
export const STREAM_LINGER_MS = 10_000;

const CONNECTING = 0;
const OPEN = 1;

/**
 * Reserves a connected TCP socket for a v1 stream (EBUSY when a stream is
 * attached, ENOTCONN when not connected; UDP sockets go to `openUdpStream`).
 * Call `start` with the upgraded socket, or `cancel`.
 *
 * @example
 * ```ts
 * const pending = openStreamV1(session.sockets, entry);
 * const { socket, response } = upgradeWebSocket(req, { protocol: STREAM_SUBPROTOCOL });
 * pending.start(socket);
 * return response;
 * ```
 */
export function openStreamV1(
  table: SocketTable,
  entry: SocketEntry,
  options: SocketStreamOptions = {},
): PendingSocketStream {
  let bridge: TcpStreamV1 | undefined;
  let detached: string | undefined;
  const attachment: SocketAttachment = {
    detach(reason) {
      detached = reason;
      bridge?.detach(reason);
    },
  };
  const sock = table.attach(entry, attachment);
  return {
    start(ws) {
      bridge = new TcpStreamV1(table, entry, sock, ws, attachment, options);
      if (detached !== undefined) bridge.detach(detached);
      else bridge.start();
    },
    cancel() {
      table.detach(entry, attachment);
    },
  };
}

class TcpStreamV1 {
  #table: SocketTable;
  #entry: SocketEntry;
  #sock: TcpSocket;
  #ws: TunnelSocket;
  #attachment: SocketAttachment;
  #maxQueued: number;
  #chunk: number;
  #ackEvery: number;
  #pump = new AbortController();
  /** Client → peer bytes not yet in the send buffer, each held (charged) while queued. */
  #queue: Array<{ bytes: Uint8Array; hold: BufferHold }> = [];
  #queued = 0;
  /** Peer → client DATA not yet acknowledged, charged to the session's memory quota. */
  #unacked: UnackedCharges;
  /** Bytes taken by the send buffer and not yet acknowledged to the client. */
  #toAck = 0;
  /** What the client may still be sent. */
  #credit = STREAM_WINDOW_BYTES;
  #creditWaiter: (() => void) | undefined;
  #writing = false;
  #clientFin = false;
  #clientGone = false;
  #writesEnded = false;
  #peerEnded = false;
  #linger: ReturnType<typeof setTimeout> | undefined;
  #finished = false;

  constructor(
    table: SocketTable,
    entry: SocketEntry,
    sock: TcpSocket,
    ws: TunnelSocket,
    attachment: SocketAttachment,
    options: SocketStreamOptions,
  ) {
    this.#table = table;
    this.#entry = entry;
    this.#sock = sock;
    this.#ws = ws;
    this.#attachment = attachment;
    this.#maxQueued = Math.max(options.maxQueuedBytes ?? 4 * 1024 * 1024, STREAM_WINDOW_BYTES);
    this.#chunk = options.chunkBytes ?? 256 * 1024;
    this.#ackEvery = STREAM_WINDOW_BYTES / 8;
    this.#unacked = new UnackedCharges(table.quota.memory);
  }

  start(): void {
    const ws = this.#ws;
    ws.binaryType = "arraybuffer";
    ws.addEventListener("message", (ev) => this.#onMessage(ev.data));
    ws.addEventListener("close", () => this.#onClientGone());
    ws.addEventListener("error", () => this.#onClientGone());
    ws.addEventListener("close", () => clearTimeout(this.#linger));
    if (ws.readyState === CONNECTING) ws.addEventListener("open", () => this.#opened());
    else if (ws.readyState === OPEN) this.#opened();
    else this.#onClientGone();
  }

  /** The socket left the table (deleted over HTTP, or the session ended). */
  detach(reason: string): void {
    if (this.#finished) return;
    this.#close(STREAM_CLOSE_DELETED, reason);
    this.#finish(undefined);
  }

  #opened(): void {
    if (this.#finished) return;
    const entry = this.#entry;
    this.#send(encodeStreamOpen({
      protocol: "tcp",
      local: entry.localEndpoint,
      remote: entry.remote,
    }));
    // The queue holds more than the base window: grant the difference at once.
    const extra = this.#maxQueued - STREAM_WINDOW_BYTES;
    if (extra > 0) this.#send(encodeStreamAck(extra));
    void this.#runPump();
  }

  async #runPump(): Promise<void> {
    const signal = this.#pump.signal;
    try {
      for (;;) {
        while (this.#credit <= 0) await this.#waitCredit(signal);
        if (signal.aborted) return;
        // Take bytes only when the client can take them and the session's quota can hold
        // them until the client acknowledges them: until then they stay in the receive
        // buffer and the TCP window closes on the peer.
        const want = Math.min(this.#chunk, this.#credit);
        if (!this.#unacked.tryReserve(want)) {
          await sleepOn(this.#table.clock, QUOTA_RETRY_MS, signal);
          continue;
        }
        const chunk = this.#sock.read(want);
        this.#unacked.settle(chunk ? chunk.length : 0);
        if (chunk === undefined) {
          await this.#sock.waitReadable(signal);
          continue;
        }
        if (this.#ws.readyState !== OPEN) return;
        if (chunk === null) {
          this.#send(encodeStreamFin());
          this.#peerEnded = true;
          this.#maybeDone();
          return;
        }
        this.#credit -= chunk.length;
        const ws = this.#ws;
        const room = ws.sendInPlace ? receivedHeadroom(chunk) : 0;
        if (room > 0) {
          // A segment's own chunk, handed over by the receive queue with room before it: the
          // type byte and the WebSocket frame header go there, and the bytes go out uncopied.
          // Its buffer goes back to the pool once written (a large segment's, see receive_queue.ts).
          const message = new Uint8Array(chunk.buffer, chunk.byteOffset - 1, chunk.length + 1);
          message[0] = StreamMessageType.DATA;
          ws.sendInPlace!(message, room - 1, recycleLargeBuffer);
        } else {
          if (ws.sendWithFirstByte) {
            // One copy into the WebSocket frame where the socket can build it with the type byte.
            ws.sendWithFirstByte(StreamMessageType.DATA, chunk);
          } else this.#send(encodeStreamData(chunk));
          recycleLargeBuffer(chunk); // copied
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      this.#fail(err);
    }
  }

  #waitCredit(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      this.#creditWaiter = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
    });
  }

  #onMessage(data: unknown): void {
    if (this.#finished) return;
    if (!(data instanceof ArrayBuffer) && !(data instanceof Uint8Array)) {
      this.#protocolError("text messages are not part of netisle.stream.v1");
      return;
    }
    const m = decodeStreamMessage(data instanceof ArrayBuffer ? new Uint8Array(data) : data);
    if ("invalid" in m) {
      this.#protocolError(m.invalid);
      return;
    }
    switch (m.type) {
      case "data":
        this.#onData(m.data);
        return;
      case "ack": {
        this.#unacked.acked(m.bytes);
        // Capped: what the client may be owed also bounds the WebSocket's send buffer.
        this.#credit = Math.min(this.#credit + m.bytes, this.#maxQueued);
        const wake = this.#creditWaiter;
        this.#creditWaiter = undefined;
        wake?.();
        return;
      }
      case "fin":
        if (this.#clientFin) return;
        this.#clientFin = true;
        if (!this.#writing) this.#endWrites();
        return;
      default:
        this.#protocolError(`a client may not send ${m.type.toUpperCase()}`);
    }
  }

  #onData(body: Uint8Array): void {
    if (this.#clientFin) {
      this.#protocolError("DATA after FIN");
      return;
    }
    if (body.length === 0) return;
    let hold: BufferHold;
    try {
      // The body is a view into the message, which nobody else holds: keep it, charged.
      hold = this.#table.holdBuffer(this.#entry, body);
    } catch {
      this.#close(STREAM_CLOSE_TOO_MUCH, "ENOBUFS: the session's memory quota is full");
      this.#finish({ abort: true });
      return;
    }
    this.#queue.push({ bytes: body, hold });
    this.#queued += body.length;
    if (this.#queued > this.#maxQueued) {
      this.#close(STREAM_CLOSE_TOO_MUCH, "the client sent past its credit");
      this.#finish({ abort: true });
      return;
    }
    // The writer hands what the send buffer takes to TCP before its first await.
    void this.#runWriter();
  }

  async #runWriter(): Promise<void> {
    if (this.#writing) return;
    this.#writing = true;
    const signal = this.#entry.removedSignal;
    try {
      while (this.#queue.length > 0 && !this.#finished) {
        const q = this.#queue[0];
        const b = q.bytes;
        const n = this.#sock.trySend(b);
        this.#queued -= n;
        q.hold.taken(n);
        this.#toAck += n;
        if (this.#toAck >= this.#ackEvery) this.#flushAck();
        if (n === b.length) {
          this.#queue.shift();
          q.hold.release();
        } else {
          q.bytes = b.subarray(n);
          await this.#sock.waitWritable(signal);
        }
      }
      if (this.#clientFin && !this.#finished) this.#endWrites();
      if (this.#clientGone) this.#finish({ abort: false });
    } catch (err) {
      if (!signal.aborted) this.#fail(err);
    } finally {
      this.#writing = false;
    }
  }

  #flushAck(): void {
    if (this.#toAck === 0) return;
    this.#send(encodeStreamAck(this.#toAck));
    this.#toAck = 0;
  }

  /** The client sent FIN and its queued bytes are in the send buffer: FIN to the peer. */
  #endWrites(): void {
    if (this.#writesEnded || this.#finished) return;
    this.#writesEnded = true;
    try {
      this.#sock.shutdown("write");
    } catch (err) {
      this.#fail(err);
      return;
    }
    this.#maybeDone();
  }

  /**
   * Both directions ended: the socket is deleted gracefully, and the client
   * closes the WebSocket. Closing it here instead would race the client's
   * last ACKs: a server that closes its TCP connection with unread bytes in
   * it sends a RST, and a RST discards what the client had not yet read.
   * A client that does not close is closed after {@linkcode STREAM_LINGER_MS}.
   */
  #maybeDone(): void {
    if (!this.#peerEnded || !this.#writesEnded || this.#finished) return;
    this.#finish({ abort: false });
    this.#linger = setTimeout(
      () => this.#close(STREAM_CLOSE_EOF, "end of stream"),
      STREAM_LINGER_MS,
    );
  }

  /** The WebSocket closed or failed. */
  #onClientGone(): void {
    if (this.#finished) return;
    this.#pump.abort();
    this.#clientGone = true;
    if (this.#clientFin && this.#queue.length > 0) {
      // Everything the client sent before its FIN still goes out, then the socket closes.
      void this.#runWriter();
      return;
    }
    this.#finish({ abort: !this.#clientFin });
  }

  #fail(err: unknown): void {
    this.#close(STREAM_CLOSE_ERROR, err instanceof NetError ? err.code : "EINTERNAL");
    this.#finish({ abort: true });
  }

  #protocolError(what: string): void {
    this.#close(STREAM_CLOSE_PROTOCOL_ERROR, `netisle.stream.v1: ${what}`.slice(0, 120));
    this.#finish({ abort: true });
  }

  #send(message: Uint8Array<ArrayBuffer>): void {
    if (this.#ws.readyState === OPEN) this.#ws.send(message);
  }

  #close(code: number, reason: string): void {
    const ws = this.#ws;
    if (ws.readyState !== CONNECTING && ws.readyState !== OPEN) return;
    try {
      ws.close(code, reason);
    } catch {
      // Already closing.
    }
  }

  /**
   * Stops everything; with `remove`, deletes the socket too (the stream owns
   * it): gracefully, or with a RST when `abort`.
   */
  #finish(remove: { abort: boolean } | undefined): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#pump.abort();
    for (const q of this.#queue) q.hold.release();
    this.#queue = [];
    this.#queued = 0;
    this.#unacked.releaseAll();
    this.#table.detach(this.#entry, this.#attachment);
    if (remove && !this.#entry.removed) this.#table.delete(this.#entry.id, remove);
  }
}

/** How long a pump the session's memory quota refused waits before it asks again (ms). */
const QUOTA_RETRY_MS = 10;
