/**
 * One Wisp UDP stream: a UDP socket in the session's table, connected to the
 * destination (it counts against the socket quota and shows in the
 * listing). Each client DATA is one datagram, sent at once (UDP streams get
 * no CONTINUE); each datagram from the peer is one DATA, sent when the
 * connection's WebSocket budget and the session's memory quota take it,
 * meanwhile waiting in the socket's bounded queue, which drops (and counts)
 * what does not fit. ICMP errors are counted; the stream goes on (Wisp has
 * no way to report them without closing).
 *
 * To the stack's own address on port 53, the datagrams are queries for the
 * session's DNS responder, answered in process (the stack has no loopback);
 * the socket is then only bound, for the table's accounting.
 *
 * @module
 */

import { NetError } from "../../errors/net_error.ts";
import type { SocketAttachment, SocketEntry } from "../../socket/socket_entry.ts";
import type { UdpSocket } from "../../socket/udp_socket.ts";
import {
  encodeWispClose,
  encodeWispData,
  WISP_HEADER_BYTES,
  WispCloseReason,
} from "../../wire/mod.ts";
import type { WispLink } from "./wisp_link.ts";
import { connectFailureReason } from "./wisp_tcp_stream.ts";

/**
 * A UDP stream of a Wisp connection.
 *
 * @example
 * ```ts
 * const s = new WispUdpStream(link, 9, session.sockets.create("udp"), "link");
 * s.open("10.0.2.15", 53);
 * s.onData(query);
 * ```
 */
export class WispUdpStream {
  /** The client's stream id. */
  readonly id: number;
  /** The socket in the session's table. */
  readonly entry: SocketEntry;
  #link: WispLink;
  #kind: "link" | "dns";
  #sock: UdpSocket | undefined;
  #abort = new AbortController();
  #attachment: SocketAttachment;
  #closed = false;

  /** A stream on `entry` (a UDP socket just created) to the link or to the DNS responder. */
  constructor(link: WispLink, id: number, entry: SocketEntry, kind: "link" | "dns") {
    this.#link = link;
    this.id = id;
    this.entry = entry;
    this.#kind = kind;
    this.#attachment = { detach: () => this.#end(WispCloseReason.VOLUNTARY) };
  }

  /** Whether the stream has ended. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Connects the socket to `address:port` (binds it, for the DNS responder). */
  async open(address: string, port: number): Promise<void> {
    const table = this.#link.table;
    try {
      if (this.#kind === "dns") table.bind(this.entry);
      else await table.connect(this.entry, { address, port });
      this.#sock = table.attachUdp(this.entry, this.#attachment);
    } catch (err) {
      this.#link.count(`connect_failed_${err instanceof NetError ? err.code : "error"}`);
      this.#end(connectFailureReason(err));
      return;
    }
    this.#link.count("udp_opened");
    if (this.#kind === "link") void this.#runPump();
  }

  /** A DATA packet from the client: one datagram. */
  onData(payload: Uint8Array): void {
    if (this.#closed || !this.#sock) return;
    if (this.#kind === "dns") {
      void this.#answerDns(payload.slice());
      return;
    }
    try {
      if (!this.#sock.send(payload)) this.#link.count("udp_send_dropped");
    } catch {
      // Too large for the MTU, or the peer unreachable: the datagram is lost, as on a network.
      this.#link.count("udp_send_failed");
    }
  }

  /** The client's CLOSE. */
  onClientClose(): void {
    this.#end(undefined);
  }

  /** The WebSocket ended. */
  onConnectionGone(): void {
    this.#end(undefined);
  }

  async #runPump(): Promise<void> {
    const sock = this.#sock!;
    const signal = this.#abort.signal;
    try {
      for (;;) {
        let d;
        try {
          d = await sock.receive({ signal });
        } catch (err) {
          if (signal.aborted) return;
          if (err instanceof NetError && err.code !== "ENOTCONN") {
            this.#link.count(`udp_icmp_${err.code}`);
            continue;
          }
          throw err;
        }
        const size = WISP_HEADER_BYTES + d.data.length;
        await this.#link.reserve(size, signal);
        this.#link.sendReserved(encodeWispData(this.id, d.data), size);
      }
    } catch {
      if (signal.aborted) return;
      this.#end(WispCloseReason.NETWORK_ERROR);
    }
  }

  async #answerDns(query: Uint8Array): Promise<void> {
    const answer = this.#link.session.withCore((stack) => stack.dns?.answer(query));
    if (!answer || !("reply" in answer)) {
      this.#link.count("dns_dropped");
      return;
    }
    const size = WISP_HEADER_BYTES + answer.reply.length;
    try {
      await this.#link.reserve(size, this.#abort.signal);
    } catch {
      return;
    }
    this.#link.sendReserved(encodeWispData(this.id, answer.reply), size);
  }

  #end(reason: number | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    if (reason !== undefined) this.#link.sendControl(encodeWispClose(this.id, reason));
    this.#link.forget(this.id);
    const table = this.#link.table;
    table.detach(this.entry, this.#attachment);
    if (!this.entry.removed) table.delete(this.entry.id);
  }
}
