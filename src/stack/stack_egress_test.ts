import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  Icmpv4DestUnreachableCode,
  IpProtocol,
  parseIpv4Address,
  TcpFlags,
  TcpRepr,
} from "../wire/mod.ts";
import { bufferCost, createSessionQuota } from "./session_quota.ts";
import type { EgressDnsEvent, EgressUdpEvent } from "./stack_egress.ts";
import {
  decodeIcmp,
  decodeUdp,
  echoRequest,
  fromHex,
  hex,
  internetChecksum,
  ipFrame,
  PEER_IP,
  PEER_MAC,
  STACK_IP,
  StackHarness,
  type StackHarnessOptions,
  udpBytes,
  udpFrame,
} from "./_stack_test_util.ts";

const OUTSIDE = parseIpv4Address("198.18.0.5");
const payload = (s: string) => new TextEncoder().encode(s);

function egressStack(options: StackHarnessOptions = {}) {
  const quota = createSessionQuota({ maxBufferedBytes: 1 << 20, maxSockets: 16 });
  const h = new StackHarness({ egress: { enabled: true }, quota, ...options });
  return { h, stack: h.stack, egress: h.stack.egress!, quota };
}

function tcpSyn(dst: number, dstPort: number, ttl = 64): Uint8Array {
  const repr: TcpRepr = {
    srcPort: 40000,
    dstPort,
    seqNumber: 1000,
    ackNumber: 0,
    flags: TcpFlags.SYN,
    windowLen: 65535,
    payload: new Uint8Array(0),
  };
  const tcp = new Uint8Array(TcpRepr.bufferLen(repr));
  TcpRepr.emit(repr, tcp, PEER_IP, dst);
  return ipFrame(IpProtocol.TCP, tcp, { dst, ttl });
}

