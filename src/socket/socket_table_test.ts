import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decodeUdp, udpFrame } from "../stack/udp/_udp_test_util.ts";
import { TcpFlags } from "../wire/mod.ts";
import {
  advance,
  drainAll,
  endsAt,
  makeSession,
  SessionPeer,
  settle,
  watch,
} from "./_session_peer_test_util.ts";
import { NetError } from "../errors/net_error.ts";
import { bufferCost } from "../stack/session_quota.ts";
import type { SocketEntry, TcpSocketEntry } from "./socket_entry.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const isNetError = (code: string) => (e: unknown) => e instanceof NetError && e.code === code;

function tcp(e: SocketEntry): TcpSocketEntry {
  assert.equal(e.protocol, "tcp");
  return e as TcpSocketEntry;
}

/** A listener on port 80 with one accepted connection from a scripted peer. */
async function acceptedPair(
  tcpConfig: Parameters<typeof makeSession>[0] = {},
  limits?: Parameters<typeof makeSession>[1],
) {
  const env = makeSession(tcpConfig, limits);
  const table = env.session.sockets;
  const listener = table.create("tcp");
  table.bind(listener, { port: 80 });
  table.listen(listener, {});
  const peer = new SessionPeer(env.session, env.tunnel, 80);
  const pending = table.accept(listener, { timeoutMs: 5000 });
  peer.connect();
  const conn = await pending;
  assert.ok(conn);
  return { ...env, table, listener: tcp(listener), conn, peer };
}

