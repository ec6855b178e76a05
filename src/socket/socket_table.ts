/**
 * The socket table of one session: the handles the HTTP API gives out
 * (`k_…` ids), each naming one endpoint, with its life cycle, its share of
 * the session's quotas (a socket unit per entry, the buffers the API holds
 * charged to the memory quota), and the long-polls (accept, connect, recv)
 * that end on their timeout, when the socket closes or when the caller goes
 * away, and leave no waiter behind.
 *
 * An address is not a socket (DESIGN.md): a bound local endpoint is a
 * {@linkcode LocalAddress}, kept apart from the connection endpoint
 * ({@linkcode TcpSocket}) and from the listener ({@linkcode TcpServer}). A
 * bound TCP socket holds a port reservation (`tcp.bindPort`) through its
 * address object until `listen` or `connect` hands it to the core; a listener
 * and every connection it accepted share one address object, while each
 * accepted connection gets its own table entry.
 *
 * The table checks the entry an operation names and hands it to the
 * operations of its protocol ({@linkcode TcpOperations},
 * {@linkcode UdpOperations}).
 *
 * @module
 */

import { formatIpAddress, type IpAddress, IPV6_UNSPECIFIED, parseIpAddress } from "../wire/mod.ts";
import { NetError } from "../errors/net_error.ts";
import type { Endpoint, SocketProtocol } from "./local_address.ts";
import type { PollOptions, TimerClock } from "./poll_deadline.ts";
import {
  type SocketAttachment,
  type SocketEntry,
  TcpSocketEntry,
  UdpSocketEntry,
} from "./socket_entry.ts";
import {
  checkLive,
  checkNotStreaming,
  checkRoute,
  connectedSocket,
  type ReceiveResult,
  type SocketTableHost,
  type TableContext,
  tcpEntry,
} from "./table_context.ts";
import { TcpOperations } from "./tcp_operations.ts";
import type { TcpSocket } from "./tcp_socket.ts";
import type { UdpSocket } from "./udp_socket.ts";
import { UdpOperations } from "./udp_operations.ts";
import { bufferCost, type SessionQuota } from "../stack/session_quota.ts";
import { BufferHold } from "./buffer_hold.ts";

/** The session's limits as the socket table applies them (the limits of `stack.quota`). */
export interface SocketTableLimits {
  /**
   * Socket units: API sockets plus connections waiting in accept queues; one
   * more socket fails with EMFILE (HTTP 429).
   */
  maxSockets: number;
  /**
   * Bytes of storage the session makes the process hold (`stack.quota.memory`);
   * a send whose buffer would pass it fails with ENOBUFS (HTTP 429).
   */
  maxBufferedBytes: number;
}

/** Control blocks on each core list, orphaned connections still closing included. */
export interface PcbCounts {
  /** Ports reserved by bind() before listen or connect. */
  bound: number;
  /** Listeners. */
  listen: number;
  /** Connections on the active list. */
  active: number;
  /** Connections in TIME_WAIT. */
  timeWait: number;
  /** Bound UDP endpoints. */
  udp: number;
}

/**
 * The sockets of one session.
 *
 * @example
 * ```ts
 * const entry = session.sockets.create("tcp");
 * await session.sockets.connect(entry, { address: "10.0.2.15", port: 7 });
 * await session.sockets.send(entry, new TextEncoder().encode("hi"));
 * const r = await session.sockets.receive(entry, { maxBytes: 4096, timeoutMs: 1000 });
 * ```
 */
export class SocketTable {
  #host: SocketTableHost;
  #entries = new Map<string, SocketEntry>();
  #random: (buf: Uint8Array) => void;
  #closed = false;
  #tcp: TcpOperations;
  #udp: UdpOperations;

  /** Creates an empty table over `host` (a session). */
  constructor(
    host: SocketTableHost,
    options: { random?: (buf: Uint8Array) => void } = {},
  ) {
    this.#host = host;
    this.#random = options.random ?? ((buf) => crypto.getRandomValues(buf));
    const ctx: TableContext = {
      host,
      checkCanAccept: (listener) => this.#checkCanAccept(listener),
      adoptAccepted: (listener, sock) => this.#adoptAccepted(listener, sock),
      holdBuffer: (entry, data, charged) => this.holdBuffer(entry, data, charged),
      releaseCharge: (charged) => {
        if (charged) this.quota.memory.release(charged);
      },
    };
    this.#tcp = new TcpOperations(ctx);
    this.#udp = new UdpOperations(ctx);
  }

  /** The session's clock, on which the table's waits (and those of its stream bridges) run. */
  get clock(): TimerClock {
    return this.#host.clock;
  }

  /** The session's quotas: each entry holds one unit of `sockets`. */
  get quota(): SessionQuota {
    return this.#host.stack.quota;
  }

