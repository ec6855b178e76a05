import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TcpFlags } from "../../wire/mod.ts";
import {
  assertSilent,
  BARE_PEER,
  bytes,
  drainOne,
  established,
  seg,
  TcpHarness,
  u32,
} from "./tcp_harness.ts";

const { ACK, FIN, PSH, RST, SYN } = TcpFlags;

/**
 * The connections here have a peer that offered no options: no timestamps
 * (the RTO stays at the initial 1 s), MSS 536, unscaled windows. The peer's
 * next sequence number is 1001, ours `s`.
 */
const BARE = { peer: BARE_PEER } as const;

describe("active close (RFC 9293 §3.10.4, §3.10.7.4)", () => {
  it("sends <SEQ=SND.NXT><ACK=RCV.NXT><CTL=FIN,ACK> and enters FIN-WAIT-1", () => {
    const { h, conn, s } = established(BARE);
    conn.shutdownWrite(h.now);
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: s, ackNumber: 1001, flags: FIN | ACK, windowLen: 65535 }),
    ]);
    assert.equal(conn.state, "FIN_WAIT_1");
    assert.equal(conn.canWrite, false);
    assert.equal(conn.send(bytes(5), h.now), 0, "no data after our FIN");
    assertSilent(h);
  });

  it("moves to FIN-WAIT-2 when the FIN is acknowledged, silently", () => {
    const { h, conn, s } = established(BARE);
    conn.shutdownWrite(h.now);
    h.drain();
    h.inject({ seqNumber: 1001, ackNumber: u32(s + 1), flags: ACK });
    assertSilent(h);
    assert.equal(conn.state, "FIN_WAIT_2");
    assert.equal(
      h.stack.tcp.nextDeadline(),
      undefined,
      "no retransmission timer once the FIN is acknowledged",
    );
  });

  it("sends one FIN however often the application shuts down", () => {
    const { h, conn } = established(BARE);
    conn.shutdownWrite(h.now);
    conn.shutdownWrite(h.now);
    conn.close(h.now);
    assert.equal(h.drain().length, 1);
  });

  it("keeps receiving after a half-close: data in FIN-WAIT-2 is delivered and acknowledged (RFC 9293 §3.6)", () => {
    const { h, conn, s } = established(BARE);
    conn.shutdownWrite(h.now);
    h.inject({ seqNumber: 1001, ackNumber: u32(s + 1), flags: ACK });
    h.drain();
    h.inject({ seqNumber: 1001, ackNumber: u32(s + 1), flags: ACK | PSH, payload: bytes(100) });
    h.inject({
      seqNumber: 1101,
      ackNumber: u32(s + 1),
      flags: ACK | PSH,
      payload: bytes(100, 100),
    });
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: s + 1, ackNumber: 1201, flags: ACK, windowLen: 65535 - 200 }),
    ]);
    assert.deepEqual(conn.read(1000, h.now), bytes(200));
    assert.equal(conn.state, "FIN_WAIT_2");
  });

  it("keeps receiving in FIN-WAIT-1", () => {
    const { h, conn, s } = established(BARE);
    conn.shutdownWrite(h.now);
    h.drain();
    h.inject({ seqNumber: 1001, ackNumber: u32(s), flags: ACK | PSH, payload: bytes(10) });
    assert.equal(conn.readableBytes, 10);
    assert.equal(conn.state, "FIN_WAIT_1");
  });

  it("enters TIME-WAIT on the peer's FIN in FIN-WAIT-2 and acknowledges it at once", () => {
    const { h, conn, s } = established(BARE);
    conn.shutdownWrite(h.now);
    h.inject({ seqNumber: 1001, ackNumber: u32(s + 1), flags: ACK });
    h.drain();
    h.inject({ seqNumber: 1001, ackNumber: u32(s + 1), flags: FIN | ACK });
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: s + 1, ackNumber: 1002, flags: ACK, windowLen: 65534 }),
    ]);
    assert.equal(conn.state, "TIME_WAIT");
    assert.equal(conn.pcbList, "time-wait");
    assert.equal(h.stack.tcp.active.size, 0);
    assert.equal(h.stack.tcp.timeWait.size, 1);
    assert.equal(conn.readEnded, true);
  });

  it("goes from FIN-WAIT-1 straight to TIME-WAIT on a FIN that acknowledges our FIN", () => {
    const { h, conn, s } = established(BARE);
    conn.shutdownWrite(h.now);
    h.drain();
    h.inject({ seqNumber: 1001, ackNumber: u32(s + 1), flags: FIN | ACK });
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: s + 1, ackNumber: 1002, flags: ACK, windowLen: 65534 }),
    ]);
    assert.equal(conn.state, "TIME_WAIT");
  });
});

