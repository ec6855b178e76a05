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
  it("takes a unit for a SYN-RECEIVED connection and keeps it in the accept queue", () => {
    const { h, l, quota } = withSockets(4);
    h.inject({ seqNumber: 1000, flags: SYN });
    const synAck = drainOne(h);
    const [half] = l.synQueue;
    assert.equal(quota.sockets.used, 1);
    assert.equal(half.holdsQuotaUnit, true);
    h.inject({ seqNumber: 1001, ackNumber: u32(synAck.seqNumber + 1), flags: ACK });
    assert.deepEqual(l.acceptQueue, [half]);
    assert.equal(quota.sockets.used, 1, "waiting to be accepted, it still holds its unit");
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
    h.drain();
    assert.equal(quota.sockets.used, 1);
    h.inject({ seqNumber: 1001, flags: RST });
    assert.equal(l.synQueue.size, 0);
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

  it("creates no connection for a SYN when no unit is left: no SYN-ACK, no RST, counted (RFC 4987 §3)", () => {
    const { h, l, quota } = withSockets(1);
    h.inject({ seqNumber: 1000, flags: SYN });
    h.drain();
    h.inject({ srcPort: 40001, seqNumber: 5000, flags: SYN });
    assertSilent(h, "dropped silently: the peer retries");
    assert.equal(h.drops("tcp_accept_quota"), 1);
    assert.equal(l.synQueue.size, 1);
    assert.equal(h.stack.tcp.active.size, 1);
    assert.equal(quota.sockets.stats().refused, 1);
    // The first connection goes away; the peer's retransmitted SYN gets in.
    h.inject({ seqNumber: 1001, flags: RST });
    h.inject({ srcPort: 40001, seqNumber: 5000, flags: SYN });
    const synAck = drainOne(h);
    assert.deepEqual(
      synAck,
      seg({
        dstPort: 40001,
        seqNumber: synAck.seqNumber,
        ackNumber: 5001,
        flags: SYN | ACK,
        windowLen: 65535,
        mss: 1460,
      }),
    );
  });

  it("drops the ACK of a SYN cookie silently when no unit is left", () => {
    const { h, l, quota } = withSockets(1, 1);
    h.inject({ seqNumber: 1000, flags: SYN }); // takes the unit and fills the SYN queue
    h.drain();
    h.inject({ srcPort: 40001, seqNumber: 5000, flags: SYN, mss: 1460 });
    const cookie = drainOne(h);
    assert.equal(l.cookiesSent, 1);
    h.inject({ srcPort: 40001, seqNumber: 5001, ackNumber: u32(cookie.seqNumber + 1), flags: ACK });
    assertSilent(h, "no RST: the peer's next segment carries the cookie again");
    assert.equal(h.drops("tcp_accept_quota"), 1);
    assert.equal(l.cookiesAccepted, 0);
    assert.equal(quota.sockets.used, 1);
    // A unit is freed: the peer's next segment completes the handshake from the cookie.
    h.inject({ seqNumber: 1001, flags: RST });
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
