import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TcpFlags } from "../../wire/mod.ts";
import {
  ACTIVE_LOCAL_PORT,
  ACTIVE_REMOTE_PORT,
  assertSilent,
  BARE_PEER,
  bytes,
  drainOne,
  established,
  FULL_PEER,
  HARNESS_PEER_IP,
  LOCAL_PORT,
  seg,
  TcpHarness,
  u32,
} from "./tcp_harness.ts";

const { ACK, FIN, PSH, RST, SYN } = TcpFlags;

const A = { srcPort: ACTIVE_LOCAL_PORT, dstPort: ACTIVE_REMOTE_PORT } as const;
const P = { srcPort: ACTIVE_REMOTE_PORT, dstPort: ACTIVE_LOCAL_PORT } as const;

describe("RST for a segment to a closed port (RFC 9293 §3.10.7.1)", () => {
  it("answers a SYN with <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>", () => {
    const h = new TcpHarness();
    h.inject({ dstPort: 81, seqNumber: 1000, flags: SYN, mss: 1460 });
    assert.deepEqual(h.drain(), [
      seg({ srcPort: 81, seqNumber: 0, ackNumber: 1001, flags: RST | ACK, windowLen: 0 }),
    ]);
    assert.equal(h.stack.tcp.stats.rstsSent, 1);
  });

  it("answers an ACK-bearing segment with <SEQ=SEG.ACK><CTL=RST>", () => {
    const h = new TcpHarness();
    h.inject({
      dstPort: 81,
      seqNumber: 1000,
      ackNumber: 0x12345678,
      flags: ACK | PSH,
      payload: bytes(20),
    });
    assert.deepEqual(h.drain(), [
      seg({ srcPort: 81, seqNumber: 0x12345678, flags: RST, windowLen: 0 }),
    ]);
  });

  it("counts data and FIN in SEG.LEN when the segment has no ACK", () => {
    const h = new TcpHarness();
    h.inject({ dstPort: 81, seqNumber: 1000, flags: PSH, payload: bytes(10) });
    h.inject({ dstPort: 81, seqNumber: 2000, flags: FIN });
    h.inject({ dstPort: 81, seqNumber: 3000, flags: SYN | FIN, payload: bytes(5) });
    assert.deepEqual(h.drain(), [
      seg({ srcPort: 81, seqNumber: 0, ackNumber: 1010, flags: RST | ACK, windowLen: 0 }),
      seg({ srcPort: 81, seqNumber: 0, ackNumber: 2001, flags: RST | ACK, windowLen: 0 }),
      seg({ srcPort: 81, seqNumber: 0, ackNumber: 3007, flags: RST | ACK, windowLen: 0 }),
    ]);
  });

  it("wraps SEG.SEQ+SEG.LEN modulo 2^32 (RFC 9293 §3.4)", () => {
    const h = new TcpHarness();
    h.inject({ dstPort: 81, seqNumber: 0xfffffffe, flags: SYN | PSH, payload: bytes(4) });
    assert.deepEqual(h.drain(), [
      seg({ srcPort: 81, seqNumber: 0, ackNumber: 3, flags: RST | ACK, windowLen: 0 }),
    ]);
  });

  it("never answers a RST, with or without ACK (RFC 9293 §3.10.7.1)", () => {
    const h = new TcpHarness();
    h.inject({ dstPort: 81, seqNumber: 1000, flags: RST });
    h.inject({ dstPort: 81, seqNumber: 1000, ackNumber: 5, flags: RST | ACK });
    assertSilent(h);
    assert.equal(h.drops("tcp_port_closed"), 2);
    assert.equal(h.stack.tcp.stats.rstsSent, 0);
  });

  it("counts the drop as tcp_port_closed", () => {
    const h = new TcpHarness();
    h.inject({ dstPort: 81, seqNumber: 1, flags: SYN });
    assert.equal(h.drops("tcp_port_closed"), 1);
  });

  it("drops a segment with a bad checksum without a RST", () => {
    const h = new TcpHarness();
    h.inject({ dstPort: 81, seqNumber: 1, flags: SYN, payload: bytes(3) }, { corrupt: true });
    assertSilent(h);
  });

  it("answers a segment for a connection that was reset as if the port were closed", () => {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const { conn, iss } = established({ harness: h, peer: BARE_PEER });
    h.inject({ seqNumber: 1001, flags: RST });
    assert.equal(conn.state, "CLOSED");
    h.inject({ seqNumber: 1001, ackNumber: u32(iss + 1), flags: ACK, payload: bytes(3) });
    assert.deepEqual(h.drain(), [seg({ seqNumber: iss + 1, flags: RST, windowLen: 0 })]);
  });
});

