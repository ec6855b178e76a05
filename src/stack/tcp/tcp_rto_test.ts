import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  bytes,
  dataSegs,
  established,
  flagsOf,
  HARNESS_PEER_IP,
  type SynOptions,
  TcpHarness,
} from "./tcp_harness.ts";
import { TcpFlags } from "../../wire/mod.ts";
import { TcpEvent } from "./tcp_connection.ts";

/** An established connection whose RTT estimator has exactly one sample of `rtt` ms (the SYN). */
function withRtt(rtt: number, tcp = {}, syn: SynOptions = { mss: 1460 }) {
  return established({ active: true, handshakeRttMs: rtt, tcp, peer: { syn } });
}

describe("TcpConnection retransmission timer (RFC 6298)", () => {
  it("retransmits an unanswered SYN after the initial RTO of 1 s (RFC 6298 §2.1)", () => {
    const h = new TcpHarness();
    h.stack.tcp.connect(HARNESS_PEER_IP, 7, h.now, { localPort: 5000 });
    const [syn] = h.drain();
    assert.equal(syn.flags, TcpFlags.SYN);
    h.advance(999);
    assert.deepEqual(h.drain(), []);
    h.advance(1);
    const [again] = h.drain();
    assert.equal(again.flags, TcpFlags.SYN);
    assert.equal(again.seqNumber, syn.seqNumber);
  });

  it("times the first data segment with the 1 s initial RTO when there is no RTT sample (RFC 6298 §2.1)", () => {
    const { h, peer, conn } = established(); // passive, no timestamps: the handshake gives no sample
    assert.equal(conn.info().rttMs, null);
    assert.equal(conn.info().rtoMs, 1000);
    conn.send(bytes(100), h.now);
    const [first] = peer.drain();
    h.advance(999);
    assert.deepEqual(peer.drain(), []);
    h.advance(1);
    const [rxt] = peer.drain();
    assert.equal(rxt.seqNumber, first.seqNumber);
    assert.deepEqual(rxt.payload, first.payload);
  });

  it("sets SRTT = R and RTTVAR = R/2 from the first sample, RTO = SRTT + 4*RTTVAR (RFC 6298 §2.2)", () => {
    const { conn } = withRtt(100);
    const i = conn.info();
    assert.equal(i.rttMs, 100);
    assert.equal(i.rttVarMs, 50);
    assert.equal(i.rtoMs, 300);
  });

  it("updates RTTVAR then SRTT with β = 1/4, α = 1/8 on later samples (RFC 6298 §2.3)", () => {
    const { h, peer, conn } = withRtt(100);
    conn.send(bytes(100), h.now);
    peer.drain();
    h.advance(200);
    peer.drainAndAck();
    peer.ackTo(conn.debugSeq().sndMax);
    const i = conn.info();
    assert.equal(i.rttVarMs, 62.5); // 3/4 * 50 + 1/4 * |100 - 200|
    assert.equal(i.rttMs, 112.5); // 7/8 * 100 + 1/8 * 200
    assert.equal(i.rtoMs, 362.5);
  });

  it("keeps the RTO at least minRtoMs (RFC 6298 §2.4; 200 ms as Linux)", () => {
    const { conn } = withRtt(10);
    assert.equal(conn.info().rttMs, 10);
    assert.equal(conn.info().rtoMs, 200);
  });

  it("measures RTT from the echoed timestamp when timestamps are on (RFC 7323 §4.1)", () => {
    const { h, peer, conn } = withRtt(100, {}, { mss: 1460, timestamp: { value: 5000, echo: 0 } });
    conn.send(bytes(100), h.now);
    peer.drain(); // the peer echoes this segment's TSval
    h.advance(60);
    peer.ackTo(conn.debugSeq().sndMax);
    assert.equal(conn.info().rttMs, 100 + (60 - 100) / 8);
  });

  it("takes no RTT sample from a segment retransmitted after a timeout (Karn, RFC 6298 §3)", () => {
    const { h, peer, conn } = withRtt(100);
    conn.send(bytes(100), h.now);
    peer.drain();
    h.advance(300);
    assert.equal(dataSegs(peer.drain()).length, 1, "retransmitted at the RTO");
    h.advance(50);
    peer.ackTo(conn.debugSeq().sndMax);
    assert.equal(conn.info().rttMs, 100, "no sample: the ACK is ambiguous");
    assert.equal(conn.info().rttVarMs, 50);
  });

  it("takes no RTT sample from a segment retransmitted by fast retransmit (Karn, RFC 6298 §3)", () => {
    const { h, peer, conn } = withRtt(100);
    conn.send(bytes(1460 * 5), h.now);
    const sent = peer.drain();
    assert.equal(sent.length, 5);
    h.advance(100);
    // The first segment is lost: three duplicate ACKs, then its retransmission is ACKed.
    for (let i = 0; i < 3; i++) peer.inject({});
    const [rxt] = peer.drain();
    assert.equal(rxt.seqNumber, sent[0].seqNumber);
    h.advance(100);
    peer.ackTo(conn.debugSeq().sndMax);
    assert.equal(conn.info().rttMs, 100, "the timed segment was retransmitted: no sample");
  });

  it("doubles the RTO on each expiry (RFC 6298 §5.5) and restarts the timer with it (§5.6)", () => {
    const { h, peer, conn } = withRtt(100); // RTO 300
    conn.send(bytes(100), h.now);
    peer.drain();
    const start = h.now;
    const times: number[] = [];
    for (let i = 0; i < 4; i++) {
      h.fireNextTimer();
      assert.equal(dataSegs(peer.drain()).length, 1);
      times.push(h.now - start);
    }
    assert.deepEqual(times, [300, 900, 2100, 4500]);
    assert.equal(conn.info().rtoMs, 4800);
    assert.equal(conn.info().timeouts, 4);
  });

  it("caps the backed-off RTO at maxRtoMs (RFC 6298 §2.5)", () => {
    const { h, peer, conn } = established({ tcp: { maxRtoMs: 2500 } });
    conn.send(bytes(100), h.now);
    peer.drain();
    const start = h.now;
    const gaps: number[] = [];
    let last = start;
    for (let i = 0; i < 4; i++) {
      h.fireNextTimer();
      peer.drain();
      gaps.push(h.now - last);
      last = h.now;
    }
    assert.deepEqual(gaps, [1000, 2000, 2500, 2500]);
  });

  it("aborts with ETIMEDOUT after maxRetransmits timeouts (RFC 9293 §3.8.3 R2)", () => {
    const { h, peer, conn } = established({ tcp: { maxRetransmits: 3 } });
    conn.send(bytes(100), h.now);
    peer.drain();
    const start = h.now;
    h.advance(1000 + 2000 + 4000);
    assert.equal(dataSegs(peer.drain()).length, 3);
    assert.equal(conn.state, "ESTABLISHED");
    h.advance(7999);
    assert.equal(conn.state, "ESTABLISHED");
    h.advance(1);
    assert.equal(h.now - start, 15000);
    assert.equal(conn.state, "CLOSED");
    assert.equal(conn.error, "ETIMEDOUT");
    assert.ok(conn.events & TcpEvent.CLOSED);
    assert.deepEqual(
      peer.drain().filter((s) => s.payload.length > 0),
      [],
      "no fourth retransmission",
    );
    assert.equal(h.stack.tcp.active.size, 0);
    assert.equal(h.stack.tcp.timeWait.size, 0);
    assert.equal(conn.nextDeadline(), undefined);
  });

  it("retransmits only the first unacknowledged segment when the timer expires (RFC 6298 §5.4)", () => {
    const { h, peer, conn } = withRtt(100);
    conn.send(bytes(1460 * 4), h.now);
    const sent = peer.drain();
    assert.equal(sent.length, 4);
    h.advance(300);
    const rxt = peer.drain();
    assert.equal(rxt.length, 1);
    assert.equal(rxt[0].seqNumber, sent[0].seqNumber);
    assert.equal(rxt[0].payload.length, 1460);
    assert.equal(conn.info().retransmits, 1);
  });

  it("restarts the timer when an ACK acknowledges new data (RFC 6298 §5.3)", () => {
    const { h, peer, conn } = withRtt(100); // RTO 300
    conn.send(bytes(1460 * 2), h.now);
    const sent = peer.drain();
    const t0 = h.now;
    h.advance(200);
    peer.ackTo(sent[1].seqNumber); // the first segment only
    const rto = conn.info().rtoMs;
    h.advance(rto - 1);
    assert.deepEqual(peer.drain(), [], "not at the old deadline");
    h.advance(1);
    const [rxt] = peer.drain();
    assert.equal(rxt.seqNumber, sent[1].seqNumber);
    assert.equal(h.now - t0, 200 + rto);
  });

  it("stops the timer when all outstanding data is acknowledged (RFC 6298 §5.2)", () => {
    const { h, peer, conn } = withRtt(100);
    conn.send(bytes(1000), h.now);
    peer.drain();
    assert.notEqual(conn.nextDeadline(), undefined);
    h.advance(50);
    peer.ackTo(conn.debugSeq().sndMax);
    assert.equal(conn.nextDeadline(), undefined);
    h.advance(10_000);
    assert.deepEqual(peer.drain(), []);
  });

  it("does not restart a running timer when more data is sent (RFC 6298 §5.1)", () => {
    const { h, peer, conn } = withRtt(100, { noDelay: true }); // RTO 300
    conn.send(bytes(100), h.now);
    const [a] = peer.drain();
    const t0 = h.now;
    h.advance(100);
    conn.send(bytes(100), h.now);
    assert.equal(peer.drain().length, 1);
    h.advance(199);
    assert.deepEqual(peer.drain(), []);
    h.advance(1);
    const [rxt] = peer.drain();
    assert.equal(h.now - t0, 300);
    assert.equal(rxt.seqNumber, a.seqNumber, "the earliest unacknowledged segment");
  });

  it("re-initializes the RTO to 3 s when a SYN timed out and no RTT was measured (RFC 6298 §5.7)", () => {
    const h = new TcpHarness();
    const conn = h.stack.tcp.connect(HARNESS_PEER_IP, 7, h.now, { localPort: 5000 });
    const [syn] = h.drain();
    h.advance(1000);
    assert.equal(h.drain().length, 1, "SYN retransmitted");
    h.inject({
      srcPort: 7,
      dstPort: 5000,
      seqNumber: 77,
      ackNumber: (syn.seqNumber + 1) >>> 0,
      flags: TcpFlags.SYN | TcpFlags.ACK,
      mss: 1460,
    });
    h.drain();
    assert.equal(conn.state, "ESTABLISHED");
    assert.equal(conn.info().rttMs, null, "the SYN was retransmitted: no sample (Karn)");
    assert.equal(conn.info().rtoMs, 3000);
    conn.send(bytes(10), h.now);
    h.drain();
    h.advance(2999);
    assert.deepEqual(h.drain(), []);
    h.advance(1);
    assert.equal(h.drain().length, 1);
  });

  it("re-initializes the RTO to 3 s after a SYN-ACK timeout on a passive open (RFC 6298 §5.7)", () => {
    const h = new TcpHarness();
    const l = h.stack.tcp.listen(80, 8);
    h.inject({ srcPort: 40000, dstPort: 80, seqNumber: 100, flags: TcpFlags.SYN, mss: 1460 });
    const [synAck] = h.drain();
    h.advance(1000);
    const [again] = h.drain();
    assert.equal(flagsOf(again), "SYN|ACK");
    h.inject({
      srcPort: 40000,
      dstPort: 80,
      seqNumber: 101,
      ackNumber: (synAck.seqNumber + 1) >>> 0,
      flags: TcpFlags.ACK,
    });
    const conn = l.accept()!;
    assert.equal(conn.state, "ESTABLISHED");
    assert.equal(conn.info().rtoMs, 3000);
  });

  it("keeps the measured RTO when the SYN was answered without a retransmission", () => {
    const { conn } = withRtt(40);
    assert.equal(conn.info().rtoMs, 200);
  });

  it("measures RTT from the time passed with the ACK's frame, not from when it is processed", () => {
    const { h, peer, conn } = withRtt(100);
    conn.send(bytes(100), h.now);
    peer.drain();
    const sentAt = h.now;
    // The ACK arrived 40 ms after the send; it is handed to the stack with that instant.
    const frame = h.frame(peer.seg({ ackNumber: conn.debugSeq().sndMax }));
    h.stack.input(frame, sentAt + 40);
    assert.equal(conn.info().rttMs, 100 + (40 - 100) / 8);
  });
});
