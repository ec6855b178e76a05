/**
 * Egress over IPv6 through the gateway (issues 13 and 17): the guest's
 * IPv6 flows to off-link addresses are checked against the same policy
 * (the default-denied IPv6 ranges included), dialed through the runtime
 * with IPv6 literals, and held to the same per-session limits as IPv4's.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  IpProtocol,
  type Ipv6Address,
  parseIpv6Address,
  TcpFlags,
  UdpPacket,
  UdpRepr,
} from "../../wire/mod.ts";
import { decodeIcmpv6, decodeV6 } from "../../stack/_ipv6_test_util.ts";
import {
  egressBed,
  GUEST6,
  guest6Frame,
  GuestTcp,
  isIpv6Frame,
  learnGuest6,
  OUTSIDE_IP,
  settle,
  udpFrame,
} from "./_egress_test_util.ts";
import type { FakeServerConn } from "./fake_dialer.ts";
import { egressGatewayOf } from "./egress_gateway.ts";
import { EgressPolicy, parseEgressRules } from "./egress_policy.ts";
import { formatEndpoint, ipFromWire, ipToWire, parseIpAddress } from "./ip_address.ts";

const { SYN, ACK, RST } = TcpFlags;
const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);
const OUT6 = "2001:db8::10";
const STACK6 = parseIpv6Address("fd00::2");

/** A bed whose policy opens 198.18.0.0/15 and 2001:db8::/32 by rule, with the guest's IPv6 known. */
function bed6(options: Parameters<typeof egressBed>[0] = {}) {
  const bed = egressBed({
    policy: new EgressPolicy({ allow: parseEgressRules("198.18.0.0/15, 2001:db8::/32") }),
    ...options,
  });
  learnGuest6(bed);
  return bed;
}

/** A UDP datagram from the guest over IPv6. */
function udp6(dst: string, srcPort: number, dstPort: number, payload: Uint8Array): Uint8Array {
  const d = parseIpv6Address(dst);
  const repr: UdpRepr = { srcPort, dstPort, payload };
  const buf = new Uint8Array(UdpRepr.bufferLen(repr));
  UdpRepr.emit(repr, buf, GUEST6, d);
  return guest6Frame(IpProtocol.UDP, buf, d);
}

/** The IPv6 frames the session sent (router advertisements left aside), taken off `sent`. */
function sent6(bed: ReturnType<typeof egressBed>): Uint8Array[] {
  const out = bed.sent.filter((f) =>
    isIpv6Frame(f) && !(f[20] === IpProtocol.ICMPV6 && f[54] === 134)
  );
  bed.sent.length = 0;
  return out;
}

async function until(g: GuestTcp[], done: () => boolean, rounds = 2000): Promise<void> {
  for (let i = 0; i < rounds && !done(); i++) {
    await settle(1);
    for (const x of g) x.pump();
  }
  assert.ok(done(), "the condition never held");
}

