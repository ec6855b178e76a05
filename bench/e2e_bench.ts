/**
 * The end-to-end section of `deno task bench` (needs root): the real iperf3,
 * TCP, MTU 1500, in network namespaces made for the run, measured three ways
 * in the same run:
 *
 * - Linux over a veth pair between two namespaces: the ceiling;
 * - slirp4netns: a namespace whose only link is slirp4netns's TAP, reaching
 *   `iperf3 -s` in the parent namespace through slirp's gateway 10.0.2.2 (the
 *   parent's own loopback: nothing leaves the namespaces): the baseline users
 *   would otherwise pick;
 * - netisle: Linux iperf3 in a namespace → TAP → tunnel CLI → WebSocket →
 *   server → the stack's iperf3 server (src/apps), both directions, and the
 *   stack's iperf3 client against Linux `iperf3 -s`.
 *
 * Each netisle figure is printed with its ratio to slirp4netns and to veth.
 * Then the tunnel's latency: ping through the tunnel (median, p99) beside the
 * raw WebSocket round trip on this machine (Deno.serve echo, `ws` client).
 * The netisle figures are measured with both framings (one frame per
 * message, and the QEMU-stream subprotocol, the CLI's default), and once more
 * with the CLI on Bun. Each netisle figure comes with the CPU seconds per GB
 * that the server and the tunnel CLI spent (slirp4netns's too): a figure that
 * a loaded machine distorts less than a rate. Last, jumbo frames: slirp4netns
 * and netisle with MTU 65520 on the TAP (NETISLE_BENCH_E2E_JUMBO=0 skips them).
 *
 * NETISLE_BENCH_E2E_SECONDS (default 5) and NETISLE_BENCH_E2E_RUNS (default 3,
 * the median is reported) size the iperf3 runs; NETISLE_BENCH_E2E_ONLY picks parts.
 *
 * @module
 */

import { existsSync } from "node:fs";
import process from "node:process";
import { BUN, commandExists, DENO, Netns, type Proc } from "../tests/e2e/harness.ts";
import { type BenchRow, median, quantile, type Reporter } from "./report.ts";
import { clockTicks, cpuSeconds } from "./process_cpu.ts";

const SECTION = "e2e";
const SECONDS = Number(process.env.NETISLE_BENCH_E2E_SECONDS ?? 5);
const RUNS = Number(process.env.NETISLE_BENCH_E2E_RUNS ?? 3);
/**
 * NETISLE_BENCH_E2E_ONLY: a comma-separated subset of the parts (veth, slirp, frame, stream,
 * pacing, bun, jumbo) to run; all by default.
 */
const ONLY = process.env.NETISLE_BENCH_E2E_ONLY?.split(",").map((s) => s.trim());
const part = (name: string) => ONLY === undefined || ONLY.includes(name);

interface IperfJson {
  end: { sum_received: { bits_per_second: number; bytes: number } };
}

/** One iperf3 run: the receiver's rate and the bytes it counted. */
interface Run {
  gbps: number;
  bytes: number;
}

/** Runs `iperf3 -c ... -J` in `ns`: the receiver's rate in Gbit/s and its byte count. */
function iperf(ns: Netns, host: string, extra: string[] = []): Run {
  const out = ns.exec("iperf3", ["-c", host, "-t", String(SECONDS), "-J", ...extra], {
    timeoutMs: (SECONDS + 30) * 1000,
  });
  const json = JSON.parse(out) as IperfJson;
  return { gbps: json.end.sum_received.bits_per_second / 1e9, bytes: json.end.sum_received.bytes };
}

/**
 * Runs `fn` `runs` times: the median rate, and the CPU seconds per GB the
 * processes `pids` spent over all runs (a figure less sensitive to a loaded machine).
 */
async function measure(
  runs: number,
  fn: () => Run | Promise<Run>,
  pids: (number | undefined)[] = [],
): Promise<{ gbps: number; cpuPerGb: number[] }> {
  const tick = clockTicks();
  const rates: number[] = [];
  let bytes = 0;
  const before = pids.map((p) => cpuSeconds(p, tick));
  for (let i = 0; i < runs; i++) {
    const run = await fn();
    rates.push(run.gbps);
    bytes += run.bytes;
  }
  const cpuPerGb = pids.map((p, i) => (cpuSeconds(p, tick) - before[i]) / (bytes / 1e9));
  return { gbps: median(rates), cpuPerGb };
}

async function medianOf(runs: number, fn: () => Run | Promise<Run>): Promise<number> {
  return (await measure(runs, fn)).gbps;
}

