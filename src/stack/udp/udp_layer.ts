/**
 * The UDP layer of one stack (RFC 768, RFC 1122 §4.1): demultiplexing of
 * received datagrams by destination port, to a bound endpoint (an API
 * socket, {@linkcode UdpEndpoint}) or to one of the stack's own services
 * (DHCP, DNS: {@linkcode UdpService}), and the sending side of both.
 *
 * Dual-stack: a port is one port for both families, as a socket bound to
 * `::` with IPV6_V6ONLY off is on Linux. Datagrams over IPv6 come in
 * through {@linkcode UdpLayer.input} with IPv6 addresses and go out through
 * the IPv6 output given to {@linkcode UdpLayer.setIpv6}, with the checksum
 * that IPv6 makes mandatory (RFC 8200 §8.1).
 *
 * The layer never builds ICMP itself: {@linkcode UdpLayer.input} returns the
 * drop reason `udp_port_closed` (or `udp_peer_mismatch`) and the IP input of
 * the family, which holds the original IP datagram and the ICMP error rate
 * limiter, answers with a port unreachable (RFC 1122 §4.1.3.1, RFC 4443 §3.1).
 *
 * @module
 */

import { EphemeralPorts } from "../ephemeral_ports.ts";
import { MemoryQuota } from "../session_quota.ts";
import type { Ipv6Output } from "../ipv6_output.ts";
import { NetError } from "../../errors/net_error.ts";
import {
  IpProtocol,
  IPV4_HEADER_LEN,
  type Ipv4Address,
  IPV6_HEADER_LEN,
  type Ipv6Address,
  type MacAddress,
  UDP_HEADER_LEN,
  UdpPacket,
  UdpRepr,
} from "../../wire/mod.ts";
import { formatIpAddress, type IpAddress, isIpv6 } from "../../wire/ip_address.ts";
import { type UdpDestination, UdpEndpoint, type UdpHost } from "./udp_endpoint.ts";
import type {
  UdpService,
  UdpServiceDestination,
  UdpServiceOptions,
  UdpServiceSender,
} from "./udp_service.ts";

/** What the UDP layer needs from the stack below it. */
export interface UdpLayerDeps {
  /** The stack's IPv4 address (the source of every datagram sent). */
  localAddr: Ipv4Address;
  /** The link's IP MTU; a datagram must fit in one IP packet (no fragmentation). */
  mtu: number;
  /**
   * Sends an IPv4 packet whose payload `fill` writes in place; false when it
   * was dropped. With `dstMac` the frame goes to that MAC without ARP; with
   * `src` the packet comes from that address instead of the stack's.
   */
  sendIpv4With(
    dst: Ipv4Address,
    payloadLen: number,
    fill: (buf: Uint8Array) => void,
    now: number,
    dstMac?: MacAddress,
    src?: Ipv4Address,
  ): boolean;
  /** Whether the stack has a route to `dst` (on-link unicast or a broadcast address). */
  hasRoute(dst: Ipv4Address): boolean;
  /** Fills `buf` with random bytes (the start of the ephemeral port search). */
  random: (buf: Uint8Array) => void;
  /** Limits of the layer. */
  limits?: Partial<UdpLayerLimits>;
  /**
   * The session's memory quota, charged for every datagram queued to an
   * endpoint (the `bufferCost` of its copy) until it is read or the
   * endpoint closes. Unlimited when not given.
   */
  memory?: MemoryQuota;
}

/**
 * What the UDP layer needs of IPv6 to send: a part of the stack's `Ipv6Output`
 * (tests pass a fake).
 */
export type UdpIpv6Output = Pick<Ipv6Output, "addressing" | "hasRoute" | "sourceFor" | "send">;

/**
 * Where the UDP layer hands datagrams to addresses outside the session when
 * egress is on (the stack's {@linkcode StackEgress}). The payload is
 * borrowed: valid during the call only.
 */
