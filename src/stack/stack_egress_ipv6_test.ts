/**
 * Egress over IPv6 in the core (issues 13 and 17): with egress on, the stack
 * is the link's IPv6 router; packets from the guest to off-link unicast
 * addresses become the same events as IPv4's, and the answers come back
 * from the outside address (TCP, UDP) or from the stack (ICMPv6 errors).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  EtherType,
  Icmpv4DestUnreachableCode,
  IpProtocol,
  type Ipv6Address,
  Ipv6Packet,
  Ipv6Repr,
  parseIpv4Address,
  TcpFlags,
  TcpPacket,
  TcpRepr,
  UdpRepr,
} from "../wire/mod.ts";
import { GOLDEN_RA, GOLDEN_RS } from "../wire/_ipv6_test_util.ts";
import { createSessionQuota } from "./session_quota.ts";
import type { EgressTcpEvent, EgressUdpEvent } from "./stack_egress.ts";
import { icmpv6CodeFor } from "./stack_egress.ts";
import {
  decodeIcmpv6,
  decodeNdp,
  decodeV6,
  drainNoRa,
  icmpv6Frame,
  ipv6Harness,
  ndpFrame,
  PEER6,
  STACK6,
  v6,
  V6_PEER_MAC,
  V6_STACK_MAC,
  v6Frame,
  type V6FrameOptions,
} from "./_ipv6_test_util.ts";
import { hex, ipFrame, PEER_IP, type StackHarnessOptions } from "./_stack_test_util.ts";

const { SYN, ACK, RST, PSH } = TcpFlags;
const OUT6 = v6("2001:db8::10");
const enc = (s: string) => new TextEncoder().encode(s);

type Harness = ReturnType<typeof ipv6Harness>;

/** A stack with egress whose neighbour cache knows the guest (fd00::5054:ff:fe12:3456). */
function bed(options: StackHarnessOptions = {}) {
  const quota = createSessionQuota({ maxBufferedBytes: 8 << 20, maxSockets: 16 });
  const h = ipv6Harness({ egress: { enabled: true }, quota, ...options });
  learnGuest(h);
  return { h, egress: h.stack.egress! };
}

/** Teaches the stack the guest's MAC (a neighbour solicitation), then clears the link. */
function learnGuest(h: Harness): void {
  h.input(ndpFrame(
    { type: "neighbor_solicit", target: STACK6, options: { sourceLinkAddr: V6_PEER_MAC } },
    { src: PEER6, dst: STACK6 },
  ));
  h.drain();
}

/** A TCP segment from the guest over IPv6 to `dst`. */
function tcp6(dst: Ipv6Address, s: Partial<TcpRepr>, o: V6FrameOptions = {}): Uint8Array {
  const repr: TcpRepr = {
    srcPort: 40000,
    dstPort: 80,
    seqNumber: 1000,
    ackNumber: 0,
    flags: SYN,
    windowLen: 65535,
    payload: new Uint8Array(0),
    ...s,
  };
  const buf = new Uint8Array(TcpRepr.bufferLen(repr));
  TcpRepr.emit(repr, buf, o.src ?? PEER6, dst);
  return v6Frame(IpProtocol.TCP, buf, { dst, ...o });
}

/** A UDP datagram from the guest over IPv6 to `dst`:`dstPort`. */
function udp6(dst: Ipv6Address, dstPort: number, payload: Uint8Array, o: V6FrameOptions = {}) {
  const repr: UdpRepr = { srcPort: 5000, dstPort, payload };
  const buf = new Uint8Array(UdpRepr.bufferLen(repr));
  UdpRepr.emit(repr, buf, o.src ?? PEER6, dst);
  return v6Frame(IpProtocol.UDP, buf, { dst, ...o });
}

