/**
 * Core benchmarks: no tunnel, no HTTP, one process.
 *
 * 1. Core TCP throughput: two stacks joined back to back (no sockets layer),
 *    one bulk connection, MTU 1500 and 65535.
 * 2. Internet checksum throughput (1500-byte and 64 KiB buffers).
 * 3. The core lock: cost of an uncontended run() around an empty section.
 *
 * @module
 */

import process from "node:process";
import { ChannelLink, Stack } from "../src/stack/mod.ts";
import { CoreLock } from "../src/session/mod.ts";
import { internetChecksum, parseIpv4Address, parseMacAddress } from "../src/wire/mod.ts";
import { type BenchRow, median, type Reporter } from "./report.ts";

/** Moves a bulk transfer between two stacks; returns Gbit/s, segments/s and CPU s/GB. */
export function tcpThroughput(
  mtu: number,
  bytes: number,
): { gbps: number; segs: number; cpuPerGb: number } {
  const linkA = new ChannelLink(1 << 16);
  const linkB = new ChannelLink(1 << 16);
  const ipA = parseIpv4Address("10.0.2.2");
  const ipB = parseIpv4Address("10.0.2.3");
  const macA = parseMacAddress("02:00:00:00:00:0a");
  const macB = parseMacAddress("02:00:00:00:00:0b");
  const tcp = { sendBufferBytes: 4 << 20, recvBufferBytes: 4 << 20 };
  const a = new Stack({ mac: macA, ipv4: { address: ipA, prefixLength: 24 }, mtu, tcp }, {
    link: linkA,
  });
  const b = new Stack({ mac: macB, ipv4: { address: ipB, prefixLength: 24 }, mtu, tcp }, {
    link: linkB,
  });
  a.arp.update(ipB, macB, 0);
  b.arp.update(ipA, macA, 0);
  let now = performance.now();
  const listener = b.tcp.listen(5001, 16);
  const client = a.tcp.connect(ipB, 5001, now);
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
    const fa = linkA.drain();
    segments += fa.length;
    for (const f of fa) b.input(f, now);
    server ??= listener.accept();
    if (server) {
      for (;;) {
        const d = server.read(1 << 20, now);
        if (!d) break;
        received += d.length;
      }
    }
    const fb = linkB.drain();
    for (const f of fb) a.input(f, now);
    for (const s of [a, b]) {
      const d = s.nextDeadline();
      if (d !== undefined && d <= now) s.poll(now);
    }
  }
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuSecs = (cpu.user + cpu.system) / 1e6;
  return {
    gbps: (bytes * 8) / secs / 1e9,
    segs: segments / secs,
    cpuPerGb: cpuSecs / (bytes / 1e9),
  };
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
export function runCoreBenchmarks(r: Reporter): void {
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
