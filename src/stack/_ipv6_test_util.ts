/**
 * The IPv6 test kit of the stack (TESTING.md ring 1): a stack with MAC
 * 02:00:00:00:00:01 (link-local fe80::ff:fe00:1) and fd00::2 in fd00::/64,
 * on a channel link with a manual instant, so the golden frames of
 * `src/wire/_ipv6_test_util.ts` go in and come out as they are; builders
 * for what a Linux peer sends, and decoders for what the stack emits.
 *
 * @module
 */

import {
  EthernetFrame,
  EthernetRepr,
  EtherType,
  Icmpv6Packet,
  Icmpv6Repr,
  IpProtocol,
  type Ipv6Address,
  ipv6MulticastMac,
  Ipv6Packet,
  Ipv6Repr,
  ipv6ToBytes,
  isIpv6LinkLocal,
  isIpv6Multicast,
  NdpRepr,
  parseIpv6Address,
  type ParseResult,
} from "../wire/mod.ts";
import {
  V6_PEER_LINK_LOCAL,
  V6_PEER_MAC,
  V6_PEER_ULA,
  V6_STACK_LINK_LOCAL,
  V6_STACK_MAC,
} from "../wire/_ipv6_test_util.ts";
import { internetChecksum, StackHarness, type StackHarnessOptions } from "./_stack_test_util.ts";

export {
  GOLDEN_ECHO,
  GOLDEN_NA,
  GOLDEN_NS,
  GOLDEN_PTB,
  GOLDEN_RA,
  GOLDEN_RS,
} from "../wire/_ipv6_test_util.ts";
export { V6_PEER_MAC, V6_STACK_MAC };

/** The stack's address. */
export const STACK6: Ipv6Address = parseIpv6Address("fd00::2");
/** The stack's link-local address. */
export const STACK_LL: Ipv6Address = parseIpv6Address(V6_STACK_LINK_LOCAL);
/** The peer's SLAAC address. */
export const PEER6: Ipv6Address = parseIpv6Address(V6_PEER_ULA);
/** The peer's link-local address. */
export const PEER_LL: Ipv6Address = parseIpv6Address(V6_PEER_LINK_LOCAL);
/** Short for {@linkcode parseIpv6Address}. */
export const v6 = parseIpv6Address;

/** Header fields of an IPv6 frame from the peer; each has the default named. */
export interface V6FrameOptions {
  /** Source; the peer's SLAAC address by default. */
  src?: Ipv6Address;
  /** Destination; the stack's fd00::2 by default. */
  dst?: Ipv6Address;
  /** Hop limit; 64 by default (255 for NDP builders). */
  hopLimit?: number;
  /** Ethernet source; the peer's MAC. */
  srcMac?: Uint8Array;
  /** Ethernet destination; the stack's MAC, or the group's MAC for a multicast `dst`. */
  dstMac?: Uint8Array;
  /** Bytes of extension headers (hex written as bytes) between the header and the payload. */
  ext?: Uint8Array;
  /** The fixed header's next header when `ext` is given. */
  firstHeader?: number;
}

/** An IPv6 frame from the peer carrying `payload` of `nextHeader`. */
export function v6Frame(
  nextHeader: number,
  payload: Uint8Array,
  o: V6FrameOptions = {},
): Uint8Array {
  const src = o.src ?? PEER6;
  const dst = o.dst ?? STACK6;
  const ext = o.ext ?? new Uint8Array(0);
  const frame = new Uint8Array(14 + 40 + ext.length + payload.length);
  const dstMac = o.dstMac ?? (isIpv6Multicast(dst) ? ipv6MulticastMac(dst) : V6_STACK_MAC);
  EthernetRepr.emit(
    { dst: dstMac, src: o.srcMac ?? V6_PEER_MAC, etherType: EtherType.IPV6 },
    frame,
  );
  Ipv6Repr.emit({
    src,
    dst,
    nextHeader: ext.length > 0 ? o.firstHeader! : nextHeader,
    payloadLen: ext.length + payload.length,
    hopLimit: o.hopLimit ?? 64,
  }, frame.subarray(14));
  frame.set(ext, 54);
  frame.set(payload, 54 + ext.length);
  return frame;
}

/** An ICMPv6 frame from the peer (checksum over its addresses). */
export function icmpv6Frame(repr: Icmpv6Repr, o: V6FrameOptions = {}): Uint8Array {
  const buf = new Uint8Array(Icmpv6Repr.bufferLen(repr));
  Icmpv6Repr.emit(repr, buf, o.src ?? PEER6, o.dst ?? STACK6);
  return v6Frame(IpProtocol.ICMPV6, buf, o);
}

/** An NDP frame from the peer, hop limit 255 unless `o` says otherwise. */
export function ndpFrame(repr: NdpRepr, o: V6FrameOptions = {}): Uint8Array {
  const buf = new Uint8Array(NdpRepr.bufferLen(repr));
  NdpRepr.emit(repr, buf, o.src ?? PEER6, o.dst ?? STACK6);
  return v6Frame(IpProtocol.ICMPV6, buf, { hopLimit: 255, ...o });
}

