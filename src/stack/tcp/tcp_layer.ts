/**
 * The TCP layer of one stack: control blocks on lists as in lwIP (bound,
 * listen, active, time-wait), demultiplexing in the order active, time-wait,
 * listen (RFC 9293 §3.10.7), RSTs for segments to nowhere, listeners with a
 * bounded SYN backlog that falls back to SYN cookies (RFC 4987 §3.6), the
 * rate limits of the ACKs it sends for segments it does not take (RFC 5961
 * §7), martian filtering (RFC 1122 §3.2.1.3, RFC 1812 §5.3.7), and the
 * session's quotas: every passively opened connection holds a socket unit
 * until the API accepts it, and every byte the core holds is charged.
 *
 * @module
 */

import { EphemeralPorts } from "../ephemeral_ports.ts";
import { NetError } from "../../errors/net_error.ts";
import {
  cloneTcpRepr,
  formatIpAddress,
  type IpAddress,
  IpProtocol,
  type Ipv4Address,
  ipv4Netmask,
  ipv4SubnetBroadcast,
  isIpv4MartianSource,
  isIpv4Unicast,
  isIpv6Unicast,
  TcpFlags,
  TcpRepr,
  TcpSegment,
} from "../../wire/mod.ts";
import type { SessionQuota } from "../session_quota.ts";
import type { PacketOutput, TxPacket } from "../tx_packet.ts";
import type { Ipv6Output } from "../ipv6_output.ts";
import { FrameOffload } from "../frame_offload.ts";
import { AckRateLimiter } from "./ack_rate_limiter.ts";
import { IsnGenerator, SynCookieCodec } from "./isn.ts";
import { seqAdd } from "./seq.ts";
import { resolveTcpConfig, type TcpConfig } from "./tcp_config.ts";
import { TcpConnection, type TcpHost } from "./tcp_connection.ts";
import { checkTcpInvariants } from "./tcp_invariants.ts";
import { TcpTimerQueue } from "./tcp_timers.ts";
import { LISTENER_ACCEPTABLE, TcpListener, type TcpListenerHost } from "./tcp_listener.ts";
import {
  egressKey,
  type HeldSyn,
  HeldSyns,
  TCP_EGRESS_DROP_REASONS,
  type TcpEgressHook,
} from "./tcp_egress.ts";

/** What the TCP layer needs from the stack below it. */
export interface TcpLayerDeps {
  /** The stack's IPv4 address. */
  localAddr: Ipv4Address;
  /** The prefix length of the stack's subnet (for its network and broadcast addresses). */
  prefixLength: number;
  /** The link's IP MTU. */
  mtu: number;
  /**
   * The session's quotas: `memory` is charged for every byte the layer's
   * connections hold (receive queues, out-of-order pages, send buffers);
   * `sockets` gives a unit to every passively opened connection.
   */
  quota: SessionQuota;
  /** Where segments go: IPv4 output, which builds each packet in place. */
  out: PacketOutput;
  /** Fills `buf` with random bytes (keys for ISNs and SYN cookies). */
  random: (buf: Uint8Array) => void;
  /** Defaults for every connection of this stack. */
  config?: Partial<TcpConfig>;
  /** Limits of the layer. */
  limits?: Partial<TcpLayerLimits>;
}

/**
 * The IPv6 side of the stack as TCP uses it: a part of the stack's
 * `Ipv6Output` (packets begun in place, the stack's addresses, the link's
 * prefix, source selection per RFC 6724).
 */
export type TcpIpv6Output = Pick<
  Ipv6Output,
  "begin" | "commit" | "addressing" | "isOnLink" | "sourceFor"
>;

/** Limits of one TCP layer. */
export interface TcpLayerLimits {
  /** Connections (active and time-wait) before new ones are refused. */
  maxConnections: number;
  /** Challenge ACKs per second for the whole stack (RFC 5961 §7). */
  challengeAcksPerSecond: number;
  /**
   * ACKs per second for the whole stack in answer to unacceptable segments
   * (RFC 9293 §3.10.7.4: out of window, PAWS, unsent data acknowledged,
   * data the memory quota cannot hold).
   */
  unacceptableAcksPerSecond: number;
  /** Largest listen backlog accepted. */
  maxBacklog: number;
  /** SYNs to outside addresses held for the egress gateway at once (RST beyond). */
  maxHeldSyns: number;
}

/** Defaults for {@linkcode TcpLayerLimits}. */
export const DEFAULT_TCP_LAYER_LIMITS: TcpLayerLimits = {
  maxConnections: 4096,
  challengeAcksPerSecond: 100,
  unacceptableAcksPerSecond: 100,
  maxBacklog: 1024,
  maxHeldSyns: 64,
};