/** The exact frame the stack sends to the guest: Ethernet to its MAC, IPv6 hop limit 64. */
function toGuest(
  src: Ipv6Address,
  nextHeader: number,
  fill: (buf: Uint8Array, src: Ipv6Address, dst: Ipv6Address) => void,
  len: number,
): Uint8Array {
  const f = new Uint8Array(54 + len);
  f.set(V6_PEER_MAC, 0);
  f.set(V6_STACK_MAC, 6);
  f[12] = EtherType.IPV6 >>> 8;
  f[13] = EtherType.IPV6 & 0xff;
  Ipv6Repr.emit({ src, dst: PEER6, nextHeader, payloadLen: len, hopLimit: 64 }, f.subarray(14));
  fill(f.subarray(54), src, PEER6);
  return f;
}

/** The TCP segments among `frames`, decoded (checksum checked over their IPv6 addresses). */
function tcpSegments(frames: Uint8Array[]) {
  return frames.map((f) => {
    const d = decodeV6(f);
    assert.equal(d.ip.nextHeader, IpProtocol.TCP);
    const p = TcpPacket.parse(d.payload);
    assert.ok(p.ok);
    const r = TcpRepr.parse(p.value, d.ip.src, d.ip.dst);
    assert.ok(r.ok, "the checksum holds over the outside source");
    return { src: d.ip.src, dst: d.ip.dst, seg: r.value };
  });
}

/** The first 48 bytes the guest sent (IPv6 header, then 8 of the transport's): an ICMPv6 quote. */
function quoteOf(frame: Uint8Array): Uint8Array {
  return frame.subarray(14, 14 + 48);
}