describe("passive close (RFC 9293 §3.10.7.4 eighth, CLOSE-WAIT and LAST-ACK)", () => {
  it("acknowledges the peer's FIN at once, enters CLOSE-WAIT and signals end of stream", () => {
    const { h, conn, s } = established(BARE);
    conn.events = 0;
    h.inject({ seqNumber: 1001, ackNumber: u32(s), flags: FIN | ACK });
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: s, ackNumber: 1002, flags: ACK, windowLen: 65534 }),
    ]);
    assert.equal(conn.state, "CLOSE_WAIT");
    assert.ok(conn.events & 1, "READABLE is raised for the end of stream");
    assert.equal(conn.readEnded, true);
    assert.equal(conn.read(10, h.now), undefined);
  });

  it("still sends data in CLOSE-WAIT (the peer half-closed)", () => {
    const { h, conn, s } = established(BARE);
    h.inject({ seqNumber: 1001, ackNumber: u32(s), flags: FIN | ACK });
    h.drain();
    assert.equal(conn.canWrite, true);
    assert.equal(conn.send(bytes(50), h.now), 50);
    assert.deepEqual(h.drain(), [
      seg({
        seqNumber: s,
        ackNumber: 1002,
        flags: ACK | PSH,
        windowLen: 65534,
        payload: bytes(50),
      }),
    ]);
  });

  it("sends its FIN on close, enters LAST-ACK, and closes cleanly on the ACK", () => {
    const { h, conn, s } = established(BARE);
    h.inject({ seqNumber: 1001, ackNumber: u32(s), flags: FIN | ACK });
    h.drain();
    conn.close(h.now);
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: s, ackNumber: 1002, flags: FIN | ACK, windowLen: 65534 }),
    ]);
    assert.equal(conn.state, "LAST_ACK");
    h.inject({ seqNumber: 1002, ackNumber: u32(s + 1), flags: ACK });
    assertSilent(h);
    assert.equal(conn.state, "CLOSED");
    assert.equal(conn.error, undefined);
    assert.ok(conn.events & 8);
    assert.equal(h.stack.tcp.active.size, 0);
    assert.equal(h.stack.tcp.timeWait.size, 0, "the passive closer skips TIME-WAIT");
    assert.equal(h.stack.tcp.nextDeadline(), undefined);
  });

  it("re-acknowledges the peer's retransmitted FIN in LAST-ACK", () => {
    const { h, conn, s } = established(BARE);
    h.inject({ seqNumber: 1001, ackNumber: u32(s), flags: FIN | ACK });
    conn.close(h.now);
    h.drain();
    h.inject({ seqNumber: 1001, ackNumber: u32(s), flags: FIN | ACK });
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: s + 1, ackNumber: 1002, flags: ACK, windowLen: 65534 }),
    ]);
    assert.equal(conn.state, "LAST_ACK");
  });

  it("closes on a RST at RCV.NXT in LAST-ACK", () => {
    const { h, conn, s } = established(BARE);
    h.inject({ seqNumber: 1001, ackNumber: u32(s), flags: FIN | ACK });
    conn.close(h.now);
    h.drain();
    h.inject({ seqNumber: 1002, flags: RST });
    assertSilent(h);
    assert.equal(conn.state, "CLOSED");
    assert.equal(h.stack.tcp.active.size, 0);
  });

  it("stays in LAST-ACK on an ACK that does not cover the FIN", () => {
    const { h, conn, s } = established(BARE);
    h.inject({ seqNumber: 1001, ackNumber: u32(s), flags: FIN | ACK });
    conn.send(bytes(10), h.now);
    conn.close(h.now);
    h.drain();
    h.inject({ seqNumber: 1002, ackNumber: u32(s + 10), flags: ACK });
    assert.equal(conn.state, "LAST_ACK");
    h.inject({ seqNumber: 1002, ackNumber: u32(s + 11), flags: ACK });
    assert.equal(conn.state, "CLOSED");
  });

  it("re-acknowledges a retransmitted FIN in CLOSE-WAIT", () => {
    const { h, conn, s } = established(BARE);
    h.inject({ seqNumber: 1001, ackNumber: u32(s), flags: FIN | ACK });
    h.drain();
    h.inject({ seqNumber: 1001, ackNumber: u32(s), flags: FIN | ACK });
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: s, ackNumber: 1002, flags: ACK, windowLen: 65534 }),
    ]);
    assert.equal(conn.state, "CLOSE_WAIT");
  });

  it("ignores data beyond the peer's FIN (RFC 9293 §3.10.7.4 seventh, CLOSE-WAIT)", () => {
    const { h, conn, s } = established(BARE);
    h.inject({ seqNumber: 1001, ackNumber: u32(s), flags: FIN | ACK });
    h.drain();
    h.inject({ seqNumber: 1002, ackNumber: u32(s), flags: ACK | PSH, payload: bytes(10) });
    assert.equal(conn.readableBytes, 0);
    assert.equal(conn.state, "CLOSE_WAIT");
  });
});

