/**
 * The UDP layer of one stack (RFC 768, RFC 1122 §4.1): bound endpoints by
 * local port, demultiplexing of received datagrams to them, bounded receive
 * queues, and connected endpoints that accept datagrams from one peer only.
 *
 * The layer never builds ICMP itself: {@linkcode UdpLayer.input} returns the
 * drop reason `udp_port_closed` (or `udp_peer_mismatch`) and the stack, which
 * holds the original IP datagram and the one ICMP error rate limiter, answers
 * with a port unreachable (RFC 1122 §4.1.3.1).
 *
 * @module
 */

import { EphemeralPorts } from "../ephemeral_ports.ts";
import { NetError } from "../../errors/net_error.ts";
import {
  formatIpv4Address,
  Icmpv4DestUnreachableCode,
  IPV4_HEADER_LEN,
  type Ipv4Address,
  UDP_HEADER_LEN,
  UdpPacket,
  UdpRepr,
} from "../../wire/mod.ts";

/** What the UDP layer needs from the stack below it. */
export interface UdpLayerDeps {
  /** The stack's IPv4 address (the source of every datagram sent). */
  localAddr: Ipv4Address;
  /** The link's IP MTU; a datagram must fit in one IP packet (no fragmentation). */
  mtu: number;
  /** Sends an IPv4 packet whose payload `fill` writes in place; false when it was dropped. */
  sendIpv4With(
    dst: Ipv4Address,
    payloadLen: number,
    fill: (buf: Uint8Array) => void,
    now: number,
  ): boolean;
  /** Whether the stack has a route to `dst` (on-link unicast or a broadcast address). */
  hasRoute(dst: Ipv4Address): boolean;
  /** Fills `buf` with random bytes (the start of the ephemeral port search). */
  random: (buf: Uint8Array) => void;
  /** Limits of the layer. */
  limits?: Partial<UdpLayerLimits>;
}

/** Limits of one UDP layer. */
export interface UdpLayerLimits {
  /** Bound endpoints before bind() fails with EMFILE. */
  maxEndpoints: number;
  /** Payload bytes one endpoint's receive queue holds; datagrams beyond are dropped. */
  recvQueueBytes: number;
  /** Datagrams one endpoint's receive queue holds (bounds empty datagrams too). */
  recvQueueDatagrams: number;
}

/** Defaults for {@linkcode UdpLayerLimits}: 1024 endpoints, 256 KiB and 1024 datagrams per queue. */
export const DEFAULT_UDP_LAYER_LIMITS: UdpLayerLimits = {
  maxEndpoints: 1024,
  recvQueueBytes: 256 * 1024,
  recvQueueDatagrams: 1024,
};

/**
 * Reasons the UDP layer drops datagrams (pre-registered as counters). The wire
 * parser's `udp_truncated`, `udp_bad_length` and `udp_bad_checksum` come on
 * top.
 *
 * - `udp_port_closed`: no endpoint is bound on the destination port.
 * - `udp_peer_mismatch`: the endpoint is connected to another peer; as on
 *   Linux, the port counts as closed for this sender.
 * - `udp_queue_full`: the endpoint's receive queue is full.
 */
export const UDP_DROP_REASONS: readonly string[] = [
  "udp_port_closed",
  "udp_peer_mismatch",
  "udp_queue_full",
];

/**
 * Event bits of a UDP endpoint, delivered to its owner after the core lock is
 * released (the same bits as {@linkcode TcpEvent} where they mean the same).
 */
export const UdpEvent = {
  /** A datagram was queued. */
  READABLE: 1,
  /** The endpoint was closed. */
  CLOSED: 8,
} as const;

/** A received datagram, as {@linkcode UdpEndpoint.receive} returns it. */
export interface UdpDatagram {
  /** The sender's IPv4 address. */
  src: Ipv4Address;
  /** The sender's port (0 when it set none, RFC 768). */
  srcPort: number;
  /** The payload (a copy owned by the receiver). */
  payload: Uint8Array;
}

/** A destination of {@linkcode UdpEndpoint.send}. */
export interface UdpDestination {
  /** IPv4 address (u32). */
  address: Ipv4Address;
  /** Port, 1..65535. */
  port: number;
}

