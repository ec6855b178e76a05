/**
 * `GET .../sockets/:id/stream`: a connected TCP socket carried over a
 * WebSocket. Binary messages both ways are the byte stream (a text message
 * is taken as its UTF-8 bytes, for clients like `websocat` that send text).
 *
 * Every byte the stream buffers on the socket's behalf is charged to the
 * session's memory quota (`bufferCost` of each buffer) and bounded:
 *
 * - Client → peer: each message is charged when it arrives, queued and
 *   written to the connection in order, and released once TCP took all of
 *   it. The queue is bounded (the WebSocket cannot be paused, so a client
 *   that outruns the peer is closed with 1009), and a message the quota
 *   cannot take closes the stream with 1009 `ENOBUFS`.
 * - Peer → client: a chunk is charged before it is read from the connection
 *   and stays charged while the WebSocket still buffers it
 *   (`bufferedAmount`). Bytes are read only while `bufferedAmount` is under a
 *   high-water mark and the quota takes the next chunk, so a client that
 *   stops reading leaves the bytes in the TCP receive buffer: the window
 *   closes and the peer stops sending, instead of memory growing.
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
import type { Clock } from "../session/clock.ts";
import type { BufferHold } from "../socket/buffer_hold.ts";
import type { SocketAttachment, SocketEntry } from "../socket/socket_entry.ts";
import type { SocketTable } from "../socket/socket_table.ts";
import { sleepOn } from "../socket/poll_deadline.ts";
import type { TcpSocket } from "../socket/tcp_socket.ts";
import type { TunnelSocket } from "../session/tunnel_server.ts";
import { bufferCost, type MemoryQuota } from "../stack/session_quota.ts";

/** Options of {@linkcode openSocketStream}. */
export interface SocketStreamOptions {
  /** Read from TCP only while `bufferedAmount` is below this (bytes). Default 1 MiB. */
  highWaterBytes?: number;
  /** Bytes from the client waiting for the send buffer before the stream closes (1009). Default 4 MiB. */
  maxQueuedBytes?: number;
  /** Largest message sent to the client. Default 64 KiB. */
  chunkBytes?: number;
  /** How often a stalled pump re-checks `bufferedAmount` and the quota (ms). Default 10. */
  drainPollMs?: number;
}