  /** The limits in force (those of {@linkcode SocketTable.quota}). */
  get limits(): SocketTableLimits {
    const q = this.quota;
    return { maxSockets: q.sockets.limit, maxBufferedBytes: q.memory.limit };
  }

  /** Number of sockets in the table. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Creates a socket, taking a unit of the session's socket quota (EMFILE
   * when none is free: the API's sockets and the connections waiting in
   * accept queues use them all).
   */
  create(protocol: SocketProtocol): SocketEntry {
    this.#checkOpen();
    this.#takeUnit();
    return this.#insert(protocol);
  }

  /** The socket with `id`, or undefined. */
  get(id: string): SocketEntry | undefined {
    return this.#entries.get(id);
  }

  /** Every socket, oldest first. */
  entries(): SocketEntry[] {
    return [...this.#entries.values()];
  }

  /** Bytes buffered for all sockets: core send and receive queues plus what the API holds. */
  bufferedBytes(): number {
    let n = 0;
    for (const e of this.#entries.values()) {
      const q = e.queued();
      n += q.send + q.recv + e.pendingBytes;
    }
    return n;
  }

  /**
   * The number of control blocks on each of the core's lists, for the whole
   * session (not only the table's sockets). Reads sizes without entering the
   * core, so it does not count as activity.
   */
  pcbCounts(): PcbCounts {
    const { tcp, udp } = this.#host.stack;
    let bound = 0;
    for (const n of tcp.bound.values()) bound += n;
    return {
      bound,
      listen: tcp.listeners.size,
      active: tcp.active.size,
      timeWait: tcp.timeWait.size,
      udp: udp.endpoints.size,
    };
  }

  // ------------------------------------------------------------ operations

  /**
   * Binds the socket to a local port (0 or absent: an ephemeral one) on the
   * stack's address (`address` may name it, or be `0.0.0.0`). Returns the
   * local endpoint. EALREADY when already bound, EISCONN when connected or
   * listening, EADDRINUSE when the port is taken, EINVAL for another address.
   */
  bind(entry: SocketEntry, options: { address?: string; port?: number } = {}): Endpoint {
    checkLive(entry);
    const port = options.port ?? 0;
    if (entry.state !== "created") {
      throw entry.state === "bound"
        ? new NetError(
          "EALREADY",
          `socket ${entry.id} is already bound to port ${entry.local?.port}`,
        )
        : new NetError("EISCONN", `socket ${entry.id} is ${entry.state}; bind it before that`);
    }
    const ours = this.#bindAddress(options.address);
    if (entry.protocol === "tcp") this.#tcp.bind(entry, port, ours);
    else this.#udp.bind(entry, port, ours);
    return entry.local!.endpoint;
  }

  /**
   * The stack's address a bind to `address` names: its IPv4 address for
   * none, `0.0.0.0` or itself; its IPv6 address for `::` or itself; its
   * link-local address for itself. EINVAL for any other.
   */
  #bindAddress(address: string | undefined): IpAddress {
    const { v4, v6 } = this.#host.withCore((stack) => ({
      v4: stack.config.ipv4.address,
      v6: stack.ipv6,
    }));
    if (address === undefined || address === "0.0.0.0") return v4;
    let a: IpAddress | undefined;
    try {
      a = parseIpAddress(address);
    } catch {
      a = undefined;
    }
    if (a === v4) return v4;
    if (v6 !== undefined) {
      if (a === IPV6_UNSPECIFIED) return v6.address;
      if (a === v6.address || a === v6.linkLocal) return a;
    }
    const own = v6 === undefined
      ? formatIpAddress(v4)
      : `${formatIpAddress(v4)}, ${formatIpAddress(v6.address)} and ${
        formatIpAddress(v6.linkLocal)
      }`;
    throw new NetError(
      "EINVAL",
      `cannot bind to ${address}: the session's addresses are ${own} (or 0.0.0.0, ${
        v6 ? "::" : "and no IPv6"
      })`,
    );
  }

  /**
   * Starts listening (TCP). An unbound socket first gets an ephemeral port.
   * Returns the local endpoint and the backlog in force.
   */
  listen(entry: SocketEntry, options: { backlog?: number } = {}): {
    local: Endpoint;
    backlog: number;
  } {
    checkLive(entry);
    const e = tcpEntry(entry, "listen");
    if (e.state === "created") this.bind(e);
    return this.#tcp.listen(e, options);
  }

  /**
   * Waits for a connection on a listening socket and adds it to the table as
   * a new socket sharing the listener's local address. Resolves undefined
   * when the timeout passed with none; EMFILE when the table is full.
   */
  async accept(
    entry: SocketEntry,
    options: PollOptions = {},
  ): Promise<TcpSocketEntry | undefined> {
    checkLive(entry);
    return await this.#tcp.accept(tcpEntry(entry, "accept"), options);
  }

  /**
   * Connects. TCP: an active open that resolves once established (ETIMEDOUT
   * after the timeout, ECONNREFUSED, ECONNRESET, EHOSTUNREACH); a failed or
   * abandoned attempt leaves the socket closed. UDP: sets the default peer at
   * once (binding an ephemeral port first if needed).
   */
  async connect(
    entry: SocketEntry,
    options: PollOptions & { address: string; port: number },
  ): Promise<{ local: Endpoint; remote: Endpoint }> {
    checkLive(entry);
    const addr = parseIpAddress(options.address);
    const ours = checkRoute(this.#host, addr);
    if (entry.protocol === "udp") {
      this.#udp.connect(entry, options.address, options.port, ours);
      return { local: entry.localEndpoint!, remote: entry.remote! };
    }
    const to = { address: addr, text: options.address, port: options.port };
    return await this.#tcp.connect(entry, to, ours, options);
  }

  /**
   * Sends bytes. TCP: waits until all are queued in the send buffer; when the
   * timeout passes first it resolves with the count queued, or fails with
   * ETIMEDOUT if that is 0. UDP: one datagram to `to` or the connected peer
   * (an unbound socket gets an ephemeral port). ENOBUFS when the session's
   * buffered bytes would pass the quota.
   */
  async send(
    entry: SocketEntry,
    data: Uint8Array,
    options: PollOptions & {
      to?: { address: string; port: number };
      /** What the caller already charged for `data`; the socket takes it over (TCP). */
      charged?: number;
    } = {},
  ): Promise<number> {
    try {
      checkLive(entry);
      checkNotStreaming(entry);
      if (entry.protocol === "udp") return this.#udp.send(entry, data, options.to);
      if (options.to) {
        throw new NetError(
          "EISCONN",
          "a TCP send goes to the connected peer; leave out the address",
        );
      }
    } catch (err) {
      if (options.charged) this.quota.memory.release(options.charged);
      throw err;
    }
    return await this.#tcp.send(entry, data, options);
  }

  /**
   * Receives. TCP: up to `maxBytes` of the stream, or `eof` at its end.
   * UDP: one datagram (cut at `maxBytes`) and its sender. Resolves undefined
   * when the timeout passed with nothing to read.
   */
  async receive(
    entry: SocketEntry,
    options: PollOptions & { maxBytes: number },
  ): Promise<ReceiveResult | undefined> {
    checkLive(entry);
    checkNotStreaming(entry);
    return entry.protocol === "udp"
      ? await this.#udp.receive(entry, options)
      : await this.#tcp.receive(entry, options);
  }

  /** Shuts down one or both directions of a TCP connection (`write` sends FIN). */
  shutdown(entry: SocketEntry, how: "read" | "write" | "both"): void {
    checkLive(entry);
    this.#tcp.shutdown(tcpEntry(entry, "shutdown"), how);
  }

  /**
   * Closes a socket and removes it from the table. A connection closes
   * gracefully (FIN after the queued data; RST when unread data is left, RFC
   * 2525) or, with `abort`, at once with a RST. A listener resets the
   * connections it had not handed out; a bound port is released. Waiting
   * long-polls end; an attached stream closes. Returns false for an unknown id.
   */
  delete(id: string, options: { abort?: boolean } = {}): boolean {
    const entry = this.#entries.get(id);
    if (!entry) return false;
    this.#entries.delete(id);
    entry.markRemoved();
    this.quota.sockets.release();
    const att = entry.attachment;
    entry.attachment = undefined;
    try {
      att?.detach("socket closed");
    } catch {
      // An attachment that fails to detach must not keep the socket open.
    }
    if (entry.protocol === "tcp") {
      if (entry.socket) {
        if (options.abort) entry.socket.abort();
        else entry.socket.close();
      }
      entry.server?.close();
    } else {
      entry.socket?.close();
    }
    const local = entry.local;
    if (local) {
      local.users--;
      if (local.users <= 0 && local.reserved) {
        local.reserved = false;
        this.#host.withCore((stack) => stack.tcp.unbindPort(local.port));
      }
    }
    return true;
  }

  /**
   * Closes everything the session owns: every socket (connections with a
   * RST), then whatever the core still holds (orphaned connections finishing
   * their close, time-wait, listeners, bound ports, UDP endpoints). Called by
   * `Session.close`; the table refuses new sockets afterwards.
   */
  closeAll(): void {
    this.#closed = true;
    for (const id of [...this.#entries.keys()]) this.delete(id, { abort: true });
    this.#host.withCore((stack, now) => {
      stack.tcp.abortAll(now);
      for (const ep of [...stack.udp.endpoints.values()]) ep.close();
    });
  }

  /** Marks an attachment (a WebSocket stream) on a connected TCP socket; EBUSY when one exists. */
  attach(entry: SocketEntry, attachment: SocketAttachment): TcpSocket {
    checkLive(entry);
    checkNotStreaming(entry);
    const sock = connectedSocket(tcpEntry(entry, "stream"), "stream");
    if (entry.state !== "connected") {
      throw new NetError("ENOTCONN", `socket ${entry.id} is ${entry.state}, not connected`);
    }
    entry.attachment = attachment;
    return sock;
  }

  /**
   * Marks an attachment (a datagram stream) on a UDP socket, binding an
   * ephemeral port first when it has none; EBUSY when one exists, EOPNOTSUPP
   * for TCP.
   */
  attachUdp(entry: SocketEntry, attachment: SocketAttachment): UdpSocket {
    checkLive(entry);
    checkNotStreaming(entry);
    if (entry.protocol !== "udp") {
      throw new NetError("EOPNOTSUPP", `a datagram stream needs a UDP socket; ${entry.id} is TCP`);
    }
    const s = this.#udp.bound(entry, this.#host.withCore((stack) => stack.config.ipv4.address));
    entry.attachment = attachment;
    return s;
  }

  /** Removes `attachment` from `entry` if it is still the one attached. */
  detach(entry: SocketEntry, attachment: SocketAttachment): void {
    if (entry.attachment === attachment) entry.attachment = undefined;
  }

  /**
   * Charges `data`, a buffer the API holds for `entry` until its bytes are
   * queued in the core (a send body, a stream's message), to the session's
   * memory quota at its cost (`bufferCost` of its capacity); ENOBUFS when the
   * quota refuses it. The bytes count in the entry's `pendingBytes` until
   * {@linkcode BufferHold.taken}; {@linkcode BufferHold.release} gives the
   * charge back. With `charged`, the buffer was charged already (a request
   * body read under the quota) and the hold takes that charge over.
   */
  holdBuffer(entry: SocketEntry, data: Uint8Array, charged?: number): BufferHold {
    const memory = this.quota.memory;
    if (charged !== undefined) return new BufferHold(entry, memory, charged, data.length);
    const cost = bufferCost(data.buffer.byteLength);
    if (!memory.tryCharge(cost)) {
      throw new NetError(
        "ENOBUFS",
        `the session's memory quota is full: ${memory.used} of ${memory.limit} bytes held, ` +
          `a buffer of ${data.length} bytes costs ${cost}`,
      );
    }
    return new BufferHold(entry, memory, cost, data.length);
  }

  // ------------------------------------------------------------ helpers

  /**
   * Adds an accepted connection: its socket unit passes from the connection
   * to the entry (`TcpConnection.takeQuotaUnit`), or the table takes one for it.
   */
  #adoptAccepted(listener: TcpSocketEntry, sock: TcpSocket): TcpSocketEntry {
    const held = this.#host.withCore(() => sock.conn.takeQuotaUnit());
    try {
      this.#checkOpen();
      if (!held) this.#takeUnit();
    } catch (err) {
      if (held) this.quota.sockets.release();
      sock.abort();
      throw err;
    }
    const child = this.#insert("tcp") as TcpSocketEntry;
    child.socket = sock;
    child.acceptedFrom = listener.id;
    child.local = listener.local;
    listener.local!.users++;
    return child;
  }

  #checkOpen(): void {
    if (this.#closed) throw new NetError("ENOTCONN", "the session has ended");
  }

  /** Adds an entry that already holds its socket unit. */
  #insert(protocol: SocketProtocol): SocketEntry {
    let id: string;
    do id = "k_" + this.#randomText(12); while (this.#entries.has(id));
    const entry = protocol === "tcp" ? new TcpSocketEntry(id) : new UdpSocketEntry(id);
    this.#entries.set(id, entry);
    return entry;
  }

  #takeUnit(): void {
    if (!this.quota.sockets.tryTake()) throw this.#emfile();
  }

  /**
   * EMFILE before an accept waits when no connection could be taken: the
   * quota is full and no queued connection brings its own unit.
   */
  #checkCanAccept(listener: TcpSocketEntry): void {
    const s = this.quota.sockets;
    if (s.used < s.limit) return;
    const next = listener.server?.listener.acceptQueue[0];
    if (next?.holdsQuotaUnit) return;
    throw this.#emfile();
  }

  #emfile(): NetError {
    const s = this.quota.sockets;
    return new NetError(
      "EMFILE",
      `the session holds its maximum of ${s.limit} sockets (${this.#entries.size} open, ` +
        `${s.used - this.#entries.size} connections waiting to be accepted); delete one first`,
    );
  }

  #randomText(bytes: number): string {
    const b = new Uint8Array(bytes);
    this.#random(b);
    let s = "";
    for (const x of b) s += String.fromCharCode(x);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
}
