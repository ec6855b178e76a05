import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseIpv4Address } from "../../wire/mod.ts";
import { bufferCost } from "../../stack/session_quota.ts";
import {
  decodeIcmp,
  decodeUdp,
  egressBed,
  GUEST_IP,
  OUTSIDE,
  OUTSIDE_IP,
  settle,
  STACK_IP,
  udpFrame,
} from "./_egress_test_util.ts";
import { FakeDialer } from "./fake_dialer.ts";
import { egressGatewayOf } from "./egress_gateway.ts";

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

describe("UDP egress: a flow per guest endpoint through a runtime socket (issue 13)", () => {
  it("relays a datagram out and the echo back, from the outside address and port", async () => {
    const bed = egressBed();
    bed.dialer.udp(OUTSIDE, 7, (data, reply) => reply(text(`echo:${str(data)}`)));
    bed.input(udpFrame({ dst: OUTSIDE_IP, srcPort: 41000, dstPort: 7, payload: text("hi") }));
    await settle();
    assert.equal(bed.sent.length, 1);
    const d = decodeUdp(bed.sent[0]);
    assert.equal(d.ip.src, OUTSIDE_IP);
    assert.equal(d.ip.dst, GUEST_IP);
    assert.equal(d.udp.srcPort, 7);
    assert.equal(d.udp.dstPort, 41000);
    assert.equal(str(d.udp.payload), "echo:hi");
    const c = bed.service.totals().udp;
    assert.deepEqual(
      [c.flows, c.datagramsOut, c.datagramsIn, c.bytesOut, c.bytesIn],
      [1, 1, 1, 2, 7],
    );
    assert.equal(bed.dialer.openUdpSockets, 1);
  });

  it("uses one runtime socket per guest address and port, for every destination", async () => {
    const bed = egressBed();
    bed.dialer.udp(OUTSIDE, 7, () => {});
    bed.dialer.udp("198.18.0.11", 9, () => {});
    bed.input(
      udpFrame({ dst: OUTSIDE_IP, srcPort: 41000, dstPort: 7 }),
      udpFrame({ dst: parseIpv4Address("198.18.0.11"), srcPort: 41000, dstPort: 9 }),
      udpFrame({ dst: OUTSIDE_IP, srcPort: 41001, dstPort: 7 }),
    );
    await settle();
    assert.equal(bed.dialer.openUdpSockets, 2);
    assert.equal(bed.service.gauges().udpFlows, 2);
    const view = egressGatewayOf(bed.session)!.view();
    assert.deepEqual(
      view.flows.map((f) => [f.protocol, f.guest, f.destination, f.state]),
      [
        ["udp", "10.0.2.15:41000", "198.18.0.11:9", "open"],
        ["udp", "10.0.2.15:41001", "198.18.0.10:7", "open"],
      ],
    );
  });

  it("drops datagrams from an address and port the flow never sent to (RFC 4787 §5)", async () => {
    const bed = egressBed();
    bed.dialer.udp(OUTSIDE, 7, () => {});
    bed.input(udpFrame({ dst: OUTSIDE_IP, srcPort: 41000, dstPort: 7 }));
    await settle();
    const [sock] = bed.dialer.udpSockets;
    sock.inject(text("other port"), OUTSIDE, 8);
    sock.inject(text("other host"), "198.18.0.99", 7);
    sock.inject(text("an IPv6 source"), "2001:db8::1", 7);
    sock.inject(text("the peer"), OUTSIDE, 7);
    await settle();
    assert.deepEqual(bed.sent.map((f) => str(decodeUdp(f).udp.payload)), ["the peer"]);
    assert.equal(bed.service.totals().udp.dropped, 3);
  });

  it("drops a datagram from outside too large for the guest's link", async () => {
    const bed = egressBed();
    bed.dialer.udp(OUTSIDE, 7, () => {});
    bed.input(udpFrame({ dst: OUTSIDE_IP, srcPort: 41000, dstPort: 7 }));
    await settle();
    bed.dialer.udpSockets[0].inject(new Uint8Array(1473), OUTSIDE, 7);
    bed.dialer.udpSockets[0].inject(new Uint8Array(1472), OUTSIDE, 7);
    await settle();
    assert.deepEqual(bed.sent.map((f) => decodeUdp(f).udp.payload.length), [1472]);
    assert.equal(bed.service.totals().udp.dropped, 1);
  });

  const denied: Array<[string, string, number, string]> = [
    ["cloud metadata", "169.254.169.254", 80, "reserved_address"],
    ["a private address", "192.168.1.1", 53, "reserved_address"],
    ["port 25", "203.0.113.9", 25, "smtp_port"],
  ];
  for (const [what, dst, port, reason] of denied) {
    it(`answers ${what} at once with ICMP administratively prohibited and counts ${reason}`, async () => {
      const bed = egressBed();
      const used = bed.session.stack.quota.memory.used;
      bed.input(udpFrame({ dst: parseIpv4Address(dst), srcPort: 41000, dstPort: port }));
      await settle();
      assert.equal(bed.sent.length, 1);
      const d = decodeIcmp(bed.sent[0]);
      assert.equal(d.ip.src, STACK_IP);
      assert.equal(d.icmp.type === "dest_unreachable" && d.icmp.code, 13);
      assert.equal(bed.service.totals().denied[reason as "smtp_port"], 1);
      assert.equal(bed.dialer.openUdpSockets, 0);
      assert.equal(bed.session.stack.quota.memory.used, used, "the datagram's charge is back");
    });
  }

  it("answers UDP on a runtime without outbound UDP with ICMP prohibited (udp_unsupported)", async () => {
    const bed = egressBed({ dialer: new FakeDialer({ udp: false }) });
    bed.input(udpFrame({ dst: OUTSIDE_IP, srcPort: 41000, dstPort: 7 }));
    await settle();
    const d = decodeIcmp(bed.sent[0]);
    assert.equal(d.icmp.type === "dest_unreachable" && d.icmp.code, 13);
    assert.equal(bed.service.totals().denied.udp_unsupported, 1);
  });

  it("sends ICMP port unreachable from the outside host when the runtime reports one", async () => {
    const bed = egressBed();
    bed.dialer.udpRefuse(OUTSIDE, 9);
    bed.input(udpFrame({ dst: OUTSIDE_IP, srcPort: 41000, dstPort: 9 }));
    await settle();
    const d = decodeIcmp(bed.sent[0]);
    assert.equal(d.ip.src, OUTSIDE_IP);
    assert.equal(d.icmp.type === "dest_unreachable" && d.icmp.code, 3);
    assert.equal(bed.service.totals().udp.portUnreachable, 1);
  });

  it("refuses flows over the limit, and others keep working", async () => {
    const bed = egressBed({ limits: { maxUdpFlows: 2 } });
    bed.dialer.udp(OUTSIDE, 7, (d, reply) => reply(d));
    for (const port of [41000, 41001, 41002]) {
      bed.input(udpFrame({ dst: OUTSIDE_IP, srcPort: port, dstPort: 7, payload: text("x") }));
    }
    await settle();
    // Byte 23 of a frame is the IPv4 protocol: 17 UDP, 1 ICMP.
    const kinds = bed.sent.map((f) => f[23] === 17 ? "udp" : "icmp");
    assert.deepEqual(kinds.sort(), ["icmp", "udp", "udp"]);
    assert.equal(bed.service.totals().denied.limit_udp_flows, 1);
    assert.equal(bed.dialer.openUdpSockets, 2);
  });

  it("expires a flow idle 60 s (30 s for DNS) and closes its socket", async () => {
    const bed = egressBed();
    bed.dialer.udp(OUTSIDE, 7, () => {});
    bed.dialer.udp(OUTSIDE, 53, () => {});
    const timers = bed.clock.pendingTimers; // the session's own
    bed.input(udpFrame({ dst: OUTSIDE_IP, srcPort: 41000, dstPort: 7 }));
    bed.input(udpFrame({ dst: OUTSIDE_IP, srcPort: 41001, dstPort: 53 }));
    await settle();
    assert.equal(bed.dialer.openUdpSockets, 2);
    bed.clock.advance(29_999);
    assert.equal(bed.dialer.openUdpSockets, 2);
    bed.clock.advance(1);
    assert.equal(bed.dialer.openUdpSockets, 1, "the DNS flow went at 30 s");
    bed.clock.advance(29_999);
    assert.equal(bed.dialer.openUdpSockets, 1);
    bed.clock.advance(1);
    assert.equal(bed.dialer.openUdpSockets, 0);
    assert.equal(bed.service.gauges().udpFlows, 0);
    assert.equal(bed.clock.pendingTimers, timers, "no expiry timer is left without flows");
  });

  it("keeps a flow that stays active past its idle time", async () => {
    const bed = egressBed();
    bed.dialer.udp(OUTSIDE, 7, () => {});
    for (let i = 0; i < 4; i++) {
      bed.input(udpFrame({ dst: OUTSIDE_IP, srcPort: 41000, dstPort: 7 }));
      await settle();
      bed.clock.advance(40_000);
    }
    assert.equal(bed.dialer.openUdpSockets, 1);
    assert.equal(bed.service.totals().udp.flows, 1);
  });

  it("closes every socket and timer with the session and gives back every charge", async () => {
    const bed = egressBed();
    const base = bed.session.stack.quota.memory.used;
    bed.dialer.udp(OUTSIDE, 7, () => {});
    for (let p = 0; p < 5; p++) {
      bed.input(udpFrame({ dst: OUTSIDE_IP, srcPort: 41000 + p, dstPort: 7, payload: text("x") }));
    }
    // Closed before the gateway took the events: their charges are released too.
    bed.input(udpFrame({ dst: OUTSIDE_IP, srcPort: 42000, dstPort: 7, payload: text("late") }));
    await settle();
    bed.input(udpFrame({ dst: OUTSIDE_IP, srcPort: 42001, dstPort: 7, payload: text("late") }));
    assert.equal(bed.session.stack.quota.memory.used, base + bufferCost(4));
    bed.session.close();
    await settle();
    assert.equal(bed.dialer.openUdpSockets, 0);
    assert.equal(bed.clock.pendingTimers, 0);
    assert.equal(bed.session.stack.quota.memory.used, base);
    assert.equal(bed.service.gauges().sessions, 0);
    assert.equal(bed.service.totals().udp.flows, 6, "counters of closed gateways are kept");
  });
});
