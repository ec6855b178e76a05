import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HARNESS_PEER_IP, TcpHarness } from "./tcp_harness.ts";
import {
  ACK,
  ACTIVE_LOCAL_PORT,
  ACTIVE_REMOTE_PORT,
  activeOpen,
  assertSilent,
  bytes,
  drainOne,
  FIN,
  FULL_SYN_OPTIONS,
  LOCAL_PORT,
  passiveOpen,
  PEER_PORT,
  PSH,
  RST,
  seg,
  SYN,
  u32,
} from "./_tcp_conformance_util.ts";

const A = { srcPort: ACTIVE_LOCAL_PORT, dstPort: ACTIVE_REMOTE_PORT } as const;
const P = { srcPort: ACTIVE_REMOTE_PORT, dstPort: ACTIVE_LOCAL_PORT } as const;

describe("passive open: the SYN-ACK (RFC 9293 §3.10.7.2)", () => {
  it("answers a full-featured SYN with MSS, SACK-permitted, timestamps and window scale (RFC 7323 §2.2, §3.2; RFC 2018 §2)", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: SYN, ...FULL_SYN_OPTIONS });
    const synAck = drainOne(h);
    assert.deepEqual(
      synAck,
      seg({
        seqNumber: synAck.seqNumber,
        ackNumber: 1001,
        flags: SYN | ACK,
        windowLen: 65535,
        mss: 1460,
        sackPermitted: true,
        timestamp: { value: synAck.timestamp!.value, echo: 100 },
        windowScale: 4,
      }),
    );
  });

  it("answers a SYN without options with only the MSS option and an unscaled window (RFC 7323 §1.3, §2.2)", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: SYN });
    const synAck = drainOne(h);
    assert.deepEqual(
      synAck,
      seg({
        seqNumber: synAck.seqNumber,
        ackNumber: 1001,
        flags: SYN | ACK,
        windowLen: 65535,
        mss: 1460,
      }),
    );
  });

  it("echoes only window scale when the peer offers only window scale (RFC 7323 §2.2)", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: SYN, mss: 1460, windowScale: 2 });
    const synAck = drainOne(h);
    assert.deepEqual(
      synAck,
      seg({
        seqNumber: synAck.seqNumber,
        ackNumber: 1001,
        flags: SYN | ACK,
        windowLen: 65535,
        mss: 1460,
        windowScale: 4,
      }),
    );
  });

  it("answers SACK-permitted alone with SACK-permitted alone (RFC 2018 §2)", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: SYN, mss: 1460, sackPermitted: true });
    const synAck = drainOne(h);
    assert.deepEqual(
      synAck,
      seg({
        seqNumber: synAck.seqNumber,
        ackNumber: 1001,
        flags: SYN | ACK,
        windowLen: 65535,
        mss: 1460,
        sackPermitted: true,
      }),
    );
  });

  it("answers timestamps alone with a timestamp echoing the peer's TSval (RFC 7323 §3.2)", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: SYN, mss: 1460, timestamp: { value: 0xdeadbeef, echo: 0 } });
    const synAck = drainOne(h);
    assert.deepEqual(
      synAck,
      seg({
        seqNumber: synAck.seqNumber,
        ackNumber: 1001,
        flags: SYN | ACK,
        windowLen: 65535,
        mss: 1460,
        timestamp: { value: synAck.timestamp!.value, echo: 0xdeadbeef },
      }),
    );
  });

  it("offers no option the listener's config disables, even when the peer offers it", () => {
    const h = new TcpHarness({ tcp: { windowScaling: false, sack: false, timestamps: false } });
    h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: SYN, ...FULL_SYN_OPTIONS });
    const synAck = drainOne(h);
    assert.deepEqual(
      synAck,
      seg({
        seqNumber: synAck.seqNumber,
        ackNumber: 1001,
        flags: SYN | ACK,
        windowLen: 65535,
        mss: 1460,
      }),
    );
  });

  it("uses a listener's own config over the stack's (window scale off per listener)", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 8, { windowScaling: false });
    h.inject({ seqNumber: 1000, flags: SYN, mss: 1460, windowScale: 7 });
    const synAck = drainOne(h);
    assert.equal(synAck.windowScale, undefined);
  });

  it("accepts a SYN whose sequence number is 0 and one at 0xffffffff (RFC 9293 §3.4.1)", () => {
    for (const isn of [0, 0xffffffff]) {
      const h = new TcpHarness();
      h.stack.tcp.listen(LOCAL_PORT, 8);
      h.inject({ seqNumber: isn, flags: SYN });
      const synAck = drainOne(h);
      assert.equal(synAck.ackNumber, u32(isn + 1));
    }
  });

  it("acknowledges only the SYN of a SYN that carries data (no TFO; RFC 9293 §3.10.7.2)", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: SYN, payload: bytes(10) });
    assert.equal(drainOne(h).ackNumber, 1001);
  });
});

