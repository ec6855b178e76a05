/**
 * UDP (RFC 768): the layer, its bound endpoints and the port-to-service hook
 * the stack's own servers (DHCP, DNS) use.
 *
 * @module
 */
export * from "./udp_layer.ts";
export * from "./udp_endpoint.ts";
export * from "./udp_service.ts";
