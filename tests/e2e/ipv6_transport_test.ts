/**
 * End to end, TCP over IPv6 (issue 17): the Linux kernel at fd00::15 behind
 * a TAP device and the WebSocket tunnel talks TCP to the session's stack at
 * fd00::2.
 *
 * - 256 MiB each way arrive byte-exact (sha256 compared), clean and under
 *   2% random loss in both directions (nftables on the bridge), with the
 *   MSS for IPv6 (MTU - 60) and wscale, SACK and timestamps negotiated.
 * - The HTTP socket API connects to a Linux server at [fd00::15] and echoes
 *   bytes through it; a Linux client reaches a socket the API listens on.
 * - `nmap -6` SYN scan of fd00::2: the stack's services open, others closed
 *   (RFC 9293 §3.10.7.1: SYN-ACK or RST, never silence); a UDP scan: echo
 *   and DNS open, others closed (ICMPv6 port unreachable, RFC 4443 §3.1).
 * - UDP over IPv6 both ways (Linux to the stack's echo, the API's UDP
 *   socket to a Linux echo), AAAA and A for the session's name from
 *   fd00::2, and a stateless DHCPv6 reply naming fd00::2 as DNS server.
 *
 * NETISLE_E2E_BYTES changes the transfer size (default 256 MiB).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { commandExists, e2eSkipReason } from "./harness.ts";
import { MiB, rate, sha256File, Testbed } from "./testbed.ts";

const skip = e2eSkipReason();

/** Asks fd00::2 over UDP/IPv6 for `name` of type `qtype` (1 A, 28 AAAA); prints rcode and answers. */
const DIG6_PY = `
import socket, struct, sys, ipaddress
name, qtype = sys.argv[1], int(sys.argv[2])
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
for label in name.split("."):
    q += bytes([len(label)]) + label.encode()
q += b"\\x00" + struct.pack(">HH", qtype, 1)
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(q, ("fd00::2", 53))
r, (src, *_rest) = s.recvfrom(2048)
ident, flags, qd, an = struct.unpack(">HHHH", r[:8])
assert ident == 0x1234 and flags & 0x8000
answers, i = [], len(q)
for _ in range(an):
    rtype, rclass, ttl, rdlen = struct.unpack(">HHIH", r[i + 2:i + 12])
    data = r[i + 12:i + 12 + rdlen]
    answers.append(str(ipaddress.ip_address(data)))
    i += 12 + rdlen
print("from=%s rcode=%d answers=%s" % (src, flags & 0xF, ",".join(answers)))
`;

/**
 * A DHCPv6 Information-request (RFC 8415 §18.2.6) from port 546 to
 * ff02::1:2 on veth-peer; prints the reply's type, the server's DNS
 * servers (option 23) and whether our client identifier came back.
 */
const DHCPV6_PY = `
import socket, struct, ipaddress
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 546))
s.settimeout(3)
duid = struct.pack(">HH", 3, 1) + bytes([0x02, 0, 0, 0, 0, 0x15])
msg = bytes([11, 0xab, 0xcd, 0xef])  # Information-request, transaction id
msg += struct.pack(">HH", 1, len(duid)) + duid  # client identifier
msg += struct.pack(">HHH", 6, 2, 23)  # option request: DNS servers
msg += struct.pack(">HHH", 8, 2, 0)  # elapsed time
s.sendto(msg, ("ff02::1:2", 547, 0, socket.if_nametoindex("veth-peer")))
r, _ = s.recvfrom(2048)
assert r[1:4] == msg[1:4], "transaction id"
dns, client, i = [], False, 4
while i + 4 <= len(r):
    code, length = struct.unpack(">HH", r[i:i + 4])
    body = r[i + 4:i + 4 + length]
    if code == 23:
        dns += [str(ipaddress.ip_address(body[j:j + 16])) for j in range(0, length, 16)]
    if code == 1:
        client = body == duid
    i += 4 + length
print("type=%d dns=%s client=%s" % (r[0], ",".join(dns), client))
`;
const BYTES = Number(process.env.NETISLE_E2E_BYTES ?? 256 * 1024 * 1024);

