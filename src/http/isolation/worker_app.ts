/**
 * What a session worker serves: the normal HTTP app (`createApp`) over a
 * registry that holds the worker's one session, with WebSockets relayed to
 * the front door. Used by the worker entry module (`session_worker_main.ts`)
 * and by tests that run a worker side in-process.
 *
 * @module
 */

import { createApp } from "../app.ts";
import { HttpMetrics, type MetricsCollector, renderMetrics } from "../metrics.ts";
import { SessionRegistry, SystemClock } from "../../session/mod.ts";
import {
  createEgressService,
  type EgressRuntime,
  readEgressConfig,
  serverAddresses,
} from "../../apps/egress/mod.ts";
import { egressMetricsCollector } from "../egress_metrics.ts";
import type { PortUpgrader, WorkerApp, WorkerInit } from "../../session/isolated/mod.ts";
import type { TunnelSocket } from "../../session/tunnel_server.ts";

/** The runtime's egress adapters, for a worker whose session has egress. */
export type WorkerEgressRuntime = () =>
  & Pick<EgressRuntime, "dialer" | "systemDns">
  & { hostAddresses?: () => string[] };

/**
 * Builds the app of one session worker from the front door's init message.
 * With `init.egress`, the worker's session gets egress through `runtime`'s
 * adapters (a TypeError when it has none or the variables are wrong).
 *
 * @example
 * ```ts
 * serveSessionWorker(globalThis as unknown as WorkerScope, (init, up) => buildWorkerApp(init, up));
 * ```
 */
export function buildWorkerApp(
  init: WorkerInit,
  upgrade: PortUpgrader,
  runtime?: WorkerEgressRuntime,
): WorkerApp {
  let egress: ReturnType<typeof createEgressService> | undefined;
  if (init.egress) {
    const config = readEgressConfig(init.egress.env);
    if (typeof config === "string") throw new TypeError(config);
    if (config && !runtime) throw new TypeError("this worker has no egress adapters");
    const rt = config ? runtime!() : undefined;
    const hostname = init.egress.hostname;
    egress = config && createEgressService(config, {
      dialer: rt!.dialer,
      systemDns: rt!.systemDns,
      serverAddresses: () => serverAddresses(hostname, rt!.hostAddresses ?? (() => [])),
    });
  }
  const collectors: MetricsCollector[] = egress ? [egressMetricsCollector(egress)] : [];
  const registry = new SessionRegistry({
    egress,
    clock: new SystemClock(),
    limits: {
      maxSessions: 1,
      ...(init.idleTimeoutMs !== undefined ? { idleTimeoutMs: init.idleTimeoutMs } : {}),
    },
  });
  const httpMetrics = new HttpMetrics();
  const app = createApp({
    registry,
    httpMetrics,
    metricsCollectors: collectors,
    requestLog: init.requestLog ? undefined : false,
    upgradeWebSocket: init.websocket
      ? (req) => {
        const { socket, response } = upgrade(req);
        return { socket: socket as unknown as TunnelSocket, response };
      }
      : undefined,
  });
  return {
    fetch: (req) => app.fetch(req),
    sessions: () => registry.size,
    sweep: () => registry.sweep(),
    metrics: () => renderMetrics({ registry, http: httpMetrics, collectors }),
  };
}
