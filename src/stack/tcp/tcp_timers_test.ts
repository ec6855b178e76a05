import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { bytes, dataSegs, established } from "./tcp_harness.ts";
import { TcpFlags } from "../../wire/mod.ts";
import { TcpEvent } from "./tcp_connection.ts";
import { TcpTimer, TcpTimerQueue, TcpTimers } from "./tcp_timers.ts";

describe("TcpConnection delayed ACKs (RFC 9293 §3.8.6.3, RFC 5681 §4.2)", () => {
  it("delays the ACK of one in-order segment by exactly delayedAckMs (40 ms)", () => {
    const { h, peer } = established();
    peer.send(100);
    assert.deepEqual(peer.drain(), [], "not at once");
    h.advance(39);
    assert.deepEqual(peer.drain(), []);
    h.advance(1);
    const [ack] = peer.drain();
    assert.equal(ack.flags, TcpFlags.ACK);
    assert.equal(ack.ackNumber, peer.seq);
  });

  it("honours a configured delayedAckMs", () => {
    const { h, peer } = established({ tcp: { delayedAckMs: 200 } });
    peer.send(100);
    h.advance(199);
    assert.deepEqual(peer.drain(), []);
    h.advance(1);
    assert.equal(peer.drain().length, 1);
  });

  it("ACKs at once on the second full-sized segment (RFC 5681 §4.2: at least every second)", () => {
    const { peer } = established();
    peer.send(1460);
    assert.deepEqual(peer.drain(), []);
    peer.send(1460);
    const [ack] = peer.drain();
    assert.equal(ack.ackNumber, peer.seq);
  });

  it("sends one ACK per two segments in a stream of full-sized segments", () => {
    const { h, peer } = established();
    for (let i = 0; i < 10; i++) peer.send(1460);
    const acks = peer.drain();
    assert.equal(acks.length, 5);
    acks.forEach((a, i) => assert.equal(a.ackNumber, (peer.seq - 1460 * (8 - 2 * i)) >>> 0));
    h.advance(40);
    assert.deepEqual(peer.drain(), [], "nothing left to ACK");
  });

  it("does not restart the delayed ACK timer for a later segment (the bound is from the first)", () => {
    const { h, peer } = established();
    peer.send(100);
    h.advance(30);
    peer.inject({}); // a pure ACK does not owe an ACK
    h.advance(10);
    const [ack] = peer.drain();
    assert.equal(ack.ackNumber, peer.seq, "still at 40 ms after the data");
  });

  it("piggybacks the pending ACK on data the application sends (RFC 9293 §3.8.6.3)", () => {
    const { h, peer, conn } = established();
    peer.send(100);
    h.advance(10);
    conn.send(bytes(50), h.now);
    const [seg] = peer.drain();
    assert.equal(seg.payload.length, 50);
    assert.equal(seg.ackNumber, peer.seq);
    h.advance(100);
    assert.deepEqual(peer.drain().filter((s) => s.payload.length === 0), [], "no separate ACK");
  });

  it("ACKs a FIN at once", () => {
    const { peer, conn } = established();
    peer.send(100, { flags: TcpFlags.ACK | TcpFlags.FIN });
    const [ack] = peer.drain();
    assert.equal(ack.ackNumber, peer.seq);
    assert.equal(conn.state, "CLOSE_WAIT");
  });

  it("does not ACK a pure ACK (RFC 9293 §3.10.7.4: no ACK for an ACK)", () => {
    const { h, peer } = established();
    for (let i = 0; i < 3; i++) peer.inject({});
    h.advance(1000);
    assert.deepEqual(peer.drain(), []);
  });
});

