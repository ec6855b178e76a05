/**
 * One Wisp TCP stream: a TCP connection the session's stack opens inside its
 * network, a socket in the session's table (it counts against the socket
 * quota, shows in the listing, and HTTP send/recv answer EBUSY while the
 * stream owns it).
 *
 * - Client → peer: DATA payloads (views into their messages) are held,
 *   charged to the session's memory quota (`SocketTable.holdBuffer`), and
 *   written in order as the send buffer takes them; CONTINUE renews the
 *   client's packet count as they leave the queue (Wisp's flow control
 *   counts packets). DATA sent while the connection opens waits in the queue.
 * - Peer → client: bytes are read from TCP only when the connection's
 *   WebSocket budget and the quota take them (`WispLink.reserve`); a client
 *   that stops reading fills the WebSocket, reads stop, the TCP window closes.
 * - The peer's FIN: CLOSE 0x02 after everything before it, then the socket
 *   closes once the client's queued bytes are written. A reset: CLOSE 0x03; a
 *   retransmission timeout: 0x47. The client's CLOSE closes the socket (FIN;
 *   RST when unread data is left, RFC 2525) and drops what was queued.
 *
 * @module
 */

import { NetError } from "../../errors/net_error.ts";
import type { BufferHold } from "../../socket/buffer_hold.ts";
import type { SocketAttachment, SocketEntry } from "../../socket/socket_entry.ts";
import type { TcpSocket } from "../../socket/tcp_socket.ts";
import {
  encodeWispClose,
  encodeWispContinue,
  encodeWispData,
  WISP_HEADER_BYTES,
  WispCloseReason,
} from "../../wire/mod.ts";
import type { WispLink } from "./wisp_link.ts";

/**
 * The close reason of a failed connect (Wisp v1.2 "Server Only Close Reasons").
 *
 * @example
 * ```ts
 * connectFailureReason(new NetError("ECONNREFUSED", "refused")); // 0x44
 * ```
 */
export function connectFailureReason(err: unknown): number {
  const code = err instanceof NetError ? err.code : undefined;
  switch (code) {
    case "ECONNREFUSED":
    case "ECONNRESET":
      return WispCloseReason.REFUSED;
    case "ETIMEDOUT":
      return WispCloseReason.TIMEOUT;
    case "EHOSTUNREACH":
      return WispCloseReason.UNREACHABLE;
    case "EMFILE":
    case "ENOBUFS":
    case "ENFILE":
      return WispCloseReason.THROTTLED;
    case "EINVAL":
      return WispCloseReason.INVALID;
    default:
      return WispCloseReason.NETWORK_ERROR;
  }
}

/**
 * A TCP stream of a Wisp connection.
 *
 * @example
 * ```ts
 * const s = new WispTcpStream(link, 7, session.sockets.create("tcp"));
 * void s.open("10.0.2.15", 80);
 * s.onData(payload); // from the client
 * ```
 */
export class WispTcpStream {
  /** The client's stream id. */
  readonly id: number;
  /** The socket in the session's table. */
  readonly entry: SocketEntry;
  #link: WispLink;
  #sock: TcpSocket | undefined;
  #abort = new AbortController();
  #attachment: SocketAttachment;
  #queue: Array<{ bytes: Uint8Array; hold: BufferHold }> = [];
  #queuedBytes = 0;
  /** What the client may still send, as far as the server knows (packets). */
  #clientCredit: number;
  #writing = false;
  #peerEnded = false;
  #closed = false;

  /** A stream on `entry`, a TCP socket just created in the link's table. */
  constructor(link: WispLink, id: number, entry: SocketEntry) {
    this.#link = link;
    this.id = id;
    this.entry = entry;
    this.#clientCredit = link.options.bufferPackets;
    this.#attachment = { detach: () => this.#end(WispCloseReason.VOLUNTARY) };
  }

