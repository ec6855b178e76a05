/**
 * `deno task bench`: figures, not assertions. Prints a table (each figure with
 * the ratio to its baseline where one is measured in the same run) and writes
 * bench/results.json.
 *
 * Sections (each in its own module, each reporting through one Reporter):
 * - core: TCP between two stacks in one process, checksum, core lock
 *   (bench/core_bench.ts).
 * - sessions: memory per idle session and per established TCP connection at
 *   1,000 and 10,000 sessions, time to create a session (bench/sessions_bench.ts;
 *   needs `--v8-flags=--expose-gc`, which the bench task passes).
 * - api: the HTTP socket API over real HTTP on loopback (server in a child
 *   process): send+recv round trips and connect+close per second, 1 and 64
 *   clients, against `GET /healthz` on the same server (bench/api_bench.ts).
 * - lock: the core lock under load: delays from a frame's or an API call's
 *   arrival to the core, in-core wait, timer lateness (bench/lock_bench.ts).
 *
 * - e2e (root): the real iperf3 through TAP → tunnel → WebSocket → the stack, beside
 *   Linux over veth and slirp4netns, and ping through the tunnel beside the raw
 *   WebSocket round trip (bench/e2e_bench.ts).
 * - egress (root): iperf3 from a machine behind a session to a server in an
 *   "internet" namespace through the egress gateway, both directions, beside
 *   slirp4netns doing the same job (bench/egress_bench.ts).
 * - stream (root): bytes/s through `netisle connect` (Linux → stack → socket-stream
 *   WebSocket → the CLI's stdout, and back) beside iperf3 on the TAP in the same run
 *   (bench/stream_bench.ts).
 *
 * `deno task bench -- SECTION...` runs only the named sections.
 *
 * @module
 */

import process from "node:process";
import { writeFileSync } from "node:fs";
import { Reporter } from "./report.ts";
import { runCoreBenchmarks } from "./core_bench.ts";
import { runSessionsBenchmarks } from "./sessions_bench.ts";
import { runApiBenchmarks } from "./api_bench.ts";
import { runLockBenchmarks } from "./lock_bench.ts";
import { runE2eBenchmarks } from "./e2e_bench.ts";
import { runEgressBenchmarks } from "./egress_bench.ts";
import { runStreamBenchmarks } from "./stream_bench.ts";

/** Every section, in the order they run. A section reports skips itself. */
const sections: Record<string, (r: Reporter) => void | Promise<void>> = {
  core: runCoreBenchmarks,
  api: runApiBenchmarks,
  sessions: runSessionsBenchmarks,
  lock: runLockBenchmarks,
  e2e: runE2eBenchmarks,
  stream: runStreamBenchmarks,
  egress: runEgressBenchmarks,
};

const wanted = process.argv.slice(2).filter((a) => a !== "--");
for (const w of wanted) {
  if (!(w in sections)) {
    console.error(
      `bench: unknown section ${JSON.stringify(w)}; known: ${Object.keys(sections).join(", ")}`,
    );
    process.exit(2);
  }
}

console.log("netisle bench (figures on a shared, noisy machine: compare medians and ratios)\n");
const reporter = new Reporter();
for (const [name, run] of Object.entries(sections)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  console.log(`\n## ${name}`);
  await run(reporter);
}

writeFileSync(
  new URL("./results.json", import.meta.url),
  JSON.stringify(
    { date: new Date().toISOString(), rows: reporter.rows, skipped: reporter.skipped },
    null,
    2,
  ),
);
console.log("\nwrote bench/results.json");
