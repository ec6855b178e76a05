/**
 * End to end: hostile traffic from the Linux side of the tunnel.
 *
 * - A SYN flood from hping3 while a transfer runs: SYNs from random source
 *   addresses are dropped before TCP (off-link or martian sources, RFC 3704 /
 *   RFC 1812 §5.3.7); SYNs from a spoofed on-link address fill the SYN queue.
 *   The transfer finishes byte-exact, new connections still open (through SYN
 *   cookies once the SYN queue is full, RFC 4987 §3.6), and the stack's
 *   connection tables and the server's heap stay bounded.
 * - nmap SYN, FIN, NULL, Xmas and UDP scans get the answers RFC 9293 §3.10.7.1
 *   and RFC 1122 §3.2.2.1 prescribe: SYN-ACK from a listening port, RST from a
 *   closed one, silence from a listening port for a segment without SYN, ACK
 *   or RST, ICMP port unreachable from a closed UDP port; nothing crashes.
 *
 * Each test prints what it sent and what survived.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { commandExists, e2eSkipReason, type Proc } from "./harness.ts";
import { MiB, rate, sha256File, Testbed } from "./testbed.ts";

const skip = e2eSkipReason() ??
  (commandExists("hping3") && commandExists("nmap")
    ? undefined
    : "needs hping3 and nmap (apt-get install hping3 nmap)");

/** TCP ports the fixture server listens on (tests/e2e/fixtures/stack_server.ts). */
const OPEN_TCP = [7, 8080, 9000, 9001];

interface Info {
  active: number;
  timeWait: number;
  listeners: number;
  synQueued: number;
  synCookiesSent: number;
  synCookiesAccepted: number;
  rstsSent: number;
  drops: Record<string, number>;
  heapUsed: number;
  rss: number;
}

