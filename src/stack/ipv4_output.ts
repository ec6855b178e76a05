/**
 * IPv4 output for one stack (RFC 791, RFC 1122 §3.3): builds the header in
 * place in the frame, fragments when asked to (RFC 791 §3.2), and maps the
 * destination to a link address: broadcast for the broadcast addresses, ARP
 * for on-link neighbours. There is no gateway: anything off the link has no
 * route. Every layer sends through here (TCP, UDP and its services, ICMP).
 *
 * @module
 */

import {
  BROADCAST_MAC,
  checksumAdd,
  checksumFinish,
  ETHERNET_HEADER_LEN,
  EtherType,
  IPV4_BROADCAST,
  IPV4_HEADER_LEN,
  type Ipv4Address,
  ipv4Netmask,
  ipv4PseudoHeaderSum,
  Ipv4Repr,
  ipv4SubnetBroadcast,
  isIpv4Multicast,
  type MacAddress,
} from "../wire/mod.ts";
import type { ArpLayer } from "./arp_layer.ts";
import type { StackCounters } from "./counters.ts";
import type { EthernetLayer } from "./ethernet_layer.ts";
import { type PacketOutput, TxPacket } from "./tx_packet.ts";

/** Options of {@linkcode Ipv4Output.send} (and {@linkcode Stack.sendIpv4}). */
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
  /**
   * The source address; the stack's own by default. The egress gateway sends
   * from the outside addresses the session's machine talks to.
   */
  src?: Ipv4Address;
}

/** What IPv4 output needs. */
export interface Ipv4OutputDeps {
  /** The stack's address (the source of every packet) and the on-link prefix. */
  ipv4: { address: Ipv4Address; prefixLength: number };
  /** The link's IP MTU. */
  mtu: number;
  /** ARP, which resolves on-link next hops. */
  arp: ArpLayer;
  /** The link layer, for broadcasts and frames to a known MAC. */
  eth: EthernetLayer;
  /** The stack's counters (`ipv4_exceeds_mtu`, `ipv4_no_route`). */
  counters: StackCounters;
}

/**
 * Sends IPv4 packets for one stack.
 *
 * @example
 * ```ts
 * const out = new Ipv4Output({ ipv4, mtu: 1500, arp, eth, counters });
 * out.send(peer, IpProtocol.UDP, 8, (buf) => buf.fill(0), now);
 * ```
 */
export class Ipv4Output implements PacketOutput {
  #address: Ipv4Address;
  #prefixLength: number;
  #mask: number;
  #broadcast: Ipv4Address;
  #mtu: number;
  #arp: ArpLayer;
  #eth: EthernetLayer;
  #counters: StackCounters;
  #ident = 0;
  readonly #tx = new TxPacket();
  /** The destination of the packet begun (the next hop: there is no gateway). */
  #txDst: Ipv4Address = 0;

  /** Creates the output path. */
  constructor(deps: Ipv4OutputDeps) {
    this.#address = deps.ipv4.address;
    this.#prefixLength = deps.ipv4.prefixLength;
    this.#mask = ipv4Netmask(deps.ipv4.prefixLength);
    this.#broadcast = ipv4SubnetBroadcast(this.#address, this.#prefixLength);
    this.#mtu = deps.mtu;
    this.#arp = deps.arp;
    this.#eth = deps.eth;
    this.#counters = deps.counters;
  }

