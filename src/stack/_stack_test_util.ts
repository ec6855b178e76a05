/**
 * The test kit of the stack below TCP (TESTING.md ring 1): a stack at
 * 10.0.2.2/24 on a channel link with a manual instant, builders for the exact
 * frames a peer at 10.0.2.15 sends (Ethernet, ARP, IPv4 with any header
 * field, UDP, ICMP echo), and decoders for what the stack emits. Tests of
 * ARP, IPv4, ICMP, reassembly, UDP, DHCP and DNS share it.
 *
 * @module
 */

import {
  ArpOperation,
  ArpRepr,
  BROADCAST_MAC,
  ETHERNET_HEADER_LEN,
  EthernetFrame,
  EthernetRepr,
  EtherType,
  Icmpv4Packet,
  Icmpv4Repr,
  IpProtocol,
  type Ipv4Address,
  Ipv4Packet,
  Ipv4Repr,
  parseIpv4Address,
  parseMacAddress,
  type ParseResult,
  seededRandom,
  TcpFlags,
  TcpRepr,
  UdpPacket,
  UdpRepr,
} from "../wire/mod.ts";
import { ChannelLink } from "./channel_link.ts";
import { Stack, type StackConfig, type StackDeps } from "./stack.ts";

export { BROADCAST_MAC };

/** The stack's address. */
export const STACK_IP: Ipv4Address = parseIpv4Address("10.0.2.2");
/** The peer's address. */
export const PEER_IP: Ipv4Address = parseIpv4Address("10.0.2.15");
/** The stack's MAC. */
export const STACK_MAC: Uint8Array = parseMacAddress("02:00:00:00:00:02");
/** The peer's MAC. */
export const PEER_MAC: Uint8Array = parseMacAddress("52:54:00:12:34:56");

/** Header fields of a frame from the peer; each has the default named. */
export interface PeerFrameOptions {
  /** IPv4 source; the peer by default. */
  src?: Ipv4Address;
  /** IPv4 destination; the stack by default. */
  dst?: Ipv4Address;
  /** Ethernet source; the peer's MAC by default. */
  srcMac?: Uint8Array;
  /** Ethernet destination; the stack's MAC by default. */
  dstMac?: Uint8Array;
  /** IP identification; 0x1234 by default. */
  ident?: number;
  /** DF; set by default (unless the packet is a fragment). */
  dontFragment?: boolean;
  /** MF; clear by default. */
  moreFragments?: boolean;
  /** Fragment offset in bytes; 0 by default. */
  fragmentOffset?: number;
  /** Time to live; 64 by default. */
  ttl?: number;
}

/** An Ethernet frame around `payload`, from the peer's MAC to the stack's by default. */
export function ethFrame(
  etherType: number,
  payload: Uint8Array,
  o: { srcMac?: Uint8Array; dstMac?: Uint8Array } = {},
): Uint8Array {
  const f = new Uint8Array(ETHERNET_HEADER_LEN + payload.length);
  EthernetRepr.emit({ dst: o.dstMac ?? STACK_MAC, src: o.srcMac ?? PEER_MAC, etherType }, f);
  f.set(payload, ETHERNET_HEADER_LEN);
  return f;
}

/** The frame of an IPv4 packet carrying `payload` from the peer. */
export function ipFrame(protocol: number, payload: Uint8Array, o: PeerFrameOptions = {}) {
  const fragment = o.moreFragments === true || (o.fragmentOffset ?? 0) > 0;
  const ip = new Uint8Array(20 + payload.length);
  Ipv4Repr.emit({
    src: o.src ?? PEER_IP,
    dst: o.dst ?? STACK_IP,
    protocol,
    payloadLen: payload.length,
    ttl: o.ttl ?? 64,
    ident: o.ident ?? 0x1234,
    dontFragment: o.dontFragment ?? !fragment,
    moreFragments: o.moreFragments ?? false,
    fragmentOffset: o.fragmentOffset ?? 0,
  }, ip);
  ip.set(payload, 20);
  return ethFrame(EtherType.IPV4, ip, o);
}

/** An ARP packet from the peer (or whoever `senderMac` names). */
export interface PeerArp {
  /** REQUEST by default. */
  operation?: number;
  /** The peer's MAC by default. */
  senderMac?: Uint8Array;
  /** Ethernet source; `senderMac` by default. */
  srcMac?: Uint8Array;
  /** The peer's address by default. */
  senderIp?: Ipv4Address;
  /** The stack's address by default. */
  targetIp?: Ipv4Address;
  /** Ethernet destination; broadcast by default. */
  dstMac?: Uint8Array;
}

