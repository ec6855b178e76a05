/**
 * The synchronous core of one session: link, ARP, IPv4, ICMP, IPv6 (NDP,
 * router advertisements, ICMPv6), UDP, TCP.
 *
 * @module
 */
export * from "./stack.ts";
export * from "./arp_cache.ts";
export * from "./channel_link.ts";
export * from "./frame_offload.ts";
export * from "./counters.ts";
export * from "./tcp/mod.ts";
export * from "./udp/mod.ts";
export * from "./fragment_reassembler.ts";
export * from "./ipv4_reassembler.ts";
export * from "./ipv6_reassembler.ts";
export * from "./dns_responder.ts";
export * from "./dhcp_server.ts";
export * from "./dhcp_leases.ts";
export * from "./session_quota.ts";
export * from "./ethernet_layer.ts";
export * from "./arp_layer.ts";
export * from "./ipv4_input.ts";
export * from "./ipv4_output.ts";
export * from "./icmp_layer.ts";
export * from "./token_bucket.ts";
export * from "./stack_egress.ts";
export * from "./neighbor_cache.ts";
export * from "./router_advertiser.ts";
export * from "./path_mtu_cache.ts";
export * from "./ipv6_output.ts";
export * from "./ipv6_input.ts";
export * from "./ndp_layer.ts";
export * from "./icmpv6_layer.ts";
export * from "./stack_ipv6.ts";
