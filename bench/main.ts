/**
 * `deno task bench`: figures, not assertions. Writes bench/results.json too.
 *
 * 1. Core TCP throughput: two stacks joined back to back in one process (no
 *    tunnel, no sockets layer), one bulk connection, MTU 1500 and 65535.
 * 2. Internet checksum throughput (1500-byte and 64 KiB buffers).
 * 3. The core lock: cost of an uncontended run() around an empty section.
 *
 * Baselines that need another system (Linux over veth, slirp4netns, other
 * runtimes) belong to issue 7 and are not measured here yet.
 *
 * @module
 */

import process from "node:process";
import { writeFileSync } from "node:fs";
import { ChannelLink, Stack } from "../src/stack/mod.ts";
import { CoreLock } from "../src/session/mod.ts";
import { internetChecksum, parseIpv4Address, parseMacAddress } from "../src/wire/mod.ts";

interface Row {
  name: string;
  value: number;
  unit: string;
  note?: string;
}
const rows: Row[] = [];
function report(name: string, value: number, unit: string, note?: string): void {
  rows.push({ name, value, unit, note });
  console.log(
    `${name.padEnd(52)} ${value.toFixed(2).padStart(12)} ${unit}${note ? `  (${note})` : ""}`,
  );
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Moves a bulk transfer between two stacks; returns Gbit/s, segments/s and CPU s/GB. */
function tcpThroughput(
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

console.log("netisle bench (figures on a shared, noisy machine: compare medians and ratios)\n");

for (const mtu of [1500, 65535]) {
  const runs = [0, 1, 2].map(() => tcpThroughput(mtu, 512 * 1024 * 1024));
  report(
    `core TCP, two stacks in one process, MTU ${mtu}`,
    median(runs.map((r) => r.gbps)),
    "Gbit/s",
    "median of 3",
  );
  report(`  segments per second, MTU ${mtu}`, median(runs.map((r) => r.segs)), "seg/s");
  report(`  CPU seconds per GB, MTU ${mtu}`, median(runs.map((r) => r.cpuPerGb)), "s/GB");
}

for (const size of [1500, 65536]) {
  const buf = new Uint8Array(size).map((_, i) => i * 7);
  const iters = Math.floor(2e9 / size / 4);
  const t0 = performance.now();
  let x = 0;
  for (let i = 0; i < iters; i++) x ^= internetChecksum(buf);
  const secs = (performance.now() - t0) / 1000;
  report(`internet checksum, ${size}-byte buffer`, (iters * size) / secs / 1e9, "GB/s", `xor ${x}`);
}

{
  const lock = new CoreLock();
  const n = 5_000_000;
  let v = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) v += lock.run(() => 1);
  const ns = ((performance.now() - t0) * 1e6) / n;
  report("core lock, uncontended run() of an empty section", ns, "ns", `${v} runs`);
}

writeFileSync(
  new URL("./results.json", import.meta.url),
  JSON.stringify({ date: new Date().toISOString(), rows }, null, 2),
);
console.log("\nwrote bench/results.json");
