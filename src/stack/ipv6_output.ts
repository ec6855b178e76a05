/**
 * IPv6 output for one stack (RFC 8200): builds the fixed header in place in
 * the frame, picks the source address (RFC 6724 in its simplest form: the
 * link-local address towards link-local and link-scope multicast
 * destinations, the session's address otherwise), and maps the destination
 * to a link address: the multicast MAC (RFC 2464 §7), or the neighbour
 * cache for on-link unicast (the session's prefix and fe80::/10). There is
 * no router beyond the link: anything else has no route.
 *
 * @module
 */

import {
  ETHERNET_HEADER_LEN,
  EtherType,
  IPV6_HEADER_LEN,
  type Ipv6Address,
  ipv6InPrefix,
  ipv6MulticastMac,
  ipv6MulticastScope,
  ipv6PseudoHeaderSum,
  Ipv6Repr,
  isIpv6LinkLocal,
  isIpv6Multicast,
  isIpv6Unicast,
  writeIpv6,
} from "../wire/mod.ts";
import type { StackCounters } from "./counters.ts";
import type { EthernetLayer } from "./ethernet_layer.ts";
import { type PacketOutput, TxPacket } from "./tx_packet.ts";

/** The IPv6 addressing of one stack. */
export interface Ipv6Addressing {
  /** The on-link /64 prefix (host bits zero). */
  prefix: Ipv6Address;
  /** The stack's address in the prefix. */
  address: Ipv6Address;
  /** The stack's link-local address (modified EUI-64 of its MAC). */
  linkLocal: Ipv6Address;
}

/** The prefix length of the session's IPv6 prefix (SLAAC needs /64, RFC 4862 §5.5.3). */
export const IPV6_PREFIX_LENGTH = 64;

/** Resolves on-link unicast next hops: the NDP layer. */
export interface Ipv6NextHopResolver {
  /** Sends `frame` (Ethernet header blank) to `dst` now or once resolved; false when dropped. */
  transmitIpv6(dst: Ipv6Address, frame: Uint8Array, now: number, offload?: number): boolean;
}

/** What IPv6 output needs. */
export interface Ipv6OutputDeps {
  /** The stack's addresses. */
  addressing: Ipv6Addressing;
  /** The link's IP MTU. */
  mtu: number;
  /** The link layer. */
  eth: EthernetLayer;
  /** The stack's counters (`ipv6_exceeds_mtu`, `ipv6_no_route`). */
  counters: StackCounters;
  /** A zero-filled frame of `len` bytes that the stack owns. */
  allocFrame(len: number): Uint8Array;
}

/**
 * Sends IPv6 packets for one stack.
 *
 * @example
 * ```ts
 * const out = new Ipv6Output({ addressing, mtu: 1500, eth, counters, allocFrame });
 * out.setResolver(ndp);
 * const src = out.sourceFor(peer);
 * out.send(src, peer, IpProtocol.ICMPV6, 8, (buf) => emitEcho(buf, src, peer), now);
 * ```
 */
export class Ipv6Output implements PacketOutput<Ipv6Address> {
  /** The stack's addresses. */
  readonly addressing: Ipv6Addressing;
  readonly #tx = new TxPacket();
  #txDst: Ipv6Address | undefined;
  #lastOnLink: Ipv6Address | undefined;
  #mtu: number;
  #eth: EthernetLayer;
  #counters: StackCounters;
  #alloc: (len: number) => Uint8Array;
  #resolver: Ipv6NextHopResolver | undefined;

  /** Creates the output path; {@linkcode Ipv6Output.setResolver} before sending unicast. */
  constructor(deps: Ipv6OutputDeps) {
    this.addressing = deps.addressing;
    this.#mtu = deps.mtu;
    this.#eth = deps.eth;
    this.#counters = deps.counters;
    this.#alloc = deps.allocFrame;
  }

  /** Sets the next-hop resolver (the NDP layer, built after this). */
  setResolver(resolver: Ipv6NextHopResolver): void {
    this.#resolver = resolver;
  }

