/**
 * Issue 11, findings 1 and 4, end to end (root: each server runs in its own
 * network namespace so that tens of thousands of connections and their
 * addresses stay inside it): the README's servers survive file-descriptor
 * exhaustion and recover once it passes, and WebSocket messages are bounded
 * before they are buffered, measured as the server's RSS (/proc/PID/status).
 *
 * For each server (Deno `examples/deno/server.ts`, the same with
 * `NETISLE_ISOLATION=worker`, and Bun `examples/bun/server.ts`): a probe
 * creates a session and attaches its tunnel; an attacker (python, its own fd
 * limit raised) opens 1,100 idle connections under a 1024-fd server limit,
 * then 20,000 with the default limit, with the per-address cap off so that
 * the server really runs out of descriptors; after each attack is released
 * the probe's check (healthz, an ARP answer through the same tunnel, a socket
 * created over the API) must pass again, waiting for it, never sleeping.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { BUN, DENO, e2eSkipReason, Netns, type Proc } from "./harness.ts";

const skip = e2eSkipReason();
const PORT = 8787;
const BASE = `http://127.0.0.1:${PORT}`;

interface Bed {
  ns: Netns;
  server: Proc;
  probe: Proc;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : 0;
}

async function command(p: Proc, line: string, reply: RegExp, timeoutMs = 60_000) {
  const mark = p.mark();
  p.child.stdin!.write(line + "\n");
  return await p.waitFor(reply, timeoutMs, mark);
}

/** Repeats the probe's check until it passes (the server recovers) or 60 s pass. */
async function checkRecovers(probe: Proc, what: string): Promise<number> {
  const t0 = Date.now();
  let last = "";
  for (let i = 0; i < 120; i++) {
    const m = await command(probe, "check", /CHECK (ok|fail.*)/);
    if (m[1] === "ok") return Date.now() - t0;
    last = m[1];
    if (Date.now() - t0 > 60_000) break;
  }
  assert.fail(`${what}: the server did not recover within 60 s (last: ${last})`);
}

/** One attacker process holds at most this many (it cannot raise its hard fd limit here). */
const PER_ATTACKER = 10_000;