/** The 42-byte frame of an ARP packet (no padding). */
export function arpFrame(a: PeerArp = {}): Uint8Array {
  const senderMac = a.senderMac ?? PEER_MAC;
  const arp = new Uint8Array(28);
  ArpRepr.emit({
    operation: a.operation ?? ArpOperation.REQUEST,
    senderMac,
    senderIp: a.senderIp ?? PEER_IP,
    targetMac: new Uint8Array(6),
    targetIp: a.targetIp ?? STACK_IP,
  }, arp);
  return ethFrame(EtherType.ARP, arp, {
    srcMac: a.srcMac ?? senderMac,
    dstMac: a.dstMac ?? BROADCAST_MAC,
  });
}

/** A UDP datagram from the peer; `checksum: "zero"` sends none, `"corrupt"` a wrong one. */
export interface PeerDatagram extends PeerFrameOptions {
  /** 40000 by default. */
  srcPort?: number;
  dstPort: number;
  /** Empty by default. */
  payload?: Uint8Array;
  checksum?: "ok" | "zero" | "corrupt";
}

/** The UDP header and payload of a datagram from the peer (checksum over its addresses). */
export function udpBytes(d: PeerDatagram): Uint8Array {
  const repr: UdpRepr = {
    srcPort: d.srcPort ?? 40000,
    dstPort: d.dstPort,
    payload: d.payload ?? new Uint8Array(0),
  };
  const udp = new Uint8Array(UdpRepr.bufferLen(repr));
  UdpRepr.emit(repr, udp, d.src ?? PEER_IP, d.dst ?? STACK_IP);
  if (d.checksum === "zero") udp[6] = udp[7] = 0;
  if (d.checksum === "corrupt") udp[7] ^= 0x5a;
  return udp;
}

/** The frame of a UDP datagram from the peer. */
export function udpFrame(d: PeerDatagram): Uint8Array {
  return ipFrame(IpProtocol.UDP, udpBytes(d), d);
}

/** The frame of a TCP SYN (MSS 1460) from the peer's port 40000 to `dstPort`. */
export function synFrame(dstPort: number, o: PeerFrameOptions = {}): Uint8Array {
  const repr: TcpRepr = {
    srcPort: 40000,
    dstPort,
    seqNumber: 1000,
    ackNumber: 0,
    flags: TcpFlags.SYN,
    windowLen: 65535,
    mss: 1460,
    payload: new Uint8Array(0),
  };
  const tcp = new Uint8Array(TcpRepr.bufferLen(repr));
  TcpRepr.emit(repr, tcp, o.src ?? PEER_IP, o.dst ?? STACK_IP);
  return ipFrame(IpProtocol.TCP, tcp, o);
}

/** The ICMP bytes of an echo request. */
export function echoRequest(ident: number, seqNo: number, data: Uint8Array): Uint8Array {
  const repr: Icmpv4Repr = { type: "echo_request", ident, seqNo, data };
  const buf = new Uint8Array(Icmpv4Repr.bufferLen(repr));
  Icmpv4Repr.emit(repr, buf);
  return buf;
}

/** Options of a {@linkcode StackHarness}: any stack setting, plus the harness's own. */
export interface StackHarnessOptions extends Partial<StackConfig> {
  /** Whether the stack knows the peer's MAC from the start; true by default. */
  knowPeer?: boolean;
  /** Seed of the stack's random source; 7 by default. */
  seed?: number;
  /** The session's quota, if the test gives one. */
  quota?: StackDeps["quota"];
}

/**
 * A stack under test at 10.0.2.2/24 (MTU 1500, seeded randomness, DNS on as
 * by default, ARP entries that never expire) on a channel link, with the
 * instant `now` that `input` uses.
 *
 * @example
 * ```ts
 * const h = new StackHarness({ mtu: 576 });
 * h.input(ipFrame(IpProtocol.ICMP, echoRequest(1, 1, new Uint8Array(4))));
 * const [reply] = h.drain();
 * ```
 */
export class StackHarness {
  readonly stack: Stack;
  readonly link: ChannelLink;
  now = 1000;