describe("passive open: completing the handshake (RFC 9293 §3.10.7.4 SYN-RECEIVED)", () => {
  it("enters ESTABLISHED on the ACK of our SYN and joins the accept queue", () => {
    const h = new TcpHarness();
    const l = h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: SYN, mss: 1460 });
    const synAck = drainOne(h);
    assert.equal(l.synQueue.size, 1);
    const [half] = l.synQueue;
    assert.equal(half.state, "SYN_RECEIVED");
    assert.equal(l.acceptQueue.length, 0);
    h.inject({ seqNumber: 1001, ackNumber: u32(synAck.seqNumber + 1), flags: ACK });
    assertSilent(h);
    assert.equal(half.state, "ESTABLISHED");
    assert.equal(l.synQueue.size, 0);
    assert.deepEqual(l.acceptQueue, [half]);
    assert.ok(l.events & 16, "the listener is marked acceptable");
    assert.deepEqual(half.debugSeq(), {
      iss: synAck.seqNumber,
      irs: 1000,
      sndUna: u32(synAck.seqNumber + 1),
      sndNxt: u32(synAck.seqNumber + 1),
      sndMax: u32(synAck.seqNumber + 1),
      rcvNxt: 1001,
    });
  });

  it("negotiates every option with a full-featured peer", () => {
    const h = new TcpHarness();
    const { conn } = passiveOpen(h, { ackWindow: 1000 });
    const info = conn.info();
    assert.equal(info.sendMss, 1460 - 12);
    assert.equal(info.sendWindowScale, 7);
    assert.equal(info.recvWindowScale, 4);
    assert.equal(info.timestamps, true);
    assert.equal(info.sack, true);
    assert.equal(info.sendWindow, 1000 << 7);
  });

  it("falls back to MSS 536 and no options with a peer that offers none (RFC 9293 §3.7.1, RFC 7323 §2.2)", () => {
    const h = new TcpHarness();
    const { conn, iss } = passiveOpen(h, { synOptions: {}, ackWindow: 65535 });
    const info = conn.info();
    assert.equal(info.sendMss, 536);
    assert.equal(info.sendWindowScale, 0);
    assert.equal(info.recvWindowScale, 0);
    assert.equal(info.timestamps, false);
    assert.equal(info.sack, false);
    assert.equal(info.sendWindow, 65535);
    // Our segments carry no options and the window is unscaled.
    conn.send(bytes(1072), h.now);
    const out = h.drain();
    assert.deepEqual(out, [
      seg({
        seqNumber: iss + 1,
        ackNumber: 1001,
        flags: ACK,
        windowLen: 65535,
        payload: bytes(536),
      }),
      seg({
        seqNumber: iss + 537,
        ackNumber: 1001,
        flags: ACK | PSH,
        windowLen: 65535,
        payload: bytes(536, 536),
      }),
    ]);
  });

  it("keeps the window of the SYN unscaled until the ACK (RFC 7323 §2.2)", () => {
    const h = new TcpHarness();
    const l = h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: SYN, windowLen: 1000, mss: 1460, windowScale: 7 });
    const synAck = drainOne(h);
    const [half] = l.synQueue;
    assert.equal(half.info().sendWindow, 1000);
    h.inject({
      seqNumber: 1001,
      ackNumber: u32(synAck.seqNumber + 1),
      flags: ACK,
      windowLen: 1000,
    });
    assert.equal(half.info().sendWindow, 1000 << 7);
  });

  it("retransmits the SYN-ACK when the peer retransmits its SYN (RFC 9293 §3.10.7.4)", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: SYN, mss: 1460 });
    const synAck = drainOne(h);
    h.now += 200;
    h.inject({ seqNumber: 1000, flags: SYN, mss: 1460 });
    assert.deepEqual(h.drain(), [synAck]);
  });

  it("retransmits the SYN-ACK after 1 s, then with exponential backoff, and drops the half-open connection silently after synAckRetries (RFC 6298 §2.1, §5.5)", () => {
    const h = new TcpHarness({ tcp: { synAckRetries: 3 } });
    const l = h.stack.tcp.listen(LOCAL_PORT, 8);
    const t0 = h.now;
    h.inject({ seqNumber: 1000, flags: SYN, ...FULL_SYN_OPTIONS });
    const first = drainOne(h);
    const off = u32(first.timestamp!.value - t0);
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = h.fireNextTimer();
      times.push(t - t0);
      const again = drainOne(h);
      assert.deepEqual(again, { ...first, timestamp: { value: u32(t + off), echo: 100 } });
    }
    assert.deepEqual(times, [1000, 3000, 7000]);
    const end = h.fireNextTimer();
    assert.equal(end - t0, 15000);
    assertSilent(h, "no RST when a half-open connection expires");
    assert.equal(l.synQueue.size, 0);
    assert.equal(h.stack.tcp.active.size, 0);
    assert.equal(h.stack.tcp.nextDeadline(), undefined);
  });

  it("completes on a first data segment when the handshake's ACK was lost", () => {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const l = h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: SYN });
    const iss = drainOne(h).seqNumber;
    h.inject({ seqNumber: 1001, ackNumber: u32(iss + 1), flags: ACK | PSH, payload: bytes(30) });
    const c = l.accept()!;
    assert.equal(c.state, "ESTABLISHED");
    assert.deepEqual(c.read(100, h.now), bytes(30));
  });

  it("enters CLOSE-WAIT when the handshake's ACK carries a FIN, and the connection still waits to be accepted", () => {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const l = h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: SYN });
    const iss = drainOne(h).seqNumber;
    h.inject({ seqNumber: 1001, ackNumber: u32(iss + 1), flags: ACK | FIN });
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: iss + 1, ackNumber: 1002, flags: ACK, windowLen: 65534 }),
    ]);
    const c = l.accept()!;
    assert.equal(c.state, "CLOSE_WAIT");
    assert.equal(c.readEnded, true);
  });

  it("stops retransmitting the SYN-ACK once the handshake completes", () => {
    const h = new TcpHarness();
    passiveOpen(h);
    h.advance(10_000);
    assertSilent(h);
  });
});

