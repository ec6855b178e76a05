import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ACTIVE_PEER,
  assertSilent,
  bytes,
  drainOne,
  established,
  FULL_SYN_OPTIONS,
  HARNESS_PEER_IP,
  intoTimeWait,
  LOCAL_PORT,
  seg,
  TcpHarness,
  u32,
} from "./tcp_harness.ts";
import { TcpFlags } from "../../wire/mod.ts";
import type { TcpRepr } from "../../wire/mod.ts";

const { ACK, PSH, RST, SYN } = TcpFlags;

/** SYNs from ports 30000.. with ISN 1000 + port; returns the SYN-ACKs in order. */
function flood(h: TcpHarness, n: number, first = 30000, extra = {}): TcpRepr[] {
  for (let i = 0; i < n; i++) {
    h.inject({
      srcPort: first + i,
      seqNumber: 1000 + first + i,
      flags: SYN,
      ...FULL_SYN_OPTIONS,
      ...extra,
    });
  }
  return h.drain();
}

describe("SYN flood beyond the backlog: SYN cookies (RFC 4987 §3.6)", () => {
  it("keeps at most backlog half-open connections and answers the rest with stateless cookie SYN-ACKs", () => {
    const h = new TcpHarness();
    const l = h.stack.tcp.listen(LOCAL_PORT, 4);
    const out = flood(h, 100);
    assert.equal(out.length, 100, "every SYN is answered");
    for (const s of out) assert.equal(s.flags, SYN | ACK);
    // The first four are ordinary SYN-ACKs with every option; the rest carry only MSS.
    for (const s of out.slice(0, 4)) assert.equal(s.windowScale, 4);
    for (const s of out.slice(4)) {
      assert.deepEqual(
        s,
        seg({
          dstPort: s.dstPort,
          seqNumber: s.seqNumber,
          ackNumber: 1000 + s.dstPort + 1,
          flags: SYN | ACK,
          windowLen: 65535,
          mss: 1460,
        }),
      );
    }
    assert.equal(l.synQueue.size, 4);
    assert.equal(h.stack.tcp.active.size, 4);
    assert.equal(l.cookiesSent, 96);
    assert.equal(h.stack.tcp.stats.synCookiesSent, 96);
  });

  it("keeps no timer for a cookie: only the stateful SYN-ACKs are retransmitted", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 2);
    flood(h, 50);
    h.advance(1000);
    const again = h.drain();
    assert.deepEqual(again.map((s) => s.dstPort).sort(), [30000, 30001]);
  });

  it("stays bounded under a large flood", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 16);
    for (let i = 0; i < 2000; i++) {
      h.inject({ srcPort: 1024 + i, seqNumber: i * 7919, flags: SYN, mss: 1460 });
    }
    assert.equal(h.drain().length, 2000);
    assert.equal(h.stack.tcp.active.size, 16);
    assert.equal(h.stack.tcp.connectionCount, 16);
  });

  it("creates an ESTABLISHED connection in the accept queue from an ACK with a valid cookie", () => {
    const h = new TcpHarness();
    const l = h.stack.tcp.listen(LOCAL_PORT, 1);
    flood(h, 1);
    h.inject({
      srcPort: 40000,
      seqNumber: 7000,
      flags: SYN,
      ...FULL_SYN_OPTIONS,
      windowLen: 30000,
    });
    const cookie = drainOne(h);
    assert.equal(cookie.windowScale, undefined, "a cookie SYN-ACK carries no window scale");
    assert.equal(h.stack.tcp.active.size, 1);
    h.inject({
      seqNumber: 7001,
      ackNumber: u32(cookie.seqNumber + 1),
      flags: ACK,
      windowLen: 30000,
    });
    assertSilent(h);
    assert.equal(h.stack.tcp.active.size, 2);
    assert.equal(l.acceptQueue.length, 1);
    assert.equal(l.cookiesAccepted, 1);
    const c = l.accept()!;
    assert.equal(c.state, "ESTABLISHED");
    assert.deepEqual(c.debugSeq(), {
      iss: cookie.seqNumber,
      irs: 7000,
      sndUna: u32(cookie.seqNumber + 1),
      sndNxt: u32(cookie.seqNumber + 1),
      sndMax: u32(cookie.seqNumber + 1),
      rcvNxt: 7001,
    });
    const info = c.info();
    assert.equal(info.sendMss, 1460, "the MSS comes back from the cookie");
    assert.equal(info.sendWindowScale, 0);
    assert.equal(info.recvWindowScale, 0);
    assert.equal(info.timestamps, false);
    assert.equal(info.sack, false);
    assert.equal(info.sendWindow, 30000, "without scaling the window is taken as is");
    // Data flows both ways with unscaled windows and no options.
    h.inject({
      seqNumber: 7001,
      ackNumber: u32(cookie.seqNumber + 1),
      flags: ACK | PSH,
      payload: bytes(100),
    });
    h.inject({
      seqNumber: 7101,
      ackNumber: u32(cookie.seqNumber + 1),
      flags: ACK | PSH,
      payload: bytes(100, 100),
    });
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: cookie.seqNumber + 1, ackNumber: 7201, flags: ACK, windowLen: 65535 - 200 }),
    ]);
    c.send(bytes(10), h.now);
    assert.deepEqual(h.drain(), [
      seg({
        seqNumber: cookie.seqNumber + 1,
        ackNumber: 7201,
        flags: ACK | PSH,
        windowLen: 65535 - 200,
        payload: bytes(10),
      }),
    ]);
  });

  it("delivers data carried by the cookie-completing ACK", () => {
    const h = new TcpHarness();
    const l = h.stack.tcp.listen(LOCAL_PORT, 1);
    flood(h, 1);
    h.inject({ seqNumber: 7000, flags: SYN, mss: 1460 });
    const cookie = drainOne(h);
    h.inject({
      seqNumber: 7001,
      ackNumber: u32(cookie.seqNumber + 1),
      flags: ACK | PSH,
      payload: bytes(20),
    });
    const c = l.accept()!;
    assert.deepEqual(c.read(100, h.now), bytes(20));
    assert.equal(c.debugSeq().rcvNxt, 7021);
  });

  it("encodes the peer's MSS in the cookie: the largest table entry not above it", () => {
    for (
      const [peerMss, expected] of [[1400, 1300], [536, 536], [9000, 1460], [
        undefined,
        536,
      ]] as const
    ) {
      const h = new TcpHarness();
      const l = h.stack.tcp.listen(LOCAL_PORT, 1);
      flood(h, 1);
      h.inject({ seqNumber: 7000, flags: SYN, ...(peerMss === undefined ? {} : { mss: peerMss }) });
      const cookie = drainOne(h);
      h.inject({ seqNumber: 7001, ackNumber: u32(cookie.seqNumber + 1), flags: ACK });
      assert.equal(l.accept()!.info().sendMss, expected, `peer MSS ${peerMss}`);
    }
  });

  it("announces our own MSS in a cookie SYN-ACK, not the peer's (RFC 9293 §3.7.1)", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 1);
    flood(h, 1);
    h.inject({ seqNumber: 7000, flags: SYN, mss: 536 });
    assert.equal(drainOne(h).mss, 1460);
  });

  it("answers a forged ACK during a flood with <SEQ=SEG.ACK><CTL=RST> and creates nothing", () => {
    const h = new TcpHarness();
    const l = h.stack.tcp.listen(LOCAL_PORT, 1);
    flood(h, 1);
    h.inject({ seqNumber: 7000, flags: SYN, mss: 1460 });
    const cookie = drainOne(h);
    h.inject({ seqNumber: 7001, ackNumber: u32(cookie.seqNumber + 2), flags: ACK });
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: u32(cookie.seqNumber + 2), flags: RST, windowLen: 0 }),
    ]);
    h.inject({ seqNumber: 7002, ackNumber: u32(cookie.seqNumber + 1), flags: ACK });
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: u32(cookie.seqNumber + 1), flags: RST, windowLen: 0 }),
    ]);
    assert.equal(l.acceptQueue.length, 0);
    assert.equal(h.stack.tcp.active.size, 1);
    assert.equal(h.drops("tcp_bad_cookie"), 2);
  });

  it("accepts a cookie for 64 to 128 s and refuses it after", () => {
    const h = new TcpHarness({ start: 0 });
    const l = h.stack.tcp.listen(LOCAL_PORT, 1);
    flood(h, 1);
    h.inject({ seqNumber: 7000, flags: SYN, mss: 1460 });
    const cookie = drainOne(h);
    h.inject({ srcPort: 40001, seqNumber: 9000, flags: SYN, mss: 1460 });
    const cookie2 = drainOne(h);
    h.now = 127_999;
    h.inject({ seqNumber: 7001, ackNumber: u32(cookie.seqNumber + 1), flags: ACK });
    assert.equal(l.acceptQueue.length, 1);
    h.now = 128_000;
    h.inject({
      srcPort: 40001,
      seqNumber: 9001,
      ackNumber: u32(cookie2.seqNumber + 1),
      flags: ACK,
    });
    assert.equal(drainOne(h).flags, RST);
    assert.equal(l.acceptQueue.length, 1);
  });

  it("lets a real client complete while the flood goes on", () => {
    const h = new TcpHarness();
    const l = h.stack.tcp.listen(LOCAL_PORT, 8);
    flood(h, 50);
    h.inject({ srcPort: 45000, seqNumber: 1, flags: SYN, mss: 1460 });
    const cookie = drainOne(h);
    flood(h, 50, 31000);
    h.inject({ srcPort: 45000, seqNumber: 2, ackNumber: u32(cookie.seqNumber + 1), flags: ACK });
    const c = l.accept()!;
    assert.equal(c.remotePort, 45000);
    assert.equal(c.state, "ESTABLISHED");
    assert.equal(h.stack.tcp.active.size, 9);
  });

  it("answers a repeated SYN of a half-open connection statefully, not with a cookie", () => {
    const h = new TcpHarness();
    const l = h.stack.tcp.listen(LOCAL_PORT, 1);
    h.inject({ seqNumber: 7000, flags: SYN, ...FULL_SYN_OPTIONS });
    const first = drainOne(h);
    h.inject({ seqNumber: 7000, flags: SYN, ...FULL_SYN_OPTIONS });
    assert.deepEqual(h.drain(), [first]);
    assert.equal(l.cookiesSent, 0);
  });

  it("frees the SYN queue when half-open connections expire", () => {
    const h = new TcpHarness({ tcp: { synAckRetries: 0 } });
    const l = h.stack.tcp.listen(LOCAL_PORT, 2);
    flood(h, 2);
    h.advance(1000);
    assert.equal(l.synQueue.size, 0);
    assert.equal(h.stack.tcp.active.size, 0);
    h.inject({ srcPort: 45000, seqNumber: 1, flags: SYN, ...FULL_SYN_OPTIONS });
    assert.equal(drainOne(h).windowScale, 4, "a stateful SYN-ACK again");
    assert.equal(l.synQueue.size, 1);
  });

  it("clamps the backlog to maxBacklog", () => {
    const h = new TcpHarness({ tcpLimits: { maxBacklog: 3 } });
    const l = h.stack.tcp.listen(LOCAL_PORT, 10_000);
    assert.equal(l.backlog, 3);
    flood(h, 10);
    assert.equal(l.synQueue.size, 3);
  });
});

