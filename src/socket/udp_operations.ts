/**
 * The socket table's UDP operations: bind a port, connect (a default peer),
 * send one datagram (an unbound socket first gets an ephemeral port) and
 * receive one (a long-poll).
 *
 * @module
 */

import { type IpAddress, parseIpAddress } from "../wire/mod.ts";
import { NetError } from "../errors/net_error.ts";
import type { PollOptions } from "./poll_deadline.ts";
import type { UdpSocketEntry } from "./socket_entry.ts";
import {
  checkRoute,
  longPoll,
  newAddress,
  ownAddress,
  type ReceiveResult,
  type TableContext,
  waitFailure,
} from "./table_context.ts";
import { UdpSocket } from "./udp_socket.ts";

/**
 * UDP operations on table entries; {@linkcode SocketTable} checks the entry
 * (live, not streaming) and calls these.
 *
 * @example
 * ```ts
 * const udp = new UdpOperations(ctx);
 * udp.bind(entry, 5353, ours);
 * const d = await udp.receive(entry, { maxBytes: 512, timeoutMs: 1000 });
 * ```
 */
export class UdpOperations {
  #ctx: TableContext;

  /** Operations over the table behind `ctx`. */
  constructor(ctx: TableContext) {
    this.#ctx = ctx;
  }

  /** Binds `port` (0: an ephemeral one). */
  bind(entry: UdpSocketEntry, port: number, ours: IpAddress): void {
    this.#adopt(entry, UdpSocket.bind(this.#ctx.host, { port }), ours);
  }

  /** Sets the default peer (binding an ephemeral port first if needed). */
  connect(entry: UdpSocketEntry, address: string, port: number, ours: IpAddress): void {
    this.bound(entry, ours).connect(address, port);
  }

  /** Sends one datagram to `to` or the connected peer; returns its length. */
  send(
    entry: UdpSocketEntry,
    data: Uint8Array,
    to: { address: string; port: number } | undefined,
  ): number {
    const host = this.#ctx.host;
    const ours = ownAddress(host);
    const dst = to ? parseIpAddress(to.address) : entry.socket?.endpoint.remote?.address;
    if (to) checkRoute(host, dst!);
    else if (dst === undefined) {
      throw new NetError(
        "ENOTCONN",
        `socket ${entry.id} is not connected: name the destination with ?address=&port=`,
      );
    }
    const max = host.withCore((stack) => stack.udp.maxPayloadFor(dst!));
    if (data.length > max) {
      throw new NetError(
        "EMSGSIZE",
        `a datagram of ${data.length} bytes does not fit in one IP packet (at most ${max}; ` +
          `netisle does not fragment)`,
      );
    }
    this.bound(entry, ours).send(data, to);
    return data.length;
  }

  /**
   * One datagram (cut at `maxBytes`) and its sender; undefined when the
   * timeout passed with nothing to read.
   */
  async receive(
    entry: UdpSocketEntry,
    options: PollOptions & { maxBytes: number },
  ): Promise<ReceiveResult | undefined> {
    const s = entry.socket;
    if (!s) {
      throw new NetError("ENOTCONN", `socket ${entry.id} is not bound; nothing can arrive`);
    }
    const wait = longPoll(this.#ctx.host, entry, options);
    try {
      const d = await s.receive({ signal: wait.signal });
      const truncated = d.data.length > options.maxBytes;
      return {
        data: truncated ? d.data.subarray(0, options.maxBytes) : d.data,
        eof: false,
        from: { address: d.address, port: d.port },
        truncated,
      };
    } catch (err) {
      if (wait.timedOut) return undefined;
      throw waitFailure(wait, err, entry.id);
    } finally {
      wait.dispose();
    }
  }

  /** The entry's UDP socket, binding an ephemeral port first when it has none. */
  bound(entry: UdpSocketEntry, ours: IpAddress): UdpSocket {
    if (entry.socket) {
      if (entry.socket.endpoint.closed) {
        throw new NetError("ENOTCONN", `socket ${entry.id} is closed`);
      }
      return entry.socket;
    }
    const s = UdpSocket.bind(this.#ctx.host, { port: 0 });
    this.#adopt(entry, s, ours);
    return s;
  }

  #adopt(entry: UdpSocketEntry, s: UdpSocket, ours: IpAddress): void {
    entry.socket = s;
    entry.local = newAddress("udp", ours, s.endpoint.port, false);
  }
}
