/**
 * Pure wire-format codecs for netisle: addresses, the Internet checksum,
 * Ethernet II, ARP, IPv4, ICMPv4, IPv6 (with extension headers), ICMPv6, NDP,
 * MLD, UDP, TCP, DHCPv4 and DHCPv6, and the pcap file format.
 * No state, no I/O.
 *
 * Each protocol has a `<Proto>Packet`, a checked zero-copy view over bytes
 * whose `parse` returns a {@link ParseResult}, and a `<Proto>Repr`, a plain
 * object with `parse`, `emit` and `bufferLen`. Hostile bytes never throw;
 * misuse of an emitter does.
 *
 * @example
 * ```ts
 * import { EthernetFrame, EtherType, Ipv4Packet, Ipv4Repr } from "./mod.ts";
 *
 * function input(frame: Uint8Array, drops: Map<string, number>): void {
 *   const eth = EthernetFrame.parse(frame);
 *   if (!eth.ok) return void drops.set(eth.reason, (drops.get(eth.reason) ?? 0) + 1);
 *   if (eth.value.etherType !== EtherType.IPV4) return;
 *   const ip = Ipv4Packet.parse(eth.value.payload);
 *   if (!ip.ok) return void drops.set(ip.reason, (drops.get(ip.reason) ?? 0) + 1);
 *   const repr = Ipv4Repr.parse(ip.value);
 *   if (!repr.ok) return void drops.set(repr.reason, (drops.get(repr.reason) ?? 0) + 1);
 * }
 * ```
 *
 * @module
 */

export * from "./parse_result.ts";
export * from "./address.ts";
export * from "./checksum.ts";
export * from "./ethernet.ts";
export * from "./arp.ts";
export * from "./ipv4.ts";
export * from "./icmpv4.ts";
export * from "./ip_address.ts";
export * from "./ipv6_address.ts";
export * from "./ipv6_address_kinds.ts";
export * from "./ipv6.ts";
export * from "./ipv6_ext.ts";
export * from "./icmpv6.ts";
export * from "./ndp.ts";
export * from "./mld.ts";
export * from "./udp.ts";
export * from "./tcp.ts";
export * from "./dns.ts";
export * from "./dhcp.ts";
export * from "./dhcpv6.ts";
export * from "./pcap_writer.ts";
export * from "./random.ts";
export * from "./tunnel_protocol.ts";
export * from "./stream_framing.ts";
export * from "./wisp.ts";
export * from "./vnet_header.ts";