/** What a stream charges and waits with: the session's memory quota and clock. */
export interface SocketStreamContext {
  /** The session's memory quota, charged for every byte the stream buffers. */
  quota: MemoryQuota;
  /** The clock a stalled pump waits on. */
  clock: Clock;
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
const CLOSED = 3;

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
 * const pending = openSocketStream(session.sockets, entry, {
 *   quota: session.stack.quota.memory,
 *   clock,
 * });
 * const { socket, response } = upgradeWebSocket(req);
 * pending.start(socket);
 * return response;
 * ```
 */
export function openSocketStream(
  table: SocketTable,
  entry: SocketEntry,
  context: SocketStreamContext,
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
      bridge = new StreamBridge(table, entry, sock, ws, attachment, context, options);
      if (detached) bridge.detach("socket closed");
      else bridge.start();
    },
    cancel() {
      table.detach(entry, attachment);
    },
  };
}

/** A message from the client waiting for the send buffer, and its charge (a socket's held buffer). */
interface Queued {
  bytes: Uint8Array;
  hold: BufferHold;
}

class StreamBridge {
  #table: SocketTable;
  #entry: SocketEntry;
  #sock: TcpSocket;
  #ws: TunnelSocket;
  #attachment: SocketAttachment;
  #quota: MemoryQuota;
  #clock: Clock;
  #highWater: number;
  #maxQueued: number;
  #chunk: number;
  #pollMs: number;
  #pump = new AbortController();
  #queue: Queued[] = [];
  #queued = 0;
  /** Sizes of the messages sent to the client that the WebSocket may still buffer. */
  #outstanding: number[] = [];
  #outstandingBytes = 0;
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
    context: SocketStreamContext,
    options: SocketStreamOptions,
  ) {
    this.#table = table;
    this.#entry = entry;
    this.#sock = sock;
    this.#ws = ws;
    this.#attachment = attachment;
    this.#quota = context.quota;
    this.#clock = context.clock;
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
    const chunkCost = bufferCost(this.#chunk);
    try {
      for (;;) {
        this.#releaseDrained();
        // Take bytes only when the client drained and the quota takes a chunk: until then
        // they stay in the receive buffer and the TCP window closes on the peer.
        while (this.#ws.bufferedAmount > this.#highWater || !this.#quota.tryCharge(chunkCost)) {
          await sleepOn(this.#clock, this.#pollMs, signal);
          this.#releaseDrained();
        }
        if (signal.aborted) {
          this.#quota.release(chunkCost);
          return;
        }
        const chunk = this.#sock.read(this.#chunk);
        if (chunk === undefined) {
          this.#quota.release(chunkCost);
          await this.#waitReadable(signal);
          continue;
        }
        if (chunk === null) {
          this.#quota.release(chunkCost);
          this.#close(STREAM_CLOSE_EOF, "end of stream");
          return;
        }
        // Charged now: what the WebSocket holds of this chunk until it has sent it.
        this.#quota.release(chunkCost - bufferCost(chunk.byteLength));
        if (this.#ws.readyState !== OPEN) {
          this.#quota.release(bufferCost(chunk.byteLength));
          return;
        }
        this.#ws.send(chunk);
        this.#outstanding.push(chunk.byteLength);
        this.#outstandingBytes += chunk.byteLength;
      }
    } catch (err) {
      if (signal.aborted) return;
      this.#close(STREAM_CLOSE_ERROR, err instanceof NetError ? err.code : "EINTERNAL");
    }
  }

  /**
   * Waits for data from the peer; while the WebSocket still buffers messages
   * this stream sent, also wakes every poll interval to release what it sent
   * on (no event tells when `bufferedAmount` drops).
   */
  async #waitReadable(signal: AbortSignal): Promise<void> {
    if (this.#outstanding.length === 0) return await this.#sock.waitReadable(signal);
    const quiet = new AbortController();
    const both = AbortSignal.any([signal, quiet.signal]);
    const readable = this.#sock.waitReadable(both);
    const tick = sleepOn(this.#clock, this.#pollMs, both);
    readable.catch(() => {});
    tick.catch(() => {});
    try {
      await Promise.race([readable, tick]);
    } finally {
      quiet.abort();
    }
  }

  /**
   * Releases the messages the WebSocket sent on: of what was handed to it,
   * `bufferedAmount` bytes (the newest) are still buffered.
   */
  #releaseDrained(): void {
    const buffered = this.#ws.readyState === CLOSED ? 0 : this.#ws.bufferedAmount;
    while (
      this.#outstanding.length > 0 &&
      this.#outstandingBytes - this.#outstanding[0] >= buffered
    ) {
      const n = this.#outstanding.shift()!;
      this.#outstandingBytes -= n;
      this.#quota.release(bufferCost(n));
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
      // Charged to the session's memory quota, and counted in the socket's pendingBytes.
      hold = this.#table.holdBuffer(this.#entry, bytes);
    } catch {
      this.#close(STREAM_CLOSE_TOO_MUCH, "ENOBUFS: the session's memory quota is full");
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
        const q = this.#queue[0];
        const n = this.#sock.trySend(q.bytes);
        this.#queued -= n;
        q.hold.taken(n);
        if (n === q.bytes.length) {
          // TCP took (copied) all of it: the message is no longer held.
          this.#queue.shift();
          q.hold.release();
        } else {
          q.bytes = q.bytes.subarray(n);
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
    // The WebSocket is gone: nothing it buffered is held any more.
    this.#releaseDrained();
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

  /**
   * Stops both directions and releases the queue. What the WebSocket still
   * buffers stays charged until it closes (its `close` event).
   */
  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#pump.abort();
    for (const q of this.#queue) q.hold.release();
    this.#queue = [];
    this.#queued = 0;
    this.#releaseDrained();
    this.#table.detach(this.#entry, this.#attachment);
  }
}