describe("IPv6 egress: TCP to an off-link address is held for the gateway (RFC 8200, issue 17)", () => {
  it("holds a SYN to 2001:db8::10 unanswered and reports it with IPv6 endpoints and a [-key", () => {
    const { h, egress } = bed();
    h.input(tcp6(OUT6, { mss: 1440 }));
    assert.deepEqual(drainNoRa(h), [], "no SYN-ACK before the outbound connection opened");
    const [e] = egress.take() as EgressTcpEvent[];
    assert.deepEqual(
      { kind: e.kind, src: e.src, srcPort: e.srcPort, dst: e.dst, dstPort: e.dstPort },
      { kind: "tcp_syn", src: PEER6, srcPort: 40000, dst: OUT6, dstPort: 80 },
    );
    assert.equal(e.key[0], "[", "IPv6 egress keys start with [, IPv4 keys with a digit");
    h.input(tcp6(OUT6, { mss: 1440 })); // the guest's retransmission
    assert.deepEqual(egress.take(), []);
    assert.equal(h.stack.tcp.heldSyns.size, 1);
    assert.ok(h.balanced);
    assert.deepEqual(h.stack.checkInvariants(), []);
  });

  it("answers with a SYN-ACK from 2001:db8::10 once accepted (MSS 1440), then data flows both ways", () => {
    const { h, egress } = bed();
    h.input(tcp6(OUT6, { mss: 1440, sackPermitted: true, windowScale: 7 }));
    const [e] = egress.take() as EgressTcpEvent[];
    const conn = egress.acceptTcp(e.key, h.now)!;
    assert.equal(conn.localAddr, OUT6);
    assert.equal(conn.remoteAddr, PEER6);
    const [sa] = tcpSegments(drainNoRa(h));
    assert.deepEqual(
      [sa.src, sa.dst, sa.seg.srcPort, sa.seg.dstPort, sa.seg.flags, sa.seg.ackNumber],
      [OUT6, PEER6, 80, 40000, SYN | ACK, 1001],
    );
    assert.equal(sa.seg.mss, 1440, "MSS = MTU - 60 over IPv6 (RFC 8200 §8.3)");
    assert.ok(sa.seg.sackPermitted);
    const iss = sa.seg.seqNumber;
    h.input(tcp6(OUT6, { flags: ACK, seqNumber: 1001, ackNumber: iss + 1 }));
    assert.equal(conn.state, "ESTABLISHED");
    h.input(
      tcp6(OUT6, { flags: ACK | PSH, seqNumber: 1001, ackNumber: iss + 1, payload: enc("GET /") }),
    );
    assert.equal(new TextDecoder().decode(conn.read(100, h.now)!), "GET /");
    assert.equal(conn.send(enc("200 OK"), h.now), 6);
    const data = tcpSegments(drainNoRa(h)).find((s) => s.seg.payload.length > 0)!;
    assert.equal(data.src, OUT6);
    assert.equal(new TextDecoder().decode(data.seg.payload), "200 OK");
    assert.equal(data.seg.seqNumber, iss + 1);
    assert.deepEqual(h.stack.checkInvariants(), []);
    assert.equal(h.stack.tcp.heldSyns.size, 0);
  });

  it("refuses with the exact <SEQ=0><ACK=ISN+1><CTL=RST,ACK> from the outside address (RFC 9293 §3.10.7.1)", () => {
    const { h, egress } = bed();
    h.input(tcp6(OUT6, { seqNumber: 5000 }));
    const [e] = egress.take() as EgressTcpEvent[];
    assert.ok(egress.refuseTcp(e.key, h.now));
    const rst: TcpRepr = {
      srcPort: 80,
      dstPort: 40000,
      seqNumber: 0,
      ackNumber: 5001,
      flags: RST | ACK,
      windowLen: 0,
      payload: new Uint8Array(0),
    };
    const want = toGuest(OUT6, IpProtocol.TCP, (b, s, d) => TcpRepr.emit(rst, b, s, d), 20);
    assert.deepEqual(drainNoRa(h).map(hex), [hex(want)]);
    assert.equal(egress.refuseTcp(e.key, h.now), false, "answered once");
  });

  it("answers a denied destination with the exact ICMPv6 administratively prohibited (code 1) from the stack, quoting the SYN (RFC 4443 §3.1)", () => {
    const { h, egress } = bed();
    const syn = tcp6(v6("fd12::1"), { seqNumber: 0xdeadbeef, srcPort: 40001, dstPort: 443 });
    h.input(syn);
    const [e] = egress.take() as EgressTcpEvent[];
    assert.equal(
      e.dst,
      v6("fd12::1"),
      "a ULA outside the session's /64 is off-link: the policy decides",
    );
    assert.ok(egress.tcpUnreachable(e.key, Icmpv4DestUnreachableCode.COMM_PROHIBITED, h.now));
    // The quote: an IPv6 header guest -> fd12::1 (TCP, 20 bytes, hop limit 64), ports, sequence.
    const quote = new Uint8Array(48);
    Ipv6Repr.emit(
      { src: PEER6, dst: v6("fd12::1"), nextHeader: IpProtocol.TCP, payloadLen: 20, hopLimit: 64 },
      quote,
    );
    quote.set([0x9c, 0x41, 0x01, 0xbb, 0xde, 0xad, 0xbe, 0xef], 40);
    assert.equal(
      hex(quote),
      hex(quoteOf(syn)),
      "the SYN had no options: the quote is its first 48 bytes",
    );
    const want = toGuest(STACK6, IpProtocol.ICMPV6, (b, s, d) => {
      // ICMPv6 destination unreachable: type 1, code 1, checksum, 4 unused bytes, the quote.
      b[0] = 1;
      b[1] = 1;
      b.set(quote, 8);
      const sum = icmpSum(b, s, d);
      b[2] = sum >>> 8;
      b[3] = sum & 0xff;
    }, 8 + 48);
    assert.deepEqual(drainNoRa(h).map(hex), [hex(want)]);
    assert.equal(egress.tcpUnreachable(e.key, 1, h.now), false);
  });

  it("reports host unreachable (a dial that failed or timed out) as ICMPv6 no route, code 0 (RFC 7915 §4.2)", () => {
    const { h, egress } = bed();
    h.input(tcp6(OUT6, {}));
    const [e] = egress.take() as EgressTcpEvent[];
    egress.tcpUnreachable(e.key, Icmpv4DestUnreachableCode.HOST, h.now);
    const d = decodeIcmpv6(drainNoRa(h)[0]);
    assert.deepEqual([d.ip.src, d.ip.dst], [STACK6, PEER6]);
    assert.deepEqual([d.icmp.type, d.icmp.type === "dest_unreachable" && d.icmp.code], [
      "dest_unreachable",
      0,
    ]);
    assert.deepEqual(
      [3, 13, 1, 0, 10].map(icmpv6CodeFor),
      [4, 1, 0, 0, 1],
      "port -> port, prohibited -> admin prohibited, host/net -> no route",
    );
  });

  it("keeps IPv4 and IPv6 egress connections with the same ports apart (keys never collide)", () => {
    const { h, egress } = bed();
    h.input(tcp6(OUT6, {}));
    const out4 = parseIpv4Address("198.18.0.10");
    const repr: TcpRepr = {
      srcPort: 40000,
      dstPort: 80,
      seqNumber: 1000,
      ackNumber: 0,
      flags: SYN,
      windowLen: 65535,
      payload: new Uint8Array(0),
    };
    const seg = new Uint8Array(TcpRepr.bufferLen(repr));
    TcpRepr.emit(repr, seg, PEER_IP, out4);
    h.input(ipFrame(IpProtocol.TCP, seg, { dst: out4, dstMac: V6_STACK_MAC }));
    const events = egress.take() as EgressTcpEvent[];
    assert.equal(events.length, 2);
    assert.notEqual(events[0].key, events[1].key);
    const c6 = egress.acceptTcp(events[0].key, h.now)!;
    const c4 = egress.acceptTcp(events[1].key, h.now)!;
    assert.deepEqual([c6.localAddr, c4.localAddr], [OUT6, out4]);
    assert.equal(h.stack.tcp.active.size, 2);
    assert.deepEqual(h.stack.checkInvariants(), []);
  });
});

