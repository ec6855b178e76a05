/**
 * A bound UDP endpoint (RFC 768, RFC 1122 §4.1): a local port with a bounded
 * receive queue of datagrams copied out of their frames, optionally connected
 * to one peer. {@linkcode UdpLayer} creates endpoints and demultiplexes
 * received datagrams to them. An endpoint is dual-stack: it sends to and
 * receives from IPv4 and IPv6 peers alike (`IpAddress`: a number for IPv4,
 * an `Ipv6Address` string for IPv6).
 *
 * @module
 */

import { NetError } from "../../errors/net_error.ts";
import {
  Icmpv4DestUnreachableCode,
  Icmpv6DestUnreachableCode,
  IPV6_UNSPECIFIED,
  isIpv6Address,
} from "../../wire/mod.ts";
import { formatIpAddress, type IpAddress, isIpv6 } from "../../wire/ip_address.ts";
import type { UdpLayerLimits } from "./udp_layer.ts";
import { bufferCost, type MemoryQuota } from "../session_quota.ts";

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
  /** The sender's address (IPv4 or IPv6). */
  src: IpAddress;
  /** The sender's port (0 when it set none, RFC 768). */
  srcPort: number;
  /** The payload (a copy owned by the receiver). */
  payload: Uint8Array;
}

/** A destination of {@linkcode UdpEndpoint.send}. */
export interface UdpDestination {
  /** IPv4 address (u32) or IPv6 address. */
  address: IpAddress;
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
  /** Datagrams dropped because the session's memory quota refused their copy. */
  rxQuotaDrops: number;
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
  /** Largest payload of one datagram to `dst` (MTU - 28 for IPv4, MTU - 48 for IPv6). */
  maxPayloadFor(dst: IpAddress): number;
  /** Receive queue limits. */
  readonly limits: UdpLayerLimits;
  /** The session's memory quota, charged for every queued copy. */
  readonly memory: MemoryQuota;
  /** Whether the stack can send to `dst`. */
  hasRoute(dst: IpAddress): boolean;
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

function checkAddress(where: string, address: IpAddress): void {
  if (typeof address === "string") {
    if (!isIpv6Address(address) || address === IPV6_UNSPECIFIED) {
      throw new RangeError(
        `${where}: address must be an IPv6 address other than ::, got "${
          isIpv6Address(address) ? formatIpAddress(address) : address
        }"`,
      );
    }
    return;
  }
  if (!Number.isInteger(address) || address <= 0 || address > 0xffffffff) {
    throw new RangeError(
      `${where}: address must be a non-zero IPv4 address (u32) or an IPv6 address, got ${address}`,
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
    rxQuotaDrops: 0,
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
  connect(remoteAddr: IpAddress, remotePort: number): void {
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
   * defaults to on; RFC 8200 §8.1 makes it mandatory over IPv6). The stack
   * does not fragment, so the payload must fit in one IP packet: at most
   * `mtu - 28` bytes over IPv4, `mtu - 48` over IPv6.
   *
   * Returns true when the datagram went to the link (or waits for ARP), false
   * when the IP layer dropped it (counted in `stats.txDrops`).
   *
   * @throws {NetError} ENOTCONN when there is no destination (no `dst`, not
   *   connected) or the endpoint is closed; EHOSTUNREACH when the stack has
   *   no route to the destination; the pending ICMP error, once (see
   *   {@linkcode UdpEndpoint.icmpError}).
   * @throws {RangeError} for a payload over `mtu - 28` (IPv6: `mtu - 48`)
   *   bytes, a zero address or a port outside 1..65535.
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
    const max = this.#host.maxPayloadFor(to.address);
    if (payload.length > max) {
      throw new RangeError(
        `UdpEndpoint.send: payload of ${payload.length} bytes exceeds ${max}, the most that ` +
          `fits in one IP packet (netisle does not fragment)`,
      );
    }
    if (!this.#host.hasRoute(to.address)) {
      throw new NetError(
        "EHOSTUNREACH",
        `UDP port ${this.port}: no route to ${formatIpAddress(to.address)} (not on the link)`,
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
    if (d) {
      this.#queuedBytes -= d.payload.length;
      // The copy is the caller's now: the session stops paying for it here.
      this.#host.memory.release(bufferCost(d.payload.byteLength));
    } else {
      this.#throwPendingError();
    }
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
   * throws it once, and waiting receivers are woken. ICMPv4 codes
   * "protocol" and "port unreachable", and ICMPv6's "port unreachable"
   * (`remoteAddr` IPv6, RFC 4443 §3.1 code 4), become ECONNREFUSED, the
   * others EHOSTUNREACH. Returns false when the quoted datagram was not to
   * the connected peer.
   */
  icmpError(remoteAddr: IpAddress, remotePort: number, icmpCode: number): boolean {
    const r = this.#remote;
    if (this.#closed || r === undefined || r.address !== remoteAddr || r.port !== remotePort) {
      return false;
    }
    const refused = isIpv6(remoteAddr)
      ? icmpCode === Icmpv6DestUnreachableCode.PORT
      : icmpCode === Icmpv4DestUnreachableCode.PORT ||
        icmpCode === Icmpv4DestUnreachableCode.PROTOCOL;
    const peer = isIpv6(remoteAddr)
      ? `[${formatIpAddress(remoteAddr)}]:${remotePort}`
      : `${formatIpAddress(remoteAddr)}:${remotePort}`;
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
    for (const d of this.#queue) this.#host.memory.release(bufferCost(d.payload.byteLength));
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
  deliver(src: IpAddress, srcPort: number, payload: Uint8Array): string | undefined {
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
    // Copy: the frame is borrowed. The copy is charged to the session's quota.
    if (!this.#host.memory.tryCharge(bufferCost(payload.length))) {
      this.stats.rxQuotaDrops++;
      return "udp_rcv_quota";
    }
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