describe("TcpConnection keepalive (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6)", () => {
  const ka = { keepaliveIdleMs: 10_000, keepaliveIntervalMs: 1000, keepaliveProbes: 3 };

  it("sends no keepalives by default", () => {
    const { h, peer, conn } = established();
    assert.equal(conn.nextDeadline(), undefined);
    h.advance(3 * 3600_000);
    assert.deepEqual(peer.drain(), []);
    assert.equal(conn.state, "ESTABLISHED");
  });

  it("probes after keepaliveIdleMs of silence with SEG.SEQ = SND.NXT - 1 and no data", () => {
    const { h, peer, conn } = established({ tcp: ka });
    const t0 = h.now;
    h.advance(9_999);
    assert.deepEqual(peer.drain(), []);
    h.advance(1);
    const [probe] = peer.drain();
    assert.equal(h.now - t0, 10_000);
    assert.equal(probe.flags, TcpFlags.ACK);
    assert.equal(probe.seqNumber, (conn.debugSeq().sndNxt - 1) >>> 0);
    assert.equal(probe.ackNumber, peer.seq);
    assert.equal(probe.payload.length, 0);
  });

  it("starts the idle time when the handshake completes, on passive and active opens", () => {
    for (const active of [false, true]) {
      const { h, peer } = established({ tcp: ka, active });
      const t0 = h.now;
      h.fireNextTimer();
      assert.equal(h.now - t0, 10_000, active ? "active" : "passive");
      assert.equal(peer.drain().length, 1);
    }
  });

  it("repeats unanswered probes every keepaliveIntervalMs, then aborts with ETIMEDOUT", () => {
    const { h, peer, conn } = established({ tcp: ka });
    const t0 = h.now;
    const probesAt: number[] = [];
    for (let i = 0; i < 3; i++) {
      h.fireNextTimer();
      assert.equal(peer.drain().length, 1);
      probesAt.push(h.now - t0);
    }
    assert.deepEqual(probesAt, [10_000, 11_000, 12_000]);
    assert.equal(conn.state, "ESTABLISHED");
    h.advance(999);
    assert.equal(conn.state, "ESTABLISHED");
    h.advance(1);
    assert.equal(conn.state, "CLOSED");
    assert.equal(conn.error, "ETIMEDOUT");
    assert.ok(conn.events & TcpEvent.CLOSED);
    assert.equal(h.stack.tcp.active.size, 0);
    assert.equal(conn.nextDeadline(), undefined);
  });

  it("keeps the connection when the peer answers a probe, and restarts the idle time", () => {
    const { h, peer, conn } = established({ tcp: ka });
    h.advance(10_000);
    assert.equal(peer.drain().length, 1);
    h.advance(500);
    peer.inject({}); // the answer to the probe
    const answered = h.now;
    h.advance(9_999);
    assert.deepEqual(peer.drain(), []);
    h.advance(1);
    assert.equal(peer.drain().length, 1, "a new idle period ended");
    assert.equal(h.now - answered, 10_000);
    // The counter restarted: three more unanswered probes are allowed.
    h.advance(2_000);
    assert.equal(peer.drain().length, 2);
    assert.equal(conn.state, "ESTABLISHED");
  });

  it("restarts the idle time when data arrives", () => {
    const { h, peer } = established({ tcp: ka });
    h.advance(8_000);
    peer.send(10);
    h.advance(40);
    assert.equal(peer.drain().length, 1); // the delayed ACK
    h.advance(9_959);
    assert.deepEqual(peer.drain(), [], "idle is counted from the data, not from the start");
    // The first probe follows one idle time after the data (or after our ACK of it).
    h.advance(41);
    assert.equal(peer.drain().length, 1);
  });

  it("does not send keepalives while data is unacknowledged (the retransmission timer runs)", () => {
    const { h, peer, conn } = established({ tcp: { ...ka, keepaliveIdleMs: 500 } });
    conn.send(bytes(10), h.now);
    peer.drain();
    h.advance(900);
    const segs = peer.drain();
    assert.deepEqual(segs.filter((s) => s.payload.length === 0), [], "no keepalive probe");
    assert.ok(dataSegs(segs).length === 0 || dataSegs(segs)[0].payload.length === 10);
  });
});

describe("TcpTimerQueue (timers that scale)", () => {
  function owner(serial: number, log: number[]) {
    const o = { serial, timers: undefined as unknown as TcpTimers, poll: (_now: number) => {} };
    o.poll = (now: number) => {
      log.push(serial);
      o.timers.expire(TcpTimer.RTO, now);
    };
    return o;
  }

  it("answers the exact next deadline after timers stop or move later", () => {
    const q = new TcpTimerQueue();
    const log: number[] = [];
    const o1 = owner(1, log);
    const o2 = owner(2, log);
    o1.timers = new TcpTimers(q, o1);
    o2.timers = new TcpTimers(q, o2);
    o1.timers.start(TcpTimer.RTO, 100);
    o2.timers.start(TcpTimer.RTO, 200);
    assert.equal(q.nextDeadline(), 100);
    o1.timers.start(TcpTimer.RTO, 300); // later: no heap work now
    assert.equal(o1.timers.heapKey, 100, "a lower bound until it reaches the top");
    assert.equal(q.nextDeadline(), 200);
    o2.timers.stop(TcpTimer.RTO);
    assert.equal(q.nextDeadline(), 300);
    assert.equal(q.size, 1, "o2 left the queue once its stale entry came up");
    o1.timers.stopAll();
    assert.equal(q.size, 0);
    assert.equal(q.nextDeadline(), undefined);
  });

  it("polls only the connections due, once each, in creation order", () => {
    const q = new TcpTimerQueue();
    const log: number[] = [];
    const owners = [5, 3, 9, 1].map((serial) => owner(serial, log));
    for (const o of owners) o.timers = new TcpTimers(q, o);
    owners[0].timers.start(TcpTimer.RTO, 50);
    owners[1].timers.start(TcpTimer.RTO, 40);
    owners[2].timers.start(TcpTimer.RTO, 50);
    owners[3].timers.start(TcpTimer.RTO, 60);
    q.poll(50);
    assert.deepEqual(log, [3, 5, 9]);
    assert.equal(q.nextDeadline(), 60);
    q.poll(59);
    assert.deepEqual(log, [3, 5, 9]);
  });

  it("a timer re-armed for now while its connection fires waits for the next poll", () => {
    const q = new TcpTimerQueue();
    let polls = 0;
    const o = {
      serial: 1,
      poll: (now: number) => {
        polls++;
        t.expire(TcpTimer.TIME_WAIT, now);
        t.start(TcpTimer.TIME_WAIT, now); // a TIME-WAIT of 0 ms
      },
    };
    const t = new TcpTimers(q, o);
    t.start(TcpTimer.TIME_WAIT, 10);
    q.poll(10);
    assert.equal(polls, 1);
    assert.equal(q.nextDeadline(), 10);
    q.poll(10);
    assert.equal(polls, 2);
  });
});
