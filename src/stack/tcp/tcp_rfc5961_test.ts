import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TcpFlags } from "../../wire/mod.ts";
import {
  assertSilent,
  BARE_PEER,
  bytes,
  drainOne,
  established,
  FULL_PEER,
  seg,
  TcpHarness,
  u32,
} from "./tcp_harness.ts";
import type { TcpLayerLimits } from "./tcp_layer.ts";

const { ACK, FIN, PSH, RST, SYN } = TcpFlags;

/**
 * An established connection with a peer that offered no options and a
 * 1000-byte window, and the ACK we send with nothing changed:
 * <SEQ=SND.NXT><ACK=RCV.NXT>.
 */
function withPureAck(tcpLimits: Partial<TcpLayerLimits> = {}) {
  const o = established({ tcpLimits, peer: { ...BARE_PEER, window: 1000 }, synWindow: 1000 });
  const pureAck = (sndNxt = o.s, rcvNxt = 1001, windowLen = 65535) =>
    seg({ seqNumber: sndNxt, ackNumber: rcvNxt, flags: ACK, windowLen });
  return { ...o, pureAck };
}

describe("RST with a wrong sequence number (RFC 5961 §3.2)", () => {
  it("answers an in-window RST whose SEG.SEQ is not RCV.NXT with a challenge ACK", () => {
    const { h, conn, pureAck } = withPureAck();
    h.inject({ seqNumber: 1002, flags: RST });
    assert.deepEqual(h.drain(), [pureAck()]);
    assert.equal(conn.state, "ESTABLISHED");
    assert.equal(conn.info().challengeAcks, 1);
    assert.equal(h.drops("tcp_rst_challenged"), 1);
  });

  it("challenges a RST at the last sequence number of the window and ignores one just past it", () => {
    const { h, conn, pureAck } = withPureAck();
    h.inject({ seqNumber: u32(1001 + 65534), flags: RST });
    assert.deepEqual(h.drain(), [pureAck()]);
    h.inject({ seqNumber: u32(1001 + 65535), flags: RST });
    assertSilent(h);
    assert.equal(conn.state, "ESTABLISHED");
  });

  it("is reset by the RST the peer sends in answer to the challenge ACK (RFC 5961 §3.2)", () => {
    const { h, conn, pureAck } = withPureAck();
    h.inject({ seqNumber: 5000, flags: RST | ACK });
    const challenge = drainOne(h);
    assert.deepEqual(challenge, pureAck());
    h.inject({ seqNumber: challenge.ackNumber, flags: RST });
    assert.equal(conn.state, "CLOSED");
    assert.equal(conn.error, "ECONNRESET");
  });

  it("challenges a wrong-sequence RST in SYN-RECEIVED too", () => {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const l = h.stack.tcp.listen(80, 8);
    h.inject({ seqNumber: 1000, flags: SYN });
    const iss = drainOne(h).seqNumber;
    h.inject({ seqNumber: 1500, flags: RST });
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: iss + 1, ackNumber: 1001, flags: ACK, windowLen: 65535 }),
    ]);
    assert.equal([...l.synQueue][0].state, "SYN_RECEIVED");
  });

  for (const state of ["CLOSE_WAIT", "FIN_WAIT_1", "FIN_WAIT_2"] as const) {
    it(`challenges a wrong-sequence RST in ${state}`, () => {
      const { h, conn, iss } = withPureAck();
      let rcvNxt = 1001;
      let sndNxt = iss + 1;
      if (state === "CLOSE_WAIT") {
        h.inject({ seqNumber: 1001, ackNumber: u32(iss + 1), flags: FIN | ACK, windowLen: 1000 });
        rcvNxt = 1002;
      } else {
        conn.shutdownWrite(h.now);
        sndNxt = iss + 2;
        if (state === "FIN_WAIT_2") {
          h.inject({ seqNumber: 1001, ackNumber: u32(iss + 2), flags: ACK, windowLen: 1000 });
        }
      }
      h.drain();
      assert.equal(conn.state, state);
      h.inject({ seqNumber: u32(rcvNxt + 10), flags: RST });
      assert.deepEqual(h.drain(), [
        // The FIN took one sequence number; the right edge stays (RFC 7323 §2.4).
        seg({
          seqNumber: sndNxt,
          ackNumber: rcvNxt,
          flags: ACK,
          windowLen: 65535 - (rcvNxt - 1001),
        }),
      ]);
      assert.equal(conn.state, state);
    });
  }
});

