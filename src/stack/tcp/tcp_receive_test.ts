import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { seqGt } from "./seq.ts";
import { bytes, DEFAULT_PEER_SYN, established, flagsOf, readAll } from "./tcp_harness.ts";
import { seededRandom, TcpFlags, type TcpRepr } from "../../wire/mod.ts";

const WITH_TIMESTAMPS = { ...DEFAULT_PEER_SYN, timestamp: { value: 5000, echo: 0 } };

/** Checks that `data` is the peer's stream from sequence number `firstSeq` (byte = seq & 0xff). */
function assertStream(data: Uint8Array, firstSeq: number, len: number): void {
  assert.equal(data.length, len, "stream length");
  for (let i = 0; i < len; i++) {
    if (data[i] !== ((firstSeq + i) & 0xff)) {
      assert.fail(`byte ${i} is ${data[i]}, expected ${(firstSeq + i) & 0xff}`);
    }
  }
}

function onlyAck(segs: TcpRepr[]): TcpRepr {
  assert.equal(segs.length, 1, `expected one segment, got ${segs.map(flagsOf).join(", ")}`);
  assert.equal(segs[0].flags, TcpFlags.ACK);
  assert.equal(segs[0].payload.length, 0);
  return segs[0];
}

describe("TcpConnection receive path: out-of-order data (RFC 9293 §3.10.7.4, RFC 5681 §4.2)", () => {
  it("answers an out-of-order segment at once with a duplicate ACK for RCV.NXT (RFC 5681 §4.2)", () => {
    const { peer, conn } = established();
    const base = peer.seq;
    peer.sendAt(base + 1000, 500);
    const ack = onlyAck(peer.drain());
    assert.equal(ack.ackNumber, base);
    assert.equal(ack.seqNumber, conn.debugSeq().sndNxt);
    assert.equal(conn.readableBytes, 0, "out-of-order bytes are not readable");
    assert.equal(conn.info().outOfOrderBytes, 500);
  });

  it("reports the out-of-order block in a SACK option on that duplicate ACK (RFC 2018 §4)", () => {
    const { peer } = established();
    const base = peer.seq;
    peer.sendAt(base + 1000, 500);
    const ack = onlyAck(peer.drain());
    assert.deepEqual(ack.sackBlocks, [{ left: base + 1000, right: base + 1500 }]);
  });

  it("sends no SACK option when the peer did not offer SACK-permitted (RFC 2018 §2)", () => {
    const { peer } = established({ peer: { syn: { mss: 1460 } } });
    const base = peer.seq;
    peer.sendAt(base + 1000, 500);
    const ack = onlyAck(peer.drain());
    assert.equal(ack.ackNumber, base);
    assert.equal(ack.sackBlocks, undefined);
  });

  it("sends no SACK option when SACK is disabled locally, even if the peer offers it", () => {
    const { peer } = established({ tcp: { sack: false } });
    const base = peer.seq;
    peer.sendAt(base + 1000, 500);
    const ack = onlyAck(peer.drain());
    assert.equal(ack.sackBlocks, undefined);
  });

  it("ACKs at once, cumulatively and without SACK blocks, when the hole fills (RFC 5681 §4.2)", () => {
    const { h, peer, conn } = established();
    const base = peer.seq;
    peer.sendAt(base + 1000, 1000);
    peer.sendAt(base + 2000, 1000);
    peer.drain();
    peer.sendAt(base, 1000);
    const ack = onlyAck(peer.drain());
    assert.equal(ack.ackNumber, base + 3000);
    assert.equal(ack.sackBlocks, undefined);
    assertStream(readAll(conn, h.now), base, 3000);
    assert.equal(conn.info().outOfOrderBytes, 0);
    assert.equal(conn.nextDeadline(), undefined, "no delayed ACK left pending");
  });

  it("ACKs at once with the remaining SACK block when a segment fills part of a gap (RFC 5681 §4.2)", () => {
    const { h, peer, conn } = established();
    const base = peer.seq;
    peer.sendAt(base + 1000, 500);
    peer.sendAt(base + 3000, 500);
    peer.drain();
    // Fills [base, base+1500): the first block joins, the second stays out of order.
    peer.sendAt(base, 1000);
    const ack = onlyAck(peer.drain());
    assert.equal(ack.ackNumber, base + 1500);
    assert.deepEqual(ack.sackBlocks, [{ left: base + 3000, right: base + 3500 }]);
    assertStream(readAll(conn, h.now), base, 1500);
  });

  it("ACKs at once when an in-order segment arrives while a hole is still open further on", () => {
    const { peer } = established();
    const base = peer.seq;
    peer.sendAt(base + 2000, 500);
    peer.drain();
    peer.sendAt(base, 1000); // in order but [base+1000, base+2000) is still missing
    const ack = onlyAck(peer.drain());
    assert.equal(ack.ackNumber, base + 1000);
    assert.deepEqual(ack.sackBlocks, [{ left: base + 2000, right: base + 2500 }]);
  });

  it("delivers segments that arrived in any order as one byte-exact stream", () => {
    const { h, peer, conn } = established();
    const base = peer.seq;
    const n = 40;
    const order = Array.from({ length: n }, (_, i) => i);
    const rnd = seededRandom(7);
    const r = new Uint8Array(n);
    rnd.fill(r);
    for (let i = n - 1; i > 0; i--) {
      const j = r[i] % (i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (const i of order) peer.sendAt(base + i * 1000, 1000);
    peer.drain();
    assert.equal(conn.debugSeq().rcvNxt, base + n * 1000);
    assertStream(readAll(conn, h.now), base, n * 1000);
  });

  it("holds an out-of-order FIN until the data before it arrives, then enters CLOSE_WAIT (RFC 9293 §3.10.7.4)", () => {
    const { h, peer, conn } = established();
    const base = peer.seq;
    peer.sendAt(base + 1000, 500, { flags: TcpFlags.ACK | TcpFlags.FIN });
    const dup = onlyAck(peer.drain());
    assert.equal(dup.ackNumber, base);
    assert.equal(conn.state, "ESTABLISHED");
    peer.sendAt(base, 1000);
    const ack = onlyAck(peer.drain());
    assert.equal(ack.ackNumber, base + 1501, "the ACK covers the data and the FIN");
    assert.equal(conn.state, "CLOSE_WAIT");
    assertStream(readAll(conn, h.now), base, 1500);
    assert.equal(conn.readEnded, true);
  });

  it("keeps receiving in order across the 2^32 sequence number wrap", () => {
    const isn = 0xffff_fc00; // 1024 bytes below the wrap
    const { h, peer, conn } = established({ peer: { isn } });
    const base = peer.seq;
    assert.equal(base, 0xffff_fc01);
    peer.sendAt((base + 2000) >>> 0, 1000); // past the wrap, out of order
    const dup = onlyAck(peer.drain());
    assert.equal(dup.ackNumber, base);
    assert.deepEqual(dup.sackBlocks, [{ left: (base + 2000) >>> 0, right: (base + 3000) >>> 0 }]);
    peer.sendAt(base, 1000); // up to the wrap
    assert.equal(onlyAck(peer.drain()).ackNumber, 0xffff_fc01 + 1000);
    peer.sendAt((base + 1000) >>> 0, 1000); // straddles the wrap
    const ack = onlyAck(peer.drain());
    assert.equal(ack.ackNumber, (base + 3000) >>> 0);
    assertStream(readAll(conn, h.now), base, 3000);
  });
});

describe("TcpConnection receive path: duplicate and overlapping segments (RFC 9293 §3.10.7.4)", () => {
  it("answers a wholly duplicate segment with an immediate ACK and delivers nothing twice", () => {
    const { h, peer, conn } = established();
    const base = peer.seq;
    peer.sendAt(base, 1000);
    h.advance(40);
    peer.drain();
    assertStream(readAll(conn, h.now), base, 1000);
    peer.sendAt(base, 1000);
    const ack = onlyAck(peer.drain());
    assert.equal(ack.ackNumber, base + 1000);
    assert.equal(conn.readableBytes, 0);
    assert.equal(conn.info().bytesReceived, 1000);
    assert.ok((h.stack.counters.drops["tcp_out_of_window"] ?? 0) >= 1);
  });

  it("delivers only the new part of a segment that overlaps data already received", () => {
    const { h, peer, conn } = established();
    const base = peer.seq;
    peer.sendAt(base, 1000);
    peer.sendAt(base + 500, 1000); // 500 old, 500 new
    peer.drain();
    assert.equal(conn.debugSeq().rcvNxt, base + 1500);
    assertStream(readAll(conn, h.now), base, 1500);
    assert.equal(conn.info().bytesReceived, 1500);
  });

  it("merges an out-of-order segment that overlaps two held blocks into one SACK block", () => {
    const { peer } = established();
    const base = peer.seq;
    peer.sendAt(base + 1000, 500); // [1000, 1500)
    peer.sendAt(base + 2000, 500); // [2000, 2500)
    peer.drain();
    peer.sendAt(base + 1200, 1100); // [1200, 2300) bridges them
    const ack = onlyAck(peer.drain());
    assert.equal(ack.ackNumber, base);
    assert.deepEqual(ack.sackBlocks, [{ left: base + 1000, right: base + 2500 }]);
  });

  it("answers a duplicate out-of-order segment with an immediate ACK reporting its block first (RFC 2018 §4)", () => {
    const { peer, conn } = established();
    const base = peer.seq;
    peer.sendAt(base + 1000, 500);
    peer.sendAt(base + 3000, 500);
    peer.drain();
    peer.sendAt(base + 1000, 500);
    const ack = onlyAck(peer.drain());
    assert.deepEqual(ack.sackBlocks, [
      { left: base + 1000, right: base + 1500 },
      { left: base + 3000, right: base + 3500 },
    ]);
    assert.equal(conn.info().outOfOrderBytes, 1000);
  });

  it("delivers a segment that covers held out-of-order data together with it, in order", () => {
    const { h, peer, conn } = established();
    const base = peer.seq;
    peer.sendAt(base + 300, 300);
    peer.sendAt(base + 1200, 300);
    peer.drain();
    peer.sendAt(base, 1300); // covers the first block and part of the second
    const ack = onlyAck(peer.drain());
    assert.equal(ack.ackNumber, base + 1500);
    assert.equal(ack.sackBlocks, undefined);
    assertStream(readAll(conn, h.now), base, 1500);
  });

  it("trims a segment that extends past the advertised window to the window", () => {
    const { h, peer, conn } = established({ tcp: { recvBufferBytes: 4096, windowScaling: false } });
    const base = peer.seq;
    peer.sendAt(base, 1400);
    peer.sendAt(base + 1400, 1400);
    peer.drain();
    peer.sendAt(base + 2800, 1400); // 1296 fit
    h.advance(40); // the ACK may be delayed (RFC 9293 §3.8.6.3)
    const ack = onlyAck(peer.drain());
    assert.equal(ack.ackNumber, base + 4096);
    assert.equal(ack.windowLen, 0);
    assertStream(readAll(conn, h.now), base, 4096);
  });

  it("drops a segment wholly beyond the window and answers with an ACK (RFC 9293 §3.10.7.4)", () => {
    const { peer, conn } = established({ tcp: { recvBufferBytes: 4096, windowScaling: false } });
    const base = peer.seq;
    peer.sendAt(base + 4096, 100);
    const ack = onlyAck(peer.drain());
    assert.equal(ack.ackNumber, base);
    assert.equal(ack.sackBlocks, undefined, "nothing was kept");
    assert.equal(conn.info().outOfOrderBytes, 0);
  });

  it("ignores data after the peer's FIN and re-ACKs the FIN", () => {
    const { peer, conn } = established();
    const base = peer.seq;
    peer.send(100, { flags: TcpFlags.ACK | TcpFlags.FIN });
    peer.drain();
    assert.equal(conn.state, "CLOSE_WAIT");
    peer.sendAt(base + 101, 100);
    const ack = onlyAck(peer.drain());
    assert.equal(ack.ackNumber, base + 101);
    assert.equal(conn.readableBytes, 100);
  });
});

describe("TcpConnection SACK blocks (RFC 2018 §4)", () => {
  it("lists the block of the most recently received segment first, then by recency", () => {
    const { peer } = established();
    const base = peer.seq;
    const a = { left: base + 1000, right: base + 1100 };
    const b = { left: base + 2000, right: base + 2100 };
    const c = { left: base + 3000, right: base + 3100 };
    peer.sendAt(a.left, 100);
    assert.deepEqual(onlyAck(peer.drain()).sackBlocks, [a]);
    peer.sendAt(b.left, 100);
    assert.deepEqual(onlyAck(peer.drain()).sackBlocks, [b, a]);
    peer.sendAt(c.left, 100);
    assert.deepEqual(onlyAck(peer.drain()).sackBlocks, [c, b, a]);
    // A segment extending A makes A the most recent block.
    peer.sendAt(a.right, 100);
    assert.deepEqual(onlyAck(peer.drain()).sackBlocks, [
      { left: a.left, right: a.right + 100 },
      c,
      b,
    ]);
  });

  it("sends at most 3 SACK blocks when timestamps are on (RFC 2018 §3)", () => {
    const { peer } = established({ peer: { syn: WITH_TIMESTAMPS } });
    const base = peer.seq;
    for (let i = 1; i <= 5; i++) peer.sendAt(base + i * 1000, 100);
    const segs = peer.drain();
    const last = segs[segs.length - 1];
    assert.ok(last.timestamp, "timestamps are in use");
    assert.deepEqual(last.sackBlocks, [
      { left: base + 5000, right: base + 5100 },
      { left: base + 4000, right: base + 4100 },
      { left: base + 3000, right: base + 3100 },
    ]);
  });

  it("sends at most 4 SACK blocks without timestamps (RFC 2018 §3: 40 option bytes)", () => {
    const { peer } = established();
    const base = peer.seq;
    for (let i = 1; i <= 6; i++) peer.sendAt(base + i * 1000, 100);
    const segs = peer.drain();
    const last = segs[segs.length - 1];
    assert.equal(last.timestamp, undefined);
    assert.deepEqual(last.sackBlocks, [
      { left: base + 6000, right: base + 6100 },
      { left: base + 5000, right: base + 5100 },
      { left: base + 4000, right: base + 4100 },
      { left: base + 3000, right: base + 3100 },
    ]);
  });

  it("reports the older blocks again once the newer ones are filled (RFC 2018 §4)", () => {
    const { peer } = established({ peer: { syn: WITH_TIMESTAMPS } });
    const base = peer.seq;
    for (let i = 1; i <= 5; i++) peer.sendAt(base + i * 1000, 100);
    peer.drain();
    // Fill everything up to base + 3100: blocks 1-3 are consumed, 4 and 5 stay.
    peer.sendAt(base, 1000);
    peer.sendAt(base + 1100, 900);
    peer.drain();
    peer.sendAt(base + 2100, 900);
    const ack = onlyAck(peer.drain());
    assert.equal(ack.ackNumber, base + 3100);
    assert.deepEqual(ack.sackBlocks, [
      { left: base + 5000, right: base + 5100 },
      { left: base + 4000, right: base + 4100 },
    ]);
  });

  it("carries SACK blocks on data segments too while out-of-order data is held", () => {
    const { h, peer, conn } = established();
    const base = peer.seq;
    peer.sendAt(base + 1000, 100);
    peer.drain();
    conn.send(bytes(10), h.now);
    const [seg] = peer.drain();
    assert.equal(seg.payload.length, 10);
    assert.equal(seg.ackNumber, base);
    assert.deepEqual(seg.sackBlocks, [{ left: base + 1000, right: base + 1100 }]);
  });

  it("never reports a SACK block at or below the cumulative ACK", () => {
    const { peer } = established();
    const base = peer.seq;
    peer.sendAt(base + 1000, 500);
    peer.sendAt(base + 2000, 500);
    peer.drain();
    peer.sendAt(base, 1200); // covers the first block
    const ack = onlyAck(peer.drain());
    assert.equal(ack.ackNumber, base + 1500);
    for (const b of ack.sackBlocks ?? []) {
      assert.ok(seqGt(b.left, ack.ackNumber), `block ${b.left}-${b.right} is above the ACK`);
    }
    assert.deepEqual(ack.sackBlocks, [{ left: base + 2000, right: base + 2500 }]);
  });
});

describe("TcpConnection: held ranges that in-order text covers (RFC 2018 §4)", () => {
  it("drops a held range a longer in-order segment covered: no stale SACK block, no held bytes", () => {
    const { peer, conn, h } = established();
    const base = peer.seq;
    peer.sendAt(base + 500, 300);
    assert.deepEqual(onlyAck(peer.drain()).sackBlocks, [{ left: base + 500, right: base + 800 }]);
    // A retransmission coalesced by the peer (or a GSO packet the link passed whole) spans it.
    peer.sendAt(base, 1000);
    const ack = onlyAck(peer.drain());
    assert.equal(ack.ackNumber, (base + 1000) >>> 0);
    assert.equal(ack.sackBlocks, undefined, "the covered range is no SACK block");
    assert.equal(conn.info().outOfOrderBytes, 0);
    assertStream(readAll(conn, h.now), base, 1000);
  });
});

describe("TcpConnection: segment text shortened by the SACK option (RFC 2018 §3)", () => {
  it("keeps every data segment within the MTU while it reports SACK blocks", () => {
    const { peer, conn, h } = established();
    const base = peer.seq;
    peer.sendAt(base + 1000, 500); // a hole: every segment we send now carries a SACK block
    peer.drain();
    assert.equal(conn.send(bytes(8000), h.now), 8000);
    const data = peer.drain().filter((s) => s.payload.length > 0);
    assert.ok(data.length >= 2, `sent ${data.length} data segments`);
    for (const s of data) {
      assert.deepEqual(s.sackBlocks, [{ left: base + 1000, right: base + 1500 }]);
      // 1460 (the peer's MSS) less the 12 bytes of a one-block SACK option.
      assert.ok(s.payload.length <= 1448, `a segment of ${s.payload.length} bytes`);
    }
    assert.equal(h.stack.counters.txDrops["ipv4_exceeds_mtu"] ?? 0, 0, "nothing dropped for size");
  });
});
