/**
 * Runs the netisle server on Deno, in memory.
 *
 *   deno task start            # 127.0.0.1:8787
 *   PORT=9000 HOSTNAME=0.0.0.0 NETISLE_ADMIN_TOKEN=secret deno task start
 *   NETISLE_METRICS_TOKEN=scrape NETISLE_LOG=0 deno task start   # /metrics needs a token; no request log
 *
 * The limits (connections, header timeout, session creation rate) come from
 * the environment too: README "Security and limits", examples/server_config.ts.
 *
 * @module
 */

import { serveDeno } from "../../src/http/serve_deno.ts";
import { SessionRegistry, SystemClock } from "../../src/session/mod.ts";
import { listeningLine, readServerConfig, startupWarnings } from "../server_config.ts";

const config = readServerConfig(Deno.env.toObject());
if (typeof config === "string") {
  console.error(`netisle: ${config}`);
  Deno.exit(2);
}
for (const warning of startupWarnings(config)) console.warn(warning);

if (config.isolation) {
  // Each session in its own Web Worker (README "Sessions in their own isolates").
  const { serveIsolatedDeno } = await import("../../src/http/isolation/serve_isolated_deno.ts");
  const { server, isolated } = serveIsolatedDeno({
    ...config,
    ...config.limits,
    ...config.isolation,
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

const registry = new SessionRegistry({ clock: new SystemClock() });
registry.startSweeping();

const server = serveDeno({
  ...config,
  ...config.limits,
  registry,
  onListen: (url) => console.log(listeningLine(url, "Deno", config)),
});

const stop = () => {
  registry.close();
  void server.shutdown();
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
await server.finished;
