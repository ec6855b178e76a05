/**
 * UDP sockets over the core (RFC 768): bind a port, optionally connect to one
 * peer, send datagrams, and receive them with a timeout or an abort signal.
 * Every call enters the core through the session's core lock; the core's
 * events wake waiting receivers after the lock is released.
 *
 * @module
 */

import { UdpEvent } from "../stack/udp/mod.ts";
import type { UdpEndpoint, UdpEndpointStats } from "../stack/udp/mod.ts";
import { formatIpAddress, type IpAddress, toIpAddress } from "../wire/mod.ts";
import { NetError } from "../errors/net_error.ts";
import type { CoreAccess } from "./tcp_socket.ts";
import { Waiters } from "./waiters.ts";

/** A datagram as {@linkcode UdpSocket.receive} returns it. */
export interface UdpReceived {
  /** The payload. */
  data: Uint8Array;
  /** The sender's address, dotted quad. */
  address: string;
  /** The sender's port. */
  port: number;
}

/** An IPv4 address and port in the form the API reports them. */
export interface UdpSocketAddress {
  /** Dotted quad. */
  address: string;
  /** Port number. */
  port: number;
}

/** A snapshot of a UDP socket for listings and the HTTP API. */
export interface UdpSocketInfo {
  /** Always `udp`. */
  protocol: "udp";
  /** `bound`, `connected` or `closed`. */
  state: "bound" | "connected" | "closed";
  /** The local address and port. */
  local: UdpSocketAddress;
  /** The connected peer, or null. */
  remote: UdpSocketAddress | null;
  /** Payload bytes waiting to be received. */
  queuedBytes: number;
  /** Datagrams waiting to be received. */
  queuedDatagrams: number;
  /** The endpoint's counters. */
  stats: UdpEndpointStats;
}

/** Options of {@linkcode UdpSocket.bind}. */
export interface UdpBindOptions {
  /** Local port; 0 or absent picks an ephemeral one (49152..65535). */
  port?: number;
}

/** Options of {@linkcode UdpSocket.receive}. */
export interface UdpReceiveOptions {
  /** Rejects with the signal's reason when it aborts. */
  signal?: AbortSignal;
  /** Rejects with NetError ETIMEDOUT when nothing arrives in this many milliseconds. */
  timeoutMs?: number;
}

function toAddress(where: string, address: string | IpAddress): IpAddress {
  try {
    return toIpAddress(address);
  } catch (err) {
    throw new TypeError(
      `${where}: address must be an IPv4 (dotted quad) or IPv6 address, got "${address}"`,
      { cause: err },
    );
  }
}

/**
 * A UDP socket: one bound local port with a bounded receive queue.
 *
 * - Unconnected, it receives from anyone and `send()` needs a destination.
 * - After {@linkcode UdpSocket.connect} it receives only from the peer, and
 *   `send()` without a destination goes there.
 * - Datagrams are never fragmented: a payload over `mtu - 28` bytes (`mtu -
 *   48` over IPv6) throws RangeError.
 * - One port takes both families: an IPv6 peer is reached from the stack's
 *   IPv6 address.
 *
 * @example
 * ```ts
 * const sock = UdpSocket.bind(session, { port: 7 });
 * const d = await sock.receive({ timeoutMs: 5000 });
 * sock.send(d.data, { address: d.address, port: d.port }); // echo
 * sock.close();
 * ```
 */
export class UdpSocket {
  /** The core endpoint (touch it only under the core lock). */
  readonly endpoint: UdpEndpoint;
  #core: CoreAccess;
  #readWaiters = new Waiters();
  #localAddress: string;

  /** Wraps a bound core endpoint (see {@linkcode UdpSocket.bind}). */
  constructor(core: CoreAccess, endpoint: UdpEndpoint, localAddress: IpAddress) {
    this.#core = core;
    this.endpoint = endpoint;
    this.#localAddress = formatIpAddress(localAddress);
    endpoint.owner = this;
  }

  /**
   * Binds a local port (0 or absent: ephemeral).
   *
   * @throws {NetError} EADDRINUSE when the port is bound, EMFILE at the
   *   stack's endpoint limit.
   * @throws {RangeError} when the port is not an integer in 0..65535.
   */
  static bind(core: CoreAccess, options: UdpBindOptions = {}): UdpSocket {
    const { ep, addr } = core.withCore((stack) => ({
      ep: stack.udp.bind(options.port ?? 0),
      addr: stack.config.ipv4.address,
    }));
    return new UdpSocket(core, ep, addr);
  }

