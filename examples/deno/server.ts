/**
 * Runs the netisle server on Deno, in memory.
 *
 *   deno task start            # 127.0.0.1:8787
 *   PORT=9000 HOSTNAME=0.0.0.0 NETISLE_ADMIN_TOKEN=secret deno task start
 *   NETISLE_METRICS_TOKEN=scrape NETISLE_LOG=0 deno task start   # /metrics needs a token; no request log
 *
 * @module
 */

import { serveDeno } from "../../src/http/serve_deno.ts";
import { SessionRegistry, SystemClock } from "../../src/session/mod.ts";

const port = Number(Deno.env.get("PORT") ?? "8787");
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`netisle: PORT must be an integer in 0..65535, got "${Deno.env.get("PORT")}"`);
  Deno.exit(2);
}
const hostname = Deno.env.get("HOSTNAME") ?? "127.0.0.1";
const adminToken = Deno.env.get("NETISLE_ADMIN_TOKEN") || undefined;
const metricsToken = Deno.env.get("NETISLE_METRICS_TOKEN") || undefined;
const requestLog = Deno.env.get("NETISLE_LOG") === "0" ? false : undefined; // undefined: console.log

// NETISLE_ISOLATION=worker: each session in its own Web Worker (README "Sessions in their own
// isolates"). NETISLE_TEST_HOOKS=1 is for tests only: it lets a session's token holder make that
// session's worker spin or crash.
const isolation = Deno.env.get("NETISLE_ISOLATION") ?? "";
if (isolation !== "" && isolation !== "off" && isolation !== "worker") {
  console.error(`netisle: NETISLE_ISOLATION must be "worker" or "off", got "${isolation}"`);
  Deno.exit(2);
}
if (isolation === "worker") {
  const { serveIsolatedDeno } = await import("../../src/http/isolation/serve_isolated_deno.ts");
  const timeout = Number(Deno.env.get("NETISLE_WORKER_TIMEOUT_MS") ?? "10000");
  const max = Number(Deno.env.get("NETISLE_MAX_SESSIONS") ?? "100");
  if (!Number.isInteger(timeout) || timeout < 100 || !Number.isInteger(max) || max < 1) {
    console.error(
      `netisle: NETISLE_WORKER_TIMEOUT_MS (>= 100) and NETISLE_MAX_SESSIONS (>= 1) must be ` +
        `integers, got "${Deno.env.get("NETISLE_WORKER_TIMEOUT_MS")}" and ` +
        `"${Deno.env.get("NETISLE_MAX_SESSIONS")}"`,
    );
    Deno.exit(2);
  }
  const testHooks = Deno.env.get("NETISLE_TEST_HOOKS") === "1";
  const { server, isolated } = serveIsolatedDeno({
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
        `netisle listening on ${url} (in memory, one worker per session${
          adminToken ? ", admin token required" : ""
        }${testHooks ? ", TEST HOOKS ON" : ""})`,
      );
    },
  });
  const stopIsolated = () => {
    isolated.close();
    void server.shutdown();
  };
  Deno.addSignalListener("SIGINT", stopIsolated);
  Deno.addSignalListener("SIGTERM", stopIsolated);
  await server.finished;
  Deno.exit(0);
}

const registry = new SessionRegistry({ clock: new SystemClock() });
registry.startSweeping();

const server = serveDeno({
  registry,
  hostname,
  port,
  adminToken,
  metricsToken,
  requestLog,
  onListen: (url) => {
    console.log(
      `netisle listening on ${url} (in memory${adminToken ? ", admin token required" : ""})`,
    );
  },
});

const stop = () => {
  registry.close();
  void server.shutdown();
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
await server.finished;
