/**
 * The synchronous core of one session, as one facade over its layers. It
 * never reads the time (every entry takes `now`) and never awaits; the
 * session serializes calls into it with the core lock.
 *
 * A received frame flows up through:
 *
 * 1. `ethernet_layer.ts`: Ethernet II validation, demux by EtherType;
 * 2. `arp_layer.ts` (ARP: answers, learns into `arp_cache.ts`), or
 *    `ipv4_input.ts` (validation, `ipv4_reassembler.ts` for fragments, demux),
 *    or `ipv6_input.ts` (validation, extension headers, `ipv6_reassembler.ts`
 *    for fragments, demux); both reassemblers are thin glue over
 *    `fragment_reassembler.ts`;
 * 3. `icmp_layer.ts` (echo, validated errors), `tcp/`, or `udp/` (bound
 *    endpoints, and the services on a port: `dhcp_server.ts`,
 *    `dns_responder.ts`, `dhcpv6_server.ts`; UDP runs over both families);
 *    over IPv6, `icmpv6_layer.ts` (echo, errors, MLD)
 *    and `ndp_layer.ts` (neighbours in `neighbor_cache.ts`, router
 *    advertisements on the schedule of `router_advertiser.ts`).
 *
 * What the stack sends flows down through `ipv4_output.ts` (header,
 * fragmentation, route), `arp_layer.ts` (next-hop resolution) and
 * `ethernet_layer.ts` (to the link); IPv6 through `ipv6_output.ts` and
 * `ndp_layer.ts`.
 *
 * @module
 */

import { earlier } from "./deadline.ts";
import {
  DHCP_SERVER_PORT,
  formatIpv4Address,
  Icmpv4TimeExceededCode,
  type IpAddress,
  IpProtocol,
  type Ipv4Address,
  ipv4InSubnet,
  type Ipv6Address,
  type Ipv6ExtLimits,
  isIpv4MartianSource,
  isMulticastMac,
  type MacAddress,
  WIRE_DROP_REASONS,
} from "../wire/mod.ts";
import { ArpCache, type ArpCacheOptions } from "./arp_cache.ts";
import {
  TCP_DROP_REASONS,
  type TcpConfig,
  type TcpConnection,
  TcpLayer,
  type TcpLayerLimits,
  type TcpListener,
} from "./tcp/mod.ts";
import { UDP_DROP_REASONS, type UdpEndpoint, UdpLayer, type UdpLayerLimits } from "./udp/mod.ts";
import type { Link } from "./channel_link.ts";
import { LinkOffload } from "./frame_offload.ts";
import { StackCounters } from "./counters.ts";
import { DHCP_SERVER_DROP_REASONS, DhcpServer, type DhcpServerConfig } from "./dhcp_server.ts";
import {
  IPV4_REASSEMBLY_DROP_REASONS,
  Ipv4Reassembler,
  type Ipv4ReassemblyLimits,
} from "./ipv4_reassembler.ts";
import { createSessionQuota, type SessionQuota } from "./session_quota.ts";
import { DNS_DEFAULT_NAME, DNS_DROP_REASONS, DNS_PORT, DnsResponder } from "./dns_responder.ts";
import { ETHERNET_DROP_REASONS, EthernetLayer } from "./ethernet_layer.ts";
import { ARP_DROP_REASONS, ArpLayer } from "./arp_layer.ts";
import { IPV4_DROP_REASONS, Ipv4Input } from "./ipv4_input.ts";
import { EGRESS_DROP_REASONS, StackEgress, type StackEgressLimits } from "./stack_egress.ts";
import { Ipv4Output, type Ipv4SendOptions } from "./ipv4_output.ts";
import { ICMP_DROP_REASONS, IcmpLayer } from "./icmp_layer.ts";
import { IPV6_DROP_REASONS } from "./ipv6_input.ts";
import type { ReassemblyLimits } from "./fragment_reassembler.ts";
import { IPV6_REASSEMBLY_DROP_REASONS, type Ipv6Reassembler } from "./ipv6_reassembler.ts";
import type { Ipv6Addressing } from "./ipv6_output.ts";
import { NDP_DROP_REASONS } from "./ndp_layer.ts";
import { ICMPV6_DROP_REASONS } from "./icmpv6_layer.ts";
import type { NeighborCache, NeighborCacheOptions } from "./neighbor_cache.ts";
import type { RouterAdvertiser, RouterAdvertOptions } from "./router_advertiser.ts";
import type { PathMtuCache } from "./path_mtu_cache.ts";
import { checkIpv6Config, StackIpv6 } from "./stack_ipv6.ts";
import {
  DHCPV6_SERVER_DROP_REASONS,
  Dhcpv6Server,
  type Dhcpv6ServerConfig,
} from "./dhcpv6_server.ts";
import { DHCPV6_SERVER_PORT } from "../wire/mod.ts";

