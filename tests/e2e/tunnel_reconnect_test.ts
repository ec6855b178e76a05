/**
 * End to end: the tunnel's WebSocket dies in the middle of TCP transfers
 * between Linux and the stack; the tunnel client reconnects to the same
 * session and both transfers finish byte-exact (sha256), because the session
 * and its TCP connections outlive the WebSocket (DESIGN.md "Tunnel wire
 * formats"). A second testbed runs the CLI on Bun (its TAP port) with
 * `--framing stream` and `--faults disconnect=...`, so the tunnel kills its
 * own WebSocket every second or so and must reconnect with backoff and resume
 * the same session.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { e2eSkipReason } from "./harness.ts";
import { MiB, rate, sha256File, Testbed } from "./testbed.ts";

const skip = e2eSkipReason();
const BYTES = Math.min(Number(process.env.NETISLE_E2E_BYTES ?? 64 * MiB), 64 * MiB);

describe("e2e: TCP transfers survive a dropped tunnel WebSocket", { skip }, () => {
  const bed = new Testbed();
  const input = `${tmpdir()}/netisle-e2e-recon-${process.pid}.bin`;

  before(async () => {
    await bed.start("recon");
    bed.peer.exec("sh", ["-c", `head -c ${BYTES} /dev/urandom > ${input}`], { timeoutMs: 60_000 });
  });
  after(async () => {
    await bed.stop();
    rmSync(input, { force: true });
  });

  async function dropTunnelTwice(): Promise<void> {
    for (let i = 0; i < 2; i++) {
      await new Promise((r) => setTimeout(r, 400));
      const mark = bed.tunnel.mark();
      const serverMark = bed.server.mark();
      bed.server.send("droptunnel");
      await bed.server.waitFor(/DROPPED/, 10_000, serverMark);
      await bed.tunnel.waitFor(/tunnel waiting/, 10_000, mark);
      await bed.tunnel.waitFor(/tunnel open/, 20_000, mark);
    }
  }

  it(`Linux -> stack: ${BYTES / MiB} MiB arrive byte-exact across two reconnects`, async () => {
    const sha = await sha256File(input);
    const sender = bed.peer.spawn("sh", [
      "-c",
      `socat -t 60 -T 120 - TCP:10.0.2.2:9000 < ${input}`,
    ]);
    await dropTunnelTwice();
    const m = await sender.waitFor(/^(\d+) ([0-9a-f]{64})$/m, 300_000);
    assert.equal(Number(m[1]), BYTES);
    assert.equal(m[2], sha);
    console.log("inbound transfer finished byte-exact after two tunnel reconnects");
  });

  it(`stack -> Linux: ${BYTES / MiB} MiB arrive byte-exact across two reconnects`, async () => {
    const receiver = bed.peer.spawn("python3", ["tests/e2e/fixtures/tcp_receiver.py", "5100"]);
    await receiver.waitFor(/READY/);
    const mark = bed.server.mark();
    bed.server.send(`send 10.0.2.15 5100 ${BYTES}`);
    await receiver.waitFor(/NEGOTIATED/);
    await dropTunnelTwice();
    const sent = await bed.server.waitFor(/SENT (\d+) ([0-9a-f]{64}) \d+ (.*)/, 300_000, mark);
    const got = await receiver.waitFor(/RECEIVED (\d+) ([0-9a-f]{64})/, 300_000);
    assert.equal(Number(got[1]), BYTES);
    assert.equal(got[2], sent[2]);
    console.log(`outbound transfer finished byte-exact after two tunnel reconnects; ${sent[3]}`);
  });
});

describe("e2e: --faults disconnect, --framing stream, on Bun: the CLI kills its own WebSocket", {
  skip,
}, () => {
  const bed = new Testbed();
  const input = `${tmpdir()}/netisle-e2e-tunnelproto-${process.pid}.bin`;

  before(async () => {
    await bed.start("tunnelproto-disc", {
      faults: "disconnect=1s,disconnect-jitter=200ms",
      tunnelArgs: ["--framing", "stream", "--keepalive", "2"],
      tunnelRuntime: "bun",
    });
    bed.peer.exec("sh", ["-c", `head -c ${BYTES} /dev/urandom > ${input}`], { timeoutMs: 60_000 });
  });
  after(async () => {
    await bed.stop();
    rmSync(input, { force: true });
  });

  it(`Linux -> stack: ${BYTES / MiB} MiB arrive byte-exact across self-inflicted disconnects`, async () => {
    const sha = await sha256File(input);
    const mark = bed.tunnel.mark();
    const t0 = performance.now();
    const sender = bed.peer.spawn("sh", [
      "-c",
      `socat -t 60 -T 120 - TCP:10.0.2.2:9000 < ${input}`,
    ]);
    const m = await sender.waitFor(/^(\d+) ([0-9a-f]{64})$/m, 300_000);
    const ms = performance.now() - t0;
    assert.equal(Number(m[1]), BYTES);
    assert.equal(m[2], sha);
    const log = bed.tunnel.output.slice(mark);
    const drops = log.match(/tunnel waiting: fault injection: disconnect/g)?.length ?? 0;
    assert.ok(drops >= 1, `no injected disconnect during the transfer:\n${log}`);
    assert.match(log, /tunnel open.*stream framing/);
    console.log(
      `inbound ${rate(BYTES, ms)} byte-exact over qemu-stream framing across ${drops} ` +
        `injected disconnects`,
    );
  });
});
