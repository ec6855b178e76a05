/**
 * The server end of `netisle.stream.v1` (socket_stream_protocol.ts) for UDP
 * sockets: one DATA message per datagram each way, with the peer's address
 * in front of the payload, under the same credit as TCP streams.
 *
 * - Client → stack: each DATA is sent at once to its destination (0.0.0.0:0
 *   means the connected peer) and acknowledged; a datagram that cannot go
 *   (EMSGSIZE, EHOSTUNREACH, ENOTCONN) is answered with an ERROR message and
 *   the stream goes on.
 * - Stack → client: datagrams are taken from the socket's receive queue only
 *   while the client has credit (capped at 4 MiB, which also bounds the
 *   WebSocket's send buffer); meanwhile they wait in the socket's bounded queue,
 *   which drops (and counts, `rxQueueDrops`) what does not fit. ICMP errors
 *   of a connected socket (ECONNREFUSED, EHOSTUNREACH) become ERROR messages.
 * - The WebSocket ending deletes the socket; deleting the socket closes the
 *   WebSocket with 1001.
 *
 * @module
 */

import { NetError } from "../errors/net_error.ts";
import type { SocketAttachment, UdpSocketEntry } from "../socket/socket_entry.ts";
import type { SocketTable } from "../socket/socket_table.ts";
import { sleepOn } from "../socket/poll_deadline.ts";
import { UnackedCharges } from "./unacked_charges.ts";
import type { UdpSocket } from "../socket/udp_socket.ts";
import type { TunnelSocket } from "../session/tunnel_server.ts";
import {
  type PendingSocketStream,
  type SocketStreamOptions,
  STREAM_CLOSE_DELETED,
  STREAM_CLOSE_ERROR,
} from "./socket_stream.ts";
import {
  decodeStreamMessage,
  decodeUdpData,
  encodeStreamAck,
  encodeStreamError,
  encodeStreamOpen,
  encodeUdpData,
  STREAM_WINDOW_BYTES,
  UDP_DATA_HEADER_BYTES,
} from "./socket_stream_protocol.ts";
import { STREAM_CLOSE_PROTOCOL_ERROR } from "./socket_stream_v1.ts";

/** The most credit honoured: it bounds what waits in the WebSocket's send buffer. */
const MAX_CREDIT_BYTES = 4 * 1024 * 1024;

const CONNECTING = 0;
const OPEN = 1;

/**
 * Reserves a UDP socket for a v1 stream (binding an ephemeral port first when
 * it has none; EBUSY when a stream is attached).
 *
 * @example
 * ```ts
 * const pending = openUdpStream(session.sockets, entry);
 * pending.start(upgradeWebSocket(req, { protocol: STREAM_SUBPROTOCOL }).socket);
 * ```
 */
export function openUdpStream(
  table: SocketTable,
  entry: UdpSocketEntry,
  _options: SocketStreamOptions = {},
): PendingSocketStream {
  let bridge: UdpStream | undefined;
  let detached: string | undefined;
  const attachment: SocketAttachment = {
    detach(reason) {
      detached = reason;
      bridge?.detach(reason);
    },
  };
  const sock = table.attachUdp(entry, attachment);
  return {
    start(ws) {
      bridge = new UdpStream(table, entry, sock, ws, attachment);
      if (detached !== undefined) bridge.detach(detached);
      else bridge.start();
    },
    cancel() {
      table.detach(entry, attachment);
    },
  };
}

/** What a failed datagram send becomes: the API's code and the message. */
function sendError(err: unknown): { code: string; message: string } {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof NetError) return { code: err.code, message };
  // The core throws RangeError for a payload over its limit (no fragmentation) and for a
  // zero address or port; the HTTP send route answers them EMSGSIZE and EINVAL.
  if (err instanceof RangeError && /payload of \d+ bytes exceeds/.test(message)) {
    return { code: "EMSGSIZE", message };
  }
  return { code: "EINVAL", message };
}

class UdpStream {
  #table: SocketTable;
  #entry: UdpSocketEntry;
  #sock: UdpSocket;
  #ws: TunnelSocket;
  #attachment: SocketAttachment;
  #pump = new AbortController();
  #credit = STREAM_WINDOW_BYTES;
  #creditWaiter: (() => void) | undefined;
  #toAck = 0;
  #finished = false;
  /** Datagrams sent to the client and not yet acknowledged, charged to the session's quota. */
  #unacked: UnackedCharges;