describe("a listener (RFC 9293 §3.10.7.2)", () => {
  it("ignores a RST", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: RST });
    h.inject({ seqNumber: 1000, ackNumber: 77, flags: RST | ACK });
    assertSilent(h);
    assert.equal(h.drops("tcp_rst_to_listener"), 2);
  });

  it("answers an ACK that is no valid cookie with <SEQ=SEG.ACK><CTL=RST>", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, ackNumber: 4242, flags: ACK });
    assert.deepEqual(h.drain(), [seg({ seqNumber: 4242, flags: RST, windowLen: 0 })]);
    assert.equal(h.stack.tcp.active.size, 0);
  });

  it("answers a SYN-ACK with <SEQ=SEG.ACK><CTL=RST>", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, ackNumber: 99, flags: SYN | ACK });
    assert.deepEqual(h.drain(), [seg({ seqNumber: 99, flags: RST, windowLen: 0 })]);
    assert.equal(h.stack.tcp.active.size, 0);
  });

  it("drops a segment with neither SYN, ACK nor RST silently", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: PSH, payload: bytes(4) });
    h.inject({ seqNumber: 1000, flags: FIN });
    assertSilent(h);
    assert.equal(h.drops("tcp_listen_bad_segment"), 2);
  });

  it("resets the connections still queued when it closes (RFC 9293 §3.10.5)", () => {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const { conn, listener } = established({ harness: h, peer: BARE_PEER });
    // A second connection completes and waits in the accept queue; a third is half-open.
    h.inject({ srcPort: 40001, seqNumber: 5000, flags: SYN });
    const synAck2 = drainOne(h);
    h.inject({
      srcPort: 40001,
      seqNumber: 5001,
      ackNumber: u32(synAck2.seqNumber + 1),
      flags: ACK,
    });
    h.inject({ srcPort: 40002, seqNumber: 9000, flags: SYN });
    const synAck3 = drainOne(h);
    h.stack.tcp.closeListener(listener!, h.now);
    const out = h.drain().sort((a, b) => a.dstPort - b.dstPort);
    assert.deepEqual(out, [
      seg({ dstPort: 40001, seqNumber: synAck2.seqNumber + 1, flags: RST, windowLen: 0 }),
      seg({ dstPort: 40002, seqNumber: synAck3.seqNumber + 1, flags: RST, windowLen: 0 }),
    ]);
    assert.equal(conn.state, "ESTABLISHED", "an accepted connection outlives its listener");
    assert.equal(h.stack.tcp.active.size, 1);
    // The port is closed now.
    h.inject({ srcPort: 40003, seqNumber: 1, flags: SYN });
    assert.deepEqual(h.drain(), [
      seg({ dstPort: 40003, seqNumber: 0, ackNumber: 2, flags: RST | ACK, windowLen: 0 }),
    ]);
  });
});