describe(
  "e2e: TCP and UDP over IPv6 against the Linux kernel through a TAP tunnel",
  { skip },
  () => {
    const bed = new Testbed();
    const input = `${tmpdir()}/netisle-e2e-in6-${process.pid}.bin`;
    let inputSha = "";

    /** Calls the session's API from the peer namespace's node (the server is in the hub's). */
    const api = (
      method: string,
      path: string,
      body?: unknown,
    ): { status: number; body: unknown } => {
      // The server listens on the hub's loopback: reach it from the hub.
      const script = `fetch(${
        JSON.stringify(`http://127.0.0.1:8787/v1/sessions/${bed.session.id}${path}`)
      }, {
      method: ${JSON.stringify(method)},
      headers: { authorization: "Bearer ${bed.session.token}", "content-type": "application/json" },
      body: ${body === undefined ? "undefined" : JSON.stringify(JSON.stringify(body))},
    }).then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })))`;
      const out = JSON.parse(bed.hub.exec("node", ["-e", script], { timeoutMs: 60_000 }));
      let parsed: unknown = out.body;
      try {
        parsed = JSON.parse(out.body);
      } catch { /* a binary or empty body */ }
      return { status: out.status, body: parsed };
    };

    /** `nmap -6` from the peer against fd00::2: `scan` (-sS, -sU) of `ports`; prints and returns the report. */
    const nmap6 = (scan: string, ports: string, retries: number): string => {
      const out = bed.peer.exec("nmap", [
        "-6",
        "-n",
        "-Pn",
        scan,
        "-p",
        ports,
        "--max-retries",
        String(retries),
        "fd00::2",
      ], { timeoutMs: 120_000 });
      console.log(out.trim());
      return out;
    };

    before(async () => {
      await bed.start("tcp6", { ipv6: true });
      bed.peer.exec("sh", ["-c", `head -c ${BYTES} /dev/urandom > ${input}`], {
        timeoutMs: 120_000,
      });
      inputSha = await sha256File(input);
    });
    after(async () => {
      await bed.stop();
      rmSync(input, { force: true });
    });

    it("curl fetches a page from the HTTP server on the stack over IPv6", () => {
      const body = bed.peer.exec("curl", ["-s", "-g", "-m", "10", "http://[fd00::2]:8080/"]);
      assert.equal(body, "hello from netisle\n");
    });

    it(`Linux -> stack over IPv6: ${BYTES / MiB} MiB arrive byte-exact`, () => {
      const r = bed.inbound(input, 600_000, "fd00::2");
      console.log(`inbound v6 clean: ${rate(r.bytes, r.ms)}; Linux retransmitted ${r.retransmits}`);
      assert.equal(r.bytes, BYTES);
      assert.equal(r.sha, inputSha);
    });

    it(`stack -> Linux over IPv6: ${BYTES / MiB} MiB arrive byte-exact, MSS 1440 less options, wscale/SACK/timestamps`, async () => {
      const r = await bed.outbound(BYTES, 600_000, undefined, "fd00::15");
      console.log(`outbound v6 clean: ${rate(BYTES, r.ms)}; ${r.stats}`);
      console.log(`TCP_INFO on the Linux side: ${JSON.stringify(r.negotiated)}`);
      assert.equal(r.receivedBytes, BYTES);
      assert.equal(r.receivedSha, r.sentSha);
      assert.equal(r.negotiated.sack, true, "SACK negotiated");
      assert.equal(r.negotiated.timestamps, true, "timestamps negotiated");
      assert.equal(r.negotiated.wscale, true, "window scaling negotiated");
      // Linux's send MSS toward the stack: our MSS option (1500 - 60) less 12 bytes of timestamps.
      assert.equal(r.negotiated.snd_mss, 1440 - 12);
    });

    it("the socket API connects to a Linux server at [fd00::15] and echoes bytes through it", () => {
      const echo = bed.peer.spawn("socat", [
        "TCP6-LISTEN:7007,bind=[fd00::15],fork,reuseaddr",
        "EXEC:cat",
      ]);
      try {
        bed.peer.exec("sh", [
          "-c",
          "for i in $(seq 50); do ss -tln | grep -q ':7007' && exit 0; sleep 0.1; done; exit 1",
        ]);
        const created = api("POST", "/sockets", { protocol: "tcp" });
        assert.equal(created.status, 201);
        const id = (created.body as { id: string }).id;
        const c = api("POST", `/sockets/${id}/connect`, { address: "fd00::15", port: 7007 });
        assert.equal(c.status, 200, JSON.stringify(c.body));
        const opened = c.body as { local: { address: string }; remote: { address: string } };
        assert.equal(opened.local.address, "fd00::2");
        assert.equal(opened.remote.address, "fd00::15");
        // send and recv through the API: the bytes come back from Linux's cat.
        const script = `(async () => {
        const base = "http://127.0.0.1:8787/v1/sessions/${bed.session.id}/sockets/${id}";
        const h = { authorization: "Bearer ${bed.session.token}" };
        const data = new Uint8Array(100000).map((_, i) => (i * 13) & 255);
        const s = await fetch(base + "/send", { method: "POST", headers: h, body: data });
        if (s.status !== 200) throw new Error("send " + s.status);
        const got = [];
        while (got.length < data.length) {
          const r = await fetch(base + "/recv?maxBytes=65536&timeoutMs=10000", { method: "POST", headers: h });
          if (r.status !== 200) throw new Error("recv " + r.status);
          got.push(...new Uint8Array(await r.arrayBuffer()));
        }
        process.stdout.write(String(got.every((b, i) => b === data[i]) && got.length === data.length));
      })()`;
        assert.equal(bed.hub.exec("node", ["-e", script], { timeoutMs: 60_000 }), "true");
      } finally {
        void echo.stop();
      }
    });

    it("a Linux client reaches a socket the API listens on (bound to ::)", () => {
      const created = api("POST", "/sockets", { protocol: "tcp" });
      const id = (created.body as { id: string }).id;
      assert.equal(api("POST", `/sockets/${id}/bind`, { address: "::", port: 7100 }).status, 200);
      assert.equal(api("POST", `/sockets/${id}/listen`, {}).status, 200);
      const client = bed.peer.spawn("python3", [
        "-c",
        'import socket; s = socket.create_connection(("fd00::2", 7100)); s.sendall(b"hello-v6\\n"); ' +
        "s.shutdown(socket.SHUT_WR); s.recv(1); s.close()",
      ]);
      try {
        const acc = api("POST", `/sockets/${id}/accept`, { timeoutMs: 10_000 });
        assert.equal(acc.status, 200, JSON.stringify(acc.body));
        const child = acc.body as {
          id: string;
          remote: { address: string };
          local: { address: string };
        };
        assert.equal(child.remote.address, "fd00::15");
        assert.equal(child.local.address, "fd00::2");
        const r = api("POST", `/sockets/${child.id}/recv?timeoutMs=10000`);
        const view = api("GET", `/sockets/${child.id}`);
        assert.equal(r.status, 200, JSON.stringify([r, view]));
        assert.equal(String(r.body).trim(), "hello-v6", JSON.stringify([r, view]));
      } finally {
        void client.stop();
      }
    });

    it("nmap -6 SYN scan: the stack's services open, other ports closed (RST), none filtered", {
      skip: commandExists("nmap") ? undefined : "nmap is not installed (apt-get install nmap)",
    }, () => {
      const out = nmap6("-sS", "7,22,8080,9000,9001,5201,9999", 1);
      for (const p of [7, 8080, 9000, 9001, 5201]) {
        assert.match(out, new RegExp(`^${p}/tcp\\s+open`, "m"), `port ${p} open`);
      }
      for (const p of [22, 9999]) {
        assert.match(out, new RegExp(`^${p}/tcp\\s+closed`, "m"), `port ${p} closed`);
      }
      assert.doesNotMatch(out, /filtered/);
    });

    it("UDP over IPv6: echo both ways, DNS AAAA, a DHCPv6 information-request, nmap -6 UDP scan", () => {
      // Linux -> the stack's UDP echo on port 7.
      const echoed = bed.peer.exec("sh", [
        "-c",
        "echo ping-over-v6 | socat -t 3 - UDP6:[fd00::2]:7",
      ], { timeoutMs: 20_000 });
      assert.equal(echoed.trim(), "ping-over-v6");
      // The API's UDP socket -> a Linux echo at [fd00::15]:7007 and back.
      const echo = bed.peer.spawn("socat", ["UDP6-LISTEN:7008,bind=[fd00::15],fork", "EXEC:cat"]);
      try {
        bed.peer.exec("sh", [
          "-c",
          "for i in $(seq 50); do ss -uln | grep -q ':7008' && exit 0; sleep 0.1; done; exit 1",
        ]);
        const id = (api("POST", "/sockets", { protocol: "udp" }).body as { id: string }).id;
        const script = `(async () => {
        const base = "http://127.0.0.1:8787/v1/sessions/${bed.session.id}/sockets/${id}";
        const h = { authorization: "Bearer ${bed.session.token}" };
        for (let i = 0; i < 20; i++) {
          const s = await fetch(base + "/send?address=fd00::15&port=7008", { method: "POST", headers: h, body: "dgram-" + i });
          if (s.status !== 200) throw new Error("send " + s.status + " " + await s.text());
          const r = await fetch(base + "/recv?timeoutMs=1000", { method: "POST", headers: h });
          if (r.status === 200) {
            process.stdout.write(JSON.stringify({ body: await r.text(), from: r.headers.get("netisle-remote-address") }));
            return;
          }
        }
        process.stdout.write("no reply");
      })()`;
        const got = JSON.parse(bed.hub.exec("node", ["-e", script], { timeoutMs: 60_000 }));
        assert.match(got.body, /^dgram-\d+$/);
      } finally {
        void echo.stop();
      }
      // The session's name over IPv6: AAAA and A, answered from the address asked.
      const dig = (name: string, qtype: number) =>
        bed.peer.exec("python3", ["-c", DIG6_PY, name, String(qtype)], { timeoutMs: 20_000 })
          .trim();
      assert.equal(dig("netisle.internal", 28), "from=fd00::2 rcode=0 answers=fd00::2");
      assert.equal(dig("netisle.internal", 1), "from=fd00::2 rcode=0 answers=10.0.2.2");
      assert.equal(dig("nothing.internal", 28), "from=fd00::2 rcode=3 answers=");
      // Stateless DHCPv6: the DNS server is the stack.
      const dhcp = bed.peer.exec("python3", ["-c", DHCPV6_PY], { timeoutMs: 20_000 }).trim();
      assert.equal(dhcp, "type=7 dns=fd00::2 client=True");
    });

    it("nmap -6 UDP scan: echo and DNS open, other ports closed (ICMPv6 port unreachable)", {
      skip: commandExists("nmap") ? undefined : "nmap is not installed (apt-get install nmap)",
    }, () => {
      const out = nmap6("-sU", "7,9,53,9999", 2);
      assert.match(out, /^53\/udp\s+open\s/m, "DNS answers nmap's probe");
      assert.match(out, /^7\/udp\s+open/m, "echo answers nmap's probe");
      for (const p of [9, 9999]) {
        assert.match(out, new RegExp(`^${p}/udp\\s+closed`, "m"), `port ${p} closed`);
      }
    });

    it(`under 2% random loss both ways: ${BYTES / MiB} MiB each way over IPv6 arrive byte-exact`, async () => {
      bed.lossy(2);
      const a = bed.inbound(input, 900_000, "fd00::2");
      console.log(
        `inbound v6, 2% loss: ${rate(a.bytes, a.ms)}; Linux retransmitted ${a.retransmits}`,
      );
      assert.equal(a.sha, inputSha);
      const b = await bed.outbound(BYTES, 900_000, undefined, "fd00::15");
      console.log(`outbound v6, 2% loss: ${rate(BYTES, b.ms)}; ${b.stats}`);
      assert.equal(b.receivedBytes, BYTES);
      assert.equal(b.receivedSha, b.sentSha);
      const dropped = bed.dropped();
      console.log(`the bridge dropped ${dropped} frames`);
      assert.ok(a.retransmits > 0 && dropped > 0, "loss really happened");
    });
  },
);
