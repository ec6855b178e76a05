/**
 * Core benchmarks: no tunnel, no HTTP, one process.
 *
 * 1. Core TCP throughput: two stacks joined back to back (no sockets layer),
 *    one bulk connection, MTU 1500 and 65535, over IPv4 and over IPv6; then
 *    the same at MTU 1500 beside 10,000 established idle connections, and the
 *    CPU those cost when idle.
 * 2. Internet checksum throughput (1500-byte and 64 KiB buffers).
 * 3. The core lock: cost of an uncontended run() around an empty section.
 *
 * @module
 */

import process from "node:process";
import {
  ChannelLink,
  createSessionQuota,
  FrameOffload,
  LinkOffload,
  Stack,
  type TcpConnection,
} from "../src/stack/mod.ts";
import { recycleLargeBuffer } from "../src/stack/large_buffer_pool.ts";
import { CoreLock } from "../src/session/mod.ts";
import {
  internetChecksum,
  type IpAddress,
  parseIpv4Address,
  parseIpv6Address,
  parseMacAddress,
} from "../src/wire/mod.ts";
import { type BenchRow, median, type Reporter } from "./report.ts";

/**
 * Two stacks joined back to back (no sockets layer, no session), A at .2 and
 * B at .3 (fd00::2 and fd00::3); `ipB` is the address A connects to.
 */
interface Pair {
  a: Stack;
  b: Stack;
  linkA: ChannelLink;
  linkB: ChannelLink;
  ipA: number;
  ipB: IpAddress;
}

/**
 * Hands every frame `from` emitted to `to`, with what the link says of it: a
 * checksum left partial arrives vouched for, as over Linux's veth or loopback.
 * Frames are borrowed: once `to` returns, a large frame's buffer goes back to
 * the pool it came from, as a session's tunnel gives it back once written.
 * Returns the number of frames.
 */
function deliver(from: ChannelLink, to: Stack, now: number): number {
  const { frames, offload } = from.drainWithOffload();
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i];
    const o = offload === undefined ? 0 : offload[i];
    to.input(f, now, o === 0 ? 0 : (o & ~FrameOffload.CSUM_PARTIAL) | FrameOffload.CSUM_VALID);
    recycleLargeBuffer(f);
  }
  return frames.length;
}

function makePair(mtu: number, maxConnections = 64, offload = false, ipv6 = false): Pair {
  const linkA = new ChannelLink(1 << 16);
  const linkB = new ChannelLink(1 << 16);
  const ipA = parseIpv4Address("10.0.2.2");
  const ipB = parseIpv4Address("10.0.2.3");
  const macA = parseMacAddress("02:00:00:00:00:0a");
  const macB = parseMacAddress("02:00:00:00:00:0b");
  const tcp = { sendBufferBytes: 4 << 20, recvBufferBytes: 4 << 20 };
  const tcpLimits = { maxConnections };
  const quota = () => createSessionQuota({ maxBufferedBytes: 1 << 30, maxSockets: 1 << 20 });
  const prefix = parseIpv6Address("fd00::");
  const a = new Stack(
    {
      mac: macA,
      ipv4: { address: ipA, prefixLength: 24 },
      mtu,
      tcp,
      tcpLimits,
      ipv6: { prefix, address: parseIpv6Address("fd00::2") },
    },
    {
      link: linkA,
      quota: quota(),
    },
  );
  const b = new Stack(
    {
      mac: macB,
      ipv4: { address: ipB, prefixLength: 24 },
      mtu,
      tcp,
      tcpLimits,
      ipv6: { prefix, address: parseIpv6Address("fd00::3") },
    },
    {
      link: linkB,
      quota: quota(),
    },
  );
  a.arp.update(ipB, macB, 0);
  b.arp.update(ipA, macA, 0);
  if (offload) {
    a.setLinkOffload(LinkOffload.TSO | LinkOffload.CSUM);
    b.setLinkOffload(LinkOffload.TSO | LinkOffload.CSUM);
  }
  // Over IPv6, neighbour discovery resolves the two on the first segment (the loops deliver it).
  return { a, b, linkA, linkB, ipA, ipB: ipv6 ? parseIpv6Address("fd00::3") : ipB };
}

/** Moves frames both ways until neither stack has more to send. */
function settle(p: Pair, now: number): void {
  for (;;) {
    if (p.linkA.length === 0 && p.linkB.length === 0) return;
    deliver(p.linkA, p.b, now);
    deliver(p.linkB, p.a, now);
  }
}

/** Opens `n` established, idle connections from A to B's port 5002 (both ends kept). */
function openIdle(p: Pair, n: number): TcpConnection[] {
  const listener = p.b.tcp.listen(5002, 1024);
  const kept: TcpConnection[] = [];
  for (let i = 0; i < n; i += 512) {
    const now = performance.now();
    for (let j = i; j < Math.min(n, i + 512); j++) kept.push(p.a.tcp.connect(p.ipB, 5002, now));
    settle(p, now);
    for (let c = listener.accept(); c; c = listener.accept()) kept.push(c);
  }
  const established = kept.filter((c) => c.state === "ESTABLISHED").length;
  if (established !== 2 * n) throw new Error(`only ${established} of ${2 * n} ends established`);
  return kept;
}

