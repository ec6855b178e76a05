/**
 * Helpers of the frame fuzz tests: valid template frames for every protocol
 * the stack speaks, frame-level rewrites (IPv4 options, fragments, a fixed-up
 * TCP checksum after a header mutation), a check that an emitted frame is
 * well-formed, and {@linkcode TcpFuzzDriver}, which drives connections of a
 * {@linkcode TcpHarness} into every TCP state and throws mutated in-window
 * segments at them.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  ArpOperation,
  ArpPacket,
  ArpRepr,
  checksumAdd,
  checksumFinish,
  DhcpMessageType,
  DhcpOp,
  DhcpRepr,
  DHCPV6_ALL_RELAY_AGENTS_AND_SERVERS,
  ETHERNET_HEADER_LEN,
  EthernetFrame,
  EthernetRepr,
  EtherType,
  Icmpv4Packet,
  Icmpv4Repr,
  Icmpv6Packet,
  Icmpv6Repr,
  IpProtocol,
  Ipv4Packet,
  ipv4PseudoHeaderSum,
  Ipv4Repr,
  IPV6_ALL_MLDV2_ROUTERS,
  IPV6_ALL_NODES,
  IPV6_ALL_ROUTERS,
  IPV6_UNSPECIFIED,
  type Ipv6Address,
  ipv6LinkLocalFromMac,
  ipv6MulticastMac,
  Ipv6NextHeader,
  Ipv6Packet,
  ipv6PseudoHeaderSum,
  Ipv6Repr,
  ipv6SolicitedNode,
  isNdpType,
  NdpRepr,
  parseIpv4Address,
  parseIpv6Address,
  parseMacAddress,
  type SeededRandom,
  TcpFlags,
  TcpPacket,
  TcpRepr,
  UdpPacket,
  UdpRepr,
  walkIpv6Headers,
} from "../src/wire/mod.ts";
import { NetError } from "../src/errors/net_error.ts";
import { type PeerSegment, TcpHarness } from "../src/stack/tcp/tcp_harness.ts";
import type { TcpConnection, TcpState } from "../src/stack/tcp/tcp_connection.ts";
import { tupleKey } from "../src/stack/tcp/tcp_layer.ts";
import type { TcpListener } from "../src/stack/tcp/tcp_listener.ts";

/** The fuzzing peer's MAC. */
export const PEER_MAC: Uint8Array = parseMacAddress("52:54:00:12:34:56");
/** The fuzzing peer's address. */
export const PEER_IP: number = parseIpv4Address("10.0.2.15");
/** The stack's address. */
export const STACK_IP: number = parseIpv4Address("10.0.2.2");

const IP = ETHERNET_HEADER_LEN;

/** Wraps `payload` in an Ethernet header from the peer. */
function eth(dst: Uint8Array, etherType: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(ETHERNET_HEADER_LEN + payload.length);
  EthernetRepr.emit({ dst, src: PEER_MAC, etherType }, f);
  f.set(payload, ETHERNET_HEADER_LEN);
  return f;
}

/** An IPv4 packet (no options) from `src` to `dst` around `payload`. */
function ipv4(
  protocol: number,
  payload: Uint8Array,
  src = PEER_IP,
  dst = STACK_IP,
  extra: Partial<Ipv4Repr> = {},
): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  Ipv4Repr.emit({ src, dst, protocol, payloadLen: payload.length, ttl: 64, ...extra }, p);
  p.set(payload, 20);
  return p;
}

/**
 * Valid frames to mutate, one or more per protocol: IPv4 fragments, DNS,
 * ARP request and reply, ICMP echo (plain and with IPv4 options), a TCP SYN
 * with every option, a TCP ACK to a listener (a SYN-cookie candidate), UDP,
 * DHCP DISCOVER and REQUEST, and an ICMP fragmentation-needed quoting a TCP
 * segment (RFC 5927).
 */
export function templates(stackMac: Uint8Array): Uint8Array[] {
  const bcast = parseMacAddress("ff:ff:ff:ff:ff:ff");
  const arp = (operation: number) => {
    const b = new Uint8Array(28);
    ArpRepr.emit({
      operation,
      senderMac: PEER_MAC,
      senderIp: PEER_IP,
      targetMac: operation === ArpOperation.REQUEST ? new Uint8Array(6) : stackMac,
      targetIp: STACK_IP,
    }, b);
    return b;
  };
  const echoRepr: Icmpv4Repr = {
    type: "echo_request",
    ident: 1,
    seqNo: 1,
    data: new Uint8Array(56),
  };
  const echo = new Uint8Array(Icmpv4Repr.bufferLen(echoRepr));
  Icmpv4Repr.emit(echoRepr, echo);
  const tcp = (flags: number, withOptions: boolean) => {
    const r: TcpRepr = {
      srcPort: 40000,
      dstPort: 80,
      seqNumber: 12345,
      ackNumber: flags & TcpFlags.ACK ? 777 : 0,
      flags,
      windowLen: 64240,
      payload: new Uint8Array(flags & TcpFlags.SYN ? 0 : 10),
    };
    if (withOptions) {
      Object.assign(r, {
        mss: 1460,
        sackPermitted: true,
        timestamp: { value: 1, echo: 0 },
        windowScale: 7,
      });
    }
    const b = new Uint8Array(TcpRepr.bufferLen(r));
    TcpRepr.emit(r, b, PEER_IP, STACK_IP);
    return b;
  };
  const syn = tcp(TcpFlags.SYN, true);
  const udp = (
    srcPort: number,
    dstPort: number,
    payload: Uint8Array,
    src = PEER_IP,
    dst = STACK_IP,
  ) => {
    const r: UdpRepr = { srcPort, dstPort, payload };
    const b = new Uint8Array(UdpRepr.bufferLen(r));
    UdpRepr.emit(r, b, src, dst);
    return b;
  };
  const plainUdp = udp(5353, 5000, new Uint8Array(30));
  // The first fragment of a UDP datagram, and the last one.
  const big = udp(5353, 5000, new Uint8Array(100));
  const frag1 = ipv4(IpProtocol.UDP, big.subarray(0, 64), PEER_IP, STACK_IP, {
    ident: 7,
    moreFragments: true,
  });
  const frag2 = ipv4(IpProtocol.UDP, big.subarray(64), PEER_IP, STACK_IP, {
    ident: 7,
    fragmentOffset: 64,
  });
  const name = (s: string) => [s.length, ...s.split("").map((c) => c.charCodeAt(0))];
  const dnsQuery = Uint8Array.of(
    0xbe,
    0xef,
    1,
    0,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
    0, // header: RD, one question
    ...name("netisle"),
    ...name("internal"),
    0,
    0,
    1,
    0,
    1, // A, IN
  );
  const dhcp = (messageType: number) => {
    const r: DhcpRepr = {
      op: DhcpOp.REQUEST,
      hops: 0,
      xid: 0x1234,
      secs: 0,
      broadcast: true,
      ciaddr: 0,
      yiaddr: 0,
      siaddr: 0,
      giaddr: 0,
      chaddr: PEER_MAC,
      messageType,
      ...(messageType === DhcpMessageType.REQUEST
        ? { requestedIp: PEER_IP, serverId: STACK_IP }
        : {}),
    };
    const b = new Uint8Array(DhcpRepr.bufferLen(r));
    DhcpRepr.emit(r, b);
    return udp(68, 67, b, 0, 0xffffffff);
  };
  // ICMP fragmentation needed, quoting the IPv4 header and 8 bytes of a TCP segment we "sent".
  const quoted = ipv4(IpProtocol.TCP, tcp(TcpFlags.ACK, false), STACK_IP, PEER_IP, {
    dontFragment: true,
  });
  const fragNeededRepr: Icmpv4Repr = {
    type: "dest_unreachable",
    code: 4,
    nextHopMtu: 576,
    data: quoted.subarray(0, 28),
  };
  const fragNeeded = new Uint8Array(Icmpv4Repr.bufferLen(fragNeededRepr));
  Icmpv4Repr.emit(fragNeededRepr, fragNeeded);
  const echoFrame = eth(stackMac, EtherType.IPV4, ipv4(IpProtocol.ICMP, echo));
  return [
    eth(stackMac, EtherType.IPV4, frag1),
    eth(stackMac, EtherType.IPV4, frag2),
    eth(stackMac, EtherType.IPV4, ipv4(IpProtocol.UDP, udp(5353, 53, dnsQuery))),
    eth(bcast, EtherType.ARP, arp(ArpOperation.REQUEST)),
    eth(stackMac, EtherType.ARP, arp(ArpOperation.REPLY)),
    echoFrame,
    withIpOptions(echoFrame, Uint8Array.of(7, 7, 4, 0, 0, 0, 0, 0)), // record route
    eth(stackMac, EtherType.IPV4, ipv4(IpProtocol.TCP, syn)),
    eth(stackMac, EtherType.IPV4, ipv4(IpProtocol.TCP, tcp(TcpFlags.ACK, false))),
    eth(stackMac, EtherType.IPV4, ipv4(IpProtocol.UDP, plainUdp)),
    eth(bcast, EtherType.IPV4, ipv4(IpProtocol.UDP, dhcp(DhcpMessageType.DISCOVER), 0, 0xffffffff)),
    eth(bcast, EtherType.IPV4, ipv4(IpProtocol.UDP, dhcp(DhcpMessageType.REQUEST), 0, 0xffffffff)),
    eth(stackMac, EtherType.IPV4, ipv4(IpProtocol.ICMP, fragNeeded)),
  ];
}

