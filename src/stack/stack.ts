/**
 * The synchronous core of one session: link input and output, ARP, IPv4 input
 * validation and ICMP echo. It never reads the time (every entry takes `now`)
 * and never awaits; the session serializes calls into it with the core lock.
 *
 * @module
 */

import { earlier } from "./deadline.ts";
import {
  ARP_PACKET_LEN,
  ArpOperation,
  ArpPacket,
  ArpRepr,
  BROADCAST_MAC,
  ETHERNET_HEADER_LEN,
  EthernetFrame,
  EthernetRepr,
  EtherType,
  Icmpv4DestUnreachableCode,
  Icmpv4Packet,
  Icmpv4Repr,
  Icmpv4TimeExceededCode,
  IpProtocol,
  IPV4_BROADCAST,
  IPV4_HEADER_LEN,
  type Ipv4Address,
  ipv4InSubnet,
  Ipv4Packet,
  Ipv4Repr,
  ipv4SubnetBroadcast,
  isBroadcastMac,
  isIpv4Multicast,
  isMulticastMac,
  type MacAddress,
  macEquals,
  UdpPacket,
  UdpRepr,
  WIRE_DROP_REASONS,
} from "../wire/mod.ts";
import { ArpCache, type ArpCacheOptions } from "./arp_cache.ts";
import type { TcpConfig } from "./tcp/tcp_config.ts";
import { TCP_DROP_REASONS, TcpLayer, type TcpLayerLimits } from "./tcp/tcp_layer.ts";
import {
  UDP_DROP_REASONS,
  type UdpEndpoint,
  UdpLayer,
  type UdpLayerLimits,
} from "./udp/udp_layer.ts";
import type { TcpConnection } from "./tcp/tcp_connection.ts";
import type { TcpListener } from "./tcp/tcp_listener.ts";
import type { Link } from "./channel_link.ts";
import { StackCounters } from "./counters.ts";
import { DhcpServer, type DhcpServerConfig } from "./dhcp_server.ts";
import {
  IPV4_REASSEMBLY_DROP_REASONS,
  Ipv4Reassembler,
  type Ipv4ReassemblyLimits,
} from "./ipv4_reassembler.ts";
import { createSessionQuota, type SessionQuota } from "./session_quota.ts";
import { DNS_DEFAULT_NAME, DNS_DROP_REASONS, DNS_PORT, DnsResponder } from "./dns_responder.ts";

/** The addressing of one stack. */
export interface StackConfig {
  /** The stack's own MAC address. */
  mac: MacAddress;
  /** The stack's IPv4 address and the on-link prefix. */
  ipv4: { address: Ipv4Address; prefixLength: number };
  /** The IP MTU of the link (bytes of IP packet; the Ethernet frame adds 14). */
  mtu: number;
  /** ARP cache limits and timings. */
  arp?: Partial<ArpCacheOptions>;
  /** Defaults for this stack's TCP connections. */
  tcp?: Partial<TcpConfig>;
  /** Limits of this stack's TCP layer. */
  tcpLimits?: Partial<TcpLayerLimits>;
  /** Limits of this stack's UDP layer. */
  udpLimits?: Partial<UdpLayerLimits>;
  /**
   * ICMP error messages (port and protocol unreachable) this stack sends per
   * second, also the burst size: one token bucket for the whole stack
   * (RFC 1812 §4.3.2.8, RFC 1122 §3.2.2). 100 by default; 0 sends none.
   */
  icmpErrorsPerSecond?: number;
  /**
   * The DHCP server on UDP port 67 (RFC 2131); off unless `enabled`. Defaults
   * like QEMU's user networking: see {@linkcode DhcpServerConfig}.
   */
  dhcp?: DhcpServerConfig;
  /** Limits of IPv4 reassembly (memory, datagrams, fragments, time). */
  reassembly?: Partial<Ipv4ReassemblyLimits>;
  /**
   * The DNS responder on UDP port 53 of the stack's address (used when no
   * socket is bound there). Enabled by default; `names` add to (or
   * override) `netisle.internal`, which names the stack's address.
   */
  dns?: { enabled?: boolean; names?: Record<string, Ipv4Address> };
}

