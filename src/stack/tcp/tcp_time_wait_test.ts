import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ACTIVE_PEER,
  assertSilent,
  BARE_PEER,
  bytes,
  drainOne,
  established,
  FULL_PEER,
  HARNESS_PEER_IP,
  intoTimeWait,
  seg,
  TcpHarness,
  u32,
} from "./tcp_harness.ts";
import type { TcpConfig } from "./tcp_config.ts";
import { TcpFlags } from "../../wire/mod.ts";
import { seqGt } from "./seq.ts";

const { ACK, FIN, PSH, RST, SYN } = TcpFlags;

/**
 * A passive connection the stack closed first, now in TIME-WAIT. The peer
 * offered no options unless `timestamps`; its next sequence number is 1002,
 * ours `s`.
 */
function timeWait(config: Partial<TcpConfig> = {}, timestamps = false) {
  const o = established({
    tcp: { timeWaitMs: 10_000, ...config },
    peer: timestamps ? FULL_PEER : BARE_PEER,
  });
  const h = o.h;
  const ts = (v: number) => timestamps ? { timestamp: { value: v, echo: 0 } } : {};
  o.conn.close(h.now);
  h.drain();
  const s = u32(o.iss + 2);
  h.inject({ seqNumber: 1001, ackNumber: s, flags: ACK, ...ts(200) });
  h.inject({ seqNumber: 1001, ackNumber: s, flags: FIN | ACK, ...ts(201) });
  const lastAck = drainOne(h);
  assert.equal(o.conn.state, "TIME_WAIT");
  return { ...o, s, lastAck, ts, entered: h.now };
}

describe("TIME-WAIT (RFC 9293 §3.10.7.4, §3.4.2)", () => {
  it("sends the last ACK and holds the connection on the time-wait list", () => {
    const { h, conn, s, lastAck } = timeWait();
    assert.deepEqual(lastAck, seg({ seqNumber: s, ackNumber: 1002, flags: ACK, windowLen: 65534 }));
    assert.equal(conn.pcbList, "time-wait");
    assert.equal(h.stack.tcp.timeWait.get(conn.key), conn);
    assert.equal(h.stack.tcp.active.size, 0);
    assert.equal(h.stack.tcp.connectionCount, 1);
  });

  it("lasts exactly 2MSL (timeWaitMs), then closes silently and frees the slot", () => {
    const { h, conn, entered } = timeWait();
    assert.equal(h.fireNextTimer() - entered, 10_000);
    assertSilent(h);
    assert.equal(conn.state, "CLOSED");
    assert.equal(conn.error, undefined);
    assert.equal(h.stack.tcp.timeWait.size, 0);
    assert.equal(h.stack.tcp.connectionCount, 0);
  });

  it("uses 60 s by default (Linux's TCP_TIMEWAIT_LEN)", () => {
    const h = new TcpHarness();
    const { conn, iss } = established({ harness: h, peer: BARE_PEER });
    conn.shutdownWrite(h.now);
    h.inject({ seqNumber: 1001, ackNumber: u32(iss + 2), flags: FIN | ACK });
    const t0 = h.now;
    assert.equal(conn.state, "TIME_WAIT");
    assert.equal(h.fireNextTimer() - t0, 60_000);
    assert.equal(conn.state, "CLOSED");
  });

  it("re-acknowledges a retransmitted FIN and restarts the 2MSL timer", () => {
    const { h, conn, lastAck, entered } = timeWait();
    h.advance(7_000);
    h.inject({ seqNumber: 1001, ackNumber: lastAck.seqNumber, flags: FIN | ACK });
    assert.deepEqual(h.drain(), [lastAck]);
    h.advance(9_999);
    assert.equal(conn.state, "TIME_WAIT", "the timer restarted at the retransmitted FIN");
    h.advance(1);
    assert.equal(conn.state, "CLOSED");
    assert.equal(h.now - entered, 17_000);
  });

  it("ignores a RST at RCV.NXT (RFC 1337 TIME-WAIT assassination)", () => {
    const { h, conn, entered } = timeWait();
    h.inject({ seqNumber: 1002, flags: RST });
    h.inject({ seqNumber: 1002, ackNumber: 5, flags: RST | ACK });
    assertSilent(h);
    assert.equal(conn.state, "TIME_WAIT");
    assert.equal(h.fireNextTimer() - entered, 10_000, "the RST did not shorten 2MSL");
  });

  it("never answers a RST outside the window", () => {
    const { h, conn } = timeWait();
    h.inject({ seqNumber: 900, flags: RST });
    assertSilent(h);
    assert.equal(conn.state, "TIME_WAIT");
  });

  it("answers an old duplicate data segment with an ACK and stays", () => {
    const { h, conn, lastAck } = timeWait();
    h.inject({
      seqNumber: 991,
      ackNumber: lastAck.seqNumber,
      flags: ACK | PSH,
      payload: bytes(10),
    });
    assert.deepEqual(h.drain(), [lastAck]);
    assert.equal(conn.state, "TIME_WAIT");
  });

  it("closes silently on abort", () => {
    const { h, conn } = timeWait();
    conn.abort(h.now);
    assertSilent(h);
    assert.equal(conn.state, "CLOSED");
    assert.equal(h.stack.tcp.timeWait.size, 0);
  });

  it("keeps the 4-tuple from a new active open (EADDRINUSE)", () => {
    const h = new TcpHarness({ tcp: { timeWaitMs: 1000 } });
    intoTimeWait(
      established({ harness: h, active: true, peer: { ...ACTIVE_PEER, syn: {} } }),
    );
    assert.throws(
      () => h.stack.tcp.connect(HARNESS_PEER_IP, 8080, h.now, { localPort: 50000 }),
      (e: Error & { code?: string }) => e.code === "EADDRINUSE",
    );
    h.advance(1000);
    const again = h.stack.tcp.connect(HARNESS_PEER_IP, 8080, h.now, { localPort: 50000 });
    assert.equal(again.state, "SYN_SENT");
  });

  it("also follows CLOSING and lasts 2MSL from there", () => {
    const h = new TcpHarness({ tcp: { timeWaitMs: 3_000 } });
    const { conn, iss } = established({ harness: h, peer: BARE_PEER });
    conn.shutdownWrite(h.now);
    h.inject({ seqNumber: 1001, ackNumber: u32(iss + 1), flags: FIN | ACK });
    assert.equal(conn.state, "CLOSING");
    h.advance(500);
    h.inject({ seqNumber: 1002, ackNumber: u32(iss + 2), flags: ACK });
    const t0 = h.now;
    assert.equal(conn.state, "TIME_WAIT");
    assert.equal(h.fireNextTimer() - t0, 3_000);
    assert.equal(conn.state, "CLOSED");
  });
});

