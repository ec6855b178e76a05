/**
 * The link layer of one stack: where every received frame enters (Ethernet II
 * validation and demux by EtherType to ARP or IPv4) and every emitted frame
 * leaves (to the {@linkcode Link}, counted).
 *
 * @module
 */

import { ETHERNET_HEADER_LEN, EtherType, type MacAddress } from "../wire/mod.ts";
import type { Link } from "./channel_link.ts";
import { FrameOffload } from "./frame_offload.ts";
import type { StackCounters } from "./counters.ts";
import { FrameArena } from "./frame_arena.ts";

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
  /**
   * An IPv4 packet; `linkBroadcast` tells whether the frame went to
   * ff:ff:ff:ff:ff:ff, `offload` is the frame's {@linkcode FrameOffload}.
   */
  ipv4(
    payload: Uint8Array,
    now: number,
    linkBroadcast: boolean,
    offload: number,
  ): string | undefined;
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
  /** Where emitted frames are carved from (see frame_arena.ts). */
  readonly arena: FrameArena = new FrameArena();
  /**
   * The multicast MACs the stack listens to besides its own and broadcast:
   * those of the IPv6 groups it joined (33:33 and the group's low 32 bits,
   * RFC 2464 §7), for IPv6 frames only. Empty without IPv6.
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
   * unicast MAC) and hands its payload to ARP or IPv4. `offload` is what the
   * link says of it ({@linkcode FrameOffload}: a GSO packet may exceed the
   * MTU). Returns a drop reason, or undefined when the frame was handled.
   */
  input(bytes: Uint8Array, now: number, offload = 0): string | undefined {
    // The checks of EthernetFrame.parse and the addresses, read in place (no object per frame).
    const len = bytes.length;
    if (len > this.maxFrameLen) {
      // A segmentation-offload packet may hold up to a whole IPv4 packet (64 KiB).
      if ((offload & FrameOffload.GSO_TCPV4) === 0 || len > ETHERNET_HEADER_LEN + 65535) {
        return "ethernet_oversized";
      }
    }
    if (len < ETHERNET_HEADER_LEN) return "ethernet_truncated";
    const etherType = (bytes[12] << 8) | bytes[13];
    if (etherType < 0x0600) return "ethernet_not_ethernet_ii";
    const mac = this.mac;
    let group = false;
    let broadcast = false;
    if (
      bytes[0] !== mac[0] || bytes[1] !== mac[1] || bytes[2] !== mac[2] ||
      bytes[3] !== mac[3] || bytes[4] !== mac[4] || bytes[5] !== mac[5]
    ) {
      group = true;
      broadcast = (bytes[0] & bytes[1] & bytes[2] & bytes[3] & bytes[4] & bytes[5]) === 0xff;
      // IPv6 multicast MACs carry IPv6 only (RFC 2464 §7).
      if (!broadcast && !(etherType === EtherType.IPV6 && this.#listensTo(bytes))) {
        return "ethernet_not_for_us";
      }
    }
    if ((bytes[6] & 0x01) !== 0) return "ethernet_bad_source";
    switch (etherType) {
      case EtherType.ARP:
        return this.#upper.arp(bytes.subarray(ETHERNET_HEADER_LEN), now);
      case EtherType.IPV4:
        return this.#upper.ipv4(bytes.subarray(ETHERNET_HEADER_LEN), now, broadcast, offload);
      case EtherType.IPV6:
        if (!this.#upper.ipv6) return "ethernet_unsupported_ethertype";
        return this.#upper.ipv6(bytes.subarray(ETHERNET_HEADER_LEN), now, group);
      default:
        return "ethernet_unsupported_ethertype";
    }
  }

  /** Whether the frame's destination MAC is one of {@linkcode EthernetLayer.multicastMacs}. */
  #listensTo(frame: Uint8Array): boolean {
    for (const m of this.multicastMacs) {
      if (
        m[0] === frame[0] && m[1] === frame[1] && m[2] === frame[2] && m[3] === frame[3] &&
        m[4] === frame[4] && m[5] === frame[5]
      ) {
        return true;
      }
    }
    return false;
  }

  /** A zero-filled frame of `len` bytes for the stack to build and transmit. */
  allocFrame(len: number): Uint8Array {
    return this.arena.alloc(len);
  }

  /** Writes the Ethernet header of an outgoing frame (from our MAC) into its first 14 bytes. */
  writeHeader(frame: Uint8Array, dstMac: MacAddress, etherType: number): void {
    const src = this.mac;
    for (let i = 0; i < 6; i++) {
      frame[i] = dstMac[i];
      frame[6 + i] = src[i];
    }
    frame[12] = etherType >>> 8;
    frame[13] = etherType & 0xff;
  }

  /**
   * Hands a frame to the link, with its {@linkcode FrameOffload} metadata;
   * counts it, or `link_queue_full` when refused.
   */
  transmit(frame: Uint8Array, offload = 0): boolean {
    if (this.#link.transmit(frame, offload)) {
      this.#counters.txFrames++;
      this.#counters.txBytes += frame.length;
      return true;
    }
    this.#counters.txDrop("link_queue_full");
    return false;
  }
}
