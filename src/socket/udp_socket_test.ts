import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decodeIcmp, decodeUdp, udpFrame } from "../stack/udp/_udp_test_util.ts";
import { HARNESS_PEER_IP } from "../stack/tcp/tcp_harness.ts";
import { endsAt, makeSession, settle } from "./_session_peer_test_util.ts";
import { NetError } from "../errors/net_error.ts";
import { UdpSocket } from "./udp_socket.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const isNetError = (code: string) => (e: unknown) => e instanceof NetError && e.code === code;

describe("UdpSocket over a session (core lock, events after release)", () => {
  it("a pending receive() wakes when a datagram arrives from the tunnel", async () => {
    const { session } = makeSession();
    const sock = UdpSocket.bind(session, { port: 7 });
    assert.deepEqual(sock.local, { address: "10.0.2.2", port: 7 });
    const pending = sock.receive();
    await settle();
    assert.equal(sock.waiterCount, 1);
    session.input([udpFrame({ srcPort: 40000, dstPort: 7, payload: enc("hello") })]);
    const got = await pending;
    assert.equal(dec(got.data), "hello");
    assert.equal(got.address, "10.0.2.15");
    assert.equal(got.port, 40000);
    assert.equal(sock.waiterCount, 0);
  });

  it("echoes a datagram: the reply leaves through the tunnel, sent outside the core lock", async () => {
    const { session, tunnel } = makeSession();
    const sock = UdpSocket.bind(session, { port: 7 });
    session.input([udpFrame({ srcPort: 40000, dstPort: 7, payload: enc("ping") })]);
    const d = await sock.receive();
    assert.equal(sock.send(d.data, { address: d.address, port: d.port }), true);
    const [frame] = tunnel.frames;
    const r = decodeUdp(frame);
    assert.equal(r.ip.dst, HARNESS_PEER_IP);
    assert.equal(r.udp.srcPort, 7);
    assert.equal(r.udp.dstPort, 40000);
    assert.equal(dec(r.udp.payload), "ping");
    assert.ok(tunnel.lockHeldDuringSend.every((held) => !held));
  });

  it("tryReceive() returns queued datagrams in order, then undefined", () => {
    const { session } = makeSession();
    const sock = UdpSocket.bind(session, { port: 9 });
    assert.equal(sock.tryReceive(), undefined);
    for (const s of ["a", "b"]) {
      session.input([udpFrame({ dstPort: 9, payload: enc(s) })]);
    }
    assert.equal(dec(sock.tryReceive()!.data), "a");
    assert.equal(dec(sock.tryReceive()!.data), "b");
    assert.equal(sock.tryReceive(), undefined);
  });

  it("connect(): send() without a destination goes to the peer, only the peer is received", async () => {
    const { session, tunnel } = makeSession();
    const sock = UdpSocket.bind(session);
    assert.ok(sock.local.port >= 49152);
    assert.throws(() => sock.send(enc("x")), isNetError("ENOTCONN"));
    sock.connect("10.0.2.15", 5353);
    assert.deepEqual(sock.remote, { address: "10.0.2.15", port: 5353 });
    sock.send(enc("query"));
    const r = decodeUdp(tunnel.frames.shift()!);
    assert.equal(r.udp.dstPort, 5353);
    assert.equal(r.udp.srcPort, sock.local.port);
    session.input([udpFrame({ srcPort: 9999, dstPort: sock.local.port, payload: enc("spoof") })]);
    assert.equal(decodeIcmp(tunnel.frames.shift()!).icmp.type, "dest_unreachable");
    session.input([udpFrame({ srcPort: 5353, dstPort: sock.local.port, payload: enc("answer") })]);
    assert.equal(dec((await sock.receive()).data), "answer");
    assert.equal(sock.info().state, "connected");
    sock.disconnect();
    assert.equal(sock.remote, undefined);
    assert.equal(sock.info().state, "bound");
  });

  it("receive() rejects with ETIMEDOUT after timeoutMs and leaves no waiter behind", async () => {
    const { session, clock } = makeSession();
    const sock = UdpSocket.bind(session, { port: 9 });
    await assert.rejects(
      endsAt(clock, 20, sock.receive({ timeoutMs: 20 })),
      (e) => isNetError("ETIMEDOUT")(e) && /no datagram arrived within 20 ms/.test(String(e)),
    );
    assert.equal(sock.waiterCount, 0);
  });

  it("receive() rejects with the signal's reason on abort", async () => {
    const { session } = makeSession();
    const sock = UdpSocket.bind(session, { port: 9 });
    const ac = new AbortController();
    const p = sock.receive({ signal: ac.signal });
    ac.abort(new Error("stop"));
    await assert.rejects(p, /stop/);
    assert.equal(sock.waiterCount, 0);
  });

  it("close() rejects a pending receive with ENOTCONN and frees the port", async () => {
    const { session } = makeSession();
    const sock = UdpSocket.bind(session, { port: 9 });
    const p = sock.receive();
    await settle();
    sock.close();
    await assert.rejects(p, isNetError("ENOTCONN"));
    assert.equal(sock.closed, true);
    assert.equal(sock.info().state, "closed");
    assert.throws(() => sock.tryReceive(), isNetError("ENOTCONN"));
    assert.throws(
      () => sock.send(enc("x"), { address: "10.0.2.15", port: 9 }),
      isNetError("ENOTCONN"),
    );
    UdpSocket.bind(session, { port: 9 }).close();
  });

  it("bind() reports EADDRINUSE; send() reports bad addresses, no route and oversize payloads", () => {
    const { session } = makeSession();
    const sock = UdpSocket.bind(session, { port: 53 });
    assert.throws(() => UdpSocket.bind(session, { port: 53 }), isNetError("EADDRINUSE"));
    assert.throws(() => UdpSocket.bind(session, { port: 70000 }), RangeError);
    assert.throws(
      () => sock.send(enc("x"), { address: "10.0.2", port: 53 }),
      (e) => e instanceof TypeError && /"10\.0\.2"/.test(e.message),
    );
    assert.throws(
      () => sock.send(enc("x"), { address: "1.1.1.1", port: 53 }),
      isNetError("EHOSTUNREACH"),
    );
    assert.throws(
      () => sock.send(new Uint8Array(1473), { address: "10.0.2.15", port: 53 }),
      RangeError,
    );
    assert.throws(() => sock.connect("10.0.2.15", 0), RangeError);
  });

  it("info() reports the endpoint's queue and counters", () => {
    const { session } = makeSession();
    const sock = UdpSocket.bind(session, { port: 9 });
    session.input([udpFrame({ dstPort: 9, payload: enc("abc") })]);
    sock.send(enc("hello"), { address: "10.0.2.15", port: 9 });
    const i = sock.info();
    assert.equal(i.protocol, "udp");
    assert.deepEqual(i.local, { address: "10.0.2.2", port: 9 });
    assert.equal(i.remote, null);
    assert.equal(i.queuedBytes, 3);
    assert.equal(i.queuedDatagrams, 1);
    assert.equal(i.stats.rxDatagrams, 1);
    assert.equal(i.stats.txBytes, 5);
  });
});
