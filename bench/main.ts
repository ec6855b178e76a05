/**
 * `deno task bench`: figures, not assertions. Prints a table (each figure with
 * the ratio to its baseline where one is measured in the same run) and writes
 * bench/results.json.
 *
 * Sections (each in its own module, each reporting through one Reporter):
 * - core: TCP between two stacks in one process, checksum, core lock
 *   (bench/core_bench.ts).
 *
 * `deno task bench -- SECTION...` runs only the named sections.
 *
 * @module
 */

import process from "node:process";
import { writeFileSync } from "node:fs";
import { Reporter } from "./report.ts";
import { runCoreBenchmarks } from "./core_bench.ts";

/** Every section, in the order they run. A section reports skips itself. */
const sections: Record<string, (r: Reporter) => void | Promise<void>> = {
  core: runCoreBenchmarks,
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
