/**
 * Neighbor Discovery for one stack (RFC 4861), as a router on its link:
 * answers neighbour solicitations for the stack's addresses, learns
 * neighbours into the {@linkcode NeighborCache}, resolves the next hop of
 * outgoing IPv6 frames (queueing them meanwhile, soliciting, probing), and
 * sends router advertisements with the session's /64 for SLAAC (RFC 4862),
 * the MTU and RDNSS (RFC 8106), unsolicited and in answer to router
 * solicitations ({@linkcode RouterAdvertiser}), from the first IPv6 packet
 * heard on the link on.
 *
 * Duplicate address detection (RFC 4862 §5.4): a probe (source ::) for an
 * address that is not the stack's is never answered, so a guest's DAD for
 * its own tentative address always succeeds; a probe for the stack's own
 * address is answered to all nodes, as §5.4.3 asks of an address in use.
 *
 * @module
 */

import {
  ETHERNET_HEADER_LEN,
  EtherType,
  type Icmpv6Packet,
  IpProtocol,
  IPV6_ALL_NODES,
  IPV6_HEADER_LEN,
  IPV6_UNSPECIFIED,
  type Ipv6Address,
  ipv6MulticastMac,
  Ipv6Repr,
  ipv6SolicitedNode,
  isIpv6LinkLocal,
  isIpv6Multicast,
  isIpv6SolicitedNode,
  type MacAddress,
  NdpRepr,
} from "../wire/mod.ts";
import type { StackCounters } from "./counters.ts";
import { earlier } from "./deadline.ts";
import type { EthernetLayer } from "./ethernet_layer.ts";
import { finishOffloadedFrame } from "./frame_offload.ts";
import { IPV6_PREFIX_LENGTH, type Ipv6NextHopResolver, type Ipv6Output } from "./ipv6_output.ts";
import type { NeighborCache, NeighborRelease } from "./neighbor_cache.ts";
import type { RouterAdvertiser } from "./router_advertiser.ts";

/**
 * Reasons NDP drops received messages (the wire parser's `ndp_*` come on top).
 *
 * - `ndp_bad_hop_limit`: a hop limit other than 255: the message crossed a
 *   router (RFC 4861 §6.1, §7.1).
 * - `ndp_bad_source`: a source the message may not have: a router
 *   advertisement not from a link-local address (§6.1.2), a solicitation
 *   from :: with a link-layer address option (§6.1.1, §7.1.1), a DAD probe
 *   not to a solicited-node group (§7.1.1).
 * - `ndp_bad_advert`: a neighbour advertisement to a multicast address with
 *   the Solicited flag (§7.1.2).
 * - `ndp_not_for_us`: a solicitation for an address that is not the stack's.
 * - `ndp_address_conflict`: an advertisement claiming one of the stack's addresses.
 * - `ndp_advert_unknown_neighbor`: an advertisement for a neighbour the
 *   stack is not resolving (§7.2.5: silently discarded).
 * - `ndp_router_advert_ignored`: another router's advertisement (the stack
 *   is the link's router and takes no configuration from it).
 * - `ndp_redirect_ignored`: redirects are for hosts (§8); the stack is the router.
 */
export const NDP_DROP_REASONS: readonly string[] = [
  "ndp_bad_hop_limit",
  "ndp_bad_source",
  "ndp_bad_advert",
  "ndp_not_for_us",
  "ndp_address_conflict",
  "ndp_advert_unknown_neighbor",
  "ndp_router_advert_ignored",
  "ndp_redirect_ignored",
];

/** The IPv6 header fields NDP validates. */
export interface NdpIpHeader {
  /** Source address. */
  src: Ipv6Address;
  /** Destination address. */
  dst: Ipv6Address;
  /** Hop limit as received. */
  hopLimit: number;
}

/** What NDP needs. */
export interface NdpLayerDeps {
  /** IPv6 output (its addressing names the stack's addresses). */
  out: Ipv6Output;
  /** The neighbour cache. */
  cache: NeighborCache;
  /** When router advertisements are due. */
  advertiser: RouterAdvertiser;
  /** The link layer (solicitations go out directly). */
  eth: EthernetLayer;
  /** The link's IP MTU (the MTU option of router advertisements). */
  mtu: number;
  /** The stack's counters (`ndp_queue_full`, `ndp_unresolved`). */
  counters: StackCounters;
  /** A zero-filled frame of `len` bytes that the stack owns. */
  allocFrame(len: number): Uint8Array;
}

/**
 * NDP in and out for one stack.
 *
 * @example
 * ```ts
 * const ndp = new NdpLayer({ out, cache, advertiser, eth, mtu: 1500, counters, allocFrame });
 * out.setResolver(ndp);
 * ndp.input(ipHeader, icmpv6Packet, now); // answers a solicitation for fd00::2
 * ndp.poll(now); // retransmits, probes, expires, advertises
 * ```
 */
