/**
 * The link layer of one stack: where every received frame enters (Ethernet II
 * validation and demux by EtherType to ARP or IPv4) and every emitted frame
 * leaves (to the {@linkcode Link}, counted).
 *
 * @module
 */

import {
  ETHERNET_HEADER_LEN,
  EthernetFrame,
  EthernetRepr,
  EtherType,
  isBroadcastMac,
  isMulticastMac,
  type MacAddress,
  macEquals,
} from "../wire/mod.ts";
import type { Link } from "./channel_link.ts";
import type { StackCounters } from "./counters.ts";

/**
 * Reasons the link layer drops received frames.
 *
 * - `ethernet_oversized`: longer than the MTU + 14.
 * - `ethernet_not_for_us`: to another unicast MAC, or a multicast MAC the
 *   stack does not listen to (it listens to the IPv6 groups it joined).
 * - `ethernet_bad_source`: from a group (multicast or broadcast) MAC.
 * - `ethernet_unsupported_ethertype`: neither ARP nor IPv4 (nor IPv6 when on).
 */
export const ETHERNET_DROP_REASONS: readonly string[] = [
  "ethernet_oversized",
  "ethernet_not_for_us",
  "ethernet_bad_source",
  "ethernet_unsupported_ethertype",
];

/** The layers above the link, each returning a drop reason or undefined when handled. */
export interface EthernetUpperLayers {
  /** An ARP packet (the frame's payload). */
  arp(payload: Uint8Array, now: number): string | undefined;
  /** An IPv4 packet; `linkBroadcast` tells whether the frame went to ff:ff:ff:ff:ff:ff. */
  ipv4(payload: Uint8Array, now: number, linkBroadcast: boolean): string | undefined;
  /**
   * An IPv6 packet, when the stack has IPv6; `linkMulticast` tells whether
   * the frame went to a group MAC (multicast or broadcast).
   */
  ipv6?(payload: Uint8Array, now: number, linkMulticast: boolean): string | undefined;
}

/** What the link layer needs. */
export interface EthernetLayerDeps {
  /** The stack's MAC address. */
  mac: MacAddress;
  /** The IP MTU; frames up to `mtu + 14` bytes are accepted. */
  mtu: number;
  /** Where emitted frames go. */
  link: Link;
  /** The stack's counters (frames and bytes out, `link_queue_full`). */
  counters: StackCounters;
  /** Where received payloads go. */
  upper: EthernetUpperLayers;
}

/**
 * Ethernet II in and out for one stack.
 *
 * @example
 * ```ts
 * const eth = new EthernetLayer({ mac, mtu: 1500, link, counters, upper: { arp, ipv4 } });
 * const reason = eth.input(frame, now); // undefined when ARP or IPv4 handled it
 * ```
 */
export class EthernetLayer {
  /** The stack's MAC address. */
  readonly mac: MacAddress;
  /** The largest frame accepted or emitted: the MTU plus the 14-byte header. */
  readonly maxFrameLen: number;
  /**
   * The multicast MACs the stack listens to besides its own and broadcast:
   * those of the IPv6 groups it joined (33:33 and the group's low 32 bits,
   * RFC 2464 §7). Empty without IPv6.
   */
  multicastMacs: readonly MacAddress[] = [];
  #link: Link;
  #counters: StackCounters;
  #upper: EthernetUpperLayers;

  /** Creates the layer. */
  constructor(deps: EthernetLayerDeps) {
    this.mac = deps.mac;
    this.maxFrameLen = deps.mtu + ETHERNET_HEADER_LEN;
    this.#link = deps.link;
    this.#counters = deps.counters;
    this.#upper = deps.upper;
  }

  /**
   * Validates a received frame (IEEE 802.3: to us or broadcast, from a
   * unicast MAC) and hands its payload to ARP or IPv4. Returns a drop reason,
   * or undefined when the frame was handled.
   */
  input(bytes: Uint8Array, now: number): string | undefined {
    if (bytes.length > this.maxFrameLen) return "ethernet_oversized";
    const parsed = EthernetFrame.parse(bytes);
    if (!parsed.ok) return parsed.reason;
    const frame = parsed.value;
    const dst = frame.dst;
    const group = !macEquals(dst, this.mac);
    if (
      group && !isBroadcastMac(dst) &&
      // IPv6 multicast MACs carry IPv6 only (RFC 2464 §7).
      !(frame.etherType === EtherType.IPV6 && this.#listensTo(dst))
    ) {
      return "ethernet_not_for_us";
    }
    if (isMulticastMac(frame.src)) return "ethernet_bad_source";
    switch (frame.etherType) {
      case EtherType.ARP:
        return this.#upper.arp(frame.payload, now);
      case EtherType.IPV4:
        return this.#upper.ipv4(frame.payload, now, isBroadcastMac(dst));
      case EtherType.IPV6:
        if (!this.#upper.ipv6) return "ethernet_unsupported_ethertype";
        return this.#upper.ipv6(frame.payload, now, group);
      default:
        return "ethernet_unsupported_ethertype";
    }
  }

  #listensTo(dst: MacAddress): boolean {
    for (const m of this.multicastMacs) if (macEquals(m, dst)) return true;
    return false;
  }

  /** Writes the Ethernet header of an outgoing frame (from our MAC) into its first 14 bytes. */
  writeHeader(frame: Uint8Array, dstMac: MacAddress, etherType: number): void {
    EthernetRepr.emit({ dst: dstMac, src: this.mac, etherType }, frame);
  }

  /** Hands a finished frame to the link; counts it, or `link_queue_full` when refused. */
  transmit(frame: Uint8Array): boolean {
    if (this.#link.transmit(frame)) {
      this.#counters.txFrames++;
      this.#counters.txBytes += frame.length;
      return true;
    }
    this.#counters.txDrop("link_queue_full");
    return false;
  }
}