  /** Creates the stack; see {@linkcode StackHarnessOptions}. */
  constructor(options: StackHarnessOptions = {}) {
    const { knowPeer, seed, quota, ...config } = options;
    const rnd = seededRandom(seed ?? 7);
    this.link = new ChannelLink(1 << 16);
    this.stack = new Stack({
      mac: STACK_MAC,
      ipv4: { address: STACK_IP, prefixLength: 24 },
      mtu: 1500,
      ...config,
      arp: { reachableMs: 1e12, ...config.arp },
    }, { link: this.link, random: (b) => rnd.fill(b), quota });
    if (knowPeer ?? true) this.stack.arp.update(PEER_IP, PEER_MAC, 0);
  }

  /** Gives `frame` to the stack at the current instant (or `at`). */
  input(frame: Uint8Array, at: number = this.now): void {
    this.stack.input(frame, at);
  }

  /** Removes every frame the stack emitted. */
  drain(): Uint8Array[] {
    return this.link.drain();
  }

  /** The stack's drop counters. */
  get drops(): Record<string, number> {
    return this.stack.counters.drops;
  }

  /** Whether every received frame is handled or dropped for a reason. */
  get balanced(): boolean {
    const c = this.stack.counters;
    return c.rxFrames === c.rxHandled + c.totalDrops();
  }
}

/** An emitted frame decoded to its IPv4 header fields. */
export interface DecodedIp {
  dstMac: Uint8Array;
  ip: Ipv4Repr;
  /** The IP packet (header and payload) as sent. */
  packet: Uint8Array;
  payload: Uint8Array;
}

/** The value of a parse result; throws (a test failure) with `what` and the reason otherwise. */
function must<T>(r: ParseResult<T>, what: string): T {
  if (!r.ok) throw new Error(`bad ${what}: ${r.reason}`);
  return r.value;
}

/** Decodes an emitted Ethernet/IPv4 frame, checking the IP header checksum. */
export function decodeIp(frame: Uint8Array): DecodedIp {
  const eth = EthernetFrame.parse(frame);
  if (!eth.ok || eth.value.etherType !== EtherType.IPV4) throw new Error("not an IPv4 frame");
  const pkt = must(Ipv4Packet.parse(eth.value.payload), "IPv4");
  const ip = must(Ipv4Repr.parse(pkt), "IPv4");
  return { dstMac: eth.value.dst, ip, packet: pkt.bytes, payload: pkt.payload };
}

/** Decodes an emitted IPv4 frame that must carry `protocol` (named `what` in errors). */
function decodeIpOf(frame: Uint8Array, protocol: number, what: string): DecodedIp {
  const d = decodeIp(frame);
  if (d.ip.protocol !== protocol) throw new Error(`not ${what}: protocol ${d.ip.protocol}`);
  return d;
}

/** Decodes an emitted UDP frame, checking every checksum. */
export function decodeUdp(frame: Uint8Array): DecodedIp & { udp: UdpRepr; checksum: number } {
  const d = decodeIpOf(frame, IpProtocol.UDP, "UDP");
  const pkt = must(UdpPacket.parse(d.payload), "UDP");
  const udp = must(UdpRepr.parse(pkt, d.ip.src, d.ip.dst), "UDP");
  return { ...d, udp: { ...udp, payload: udp.payload.slice() }, checksum: pkt.checksum };
}

/** Decodes an emitted ICMP frame, checking every checksum. */
export function decodeIcmp(frame: Uint8Array): DecodedIp & { icmp: Icmpv4Repr; bytes: Uint8Array } {
  const d = decodeIpOf(frame, IpProtocol.ICMP, "ICMP");
  const pkt = must(Icmpv4Packet.parse(d.payload), "ICMP");
  return { ...d, icmp: must(Icmpv4Repr.parse(pkt), "ICMP"), bytes: pkt.bytes };
}

/** Lowercase hex of `bytes`. */
export function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Bytes from hex, ignoring whitespace. */
export function fromHex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, "");
  return Uint8Array.from((clean.match(/../g) ?? []).map((b) => parseInt(b, 16)));
}

/** A 16-bit number as 4 hex digits. */
export function u16(n: number): string {
  return n.toString(16).padStart(4, "0");
}

/** The Internet checksum (RFC 1071) of `parts` concatenated, computed independently of src/wire. */
export function internetChecksum(...parts: Uint8Array[]): number {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  let sum = 0;
  for (let i = 0; i < all.length; i += 2) sum += (all[i] << 8) | (all[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