describe("a full accept queue", () => {
  function fill(backlog: number) {
    const h = new TcpHarness();
    const l = h.stack.tcp.listen(LOCAL_PORT, backlog);
    for (let i = 0; i < backlog; i++) {
      h.inject({ srcPort: 30000 + i, seqNumber: 100, flags: SYN, mss: 1460 });
      const synAck = drainOne(h);
      h.inject({
        srcPort: 30000 + i,
        seqNumber: 101,
        ackNumber: u32(synAck.seqNumber + 1),
        flags: ACK,
      });
    }
    assert.equal(l.acceptQueue.length, backlog);
    return { h, l };
  }

  it("drops new SYNs silently while the application does not accept", () => {
    const { h, l } = fill(2);
    h.inject({ srcPort: 45000, seqNumber: 1, flags: SYN, mss: 1460 });
    assertSilent(h);
    assert.equal(h.drops("tcp_accept_queue_full"), 1);
    assert.equal(l.synQueue.size, 0);
    assert.equal(h.stack.tcp.active.size, 2);
  });

  it("answers SYNs again once the application accepts", () => {
    const { h, l } = fill(2);
    l.accept();
    h.inject({ srcPort: 45000, seqNumber: 1, flags: SYN, mss: 1460 });
    assert.equal(drainOne(h).flags, SYN | ACK);
  });

  it("refuses a cookie ACK while full: <SEQ=SEG.ACK><CTL=RST> as for any ACK in LISTEN (RFC 9293 §3.10.7.2)", () => {
    const h = new TcpHarness();
    const l = h.stack.tcp.listen(LOCAL_PORT, 1);
    h.inject({ srcPort: 30000, seqNumber: 100, flags: SYN, mss: 1460 });
    const first = drainOne(h);
    h.inject({ srcPort: 31000, seqNumber: 100, flags: SYN, mss: 1460 });
    const cookie = drainOne(h);
    h.inject({ srcPort: 30000, seqNumber: 101, ackNumber: u32(first.seqNumber + 1), flags: ACK });
    assert.equal(l.acceptQueue.length, 1);
    h.inject({ srcPort: 31000, seqNumber: 101, ackNumber: u32(cookie.seqNumber + 1), flags: ACK });
    assert.deepEqual(h.drain(), [
      seg({ dstPort: 31000, seqNumber: u32(cookie.seqNumber + 1), flags: RST, windowLen: 0 }),
    ]);
    assert.equal(l.acceptQueue.length, 1);
  });
});