describe("IPv6 egress, TCP: the handshake waits for the outbound connection (issue 17)", () => {
  it("answers a SYN to 2001:db8::10 (allowed by a rule) only once the dialer connected, then bytes flow both ways", async () => {
    const bed = bed6();
    bed.dialer.hold(OUT6);
    const g = new GuestTcp(bed, OUT6, 80);
    g.syn();
    await settle();
    assert.deepEqual(g.pump(), [], "no SYN-ACK while the dial is in progress");
    assert.deepEqual(bed.dialer.dials, [`${OUT6}:80`], "dialed with the IPv6 literal, no brackets");
    let server!: FakeServerConn;
    bed.dialer.held[0].accept((c) => server = c);
    await settle();
    const [synAck] = g.pump();
    assert.deepEqual([synAck.flags, synAck.ackNumber, synAck.mss], [SYN | ACK, 1001, 1440]);
    g.send(text("GET / HTTP/1.0\r\n\r\n"));
    await settle();
    assert.equal(str((await server.fromClient.read(100))!), "GET / HTTP/1.0\r\n\r\n");
    await server.toClient.write(text("HTTP/1.0 200 OK\r\n\r\nover v6"));
    await until([g], () => g.text().endsWith("over v6"));
    const [f] = egressGatewayOf(bed.session)!.view().flows;
    assert.deepEqual(
      [f.protocol, f.guest, f.destination, f.state, f.bytesOut, f.bytesIn],
      ["tcp", "[fd00::5054:ff:fe12:3456]:40000", "[2001:db8::10]:80", "open", 18, 26],
    );
    // The server finishes: the guest gets the FIN, answers with its own, the flow ends.
    server.toClient.end();
    await until([g], () => g.gotFin);
    g.fin();
    await until([g], () => bed.service.gauges().tcpConnections === 0);
    assert.equal(bed.service.totals().tcp.opened, 1);
    assert.deepEqual(bed.session.withCore((s) => s.checkInvariants()), []);
  });

  it("resets the guest when the destination refuses (RST from 2001:db8::10, <SEQ=0><ACK=ISN+1>)", async () => {
    const bed = bed6();
    bed.dialer.refuse(OUT6, 81);
    const g = new GuestTcp(bed, OUT6, 81);
    g.syn();
    await settle();
    const [r] = g.pump();
    assert.deepEqual([r.flags, r.seqNumber, r.ackNumber], [RST | ACK, 0, 1001]);
    assert.equal(bed.service.totals().tcp.refused, 1);
  });

  it("answers an unreachable destination with ICMPv6 no route (code 0) from the stack", async () => {
    const bed = bed6();
    bed.dialer.unreachable("2001:db8::99");
    new GuestTcp(bed, "2001:db8::99", 80).syn();
    await settle();
    const [err] = sent6(bed).map(decodeIcmpv6);
    assert.deepEqual([err.ip.src, err.ip.dst], [STACK6, GUEST6]);
    assert.deepEqual([err.icmp.type, err.icmp.type === "dest_unreachable" && err.icmp.code], [
      "dest_unreachable",
      0,
    ]);
    assert.equal(bed.service.totals().tcp.unreachable, 1);
  });

  it("answers a platform-prohibited dial with ICMPv6 administratively prohibited (code 1)", async () => {
    const bed = bed6();
    bed.dialer.hold("2001:db8::98");
    new GuestTcp(bed, "2001:db8::98", 80).syn();
    await settle();
    bed.dialer.held[0].fail("prohibited");
    await settle();
    const [err] = sent6(bed).map(decodeIcmpv6);
    assert.equal(err.icmp.type === "dest_unreachable" && err.icmp.code, 1);
  });

  const denied: Array<[string, string, string]> = [
    ["a unique local address outside the session's /64 (fc00::/7)", "fd12::1", "reserved_address"],
    ["NAT64 127.0.0.1 (64:ff9b::/96, checked as its IPv4)", "64:ff9b::7f00:1", "reserved_address"],
    ["an address a deny rule names (3fff::/20)", "3fff::1", "deny_rule"],
  ];
  for (const [what, dst, reason] of denied) {
    it(`refuses ${what} with a RST at once, never dialing (${reason})`, async () => {
      const bed = bed6({
        policy: new EgressPolicy({
          allow: parseEgressRules("2001:db8::/32"),
          deny: parseEgressRules("3fff::/20"),
        }),
      });
      const g = new GuestTcp(bed, dst, 80);
      g.syn();
      await settle();
      const [r] = g.pump();
      assert.deepEqual([r.flags, r.ackNumber], [RST | ACK, 1001]);
      assert.deepEqual(bed.dialer.dials, []);
      assert.equal(
        (egressGatewayOf(bed.session)!.view().denied as Record<string, number>)[reason],
        1,
      );
    });
  }

  it("refuses the server's own IPv6 address on every port, whatever the rules (server_address)", async () => {
    const bed = bed6({
      policy: new EgressPolicy({
        allow: parseEgressRules("2001:db8::/32"),
        serverAddresses: [parseIpAddress("2001:db8:1::1")!],
      }),
    });
    const g = new GuestTcp(bed, "2001:db8:1::1", 8080);
    g.syn();
    await settle();
    assert.equal(g.pump()[0].flags, RST | ACK);
    assert.equal(egressGatewayOf(bed.session)!.view().denied.server_address, 1);
  });

  it("shares the session's TCP limits between IPv4 and IPv6 (limit_tcp_connections)", async () => {
    const bed = bed6({ limits: { maxTcpConnections: 1 } });
    bed.dialer.serve("198.18.0.10", 80, () => {});
    bed.dialer.serve(OUT6, 80, () => {});
    const g4 = new GuestTcp(bed, "198.18.0.10", 80);
    g4.syn();
    await settle();
    assert.equal(g4.pump()[0].flags, SYN | ACK);
    const g6 = new GuestTcp(bed, OUT6, 80);
    g6.syn();
    await settle();
    assert.equal(g6.pump()[0].flags, RST | ACK);
    assert.equal(egressGatewayOf(bed.session)!.view().denied.limit_tcp_connections, 1);
  });
});