  /** Called by the session, outside the core lock, with the events raised since last time. */
  onEvents(bits: number): void {
    if (bits & (UdpEvent.READABLE | UdpEvent.CLOSED)) this.#readWaiters.wakeAll();
  }

  /** The local address and port. */
  get local(): UdpSocketAddress {
    return { address: this.#localAddress, port: this.endpoint.port };
  }

  /** The connected peer, or undefined. */
  get remote(): UdpSocketAddress | undefined {
    const r = this.endpoint.remote;
    return r ? { address: formatIpAddress(r.address), port: r.port } : undefined;
  }

  /** Whether {@linkcode UdpSocket.close} ran. */
  get closed(): boolean {
    return this.endpoint.closed;
  }

  /**
   * Connects to one peer (no packet is sent): only its datagrams are
   * received from now on, and `send()` without a destination goes to it.
   *
   * @throws {TypeError} for an address that does not parse.
   * @throws {RangeError} for address 0.0.0.0 or a port outside 1..65535.
   * @throws {NetError} ENOTCONN when the socket is closed.
   */
  connect(address: string | IpAddress, port: number): void {
    const addr = toAddress("UdpSocket.connect", address);
    this.#core.withCore(() => this.endpoint.connect(addr, port));
  }

  /** Dissolves the association made by {@linkcode UdpSocket.connect}. */
  disconnect(): void {
    this.#core.withCore(() => this.endpoint.disconnect());
  }

  /**
   * Sends one datagram to `to`, or to the connected peer. Returns true when
   * it went to the link (or waits for ARP resolution), false when the stack
   * dropped it at once (its ARP queue for the peer was full).
   *
   * @throws {NetError} ENOTCONN without a destination or when closed;
   *   EHOSTUNREACH when the address is not on the link.
   * @throws {RangeError} for a payload over `mtu - 28` bytes (no
   *   fragmentation), address 0.0.0.0 or a port outside 1..65535.
   * @throws {TypeError} for an address that does not parse.
   */
  send(data: Uint8Array, to?: { address: string | IpAddress; port: number }): boolean {
    const dst = to
      ? { address: toAddress("UdpSocket.send", to.address), port: to.port }
      : undefined;
    return this.#core.withCore((_s, now) => this.endpoint.send(data, now, dst));
  }

  /**
   * Takes the oldest queued datagram now, or undefined when none waits.
   *
   * @throws {NetError} ENOTCONN when the socket is closed.
   */
  tryReceive(): UdpReceived | undefined {
    const d = this.#core.withCore(() => {
      if (this.endpoint.closed) {
        throw new NetError("ENOTCONN", `UDP port ${this.endpoint.port}: the socket is closed`);
      }
      return this.endpoint.receive();
    });
    return d ? { data: d.payload, address: formatIpAddress(d.src), port: d.srcPort } : undefined;
  }

  /**
   * Waits for the next datagram.
   *
   * @throws {NetError} ETIMEDOUT when `timeoutMs` passes first; ENOTCONN when
   *   the socket is (or gets) closed. An aborted `signal` rejects with its reason.
   */
  receive(options: UdpReceiveOptions = {}): Promise<UdpReceived> {
    return this.#readWaiters.until(
      this.#core.clock,
      options,
      () => this.tryReceive(),
      () =>
        new NetError(
          "ETIMEDOUT",
          `UDP port ${this.endpoint.port}: no datagram arrived within ${options.timeoutMs} ms`,
        ),
    );
  }

  /** Frees the port and discards queued datagrams; pending receives reject with ENOTCONN. */
  close(): void {
    this.#core.withCore(() => this.endpoint.close());
    // The CLOSED event wakes them too; waking now does not depend on the session.
    this.#readWaiters.wakeAll();
  }

  /** A snapshot of the socket. */
  info(): UdpSocketInfo {
    const ep = this.endpoint;
    const remote = this.remote;
    return {
      protocol: "udp",
      state: ep.closed ? "closed" : remote ? "connected" : "bound",
      local: this.local,
      remote: remote ?? null,
      queuedBytes: ep.queuedBytes,
      queuedDatagrams: ep.queuedDatagrams,
      stats: { ...ep.stats },
    };
  }

  /** Number of callers waiting on this socket (for leak tests). */
  get waiterCount(): number {
    return this.#readWaiters.size;
  }
}
