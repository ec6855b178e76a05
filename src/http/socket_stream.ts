/**
 * `GET .../sockets/:id/stream`: a connected TCP socket carried over a
 * WebSocket. Binary messages both ways are the byte stream (a text message
 * is taken as its UTF-8 bytes, for clients like `websocat` that send text).
 *
 * - Client → peer: each message is queued and written to the connection in
 *   order; the queue is bounded (the WebSocket cannot be paused, so a client
 *   that outruns the peer is closed with 1009) and each message is charged
 *   to the session's memory quota while it waits (1009 with ENOBUFS when
 *   the quota refuses it).
 * - Peer → client: bytes are read from the connection only while the
 *   WebSocket's `bufferedAmount` is under a high-water mark, so a slow client
 *   closes the TCP receive window instead of filling memory.
 * - The client closing the WebSocket sends FIN (shutdown write) after the
 *   queued bytes; the peer's FIN closes the WebSocket (1000) after
 *   everything before it was delivered; a reset closes it with 1011 and the
 *   error code as reason. Deleting the socket closes it with 1001.
 *
 * The socket stays in the table when the stream ends: its owner deletes it.
 *
 * @module
 */

import { NetError } from "../errors/net_error.ts";
import type { SocketAttachment, SocketEntry } from "../socket/socket_entry.ts";
import type { SocketTable } from "../socket/socket_table.ts";
import type { TimerClock } from "../socket/poll_deadline.ts";
import type { BufferHold } from "../socket/buffer_hold.ts";
import type { TcpSocket } from "../socket/tcp_socket.ts";
import type { TunnelSocket } from "../session/tunnel_server.ts";

/** Options of {@linkcode openSocketStream}. */
export interface SocketStreamOptions {
  /** Read from TCP only while `bufferedAmount` is below this (bytes). Default 1 MiB. */
  highWaterBytes?: number;
  /** Bytes from the client waiting for the send buffer before the stream closes (1009). Default 4 MiB. */
  maxQueuedBytes?: number;
  /** Largest message sent to the client. Default 64 KiB. */
  chunkBytes?: number;
  /** How often a stalled pump re-checks `bufferedAmount` (ms, on the session's clock). Default 10. */
  drainPollMs?: number;
}

/** WebSocket close code: the peer ended the stream (FIN) and everything was delivered. */
export const STREAM_CLOSE_EOF = 1000;
/** WebSocket close code: the socket was deleted. */
export const STREAM_CLOSE_DELETED = 1001;
/** WebSocket close code: the client sent more than the queue holds. */
export const STREAM_CLOSE_TOO_MUCH = 1009;
/** WebSocket close code: the connection failed (reason: the errno-style code). */
export const STREAM_CLOSE_ERROR = 1011;

const CONNECTING = 0;
const OPEN = 1;

/** A stream reserved on a socket, waiting for its WebSocket. */
export interface PendingSocketStream {
  /** Starts carrying bytes over `ws` (after the upgrade succeeded). */
  start(ws: TunnelSocket): void;
  /** Releases the socket when the upgrade failed. */
  cancel(): void;
}

/**
 * Reserves `entry` for a WebSocket stream (EBUSY when one is attached,
 * ENOTCONN when the socket is not a connected TCP socket, EOPNOTSUPP for
 * UDP). Call `start` with the upgraded socket, or `cancel`.
 *
 * @example
 * ```ts
 * const pending = openSocketStream(session.sockets, entry);
 * const { socket, response } = upgradeWebSocket(req);
 * pending.start(socket);
 * return response;
 * ```
 */
export function openSocketStream(
  table: SocketTable,
  entry: SocketEntry,
  options: SocketStreamOptions = {},
): PendingSocketStream {
  let bridge: StreamBridge | undefined;
  let detached = false;
  const attachment: SocketAttachment = {
    detach(reason) {
      detached = true;
      bridge?.detach(reason);
    },
  };
  const sock = table.attach(entry, attachment);
  return {
    start(ws) {
      bridge = new StreamBridge(table, entry, sock, ws, attachment, options);
      if (detached) bridge.detach("socket closed");
      else bridge.start();
    },
    cancel() {
      table.detach(entry, attachment);
    },
  };
}