describe("IPv6 egress, UDP: a flow per guest endpoint through a udp6 socket", () => {
  it("relays a datagram to 2001:db8::10 and the echo back from it, through a socket opened for IPv6", async () => {
    const bed = bed6();
    bed.dialer.udp(OUT6, 7, (data, reply) => reply(text(`echo:${str(data)}`)));
    bed.input(udp6(OUT6, 41000, 7, text("hi")));
    await settle();
    const frames = sent6(bed);
    assert.equal(frames.length, 1);
    const d = decodeV6(frames[0]);
    assert.deepEqual([d.ip.src, d.ip.dst, d.ip.nextHeader], [
      parseIpv6Address(OUT6),
      GUEST6,
      IpProtocol.UDP,
    ]);
    const pkt = UdpPacket.parse(d.payload);
    assert.ok(pkt.ok);
    const udp = UdpRepr.parse(pkt.value, d.ip.src, d.ip.dst);
    assert.ok(udp.ok, "the checksum holds over the outside source");
    assert.deepEqual([udp.value.srcPort, udp.value.dstPort, str(udp.value.payload)], [
      7,
      41000,
      "echo:hi",
    ]);
    assert.deepEqual(bed.dialer.udpSockets.map((s) => s.family), [6]);
    const [f] = egressGatewayOf(bed.session)!.view().flows;
    assert.deepEqual([f.protocol, f.guest, f.destination], [
      "udp",
      "[fd00::5054:ff:fe12:3456]:41000",
      "[2001:db8::10]:7",
    ]);
  });

  it("drops replies from an IPv4 source or another peer on an IPv6 flow (RFC 4787 §5)", async () => {
    const bed = bed6();
    bed.dialer.udp(OUT6, 7, () => {});
    bed.input(udp6(OUT6, 41000, 7, text("x")));
    await settle();
    const [sock] = bed.dialer.udpSockets;
    sock.inject(text("v4"), "198.18.0.10", 7);
    sock.inject(text("other"), "2001:db8::11", 7);
    sock.inject(text("the peer"), "2001:DB8:0::10", 7);
    await settle();
    assert.deepEqual(
      sent6(bed).map((f) => str(decodeV6(f).payload.subarray(8))),
      ["the peer"],
    );
    assert.equal(bed.service.totals().udp.dropped, 2);
  });

  it("answers a denied destination with ICMPv6 administratively prohibited (code 1) from the stack", async () => {
    const bed = bed6();
    bed.input(udp6("fd12::1", 41000, 53, text("x")));
    await settle();
    const [err] = sent6(bed).map(decodeIcmpv6);
    assert.deepEqual([err.ip.src, err.ip.dst], [STACK6, GUEST6]);
    assert.equal(err.icmp.type === "dest_unreachable" && err.icmp.code, 1);
    assert.equal(egressGatewayOf(bed.session)!.view().denied.reserved_address, 1);
    assert.equal(bed.dialer.openUdpSockets, 0);
  });

  it("answers ECONNREFUSED with ICMPv6 port unreachable (code 4) from the outside host", async () => {
    const bed = bed6();
    bed.dialer.udpRefuse(OUT6, 9);
    bed.input(udp6(OUT6, 41000, 9, text("x")));
    await settle();
    const [err] = sent6(bed).map(decodeIcmpv6);
    assert.deepEqual([err.ip.src, err.ip.dst], [parseIpv6Address(OUT6), GUEST6]);
    assert.equal(err.icmp.type === "dest_unreachable" && err.icmp.code, 4);
  });

  it("shares the UDP flow limit with IPv4 (limit_udp_flows)", async () => {
    const bed = bed6({ limits: { maxUdpFlows: 1 } });
    bed.dialer.udp("198.18.0.10", 7, () => {});
    bed.input(udpFrame({ dst: OUTSIDE_IP, srcPort: 41000, dstPort: 7 }));
    bed.input(udp6(OUT6, 41000, 7, text("x")));
    await settle();
    assert.equal(egressGatewayOf(bed.session)!.view().denied.limit_udp_flows, 1);
    assert.equal(bed.dialer.openUdpSockets, 1);
  });
});

describe("The gateway's address conversion (core <-> policy), in one place", () => {
  it("round-trips IPv4 and IPv6 core addresses and formats endpoints with brackets", () => {
    const a6: Ipv6Address = parseIpv6Address("2001:db8::10");
    assert.deepEqual(ipFromWire(a6), parseIpAddress("2001:db8::10"));
    assert.equal(ipToWire(ipFromWire(a6)), a6);
    assert.deepEqual(ipFromWire(0x7f000001), parseIpAddress("127.0.0.1"));
    assert.equal(ipToWire(parseIpAddress("198.18.0.10")!), 0xc612000a);
    assert.equal(formatEndpoint(a6, 443), "[2001:db8::10]:443");
    assert.equal(formatEndpoint(0xc612000a, 80), "198.18.0.10:80");
  });
});