describe("SYN in a synchronized state (RFC 5961 §4.2)", () => {
  it("answers an in-window SYN with a challenge ACK and keeps the connection", () => {
    const { h, conn, pureAck } = withPureAck();
    h.inject({ seqNumber: 1500, flags: SYN, mss: 1460 });
    assert.deepEqual(h.drain(), [pureAck()]);
    assert.equal(conn.state, "ESTABLISHED");
    assert.equal(conn.info().challengeAcks, 1);
    assert.equal(h.drops("tcp_syn_challenged"), 1);
  });

  it("answers a SYN at exactly RCV.NXT with a challenge ACK, not a reset", () => {
    const { h, conn, pureAck } = withPureAck();
    h.inject({ seqNumber: 1001, flags: SYN });
    assert.deepEqual(h.drain(), [pureAck()]);
    assert.equal(conn.state, "ESTABLISHED");
  });

  it("answers a SYN outside the window with an ACK too (irrespective of the sequence number)", () => {
    const { h, conn, pureAck } = withPureAck();
    h.inject({ seqNumber: 0x80000000, flags: SYN });
    assert.deepEqual(h.drain(), [pureAck()]);
    assert.equal(conn.state, "ESTABLISHED");
  });

  it("answers a retransmission of the original SYN after the handshake with an ACK", () => {
    const { h, pureAck } = withPureAck();
    h.inject({ seqNumber: 1000, flags: SYN });
    assert.deepEqual(h.drain(), [pureAck()]);
  });

  it("answers a SYN-ACK in ESTABLISHED with a challenge ACK", () => {
    const { h, conn, iss, pureAck } = withPureAck();
    h.inject({ seqNumber: 1001, ackNumber: u32(iss + 1), flags: SYN | ACK });
    assert.deepEqual(h.drain(), [pureAck()]);
    assert.equal(conn.state, "ESTABLISHED");
  });

  it("does not deliver data that rides on a challenged SYN", () => {
    const { h, conn, iss, pureAck } = withPureAck();
    h.inject({ seqNumber: 1000, ackNumber: u32(iss + 1), flags: SYN | ACK, payload: bytes(10) });
    assert.deepEqual(h.drain(), [pureAck()]);
    assert.equal(conn.readableBytes, 0);
  });
});

describe("challenge ACK rate limit (RFC 5961 §7)", () => {
  it("sends at most challengeAcksPerSecond challenge ACKs per second", () => {
    const { h, conn, pureAck } = withPureAck({ challengeAcksPerSecond: 3 });
    for (let i = 0; i < 5; i++) h.inject({ seqNumber: 1002 + i, flags: RST });
    assert.deepEqual(h.drain(), [pureAck(), pureAck(), pureAck()]);
    assert.equal(h.stack.tcp.stats.challengeAcksLimited, 2);
    assert.equal(conn.info().challengeAcks, 3);
    h.advance(999);
    h.inject({ seqNumber: 1002, flags: SYN });
    assertSilent(h, "still within the same second");
    h.advance(1);
    h.inject({ seqNumber: 1002, flags: SYN });
    assert.deepEqual(h.drain(), [pureAck()]);
  });

  it("shares one budget across every connection of the stack", () => {
    const h = new TcpHarness({
      tcp: { timestamps: false },
      tcpLimits: { challengeAcksPerSecond: 2 },
    });
    const a = established({ harness: h, peer: BARE_PEER });
    const b = established({ harness: h, peer: { isn: 7000, port: 40001, syn: {} } });
    h.inject({ seqNumber: 1005, flags: RST });
    h.inject({ srcPort: 40001, seqNumber: 7005, flags: RST });
    h.inject({ srcPort: 40001, seqNumber: 7006, flags: RST });
    h.inject({ seqNumber: 1006, flags: SYN });
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: a.iss + 1, ackNumber: 1001, flags: ACK, windowLen: 65535 }),
      seg({ dstPort: 40001, seqNumber: b.iss + 1, ackNumber: 7001, flags: ACK, windowLen: 65535 }),
    ]);
    assert.equal(h.stack.tcp.stats.challengeAcksLimited, 2);
  });

  it("never rate-limits the reset by an exact RST", () => {
    const { h, conn } = withPureAck({ challengeAcksPerSecond: 1 });
    h.inject({ seqNumber: 1002, flags: RST });
    h.inject({ seqNumber: 1003, flags: RST });
    h.drain();
    h.inject({ seqNumber: 1001, flags: RST });
    assert.equal(conn.state, "CLOSED");
  });
});