export class NdpLayer implements Ipv6NextHopResolver {
  #out: Ipv6Output;
  #cache: NeighborCache;
  #advertiser: RouterAdvertiser;
  #eth: EthernetLayer;
  #mtu: number;
  #counters: StackCounters;
  #alloc: (len: number) => Uint8Array;
  #advertising = false;

  /** Creates the layer and makes it `out`'s next-hop resolver. */
  constructor(deps: NdpLayerDeps) {
    this.#out = deps.out;
    this.#cache = deps.cache;
    this.#advertiser = deps.advertiser;
    this.#eth = deps.eth;
    this.#mtu = deps.mtu;
    this.#counters = deps.counters;
    this.#alloc = deps.allocFrame;
    deps.out.setResolver(this);
  }

  /**
   * Handles an NDP message whose ICMPv6 checksum was verified (RFC 4861
   * §6.1, §6.2.6, §7.1, §7.2). Returns a drop reason, or undefined when
   * the message was for the stack.
   */
  input(ip: NdpIpHeader, pkt: Icmpv6Packet, now: number): string | undefined {
    if (ip.hopLimit !== 255) return "ndp_bad_hop_limit";
    const parsed = NdpRepr.parse(pkt);
    if (!parsed.ok) return parsed.reason;
    const msg = parsed.value;
    const unspecified = ip.src === IPV6_UNSPECIFIED;
    switch (msg.type) {
      case "router_solicit": {
        const sll = msg.options.sourceLinkAddr;
        if (unspecified && sll) return "ndp_bad_source";
        if (sll && !unspecified) this.#flush(this.#cache.solicitation(ip.src, sll, now));
        this.#advertiser.solicited(now);
        return undefined;
      }
      case "neighbor_solicit": {
        const sll = msg.options.sourceLinkAddr;
        if (unspecified && (sll || !isIpv6SolicitedNode(ip.dst))) return "ndp_bad_source";
        if (!this.#isOurs(msg.target)) return "ndp_not_for_us";
        if (unspecified) {
          // Someone probes our own address (RFC 4862 §5.4.3): defend it, to all nodes.
          this.#sendAdvert(msg.target, IPV6_ALL_NODES, false, now);
          return undefined;
        }
        if (sll) this.#flush(this.#cache.solicitation(ip.src, sll, now));
        this.#sendAdvert(msg.target, ip.src, true, now);
        return undefined;
      }
      case "neighbor_advert": {
        if (isIpv6Multicast(ip.dst) && msg.solicited) return "ndp_bad_advert";
        if (this.#isOurs(msg.target)) return "ndp_address_conflict";
        const r = this.#cache.advert(msg.target, {
          solicited: msg.solicited,
          override: msg.override,
          mac: msg.options.targetLinkAddr,
        }, now);
        if (r === false) return "ndp_advert_unknown_neighbor";
        this.#flush(r);
        return undefined;
      }
      case "router_advert":
        return isIpv6LinkLocal(ip.src) ? "ndp_router_advert_ignored" : "ndp_bad_source";
      case "redirect":
        return "ndp_redirect_ignored";
    }
  }

  /**
   * Sends an IPv6 frame (its Ethernet header blank) to the on-link
   * neighbour `dst`: now when its address is known, else once a
   * solicitation is answered (RFC 4861 §7.2.2; the frame waits finished in
   * software if it carried `offload` metadata). False when dropped
   * (`ndp_queue_full`).
   */
  transmitIpv6(dst: Ipv6Address, frame: Uint8Array, now: number, offload = 0): boolean {
    const mac = this.#cache.resolve(dst, now);
    if (mac) {
      this.#eth.writeHeader(frame, mac, EtherType.IPV6);
      return this.#eth.transmit(frame, offload);
    }
    if (offload !== 0) {
      // Frames that wait for NDP are queued finished: the link's offload may be gone by then.
      let ok = true;
      for (const f of finishOffloadedFrame(frame, offload)) {
        if (!this.transmitIpv6(dst, f, now)) ok = false;
      }
      return ok;
    }
    switch (this.#cache.enqueue(dst, frame, now)) {
      case "solicit":
        this.#sendSolicit(dst, undefined);
        return true;
      case "queued":
        return true;
      case "full":
        this.#counters.txDrop("ndp_queue_full");
        return false;
    }
  }