/** Counters of one endpoint. */
export interface UdpEndpointStats {
  /** Datagrams queued for the owner. */
  rxDatagrams: number;
  /** Payload bytes queued for the owner. */
  rxBytes: number;
  /** Datagrams dropped because the receive queue was full. */
  rxQueueDrops: number;
  /** Datagrams from a peer other than the connected one (dropped). */
  rxPeerMismatch: number;
  /** Datagrams handed to the IP layer. */
  txDatagrams: number;
  /** Payload bytes handed to the IP layer. */
  txBytes: number;
  /** Datagrams the IP layer dropped at once (e.g. the ARP queue was full). */
  txDrops: number;
  /** ICMP destination-unreachable errors about datagrams to the connected peer. */
  icmpErrors: number;
}

/** What an endpoint needs from the layer that owns it ({@linkcode UdpLayer} implements it). */
export interface UdpHost {
  /** The stack's IPv4 address. */
  readonly localAddr: Ipv4Address;
  /** Largest payload of one datagram (MTU - 28). */
  readonly maxPayload: number;
  /** Receive queue limits. */
  readonly limits: UdpLayerLimits;
  /** Whether the stack can send to `dst`. */
  hasRoute(dst: Ipv4Address): boolean;
  /** Emits a datagram of `ep`; false when the IP layer dropped it. */
  transmit(ep: UdpEndpoint, dst: UdpDestination, payload: Uint8Array, now: number): boolean;
  /** Frees the port of a closed endpoint. */
  release(ep: UdpEndpoint): void;
  /** Queues `ep` for event delivery. */
  markDirty(ep: UdpEndpoint): void;
}

function checkPort(where: string, port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`${where}: port must be an integer in 1..65535, got ${port}`);
  }
}

function checkAddress(where: string, address: Ipv4Address): void {
  if (!Number.isInteger(address) || address <= 0 || address > 0xffffffff) {
    throw new RangeError(
      `${where}: address must be a non-zero IPv4 address (u32), got ${address}`,
    );
  }
}

/**
 * A bound UDP endpoint (a TDI "address object" for UDP): a local port with a
 * bounded receive queue, optionally connected to one peer.
 *
 * Connected (RFC 1122 §4.1.3.4 leaves this to the API; this follows BSD and
 * Linux): only datagrams from the peer are queued, and `send()` without a
 * destination goes to it.
 *
 * @example
 * ```ts
 * const ep = stack.udp.bind(7);
 * const d = ep.receive();
 * if (d) ep.send(d.payload, now, { address: d.src, port: d.srcPort });
 * ```
 */
export class UdpEndpoint {
  /** The local port. */
  readonly port: number;
  /** Pending event bits (see {@linkcode UdpEvent}); the session clears them after delivery. */
  events = 0;
  /** Opaque owner (the socket layer's endpoint), told of events through `onEvents`. */
  owner: unknown;
  /** Counters of this endpoint. */
  readonly stats: UdpEndpointStats = {
    rxDatagrams: 0,
    rxBytes: 0,
    rxQueueDrops: 0,
    rxPeerMismatch: 0,
    txDatagrams: 0,
    txBytes: 0,
    txDrops: 0,
    icmpErrors: 0,
  };
  #host: UdpHost;
  #queue: UdpDatagram[] = [];
  #queuedBytes = 0;
  #remote: UdpDestination | undefined;
  #closed = false;
  #pendingError: NetError | undefined;

  /** Created by {@linkcode UdpLayer.bind}. */
  constructor(host: UdpHost, port: number) {
    this.#host = host;
    this.port = port;
  }

  /** Whether {@linkcode UdpEndpoint.close} ran. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The connected peer, or undefined. */
  get remote(): UdpDestination | undefined {
    return this.#remote ? { ...this.#remote } : undefined;
  }

  /** Payload bytes waiting in the receive queue. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Datagrams waiting in the receive queue. */
  get queuedDatagrams(): number {
    return this.#queue.length;
  }

  /**
   * Connects to one peer: from now on only its datagrams are queued, and
   * `send()` without a destination goes to it. Datagrams from others already
   * queued stay. Connecting again replaces the peer.
   *
   * @throws {RangeError} for a zero address or a port outside 1..65535.
   * @throws {NetError} ENOTCONN when the endpoint is closed.
   */
  connect(remoteAddr: Ipv4Address, remotePort: number): void {
    this.#checkOpen("connect");
    checkAddress("UdpEndpoint.connect", remoteAddr);
    checkPort("UdpEndpoint.connect", remotePort);
    this.#remote = { address: remoteAddr, port: remotePort };
  }

