/**
 * End to end: the same scenario (tests/e2e/runtime_scenario.ts: ping, TCP
 * both ways, a WebSocket socket stream and UDP between Linux and a session's
 * stack through a TAP tunnel, then ping, TCP both ways and UDP both ways
 * over IPv6) against the server on every local runtime:
 * Deno (`examples/deno/server.ts`), the Deno Deploy entry (`examples/deno/deploy.ts`) and
 * Bun (`examples/bun/server.ts`).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { BUN, commandExists, DENO, e2eSkipReason } from "./harness.ts";
import { runRuntimeScenario } from "./runtime_scenario.ts";

function skipReason(): string | undefined {
  const reason = e2eSkipReason();
  if (reason) return reason;
  const missing = ["socat", "curl", "ping", "ss"].filter((c) => !commandExists(c));
  if (missing.length === 0) return undefined;
  const why = `needs ${missing.join(", ")}`;
  if (process.env.CI === "true") {
    throw new Error(`end-to-end tests must run in CI but cannot: ${why}`);
  }
  console.warn(`\n*** SKIPPING runtime end-to-end tests: ${why} ***\n`);
  return why;
}

const skip = skipReason();

const RUNTIMES: Array<{ name: string; serverCommand: string[]; url?: string }> = [
  { name: "deno", serverCommand: [DENO, "run", "-A", "examples/deno/server.ts"] },
  // The Deno Deploy entry takes no address: Deno.serve's default, port 8000.
  {
    name: "deno-deploy",
    serverCommand: [DENO, "run", "-A", "examples/deno/deploy.ts"],
    url: "http://127.0.0.1:8000",
  },
  { name: "bun", serverCommand: [BUN, "run", "examples/bun/server.ts"] },
];

describe("e2e: one scenario against the server on every runtime", { skip }, () => {
  for (const rt of RUNTIMES) {
    it(`${rt.name}: ping, TCP both ways, a socket stream, UDP, then ping, TCP and UDP over IPv6 through a TAP tunnel`, async () => {
      const report = await runRuntimeScenario({ ...rt, log: (l) => console.log(l) });
      assert.equal(report.steps.length, 7, report.steps.join("\n"));
    });
  }
});