/** An emitted frame decoded to its IPv6 header. */
export interface DecodedV6 {
  dstMac: Uint8Array;
  ip: Ipv6Repr;
  /** The IPv6 packet as sent. */
  packet: Uint8Array;
  payload: Uint8Array;
}

function must<T>(r: ParseResult<T>, what: string): T {
  if (!r.ok) throw new Error(`bad ${what}: ${r.reason}`);
  return r.value;
}

/** Decodes an emitted Ethernet/IPv6 frame. */
export function decodeV6(frame: Uint8Array): DecodedV6 {
  const eth = must(EthernetFrame.parse(frame), "Ethernet");
  if (eth.etherType !== EtherType.IPV6) throw new Error(`not IPv6: ${eth.etherType}`);
  const pkt = must(Ipv6Packet.parse(eth.payload), "IPv6");
  return { dstMac: eth.dst, ip: Ipv6Repr.parse(pkt), packet: pkt.bytes, payload: pkt.payload };
}

/** Decodes an emitted ICMPv6 frame, checking its checksum. */
export function decodeIcmpv6(frame: Uint8Array): DecodedV6 & { icmp: Icmpv6Repr } {
  const d = decodeV6(frame);
  if (d.ip.nextHeader !== IpProtocol.ICMPV6) throw new Error(`not ICMPv6: ${d.ip.nextHeader}`);
  const pkt = must(Icmpv6Packet.parse(d.payload), "ICMPv6");
  return { ...d, icmp: must(Icmpv6Repr.parse(pkt, d.ip.src, d.ip.dst), "ICMPv6") };
}

/** Decodes an emitted NDP frame, checking its checksum. */
export function decodeNdp(frame: Uint8Array): DecodedV6 & { ndp: NdpRepr } {
  const d = decodeV6(frame);
  const pkt = must(Icmpv6Packet.parse(d.payload), "ICMPv6");
  if (!pkt.verifyChecksum(d.ip.src, d.ip.dst)) throw new Error("bad ICMPv6 checksum");
  return { ...d, ndp: must(NdpRepr.parse(pkt), "NDP") };
}

/**
 * The IPv6 pseudo-header (RFC 8200 §8.1) for an upper-layer packet of `len`
 * bytes of `nextHeader`, built by hand (independently of src/wire).
 */
export function pseudoHeader6(
  src: Ipv6Address,
  dst: Ipv6Address,
  len: number,
  nextHeader: number = IpProtocol.UDP,
): Uint8Array {
  const p = new Uint8Array(40);
  p.set(ipv6ToBytes(src), 0);
  p.set(ipv6ToBytes(dst), 16);
  p[34] = len >>> 8;
  p[35] = len & 0xff;
  p[39] = nextHeader;
  return p;
}

/**
 * A UDP datagram (header and payload) from `src`:`srcPort` to
 * `dst`:`dstPort`, its checksum computed by hand over the IPv6 pseudo-header
 * (a computed 0 sent as 0xffff), or `checksum` as given.
 */
export function udp6Bytes(
  src: Ipv6Address,
  dst: Ipv6Address,
  srcPort: number,
  dstPort: number,
  payload: Uint8Array,
  checksum?: number,
): Uint8Array {
  const u = new Uint8Array(8 + payload.length);
  u.set([srcPort >>> 8, srcPort & 0xff, dstPort >>> 8, dstPort & 0xff, u.length >>> 8, u.length]);
  u.set(payload, 8);
  const c = checksum ?? (internetChecksum(pseudoHeader6(src, dst, u.length), u) || 0xffff);
  u[6] = c >>> 8;
  u[7] = c & 0xff;
  return u;
}

/**
 * Teaches the stack the peer's MAC: a neighbour solicitation from `src`
 * (the peer's SLAAC address by default) for the stack's address of the same
 * scope (its link-local address for a link-local `src`), then clears the
 * link.
 */
export function learnPeer(h: StackHarness, src: Ipv6Address = PEER6): void {
  const target = isIpv6LinkLocal(src) ? STACK_LL : STACK6;
  h.input(
    ndpFrame(
      { type: "neighbor_solicit", target, options: { sourceLinkAddr: V6_PEER_MAC } },
      { src, dst: target },
    ),
  );
  h.drain();
}

/**
 * The frames the stack emitted, without its router advertisements (which
 * start with the first IPv6 packet heard and go out from `poll`).
 */
export function drainNoRa(h: StackHarness): Uint8Array[] {
  return h.drain().filter((f) => {
    const eth = EthernetFrame.parse(f);
    if (!eth.ok || eth.value.etherType !== EtherType.IPV6) return true;
    const p = eth.value.payload;
    return !(p.length > 40 && p[6] === IpProtocol.ICMPV6 && p[40] === 134);
  });
}

/**
 * A stack for IPv6 tests: MAC 02:00:00:00:00:01, fd00::2 in fd00::/64;
 * the IPv4 side as {@linkcode StackHarness} sets it up.
 *
 * @example
 * ```ts
 * const h = ipv6Harness();
 * h.input(GOLDEN_NS);
 * assert.deepEqual(h.drain(), [GOLDEN_NA]);
 * ```
 */
export function ipv6Harness(options: StackHarnessOptions = {}): StackHarness {
  return new StackHarness({ mac: V6_STACK_MAC, ...options });
}