  /** Whether the stream has ended. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Connects to `address:port` in the session; on failure the client gets the CLOSE reason. */
  async open(address: string, port: number): Promise<void> {
    const table = this.#link.table;
    try {
      await table.connect(this.entry, {
        address,
        port,
        timeoutMs: this.#link.options.connectTimeoutMs,
        signal: this.#abort.signal,
      });
      if (this.#closed) return;
      this.#sock = table.attach(this.entry, this.#attachment);
    } catch (err) {
      if (this.#closed) return;
      this.#link.count(`connect_failed_${err instanceof NetError ? err.code : "error"}`);
      this.#end(connectFailureReason(err));
      return;
    }
    this.#link.count("tcp_opened");
    // v2 stream-open confirmation: a CONTINUE once the connection is up.
    if (this.#link.confirmsOpen) this.#grant(true);
    void this.#runPump();
    if (this.#queue.length > 0) void this.#runWriter();
  }

  /** A DATA packet from the client. */
  onData(payload: Uint8Array): void {
    if (this.#closed || this.#peerEnded) return;
    this.#clientCredit--;
    if (payload.length === 0) {
      this.#grant(false);
      return;
    }
    let hold: BufferHold;
    try {
      hold = this.#link.table.holdBuffer(this.entry, payload);
    } catch {
      this.#link.count("throttled_quota");
      this.#end(WispCloseReason.THROTTLED, true);
      return;
    }
    this.#queue.push({ bytes: payload, hold });
    this.#queuedBytes += payload.length;
    if (this.#queuedBytes > this.#link.options.maxQueuedBytesPerStream) {
      this.#link.count("throttled_queue");
      this.#end(WispCloseReason.THROTTLED, true);
      return;
    }
    if (this.#sock) void this.#runWriter();
  }

  /** The client's CLOSE: the socket closes (FIN), queued bytes are dropped. */
  onClientClose(): void {
    this.#end(undefined);
  }

  /** The WebSocket ended: the connection is reset (a dropped WebSocket is no clean end). */
  onConnectionGone(): void {
    this.#end(undefined, true);
  }

  async #runPump(): Promise<void> {
    const sock = this.#sock!;
    const signal = this.#abort.signal;
    const chunk = this.#link.options.chunkBytes;
    const reserved = WISP_HEADER_BYTES + chunk;
    try {
      for (;;) {
        await this.#link.reserve(reserved, signal);
        let data: Uint8Array | null | undefined;
        try {
          data = sock.read(chunk);
        } catch (err) {
          this.#link.cancelReservation(reserved);
          throw err;
        }
        if (data === undefined) {
          this.#link.cancelReservation(reserved);
          await sock.waitReadable(signal);
          continue;
        }
        if (data === null) {
          this.#link.cancelReservation(reserved);
          this.#peerEnded = true;
          this.#link.sendControl(encodeWispClose(this.id, WispCloseReason.VOLUNTARY));
          // The client's bytes still queued go out before the socket closes.
          if (!this.#writing) this.#end(undefined);
          return;
        }
        this.#link.sendReserved(encodeWispData(this.id, data), reserved);
      }
    } catch (err) {
      if (signal.aborted) return;
      this.#fail(err);
    }
  }

  async #runWriter(): Promise<void> {
    if (this.#writing || !this.#sock) return;
    this.#writing = true;
    const sock = this.#sock;
    const signal = this.#abort.signal;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const q = this.#queue[0];
        const n = sock.trySend(q.bytes);
        this.#queuedBytes -= n;
        q.hold.taken(n);
        if (n === q.bytes.length) {
          this.#queue.shift();
          q.hold.release();
          this.#grant(false);
        } else {
          q.bytes = q.bytes.subarray(n);
          await sock.waitWritable(signal);
        }
      }
      if (this.#peerEnded) this.#end(undefined);
    } catch (err) {
      if (!signal.aborted) this.#fail(err);
    } finally {
      this.#writing = false;
    }
  }

  /**
   * Renews the client's count once it may have used half of it and the
   * queue has room (or always, with `force`: the open confirmation).
   */
  #grant(force: boolean): void {
    if (this.#closed || this.#peerEnded) return;
    const max = this.#link.options.bufferPackets;
    const room = max - this.#queue.length;
    if (!force && (this.#clientCredit > max / 2 || room <= max / 2)) return;
    this.#clientCredit = room;
    this.#link.sendControl(encodeWispContinue(this.id, room));
  }

  #fail(err: unknown): void {
    const code = err instanceof NetError ? err.code : undefined;
    this.#link.count(`tcp_failed_${code ?? "error"}`);
    this.#end(
      code === "ETIMEDOUT" ? WispCloseReason.TRANSFER_TIMEOUT : WispCloseReason.NETWORK_ERROR,
      true,
    );
  }

  /**
   * Ends the stream: sends CLOSE `reason` when given (and the client has not
   * had one), stops both directions, releases the queue and deletes the
   * socket (gracefully, or with a RST when `abort`).
   */
  #end(reason: number | undefined, abort = false): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    if (reason !== undefined && !this.#peerEnded) {
      this.#link.sendControl(encodeWispClose(this.id, reason));
    }
    for (const q of this.#queue) q.hold.release();
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#link.forget(this.id);
    const table = this.#link.table;
    table.detach(this.entry, this.#attachment);
    if (!this.entry.removed) table.delete(this.entry.id, { abort });
  }
}