describe("IPv6 egress: UDP to an off-link address", () => {
  it("queues the datagram with IPv6 endpoints; the reply comes from the outside address, exact frame", () => {
    const { h, egress } = bed();
    h.input(udp6(OUT6, 53, enc("query")));
    const [e] = egress.take() as EgressUdpEvent[];
    assert.deepEqual(
      [e.kind, e.src, e.srcPort, e.dst, e.dstPort, new TextDecoder().decode(e.payload)],
      ["udp", PEER6, 5000, OUT6, 53, "query"],
    );
    h.stack.quota.memory.release(e.charge);
    assert.ok(egress.sendUdp(OUT6, 53, PEER6, 5000, enc("answer"), h.now));
    const reply: UdpRepr = { srcPort: 53, dstPort: 5000, payload: enc("answer") };
    const want = toGuest(OUT6, IpProtocol.UDP, (b, s, d) => UdpRepr.emit(reply, b, s, d), 14);
    assert.deepEqual(drainNoRa(h).map(hex), [hex(want)]);
  });

  it("reports port unreachable from the outside host (code 4) and prohibited from the stack (code 1), quoting IPv6 and UDP headers", () => {
    const { h, egress } = bed();
    egress.udpUnreachable(PEER6, 5000, OUT6, 7, Icmpv4DestUnreachableCode.PORT, h.now);
    egress.udpUnreachable(PEER6, 5000, OUT6, 7, Icmpv4DestUnreachableCode.COMM_PROHIBITED, h.now);
    const [port, prohibited] = drainNoRa(h).map(decodeIcmpv6);
    assert.deepEqual([port.ip.src, port.ip.dst], [OUT6, PEER6]);
    assert.deepEqual([prohibited.ip.src, prohibited.ip.dst], [STACK6, PEER6]);
    for (const [d, code] of [[port, 4], [prohibited, 1]] as const) {
      assert.equal(d.icmp.type, "dest_unreachable");
      if (d.icmp.type !== "dest_unreachable") continue;
      assert.equal(d.icmp.code, code);
      const q = d.icmp.data;
      const p = Ipv6Packet.parseTruncated(q);
      assert.ok(p.ok);
      const ip = Ipv6Repr.parse(p.value);
      assert.deepEqual([ip.src, ip.dst, ip.nextHeader, ip.payloadLen], [PEER6, OUT6, 17, 8]);
      assert.equal(hex(q.subarray(40, 48)), "1388" + "0007" + "0008" + "0000");
    }
  });

  it("drops a zero UDP checksum to an outside address (udp6_zero_checksum, RFC 8200 §8.1)", () => {
    const { h, egress } = bed();
    const f = udp6(OUT6, 53, enc("x"));
    f[54 + 6] = 0;
    f[54 + 7] = 0;
    h.input(f);
    assert.equal(h.drops.udp6_zero_checksum, 1);
    assert.deepEqual(egress.take(), []);
  });
});