describe("FIN with data", () => {
  it("delivers the data of a segment that also carries the peer's FIN and acknowledges both", () => {
    const { h, conn, s } = established(BARE);
    h.inject({ seqNumber: 1001, ackNumber: u32(s), flags: FIN | ACK | PSH, payload: bytes(100) });
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: s, ackNumber: 1102, flags: ACK, windowLen: 65535 - 101 }),
    ]);
    assert.equal(conn.state, "CLOSE_WAIT");
    assert.deepEqual(conn.read(1000, h.now), bytes(100));
    assert.equal(conn.readEnded, true);
  });

  it("processes a FIN that arrives before missing data only once the hole is filled", () => {
    const { h, conn, s } = established(BARE);
    h.inject({ seqNumber: 1011, ackNumber: u32(s), flags: FIN | ACK, payload: bytes(10, 10) });
    assert.equal(conn.state, "ESTABLISHED");
    assert.equal(drainOne(h).ackNumber, 1001, "a duplicate ACK for the hole");
    h.inject({ seqNumber: 1001, ackNumber: u32(s), flags: ACK, payload: bytes(10) });
    assert.equal(conn.state, "CLOSE_WAIT");
    assert.equal(drainOne(h).ackNumber, 1022);
    assert.deepEqual(conn.read(100, h.now), bytes(20));
  });

  it("sends our queued data before our FIN, with sequence numbers back to back", () => {
    const { h, conn, s } = established(BARE);
    conn.send(bytes(100), h.now);
    conn.send(bytes(50, 100), h.now); // held by Nagle while the first is in flight
    const first = h.drain();
    assert.deepEqual(first, [
      seg({
        seqNumber: s,
        ackNumber: 1001,
        flags: ACK | PSH,
        windowLen: 65535,
        payload: bytes(100),
      }),
    ]);
    conn.shutdownWrite(h.now);
    assert.deepEqual(h.drain(), [
      seg({
        seqNumber: s + 100,
        ackNumber: 1001,
        flags: ACK | PSH,
        windowLen: 65535,
        payload: bytes(50, 100),
      }),
      seg({ seqNumber: s + 150, ackNumber: 1001, flags: FIN | ACK, windowLen: 65535 }),
    ]);
    assert.equal(conn.state, "FIN_WAIT_1");
    h.inject({ seqNumber: 1001, ackNumber: u32(s + 151), flags: ACK });
    assert.equal(conn.state, "FIN_WAIT_2");
    assert.equal(conn.info().bytesAcked, 150);
  });

  it("holds the FIN behind data the peer's window does not admit yet (RFC 9293 §3.10.4)", () => {
    const h = new TcpHarness();
    const { conn, iss } = established({
      harness: h,
      peer: { syn: {}, window: 100 },
      synWindow: 100,
    });
    const s = iss + 1;
    conn.send(bytes(150), h.now);
    conn.shutdownWrite(h.now);
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: s, ackNumber: 1001, flags: ACK, windowLen: 65535, payload: bytes(100) }),
    ]);
    h.inject({ seqNumber: 1001, ackNumber: u32(s + 100), flags: ACK, windowLen: 100 });
    assert.deepEqual(h.drain(), [
      seg({
        seqNumber: s + 100,
        ackNumber: 1001,
        flags: ACK | PSH,
        windowLen: 65535,
        payload: bytes(50, 100),
      }),
      seg({ seqNumber: s + 150, ackNumber: 1001, flags: FIN | ACK, windowLen: 65535 }),
    ]);
  });
});

