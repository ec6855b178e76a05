/**
 * What a session worker serves: the normal HTTP app (`createApp`) over a
 * registry that holds the worker's one session, with WebSockets relayed to
 * the front door. Used by the worker entry module (`session_worker_main.ts`)
 * and by tests that run a worker side in-process.
 *
 * @module
 */

import { createApp } from "../app.ts";
import { HttpMetrics, renderMetrics } from "../metrics.ts";
import { SessionRegistry, SystemClock } from "../../session/mod.ts";
import type { PortUpgrader, WorkerApp, WorkerInit } from "../../session/isolated/mod.ts";
import type { TunnelSocket } from "../../session/tunnel_server.ts";

/**
 * Builds the app of one session worker from the front door's init message.
 *
 * @example
 * ```ts
 * serveSessionWorker(globalThis as unknown as WorkerScope, buildWorkerApp);
 * ```
 */
export function buildWorkerApp(init: WorkerInit, upgrade: PortUpgrader): WorkerApp {
  const registry = new SessionRegistry({
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
    metrics: () => renderMetrics({ registry, http: httpMetrics }),
  };
}
