/**
 * Test helpers for UDP (TESTING.md ring 1): a stack at 10.0.2.2/24 on a
 * channel link that already knows the peer's MAC, a builder for the exact
 * frames a peer sends (UDP or any IP protocol), and decoders for what the
 * stack emits.
 *
 * @module
 */

import {
  BROADCAST_MAC,
  ETHERNET_HEADER_LEN,
  EthernetFrame,
  EthernetRepr,
  EtherType,
  Icmpv4Packet,
  Icmpv4Repr,
  IpProtocol,
  Ipv4Packet,
  Ipv4Repr,
  seededRandom,
  UdpPacket,
  UdpRepr,
} from "../../wire/mod.ts";
import { ChannelLink } from "../channel_link.ts";
import { Stack } from "../stack.ts";
import {
  HARNESS_PEER_IP,
  HARNESS_PEER_MAC,
  HARNESS_STACK_IP,
  HARNESS_STACK_MAC,
} from "../tcp/tcp_harness.ts";
import type { UdpLayerLimits } from "./udp_layer.ts";

export { BROADCAST_MAC, HARNESS_PEER_IP, HARNESS_PEER_MAC, HARNESS_STACK_IP, HARNESS_STACK_MAC };

/** Options of a frame from the peer. */
export interface PeerFrameOptions {
  /** IPv4 source; the peer by default. */
  src?: number;
  /** IPv4 destination; the stack by default. */
  dst?: number;
  /** Ethernet destination; the stack's MAC by default. */
  dstMac?: Uint8Array;
  /** IP identification; 0x1234 by default. */
  ident?: number;
}

/** A UDP datagram from the peer; `checksum: "zero"` sends none, `"corrupt"` a wrong one. */
export interface PeerDatagram extends PeerFrameOptions {
  srcPort?: number;
  dstPort: number;
  payload?: Uint8Array;
  checksum?: "ok" | "zero" | "corrupt";
}

/** The frame of an IPv4 packet with `payload` from the peer. */
export function ipFrame(protocol: number, payload: Uint8Array, o: PeerFrameOptions = {}) {
  const f = new Uint8Array(ETHERNET_HEADER_LEN + 20 + payload.length);
  EthernetRepr.emit(
    { dst: o.dstMac ?? HARNESS_STACK_MAC, src: HARNESS_PEER_MAC, etherType: EtherType.IPV4 },
    f,
  );
  Ipv4Repr.emit({
    src: o.src ?? HARNESS_PEER_IP,
    dst: o.dst ?? HARNESS_STACK_IP,
    protocol,
    payloadLen: payload.length,
    ttl: 64,
    ident: o.ident ?? 0x1234,
    dontFragment: true,
  }, f.subarray(ETHERNET_HEADER_LEN));
  f.set(payload, ETHERNET_HEADER_LEN + 20);
  return f;
}

/** The frame of a UDP datagram from the peer. */
export function udpFrame(d: PeerDatagram): Uint8Array {
  const repr: UdpRepr = {
    srcPort: d.srcPort ?? 40000,
    dstPort: d.dstPort,
    payload: d.payload ?? new Uint8Array(0),
  };
  const udp = new Uint8Array(UdpRepr.bufferLen(repr));
  UdpRepr.emit(repr, udp, d.src ?? HARNESS_PEER_IP, d.dst ?? HARNESS_STACK_IP);
  if (d.checksum === "zero") udp[6] = udp[7] = 0;
  if (d.checksum === "corrupt") udp[7] ^= 0x5a;
  return ipFrame(IpProtocol.UDP, udp, d);
}

/** A stack under test with the peer's MAC pre-resolved. */
export class UdpHarness {
  readonly stack: Stack;
  readonly link: ChannelLink;
  now = 1000;

  /** Creates a stack at 10.0.2.2/24 (seeded randomness) that knows 10.0.2.15's MAC. */
  constructor(
    options: { udpLimits?: Partial<UdpLayerLimits>; icmpErrorsPerSecond?: number; mtu?: number } =
      {},
  ) {
    const rnd = seededRandom(7);
    this.link = new ChannelLink(1 << 16);
    this.stack = new Stack({
      mac: HARNESS_STACK_MAC,
      ipv4: { address: HARNESS_STACK_IP, prefixLength: 24 },
      mtu: options.mtu ?? 1500,
      arp: { reachableMs: 1e12 },
      udpLimits: options.udpLimits,
      icmpErrorsPerSecond: options.icmpErrorsPerSecond,
    }, { link: this.link, random: (b) => rnd.fill(b) });
    this.stack.arp.update(HARNESS_PEER_IP, HARNESS_PEER_MAC, 0);
  }

  /** Injects a UDP datagram from the peer at the current instant. */
  inject(d: PeerDatagram): void {
    this.stack.input(udpFrame(d), this.now);
  }

  /** Removes every frame the stack emitted. */
  drain(): Uint8Array[] {
    return this.link.drain();
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

/** Decodes an emitted Ethernet/IPv4 frame, checking the IP header checksum. */
export function decodeIp(frame: Uint8Array): DecodedIp {
  const eth = EthernetFrame.parse(frame);
  if (!eth.ok || eth.value.etherType !== EtherType.IPV4) throw new Error("not an IPv4 frame");
  const pkt = Ipv4Packet.parse(eth.value.payload);
  if (!pkt.ok) throw new Error(`bad IPv4: ${pkt.reason}`);
  const ip = Ipv4Repr.parse(pkt.value);
  if (!ip.ok) throw new Error(`bad IPv4: ${ip.reason}`);
  return {
    dstMac: eth.value.dst,
    ip: ip.value,
    packet: pkt.value.bytes,
    payload: pkt.value.payload,
  };
}

/** Decodes an emitted UDP frame, checking every checksum. */
export function decodeUdp(frame: Uint8Array): DecodedIp & { udp: UdpRepr; checksum: number } {
  const d = decodeIp(frame);
  if (d.ip.protocol !== IpProtocol.UDP) throw new Error(`not UDP: protocol ${d.ip.protocol}`);
  const pkt = UdpPacket.parse(d.payload);
  if (!pkt.ok) throw new Error(`bad UDP: ${pkt.reason}`);
  const r = UdpRepr.parse(pkt.value, d.ip.src, d.ip.dst);
  if (!r.ok) throw new Error(`bad UDP: ${r.reason}`);
  return {
    ...d,
    udp: { ...r.value, payload: r.value.payload.slice() },
    checksum: pkt.value.checksum,
  };
}

/** Decodes an emitted ICMP frame, checking every checksum. */
export function decodeIcmp(frame: Uint8Array): DecodedIp & { icmp: Icmpv4Repr; bytes: Uint8Array } {
  const d = decodeIp(frame);
  if (d.ip.protocol !== IpProtocol.ICMP) throw new Error(`not ICMP: protocol ${d.ip.protocol}`);
  const pkt = Icmpv4Packet.parse(d.payload);
  if (!pkt.ok) throw new Error(`bad ICMP: ${pkt.reason}`);
  const r = Icmpv4Repr.parse(pkt.value);
  if (!r.ok) throw new Error(`bad ICMP: ${r.reason}`);
  return { ...d, icmp: r.value, bytes: pkt.value.bytes };
}

/** Lowercase hex of `bytes`. */
export function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
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
