/**
 * Egress: a session's machine reaches the world through the runtime's own
 * outbound sockets, under the server's policy (issue 13). Runtime-neutral;
 * the runtime adapters (dial_deno.ts, dial_bun.ts, dial_workerd.ts,
 * node_net.ts) are imported by the server entry points, not from here.
 *
 * @module
 */
export * from "./egress_policy.ts";
export * from "./egress_limits.ts";
export * from "./dialer.ts";
export * from "./egress_core.ts";
export * from "./udp_flows.ts";
export * from "./tcp_flows.ts";
export * from "./egress_gateway.ts";
export * from "./egress_service.ts";
export * from "./egress_config.ts";
export * from "./dns/dns_message.ts";
export * from "./dns/dns_upstream.ts";
export * from "./dns/dns_cache.ts";
export * from "./dns/dns_relay.ts";
export * from "./dns/system_upstream.ts";
export * from "./dns/doh_upstream.ts";
export * from "./dns/udp_upstream.ts";