/** What a stack needs from its environment. */
export interface StackDeps {
  /** Where emitted frames go. */
  link: Link;
  /** Random bytes for ISN and SYN-cookie keys; `crypto.getRandomValues` by default. */
  random?: (buf: Uint8Array) => void;
  /**
   * The session's quotas, charged for everything the core holds (receive,
   * out-of-order, reassembly and accept queues, send buffers). Default: a
   * quota of its own with the session defaults (32 MiB, 256 sockets).
   */
  quota?: SessionQuota;
}

/** Options of {@linkcode Stack.sendIpv4}. */
export interface Ipv4SendOptions {
  /** Time to live; 64 by default. */
  ttl?: number;
  /** Sets the DF bit (TCP does, for path MTU discovery). */
  dontFragment?: boolean;
  /**
   * Sends the frame to this MAC without ARP: the DHCP server's unicast reply
   * to a client that has no address yet (RFC 2131 §4.1). Ignored for
   * broadcasts and for packets that need fragments.
   */
  dstMac?: MacAddress;
  /**
   * Splits a packet larger than the MTU into fragments (RFC 791 §3.2)
   * instead of dropping it; ignored with `dontFragment`. Only ICMP echo
   * replies use it.
   */
  fragment?: boolean;
}

/** Reasons the stack itself (not the wire parsers) drops received frames. */
export const STACK_DROP_REASONS: readonly string[] = [
  "ethernet_oversized",
  "ethernet_not_for_us",
  "ethernet_bad_source",
  "ethernet_unsupported_ethertype",
  "arp_bad_sender",
  "arp_not_for_us",
  "arp_address_conflict",
  "ipv4_not_for_us",
  "ipv4_bad_source",
  "ipv4_unsupported_protocol",
  "icmp_broadcast_echo_ignored",
  "icmp_unhandled_type",
  "icmp_bad_quote",
  "icmp_udp_unmatched",
];

/** The quota a stack gets when its deps name none: the session defaults. */
export const DEFAULT_SESSION_QUOTA: { maxBufferedBytes: number; maxSockets: number } = {
  maxBufferedBytes: 32 * 1024 * 1024,
  maxSockets: 256,
};

/** The smallest IP MTU IPv4 allows (RFC 791 §3.2). */
export const MIN_MTU = 68;
/** The largest IP MTU we accept (the IPv4 total-length field's limit). */
export const MAX_MTU = 65535;

/**
 * One session's network stack.
 *
 * @example
 * ```ts
 * const link = new ChannelLink();
 * const stack = new Stack({ mac, ipv4: { address: parseIpv4Address("10.0.2.2"), prefixLength: 24 }, mtu: 1500 }, { link });
 * stack.input(frameFromTunnel, now);
 * for (const frame of link.drain()) tunnel.send(frame);
 * ```
 */
export class Stack {
  readonly config: StackConfig;
  readonly counters: StackCounters;
  readonly arp: ArpCache;
  readonly tcp: TcpLayer;
  /** The UDP layer (RFC 768): bound endpoints by port. */
  readonly udp: UdpLayer;
  /** The DHCP server, when `config.dhcp.enabled`. */
  readonly dhcp: DhcpServer | undefined;
  /** ICMP error messages this stack sent, and those the rate limit suppressed. */
  readonly icmpErrorStats = { sent: 0, rateLimited: 0 };
  /** IPv4 reassembly of received fragments. */
  readonly reassembler: Ipv4Reassembler;
  /** The DNS responder for the stack's own names; undefined when disabled. */
  readonly dns: DnsResponder | undefined;
  /** The session's quotas (memory and sockets), shared with the layers above. */
  readonly quota: SessionQuota;
  #icmpErrorRate: number;
  #icmpTokens: number;
  #icmpTokensAt: number | undefined;
  #link: Link;
  #ident = 0;
  #broadcast: Ipv4Address;