describe("simultaneous close (RFC 9293 §3.6, figure 13)", () => {
  it("goes FIN-WAIT-1 → CLOSING on the peer's FIN, then TIME-WAIT on the ACK of ours", () => {
    const { h, conn, s } = established(BARE);
    conn.shutdownWrite(h.now);
    assert.equal(drainOne(h).flags, FIN | ACK);
    // The peer's FIN crossed ours: it acknowledges only what it had seen.
    h.inject({ seqNumber: 1001, ackNumber: u32(s), flags: FIN | ACK });
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: s + 1, ackNumber: 1002, flags: ACK, windowLen: 65534 }),
    ]);
    assert.equal(conn.state, "CLOSING");
    h.inject({ seqNumber: 1002, ackNumber: u32(s + 1), flags: ACK });
    assertSilent(h);
    assert.equal(conn.state, "TIME_WAIT");
  });

  it("retransmits its FIN from CLOSING when the ACK is lost", () => {
    const { h, conn, s } = established(BARE);
    conn.shutdownWrite(h.now);
    h.drain();
    h.inject({ seqNumber: 1001, ackNumber: u32(s), flags: FIN | ACK });
    h.drain();
    const t0 = h.now;
    assert.equal(h.fireNextTimer() - t0, 1000);
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: s, ackNumber: 1002, flags: FIN | ACK, windowLen: 65534 }),
    ]);
    assert.equal(conn.state, "CLOSING");
  });
});

describe("FIN retransmission (RFC 9293 §3.8.1, RFC 6298 §5)", () => {
  it("retransmits an unacknowledged FIN after the initial RTO of 1 s and then backs off", () => {
    const { h, conn, s } = established(BARE);
    const t0 = h.now;
    conn.shutdownWrite(h.now);
    const fin = drainOne(h);
    assert.deepEqual(
      fin,
      seg({ seqNumber: s, ackNumber: 1001, flags: FIN | ACK, windowLen: 65535 }),
    );
    assert.equal(h.fireNextTimer() - t0, 1000);
    assert.deepEqual(h.drain(), [fin]);
    assert.equal(h.fireNextTimer() - t0, 3000);
    assert.deepEqual(h.drain(), [fin]);
    assert.equal(conn.state, "FIN_WAIT_1");
    assert.equal(conn.info().retransmits, 2);
    h.inject({ seqNumber: 1001, ackNumber: u32(s + 1), flags: ACK });
    assert.equal(conn.state, "FIN_WAIT_2");
    assert.equal(h.stack.tcp.nextDeadline(), undefined);
  });

  it("retransmits the FIN from LAST-ACK", () => {
    const { h, conn, s } = established(BARE);
    h.inject({ seqNumber: 1001, ackNumber: u32(s), flags: FIN | ACK });
    h.drain();
    conn.close(h.now);
    const fin = drainOne(h);
    h.fireNextTimer();
    assert.deepEqual(h.drain(), [fin]);
    assert.equal(conn.state, "LAST_ACK");
  });

  it("retransmits data and FIN in order after an RTO", () => {
    const { h, conn, s } = established(BARE);
    conn.send(bytes(30), h.now);
    conn.shutdownWrite(h.now);
    assert.equal(h.drain().length, 2);
    h.fireNextTimer();
    // Go-back-N from SND.UNA: the data (one segment, cwnd = 1 MSS) and the FIN, which takes no cwnd.
    assert.deepEqual(h.drain(), [
      seg({
        seqNumber: s,
        ackNumber: 1001,
        flags: ACK | PSH,
        windowLen: 65535,
        payload: bytes(30),
      }),
      seg({ seqNumber: s + 30, ackNumber: 1001, flags: FIN | ACK, windowLen: 65535 }),
    ]);
    h.inject({ seqNumber: 1001, ackNumber: u32(s + 30), flags: ACK });
    assert.equal(conn.state, "FIN_WAIT_1");
    h.inject({ seqNumber: 1001, ackNumber: u32(s + 31), flags: ACK });
    assert.equal(conn.state, "FIN_WAIT_2");
  });

  it("gives up with ETIMEDOUT after maxRetransmits unanswered FINs (RFC 9293 §3.8.3 R2)", () => {
    const { h, conn } = established({ ...BARE, tcp: { maxRetransmits: 2 } });
    conn.close(h.now);
    h.drain();
    h.fireNextTimer();
    h.fireNextTimer();
    assert.equal(h.drain().length, 2);
    h.fireNextTimer();
    assert.equal(conn.state, "CLOSED");
    assert.equal(conn.error, "ETIMEDOUT");
    assert.equal(h.stack.tcp.active.size, 0);
  });
});