/** The outside address of the egress templates (the fuzzed sessions' "internet"). */
export const FUZZ_OUTSIDE: number = parseIpv4Address("198.18.0.10");

/**
 * Valid frames of a session with egress, to mutate: a TCP SYN (every
 * option), an ACK with data and a FIN to outside addresses (ports 80 and 81,
 * and a second host), UDP to outside ports 7 and 53, a DNS query for a name
 * the session does not own (deferred to the upstream), an ICMP echo to
 * an outside address; over IPv6 a SYN, data and a FIN to 2001:db8::10:80,
 * a SYN to a denied ULA, UDP to 2001:db8::10:7 (also with hop limit 1).
 */
export function egressTemplates(stackMac: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const other = parseIpv4Address("198.18.0.11");
  const tcp = (dst: number, dstPort: number, flags: number, data: number, options: boolean) => {
    const r: TcpRepr = {
      srcPort: 41000 + (dstPort % 7),
      dstPort,
      seqNumber: 5000,
      ackNumber: flags & TcpFlags.ACK ? 9000 : 0,
      flags,
      windowLen: 64240,
      payload: new Uint8Array(data),
    };
    if (options) {
      Object.assign(r, { mss: 1460, sackPermitted: true, timestamp: { value: 1, echo: 0 } });
    }
    const b = new Uint8Array(TcpRepr.bufferLen(r));
    TcpRepr.emit(r, b, PEER_IP, dst);
    return eth(stackMac, EtherType.IPV4, ipv4(IpProtocol.TCP, b, PEER_IP, dst));
  };
  const udp = (dst: number, dstPort: number, payload: Uint8Array) => {
    const r: UdpRepr = { srcPort: 42000 + dstPort, dstPort, payload };
    const b = new Uint8Array(UdpRepr.bufferLen(r));
    UdpRepr.emit(r, b, PEER_IP, dst);
    return eth(stackMac, EtherType.IPV4, ipv4(IpProtocol.UDP, b, PEER_IP, dst));
  };
  for (const [dst, port] of [[FUZZ_OUTSIDE, 80], [FUZZ_OUTSIDE, 81], [other, 80]]) {
    out.push(tcp(dst, port, TcpFlags.SYN, 0, true));
    out.push(tcp(dst, port, TcpFlags.ACK | TcpFlags.PSH, 100, false));
  }
  out.push(tcp(FUZZ_OUTSIDE, 80, TcpFlags.FIN | TcpFlags.ACK, 0, false));
  out.push(udp(FUZZ_OUTSIDE, 7, new Uint8Array(40)));
  out.push(udp(FUZZ_OUTSIDE, 53, new Uint8Array(30)));
  const label = (s: string) => [s.length, ...s.split("").map((c) => c.charCodeAt(0))];
  out.push(
    eth(
      stackMac,
      EtherType.IPV4,
      ipv4(
        IpProtocol.UDP,
        (() => {
          const q = Uint8Array.of(
            0x12,
            0x34,
            1,
            0,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            0,
            ...label("www"),
            ...label("example"),
            ...label("test"),
            0,
            0,
            1,
            0,
            1,
          );
          const r: UdpRepr = { srcPort: 5353, dstPort: 53, payload: q };
          const b = new Uint8Array(UdpRepr.bufferLen(r));
          UdpRepr.emit(r, b, PEER_IP, STACK_IP);
          return b;
        })(),
      ),
    ),
  );
  const echoRepr: Icmpv4Repr = {
    type: "echo_request",
    ident: 2,
    seqNo: 1,
    data: new Uint8Array(8),
  };
  const echo = new Uint8Array(Icmpv4Repr.bufferLen(echoRepr));
  Icmpv4Repr.emit(echoRepr, echo);
  out.push(eth(stackMac, EtherType.IPV4, ipv4(IpProtocol.ICMP, echo, PEER_IP, FUZZ_OUTSIDE)));
  // Over IPv6 (issue 17): TCP and UDP to an off-link address, a denied ULA, hop limit 1.
  const tcp6 = (dst: Ipv6Address, flags: number, data: number, hopLimit = 64) => {
    const r: TcpRepr = {
      srcPort: 43000,
      dstPort: 80,
      seqNumber: 5000,
      ackNumber: flags & TcpFlags.ACK ? 9000 : 0,
      flags,
      windowLen: 64240,
      payload: new Uint8Array(data),
      ...(flags & TcpFlags.SYN ? { mss: 1440, sackPermitted: true, windowScale: 7 } : {}),
    };
    const b = new Uint8Array(TcpRepr.bufferLen(r));
    TcpRepr.emit(r, b, PEER_IP6, dst);
    return ipv6Frame(IpProtocol.TCP, b, { dst, dstMac: stackMac, hopLimit });
  };
  const udp6 = (dst: Ipv6Address, dstPort: number, hopLimit = 64) => {
    const r: UdpRepr = { srcPort: 44000, dstPort, payload: new Uint8Array(24) };
    const b = new Uint8Array(UdpRepr.bufferLen(r));
    UdpRepr.emit(r, b, PEER_IP6, dst);
    return ipv6Frame(IpProtocol.UDP, b, { dst, dstMac: stackMac, hopLimit });
  };
  out.push(tcp6(FUZZ_OUTSIDE6, TcpFlags.SYN, 0));
  out.push(tcp6(FUZZ_OUTSIDE6, TcpFlags.ACK | TcpFlags.PSH, 100));
  out.push(tcp6(FUZZ_OUTSIDE6, TcpFlags.FIN | TcpFlags.ACK, 0));
  out.push(tcp6(parseIpv6Address("fd12::1"), TcpFlags.SYN, 0));
  out.push(udp6(FUZZ_OUTSIDE6, 7));
  out.push(udp6(FUZZ_OUTSIDE6, 7, 1));
  return out;
}