describe("active open: the SYN (RFC 9293 §3.10.1)", () => {
  it("offers MSS, SACK-permitted, timestamps and window scale in a SYN with an unscaled window", () => {
    const h = new TcpHarness();
    h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now, {
      localPort: ACTIVE_LOCAL_PORT,
    });
    const syn = drainOne(h);
    assert.deepEqual(
      syn,
      seg({
        ...A,
        seqNumber: syn.seqNumber,
        flags: SYN,
        windowLen: 65535,
        mss: 1460,
        sackPermitted: true,
        timestamp: { value: syn.timestamp!.value, echo: 0 },
        windowScale: 4,
      }),
    );
  });

  it("offers only MSS when every option is disabled", () => {
    const h = new TcpHarness({ tcp: { windowScaling: false, sack: false, timestamps: false } });
    h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now, {
      localPort: ACTIVE_LOCAL_PORT,
    });
    const syn = drainOne(h);
    assert.deepEqual(
      syn,
      seg({ ...A, seqNumber: syn.seqNumber, flags: SYN, windowLen: 65535, mss: 1460 }),
    );
  });

  it("picks an ephemeral source port in 49152..65535 when none is given (RFC 6056)", () => {
    const h = new TcpHarness();
    const c = h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now);
    assert.ok(c.localPort >= 49152 && c.localPort <= 65535, `port ${c.localPort}`);
    assert.equal(drainOne(h).srcPort, c.localPort);
  });

  it("completes on a SYN-ACK with the ACK of the peer's SYN (RFC 9293 §3.10.7.3)", () => {
    const h = new TcpHarness();
    const { conn, iss, ack, tsOffset } = activeOpen(h);
    assert.deepEqual(
      ack,
      seg({
        ...A,
        seqNumber: iss + 1,
        ackNumber: 5001,
        flags: ACK,
        windowLen: (512 * 1024) >> 4,
        timestamp: { value: u32(h.now + tsOffset), echo: 100 },
      }),
    );
    const info = conn.info();
    assert.equal(info.sendWindowScale, 7);
    assert.equal(info.recvWindowScale, 4);
    assert.equal(info.sendMss, 1448);
    assert.ok(conn.events & 4, "CONNECTED is raised");
  });

  it("never scales the window of the SYN-ACK (RFC 7323 §2.2)", () => {
    const h = new TcpHarness();
    const { conn } = activeOpen(h, { synAckWindow: 1000 });
    assert.equal(conn.info().sendWindow, 1000);
    assert.equal(conn.info().sendWindowScale, 7);
  });

  it("turns scaling, SACK and timestamps off when the SYN-ACK has no options (RFC 7323 §1.3, RFC 9293 §3.7.1)", () => {
    const h = new TcpHarness();
    const { conn, iss, ack } = activeOpen(h, { synAckOptions: {} });
    assert.deepEqual(
      ack,
      seg({ ...A, seqNumber: iss + 1, ackNumber: 5001, flags: ACK, windowLen: 65535 }),
    );
    const info = conn.info();
    assert.equal(info.sendMss, 536);
    assert.equal(info.sendWindowScale, 0);
    assert.equal(info.recvWindowScale, 0);
    assert.equal(info.timestamps, false);
    assert.equal(info.sack, false);
  });

  it("retransmits the SYN after 1 s and doubles the interval, then fails with ETIMEDOUT after synRetries (RFC 6298 §2.1, §5.5)", () => {
    const h = new TcpHarness();
    const t0 = h.now;
    const c = h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, t0, {
      localPort: ACTIVE_LOCAL_PORT,
    });
    const syn = drainOne(h);
    const off = u32(syn.timestamp!.value - t0);
    const times: number[] = [];
    for (let i = 0; i < 6; i++) {
      const t = h.fireNextTimer();
      times.push(t - t0);
      assert.deepEqual(drainOne(h), { ...syn, timestamp: { value: u32(t + off), echo: 0 } });
      assert.equal(c.state, "SYN_SENT");
    }
    assert.deepEqual(times, [1000, 3000, 7000, 15000, 31000, 63000]);
    assert.equal(h.fireNextTimer() - t0, 127000);
    assertSilent(h, "giving up sends nothing");
    assert.equal(c.state, "CLOSED");
    assert.equal(c.error, "ETIMEDOUT");
    assert.ok(c.events & 8, "CLOSED is raised");
    assert.equal(h.stack.tcp.active.size, 0);
  });

  it("honours a smaller synRetries", () => {
    const h = new TcpHarness({ tcp: { synRetries: 1 } });
    const t0 = h.now;
    const c = h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, t0, {
      localPort: ACTIVE_LOCAL_PORT,
    });
    h.drain();
    assert.equal(h.fireNextTimer() - t0, 1000);
    assert.equal(drainOne(h).flags, SYN);
    assert.equal(h.fireNextTimer() - t0, 3000);
    assert.equal(c.error, "ETIMEDOUT");
  });

  it("completes after a retransmitted SYN and stops the timer", () => {
    const h = new TcpHarness();
    const c = h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now, {
      localPort: ACTIVE_LOCAL_PORT,
    });
    const syn = drainOne(h);
    h.fireNextTimer();
    h.drain();
    h.inject({
      ...P,
      seqNumber: 7,
      ackNumber: u32(syn.seqNumber + 1),
      flags: SYN | ACK,
      mss: 1460,
    });
    assert.equal(c.state, "ESTABLISHED");
    assert.equal(drainOne(h).flags, ACK);
    h.advance(200_000);
    assertSilent(h);
  });

  it("re-acknowledges a retransmitted SYN-ACK after its ACK was lost (RFC 9293 §3.10.7.4 first)", () => {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const { iss, ack } = activeOpen(h, { synAckOptions: { mss: 1460 } });
    h.inject({ ...P, seqNumber: 5000, ackNumber: u32(iss + 1), flags: SYN | ACK, mss: 1460 });
    assert.deepEqual(h.drain(), [ack]);
  });

  it("accepts data carried by the SYN-ACK (RFC 9293 §3.10.7.3 sixth)", () => {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const c = h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now, {
      localPort: ACTIVE_LOCAL_PORT,
    });
    const syn = drainOne(h);
    h.inject({
      ...P,
      seqNumber: 7,
      ackNumber: u32(syn.seqNumber + 1),
      flags: SYN | ACK,
      mss: 1460,
      payload: bytes(12),
    });
    assert.deepEqual(h.drain(), [
      seg({ ...A, seqNumber: syn.seqNumber + 1, ackNumber: 20, flags: ACK, windowLen: 65535 - 12 }),
    ]);
    assert.deepEqual(c.read(100, h.now), bytes(12));
  });

  it("ignores a segment without SYN or RST in SYN-SENT (RFC 9293 §3.10.7.3 fifth)", () => {
    const h = new TcpHarness();
    const c = h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now, {
      localPort: ACTIVE_LOCAL_PORT,
    });
    const syn = drainOne(h);
    h.inject({ ...P, seqNumber: 7, ackNumber: u32(syn.seqNumber + 1), flags: ACK });
    assertSilent(h);
    assert.equal(c.state, "SYN_SENT");
  });

  it("deletes the TCB silently when closed in SYN-SENT (RFC 9293 §3.10.4)", () => {
    const h = new TcpHarness();
    const c = h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now, {
      localPort: ACTIVE_LOCAL_PORT,
    });
    h.drain();
    c.close(h.now);
    assertSilent(h);
    assert.equal(c.state, "CLOSED");
    assert.equal(h.stack.tcp.active.size, 0);
  });

  it("aborts silently in SYN-SENT (RFC 9293 §3.10.5)", () => {
    const h = new TcpHarness();
    const c = h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now, {
      localPort: ACTIVE_LOCAL_PORT,
    });
    h.drain();
    c.abort(h.now);
    assertSilent(h);
    assert.equal(c.state, "CLOSED");
  });

  it("sends data queued in SYN-SENT right after the handshake's ACK", () => {
    const h = new TcpHarness();
    const c = h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now, {
      localPort: ACTIVE_LOCAL_PORT,
      config: { timestamps: false },
    });
    const syn = drainOne(h);
    assert.equal(c.send(bytes(100), h.now), 100);
    assertSilent(h, "no data before the handshake");
    h.inject({
      ...P,
      seqNumber: 7,
      ackNumber: u32(syn.seqNumber + 1),
      flags: SYN | ACK,
      mss: 1460,
    });
    const out = h.drain();
    assert.deepEqual(out, [
      seg({
        ...A,
        seqNumber: syn.seqNumber + 1,
        ackNumber: 8,
        flags: ACK | PSH,
        windowLen: 65535,
        payload: bytes(100),
      }),
    ]);
  });
});

