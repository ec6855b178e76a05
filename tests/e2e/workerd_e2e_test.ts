/**
 * End to end on workerd: the Cloudflare Worker (examples/cloudflare, one
 * Durable Object per session) served by the real workerd runtime inside a
 * network namespace, with the Linux kernel as the peer through a TAP tunnel.
 *
 * 1. The runtime scenario of tests/e2e/runtime_scenario.ts (ping, TCP both
 *    ways byte-exact, a WebSocket socket stream, UDP both ways; then ping,
 *    TCP both ways and UDP both ways over IPv6, fd00::15 to fd00::2).
 * 2. TCP timing inside a Durable Object: workerd only advances `Date.now()`
 *    and `performance.now()` across I/O. The session reads the clock when a
 *    frame arrives (a WebSocket message is I/O) and when a timer fires, so RTT
 *    samples are real; this prints the rtt/rto the stack measured on a
 *    connection to Linux next to what Linux measured (`ss -ti`) and checks
 *    that RTT samples were taken and the RTO respects RFC 6298's bounds.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { commandExists, e2eSkipReason } from "./harness.ts";
import { runRuntimeScenario, RuntimeBed } from "./runtime_scenario.ts";

function skipReason(): string | undefined {
  const reason = e2eSkipReason();
  if (reason) return reason;
  const missing = ["socat", "curl", "ping", "ss", "node"].filter((c) => !commandExists(c));
  if (missing.length === 0) return undefined;
  const why = `needs ${missing.join(", ")}`;
  if (process.env.CI === "true") {
    throw new Error(`end-to-end tests must run in CI but cannot: ${why}`);
  }
  console.warn(`\n*** SKIPPING workerd end-to-end tests: ${why} ***\n`);
  return why;
}

const skip = skipReason();

/** `npm run start:workerd`: builds the bundle, runs workerd on $HOSTNAME:$PORT. */
const WORKERD_SERVER = ["node", "scripts/build_workerd.mjs", "--serve"];

/** Durable Object storage of one test's workerd, in a fresh directory. */
function withStorage<T>(fn: (env: Record<string, string>) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(`${tmpdir()}/netisle-cloudflare-e2e-`);
  return fn({ NETISLE_STORAGE_DIR: dir }).finally(() =>
    rmSync(dir, { recursive: true, force: true })
  );
}

describe("e2e: the Cloudflare Worker in workerd", { skip }, () => {
  it("workerd: ping, TCP both ways, a socket stream, UDP, then ping, TCP and UDP over IPv6 through a TAP tunnel", async () => {
    const report = await withStorage((env) =>
      runRuntimeScenario({
        name: "workerd",
        serverCommand: WORKERD_SERVER,
        env,
        nsPrefix: "cloudflare-wd",
        log: (l) => console.log(l),
      })
    );
    assert.equal(report.steps.length, 7, report.steps.join("\n"));
  });

  it("workerd: TCP measures RTT and keeps the RFC 6298 RTO bounds inside a Durable Object", async () => {
    const dir = mkdtempSync(`${tmpdir()}/netisle-cloudflare-e2e-`);
    const bed = new RuntimeBed({
      name: "workerd",
      serverCommand: WORKERD_SERVER,
      env: { NETISLE_STORAGE_DIR: dir },
      nsPrefix: "cloudflare-rtt",
    });
    try {
      await bed.start();
      const port = 7200;
      const n = 256 * 1024;
      const data = bed.file("rtt.bin", randomBytes(n));
      const sink = bed.spawn("socat", [
        "-u",
        `TCP-LISTEN:${port},bind=${bed.linux},reuseaddr`,
        "OPEN:/dev/null",
      ]);
      for (let i = 0; i < 50 && !bed.ns.exec("ss", ["-ltn"]).includes(`:${port}`); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const id = bed.socket("tcp");
      bed.json("POST", `sockets/${id}/connect`, {
        json: { address: bed.linux, port, timeoutMs: 10_000 },
      });
      assert.deepEqual(bed.json("POST", `sockets/${id}/send?timeoutMs=30000`, { dataFile: data }), {
        bytes: n,
      });
      let tcp: Record<string, unknown> = {};
      for (let i = 0; i < 50; i++) {
        const info = bed.json("GET", `sockets/${id}`);
        tcp = info.tcp;
        if (tcp.sendQueued === 0 && tcp.bytesInFlight === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const ss = bed.ns.exec("ss", ["-tin", "state", "established", `( sport = :${port} )`]);
      console.log(`workerd: stack tcp info after ${n} bytes: ${JSON.stringify(tcp)}`);
      console.log(`workerd: Linux side (ss -ti): ${ss.replace(/\s+/g, " ").trim()}`);
      const srtt = tcp.rttMs;
      const rto = tcp.rtoMs;
      assert.equal(tcp.bytesInFlight, 0, `everything was acknowledged: ${JSON.stringify(tcp)}`);
      // rttMs is null until the first RTT sample (RFC 6298 §2.2).
      assert.equal(typeof srtt, "number", `the stack took RTT samples: ${JSON.stringify(tcp)}`);
      assert.equal(typeof rto, "number", `the stack reports an RTO: ${JSON.stringify(tcp)}`);
      assert.ok(Number.isFinite(srtt) && (srtt as number) >= 0, `srtt ${srtt}`);
      // RFC 6298 §2.4/§2.5: the RTO stays within its lower and upper bounds.
      assert.ok((rto as number) >= 200 && (rto as number) <= 120_000, `rto ${rto}`);
      assert.equal(bed.curl("DELETE", `sockets/${id}`).status, 204);
      await sink.stop();
    } finally {
      await bed.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