describe("SYN-SENT (RFC 9293 §3.10.7.3)", () => {
  function synSent() {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const c = h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now, {
      localPort: ACTIVE_LOCAL_PORT,
    });
    const iss = drainOne(h).seqNumber;
    return { h, c, iss };
  }

  it("answers an ACK at or below ISS with <SEQ=SEG.ACK><CTL=RST> and stays in SYN-SENT", () => {
    const { h, c, iss } = synSent();
    h.inject({ ...P, seqNumber: 700, ackNumber: iss, flags: SYN | ACK });
    assert.deepEqual(h.drain(), [seg({ ...A, seqNumber: iss, flags: RST, windowLen: 0 })]);
    h.inject({ ...P, seqNumber: 700, ackNumber: u32(iss - 100), flags: ACK });
    assert.deepEqual(h.drain(), [seg({ ...A, seqNumber: iss - 100, flags: RST, windowLen: 0 })]);
    assert.equal(c.state, "SYN_SENT");
  });

  it("answers an ACK above SND.NXT with <SEQ=SEG.ACK><CTL=RST>", () => {
    const { h, c, iss } = synSent();
    h.inject({ ...P, seqNumber: 700, ackNumber: u32(iss + 2), flags: SYN | ACK });
    assert.deepEqual(h.drain(), [seg({ ...A, seqNumber: iss + 2, flags: RST, windowLen: 0 })]);
    assert.equal(c.state, "SYN_SENT");
    // The real SYN-ACK still completes the handshake.
    h.inject({ ...P, seqNumber: 700, ackNumber: u32(iss + 1), flags: SYN | ACK });
    assert.equal(c.state, "ESTABLISHED");
  });

  it("drops a RST whose ACK is unacceptable without answering", () => {
    const { h, c, iss } = synSent();
    h.inject({ ...P, seqNumber: 0, ackNumber: u32(iss + 5), flags: RST | ACK });
    assertSilent(h);
    assert.equal(c.state, "SYN_SENT");
  });

  it("ignores a RST without ACK (RFC 9293 §3.10.7.3, RFC 5961 §3.2)", () => {
    const { h, c } = synSent();
    h.inject({ ...P, seqNumber: 0, flags: RST });
    assertSilent(h);
    assert.equal(c.state, "SYN_SENT");
  });

  it("fails with ECONNREFUSED on a RST whose ACK acknowledges the SYN, sending nothing", () => {
    const { h, c, iss } = synSent();
    h.inject({ ...P, seqNumber: 0, ackNumber: u32(iss + 1), flags: RST | ACK });
    assertSilent(h);
    assert.equal(c.state, "CLOSED");
    assert.equal(c.error, "ECONNREFUSED");
    assert.equal(h.stack.tcp.active.size, 0);
    assert.equal(h.stack.tcp.nextDeadline(), undefined, "the SYN timer is stopped");
  });
});

describe("SYN-RECEIVED (RFC 9293 §3.10.7.4)", () => {
  function synReceived() {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const l = h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: SYN });
    const iss = drainOne(h).seqNumber;
    const [c] = l.synQueue;
    return { h, l, c, iss };
  }

  it("answers an ACK that does not acknowledge our SYN with <SEQ=SEG.ACK><CTL=RST>", () => {
    const { h, c, iss } = synReceived();
    h.inject({ seqNumber: 1001, ackNumber: iss, flags: ACK });
    assert.deepEqual(h.drain(), [seg({ seqNumber: iss, flags: RST, windowLen: 0 })]);
    assert.equal(c.state, "SYN_RECEIVED");
  });

  it("answers an ACK above SND.NXT with <SEQ=SEG.ACK><CTL=RST> and keeps the half-open connection", () => {
    const { h, l, c, iss } = synReceived();
    h.inject({ seqNumber: 1001, ackNumber: u32(iss + 1000), flags: ACK });
    assert.deepEqual(h.drain(), [seg({ seqNumber: iss + 1000, flags: RST, windowLen: 0 })]);
    assert.equal(c.state, "SYN_RECEIVED");
    h.inject({ seqNumber: 1001, ackNumber: u32(iss + 1), flags: ACK });
    assert.equal(c.state, "ESTABLISHED");
    assert.equal(l.acceptQueue.length, 1);
  });

  it("returns to LISTEN on an acceptable RST: the half-open connection vanishes without an answer", () => {
    const { h, l, c } = synReceived();
    h.inject({ seqNumber: 1001, flags: RST });
    assertSilent(h);
    assert.equal(c.state, "CLOSED");
    assert.equal(l.synQueue.size, 0);
    assert.equal(l.acceptQueue.length, 0);
    assert.equal(h.stack.tcp.active.size, 0);
    // The listener still accepts new connections.
    h.inject({ srcPort: 40001, seqNumber: 1, flags: SYN });
    assert.equal(drainOne(h).flags, SYN | ACK);
  });

  it("ignores an out-of-window RST", () => {
    const { h, c } = synReceived();
    h.inject({ seqNumber: 1001 + 70_000, flags: RST });
    h.inject({ seqNumber: 990, flags: RST });
    assertSilent(h);
    assert.equal(c.state, "SYN_RECEIVED");
  });

  it("ignores a segment without ACK", () => {
    const { h, c } = synReceived();
    h.inject({ seqNumber: 1001, flags: PSH, payload: bytes(3) });
    assertSilent(h);
    assert.equal(c.state, "SYN_RECEIVED");
  });

  it("aborts with <SEQ=SND.NXT><CTL=RST> (RFC 9293 §3.10.5)", () => {
    const { h, c, iss } = synReceived();
    c.abort(h.now);
    assert.deepEqual(h.drain(), [seg({ seqNumber: iss + 1, flags: RST, windowLen: 0 })]);
    assert.equal(c.state, "CLOSED");
  });
});