describe("SocketTable: life cycle and address objects", () => {
  it("makes k_ ids and walks TCP created → bound → listening with a port reservation", () => {
    const { session } = makeSession();
    const table = session.sockets;
    const e = tcp(table.create("tcp"));
    assert.match(e.id, /^k_[A-Za-z0-9_-]{16}$/);
    assert.equal(e.state, "created");
    assert.equal(e.pcbList, "none");
    assert.deepEqual(table.bind(e, { port: 8080 }), { address: "10.0.2.2", port: 8080 });
    assert.equal(e.state, "bound");
    assert.equal(e.pcbList, "bound");
    assert.equal(session.stack.tcp.bound.get(8080), 1);
    assert.equal(e.local?.reserved, true);
    assert.deepEqual(table.listen(e, { backlog: 4 }), {
      local: { address: "10.0.2.2", port: 8080 },
      backlog: 4,
    });
    assert.equal(e.state, "listening");
    assert.equal(e.pcbList, "listen");
    // The reservation passed to the listener: the bound list is empty again.
    assert.equal(session.stack.tcp.bound.size, 0);
    assert.equal(e.local?.reserved, false);
    assert.ok(session.stack.tcp.listeners.has(8080));
  });

  it("an accepted connection is a new entry sharing the listener's address object", async () => {
    const { listener, conn, table } = await acceptedPair();
    assert.notEqual(conn.id, listener.id);
    assert.equal(conn.local, listener.local, "one address object for both");
    assert.equal(listener.local?.users, 2);
    assert.equal(table.quota.sockets.used, 2, "the connection took a unit of its own");
    assert.equal(conn.acceptedFrom, listener.id);
    assert.equal(conn.state, "connected");
    assert.equal(conn.pcbList, "active");
    assert.deepEqual(conn.remote, { address: "10.0.2.15", port: 40000 });
    const rows = table.entries();
    assert.deepEqual(rows.map((r) => r.state), ["listening", "connected"]);
    assert.equal(tcp(rows[1]).tcpState, "ESTABLISHED");
    // Deleting the listener leaves the accepted connection alone.
    table.delete(listener.id);
    assert.equal(conn.state, "connected");
    assert.equal(conn.local?.users, 1);
  });

  it("bind refuses a second bind (EALREADY), a taken port (EADDRINUSE) and a foreign address (EINVAL)", () => {
    const { session } = makeSession();
    const table = session.sockets;
    const a = table.create("tcp");
    table.bind(a, { port: 9000 });
    assert.throws(() => table.bind(a, { port: 9001 }), isNetError("EALREADY"));
    assert.throws(() => table.bind(table.create("tcp"), { port: 9000 }), isNetError("EADDRINUSE"));
    assert.throws(
      () => table.bind(table.create("tcp"), { address: "10.0.2.3", port: 1 }),
      isNetError("EINVAL"),
    );
    assert.deepEqual(table.bind(table.create("tcp"), { address: "0.0.0.0" }).address, "10.0.2.2");
  });

  it("deleting a bound socket releases its port reservation", () => {
    const { session } = makeSession();
    const table = session.sockets;
    const a = table.create("tcp");
    table.bind(a, { port: 9000 });
    assert.equal(table.delete(a.id), true);
    assert.equal(session.stack.tcp.bound.size, 0);
    assert.equal(table.delete(a.id), false);
    table.bind(table.create("tcp"), { port: 9000 });
  });

  it("connect from a bound port passes the reservation to the connection", async () => {
    const { session, tunnel } = makeSession();
    const table = session.sockets;
    const e = tcp(table.create("tcp"));
    table.bind(e, { port: 5555 });
    const peer = new SessionPeer(session, tunnel, 5555, { port: 7 });
    const pending = table.connect(e, { address: "10.0.2.15", port: 7, timeoutMs: 5000 });
    assert.equal(e.state, "connecting");
    const [syn] = peer.drain();
    assert.equal(syn.flags, TcpFlags.SYN);
    assert.equal(session.stack.tcp.bound.size, 0);
    peer.acceptSyn(syn);
    assert.deepEqual(await pending, {
      local: { address: "10.0.2.2", port: 5555 },
      remote: { address: "10.0.2.15", port: 7 },
    });
    assert.equal(e.state, "connected");
    assert.equal(e.socket?.waiterCount, 0);
  });

  it("a refused connect leaves the socket closed with ECONNREFUSED", async () => {
    const { session, tunnel } = makeSession();
    const table = session.sockets;
    const e = tcp(table.create("tcp"));
    const pending = table.connect(e, { address: "10.0.2.15", port: 7 });
    const [syn] = drainAll(tunnel);
    const peer = new SessionPeer(session, tunnel, syn.srcPort, { port: 7 });
    peer.inject({
      flags: TcpFlags.RST | TcpFlags.ACK,
      seqNumber: 0,
      ackNumber: (syn.seqNumber + 1) >>> 0,
    });
    await assert.rejects(pending, isNetError("ECONNREFUSED"));
    assert.equal(e.state, "closed");
    assert.equal(e.failure, "ECONNREFUSED");
    assert.equal(session.stack.tcp.active.size, 0);
    await assert.rejects(
      table.connect(e, { address: "10.0.2.15", port: 7 }),
      isNetError("EISCONN"),
    );
  });

  it("connect refuses an address off the link or the session's own (EHOSTUNREACH)", async () => {
    const { session } = makeSession();
    const table = session.sockets;
    await assert.rejects(
      table.connect(table.create("tcp"), { address: "192.168.1.1", port: 80 }),
      isNetError("EHOSTUNREACH"),
    );
    await assert.rejects(
      table.connect(table.create("tcp"), { address: "10.0.2.2", port: 80 }),
      isNetError("EHOSTUNREACH"),
    );
    assert.equal(session.stack.tcp.active.size, 0);
  });

  it("a connect timeout aborts the attempt (ETIMEDOUT) and leaves no pcb or waiter", async () => {
    const { session, clock } = makeSession();
    const table = session.sockets;
    const e = tcp(table.create("tcp"));
    await assert.rejects(
      endsAt(clock, 5, table.connect(e, { address: "10.0.2.15", port: 7, timeoutMs: 5 })),
      isNetError("ETIMEDOUT"),
    );
    assert.equal(e.state, "closed");
    assert.equal(e.socket?.waiterCount, 0);
    assert.equal(session.stack.tcp.active.size, 0);
  });
});

