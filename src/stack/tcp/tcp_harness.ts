/**
 * The deterministic TCP harness (TESTING.md ring 1): one stack on a channel
 * link and a manual clock, a scripted peer that injects segments at an
 * instant, and a decoder for the exact segments the stack emits.
 *
 * @module
 */

import {
  ETHERNET_HEADER_LEN,
  EthernetFrame,
  EthernetRepr,
  EtherType,
  IpProtocol,
  Ipv4Packet,
  Ipv4Repr,
  parseIpv4Address,
  parseMacAddress,
  seededRandom,
  TcpPacket,
  TcpRepr,
} from "../../wire/mod.ts";
import { ChannelLink } from "../channel_link.ts";
import { Stack } from "../stack.ts";
import type { TcpConfig } from "./tcp_config.ts";
import type { TcpLayerLimits } from "./tcp_layer.ts";

/** The stack's address in harness tests. */
export const HARNESS_STACK_IP: number = parseIpv4Address("10.0.2.2");
/** The scripted peer's address. */
export const HARNESS_PEER_IP: number = parseIpv4Address("10.0.2.15");
/** The stack's MAC. */
export const HARNESS_STACK_MAC: Uint8Array = parseMacAddress("02:00:00:00:00:02");
/** The peer's MAC. */
export const HARNESS_PEER_MAC: Uint8Array = parseMacAddress("52:54:00:12:34:56");

/** A segment from the peer; unspecified fields get harness defaults. */
export interface PeerSegment extends Partial<Omit<TcpRepr, "payload">> {
  flags: number;
  payload?: Uint8Array;
}

/**
 * A stack under test with a scripted peer.
 *
 * @example
 * ```ts
 * const h = new TcpHarness();
 * h.stack.tcp.listen(80, 8);
 * h.inject({ srcPort: 40000, dstPort: 80, seqNumber: 1000, flags: TcpFlags.SYN, mss: 1460 });
 * const [synAck] = h.drain();
 * ```
 */
export class TcpHarness {
  readonly stack: Stack;
  readonly link: ChannelLink;
  now: number;

  /** Creates a stack at 10.0.2.2/24 that already knows the peer's MAC. */
  constructor(
    options: {
      tcp?: Partial<TcpConfig>;
      tcpLimits?: Partial<TcpLayerLimits>;
      mtu?: number;
      seed?: number;
      start?: number;
    } = {},
  ) {
    const rnd = seededRandom(options.seed ?? 1);
    this.link = new ChannelLink(1 << 16);
    this.now = options.start ?? 1000;
    this.stack = new Stack({
      mac: HARNESS_STACK_MAC,
      ipv4: { address: HARNESS_STACK_IP, prefixLength: 24 },
      mtu: options.mtu ?? 1500,
      tcp: options.tcp,
      tcpLimits: options.tcpLimits,
      arp: { reachableMs: 1e12 },
    }, { link: this.link, random: (b) => rnd.fill(b) });
    this.stack.arp.update(HARNESS_PEER_IP, HARNESS_PEER_MAC, 0);
  }

  /** Builds the frame of a peer segment (checksums correct unless `corrupt`). */
  frame(seg: PeerSegment, options: { corrupt?: boolean; src?: number } = {}): Uint8Array {
    const repr: TcpRepr = {
      srcPort: seg.srcPort ?? 40000,
      dstPort: seg.dstPort ?? 80,
      seqNumber: seg.seqNumber ?? 0,
      ackNumber: seg.ackNumber ?? 0,
      flags: seg.flags,
      windowLen: seg.windowLen ?? 65535,
      payload: seg.payload ?? new Uint8Array(0),
    };
    for (
      const k of [
        "urgentPointer",
        "mss",
        "windowScale",
        "sackPermitted",
        "sackBlocks",
        "timestamp",
      ] as const
    ) {
      if (seg[k] !== undefined) (repr as unknown as Record<string, unknown>)[k] = seg[k];
    }
    const src = options.src ?? HARNESS_PEER_IP;
    const tcpLen = TcpRepr.bufferLen(repr);
    const f = new Uint8Array(ETHERNET_HEADER_LEN + 20 + tcpLen);
    EthernetRepr.emit(
      { dst: HARNESS_STACK_MAC, src: HARNESS_PEER_MAC, etherType: EtherType.IPV4 },
      f,
    );
    Ipv4Repr.emit({
      src,
      dst: HARNESS_STACK_IP,
      protocol: IpProtocol.TCP,
      payloadLen: tcpLen,
      ttl: 64,
      dontFragment: true,
    }, f.subarray(ETHERNET_HEADER_LEN));
    TcpRepr.emit(repr, f.subarray(ETHERNET_HEADER_LEN + 20), src, HARNESS_STACK_IP);
    if (options.corrupt) f[f.length - 1] ^= 0xff;
    return f;
  }

  /** Injects a peer segment at the current instant. */
  inject(seg: PeerSegment, options: { corrupt?: boolean; src?: number } = {}): void {
    this.stack.input(this.frame(seg, options), this.now);
  }

  /** Removes and decodes every TCP segment the stack emitted; throws on anything else. */
  drain(): TcpRepr[] {
    return this.link.drain().map(decodeTcpFrame);
  }

  /** Moves the clock forward by `ms`, firing timers at their exact deadlines. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (let guard = 0; guard < 1_000_000; guard++) {
      const d = this.stack.nextDeadline();
      if (d === undefined || d > end) break;
      this.now = Math.max(this.now, d);
      this.stack.poll(this.now);
    }
    this.now = end;
  }

  /** Moves the clock to the next timer deadline and fires it; returns the new time. */
  fireNextTimer(): number {
    const d = this.stack.nextDeadline();
    if (d === undefined) throw new Error("TcpHarness.fireNextTimer: no timer is pending");
    this.now = Math.max(this.now, d);
    this.stack.poll(this.now);
    return this.now;
  }
}

/** Decodes an emitted frame as Ethernet/IPv4/TCP, checking every checksum. */
export function decodeTcpFrame(frame: Uint8Array): TcpRepr {
  const eth = EthernetFrame.parse(frame);
  if (!eth.ok || eth.value.etherType !== EtherType.IPV4) throw new Error("not an IPv4 frame");
  const ip = Ipv4Packet.parse(eth.value.payload);
  if (!ip.ok) throw new Error(`bad IPv4: ${ip.reason}`);
  const ipr = Ipv4Repr.parse(ip.value);
  if (!ipr.ok) throw new Error(`bad IPv4: ${ipr.reason}`);
  if (ipr.value.protocol !== IpProtocol.TCP) {
    throw new Error(`not TCP: protocol ${ipr.value.protocol}`);
  }
  const tcp = TcpPacket.parse(ip.value.payload);
  if (!tcp.ok) throw new Error(`bad TCP: ${tcp.reason}`);
  const r = TcpRepr.parse(tcp.value, ipr.value.src, ipr.value.dst);
  if (!r.ok) throw new Error(`bad TCP: ${r.reason}`);
  // Copy the payload out of the frame so tests can keep it.
  r.value.payload = r.value.payload.slice();
  return r.value;
}
