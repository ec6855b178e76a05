/**
 * UDP (RFC 768): the layer with its bound endpoints.
 *
 * @module
 */
export * from "./udp_layer.ts";