describe("synchronized states", () => {
  it("resets on a RST at exactly RCV.NXT with ECONNRESET and sends nothing (RFC 9293 §3.10.7.4, RFC 5961 §3.2)", () => {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const { conn } = established({ harness: h, peer: BARE_PEER });
    h.inject({ seqNumber: 1001, flags: RST });
    assertSilent(h);
    assert.equal(conn.state, "CLOSED");
    assert.equal(conn.error, "ECONNRESET");
    assert.ok(conn.events & 8);
    assert.equal(h.stack.tcp.active.size, 0);
  });

  it("resets on a RST,ACK at RCV.NXT whatever its ACK field", () => {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const { conn } = established({ harness: h, peer: BARE_PEER });
    h.inject({ seqNumber: 1001, ackNumber: 12345, flags: RST | ACK });
    assert.equal(conn.error, "ECONNRESET");
  });

  it("accepts a RST at RCV.NXT even when it carries an old timestamp (RFC 7323 §5.3 R1 exempts RSTs)", () => {
    const h = new TcpHarness();
    const { conn } = established({ harness: h, peer: FULL_PEER });
    h.inject({ seqNumber: 1001, flags: RST, timestamp: { value: 1, echo: 0 } });
    assert.equal(conn.state, "CLOSED");
    assert.equal(conn.error, "ECONNRESET");
  });

  it("aborts with <SEQ=SND.NXT><CTL=RST> and removes the connection (RFC 9293 §3.10.5)", () => {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const { conn, iss } = established({ harness: h, peer: BARE_PEER });
    conn.send(bytes(100), h.now);
    h.drain();
    conn.abort(h.now);
    assert.deepEqual(h.drain(), [seg({ seqNumber: iss + 101, flags: RST, windowLen: 0 })]);
    assert.equal(conn.state, "CLOSED");
    assert.equal(h.stack.tcp.active.size, 0);
    assert.equal(h.stack.tcp.nextDeadline(), undefined);
  });

  it("resets instead of closing when unread data would be lost (RFC 2525 §2.17)", () => {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const { conn, iss } = established({ harness: h, peer: BARE_PEER });
    h.inject({ seqNumber: 1001, ackNumber: u32(iss + 1), flags: ACK | PSH, payload: bytes(10) });
    h.drain();
    conn.close(h.now);
    assert.deepEqual(h.drain(), [seg({ seqNumber: iss + 1, flags: RST, windowLen: 0 })]);
    assert.equal(conn.state, "CLOSED");
  });

  it("resets when data arrives for a connection the application closed (RFC 2525 §2.17)", () => {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const { conn, iss } = established({ harness: h, peer: BARE_PEER });
    conn.close(h.now);
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: iss + 1, ackNumber: 1001, flags: FIN | ACK, windowLen: 65535 }),
    ]);
    h.inject({ seqNumber: 1001, ackNumber: u32(iss + 2), flags: ACK | PSH, payload: bytes(10) });
    assert.deepEqual(h.drain(), [seg({ seqNumber: iss + 2, flags: RST, windowLen: 0 })]);
    assert.equal(conn.state, "CLOSED");
  });

  it("does not answer an out-of-window RST (RFC 5961 §3.2)", () => {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const { conn } = established({ harness: h, peer: BARE_PEER });
    h.inject({ seqNumber: 1000, flags: RST });
    h.inject({ seqNumber: u32(1001 + 65535), flags: RST });
    h.inject({ seqNumber: u32(1001 - 0x40000000), flags: RST | ACK });
    assertSilent(h);
    assert.equal(conn.state, "ESTABLISHED");
    assert.equal(h.drops("tcp_rst_out_of_window"), 3);
  });
});
