/**
 * The `stream` section of `deno task bench` (needs root): the socket stream
 * path, bytes per second through `netisle connect` — Linux → TAP → tunnel →
 * the session's stack → the socket-stream WebSocket → the CLI's standard
 * output, and back from its standard input to Linux — beside the same
 * direction through iperf3 on the TAP in the same run (Linux iperf3 against
 * the stack's own iperf3 server: the tunnel alone, no stream).
 *
 * The Linux ends are small Python programs on 10.0.2.15 that send or take N
 * bytes; the rate is timed from the first byte to the end of the stream by
 * the reading end (so the CLI's start-up does not count). Each row comes with
 * the CPU seconds per GB of the server, the tunnel CLI and `netisle connect`,
 * and every row (the baseline's too) with the whole machine's CPU seconds per
 * GB: with both CPUs busy, the ratio of two paths' rates is about the inverse
 * of the ratio of those figures.
 *
 * NETISLE_BENCH_STREAM_MIB (default 512) sizes each transfer; NETISLE_BENCH_E2E_SECONDS
 * (default 5) and NETISLE_BENCH_E2E_RUNS (default 3, the median) size the runs.
 *
 * @module
 */

import { existsSync } from "node:fs";
import process from "node:process";
import { BUN, commandExists, DENO, Netns, type Proc } from "../tests/e2e/harness.ts";
import { type BenchRow, median, type Reporter } from "./report.ts";
import { clockTicks, cpuSeconds, machineCpuSeconds } from "./process_cpu.ts";

const SECTION = "stream";
const MIB = Number(process.env.NETISLE_BENCH_STREAM_MIB ?? 512);
const SECONDS = Number(process.env.NETISLE_BENCH_E2E_SECONDS ?? 5);
const RUNS = Number(process.env.NETISLE_BENCH_E2E_RUNS ?? 3);

/** Linux end that sends N zero bytes to the first client of 10.0.2.15:PORT, then closes. */
const SOURCE = `
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.0.2.15", port)); s.listen(1); print("READY", flush=True)
c, _ = s.accept(); print("ACCEPTED", flush=True); buf = bytes(1 << 20)
while n > 0:
    k = min(n, len(buf)); c.sendall(buf if k == len(buf) else buf[:k]); n -= k
c.shutdown(socket.SHUT_WR); c.recv(1); c.close()
`;

/** Linux end that reads the first client of 10.0.2.15:PORT to EOF and prints bytes and seconds. */
const SINK = `
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.0.2.15", int(sys.argv[1]))); s.listen(1); print("READY", flush=True)
c, _ = s.accept(); print("ACCEPTED", flush=True)
n = 0; t0 = None; buf = bytearray(1 << 20)
while True:
    k = c.recv_into(buf)
    if k == 0: break
    if t0 is None: t0 = time.monotonic()
    n += k
print("METER", n, time.monotonic() - t0, flush=True); c.close()
`;

/** Reads standard input to EOF; prints bytes and seconds from the first byte. */
const METER = `
import sys, time
f = sys.stdin.buffer; n = 0; t0 = None
while True:
    b = f.read1(1 << 20)
    if not b: break
    if t0 is None: t0 = time.monotonic()
    n += len(b)
print("METER", n, time.monotonic() - t0, flush=True)
`;

/** Writes N zero bytes to standard output. */
const GEN = `
import sys
n = int(sys.argv[1]); buf = bytes(1 << 20); out = sys.stdout.buffer
while n > 0:
    k = min(n, len(buf)); out.write(buf if k == len(buf) else buf[:k]); n -= k
out.flush()
`;

async function stopAll(procs: Proc[]): Promise<void> {
  for (const p of procs.reverse()) await p.stop().catch(() => {});
}

interface IperfJson {
  end: { sum_received: { bits_per_second: number; bytes: number } };
}

