import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { IpProtocol, parseIpv4Address, TcpFlags, TcpPacket, TcpRepr } from "../../wire/mod.ts";
import { createSessionQuota } from "../session_quota.ts";
import type { EgressTcpEvent } from "../stack_egress.ts";
import {
  decodeIcmp,
  decodeIp,
  hex,
  internetChecksum,
  ipFrame,
  PEER_IP,
  STACK_IP,
  StackHarness,
} from "../_stack_test_util.ts";

const { SYN, ACK, RST, PSH, FIN } = TcpFlags;
const OUT = parseIpv4Address("198.18.0.10");
const OUT2 = parseIpv4Address("198.18.0.11");

function bed(limits: { maxHeldSyns?: number } = {}) {
  const quota = createSessionQuota({ maxBufferedBytes: 8 << 20, maxSockets: 16 });
  const h = new StackHarness({ egress: { enabled: true }, quota, tcpLimits: limits });
  const egress = h.stack.egress!;
  /** A segment from the guest (10.0.2.15) to `dst`. */
  const send = (
    dst: number,
    s: Partial<TcpRepr> & { flags: number },
  ) => {
    const repr: TcpRepr = {
      srcPort: 40000,
      dstPort: 80,
      seqNumber: 1000,
      ackNumber: 0,
      windowLen: 65535,
      payload: new Uint8Array(0),
      ...s,
    };
    const tcp = new Uint8Array(TcpRepr.bufferLen(repr));
    TcpRepr.emit(repr, tcp, PEER_IP, dst);
    h.input(ipFrame(IpProtocol.TCP, tcp, { dst }));
  };
  /** The TCP segments the stack sent, with their IP source. */
  const out = () =>
    h.drain().map((f) => {
      const d = decodeIp(f);
      assert.equal(d.ip.protocol, IpProtocol.TCP);
      const p = TcpPacket.parse(d.payload);
      assert.ok(p.ok);
      const r = TcpRepr.parse(p.value, d.ip.src, d.ip.dst);
      assert.ok(r.ok, "the checksum holds over the outside source");
      return { src: d.ip.src, dst: d.ip.dst, seg: r.value };
    });
  const events = () => egress.take() as EgressTcpEvent[];
  return { h, egress, send, out, events, quota };
}

const SYN_OPTS = { mss: 1460, windowScale: 7, sackPermitted: true };

