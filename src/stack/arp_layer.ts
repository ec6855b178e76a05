/**
 * ARP for one stack (RFC 826): answers requests for the stack's address,
 * learns on-link neighbours into the {@linkcode ArpCache} (never martian or
 * off-link senders, never group or zero MACs), and resolves the next hop
 * of outgoing IPv4 frames (queueing them while a request is outstanding,
 * retrying from the stack's timers).
 *
 * @module
 */

import {
  ARP_PACKET_LEN,
  ArpOperation,
  ArpPacket,
  ArpRepr,
  BROADCAST_MAC,
  ETHERNET_HEADER_LEN,
  EtherType,
  type Ipv4Address,
  ipv4InSubnet,
  isIpv4MartianSource,
  isMulticastMac,
  type MacAddress,
} from "../wire/mod.ts";
import type { ArpCache } from "./arp_cache.ts";
import type { StackCounters } from "./counters.ts";
import type { EthernetLayer } from "./ethernet_layer.ts";
import { finishOffloadedFrame } from "./frame_offload.ts";

/**
 * Reasons ARP drops received packets.
 *
 * - `arp_bad_sender`: the sender MAC is a group (multicast, broadcast) or
 *   the all-zero address: no station has it.
 * - `arp_martian_sender`: the sender IP names no host here (RFC 1122
 *   §3.2.1.3, RFC 1812 §5.3.7): broadcast, multicast, loopback, class E,
 *   0.0.0.0/8 other than a probe's 0.0.0.0, the subnet's network or
 *   broadcast address.
 * - `arp_off_link_sender`: the sender IP is outside the subnet; ARP is for
 *   neighbours on the link (RFC 826).
 * - `arp_not_for_us`: the target is another address (an existing entry for
 *   the sender is still refreshed).
 * - `arp_address_conflict`: the sender claims the stack's own address.
 */
export const ARP_DROP_REASONS: readonly string[] = [
  "arp_bad_sender",
  "arp_martian_sender",
  "arp_off_link_sender",
  "arp_not_for_us",
  "arp_address_conflict",
];

/** What ARP needs. */
export interface ArpLayerDeps {
  /** The stack's IPv4 address (what it answers for) and the on-link prefix. */
  ipv4: { address: Ipv4Address; prefixLength: number };
  /** The neighbour table. */
  cache: ArpCache;
  /** The link layer below. */
  eth: EthernetLayer;
  /** The stack's counters (`arp_unresolved`, `arp_queue_full`). */
  counters: StackCounters;
}

/**
 * ARP in and out for one stack.
 *
 * @example
 * ```ts
 * const arp = new ArpLayer({ ipv4, cache: new ArpCache(), eth, counters });
 * arp.input(arpPayload, now); // answers a request for `address`, learns the sender
 * arp.transmitIpv4(nextHop, frame, now); // sends now, or after the reply
 * ```
 */
export class ArpLayer {
  /** The neighbour table. */
  readonly cache: ArpCache;
  #address: Ipv4Address;
  #prefixLength: number;
  #eth: EthernetLayer;
  #counters: StackCounters;

  /** Creates the layer. */
  constructor(deps: ArpLayerDeps) {
    this.cache = deps.cache;
    this.#address = deps.ipv4.address;
    this.#prefixLength = deps.ipv4.prefixLength;
    this.#eth = deps.eth;
    this.#counters = deps.counters;
  }

