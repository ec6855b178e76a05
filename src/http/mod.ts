/**
 * The HTTP API (Hono), its schemas and its error mapping. Runtime adapters
 * (`serve_deno.ts`) are imported directly by entry points, not from here.
 *
 * @module
 */
export * from "./app.ts";
export * from "./auth.ts";
export * from "./problem.ts";
export * from "./schemas.ts";