describe("TCP egress: a SYN to an outside address is held for the gateway (issue 13)", () => {
  it("holds the SYN unanswered and reports it once, retransmissions included", () => {
    const { h, send, out, events } = bed();
    send(OUT, { flags: SYN, ...SYN_OPTS });
    assert.deepEqual(out(), [], "no SYN-ACK before the outbound connection opened");
    const [e] = events();
    assert.deepEqual(
      { kind: e.kind, src: e.src, srcPort: e.srcPort, dst: e.dst, dstPort: e.dstPort },
      { kind: "tcp_syn", src: PEER_IP, srcPort: 40000, dst: OUT, dstPort: 80 },
    );
    send(OUT, { flags: SYN, ...SYN_OPTS }); // the guest's retransmission
    assert.deepEqual(out(), []);
    assert.deepEqual(events(), []);
    assert.equal(h.stack.tcp.heldSyns.size, 1);
    assert.ok(h.balanced);
    assert.deepEqual(h.stack.checkInvariants(), []);
  });

  it("answers the SYN with a SYN-ACK from the outside address once accepted (RFC 9293 §3.10.7.2)", () => {
    const { h, egress, send, out, events } = bed();
    send(OUT, { flags: SYN, ...SYN_OPTS, timestamp: { value: 77, echo: 0 } });
    const [e] = events();
    const conn = egress.acceptTcp(e.key, h.now)!;
    assert.equal(conn.state, "SYN_RECEIVED");
    assert.equal(conn.localAddr, OUT);
    const [sa] = out();
    assert.equal(sa.src, OUT);
    assert.equal(sa.dst, PEER_IP);
    assert.equal(sa.seg.srcPort, 80);
    assert.equal(sa.seg.dstPort, 40000);
    assert.equal(sa.seg.flags, SYN | ACK);
    assert.equal(sa.seg.ackNumber, 1001);
    assert.equal(sa.seg.mss, 1460);
    assert.ok(sa.seg.sackPermitted);
    assert.equal(sa.seg.windowScale !== undefined, true);
    assert.equal(sa.seg.timestamp?.echo, 77);
    // The handshake completes and data flows both ways, every segment from the outside address.
    const iss = sa.seg.seqNumber;
    send(OUT, {
      flags: ACK,
      seqNumber: 1001,
      ackNumber: iss + 1,
      timestamp: { value: 78, echo: sa.seg.timestamp!.value },
    });
    assert.equal(conn.state, "ESTABLISHED");
    send(OUT, {
      flags: ACK | PSH,
      seqNumber: 1001,
      ackNumber: iss + 1,
      payload: new TextEncoder().encode("GET /"),
      timestamp: { value: 79, echo: sa.seg.timestamp!.value },
    });
    assert.equal(new TextDecoder().decode(conn.read(100, h.now)!), "GET /");
    assert.equal(conn.send(new TextEncoder().encode("200 OK"), h.now), 6);
    const segs = out();
    const data = segs.find((s) => s.seg.payload.length > 0)!;
    assert.equal(data.src, OUT);
    assert.equal(new TextDecoder().decode(data.seg.payload), "200 OK");
    assert.equal(data.seg.seqNumber, iss + 1);
    assert.deepEqual(h.stack.checkInvariants(), []);
    assert.equal(h.stack.tcp.heldSyns.size, 0);
  });

  it("refuses with <SEQ=0><ACK=ISN+1><CTL=RST,ACK> from the outside address (RFC 9293 §3.10.7.1)", () => {
    const { h, egress, send, out, events } = bed();
    send(OUT, { flags: SYN, seqNumber: 5000 });
    const [e] = events();
    assert.ok(egress.refuseTcp(e.key, h.now));
    const [r] = out();
    assert.equal(r.src, OUT);
    assert.deepEqual(
      [r.seg.flags, r.seg.seqNumber, r.seg.ackNumber, r.seg.srcPort, r.seg.dstPort],
      [RST | ACK, 0, 5001, 80, 40000],
    );
    assert.equal(egress.refuseTcp(e.key, h.now), false, "answered once");
    assert.equal(h.stack.tcp.heldSyns.size, 0);
  });

  it("reports unreachable with ICMP from the router quoting the SYN's ports and sequence (RFC 5927 §4.1)", () => {
    const { h, egress, send, events } = bed();
    send(OUT, { flags: SYN, seqNumber: 0xdeadbeef, srcPort: 40001, dstPort: 443 });
    const [e] = events();
    assert.ok(egress.tcpUnreachable(e.key, 1, h.now));
    const d = decodeIcmp(h.drain()[0]);
    assert.equal(d.ip.src, STACK_IP);
    assert.equal(d.ip.dst, PEER_IP);
    assert.equal(d.icmp.type === "dest_unreachable" && d.icmp.code, 1);
    const q = d.icmp.data;
    assert.equal(q[9], 6, "the quoted protocol is TCP");
    assert.equal(hex(q.subarray(12, 20)), "0a00020f" + "c612000a");
    assert.equal(hex(q.subarray(20, 28)), "9c41" + "01bb" + "deadbeef");
    assert.equal(internetChecksum(q.subarray(0, 20)), 0);
    assert.equal(egress.tcpUnreachable(e.key, 1, h.now), false);
  });

  it("lets the guest give a held SYN up with a RST: the gateway hears tcp_cancel, accept finds nothing", () => {
    const { h, egress, send, out, events } = bed();
    send(OUT, { flags: SYN, seqNumber: 7000 });
    const [e] = events();
    send(OUT, { flags: RST, seqNumber: 7001 });
    assert.deepEqual(events().map((x) => [x.kind, x.key]), [["tcp_cancel", e.key]]);
    assert.equal(egress.acceptTcp(e.key, h.now), undefined);
    assert.deepEqual(out(), []);
    assert.equal(h.stack.tcp.active.size, 0);
  });

  it("refuses a SYN beyond the held limit with a RST at once (tcp_egress_held_full)", () => {
    const { h, send, out, events } = bed({ maxHeldSyns: 2 });
    for (const port of [40000, 40001, 40002]) {
      send(OUT, { flags: SYN, srcPort: port, seqNumber: 1 });
    }
    assert.equal(events().length, 2);
    const [r] = out();
    assert.equal(r.src, OUT);
    assert.equal(r.seg.flags, RST | ACK);
    assert.equal(r.seg.dstPort, 40002);
    assert.equal(h.drops.tcp_egress_held_full, 1);
  });

  it("answers a stray segment to an outside address with a RST from it (tcp_egress_no_connection)", () => {
    const { h, send, out } = bed();
    send(OUT, { flags: ACK, seqNumber: 1, ackNumber: 99 });
    const [r] = out();
    assert.equal(r.src, OUT);
    assert.deepEqual([r.seg.flags, r.seg.seqNumber], [RST, 99]);
    assert.equal(h.drops.tcp_egress_no_connection, 1);
    send(OUT, { flags: RST, seqNumber: 1 });
    assert.deepEqual(out(), [], "never a RST for a RST");
  });

  it("keeps one guest port towards two destinations apart, and apart from the stack's own port 80", () => {
    const { h, egress, send, out, events } = bed();
    const listener = h.stack.tcp.listen(80, 8);
    send(OUT, { flags: SYN, seqNumber: 100 });
    send(OUT2, { flags: SYN, seqNumber: 200 });
    const [a, b] = events();
    assert.notEqual(a.key, b.key);
    const ca = egress.acceptTcp(a.key, h.now)!;
    const cb = egress.acceptTcp(b.key, h.now)!;
    const [sa, sb] = out();
    assert.deepEqual([sa.src, sa.seg.ackNumber, sb.src, sb.seg.ackNumber], [OUT, 101, OUT2, 201]);
    // The same guest port to the stack's own listener on port 80: a third, local connection.
    send(STACK_IP, { flags: SYN, seqNumber: 300 });
    const [local] = out();
    assert.equal(local.src, STACK_IP);
    assert.equal(local.seg.ackNumber, 301);
    assert.equal(listener.synQueue.size, 1);
    // Segments reach the right one (the last-hit cache must compare local addresses too).
    send(OUT, { flags: ACK, seqNumber: 101, ackNumber: sa.seg.seqNumber + 1 });
    send(STACK_IP, { flags: ACK, seqNumber: 301, ackNumber: local.seg.seqNumber + 1 });
    send(OUT2, { flags: ACK, seqNumber: 201, ackNumber: sb.seg.seqNumber + 1 });
    assert.deepEqual([ca.state, cb.state], ["ESTABLISHED", "ESTABLISHED"]);
    assert.equal(listener.acceptQueue.length, 1);
    // Egress connections use ports of outside addresses: the stack's port 443 stays free.
    send(OUT, { flags: SYN, srcPort: 40003, dstPort: 443, seqNumber: 400 });
    egress.acceptTcp(events()[0].key, h.now);
    assert.equal(h.stack.tcp.listen(443, 1).port, 443);
    assert.deepEqual(h.stack.checkInvariants(), []);
  });

  it("closes egress connections both ways and frees their ports (FIN from each side)", () => {
    const { h, egress, send, out, events } = bed();
    send(OUT, { flags: SYN, seqNumber: 100 });
    const conn = egress.acceptTcp(events()[0].key, h.now)!;
    const iss = out()[0].seg.seqNumber;
    send(OUT, { flags: ACK, seqNumber: 101, ackNumber: iss + 1 });
    send(OUT, { flags: FIN | ACK, seqNumber: 101, ackNumber: iss + 1 });
    assert.equal(conn.readEnded, true);
    conn.close(h.now);
    const fin = out().find((s) => s.seg.flags & FIN)!;
    assert.equal(fin.src, OUT);
    send(OUT, { flags: ACK, seqNumber: 102, ackNumber: iss + 2 });
    assert.equal(conn.state, "CLOSED");
    assert.equal(h.stack.tcp.connectionCount, 0);
    assert.deepEqual(h.stack.checkInvariants(), []);
  });

  it("forgets every held SYN when the session ends (abortAll)", () => {
    const { h, send } = bed();
    send(OUT, { flags: SYN });
    h.stack.tcp.abortAll(h.now);
    assert.equal(h.stack.tcp.heldSyns.size, 0);
  });

  it("leaves TCP to outside addresses alone without egress (ipv4_not_for_us)", () => {
    const h = new StackHarness();
    const repr: TcpRepr = {
      srcPort: 40000,
      dstPort: 80,
      seqNumber: 1,
      ackNumber: 0,
      flags: SYN,
      windowLen: 1000,
      payload: new Uint8Array(0),
    };
    const tcp = new Uint8Array(TcpRepr.bufferLen(repr));
    TcpRepr.emit(repr, tcp, PEER_IP, OUT);
    h.input(ipFrame(IpProtocol.TCP, tcp, { dst: OUT }));
    assert.equal(h.drops.ipv4_not_for_us, 1);
    assert.deepEqual(h.drain(), []);
  });
});