describe("simultaneous open (RFC 9293 §3.5, figure 8)", () => {
  function crossSyns() {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const c = h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now, {
      localPort: ACTIVE_LOCAL_PORT,
    });
    const syn = drainOne(h);
    h.inject({ ...P, seqNumber: 300, flags: SYN, mss: 1400, windowScale: 2, sackPermitted: true });
    return { h, c, iss: syn.seqNumber };
  }

  it("answers a SYN received in SYN-SENT with a SYN-ACK of the same ISS and enters SYN-RECEIVED", () => {
    const { h, c, iss } = crossSyns();
    assert.equal(c.state, "SYN_RECEIVED");
    assert.deepEqual(
      h.drain(),
      [seg({
        ...A,
        seqNumber: iss,
        ackNumber: 301,
        flags: SYN | ACK,
        windowLen: 65535,
        mss: 1460,
        sackPermitted: true,
        windowScale: 4,
      })],
    );
  });

  it("becomes ESTABLISHED on the peer's SYN-ACK without waiting for a retransmission (figure 8 line 6)", () => {
    const { h, c, iss } = crossSyns();
    h.drain();
    h.inject({
      ...P,
      seqNumber: 300,
      ackNumber: u32(iss + 1),
      flags: SYN | ACK,
      windowLen: 100,
      mss: 1400,
    });
    assert.equal(c.state, "ESTABLISHED");
    assert.equal(c.info().sendWindow, 100, "the window of a SYN-ACK is not scaled (RFC 7323 §2.2)");
    assert.equal(c.info().sendMss, 1400);
    for (const s of h.drain()) assert.equal(s.flags & RST, 0);
  });

  it("answers the peer's SYN-ACK with <SEQ=SEG.ACK><CTL=RST> when it does not acknowledge our SYN", () => {
    const { h, c, iss } = crossSyns();
    h.drain();
    h.inject({ ...P, seqNumber: 300, ackNumber: u32(iss + 5), flags: SYN | ACK });
    assert.deepEqual(h.drain(), [seg({ ...A, seqNumber: iss + 5, flags: RST, windowLen: 0 })]);
    assert.equal(c.state, "SYN_RECEIVED");
  });

  it("retransmits its SYN-ACK when the peer repeats its SYN", () => {
    const { h, c } = crossSyns();
    const synAck = drainOne(h);
    h.inject({ ...P, seqNumber: 300, flags: SYN, mss: 1400, windowScale: 2, sackPermitted: true });
    assert.deepEqual(h.drain(), [synAck]);
    assert.equal(c.state, "SYN_RECEIVED");
  });

  it("becomes ESTABLISHED on the peer's plain ACK", () => {
    const { h, c, iss } = crossSyns();
    h.drain();
    h.inject({ ...P, seqNumber: 301, ackNumber: u32(iss + 1), flags: ACK, windowLen: 100 });
    assert.equal(c.state, "ESTABLISHED");
    assert.equal(c.info().sendWindow, 100 << 2);
    assertSilent(h);
  });

  it("fails with ECONNREFUSED on an acceptable RST in SYN-RECEIVED after an active open (RFC 9293 §3.10.7.4)", () => {
    const { h, c } = crossSyns();
    h.drain();
    h.inject({ ...P, seqNumber: 301, flags: RST });
    assert.equal(c.state, "CLOSED");
    assert.equal(c.error, "ECONNREFUSED");
    assertSilent(h);
  });
});

describe("passive and active opening together", () => {
  it("exchanges data between a listener and the peer in both directions", () => {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const { conn, iss } = passiveOpen(h, { synOptions: { mss: 1460 } });
    h.inject({ seqNumber: 1001, ackNumber: u32(iss + 1), flags: ACK | PSH, payload: bytes(10) });
    assert.deepEqual(conn.read(100, h.now), bytes(10));
    conn.send(bytes(5), h.now);
    assert.deepEqual(h.drain(), [
      // The right edge moved by only 10 bytes: receiver SWS avoidance keeps it (RFC 9293 §3.8.6.2.2).
      seg({
        seqNumber: iss + 1,
        ackNumber: 1011,
        flags: ACK | PSH,
        windowLen: 65525,
        payload: bytes(5),
      }),
    ]);
    assert.equal(conn.remotePort, PEER_PORT);
  });
});