describe("FIN-WAIT-2 timeout of an orphaned connection (Linux tcp_fin_timeout)", () => {
  it("closes an orphan silently finWait2TimeoutMs after entering FIN-WAIT-2", () => {
    const { h, conn, s } = established({ ...BARE, tcp: { finWait2TimeoutMs: 30_000 } });
    conn.close(h.now);
    h.drain();
    h.advance(100);
    const entered = h.now;
    h.inject({ seqNumber: 1001, ackNumber: u32(s + 1), flags: ACK });
    assert.equal(conn.state, "FIN_WAIT_2");
    assert.equal(h.fireNextTimer() - entered, 30_000);
    assertSilent(h);
    assert.equal(conn.state, "CLOSED");
    assert.equal(h.stack.tcp.active.size, 0);
    assert.equal(h.stack.tcp.timeWait.size, 0);
  });

  it("starts the timer when the application closes a half-closed connection already in FIN-WAIT-2", () => {
    const { h, conn, s } = established({ ...BARE, tcp: { finWait2TimeoutMs: 5_000 } });
    conn.shutdownWrite(h.now);
    h.inject({ seqNumber: 1001, ackNumber: u32(s + 1), flags: ACK });
    h.drain();
    const t0 = h.now;
    conn.close(h.now);
    assert.equal(h.fireNextTimer() - t0, 5_000);
    assert.equal(conn.state, "CLOSED");
  });

  it("keeps a half-closed connection whose application is still there in FIN-WAIT-2 indefinitely", () => {
    const { h, conn, s } = established({ ...BARE, tcp: { finWait2TimeoutMs: 5_000 } });
    conn.shutdownWrite(h.now);
    h.inject({ seqNumber: 1001, ackNumber: u32(s + 1), flags: ACK });
    h.drain();
    h.advance(3_600_000);
    assert.equal(conn.state, "FIN_WAIT_2");
    assertSilent(h);
  });

  it("still completes normally when the peer's FIN arrives before the timeout", () => {
    const { h, conn, s } = established({
      ...BARE,
      tcp: { finWait2TimeoutMs: 5_000, timeWaitMs: 1_000 },
    });
    conn.close(h.now);
    h.inject({ seqNumber: 1001, ackNumber: u32(s + 1), flags: ACK });
    h.advance(4_000);
    h.inject({ seqNumber: 1001, ackNumber: u32(s + 1), flags: FIN | ACK });
    assert.equal(conn.state, "TIME_WAIT");
    h.advance(1_000);
    assert.equal(conn.state, "CLOSED");
  });
});

describe("closing before the handshake completes (RFC 9293 §3.10.4)", () => {
  it("sends the FIN of a connection closed in SYN-RECEIVED once it is established", () => {
    const h = new TcpHarness();
    const l = h.stack.tcp.listen(80, 8);
    h.inject({ seqNumber: 1000, flags: SYN });
    const iss = drainOne(h).seqNumber;
    const [c] = l.synQueue;
    c.shutdownWrite(h.now);
    assertSilent(h);
    h.inject({ seqNumber: 1001, ackNumber: u32(iss + 1), flags: ACK });
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: iss + 1, ackNumber: 1001, flags: FIN | ACK, windowLen: 65535 }),
    ]);
    assert.equal(c.state, "FIN_WAIT_1");
  });
});
