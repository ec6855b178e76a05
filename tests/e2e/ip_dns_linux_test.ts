/**
 * End to end: IPv4 reassembly, output fragmentation of echo replies and the
 * session's DNS responder, against the Linux kernel through a TAP tunnel.
 *
 * - `ping -s 3000`: Linux fragments each 3008-byte echo request (MTU 1500);
 *   the stack reassembles it, answers with a fragmented echo reply, and
 *   Linux reassembles that.
 * - A DNS query over a Linux UDP socket (python, hand-built message) for
 *   `netisle.internal` gets the stack's address; `example.com` gets an
 *   immediate REFUSED and `nothing.internal` an NXDOMAIN.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { e2eSkipReason, Netns, type Proc, startServerAndTunnel } from "./harness.ts";

const skip = e2eSkipReason();

/** Sends one A query from the namespace; prints "rcode=N answers=a.b.c.d,...". */
const DIG_PY = `
import socket, struct, sys
name = sys.argv[1]
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
for label in name.split("."):
    q += bytes([len(label)]) + label.encode()
q += b"\\x00" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(q, ("10.0.2.2", 53))
r, _ = s.recvfrom(2048)
ident, flags, qd, an = struct.unpack(">HHHH", r[:8])
assert ident == 0x1234 and flags & 0x8000
answers = []
i = len(q)  # the question is echoed unchanged, answers follow
for _ in range(an):
    rtype, rclass, ttl, rdlen = struct.unpack(">HHIH", r[i + 2:i + 12])
    if rtype == 1:
        answers.append(".".join(str(b) for b in r[i + 12:i + 12 + rdlen]))
    i += 12 + rdlen
print("rcode=%d answers=%s" % (flags & 0xF, ",".join(answers)))
`;

describe("e2e: fragmented ping and DNS from a Linux TAP device", { skip }, () => {
  it("answers ping -s 3000 and DNS queries for its own and other names", async () => {
    const ns = new Netns("ipdns");
    const procs: Proc[] = [];
    try {
      await startServerAndTunnel(ns, procs);

      const out = ns.exec("ping", ["-c", "3", "-i", "0.2", "-W", "3", "-s", "3000", "10.0.2.2"], {
        timeoutMs: 30_000,
      });
      assert.equal(Number(/(\d+) received/.exec(out)?.[1]), 3, `ping output:\n${out}`);
      assert.match(out, /3008 bytes from 10\.0\.2\.2/);

      const dig = (name: string) => ns.exec("python3", ["-c", DIG_PY, name]).trim();
      assert.equal(dig("netisle.internal"), "rcode=0 answers=10.0.2.2");
      assert.equal(dig("example.com"), "rcode=5 answers=");
      assert.equal(dig("nothing.internal"), "rcode=3 answers=");
    } finally {
      for (const p of procs.reverse()) await p.stop();
      ns.delete();
    }
  });
});
