/**
 * End to end at the largest MTU: a session with MTU 65520 and its TAP device
 * (the tunnel CLI with TAP offload, the default) move 32 MiB each way between
 * the Linux kernel and the stack, byte-exact. Full-size segments are 65534-byte
 * frames: with the virtio header in front they are the longest reads and
 * writes the TAP port makes (a read buffer one header too short once cut
 * every such frame, and no byte got through).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { DENO, e2eSkipReason, Netns, type Proc, tunnelCliArgs } from "./harness.ts";
import { MiB, rate, sha256File } from "./testbed.ts";

const skip = e2eSkipReason();
const BYTES = 32 * MiB;

describe("e2e: TCP both ways at MTU 65520 through the TAP tunnel", { skip }, () => {
  let ns: Netns;
  let server: Proc;
  const procs: Proc[] = [];
  const input = `${tmpdir()}/netisle-e2e-jumbo-${process.pid}.bin`;

  before(async () => {
    ns = new Netns("jumbo");
    server = ns.spawn(DENO, ["run", "-A", "tests/e2e/fixtures/stack_server.ts"], {
      PORT: "8787",
      NETISLE_MTU: "65520",
    });
    procs.push(server);
    const [, id, token] = await server.waitFor(/SESSION (\S+) (\S+)/);
    const tunnel = ns.spawn(DENO, tunnelCliArgs({ id: id, token: token }));
    procs.push(tunnel);
    await tunnel.waitFor(/tunnel open/);
    ns.exec("ip", ["addr", "add", "10.0.2.15/24", "dev", "tap0"]);
    ns.exec("ip", ["link", "set", "tap0", "up"]);
    assert.match(ns.exec("ip", ["link", "show", "tap0"]), /mtu 65520/);
    ns.exec("ping", ["-c", "1", "-W", "5", "10.0.2.2"]);
    ns.exec("sh", ["-c", `head -c ${BYTES} /dev/urandom > ${input}`], { timeoutMs: 60_000 });
  });
  after(async () => {
    for (const p of procs.reverse()) await p.stop();
    ns?.delete();
    rmSync(input, { force: true });
  });

  it("Linux -> stack: 32 MiB in 65534-byte frames arrive byte-exact", async () => {
    const t0 = performance.now();
    const out = ns.exec("sh", ["-c", `socat -t 60 -T 120 - TCP:10.0.2.2:9000 < ${input}`], {
      timeoutMs: 180_000,
    });
    console.log(`inbound at MTU 65520: ${rate(BYTES, performance.now() - t0)}`);
    assert.equal(out.trim(), `${BYTES} ${await sha256File(input)}`);
  });

  it("stack -> Linux: 32 MiB arrive byte-exact", async () => {
    const receiver = ns.spawn("python3", ["tests/e2e/fixtures/tcp_receiver.py", "5000"]);
    procs.push(receiver);
    await receiver.waitFor(/READY/);
    const mark = server.mark();
    const t0 = performance.now();
    server.send(`send 10.0.2.15 5000 ${BYTES}`);
    const sent = await server.waitFor(/SENT (\d+) ([0-9a-f]{64})/, 180_000, mark);
    const got = await receiver.waitFor(/RECEIVED (\d+) ([0-9a-f]{64})/, 180_000);
    console.log(`outbound at MTU 65520: ${rate(BYTES, performance.now() - t0)}`);
    assert.equal(Number(got[1]), BYTES);
    assert.equal(got[2], sent[2]);
  });
});
