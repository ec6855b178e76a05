/**
 * The egress section of `deno task bench` (needs root): the real iperf3,
 * TCP, MTU 1500, from a Linux machine behind a session to an iperf3 server
 * in an "internet" namespace, measured two ways in the same run:
 *
 * - netisle: iperf3 in "guest" → TAP → tunnel CLI → WebSocket → server →
 *   the stack → egress gateway → the runtime's socket (`Deno.connect`) →
 *   "internet" (the testbed of tests/e2e/egress_testbed.ts), both
 *   directions (`-R`: the server sends);
 * - slirp4netns doing the same job: a namespace whose only link is
 *   slirp4netns's TAP, slirp4netns in the server's namespace, reaching the
 *   same iperf3 server through the same veth.
 *
 * The guest's address sits on the TAP device itself (no bridge), as the
 * slirp4netns namespace's does on its TAP. netisle runs three ways: server
 * and tunnel CLI on Deno, the CLI on Bun, both on Bun. Each netisle figure
 * is printed with its ratio to slirp4netns, and each with the CPU seconds
 * per GB of the processes doing the work (netisle: the server and the
 * tunnel CLI; slirp4netns: its process).
 *
 * NETISLE_BENCH_E2E_SECONDS (default 5) and NETISLE_BENCH_E2E_RUNS (default
 * 3, the median is reported) size the iperf3 runs.
 *
 * @module
 */

import { existsSync } from "node:fs";
import process from "node:process";
import { commandExists, Netns, type Proc } from "../tests/e2e/harness.ts";
import { EgressTestbed, WEB } from "../tests/e2e/egress_testbed.ts";
import { type BenchRow, median, type Reporter } from "./report.ts";
import { clockTicks, cpuSeconds } from "./process_cpu.ts";

const SECTION = "egress";
const SECONDS = Number(process.env.NETISLE_BENCH_E2E_SECONDS ?? 5);
const RUNS = Number(process.env.NETISLE_BENCH_E2E_RUNS ?? 3);
const note = `iperf3 -t ${SECONDS}, median of ${RUNS}`;

interface Run {
  gbps: number;
  bytes: number;
}

function iperf(ns: Netns, extra: string[] = []): Run {
  const out = ns.exec("iperf3", ["-c", WEB, "-t", String(SECONDS), "-J", ...extra], {
    timeoutMs: (SECONDS + 30) * 1000,
  });
  const json = JSON.parse(out) as {
    end: { sum_received: { bits_per_second: number; bytes: number } };
  };
  return { gbps: json.end.sum_received.bits_per_second / 1e9, bytes: json.end.sum_received.bytes };
}

/** The median rate of `RUNS` runs and the CPU seconds per GB each of `pids` spent. */
function measure(
  fn: () => Run,
  pids: (number | undefined)[],
): { gbps: number; cpuPerGb: number[] } {
  const tick = clockTicks();
  const before = pids.map((p) => cpuSeconds(p, tick));
  const rates: number[] = [];
  let bytes = 0;
  for (let i = 0; i < RUNS; i++) {
    const r = fn();
    rates.push(r.gbps);
    bytes += r.bytes;
  }
  return {
    gbps: median(rates),
    cpuPerGb: pids.map((p, i) => (cpuSeconds(p, tick) - before[i]) / (bytes / 1e9)),
  };
}

