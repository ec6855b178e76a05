import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { NetError } from "../../errors/net_error.ts";
import { formatIpv4Address, parseIpv4Address, TcpFlags, TcpRepr } from "../../wire/mod.ts";
import { assertSilent, drainOne, HARNESS_STACK_IP, LOCAL_PORT, TcpHarness } from "./tcp_harness.ts";

const { SYN } = TcpFlags;

/** Destinations and sources no TCP peer can have on 10.0.2.0/24 (RFC 1122 §3.2.1.3, RFC 1812 §5.3.7). */
const MARTIANS = [
  "255.255.255.255", // limited broadcast
  "10.0.2.255", // the subnet's broadcast
  "10.0.2.0", // the subnet's network address
  "224.0.0.1", // multicast
  "127.0.0.1", // loopback
  "0.0.0.0", // this host
  "0.1.2.3", // this network
  "240.0.0.1", // class E
];

/** The bytes of a TCP SYN from `src` to the stack's listener, as the IP layer hands them over. */
function synFrom(src: number, dstPort = LOCAL_PORT): Uint8Array {
  const repr: TcpRepr = {
    srcPort: 40000,
    dstPort,
    seqNumber: 1000,
    ackNumber: 0,
    flags: SYN,
    windowLen: 65535,
    mss: 1460,
    payload: new Uint8Array(0),
  };
  const bytes = new Uint8Array(TcpRepr.bufferLen(repr));
  TcpRepr.emit(repr, bytes, src, HARNESS_STACK_IP);
  return bytes;
}

describe("martian addresses (RFC 1122 §3.2.1.3, RFC 1812 §5.3.7)", () => {
  for (const text of MARTIANS) {
    it(`refuses to connect to ${text} with EINVAL and sends nothing`, () => {
      const h = new TcpHarness();
      assert.throws(
        () => h.stack.tcp.connect(parseIpv4Address(text), 80, h.now),
        (e: unknown) => e instanceof NetError && e.code === "EINVAL" && e.message.includes(text),
      );
      assertSilent(h);
      assert.equal(h.stack.tcp.connectionCount, 0);
    });

    it(`opens no connection for a SYN from ${text}, and sends no RST to it`, () => {
      const h = new TcpHarness();
      h.stack.tcp.listen(LOCAL_PORT, 8);
      const src = parseIpv4Address(text);
      const tcp = h.stack.tcp;
      // Straight to the TCP layer: it does not rely on the IP layer's own filtering.
      assert.equal(tcp.input(src, HARNESS_STACK_IP, synFrom(src), h.now), "tcp_martian_source");
      // To a closed port: no RST to a martian either (RFC 1122 §3.2.1.3: discarded silently).
      assert.equal(tcp.input(src, HARNESS_STACK_IP, synFrom(src, 81), h.now), "tcp_martian_source");
      assertSilent(h);
      assert.equal(tcp.connectionCount, 0);
      assert.equal(tcp.stats.rstsSent, 0);
    });
  }

  it("opens no connection for a SYN from the stack's own address", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 8);
    const r = h.stack.tcp.input(
      HARNESS_STACK_IP,
      HARNESS_STACK_IP,
      synFrom(HARNESS_STACK_IP),
      h.now,
    );
    assert.equal(r, "tcp_martian_source");
    assertSilent(h);
  });

  it("counts SYNs from loopback, this network and the subnet's network address that reach the stack", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 8);
    for (const text of ["127.0.0.1", "0.0.0.0", "10.0.2.0"]) {
      h.inject({ seqNumber: 1000, flags: SYN }, { src: parseIpv4Address(text) });
    }
    assertSilent(h);
    assert.equal(h.stack.tcp.connectionCount, 0);
    const c = h.stack.counters;
    assert.equal(c.rxFrames, c.rxHandled + c.totalDrops(), "every frame is handled or dropped");
    assert.equal(c.rxHandled, 0);
  });

  it("still connects to and accepts from unicast hosts of the subnet", () => {
    const h = new TcpHarness();
    const peer = parseIpv4Address("10.0.2.15");
    h.stack.tcp.connect(peer, 80, h.now);
    assert.equal(drainOne(h).flags, SYN, `a SYN to ${formatIpv4Address(peer)}`);
    h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: SYN });
    assert.equal(drainOne(h).flags & SYN, SYN);
  });
});
