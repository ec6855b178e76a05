/**
 * Runs the netisle server on Bun, in memory: the same API, tunnel and socket
 * streams as examples/deno/server.ts, served by `Bun.serve` and Bun's own
 * WebSocket server (src/http/serve_bun.ts).
 *
 *   bun run examples/bun/server.ts                 # 127.0.0.1:8787 (npm run start:bun)
 *   PORT=9000 HOSTNAME=0.0.0.0 NETISLE_ADMIN_TOKEN=secret bun run examples/bun/server.ts
 *   NETISLE_METRICS_TOKEN=scrape NETISLE_LOG=0 bun run examples/bun/server.ts
 *
 * @module
 */

import process from "node:process";
import { serveBun } from "../../src/http/serve_bun.ts";
import { SessionRegistry, SystemClock } from "../../src/session/mod.ts";

const port = Number(process.env.PORT ?? "8787");
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`netisle: PORT must be an integer in 0..65535, got "${process.env.PORT}"`);
  process.exit(2);
}
const hostname = process.env.HOSTNAME ?? "127.0.0.1";
const adminToken = process.env.NETISLE_ADMIN_TOKEN || undefined;
const metricsToken = process.env.NETISLE_METRICS_TOKEN || undefined;
const requestLog = process.env.NETISLE_LOG === "0" ? false : undefined; // undefined: console.log

// NETISLE_ISOLATION=worker: each session in its own Web Worker (README "Sessions in their own
// isolates"); NETISLE_TEST_HOOKS=1 is for tests only. Serves until a signal; the in-process
// server below is then never started.
if ((process.env.NETISLE_ISOLATION ?? "off") !== "off") {
  const { serveIsolatedBun } = await import("../../src/http/isolation/serve_isolated_bun.ts");
  const timeout = Number(process.env.NETISLE_WORKER_TIMEOUT_MS ?? "10000");
  const max = Number(process.env.NETISLE_MAX_SESSIONS ?? "100");
  if (
    process.env.NETISLE_ISOLATION !== "worker" || !Number.isInteger(timeout) || timeout < 100 ||
    !Number.isInteger(max) || max < 1
  ) {
    console.error(
      `netisle: NETISLE_ISOLATION must be "worker" or "off", NETISLE_WORKER_TIMEOUT_MS (>= 100) ` +
        `and NETISLE_MAX_SESSIONS (>= 1) integers; got "${process.env.NETISLE_ISOLATION}", ` +
        `"${process.env.NETISLE_WORKER_TIMEOUT_MS}", "${process.env.NETISLE_MAX_SESSIONS}"`,
    );
    process.exit(2);
  }
  const testHooks = process.env.NETISLE_TEST_HOOKS === "1";
  const { server, isolated } = serveIsolatedBun({
    hostname,
    port,
    adminToken,
    metricsToken,
    requestLog,
    testHooks,
    maxSessions: max,
    heartbeatTimeoutMs: timeout,
    heartbeatIntervalMs: Math.min(1000, Math.floor(timeout / 4)),
    onListen: (url) => {
      console.log(
        `netisle listening on ${url} (Bun, in memory, one worker per session${
          adminToken ? ", admin token required" : ""
        }${testHooks ? ", TEST HOOKS ON" : ""})`,
      );
    },
  });
  const stopIsolated = () => {
    isolated.close();
    void server.stop(true).then(() => process.exit(0));
  };
  process.on("SIGINT", stopIsolated);
  process.on("SIGTERM", stopIsolated);
  await new Promise<never>(() => {});
}

const registry = new SessionRegistry({ clock: new SystemClock() });
registry.startSweeping();

const server = serveBun({
  registry,
  hostname,
  port,
  adminToken,
  metricsToken,
  requestLog,
  onListen: (url) => {
    console.log(
      `netisle listening on ${url} (Bun, in memory${adminToken ? ", admin token required" : ""})`,
    );
  },
});

const stop = () => {
  registry.close();
  void server.stop(true).then(() => process.exit(0));
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