  /** Creates a stack; throws RangeError for an MTU or prefix out of range. */
  constructor(config: StackConfig, deps: StackDeps) {
    if (!Number.isInteger(config.mtu) || config.mtu < MIN_MTU || config.mtu > MAX_MTU) {
      throw new RangeError(
        `Stack: mtu must be an integer in ${MIN_MTU}..${MAX_MTU}, got ${config.mtu}`,
      );
    }
    const p = config.ipv4.prefixLength;
    if (!Number.isInteger(p) || p < 1 || p > 30) {
      throw new RangeError(`Stack: prefixLength must be an integer in 1..30, got ${p}`);
    }
    if (config.mac.length !== 6 || isMulticastMac(config.mac)) {
      throw new RangeError("Stack: mac must be a 6-byte unicast address");
    }
    this.config = { ...config, mac: config.mac.slice(), ipv4: { ...config.ipv4 } };
    this.counters = new StackCounters([
      ...WIRE_DROP_REASONS,
      ...STACK_DROP_REASONS,
      ...TCP_DROP_REASONS,
      ...UDP_DROP_REASONS,
      ...IPV4_REASSEMBLY_DROP_REASONS,
      ...DNS_DROP_REASONS,
    ]);
    if (config.dns?.enabled ?? true) {
      this.dns = new DnsResponder({
        [DNS_DEFAULT_NAME]: config.ipv4.address,
        ...config.dns?.names,
      });
    }
    this.reassembler = new Ipv4Reassembler(config.reassembly);
    const rate = config.icmpErrorsPerSecond ?? 100;
    if (!Number.isInteger(rate) || rate < 0) {
      throw new RangeError(`Stack: icmpErrorsPerSecond must be an integer >= 0, got ${rate}`);
    }
    this.#icmpErrorRate = rate;
    this.#icmpTokens = rate;
    this.arp = new ArpCache(config.arp);
    this.#link = deps.link;
    this.quota = deps.quota ?? createSessionQuota(DEFAULT_SESSION_QUOTA);
    this.#broadcast = ipv4SubnetBroadcast(config.ipv4.address, p);
    this.tcp = new TcpLayer({
      localAddr: config.ipv4.address,
      prefixLength: p,
      mtu: config.mtu,
      quota: this.quota,
      random: deps.random ?? ((buf) => crypto.getRandomValues(buf)),
      config: config.tcp,
      limits: config.tcpLimits,
      sendIpv4With: (dst, len, fill, now) =>
        this.sendIpv4With(dst, IpProtocol.TCP, len, fill, now, { dontFragment: true }),
    });
    this.udp = new UdpLayer({
      localAddr: config.ipv4.address,
      mtu: config.mtu,
      random: deps.random ?? ((buf) => crypto.getRandomValues(buf)),
      limits: config.udpLimits,
      hasRoute: (dst) => this.hasRoute(dst),
      // DF clear: UDP does no path MTU discovery here, so a smaller hop may fragment.
      sendIpv4With: (dst, len, fill, now) => this.sendIpv4With(dst, IpProtocol.UDP, len, fill, now),
    });
    this.dhcp = config.dhcp?.enabled
      ? new DhcpServer(config.dhcp, {
        address: config.ipv4.address,
        prefixLength: p,
        mtu: config.mtu,
        endpoint: this.udp.bind(67),
        sendIpv4With: (dst, len, fill, now, dstMac) =>
          this.sendIpv4With(dst, IpProtocol.UDP, len, fill, now, { dstMac }),
      })
      : undefined;
  }

  /** The largest Ethernet frame this stack accepts or emits. */
  get maxFrameLen(): number {
    return this.config.mtu + ETHERNET_HEADER_LEN;
  }

  /**
   * Processes one received Ethernet frame. Never throws for any bytes: a frame
   * the stack cannot use is counted under `counters.drops[reason]`.
   */
  input(frame: Uint8Array, now: number): void {
    this.counters.rxFrames++;
    this.counters.rxBytes += frame.length;
    const reason = this.#inputEthernet(frame, now);
    if (reason === undefined) this.counters.rxHandled++;
    else this.counters.drop(reason);
    this.dhcp?.service(now);
  }

