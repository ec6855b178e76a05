/**
 * A UDP socket on the session's stack: datagrams to and from the tunnelled
 * network, one `netisle.stream.v1` message each, over one WebSocket.
 *
 * @module
 */

import {
  decodeUdpData,
  encodeUdpData,
  type StreamEndpoint,
  type StreamErrorInfo,
  UDP_DATA_HEADER_BYTES,
} from "../http/socket_stream_protocol.ts";
import type { ApiTransport } from "./api_transport.ts";
import { NetisleError, type NetisleErrorCode } from "./netisle_error.ts";
import { type SessionCredentials, toBytes } from "./netisle_socket.ts";
import { StreamChannel } from "./stream_channel.ts";

/** A datagram received, with its sender. */
export interface Datagram {
  /** The payload. */
  data: Uint8Array;
  /** The sender's IPv4 address. */
  address: string;
  /** The sender's port. */
  port: number;
}

/** Options of `session.udp()`. */
export interface UdpOptions {
  /** The local port on the stack (default: an ephemeral one, 49152..65535). */
  port?: number;
  /** Connect to one peer: only its datagrams arrive, and `send()` needs no destination. */
  remote?: { hostname: string; port: number } | string;
  /**
   * Called for each datagram that failed (EMSGSIZE, EHOSTUNREACH) or ICMP
   * error (ECONNREFUSED for a connected socket). `receive()` also rejects
   * with them, in order; the async iterator only reports them here.
   */
  onError?: (error: NetisleError) => void;
}

type Item = Datagram | NetisleError;

/**
 * A UDP socket inside a session.
 *
 * @example
 * ```ts
 * const udp = await session.udp();
 * await udp.send(query, { hostname: "10.0.2.15", port: 53 });
 * const answer = await udp.receive();
 * await udp.close();
 * ```
 */
export class NetisleUdpSocket implements AsyncIterable<Datagram> {
  /** The socket's id (`k_…`). */
  readonly id: string;
  /** Resolves when the socket closed cleanly; rejects when its stream failed. */
  readonly closed: Promise<void>;
  #channel: StreamChannel;
  #local: StreamEndpoint | null = null;
  #remote: StreamEndpoint | null = null;
  #queue: Item[] = [];
  #waiters: Array<() => void> = [];
  #ended: NetisleError | undefined;
  #onError: ((error: NetisleError) => void) | undefined;

  private constructor(
    id: string,
    channel: (events: ConstructorParameters<typeof StreamChannel>[2]) => StreamChannel,
    onError: ((error: NetisleError) => void) | undefined,
    opened: (err?: NetisleError) => void,
  ) {
    this.id = id;
    this.#onError = onError;
    let resolveClosed!: () => void;
    let rejectClosed!: (e: NetisleError) => void;
    this.closed = new Promise((res, rej) => {
      resolveClosed = res;
      rejectClosed = rej;
    });
    this.closed.catch(() => {});
    this.#channel = channel({
      open: (info) => {
        this.#local = info.local;
        this.#remote = info.remote;
        opened();
      },
      data: (body) => {
        const d = decodeUdpData(body);
        if (!d) return;
        this.#push({ data: d.payload, address: d.peer.address, port: d.peer.port });
      },
      fin: () => {},
      error: (e: StreamErrorInfo) => {
        const err = new NetisleError(e.code as NetisleErrorCode, e.message);
        this.#onError?.(err);
        this.#push(err);
      },
      closed: (error) => {
        this.#ended = error ?? new NetisleError("ENOTCONN", "the UDP socket is closed");
        for (const w of this.#waiters.splice(0)) w();
        opened(this.#ended);
        if (error) rejectClosed(error);
        else resolveClosed();
      },
    });
  }

  /**
   * Opens a stream on the UDP socket `id` (created, bound and connected by
   * `session.udp()`, which is what to call).
   */
  static async open(
    transport: ApiTransport,
    session: SessionCredentials,
    id: string,
    onError?: (error: NetisleError) => void,
  ): Promise<NetisleUdpSocket> {
    let settle!: (err?: NetisleError) => void;
    const ready = new Promise<void>((resolve, reject) => {
      settle = (err) => err ? reject(err) : resolve();
    });
    const url = transport.streamUrl(session.id, id, session.token);
    const sock = new NetisleUdpSocket(
      id,
      (events) => new StreamChannel(url, transport.WebSocket, events),
      onError,
      (err) => settle(err),
    );
    await ready;
    return sock;
  }