async function measureSlirp(
  r: Reporter,
  bed: EgressTestbed,
): Promise<{ up: BenchRow; down: BenchRow }> {
  const child = new Netns("egress-slirp");
  let slirp: Proc | undefined;
  try {
    slirp = bed.server.spawn("slirp4netns", [
      "--configure",
      "--mtu=1500",
      "--netns-type=path",
      `/run/netns/${child.name}`,
      "tap0",
    ]);
    const deadline = Date.now() + 10_000;
    while (!/10\.0\.2\.100/.test(child.exec("ip", ["-4", "addr", "show"]))) {
      if (Date.now() > deadline) {
        throw new Error(`slirp4netns did not configure tap0:\n${slirp.output}`);
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    const pid = [slirp.child.pid];
    const up = measure(() => iperf(child), pid);
    const upRow = r.report(
      SECTION,
      "slirp4netns, iperf3 -c to the internet, MTU 1500 (baseline)",
      up.gbps,
      "Gbit/s",
      { note },
    );
    r.report(SECTION, "  CPU seconds per GB, slirp4netns process", up.cpuPerGb[0], "s/GB");
    const down = measure(() => iperf(child, ["-R"]), pid);
    const downRow = r.report(
      SECTION,
      "slirp4netns, iperf3 -c -R from the internet, MTU 1500",
      down.gbps,
      "Gbit/s",
      { note },
    );
    r.report(SECTION, "  CPU seconds per GB, slirp4netns process", down.cpuPerGb[0], "s/GB");
    return { up: upRow, down: downRow };
  } finally {
    await slirp?.stop().catch(() => {});
    child.delete();
  }
}

function measureNetisle(
  r: Reporter,
  bed: EgressTestbed,
  base: { up?: BenchRow; down?: BenchRow },
  label: string,
): void {
  const pids = [bed.serverProc.child.pid, bed.guest.cli.child.pid];
  const row = (name: string, m: { gbps: number; cpuPerGb: number[] }, slirp?: BenchRow) => {
    r.report(SECTION, name, m.gbps, "Gbit/s", slirp ? { note, baseline: slirp } : { note });
    const [srv, cli] = m.cpuPerGb;
    r.report(SECTION, "  CPU seconds per GB, server + tunnel CLI", srv + cli, "s/GB", {
      note: `server ${srv.toFixed(1)}, tunnel ${cli.toFixed(1)}`,
    });
  };
  row(
    `netisle egress (${label}), iperf3 -c to the internet, MTU 1500`,
    measure(() => iperf(bed.guest.ns), pids),
    base.up,
  );
  row(
    `netisle egress (${label}), iperf3 -c -R from the internet, MTU 1500`,
    measure(() => iperf(bed.guest.ns, ["-R"]), pids),
    base.down,
  );
}

/** Runs the egress benchmarks; skips (with the reason) when not root or a tool is missing. */
export async function runEgressBenchmarks(r: Reporter): Promise<void> {
  if (process.getuid?.() !== 0) return r.skip(SECTION, "needs root (network namespaces, TAP)");
  if (!existsSync("/dev/net/tun")) return r.skip(SECTION, "needs /dev/net/tun");
  for (const tool of ["ip", "iperf3", "dnsmasq", "python3"]) {
    if (!commandExists(tool)) return r.skip(SECTION, `needs ${tool}`);
  }
  let slirp: { up?: BenchRow; down?: BenchRow } = {};
  const configs = [
    { runtime: "deno", cli: "deno", label: "server and CLI on Deno" },
    { runtime: "deno", cli: "bun", label: "server on Deno, CLI on Bun" },
    { runtime: "bun", cli: "bun", label: "server and CLI on Bun" },
  ] as const;
  // NETISLE_BENCH_EGRESS_ONLY=deno/bun (server/CLI runtimes) runs that configuration and the
  // first (which measures slirp4netns too).
  const only = process.env.NETISLE_BENCH_EGRESS_ONLY;
  for (const [i, c] of configs.entries()) {
    if (only && only !== `${c.runtime}/${c.cli}` && i > 0) continue;
    const bed = new EgressTestbed();
    try {
      // The guest on the TAP device itself, as slirp4netns's namespace is on its TAP.
      await bed.start(`bench-${c.runtime}-${c.cli}`, {
        runtime: c.runtime,
        cliRuntime: c.cli,
        bridge: false,
      });
      const srv = bed.internet.spawn("iperf3", ["-s", "--forceflush", "-B", WEB]);
      bed.procs.push(srv);
      await srv.waitFor(/Server listening/);
      bed.guest.exec("ping", ["-c", "1", "-W", "5", "10.0.2.2"]);
      if (i === 0) {
        if (commandExists("slirp4netns")) slirp = await measureSlirp(r, bed);
        else r.skip(`${SECTION} slirp4netns`, "needs slirp4netns");
      }
      measureNetisle(r, bed, slirp, c.label);
    } catch (err) {
      r.skip(`${SECTION} ${c.label}`, `failed: ${(err as Error).message.split("\n")[0]}`);
    } finally {
      await bed.stop();
    }
  }
}
