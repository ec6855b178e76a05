/**
 * Runs the netisle server on Deno, in memory.
 *
 *   deno task start            # 127.0.0.1:8787
 *   PORT=9000 HOSTNAME=0.0.0.0 NETISLE_ADMIN_TOKEN=secret deno task start
 *   NETISLE_METRICS_TOKEN=scrape NETISLE_LOG=0 deno task start   # /metrics needs a token; no request log
 *   NETISLE_EGRESS=on deno task start   # sessions' machines reach the world (README "Egress")
 *
 * The limits (connections, header timeout, session creation rate) come from
 * the environment too: README "Security and limits", examples/server_config.ts.
 *
 * @module
 */

import { serveDeno } from "../../src/http/serve_deno.ts";
import { SessionRegistry, SystemClock } from "../../src/session/mod.ts";
import { createEgressService, serverAddresses } from "../../src/apps/egress/egress_config.ts";
import { denoDialer, denoSystemDns } from "../../src/apps/egress/dial_deno.ts";
import { hostAddresses } from "../../src/apps/egress/node_net.ts";
import { egressMetricsCollector } from "../../src/http/egress_metrics.ts";
import { listeningLine, readServerConfig, startupWarnings } from "../server_config.ts";

const config = readServerConfig(Deno.env.toObject());
if (typeof config === "string") {
  console.error(`netisle: ${config}`);
  Deno.exit(2);
}
for (const warning of startupWarnings(config)) console.warn(warning);

const egress = config.egress && createEgressService(config.egress, {
  dialer: denoDialer(),
  systemDns: denoSystemDns(),
  // Asked again every few seconds: interfaces may come and go while the server runs.
  serverAddresses: () => serverAddresses(config.hostname, hostAddresses),
});
for (const line of egress?.describe() ?? []) console.log(line);

if (config.isolation) {
  // Each session in its own Web Worker (README "Sessions in their own isolates").
  const { serveIsolatedDeno } = await import("../../src/http/isolation/serve_isolated_deno.ts");
  const { server, isolated } = serveIsolatedDeno({
    ...config,
    ...config.limits,
    ...config.isolation,
    // Each session's worker builds its own egress from the same variables.
    egress: config.egress && { env: config.egress.env, hostname: config.hostname },
    onListen: (url) => console.log(listeningLine(url, "Deno", config)),
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

const registry = new SessionRegistry({ clock: new SystemClock(), egress });
registry.startSweeping();

const server = serveDeno({
  ...config,
  ...config.limits,
  registry,
  metricsCollectors: egress ? [egressMetricsCollector(egress)] : undefined,
  onListen: (url) => console.log(listeningLine(url, "Deno", config)),
});

const stop = () => {
  registry.close();
  void server.shutdown();
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
await server.finished;