describe("e2e: hostile peers (hping3 SYN flood, nmap scans) against the stack", { skip }, () => {
  const bed = new Testbed();
  const input = `${tmpdir()}/netisle-e2e-flood-${process.pid}.bin`;
  const BYTES = 32 * MiB;
  let inputSha = "";

  async function info(): Promise<Info> {
    const mark = bed.server.mark();
    bed.server.send("info");
    return JSON.parse((await bed.server.waitFor(/INFO (.*)/, 10_000, mark))[1]);
  }

  before(async () => {
    await bed.start("hostile");
    bed.peer.exec("sh", ["-c", `head -c ${BYTES} /dev/urandom > ${input}`], { timeoutMs: 60_000 });
    inputSha = await sha256File(input);
  });
  after(async () => {
    await bed.stop();
    rmSync(input, { force: true });
  });

  it("a transfer finishes and new connections open during a SYN flood; memory stays bounded", async () => {
    const before = await info();
    // 5,000 SYNs from random source addresses: dropped before TCP, no state.
    // hping3 exits 1 when nothing answers, which is the point here.
    bed.peer.exec(
      "sh",
      ["-c", "hping3 -q -S -p 8080 -i u100 -c 5000 --rand-source 10.0.2.2; true"],
      {
        timeoutMs: 60_000,
      },
    );
    const randomFlood = await info();
    const offLink = (i: Info) =>
      (i.drops.ipv4_off_link_source ?? 0) + (i.drops.ipv4_martian_source ?? 0);
    console.log(
      `random-source SYNs dropped before TCP: ${offLink(randomFlood) - offLink(before)} of 5000; ` +
        `SYN queue ${before.synQueued} → ${randomFlood.synQueued}`,
    );
    assert.ok(offLink(randomFlood) - offLink(before) >= 4500, "random sources dropped before TCP");
    // 10,000 SYNs per second from a spoofed on-link address nobody answers for (hping3
    // increments the source port), to the HTTP listener.
    const flood: Proc = bed.peer.spawn("hping3", [
      "-S",
      "-p",
      "8080",
      "-i",
      "u100",
      "-a",
      "10.0.2.99",
      "10.0.2.2",
    ]);
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const during = await info();
      const r = bed.inbound(input, 300_000);
      console.log(`inbound during the flood: ${rate(r.bytes, r.ms)}`);
      assert.equal(r.bytes, BYTES);
      assert.equal(r.sha, inputSha);
      // New connections to the flooded listener still complete.
      let fetched = 0;
      for (let i = 0; i < 10; i++) {
        const body = bed.peer.exec("curl", ["-s", "-m", "10", "http://10.0.2.2:8080/"]);
        if (body === "hello from netisle\n") fetched++;
      }
      const after = await info();
      console.log(
        `SYN flood: SYN queue ${during.synQueued} → ${after.synQueued}; cookies sent ${
          after.synCookiesSent - before.synCookiesSent
        }, accepted ${
          after.synCookiesAccepted - before.synCookiesAccepted
        }; active pcbs ${after.active}; ` +
          `heap ${(before.heapUsed / MiB).toFixed(1)} → ${
            (after.heapUsed / MiB).toFixed(1)
          } MiB; ` +
          `curl during the flood: ${fetched}/10`,
      );
      assert.equal(fetched, 10, "every new connection opened during the flood");
      assert.ok(
        after.synCookiesSent > before.synCookiesSent,
        "the full SYN queue fell back to cookies",
      );
      assert.ok(after.synQueued <= 128 * OPEN_TCP.length, `SYN queues bounded: ${after.synQueued}`);
      // Half-open connections answered with a cookie hold no state.
      assert.ok(after.active < 1000, `active pcbs bounded: ${after.active}`);
      assert.ok(
        after.heapUsed - before.heapUsed < 128 * MiB,
        `heap grew by ${((after.heapUsed - before.heapUsed) / MiB).toFixed(1)} MiB`,
      );
    } finally {
      await flood.stop();
    }
  });

  /** Runs nmap in the peer namespace and returns port → state from its greppable output. */
  function nmap(args: string[]): Map<string, string> {
    const out = bed.peer.exec(
      "nmap",
      ["-n", "-Pn", "--max-retries", "3", "-T4", "-oG", "-", ...args, "10.0.2.2"],
      { timeoutMs: 300_000 },
    );
    const ports = new Map<string, string>();
    const line = /Ports: (.*?)(\t|$)/m.exec(out)?.[1] ?? "";
    for (const entry of line.split(",")) {
      const [port, state, proto] = entry.trim().split("/");
      if (port) ports.set(`${port}/${proto}`, state);
    }
    // Ports nmap folds into "Ignored State: closed (N)".
    const ignored = /Ignored State: (\S+) \((\d+)\)/.exec(out);
    if (ignored) ports.set("ignored", `${ignored[1]} ${ignored[2]}`);
    console.log(`nmap ${args.join(" ")}: ${JSON.stringify(Object.fromEntries(ports))}`);
    return ports;
  }

  const scanPorts = "1-1100,8080,9000,9001";
  const scanned = 1100 + 3;

  it("a SYN scan finds exactly the listening ports open and every other port closed", () => {
    const ports = nmap(["-sS", "-p", scanPorts]);
    const open = [...ports].filter(([, s]) => s === "open").map(([p]) => p).sort();
    assert.deepEqual(open, OPEN_TCP.map((p) => `${p}/tcp`).sort());
    // Everything else answered with a RST (closed), none was silent (filtered).
    assert.equal(ports.get("ignored"), `closed ${scanned - OPEN_TCP.length}`);
  });

  for (const [flag, name] of [["-sF", "FIN"], ["-sN", "NULL"], ["-sX", "Xmas"]]) {
    it(`a ${name} scan gets RSTs from closed ports and silence from listening ones`, () => {
      const ports = nmap([flag, "-p", scanPorts]);
      const openFiltered = [...ports].filter(([, s]) => s === "open|filtered").map(([p]) => p)
        .sort();
      assert.deepEqual(openFiltered, OPEN_TCP.map((p) => `${p}/tcp`).sort());
      assert.equal(ports.get("ignored"), `closed ${scanned - OPEN_TCP.length}`);
    });
  }

  it("a UDP scan finds the echo and DNS services and gets port unreachable elsewhere", () => {
    const ports = nmap(["-sU", "-p", "7,9,53,67,68,123,161,1000-1010"]);
    assert.equal(ports.get("7/udp"), "open", "UDP echo answers");
    assert.equal(ports.get("53/udp"), "open", "the DNS responder answers");
    for (const p of ["9", "68", "123", "161", "1000", "1005", "1010"]) {
      const state = ports.get(`${p}/udp`) ?? ports.get("ignored")?.split(" ")[0];
      assert.equal(state, "closed", `UDP port ${p}: ICMP port unreachable expected`);
    }
  });

  it("after the flood and the scans the stack still answers and the server is alive", async () => {
    bed.peer.exec("ping", ["-c", "3", "-i", "0.2", "-W", "5", "10.0.2.2"]);
    const body = bed.peer.exec("curl", ["-s", "-m", "10", "http://10.0.2.2:8080/"]);
    assert.equal(body, "hello from netisle\n");
    const i = await info();
    console.log(`after everything: ${JSON.stringify(i)}`);
  });
});