  /**
   * An IPv6 packet arrived from the link: the first one makes the stack an
   * advertising router there (RFC 4861 §6.2.4: one advertisement now, then
   * the initial and periodic ones). A link that never speaks IPv6 gets no
   * router advertisements and arms no timer for them.
   */
  heard(now: number): void {
    if (this.#advertising) return;
    this.#advertising = true;
    this.#advertiser.start(now);
  }

  /** Runs the timers: solicitations, probes, expiry, and router advertisements due. */
  poll(now: number): void {
    const r = this.#cache.poll(now);
    this.#counters.txDrop("ndp_unresolved", r.unresolvedDrops);
    for (const ip of r.multicast) this.#sendSolicit(ip, undefined);
    for (const { ip, mac } of r.unicast) this.#sendSolicit(ip, mac);
    if (this.#advertiser.poll(now)) this.#sendRouterAdvert(now);
  }

  /** The earliest time {@linkcode NdpLayer.poll} has work, or undefined. */
  nextDeadline(): number | undefined {
    return earlier(this.#cache.nextDeadline(), this.#advertiser.nextDeadline());
  }

  #isOurs(addr: Ipv6Address): boolean {
    const a = this.#out.addressing;
    return addr === a.address || addr === a.linkLocal;
  }

  #flush(release: NeighborRelease | undefined): void {
    if (!release) return;
    for (const frame of release.frames) {
      this.#eth.writeHeader(frame, release.mac, EtherType.IPV6);
      this.#eth.transmit(frame);
    }
  }

  /**
   * A neighbour advertisement for our `target` (RFC 4861 §7.2.4): from the
   * target itself, Router and Override set, Solicited when answering a
   * unicast-sourced solicitation, with our link-layer address.
   */
  #sendAdvert(target: Ipv6Address, dst: Ipv6Address, solicited: boolean, now: number): void {
    const na: NdpRepr = {
      type: "neighbor_advert",
      router: true,
      solicited,
      override: true,
      target,
      options: { targetLinkAddr: this.#eth.mac },
    };
    this.#out.send(
      target,
      dst,
      IpProtocol.ICMPV6,
      NdpRepr.bufferLen(na),
      (buf) => NdpRepr.emit(na, buf, target, dst),
      now,
      255,
    );
  }

  /**
   * A neighbour solicitation for `target` (RFC 4861 §7.2.2): to its
   * solicited-node group, or to `mac` and the target itself when probing a
   * known address (§7.3.3); with our link-layer address.
   */
  #sendSolicit(target: Ipv6Address, mac: MacAddress | undefined): void {
    const src = this.#out.sourceFor(target);
    const dst = mac ? target : ipv6SolicitedNode(target);
    const ns: NdpRepr = {
      type: "neighbor_solicit",
      target,
      options: { sourceLinkAddr: this.#eth.mac },
    };
    const len = NdpRepr.bufferLen(ns);
    const frame = this.#alloc(ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + len);
    this.#eth.writeHeader(frame, mac ?? ipv6MulticastMac(dst), EtherType.IPV6);
    Ipv6Repr.emit(
      { src, dst, nextHeader: IpProtocol.ICMPV6, payloadLen: len, hopLimit: 255 },
      frame.subarray(ETHERNET_HEADER_LEN),
    );
    NdpRepr.emit(ns, frame.subarray(ETHERNET_HEADER_LEN + IPV6_HEADER_LEN), src, dst);
    this.#eth.transmit(frame);
  }

  /**
   * A router advertisement to all nodes from our link-local address
   * (RFC 4861 §6.2.3): our link-layer address, the MTU, the prefix on-link
   * and autonomous (SLAAC), the stack's address as DNS server (RFC 8106).
   */
  #sendRouterAdvert(now: number): void {
    const o = this.#advertiser.options;
    const a = this.#out.addressing;
    const src = a.linkLocal;
    const ra: NdpRepr = {
      type: "router_advert",
      curHopLimit: o.curHopLimit,
      managed: false,
      other: o.otherConfig,
      routerLifetime: o.routerLifetime,
      reachableTime: 0,
      retransTimer: 0,
      options: {
        sourceLinkAddr: this.#eth.mac,
        mtu: this.#mtu,
        prefixes: [{
          prefix: a.prefix,
          prefixLength: IPV6_PREFIX_LENGTH,
          onLink: true,
          autonomous: true,
          validLifetime: o.validLifetime,
          preferredLifetime: o.preferredLifetime,
        }],
        rdnss: [{ lifetime: o.rdnssLifetime, servers: [a.address] }],
      },
    };
    this.#out.send(
      src,
      IPV6_ALL_NODES,
      IpProtocol.ICMPV6,
      NdpRepr.bufferLen(ra),
      (buf) => NdpRepr.emit(ra, buf, src, IPV6_ALL_NODES),
      now,
      255,
    );
  }
}
