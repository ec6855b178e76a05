/**
 * Entries of the socket table: the handles the HTTP API gives out (`k_…`),
 * each naming one endpoint (a TCP connection or listener, a UDP socket, or
 * nothing yet), with its life-cycle state and the control-block list its core
 * object is on.
 *
 * TCP life cycle: created → bound → listening, or created/bound → connecting
 * → connected → closed. UDP: created → bound → connected (a default peer).
 *
 * @module
 */

import type { TcpInfo, TcpState } from "../stack/tcp/mod.ts";
import { formatIpAddress } from "../wire/mod.ts";
import { NetError, type NetErrorCode } from "../errors/net_error.ts";
import type { Endpoint, LocalAddress } from "./local_address.ts";
import type { TcpServer, TcpSocket } from "./tcp_socket.ts";
import type { UdpSocket } from "./udp_socket.ts";

/** Where a socket is in its life cycle. */
export type SocketState =
  | "created"
  | "bound"
  | "listening"
  | "connecting"
  | "connected"
  | "closed";

/**
 * The control-block list a socket's core object is on (lwIP's lists for TCP;
 * UDP endpoints sit on one list, `udp`); `none` before bind.
 */
export type PcbList = "none" | "bound" | "listen" | "active" | "time-wait" | "closed" | "udp";

/** Something attached to a socket that must end with it (a WebSocket stream). */
export interface SocketAttachment {
  /** Ends the attachment because its socket left the table. */
  detach(reason: string): void;
}

/**
 * What every table entry has: its id, its address object, the bytes the API
 * holds for it, an attachment, and a signal that aborts when it leaves the
 * table.
 *
 * @example
 * ```ts
 * const entry = table.create("udp");
 * entry.removedSignal.addEventListener("abort", () => console.log("closed"));
 * ```
 */
export abstract class BaseEntry {
  /** The handle (`k_` and 16 base64url characters). */
  readonly id: string;
  /** The local address object, once bound (explicitly or by connect/listen). */
  local: LocalAddress | undefined;
  /** Bytes the API holds for this socket that the core has not taken yet. */
  pendingBytes = 0;
  /** The WebSocket stream attached, if any; HTTP send and recv refuse with EBUSY meanwhile. */
  attachment: SocketAttachment | undefined;
  #removed = false;
  /** Made when someone asks for {@linkcode BaseEntry.removedSignal} (a long-poll, a stream). */
  #removal: AbortController | undefined;

  /** Made by the table. */
  constructor(id: string) {
    this.id = id;
  }

  /** Aborts when the entry leaves the table, ending its long-polls. */
  get removedSignal(): AbortSignal {
    if (this.#removal === undefined) {
      this.#removal = new AbortController();
      if (this.#removed) this.#removal.abort(this.#closedError());
    }
    return this.#removal.signal;
  }

  /** Whether the entry left the table. */
  get removed(): boolean {
    return this.#removed;
  }

  /** Marks the entry removed; called by the table. */
  markRemoved(): void {
    if (this.#removed) return;
    this.#removed = true;
    // The signal (and its reason) exist only if someone asked for them: most sockets are
    // closed with no long-poll or stream waiting on them.
    this.#removal?.abort(this.#closedError());
  }

  #closedError(): NetError {
    return new NetError("ENOTCONN", `socket ${this.id} was closed`);
  }

  /** Bytes queued in the core for this socket: to send (TCP: not yet acknowledged) and received unread. */
  abstract queued(): QueuedBytes;

  /**
   * The local endpoint as the API reports it, once bound: the bound
   * address object's (see {@linkcode TcpSocketEntry.localEndpoint} for a
   * connection).
   */
  get localEndpoint(): Endpoint | null {
    return this.local ? this.local.endpoint : null;
  }
}

/** Bytes queued in the core for one socket. */
export interface QueuedBytes {
  /** To send; TCP: queued and not yet acknowledged. */
  send: number;
  /** Received and not yet read. */
  recv: number;
}

/** A listener's queues and SYN-cookie counters. */
export interface ListenerStats {
  /** The backlog in force. */
  backlog: number;
  /** Half-open connections (SYN_RECEIVED). */
  synQueue: number;
  /** Established connections waiting to be accepted. */
  acceptQueue: number;
  /** SYN cookies sent. */
  cookiesSent: number;
  /** SYN cookies that came back valid. */
  cookiesAccepted: number;
}

/** A bound UDP socket's queue and counters. */
export interface UdpSocketStats {
  /** Datagrams waiting to be received. */
  queuedDatagrams: number;
  /** Datagrams received. */
  rxDatagrams: number;
  /** Payload bytes received. */
  rxBytes: number;
  /** Datagrams dropped because the receive queue was full. */
  rxQueueDrops: number;
  /** Datagrams sent. */
  txDatagrams: number;
  /** Payload bytes sent. */
  txBytes: number;
  /** Datagrams the stack could not send. */
  txDrops: number;
}

/**
 * A TCP table entry: nothing yet, a bound address, a listener or a
 * connection.
 *
 * @example
 * ```ts
 * const entry = table.create("tcp") as TcpSocketEntry;
 * table.listen(entry, { backlog: 16 });
 * entry.state; // "listening"
 * ```
 */
export class TcpSocketEntry extends BaseEntry {
  /** Always `"tcp"`. */
  readonly protocol = "tcp" as const;
  /** The listener, after `listen`. */
  server: TcpServer | undefined;
  /** The connection, after `connect` or when accepted. */
  socket: TcpSocket | undefined;
  /** The id of the listening entry this connection was accepted from. */
  acceptedFrom: string | undefined;
  /** The error a failed connect left (the socket is closed). */
  error: NetErrorCode | undefined;
  /** Whether the read side was shut down through the API. */
  readShut = false;