  /** Runs timers due at `now`: ARP retries and expiry, TCP timers. */
  poll(now: number): void {
    const r = this.arp.poll(now);
    this.counters.txDrop("arp_unresolved", r.unresolvedDrops);
    for (const ip of r.request) this.#sendArpRequest(ip);
    this.tcp.poll(now);
    this.dhcp?.poll(now);
    for (const e of this.reassembler.poll(now)) {
      // RFC 792 / RFC 1122 §3.3.2: time exceeded, only when fragment zero arrived.
      if (e.firstFragment && e.dst === this.config.ipv4.address) {
        this.#sendIcmpError(
          e.firstFragment,
          e.src,
          Icmpv4TimeExceededCode.FRAG_REASSEMBLY_EXCEEDED,
          now,
          "time_exceeded",
        );
      }
    }
  }

  /**
   * Removes and returns every TCP and UDP object with pending events (each has
   * `events` and `owner`), for the session to deliver after releasing the
   * core lock.
   */
  takeDirty(): Array<TcpConnection | TcpListener | UdpEndpoint> {
    const tcp: Array<TcpConnection | TcpListener | UdpEndpoint> = this.tcp.takeDirty();
    const udp = this.udp.takeDirty();
    if (udp.length === 0) return tcp;
    if (tcp.length === 0) return udp;
    for (const u of udp) tcp.push(u);
    return tcp;
  }

  /**
   * Whether {@linkcode Stack.sendIpv4} can route to `dst`: an on-link unicast
   * address, the subnet broadcast or 255.255.255.255 (there is no gateway).
   */
  hasRoute(dst: Ipv4Address): boolean {
    if (dst === IPV4_BROADCAST || dst === this.#broadcast) return true;
    const { address, prefixLength } = this.config.ipv4;
    return ipv4InSubnet(dst, address, prefixLength) && !isIpv4Multicast(dst);
  }

  /** The earliest time at which {@linkcode Stack.poll} has work, or undefined. */
  nextDeadline(): number | undefined {
    const d = earlier(this.arp.nextDeadline(), this.tcp.nextDeadline());
    return earlier(earlier(d, this.reassembler.nextDeadline()), this.dhcp?.nextDeadline());
  }

  /**
   * Checks the stack's bookkeeping and returns every violation found (empty
   * when all hold): every received frame is handled or dropped for a reason
   * (`rxFrames === rxHandled + sum(drops)`), the ARP cache and IPv4
   * reassembly stay within their limits, UDP receive queues within theirs,
   * and the TCP layer's lists, queues and port counts agree
   * ({@linkcode TcpLayer.checkInvariants}). For tests and fuzzing; O(state).
   */
  checkInvariants(): string[] {
    const bad = this.tcp.checkInvariants();
    const c = this.counters;
    const drops = c.totalDrops();
    if (c.rxFrames !== c.rxHandled + drops) {
      bad.push(`rxFrames ${c.rxFrames} != handled ${c.rxHandled} + dropped ${drops}`);
    }
    if (this.arp.size > this.arp.options.maxEntries) {
      bad.push(`ARP cache holds ${this.arp.size} > ${this.arp.options.maxEntries} entries`);
    }
    const r = this.reassembler;
    if (r.bytesHeld > r.limits.maxBytes || r.datagrams > r.limits.maxDatagrams) {
      bad.push(
        `reassembly holds ${r.bytesHeld} bytes in ${r.datagrams} datagrams, over its limits`,
      );
    }
    const u = this.udp.limits;
    for (const [port, e] of this.udp.endpoints) {
      if (e.queuedBytes > u.recvQueueBytes || e.queuedDatagrams > u.recvQueueDatagrams) {
        bad.push(`UDP port ${port} queues ${e.queuedBytes} bytes, over its limits`);
      }
    }
    return bad;
  }

  /**
   * Sends a gratuitous ARP request announcing our address, so that neighbours
   * that cached an older MAC for it update (RFC 5227 §3). Called when a tunnel
   * attaches.
   */
  announce(): void {
    const ip = this.config.ipv4.address;
    this.#emitArp(BROADCAST_MAC, {
      operation: ArpOperation.REQUEST,
      senderMac: this.config.mac,
      senderIp: ip,
      targetMac: new Uint8Array(6),
      targetIp: ip,
    });
  }

  /**
   * Sends an IPv4 packet whose payload `payload` is already built. Resolves the
   * next hop with ARP, queueing the packet while a request is outstanding.
   * Returns false when the packet was dropped (counted in `txDrops`).
   */
  sendIpv4(
    dst: Ipv4Address,
    protocol: number,
    payload: Uint8Array,
    now: number,
    options: Ipv4SendOptions = {},
  ): boolean {
    return this.sendIpv4With(
      dst,
      protocol,
      payload.length,
      (buf) => buf.set(payload),
      now,
      options,
    );
  }

  /**
   * Sends an IPv4 packet of `payloadLen` bytes that `fill` writes in place into
   * the frame (so a transport header and its payload are copied once). `fill`
   * runs synchronously before this returns, whether or not the next hop is
   * resolved. Returns false when the packet was dropped (counted in `txDrops`).
   */
  sendIpv4With(
    dst: Ipv4Address,
    protocol: number,
    payloadLen: number,
    fill: (payload: Uint8Array) => void,
    now: number,
    options: Ipv4SendOptions = {},
  ): boolean {
    const ipLen = IPV4_HEADER_LEN + payloadLen;
    if (ipLen > this.config.mtu && options.fragment && !options.dontFragment) {
      return this.#sendFragmented(dst, protocol, payloadLen, fill, now, options);
    }
    if (ipLen > this.config.mtu) {
      this.counters.txDrop("ipv4_exceeds_mtu");
      return false;
    }
    if (!this.hasRoute(dst)) {
      this.counters.txDrop("ipv4_no_route");
      return false;
    }
    const frame = new Uint8Array(ETHERNET_HEADER_LEN + ipLen);
    const repr: Ipv4Repr = {
      src: this.config.ipv4.address,
      dst,
      protocol,
      payloadLen,
      ttl: options.ttl ?? 64,
      ident: this.#nextIdent(),
      dontFragment: options.dontFragment ?? false,
    };
    Ipv4Repr.emit(repr, frame.subarray(ETHERNET_HEADER_LEN));
    fill(frame.subarray(ETHERNET_HEADER_LEN + IPV4_HEADER_LEN));
    if (options.dstMac && dst !== IPV4_BROADCAST && dst !== this.#broadcast) {
      const eth = { dst: options.dstMac, src: this.config.mac, etherType: EtherType.IPV4 };
      EthernetRepr.emit(eth, frame);
      this.#transmit(frame);
      return true;
    }
    return this.#route(dst, frame, now);
  }

  /**
   * RFC 791 §3.2 fragmentation on output: fragments of the largest multiple
   * of 8 bytes the MTU allows, all with one identification.
   */
  #sendFragmented(
    dst: Ipv4Address,
    protocol: number,
    payloadLen: number,
    fill: (payload: Uint8Array) => void,
    now: number,
    options: Ipv4SendOptions,
  ): boolean {
    if (IPV4_HEADER_LEN + payloadLen > 0xffff) {
      this.counters.txDrop("ipv4_exceeds_mtu");
      return false;
    }
    if (!this.hasRoute(dst)) {
      this.counters.txDrop("ipv4_no_route");
      return false;
    }
    const payload = new Uint8Array(payloadLen);
    fill(payload);
    const chunk = (this.config.mtu - IPV4_HEADER_LEN) & ~7;
    const ident = this.#nextIdent();
    let ok = true;
    for (let off = 0; off < payloadLen; off += chunk) {
      const part = payload.subarray(off, Math.min(payloadLen, off + chunk));
      const frame = new Uint8Array(ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + part.length);
      Ipv4Repr.emit({
        src: this.config.ipv4.address,
        dst,
        protocol,
        payloadLen: part.length,
        ttl: options.ttl ?? 64,
        ident,
        moreFragments: off + part.length < payloadLen,
        fragmentOffset: off,
      }, frame.subarray(ETHERNET_HEADER_LEN));
      frame.set(part, ETHERNET_HEADER_LEN + IPV4_HEADER_LEN);
      if (!this.#route(dst, frame, now)) ok = false;
    }
    return ok;
  }

  /** Resolves the next hop of an IPv4 frame (Ethernet header still blank) and sends it. */
  #route(dst: Ipv4Address, frame: Uint8Array, now: number): boolean {
    const finish = (mac: MacAddress): Uint8Array => {
      EthernetRepr.emit({ dst: mac, src: this.config.mac, etherType: EtherType.IPV4 }, frame);
      return frame;
    };
    if (dst === IPV4_BROADCAST || dst === this.#broadcast) {
      this.#transmit(finish(BROADCAST_MAC));
      return true;
    }
    const mac = this.arp.lookup(dst, now);
    if (mac) {
      this.#transmit(finish(mac));
      return true;
    }
    switch (this.arp.enqueue(dst, finish, now)) {
      case "request":
        this.#sendArpRequest(dst);
        return true;
      case "queued":
        return true;
      case "full":
        this.counters.txDrop("arp_queue_full");
        return false;
    }
  }

  #nextIdent(): number {
    this.#ident = (this.#ident + 1) & 0xffff;
    return this.#ident;
  }

  #transmit(frame: Uint8Array): void {
    if (this.#link.transmit(frame)) {
      this.counters.txFrames++;
      this.counters.txBytes += frame.length;
    } else {
      this.counters.txDrop("link_queue_full");
    }
  }

  /** Returns a drop reason, or undefined when the frame was handled. */
  #inputEthernet(bytes: Uint8Array, now: number): string | undefined {
    if (bytes.length > this.maxFrameLen) return "ethernet_oversized";
    const parsed = EthernetFrame.parse(bytes);
    if (!parsed.ok) return parsed.reason;
    const frame = parsed.value;
    const dst = frame.dst;
    if (!macEquals(dst, this.config.mac) && !isBroadcastMac(dst)) return "ethernet_not_for_us";
    if (isMulticastMac(frame.src)) return "ethernet_bad_source";
    switch (frame.etherType) {
      case EtherType.ARP:
        return this.#inputArp(frame.payload, now);
      case EtherType.IPV4:
        return this.#inputIpv4(frame.payload, now, isBroadcastMac(dst));
      default:
        return "ethernet_unsupported_ethertype";
    }
  }

  /** RFC 826 "Packet Reception", with the merge rule. */
  #inputArp(bytes: Uint8Array, now: number): string | undefined {
    const pkt = ArpPacket.parse(bytes);
    if (!pkt.ok) return pkt.reason;
    const parsed = ArpRepr.parse(pkt.value);
    if (!parsed.ok) return parsed.reason;
    const arp = parsed.value;
    if (isMulticastMac(arp.senderMac)) return "arp_bad_sender";
    const ours = this.config.ipv4.address;
    if (arp.senderIp === ours) return "arp_address_conflict";
    const forUs = arp.targetIp === ours;
    if (arp.senderIp !== 0) {
      // Merge: refresh an existing entry always; create one only when addressed to us.
      for (const f of this.arp.update(arp.senderIp, arp.senderMac, now, !forUs)) this.#transmit(f);
    }
    if (!forUs) return "arp_not_for_us";
    if (arp.operation === ArpOperation.REQUEST) {
      this.#emitArp(arp.senderMac, {
        operation: ArpOperation.REPLY,
        senderMac: this.config.mac,
        senderIp: ours,
        targetMac: arp.senderMac,
        targetIp: arp.senderIp,
      });
    }
    return undefined;
  }

  #sendArpRequest(ip: Ipv4Address): void {
    this.#emitArp(BROADCAST_MAC, {
      operation: ArpOperation.REQUEST,
      senderMac: this.config.mac,
      senderIp: this.config.ipv4.address,
      targetMac: new Uint8Array(6),
      targetIp: ip,
    });
  }

  #emitArp(dstMac: MacAddress, repr: ArpRepr): void {
    // Pad to the Ethernet minimum (60 bytes without FCS) as real NICs do.
    const frame = new Uint8Array(Math.max(60, ETHERNET_HEADER_LEN + ARP_PACKET_LEN));
    EthernetRepr.emit({ dst: dstMac, src: this.config.mac, etherType: EtherType.ARP }, frame);
    ArpRepr.emit(repr, frame.subarray(ETHERNET_HEADER_LEN));
    this.#transmit(frame);
  }

  /** RFC 1122 §3.2.1: IPv4 input validation and demux. */
  #inputIpv4(bytes: Uint8Array, now: number, linkBroadcast: boolean): string | undefined {
    const pkt = Ipv4Packet.parse(bytes);
    if (!pkt.ok) return pkt.reason;
    const parsed = Ipv4Repr.parse(pkt.value);
    if (!parsed.ok) return parsed.reason;
    const ip = parsed.value;
    const ours = this.config.ipv4.address;
    const broadcast = ip.dst === IPV4_BROADCAST || ip.dst === this.#broadcast;
    if (ip.dst !== ours && !broadcast) return "ipv4_not_for_us";
    if (
      ip.src === IPV4_BROADCAST || ip.src === this.#broadcast || isIpv4Multicast(ip.src) ||
      ip.src === ours
    ) {
      return "ipv4_bad_source";
    }
    if (pkt.value.isFragment) {
      const r = this.reassembler.input(pkt.value, linkBroadcast, now);
      if (r.kind === "stored") return undefined;
      if (r.kind === "dropped") return r.reason;
      // The reassembled datagram goes through the same demux as an unfragmented one.
      const whole = Ipv4Packet.parse(r.datagram);
      if (!whole.ok) return whole.reason;
      return this.#demuxIpv4(whole.value, ip, broadcast, r.linkBroadcast, now);
    }
    return this.#demuxIpv4(pkt.value, ip, broadcast, linkBroadcast, now);
  }

  /** Hands a whole (unfragmented or reassembled) datagram to its protocol. */
  #demuxIpv4(
    packet: Ipv4Packet,
    ip: Ipv4Repr,
    broadcast: boolean,
    linkBroadcast: boolean,
    now: number,
  ): string | undefined {
    const payload = packet.payload;
    switch (ip.protocol) {
      case IpProtocol.ICMP:
        return this.#inputIcmp(ip, payload, broadcast, now);
      case IpProtocol.TCP:
        return this.tcp.input(ip.src, ip.dst, payload, now);
      case IpProtocol.UDP: {
        const r = this.udp.input(ip.src, ip.dst, payload, now);
        // The DNS responder takes port 53 of our address when no socket is bound there.
        if (
          r === "udp_port_closed" && this.dns && ip.dst === this.config.ipv4.address &&
          ((payload[2] << 8) | payload[3]) === DNS_PORT
        ) {
          return this.#inputDns(this.dns, ip, payload, now);
        }
        // RFC 1122 §4.1.3.1: port unreachable; §3.2.2: never about a broadcast.
        if (
          (r === "udp_port_closed" || r === "udp_peer_mismatch") && !broadcast && !linkBroadcast
        ) {
          this.#sendIcmpError(packet.bytes, ip.src, Icmpv4DestUnreachableCode.PORT, now);
        }
        return r;
      }
      default:
        // RFC 1122 §3.2.2.1: protocol unreachable for a transport we do not implement.
        if (!broadcast && !linkBroadcast) {
          this.#sendIcmpError(packet.bytes, ip.src, Icmpv4DestUnreachableCode.PROTOCOL, now);
        }
        return "ipv4_unsupported_protocol";
    }
  }

  /**
   * Answers a UDP datagram to port 53 (checksum already verified) with the
   * DNS responder. Returns a drop reason, or undefined when answered.
   */
  #inputDns(dns: DnsResponder, ip: Ipv4Repr, bytes: Uint8Array, now: number): string | undefined {
    const pkt = UdpPacket.parse(bytes);
    if (!pkt.ok) return pkt.reason;
    const r = dns.answer(pkt.value.payload);
    if ("reason" in r) return r.reason;
    const repr: UdpRepr = { srcPort: DNS_PORT, dstPort: pkt.value.srcPort, payload: r.reply };
    const src = this.config.ipv4.address;
    this.sendIpv4With(
      ip.src,
      IpProtocol.UDP,
      UdpRepr.bufferLen(repr),
      (buf) => UdpRepr.emit(repr, buf, src, ip.src),
      now,
    );
    return undefined;
  }

  /**
   * Sends an ICMP destination unreachable with `code` about `original` (the
   * received IP datagram, cut at its total length) to `src` (RFC 792). The
   * quote is the original IP header and as much of its data as keeps the
   * error within 576 bytes and the MTU (RFC 1812 §4.3.2.3; Linux does the
   * same), at least the 8 bytes RFC 1122 §3.2.2 asks for when the MTU allows.
   * Never to a source that does not name one host (RFC 1122 §3.2.2: zero,
   * loopback, class E, broadcast, multicast); the caller leaves out datagrams
   * to a broadcast address. At most `icmpErrorsPerSecond`, from a token
   * bucket shared by every kind of error (RFC 1812 §4.3.2.8).
   */
  #sendIcmpError(
    original: Uint8Array,
    src: Ipv4Address,
    code: number,
    now: number,
    type: "dest_unreachable" | "time_exceeded" = "dest_unreachable",
  ): void {
    if (src === 0 || src >>> 24 === 127 || src >>> 28 >= 0xe) return;
    if (!this.#takeIcmpToken(now)) {
      this.icmpErrorStats.rateLimited++;
      this.counters.txDrop("icmp_error_rate_limited");
      return;
    }
    const maxQuote = Math.min(576, this.config.mtu) - IPV4_HEADER_LEN - 8;
    const data = original.length > maxQuote ? original.subarray(0, maxQuote) : original;
    const repr: Icmpv4Repr = { type, code, data };
    if (
      this.sendIpv4With(
        src,
        IpProtocol.ICMP,
        Icmpv4Repr.bufferLen(repr),
        (buf) => Icmpv4Repr.emit(repr, buf),
        now,
      )
    ) {
      this.icmpErrorStats.sent++;
    }
  }

  /** The ICMP error token bucket: `icmpErrorsPerSecond` tokens, refilled continuously. */
  #takeIcmpToken(now: number): boolean {
    const rate = this.#icmpErrorRate;
    const last = this.#icmpTokensAt;
    if (last === undefined || now > last) {
      if (last !== undefined) {
        this.#icmpTokens = Math.min(rate, this.#icmpTokens + (now - last) * rate / 1000);
      }
      this.#icmpTokensAt = now;
    }
    if (this.#icmpTokens < 1) return false;
    this.#icmpTokens -= 1;
    return true;
  }

  /**
   * ICMP destination unreachable (RFC 792, RFC 1122 §3.2.2.1): the quoted
   * datagram must be one we sent. Fragmentation-needed goes to TCP, which
   * checks the quoted sequence number before acting (RFC 5927 §4.1, RFC 1191);
   * errors about UDP datagrams go to the connected endpoint that sent them
   * (RFC 1122 §4.1.3.3). Other errors about TCP are not acted on: RFC 5461
   * and RFC 1122 §4.2.3.9 make them soft errors.
   */
  #inputIcmpError(
    code: number,
    nextHopMtu: number | undefined,
    quote: Uint8Array,
    now: number,
  ): string | undefined {
    const q = Ipv4Packet.parseTruncated(quote);
    if (!q.ok || q.value.src !== this.config.ipv4.address) return "icmp_bad_quote";
    const inner = q.value.payload;
    if (inner.length < 8) return "icmp_unhandled_type";
    const localPort = (inner[0] << 8) | inner[1];
    const remotePort = (inner[2] << 8) | inner[3];
    if (q.value.protocol === IpProtocol.UDP) {
      if (code === Icmpv4DestUnreachableCode.FRAG_NEEDED) return "icmp_unhandled_type";
      return this.udp.icmpError(q.value.dst, remotePort, localPort, code);
    }
    if (q.value.protocol !== IpProtocol.TCP) return "icmp_unhandled_type";
    if (code !== Icmpv4DestUnreachableCode.FRAG_NEEDED) return "icmp_unhandled_type";
    const seq = ((inner[4] << 24) | (inner[5] << 16) | (inner[6] << 8) | inner[7]) >>> 0;
    return this.tcp.fragmentationNeeded(
      q.value.dst,
      remotePort,
      localPort,
      seq,
      nextHopMtu ?? 0,
      now,
    );
  }

  /** RFC 792 echo; RFC 1122 §3.2.2.6 (echo to broadcast may be ignored). */
  #inputIcmp(ip: Ipv4Repr, bytes: Uint8Array, broadcast: boolean, now: number): string | undefined {
    const pkt = Icmpv4Packet.parse(bytes);
    if (!pkt.ok) return pkt.reason;
    const parsed = Icmpv4Repr.parse(pkt.value);
    if (!parsed.ok) return parsed.reason;
    const icmp = parsed.value;
    if (icmp.type === "dest_unreachable") {
      return this.#inputIcmpError(icmp.code, icmp.nextHopMtu, icmp.data, now);
    }
    if (icmp.type !== "echo_request") return "icmp_unhandled_type";
    if (broadcast) return "icmp_broadcast_echo_ignored";
    const reply: Icmpv4Repr = {
      type: "echo_reply",
      ident: icmp.ident,
      seqNo: icmp.seqNo,
      data: icmp.data,
    };
    const out = new Uint8Array(Icmpv4Repr.bufferLen(reply));
    Icmpv4Repr.emit(reply, out);
    this.sendIpv4(ip.src, IpProtocol.ICMP, out, now, { fragment: true });
    return undefined;
  }
}
