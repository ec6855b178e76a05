import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TcpFlags } from "../../wire/mod.ts";
import { createSessionQuota } from "../session_quota.ts";
import {
  assertSilent,
  BARE_PEER,
  bytes,
  drainOne,
  established,
  LOCAL_PORT,
  seg,
  TcpHarness,
  u32,
} from "./tcp_harness.ts";

const { ACK, PSH, RST, SYN } = TcpFlags;

/** A harness whose session has `sockets` units of socket quota. */
function withSockets(sockets: number, backlog = 8) {
  const quota = createSessionQuota({ maxBufferedBytes: 1 << 20, maxSockets: sockets });
  const h = new TcpHarness({ quota });
  const l = h.stack.tcp.listen(LOCAL_PORT, backlog);
  return { h, l, quota };
}

describe("passive opens hold a unit of the session's socket quota", () => {
  it("takes no unit while half-open, one when its handshake completes, and keeps it in the accept queue", () => {
    const { h, l, quota } = withSockets(4);
    h.inject({ seqNumber: 1000, flags: SYN });
    const synAck = drainOne(h);
    const [half] = l.synQueue;
    assert.equal(
      quota.sockets.used,
      0,
      "the SYN queue bounds half-open connections, not the quota",
    );
    assert.equal(half.holdsQuotaUnit, false);
    h.inject({ seqNumber: 1001, ackNumber: u32(synAck.seqNumber + 1), flags: ACK });
    assert.deepEqual(l.acceptQueue, [half]);
    assert.equal(half.holdsQuotaUnit, true);
    assert.equal(quota.sockets.used, 1, "waiting to be accepted, it holds its unit");
  });

  it("a SYN flood takes none of the session's socket units (RFC 4987)", () => {
    const { h, l, quota } = withSockets(2, 64);
    for (let i = 0; i < 200; i++) h.inject({ srcPort: 20000 + i, seqNumber: 1000, flags: SYN });
    h.drain();
    assert.equal(l.synQueue.size, 64, "the SYN queue is full; the rest got cookies");
    assert.equal(quota.sockets.used, 0);
    assert.equal(quota.sockets.tryTake(), true, "the API still opens sockets");
  });

  it("hands its unit to the socket that accepts it, once", () => {
    const { h, l, quota } = withSockets(4);
    const { conn } = established({ harness: h, peer: BARE_PEER });
    assert.equal(l.acceptQueue.length, 0);
    assert.equal(conn.takeQuotaUnit(), true);
    assert.equal(conn.takeQuotaUnit(), false, "the unit was handed over");
    assert.equal(conn.holdsQuotaUnit, false);
    conn.abort(h.now);
    assert.equal(quota.sockets.used, 1, "the socket releases it, not the connection");
  });

  it("releases its unit when it closes before it is accepted", () => {
    const { h, l, quota } = withSockets(4);
    h.inject({ seqNumber: 1000, flags: SYN });
    const iss = drainOne(h).seqNumber;
    h.inject({ seqNumber: 1001, ackNumber: u32(iss + 1), flags: ACK });
    assert.equal(l.acceptQueue.length, 1);
    assert.equal(quota.sockets.used, 1);
    h.inject({ seqNumber: 1001, flags: RST });
    assert.equal(l.acceptQueue.length, 0);
    assert.equal(quota.sockets.used, 0);
  });

  it("releases the unit and the memory of connections reset when their listener closes", () => {
    const { h, l, quota } = withSockets(4);
    for (const srcPort of [40000, 40001]) {
      h.inject({ srcPort, seqNumber: 1000, flags: SYN });
      const iss = drainOne(h).seqNumber;
      h.inject({
        srcPort,
        seqNumber: 1001,
        ackNumber: u32(iss + 1),
        flags: ACK | PSH,
        payload: bytes(500),
      });
    }
    assert.equal(l.acceptQueue.length, 2, "established, with data, never accepted");
    assert.equal(quota.sockets.used, 2);
    assert.ok(quota.memory.used > 0);
    h.stack.tcp.closeListener(l, h.now);
    assert.equal(h.drain().filter((s) => s.flags & RST).length, 2);
    assert.equal(quota.sockets.used, 0);
    assert.equal(quota.memory.used, 0, "nobody reads their data: freed");
  });

  it("with no unit left, drops the handshake's last ACK silently and completes on the SYN-ACK's retransmission (RFC 4987 §3)", () => {
    const { h, l, quota } = withSockets(1);
    // The first connection completes its handshake and takes the only unit.
    h.inject({ seqNumber: 1000, flags: SYN });
    const first = drainOne(h);
    h.inject({ seqNumber: 1001, ackNumber: u32(first.seqNumber + 1), flags: ACK });
    assert.equal(quota.sockets.used, 1);
    // The second gets a SYN-ACK (half-open needs no unit), but its ACK finds none.
    h.inject({ srcPort: 40001, seqNumber: 5000, flags: SYN });
    const synAck = drainOne(h);
    assert.deepEqual(
      synAck,
      seg({
        dstPort: 40001,
        seqNumber: synAck.seqNumber,
        ackNumber: 5001,
        flags: SYN | ACK,
        windowLen: synAck.windowLen,
        mss: 1460,
      }),
    );
    h.inject({ srcPort: 40001, seqNumber: 5001, ackNumber: u32(synAck.seqNumber + 1), flags: ACK });
    assertSilent(h, "dropped silently: no RST, the connection stays half-open");
    assert.equal(h.drops("tcp_accept_quota"), 1);
    assert.equal(l.synQueue.size, 1);
    assert.equal(l.acceptQueue.length, 1);
    assert.equal(quota.sockets.stats().refused, 1);
    // The first connection goes away; the SYN-ACK's retransmission draws the peer's ACK again.
    h.inject({ seqNumber: 1001, ackNumber: u32(first.seqNumber + 1), flags: RST });
    assert.equal(quota.sockets.used, 0);
    h.advance(1000);
    const again = drainOne(h);
    assert.equal(again.flags, SYN | ACK);
    assert.equal(again.seqNumber, synAck.seqNumber, "the same SYN-ACK, retransmitted");
    h.inject({ srcPort: 40001, seqNumber: 5001, ackNumber: u32(synAck.seqNumber + 1), flags: ACK });
    assert.equal(l.acceptQueue.length, 1);
    assert.equal(l.acceptQueue[0].remotePort, 40001);
    assert.equal(quota.sockets.used, 1);
  });

  it("drops the ACK of a SYN cookie silently when no unit is left", () => {
    const { h, l, quota } = withSockets(1, 2);
    // One established connection holds the only unit; two half-open ones fill the SYN queue.
    h.inject({ seqNumber: 1000, flags: SYN });
    const first = drainOne(h);
    h.inject({ seqNumber: 1001, ackNumber: u32(first.seqNumber + 1), flags: ACK });
    for (const srcPort of [40002, 40003]) h.inject({ srcPort, seqNumber: 7000, flags: SYN });
    h.drain();
    assert.equal(l.synQueue.size, 2);
    h.inject({ srcPort: 40001, seqNumber: 5000, flags: SYN, mss: 1460 });
    const cookie = drainOne(h);
    assert.equal(l.cookiesSent, 1);
    h.inject({ srcPort: 40001, seqNumber: 5001, ackNumber: u32(cookie.seqNumber + 1), flags: ACK });
    assertSilent(h, "no RST: the peer's next segment carries the cookie again");
    assert.equal(h.drops("tcp_accept_quota"), 1);
    assert.equal(l.cookiesAccepted, 0);
    assert.equal(quota.sockets.used, 1);
    // A unit is freed: the peer's next segment completes the handshake from the cookie.
    h.inject({ seqNumber: 1001, ackNumber: u32(first.seqNumber + 1), flags: RST });
    h.inject({ srcPort: 40001, seqNumber: 5001, ackNumber: u32(cookie.seqNumber + 1), flags: ACK });
    assertSilent(h);
    assert.equal(l.cookiesAccepted, 1);
    assert.equal(l.acceptQueue[0].holdsQuotaUnit, true);
  });

  it("takes no unit for an active open (the socket layer takes its own)", () => {
    const { h, quota } = withSockets(1);
    const { conn } = established({ harness: h, active: true });
    assert.equal(conn.holdsQuotaUnit, false);
    assert.equal(quota.sockets.used, 0);
  });
});