  constructor(
    table: SocketTable,
    entry: UdpSocketEntry,
    sock: UdpSocket,
    ws: TunnelSocket,
    attachment: SocketAttachment,
  ) {
    this.#table = table;
    this.#entry = entry;
    this.#sock = sock;
    this.#ws = ws;
    this.#attachment = attachment;
    this.#unacked = new UnackedCharges(table.quota.memory);
  }

  start(): void {
    const ws = this.#ws;
    ws.binaryType = "arraybuffer";
    ws.addEventListener("message", (ev) => this.#onMessage(ev.data));
    ws.addEventListener("close", () => this.#finish(true));
    ws.addEventListener("error", () => this.#finish(true));
    if (ws.readyState === CONNECTING) ws.addEventListener("open", () => this.#opened());
    else if (ws.readyState === OPEN) this.#opened();
    else this.#finish(true);
  }

  detach(reason: string): void {
    if (this.#finished) return;
    this.#close(STREAM_CLOSE_DELETED, reason);
    this.#finish(false);
  }

  #opened(): void {
    if (this.#finished) return;
    this.#send(encodeStreamOpen({
      protocol: "udp",
      local: this.#entry.localEndpoint,
      remote: this.#entry.remote,
    }));
    void this.#runPump();
  }

  async #runPump(): Promise<void> {
    const signal = this.#pump.signal;
    try {
      for (;;) {
        let d;
        try {
          d = await this.#sock.receive({ signal });
        } catch (err) {
          if (signal.aborted) return;
          // ICMP errors about a connected peer are reported once; the socket goes on.
          if (err instanceof NetError && err.code !== "ENOTCONN") {
            this.#send(encodeStreamError({ code: err.code, message: err.message }));
            continue;
          }
          throw err;
        }
        const need = UDP_DATA_HEADER_BYTES - 1 + d.data.length;
        while (this.#credit < need) await this.#waitCredit(signal);
        // Held (one datagram, uncharged) until the session's quota takes it.
        while (!this.#unacked.tryCharge(need)) await sleepOn(this.#table.clock, 10, signal);
        if (this.#ws.readyState !== OPEN) return;
        this.#credit -= need;
        this.#send(encodeUdpData({ address: d.address, port: d.port }, d.data));
      }
    } catch (err) {
      if (signal.aborted) return;
      this.#close(STREAM_CLOSE_ERROR, err instanceof NetError ? err.code : "EINTERNAL");
      this.#finish(true);
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
    if (m.type === "ack") {
      this.#unacked.acked(m.bytes);
      this.#credit = Math.min(this.#credit + m.bytes, MAX_CREDIT_BYTES);
      const wake = this.#creditWaiter;
      this.#creditWaiter = undefined;
      wake?.();
      return;
    }
    if (m.type === "fin") return; // nothing to half-close on a datagram socket
    if (m.type !== "data") {
      this.#protocolError(`a client may not send ${m.type.toUpperCase()}`);
      return;
    }
    const dgram = decodeUdpData(m.data);
    if (!dgram) {
      this.#protocolError("a UDP DATA message shorter than its 6-byte address");
      return;
    }
    const { peer, payload } = dgram;
    const connected = peer.address === "0.0.0.0" && peer.port === 0;
    try {
      this.#sock.send(payload, connected ? undefined : peer);
    } catch (err) {
      this.#send(encodeStreamError(sendError(err)));
    }
    this.#toAck += m.data.length;
    if (this.#toAck >= STREAM_WINDOW_BYTES / 8) {
      this.#send(encodeStreamAck(this.#toAck));
      this.#toAck = 0;
    }
  }

  #protocolError(what: string): void {
    this.#close(STREAM_CLOSE_PROTOCOL_ERROR, `netisle.stream.v1: ${what}`.slice(0, 120));
    this.#finish(true);
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

  /** Stops the pump; with `remove`, deletes the socket (the stream owns it). */
  #finish(remove: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#pump.abort();
    this.#unacked.releaseAll();
    this.#table.detach(this.#entry, this.#attachment);
    if (remove && !this.#entry.removed) this.#table.delete(this.#entry.id);
  }
}