/** The IPv6 outside address of the egress templates. */
export const FUZZ_OUTSIDE6: Ipv6Address = parseIpv6Address("2001:db8::10");

/** The fuzzing peer's SLAAC address in the session's fd00::/64. */
export const PEER_IP6: Ipv6Address = parseIpv6Address("fd00::5054:ff:fe12:3456");
/** The fuzzing peer's link-local address. */
export const PEER_LL6: Ipv6Address = ipv6LinkLocalFromMac(PEER_MAC);
/** The stack's IPv6 address (the default). */
export const STACK_IP6: Ipv6Address = parseIpv6Address("fd00::2");

/**
 * An IPv6 frame from the peer: `ext` (extension headers, their next-header
 * bytes already set) between the fixed header and `upper` (of `protocol`),
 * whose checksum is filled in over the IPv6 pseudo-header.
 */
export function ipv6Frame(
  protocol: number,
  upper: Uint8Array,
  o: {
    src?: Ipv6Address;
    dst?: Ipv6Address;
    hopLimit?: number;
    ext?: Uint8Array;
    first?: number;
    dstMac?: Uint8Array;
  } = {},
): Uint8Array {
  const src = o.src ?? PEER_IP6;
  const dst = o.dst ?? STACK_IP6;
  const ext = o.ext ?? new Uint8Array(0);
  const p = new Uint8Array(40 + ext.length + upper.length);
  Ipv6Repr.emit({
    src,
    dst,
    nextHeader: ext.length ? o.first ?? Ipv6NextHeader.DESTINATION_OPTIONS : protocol,
    payloadLen: p.length - 40,
    hopLimit: o.hopLimit ?? 64,
  }, p);
  p.set(ext, 40);
  const l4 = 40 + ext.length;
  p.set(upper, l4);
  const at = protocol === IpProtocol.TCP ? 16 : protocol === IpProtocol.UDP ? 6 : 2;
  if (
    upper.length >= at + 2 &&
    (protocol === IpProtocol.TCP || protocol === IpProtocol.UDP || protocol === IpProtocol.ICMPV6)
  ) {
    p[l4 + at] = p[l4 + at + 1] = 0;
    const c = checksumFinish(
      checksumAdd(ipv6PseudoHeaderSum(src, dst, protocol, upper.length), p, l4),
    );
    p[l4 + at] = c >>> 8;
    p[l4 + at + 1] = c & 0xff;
  }
  const mac = o.dstMac ?? (dst.charCodeAt(0) >>> 8 === 0xff ? ipv6MulticastMac(dst) : undefined);
  return eth(mac ?? STACK_MAC_PLACEHOLDER, EtherType.IPV6, p);
}

/** Replaced by the stack's MAC in {@linkcode ipv6Templates}. */
const STACK_MAC_PLACEHOLDER = new Uint8Array([0xee, 0xee, 0xee, 0xee, 0xee, 0xee]);

function withDstMac(frame: Uint8Array, stackMac: Uint8Array): Uint8Array {
  if (frame.subarray(0, 6).every((b) => b === 0xee)) frame.set(stackMac, 0);
  return frame;
}

/**
 * Valid IPv6 frames to mutate: echo requests (to fd00::2, the link-local
 * address and all nodes), neighbour solicitations (resolution, a DAD probe
 * for the stack's address and for another one), an advertisement, a router
 * solicitation and another router's advertisement, an MLDv2 report behind a
 * hop-by-hop router alert, UDP and a TCP SYN (closed ports), a packet too
 * big quoting a packet of the stack's, an unknown next header, a fragment,
 * UDP to the DNS responder (AAAA), to port 5000 and a DHCPv6
 * Information-request to ff02::1:2, the first and last fragments of a
 * 64-byte echo request (reassembled when both arrive, RFC 8200 §4.5), and
 * chains of extension headers.
 */