  /** Dissolves the association made by {@linkcode UdpEndpoint.connect}. */
  disconnect(): void {
    this.#remote = undefined;
  }

  /**
   * Sends one datagram from this port to `dst`, or to the connected peer.
   * The checksum is always computed (RFC 768; RFC 1122 §4.1.3.4 says it
   * defaults to on). The stack does not fragment, so the payload must fit in
   * one IP packet: at most `mtu - 28` bytes.
   *
   * Returns true when the datagram went to the link (or waits for ARP), false
   * when the IP layer dropped it (counted in `stats.txDrops`).
   *
   * @throws {NetError} ENOTCONN when there is no destination (no `dst`, not
   *   connected) or the endpoint is closed; EHOSTUNREACH when the stack has
   *   no route to the destination; the pending ICMP error, once (see
   *   {@linkcode UdpEndpoint.icmpError}).
   * @throws {RangeError} for a payload over `mtu - 28` bytes, a zero address
   *   or a port outside 1..65535.
   */
  send(payload: Uint8Array, now: number, dst?: UdpDestination): boolean {
    this.#checkOpen("send");
    this.#throwPendingError();
    const to = dst ?? this.#remote;
    if (to === undefined) {
      throw new NetError(
        "ENOTCONN",
        `UDP port ${this.port}: send without a destination on an unconnected endpoint`,
      );
    }
    if (dst) {
      checkAddress("UdpEndpoint.send", dst.address);
      checkPort("UdpEndpoint.send", dst.port);
    }
    const max = this.#host.maxPayload;
    if (payload.length > max) {
      throw new RangeError(
        `UdpEndpoint.send: payload of ${payload.length} bytes exceeds ${max}, the most that ` +
          `fits in one IP packet (netisle does not fragment)`,
      );
    }
    if (!this.#host.hasRoute(to.address)) {
      throw new NetError(
        "EHOSTUNREACH",
        `UDP port ${this.port}: no route to ${formatIpv4Address(to.address)} (not on the link)`,
      );
    }
    if (this.#host.transmit(this, to, payload, now)) {
      this.stats.txDatagrams++;
      this.stats.txBytes += payload.length;
      return true;
    }
    this.stats.txDrops++;
    return false;
  }

  /**
   * Takes the oldest queued datagram, or undefined when the queue is empty.
   * Queued datagrams come first; then a pending ICMP error is thrown, once.
   *
   * @throws {NetError} ECONNREFUSED or EHOSTUNREACH reported by ICMP for the
   *   connected peer (see {@linkcode UdpEndpoint.icmpError}).
   */
  receive(): UdpDatagram | undefined {
    const d = this.#queue.shift();
    if (d) this.#queuedBytes -= d.payload.length;
    else this.#throwPendingError();
    return d;
  }

  /** Whether an ICMP error waits to be reported by the next send or receive. */
  get hasPendingError(): boolean {
    return this.#pendingError !== undefined;
  }

  /**
   * Records an ICMP destination unreachable about a datagram this endpoint
   * sent to its connected peer (RFC 1122 §4.1.3.3: UDP must pass ICMP errors
   * to the application). As on BSD and Linux, only a connected endpoint hears
   * of it: the next `send()` or the next `receive()` with an empty queue
   * throws it once, and waiting receivers are woken. Codes "protocol" and
   * "port unreachable" become ECONNREFUSED, the others EHOSTUNREACH.
   * Returns false when the quoted datagram was not to the connected peer.
   */
  icmpError(remoteAddr: Ipv4Address, remotePort: number, icmpCode: number): boolean {
    const r = this.#remote;
    if (this.#closed || r === undefined || r.address !== remoteAddr || r.port !== remotePort) {
      return false;
    }
    const refused = icmpCode === Icmpv4DestUnreachableCode.PORT ||
      icmpCode === Icmpv4DestUnreachableCode.PROTOCOL;
    const peer = `${formatIpv4Address(remoteAddr)}:${remotePort}`;
    this.#pendingError = refused
      ? new NetError("ECONNREFUSED", `UDP port ${this.port}: ${peer} answered port unreachable`)
      : new NetError(
        "EHOSTUNREACH",
        `UDP port ${this.port}: ICMP destination unreachable (code ${icmpCode}) for ${peer}`,
      );
    this.stats.icmpErrors++;
    this.#signal(UdpEvent.READABLE);
    return true;
  }