describe("SocketTable: data and long-polls", () => {
  it("receive returns data, then eof; send queues bytes that reach the peer", async () => {
    const { table, conn, peer } = await acceptedPair();
    peer.send(enc("hello"));
    assert.deepEqual(await table.receive(conn, { maxBytes: 100 }), {
      data: enc("hello"),
      eof: false,
    });
    assert.equal(await table.send(conn, enc("world")), 5);
    const segs = peer.drain().filter((s) => s.payload.length > 0);
    assert.equal(dec(segs[0].payload), "world");
    peer.inject({ flags: TcpFlags.ACK | TcpFlags.FIN });
    const r = await table.receive(conn, { maxBytes: 100 });
    assert.equal(r?.eof, true);
    assert.equal(r?.data.length, 0);
  });

  it("receive and accept time out with undefined and leave no waiter behind", async () => {
    const env = await acceptedPair();
    const { table, conn, listener, clock } = env;
    const r = watch(table.receive(conn, { maxBytes: 10, timeoutMs: 5 }));
    const a = watch(table.accept(listener, { timeoutMs: 7 }));
    await advance(clock, 4);
    assert.ok(!r.settled && !a.settled, "both wait until their timeout");
    await advance(clock, 1);
    assert.equal(await r.promise, undefined);
    assert.equal(conn.socket?.waiterCount, 0);
    assert.equal(a.settled, false);
    await advance(clock, 2);
    assert.equal(await a.promise, undefined);
    assert.equal(listener.server?.waiterCount, 0);
    const sessionTimers = env.session.timerDeadline === undefined ? 0 : 1;
    assert.equal(clock.pendingTimers, sessionTimers, "no timer left behind but the session's");
  });

  it("a caller that goes away ends its long-poll with ECANCELED and no waiter left", async () => {
    const { table, conn, listener } = await acceptedPair();
    const ac = new AbortController();
    const r = table.receive(conn, { maxBytes: 10, signal: ac.signal });
    const a = table.accept(listener, { signal: ac.signal });
    await settle();
    assert.equal(conn.socket?.waiterCount, 1);
    assert.equal(listener.server?.waiterCount, 1);
    ac.abort();
    await assert.rejects(r, isNetError("ECANCELED"));
    await assert.rejects(a, isNetError("ECANCELED"));
    assert.equal(conn.socket?.waiterCount, 0);
    assert.equal(listener.server?.waiterCount, 0);
  });

  it("deleting a socket ends its waiting long-polls with ENOTCONN", async () => {
    const { table, conn, listener } = await acceptedPair();
    const r = table.receive(conn, { maxBytes: 10 });
    const a = table.accept(listener, {});
    await settle();
    table.delete(conn.id);
    table.delete(listener.id);
    await assert.rejects(r, isNetError("ENOTCONN"));
    await assert.rejects(a, isNetError("ENOTCONN"));
    assert.equal(conn.socket?.waiterCount, 0);
    assert.equal(listener.server?.waiterCount, 0);
  });

  it("an entry's removal signal aborts with ENOTCONN whether asked for before or after the delete", async () => {
    const { table, conn, listener } = await acceptedPair();
    const before = conn.removedSignal;
    assert.equal(before.aborted, false);
    assert.equal(listener.removed, false);
    table.delete(conn.id);
    table.delete(listener.id);
    assert.ok(isNetError("ENOTCONN")(before.reason));
    assert.equal(listener.removed, true);
    const after = listener.removedSignal;
    assert.equal(after.aborted, true);
    assert.ok(isNetError("ENOTCONN")(after.reason));
    assert.match((after.reason as Error).message, new RegExp(`socket ${listener.id} was closed`));
    await assert.rejects(table.receive(conn, { maxBytes: 1 }), isNetError("ENOTCONN"));
  });

  it("a reset connection fails receive with ECONNRESET", async () => {
    const { table, conn, peer } = await acceptedPair();
    const r = table.receive(conn, { maxBytes: 10 });
    await settle();
    peer.inject({ flags: TcpFlags.RST });
    await assert.rejects(r, isNetError("ECONNRESET"));
    assert.equal(conn.state, "closed");
    assert.equal(conn.failure, "ECONNRESET");
  });

  it("send waits for window space and reports a partial count at the timeout", async () => {
    const { clock, table, conn } = await acceptedPair({ sendBufferBytes: 1024 });
    const sent = table.send(conn, new Uint8Array(5000), { timeoutMs: 10 });
    assert.equal(conn.pendingBytes, 5000 - 1024, "the rest waits for window space");
    assert.equal(await endsAt(clock, 10, sent), 1024);
    assert.equal(conn.pendingBytes, 0);
    assert.equal(conn.socket?.waiterCount, 0);
    await assert.rejects(
      endsAt(clock, 5, table.send(conn, new Uint8Array(10), { timeoutMs: 5 })),
      isNetError("ETIMEDOUT"),
    );
  });

  it("shutdown('write') sends FIN; shutdown('read') makes receive answer eof", async () => {
    const { table, conn, peer } = await acceptedPair();
    table.shutdown(conn, "write");
    assert.ok(peer.drain().some((s) => s.flags & TcpFlags.FIN));
    assert.equal(conn.tcpState, "FIN_WAIT_1");
    table.shutdown(conn, "read");
    assert.equal((await table.receive(conn, { maxBytes: 10 }))?.eof, true);
  });

  it("delete sends FIN gracefully or RST with abort", async () => {
    const a = await acceptedPair();
    a.table.delete(a.conn.id);
    assert.ok(a.peer.drain().some((s) => s.flags & TcpFlags.FIN));
    const b = await acceptedPair();
    b.table.delete(b.conn.id, { abort: true });
    assert.ok(b.peer.drain().some((s) => s.flags & TcpFlags.RST));
    assert.equal(b.session.stack.tcp.active.size, 0);
  });
});