export function ipv6Templates(stackMac: Uint8Array): Uint8Array[] {
  const stackLl = ipv6LinkLocalFromMac(stackMac);
  const icmp = (repr: Icmpv6Repr) => {
    const b = new Uint8Array(Icmpv6Repr.bufferLen(repr));
    Icmpv6Repr.emit(repr, b, IPV6_UNSPECIFIED, IPV6_UNSPECIFIED); // checksum redone by ipv6Frame
    return b;
  };
  const ndp = (repr: NdpRepr) => {
    const b = new Uint8Array(NdpRepr.bufferLen(repr));
    NdpRepr.emit(repr, b, IPV6_UNSPECIFIED, IPV6_UNSPECIFIED);
    return b;
  };
  const echo = icmp({ type: "echo_request", ident: 3, seqNo: 1, data: new Uint8Array(24) });
  const ns = (target: Ipv6Address, sll: boolean) =>
    ndp({ type: "neighbor_solicit", target, options: sll ? { sourceLinkAddr: PEER_MAC } : {} });
  const quoted = new Uint8Array(48);
  Ipv6Repr.emit(
    { src: STACK_IP6, dst: PEER_IP6, nextHeader: 58, payloadLen: 1400, hopLimit: 64 },
    quoted,
  );
  const tcpSyn = new Uint8Array(20);
  tcpSyn.set([0x9c, 0x40, 0, 22, 0, 0, 0x30, 0x39, 0, 0, 0, 0, 0x50, TcpFlags.SYN, 0xfa, 0xf0]);
  const udp = new Uint8Array(16);
  udp.set([0x9c, 0x40, 0, 53, 0, 16]);
  const alert = Uint8Array.of(58, 0, 5, 2, 0, 0, 1, 0); // hop-by-hop: router alert (MLD), PadN
  const mld = icmp({
    type: "other",
    icmpType: 143,
    code: 0,
    restOfHeader: 1,
    data: new Uint8Array(20).fill(0xff, 4, 6),
  });
  const chain = (...headers: number[][]) => Uint8Array.from(headers.flat());
  // UDP over IPv6 to services and a bound port (the checksum is filled in by ipv6Frame).
  const udpDatagram = (srcPort: number, dstPort: number, payload: Uint8Array) => {
    const b = new Uint8Array(8 + payload.length);
    b.set([srcPort >>> 8, srcPort & 0xff, dstPort >>> 8, dstPort & 0xff, b.length >>> 8, b.length]);
    b.set(payload, 8);
    return b;
  };
  // AAAA netisle.internal (RFC 3596), and a DHCPv6 Information-request (RFC 8415 §18.2.6).
  const dnsAaaa = Uint8Array.from([
    0x12,
    0x34,
    1,
    0,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    ...[7, ..."netisle"].map((c) => typeof c === "number" ? c : c.charCodeAt(0)),
    ...[8, ..."internal"].map((c) => typeof c === "number" ? c : c.charCodeAt(0)),
    0,
    0,
    28,
    0,
    1,
  ]);
  const dhcpv6InfoRequest = Uint8Array.from([
    11,
    0x1a,
    0x2b,
    0x3c,
    ...[0, 1, 0, 10, 0, 3, 0, 1, ...PEER_MAC],
    ...[0, 6, 0, 4, 0, 23, 0, 24],
    ...[0, 8, 0, 2, 0, 0],
  ]);
  // An echo request whose checksum covers the whole message, cut in two fragments.
  const whole = new Uint8Array(64);
  Icmpv6Repr.emit(
    { type: "echo_request", ident: 4, seqNo: 2, data: new Uint8Array(56).fill(0x5a) },
    whole,
    PEER_IP6,
    STACK_IP6,
  );
  // Protocol 0: no checksum to fill in, the fragment's is already over the whole message.
  const part = (offset: number, len: number, more: boolean) =>
    ipv6Frame(0, whole.subarray(offset, offset + len), {
      ext: chain([58, 0, offset >>> 8, (offset & 0xf8) | (more ? 1 : 0), 0, 0, 0x77, 0x77]),
      first: Ipv6NextHeader.FRAGMENT,
    });
  const frames = [
    ipv6Frame(58, echo),
    ipv6Frame(58, echo, { src: PEER_LL6, dst: stackLl }),
    ipv6Frame(58, echo, { src: PEER_LL6, dst: IPV6_ALL_NODES }),
    ipv6Frame(58, ns(STACK_IP6, true), {
      src: PEER_LL6,
      dst: ipv6SolicitedNode(STACK_IP6),
      hopLimit: 255,
    }),
    ipv6Frame(58, ns(STACK_IP6, false), {
      src: IPV6_UNSPECIFIED,
      dst: ipv6SolicitedNode(STACK_IP6),
      hopLimit: 255,
    }),
    ipv6Frame(58, ns(parseIpv6Address("fd00::1:0:2"), false), {
      src: IPV6_UNSPECIFIED,
      dst: ipv6SolicitedNode(STACK_IP6),
      hopLimit: 255,
    }),
    ipv6Frame(58, ns(stackLl, true), { src: PEER_IP6, dst: stackLl, hopLimit: 255 }),
    ipv6Frame(
      58,
      ndp({
        type: "neighbor_advert",
        router: false,
        solicited: true,
        override: true,
        target: PEER_IP6,
        options: { targetLinkAddr: PEER_MAC },
      }),
      { hopLimit: 255 },
    ),
    ipv6Frame(58, ndp({ type: "router_solicit", options: { sourceLinkAddr: PEER_MAC } }), {
      src: PEER_LL6,
      dst: IPV6_ALL_ROUTERS,
      hopLimit: 255,
    }),
    ipv6Frame(
      58,
      ndp({
        type: "router_advert",
        curHopLimit: 64,
        managed: false,
        other: false,
        routerLifetime: 1800,
        reachableTime: 0,
        retransTimer: 0,
        options: {
          sourceLinkAddr: PEER_MAC,
          mtu: 1500,
          prefixes: [{
            prefix: parseIpv6Address("fd00::"),
            prefixLength: 64,
            onLink: true,
            autonomous: true,
            validLifetime: 1,
            preferredLifetime: 1,
          }],
          rdnss: [{ lifetime: 1, servers: [PEER_IP6] }],
        },
      }),
      { src: PEER_LL6, dst: IPV6_ALL_NODES, hopLimit: 255 },
    ),
    ipv6Frame(58, mld, {
      src: PEER_LL6,
      dst: IPV6_ALL_MLDV2_ROUTERS,
      hopLimit: 1,
      ext: alert,
      first: 0,
    }),
    ipv6Frame(17, udp),
    ipv6Frame(17, udpDatagram(5353, 53, dnsAaaa)),
    ipv6Frame(17, udpDatagram(40000, 5000, new Uint8Array(12)), { src: PEER_LL6, dst: stackLl }),
    ipv6Frame(17, udpDatagram(546, 547, dhcpv6InfoRequest), {
      src: PEER_LL6,
      dst: DHCPV6_ALL_RELAY_AGENTS_AND_SERVERS,
    }),
    ipv6Frame(6, tcpSyn),
    ipv6Frame(58, icmp({ type: "packet_too_big", mtu: 1300, data: quoted })),
    ipv6Frame(253, new Uint8Array(8)),
    ipv6Frame(58, echo, { ext: chain([58, 0, 0, 1, 0, 0, 0, 1]), first: Ipv6NextHeader.FRAGMENT }),
    part(0, 32, true),
    part(32, 32, false),
    ipv6Frame(58, echo, {
      ext: chain([60, 0, 1, 4, 0, 0, 0, 0], [43, 0, 0x1e, 2, 0, 0, 1, 0], [
        58,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
      ]),
      first: 60,
    }),
  ];
  return frames.map((f) => withDstMac(f, stackMac));
}

/**
 * A hostile IPv6 frame: a random chain of up to 12 extension headers
 * (hop-by-hop anywhere, destination options with Pad1, PadN, router alerts
 * and unknown options of every action, routing headers with and without
 * segments left, atomic and real fragments; lengths sometimes running past
 * the packet) in front of an ICMPv6 echo request or UDP datagram with a
 * valid checksum, to the stack's address or a group it joined.
 */
