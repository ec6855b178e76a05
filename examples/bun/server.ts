/**
 * Runs the netisle server on Bun, in memory: the same API, tunnel and socket
 * streams as examples/deno/server.ts, served by `Bun.serve` and Bun's own
 * WebSocket server (src/http/serve_bun.ts).
 *
 *   bun run examples/bun/server.ts                 # 127.0.0.1:8787 (npm run start:bun)
 *   PORT=9000 HOSTNAME=0.0.0.0 NETISLE_ADMIN_TOKEN=secret bun run examples/bun/server.ts
 *   NETISLE_METRICS_TOKEN=scrape NETISLE_LOG=0 bun run examples/bun/server.ts
 *   NETISLE_EGRESS=on bun run examples/bun/server.ts   # egress (README "Egress")
 *
 * @module
 */

import process from "node:process";
import { serveBun } from "../../src/http/serve_bun.ts";
import { SessionRegistry, SystemClock } from "../../src/session/mod.ts";
import { createEgressService, serverAddresses } from "../../src/apps/egress/egress_config.ts";
import { bunDialer } from "../../src/apps/egress/dial_bun.ts";
import { hostAddresses, nodeSystemDns } from "../../src/apps/egress/node_net.ts";
import { egressMetricsCollector } from "../../src/http/egress_metrics.ts";
import { listeningLine, readServerConfig, startupWarnings } from "../server_config.ts";

const config = readServerConfig(process.env);
if (typeof config === "string") {
  console.error(`netisle: ${config}`);
  process.exit(2);
}
for (const warning of startupWarnings(config)) console.warn(warning);

const egress = config.egress && createEgressService(config.egress, {
  dialer: bunDialer(),
  systemDns: nodeSystemDns(),
  // Asked again every few seconds: interfaces may come and go while the server runs.
  serverAddresses: () => serverAddresses(config.hostname, hostAddresses),
});
for (const line of egress?.describe() ?? []) console.log(line);

if (config.isolation) {
  // Each session in its own Web Worker (README "Sessions in their own isolates"). Serves
  // until a signal; the in-process server below is then never started.
  const { serveIsolatedBun } = await import("../../src/http/isolation/serve_isolated_bun.ts");
  const { server, isolated } = serveIsolatedBun({
    ...config,
    ...config.limits,
    ...config.isolation,
    // Each session's worker builds its own egress from the same variables.
    egress: config.egress && { env: config.egress.env, hostname: config.hostname },
    onListen: (url) => console.log(listeningLine(url, "Bun", config)),
  });
  const stopIsolated = () => {
    isolated.close();
    void server.stop(true).then(() => process.exit(0));
  };
  process.on("SIGINT", stopIsolated);
  process.on("SIGTERM", stopIsolated);
  await new Promise<never>(() => {});
}

const registry = new SessionRegistry({ clock: new SystemClock(), egress });
registry.startSweeping();

const server = serveBun({
  ...config,
  ...config.limits,
  registry,
  metricsCollectors: egress ? [egressMetricsCollector(egress)] : undefined,
  onListen: (url) => console.log(listeningLine(url, "Bun", config)),
});

const stop = () => {
  registry.close();
  void server.stop(true).then(() => process.exit(0));
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
