/**
 * The socket table of one session: the handles the HTTP API gives out
 * (`k_…` ids), each naming one endpoint, with its life cycle, the session's
 * quotas (sockets, buffered bytes), and the long-polls (accept, connect,
 * recv) that end on their timeout, when the socket closes or when the caller
 * goes away, and leave no waiter behind.
 *
 * An address is not a socket (DESIGN.md): a bound local endpoint is a
 * {@linkcode LocalAddress}, kept apart from the connection endpoint
 * ({@linkcode TcpSocket}) and from the listener ({@linkcode TcpServer}). A
 * bound TCP socket holds a port reservation (`tcp.bindPort`) through its
 * address object until `listen` or `connect` hands it to the core; a listener
 * and every connection it accepted share one address object, while each
 * accepted connection gets its own table entry.
 *
 * TCP life cycle: created → bound → listening, or created/bound → connecting
 * → connected → closed. UDP: created → bound → connected (a default peer).
 *
 * @module
 */

import type { Stack } from "../stack/stack.ts";
import type { TcpInfo, TcpState } from "../stack/tcp/mod.ts";
import { formatIpv4Address, type Ipv4Address, parseIpv4Address } from "../wire/mod.ts";
import { NetError, type NetErrorCode } from "../errors/net_error.ts";
import { type CoreAccess, TcpServer, TcpSocket } from "./tcp_socket.ts";
import { UdpSocket } from "./udp_socket.ts";

/** The transport of a socket. */
export type SocketProtocol = "tcp" | "udp";

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

/** An IPv4 endpoint as the API shows it. */
export interface Endpoint {
  /** Dotted-quad IPv4 address. */
  address: string;
  /** Port, 0..65535. */
  port: number;
}

/** Limits of one session's socket table. */
export interface SocketTableLimits {
  /** Sockets open at once; one more fails with EMFILE (HTTP 429). */
  maxSockets: number;
  /**
   * Bytes buffered for the session's sockets, summed: data queued in the
   * core's send and receive buffers plus data the API holds while waiting to
   * queue it. A send that would pass it fails with ENOBUFS (HTTP 429).
   */
  maxBufferedBytes: number;
}

/** Defaults for {@linkcode SocketTableLimits}: 256 sockets, 32 MiB. */
export const DEFAULT_SOCKET_TABLE_LIMITS: SocketTableLimits = {
  maxSockets: 256,
  maxBufferedBytes: 32 * 1024 * 1024,
};

/** How long a long-poll waits when the caller names no timeout (ms). */
export const DEFAULT_POLL_TIMEOUT_MS = 30_000;
/** The longest wait a long-poll accepts (ms). */
export const MAX_POLL_TIMEOUT_MS = 60_000;

/**
 * A bound local endpoint (an "address object": protocol, address, port),
 * separate from the sockets that use it. A TCP address object created by
 * `bind` holds the port reservation itself ({@linkcode LocalAddress.reserved})
 * until `listen` or `connect` passes it to the core's listener or connection.
 *
 * @example
 * ```ts
 * const entry = table.create("tcp");
 * table.bind(entry, { port: 8080 });
 * entry.local?.toJSON(); // { address: "10.0.2.2", port: 8080 }
 * ```
 */
export class LocalAddress {
  /** The transport. */
  readonly protocol: SocketProtocol;
  /** The stack's IPv4 address (u32). */
  readonly address: Ipv4Address;
  /** The local port. */
  readonly port: number;
  /** Whether this object still holds a TCP port reservation (`tcp.bindPort`). */
  reserved: boolean;
  /** Table entries using this address (a listener and the connections it accepted share one). */
  users = 0;

  /** Describes an address; `reserved` says whether it holds a `bindPort` reservation. */
  constructor(protocol: SocketProtocol, address: Ipv4Address, port: number, reserved: boolean) {
    this.protocol = protocol;
    this.address = address;
    this.port = port;
    this.reserved = reserved;
  }

  /** The endpoint as the API shows it. */
  toJSON(): Endpoint {
    return { address: formatIpv4Address(this.address), port: this.port };
  }
}