export type { Ipv4SendOptions } from "./ipv4_output.ts";
export { DEFAULT_IPV6 } from "./stack_ipv6.ts";

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
  /** Limits of IPv6 reassembly (memory, datagrams, fragments, time; 60 s by default). */
  ipv6Reassembly?: Partial<ReassemblyLimits>;
  /**
   * The DNS responder on UDP port 53 of the stack's addresses, over IPv4
   * and IPv6 (it steps aside while a socket is bound there). Enabled by
   * default; `names` add to (or override) `netisle.internal`, which names
   * the stack's addresses: A its IPv4 one, AAAA its IPv6 one when it has
   * IPv6.
   */
  dns?: { enabled?: boolean; names?: Record<string, Ipv4Address> };
  /**
   * The stateless DHCPv6 server on UDP port 547 (RFC 8415 §6.1): it answers
   * Information-request with the stack's IPv6 address as DNS server, and
   * the router advertisements set the O flag. Needs IPv6; by default it
   * runs when the DHCPv4 server does (`dhcp.enabled`).
   */
  dhcpv6?: Dhcpv6ServerConfig;
  /**
   * Egress: datagrams to addresses outside the subnet (IPv4) or off the
   * link (IPv6, when the stack has it), and DNS queries for names the
   * responder does not own, become events for a gateway
   * ({@linkcode StackEgress}) instead of being dropped or refused; with
   * IPv6 the router advertisements then announce a default route (router
   * lifetime 1800 s unless `routerAdvert.routerLifetime` says otherwise).
   * Off by default.
   */
  egress?: { enabled: boolean; limits?: Partial<StackEgressLimits> };
  /**
   * IPv6 on the link: the session's /64 `prefix` and the stack's `address`
   * in it (besides its link-local address, from its MAC). By default
   * `fd00::/64` and `fd00::2` ({@linkcode DEFAULT_IPV6}) when the MTU is at
   * least 1280 (RFC 8200 §5); `false` turns IPv6 off.
   */
  ipv6?: { prefix: Ipv6Address; address: Ipv6Address } | false;
  /** Neighbour cache limits and timings (IPv6). */
  ndp?: Partial<NeighborCacheOptions>;
  /** Router advertisement timings and lifetimes (IPv6). */
  routerAdvert?: Partial<RouterAdvertOptions>;
  /** Limits of the IPv6 extension-header chain of received packets. */
  ipv6ExtLimits?: Ipv6ExtLimits;
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

/**
 * Reasons the stack itself (not the wire parsers) drops received frames: the
 * link layer's, ARP's, IPv4 input's and ICMP's.
 */