async function attack(
  bed: Bed,
  n: number,
  label: string,
): Promise<void> {
  const attackers: Proc[] = [];
  for (let left = n; left > 0; left -= PER_ATTACKER) {
    attackers.push(bed.ns.spawn("python3", [
      "tests/e2e/fixtures/idle_attacker.py",
      "127.0.0.1",
      String(PORT),
      String(Math.min(PER_ATTACKER, left)),
      "127.0.0.2",
    ]));
  }
  try {
    let opened = 0;
    let connected = 0;
    for (const a of attackers) {
      const m = await a.waitFor(/OPENED (\d+) CONNECTED (\d+)/, 120_000);
      opened += Number(m[1]);
      connected += Number(m[2]);
    }
    // Let the server meet the connections (accept until EMFILE): its log line shows it ran out.
    const emfile = await bed.server.waitFor(/accept failed \(EMFILE/, 10_000).then(
      () => true,
      () => false,
    );
    for (const a of attackers) a.child.stdin!.write("release\n");
    for (const a of attackers) await a.waitFor(/RELEASED/, 60_000);
    const ms = await checkRecovers(bed.probe, label);
    console.log(
      `${label}: ${opened} idle connections (${connected} handshakes completed); ` +
        `EMFILE logged: ${emfile}; ` +
        `healthz, tunnel and socket API OK ${ms} ms after release`,
    );
  } finally {
    for (const a of attackers) a.child.kill("SIGKILL");
  }
}

async function startBed(
  name: string,
  cmd: string,
  fdLimit: number | undefined,
  env: Record<string, string>,
): Promise<Bed> {
  const ns = new Netns(name);
  const limit = fdLimit ? `ulimit -n ${fdLimit} && ` : "";
  const server = ns.spawn("sh", ["-c", `${limit}exec ${cmd}`], {
    PORT: String(PORT),
    NETISLE_LOG: "0",
    NETISLE_HEADERS_TIMEOUT_MS: "3000",
    NETISLE_MAX_CONNECTIONS_PER_IP: "0",
    NETISLE_MAX_CONNECTIONS: "100000",
    NETISLE_SESSIONS_PER_MINUTE: "0",
    ...env,
  });
  await server.waitFor(/netisle listening on/, 60_000);
  const probe = ns.spawn(DENO, ["run", "-A", "tests/e2e/fixtures/exhaustion_probe.ts", BASE]);
  await probe.waitFor(/PROBE READY/, 60_000);
  const m = await command(probe, "setup", /SETUP (\S+)|SETUP fail (.*)/);
  assert.ok(m[1], `setup failed: ${m[2]}`);
  const ok = await command(probe, "check", /CHECK (ok|fail.*)/);
  assert.equal(ok[1], "ok");
  return { ns, server, probe };
}

async function stopBed(bed: Bed | undefined): Promise<void> {
  if (!bed) return;
  for (const p of [bed.probe, bed.server]) p.child.kill("SIGKILL");
  await new Promise((r) => setTimeout(r, 100));
  bed.ns.delete();
}

const SERVERS: [string, string, Record<string, string>][] = [
  ["deno", `${DENO} run --allow-net --allow-env --allow-read examples/deno/server.ts`, {}],
  ["deno-worker", `${DENO} run --allow-net --allow-env --allow-read examples/deno/server.ts`, {
    NETISLE_ISOLATION: "worker",
  }],
  ["bun", `${BUN} run examples/bun/server.ts`, {}],
];

describe("resource exhaustion (issue 11)", { skip }, () => {
  for (const [label, cmd, env] of SERVERS) {
    it(`${label}: survives 1,100 idle connections under a 1024-fd limit and 20,000 with the default`, async () => {
      let bed: Bed | undefined;
      try {
        bed = await startBed(`exh-${label}`, cmd, 1024, env);
        await attack(bed, 1100, `${label}, 1024 fds`);
      } finally {
        await stopBed(bed);
      }
      bed = undefined;
      try {
        bed = await startBed(`exh-${label}`, cmd, undefined, env);
        await attack(bed, 20_000, `${label}, default fd limit`);
      } finally {
        await stopBed(bed);
      }
    });
  }

  describe("WebSocket messages are bounded before they are buffered (Deno server RSS)", () => {
    let bed: Bed | undefined;
    before(async () => {
      bed = await startBed("exh-rss", SERVERS[0][1], undefined, {});
    });
    after(async () => await stopBed(bed));

    const BOUND_MIB = 24;
    it(`a never-ending fragmented message on a tunnel: growth under ${BOUND_MIB} MiB, closed 1009`, async () => {
      const pid = bed!.server.child.pid!;
      const before = rssKiB(pid);
      const m = await command(bed!.probe, "frag 500", /FRAG (\d+) (\S+)|FRAG fail (.*)/, 120_000);
      const growth = (rssKiB(pid) - before) / 1024;
      console.log(
        `fragmented message: sent ${(Number(m[1]) / 2 ** 20).toFixed(1)} MiB, close ${m[2]}, ` +
          `server RSS growth ${growth.toFixed(1)} MiB`,
      );
      assert.equal(m[2], "1009");
      assert.ok(growth < BOUND_MIB, `RSS grew ${growth.toFixed(1)} MiB`);
    });

    it(`a single 60 MiB message: growth under ${BOUND_MIB} MiB, closed 1009 from its header`, async () => {
      const pid = bed!.server.child.pid!;
      const before = rssKiB(pid);
      const m = await command(bed!.probe, "big 60", /BIG (\d+) (\S+)|BIG fail (.*)/, 120_000);
      const growth = (rssKiB(pid) - before) / 1024;
      console.log(
        `60 MiB message: sent ${(Number(m[1]) / 2 ** 20).toFixed(1)} MiB before the close, ` +
          `close ${m[2]}, server RSS growth ${growth.toFixed(1)} MiB`,
      );
      assert.equal(m[2], "1009");
      assert.ok(growth < BOUND_MIB, `RSS grew ${growth.toFixed(1)} MiB`);
    });

    it("300 slow 1 MiB bodies: the body budget holds the growth under 160 MiB (476 without); 408 or 429, all closed", async () => {
      const pid = bed!.server.child.pid!;
      const before = rssKiB(pid);
      await command(bed!.probe, "slow 300", /SLOW SENT (\d+)/, 120_000);
      // Sample the RSS until the answers are in (the peak is while the bodies are held).
      let peak = 0;
      const mark = bed!.probe.mark();
      let done: RegExpMatchArray | undefined;
      const waiting = bed!.probe.waitFor(/SLOW DONE (\d+) (\d+) (\d+)/, 120_000, mark).then((
        m,
      ) => done = m);
      while (!done) {
        peak = Math.max(peak, (rssKiB(pid) - before) / 1024);
        await Promise.race([waiting, new Promise((r) => setTimeout(r, 200))]);
      }
      const m = done;
      const after = (rssKiB(pid) - before) / 1024;
      console.log(
        `300 slow 1 MiB bodies from one address (body budget 64 MiB, 16 MiB per address): ` +
          `server RSS peak growth ${peak.toFixed(1)} MiB, ${after.toFixed(1)} MiB after; ` +
          `${m[1]} held until their 408, ${m[2]} refused at once with 429 ENOBUFS, ` +
          `${m[3]} closed by the server`,
      );
      assert.ok(peak < 160, `RSS grew ${peak.toFixed(1)} MiB`);
      assert.equal(Number(m[1]) + Number(m[2]), 300, "each got 408 or 429");
      assert.ok(Number(m[1]) >= 1 && Number(m[1]) <= 16, `${m[1]} bodies held`);
      assert.equal(Number(m[3]), 300, "every connection was closed by the server");
    });

    it("the session's tunnel still works after all of them", async () => {
      const ok = await command(bed!.probe, "check", /CHECK (ok|fail.*)/);
      assert.equal(ok[1], "ok");
    });
  });
});