/** Something attached to a socket that must end with it (a WebSocket stream). */
export interface SocketAttachment {
  /** Ends the attachment because its socket left the table. */
  detach(reason: string): void;
}

/** What every table entry has. */
abstract class BaseEntry {
  /** The handle (`k_` and 16 base64url characters). */
  readonly id: string;
  /** The local address object, once bound (explicitly or by connect/listen). */
  local: LocalAddress | undefined;
  /** Bytes the API holds for this socket that the core has not taken yet. */
  pendingBytes = 0;
  /** The WebSocket stream attached, if any; HTTP send and recv refuse with EBUSY meanwhile. */
  attachment: SocketAttachment | undefined;
  #removed = new AbortController();

  constructor(id: string) {
    this.id = id;
  }

  /** Aborts when the entry leaves the table, ending its long-polls. */
  get removedSignal(): AbortSignal {
    return this.#removed.signal;
  }

  /** Whether the entry left the table. */
  get removed(): boolean {
    return this.#removed.signal.aborted;
  }

  /** Marks the entry removed; called by the table. */
  markRemoved(): void {
    this.#removed.abort(new NetError("ENOTCONN", `socket ${this.id} was closed`));
  }
}

/**
 * A TCP table entry: nothing yet, a bound address, a listener or a
 * connection.
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
    return c ? { address: formatIpv4Address(c.remoteAddr), port: c.remotePort } : null;
  }
}

/** A UDP table entry: nothing yet, or a bound endpoint, maybe connected to one peer. */
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
    return r ? { address: formatIpv4Address(r.address), port: r.port } : null;
  }
}

/** A table entry. */
export type SocketEntry = TcpSocketEntry | UdpSocketEntry;

/** One row of {@linkcode SocketTable.list}. */
export interface SocketView {
  /** The handle. */
  id: string;
  /** The transport. */
  protocol: SocketProtocol;
  /** Where the socket is in its life cycle. */
  state: SocketState;
  /** The exact TCP state of a connection (RFC 9293 names), else null. */
  tcpState: TcpState | null;
  /** The core list its control block is on. */
  pcbList: PcbList;
  /** The local endpoint, once bound. */
  local: Endpoint | null;
  /** The peer (TCP) or the default peer (connected UDP). */
  remote: Endpoint | null;
  /** Bytes queued to send (TCP: not yet acknowledged) plus bytes the API holds for sending. */
  sendQueued: number;
  /** Bytes received and not yet read. */
  recvQueued: number;
  /** For an accepted connection, the id of its listening socket; else null. */
  acceptedFrom: string | null;
  /** Whether a WebSocket stream is attached. */
  streaming: boolean;
  /** Why the socket closed, when it did not close cleanly (errno-style), else null. */
  error: string | null;
}

/** Details of one socket: the row plus its protocol-specific counters. */
export interface SocketDetails extends SocketView {
  /** TCP connection estimates and counters (rtt, rto, cwnd, windows, retransmits...). */
  tcp: TcpInfo | null;
  /** A listener's queues and SYN-cookie counters. */
  listener: {
    backlog: number;
    synQueue: number;
    acceptQueue: number;
    cookiesSent: number;
    cookiesAccepted: number;
  } | null;
  /** A UDP socket's queue and counters. */
  udp:
    | {
      queuedDatagrams: number;
      rxDatagrams: number;
      rxBytes: number;
      rxQueueDrops: number;
      txDatagrams: number;
      txBytes: number;
      txDrops: number;
    }
    | null;
}

/** What {@linkcode SocketTable.receive} returns. */
export interface ReceiveResult {
  /** The bytes read (a datagram for UDP, cut at `maxBytes`). */
  data: Uint8Array;
  /** TCP: the peer finished sending and everything before was read. */
  eof: boolean;
  /** UDP: the sender. */
  from?: Endpoint;
  /** UDP: the datagram was longer than `maxBytes`; the rest was discarded. */
  truncated?: boolean;
}