  /** The socket's address and port on the stack. */
  get local(): StreamEndpoint | null {
    return this.#local;
  }

  /** The connected peer, or null. */
  get remote(): StreamEndpoint | null {
    return this.#remote;
  }

  /**
   * Sends one datagram to `to`, or to the connected peer. Resolves once it
   * is handed to the stream (within the credit the server grants); a datagram
   * the stack cannot send comes back as an error from `receive()` and `onError`.
   */
  async send(
    data: Uint8Array | ArrayBufferView | ArrayBuffer | string,
    to?: { hostname: string; port: number } | string,
  ): Promise<void> {
    if (this.#ended) throw this.#ended;
    const peer = to === undefined
      ? { address: "0.0.0.0", port: 0 }
      : typeof to === "string"
      ? splitHostPort(to)
      : { address: to.hostname, port: to.port };
    if (to === undefined && !this.#remote) {
      throw new NetisleError(
        "ENOTCONN",
        "this UDP socket is not connected: give the destination of the datagram",
      );
    }
    const message = encodeUdpData(peer, toBytes(data));
    await this.#channel.reserve(message.length - 1);
    this.#channel.send(message);
  }

  /**
   * The next datagram (or the next per-datagram error, as a rejection).
   * Rejects with ENOTCONN once the socket is closed.
   */
  async receive(): Promise<Datagram> {
    for (;;) {
      const item = this.#queue.shift();
      if (item !== undefined) {
        if (item instanceof NetisleError) throw item;
        this.#channel.consumed(UDP_DATA_HEADER_BYTES - 1 + item.data.length);
        return item;
      }
      if (this.#ended) throw this.#ended;
      await new Promise<void>((r) => this.#waiters.push(r));
    }
  }

  /** Datagrams until the socket closes; per-datagram errors go to `onError` only. */
  async *[Symbol.asyncIterator](): AsyncIterator<Datagram> {
    for (;;) {
      try {
        yield await this.receive();
      } catch (err) {
        if (this.#ended) return;
        if (err instanceof NetisleError) continue;
        throw err;
      }
    }
  }

  /** Closes the socket (the stack frees the port). */
  close(): Promise<void> {
    this.#channel.close(1000, "closed by the client");
    return this.closed;
  }

  #push(item: Item): void {
    this.#queue.push(item);
    for (const w of this.#waiters.splice(0)) w();
  }
}

/**
 * Splits `host:port` (`10.0.2.15:53`, or `[fd00::15]:53` for IPv6: RFC 3986
 * §3.2.2 brackets) into address and port; TypeError when it is not that,
 * or when an IPv6 address comes without brackets (`fd00::15:53` is
 * ambiguous).
 *
 * @example
 * ```ts
 * splitHostPort("10.0.2.15:53"); // { address: "10.0.2.15", port: 53 }
 * splitHostPort("[fd00::15]:22"); // { address: "fd00::15", port: 22 }
 * ```
 */
export function splitHostPort(text: string): { address: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:\[\]]+):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) {
    throw new TypeError(
      /^[^\[].*:.*:/.test(text.trim())
        ? `expected host:port, got "${text}": an IPv6 address goes in brackets, e.g. [fd00::15]:22`
        : `expected host:port (or [IPv6]:port), got "${text}"`,
    );
  }
  return { address: m[1].replace(/^\[(.*)\]$/, "$1"), port };
}

/**
 * Joins an address and a port as `host:port`, an IPv6 address in brackets
 * (RFC 3986 §3.2.2): the inverse of {@linkcode splitHostPort}.
 *
 * @example
 * ```ts
 * joinHostPort("10.0.2.15", 22); // "10.0.2.15:22"
 * joinHostPort("fd00::15", 22); // "[fd00::15]:22"
 * ```
 */
export function joinHostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}