export const STACK_DROP_REASONS: readonly string[] = [
  ...ETHERNET_DROP_REASONS,
  ...ARP_DROP_REASONS,
  ...IPV4_DROP_REASONS,
  ...ICMP_DROP_REASONS,
  ...EGRESS_DROP_REASONS,
  ...IPV6_DROP_REASONS,
  ...IPV6_REASSEMBLY_DROP_REASONS,
  ...ICMPV6_DROP_REASONS,
  ...NDP_DROP_REASONS,
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
  /** The UDP layer (RFC 768): bound endpoints and the stack's services by port. */
  readonly udp: UdpLayer;
  /** The DHCP server on UDP port 67, when `config.dhcp.enabled`. */
  readonly dhcp: DhcpServer | undefined;
  /** IPv4 reassembly of received fragments. */
  readonly reassembler: Ipv4Reassembler;
  /** The stateless DHCPv6 server on UDP port 547; undefined when off or without IPv6. */
  readonly dhcpv6: Dhcpv6Server | undefined;
  /** The DNS responder for the stack's own names; undefined when disabled. */
  readonly dns: DnsResponder | undefined;
  /** The session's quotas (memory and sockets), shared with the layers above. */
  readonly quota: SessionQuota;
  /** Egress events and entries, when `config.egress.enabled`. */
  readonly egress: StackEgress | undefined;
  /** The IPv6 addresses (prefix, address, link-local); undefined without IPv6. */
  readonly ipv6: Readonly<Ipv6Addressing> | undefined;
  /** The IPv6 neighbour cache (RFC 4861); undefined without IPv6. */
  readonly neighbors: NeighborCache | undefined;
  /** Path MTUs learned from ICMPv6 packet too big (RFC 8201); undefined without IPv6. */
  readonly pathMtu: PathMtuCache | undefined;
  /** IPv6 reassembly of received fragments (RFC 8200 §4.5); undefined without IPv6. */
  readonly ipv6Reassembler: Ipv6Reassembler | undefined;
  /** The router advertisement schedule and its counts; undefined without IPv6. */
  readonly routerAdvertiser: RouterAdvertiser | undefined;
  #eth: EthernetLayer;
  #arp: ArpLayer;
  #ipv4In: Ipv4Input;
  #ipv4Out: Ipv4Output;
  #icmp: IcmpLayer;
  #v6: StackIpv6 | undefined;

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
    const rate = config.icmpErrorsPerSecond ?? 100;
    if (!Number.isInteger(rate) || rate < 0) {
      throw new RangeError(`Stack: icmpErrorsPerSecond must be an integer >= 0, got ${rate}`);
    }
    const v6 = checkIpv6Config(config.mtu, config.ipv6);
    this.config = {
      ...config,
      mac: config.mac.slice(),
      ipv4: { ...config.ipv4 },
      ipv6: v6 ? { ...v6 } : false,
    };
    const { mac, ipv4, mtu } = this.config;
    const address = ipv4.address;
    const counters = this.counters = new StackCounters([
      ...WIRE_DROP_REASONS,
      ...STACK_DROP_REASONS,
      ...TCP_DROP_REASONS,
      ...UDP_DROP_REASONS,
      ...IPV4_REASSEMBLY_DROP_REASONS,
      ...DNS_DROP_REASONS,
      ...DHCP_SERVER_DROP_REASONS,
      ...DHCPV6_SERVER_DROP_REASONS,
    ]);
    this.quota = deps.quota ?? createSessionQuota(DEFAULT_SESSION_QUOTA);
    const random = deps.random ?? ((buf: Uint8Array) => crypto.getRandomValues(buf));

    // The link and ARP; the link hands received payloads up through closures,
    // since IPv4 input is built last.
    this.#eth = new EthernetLayer({
      mac,
      mtu,
      link: deps.link,
      counters,
      upper: {
        arp: (payload, now) => this.#arp.input(payload, now),
        ipv4: (payload, now, linkBroadcast, offload) =>
          this.#ipv4In.input(payload, now, linkBroadcast, offload),
        ipv6: v6
          ? (payload, now, multicast) => this.#v6!.input(payload, now, multicast)
          : undefined,
      },
    });
    this.arp = new ArpCache(config.arp);
    this.#arp = new ArpLayer({ ipv4, cache: this.arp, eth: this.#eth, counters });
    this.#ipv4Out = new Ipv4Output({ ipv4, mtu, arp: this.#arp, eth: this.#eth, counters });

    // Transports and the stack's own services.
    this.tcp = new TcpLayer({
      localAddr: address,
      prefixLength: ipv4.prefixLength,
      mtu,
      quota: this.quota,
      random,
      config: config.tcp,
      limits: config.tcpLimits,
      out: this.#ipv4Out,
    });
    this.udp = new UdpLayer({
      localAddr: address,
      mtu,
      random,
      limits: config.udpLimits,
      memory: this.quota.memory,
      hasRoute: (dst) => this.#ipv4Out.hasRoute(dst),
      // DF clear: UDP does no path MTU discovery here, so a smaller hop may fragment.
      sendIpv4With: (dst, len, fill, now, dstMac, src) =>
        this.#ipv4Out.send(dst, IpProtocol.UDP, len, fill, now, { dstMac, src }),
    });
    this.egress = config.egress?.enabled
      ? new StackEgress({
        localAddr: address,
        memory: this.quota.memory,
        udp: this.udp,
        tcp: this.tcp,
        limits: config.egress.limits,
        sendIcmpError: (quote, to, code, from, now) =>
          this.#icmp.sendError(quote, to, code, now, "dest_unreachable", from),
        sendIcmpv6Error: v6
          ? (quote, code, from, now) =>
            this.#v6!.sendError(quote, { type: "dest_unreachable", code }, now, from)
          : undefined,
      })
      : undefined;
    this.udp.setEgress(this.egress);
    this.tcp.setEgress(this.egress);
    if (config.dns?.enabled ?? true) {
      this.dns = new DnsResponder(
        { [DNS_DEFAULT_NAME]: v6 ? [address, v6.address] : address, ...config.dns?.names },
        this.egress,
      );
      this.udp.serve(DNS_PORT, this.dns, { sharing: "fallback", name: "the DNS responder" });
    }
    this.dhcp = config.dhcp?.enabled
      ? new DhcpServer(config.dhcp, { address, prefixLength: p, mtu })
      : undefined;
    if (this.dhcp) {
      this.udp.serve(DHCP_SERVER_PORT, this.dhcp, {
        broadcast: true,
        name: "the DHCP server",
        family: "ipv4",
      });
    }
    this.dhcpv6 = v6 && (config.dhcpv6?.enabled ?? config.dhcp?.enabled ?? false)
      ? new Dhcpv6Server(config.dhcpv6 ?? {}, { mac, dnsServer: v6.address })
      : undefined;
    if (this.dhcpv6) {
      this.udp.serve(DHCPV6_SERVER_PORT, this.dhcpv6, {
        broadcast: true,
        name: "the DHCPv6 server",
        family: "ipv6",
      });
    }

    // ICMP and IPv4 input on top.
    this.#icmp = new IcmpLayer({
      address,
      mtu,
      errorsPerSecond: rate,
      out: this.#ipv4Out,
      sinks: { tcp: this.tcp, udp: this.udp },
      counters,
    });
    this.reassembler = new Ipv4Reassembler(config.reassembly, this.quota.memory);
    this.#ipv4In = new Ipv4Input({
      ipv4,
      reassembler: this.reassembler,
      icmp: this.#icmp,
      tcp: this.tcp,
      udp: this.udp,
      outside: this.egress && {
        udp: (src, dst, bytes, now) => this.udp.inputOutside(src, dst, bytes, now),
        tcp: (src, dst, bytes, now, offload) =>
          this.tcp.inputOutside(src, dst, bytes, now, offload),
      },
    });

    // IPv6 beside it (stack_ipv6.ts): output, NDP, ICMPv6, input.
    if (v6) {
      const ip6 = this.#v6 = new StackIpv6({
        addressing: v6,
        mac,
        mtu,
        eth: this.#eth,
        counters,
        random,
        errorsPerSecond: rate,
        ndp: config.ndp,
        routerAdvert: config.routerAdvert,
        extLimits: config.ipv6ExtLimits,
        reassembly: config.ipv6Reassembly,
        memory: this.quota.memory,
        tcp: (src, dst, bytes, now) => this.tcp.input(src, dst, bytes, now),
        tcpTooBig: (local, remote, localPort, remotePort, seq, mtu, now) => {
          this.tcp.fragmentationNeeded(remote, remotePort, localPort, seq, mtu, now, local);
        },
        udp: this.udp,
        dhcpv6: this.dhcpv6 !== undefined,
        outside: this.egress && {
          udp: (src, dst, bytes, now) => this.udp.inputOutside(src, dst, bytes, now),
          tcp: (src, dst, bytes, now) => this.tcp.inputOutside(src, dst, bytes, now),
        },
      });
      this.tcp.setIpv6(ip6.out);
      this.ipv6 = ip6.addressing;
      this.neighbors = ip6.neighbors;
      this.pathMtu = ip6.pathMtu;
      this.ipv6Reassembler = ip6.reassembler;
      this.routerAdvertiser = ip6.routerAdvertiser;
    }
  }

  /** The largest Ethernet frame this stack accepts or emits. */
  get maxFrameLen(): number {
    return this.#eth.maxFrameLen;
  }

  /** ICMP error messages this stack sent, and those the rate limit suppressed. */
  get icmpErrorStats(): { sent: number; rateLimited: number } {
    return this.#icmp.errorStats;
  }

  /** ICMPv6 error messages this stack sent, and those the rate limit suppressed. */
  get icmpv6ErrorStats(): { sent: number; rateLimited: number } {
    return this.#v6?.errorStats ?? { sent: 0, rateLimited: 0 };
  }

  /**
   * Processes one received Ethernet frame. Never throws for any bytes: a frame
   * the stack cannot use is counted under `counters.drops[reason]`.
   * `offload` is what the link says of the frame (`FrameOffload`):
   * a TCPv4 GSO packet of up to 64 KiB (taken whole, as Linux's GRO would
   * deliver it), or a TCP checksum the link vouched for.
   */
  input(frame: Uint8Array, now: number, offload = 0): void {
    this.counters.rxFrames++;
    this.counters.rxBytes += frame.length;
    const reason = this.#eth.input(frame, now, offload);
    if (reason === undefined) this.counters.rxHandled++;
    else this.counters.drop(reason);
  }

  /**
   * What the link takes ({@linkcode LinkOffload} bits; 0, the default, for
   * finished frames only). With `TSO` the TCP layer sends segments of up to
   * 64 KiB to its peers, each with the peer's MSS as the segment size to cut
   * it into (`FrameOffload.GSO_TCPV4`, or `GSO_TCPV6` over IPv6); with
   * `CSUM` it leaves TCP checksums
   * partial for the link to finish. Set by the session when a tunnel with
   * segmentation offload attaches, cleared when it goes.
   */
  setLinkOffload(bits: number): void {
    this.tcp.linkOffload = bits & (LinkOffload.TSO | LinkOffload.CSUM);
  }

  /** What the link takes ({@linkcode Stack.setLinkOffload}). */
  get linkOffload(): number {
    return this.tcp.linkOffload;
  }

  /**
   * Runs timers due at `now`: ARP and neighbour-discovery retries, probes
   * and expiry, router advertisements, TCP timers, DHCP leases, reassembly.
   */
  poll(now: number): void {
    this.#arp.poll(now);
    this.#v6?.poll(now);
    this.tcp.poll(now);
    this.dhcp?.poll(now);
    for (const e of this.reassembler.poll(now)) {
      // RFC 792 / RFC 1122 §3.3.2: time exceeded, only when fragment zero arrived.
      if (e.firstFragment && e.dst === this.config.ipv4.address) {
        this.#icmp.sendError(
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
  takeDirty(): Array<TcpConnection | TcpListener | UdpEndpoint | StackEgress> {
    const tcp: Array<TcpConnection | TcpListener | UdpEndpoint | StackEgress> = this.tcp
      .takeDirty();
    const udp = this.udp.takeDirty();
    if (this.egress?.takeDirty()) tcp.push(this.egress);
    if (udp.length === 0) return tcp;
    if (tcp.length === 0) return udp;
    for (const u of udp) tcp.push(u);
    return tcp;
  }

  /**
   * Whether the stack can send to `dst`: for IPv4 ({@linkcode Stack.sendIpv4})
   * an on-link unicast address, the subnet broadcast or 255.255.255.255;
   * for IPv6 an address in the session's prefix or link-local, or a
   * multicast group, when the session has IPv6 (there is no gateway).
   */
  hasRoute(dst: IpAddress): boolean {
    if (typeof dst === "string") return this.#v6?.out.hasRoute(dst) ?? false;
    return this.#ipv4Out.hasRoute(dst);
  }

  /** The earliest time at which {@linkcode Stack.poll} has work, or undefined. */
  nextDeadline(): number | undefined {
    const d = earlier(
      earlier(this.arp.nextDeadline(), this.tcp.nextDeadline()),
      this.#v6?.nextDeadline(),
    );
    return earlier(earlier(d, this.reassembler.nextDeadline()), this.dhcp?.nextDeadline());
  }

  /**
   * Checks the stack's bookkeeping and returns every violation found (empty
   * when all hold): every received frame is handled or dropped for a reason
   * (`rxFrames === rxHandled + sum(drops)`), the ARP cache and IPv4
   * reassembly stay within their limits, the ARP cache resolves no martian or
   * off-link address, UDP receive queues stay within their limits, the DHCP
   * lease table within its pool, and the TCP layer's lists, queues and port
   * counts agree
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
    const { address, prefixLength } = this.config.ipv4;
    for (const e of this.arp.entries()) {
      if (
        e.mac &&
        (isIpv4MartianSource(e.ip, address, prefixLength) ||
          !ipv4InSubnet(e.ip, address, prefixLength))
      ) {
        bad.push(`ARP cache resolves ${formatIpv4Address(e.ip)}, not an on-link neighbour`);
      }
    }
    const leases = this.dhcp?.leases().length ?? 0;
    if (this.dhcp && leases > this.dhcp.poolSize) {
      bad.push(`DHCP holds ${leases} leases in a pool of ${this.dhcp.poolSize}`);
    }
    const r = this.reassembler;
    if (r.bytesHeld > r.limits.maxBytes || r.datagrams > r.limits.maxDatagrams) {
      bad.push(
        `reassembly holds ${r.bytesHeld} bytes in ${r.datagrams} datagrams, over its limits`,
      );
    }
    if (this.#v6) bad.push(...this.#v6.checkInvariants());
    const e = this.egress;
    if (e && (e.queued > e.limits.maxQueuedEvents || e.queuedBytes > e.limits.maxQueuedBytes)) {
      bad.push(`egress queues ${e.queued} events of ${e.queuedBytes} bytes, over its limits`);
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
   * attaches. (Router advertisements start with the first IPv6 packet heard
   * on the link: see `NdpLayer`.)
   */
  announce(): void {
    this.#arp.announce();
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
    return this.#ipv4Out.send(
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
    return this.#ipv4Out.send(dst, protocol, payloadLen, fill, now, options);
  }
}