  /**
   * Whether `dst` can be reached: an on-link unicast address, the subnet
   * broadcast or 255.255.255.255 (there is no gateway).
   */
  hasRoute(dst: Ipv4Address): boolean {
    if (this.#isBroadcast(dst)) return true;
    return ((dst ^ this.#address) & this.#mask) === 0 && !isIpv4Multicast(dst);
  }

  /**
   * Begins an IPv4 packet of `payloadLen` bytes of transport `protocol` to
   * `dst`: allocates its frame and writes the IPv4 header (RFC 791 §3.1; no
   * options, TTL 64, DF when asked, from the stack's address unless `src`). Returns the reused
   * {@linkcode TxPacket} to write the transport's bytes into, then
   * {@linkcode Ipv4Output.commit}; undefined (counted in `txDrops`) when the
   * packet exceeds the MTU or has no route. Nothing else may be sent between
   * the two calls.
   */
  begin(
    dst: Ipv4Address,
    protocol: number,
    payloadLen: number,
    dontFragment: boolean,
    ttl = 64,
    src: Ipv4Address = this.#address,
    gso = false,
  ): TxPacket | undefined {
    const ipLen = IPV4_HEADER_LEN + payloadLen;
    if (ipLen > (gso ? 0xffff : this.#mtu)) {
      this.#counters.txDrop("ipv4_exceeds_mtu");
      return undefined;
    }
    if (!this.hasRoute(dst)) {
      this.#counters.txDrop("ipv4_no_route");
      return undefined;
    }
    const frame = this.#eth.allocFrame(ETHERNET_HEADER_LEN + ipLen);
    // The EtherType now (the addresses when the next hop is known): the frame reads as IPv4.
    frame[12] = EtherType.IPV4 >> 8;
    frame[13] = EtherType.IPV4 & 0xff;
    this.#writeHeader(frame, src, dst, protocol, ipLen, ttl, this.#nextIdent(), dontFragment);
    const tx = this.#tx;
    tx.frame = frame;
    tx.l4 = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN;
    tx.pseudoSum = ipv4PseudoHeaderSum(src, dst, protocol, payloadLen);
    this.#txDst = dst;
    tx.offload = 0;
    return tx;
  }

  /**
   * Sends the packet begun with {@linkcode Ipv4Output.begin}: to the
   * neighbour via ARP, or to the broadcast address. Returns false when it
   * was dropped (counted in `txDrops`).
   */
  commit(now: number): boolean {
    const tx = this.#tx;
    return this.#route(this.#txDst, tx.frame, now, tx.offload);
  }

  /**
   * Sends an IPv4 packet of `payloadLen` bytes that `fill` writes in place into
   * the frame (so a transport header and its payload are copied once). `fill`
   * runs synchronously before this returns, whether or not the next hop is
   * resolved. Returns false when the packet was dropped (counted in `txDrops`).
   */
  send(
    dst: Ipv4Address,
    protocol: number,
    payloadLen: number,
    fill: (payload: Uint8Array) => void,
    now: number,
    options: Ipv4SendOptions = {},
  ): boolean {
    const ipLen = IPV4_HEADER_LEN + payloadLen;
    if (ipLen > this.#mtu && options.fragment && !options.dontFragment) {
      return this.#sendFragmented(dst, protocol, payloadLen, fill, now, options);
    }
    const tx = this.begin(
      dst,
      protocol,
      payloadLen,
      options.dontFragment ?? false,
      options.ttl ?? 64,
      options.src,
    );
    if (tx === undefined) return false;
    const frame = tx.frame;
    fill(frame.subarray(tx.l4));
    if (options.dstMac && !this.#isBroadcast(dst)) {
      this.#eth.writeHeader(frame, options.dstMac, EtherType.IPV4);
      this.#eth.transmit(frame);
      return true;
    }
    return this.#route(dst, frame, now);
  }

  /** Writes a 20-byte IPv4 header (no options) at `frame[14..34]`, checksum included. */
  #writeHeader(
    frame: Uint8Array,
    src: Ipv4Address,
    dst: Ipv4Address,
    protocol: number,
    totalLen: number,
    ttl: number,
    ident: number,
    dontFragment: boolean,
  ): void {
    const o = ETHERNET_HEADER_LEN;
    frame[o] = 0x45;
    frame[o + 1] = 0;
    frame[o + 2] = totalLen >>> 8;
    frame[o + 3] = totalLen & 0xff;
    frame[o + 4] = ident >>> 8;
    frame[o + 5] = ident & 0xff;
    frame[o + 6] = dontFragment ? 0x40 : 0;
    frame[o + 7] = 0;
    frame[o + 8] = ttl;
    frame[o + 9] = protocol;
    frame[o + 10] = 0;
    frame[o + 11] = 0;
    frame[o + 12] = src >>> 24;
    frame[o + 13] = (src >>> 16) & 0xff;
    frame[o + 14] = (src >>> 8) & 0xff;
    frame[o + 15] = src & 0xff;
    frame[o + 16] = dst >>> 24;
    frame[o + 17] = (dst >>> 16) & 0xff;
    frame[o + 18] = (dst >>> 8) & 0xff;
    frame[o + 19] = dst & 0xff;
    const sum = checksumFinish(checksumAdd(0, frame, o, o + IPV4_HEADER_LEN));
    frame[o + 10] = sum >>> 8;
    frame[o + 11] = sum & 0xff;
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
      this.#counters.txDrop("ipv4_exceeds_mtu");
      return false;
    }
    if (!this.hasRoute(dst)) {
      this.#counters.txDrop("ipv4_no_route");
      return false;
    }
    const payload = new Uint8Array(payloadLen);
    fill(payload);
    const chunk = (this.#mtu - IPV4_HEADER_LEN) & ~7;
    const ident = this.#nextIdent();
    let ok = true;
    for (let off = 0; off < payloadLen; off += chunk) {
      const part = payload.subarray(off, Math.min(payloadLen, off + chunk));
      const frame = this.#eth.allocFrame(ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + part.length);
      Ipv4Repr.emit({
        src: options.src ?? this.#address,
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

  /** Sends an IPv4 frame (Ethernet header still blank): broadcast, or to the neighbour via ARP. */
  #route(dst: Ipv4Address, frame: Uint8Array, now: number, offload = 0): boolean {
    if (this.#isBroadcast(dst)) {
      this.#eth.writeHeader(frame, BROADCAST_MAC, EtherType.IPV4);
      this.#eth.transmit(frame);
      return true;
    }
    return this.#arp.transmitIpv4(dst, frame, now, offload);
  }

  #isBroadcast(dst: Ipv4Address): boolean {
    return dst === IPV4_BROADCAST || dst === this.#broadcast;
  }

  #nextIdent(): number {
    this.#ident = (this.#ident + 1) & 0xffff;
    return this.#ident;
  }
}
