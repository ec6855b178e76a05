import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TcpFlags } from "../wire/mod.ts";
import { TcpEvent } from "../stack/tcp/tcp_connection.ts";
import { TcpServer, type TcpSocket } from "./tcp_socket.ts";
import { drainAll, makeSession, SessionPeer, settle } from "./_session_peer_test_util.ts";

/**
 * A session with `n` accepted connections from peers on ports 40000.. (each
 * holds a unit of the session's socket quota, so the quota is raised to fit).
 */
async function connections(n: number, tcp = {}) {
  const env = makeSession(tcp, { maxSockets: Math.max(256, n + 16) });
  const server = TcpServer.listen(env.session, { port: 80, backlog: 1024 });
  const peers: SessionPeer[] = [];
  const socks: TcpSocket[] = [];
  for (let i = 0; i < n; i++) {
    const p = new SessionPeer(env.session, env.tunnel, 80, { port: 40000 + i });
    p.connect();
    peers.push(p);
    socks.push(await server.accept());
  }
  return { ...env, server, peers, socks };
}

/** Wraps a socket's event callback. */
function onEvents(sock: TcpSocket, fn: (bits: number) => void): void {
  const orig = sock.onEvents.bind(sock);
  sock.onEvents = (bits: number) => {
    fn(bits);
    orig(bits);
  };
}

