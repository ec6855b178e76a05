/**
 * The entry module of a session worker (`new Worker(url, { type: "module" })`):
 * {@linkcode buildWorkerApp} served to the front door over `postMessage`,
 * with the egress adapters of the runtime the worker runs on (Bun's when
 * there is a `Bun` global, else Deno's).
 *
 * @module
 */

import { serveSessionWorker, type WorkerScope } from "../../session/isolated/mod.ts";
import { buildWorkerApp, type WorkerEgressRuntime } from "./worker_app.ts";
import { bunDialer } from "../../apps/egress/dial_bun.ts";
import { denoDialer, denoSystemDns } from "../../apps/egress/dial_deno.ts";
import { hostAddresses, nodeSystemDns } from "../../apps/egress/node_net.ts";

const egressRuntime: WorkerEgressRuntime = () =>
  "Bun" in globalThis
    ? { dialer: bunDialer(), systemDns: nodeSystemDns(), hostAddresses }
    : { dialer: denoDialer(), systemDns: denoSystemDns(), hostAddresses };

serveSessionWorker(
  globalThis as unknown as WorkerScope,
  (init, upgrade) => buildWorkerApp(init, upgrade, egressRuntime),
);
