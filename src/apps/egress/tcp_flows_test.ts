import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TcpFlags } from "../../wire/mod.ts";
import {
  decodeIcmp,
  egressBed,
  GUEST_IP,
  GuestTcp,
  OUTSIDE,
  settle,
  STACK_IP,
} from "./_egress_test_util.ts";
import type { FakeServerConn } from "./fake_dialer.ts";
import { egressGatewayOf } from "./egress_gateway.ts";
import { EgressPolicy, parseEgressRules } from "./egress_policy.ts";
import { parseIpAddress } from "./ip_address.ts";

const { SYN, ACK, RST } = TcpFlags;
const text = (s: string) => new TextEncoder().encode(s);

/** Reads everything the gateway wrote to a fake server until its end. */
async function drain(c: FakeServerConn): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (;;) {
    const p = await c.fromClient.read(1 << 20);
    if (p === null) break;
    parts.push(p.slice());
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Runs the guest and the gateway until `done()` holds (at most `rounds` rounds). */
async function until(g: GuestTcp[], done: () => boolean, rounds = 2000): Promise<void> {
  for (let i = 0; i < rounds && !done(); i++) {
    await settle(1);
    for (const x of g) x.pump();
  }
  assert.ok(done(), "the condition never held");
}

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

describe("TCP egress: the handshake waits for the outbound connection (issue 13)", () => {
  it("answers the SYN with a SYN-ACK only once the outbound connection opened", async () => {
    const bed = egressBed();
    bed.dialer.hold(OUTSIDE);
    const g = new GuestTcp(bed, OUTSIDE, 80);
    g.syn();
    await settle();
    assert.deepEqual(g.pump(), [], "no SYN-ACK while the dial is in progress");
    assert.equal(bed.dialer.held.length, 1);
    assert.deepEqual(
      egressGatewayOf(bed.session)!.view().flows.map((f) => [f.protocol, f.state]),
      [["tcp", "connecting"]],
    );
    let server!: FakeServerConn;
    bed.dialer.held[0].accept((c) => server = c);
    await settle();
    const [synAck] = g.pump();
    assert.equal(synAck.flags, SYN | ACK);
    assert.equal(synAck.ackNumber, 1001);
    g.send(text("GET / HTTP/1.0\r\n\r\n"));
    await settle();
    assert.equal(
      new TextDecoder().decode((await server.fromClient.read(100))!),
      "GET / HTTP/1.0\r\n\r\n",
    );
    await server.toClient.write(text("HTTP/1.0 200 OK\r\n\r\nhi"));
    await until([g], () => g.text().endsWith("hi"));
    const [f] = egressGatewayOf(bed.session)!.view().flows;
    assert.deepEqual(
      [f.protocol, f.guest, f.destination, f.state, f.bytesOut, f.bytesIn],
      ["tcp", "10.0.2.15:40000", `${OUTSIDE}:80`, "open", 18, 21],
    );
    assert.equal(bed.service.totals().tcp.opened, 1);
  });

  it("resets when the destination refuses (RST, <SEQ=0><ACK=ISN+1>)", async () => {
    const bed = egressBed();
    bed.dialer.refuse(OUTSIDE, 81);
    const g = new GuestTcp(bed, OUTSIDE, 81);
    g.syn();
    await settle();
    const [r] = g.pump();
    assert.deepEqual([r.flags, r.seqNumber, r.ackNumber], [RST | ACK, 0, 1001]);
    assert.equal(bed.service.totals().tcp.refused, 1);
    assert.equal(bed.service.gauges().tcpConnections, 0);
  });

  it("answers an unreachable destination with ICMP host unreachable from the router", async () => {
    const bed = egressBed();
    bed.dialer.unreachable("198.18.0.99");
    new GuestTcp(bed, "198.18.0.99", 80).syn();
    await settle();
    const d = decodeIcmp(bed.sent[0]);
    assert.equal(d.ip.src, STACK_IP);
    assert.equal(d.ip.dst, GUEST_IP);
    assert.equal(d.icmp.type === "dest_unreachable" && d.icmp.code, 1);
    assert.equal(bed.service.totals().tcp.unreachable, 1);
  });

  it("gives up a dial after the connect timeout with ICMP host unreachable", async () => {
    const bed = egressBed({ limits: { connectTimeoutMs: 10_000 } });
    bed.dialer.silent("198.18.0.98");
    new GuestTcp(bed, "198.18.0.98", 80).syn();
    await settle();
    assert.equal(bed.sent.length, 0);
    bed.clock.advance(9_999);
    await settle();
    assert.equal(bed.sent.length, 0);
    bed.clock.advance(1);
    await settle();
    const d = decodeIcmp(bed.sent[0]);
    assert.equal(d.icmp.type === "dest_unreachable" && d.icmp.code, 1);
    assert.equal(bed.service.totals().tcp.timedOut, 1);
    assert.equal(bed.service.gauges().tcpConnections, 0);
  });

  const denied: Array<[string, string, number, string]> = [
    ["cloud metadata", "169.254.169.254", 80, "reserved_address"],
    ["a private address outside the allow rule", "192.168.1.1", 80, "reserved_address"],
    ["port 25", OUTSIDE, 25, "smtp_port"],
    ["the server's own address", "198.18.0.1", 8787, "server_address"],
  ];
  for (const [what, dst, port, reason] of denied) {
    it(`resets ${what} at once, without dialing, and counts ${reason}`, async () => {
      const bed = egressBed({
        policy: new EgressPolicy({
          allow: parseEgressRules("198.18.0.0/15"),
          serverAddresses: [parseIpAddress("198.18.0.1")!],
        }),
      });
      const g = new GuestTcp(bed, dst, port);
      g.syn();
      await settle();
      const [r] = g.pump();
      assert.equal(r.flags, RST | ACK);
      assert.deepEqual(bed.dialer.dials, []);
      assert.equal(bed.service.totals().denied[reason as "smtp_port"], 1);
    });
  }

  it("aborts the dial when the guest gives up (RST) and opens nothing", async () => {
    const bed = egressBed();
    bed.dialer.hold(OUTSIDE);
    const g = new GuestTcp(bed, OUTSIDE, 80);
    g.syn();
    await settle();
    assert.equal(bed.dialer.held.length, 1);
    g.rst();
    await settle();
    assert.equal(bed.dialer.held.length, 0, "the dial was aborted");
    assert.equal(bed.service.gauges().tcpConnections, 0);
    assert.equal(bed.dialer.openConnections, 0);
  });
});

describe("TCP egress: limits per session, each counted", () => {
  it("resets connections beyond the pending-connect limit", async () => {
    const bed = egressBed({ limits: { maxPendingConnects: 3 } });
    bed.dialer.hold(OUTSIDE);
    const guests = [0, 1, 2, 3].map((i) => new GuestTcp(bed, OUTSIDE, 80, 41000 + i));
    for (const g of guests) g.syn();
    await settle();
    assert.equal(bed.dialer.held.length, 3);
    assert.equal(guests[3].pump()[0].flags, RST | ACK);
    assert.equal(bed.service.totals().denied.limit_pending_connects, 1);
  });

  it("resets connections beyond the concurrent limit; a closed one frees its place", async () => {
    const bed = egressBed({ limits: { maxTcpConnections: 3 } });
    const servers: FakeServerConn[] = [];
    bed.dialer.serve(OUTSIDE, 80, (c) => servers.push(c));
    const guests = [0, 1, 2, 3].map((i) => new GuestTcp(bed, OUTSIDE, 80, 41000 + i));
    for (const g of guests) g.syn();
    await settle();
    const answers = guests.map((g) => g.pump()[0].flags);
    assert.deepEqual(answers, [SYN | ACK, SYN | ACK, SYN | ACK, RST | ACK]);
    assert.equal(bed.service.totals().denied.limit_tcp_connections, 1);
    // One connection ends (reset by its server): a new one fits.
    servers[0].reset();
    await until(guests, () => guests[0].gotRst);
    const again = new GuestTcp(bed, OUTSIDE, 80, 42000);
    again.syn();
    await settle();
    assert.equal(again.pump()[0].flags, SYN | ACK);
  });

  it("resets connections beyond the rate (token bucket), and admits them as it refills", async () => {
    const bed = egressBed({ limits: { newConnectionsPerSecond: 2, newConnectionsBurst: 2 } });
    bed.dialer.serve(OUTSIDE, 80, () => {});
    const g = [0, 1, 2].map((i) => new GuestTcp(bed, OUTSIDE, 80, 41000 + i));
    for (const x of g) x.syn();
    await settle();
    assert.deepEqual(g.map((x) => x.pump()[0].flags), [SYN | ACK, SYN | ACK, RST | ACK]);
    assert.equal(bed.service.totals().denied.limit_new_connections, 1);
    bed.clock.advance(500);
    const late = new GuestTcp(bed, OUTSIDE, 80, 41010);
    late.syn();
    await settle();
    assert.equal(late.pump()[0].flags, SYN | ACK);
  });
});

describe("TCP egress: bytes both ways, backpressure, closes and resets", () => {
  it("moves 1 MiB each way byte-exact", async () => {
    const bed = egressBed();
    let server!: FakeServerConn;
    bed.dialer.serve(OUTSIDE, 80, (c) => server = c);
    const g = new GuestTcp(bed, OUTSIDE, 80);
    g.syn();
    await until([g], () => g.peerIss !== undefined);
    const up = pattern(1 << 20, 1);
    const down = pattern(1 << 20, 2);
    const got = drain(server);
    for (let o = 0; o < up.length; o += 64 * 1024) {
      g.send(up.subarray(o, o + 64 * 1024));
      await settle(2);
      g.pump();
    }
    g.fin();
    const sent = (async () => {
      for (let o = 0; o < down.length; o += 100_000) {
        await server.toClient.write(down.subarray(o, o + 100_000));
      }
      server.toClient.end();
    })();
    await until([g], () => g.gotFin, 20_000);
    await sent;
    assert.deepEqual(await got, up);
    assert.equal(g.receivedBytes, down.length);
    assert.deepEqual(Buffer.from(g.received.flatMap((c) => [...c])), Buffer.from(down));
  });

  it("stops reading from the server while the guest does not read (no side buffers)", async () => {
    const bed = egressBed();
    let server!: FakeServerConn;
    bed.dialer.pipeCapacity = 64 * 1024;
    bed.dialer.serve(OUTSIDE, 80, (c) => server = c);
    const g = new GuestTcp(bed, OUTSIDE, 80);
    g.syn();
    await until([g], () => g.peerIss !== undefined);
    g.hold = true; // the guest's application stops reading: its 64 KiB window fills
    const big = pattern(4 << 20, 3);
    let written = false;
    const writing = server.toClient.write(big).then(() => written = true);
    await until([g], () => g.window < 1460, 5000);
    for (let i = 0; i < 20; i++) {
      bed.clock.advance(100); // persist probes; nothing else moves
      await settle(1);
      g.pump();
    }
    const conn = [...bed.session.stack.tcp.active.values()][0];
    const sendQueued = conn.info().sendQueued;
    assert.ok(
      sendQueued > conn.config.sendBufferBytes - 64 * 1024,
      `the connection's send buffer is (nearly) full: ${sendQueued}`,
    );
    assert.equal(written, false, "the server's write waits: its bytes were not all read");
    // What left the server: the guest's window, the send buffer, at most one read in flight.
    const taken = big.length - server.toClient.held;
    const bound = 65535 + conn.config.sendBufferBytes + 64 * 1024;
    assert.ok(taken <= bound, `${taken} bytes left the server, bound ${bound}`);
    const flow = egressGatewayOf(bed.session)!.view().flows[0];
    assert.ok(flow.bytesIn <= 65535 + sendQueued, `bytesIn ${flow.bytesIn}`);
    g.release();
    await until([g], () => g.receivedBytes === big.length, 50_000);
    await writing;
    assert.deepEqual(Buffer.from(g.received.flatMap((c) => [...c])), Buffer.from(big));
  });

  it("closes its window while the server does not read (the guest's bytes wait in the core)", async () => {
    const bed = egressBed();
    let server!: FakeServerConn;
    bed.dialer.pipeCapacity = 64 * 1024;
    bed.dialer.serve(OUTSIDE, 80, (c) => server = c);
    const g = new GuestTcp(bed, OUTSIDE, 80);
    g.syn();
    await until([g], () => g.peerIss !== undefined);
    const conn = [...bed.session.stack.tcp.active.values()][0];
    const up = pattern(2 << 20, 4);
    let sent = 0;
    // The guest sends what the session's window allows, until it closes.
    for (let i = 0; i < 2000 && (i < 10 || g.sendable > 0); i++) {
      sent += g.send(up.subarray(sent), true);
      await settle(1);
      g.pump();
    }
    const info = conn.info();
    assert.equal(g.sendable, 0, "the window closed");
    assert.ok(info.recvQueued >= 256 * 1024, `${info.recvQueued} bytes wait in the receive queue`);
    assert.ok(server.fromClient.held <= 2 * 64 * 1024, `${server.fromClient.held} at the server`);
    assert.ok(sent < up.length);
    // The server reads: the window opens and everything arrives, byte-exact.
    const got = drain(server);
    for (let i = 0; i < 20_000 && sent < up.length; i++) {
      sent += g.send(up.subarray(sent), true);
      await settle(1);
      g.pump();
    }
    g.fin();
    await until([g], () => conn.readEnded, 5000);
    assert.deepEqual(await got, up);
  });

  it("passes half-closes both ways: guest FIN first, the server still answers", async () => {
    const bed = egressBed();
    let server!: FakeServerConn;
    bed.dialer.serve(OUTSIDE, 80, (c) => server = c);
    const g = new GuestTcp(bed, OUTSIDE, 80);
    g.syn();
    await until([g], () => g.peerIss !== undefined);
    g.send(text("request"));
    g.fin();
    const got = await drain(server);
    assert.equal(new TextDecoder().decode(got), "request");
    await server.toClient.write(text("answer after the guest's FIN"));
    server.toClient.end();
    await until([g], () => g.gotFin);
    assert.equal(g.text(), "answer after the guest's FIN");
    await until([g], () => bed.service.gauges().tcpConnections === 0);
    assert.equal(server.closed.done, true);
    assert.equal(server.closed.reset, false);
  });

  it("passes half-closes both ways: server FIN first, the guest still sends", async () => {
    const bed = egressBed();
    let server!: FakeServerConn;
    bed.dialer.serve(OUTSIDE, 80, (c) => {
      server = c;
      void c.toClient.write(text("banner")).then(() => c.toClient.end());
    });
    const g = new GuestTcp(bed, OUTSIDE, 80);
    g.syn();
    await until([g], () => g.gotFin);
    assert.equal(g.text(), "banner");
    g.send(text("still talking"));
    g.fin();
    assert.equal(new TextDecoder().decode(await drain(server)), "still talking");
    await until([g], () => bed.service.gauges().tcpConnections === 0);
  });

  it("passes a server's reset to the guest as a RST", async () => {
    const bed = egressBed();
    let server!: FakeServerConn;
    bed.dialer.serve(OUTSIDE, 80, (c) => server = c);
    const g = new GuestTcp(bed, OUTSIDE, 80);
    g.syn();
    await until([g], () => g.peerIss !== undefined);
    server.reset();
    await until([g], () => g.gotRst);
    assert.equal(bed.service.gauges().tcpConnections, 0);
  });

  it("passes a guest's reset to the server as an abortive close", async () => {
    const bed = egressBed();
    let server!: FakeServerConn;
    bed.dialer.serve(OUTSIDE, 80, (c) => server = c);
    const g = new GuestTcp(bed, OUTSIDE, 80);
    g.syn();
    await until([g], () => g.peerIss !== undefined);
    g.rst();
    await until([g], () => server.closed.done);
    assert.equal(server.closed.reset, true);
    assert.equal(bed.dialer.openConnections, 0);
  });

  it("resets a connection idle both ways for 2 h (tcpIdleTimeoutMs)", async () => {
    const bed = egressBed();
    let server!: FakeServerConn;
    bed.dialer.serve(OUTSIDE, 80, (c) => server = c);
    const g = new GuestTcp(bed, OUTSIDE, 80);
    g.syn();
    await until([g], () => g.peerIss !== undefined);
    bed.clock.advance(2 * 3600_000 - 1);
    await settle();
    assert.equal(g.pump().length, 0);
    bed.clock.advance(1);
    await until([g], () => g.gotRst);
    assert.equal(server.closed.reset, true);
    assert.equal(bed.service.totals().tcp.idleResets, 1);
  });

  it("closes every runtime connection and dial with the session; nothing stays charged", async () => {
    const bed = egressBed();
    const base = bed.session.stack.quota.memory.used;
    bed.dialer.serve(OUTSIDE, 80, (c) => void c.toClient.write(pattern(300_000, 9)));
    bed.dialer.hold("198.18.0.50");
    const g = [0, 1, 2].map((i) => new GuestTcp(bed, OUTSIDE, 80, 41000 + i));
    for (const x of g) x.syn();
    new GuestTcp(bed, "198.18.0.50", 80, 41100).syn();
    await until(g, () => g.every((x) => x.receivedBytes > 0));
    const timers = bed.clock.pendingTimers;
    assert.ok(timers > 0);
    bed.session.close();
    await settle();
    assert.equal(bed.dialer.openConnections, 0);
    assert.equal(bed.dialer.held.length, 0, "the dial in progress was aborted");
    assert.equal(bed.clock.pendingTimers, 0);
    assert.equal(bed.session.stack.quota.memory.used, base);
    assert.equal(bed.session.stack.tcp.connectionCount, 0);
    assert.equal(bed.session.stack.tcp.heldSyns.size, 0);
  });
});

describe("TCP egress: a SYN again after the guest gave one up", () => {
  it("dials afresh for the same 4-tuple once the first attempt was reset by the guest", async () => {
    const bed = egressBed();
    bed.dialer.hold(OUTSIDE);
    const g = new GuestTcp(bed, OUTSIDE, 80, 43000, 1000);
    g.syn();
    await settle();
    g.rst();
    await settle();
    const again = new GuestTcp(bed, OUTSIDE, 80, 43000, 9000);
    again.syn();
    await settle();
    assert.equal(bed.dialer.held.length, 1, "a new dial for the new SYN");
    bed.dialer.held[0].accept();
    await settle();
    const [sa] = again.pump();
    assert.equal(sa.flags, SYN | ACK);
    assert.equal(sa.ackNumber, 9001);
    assert.equal(bed.service.totals().denied.limit_pending_connects, 0);
  });
});
