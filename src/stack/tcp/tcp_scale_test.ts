import { describe, it } from "node:test";
import { createSessionQuota } from "../session_quota.ts";
import assert from "node:assert/strict";
import { bytes, established, HARNESS_PEER_IP, Peer, readAll, TcpHarness } from "./tcp_harness.ts";
import { TcpFlags } from "../../wire/mod.ts";
import type { TcpConnection } from "./tcp_connection.ts";

const N = 2000;

function assertEmpty(h: TcpHarness): void {
  const tcp = h.stack.tcp;
  assert.equal(tcp.active.size, 0, "active list empty");
  assert.equal(tcp.timeWait.size, 0, "time-wait list empty");
  assert.equal(tcp.connectionCount, 0);
  for (const l of tcp.listeners.values()) {
    assert.equal(l.synQueue.size, 0, "SYN queue empty");
    assert.equal(l.acceptQueue.length, 0, "accept queue empty");
  }
  assert.equal(tcp.nextDeadline(), undefined, "no timer left");
}

/** Quotas for thousands of connections nobody's socket layer adopts (each holds its unit). */
const roomy = () => createSessionQuota({ maxBufferedBytes: 1 << 30, maxSockets: 10_000 });

describe("TcpLayer with thousands of concurrent connections", () => {
  it(`accepts ${N} connections, exchanges data on each, closes them all, and empties every list`, () => {
    const h = new TcpHarness({ quota: roomy() });
    const peers: Peer[] = [];
    for (let i = 0; i < N; i++) {
      peers.push(established({ harness: h, peer: { port: 10_000 + i, isn: i * 7919 } }).peer);
    }
    assert.equal(h.stack.tcp.active.size, N);
    assert.equal(new Set(peers.map((p) => p.conn)).size, N, "one connection per peer");
    // Every peer sends a request with its FIN; the stack answers each and closes.
    for (const p of peers) {
      p.send(bytes(20, p.port), { flags: TcpFlags.ACK | TcpFlags.PSH | TcpFlags.FIN });
    }
    const acks = h.drain();
    assert.equal(acks.length, N, "each FIN is ACKed at once");
    for (const p of peers) {
      assert.equal(p.conn.state, "CLOSE_WAIT");
      const req = readAll(p.conn, h.now);
      assert.deepEqual(req, bytes(20, p.port), `request of port ${p.port}`);
      p.conn.send(req, h.now);
      p.conn.close(h.now);
      assert.equal(p.conn.state, "LAST_ACK");
    }
    const replies = h.drain();
    assert.equal(replies.length, 2 * N, "the data, then the FIN");
    const byPort = new Map(peers.map((p) => [p.port, p]));
    for (const r of replies) {
      const p = byPort.get(r.dstPort)!;
      if (r.payload.length > 0) {
        assert.deepEqual(r.payload, bytes(20, p.port));
        continue;
      }
      assert.ok(r.flags & TcpFlags.FIN);
      p.ackTo((r.seqNumber + 1) >>> 0);
    }
    assert.deepEqual(h.drain(), []);
    for (const p of peers) assert.equal(p.conn.state, "CLOSED");
    h.stack.tcp.takeDirty();
    assertEmpty(h);
  });

  it(`opens ${N} connections from distinct ephemeral ports and lets them all pass TIME_WAIT`, () => {
    const h = new TcpHarness({ tcp: { timeWaitMs: 1000 } });
    const conns: TcpConnection[] = [];
    for (let i = 0; i < N; i++) conns.push(h.stack.tcp.connect(HARNESS_PEER_IP, 7, h.now));
    const syns = h.drain();
    assert.equal(syns.length, N);
    assert.equal(new Set(syns.map((s) => s.srcPort)).size, N, "distinct local ports");
    for (const s of syns) {
      assert.ok(s.srcPort >= 49152 && s.srcPort <= 65535, `ephemeral port ${s.srcPort}`);
      h.inject({
        srcPort: 7,
        dstPort: s.srcPort,
        seqNumber: 5000,
        ackNumber: (s.seqNumber + 1) >>> 0,
        flags: TcpFlags.SYN | TcpFlags.ACK,
        mss: 1460,
      });
    }
    assert.equal(h.drain().length, N, "handshake ACKs");
    for (const c of conns) assert.equal(c.state, "ESTABLISHED");
    // The stack sends a little data and closes first; the peer ACKs and closes too.
    for (const c of conns) {
      c.send(bytes(10), h.now);
      c.close(h.now);
    }
    const out = h.drain();
    assert.equal(out.length, 2 * N, "the data, then the FIN");
    for (const s of out) {
      if (s.payload.length > 0) continue;
      assert.ok(s.flags & TcpFlags.FIN);
      h.inject({
        srcPort: 7,
        dstPort: s.srcPort,
        seqNumber: 5001,
        ackNumber: (s.seqNumber + 1) >>> 0,
        flags: TcpFlags.ACK | TcpFlags.FIN,
      });
    }
    assert.equal(h.drain().length, N, "the peers' FINs are ACKed");
    for (const c of conns) assert.equal(c.state, "TIME_WAIT");
    assert.equal(h.stack.tcp.timeWait.size, N);
    assert.equal(h.stack.tcp.active.size, 0);
    h.advance(1000);
    for (const c of conns) assert.equal(c.state, "CLOSED");
    h.stack.tcp.takeDirty();
    assertEmpty(h);
    // Every port was released: one of them can be bound again.
    assert.equal(h.stack.tcp.bindPort(syns[0].srcPort), syns[0].srcPort);
  });

  it("keeps the timers of many idle connections independent (delayed ACKs fire together)", () => {
    const h = new TcpHarness({ quota: roomy() });
    const peers: Peer[] = [];
    for (let i = 0; i < 500; i++) {
      peers.push(established({ harness: h, peer: { port: 20_000 + i } }).peer);
    }
    for (const p of peers) p.send(10);
    assert.deepEqual(h.drain(), []);
    h.advance(40);
    const acks = h.drain();
    assert.equal(acks.length, 500);
    assert.equal(new Set(acks.map((a) => a.dstPort)).size, 500);
    for (const p of peers) p.conn.abort(h.now);
    assert.equal(h.drain().length, 500, "one RST each");
    h.stack.tcp.takeDirty();
    assertEmpty(h);
  });
});