/** Options every long-poll takes. */
export interface PollOptions {
  /** The caller going away (an HTTP request's signal). */
  signal?: AbortSignal;
  /** How long to wait; {@linkcode DEFAULT_POLL_TIMEOUT_MS} when absent. */
  timeoutMs?: number;
}

/** What the table needs from its session. */
export interface SocketTableHost extends CoreAccess {
  /** The session's stack (read for addresses and pcb lists, entered only through `withCore`). */
  readonly stack: Stack;
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
  /** The table's limits. */
  readonly limits: SocketTableLimits;
  #host: SocketTableHost;
  #entries = new Map<string, SocketEntry>();
  #random: (buf: Uint8Array) => void;
  #closed = false;

  /** Creates an empty table over `host` (a session). */
  constructor(
    host: SocketTableHost,
    options: { limits?: Partial<SocketTableLimits>; random?: (buf: Uint8Array) => void } = {},
  ) {
    this.#host = host;
    this.limits = { ...DEFAULT_SOCKET_TABLE_LIMITS, ...options.limits };
    for (const [k, v] of Object.entries(this.limits)) {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`SocketTable: limits.${k} must be a positive integer, got ${v}`);
      }
    }
    this.#random = options.random ?? ((buf) => crypto.getRandomValues(buf));
  }

  /** Number of sockets in the table. */
  get size(): number {
    return this.#entries.size;
  }

  /** Creates a socket (EMFILE when the table is full). */
  create(protocol: SocketProtocol): SocketEntry {
    this.#checkOpen();
    this.#ensureRoom();
    let id: string;
    do id = "k_" + this.#randomText(12); while (this.#entries.has(id));
    const entry = protocol === "tcp" ? new TcpSocketEntry(id) : new UdpSocketEntry(id);
    this.#entries.set(id, entry);
    return entry;
  }

  /** The socket with `id`, or undefined. */
  get(id: string): SocketEntry | undefined {
    return this.#entries.get(id);
  }

  /** Every socket, oldest first. */
  entries(): SocketEntry[] {
    return [...this.#entries.values()];
  }

  /** A row per socket: state, pcb list, endpoints, queue sizes. */
  list(): SocketView[] {
    return this.entries().map((e) => this.view(e));
  }

  /** One socket's row. */
  view(entry: SocketEntry): SocketView {
    const q = this.#queues(entry);
    return {
      id: entry.id,
      protocol: entry.protocol,
      state: entry.state,
      tcpState: entry.protocol === "tcp" ? entry.tcpState : null,
      pcbList: entry.pcbList,
      local: entry.local ? entry.local.toJSON() : null,
      remote: entry.remote,
      sendQueued: q.send + entry.pendingBytes,
      recvQueued: q.recv,
      acceptedFrom: entry.protocol === "tcp" ? entry.acceptedFrom ?? null : null,
      streaming: entry.attachment !== undefined,
      error: entry.protocol === "tcp" ? entry.error ?? entry.socket?.conn.error ?? null : null,
    };
  }

  /** One socket's row plus its protocol-specific counters. */
  describe(entry: SocketEntry): SocketDetails {
    const view = this.view(entry);
    if (entry.protocol === "tcp") {
      const l = entry.server?.listener;
      return {
        ...view,
        tcp: entry.socket ? entry.socket.info() : null,
        listener: l
          ? {
            backlog: l.backlog,
            synQueue: l.synQueue.size,
            acceptQueue: l.acceptQueue.length,
            cookiesSent: l.cookiesSent,
            cookiesAccepted: l.cookiesAccepted,
          }
          : null,
        udp: null,
      };
    }
    const ep = entry.socket?.endpoint;
    return {
      ...view,
      tcp: null,
      listener: null,
      udp: ep
        ? {
          queuedDatagrams: ep.queuedDatagrams,
          rxDatagrams: ep.stats.rxDatagrams,
          rxBytes: ep.stats.rxBytes,
          rxQueueDrops: ep.stats.rxQueueDrops,
          txDatagrams: ep.stats.txDatagrams,
          txBytes: ep.stats.txBytes,
          txDrops: ep.stats.txDrops,
        }
        : null,
    };
  }

  /** Bytes buffered for all sockets: core send and receive queues plus what the API holds. */
  bufferedBytes(): number {
    let n = 0;
    for (const e of this.#entries.values()) {
      const q = this.#queues(e);
      n += q.send + q.recv + e.pendingBytes;
    }
    return n;
  }

  // ------------------------------------------------------------ operations

  /**
   * Binds the socket to a local port (0 or absent: an ephemeral one) on the
   * stack's address (`address` may name it, or be `0.0.0.0`). Returns the
   * local endpoint. EALREADY when already bound, EISCONN when connected or
   * listening, EADDRINUSE when the port is taken, EINVAL for another address.
   */
  bind(entry: SocketEntry, options: { address?: string; port?: number } = {}): Endpoint {
    this.#checkLive(entry);
    const port = options.port ?? 0;
    if (entry.state !== "created") {
      throw entry.state === "bound"
        ? new NetError(
          "EALREADY",
          `socket ${entry.id} is already bound to port ${entry.local?.port}`,
        )
        : new NetError("EISCONN", `socket ${entry.id} is ${entry.state}; bind it before that`);
    }
    const ours = this.#host.withCore((stack) => stack.config.ipv4.address);
    if (options.address !== undefined && options.address !== "0.0.0.0") {
      if (parseIpv4Address(options.address) !== ours) {
        throw new NetError(
          "EINVAL",
          `cannot bind to ${options.address}: the session's only address is ${
            formatIpv4Address(ours)
          } (or 0.0.0.0)`,
        );
      }
    }
    if (entry.protocol === "tcp") {
      const p = this.#host.withCore((stack) => stack.tcp.bindPort(port));
      entry.local = this.#address("tcp", ours, p, true);
    } else {
      const s = UdpSocket.bind(this.#host, { port });
      this.#adoptUdp(entry, s, ours);
    }
    return entry.local!.toJSON();
  }

  /**
   * Starts listening (TCP). An unbound socket first gets an ephemeral port.
   * Returns the local endpoint and the backlog in force.
   */
  listen(entry: SocketEntry, options: { backlog?: number } = {}): {
    local: Endpoint;
    backlog: number;
  } {
    this.#checkLive(entry);
    const e = this.#tcp(entry, "listen");
    switch (e.state) {
      case "created":
        this.bind(e);
        break;
      case "bound":
        break;
      case "listening":
        throw new NetError("EALREADY", `socket ${e.id} is already listening`);
      default:
        throw new NetError("EISCONN", `socket ${e.id} is ${e.state}; only a new socket can listen`);
    }
    const local = e.local!;
    e.server = TcpServer.listen(this.#host, {
      port: local.port,
      backlog: options.backlog ?? 128,
      fromBound: true,
    });
    local.reserved = false;
    return { local: local.toJSON(), backlog: e.server.listener.backlog };
  }

  /**
   * Waits for a connection on a listening socket and adds it to the table as
   * a new socket sharing the listener's local address. Resolves undefined
   * when the timeout passed with none; EMFILE when the table is full.
   */
  async accept(entry: SocketEntry, options: PollOptions = {}): Promise<TcpSocketEntry | undefined> {
    this.#checkLive(entry);
    const e = this.#tcp(entry, "accept");
    const server = e.server;
    if (!server || server.listener.closed) {
      throw new NetError("ENOTCONN", `socket ${e.id} is not listening (it is ${e.state})`);
    }
    this.#ensureRoom();
    const wait = new Deadline([options.signal, e.removedSignal], options.timeoutMs);
    let sock: TcpSocket;
    try {
      sock = await server.accept({ signal: wait.signal });
    } catch (err) {
      if (wait.timedOut) return undefined;
      throw wait.explain(err, e.id);
    } finally {
      wait.dispose();
    }
    if (this.#closed || this.#entries.size >= this.limits.maxSockets) {
      sock.abort();
      this.#ensureRoom();
    }
    const child = this.create("tcp") as TcpSocketEntry;
    child.socket = sock;
    child.acceptedFrom = e.id;
    child.local = e.local;
    e.local!.users++;
    return child;
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
    this.#checkLive(entry);
    const addr = parseIpv4Address(options.address);
    const ours = this.#checkRoute(addr);
    if (entry.protocol === "udp") {
      const s = this.#udpBound(entry, ours);
      s.connect(options.address, options.port);
      return { local: entry.local!.toJSON(), remote: entry.remote! };
    }
    switch (entry.state) {
      case "created":
      case "bound":
        break;
      case "connecting":
        throw new NetError("EALREADY", `socket ${entry.id} is already connecting`);
      case "closed":
        throw new NetError(
          "EISCONN",
          `socket ${entry.id} is closed; create a new socket to connect again`,
        );
      default:
        throw new NetError("EISCONN", `socket ${entry.id} is ${entry.state}`);
    }
    const bound = entry.local;
    const sock = TcpSocket.open(this.#host, {
      address: addr,
      port: options.port,
      localPort: bound?.port,
      fromBound: bound?.reserved,
    });
    entry.socket = sock;
    if (bound) bound.reserved = false;
    else entry.local = this.#address("tcp", ours, sock.conn.localPort, false);
    const wait = new Deadline([options.signal, entry.removedSignal], options.timeoutMs);
    try {
      await sock.established({ signal: wait.signal });
    } catch (err) {
      // established() aborted the connection on timeout or abort.
      const e = wait.timedOut
        ? new NetError(
          "ETIMEDOUT",
          `connect to ${options.address}:${options.port} timed out after ${wait.timeoutMs} ms`,
        )
        : wait.explain(err, entry.id);
      entry.error = e instanceof NetError ? e.code : "ECONNRESET";
      throw e;
    } finally {
      wait.dispose();
    }
    return { local: entry.local!.toJSON(), remote: entry.remote! };
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
    options: PollOptions & { to?: { address: string; port: number } } = {},
  ): Promise<number> {
    this.#checkLive(entry);
    this.#checkNotStreaming(entry);
    if (entry.protocol === "udp") return this.#sendUdp(entry, data, options.to);
    if (options.to) {
      throw new NetError("EISCONN", "a TCP send goes to the connected peer; leave out the address");
    }
    const sock = this.#connected(entry, "send");
    if (data.length === 0) return 0;
    this.#reserveBuffer(data.length);
    let off = 0;
    entry.pendingBytes += data.length;
    const wait = new Deadline([options.signal, entry.removedSignal], options.timeoutMs);
    try {
      for (;;) {
        const n = sock.trySend(off === 0 ? data : data.subarray(off));
        off += n;
        entry.pendingBytes -= n;
        if (off >= data.length) return off;
        await sock.waitWritable(wait.signal);
      }
    } catch (err) {
      if (wait.timedOut) {
        if (off > 0) return off;
        throw new NetError(
          "ETIMEDOUT",
          `the send buffer of socket ${entry.id} stayed full for ${wait.timeoutMs} ms`,
        );
      }
      throw wait.explain(err, entry.id);
    } finally {
      entry.pendingBytes -= data.length - off;
      wait.dispose();
    }
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
    this.#checkLive(entry);
    this.#checkNotStreaming(entry);
    const wait = new Deadline([options.signal, entry.removedSignal], options.timeoutMs);
    try {
      if (entry.protocol === "udp") {
        const s = entry.socket;
        if (!s) {
          throw new NetError("ENOTCONN", `socket ${entry.id} is not bound; nothing can arrive`);
        }
        const d = await s.receive({ signal: wait.signal });
        const truncated = d.data.length > options.maxBytes;
        return {
          data: truncated ? d.data.subarray(0, options.maxBytes) : d.data,
          eof: false,
          from: { address: d.address, port: d.port },
          truncated,
        };
      }
      const sock = this.#connected(entry, "recv");
      if (entry.readShut) return { data: new Uint8Array(0), eof: true };
      const r = await sock.receive(options.maxBytes, wait.signal);
      return r === null ? { data: new Uint8Array(0), eof: true } : { data: r, eof: false };
    } catch (err) {
      if (wait.timedOut) return undefined;
      throw wait.explain(err, entry.id);
    } finally {
      wait.dispose();
    }
  }

  /** Shuts down one or both directions of a TCP connection (`write` sends FIN). */
  shutdown(entry: SocketEntry, how: "read" | "write" | "both"): void {
    this.#checkLive(entry);
    const e = this.#tcp(entry, "shutdown");
    const sock = this.#connected(e, "shutdown");
    sock.shutdown(how);
    if (how !== "write") e.readShut = true;
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
   * {@linkcode Session.close}; the table refuses new sockets afterwards.
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
    this.#checkLive(entry);
    this.#checkNotStreaming(entry);
    const sock = this.#connected(this.#tcp(entry, "stream"), "stream");
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
    this.#checkLive(entry);
    this.#checkNotStreaming(entry);
    if (entry.protocol !== "udp") {
      throw new NetError("EOPNOTSUPP", `a datagram stream needs a UDP socket; ${entry.id} is TCP`);
    }
    const s = this.#udpBound(entry, this.#host.withCore((stack) => stack.config.ipv4.address));
    entry.attachment = attachment;
    return s;
  }

  /** Removes `attachment` from `entry` if it is still the one attached. */
  detach(entry: SocketEntry, attachment: SocketAttachment): void {
    if (entry.attachment === attachment) entry.attachment = undefined;
  }

  /**
   * Checks that `bytes` more may be buffered for the session (ENOBUFS when
   * not); for callers that buffer on a socket's behalf (the stream bridge).
   */
  reserveBuffer(bytes: number): void {
    this.#reserveBuffer(bytes);
  }

  // ------------------------------------------------------------ helpers

  #reserveBuffer(bytes: number): void {
    const used = this.bufferedBytes();
    if (used + bytes > this.limits.maxBufferedBytes) {
      throw new NetError(
        "ENOBUFS",
        `the session's buffer quota is full: ${used} bytes buffered, ${bytes} more would pass ` +
          `the limit of ${this.limits.maxBufferedBytes}`,
      );
    }
  }

  #queues(entry: SocketEntry): { send: number; recv: number } {
    if (entry.protocol === "tcp") {
      const s = entry.socket;
      if (!s) return { send: 0, recv: 0 };
      const info = s.conn.info();
      return { send: info.sendQueued, recv: info.recvQueued };
    }
    const ep = entry.socket?.endpoint;
    return { send: 0, recv: ep ? ep.queuedBytes : 0 };
  }

  #sendUdp(
    entry: UdpSocketEntry,
    data: Uint8Array,
    to: { address: string; port: number } | undefined,
  ): number {
    const ours = this.#host.withCore((stack) => stack.config.ipv4.address);
    if (to) this.#checkRoute(parseIpv4Address(to.address));
    else if (!entry.socket?.endpoint.remote) {
      throw new NetError(
        "ENOTCONN",
        `socket ${entry.id} is not connected: name the destination with ?address=&port=`,
      );
    }
    const max = this.#host.withCore((stack) => stack.udp.maxPayload);
    if (data.length > max) {
      throw new NetError(
        "EMSGSIZE",
        `a datagram of ${data.length} bytes does not fit in one IP packet (at most ${max}; ` +
          `netisle does not fragment)`,
      );
    }
    const s = this.#udpBound(entry, ours);
    s.send(data, to);
    return data.length;
  }

  /** The entry's UDP socket, binding an ephemeral port first when it has none. */
  #udpBound(entry: UdpSocketEntry, ours: Ipv4Address): UdpSocket {
    if (entry.socket) {
      if (entry.socket.endpoint.closed) {
        throw new NetError("ENOTCONN", `socket ${entry.id} is closed`);
      }
      return entry.socket;
    }
    const s = UdpSocket.bind(this.#host, { port: 0 });
    this.#adoptUdp(entry, s, ours);
    return s;
  }

  #adoptUdp(entry: UdpSocketEntry, s: UdpSocket, ours: Ipv4Address): void {
    entry.socket = s;
    entry.local = this.#address("udp", ours, s.endpoint.port, false);
  }

  #address(
    protocol: SocketProtocol,
    address: Ipv4Address,
    port: number,
    reserved: boolean,
  ): LocalAddress {
    const a = new LocalAddress(protocol, address, port, reserved);
    a.users = 1;
    return a;
  }

  /** Returns the stack's address; EHOSTUNREACH when `addr` is not on the link or is ours. */
  #checkRoute(addr: Ipv4Address): Ipv4Address {
    const { ours, routed } = this.#host.withCore((stack) => ({
      ours: stack.config.ipv4.address,
      routed: stack.hasRoute(addr),
    }));
    if (addr === ours) {
      throw new NetError(
        "EHOSTUNREACH",
        `${formatIpv4Address(addr)} is the session's own address (there is no loopback)`,
      );
    }
    if (!routed) {
      throw new NetError(
        "EHOSTUNREACH",
        `no route to ${formatIpv4Address(addr)}: only hosts on the session's link are reachable`,
      );
    }
    return ours;
  }

  #tcp(entry: SocketEntry, op: string): TcpSocketEntry {
    if (entry.protocol !== "tcp") {
      throw new NetError("EOPNOTSUPP", `${op} needs a TCP socket; socket ${entry.id} is UDP`);
    }
    return entry;
  }

  #connected(entry: TcpSocketEntry, op: string): TcpSocket {
    const sock = entry.socket;
    if (!sock) {
      throw new NetError(
        "ENOTCONN",
        `cannot ${op}: socket ${entry.id} is ${entry.state}, not connected`,
      );
    }
    return sock;
  }

  #checkNotStreaming(entry: SocketEntry): void {
    if (entry.attachment) {
      throw new NetError(
        "EBUSY",
        `socket ${entry.id} is streaming over a WebSocket; close the stream first`,
      );
    }
  }

  #checkLive(entry: SocketEntry): void {
    if (entry.removed) throw new NetError("ENOTCONN", `socket ${entry.id} was closed`);
  }

  #checkOpen(): void {
    if (this.#closed) throw new NetError("ENOTCONN", "the session has ended");
  }

  #ensureRoom(): void {
    if (this.#entries.size >= this.limits.maxSockets) {
      throw new NetError(
        "EMFILE",
        `the session holds its maximum of ${this.limits.maxSockets} sockets; delete one first`,
      );
    }
  }

  #randomText(bytes: number): string {
    const b = new Uint8Array(bytes);
    this.#random(b);
    let s = "";
    for (const x of b) s += String.fromCharCode(x);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
}