/** Reasons the TCP layer drops segments (pre-registered as counters). */
export const TCP_DROP_REASONS: readonly string[] = [
  "tcp_port_closed",
  "tcp_broadcast",
  "tcp_rst_to_listener",
  "tcp_bad_cookie",
  "tcp_listen_bad_segment",
  "tcp_accept_queue_full",
  "tcp_connection_limit",
  "tcp_closed",
  "tcp_paws_rejected",
  "tcp_out_of_window",
  "tcp_rst_out_of_window",
  "tcp_rst_challenged",
  "tcp_rst_in_time_wait",
  "tcp_syn_challenged",
  "tcp_no_ack",
  "tcp_bad_ack",
  "tcp_no_syn",
  "tcp_ack_unsent",
  "tcp_ack_too_old",
  "tcp_rcv_quota",
  "tcp_accept_quota",
  "tcp_martian_source",
  "icmp_frag_needed_ignored",
  ...TCP_EGRESS_DROP_REASONS,
];

/**
 * All TCP state of one stack.
 *
 * @example
 * ```ts
 * const tcp = new TcpLayer({ localAddr, prefixLength: 24, mtu: 1500, quota, out, random });
 * const listener = tcp.listen(8080, 128);
 * ```
 */
export class TcpLayer implements TcpHost {
  readonly localAddr: Ipv4Address;
  readonly mtu: number;
  readonly config: TcpConfig;
  readonly limits: TcpLayerLimits;
  /** Listen pcbs by port. */
  readonly listeners = new Map<number, TcpListener>();
  /** Active pcbs by 4-tuple key. */
  readonly active = new Map<string, TcpConnection>();
  /** Time-wait pcbs by 4-tuple key. */
  readonly timeWait = new Map<string, TcpConnection>();
  /** Bound pcbs: ports reserved by bind() before listen or connect, with a count. */
  readonly bound = new Map<number, number>();
  /** Objects with events for their owners, in the order they were raised. */
  dirty: Array<TcpConnection | TcpListener> = [];
  /** Counters of the layer. */
  readonly stats = {
    rstsSent: 0,
    challengeAcksLimited: 0,
    /** ACKs for unacceptable segments not sent because of the rate limit. */
    unacceptableAcksLimited: 0,
    synCookiesSent: 0,
    synCookiesAccepted: 0,
  };
  /** The session's quotas (see {@linkcode TcpLayerDeps.quota}). */
  readonly quota: SessionQuota;
  /** Every connection's timers, by deadline. */
  readonly timerQueue: TcpTimerQueue = new TcpTimerQueue();
  /** What the link takes (`LinkOffload` bits), set through `Stack.setLinkOffload`. */
  linkOffload = 0;
  #serial = 0;
  #deps: TcpLayerDeps;
  #isn: IsnGenerator;
  #listenerHost: TcpListenerHost;
  #portUse = new Map<number, number>();
  #ephemeralPorts: EphemeralPorts;
  #lastHit: TcpConnection | undefined;
  readonly #rx = new TcpSegment();
  #challengeAcks: AckRateLimiter;
  #unacceptableAcks: AckRateLimiter;
  #prefixLength: number;
  #network: Ipv4Address;
  #broadcast: Ipv4Address;
  #egress: TcpEgressHook | undefined;
  #v6: TcpIpv6Output | undefined;
  /** The output the segment begun with `beginSegment` goes through. */
  #txOut: PacketOutput<IpAddress> | undefined;
  /** SYNs to outside addresses waiting for the gateway's answer. */
  readonly heldSyns: HeldSyns;