/** Wire form of a DNS query (RD set) for `name`, type A. */
function dnsQuery(id: number, name: string): Uint8Array {
  const labels = name.split(".").map((l) =>
    l.length.toString(16).padStart(2, "0") +
    [...l].map((c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join("")
  ).join("");
  return fromHex(
    id.toString(16).padStart(4, "0") + "0100000100000000" + "0000" + labels + "00" + "00010001",
  );
}

describe("egress off: datagrams to outside addresses stay dropped", () => {
  it("drops UDP to an outside address as ipv4_not_for_us and queues nothing", () => {
    const h = new StackHarness();
    assert.equal(h.stack.egress, undefined);
    h.input(udpFrame({ dst: OUTSIDE, dstPort: 7, payload: payload("x") }));
    assert.equal(h.drops.ipv4_not_for_us, 1);
    assert.deepEqual(h.drain(), []);
    assert.ok(h.balanced);
  });
  it("keeps answering REFUSED for names it does not own (no forwarder)", () => {
    const h = new StackHarness();
    h.input(udpFrame({ dstPort: 53, srcPort: 5353, payload: dnsQuery(0x1234, "example.com") }));
    const [reply] = h.drain();
    assert.equal(decodeUdp(reply).udp.payload[3] & 0xf, 5);
  });
});

describe("StackEgress: UDP to outside addresses becomes an event (issue 13)", () => {
  it("queues a copy of the datagram with both endpoints, charged to the quota", () => {
    const { h, egress, quota, stack } = egressStack();
    const frame = udpFrame({ dst: OUTSIDE, srcPort: 41000, dstPort: 7, payload: payload("hello") });
    const before = quota.memory.used;
    h.input(frame);
    frame.fill(0); // the frame was borrowed: the event must not see this
    assert.ok(h.balanced);
    assert.equal(stack.counters.rxHandled, 1);
    assert.deepEqual(h.drain(), [], "nothing answers the guest at once");
    assert.equal(egress.queued, 1);
    assert.equal(quota.memory.used - before, bufferCost(5));
    const dirty = stack.takeDirty();
    assert.deepEqual(dirty, [egress]);
    assert.equal(egress.events, 32);
    assert.deepEqual(stack.takeDirty(), [], "marked dirty once");
    const [e] = egress.take() as EgressUdpEvent[];
    assert.deepEqual(
      { ...e, payload: new TextDecoder().decode(e.payload) },
      {
        kind: "udp",
        src: PEER_IP,
        srcPort: 41000,
        dst: OUTSIDE,
        dstPort: 7,
        payload: "hello",
        charge: bufferCost(5),
      },
    );
    assert.equal(egress.queued, 0);
    quota.memory.release(e.charge);
    assert.equal(quota.memory.used, before);
  });

  it("reassembles a fragmented datagram to an outside address into one event (RFC 791 §3.2)", () => {
    const { h, egress } = egressStack();
    const udp = udpBytes({ dst: OUTSIDE, dstPort: 9, payload: new Uint8Array(24).fill(7) });
    h.input(ipFrame(IpProtocol.UDP, udp.subarray(0, 16), {
      dst: OUTSIDE,
      moreFragments: true,
      ident: 77,
    }));
    assert.equal(egress.queued, 0);
    h.input(ipFrame(IpProtocol.UDP, udp.subarray(16), {
      dst: OUTSIDE,
      fragmentOffset: 16,
      ident: 77,
    }));
    const [e] = egress.take() as EgressUdpEvent[];
    assert.equal(e.payload.length, 24);
    assert.ok(e.payload.every((b) => b === 7));
    assert.ok(h.balanced);
  });

  const notOutside: Array<[string, string, Record<string, unknown>]> = [
    ["another on-link address", "10.0.2.99", {}],
    ["a multicast address", "224.0.0.251", {}],
    ["class E", "240.0.0.1", {}],
    ["loopback (RFC 1812 §5.3.7)", "127.0.0.1", {}],
    ["0.0.0.0/8", "0.1.2.3", {}],
    ["an outside address in a link-layer broadcast frame", "198.18.0.5", {
      dstMac: new Uint8Array(6).fill(0xff),
    }],
  ];
  for (const [what, dst, o] of notOutside) {
    it(`leaves ${what} alone (ipv4_not_for_us)`, () => {
      const { h, egress } = egressStack();
      h.input(udpFrame({ dst: parseIpv4Address(dst), dstPort: 7, ...o }));
      assert.equal(h.drops.ipv4_not_for_us, 1);
      assert.equal(egress.queued, 0);
      assert.ok(h.balanced);
    });
  }

  it("refuses a DHCP client without an address talking outside (martian source)", () => {
    const { h, egress } = egressStack();
    h.input(udpFrame({ src: 0, dst: OUTSIDE, srcPort: 68, dstPort: 67 }));
    assert.equal(h.drops.ipv4_martian_source, 1);
    assert.equal(egress.queued, 0);
  });

  it("refuses an off-link source talking outside (RFC 3704 §2.2)", () => {
    const { h, egress } = egressStack();
    h.input(udpFrame({ src: parseIpv4Address("192.0.2.1"), dst: OUTSIDE, dstPort: 7 }));
    assert.equal(h.drops.ipv4_off_link_source, 1);
    assert.equal(egress.queued, 0);
  });

  it("drops a datagram with a bad checksum before queueing it (RFC 768)", () => {
    const { h, egress } = egressStack();
    h.input(udpFrame({ dst: OUTSIDE, dstPort: 7, payload: payload("x"), checksum: "corrupt" }));
    assert.equal(h.drops.udp_bad_checksum, 1);
    assert.equal(egress.queued, 0);
  });

  it("counts ICMP to outside addresses as egress_unsupported_protocol, answering nothing", () => {
    const { h, egress } = egressStack();
    h.input(ipFrame(IpProtocol.ICMP, echoRequest(1, 1, payload("ping")), { dst: OUTSIDE }));
    assert.equal(h.drops.egress_unsupported_protocol, 1);
    assert.deepEqual(h.drain(), []);
    assert.equal(egress.queued, 0);
  });

  it("holds a TCP SYN to an outside address for the gateway, answering nothing yet", () => {
    const { h, egress } = egressStack();
    h.input(tcpSyn(OUTSIDE, 80));
    assert.deepEqual(h.drain(), []);
    assert.deepEqual(egress.take().map((e) => e.kind), ["tcp_syn"]);
    assert.equal(h.stack.tcp.heldSyns.size, 1);
  });

  it("answers a datagram whose TTL runs out here with a time exceeded from the stack (RFC 1812 §5.3.1)", () => {
    const { h, egress } = egressStack();
    const syn = tcpSyn(OUTSIDE, 80, 1); // TTL 1: the gateway is the last hop it may reach
    h.input(syn);
    const out = h.drain();
    assert.equal(out.length, 1);
    const d = decodeIcmp(out[0]);
    assert.equal(d.ip.src, STACK_IP);
    assert.equal(d.ip.dst, PEER_IP);
    assert.ok(d.icmp.type === "time_exceeded" && d.icmp.code === 0, JSON.stringify(d.icmp.type));
    // RFC 792: the quote is the datagram's header and its first 8 bytes, as received.
    assert.deepEqual(
      d.icmp.type === "time_exceeded" ? d.icmp.data.subarray(0, 28) : undefined,
      syn.subarray(14, 42),
    );
    assert.equal(h.drops.ipv4_ttl_exceeded, 1);
    assert.equal(h.stack.tcp.heldSyns.size, 0, "no SYN is held for the gateway");
    assert.equal(egress.queued, 0);
    // UDP too; TTL 2 still goes through.
    const udp = { dst: OUTSIDE, srcPort: 41000, dstPort: 7, payload: payload("hi") };
    h.input(udpFrame({ ...udp, ttl: 1 }));
    assert.equal(h.drops.ipv4_ttl_exceeded, 2);
    assert.equal(decodeIcmp(h.drain()[0]).icmp.type, "time_exceeded");
    h.input(udpFrame({ ...udp, ttl: 2 }));
    assert.equal(egress.queued, 1);
  });

  it("drops beyond the queue's event limit (egress_queue_full)", () => {
    const { h, egress } = egressStack({
      egress: { enabled: true, limits: { maxQueuedEvents: 2 } },
    });
    for (let i = 0; i < 3; i++) h.input(udpFrame({ dst: OUTSIDE, dstPort: 7 + i }));
    assert.equal(egress.queued, 2);
    assert.equal(h.drops.egress_queue_full, 1);
    assert.equal(egress.stats.queueFull, 1);
    assert.deepEqual(h.stack.checkInvariants(), []);
  });

  it("drops beyond the queue's byte limit (egress_queue_full)", () => {
    const { h, egress } = egressStack({
      egress: { enabled: true, limits: { maxQueuedBytes: 10 } },
    });
    h.input(udpFrame({ dst: OUTSIDE, dstPort: 7, payload: new Uint8Array(6) }));
    h.input(udpFrame({ dst: OUTSIDE, dstPort: 7, payload: new Uint8Array(6) }));
    assert.equal(egress.queued, 1);
    assert.equal(egress.queuedBytes, 6);
    assert.equal(h.drops.egress_queue_full, 1);
  });

  it("drops what the memory quota refuses (egress_quota) and charges nothing", () => {
    const quota = createSessionQuota({ maxBufferedBytes: bufferCost(8), maxSockets: 4 });
    const h = new StackHarness({ egress: { enabled: true }, quota });
    h.input(udpFrame({ dst: OUTSIDE, dstPort: 7, payload: new Uint8Array(8) }));
    h.input(udpFrame({ dst: OUTSIDE, dstPort: 7, payload: new Uint8Array(1) }));
    assert.equal(h.stack.egress!.queued, 1);
    assert.equal(h.drops.egress_quota, 1);
    assert.equal(quota.memory.used, bufferCost(8));
    assert.equal(h.stack.egress!.clear(), 1);
    assert.equal(quota.memory.used, 0);
  });
});

describe("StackEgress: answers come back as core entries", () => {
  it("sends a reply from the outside address and port, checksum over that source (RFC 768)", () => {
    const { h, egress } = egressStack();
    assert.ok(egress.sendUdp(OUTSIDE, 7, PEER_IP, 41000, payload("pong"), h.now));
    const [frame] = h.drain();
    const d = decodeUdp(frame);
    assert.deepEqual(d.dstMac, PEER_MAC);
    assert.equal(d.ip.src, OUTSIDE);
    assert.equal(d.ip.dst, PEER_IP);
    assert.equal(d.udp.srcPort, 7);
    assert.equal(d.udp.dstPort, 41000);
    assert.equal(new TextDecoder().decode(d.udp.payload), "pong");
    // Independently: the checksum over the pseudo-header with the outside source verifies.
    const pseudo = fromHex("c6120005" + "0a00020f" + "0011" + "000c");
    assert.equal(internetChecksum(pseudo, d.payload), 0);
    assert.equal(egress.stats.udpDelivered, 1);
  });

  it("reports a port unreachable from the outside host, quoting the guest's datagram (RFC 792)", () => {
    const { h, egress } = egressStack();
    egress.udpUnreachable(PEER_IP, 41000, OUTSIDE, 7, Icmpv4DestUnreachableCode.PORT, h.now);
    const [frame] = h.drain();
    const d = decodeIcmp(frame);
    assert.equal(d.ip.src, OUTSIDE);
    assert.equal(d.ip.dst, PEER_IP);
    assert.equal(d.icmp.type, "dest_unreachable");
    if (d.icmp.type !== "dest_unreachable") return;
    assert.equal(d.icmp.code, 3);
    // The quote: an IPv4 header from the guest to the outside address (UDP), then the ports.
    const q = d.icmp.data;
    assert.equal(q.length, 28);
    assert.equal(hex(q.subarray(9, 10)), "11");
    assert.equal(hex(q.subarray(12, 20)), "0a00020f" + "c6120005");
    assert.equal(hex(q.subarray(20, 28)), "a028" + "0007" + "0008" + "0000");
    assert.equal(internetChecksum(q.subarray(0, 20)), 0, "the quoted header's checksum holds");
  });

  it("reports administratively prohibited from the stack, the router (RFC 1812 §5.2.7.1)", () => {
    const { h, egress } = egressStack();
    egress.udpUnreachable(PEER_IP, 41000, OUTSIDE, 7, 13, h.now);
    const d = decodeIcmp(h.drain()[0]);
    assert.equal(d.ip.src, STACK_IP);
    assert.equal(d.icmp.type === "dest_unreachable" && d.icmp.code, 13);
  });
});

describe("DNS forwarding: names the session does not own go upstream", () => {
  it("defers a query for another name: no answer now, an event with the query", () => {
    const { h, egress } = egressStack();
    const q = dnsQuery(0xbeef, "example.com");
    h.input(udpFrame({ dstPort: 53, srcPort: 5353, payload: q }));
    assert.deepEqual(h.drain(), []);
    assert.ok(h.balanced);
    const [e] = egress.take() as EgressDnsEvent[];
    assert.equal(e.kind, "dns");
    assert.equal(e.client, PEER_IP);
    assert.equal(e.clientPort, 5353);
    assert.deepEqual(e.query, q);
    assert.equal(h.stack.dns!.stats.forwarded, 1);
  });

  it("answers the session's own names at once, and NXDOMAIN under internal", () => {
    const { h, egress } = egressStack();
    h.input(udpFrame({ dstPort: 53, payload: dnsQuery(1, "netisle.internal") }));
    const a = decodeUdp(h.drain()[0]).udp.payload;
    assert.equal(hex(a.subarray(-4)), "0a000202");
    h.input(udpFrame({ dstPort: 53, payload: dnsQuery(2, "nothing.internal") }));
    assert.equal(decodeUdp(h.drain()[0]).udp.payload[3] & 0xf, 3);
    assert.equal(egress.queued, 0);
  });

  it("sends the deferred answer from port 53 of the stack", () => {
    const { h, egress } = egressStack();
    assert.ok(egress.answerDns(PEER_IP, 5353, fromHex("beef8180"), h.now));
    const d = decodeUdp(h.drain()[0]);
    assert.equal(d.ip.src, STACK_IP);
    assert.equal(d.udp.srcPort, 53);
    assert.equal(d.udp.dstPort, 5353);
    assert.equal(hex(d.udp.payload), "beef8180");
  });

  it("answers SERVFAIL at once when the queue cannot take the query", () => {
    const { h, egress } = egressStack({
      egress: { enabled: true, limits: { maxQueuedEvents: 1 } },
    });
    h.input(udpFrame({ dst: OUTSIDE, dstPort: 7 }));
    h.input(udpFrame({ dstPort: 53, srcPort: 5353, payload: dnsQuery(0xabcd, "example.com") }));
    const d = decodeUdp(h.drain()[0]);
    assert.equal(hex(d.udp.payload.subarray(0, 4)), "abcd" + "8102", "id kept, RD, SERVFAIL");
    assert.equal(egress.queued, 1);
  });
});