  /** Whether `dst` is on the link: in the session's prefix or link-local, unicast. */
  isOnLink(dst: Ipv6Address): boolean {
    // One flow's packets ask about the same address: remember the last one found on the link.
    if (dst === this.#lastOnLink) return true;
    const on = isIpv6Unicast(dst) &&
      (isIpv6LinkLocal(dst) || ipv6InPrefix(dst, this.addressing.prefix, IPV6_PREFIX_LENGTH));
    if (on) this.#lastOnLink = dst;
    return on;
  }

  /** Whether a packet to `dst` can be sent: on-link unicast or multicast. */
  hasRoute(dst: Ipv6Address): boolean {
    return isIpv6Multicast(dst) || this.isOnLink(dst);
  }

  /**
   * The source address for a packet to `dst` (RFC 6724 §5 rule 2, scope):
   * the link-local address for link-local unicast and multicast of scope 2
   * or less, the session's address otherwise.
   */
  sourceFor(dst: Ipv6Address): Ipv6Address {
    if (isIpv6LinkLocal(dst) || (isIpv6Multicast(dst) && ipv6MulticastScope(dst) <= 2)) {
      return this.addressing.linkLocal;
    }
    return this.addressing.address;
  }

  /**
   * Begins an IPv6 packet of `payloadLen` bytes of upper-layer `nextHeader`
   * to the on-link unicast `dst` (RFC 8200 §3: no extension headers, hop
   * limit `hopLimit`, from `src` or the source {@linkcode Ipv6Output.sourceFor}
   * picks): allocates its frame and writes the IPv6 header in place. Returns
   * the reused {@linkcode TxPacket} to write the transport's bytes into, then
   * {@linkcode Ipv6Output.commit}; undefined (counted in `txDrops`) when the
   * packet exceeds the MTU (IPv6 never fragments what TCP sends; with `gso`,
   * a large TCP segment for a link with segmentation offload, the payload
   * may take up to 65535 bytes) or `dst` is not on the link.
   * Nothing else may be sent between the two calls.
   */
  begin(
    dst: Ipv6Address,
    nextHeader: number,
    payloadLen: number,
    _dontFragment: boolean,
    hopLimit = 64,
    src: Ipv6Address = this.sourceFor(dst),
    gso = false,
  ): TxPacket | undefined {
    const ipLen = IPV6_HEADER_LEN + payloadLen;
    if (gso ? payloadLen > 0xffff : ipLen > this.#mtu) {
      this.#counters.txDrop("ipv6_exceeds_mtu");
      return undefined;
    }
    if (!this.isOnLink(dst) || this.#resolver === undefined) {
      this.#counters.txDrop("ipv6_no_route");
      return undefined;
    }
    const frame = this.#alloc(ETHERNET_HEADER_LEN + ipLen);
    const o = ETHERNET_HEADER_LEN;
    frame[12] = EtherType.IPV6 >>> 8;
    frame[13] = EtherType.IPV6 & 0xff;
    // RFC 8200 §3: version 6, traffic class 0, flow label 0 (the frame is zero-filled).
    frame[o] = 0x60;
    frame[o + 4] = payloadLen >>> 8;
    frame[o + 5] = payloadLen & 0xff;
    frame[o + 6] = nextHeader;
    frame[o + 7] = hopLimit;
    writeIpv6(frame, o + 8, src);
    writeIpv6(frame, o + 24, dst);
    const tx = this.#tx;
    tx.frame = frame;
    tx.l4 = o + IPV6_HEADER_LEN;
    tx.pseudoSum = ipv6PseudoHeaderSum(src, dst, nextHeader, payloadLen);
    tx.offload = 0;
    this.#txDst = dst;
    return tx;
  }

  /**
   * Sends the packet begun with {@linkcode Ipv6Output.begin} to its
   * neighbour (resolved through NDP). Returns false when it was dropped
   * (counted in `txDrops`).
   */
  commit(now: number): boolean {
    const dst = this.#txDst;
    this.#txDst = undefined;
    if (dst === undefined) return false;
    return this.#resolver!.transmitIpv6(dst, this.#tx.frame, now, this.#tx.offload);
  }

  /**
   * Sends an IPv6 packet from `src` to `dst` whose `payloadLen` bytes of
   * `nextHeader` `fill` writes in place (it runs before this returns,
   * resolved or not). Returns false when the packet was dropped (counted in
   * `txDrops`: `ipv6_exceeds_mtu`, `ipv6_no_route`, or the resolver's).
   */
  send(
    src: Ipv6Address,
    dst: Ipv6Address,
    nextHeader: number,
    payloadLen: number,
    fill: (payload: Uint8Array) => void,
    now: number,
    hopLimit = 64,
  ): boolean {
    const ipLen = IPV6_HEADER_LEN + payloadLen;
    if (ipLen > this.#mtu) {
      this.#counters.txDrop("ipv6_exceeds_mtu");
      return false;
    }
    const multicast = isIpv6Multicast(dst);
    if (!multicast && (!this.isOnLink(dst) || this.#resolver === undefined)) {
      this.#counters.txDrop("ipv6_no_route");
      return false;
    }
    const frame = this.#alloc(ETHERNET_HEADER_LEN + ipLen);
    frame[12] = EtherType.IPV6 >>> 8;
    frame[13] = EtherType.IPV6 & 0xff;
    Ipv6Repr.emit(
      { src, dst, nextHeader, payloadLen, hopLimit },
      frame.subarray(ETHERNET_HEADER_LEN),
    );
    fill(frame.subarray(ETHERNET_HEADER_LEN + IPV6_HEADER_LEN));
    if (multicast) {
      this.#eth.writeHeader(frame, ipv6MulticastMac(dst), EtherType.IPV6);
      return this.#eth.transmit(frame);
    }
    return this.#resolver!.transmitIpv6(dst, frame, now);
  }
}