describe("SocketTable: UDP", () => {
  it("bind, receive with the sender, send to an address, connect and send to the peer", async () => {
    const { session, tunnel } = makeSession();
    const table = session.sockets;
    const e = table.create("udp");
    assert.equal(e.state, "created");
    assert.deepEqual(table.bind(e, { port: 5353 }), { address: "10.0.2.2", port: 5353 });
    assert.equal(e.state, "bound");
    assert.equal(e.pcbList, "udp");
    session.input([udpFrame({ srcPort: 4000, dstPort: 5353, payload: enc("question") })]);
    assert.deepEqual(e.queued(), { send: 0, recv: 8 });
    const r = await table.receive(e, { maxBytes: 4 });
    assert.deepEqual(r, {
      data: enc("ques"),
      eof: false,
      from: { address: "10.0.2.15", port: 4000 },
      truncated: true,
    });
    await table.send(e, enc("a1"), { to: { address: "10.0.2.15", port: 4000 } });
    assert.equal(dec(decodeUdp(tunnel.frames.shift()!).udp.payload), "a1");
    await assert.rejects(table.send(e, enc("x")), isNetError("ENOTCONN"));
    await table.connect(e, { address: "10.0.2.15", port: 4001 });
    assert.equal(e.state, "connected");
    await table.send(e, enc("a2"));
    assert.equal(decodeUdp(tunnel.frames.shift()!).udp.dstPort, 4001);
    await assert.rejects(
      table.send(e, new Uint8Array(1473), { to: { address: "10.0.2.15", port: 1 } }),
      isNetError("EMSGSIZE"),
    );
    assert.throws(() => table.listen(e), isNetError("EOPNOTSUPP"));
  });

  it("an unbound UDP socket gets an ephemeral port on its first send", async () => {
    const { session, tunnel } = makeSession();
    const table = session.sockets;
    const e = table.create("udp");
    await table.send(e, enc("hi"), { to: { address: "10.0.2.15", port: 9 } });
    assert.ok(e.local!.port >= 49152);
    assert.equal(decodeUdp(tunnel.frames.shift()!).udp.srcPort, e.local!.port);
  });

  it("a UDP receive times out with undefined and no waiter", async () => {
    const { session, clock } = makeSession();
    const table = session.sockets;
    const e = table.create("udp");
    table.bind(e, { port: 7 });
    assert.equal(
      await endsAt(clock, 5, table.receive(e, { maxBytes: 10, timeoutMs: 5 })),
      undefined,
    );
    assert.equal(e.protocol === "udp" && e.socket?.waiterCount, 0);
  });
});

