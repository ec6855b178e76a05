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
 * - `NETISLE_EGRESS=on|off` (default off), `NETISLE_EGRESS_ALLOW`,
 *   `NETISLE_EGRESS_DENY`, `NETISLE_DNS_UPSTREAM`: egress
 *   (src/apps/egress/egress_config.ts).
 * - `NETISLE_CORS_ORIGINS`: a comma list of origins whose pages may call the
 *   API (CORS; `*` for any, warned about), WebSocket upgrades from other
 *   origins refused.
 * - the limits of the README's security section: `NETISLE_MAX_CONNECTIONS`
 *   (default: 3/4 of the fd limit, at most 10,000), `NETISLE_MAX_CONNECTIONS_PER_IP`
 *   (default 256, 0 = none), `NETISLE_HEADERS_TIMEOUT_MS` (default 10000),
 *   `NETISLE_SESSIONS_PER_MINUTE` (per client address, default 30, 0 = no
 *   limit), `NETISLE_TRUST_PROXY` (proxies in front whose `X-Forwarded-For`
 *   entries are trusted, default 0), `NETISLE_BODY_BUDGET_MIB` (request
 *   bodies in flight, default 64, one address a quarter; 0 = none), `NETISLE_ENGINE` (Deno: `netisle`, the
 *   default, or `deno-serve`: faster requests without the limits).
 *
 * Tokens must be RFC 6750 `b64token`s (what a `Bearer` header can carry),
 * or no client could ever present them.
 * - `NETISLE_SHARE_DOMAIN`: `[http(s)://]domain[:port]`; share links become
 *   host-based (`<key>.<domain>`) instead of `/share/<key>/` on the API's origin.
 *
 * @module
 */

import { type EgressConfig, readEgressConfig } from "../src/apps/egress/egress_config.ts";
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
  /** Connection and request limits, passed to the adapters as they are. */
  limits: ServerLimits;
  /** Set when sessions run in their own Worker isolates. */
  isolation: {
    maxSessions: number;
    heartbeatTimeoutMs: number;
    heartbeatIntervalMs: number;
    testHooks: boolean;
  } | undefined;
  /** Set when `NETISLE_EGRESS=on`: the egress rules and DNS upstream. */
  egress: EgressConfig | undefined;
  /** `NETISLE_CORS_ORIGINS`, parsed; absent when the variable is unset or empty. */
  corsOrigins?: string[];
  /** `NETISLE_SHARE_DOMAIN`: host-based share links. */
  shares?: { domain: string };
}

/** The limits of the README's security section (adapter options of the same names). */
export interface ServerLimits {
  /** Undefined: the adapter's default (3/4 of the fd limit, at most 10,000). */
  maxConnections: number | undefined;
  maxConnectionsPerAddress: number;
  headersTimeoutMs: number;
  sessionsPerMinute: number;
  trustProxy: number;
  /** Request bodies in flight at most, in bytes (one address: a quarter); 0 = no budget. */
  bodyBudgetBytes: number;
  /** Deno only: `"deno-serve"` trades the limits for `Deno.serve`'s request rate. */
  engine: "netisle" | "deno-serve";
}

/** RFC 6750 §2.1 `b64token`: what `Authorization: Bearer` can carry. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

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
  for (const name of ["NETISLE_ADMIN_TOKEN", "NETISLE_METRICS_TOKEN"]) {
    const token = env[name];
    if (token && !B64TOKEN.test(token)) {
      return `${name} must be an RFC 6750 token (letters, digits, "-._~+/", then optional "=" ` +
        `padding; no spaces) or no client can ever send it, got ${JSON.stringify(token)}`;
    }
  }
  const limits = readLimits(env);
  if (typeof limits === "string") return limits;
  const config: ServerConfig = {
    port,
    hostname: env.HOSTNAME || "127.0.0.1",
    adminToken: env.NETISLE_ADMIN_TOKEN || undefined,
    metricsToken: env.NETISLE_METRICS_TOKEN || undefined,
    requestLog: env.NETISLE_LOG === "0" ? false : undefined,
    limits,
    isolation: undefined,
    egress: undefined,
  };
  const egress = readEgressConfig(env);
  if (typeof egress === "string") return egress;
  config.egress = egress;
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

function readLimits(env: Record<string, string | undefined>): ServerLimits | string {
  const int = (name: string, fallback: number, min: number): number | string => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    return Number.isInteger(n) && n >= min
      ? n
      : `${name} must be an integer >= ${min}, got "${raw}"`;
  };
  const maxConnections = env.NETISLE_MAX_CONNECTIONS
    ? int("NETISLE_MAX_CONNECTIONS", 0, 1)
    : undefined;
  const perIp = int("NETISLE_MAX_CONNECTIONS_PER_IP", 256, 0);
  const headers = int("NETISLE_HEADERS_TIMEOUT_MS", 10_000, 100);
  const sessions = int("NETISLE_SESSIONS_PER_MINUTE", 30, 0);
  const trust = int("NETISLE_TRUST_PROXY", 0, 0);
  const bodies = int("NETISLE_BODY_BUDGET_MIB", 64, 0);
  for (const v of [maxConnections, perIp, headers, sessions, trust, bodies]) {
    if (typeof v === "string") return v;
  }
  const engine = env.NETISLE_ENGINE || "netisle";
  if (engine !== "netisle" && engine !== "deno-serve") {
    return `NETISLE_ENGINE must be "netisle" or "deno-serve", got "${engine}"`;
  }
  return {
    maxConnections: maxConnections as number | undefined,
    maxConnectionsPerAddress: perIp as number,
    headersTimeoutMs: headers as number,
    sessionsPerMinute: sessions as number,
    trustProxy: trust as number,
    bodyBudgetBytes: (bodies as number) * 1024 * 1024,
    engine,
  };
}

/** Whether `hostname` is a loopback address (127/8, ::1, localhost). */
export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * Warnings a server prints at startup: listening beyond loopback with no
 * admin token (anyone who reaches it can create sessions).
 *
 * @example
 * ```ts
 * for (const w of startupWarnings(config)) console.warn(w);
 * ```
 */
export function startupWarnings(config: ServerConfig): string[] {
  const warnings: string[] = [];
  if (!config.adminToken && !isLoopback(config.hostname)) {
    warnings.push(
      `netisle: WARNING: listening on ${config.hostname} (beyond loopback) without ` +
        `NETISLE_ADMIN_TOKEN: anyone who reaches this server can create sessions ` +
        `(at most ${config.limits.sessionsPerMinute || "unlimited"} per minute per address). ` +
        `Set NETISLE_ADMIN_TOKEN, or HOSTNAME=127.0.0.1.`,
    );
  }
  return warnings;
}

/** The line a server prints once it listens. */
export function listeningLine(url: string, runtime: string, config: ServerConfig): string {
  const notes = [runtime, "in memory"];
  if (config.isolation) notes.push("one worker per session");
  if (config.adminToken) notes.push("admin token required");
  if (config.egress) notes.push("egress on");
  if (config.isolation?.testHooks) notes.push("TEST HOOKS ON");
  if (config.corsOrigins) notes.push(`CORS for ${config.corsOrigins.join(" ")}`);
  if (config.shares) notes.push(`share links on ${config.shares.domain}`);
  const line = `netisle listening on ${url} (${notes.join(", ")})`;
  if (!config.corsOrigins?.includes("*")) return line;
  return `${line}\nnetisle: WARNING: NETISLE_CORS_ORIGINS=* lets a page on any web site call ` +
    "this API and open its WebSockets; only session and admin tokens protect it. List the origins.";
}
