import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ACTIVE_LOCAL_PORT,
  ACTIVE_REMOTE_PORT,
  assertSilent,
  bytes,
  drainOne,
  established,
  HARNESS_PEER_IP,
  harnessWithPassiveIsnNear,
  LOCAL_PORT,
  seg,
  TcpHarness,
  u32,
} from "./tcp_harness.ts";
import { TcpFlags } from "../../wire/mod.ts";
import { seqLe } from "./seq.ts";

const { ACK, FIN, PSH, RST, SYN } = TcpFlags;

function isnAt(
  seed: number,
  start: number,
  localPort = ACTIVE_LOCAL_PORT,
  remotePort = ACTIVE_REMOTE_PORT,
) {
  const h = new TcpHarness({ seed, start });
  h.stack.tcp.connect(HARNESS_PEER_IP, remotePort, h.now, { localPort });
  return drainOne(h).seqNumber;
}

describe("initial sequence numbers (RFC 6528 §3)", () => {
  it("advances the ISN of one 4-tuple with a 4 µs clock: 250 per millisecond", () => {
    const h = new TcpHarness();
    const a = h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now, {
      localPort: ACTIVE_LOCAL_PORT,
    });
    const first = drainOne(h).seqNumber;
    a.abort(h.now);
    h.advance(1000);
    h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now, {
      localPort: ACTIVE_LOCAL_PORT,
    });
    const second = drainOne(h).seqNumber;
    assert.equal(u32(second - first), 250_000);
  });

  it("gives different 4-tuples unrelated ISNs at the same instant", () => {
    const seen = new Set<number>();
    for (let port = 50000; port < 50020; port++) seen.add(isnAt(1, 5000, port));
    assert.equal(seen.size, 20);
    const a = isnAt(1, 5000, 50000);
    const b = isnAt(1, 5000, 50001);
    assert.notEqual(u32(b - a), 0);
    assert.ok(u32(b - a) > 1_000_000 || u32(a - b) > 1_000_000, "not a small offset of each other");
  });

  it("depends on the secret key: another stack gives another ISN for the same tuple and time", () => {
    const isns = new Set([1, 2, 3, 4, 5].map((seed) => isnAt(seed, 5000)));
    assert.equal(isns.size, 5);
  });

  it("is not the clock alone: the ISN differs from floor(now · 250)", () => {
    assert.notEqual(isnAt(1, 5000), 5000 * 250);
  });

  it("uses the same generator for passive opens", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1, flags: SYN });
    const first = drainOne(h);
    h.inject({ seqNumber: 2, flags: RST }); // RCV.NXT: the half-open connection goes away
    assert.equal(h.stack.tcp.active.size, 0);
    h.advance(10);
    h.inject({ seqNumber: 1, flags: SYN });
    assert.equal(u32(drainOne(h).seqNumber - first.seqNumber), 2500);
  });
});

