/**
 * The environment of the example servers (examples/deno/server.ts,
 * examples/bun/server.ts, examples/deno/deploy.ts), read in one place so
 * every runtime accepts the same variables with the same checks:
 *
 * - `PORT` (default 8787), `HOSTNAME` (default 127.0.0.1);
 * - `NETISLE_ADMIN_TOKEN`, `NETISLE_METRICS_TOKEN` (empty = none);
 * - `NETISLE_LOG=0` turns the request log off;
 * - `NETISLE_ISOLATION=worker|off` (default off): one Worker isolate per
 *   session, with `NETISLE_WORKER_TIMEOUT_MS` (>= 100, default 10000),
 *   `NETISLE_MAX_SESSIONS` (>= 1, default 100) and `NETISLE_TEST_HOOKS=1`
 *   (tests only);
 * - `NETISLE_CORS_ORIGINS`: a comma list of origins whose pages may call the
 *   API (CORS; `*` for any, warned about), WebSocket upgrades from other
 *   origins refused.
 * - `NETISLE_SHARE_DOMAIN`: `[http(s)://]domain[:port]`; share links become
 *   host-based (`<key>.<domain>`) instead of `/share/<key>/` on the API's origin.
 *
 * @module
 */

import { parseCorsOrigins } from "../src/http/cors.ts";
import { parseShareDomain } from "../src/http/share/share_routes.ts";

/** What the servers need from the environment. */
export interface ServerConfig {
  port: number;
  hostname: string;
  adminToken: string | undefined;
  metricsToken: string | undefined;
  /** `false` turns the request log off; undefined keeps the default (console.log). */
  requestLog: false | undefined;
  /** Set when sessions run in their own Worker isolates. */
  isolation: {
    maxSessions: number;
    heartbeatTimeoutMs: number;
    heartbeatIntervalMs: number;
    testHooks: boolean;
  } | undefined;
  /** `NETISLE_CORS_ORIGINS`, parsed; absent when the variable is unset or empty. */
  corsOrigins?: string[];
  /** `NETISLE_SHARE_DOMAIN`: host-based share links. */
  shares?: { domain: string };
}

/**
 * Reads the servers' variables from `env` (e.g. `process.env`). Returns the
 * configuration, or an error message naming the variable and quoting its
 * value.
 *
 * @example
 * ```ts
 * const config = readServerConfig({ PORT: "9000" });
 * if (typeof config === "string") throw new Error(config);
 * config.port; // 9000
 * ```
 */
export function readServerConfig(env: Record<string, string | undefined>): ServerConfig | string {
  const port = Number(env.PORT ?? "8787");
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    return `PORT must be an integer in 0..65535, got "${env.PORT}"`;
  }
  const isolation = env.NETISLE_ISOLATION ?? "off";
  if (isolation !== "off" && isolation !== "worker" && isolation !== "") {
    return `NETISLE_ISOLATION must be "worker" or "off", got "${isolation}"`;
  }
  const config: ServerConfig = {
    port,
    hostname: env.HOSTNAME || "127.0.0.1",
    adminToken: env.NETISLE_ADMIN_TOKEN || undefined,
    metricsToken: env.NETISLE_METRICS_TOKEN || undefined,
    requestLog: env.NETISLE_LOG === "0" ? false : undefined,
    isolation: undefined,
  };
  if (env.NETISLE_CORS_ORIGINS) {
    const origins = parseCorsOrigins(env.NETISLE_CORS_ORIGINS);
    if (typeof origins === "string") return `NETISLE_CORS_ORIGINS: ${origins}`;
    config.corsOrigins = origins;
  }
  if (env.NETISLE_SHARE_DOMAIN) {
    const d = parseShareDomain(env.NETISLE_SHARE_DOMAIN);
    if (typeof d === "string") return `NETISLE_SHARE_DOMAIN: ${d}`;
    config.shares = { domain: env.NETISLE_SHARE_DOMAIN };
  }
  if (isolation === "worker") {
    const timeout = Number(env.NETISLE_WORKER_TIMEOUT_MS ?? "10000");
    const max = Number(env.NETISLE_MAX_SESSIONS ?? "100");
    if (!Number.isInteger(timeout) || timeout < 100) {
      return `NETISLE_WORKER_TIMEOUT_MS must be an integer >= 100, got "${env.NETISLE_WORKER_TIMEOUT_MS}"`;
    }
    if (!Number.isInteger(max) || max < 1) {
      return `NETISLE_MAX_SESSIONS must be an integer >= 1, got "${env.NETISLE_MAX_SESSIONS}"`;
    }
    config.isolation = {
      maxSessions: max,
      heartbeatTimeoutMs: timeout,
      heartbeatIntervalMs: Math.min(1000, Math.floor(timeout / 4)),
      testHooks: env.NETISLE_TEST_HOOKS === "1",
    };
  }
  return config;
}

/** The line a server prints once it listens. */
export function listeningLine(url: string, runtime: string, config: ServerConfig): string {
  const notes = [runtime, "in memory"];
  if (config.isolation) notes.push("one worker per session");
  if (config.adminToken) notes.push("admin token required");
  if (config.isolation?.testHooks) notes.push("TEST HOOKS ON");
  if (config.corsOrigins) notes.push(`CORS for ${config.corsOrigins.join(" ")}`);
  if (config.shares) notes.push(`share links on ${config.shares.domain}`);
  const line = `netisle listening on ${url} (${notes.join(", ")})`;
  if (!config.corsOrigins?.includes("*")) return line;
  return `${line}\nnetisle: WARNING: NETISLE_CORS_ORIGINS=* lets a page on any web site call ` +
    "this API and open its WebSockets; only session and admin tokens protect it. List the origins.";
}
