/**
 * The netisle server as a Deno Deploy entry point: `Deno.serve` with no
 * address (the platform assigns it), sessions in memory.
 *
 *   deployctl deploy --entrypoint=examples/deno/deploy.ts   # or pick it in the dashboard
 *   deno run -A examples/deno/deploy.ts                      # locally: 0.0.0.0:8000
 *
 * The project's npm dependencies (hono, zod) must be installed at build time
 * (package.json).
 *
 * Environment (set in the project's settings): `NETISLE_ADMIN_TOKEN` (strongly
 * advised: without it anyone who finds the URL can create sessions),
 * `NETISLE_METRICS_TOKEN`, `NETISLE_LOG=0`, and egress (`NETISLE_EGRESS=on`,
 * `NETISLE_EGRESS_ALLOW`, `NETISLE_EGRESS_DENY`, `NETISLE_DNS_UPSTREAM`;
 * README "Egress"): TCP through `Deno.connect`, no outbound UDP (Deploy has
 * no UDP sockets), DNS through the platform's resolver unless an upstream is
 * named.
 *
 * What Deno Deploy does not have, and what that means:
 *
 * - No FFI and no TAP devices: the deployment only serves the API and the
 *   tunnel's server end. The tunnel CLI (`deno task tunnel -- --server
 *   https://<project>.deno.dev ...`) runs on a Linux machine with the TAP
 *   device and connects over `wss://`.
 * - Sessions live in the memory of one isolate. Deploy may run several
 *   isolates (regions, scale-out) and stops idle ones: a request that lands
 *   on another isolate than the one that created the session gets 404, and
 *   every session (stack, sockets, connections) is gone when its isolate
 *   stops or the project is redeployed. An open tunnel WebSocket keeps its
 *   isolate busy, so attach the tunnel right after creating the session and
 *   keep it attached; run the HTTP socket calls while it is. For sessions
 *   that must be found from anywhere, use the Cloudflare Durable Objects
 *   server (one object per session) instead.
 *
 * @module
 */

import { serveDeno } from "../../src/http/serve_deno.ts";
import { SessionRegistry, SystemClock } from "../../src/session/mod.ts";
import { createEgressService, readEgressConfig } from "../../src/apps/egress/egress_config.ts";
import { denoDialer, denoSystemDns } from "../../src/apps/egress/dial_deno.ts";
import { egressMetricsCollector } from "../../src/http/egress_metrics.ts";

const adminToken = Deno.env.get("NETISLE_ADMIN_TOKEN") || undefined;
const metricsToken = Deno.env.get("NETISLE_METRICS_TOKEN") || undefined;
const requestLog = Deno.env.get("NETISLE_LOG") === "0" ? false : undefined; // undefined: console.log

if (!adminToken) {
  console.warn("netisle: NETISLE_ADMIN_TOKEN is not set: anyone can create sessions");
}

const egressConfig = readEgressConfig(Deno.env.toObject());
if (typeof egressConfig === "string") throw new TypeError(`netisle: ${egressConfig}`);
const egress = egressConfig && createEgressService(egressConfig, {
  dialer: { ...denoDialer(), openUdp: undefined }, // no UDP sockets on Deploy
  systemDns: denoSystemDns(),
  serverAddresses: [],
});
for (const line of egress?.describe() ?? []) console.log(line);

const registry = new SessionRegistry({ clock: new SystemClock(), egress });
registry.startSweeping();

serveDeno({
  registry,
  metricsCollectors: egress ? [egressMetricsCollector(egress)] : undefined,
  adminToken,
  metricsToken,
  requestLog,
  onListen: (url) => console.log(`netisle listening on ${url} (Deno Deploy entry, in memory)`),
});