describe("TIME-WAIT reuse by a new SYN (RFC 9293 §3.10.7.4, RFC 6191, RFC 1122 §4.2.2.13)", () => {
  it("lets a SYN with a higher sequence number open a new connection with an ISS beyond the old SND.NXT", () => {
    const { h, conn, listener, s } = timeWait();
    h.inject({ seqNumber: 500_000, flags: SYN, mss: 1460 });
    const synAck = drainOne(h);
    assert.equal(synAck.flags, SYN | ACK);
    assert.equal(synAck.ackNumber, 500_001);
    assert.ok(seqGt(synAck.seqNumber, s), `new ISS ${synAck.seqNumber} beyond old SND.NXT ${s}`);
    assert.equal(conn.state, "CLOSED", "the old incarnation is gone");
    assert.equal(h.stack.tcp.timeWait.size, 0);
    const [fresh] = listener!.synQueue;
    assert.equal(fresh.state, "SYN_RECEIVED");
    h.inject({ seqNumber: 500_001, ackNumber: u32(synAck.seqNumber + 1), flags: ACK });
    assert.equal(fresh.state, "ESTABLISHED");
    assert.equal(listener!.accept(), fresh);
  });

  it("does not let a SYN with an old sequence number take over: it gets an ACK", () => {
    const { h, conn, lastAck } = timeWait();
    h.inject({ seqNumber: 500, flags: SYN });
    assert.deepEqual(h.drain(), [lastAck]);
    assert.equal(conn.state, "TIME_WAIT");
  });

  it("with timestamps, lets a SYN with a higher TSval take over even with a lower sequence number (RFC 6191 §2)", () => {
    const { h, conn, listener } = timeWait({}, true);
    h.inject({ seqNumber: 10, flags: SYN, mss: 1460, timestamp: { value: 5000, echo: 0 } });
    const synAck = drainOne(h);
    assert.equal(synAck.flags, SYN | ACK);
    assert.equal(synAck.ackNumber, 11);
    assert.deepEqual(synAck.timestamp?.echo, 5000);
    assert.equal(conn.state, "CLOSED");
    assert.equal(listener!.synQueue.size, 1);
  });

  it("with timestamps, refuses a SYN with an older TSval even with a higher sequence number", () => {
    const { h, conn, listener } = timeWait({}, true);
    h.inject({ seqNumber: 500_000, flags: SYN, timestamp: { value: 150, echo: 0 } });
    const out = h.drain();
    assert.equal(out.length, 1);
    assert.equal(out[0].flags, ACK, "the PAWS test answers with an ACK");
    assert.equal(conn.state, "TIME_WAIT");
    assert.equal(listener!.synQueue.size, 0);
  });

  it("answers a new SYN in TIME-WAIT with an ACK when nobody listens any more", () => {
    const { h, conn, listener, lastAck } = timeWait();
    h.stack.tcp.closeListener(listener!, h.now);
    h.drain();
    h.inject({ seqNumber: 500_000, flags: SYN });
    assert.deepEqual(h.drain(), [lastAck]);
    assert.equal(conn.state, "TIME_WAIT");
  });
});