  /**
   * RFC 826 "Packet Reception", with the merge rule: an existing entry for
   * the sender is refreshed by any packet, a new one is created only from a
   * packet addressed to us; a request for our address is answered. A probe
   * (sender 0.0.0.0, RFC 5227 §2.1.1) is answered and teaches nothing. Only
   * on-link senders with a unicast MAC are heard at all: a packet from a
   * martian or off-link sender IP is dropped whole (no entry, no reply).
   * Returns a drop reason, or undefined when the packet was for us.
   */
  input(bytes: Uint8Array, now: number): string | undefined {
    const pkt = ArpPacket.parse(bytes);
    if (!pkt.ok) return pkt.reason;
    const parsed = ArpRepr.parse(pkt.value);
    if (!parsed.ok) return parsed.reason;
    const arp = parsed.value;
    if (isMulticastMac(arp.senderMac) || isZeroMac(arp.senderMac)) return "arp_bad_sender";
    const ours = this.#address;
    const sender = arp.senderIp;
    if (sender === ours) return "arp_address_conflict";
    if (sender !== 0) {
      if (isIpv4MartianSource(sender, ours, this.#prefixLength)) return "arp_martian_sender";
      if (!ipv4InSubnet(sender, ours, this.#prefixLength)) return "arp_off_link_sender";
    }
    const forUs = arp.targetIp === ours;
    if (sender !== 0) {
      // Merge: refresh an existing entry always; create one only when addressed to us.
      for (const f of this.cache.update(arp.senderIp, arp.senderMac, now, !forUs)) {
        this.#eth.transmit(f);
      }
    }
    if (!forUs) return "arp_not_for_us";
    if (arp.operation === ArpOperation.REQUEST) {
      this.#emit(arp.senderMac, {
        operation: ArpOperation.REPLY,
        senderMac: this.#eth.mac,
        senderIp: ours,
        targetMac: arp.senderMac,
        targetIp: arp.senderIp,
      });
    }
    return undefined;
  }

  /**
   * Sends an IPv4 frame (its Ethernet header still blank) to the on-link
   * neighbour `nextHop`: at once when its MAC is known, else after an ARP
   * request is answered (the frame waits in the cache's bounded queue,
   * finished in software if it carried offload metadata). Returns false when
   * the frame was dropped (`arp_queue_full`).
   */
  transmitIpv4(nextHop: Ipv4Address, frame: Uint8Array, now: number, offload = 0): boolean {
    const mac = this.cache.lookup(nextHop, now);
    if (mac) {
      this.#eth.writeHeader(frame, mac, EtherType.IPV4);
      this.#eth.transmit(frame, offload);
      return true;
    }
    if (offload !== 0) {
      // Frames that wait for ARP are queued finished: the link's offload may be gone by then.
      let ok = true;
      for (const f of finishOffloadedFrame(frame, offload)) {
        if (!this.transmitIpv4(nextHop, f, now)) ok = false;
      }
      return ok;
    }
    const finish = (mac: MacAddress): Uint8Array => {
      this.#eth.writeHeader(frame, mac, EtherType.IPV4);
      return frame;
    };
    switch (this.cache.enqueue(nextHop, finish, now)) {
      case "request":
        this.#sendRequest(nextHop);
        return true;
      case "queued":
        return true;
      case "full":
        this.#counters.txDrop("arp_queue_full");
        return false;
    }
  }

  /** Runs the cache's timers: expiry, request retries, and drops of what never resolved. */
  poll(now: number): void {
    const r = this.cache.poll(now);
    this.#counters.txDrop("arp_unresolved", r.unresolvedDrops);
    for (const ip of r.request) this.#sendRequest(ip);
  }

  /**
   * Sends a gratuitous ARP request announcing our address, so that neighbours
   * that cached an older MAC for it update (RFC 5227 §3).
   */
  announce(): void {
    this.#sendRequest(this.#address);
  }

  #sendRequest(ip: Ipv4Address): void {
    this.#emit(BROADCAST_MAC, {
      operation: ArpOperation.REQUEST,
      senderMac: this.#eth.mac,
      senderIp: this.#address,
      targetMac: new Uint8Array(6),
      targetIp: ip,
    });
  }

  #emit(dstMac: MacAddress, repr: ArpRepr): void {
    // Pad to the Ethernet minimum (60 bytes without FCS) as real NICs do.
    const frame = this.#eth.allocFrame(Math.max(60, ETHERNET_HEADER_LEN + ARP_PACKET_LEN));
    this.#eth.writeHeader(frame, dstMac, EtherType.ARP);
    ArpRepr.emit(repr, frame.subarray(ETHERNET_HEADER_LEN));
    this.#eth.transmit(frame);
  }
}

function isZeroMac(mac: MacAddress): boolean {
  return (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) === 0;
}