export interface UdpEgressHook {
  /** Takes a verified datagram to an outside address; returns a drop reason or undefined. */
  datagram(
    d: {
      src: IpAddress;
      srcPort: number;
      dst: IpAddress;
      dstPort: number;
      payload: Uint8Array;
    },
    now: number,
  ): string | undefined;
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
 * - `udp_port_closed`: no endpoint is bound and no service listens on the
 *   destination port (a service that takes only datagrams to the stack's
 *   address does not hear broadcasts).
 * - `udp_peer_mismatch`: the endpoint is connected to another peer; as on
 *   Linux, the port counts as closed for this sender.
 * - `udp_queue_full`: the endpoint's receive queue is full.
 * - `udp_rcv_quota`: the session's memory quota refused the datagram's copy.
 * - `udp6_zero_checksum`: a datagram over IPv6 whose checksum field is 0,
 *   which IPv6 does not allow (RFC 8200 §8.1: "IPv6 receivers must discard
 *   UDP packets containing a zero checksum").
 */
export const UDP_DROP_REASONS: readonly string[] = [
  "udp_port_closed",
  "udp_peer_mismatch",
  "udp_queue_full",
  "udp_rcv_quota",
  "udp6_zero_checksum",
];

/** A service registered on a port, with its sender. */
interface ServiceEntry {
  service: UdpService;
  options: Required<UdpServiceOptions>;
  sender: UdpServiceSender;
}

/**
 * All UDP state of one stack: endpoints by local port (one per port; there is
 * no SO_REUSEADDR), the stack's services by port, and the objects with events
 * for their owners.
 *
 * Demux of a datagram for port P: the endpoint bound on P, else the service
 * on P (when it takes datagrams to this destination), else `udp_port_closed`.
 * An exclusive service keeps P free of endpoints; a fallback service (DNS)
 * steps aside while a socket is bound on P.
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
  /** Largest payload of one datagram over IPv4: the MTU less the IPv4 and UDP headers. */
  readonly maxPayload: number;
  /** Largest payload of one datagram over IPv6: the MTU less the IPv6 and UDP headers. */
  readonly maxPayload6: number;
  /** The session's memory quota (queued datagrams are charged to it). */
  readonly memory: MemoryQuota;
  /** Bound endpoints by local port (the stack's services are not endpoints). */
  readonly endpoints: ReadonlyMap<number, UdpEndpoint>;
  /** Counters of the layer (checksum and length errors are stack drop reasons). */
  readonly stats = {
    /** Datagrams queued to an endpoint. */
    rxDatagrams: 0,
    /** Datagrams handed to a service. */
    rxServiced: 0,
    /** Datagrams handed to the IP layer. */
    txDatagrams: 0,
  };
  #deps: UdpLayerDeps;
  #endpoints = new Map<number, UdpEndpoint>();
  #services = new Map<number, ServiceEntry>();
  #dirty: UdpEndpoint[] = [];
  #ephemeralPorts: EphemeralPorts;
  #egress: UdpEgressHook | undefined;
  #v6: UdpIpv6Output | undefined;

  /** Creates an empty layer; throws RangeError for a limit that is not a positive integer. */
  constructor(deps: UdpLayerDeps) {
    this.#deps = deps;
    this.localAddr = deps.localAddr;
    this.mtu = deps.mtu;
    this.maxPayload = deps.mtu - IPV4_HEADER_LEN - UDP_HEADER_LEN;
    this.maxPayload6 = deps.mtu - IPV6_HEADER_LEN - UDP_HEADER_LEN;
    this.limits = { ...DEFAULT_UDP_LAYER_LIMITS, ...deps.limits };
    for (const [k, v] of Object.entries(this.limits)) {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`UdpLayer: limits.${k} must be a positive integer, got ${v}`);
      }
    }
    this.memory = deps.memory ?? new MemoryQuota(Number.MAX_SAFE_INTEGER);
    this.endpoints = this.#endpoints;
    this.#ephemeralPorts = new EphemeralPorts("UDP", deps.random);
  }

  /**
   * Binds a local port. `port` 0 picks a free ephemeral one in 49152..65535
   * (RFC 6335 §6), searching from a random start.
   *
   * @throws {RangeError} when `port` is not an integer in 0..65535.
   * @throws {NetError} EADDRINUSE when the port is bound or held by an
   *   exclusive service (or no ephemeral port is free); EMFILE when the layer
   *   holds `limits.maxEndpoints` endpoints.
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
    const service = this.#services.get(port);
    if (service?.options.sharing === "exclusive") {
      throw new NetError(
        "EADDRINUSE",
        `UDP port ${port} is already in use by ${service.options.name}`,
      );
    }
    const p = port === 0 ? this.#ephemeral() : port;
    const ep = new UdpEndpoint(this, p);
    this.#endpoints.set(p, ep);
    return ep;
  }

  #ephemeral(): number {
    return this.#ephemeralPorts.pick((p) => this.#endpoints.has(p) || this.#services.has(p));
  }

  /**
   * Registers `service` on `port`: from now on it is called with each
   * datagram for the port that no bound endpoint takes (see
   * {@linkcode UdpServiceOptions} for how it shares the port).
   *
   * @throws {RangeError} when `port` is not an integer in 1..65535.
   * @throws {NetError} EADDRINUSE when a service is registered on the port,
   *   or (for an exclusive service) an endpoint is bound on it.
   */
  serve(port: number, service: UdpService, options: UdpServiceOptions = {}): void {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new RangeError(`UdpLayer.serve: port must be an integer in 1..65535, got ${port}`);
    }
    const o: Required<UdpServiceOptions> = {
      sharing: options.sharing ?? "exclusive",
      broadcast: options.broadcast ?? false,
      name: options.name ?? `the service on port ${port}`,
      family: options.family ?? "both",
    };
    const held = this.#services.get(port);
    if (held || (o.sharing === "exclusive" && this.#endpoints.has(port))) {
      throw new NetError(
        "EADDRINUSE",
        `UDP port ${port} is already in use${held ? ` by ${held.options.name}` : ""}`,
      );
    }
    const sender: UdpServiceSender = {
      port,
      send: (to, payload, now) => this.#sendFrom(port, to, payload, now),
    };
    this.#services.set(port, { service, options: o, sender });
  }

  /**
   * Sets (or, with undefined, removes) where datagrams to outside addresses
   * go: see {@linkcode UdpLayer.inputOutside}.
   */
  setEgress(hook: UdpEgressHook | undefined): void {
    this.#egress = hook;
  }

  /**
   * Sets (or, with undefined, removes) the IPv6 output: with it, datagrams
   * to IPv6 addresses can be sent, and those received over IPv6 reach the
   * same endpoints and services as IPv4's. Without it, IPv6 destinations
   * have no route.
   */
  setIpv6(out: UdpIpv6Output | undefined): void {
    this.#v6 = out;
  }

  /** The largest payload of one datagram to `dst`'s family (the link MTU less the headers). */
  maxPayloadFor(dst: IpAddress): number {
    return isIpv6(dst) ? this.maxPayload6 : this.maxPayload;
  }

  /** Removes the service on `port`, if any. */
  unserve(port: number): void {
    this.#services.delete(port);
  }

  /** The ports the stack's services listen on, ascending. */
  get servicePorts(): number[] {
    return [...this.#services.keys()].sort((a, b) => a - b);
  }

  /**
   * Processes a UDP datagram for `dst` (our address, a broadcast address or
   * a group the stack joined; the IP layer checked) from `src`, both of one
   * family: verifies length and checksum (RFC 768; over IPv4 a zero
   * checksum means none, RFC 1122 §4.1.3.4; over IPv6 it is dropped as
   * `udp6_zero_checksum`, RFC 8200 §8.1) and hands it to the endpoint bound
   * on its destination port, else to the service there. Returns a drop
   * reason, or undefined when the datagram was queued or used.
   *
   * For `udp_port_closed` and `udp_peer_mismatch` the caller should answer
   * with an ICMP port unreachable, unless `dst` is a broadcast or multicast
   * address (RFC 1122 §4.1.3.1, §3.2.2; RFC 4443 §2.4 (e)).
   */
  input(src: IpAddress, dst: IpAddress, bytes: Uint8Array, now: number): string | undefined {
    const pkt = UdpPacket.parse(bytes);
    if (!pkt.ok) return pkt.reason;
    if (isIpv6(src) && pkt.value.checksum === 0) return "udp6_zero_checksum";
    const parsed = UdpRepr.parse(pkt.value, src, dst);
    if (!parsed.ok) return parsed.reason;
    const d = parsed.value;
    const ep = this.#endpoints.get(d.dstPort);
    if (ep !== undefined) {
      const reason = ep.deliver(src, d.srcPort, d.payload);
      if (reason === undefined) this.stats.rxDatagrams++;
      return reason;
    }
    const s = this.#services.get(d.dstPort);
    if (s === undefined || (!s.options.broadcast && !this.#isOwnAddress(dst))) {
      return "udp_port_closed";
    }
    const family = s.options.family;
    if (family !== "both" && family !== (isIpv6(dst) ? "ipv6" : "ipv4")) return "udp_port_closed";
    this.stats.rxServiced++;
    return s.service.receive(
      { src, srcPort: d.srcPort, dst, dstPort: d.dstPort, payload: d.payload },
      s.sender,
      now,
    );
  }

  /**
   * Processes a UDP datagram from `src` (on the link) to `dst`, an address
   * outside the session (IPv4 or IPv6, both of one family): verifies length
   * and checksum (RFC 768; mandatory over IPv6, RFC 8200 §8.1) and hands it
   * to the egress hook. Without one (egress off) it is `udp_port_closed`.
   * Endpoints and services never see these: their ports are the stack's.
   */
  inputOutside(
    src: IpAddress,
    dst: IpAddress,
    bytes: Uint8Array,
    now: number,
  ): string | undefined {
    const pkt = UdpPacket.parse(bytes);
    if (!pkt.ok) return pkt.reason;
    if (isIpv6(src) && pkt.value.checksum === 0) return "udp6_zero_checksum";
    const parsed = UdpRepr.parse(pkt.value, src, dst);
    if (!parsed.ok) return parsed.reason;
    const d = parsed.value;
    if (this.#egress === undefined) return "udp_port_closed";
    return this.#egress.datagram(
      { src, srcPort: d.srcPort, dst, dstPort: d.dstPort, payload: d.payload },
      now,
    );
  }

  /**
   * Sends one datagram from `from` (any address: the egress gateway relays
   * replies from outside addresses; without one, the stack's address of
   * `to`'s family) to `to`; the checksum is computed over that source (RFC
   * 768). False when the IP layer dropped it.
   *
   * @throws {RangeError} when `from.address` and `to.address` are of
   *   different families.
   */
  sendFrom(
    from: { address?: IpAddress; port: number },
    to: UdpServiceDestination,
    payload: Uint8Array,
    now: number,
  ): boolean {
    return this.#sendFrom(from.port, to, payload, now, from.address);
  }

  /**
   * An ICMP destination unreachable quoting a datagram we sent from
   * `localPort` to `remoteAddr:remotePort` (RFC 1122 §4.1.3.3), or an ICMPv6
   * one (RFC 4443 §3.1; `icmpCode` is then ICMPv6's). Returns a drop reason
   * when no connected endpoint sent it.
   */
  icmpError(
    remoteAddr: IpAddress,
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

  /** Whether `dst` is one of the stack's unicast addresses (of either family). */
  #isOwnAddress(dst: IpAddress): boolean {
    if (!isIpv6(dst)) return dst === this.localAddr;
    const a = this.#v6?.addressing;
    return a !== undefined && (dst === a.address || dst === a.linkLocal);
  }

  /**
   * Emits one datagram from `srcPort`; the checksum is always computed (RFC
   * 768, RFC 8200 §8.1). The source is `src`, else `to.src`, else the
   * stack's address of the destination's family.
   */
  #sendFrom(
    srcPort: number,
    to: UdpServiceDestination,
    payload: Uint8Array,
    now: number,
    from?: IpAddress,
  ): boolean {
    const repr: UdpRepr = { srcPort, dstPort: to.port, payload };
    const dst = to.address;
    const given = from ?? to.src;
    if (given !== undefined && isIpv6(given) !== isIpv6(dst)) {
      throw new RangeError(
        `UdpLayer: source ${formatIpAddress(given)} and destination ${
          formatIpAddress(dst)
        } are of different families`,
      );
    }
    if (isIpv6(dst)) {
      const out = this.#v6;
      if (out === undefined) return false;
      const src6 = (given as Ipv6Address | undefined) ?? out.sourceFor(dst);
      const sent = out.send(
        src6,
        dst,
        IpProtocol.UDP,
        UdpRepr.bufferLen(repr),
        (buf) => UdpRepr.emit(repr, buf, src6, dst),
        now,
      );
      if (sent) this.stats.txDatagrams++;
      return sent;
    }
    const src = (given as Ipv4Address | undefined) ?? this.localAddr;
    const ok = this.#deps.sendIpv4With(
      dst,
      UdpRepr.bufferLen(repr),
      (buf) => UdpRepr.emit(repr, buf, src, dst),
      now,
      to.dstMac,
      src === this.localAddr ? undefined : src,
    );
    if (ok) this.stats.txDatagrams++;
    return ok;
  }

  // ------------------------------------------------------------ UdpHost

  /**
   * Whether the stack can send to `dst`: {@linkcode UdpLayerDeps.hasRoute}
   * for IPv4, the IPv6 output's route for IPv6 (none without IPv6).
   */
  hasRoute(dst: IpAddress): boolean {
    if (isIpv6(dst)) return this.#v6?.hasRoute(dst) ?? false;
    return this.#deps.hasRoute(dst);
  }

  /** Emits a datagram of `ep`; the checksum is always computed (RFC 768). */
  transmit(ep: UdpEndpoint, dst: UdpDestination, payload: Uint8Array, now: number): boolean {
    return this.#sendFrom(ep.port, dst, payload, now);
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
