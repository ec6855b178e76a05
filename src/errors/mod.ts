/**
 * Error types shared by every layer: the bottom of the import graph, below
 * the wire codecs and the core (DESIGN.md, layers).
 *
 * @module
 */
export * from "./net_error.ts";