  /** The entry's state in the life cycle. */
  get state(): SocketState {
    const sock = this.socket;
    if (sock) {
      switch (sock.conn.state) {
        case "SYN_SENT":
        case "SYN_RECEIVED":
          return this.error ? "closed" : "connecting";
        case "CLOSED":
          return "closed";
        default:
          return "connected";
      }
    }
    if (this.server) return this.server.listener.closed ? "closed" : "listening";
    if (this.error) return "closed";
    return this.local ? "bound" : "created";
  }

  /** The exact TCP state of the connection, or null without one. */
  get tcpState(): TcpState | null {
    return this.socket ? this.socket.conn.state : null;
  }

  /** The core list the entry's control block is on. */
  get pcbList(): PcbList {
    if (this.socket) return this.socket.conn.pcbList;
    if (this.server) return this.server.listener.closed ? "closed" : "listen";
    if (this.local?.reserved) return "bound";
    return this.error ? "closed" : "none";
  }

  /** The peer of the connection. */
  get remote(): Endpoint | null {
    const c = this.socket?.conn;
    return c ? { address: formatIpAddress(c.remoteAddr), port: c.remotePort } : null;
  }

  /**
   * The local endpoint: a connection's own address and port (the stack's
   * IPv6 address for an IPv6 peer, whatever the listener was bound to),
   * else the bound address object's.
   */
  override get localEndpoint(): Endpoint | null {
    const c = this.socket?.conn;
    if (c) return { address: formatIpAddress(c.localAddr), port: c.localPort };
    return super.localEndpoint;
  }

  /** Why the socket closed, when it did not close cleanly (a failed connect, a reset), else null. */
  get failure(): NetErrorCode | null {
    return this.error ?? this.socket?.conn.error ?? null;
  }

  /** Bytes queued in the connection's send and receive buffers. */
  queued(): QueuedBytes {
    const s = this.socket;
    if (!s) return { send: 0, recv: 0 };
    const info = s.conn.info();
    return { send: info.sendQueued, recv: info.recvQueued };
  }

  /** The connection's state, estimates and counters, or null without one. */
  tcpInfo(): TcpInfo | null {
    return this.socket ? this.socket.info() : null;
  }

  /** The listener's queues and counters, or null when the entry is not a listener. */
  listenerStats(): ListenerStats | null {
    const l = this.server?.listener;
    if (!l) return null;
    return {
      backlog: l.backlog,
      synQueue: l.synQueue.size,
      acceptQueue: l.acceptQueue.length,
      cookiesSent: l.cookiesSent,
      cookiesAccepted: l.cookiesAccepted,
    };
  }
}

/**
 * A UDP table entry: nothing yet, or a bound endpoint, maybe connected to one
 * peer.
 *
 * @example
 * ```ts
 * const entry = table.create("udp") as UdpSocketEntry;
 * table.bind(entry, { port: 5353 });
 * entry.pcbList; // "udp"
 * ```
 */
export class UdpSocketEntry extends BaseEntry {
  /** Always `"udp"`. */
  readonly protocol = "udp" as const;
  /** The bound socket, after `bind`, `connect` or the first `send`. */
  socket: UdpSocket | undefined;

  /** The entry's state in the life cycle. */
  get state(): SocketState {
    const s = this.socket;
    if (!s) return "created";
    if (s.endpoint.closed) return "closed";
    return s.endpoint.remote ? "connected" : "bound";
  }

  /** `udp` once bound, else `none` (or `closed`). */
  get pcbList(): PcbList {
    const s = this.socket;
    if (!s) return "none";
    return s.endpoint.closed ? "closed" : "udp";
  }

  /** The connected peer. */
  get remote(): Endpoint | null {
    const r = this.socket?.endpoint.remote;
    return r ? { address: formatIpAddress(r.address), port: r.port } : null;
  }

  /** Nothing waits to be sent (a datagram leaves at once); received bytes wait in the queue. */
  queued(): QueuedBytes {
    const ep = this.socket?.endpoint;
    return { send: 0, recv: ep ? ep.queuedBytes : 0 };
  }

  /** The socket's queue and counters, or null before it is bound. */
  udpStats(): UdpSocketStats | null {
    const ep = this.socket?.endpoint;
    if (!ep) return null;
    return {
      queuedDatagrams: ep.queuedDatagrams,
      rxDatagrams: ep.stats.rxDatagrams,
      rxBytes: ep.stats.rxBytes,
      rxQueueDrops: ep.stats.rxQueueDrops,
      txDatagrams: ep.stats.txDatagrams,
      txBytes: ep.stats.txBytes,
      txDrops: ep.stats.txDrops,
    };
  }
}

/** A table entry. */
export type SocketEntry = TcpSocketEntry | UdpSocketEntry;