describe("Session core lock with TCP sockets (DESIGN.md: lwIP's core lock rules)", () => {
  it("delivers socket events after releasing the core lock", async () => {
    const { session, peers, socks } = await connections(1);
    const held: boolean[] = [];
    onEvents(socks[0], () => held.push(session.lock.held));
    peers[0].send(new Uint8Array(10));
    assert.deepEqual(held, [false]);
  });

  it("sends emitted frames to the tunnel after releasing the lock", async () => {
    const { tunnel, peers } = await connections(1);
    tunnel.lockHeldDuringSend = [];
    peers[0].send(new Uint8Array(10), { flags: TcpFlags.ACK | TcpFlags.FIN });
    assert.ok(tunnel.lockHeldDuringSend.length > 0);
    assert.ok(tunnel.lockHeldDuringSend.every((h) => h === false));
  });

  it("lets an event callback abort another socket while events are being delivered", async () => {
    const { session, peers, socks } = await connections(2);
    const seen: Array<[number, number]> = [];
    onEvents(socks[0], (bits) => {
      seen.push([0, bits]);
      if (socks[1].conn.state !== "CLOSED") socks[1].abort();
    });
    onEvents(socks[1], (bits) => seen.push([1, bits]));
    // Both connections get data in one batch: one critical section, two owners with events.
    session.input([
      peers[0].frame({ payload: new Uint8Array(5) }),
      peers[1].frame({ payload: new Uint8Array(5) }),
    ]);
    assert.equal(socks[1].conn.state, "CLOSED");
    assert.ok(
      seen.some(([i, bits]) => i === 1 && (bits & TcpEvent.CLOSED)),
      "socket 1 learns it closed",
    );
    const rst = peers[1].drain().filter((s) => s.flags & TcpFlags.RST);
    assert.equal(rst.length, 1);
    assert.equal(session.stack.tcp.active.size, 1);
    assert.equal(session.lock.stats.reentries, 0);
    assert.equal(socks[1].conn.error, undefined, "a local abort is not an error");
  });

  it("lets an event callback close its own socket during delivery", async () => {
    const { session, peers, socks } = await connections(1);
    let calls = 0;
    onEvents(socks[0], () => {
      calls++;
      if (calls === 1) {
        socks[0].read(1 << 20); // take the data so close() is graceful
        socks[0].close();
      }
    });
    peers[0].send(new Uint8Array(5), { flags: TcpFlags.ACK | TcpFlags.PSH | TcpFlags.FIN });
    assert.equal(socks[0].conn.state, "LAST_ACK");
    const fin = peers[0].drain().find((s) => s.flags & TcpFlags.FIN);
    assert.ok(fin, "the FIN went out");
    peers[0].ack = (fin.seqNumber + 1) >>> 0;
    peers[0].inject({});
    assert.equal(socks[0].conn.state, "CLOSED");
    assert.equal(session.stack.tcp.active.size, 0);
    assert.equal(session.lock.stats.reentries, 0);
  });

  it("throws at once when code inside the core lock enters it again, and stays usable", async () => {
    const { session, socks } = await connections(1);
    assert.throws(
      () => session.withCore(() => socks[0].info() && socks[0].read(10)),
      /CoreLock: entered the core lock from inside a critical section/,
    );
    assert.equal(session.lock.stats.reentries, 1);
    assert.equal(session.lock.held, false);
    assert.equal(socks[0].read(10), undefined, "the lock was released after the throw");
  });

  it("a socket call from an event callback does not deadlock (delivery is outside the lock)", async () => {
    const { peers, socks } = await connections(1);
    const got: number[] = [];
    onEvents(socks[0], (bits) => {
      if (bits & TcpEvent.READABLE) {
        const d = socks[0].read(100);
        if (d) got.push(d.length);
      }
    });
    peers[0].send(new Uint8Array(7));
    assert.deepEqual(got, [7]);
  });

  it("processes frames that arrive while the lock is held after the holder, with their arrival time", async () => {
    const { session, clock, peers, socks } = await connections(1);
    const sock = socks[0];
    await sock.write(new Uint8Array(100));
    const [seg] = peers[0].drain();
    const sentAt = clock.now();
    clock.advance(30);
    let processedInside = true;
    session.withCore(() => {
      // The ACK arrives now, 30 ms after the send, while the core is busy.
      peers[0].ack = (seg.seqNumber + 100) >>> 0;
      peers[0].inject({});
      processedInside = sock.conn.info().bytesInFlight === 0;
      clock.advance(500); // the holder keeps the core for a long time
    });
    assert.equal(processedInside, false, "queued, not processed inside the critical section");
    assert.equal(sock.info().bytesInFlight, 0, "processed right after release");
    assert.equal(clock.now() - sentAt, 530);
    // RTT measured from arrival (30 ms), not from processing (530 ms): SRTT = 30 on a
    // passive open without timestamps, whose first sample this is.
    assert.equal(sock.info().rttMs, 30);
  });

  it("runs timers through the lock: a timer that closes a connection delivers CLOSED after release", async () => {
    const { session, clock, socks } = await connections(1, {
      keepaliveIdleMs: 1000,
      keepaliveIntervalMs: 100,
      keepaliveProbes: 1,
    });
    const events: number[] = [];
    const held: boolean[] = [];
    onEvents(socks[0], (bits) => {
      events.push(bits);
      held.push(session.lock.held);
    });
    clock.advance(1000);
    clock.advance(100);
    assert.equal(socks[0].conn.state, "CLOSED");
    assert.equal(socks[0].conn.error, "ETIMEDOUT");
    assert.ok(events.some((b) => b & TcpEvent.CLOSED));
    assert.ok(held.every((h) => h === false));
    await assert.rejects(socks[0].receive(10), /timed out/);
  });

  it("serves a thousand concurrent connections through one session", async () => {
    const { session, tunnel, peers, socks } = await connections(1000);
    assert.equal(session.stack.tcp.active.size, 1000);
    // One batch of frames: every peer sends its request with FIN.
    session.input(peers.map((p, i) => {
      const f = p.frame({
        flags: TcpFlags.ACK | TcpFlags.PSH | TcpFlags.FIN,
        payload: new Uint8Array([i & 0xff]),
      });
      p.seq += 2;
      return f;
    }));
    for (let i = 0; i < socks.length; i++) {
      const d = await socks[i].receive(10);
      assert.deepEqual(d, new Uint8Array([i & 0xff]));
      assert.equal(await socks[i].receive(10), null);
      socks[i].close();
    }
    const fins = new Map<number, number>();
    for (const s of drainAll(tunnel)) if (s.flags & TcpFlags.FIN) fins.set(s.dstPort, s.seqNumber);
    assert.equal(fins.size, 1000, "every socket sent its FIN");
    session.input(peers.map((p) => {
      p.ack = (fins.get(p.port)! + 1) >>> 0;
      return p.frame({});
    }));
    await settle();
    assert.equal(session.stack.tcp.active.size, 0);
    assert.equal(session.stack.tcp.timeWait.size, 0);
    assert.equal(session.lock.stats.reentries, 0);
    for (const s of socks) assert.equal(s.waiterCount, 0);
  });
});