const note = `iperf3 -t ${SECONDS}, median of ${RUNS}`;

async function stopAll(procs: Proc[]): Promise<void> {
  for (const p of procs.reverse()) await p.stop().catch(() => {});
}

async function measureVeth(r: Reporter): Promise<BenchRow> {
  const a = new Netns("iperf-veth-a");
  const b = new Netns("iperf-veth-b");
  const procs: Proc[] = [];
  try {
    a.exec("ip", ["link", "add", "va", "type", "veth", "peer", "name", "vb"]);
    a.exec("ip", ["link", "set", "vb", "netns", b.name]);
    a.exec("ip", ["addr", "add", "10.9.0.1/24", "dev", "va"]);
    a.exec("ip", ["link", "set", "va", "up", "mtu", "1500"]);
    b.exec("ip", ["addr", "add", "10.9.0.2/24", "dev", "vb"]);
    b.exec("ip", ["link", "set", "vb", "up", "mtu", "1500"]);
    const srv = a.spawn("iperf3", ["-s", "--forceflush", "-B", "10.9.0.1"]);
    procs.push(srv);
    await srv.waitFor(/Server listening/);
    const v = await medianOf(RUNS, () => iperf(b, "10.9.0.1"));
    return r.report(SECTION, "Linux over veth, iperf3 TCP, MTU 1500 (ceiling)", v, "Gbit/s", {
      note,
    });
  } finally {
    await stopAll(procs);
    b.delete();
    a.delete();
  }
}