describe("ACK acceptability (RFC 5961 §5.2, RFC 9293 §3.10.7.4 fifth)", () => {
  it("answers an ACK of data never sent with an ACK and drops the segment, data included", () => {
    const { h, conn, iss, pureAck } = withPureAck();
    h.inject({
      seqNumber: 1001,
      ackNumber: u32(iss + 2),
      flags: ACK | PSH,
      payload: bytes(10),
      windowLen: 1000,
    });
    assert.deepEqual(h.drain(), [pureAck()]);
    assert.equal(conn.readableBytes, 0);
    assert.equal(h.drops("tcp_ack_unsent"), 1);
    assert.deepEqual(conn.debugSeq().sndUna, u32(iss + 1));
  });

  it("accepts an ACK of exactly SND.NXT", () => {
    const { h, conn, iss } = withPureAck();
    conn.send(bytes(100), h.now);
    h.drain();
    h.inject({ seqNumber: 1001, ackNumber: u32(iss + 101), flags: ACK, windowLen: 1000 });
    assertSilent(h);
    assert.equal(conn.debugSeq().sndUna, u32(iss + 101));
    assert.equal(conn.info().bytesInFlight, 0);
  });

  it("drops a segment whose ACK is below SND.UNA − MAX.SND.WND and sends a challenge ACK", () => {
    const { h, conn, iss, pureAck } = withPureAck();
    // MAX.SND.WND is 1000 (no scaling): SND.UNA − 1001 is too old.
    h.inject({
      seqNumber: 1001,
      ackNumber: u32(iss + 1 - 1001),
      flags: ACK | PSH,
      payload: bytes(10),
      windowLen: 1000,
    });
    assert.deepEqual(h.drain(), [pureAck()]);
    assert.equal(conn.readableBytes, 0);
    assert.equal(h.drops("tcp_ack_too_old"), 1);
    assert.equal(conn.info().challengeAcks, 1);
  });

  it("accepts the data of a segment whose old ACK is within MAX.SND.WND of SND.UNA", () => {
    const { h, conn, iss } = withPureAck({});
    h.inject({
      seqNumber: 1001,
      ackNumber: u32(iss + 1 - 1000),
      flags: ACK | PSH,
      payload: bytes(10),
      windowLen: 1000,
    });
    assert.equal(conn.readableBytes, 10);
    assert.equal(h.drops("tcp_ack_too_old"), 0);
  });

  it("rate-limits the challenge ACKs of too-old ACKs", () => {
    const { h, pureAck, iss } = withPureAck({ challengeAcksPerSecond: 1 });
    for (let i = 0; i < 3; i++) {
      h.inject({ seqNumber: 1001, ackNumber: u32(iss - 5000), flags: ACK, windowLen: 1000 });
    }
    assert.deepEqual(h.drain(), [pureAck()]);
  });

  it("ignores the window of a segment that was dropped for its ACK", () => {
    const { h, conn, iss } = withPureAck();
    h.inject({ seqNumber: 1001, ackNumber: u32(iss + 50), flags: ACK, windowLen: 0 });
    h.drain();
    assert.equal(conn.info().sendWindow, 1000);
  });
});