describe("the peer's sequence numbers across 2^32 (RFC 9293 §3.4.1)", () => {
  function peerNearWrap(peerIsn: number) {
    return established({
      tcp: { timestamps: false },
      peer: { isn: peerIsn, syn: { mss: 1460, sackPermitted: true } },
    });
  }

  it("acknowledges a SYN at 0xffffffff with ACK 0", () => {
    const { conn } = peerNearWrap(0xffffffff);
    assert.equal(conn.debugSeq().rcvNxt, 0);
  });

  it("receives data across the wrap and acknowledges with the wrapped number", () => {
    const { h, conn, s } = peerNearWrap(0xfffffff0);
    h.inject({ seqNumber: 0xfffffff1, ackNumber: s, flags: ACK | PSH, payload: bytes(100) });
    h.inject({ seqNumber: 0x55, ackNumber: s, flags: ACK | PSH, payload: bytes(100, 100) });
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: s, ackNumber: 0xb9, flags: ACK, windowLen: 65535 - 200 }),
    ]);
    assert.deepEqual(conn.read(1000, h.now), bytes(200));
  });

  it("reassembles out-of-order data on both sides of the wrap with SACK blocks in wrapped numbers (RFC 2018 §4)", () => {
    const { h, conn, s } = peerNearWrap(0xffffff00);
    // rcvNxt = 0xffffff01; the segment [0x0, 0x100) arrives before [0xffffff01, 0x0).
    h.inject({ seqNumber: 0x0, ackNumber: s, flags: ACK, payload: bytes(256, 255) });
    assert.deepEqual(h.drain(), [
      seg({
        seqNumber: s,
        ackNumber: 0xffffff01,
        flags: ACK,
        windowLen: 65535,
        sackBlocks: [{ left: 0x0, right: 0x100 }],
      }),
    ]);
    h.inject({ seqNumber: 0xffffff01, ackNumber: s, flags: ACK, payload: bytes(255) });
    const ack = drainOne(h);
    assert.equal(ack.ackNumber, 0x100);
    assert.equal(ack.sackBlocks, undefined);
    assert.deepEqual(conn.read(1000, h.now), bytes(511));
  });

  it("takes the peer's FIN at sequence number 0xffffffff", () => {
    const { h, conn, s } = peerNearWrap(0xfffffff0);
    h.inject({ seqNumber: 0xfffffff1, ackNumber: s, flags: ACK | PSH, payload: bytes(14) });
    h.inject({ seqNumber: 0xffffffff, ackNumber: s, flags: FIN | ACK });
    assert.equal(conn.state, "CLOSE_WAIT");
    assert.equal(conn.debugSeq().rcvNxt, 0);
    const out = h.drain();
    assert.equal(out[out.length - 1].ackNumber, 0);
  });

  it("treats a segment just below the wrapped RCV.NXT as old and re-acknowledges", () => {
    const { h, conn, s } = peerNearWrap(0xfffffff0);
    h.inject({ seqNumber: 0xfffffff1, ackNumber: s, flags: ACK | PSH, payload: bytes(20) });
    h.drain();
    // RCV.NXT is 5: the 10 bytes at 0xfffffff9 are all old.
    h.inject({ seqNumber: 0xfffffff9, ackNumber: s, flags: ACK | PSH, payload: bytes(10) });
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: s, ackNumber: 5, flags: ACK, windowLen: 65535 - 20 }),
    ]);
    assert.equal(conn.readableBytes, 20);
  });

  it("challenges an in-window RST beyond the wrap and resets on one at the wrapped RCV.NXT (RFC 5961 §3.2)", () => {
    const { h, conn, s } = peerNearWrap(0xfffffff0);
    h.inject({ seqNumber: 0xfffffff1, ackNumber: s, flags: ACK | PSH, payload: bytes(20) });
    h.drain();
    h.inject({ seqNumber: 100, flags: RST });
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: s, ackNumber: 5, flags: ACK, windowLen: 65535 - 20 }),
    ]);
    h.inject({ seqNumber: 0xfffffff0, flags: RST });
    assertSilent(h);
    assert.equal(conn.state, "ESTABLISHED");
    h.inject({ seqNumber: 5, flags: RST });
    assert.equal(conn.state, "CLOSED");
  });
});