export function hostileIpv6Chain(rnd: SeededRandom, stackMac: Uint8Array): Uint8Array {
  const n = rnd.u32() % 13;
  const types = [0, 60, 43, 44];
  const headers: number[][] = [];
  const kinds: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = types[rnd.u32() % types.length];
    kinds.push(t);
    if (t === 44) {
      const fo = rnd.u32() % 4 === 0 ? (rnd.u32() & 0xfff9) : 0;
      headers.push([0, 0, fo >>> 8, fo & 0xff, 0, 0, 0, rnd.u32() & 0xff]);
      continue;
    }
    const units = rnd.u32() % 8 === 0 ? rnd.u32() % 256 : rnd.u32() % 3;
    const h = new Array<number>((units + 1) * 8).fill(0);
    h[1] = units;
    if (t === 43) {
      h[2] = rnd.u32() % 5;
      h[3] = rnd.u32() % 3 === 0 ? rnd.u32() % 4 : 0;
    } else {
      for (let i = 2; i < h.length;) {
        const pick = rnd.u32() % 6;
        if (pick === 0) {
          h[i++] = 0; // Pad1
          continue;
        }
        const optType = [1, 5, 0x1e, 0x5e, 0x9e, 0xde][pick];
        const olen = optType === 5 && rnd.u32() % 4 ? 2 : rnd.u32() % 12;
        if (i + 1 >= h.length) {
          h[i++] = 0; // room for Pad1 only
          continue;
        }
        h[i] = optType;
        h[i + 1] = olen;
        i += 2 + olen;
      }
    }
    headers.push(h);
  }
  const udpLike = rnd.u32() % 3 === 0;
  const protocol = udpLike ? IpProtocol.UDP : IpProtocol.ICMPV6;
  const upper = udpLike
    ? Uint8Array.of(0x9c, 0x40, 0, 53, 0, 12, 0, 0, 1, 2, 3, 4)
    : Uint8Array.of(128, 0, 0, 0, 0, 9, 0, 1, 5, 5);
  for (let i = 0; i < headers.length; i++) {
    headers[i][0] = i + 1 < headers.length ? kinds[i + 1] : protocol;
  }
  let ext = Uint8Array.from(headers.flat());
  if (ext.length && rnd.u32() % 8 === 0) ext = ext.subarray(0, rnd.u32() % ext.length); // cut short
  const dst = rnd.u32() % 4 === 0 ? IPV6_ALL_NODES : STACK_IP6;
  const frame = ipv6Frame(protocol, upper, { dst, ext, first: kinds[0] ?? protocol });
  return withDstMac(frame, stackMac);
}

/** Rewrites the IPv4 header checksum of an Ethernet frame in place. */
export function fixIpv4Checksum(frame: Uint8Array): void {
  const ihl = (frame[IP] & 0xf) * 4;
  frame[IP + 10] = frame[IP + 11] = 0;
  const c = checksumFinish(checksumAdd(0, frame, IP, IP + ihl));
  frame[IP + 10] = c >>> 8;
  frame[IP + 11] = c & 0xff;
}

/**
 * A copy of an Ethernet/IPv4 frame with `options` (a multiple of 4 bytes)
 * inserted into the IPv4 header (IHL grows; checksums stay valid).
 */
export function withIpOptions(frame: Uint8Array, options: Uint8Array): Uint8Array {
  const ihl = (frame[IP] & 0xf) * 4;
  const out = new Uint8Array(frame.length + options.length);
  out.set(frame.subarray(0, IP + ihl));
  out.set(options, IP + ihl);
  out.set(frame.subarray(IP + ihl), IP + ihl + options.length);
  out[IP] = 0x40 | ((ihl + options.length) / 4);
  const total = ((frame[IP + 2] << 8) | frame[IP + 3]) + options.length;
  out[IP + 2] = total >>> 8;
  out[IP + 3] = total & 0xff;
  fixIpv4Checksum(out);
  return out;
}

/**
 * Splits an Ethernet/IPv4 frame (no IPv4 options) into two fragments at
 * payload offset `at` (rounded down to 8, at least 8); DF is cleared.
 */
export function fragmentFrame(frame: Uint8Array, at: number, ident: number): Uint8Array[] {
  const payload = frame.subarray(IP + 20);
  const cut = Math.max(8, at & ~7);
  if (cut >= payload.length) return [frame];
  const part = (off: number, end: number, more: boolean) => {
    const f = new Uint8Array(IP + 20 + (end - off));
    f.set(frame.subarray(0, IP + 20));
    f.set(payload.subarray(off, end), IP + 20);
    const total = 20 + end - off;
    f[IP + 2] = total >>> 8;
    f[IP + 3] = total & 0xff;
    f[IP + 4] = ident >>> 8;
    f[IP + 5] = ident & 0xff;
    const fo = (off / 8) | (more ? 0x2000 : 0);
    f[IP + 6] = fo >>> 8;
    f[IP + 7] = fo & 0xff;
    fixIpv4Checksum(f);
    return f;
  };
  return [part(0, cut, true), part(cut, payload.length, false)];
}

/** Recomputes the TCP checksum of an Ethernet/IPv4(no options)/TCP frame in place. */
export function fixTcpChecksum(frame: Uint8Array): void {
  const seg = IP + 20;
  const len = frame.length - seg;
  frame[seg + 16] = frame[seg + 17] = 0;
  const sum = ipv4PseudoHeaderSum(PEER_IP, STACK_IP, IpProtocol.TCP, len);
  const c = checksumFinish(checksumAdd(sum, frame, seg, frame.length));
  frame[seg + 16] = c >>> 8;
  frame[seg + 17] = c & 0xff;
}

/**
 * Makes the transport checksum of an Ethernet/IPv4 frame valid again after a
 * payload mutation, so the mutation reaches the parsers above it: UDP gets
 * checksum 0 ("none", RFC 768), TCP and ICMP are recomputed. Fragments and
 * truncated frames are left alone.
 */
export function fixL4Checksum(frame: Uint8Array): void {
  if (frame.length >= IP + 40 && frame[IP - 2] === 0x86 && frame[IP - 1] === 0xdd) {
    fixIpv6L4Checksum(frame);
    return;
  }
  if (frame.length < IP + 20 || frame[IP - 2] !== 0x08 || frame[IP - 1] !== 0) return;
  const ihl = (frame[IP] & 0xf) * 4;
  const total = (frame[IP + 2] << 8) | frame[IP + 3];
  const l4 = IP + ihl;
  const end = IP + total;
  if (ihl < 20 || end > frame.length || end < l4 || (frame[IP + 6] & 0x3f) || frame[IP + 7]) return;
  const proto = frame[IP + 9];
  const rd = (o: number) =>
    ((frame[o] << 24) | (frame[o + 1] << 16) | (frame[o + 2] << 8) | frame[o + 3]) >>> 0;
  let at: number;
  let sum = 0;
  if (proto === IpProtocol.UDP && end - l4 >= 8) {
    frame[l4 + 6] = frame[l4 + 7] = 0;
    return;
  } else if (proto === IpProtocol.TCP && end - l4 >= 20) {
    at = l4 + 16;
    sum = ipv4PseudoHeaderSum(rd(IP + 12), rd(IP + 16), IpProtocol.TCP, end - l4);
  } else if (proto === IpProtocol.ICMP && end - l4 >= 4) {
    at = l4 + 2;
  } else return;
  frame[at] = frame[at + 1] = 0;
  const c = checksumFinish(checksumAdd(sum, frame, l4, end));
  frame[at] = c >>> 8;
  frame[at + 1] = c & 0xff;
}

/** The IPv6 part of {@linkcode fixL4Checksum}: finds the upper layer with the wire's walker. */
function fixIpv6L4Checksum(frame: Uint8Array): void {
  const pkt = Ipv6Packet.parse(frame.subarray(IP));
  if (!pkt.ok) return;
  const chain = walkIpv6Headers(pkt.value);
  if (!chain.ok || chain.value.fragment) return;
  const { protocol, payload } = chain.value;
  const at = protocol === IpProtocol.TCP ? 16 : protocol === IpProtocol.UDP ? 6 : 2;
  if (![IpProtocol.TCP, IpProtocol.UDP, IpProtocol.ICMPV6].includes(protocol as 6)) return;
  if (payload.length < at + 2) return;
  payload[at] = payload[at + 1] = 0;
  const sum = ipv6PseudoHeaderSum(pkt.value.src, pkt.value.dst, protocol, payload.length);
  // UDP over IPv6 sends a computed 0 as 0xffff (RFC 8200 §8.1).
  const c = checksumFinish(checksumAdd(sum, payload)) ||
    (protocol === IpProtocol.UDP ? 0xffff : 0);
  payload[at] = c >>> 8;
  payload[at + 1] = c & 0xff;
}