class StreamBridge {
  #table: SocketTable;
  #entry: SocketEntry;
  #sock: TcpSocket;
  #ws: TunnelSocket;
  #attachment: SocketAttachment;
  #highWater: number;
  #maxQueued: number;
  #chunk: number;
  #pollMs: number;
  #pump = new AbortController();
  /** Client messages not yet (wholly) queued in the send buffer, each charged while held. */
  #queue: Array<{ bytes: Uint8Array; hold: BufferHold }> = [];
  #queued = 0;
  #writing = false;
  #clientClosed = false;
  #finished = false;
  #encoder = new TextEncoder();

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
    this.#highWater = options.highWaterBytes ?? 1024 * 1024;
    this.#maxQueued = options.maxQueuedBytes ?? 4 * 1024 * 1024;
    this.#chunk = options.chunkBytes ?? 64 * 1024;
    this.#pollMs = options.drainPollMs ?? 10;
  }

  start(): void {
    const ws = this.#ws;
    ws.binaryType = "arraybuffer";
    ws.addEventListener("message", (ev) => this.#onMessage(ev.data));
    ws.addEventListener("close", () => this.#onClientClose());
    ws.addEventListener("error", () => this.#onClientClose());
    if (ws.readyState === CONNECTING) {
      ws.addEventListener("open", () => void this.#runPump());
    } else if (ws.readyState === OPEN) {
      void this.#runPump();
    } else {
      this.#onClientClose();
    }
  }

  /** The socket left the table: stop everything and close the WebSocket. */
  detach(reason: string): void {
    this.#close(STREAM_CLOSE_DELETED, reason);
    this.#finish();
  }

  async #runPump(): Promise<void> {
    const signal = this.#pump.signal;
    try {
      for (;;) {
        while (this.#ws.bufferedAmount > this.#highWater) {
          await sleep(this.#table.clock, this.#pollMs, signal);
        }
        if (signal.aborted) return;
        // Take bytes only now that the client drained: until then they stay in the
        // receive buffer and the TCP window closes on the peer.
        const chunk = this.#sock.read(this.#chunk);
        if (chunk === undefined) {
          await this.#sock.waitReadable(signal);
          continue;
        }
        if (chunk === null) {
          this.#close(STREAM_CLOSE_EOF, "end of stream");
          return;
        }
        if (this.#ws.readyState !== OPEN) return;
        this.#ws.send(chunk);
      }
    } catch (err) {
      if (signal.aborted) return;
      this.#close(STREAM_CLOSE_ERROR, err instanceof NetError ? err.code : "EINTERNAL");
    }
  }

  #onMessage(data: unknown): void {
    if (this.#clientClosed || this.#finished) return;
    let bytes: Uint8Array;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (data instanceof Uint8Array) bytes = data;
    else if (typeof data === "string") bytes = this.#encoder.encode(data);
    else return;
    if (bytes.length === 0) return;
    let hold: BufferHold;
    try {
      hold = this.#table.holdBuffer(this.#entry, bytes);
    } catch {
      this.#close(STREAM_CLOSE_TOO_MUCH, "ENOBUFS: the session's buffer quota is full");
      this.#finish();
      return;
    }
    this.#queue.push({ bytes, hold });
    this.#queued += bytes.length;
    // The writer hands what the send buffer takes to TCP before its first await.
    void this.#runWriter();
    if (this.#queued > this.#maxQueued) {
      this.#close(STREAM_CLOSE_TOO_MUCH, "the peer is not reading: too much data queued");
      this.#finish();
    }
  }

  async #runWriter(): Promise<void> {
    if (this.#writing) return;
    this.#writing = true;
    const signal = this.#entry.removedSignal;
    try {
      while (this.#queue.length > 0 && !this.#finished) {
        const head = this.#queue[0];
        const b = head.bytes;
        const n = this.#sock.trySend(b);
        this.#queued -= n;
        head.hold.taken(n);
        if (n === b.length) {
          this.#queue.shift();
          head.hold.release();
        } else {
          head.bytes = b.subarray(n);
          await this.#sock.waitWritable(signal);
        }
      }
      if (this.#clientClosed) this.#endWrites();
    } catch (err) {
      if (!signal.aborted) {
        this.#close(STREAM_CLOSE_ERROR, err instanceof NetError ? err.code : "EINTERNAL");
      }
      this.#finish();
    } finally {
      this.#writing = false;
    }
  }

  #onClientClose(): void {
    if (this.#clientClosed) return;
    this.#clientClosed = true;
    this.#pump.abort();
    if (!this.#writing) this.#endWrites();
  }

  /** The client is gone and its bytes are queued: FIN, then release the socket. */
  #endWrites(): void {
    if (!this.#finished && !this.#entry.removed) {
      try {
        this.#sock.shutdown("write");
      } catch {
        // Already closed: nothing to finish.
      }
    }
    this.#finish();
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

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#pump.abort();
    for (const q of this.#queue) q.hold.release();
    this.#queue = [];
    this.#queued = 0;
    this.#table.detach(this.#entry, this.#attachment);
  }
}

/**
 * Resolves after `ms` on `clock` (the session's), or rejects with the
 * signal's reason; leaves no timer or listener behind.
 */
function sleep(clock: TimerClock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clock.clearTimer(t);
      reject(signal.reason);
    };
    const t = clock.setTimer(clock.now() + ms, () => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
