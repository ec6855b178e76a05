/**
 * End to end: busybox `udhcpc` on a TAP device with no address gets its
 * configuration from the session's DHCP server through the WebSocket tunnel:
 * 10.0.2.15/24 with the stack (10.0.2.2) as router and DNS server, the link
 * MTU and a 24 h lease; the session view lists the bound lease, and the guest
 * then reaches the stack at its new address.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { commandExists, DENO, e2eSkipReason, Netns, type Proc, tunnelCliArgs } from "./harness.ts";

const skip = e2eSkipReason() ??
  (commandExists("busybox") ? undefined : "needs busybox (udhcpc); apt-get install busybox");

describe("e2e: a Linux DHCP client (busybox udhcpc) through a TAP tunnel", { skip }, () => {
  let ns: Netns;
  const procs: Proc[] = [];
  let session = { id: "", token: "" };

  before(async () => {
    ns = new Netns("dhcp");
    const server = ns.spawn(DENO, ["run", "-A", "tests/e2e/fixtures/stack_server.ts"], {
      PORT: "8787",
    });
    procs.push(server);
    const [, id, token] = await server.waitFor(/SESSION (\S+) (\S+)/);
    session = { id, token };
    const tunnel = ns.spawn(DENO, tunnelCliArgs({ id: id, token: token }));
    procs.push(tunnel);
    await tunnel.waitFor(/tunnel open/);
    ns.exec("ip", ["link", "set", "tap0", "up"]);
  });

  after(async () => {
    for (const p of procs.reverse()) await p.stop();
    ns?.delete();
  });

  it("obtains 10.0.2.15/24 with router and DNS 10.0.2.2, then pings the stack", () => {
    const out = ns.exec("busybox", [
      "udhcpc",
      "-f",
      "-q",
      "-n",
      "-i",
      "tap0",
      "-t",
      "5",
      "-T",
      "2",
      "-x",
      "hostname:guest",
      "-s",
      "tests/e2e/fixtures/udhcpc_script.sh",
    ], { timeoutMs: 30_000 });
    const m = /LEASE bound (.*)/.exec(out);
    assert.ok(m, `udhcpc output:\n${out}`);
    const fields = Object.fromEntries(m[1].split(" ").map((kv) => kv.split("=")));
    assert.deepEqual(fields, {
      ip: "10.0.2.15",
      mask: "24",
      router: "10.0.2.2",
      dns: "10.0.2.2",
      mtu: "1500",
      lease: "86400",
      serverid: "10.0.2.2",
    });
    assert.match(ns.exec("ip", ["-4", "addr", "show", "dev", "tap0"]), /inet 10\.0\.2\.15\/24 /);
    assert.match(ns.exec("ip", ["route", "show", "default"]), /default via 10\.0\.2\.2 dev tap0/);
    ns.exec("ping", ["-c", "1", "-W", "5", "10.0.2.2"]);
    const view = JSON.parse(
      ns.exec("curl", [
        "-sf",
        "-H",
        `authorization: Bearer ${session.token}`,
        `http://127.0.0.1:8787/v1/sessions/${session.id}`,
      ]),
    );
    assert.equal(view.dhcp.leases.length, 1);
    assert.equal(view.dhcp.leases[0].address, "10.0.2.15");
    assert.equal(view.dhcp.leases[0].state, "bound");
    assert.equal(view.dhcp.leases[0].hostname, "guest");
  });
});
