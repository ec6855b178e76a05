/**
 * The HTTP API (Hono with `@hono/zod-openapi`), its schemas and its error
 * mapping. Runtime adapters (`serve_deno.ts`) are imported directly by entry
 * points, not from here.
 *
 * @module
 */
export * from "./app.ts";
export * from "./app_env.ts";
export * from "./api_route.ts";
export * from "./auth.ts";
export * from "./problem.ts";
export * from "./schemas.ts";
export * from "./metrics.ts";
export * from "./egress_metrics.ts";
export * from "./pcap_stream.ts";
export * from "./request_body.ts";
export * from "./request_log.ts";
export * from "./route_auth.ts";
export * from "./openapi.ts";
export * from "./session_routes.ts";
export * from "./session_view.ts";
export * from "./socket_routes.ts";
export * from "./socket_schemas.ts";
export * from "./socket_stream.ts";
export * from "./socket_view.ts";
export * from "./validation.ts";