  #throwPendingError(): void {
    const e = this.#pendingError;
    if (e) {
      this.#pendingError = undefined;
      throw e;
    }
  }

  /** Frees the port, discards the queue and raises {@linkcode UdpEvent.CLOSED}. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#remote = undefined;
    this.#host.release(this);
    this.#signal(UdpEvent.CLOSED);
  }

  /**
   * Queues a datagram that arrived for this port; the layer's demux calls it.
   * Returns a drop reason, or undefined when it was queued.
   */
  deliver(src: Ipv4Address, srcPort: number, payload: Uint8Array): string | undefined {
    const r = this.#remote;
    if (r !== undefined && (r.address !== src || r.port !== srcPort)) {
      this.stats.rxPeerMismatch++;
      return "udp_peer_mismatch";
    }
    const limits = this.#host.limits;
    if (
      this.#queue.length >= limits.recvQueueDatagrams ||
      this.#queuedBytes + payload.length > limits.recvQueueBytes
    ) {
      this.stats.rxQueueDrops++;
      return "udp_queue_full";
    }
    // Copy: the frame's buffer belongs to the link and may be reused.
    this.#queue.push({ src, srcPort, payload: payload.slice() });
    this.#queuedBytes += payload.length;
    this.stats.rxDatagrams++;
    this.stats.rxBytes += payload.length;
    this.#signal(UdpEvent.READABLE);
    return undefined;
  }

  #signal(bits: number): void {
    if (this.events === 0) this.#host.markDirty(this);
    this.events |= bits;
  }

  #checkOpen(op: string): void {
    if (this.#closed) {
      throw new NetError("ENOTCONN", `UDP port ${this.port}: cannot ${op}, the endpoint is closed`);
    }
  }
}

/**
 * All UDP state of one stack: endpoints by local port (one per port; there is
 * no SO_REUSEADDR) and the objects with events for their owners.
 *
 * @example
 * ```ts
 * const udp = new UdpLayer({ localAddr, mtu: 1500, sendIpv4With, hasRoute, random });
 * const ep = udp.bind(0); // an ephemeral port in 49152..65535
 * ep.send(new TextEncoder().encode("hi"), now, { address: peer, port: 7 });
 * ```
 */
export class UdpLayer implements UdpHost {
  /** The stack's IPv4 address. */
  readonly localAddr: Ipv4Address;
  /** The link's IP MTU. */
  readonly mtu: number;
  /** The layer's limits (defaults merged with the configured ones). */
  readonly limits: UdpLayerLimits;
  /** Largest payload of one datagram: the MTU less the IPv4 and UDP headers. */
  readonly maxPayload: number;
  /** Bound endpoints by local port. */
  readonly endpoints: ReadonlyMap<number, UdpEndpoint>;
  /** Counters of the layer (checksum and length errors are stack drop reasons). */
  readonly stats = {
    /** Datagrams queued to an endpoint. */
    rxDatagrams: 0,
    /** Datagrams handed to the IP layer. */
    txDatagrams: 0,
  };
  #deps: UdpLayerDeps;
  #endpoints = new Map<number, UdpEndpoint>();
  #dirty: UdpEndpoint[] = [];
  #ephemeralPorts: EphemeralPorts;

