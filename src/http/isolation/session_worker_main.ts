/**
 * The entry module of a session worker (`new Worker(url, { type: "module" })`):
 * {@linkcode buildWorkerApp} served to the front door over `postMessage`.
 *
 * @module
 */

import { serveSessionWorker, type WorkerScope } from "../../session/isolated/mod.ts";
import { buildWorkerApp } from "./worker_app.ts";

serveSessionWorker(globalThis as unknown as WorkerScope, buildWorkerApp);