async function measureSlirp(
  r: Reporter,
  veth: BenchRow,
  mtu = 1500,
): Promise<{ fwd: BenchRow; rev: BenchRow }> {
  const parent = new Netns("iperf-slirp-p");
  const child = new Netns("iperf-slirp-c");
  const procs: Proc[] = [];
  try {
    const srv = parent.spawn("iperf3", ["-s", "--forceflush", "-B", "127.0.0.1"]);
    procs.push(srv);
    await srv.waitFor(/Server listening/);
    // slirp4netns runs in the parent namespace; its gateway 10.0.2.2 is the parent's loopback.
    const slirp = parent.spawn("slirp4netns", [
      "--configure",
      `--mtu=${mtu}`,
      "--netns-type=path",
      `/run/netns/${child.name}`,
      "tap0",
    ]);
    procs.push(slirp);
    const deadline = Date.now() + 10_000;
    while (!/10\.0\.2\.100/.test(child.exec("ip", ["-4", "addr", "show"]))) {
      if (Date.now() > deadline) {
        throw new Error(`slirp4netns did not configure tap0:\n${slirp.output}`);
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    const cpuRow = (cpuPerGb: number[]) =>
      r.report(SECTION, "  CPU seconds per GB, slirp4netns process", cpuPerGb[0], "s/GB");
    const f = await measure(RUNS, () => iperf(child, "10.0.2.2"), [slirp.child.pid]);
    const fwd = r.report(
      SECTION,
      `slirp4netns, Linux iperf3 -c via 10.0.2.2, MTU ${mtu} (baseline)`,
      f.gbps,
      "Gbit/s",
      { note, baseline: veth },
    );
    cpuRow(f.cpuPerGb);
    const b = await measure(RUNS, () => iperf(child, "10.0.2.2", ["-R"]), [slirp.child.pid]);
    const rev = r.report(
      SECTION,
      `slirp4netns, Linux iperf3 -c -R via 10.0.2.2, MTU ${mtu}`,
      b.gbps,
      "Gbit/s",
      { note, baseline: veth },
    );
    cpuRow(b.cpuPerGb);
    return { fwd, rev };
  } finally {
    await stopAll(procs);
    child.delete();
    parent.delete();
  }
}

/** ping's per-reply round trips in ms. */
function pingRtts(out: string): number[] {
  return [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

async function measureNetisle(
  r: Reporter,
  framing: "frame" | "stream",
  base: { veth: BenchRow; slirpFwd?: BenchRow; slirpRev?: BenchRow; ws: WsRows },
  mtu = 1500,
  cliRuntime: "deno" | "bun" = "deno",
  pacingOff = false,
): Promise<{ rev?: BenchRow }> {
  const ns = new Netns(
    `iperf-netisle-${framing}-${mtu}-${cliRuntime}${pacingOff ? "-unpaced" : ""}`,
  );
  const procs: Proc[] = [];
  const label = `netisle (${framing} framing${cliRuntime === "bun" ? ", CLI on Bun" : ""}${
    pacingOff ? ", pacing off" : ""
  })`;
  const both = (
    name: string,
    m: { gbps: number; cpuPerGb: number[] },
    slirp: BenchRow | undefined,
  ): BenchRow => {
    const row = slirp
      ? r.report(SECTION, name, m.gbps, "Gbit/s", { note, baseline: slirp })
      : r.report(SECTION, name, m.gbps, "Gbit/s", { note });
    if (mtu === 1500) {
      r.report(SECTION, `  the same, against veth`, m.gbps, "Gbit/s", { baseline: base.veth });
    }
    const [srv, tun] = m.cpuPerGb;
    r.report(SECTION, `  CPU seconds per GB, server + tunnel CLI`, srv + tun, "s/GB", {
      note: `server ${srv.toFixed(1)}, tunnel ${tun.toFixed(1)}`,
    });
    return row;
  };
  try {
    const server = ns.spawn(DENO, ["run", "-A", "tests/e2e/fixtures/stack_server.ts"], {
      PORT: "8787",
      NETISLE_LOG: "0",
      NETISLE_MTU: String(mtu),
      ...(pacingOff ? { NETISLE_TCP_PACING: "0" } : {}),
    });
    procs.push(server);
    const [, id, token] = await server.waitFor(/SESSION (\S+) (\S+)/, 60_000);
    await server.waitFor(/LISTENING/, 60_000);
    const tunnel = ns.spawn(cliRuntime === "bun" ? BUN : DENO, [
      ...(cliRuntime === "bun" ? ["run"] : ["run", "-A"]),
      "tunnel/cli.ts",
      "--server",
      "http://127.0.0.1:8787",
      "--session",
      id,
      "--token",
      token,
      "--tap",
      "tap0",
      "--framing",
      framing,
    ]);
    procs.push(tunnel);
    await tunnel.waitFor(/tunnel open/, 60_000);
    ns.exec("ip", ["addr", "add", "10.0.2.15/24", "dev", "tap0"]);
    ns.exec("ip", ["link", "set", "tap0", "up"]);
    ns.exec("ping", ["-c", "1", "-W", "5", "10.0.2.2"]);

    const pids = [server.child.pid, tunnel.child.pid];
    if (!pacingOff) {
      both(
        `${label}: Linux iperf3 -c → stack's iperf3 server, MTU ${mtu}`,
        await measure(RUNS, () => iperf(ns, "10.0.2.2"), pids),
        base.slirpFwd,
      );
    }
    const rev = both(
      `${label}: Linux iperf3 -c -R (stack sends), MTU ${mtu}`,
      await measure(RUNS, () => iperf(ns, "10.0.2.2", ["-R"]), pids),
      base.slirpRev,
    );
    if (mtu !== 1500 || pacingOff) return { rev };
    const linux = ns.spawn("iperf3", ["-s", "--forceflush", "-B", "10.0.2.15"]);
    procs.push(linux);
    await linux.waitFor(/Server listening/);
    const stackClient = await measure(RUNS, async () => {
      // iperf3 -s re-opens its listener after each test: a connect in that gap is refused.
      let m: RegExpMatchArray;
      for (let attempt = 0;; attempt++) {
        await new Promise((res) => setTimeout(res, 300));
        const mark = server.mark();
        server.send(`iperf3 10.0.2.15 ${SECONDS}`);
        m = await server.waitFor(/IPERF3CLIENT(-ERROR)? (.*)/, (SECONDS + 40) * 1000, mark);
        if (!m[1] || !/refused/.test(m[2]) || attempt >= 5) break;
      }
      if (m[1]) throw new Error(`the stack's iperf3 client failed: ${m[2]}`);
      const res = JSON.parse(m[2]) as { receiverBitsPerSecond: number; serverBytes: number };
      return { gbps: res.receiverBitsPerSecond / 1e9, bytes: res.serverBytes };
    }, pids);
    both(
      `${label}: stack's iperf3 client → Linux iperf3 -s, MTU ${mtu}`,
      stackClient,
      base.slirpFwd,
    );

    const out = ns.exec("ping", ["-c", "200", "-i", "0.01", "-W", "2", "10.0.2.2"], {
      timeoutMs: 60_000,
    });
    const rtts = pingRtts(out);
    if (rtts.length === 0) throw new Error(`ping through the tunnel got no replies:\n${out}`);
    r.report(SECTION, `${label}: ping through the tunnel, median`, median(rtts), "ms", {
      note: `${rtts.length}/200 replies, ping -i 0.01`,
      baseline: base.ws.median,
    });
    r.report(SECTION, `${label}: ping through the tunnel, p99`, quantile(rtts, 0.99), "ms", {
      baseline: base.ws.p99,
    });
    return { rev };
  } finally {
    await stopAll(procs);
    ns.delete();
  }
}

interface WsRows {
  median: BenchRow;
  p99: BenchRow;
}

/** The raw WebSocket round trip: Deno.serve echo and a `ws` client, two processes. */
async function wsRtts(): Promise<number[]> {
  const ns = new Netns("iperf-wsrtt");
  const procs: Proc[] = [];
  try {
    const srv = ns.spawn(DENO, [
      "run",
      "-A",
      "tests/e2e/fixtures/ws_echo_rtt.ts",
      "server",
      "8790",
    ]);
    procs.push(srv);
    await srv.waitFor(/LISTENING/, 60_000);
    const cli = ns.spawn(DENO, [
      "run",
      "-A",
      "tests/e2e/fixtures/ws_echo_rtt.ts",
      "client",
      "ws://127.0.0.1:8790/",
      "200",
      "10",
    ]);
    procs.push(cli);
    const m = await cli.waitFor(/RTTS (\[.*\])/, 60_000);
    return JSON.parse(m[1]) as number[];
  } finally {
    await stopAll(procs);
    ns.delete();
  }
}

/** Runs the end-to-end benchmarks; skips (with the reason) when not root or a tool is missing. */
export async function runE2eBenchmarks(r: Reporter): Promise<void> {
  if (process.getuid?.() !== 0) return r.skip(SECTION, "needs root (network namespaces, TAP)");
  if (!existsSync("/dev/net/tun")) return r.skip(SECTION, "needs /dev/net/tun");
  for (const tool of ["ip", "iperf3", "ping"]) {
    if (!commandExists(tool)) return r.skip(SECTION, `needs ${tool}`);
  }
  const ws = part("frame") || part("stream") || part("bun") ? await wsRtts() : [0];
  const wsRows: WsRows = {
    median: r.report(SECTION, "raw WebSocket round trip, median", median(ws), "ms", {
      note: "Deno.serve echo, ws client; 200 × 98 bytes, 10 ms apart",
    }),
    p99: r.report(SECTION, "raw WebSocket round trip, p99", quantile(ws, 0.99), "ms"),
  };
  const veth = part("veth")
    ? await measureVeth(r)
    : r.report(SECTION, "Linux over veth (not measured)", NaN, "Gbit/s");
  let slirp: { fwd: BenchRow; rev: BenchRow } | undefined;
  if (!part("slirp")) r.skip(`${SECTION} slirp4netns`, "not in NETISLE_BENCH_E2E_ONLY");
  else if (commandExists("slirp4netns")) slirp = await measureSlirp(r, veth);
  else r.skip(`${SECTION} slirp4netns`, "needs slirp4netns (apt-get install slirp4netns)");
  const base = { veth, slirpFwd: slirp?.fwd, slirpRev: slirp?.rev, ws: wsRows };
  // A failed part is reported as skipped with its reason; the rest still runs.
  const attempt = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (err) {
      r.skip(`${SECTION} ${what}`, `failed: ${(err as Error).message.split("\n")[0]}`);
    }
  };
  if (part("frame")) await attempt("netisle frame framing", () => measureNetisle(r, "frame", base));
  let paced: BenchRow | undefined;
  if (part("stream")) {
    await attempt("netisle stream framing", async () => {
      paced = (await measureNetisle(r, "stream", base)).rev;
    });
  }
  if (part("pacing")) {
    // The stack sending with pacing off (it is on by default), and the default against it.
    await attempt("netisle stream framing, pacing off", async () => {
      const { rev } = await measureNetisle(r, "stream", base, 1500, "deno", true);
      if (paced && rev) {
        r.report(
          SECTION,
          `  pacing on (the default) against off, stack sends`,
          paced.value,
          "Gbit/s",
          {
            baseline: rev,
          },
        );
      }
    });
  }
  if (part("bun") && existsSync(BUN)) {
    await attempt(
      "netisle stream framing, Bun CLI",
      () => measureNetisle(r, "stream", base, 1500, "bun"),
    );
  }
  if (process.env.NETISLE_BENCH_E2E_JUMBO === "0" || !part("jumbo")) return;
  // Jumbo frames: 40× fewer frames (and WebSocket messages) per byte.
  const jumbo = 65520;
  await attempt(`MTU ${jumbo}`, async () => {
    const slirpJumbo = slirp ? await measureSlirp(r, veth, jumbo) : undefined;
    await measureNetisle(r, "stream", {
      ...base,
      slirpFwd: slirpJumbo?.fwd,
      slirpRev: slirpJumbo?.rev,
    }, jumbo);
  });
}