/** Asserts that an emitted IPv6 packet parses: header chain, checksum, NDP messages. */
function assertWellFormedIpv6(payload: Uint8Array): void {
  const ip = Ipv6Packet.parse(payload);
  assert.ok(ip.ok, "emitted IPv6 parses");
  const chain = walkIpv6Headers(ip.value);
  assert.ok(chain.ok && chain.value.headers === 0, "emitted IPv6 has no extension header");
  const { protocol, payload: upper } = chain.value;
  assert.ok(
    [IpProtocol.ICMPV6, IpProtocol.TCP, IpProtocol.UDP].includes(protocol as 58),
    `emitted next header ${protocol}`,
  );
  const sum = ipv6PseudoHeaderSum(ip.value.src, ip.value.dst, protocol, upper.length);
  assert.equal(checksumFinish(checksumAdd(sum, upper)), 0, "emitted IPv6 upper-layer checksum");
  if (protocol === IpProtocol.UDP) {
    const udp = UdpPacket.parse(upper);
    assert.ok(udp.ok && udp.value.length === upper.length, "emitted UDP over IPv6 parses");
    assert.notEqual(udp.value.checksum, 0, "UDP over IPv6 always has a checksum (RFC 8200 §8.1)");
  }
  if (protocol === IpProtocol.ICMPV6) {
    const icmp = Icmpv6Packet.parse(upper);
    assert.ok(icmp.ok, "emitted ICMPv6 parses");
    if (isNdpType(icmp.value.type)) {
      assert.equal(ip.value.hopLimit, 255, "NDP goes out with hop limit 255");
      assert.ok(NdpRepr.parse(icmp.value).ok, "emitted NDP parses");
    } else {
      assert.ok(Icmpv6Repr.parse(icmp.value, ip.value.src, ip.value.dst).ok);
      assert.ok(
        ip.value.bytes.length <= 1280 || icmp.value.type >= 128,
        "ICMPv6 errors fit 1280 bytes",
      );
    }
  }
}

/** Asserts that a frame the stack emitted parses cleanly at every layer, checksums included. */
export function assertWellFormed(frame: Uint8Array): void {
  const e = EthernetFrame.parse(frame);
  assert.ok(e.ok, "emitted Ethernet frame parses");
  if (e.value.etherType === EtherType.ARP) {
    const p = ArpPacket.parse(e.value.payload);
    assert.ok(p.ok && ArpRepr.parse(p.value).ok, "emitted ARP parses");
    return;
  }
  if (e.value.etherType === EtherType.IPV6) {
    assertWellFormedIpv6(e.value.payload);
    return;
  }
  assert.equal(e.value.etherType, EtherType.IPV4);
  const ip = Ipv4Packet.parse(e.value.payload);
  assert.ok(ip.ok, "emitted IPv4 parses");
  const ipr = Ipv4Repr.parse(ip.value);
  assert.ok(ipr.ok, "emitted IPv4 has a valid checksum");
  if (ipr.value.moreFragments || (ipr.value.fragmentOffset ?? 0) > 0) return;
  const body = ip.value.payload;
  if (ipr.value.protocol === IpProtocol.ICMP) {
    const icmp = Icmpv4Packet.parse(body);
    assert.ok(icmp.ok && Icmpv4Repr.parse(icmp.value).ok, "emitted ICMP parses");
  } else if (ipr.value.protocol === IpProtocol.TCP) {
    const t = TcpPacket.parse(body);
    assert.ok(
      t.ok && TcpRepr.parse(t.value, ipr.value.src, ipr.value.dst).ok,
      "emitted TCP parses",
    );
  } else if (ipr.value.protocol === IpProtocol.UDP) {
    const u = UdpPacket.parse(body);
    assert.ok(
      u.ok && UdpRepr.parse(u.value, ipr.value.src, ipr.value.dst).ok,
      "emitted UDP parses",
    );
  }
}

/** The TCP states the driver steers connections into. */
export const FUZZ_TARGET_STATES: readonly TcpState[] = [
  "SYN_SENT",
  "SYN_RECEIVED",
  "ESTABLISHED",
  "FIN_WAIT_1",
  "FIN_WAIT_2",
  "CLOSE_WAIT",
  "LAST_ACK",
  "CLOSING",
  "TIME_WAIT",
];

/** The driver's stack holds at most this many connections (then refuses or answers with cookies). */
export const FUZZ_MAX_CONNECTIONS = 128;
/** The listener port with a roomy backlog. */
export const FUZZ_PORT = 80;
/** The listener port with a backlog of 2: its SYN queue overflows into SYN cookies. */
export const FUZZ_COOKIE_PORT = 81;

const EMPTY = new Uint8Array(0);

/**
 * Drives connections of a harness stack into every TCP state and injects
 * mutated copies of valid in-window segments at them. Counts every frame it
 * gives the stack in `sent`, and the state of the connection each mutated
 * segment was aimed at in `hits`.
 */
export class TcpFuzzDriver {
  readonly h: TcpHarness;
  readonly rnd: SeededRandom;
  readonly listener: TcpListener;
  readonly cookieListener: TcpListener;
  /** Frames given to the stack. */
  sent = 0;
  /** Frames the stack emitted (all checked well-formed). */
  emitted = 0;
  /** Mutated segments by the state of the connection they were aimed at. */
  readonly hits: Record<string, number> = {};
  /** Connections seen in each state right after being steered there. */
  readonly reached: Record<string, number> = {};
  /** Connections the driver tracks (pruned once closed). */
  conns: TcpConnection[] = [];
  #port = 1024;
  #ts = 1;
  #ident = 1;
  #payload = new Uint8Array(2048);

  /** Creates a harness stack with small buffers and limits so they are reached. */
  constructor(rnd: SeededRandom, seed: number) {
    this.rnd = rnd;
    this.h = new TcpHarness({
      seed,
      tcp: {
        sendBufferBytes: 8192,
        recvBufferBytes: 8192,
        keepaliveIdleMs: 30_000,
        timeWaitMs: 4000,
        finWait2TimeoutMs: 8000,
      },
      tcpLimits: { maxConnections: FUZZ_MAX_CONNECTIONS, maxBacklog: 32 },
    });
    this.listener = this.h.stack.tcp.listen(FUZZ_PORT, 32);
    this.cookieListener = this.h.stack.tcp.listen(FUZZ_COOKIE_PORT, 2);
    rnd.fill(this.#payload);
  }

  /** Gives one frame to the stack and checks whatever it emits. */
  input(frame: Uint8Array): void {
    this.sent++;
    this.h.stack.input(frame, this.h.now);
    this.drainChecked();
  }

  /**
   * Delivers pending socket events the way a session does after releasing
   * its core lock (here nobody listens: the bits are cleared), so the
   * stack's dirty list does not keep closed connections alive.
   */
  deliverEvents(): void {
    for (const o of this.h.stack.takeDirty()) o.events = 0;
  }

  /** Removes the stack's emitted frames, checking each; returns them. */
  drainChecked(): Uint8Array[] {
    const out = this.h.link.drain();
    for (const f of out) assertWellFormed(f);
    this.emitted += out.length;
    return out;
  }

  #inject(seg: PeerSegment): Uint8Array[] {
    this.sent++;
    this.h.stack.input(this.h.frame(seg), this.h.now);
    return this.drainChecked();
  }