/**
 * The end of one long-poll: the caller's signal, the socket leaving the
 * table, or a timeout, whichever comes first. {@linkcode Deadline.dispose}
 * removes every listener and the timer, so nothing stays behind.
 */
class Deadline {
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  timedOut = false;
  #ac = new AbortController();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #sources: Array<[AbortSignal, () => void]> = [];

  constructor(signals: Array<AbortSignal | undefined>, timeoutMs: number | undefined) {
    this.signal = this.#ac.signal;
    this.timeoutMs = Math.min(timeoutMs ?? DEFAULT_POLL_TIMEOUT_MS, MAX_POLL_TIMEOUT_MS);
    for (const s of signals) {
      if (!s) continue;
      if (s.aborted) {
        this.#ac.abort(s.reason);
        return;
      }
      const on = () => this.#ac.abort(s.reason);
      s.addEventListener("abort", on, { once: true });
      this.#sources.push([s, on]);
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.timedOut = true;
      this.#ac.abort(new DOMException("the long-poll timed out", "TimeoutError"));
    }, this.timeoutMs);
  }

  /**
   * Turns what a wait threw into the error to report: its own error (a
   * reset, a closed listener) unless the wait was cut short — then ENOTCONN
   * when the socket left the table, ECANCELED when the caller went away.
   */
  explain(err: unknown, id: string): unknown {
    if (!this.#ac.signal.aborted) return err;
    const r = this.#ac.signal.reason;
    if (r instanceof NetError) return r;
    return new NetError("ECANCELED", `the caller went away while waiting on socket ${id}`);
  }

  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const [s, on] of this.#sources) s.removeEventListener("abort", on);
    this.#sources = [];
  }
}