describe("IPv6 egress: what the router takes and what it leaves (RFC 8200 §3, RFC 4291)", () => {
  it("answers hop limit 1 with the exact time exceeded, code 0, from the stack (RFC 4443 §3.3); hop limit 2 passes", () => {
    const { h, egress } = bed();
    const f = udp6(OUT6, 53, enc("ttl"), { hopLimit: 1 });
    h.input(f);
    assert.equal(h.drops.ipv6_hop_limit_exceeded, 1);
    assert.deepEqual(egress.take(), []);
    const invoking = f.subarray(14);
    const want = toGuest(STACK6, IpProtocol.ICMPV6, (b, s, d) => {
      b[0] = 3; // time exceeded
      b[1] = 0; // hop limit exceeded in transit
      b.set(invoking, 8);
      const sum = icmpSum(b, s, d);
      b[2] = sum >>> 8;
      b[3] = sum & 0xff;
    }, 8 + invoking.length);
    assert.deepEqual(drainNoRa(h).map(hex), [hex(want)]);
    h.input(udp6(OUT6, 53, enc("ttl"), { hopLimit: 0 }));
    assert.equal(h.drops.ipv6_hop_limit_exceeded, 2);
    h.input(udp6(OUT6, 53, enc("ttl"), { hopLimit: 2 }));
    assert.equal(egress.take().length, 1);
    assert.ok(h.balanced);
  });

  const notOutside: Array<[string, Ipv6Address]> = [
    ["an address in the session's own /64", v6("fd00::99")],
    ["a link-local address", v6("fe80::99")],
    ["an IPv4-mapped address (never on the wire, RFC 4291 §2.5.5.2)", v6("::ffff:127.0.0.1")],
    ["loopback", v6("::1")],
    ["a global multicast group", v6("ff0e::1")],
  ];
  for (const [what, dst] of notOutside) {
    it(`leaves ${what} alone (ipv6_not_for_us)`, () => {
      const { h, egress } = bed();
      h.input(udp6(dst, 53, enc("x")));
      assert.equal(h.drops.ipv6_not_for_us, 1);
      assert.deepEqual(egress.take(), []);
      assert.deepEqual(drainNoRa(h), []);
    });
  }

  it("takes nothing to an outside address in a link-layer multicast frame", () => {
    const { h, egress } = bed();
    h.input(udp6(OUT6, 53, enc("x"), { dstMac: new Uint8Array([0x33, 0x33, 0, 0, 0, 1]) }));
    assert.equal(h.drops.ipv6_not_for_us, 1);
    assert.deepEqual(egress.take(), []);
  });

  it("refuses an off-link source talking outside (ipv6_off_link_source)", () => {
    const { h, egress } = bed();
    h.input(udp6(OUT6, 53, enc("x"), { src: v6("2001:db8::5") }));
    assert.equal(h.drops.ipv6_off_link_source, 1);
    assert.deepEqual(egress.take(), []);
  });

  it("answers a link-local source talking outside with destination unreachable, beyond scope (code 2, RFC 4291 §2.5.6)", () => {
    const { h, egress } = bed();
    const ll = v6("fe80::5054:ff:fe12:3456");
    h.input(ndpFrame(
      {
        type: "neighbor_solicit",
        target: h.stack.ipv6!.linkLocal,
        options: { sourceLinkAddr: V6_PEER_MAC },
      },
      { src: ll, dst: h.stack.ipv6!.linkLocal },
    ));
    h.drain();
    h.input(udp6(OUT6, 53, enc("x"), { src: ll }));
    assert.equal(h.drops.ipv6_source_beyond_scope, 1);
    assert.deepEqual(egress.take(), []);
    const [err] = drainNoRa(h).map(decodeIcmpv6);
    assert.deepEqual([err.ip.src, err.ip.dst], [h.stack.ipv6!.linkLocal, ll]);
    assert.equal(err.icmp.type === "dest_unreachable" && err.icmp.code, 2);
  });

  it("does not relay ICMPv6 echo (egress_unsupported_protocol), answering nothing", () => {
    const { h, egress } = bed();
    h.input(
      icmpv6Frame({ type: "echo_request", ident: 1, seqNo: 1, data: enc("ping") }, { dst: OUT6 }),
    );
    assert.equal(h.drops.egress_unsupported_protocol, 1);
    assert.deepEqual(egress.take(), []);
    assert.deepEqual(drainNoRa(h), []);
  });

  it("without egress, IPv6 to an off-link address stays ipv6_not_for_us", () => {
    const h = ipv6Harness();
    learnGuest(h);
    h.input(tcp6(OUT6, {}));
    h.input(udp6(OUT6, 53, enc("x")));
    assert.equal(h.drops.ipv6_not_for_us, 2);
    assert.deepEqual(drainNoRa(h), []);
  });
});