/** Moves a bulk transfer from A to B; returns Gbit/s, segments/s and CPU s/GB. */
function bulk(p: Pair, bytes: number): { gbps: number; segs: number; cpuPerGb: number } {
  const { a, b, linkA, linkB } = p;
  let now = performance.now();
  const listener = b.tcp.listen(5001, 16);
  const client = a.tcp.connect(p.ipB, 5001, now);
  const chunk = new Uint8Array(256 * 1024);
  let sent = 0;
  let received = 0;
  let segments = 0;
  let server: ReturnType<typeof listener.accept>;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let guard = 0; received < bytes && guard < 50_000_000; guard++) {
    now = performance.now();
    if (sent < bytes) {
      sent += client.send(chunk.subarray(0, Math.min(chunk.length, bytes - sent)), now);
    }
    segments += deliver(linkA, b, now);
    server ??= listener.accept();
    if (server) {
      for (;;) {
        const d = server.read(1 << 20, now);
        if (!d) break;
        received += d.length;
        recycleLargeBuffer(d); // a large segment's pooled chunk, read whole: counted, given back
      }
    }
    deliver(linkB, a, now);
    // As a session does after every core entry: the next deadline, and the timers due.
    for (const s of [a, b]) {
      const d = s.nextDeadline();
      if (d !== undefined && d <= now) s.poll(now);
    }
  }
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuSecs = (cpu.user + cpu.system) / 1e6;
  b.tcp.closeListener(listener, now);
  return {
    gbps: (bytes * 8) / secs / 1e9,
    segs: segments / secs,
    cpuPerGb: cpuSecs / (bytes / 1e9),
  };
}

/**
 * Moves a bulk transfer between two stacks; returns Gbit/s, segments/s and
 * CPU s/GB. With `warmupBytes`, a first transfer of that many bytes runs
 * unmeasured on the same pair: the garbage of the setup (10,000 handshakes
 * beside `idle`) is collected then, and the transfer measured runs beside
 * established idle connections, not beside the collection of their setup.
 */
export function tcpThroughput(
  mtu: number,
  bytes: number,
  idle = 0,
  offload = false,
  ipv6 = false,
  warmupBytes = 0,
): { gbps: number; segs: number; cpuPerGb: number } {
  const p = makePair(mtu, 2 * idle + 64, offload, ipv6);
  if (idle > 0) openIdle(p, idle);
  if (warmupBytes > 0) bulk(p, warmupBytes);
  return bulk(p, bytes);
}

/**
 * CPU seconds per idle connection per second: for `ms` of wall time, one
 * small message every millisecond on one connection (a session that is not
 * otherwise idle: every message is a core entry in each stack, each followed
 * by the timer bookkeeping a session does), beside `n` established idle
 * connections (both ends in the two stacks) and beside none; the
 * difference in process CPU, per idle connection and second.
 */
export async function idleCpu(n: number, ms: number): Promise<number> {
  const run = async (conns: number): Promise<number> => {
    const p = makePair(1500, 2 * conns + 64);
    if (conns > 0) openIdle(p, conns);
    const listener = p.b.tcp.listen(5003, 4);
    const client = p.a.tcp.connect(p.ipB, 5003, performance.now());
    settle(p, performance.now());
    const server = listener.accept()!;
    const message = new Uint8Array(64);
    const cpu0 = process.cpuUsage();
    const end = performance.now() + ms;
    for (let now = performance.now(); now < end; now = performance.now()) {
      client.send(message, now);
      settle(p, now);
      server.read(1 << 16, now);
      settle(p, now);
      for (const s of [p.a, p.b]) {
        const d = s.nextDeadline();
        if (d !== undefined && d <= now) s.poll(now);
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const cpu = process.cpuUsage(cpu0);
    return (cpu.user + cpu.system) / 1e6;
  };
  const base = await run(0);
  const loaded = await run(n);
  return (loaded - base) / (n * (ms / 1000));
}

/** Nanoseconds per call of an empty section through an opaque function (the lock's baseline). */
export function directCallNs(n: number): number {
  const sections = [() => 1, () => 2];
  let v = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) v += callSection(sections[i & 1]);
  const ns = ((performance.now() - t0) * 1e6) / n;
  if (v < 0) console.log(v); // keeps the loop observable
  return ns;
}

function callSection(f: () => number): number {
  return f();
}

/** Nanoseconds per uncontended `CoreLock.run` of an empty section. */
export function lockRunNs(n: number): number {
  const lock = new CoreLock();
  const sections = [() => 1, () => 2];
  let v = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) v += lock.run(sections[i & 1]);
  const ns = ((performance.now() - t0) * 1e6) / n;
  if (v < 0) console.log(v);
  return ns;
}

