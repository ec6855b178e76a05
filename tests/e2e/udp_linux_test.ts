/**
 * End to end: UDP between the Linux kernel and netisle's stack through a TAP
 * device and the WebSocket tunnel, in a fresh network namespace.
 *
 * - socat sends datagrams to the stack's UDP echo service (port 7) over a
 *   connected socket (`UDP:`) and an unconnected one (`UDP-SENDTO:`) and gets
 *   them back; 200 datagrams of random sizes up to 1472 bytes come back
 *   byte-exact.
 * - A datagram to a closed port makes the stack answer with ICMP port
 *   unreachable (RFC 1122 §4.1.3.1): a connected Linux socket then fails
 *   with ECONNREFUSED, and the kernel counts the ICMP message.
 * - A datagram to the subnet broadcast reaches the echo service; one to a
 *   closed port at the broadcast address draws no ICMP (RFC 1122 §3.2.2).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { DENO, e2eSkipReason, Netns, type Proc, tunnelCliArgs } from "./harness.ts";

const skip = e2eSkipReason();

/** Kernel SNMP counters of the namespace (e.g. IcmpInDestUnreachs). */
function nstat(ns: Netns, name: string): number {
  const out = ns.exec("nstat", ["-az", name]);
  return Number(new RegExp(`${name}\\s+(\\d+)`).exec(out)?.[1] ?? 0);
}

describe("e2e: UDP against the Linux kernel through a TAP tunnel", { skip }, () => {
  let ns: Netns;
  const procs: Proc[] = [];
  let session = { id: "", token: "" };

  before(async () => {
    ns = new Netns("udp");
    const server = ns.spawn(DENO, ["run", "-A", "tests/e2e/fixtures/stack_server.ts"], {
      PORT: "8787",
    });
    procs.push(server);
    const [, id, token] = await server.waitFor(/SESSION (\S+) (\S+)/);
    session = { id, token };
    const tunnel = ns.spawn(DENO, tunnelCliArgs({ id: id, token: token }));
    procs.push(tunnel);
    await tunnel.waitFor(/tunnel open/);
    ns.exec("ip", ["addr", "add", "10.0.2.15/24", "dev", "tap0"]);
    ns.exec("ip", ["link", "set", "tap0", "up"]);
    ns.exec("ping", ["-c", "1", "-W", "5", "10.0.2.2"]);
  });

  after(async () => {
    for (const p of procs.reverse()) await p.stop();
    ns?.delete();
  });

  it("socat over a connected UDP socket gets its datagram echoed", () => {
    const out = ns.exec("sh", ["-c", "echo hello-connected | socat -t 2 - UDP:10.0.2.2:7"], {
      timeoutMs: 10_000,
    });
    assert.equal(out, "hello-connected\n");
  });

  it("socat over an unconnected UDP socket (sendto) gets its datagram echoed", () => {
    const out = ns.exec(
      "sh",
      ["-c", "echo hello-sendto | socat -t 2 - UDP-SENDTO:10.0.2.2:7"],
      { timeoutMs: 10_000 },
    );
    assert.equal(out, "hello-sendto\n");
  });

  it("200 datagrams of random sizes up to 1472 bytes come back byte-exact", () => {
    const out = ns.exec("node", [
      "-e",
      `
      const dgram = require("node:dgram");
      const crypto = require("node:crypto");
      const s = dgram.createSocket("udp4");
      const sent = new Map();
      let got = 0, bad = 0;
      s.on("message", (m, rinfo) => {
        const id = m.readUInt32BE(0);
        const want = sent.get(id);
        if (!want || !want.equals(m) || rinfo.address !== "10.0.2.2" || rinfo.port !== 7) bad++;
        sent.delete(id);
        got++;
      });
      s.bind(0, () => {
        let i = 0;
        const next = () => {
          if (i === 200) return;
          const len = 4 + crypto.randomInt(1469);
          const b = crypto.randomBytes(len);
          b.writeUInt32BE(i, 0);
          sent.set(i, b);
          i++;
          s.send(b, 7, "10.0.2.2", () => setTimeout(next, 2));
        };
        next();
        setTimeout(() => {
          console.log(JSON.stringify({ got, bad, missing: sent.size }));
          s.close();
        }, 4000);
      });
    `,
    ], { timeoutMs: 20_000 });
    const r = JSON.parse(out);
    assert.equal(r.bad, 0, out);
    assert.equal(r.got, 200, out);
  });

  it("a datagram to a closed port: ICMP port unreachable, a connected socket sees ECONNREFUSED", () => {
    const before = nstat(ns, "IcmpInDestUnreachs");
    const out = ns.exec("python3", [
      "-c",
      `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("10.0.2.2", 9999))
s.settimeout(5)
s.send(b"anyone there?")
try:
    s.recv(100)
    print("DATA")
except ConnectionRefusedError:
    print("ECONNREFUSED")
except socket.timeout:
    print("TIMEOUT")
`,
    ], { timeoutMs: 15_000 });
    assert.equal(out.trim(), "ECONNREFUSED");
    assert.ok(nstat(ns, "IcmpInDestUnreachs") > before, "the kernel received the ICMP message");
  });

  it("the stack's connected UDP socket hears Linux's port unreachable: recv answers 502 ECONNREFUSED (RFC 1122 §4.1.3.3)", () => {
    const api = (method: string, path: string, body?: string) =>
      ns.exec("curl", [
        "-s",
        "-m",
        "10",
        "-X",
        method,
        "-H",
        `Authorization: Bearer ${session.token}`,
        "-H",
        "Content-Type: application/json",
        ...(body === undefined ? [] : ["--data-binary", body]),
        "-w",
        "\n%{http_code}",
        `http://127.0.0.1:8787/v1/sessions/${session.id}${path}`,
      ]);
    const created = JSON.parse(api("POST", "/sockets", `{"protocol":"udp"}`).split("\n")[0]);
    assert.match(
      api("POST", `/sockets/${created.id}/connect`, `{"address":"10.0.2.15","port":9}`),
      /200$/,
    );
    const before = nstat(ns, "IcmpOutDestUnreachs");
    assert.match(api("POST", `/sockets/${created.id}/send`, "anyone there?"), /200$/);
    const recv = api("POST", `/sockets/${created.id}/recv?timeoutMs=5000`);
    console.log(`recv after Linux's port unreachable: ${recv.replace("\n", " ")}`);
    assert.match(recv, /"code":"ECONNREFUSED"[\s\S]*\n502$/);
    assert.ok(nstat(ns, "IcmpOutDestUnreachs") > before, "Linux sent the ICMP message");
    // Reported once: the socket is usable afterwards.
    assert.match(api("POST", `/sockets/${created.id}/recv?timeoutMs=100`), /204$/);
    assert.match(api("DELETE", `/sockets/${created.id}`), /204$/);
  });

  it("a broadcast datagram reaches the echo service; one to a closed port draws no ICMP", () => {
    const before = nstat(ns, "IcmpInDestUnreachs");
    const out = ns.exec("python3", [
      "-c",
      `
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.settimeout(5)
s.sendto(b"to all", ("10.0.2.255", 7))
data, addr = s.recvfrom(100)
print(data.decode(), addr[0], addr[1])
s.sendto(b"nobody", ("10.0.2.255", 9999))
time.sleep(1)
`,
    ], { timeoutMs: 15_000 });
    assert.equal(out.trim(), "to all 10.0.2.2 7");
    assert.equal(nstat(ns, "IcmpInDestUnreachs"), before, "no ICMP error about a broadcast");
  });
});