  /** Creates an empty layer; throws RangeError for a limit that is not a positive integer. */
  constructor(deps: UdpLayerDeps) {
    this.#deps = deps;
    this.localAddr = deps.localAddr;
    this.mtu = deps.mtu;
    this.maxPayload = deps.mtu - IPV4_HEADER_LEN - UDP_HEADER_LEN;
    this.limits = { ...DEFAULT_UDP_LAYER_LIMITS, ...deps.limits };
    for (const [k, v] of Object.entries(this.limits)) {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`UdpLayer: limits.${k} must be a positive integer, got ${v}`);
      }
    }
    this.endpoints = this.#endpoints;
    this.#ephemeralPorts = new EphemeralPorts("UDP", deps.random);
  }

  /**
   * Binds a local port. `port` 0 picks a free ephemeral one in 49152..65535
   * (RFC 6335 §6), searching from a random start.
   *
   * @throws {RangeError} when `port` is not an integer in 0..65535.
   * @throws {NetError} EADDRINUSE when the port is bound (or no ephemeral port
   *   is free); EMFILE when the layer holds `limits.maxEndpoints` endpoints.
   */
  bind(port: number): UdpEndpoint {
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new RangeError(`UdpLayer.bind: port must be an integer in 0..65535, got ${port}`);
    }
    if (this.#endpoints.size >= this.limits.maxEndpoints) {
      throw new NetError(
        "EMFILE",
        `this stack holds its maximum of ${this.limits.maxEndpoints} UDP endpoints`,
      );
    }
    if (port !== 0 && this.#endpoints.has(port)) {
      throw new NetError("EADDRINUSE", `UDP port ${port} is already in use`);
    }
    const p = port === 0 ? this.#ephemeral() : port;
    const ep = new UdpEndpoint(this, p);
    this.#endpoints.set(p, ep);
    return ep;
  }

  #ephemeral(): number {
    return this.#ephemeralPorts.pick((p) => this.#endpoints.has(p));
  }

  /**
   * Processes a UDP datagram for `dst` (our address or a broadcast address;
   * the IP layer checked) from `src`: verifies length and checksum (RFC 768;
   * a zero checksum means none, RFC 1122 §4.1.3.4) and queues it to the
   * endpoint bound on its destination port. Returns a drop reason, or
   * undefined when the datagram was queued.
   *
   * For `udp_port_closed` and `udp_peer_mismatch` the caller should answer
   * with an ICMP port unreachable, unless `dst` is a broadcast address
   * (RFC 1122 §4.1.3.1, §3.2.2).
   */
  input(src: Ipv4Address, dst: Ipv4Address, bytes: Uint8Array, _now: number): string | undefined {
    const pkt = UdpPacket.parse(bytes);
    if (!pkt.ok) return pkt.reason;
    const parsed = UdpRepr.parse(pkt.value, src, dst);
    if (!parsed.ok) return parsed.reason;
    const d = parsed.value;
    const ep = this.#endpoints.get(d.dstPort);
    if (ep === undefined) return "udp_port_closed";
    const reason = ep.deliver(src, d.srcPort, d.payload);
    if (reason === undefined) this.stats.rxDatagrams++;
    return reason;
  }

  /**
   * An ICMP destination unreachable quoting a datagram we sent from
   * `localPort` to `remoteAddr:remotePort` (RFC 1122 §4.1.3.3). Returns a drop
   * reason when no connected endpoint sent it.
   */
  icmpError(
    remoteAddr: Ipv4Address,
    remotePort: number,
    localPort: number,
    icmpCode: number,
  ): string | undefined {
    const ep = this.#endpoints.get(localPort);
    if (ep === undefined || !ep.icmpError(remoteAddr, remotePort, icmpCode)) {
      return "icmp_udp_unmatched";
    }
    return undefined;
  }

  /** Removes and returns the endpoints with pending events, in the order they were raised. */
  takeDirty(): UdpEndpoint[] {
    const d = this.#dirty;
    this.#dirty = [];
    return d;
  }

  // ------------------------------------------------------------ UdpHost

  /** Whether the stack can send to `dst` (see {@linkcode UdpLayerDeps.hasRoute}). */
  hasRoute(dst: Ipv4Address): boolean {
    return this.#deps.hasRoute(dst);
  }

  /** Emits a datagram of `ep`; the checksum is always computed (RFC 768). */
  transmit(ep: UdpEndpoint, dst: UdpDestination, payload: Uint8Array, now: number): boolean {
    const src = this.localAddr;
    const repr: UdpRepr = { srcPort: ep.port, dstPort: dst.port, payload };
    const ok = this.#deps.sendIpv4With(
      dst.address,
      UdpRepr.bufferLen(repr),
      (buf) => UdpRepr.emit(repr, buf, src, dst.address),
      now,
    );
    if (ok) this.stats.txDatagrams++;
    return ok;
  }

  /** Frees the port of a closed endpoint. */
  release(ep: UdpEndpoint): void {
    if (this.#endpoints.get(ep.port) === ep) this.#endpoints.delete(ep.port);
  }

  /** Queues `ep` for event delivery. */
  markDirty(ep: UdpEndpoint): void {
    this.#dirty.push(ep);
  }
}
