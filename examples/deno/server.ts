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