describe("maxConnections", () => {
  it("refuses an active open beyond the limit with EMFILE", () => {
    const h = new TcpHarness({ tcpLimits: { maxConnections: 2 } });
    h.stack.tcp.connect(HARNESS_PEER_IP, 1, h.now, { localPort: 50000 });
    h.stack.tcp.connect(HARNESS_PEER_IP, 2, h.now, { localPort: 50000 });
    assert.throws(
      () => h.stack.tcp.connect(HARNESS_PEER_IP, 3, h.now, { localPort: 50000 }),
      (e: Error & { code?: string }) => e.code === "EMFILE",
    );
    assert.equal(h.stack.tcp.active.size, 2);
  });

  it("answers SYNs with cookies at the limit and creates no connection from their ACKs", () => {
    const h = new TcpHarness({ tcpLimits: { maxConnections: 1 } });
    const l = h.stack.tcp.listen(LOCAL_PORT, 8);
    h.stack.tcp.connect(HARNESS_PEER_IP, 1, h.now, { localPort: 50000 });
    h.drain();
    h.inject({ seqNumber: 7000, flags: SYN, ...FULL_SYN_OPTIONS });
    const cookie = drainOne(h);
    assert.equal(cookie.windowScale, undefined, "stateless");
    assert.equal(h.stack.tcp.active.size, 1);
    h.inject({ seqNumber: 7001, ackNumber: u32(cookie.seqNumber + 1), flags: ACK });
    assert.equal(drainOne(h).flags, RST);
    assert.equal(l.acceptQueue.length, 0);
    assert.equal(h.stack.tcp.active.size, 1);
  });

  it("counts TIME-WAIT connections against the limit", () => {
    const h = new TcpHarness({ tcpLimits: { maxConnections: 1 }, tcp: { timeWaitMs: 1000 } });
    intoTimeWait(
      established({ harness: h, active: true, peer: { ...ACTIVE_PEER, syn: {} } }),
    );
    assert.throws(() => h.stack.tcp.connect(HARNESS_PEER_IP, 8081, h.now, { localPort: 50001 }));
    h.advance(1000);
    h.stack.tcp.connect(HARNESS_PEER_IP, 8081, h.now, { localPort: 50001 });
  });
});