describe("Router advertisements announce a default route only with egress (RFC 4861 §6.2.1, issue 17)", () => {
  /** The stack's answer to Linux's router solicitation. */
  function ra(options: StackHarnessOptions): Uint8Array {
    const h = ipv6Harness(options);
    h.input(GOLDEN_RS, 0);
    h.stack.poll(0);
    const [f] = h.drain();
    assert.equal(decodeNdp(f).ndp.type, "router_advert");
    return f;
  }

  it("advertises router lifetime 1800 s (3 × MaxRtrAdvInterval) with egress: the exact frame", () => {
    // GOLDEN_RA with router lifetime 0x0708; the checksum drops by as much (one's complement).
    const want = GOLDEN_RA.slice();
    want[54 + 6] = 0x07;
    want[54 + 7] = 0x08;
    want[54 + 2] = 0x42;
    want[54 + 3] = 0xc3;
    assert.equal(hex(ra({ egress: { enabled: true } })), hex(want));
  });

  it("keeps router lifetime 0 without egress, and an explicit routerLifetime wins", () => {
    assert.equal(hex(ra({})), hex(GOLDEN_RA));
    assert.equal(
      hex(ra({ egress: { enabled: true }, routerAdvert: { routerLifetime: 0 } })),
      hex(GOLDEN_RA),
    );
    const f = decodeNdp(
      ra({
        egress: { enabled: true },
        routerAdvert: { maxIntervalMs: 100_000, minIntervalMs: 30_000 },
      }),
    );
    assert.equal(f.ndp.type === "router_advert" && f.ndp.routerLifetime, 300);
  });
});

/** The ICMPv6 checksum of `msg` (its checksum field zero) from `src` to `dst` (RFC 4443 §2.3). */
function icmpSum(msg: Uint8Array, src: Ipv6Address, dst: Ipv6Address): number {
  let sum = 0;
  const add16 = (v: number) => {
    sum += v;
  };
  for (let i = 0; i < 8; i++) add16(src.charCodeAt(i) + dst.charCodeAt(i));
  add16(msg.length >>> 16);
  add16(msg.length & 0xffff);
  add16(IpProtocol.ICMPV6);
  for (let i = 0; i < msg.length; i += 2) add16((msg[i] << 8) | (msg[i + 1] ?? 0));
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