describe("the sequence number check (RFC 9293 §3.10.7.4 first)", () => {
  it("answers an unacceptable data segment with an ACK and drops it", () => {
    const { h, conn, iss, pureAck } = withPureAck();
    h.inject({
      seqNumber: u32(1001 + 70_000),
      ackNumber: u32(iss + 1),
      flags: ACK,
      payload: bytes(10),
      windowLen: 1000,
    });
    h.inject({
      seqNumber: 900,
      ackNumber: u32(iss + 1),
      flags: ACK,
      payload: bytes(10),
      windowLen: 1000,
    });
    assert.deepEqual(h.drain(), [pureAck(), pureAck()]);
    assert.equal(conn.readableBytes, 0);
    assert.equal(h.drops("tcp_out_of_window"), 2);
  });

  it("accepts a segment that starts before RCV.NXT but ends inside the window, keeping only the new bytes", () => {
    const { h, conn, iss } = withPureAck();
    h.inject({
      seqNumber: 991,
      ackNumber: u32(iss + 1),
      flags: ACK | PSH,
      payload: bytes(20),
      windowLen: 1000,
    });
    assert.equal(conn.readableBytes, 10);
    assert.deepEqual(conn.read(100, h.now), bytes(10, 10));
  });
});

describe("the ACKs for unacceptable segments are rate-limited (RFC 9293 §3.10.7.4, RFC 5961 §7)", () => {
  it("answers at most unacceptableAcksPerSecond out-of-window segments per second and counts the rest", () => {
    const { h, s, pureAck } = withPureAck({ unacceptableAcksPerSecond: 3 });
    for (let i = 0; i < 10; i++) {
      h.inject({ seqNumber: 900, ackNumber: s, flags: ACK, payload: bytes(10), windowLen: 1000 });
    }
    assert.deepEqual(h.drain(), [pureAck(), pureAck(), pureAck()]);
    assert.equal(h.drops("tcp_out_of_window"), 10);
    assert.equal(h.stack.tcp.stats.unacceptableAcksLimited, 7);
    h.advance(1000);
    h.inject({ seqNumber: 900, ackNumber: s, flags: ACK, payload: bytes(10), windowLen: 1000 });
    assert.deepEqual(h.drain(), [pureAck()], "a new second, a new allowance");
  });

  it("answers 100 of 100,000 forged segments in one second by default (not 66,666)", () => {
    const { h, s, pureAck } = withPureAck();
    const frame = h.frame({ seqNumber: 900, ackNumber: s, flags: ACK, payload: bytes(10) });
    for (let i = 0; i < 100_000; i++) h.stack.input(frame, h.now);
    const out = h.drain();
    assert.equal(out.length, 100);
    assert.deepEqual(out[99], pureAck());
    assert.equal(h.stack.tcp.stats.unacceptableAcksLimited, 99_900);
  });

  it("limits the ACKs of PAWS-rejected segments and of ACKs for unsent data the same way", () => {
    const o = established({
      peer: FULL_PEER,
      tcpLimits: { unacceptableAcksPerSecond: 2 },
    });
    const { h, s } = o;
    for (let i = 0; i < 3; i++) {
      h.inject({ seqNumber: 1001, ackNumber: s, flags: ACK, timestamp: { value: 5, echo: 0 } });
    }
    assert.equal(h.drops("tcp_paws_rejected"), 3);
    assert.equal(h.drain().length, 2);
    h.inject({
      seqNumber: 1001,
      ackNumber: u32(s + 100),
      flags: ACK,
      timestamp: { value: 200, echo: 0 },
    });
    assert.equal(h.drops("tcp_ack_unsent"), 1);
    assertSilent(h, "the allowance of this second is spent");
    assert.equal(h.stack.tcp.stats.unacceptableAcksLimited, 2);
  });

  it("keeps the challenge ACK allowance separate (RFC 5961 §7)", () => {
    const { h, s, pureAck } = withPureAck({ unacceptableAcksPerSecond: 1 });
    h.inject({ seqNumber: 900, ackNumber: s, flags: ACK, payload: bytes(10), windowLen: 1000 });
    h.inject({ seqNumber: 900, ackNumber: s, flags: ACK, payload: bytes(10), windowLen: 1000 });
    h.inject({ seqNumber: 1002, flags: RST });
    assert.deepEqual(h.drain(), [pureAck(), pureAck()], "one for the first segment, one challenge");
  });
});