  /** Creates an empty layer. */
  constructor(deps: TcpLayerDeps) {
    this.#deps = deps;
    this.localAddr = deps.localAddr;
    this.mtu = deps.mtu;
    this.quota = deps.quota;
    this.config = resolveTcpConfig(deps.config);
    this.limits = { ...DEFAULT_TCP_LAYER_LIMITS, ...deps.limits };
    this.#challengeAcks = new AckRateLimiter(this.limits.challengeAcksPerSecond);
    this.#unacceptableAcks = new AckRateLimiter(this.limits.unacceptableAcksPerSecond);
    this.#prefixLength = deps.prefixLength;
    this.#network = (deps.localAddr & ipv4Netmask(deps.prefixLength)) >>> 0;
    this.#broadcast = ipv4SubnetBroadcast(deps.localAddr, deps.prefixLength);
    this.#isn = new IsnGenerator(deps.random);
    this.#listenerHost = {
      mtu: this.mtu,
      synCookies: new SynCookieCodec(deps.random),
      quota: deps.quota,
      stats: this.stats,
      hasRoomForConnection: () => this.connectionCount < this.limits.maxConnections,
      nextIss: (localAddr, localPort, remoteAddr, remotePort, now) =>
        this.#isn.next(localAddr, localPort, remoteAddr, remotePort, now),
      openPassive: (l, local, src, srcPort, now, iss, takeUnit) =>
        this.#openPassive(l, local, src, srcPort, now, iss, takeUnit),
      reset: (src, seg, now, from) => this.#rstForNowhere(src, seg, now, from),
      emitRepr: (dst, repr, now, from) => this.#emitRepr(dst, repr, now, from),
    };
    this.#ephemeralPorts = new EphemeralPorts("TCP", deps.random);
    this.heldSyns = new HeldSyns(this.limits.maxHeldSyns);
  }

  /**
   * Sets (or, with undefined, removes) where SYNs to outside addresses are
   * reported: see {@linkcode TcpLayer.inputOutside}.
   */
  setEgress(hook: TcpEgressHook | undefined): void {
    this.#egress = hook;
  }

  /**
   * Runs TCP over IPv6 too (or, with undefined, IPv4 only): segments from
   * {@linkcode TcpLayer.input} with IPv6 addresses reach the same
   * listeners (a listener takes both families, as a dual-stack socket does),
   * and {@linkcode TcpLayer.connect} takes IPv6 peers on the link.
   */
  setIpv6(out: TcpIpv6Output | undefined): void {
    this.#v6 = out;
  }

  /** Whether the stack runs TCP over IPv6. */
  get hasIpv6(): boolean {
    return this.#v6 !== undefined;
  }

  /**
   * Whether `addr` is one of the stack's own addresses: its IPv4 address,
   * or (with IPv6) its IPv6 or link-local address. Connections on other
   * local addresses are egress connections.
   */
  ownsAddress(addr: IpAddress): boolean {
    if (typeof addr === "number") return addr === this.localAddr;
    const a = this.#v6?.addressing;
    return a !== undefined && (addr === a.address || addr === a.linkLocal);
  }

  /** Number of connections on the active and time-wait lists. */
  get connectionCount(): number {
    return this.active.size + this.timeWait.size;
  }

  // ------------------------------------------------------------ ports

  /**
   * Reserves a local port for a socket (an lwIP bound pcb). `port` 0 picks an
   * ephemeral one. Throws NetError EADDRINUSE when a listener or another bound
   * socket holds it.
   */
  bindPort(port: number): number {
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new RangeError(`bindPort: port must be an integer in 0..65535, got ${port}`);
    }
    const p = port === 0 ? this.#ephemeral() : port;
    if (port !== 0 && (this.listeners.has(p) || this.bound.has(p))) {
      throw new NetError("EADDRINUSE", `TCP port ${p} is already in use`);
    }
    this.bound.set(p, (this.bound.get(p) ?? 0) + 1);
    this.#usePort(p, 1);
    return p;
  }

  /** Releases a reservation made by {@linkcode TcpLayer.bindPort}. */
  unbindPort(port: number): void {
    const n = this.bound.get(port);
    if (n === undefined) return;
    if (n <= 1) this.bound.delete(port);
    else this.bound.set(port, n - 1);
    this.#usePort(port, -1);
  }

  #usePort(port: number, delta: number): void {
    const n = (this.#portUse.get(port) ?? 0) + delta;
    if (n <= 0) this.#portUse.delete(port);
    else this.#portUse.set(port, n);
  }

  #ephemeral(): number {
    return this.#ephemeralPorts.pick((p) => this.#portUse.has(p));
  }

  // ------------------------------------------------------------ opening

  /**
   * Starts listening on `port` (RFC 9293 §3.10.1 passive OPEN). A port bound
   * with {@linkcode TcpLayer.bindPort} becomes the listener's; the reservation
   * passes to the listener.
   */
  listen(
    port: number,
    backlog: number,
    config?: Partial<TcpConfig>,
    fromBound = false,
  ): TcpListener {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new RangeError(`listen: port must be an integer in 1..65535, got ${port}`);
    }
    if (this.listeners.has(port)) {
      throw new NetError("EADDRINUSE", `TCP port ${port} already has a listener`);
    }
    if (!fromBound && this.bound.has(port)) {
      throw new NetError("EADDRINUSE", `TCP port ${port} is bound`);
    }
    const b = Math.max(1, Math.min(Math.floor(backlog), this.limits.maxBacklog));
    const l = new TcpListener(
      port,
      b,
      resolveTcpConfig({ ...this.config, ...config }),
      this.#listenerHost,
    );
    if (fromBound) this.unbindPort(port);
    this.listeners.set(port, l);
    this.#usePort(port, 1);
    return l;
  }

  /** Stops a listener and resets the connections still waiting in its queues. */
  closeListener(l: TcpListener, now: number): void {
    if (l.closed) return;
    l.closed = true;
    if (this.listeners.get(l.port) === l) this.listeners.delete(l.port);
    this.#usePort(l.port, -1);
    for (const c of [...l.synQueue, ...l.acceptQueue]) c.abort(now);
    l.synQueue.clear();
    l.acceptQueue.length = 0;
  }

  /**
   * Aborts everything the layer holds: every listener (resetting its queued
   * connections), every connection (RST when synchronized, RFC 9293 §3.10.5),
   * time-wait ones included, and every bound port. Used when a session ends;
   * afterwards the bound, listen, active and time-wait lists are all empty,
   * and no SYN is held for egress.
   */
  abortAll(now: number): void {
    this.heldSyns.clear();
    for (const l of [...this.listeners.values()]) this.closeListener(l, now);
    for (const c of [...this.active.values(), ...this.timeWait.values()]) c.abort(now);
    for (const port of [...this.bound.keys()]) {
      while (this.bound.has(port)) this.unbindPort(port);
    }
  }

  /**
   * Active open (RFC 9293 §3.10.1): creates a connection in SYN_SENT and sends
   * the SYN. `localPort` 0 picks an ephemeral port; a port reserved with
   * {@linkcode TcpLayer.bindPort} passes its reservation to the connection.
   */
  connect(
    remoteAddr: IpAddress,
    remotePort: number,
    now: number,
    options: { localPort?: number; fromBound?: boolean; config?: Partial<TcpConfig> } = {},
  ): TcpConnection {
    if (!Number.isInteger(remotePort) || remotePort < 1 || remotePort > 65535) {
      throw new RangeError(`connect: port must be an integer in 1..65535, got ${remotePort}`);
    }
    if (!this.#unicastPeer(remoteAddr)) {
      throw new NetError(
        "EINVAL",
        typeof remoteAddr === "string"
          ? `cannot connect to ${formatIpAddress(remoteAddr)}: ${
            this.#v6 === undefined
              ? "the session has no IPv6"
              : "not a unicast IPv6 address on the session's link (its /64 prefix or fe80::/64)"
          }`
          : `cannot connect to ${
            formatIpAddress(remoteAddr)
          }: not a unicast host address (broadcast, multicast, loopback, 0/8 and 240/4 are refused)`,
      );
    }
    const localAddr = typeof remoteAddr === "string"
      ? this.#v6!.sourceFor(remoteAddr)
      : this.localAddr;
    if (this.connectionCount >= this.limits.maxConnections) {
      throw new NetError(
        "EMFILE",
        `this stack holds its maximum of ${this.limits.maxConnections} TCP connections`,
      );
    }
    let localPort = options.localPort ?? 0;
    if (localPort === 0) localPort = this.#ephemeral();
    const key = tupleKey(remoteAddr, remotePort, localPort, localAddr);
    if (this.active.has(key) || this.timeWait.has(key)) {
      throw new NetError(
        "EADDRINUSE",
        `a connection from port ${localPort} to that peer already exists`,
      );
    }
    const conn = this.#newConnection(
      key,
      localPort,
      remoteAddr,
      remotePort,
      now,
      "SYN_SENT",
      { ...this.config, ...options.config },
      undefined,
      localAddr,
    );
    if (options.fromBound) this.unbindPort(localPort);
    this.active.set(key, conn);
    this.#usePort(localPort, 1);
    conn.connect(now);
    return conn;
  }

  /**
   * Whether `addr` can be a TCP peer (RFC 1122 §3.2.1.3, RFC 1812 §5.3.7): a
   * unicast host address, not the subnet's network or broadcast address; an
   * IPv6 peer is a unicast address on the link that is not the stack's own.
   */
  #unicastPeer(addr: IpAddress): boolean {
    if (typeof addr === "string") {
      const v6 = this.#v6;
      return v6 !== undefined && isIpv6Unicast(addr) && v6.isOnLink(addr) &&
        !this.ownsAddress(addr);
    }
    if (!isIpv4Unicast(addr)) return false;
    // RFC 3021: a /31 (or /32) has no network or broadcast address.
    return this.#prefixLength >= 31 || (addr !== this.#network && addr !== this.#broadcast);
  }

  #newConnection(
    key: string,
    localPort: number,
    remoteAddr: IpAddress,
    remotePort: number,
    now: number,
    state: "SYN_SENT" | "SYN_RECEIVED",
    config: Partial<TcpConfig>,
    iss?: number,
    localAddr: IpAddress = this.localAddr,
  ): TcpConnection {
    const off = new Uint8Array(4);
    this.#deps.random(off);
    return new TcpConnection({
      host: this,
      key,
      localAddr,
      localPort,
      remoteAddr,
      remotePort,
      config: resolveTcpConfig(config),
      iss: iss ?? this.#isn.next(localAddr, localPort, remoteAddr, remotePort, now),
      mtu: this.mtu,
      tsOffset: ((off[0] << 24) | (off[1] << 16) | (off[2] << 8) | off[3]) >>> 0,
      state,
      holdsQuotaUnit: false,
      serial: ++this.#serial,
    });
  }

  // ------------------------------------------------------------ input

  /**
   * Processes a TCP segment for `dst` from `src` (the IP layer validated the
   * addresses); its checksum is not verified when the link vouched for it
   * (`offload` has `FrameOffload.CSUM_VALID`). A segment may be larger than
   * the MSS (a GSO packet the link passed whole): it is taken as the
   * segments it stands for would be. Both addresses are of one family: over
   * IPv6, `dst` is one of the stack's addresses or a group it joined.
   * Returns a drop reason, or undefined when the segment was used.
   */
  input(
    src: IpAddress,
    dst: IpAddress,
    bytes: Uint8Array,
    now: number,
    offload = 0,
  ): string | undefined {
    // One segment object for every input: nothing keeps it past this call.
    const seg = this.#rx;
    const reason = seg.parse(bytes, src, dst, (offload & FrameOffload.CSUM_VALID) !== 0);
    if (reason !== undefined) return reason;
    if (!this.ownsAddress(dst)) return "tcp_broadcast";

    let conn = this.#lastHit;
    if (
      conn === undefined || conn.remotePort !== seg.srcPort || conn.localPort !== seg.dstPort ||
      conn.remoteAddr !== src || conn.localAddr !== dst || conn.state === "CLOSED"
    ) {
      const key = tupleKey(src, seg.srcPort, seg.dstPort, dst);
      conn = this.active.get(key);
      if (conn === undefined) {
        const tw = this.timeWait.get(key);
        if (tw !== undefined) {
          const listener = this.listeners.get(seg.dstPort);
          if (
            (seg.flags & (TcpFlags.SYN | TcpFlags.ACK | TcpFlags.RST)) === TcpFlags.SYN &&
            listener && tw.acceptsNewSyn(seg)
          ) {
            // RFC 9293 §3.10.7.4 / RFC 6191: a new incarnation may take over TIME_WAIT.
            const floor = seqAdd(tw.sndNxt, 128_000);
            tw.abort(now);
            return listener.input(src, dst, seg, now, floor);
          }
          return tw.input(seg, now);
        }
        // No connection from a martian source, and no RST to one: RFC 1122 §3.2.1.3 discards
        // such datagrams silently (§4.2.3.10: SYNs to broadcast or multicast, likewise).
        // (IPv6 input has dropped martian sources before TCP sees them.)
        if (
          typeof src === "number" && isIpv4MartianSource(src, this.localAddr, this.#prefixLength)
        ) {
          return "tcp_martian_source";
        }
        const listener = this.listeners.get(seg.dstPort);
        if (listener) return listener.input(src, dst, seg, now);
        this.#rstForNowhere(src, seg, now, dst);
        return "tcp_port_closed";
      }
      this.#lastHit = conn;
    }
    conn.noteActivity(now);
    return conn.input(seg, now);
  }

  // ------------------------------------------------------------ egress

  /**
   * Processes a TCP segment from `src` (on the link) to `dst`, an address
   * outside the session (egress; the IP layer checked both; IPv4 or IPv6,
   * both of one family). A segment of an
   * egress connection goes to it; a new SYN is held and reported to the
   * egress hook (see tcp_egress.ts), unanswered until the gateway accepts,
   * refuses or drops it; a SYN again for a held one is taken silently, a RST
   * gives it up. Anything else is answered with a RST from `dst`
   * (RFC 9293 §3.10.7.1). Without a hook every SYN is refused with a RST.
   */
  inputOutside(
    src: IpAddress,
    dst: IpAddress,
    bytes: Uint8Array,
    now: number,
    offload = 0,
  ): string | undefined {
    const seg = this.#rx;
    const reason = seg.parse(bytes, src, dst, (offload & FrameOffload.CSUM_VALID) !== 0);
    if (reason !== undefined) return reason;
    let conn = this.#lastHit;
    if (
      conn === undefined || conn.remotePort !== seg.srcPort || conn.localPort !== seg.dstPort ||
      conn.remoteAddr !== src || conn.localAddr !== dst || conn.state === "CLOSED"
    ) {
      const key = egressKey(src, seg.srcPort, dst, seg.dstPort);
      conn = this.active.get(key);
      if (conn === undefined) {
        const tw = this.timeWait.get(key);
        const syn = (seg.flags & (TcpFlags.SYN | TcpFlags.ACK | TcpFlags.RST)) === TcpFlags.SYN;
        if (tw !== undefined) {
          if (!syn || !tw.acceptsNewSyn(seg)) return tw.input(seg, now);
          tw.abort(now); // a new incarnation (RFC 9293 §3.10.7.4)
        }
        return this.#inputOutsideNew(key, src, dst, seg, syn, now);
      }
      this.#lastHit = conn;
    }
    conn.noteActivity(now);
    return conn.input(seg, now);
  }

  #inputOutsideNew(
    key: string,
    src: IpAddress,
    dst: IpAddress,
    seg: TcpRepr,
    syn: boolean,
    now: number,
  ): string | undefined {
    const held = this.heldSyns.get(key);
    if (held !== undefined) {
      if (seg.flags & TcpFlags.RST) {
        this.heldSyns.take(key);
        this.#egress?.synCancelled(held, now);
        return undefined;
      }
      if (syn && seg.seqNumber === held.syn.seqNumber) return undefined; // retransmitted
      return "tcp_egress_syn_pending";
    }
    if (!syn) {
      this.#rstForNowhere(src, seg, now, dst);
      return "tcp_egress_no_connection";
    }
    if (this.#egress === undefined || this.heldSyns.full) {
      this.#rstForNowhere(src, seg, now, dst);
      return "tcp_egress_held_full";
    }
    const h: HeldSyn = {
      key,
      guest: src,
      guestPort: seg.srcPort,
      outside: dst,
      outsidePort: seg.dstPort,
      // The segment object is reused by the next input: the held SYN is a copy.
      syn: { ...cloneTcpRepr(seg), payload: new Uint8Array(0) },
      at: now,
    };
    this.heldSyns.add(h);
    if (!this.#egress.synHeld(h, now)) {
      this.heldSyns.take(key);
      this.#rstForNowhere(src, seg, now, dst);
      return "tcp_egress_held_full";
    }
    return undefined;
  }

  /**
   * The gateway's answer "connected" to the held SYN `key`: a connection in
   * SYN-RECEIVED from the outside address, which answers the SYN with a
   * SYN-ACK (RFC 9293 §3.10.7.2) and is then like any other (its storage
   * charged to the session's memory quota; no socket unit: the gateway
   * counts its connections). Undefined when no such SYN is held (the guest
   * gave it up), or when the layer is at its connection limit (then a RST).
   */
  acceptHeld(
    key: string,
    now: number,
    config?: Partial<TcpConfig>,
  ): TcpConnection | undefined {
    const h = this.heldSyns.take(key);
    if (h === undefined) return undefined;
    if (this.connectionCount >= this.limits.maxConnections) {
      this.#rstForNowhere(h.guest, h.syn, now, h.outside);
      return undefined;
    }
    const conn = this.#newConnection(
      key,
      h.outsidePort,
      h.guest,
      h.guestPort,
      now,
      "SYN_RECEIVED",
      { ...this.config, ...config },
      undefined,
      h.outside,
    );
    this.active.set(key, conn);
    conn.acceptSyn(h.syn, now);
    return conn;
  }

  /**
   * The gateway's answer "refused" (or "denied") to the held SYN `key`: a
   * RST from the outside address, <SEQ=0><ACK=ISN+1><CTL=RST,ACK>
   * (RFC 9293 §3.10.7.1). Returns whether a SYN was held.
   */
  refuseHeld(key: string, now: number): boolean {
    const h = this.heldSyns.take(key);
    if (h === undefined) return false;
    this.#rstForNowhere(h.guest, h.syn, now, h.outside);
    return true;
  }

  /**
   * Forgets the held SYN `key` without answering, and returns it (the
   * gateway answers with an ICMP error quoting it).
   */
  dropHeld(key: string): HeldSyn | undefined {
    return this.heldSyns.take(key);
  }

  /**
   * A connection of listener `l` in SYN_RECEIVED, put on the active list.
   * A half-open connection holds no unit of the session's socket quota (the
   * SYN queue bounds them, so that a SYN flood cannot take the session's
   * sockets); it takes one when its handshake completes and it joins the
   * accept queue (handed over to the socket that accepts it, see
   * {@linkcode TcpConnection.takeQuotaUnit}). With `takeUnit` (a SYN
   * cookie's ACK, which completes the handshake at once) it takes the unit
   * now; when none is left, no connection: "tcp_accept_quota".
   */
  #openPassive(
    l: TcpListener,
    local: IpAddress,
    src: IpAddress,
    srcPort: number,
    now: number,
    iss: number | undefined,
    takeUnit: boolean,
  ): TcpConnection | string {
    if (takeUnit && !this.quota.sockets.tryTake()) return "tcp_accept_quota";
    const key = tupleKey(src, srcPort, l.port, local);
    const conn = this.#newConnection(
      key,
      l.port,
      src,
      srcPort,
      now,
      "SYN_RECEIVED",
      l.config,
      iss,
      local,
    );
    if (takeUnit) conn.adoptQuotaUnit();
    conn.listener = l;
    this.active.set(key, conn);
    this.#usePort(l.port, 1);
    return conn;
  }

  /**
   * RFC 9293 §3.10.7.1: the answer to a segment for a connection that does
   * not exist, from `from` (the stack's address, or an outside address).
   */
  #rstForNowhere(src: IpAddress, seg: TcpRepr, now: number, from?: IpAddress): void {
    if (seg.flags & TcpFlags.RST) return; // never answer a RST with a RST
    if (seg.flags & TcpFlags.ACK) {
      this.#sendRst(src, seg.srcPort, seg.dstPort, seg.ackNumber, 0, false, now, from);
    } else {
      const len = seg.payload.length + ((seg.flags & TcpFlags.SYN) ? 1 : 0) +
        ((seg.flags & TcpFlags.FIN) ? 1 : 0);
      this.#sendRst(src, seg.srcPort, seg.dstPort, 0, seqAdd(seg.seqNumber, len), true, now, from);
    }
  }

  #sendRst(
    dst: IpAddress,
    dstPort: number,
    srcPort: number,
    seq: number,
    ack: number,
    withAck: boolean,
    now: number,
    from?: IpAddress,
  ): void {
    this.stats.rstsSent++;
    this.#emitRepr(
      dst,
      {
        srcPort,
        dstPort,
        seqNumber: seq,
        ackNumber: withAck ? ack : 0,
        flags: TcpFlags.RST | (withAck ? TcpFlags.ACK : 0),
        windowLen: 0,
        payload: new Uint8Array(0),
      },
      now,
      from,
    );
  }

  #emitRepr(dst: IpAddress, repr: TcpRepr, now: number, from?: IpAddress): void {
    const out = this.#outputFor(dst);
    if (out === undefined) return;
    const src = from ?? (typeof dst === "string" ? this.#v6!.sourceFor(dst) : this.localAddr);
    const len = TcpRepr.bufferLen(repr);
    const tx = out.begin(dst, IpProtocol.TCP, len, true, 64, src);
    if (tx === undefined) return;
    TcpRepr.emit(repr, tx.frame.subarray(tx.l4, tx.l4 + len), src, dst);
    out.commit(now);
  }

  /**
   * ICMP fragmentation-needed (or ICMPv6 packet too big, RFC 8201 §5.4) for
   * a segment we sent to `remoteAddr:remotePort` from `localPort` (and, for
   * IPv6, `localAddr`) with sequence number `seq` (RFC 1191, RFC 5927 §4.1).
   * Returns a drop reason when the message was not acted on.
   */
  fragmentationNeeded(
    remoteAddr: IpAddress,
    remotePort: number,
    localPort: number,
    seq: number,
    mtu: number,
    now: number,
    localAddr?: IpAddress,
  ): string | undefined {
    const conn = this.active.get(tupleKey(remoteAddr, remotePort, localPort, localAddr));
    if (!conn) return "icmp_frag_needed_ignored";
    return conn.pathMtuReduced(seq, mtu, now) ? undefined : "icmp_frag_needed_ignored";
  }

  // ------------------------------------------------------------ TcpHost

  /** Emits a segment of `conn` (from its local address: the stack's, or an outside one). */
  emit(conn: TcpConnection, repr: TcpRepr, now: number): void {
    this.#emitRepr(conn.remoteAddr, repr, now, conn.localAddr);
  }

  /** The output for packets to `dst`: IPv4, or IPv6 when the stack has it. */
  #outputFor(dst: IpAddress): PacketOutput<IpAddress> | undefined {
    return (typeof dst === "string" ? this.#v6 : this.#deps.out) as
      | PacketOutput<IpAddress>
      | undefined;
  }

  /** Begins a segment of `conn` of `len` bytes, built in place (see tx_packet.ts). */
  beginSegment(conn: TcpConnection, len: number, gso = false): TxPacket | undefined {
    const out = this.#txOut = this.#outputFor(conn.remoteAddr);
    return out?.begin(
      conn.remoteAddr,
      IpProtocol.TCP,
      len,
      true,
      64,
      conn.localAddr,
      gso,
    );
  }

  /** Sends the segment begun with {@linkcode TcpLayer.beginSegment}. */
  commitSegment(now: number): void {
    this.#txOut?.commit(now);
    this.#txOut = undefined;
  }

  /** Queues `conn` for event delivery. */
  markDirty(conn: TcpConnection | TcpListener): void {
    this.dirty.push(conn);
  }

  /** Moves `conn` from the active list to the time-wait list. */
  enteredTimeWait(conn: TcpConnection): void {
    if (this.active.get(conn.key) === conn) this.active.delete(conn.key);
    this.timeWait.set(conn.key, conn);
    if (this.#lastHit === conn) this.#lastHit = undefined;
  }

  /** Removes `conn` from every list. */
  closed(conn: TcpConnection): void {
    let removed = false;
    if (this.active.get(conn.key) === conn) {
      this.active.delete(conn.key);
      removed = true;
    } else if (this.timeWait.get(conn.key) === conn) {
      this.timeWait.delete(conn.key);
      removed = true;
    }
    // Egress connections use ports of outside addresses, not the stack's.
    if (removed && this.ownsAddress(conn.localAddr)) this.#usePort(conn.localPort, -1);
    if (this.#lastHit === conn) this.#lastHit = undefined;
    const l = conn.listener;
    if (l) {
      l.synQueue.delete(conn);
      const i = l.acceptQueue.indexOf(conn);
      if (i >= 0) l.acceptQueue.splice(i, 1);
    }
  }

  /** A passive connection completed its handshake: it moves to the accept queue. */
  established(conn: TcpConnection): void {
    const l = conn.listener;
    if (!l) return;
    l.synQueue.delete(conn);
    if (l.closed) return;
    l.acceptQueue.push(conn);
    if (l.events === 0) this.dirty.push(l);
    l.events |= LISTENER_ACCEPTABLE;
  }

  /** RFC 5961 §7: at most `challengeAcksPerSecond` challenge ACKs per second. */
  allowChallengeAck(now: number): boolean {
    if (this.#challengeAcks.allow(now)) return true;
    this.stats.challengeAcksLimited++;
    return false;
  }

  /**
   * At most `unacceptableAcksPerSecond` ACKs per second in answer to
   * unacceptable segments (RFC 9293 §3.10.7.4 asks for one each; RFC 5961
   * §7's reasoning limits them).
   */
  allowUnacceptableAck(now: number): boolean {
    if (this.#unacceptableAcks.allow(now)) return true;
    this.stats.unacceptableAcksLimited++;
    return false;
  }

  // ------------------------------------------------------------ invariants

  /**
   * Checks the layer's bookkeeping and returns every violation found (empty
   * when all hold); see {@linkcode checkTcpInvariants}. O(connections), for
   * tests and fuzzing.
   */
  checkInvariants(): string[] {
    const bad = checkTcpInvariants(this, this.#portUse);
    if (this.heldSyns.size > this.heldSyns.max) {
      bad.push(`${this.heldSyns.size} SYNs held > limit ${this.heldSyns.max}`);
    }
    for (const h of this.heldSyns.values()) {
      if (this.active.has(h.key)) bad.push(`${h.key} is held and has a connection`);
    }
    return bad;
  }

  // ------------------------------------------------------------ timers

  /**
   * The earliest timer deadline of all connections, or undefined: the top
   * of the timer queue, O(1) but for entries whose timers moved later since
   * (O(log n) each, once).
   */
  nextDeadline(): number | undefined {
    return this.timerQueue.nextDeadline();
  }

  /** Fires every connection timer due at `now`: only the connections that have one. */
  poll(now: number): void {
    this.timerQueue.poll(now);
  }

  /** Removes and returns the objects with pending events. */
  takeDirty(): Array<TcpConnection | TcpListener> {
    const d = this.dirty;
    this.dirty = [];
    return d;
  }
}

/**
 * The demux key of a connection on one of the stack's own addresses (egress
 * connections, whose local address is outside, use `egressKey`). IPv4
 * connections share the stack's one address, so their key leaves it out;
 * an IPv6 key names the local address too (the stack has two: in the
 * prefix and link-local) and starts with `[`, which no IPv4 key does.
 */
export function tupleKey(
  remoteAddr: IpAddress,
  remotePort: number,
  localPort: number,
  localAddr?: IpAddress,
): string {
  return typeof remoteAddr === "string"
    ? `[${remoteAddr}${localAddr}:${remotePort}:${localPort}`
    : `${remoteAddr}:${remotePort}:${localPort}`;
}
