/**
 * The Wisp server with the real client: `@mercuryworkshop/wisp-js` from npm,
 * on Node (tests/_wisp_client.mjs), against a netisle server whose session's
 * tunnelled side is a second stack at 10.0.2.15 (tests/_sdk_server.ts: TCP
 * echo on 7, chargen on 19, UDP echo on 7). No root needed.
 *
 * - TCP streams move 16 MiB byte-exact through the echo, Wisp v1 and v2;
 * - a UDP stream echoes datagrams, and UDP 53 on the stack answers DNS;
 * - CONNECTs outside the session close with 0x48, a refused port with 0x44,
 *   broadcast and port 0 with 0x41;
 * - 10,000 CONNECTs in one burst: 128 open (the per-connection limit), the
 *   rest 0x49, the server's RSS stays bounded, the session works afterwards;
 * - a client that stops reading stops the TCP sender: the stream's receive
 *   buffer fills and its window closes, the session's memory stays in its
 *   quota; reading again moves the data on;
 * - v2's password extension takes the session's token; a wrong one is refused.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startSdkServer } from "./_sdk_server.ts";
import { Proc } from "./e2e/harness.ts";
import { DEFAULT_TCP_CONFIG } from "../src/stack/mod.ts";

let server: Awaited<ReturnType<typeof startSdkServer>>;

before(async () => {
  server = await startSdkServer();
});
after(async () => {
  await server?.proc.stop();
});

function client(scenario: string, version: 1 | 2 = 2): Proc {
  return new Proc("node", [
    "tests/_wisp_client.mjs",
    server.server,
    server.id,
    server.token,
    scenario,
    String(version),
  ]);
}

// deno-lint-ignore no-explicit-any
type Json = any;

async function result(p: Proc, name: string, timeoutMs = 120_000): Promise<Json> {
  const m = await p.waitFor(new RegExp(`WISP (${name}|error) (.*)`), timeoutMs);
  if (m[1] === "error") throw new Error(`the Wisp client failed: ${m[2]}`);
  return JSON.parse(m[2]);
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : 0;
}

async function api(path: string): Promise<Json> {
  const r = await fetch(`${server.server}/v1/sessions/${server.id}${path}`, {
    headers: { authorization: `Bearer ${server.token}` },
  });
  assert.equal(r.status, 200, path);
  return await r.json();
}

describe("Wisp with @mercuryworkshop/wisp-js (Node) against a session", () => {
  for (const version of [1, 2] as const) {
    it(`v${version}: a TCP stream moves 16 MiB byte-exact through an echo server`, async () => {
      const p = client("echo", version);
      try {
        const r = await result(p, "echo");
        assert.equal(r.version, version);
        assert.equal(r.bytes, 16 * 1024 * 1024);
        assert.equal(r.got, r.sent, "sha256 of what came back equals what was sent");
        console.log(
          `wisp v${version}: 16 MiB echoed in ${r.ms} ms ` +
            `(${
              (16 * 8 * 1.048576 / (r.ms / 1000)).toFixed(0)
            } Mbit/s each way, on a shared machine)`,
        );
      } finally {
        await p.stop();
      }
    });
  }

  it("a UDP stream echoes datagrams; UDP 53 on the stack's address answers DNS", async () => {
    const p = client("udp");
    try {
      const r = await result(p, "udp");
      assert.equal(r.udp, true, "the server announced the UDP extension");
      assert.deepEqual(r.replies, Array.from({ length: 20 }, (_, i) => `datagram ${i}`));
      assert.deepEqual(r.dnsAnswer, [10, 0, 2, 2], "netisle.internal is the stack's address");
    } finally {
      await p.stop();
    }
  });

  it("refuses destinations outside the session (0x48), refused ports (0x44), invalid ones (0x41)", async () => {
    const p = client("reasons");
    try {
      const r = await result(p, "reasons");
      assert.deepEqual(r, {
        outside: 0x48,
        outsideUdp: 0x48,
        name: 0x48,
        loopback: 0x48,
        refused: 0x44,
        broadcast: 0x41,
        port0: 0x41,
      });
    } finally {
      await p.stop();
    }
  });

  it("10,000 CONNECTs in a burst: 128 open, the rest throttled (0x49), memory bounded, the session still works", async () => {
    const pid = server.proc.child.pid!;
    const rssBefore = rssKiB(pid);
    let rssPeak = rssBefore;
    const sampler = setInterval(() => rssPeak = Math.max(rssPeak, rssKiB(pid)), 20);
    const p = client("burst");
    try {
      const r = await result(p, "burst");
      assert.equal(r.sent, 10_000);
      assert.equal(r.open, 128, "the per-connection stream limit");
      assert.equal(r.reasons[String(0x49)], 10_000 - 128, JSON.stringify(r.reasons));
      const echo = await result(p, "burst-echo");
      assert.equal(echo.back, "still here");
      const again = await result(p, "after-burst");
      assert.equal(again.got, again.sent);
      const view = await api("");
      assert.ok(view.quota.memory.peak <= view.quota.memory.limit, JSON.stringify(view.quota));
      console.log(
        `wisp burst: 10,000 CONNECTs answered in ${r.ms} ms; server RSS ${
          (rssBefore / 1024).toFixed(0)
        } MiB before, peak ${(rssPeak / 1024).toFixed(0)} MiB (+${
          ((rssPeak - rssBefore) / 1024).toFixed(1)
        } MiB); session memory peak ${(view.quota.memory.peak / 1048576).toFixed(1)} MiB of ${
          view.quota.memory.limit / 1048576
        }`,
      );
      assert.ok(rssPeak - rssBefore < 96 * 1024, `RSS grew by ${rssPeak - rssBefore} KiB`);
    } finally {
      clearInterval(sampler);
      await p.stop();
    }
  });

  it("a client that stops reading stops the TCP sender; reading again moves the data on", async () => {
    const p = client("flow");
    try {
      await result(p, "paused");
      // Wait for the condition: the chargen stream's receive buffer full, its window closed
      // (the buffer may have grown by autotuning before the client stopped reading).
      let row: Json;
      let details: Json;
      for (let i = 0;; i++) {
        const list = await api("/sockets");
        row = list.sockets.find((s: Json) => s.remote?.port === 19 && s.state === "connected");
        details = row && await api(`/sockets/${row.id}`);
        if (details && details.tcp.recvQueued >= 400 * 1024 && details.tcp.recvWindow < 64 * 1024) {
          break;
        }
        assert.ok(i < 600, `the window never closed: ${JSON.stringify(details?.tcp ?? row)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const view = await api("");
      // What the server holds for the stalled client: its WebSocket budget (1 MiB), the
      // stream's TCP receive buffer and the chargen's send buffer (each autotuned up to its
      // maximum), in page-granular storage; not the chargen's endless output, which would fill
      // the 32 MiB quota. Twice that sum: streams of the burst test before may still be draining.
      const bound = 2 * (1048576 + DEFAULT_TCP_CONFIG.recvBufferMaxBytes +
        DEFAULT_TCP_CONFIG.sendBufferMaxBytes);
      assert.ok(view.quota.memory.used < bound, JSON.stringify(view.quota.memory));
      const again = details.tcp;
      console.log(
        `wisp flow control: the client stopped reading; the stream's TCP receive queue ${again.recvQueued} B, window ${again.recvWindow} B; session memory ${
          (view.quota.memory.used / 1048576).toFixed(2)
        } MiB of ${view.quota.memory.limit / 1048576}`,
      );
      p.send("resume");
      const r = await result(p, "resumed");
      assert.equal(r.paused, false);
    } finally {
      await p.stop();
    }
  });

  it("v2's password extension takes the session's token; a wrong password is refused", async () => {
    const p = client("password");
    try {
      const r = await result(p, "password");
      assert.equal(r.got, r.sent);
      assert.equal(r.version, 2);
      const bad = await result(p, "bad-password");
      assert.equal(bad.opened, false);
    } finally {
      await p.stop();
    }
  });
});