describe("SocketTable: the session's socket quota (stack.quota.sockets)", () => {
  it("each socket holds one unit from create to delete; one more fails with EMFILE", () => {
    const { session } = makeSession({}, { maxSockets: 2 });
    const table = session.sockets;
    const units = session.stack.quota.sockets;
    const u = table.create("udp");
    assert.equal(units.used, 1);
    table.create("tcp");
    assert.equal(units.used, 2);
    assert.throws(() => table.create("tcp"), isNetError("EMFILE"));
    assert.equal(units.stats().refused, 1, "the refusal is counted");
    table.delete(u.id);
    assert.equal(units.used, 1, "deleting a socket gives its unit back");
    table.create("tcp");
    session.close();
    assert.equal(units.used, 0, "closing the session gives every unit back");
  });

  it("an accept on a full quota fails with EMFILE; the peer's handshake completes once a unit is free", async () => {
    const { session, tunnel } = makeSession({}, { maxSockets: 2 });
    const table = session.sockets;
    const u = table.create("udp");
    const l = table.create("tcp");
    table.bind(l, { port: 80 });
    table.listen(l);
    await assert.rejects(table.accept(l, { timeoutMs: 5 }), isNetError("EMFILE"), "none queued");
    const peer = new SessionPeer(session, tunnel, 80);
    peer.connect();
    await assert.rejects(table.accept(l, { timeoutMs: 5 }), isNetError("EMFILE"));
    const listener = session.stack.tcp.listeners.get(80)!;
    assert.equal(listener.acceptQueue.length, 0, "no unit: the handshake's last ACK was dropped");
    assert.equal(listener.synQueue.size, 1, "the connection waits half-open");
    assert.ok(!peer.drain().some((s) => s.flags & TcpFlags.RST), "and is not reset");
    table.delete(u.id);
    peer.inject({}); // the peer's next ACK (after the SYN-ACK's retransmission, or with data)
    const child = await table.accept(l, { timeoutMs: 5 });
    assert.equal(child?.state, "connected", "accepted once a unit is free");
    assert.equal(session.stack.quota.sockets.used, 2);
  });

  it("an accepted connection's unit passes to its entry (TcpConnection.takeQuotaUnit)", async () => {
    const { session, tunnel } = makeSession({}, { maxSockets: 2 });
    const table = session.sockets;
    const units = session.stack.quota.sockets;
    const l = table.create("tcp");
    table.bind(l, { port: 80 });
    table.listen(l);
    new SessionPeer(session, tunnel, 80).connect();
    // The core's side of the contract: the queued connection holds a unit.
    const conn = session.stack.tcp.listeners.get(80)!.acceptQueue[0];
    assert.equal(conn.holdsQuotaUnit, true);
    assert.equal(units.used, units.limit, "the quota is full: listener and queued connection");
    const child = await table.accept(l, { timeoutMs: 5 });
    assert.equal(child?.state, "connected", "accepted without a free unit");
    assert.equal(conn.holdsQuotaUnit, false, "the table took the connection's unit");
    assert.equal(units.used, 2, "no second unit");
    table.delete(child!.id);
    table.delete(l.id);
    assert.equal(units.used, 0);
  });
});

