import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TcpFlags } from "../wire/mod.ts";
import { NetError } from "../errors/net_error.ts";
import { TcpServer, TcpSocket } from "./tcp_socket.ts";
import { endsAt, makeSession, SessionPeer, settle } from "./_session_peer_test_util.ts";

function text(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

async function readToEnd(sock: TcpSocket): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const reader = sock.readable.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    chunks.push(value);
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** A server on port 80 with one accepted connection from a scripted peer. */
async function accepted(tcp = {}) {
  const env = makeSession(tcp);
  const server = TcpServer.listen(env.session, { port: 80 });
  const peer = new SessionPeer(env.session, env.tunnel, 80);
  const pending = server.accept();
  peer.connect();
  const sock = await pending;
  return { ...env, server, peer, sock };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail("expected a rejection");
}

describe("TcpServer and TcpSocket over a Session", () => {
  it("accept() resolves with an established socket once the handshake completes", async () => {
    const { sock, session } = await accepted();
    assert.equal(sock.conn.state, "ESTABLISHED");
    assert.equal(sock.info().state, "ESTABLISHED");
    assert.equal(session.stack.tcp.active.size, 1);
  });

  it("the readable stream delivers bytes in order, out-of-order arrivals included, and closes at FIN", async () => {
    const { sock, peer } = await accepted();
    const base = peer.seq;
    const done = readToEnd(sock);
    peer.send(text(" world"), { seqNumber: base + 5 }); // out of order
    await settle();
    peer.seq = base;
    peer.send(text("hello"));
    peer.send(text("!"), { flags: TcpFlags.ACK | TcpFlags.FIN, seqNumber: base + 11 });
    assert.equal(new TextDecoder().decode(await done), "hello world!");
    assert.equal(sock.conn.state, "CLOSE_WAIT");
  });

  it("receive() returns the data, then null at the end of the stream", async () => {
    const { sock, peer } = await accepted();
    peer.send(text("abc"), { flags: TcpFlags.ACK | TcpFlags.PSH | TcpFlags.FIN });
    assert.deepEqual(await sock.receive(100), text("abc"));
    assert.equal(await sock.receive(100), null);
  });

  it("receive() waits for data that arrives later", async () => {
    const { sock, peer } = await accepted();
    const r = sock.receive(100);
    await settle();
    peer.send(text("late"));
    assert.deepEqual(await r, text("late"));
    assert.equal(sock.waiterCount, 0);
  });

  it("a write waits while the send buffer is full and resumes as ACKs free it (backpressure)", async () => {
    const { sock, peer } = await accepted({ sendBufferBytes: 1024 });
    let resolved = false;
    const w = sock.write(new Uint8Array(4096)).then(() => resolved = true);
    await settle();
    assert.equal(resolved, false, "3072 bytes do not fit yet");
    assert.equal(sock.info().sendQueued, 1024);
    let acked = 0;
    for (let round = 0; round < 4; round++) {
      const segs = peer.drain().filter((s) => s.payload.length > 0);
      assert.ok(segs.length > 0, `round ${round} sent data`);
      for (const s of segs) acked += s.payload.length;
      peer.ack = (peer.ack + segs.reduce((n, s) => n + s.payload.length, 0)) >>> 0;
      peer.inject({});
      await settle();
      // The write resolves once its last byte is in the send buffer (after the third ACK).
      assert.equal(resolved, round >= 2, `round ${round}`);
    }
    await w;
    assert.equal(resolved, true);
    assert.equal(acked, 4096);
  });

  it("closing the writable sends a FIN after the queued data", async () => {
    const { sock, peer } = await accepted();
    const writer = sock.writable.getWriter();
    await writer.write(text("bye"));
    await writer.close();
    const segs = peer.drain();
    assert.deepEqual(segs[0].payload, text("bye"));
    assert.ok(segs[segs.length - 1].flags & TcpFlags.FIN);
    assert.equal(sock.conn.state, "FIN_WAIT_1");
  });

  it("a write after shutdown fails with EPIPE", async () => {
    const { sock } = await accepted();
    sock.shutdown("write");
    const err = await rejection(sock.write(text("x")));
    assert.ok(err instanceof NetError);
    assert.equal(err.code, "EPIPE");
  });

  it("a reader sees ECONNRESET when the peer resets the connection", async () => {
    const { sock, peer } = await accepted();
    const reader = sock.readable.getReader();
    const r = reader.read();
    await settle();
    peer.inject({ flags: TcpFlags.RST | TcpFlags.ACK });
    const err = await rejection(r);
    assert.ok(err instanceof NetError);
    assert.equal(err.code, "ECONNRESET");
  });

  it("TcpSocket.connect resolves once the peer answers the SYN", async () => {
    const { session, tunnel } = makeSession();
    const peer = new SessionPeer(session, tunnel, 0, { port: 7 });
    const p = TcpSocket.connect(session, { address: "10.0.2.15", port: 7, localPort: 5555 });
    const [syn] = peer.drain();
    assert.equal(syn.flags, TcpFlags.SYN);
    assert.equal(syn.srcPort, 5555);
    (peer as { stackPort: number }).stackPort = 5555;
    peer.acceptSyn(syn);
    const sock = await p;
    assert.equal(sock.conn.state, "ESTABLISHED");
    const [ack] = peer.drain();
    assert.equal(ack.flags, TcpFlags.ACK);
  });

  it("TcpSocket.connect rejects with ECONNREFUSED when the peer answers RST", async () => {
    const { session, tunnel } = makeSession();
    const peer = new SessionPeer(session, tunnel, 5556, { port: 7 });
    const p = TcpSocket.connect(session, { address: "10.0.2.15", port: 7, localPort: 5556 });
    const [syn] = peer.drain();
    peer.ack = (syn.seqNumber + 1) >>> 0;
    peer.inject({ flags: TcpFlags.RST | TcpFlags.ACK, seqNumber: 0 });
    const err = await rejection(p);
    assert.ok(err instanceof NetError);
    assert.equal(err.code, "ECONNREFUSED");
    assert.equal(session.stack.tcp.active.size, 0);
  });

  it("TcpSocket.connect rejects with ETIMEDOUT after synRetries unanswered SYNs", async () => {
    const { session, tunnel, clock } = makeSession();
    const peer = new SessionPeer(session, tunnel, 5557, { port: 7 });
    const p = TcpSocket.connect(session, {
      address: "10.0.2.15",
      port: 7,
      localPort: 5557,
      config: { synRetries: 2 },
    });
    let settled = false;
    p.catch(() => {}).finally(() => settled = true);
    clock.advance(1000);
    clock.advance(2000);
    await settle();
    assert.equal(settled, false, "two retransmissions, still trying");
    assert.equal(peer.drain().filter((s) => s.flags === TcpFlags.SYN).length, 3);
    clock.advance(4000);
    const err = await rejection(p);
    assert.ok(err instanceof NetError);
    assert.equal(err.code, "ETIMEDOUT");
    assert.equal(session.stack.tcp.active.size, 0);
  });

  it("TcpSocket.connect rejects with ETIMEDOUT after timeoutMs and aborts the attempt", async () => {
    const { session, clock } = makeSession();
    const err = await rejection(endsAt(
      clock,
      20,
      TcpSocket.connect(session, { address: "10.0.2.15", port: 7, localPort: 5558, timeoutMs: 20 }),
    ));
    assert.ok(err instanceof NetError);
    assert.equal(err.code, "ETIMEDOUT");
    assert.equal(session.stack.tcp.active.size, 0, "the half-open connection is gone");
  });

  it("accept() rejects with ETIMEDOUT after timeoutMs when nobody connects", async () => {
    const { session, clock } = makeSession();
    const server = TcpServer.listen(session, { port: 81 });
    const err = await rejection(endsAt(clock, 20, server.accept({ timeoutMs: 20 })));
    assert.ok(err instanceof NetError);
    assert.equal(err.code, "ETIMEDOUT");
    assert.equal(server.waiterCount, 0);
  });

  it("listen on a port that already has a listener fails with EADDRINUSE", () => {
    const { session } = makeSession();
    TcpServer.listen(session, { port: 82 });
    assert.throws(
      () => TcpServer.listen(session, { port: 82 }),
      (e: unknown) => e instanceof NetError && e.code === "EADDRINUSE",
    );
  });

  it("a socket reads what arrived before it was accepted", async () => {
    const { session, tunnel } = makeSession();
    const server = TcpServer.listen(session, { port: 83 });
    const peer = new SessionPeer(session, tunnel, 83);
    peer.connect();
    peer.send(text("early"), { flags: TcpFlags.ACK | TcpFlags.PSH | TcpFlags.FIN });
    const sock = await server.accept();
    assert.equal(new TextDecoder().decode(await readToEnd(sock)), "early");
  });

  it("cancelling the readable closes the connection (FIN)", async () => {
    const { sock, peer } = await accepted();
    await sock.readable.cancel();
    const segs = peer.drain();
    assert.ok(segs.some((s) => s.flags & TcpFlags.FIN));
    assert.equal(sock.conn.state, "FIN_WAIT_1");
  });

  it("retransmits on the session's timer (ManualClock) and completes when ACKed", async () => {
    const { sock, peer, clock } = await accepted();
    await sock.write(text("ping"));
    const [first] = peer.drain();
    clock.advance(1000); // initial RTO: no RTT sample on a passive open without timestamps
    const [again] = peer.drain();
    assert.equal(again.seqNumber, first.seqNumber);
    assert.deepEqual(again.payload, text("ping"));
    peer.ack = (first.seqNumber + 4) >>> 0;
    peer.inject({});
    assert.equal(sock.info().bytesInFlight, 0);
    assert.equal(sock.info().retransmits, 1);
  });
});