describe("our sequence numbers across 2^32", () => {
  const TARGET = 0xfffff000;

  function ourIsnNearWrap() {
    const h = harnessWithPassiveIsnNear(TARGET, { tcp: { timestamps: false } });
    const o = established({ harness: h, peer: { syn: { mss: 536 } } });
    assert.ok(
      seqLe(u32(TARGET - 250), o.iss) && seqLe(o.iss, TARGET),
      `ISS ${o.iss.toString(16)} near ${TARGET.toString(16)}`,
    );
    return o;
  }

  it("can start a connection with an ISS just below the wrap (found via RFC 6528's clock)", () => {
    const { conn, iss } = ourIsnNearWrap();
    assert.ok(iss > 0xffff0000);
    assert.equal(conn.debugSeq().sndNxt, u32(iss + 1));
  });

  it("sends data across the wrap with consecutive wrapped sequence numbers and takes wrapped ACKs", () => {
    const { h, conn, s } = ourIsnNearWrap();
    const n = 536 * 10;
    conn.send(bytes(n), h.now);
    const out = h.drain();
    assert.equal(out.length, 10);
    let expect = s;
    for (const [i, x] of out.entries()) {
      assert.equal(x.seqNumber, expect, `segment ${i}`);
      assert.deepEqual(x.payload, bytes(536, i * 536));
      expect = u32(expect + 536);
    }
    assert.ok(expect < 0x10000, "the data crossed the wrap");
    // A cumulative ACK beyond the wrap acknowledges everything.
    h.inject({ seqNumber: 1001, ackNumber: expect, flags: ACK });
    assert.equal(conn.info().bytesInFlight, 0);
    assert.equal(conn.info().bytesAcked, n);
    assert.equal(conn.debugSeq().sndUna, expect);
    assert.equal(h.stack.tcp.nextDeadline(), undefined);
  });

  it("handles ACKs that stop on either side of the wrap", () => {
    const { h, conn, s, iss } = ourIsnNearWrap();
    const n = 536 * 10;
    conn.send(bytes(n), h.now);
    h.drain();
    const beforeWrap = u32(-iss - 1); // bytes up to sequence number 0
    h.inject({ seqNumber: 1001, ackNumber: 0xfffffffe, flags: ACK });
    assert.equal(conn.info().bytesAcked, u32(0xfffffffe - s));
    h.inject({ seqNumber: 1001, ackNumber: 10, flags: ACK });
    assert.equal(conn.info().bytesAcked, beforeWrap + 10);
    assert.equal(conn.debugSeq().sndUna, 10);
  });

  it("answers an ACK of unsent data beyond the wrap with an ACK and drops it (RFC 5961 §5.2)", () => {
    const { h, conn, s } = ourIsnNearWrap();
    conn.send(bytes(536), h.now);
    h.drain();
    const sndNxt = u32(s + 536);
    h.inject({ seqNumber: 1001, ackNumber: u32(sndNxt + 0x10000), flags: ACK });
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: sndNxt, ackNumber: 1001, flags: ACK, windowLen: 65535 }),
    ]);
    assert.equal(conn.info().bytesInFlight, 536);
  });

  it("retransmits the right bytes across the wrap after an RTO", () => {
    const { h, conn } = ourIsnNearWrap();
    conn.send(bytes(536 * 10), h.now);
    const first = h.drain();
    // Acknowledge up to the segment that contains the wrap point.
    const wrapIdx = first.findIndex((x) => u32(x.seqNumber + x.payload.length) < x.seqNumber);
    assert.ok(wrapIdx >= 0, "one segment straddles the wrap");
    h.inject({ seqNumber: 1001, ackNumber: first[wrapIdx].seqNumber, flags: ACK });
    h.drain();
    h.fireNextTimer();
    const rtx = h.drain();
    assert.ok(rtx.length >= 1);
    assert.deepEqual(rtx[0], first[wrapIdx], "the straddling segment again, byte for byte");
    assert.equal(conn.info().retransmits, rtx.length);
  });

  it("places our FIN exactly at 0xffffffff and is closed by the wrapped ACK 0", () => {
    const { h, conn, iss } = ourIsnNearWrap();
    const len = u32(0xffffffff - iss - 1);
    conn.send(bytes(len), h.now);
    conn.shutdownWrite(h.now);
    const out = h.drain();
    const fin = out[out.length - 1];
    assert.equal(fin.flags, FIN | ACK);
    assert.equal(fin.seqNumber, 0xffffffff);
    h.inject({ seqNumber: 1001, ackNumber: 0, flags: ACK });
    assert.equal(conn.state, "FIN_WAIT_2");
    assert.equal(conn.info().bytesAcked, len);
  });

  it("accepts an old duplicate ACK from before the wrap once SND.UNA wrapped (RFC 5961 §5.2)", () => {
    const { h, conn } = ourIsnNearWrap();
    conn.send(bytes(536 * 10), h.now);
    const out = h.drain();
    const end = u32(out[9].seqNumber + 536);
    h.inject({ seqNumber: 1001, ackNumber: end, flags: ACK });
    h.inject({ seqNumber: 1001, ackNumber: out[0].seqNumber, flags: ACK | PSH, payload: bytes(5) });
    assert.equal(
      conn.readableBytes,
      5,
      "an ACK below SND.UNA but within MAX.SND.WND is acceptable",
    );
  });
});

describe("an active open whose peer ISN is just below the wrap", () => {
  it("completes and exchanges data with ACK numbers that wrap", () => {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const c = h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now, {
      localPort: ACTIVE_LOCAL_PORT,
    });
    const syn = drainOne(h);
    const P = { srcPort: ACTIVE_REMOTE_PORT, dstPort: ACTIVE_LOCAL_PORT };
    h.inject({
      ...P,
      seqNumber: 0xfffffffe,
      ackNumber: u32(syn.seqNumber + 1),
      flags: SYN | ACK,
      mss: 1460,
    });
    assert.equal(drainOne(h).ackNumber, 0xffffffff);
    h.inject({
      ...P,
      seqNumber: 0xffffffff,
      ackNumber: u32(syn.seqNumber + 1),
      flags: ACK | PSH,
      payload: bytes(3),
    });
    h.advance(40);
    assert.equal(drainOne(h).ackNumber, 2);
    assert.deepEqual(c.read(10, h.now), bytes(3));
  });
});