describe("SocketTable: the session's memory quota (stack.quota.memory)", () => {
  it("a TCP send charges its buffer's cost while it waits and gives it back when done", async () => {
    const { clock, table, conn } = await acceptedPair({ sendBufferBytes: 1024 });
    const memory = table.quota.memory;
    const data = new Uint8Array(5000);
    const sent = table.send(conn, data, { timeoutMs: 10 });
    const during = memory.used;
    assert.equal(conn.pendingBytes, 5000 - 1024, "what the send buffer did not take is pending");
    assert.equal(await endsAt(clock, 10, sent), 1024);
    assert.equal(during - memory.used, bufferCost(5000), "the body's cost, released at the end");
    assert.equal(conn.pendingBytes, 0);
    assert.ok(memory.stats().peak >= during);
  });

  it("a send whose buffer the quota cannot hold fails with ENOBUFS and holds nothing", async () => {
    const { table, conn } = await acceptedPair();
    const memory = table.quota.memory;
    const elsewhere = memory.available - bufferCost(199);
    assert.ok(memory.tryCharge(elsewhere), "all but 711 bytes held elsewhere");
    const used = memory.used;
    await assert.rejects(table.send(conn, new Uint8Array(200)), isNetError("ENOBUFS"));
    assert.equal(memory.used, used, "nothing charged");
    assert.equal(memory.stats().refused, 1, "the refusal is counted");
    assert.equal(conn.pendingBytes, 0);
    memory.release(elsewhere);
    assert.equal(await table.send(conn, new Uint8Array(200)), 200, "taken once there is room");
  });

  it("bytes the core holds count against the same quota as what the API holds", async () => {
    const { table, conn, peer, session } = await acceptedPair({}, { maxBufferedBytes: 96 * 1024 });
    const memory = session.stack.quota.memory;
    for (let i = 0; i < 20; i++) peer.send(new Uint8Array(1400)); // 28,000 bytes unread
    assert.equal(table.bufferedBytes(), 28_000);
    assert.ok(memory.used >= 28_000, `the core charged its receive queue: ${memory.used}`);
    // A send body of what is left costs more than is left (its per-buffer overhead).
    const left = memory.available;
    await assert.rejects(table.send(conn, new Uint8Array(left)), isNetError("ENOBUFS"));
    let read = 0;
    while (read < 28_000) read += (await table.receive(conn, { maxBytes: 65536 }))!.data.length;
    assert.ok(memory.available > left, "reading gave the receive queue's memory back");
    assert.equal(await table.send(conn, new Uint8Array(4096)), 4096, "room again once read");
  });
});

describe("SocketTable.closeAll (Session.close)", () => {
  it("leaves nothing: sockets, pcbs on every list, UDP endpoints, waiters, timers", async () => {
    const { session, table, conn, listener, peer, clock, tunnel } = await acceptedPair();
    // An orphan: a second connection closed gracefully, still in FIN_WAIT_1.
    const peer2 = new SessionPeer(session, tunnel, 80, { port: 40001 });
    const p2 = table.accept(listener, {});
    peer2.connect();
    const orphan = (await p2)!;
    table.delete(orphan.id);
    assert.equal(orphan.tcpState, "FIN_WAIT_1");
    table.bind(table.create("tcp"), { port: 7000 });
    table.bind(table.create("udp"), { port: 53 });
    const waiting = table.receive(conn, { maxBytes: 10 });
    await settle();
    assert.ok(session.timerDeadline !== undefined);
    peer.drain();
    session.close();
    await assert.rejects(waiting, isNetError("ENOTCONN"));
    assert.equal(table.size, 0);
    const tcpLayer = session.stack.tcp;
    assert.deepEqual(
      [tcpLayer.bound.size, tcpLayer.listeners.size, tcpLayer.active.size, tcpLayer.timeWait.size],
      [0, 0, 0, 0],
    );
    assert.equal(session.stack.udp.endpoints.size, 0);
    assert.equal(conn.socket?.waiterCount, 0);
    assert.equal(session.timerDeadline, undefined);
    assert.equal(clock.pendingTimers, 0);
    // The connected peers were told with a RST before the tunnel closed.
    assert.ok(peer.drain().some((s) => s.flags & TcpFlags.RST));
    assert.throws(() => table.create("tcp"), isNetError("ENOTCONN"));
  });
});