/** Runs the core section: TCP between two stacks, checksum, core lock. */
export async function runCoreBenchmarks(r: Reporter): Promise<void> {
  const section = "core";
  // The MTU 65535 rows are compared with the MTU 1500 rows of the same run.
  let base: BenchRow[] | undefined;
  for (const mtu of [1500, 65535]) {
    const runs = [0, 1, 2].map(() => tcpThroughput(mtu, 512 * 1024 * 1024));
    const rows = [
      r.report(
        section,
        `core TCP, two stacks in one process, MTU ${mtu}`,
        median(runs.map((x) => x.gbps)),
        "Gbit/s",
        { note: "median of 3", baseline: base?.[0] },
      ),
      r.report(
        section,
        `  segments per second, MTU ${mtu}`,
        median(runs.map((x) => x.segs)),
        "seg/s",
        { baseline: base?.[1] },
      ),
      r.report(
        section,
        `  CPU seconds per GB, MTU ${mtu}`,
        median(runs.map((x) => x.cpuPerGb)),
        "s/GB",
        { baseline: base?.[2] },
      ),
    ];
    base ??= rows;
  }

  // TCP over IPv6 beside IPv4 (issue 17: at least 0.95x): 40-byte headers, MSS = MTU - 60.
  for (const mtu of [1500, 65535]) {
    const v4 = [0, 1, 2].map(() => tcpThroughput(mtu, 512 * 1024 * 1024));
    const v6 = [0, 1, 2].map(() => tcpThroughput(mtu, 512 * 1024 * 1024, 0, false, true));
    const v4Row = r.report(
      section,
      `core TCP over IPv4, MTU ${mtu} (beside the IPv6 row)`,
      median(v4.map((x) => x.gbps)),
      "Gbit/s",
      { note: "median of 3" },
    );
    r.report(
      section,
      `core TCP over IPv6, MTU ${mtu}`,
      median(v6.map((x) => x.gbps)),
      "Gbit/s",
      { note: "median of 3; the ratio is to IPv4 in the row above", baseline: v4Row },
    );
  }

  // The same with segmentation and checksum offload between the stacks, as over Linux's veth.
  for (const mtu of [1500, 65535]) {
    const runs = [0, 1, 2].map(() => tcpThroughput(mtu, 512 * 1024 * 1024, 0, true));
    r.report(
      section,
      `core TCP, MTU ${mtu}, with segmentation and checksum offload between the stacks`,
      median(runs.map((x) => x.gbps)),
      "Gbit/s",
      {
        note: "median of 3; segments of up to 64 KiB, checksums left partial (as over veth)",
        baseline: mtu === 1500 ? base?.[0] : undefined,
      },
    );
  }

  // Timers that scale: the same bulk transfer beside 10,000 idle connections.
  const idle = 10_000;
  const alone: number[] = [];
  const beside: number[] = [];
  for (let i = 0; i < 3; i++) {
    // Both after an unmeasured 64 MiB on the same pair (see tcpThroughput).
    alone.push(tcpThroughput(1500, 256 * 1024 * 1024, 0, false, false, 64 * 1024 * 1024).gbps);
    beside.push(tcpThroughput(1500, 256 * 1024 * 1024, idle, false, false, 64 * 1024 * 1024).gbps);
  }
  const aloneRow = r.report(
    section,
    "core TCP, MTU 1500, 256 MiB, alone",
    median(alone),
    "Gbit/s",
    {
      note: "median of 3",
    },
  );
  r.report(
    section,
    `  the same beside ${idle.toLocaleString("en")} idle connections`,
    median(beside),
    "Gbit/s",
    { baseline: aloneRow, note: "both ends of each in the two stacks" },
  );
  r.report(
    section,
    `  CPU per idle connection per second (${idle.toLocaleString("en")} idle)`,
    (await idleCpu(idle, 3000)) * 1e6,
    "µs/s",
    {
      note: "3 s of a 64-byte message per ms on another connection, against none idle; " +
        "keepalive off (the default)",
    },
  );

  let checksumBase: BenchRow | undefined;
  for (const size of [1500, 65536]) {
    const buf = new Uint8Array(size).map((_, i) => i * 7);
    const iters = Math.floor(2e9 / size / 4);
    const t0 = performance.now();
    let x = 0;
    for (let i = 0; i < iters; i++) x ^= internetChecksum(buf);
    const secs = (performance.now() - t0) / 1000;
    const row = r.report(
      section,
      `internet checksum, ${size}-byte buffer`,
      (iters * size) / secs / 1e9,
      "GB/s",
      { note: `xor ${x}`, baseline: checksumBase },
    );
    checksumBase ??= row;
  }

  const n = 5_000_000;
  const direct = r.report(
    section,
    "the same empty section called directly (no lock)",
    directCallNs(n),
    "ns",
  );
  r.report(section, "core lock, uncontended run() of an empty section", lockRunNs(n), "ns", {
    note: `${n} runs; two clock reads for the hold-time statistics`,
    baseline: direct,
  });
}