/** Runs the section; skips (with the reason) when not root or a tool is missing. */
export async function runStreamBenchmarks(r: Reporter): Promise<void> {
  if (process.getuid?.() !== 0) return r.skip(SECTION, "needs root (network namespaces, TAP)");
  if (!existsSync("/dev/net/tun")) return r.skip(SECTION, "needs /dev/net/tun");
  for (const tool of ["ip", "iperf3", "python3"]) {
    if (!commandExists(tool)) return r.skip(SECTION, `needs ${tool}`);
  }
  const tick = clockTicks();
  const ns = new Netns("bench-stream");
  const procs: Proc[] = [];
  try {
    const server = ns.spawn(DENO, ["run", "-A", "tests/e2e/fixtures/stack_server.ts"], {
      PORT: "8787",
      NETISLE_LOG: "0",
    });
    procs.push(server);
    const [, id, token] = await server.waitFor(/SESSION (\S+) (\S+)/, 60_000);
    await server.waitFor(/LISTENING/, 60_000);
    const tunnel = ns.spawn(DENO, [
      "run",
      "-A",
      "tunnel/cli.ts",
      "--server",
      "http://127.0.0.1:8787",
      "--session",
      id,
      "--token",
      token,
      "--tap",
      "tap0",
    ]);
    procs.push(tunnel);
    await tunnel.waitFor(/tunnel open/, 60_000);
    ns.exec("ip", ["addr", "add", "10.0.2.15/24", "dev", "tap0"]);
    ns.exec("ip", ["link", "set", "tap0", "up"]);
    ns.exec("ping", ["-c", "1", "-W", "5", "10.0.2.2"]);
    const env = {
      NETISLE_SERVER: "http://127.0.0.1:8787",
      NETISLE_SESSION: id,
      NETISLE_TOKEN: token,
    };

    // The baseline: the real iperf3 through the TAP and the tunnel to the stack's own server.
    // Each row also says what the whole machine spent per GB (every process and the kernel):
    // with both CPUs busy, a path's rate is about 2 CPUs over that figure.
    const iperf = (reverse: boolean) => {
      const rates: number[] = [];
      let cpu = 0;
      let gb = 0;
      for (let i = 0; i < RUNS; i++) {
        const before = machineCpuSeconds(tick);
        const out = ns.exec(
          "iperf3",
          ["-c", "10.0.2.2", "-t", String(SECONDS), "-J", ...(reverse ? ["-R"] : [])],
          { timeoutMs: (SECONDS + 30) * 1000 },
        );
        cpu += machineCpuSeconds(tick) - before;
        const received = (JSON.parse(out) as IperfJson).end.sum_received;
        rates.push(received.bits_per_second / 1e9);
        gb += received.bytes / 1e9;
      }
      return { gbps: median(rates), cpuPerGb: cpu / gb };
    };
    const note = `iperf3 -t ${SECONDS}, median of ${RUNS}`;
    const machineRow = (cpuPerGb: number, baseline?: BenchRow) =>
      r.report(
        SECTION,
        "  machine CPU seconds per GB (all processes and the kernel)",
        cpuPerGb,
        "s/GB",
        {
          baseline,
          note: "/proc/stat user+system+irq+softirq over the transfer",
        },
      );
    const tapIn = iperf(false);
    const into = r.report(
      SECTION,
      "TAP: Linux iperf3 -c → stack (baseline)",
      tapIn.gbps,
      "Gbit/s",
      {
        note,
      },
    );
    const intoCpu = machineRow(tapIn.cpuPerGb);
    const tapOut = iperf(true);
    const outOf = r.report(
      SECTION,
      "TAP: Linux iperf3 -c -R ← stack (baseline)",
      tapOut.gbps,
      "Gbit/s",
      { note },
    );
    const outOfCpu = machineRow(tapOut.cpuPerGb);

    const bytes = MIB * 1024 * 1024;
    let port = 6000;
    const cli = (runtime: "deno" | "bun") =>
      `/usr/bin/time -f 'CLICPU %U %S' ${
        runtime === "bun" ? `${BUN} tunnel/cli.ts` : `${DENO} run -A tunnel/cli.ts`
      }`;
    /** One transfer: its rate and the CPU seconds of server, tunnel CLI and netisle connect. */
    const once = async (direction: "down" | "up", runtime: "deno" | "bun") => {
      const p = port++;
      const linux = ns.spawn("python3", [
        "-c",
        direction === "down" ? SOURCE : SINK,
        String(p),
        String(bytes),
      ]);
      procs.push(linux);
      await linux.waitFor(/READY/);
      const pipeline = direction === "down"
        ? `${cli(runtime)} connect 10.0.2.15:${p} </dev/null | python3 -c '${METER}'`
        : `python3 -c '${GEN}' ${bytes} | ${cli(runtime)} connect 10.0.2.15:${p} >/dev/null`;
      const pids = [server.child.pid, tunnel.child.pid];
      const before = pids.map((x) => cpuSeconds(x, tick));
      const run = ns.spawn("sh", ["-c", pipeline], env);
      procs.push(run);
      // The machine's CPU from the connection (after the CLI started) to the end of the stream.
      await linux.waitFor(/ACCEPTED/, 60_000);
      const machineBefore = machineCpuSeconds(tick);
      const m = await (direction === "down" ? run : linux).waitFor(/METER (\d+) ([\d.]+)/, 600_000);
      const machine = machineCpuSeconds(tick) - machineBefore;
      const c = await run.waitFor(/CLICPU ([\d.]+) ([\d.]+)/, 60_000);
      const cpu = [
        ...pids.map((x, i) => cpuSeconds(x, tick) - before[i]),
        Number(c[1]) + Number(c[2]),
      ];
      if (Number(m[1]) !== bytes) throw new Error(`moved ${m[1]} of ${bytes} bytes`);
      return { gbps: bytes * 8 / Number(m[2]) / 1e9, cpu, machine };
    };
    const row = async (
      direction: "down" | "up",
      runtime: "deno" | "bun",
      baseline: BenchRow,
      baselineCpu: BenchRow,
    ) => {
      const rates: number[] = [];
      let cpu = [0, 0, 0];
      let machine = 0;
      for (let i = 0; i < RUNS; i++) {
        const x = await once(direction, runtime);
        rates.push(x.gbps);
        cpu = cpu.map((v, j) => v + x.cpu[j]);
        machine += x.machine;
      }
      const gb = bytes * RUNS / 1e9;
      const name = direction === "down"
        ? `netisle connect (${runtime}): Linux → stack → WebSocket → stdout`
        : `netisle connect (${runtime}): stdin → WebSocket → stack → Linux`;
      r.report(SECTION, name, median(rates), "Gbit/s", {
        note: `${MIB} MiB, median of ${RUNS}`,
        baseline,
      });
      r.report(
        SECTION,
        "  CPU seconds per GB, server + tunnel + connect",
        (cpu[0] + cpu[1] + cpu[2]) / gb,
        "s/GB",
        {
          note: `server ${(cpu[0] / gb).toFixed(1)}, tunnel ${(cpu[1] / gb).toFixed(1)}, connect ${
            (cpu[2] / gb).toFixed(1)
          }`,
        },
      );
      machineRow(machine / gb, baselineCpu);
    };
    await row("down", "deno", into, intoCpu);
    await row("up", "deno", outOf, outOfCpu);
    if (existsSync(BUN)) {
      await row("down", "bun", into, intoCpu);
      await row("up", "bun", outOf, outOfCpu);
    }
  } finally {
    await stopAll(procs);
    ns.delete();
  }
}