  #nextPort(): number {
    for (;;) {
      this.#port = this.#port >= 65000 ? 1024 : this.#port + 1;
      const p = this.#port;
      const t = this.h.stack.tcp;
      if (
        !t.active.has(tupleKey(PEER_IP, p, FUZZ_PORT)) &&
        !t.timeWait.has(tupleKey(PEER_IP, p, FUZZ_PORT)) &&
        !t.active.has(tupleKey(PEER_IP, p, FUZZ_COOKIE_PORT)) &&
        !t.timeWait.has(tupleKey(PEER_IP, p, FUZZ_COOKIE_PORT))
      ) return p;
    }
  }

  /** A segment from the peer that `c` would accept as is (ACK of everything, in window). */
  validSegment(c: TcpConnection, flags: number = TcpFlags.ACK, payload = EMPTY): PeerSegment {
    const s = c.debugSeq();
    const seg: PeerSegment = {
      srcPort: c.remotePort,
      dstPort: c.localPort,
      seqNumber: s.rcvNxt,
      ackNumber: s.sndNxt,
      flags,
      windowLen: 65535,
      payload,
    };
    if (c.info().timestamps) seg.timestamp = { value: this.#ts++, echo: 0 };
    return seg;
  }

  /** Opens a connection and steers it towards `target`; undefined when the stack refused. */
  open(target: TcpState): TcpConnection | undefined {
    const h = this.h;
    const r = this.rnd;
    const port = this.#nextPort();
    let c: TcpConnection | undefined;
    if (target === "SYN_SENT" || r.u32() % 4 === 0) {
      try {
        c = h.stack.tcp.connect(PEER_IP, port, h.now);
      } catch (e) {
        if (e instanceof NetError) return undefined;
        throw e;
      }
      this.drainChecked();
      if (target === "SYN_SENT") return this.#track(c, target);
      const isn = r.u32();
      this.#inject({
        srcPort: port,
        dstPort: c.localPort,
        seqNumber: isn,
        ackNumber: c.debugSeq().sndNxt,
        flags: TcpFlags.SYN | TcpFlags.ACK,
        mss: 1460,
        ...(r.u32() & 1 ? { windowScale: r.u32() % 15 } : {}),
        ...(r.u32() & 1 ? { sackPermitted: true } : {}),
        ...(r.u32() & 1 ? { timestamp: { value: this.#ts++, echo: 0 } } : {}),
      });
    } else {
      const lport = r.u32() % 3 === 0 ? FUZZ_COOKIE_PORT : FUZZ_PORT;
      const isn = r.u32();
      const ts = r.u32() & 1;
      const out = this.#inject({
        srcPort: port,
        dstPort: lport,
        seqNumber: isn,
        flags: TcpFlags.SYN,
        mss: 536 + (r.u32() % 1000),
        ...(r.u32() & 1 ? { windowScale: r.u32() % 15 } : {}),
        ...(r.u32() & 1 ? { sackPermitted: true } : {}),
        ...(ts ? { timestamp: { value: this.#ts++, echo: 0 } } : {}),
      });
      const key = tupleKey(PEER_IP, port, lport);
      c = h.stack.tcp.active.get(key);
      if (target === "SYN_RECEIVED") return c ? this.#track(c, target) : undefined;
      // Complete the handshake, also when the listener answered with a SYN cookie.
      let synAckSeq: number | undefined;
      for (const f of out) {
        const seg = decodeSegment(f);
        if (seg && seg.dstPort === port && seg.flags === (TcpFlags.SYN | TcpFlags.ACK)) {
          synAckSeq = seg.seqNumber;
        }
      }
      if (synAckSeq === undefined) return undefined;
      this.#inject({
        srcPort: port,
        dstPort: lport,
        seqNumber: (isn + 1) >>> 0,
        ackNumber: (synAckSeq + 1) >>> 0,
        flags: TcpFlags.ACK,
        ...(ts && c?.info().timestamps ? { timestamp: { value: this.#ts++, echo: 0 } } : {}),
      });
      c = h.stack.tcp.active.get(key);
      this.acceptAll();
    }
    if (!c || c.state !== "ESTABLISHED") return c && this.#track(c, target);
    const now = () => h.now;
    switch (target) {
      case "FIN_WAIT_1":
      case "FIN_WAIT_2":
      case "CLOSING":
      case "TIME_WAIT":
        c.shutdownWrite(now());
        this.drainChecked();
        if (target === "FIN_WAIT_2" || target === "TIME_WAIT") this.#inject(this.validSegment(c));
        if (target === "CLOSING") {
          const seg = this.validSegment(c, TcpFlags.ACK | TcpFlags.FIN);
          seg.ackNumber = c.debugSeq().sndUna; // our FIN not acknowledged yet
          this.#inject(seg);
        }
        if (target === "TIME_WAIT") this.#inject(this.validSegment(c, TcpFlags.ACK | TcpFlags.FIN));
        break;
      case "CLOSE_WAIT":
      case "LAST_ACK":
        this.#inject(this.validSegment(c, TcpFlags.ACK | TcpFlags.FIN));
        if (target === "LAST_ACK") {
          c.shutdownWrite(now());
          this.drainChecked();
        }
        break;
    }
    return this.#track(c, target);
  }

  #track(c: TcpConnection, _target: TcpState): TcpConnection {
    this.reached[c.state] = (this.reached[c.state] ?? 0) + 1;
    if (c.state !== "CLOSED") this.conns.push(c);
    return c;
  }

  /** Takes every connection waiting in both listeners' accept queues. */
  acceptAll(): void {
    for (const l of [this.listener, this.cookieListener]) {
      for (let c = l.accept(); c; c = l.accept()) if (!this.conns.includes(c)) this.conns.push(c);
    }
  }

  /**
   * Drops closed connections (and TIME_WAIT ones beyond n/8) from the tracked
   * set and tops it up to `n` with connections steered into random states.
   */
  replenish(n: number): void {
    // TIME_WAIT lasts 2MSL: keep tracking only a few so the other states get their share.
    let timeWait = 0;
    this.conns = this.conns.filter((c) =>
      c.state !== "CLOSED" && (c.state !== "TIME_WAIT" || ++timeWait <= n / 8)
    );
    for (let tries = 0; this.conns.length < n && tries < n; tries++) {
      this.open(FUZZ_TARGET_STATES[this.rnd.u32() % FUZZ_TARGET_STATES.length]);
    }
  }

  /** What the application side does between segments: send, read, close, abort. */
  appAction(): void {
    if (this.conns.length === 0) return;
    const c = this.conns[this.rnd.u32() % this.conns.length];
    const now = this.h.now;
    const k = this.rnd.u32() % 100;
    if (k < 45) {
      if (c.canWrite) c.send(this.#payload.subarray(0, this.rnd.u32() % 2048), now);
    } else if (k < 90) {
      c.read(this.rnd.u32() % 9000, now);
    } else if (k < 94) {
      if (c.state === "ESTABLISHED" || c.state === "CLOSE_WAIT") c.shutdownWrite(now);
    } else if (k < 97) {
      c.close(now);
    } else {
      c.abort(now);
    }
    this.drainChecked();
  }

  /**
   * Injects one mutated copy of a valid in-window segment for a tracked
   * connection (or, now and then, for a listener), as a frame: field
   * mutations keep checksums valid; header byte flips re-fix the checksum
   * (or not); some segments travel as two IPv4 fragments or with IPv4 options.
   */
  mutatedSegment(): void {
    const r = this.rnd;
    const u = () => r.u32();
    let seg: PeerSegment;
    if (this.conns.length === 0 || u() % 16 === 0) {
      // At a listener: SYN floods (cookies), bogus ACKs (cookie checks), anything.
      const flags = [TcpFlags.SYN, TcpFlags.ACK, TcpFlags.ACK | TcpFlags.FIN, u() & 0xff][u() % 4];
      seg = {
        srcPort: 1024 + (u() % 60000),
        dstPort: u() % 4 ? FUZZ_COOKIE_PORT : FUZZ_PORT,
        seqNumber: u(),
        ackNumber: u(),
        flags,
        mss: u() & 1 ? u() & 0xffff : undefined,
      };
    } else {
      // Of a few random connections, aim at the one whose state was hit least,
      // so every state gets its share however long each lives.
      let c = this.conns[u() % this.conns.length];
      for (let k = 0; k < 3; k++) {
        const o = this.conns[u() % this.conns.length];
        if (c.state === "CLOSED" || (this.hits[o.state] ?? 0) < (this.hits[c.state] ?? 0)) c = o;
      }
      if (c.state !== "CLOSED") this.hits[c.state] = (this.hits[c.state] ?? 0) + 1;
      const info = c.info();
      const len = [0, 0, 1, u() % 64, u() % 1460, u() % 1600][u() % 6];
      seg = this.validSegment(
        c,
        TcpFlags.ACK | (u() & 1 ? TcpFlags.PSH : 0),
        this.#payload.subarray(0, len),
      );
      seg.windowLen = [0, 1, 65535, u() & 0xffff][u() % 4];
      const s = c.debugSeq();
      const mutations = 1 + (u() % 3);
      for (let m = 0; m < mutations; m++) {
        switch (u() % 12) {
          case 0: // extra flags
            seg.flags |= [TcpFlags.SYN, TcpFlags.FIN, TcpFlags.RST, TcpFlags.URG][u() % 4];
            break;
          case 1: // any flags at all
            seg.flags = u() & 0xff;
            break;
          case 2: { // sequence number: just off, a window off, far off
            const d = [1, -1, 2, -2, info.recvWindow, -info.recvWindow, 0x40000000, u()][u() % 8];
            seg.seqNumber = (seg.seqNumber! + d) >>> 0;
            break;
          }
          case 3: { // acknowledgment: anywhere from SND.UNA - big to beyond SND.NXT
            const d = [0, 1, -1, 1000, -70000, 0x7fffffff, u()][u() % 7];
            seg.ackNumber = ((u() & 1 ? s.sndUna : s.sndNxt) + d) >>> 0;
            break;
          }
          case 4: // an exact RST in window, or a RST with a near sequence number (RFC 5961)
            seg.flags = TcpFlags.RST | (u() & 1 ? TcpFlags.ACK : 0);
            seg.seqNumber = (s.rcvNxt + (u() & 1 ? 0 : 1 + (u() % 100))) >>> 0;
            seg.payload = EMPTY;
            break;
          case 5: // timestamps: missing, going back, random
            seg.timestamp =
              [undefined, { value: 0, echo: u() }, { value: u(), echo: u() }][u() % 3];
            break;
          case 6: { // SACK blocks around the send window, some nonsense
            const base = s.sndUna;
            seg.sackBlocks = Array.from({ length: 1 + (u() % 4) }, () => {
              const a = (base + (u() % 20000) - 2000) >>> 0;
              return { left: a, right: (a + (u() % 4000) - 100) >>> 0 };
            });
            break;
          }
          case 7: // SYN-only options on a synchronized segment
            seg.mss = u() & 0xffff;
            seg.windowScale = u() % 15;
            seg.sackPermitted = true;
            break;
          case 8: // urgent data
            seg.flags |= TcpFlags.URG;
            seg.urgentPointer = u() & 0xffff;
            break;
          case 9: // a segment far beyond the window
            seg.seqNumber = (s.rcvNxt + info.recvWindow + (u() % 3000)) >>> 0;
            break;
          case 10: // a retransmission of old data that overlaps RCV.NXT
            seg.seqNumber = (s.rcvNxt - (u() % 1000)) >>> 0;
            break;
          default: // exactly the valid segment
            break;
        }
      }
    }
    let frame: Uint8Array;
    try {
      frame = this.h.frame(seg);
    } catch (e) {
      // The mutated options do not fit in 40 bytes: keep the segment, fewer options.
      if (!(e instanceof RangeError)) throw e;
      seg.sackBlocks = seg.sackBlocks?.slice(0, 1);
      seg.mss = seg.windowScale = seg.sackPermitted = undefined;
      frame = this.h.frame(seg);
    }
    const k = u() % 16;
    if (k < 3) {
      // Flip a byte of the TCP header or options, then fix the checksum (or not).
      const tcpHeader = (frame[IP + 20 + 12] >>> 4) * 4;
      frame[IP + 20 + (u() % tcpHeader)] ^= 1 + (u() % 255);
      if (k < 2) fixTcpChecksum(frame);
    } else if (k === 3) {
      frame[IP + 6] = 0; // clear DF so the segment may be fragmented
      fixIpv4Checksum(frame);
      const parts = fragmentFrame(frame, 8 + (u() % 64), this.#ident++ & 0xffff);
      if (u() & 1) parts.reverse();
      for (const p of parts) this.input(p);
      return;
    } else if (k === 4) {
      frame = withIpOptions(frame, Uint8Array.of(1, 1, 1, 0)); // NOP NOP NOP EOL
    }
    this.input(frame);
  }
}

/** Decodes an emitted frame as TCP, or undefined for anything else. */
function decodeSegment(frame: Uint8Array): TcpRepr | undefined {
  const e = EthernetFrame.parse(frame);
  if (!e.ok || e.value.etherType !== EtherType.IPV4) return undefined;
  const ip = Ipv4Packet.parse(e.value.payload);
  if (!ip.ok || ip.value.protocol !== IpProtocol.TCP) return undefined;
  const t = TcpPacket.parse(ip.value.payload);
  if (!t.ok) return undefined;
  const r = TcpRepr.parse(t.value, STACK_IP, PEER_IP);
  return r.ok ? r.value : undefined;
}
