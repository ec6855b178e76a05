import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { NetError } from "../../errors/net_error.ts";
import { Icmpv4Repr, IpProtocol, parseIpv4Address } from "../../wire/mod.ts";
import {
  BROADCAST_MAC,
  decodeIcmp,
  decodeIp,
  decodeUdp,
  fromHex,
  HARNESS_PEER_IP,
  hex,
  internetChecksum,
  ipFrame,
  u16,
  udpFrame,
  UdpHarness,
} from "./_udp_test_util.ts";
import { UdpEvent } from "./udp_endpoint.ts";
import { BUFFER_OVERHEAD_BYTES, bufferCost, createSessionQuota } from "../session_quota.ts";
import type { UdpService } from "./udp_service.ts";
import type { IpAddress } from "../../wire/ip_address.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const STACK_MAC_HEX = "020000000002";
const PEER_MAC_HEX = "525400123456";
const STACK_IP_HEX = "0a000202";
const PEER_IP_HEX = "0a00020f";
const OTHER_IP = parseIpv4Address("10.0.2.16");

/** The 20-byte IPv4 header the stack emits (no options, DF as given), checksum included. */
function ipHeaderHex(
  totalLen: number,
  ident: number,
  protocol: number,
  dst = PEER_IP_HEX,
  df = false,
) {
  const noSum = "4500" + u16(totalLen) + u16(ident) + (df ? "4000" : "0000") + "40" +
    protocol.toString(16).padStart(2, "0") + "0000" + STACK_IP_HEX + dst;
  const bytes = Uint8Array.from(noSum.match(/../g)!.map((b) => parseInt(b, 16)));
  return noSum.slice(0, 20) + u16(internetChecksum(bytes)) + noSum.slice(24);
}

/** The exact frame of a datagram from the stack to the peer, its checksum computed here. */
function udpToPeerHex(srcPort: number, dstPort: number, payloadHex: string, ident: number) {
  const len = u16(8 + payloadHex.length / 2);
  const pseudo = fromHex(STACK_IP_HEX + PEER_IP_HEX + "0011" + len);
  const head = u16(srcPort) + u16(dstPort) + len;
  const sum = u16(internetChecksum(pseudo, fromHex(head + "0000" + payloadHex)));
  return PEER_MAC_HEX + STACK_MAC_HEX + "0800" +
    ipHeaderHex(20 + 8 + payloadHex.length / 2, ident, IpProtocol.UDP) + head + sum + payloadHex;
}

describe("UdpLayer: delivery and echo (RFC 768)", () => {
  it("delivers a datagram to the bound port and echoes it as the exact frame", () => {
    const h = new UdpHarness();
    const ep = h.stack.udp.bind(7);
    h.inject({ srcPort: 40000, dstPort: 7, payload: enc("hello") });
    assert.equal(h.stack.counters.rxHandled, 1);
    assert.equal(ep.queuedBytes, 5);
    const d = ep.receive()!;
    assert.equal(d.src, HARNESS_PEER_IP);
    assert.equal(d.srcPort, 40000);
    assert.equal(new TextDecoder().decode(d.payload), "hello");
    assert.equal(ep.queuedBytes, 0);
    assert.equal(ep.receive(), undefined);

    assert.equal(ep.send(d.payload, h.now, { address: d.src, port: d.srcPort }), true);
    const [frame, ...rest] = h.drain();
    assert.equal(rest.length, 0);
    assert.equal(hex(frame), udpToPeerHex(7, 40000, "68656c6c6f", 1));
    assert.deepEqual(ep.stats, {
      rxDatagrams: 1,
      rxBytes: 5,
      rxQueueDrops: 0,
      rxQuotaDrops: 0,
      rxPeerMismatch: 0,
      txDatagrams: 1,
      txBytes: 5,
      txDrops: 0,
      icmpErrors: 0,
    });
  });

  it("accepts a datagram without a checksum (zero field, RFC 1122 §4.1.3.4) and an empty one", () => {
    const h = new UdpHarness();
    const ep = h.stack.udp.bind(53);
    h.inject({ dstPort: 53, payload: enc("abc"), checksum: "zero" });
    h.inject({ dstPort: 53 });
    assert.equal(ep.queuedDatagrams, 2);
    assert.equal(ep.receive()!.payload.length, 3);
    assert.equal(ep.receive()!.payload.length, 0);
  });

  it("drops and counts a bad checksum, a truncated header and a bad length, without ICMP (RFC 1122 §4.1.3.4)", () => {
    const h = new UdpHarness();
    const ep = h.stack.udp.bind(53);
    h.inject({ dstPort: 53, payload: enc("abc"), checksum: "corrupt" });
    h.stack.input(ipFrame(IpProtocol.UDP, new Uint8Array([0, 1, 0, 53])), h.now);
    const badLen = udpFrame({ dstPort: 53, payload: enc("abc") });
    badLen[14 + 20 + 5] = 200; // length field beyond the packet
    h.stack.input(badLen, h.now);
    assert.equal(ep.queuedDatagrams, 0);
    assert.equal(h.drain().length, 0);
    const d = h.stack.counters.drops;
    assert.equal(d.udp_bad_checksum, 1);
    assert.equal(d.udp_truncated, 1);
    assert.equal(d.udp_bad_length, 1);
  });

  it("copies the payload out of the frame, so a reused buffer does not change it", () => {
    const h = new UdpHarness();
    const ep = h.stack.udp.bind(9);
    const f = udpFrame({ dstPort: 9, payload: enc("keep") });
    h.stack.input(f, h.now);
    f.fill(0);
    assert.equal(new TextDecoder().decode(ep.receive()!.payload), "keep");
  });

  it("delivers datagrams to the subnet and the limited broadcast address to a bound endpoint", () => {
    const h = new UdpHarness();
    const ep = h.stack.udp.bind(67);
    h.inject({ dstPort: 67, dst: parseIpv4Address("10.0.2.255"), dstMac: BROADCAST_MAC });
    h.inject({ dstPort: 67, dst: 0xffffffff, dstMac: BROADCAST_MAC });
    assert.equal(ep.queuedDatagrams, 2);
    assert.equal(h.stack.counters.rxHandled, 2);
  });

  it("sends to the subnet broadcast address in a broadcast frame", () => {
    const h = new UdpHarness();
    const ep = h.stack.udp.bind(68);
    ep.send(enc("x"), h.now, { address: parseIpv4Address("10.0.2.255"), port: 67 });
    const d = decodeUdp(h.drain()[0]);
    assert.equal(hex(d.dstMac), "ffffffffffff");
    assert.equal(d.udp.dstPort, 67);
    assert.equal(d.ip.dontFragment, false);
  });

  it("sends a computed checksum of 0 as 0xffff (RFC 768)", () => {
    const h = new UdpHarness();
    const ep = h.stack.udp.bind(1000);
    const dst = { address: HARNESS_PEER_IP, port: 2000 };
    ep.send(new Uint8Array(2), h.now, dst);
    const c0 = decodeUdp(h.drain()[0]).checksum;
    // A payload word equal to the checksum with a zero word makes the sum 0xffff: checksum 0.
    ep.send(new Uint8Array([c0 >> 8, c0 & 0xff]), h.now, dst);
    const d = decodeUdp(h.drain()[0]);
    assert.equal(d.checksum, 0xffff);
  });

  it("queues a datagram for an unresolved neighbour and sends an ARP request", () => {
    const h = new UdpHarness();
    const ep = h.stack.udp.bind(1000);
    assert.equal(ep.send(enc("x"), h.now, { address: OTHER_IP, port: 7 }), true);
    const [arp] = h.drain();
    assert.equal(hex(arp.subarray(12, 14)), "0806");
  });
});

describe("UdpLayer: ICMP port unreachable (RFC 792, RFC 1122 §3.2.2, §4.1.3.1)", () => {
  it("answers a datagram to a closed port with the exact ICMP message quoting the whole datagram", () => {
    const h = new UdpHarness();
    const f = udpFrame({ srcPort: 40000, dstPort: 9999, payload: enc("ping?") });
    h.stack.input(f, h.now);
    const [frame, ...rest] = h.drain();
    assert.equal(rest.length, 0);
    const quote = f.subarray(14); // 20 + 8 + 5 bytes: all of it fits in 576
    const icmpNoSum = "0303" + "0000" + "00000000" + hex(quote);
    const sum = u16(internetChecksum(fromHex(icmpNoSum)));
    assert.equal(
      hex(frame),
      PEER_MAC_HEX + STACK_MAC_HEX + "0800" +
        ipHeaderHex(20 + 8 + quote.length, 1, IpProtocol.ICMP) +
        "0303" + sum + "00000000" + hex(quote),
    );
    assert.equal(h.stack.counters.drops.udp_port_closed, 1);
    assert.equal(h.stack.counters.rxHandled, 0);
    assert.equal(h.stack.icmpErrorStats.sent, 1);
  });

  it("quotes at most what keeps the ICMP error within 576 bytes (RFC 1812 §4.3.2.3)", () => {
    const h = new UdpHarness();
    const f = udpFrame({ dstPort: 9999, payload: new Uint8Array(1000).fill(0xab) });
    h.stack.input(f, h.now);
    const d = decodeIcmp(h.drain()[0]);
    assert.equal(d.packet.length, 576);
    assert.equal(d.icmp.type, "dest_unreachable");
    assert.equal(hex(d.icmp.data), hex(f.subarray(14, 14 + 548)));
  });

  it("quotes less on a small MTU: the error never exceeds the MTU", () => {
    const h = new UdpHarness({ mtu: 100 });
    const f = udpFrame({ dstPort: 9999, payload: new Uint8Array(60) });
    h.stack.input(f, h.now);
    const d = decodeIcmp(h.drain()[0]);
    assert.equal(d.packet.length, 100);
    assert.equal(hex(d.icmp.data), hex(f.subarray(14, 14 + 72)));
  });

  it("never answers a datagram to a broadcast address or in a link-layer broadcast frame", () => {
    const h = new UdpHarness();
    h.inject({ dstPort: 9999, dst: parseIpv4Address("10.0.2.255"), dstMac: BROADCAST_MAC });
    h.inject({ dstPort: 9999, dst: 0xffffffff, dstMac: BROADCAST_MAC });
    h.inject({ dstPort: 9999, dstMac: BROADCAST_MAC }); // unicast IP, broadcast frame
    assert.equal(h.drain().length, 0);
    assert.equal(h.stack.counters.drops.udp_port_closed, 3);
    assert.equal(h.stack.icmpErrorStats.sent, 0);
  });

  it("never answers a source that does not name one host (0.0.0.0, loopback, class E): IPv4 refuses them first", () => {
    const h = new UdpHarness();
    for (const src of ["0.0.0.0", "127.0.0.1", "240.0.0.1"]) {
      h.inject({ dstPort: 9999, src: parseIpv4Address(src) });
    }
    assert.equal(h.drain().length, 0);
    assert.equal(h.stack.counters.drops.ipv4_martian_source, 3);
    assert.equal(h.stack.counters.drops.udp_port_closed, 0);
    assert.equal(h.stack.icmpErrorStats.sent, 0);
  });

  it("rate limits ICMP errors with one token bucket: 100 at once, then 100 per second (RFC 1812 §4.3.2.8)", () => {
    const h = new UdpHarness();
    for (let i = 0; i < 150; i++) h.inject({ dstPort: 9999, srcPort: 1000 + i });
    assert.equal(h.drain().length, 100);
    assert.equal(h.stack.counters.txDrops.icmp_error_rate_limited, 50);
    assert.equal(h.stack.counters.drops.udp_port_closed, 150);
    h.now += 10; // one token
    for (let i = 0; i < 5; i++) h.inject({ dstPort: 9999 });
    assert.equal(h.drain().length, 1);
    // The bucket is shared with protocol unreachable.
    h.stack.input(ipFrame(99, new Uint8Array(8)), h.now);
    assert.equal(h.drain().length, 0);
    h.now += 1000;
    for (let i = 0; i < 150; i++) h.inject({ dstPort: 9999 });
    assert.equal(h.drain().length, 100, "the bucket refills to its burst size, no more");
    assert.equal(h.stack.icmpErrorStats.sent, 201);
    assert.equal(h.stack.icmpErrorStats.rateLimited, 50 + 4 + 1 + 50);
  });

  it("sends no ICMP errors at all with icmpErrorsPerSecond 0", () => {
    const h = new UdpHarness({ icmpErrorsPerSecond: 0 });
    h.inject({ dstPort: 9999 });
    assert.equal(h.drain().length, 0);
    assert.equal(h.stack.counters.drops.udp_port_closed, 1);
  });

  it("answers an unknown transport protocol with protocol unreachable (RFC 1122 §3.2.2.1)", () => {
    const h = new UdpHarness();
    const f = ipFrame(99, enc("payload!"));
    h.stack.input(f, h.now);
    const d = decodeIcmp(h.drain()[0]);
    assert.equal(d.icmp.type, "dest_unreachable");
    assert.equal(hex(d.bytes.subarray(0, 2)), "0302");
    assert.equal(hex(d.icmp.data), hex(f.subarray(14)));
    assert.equal(h.stack.counters.drops.ipv4_unsupported_protocol, 1);
    h.stack.input(ipFrame(99, enc("x"), { dst: 0xffffffff, dstMac: BROADCAST_MAC }), h.now);
    assert.equal(h.drain().length, 0, "never for a broadcast");
  });
});

describe("UdpLayer: receive queue limits", () => {
  it("drops datagrams beyond recvQueueDatagrams, counted per endpoint and as udp_queue_full", () => {
    const h = new UdpHarness({ udpLimits: { recvQueueDatagrams: 4 } });
    const ep = h.stack.udp.bind(5000);
    for (let i = 0; i < 6; i++) h.inject({ dstPort: 5000, payload: new Uint8Array([i]) });
    assert.equal(ep.queuedDatagrams, 4);
    assert.equal(ep.stats.rxQueueDrops, 2);
    assert.equal(h.stack.counters.drops.udp_queue_full, 2);
    assert.equal(h.drain().length, 0, "a full queue is not a closed port: no ICMP");
    ep.receive();
    h.inject({ dstPort: 5000, payload: new Uint8Array([9]) });
    assert.equal(ep.queuedDatagrams, 4);
    assert.deepEqual([...Array(4)].map(() => ep.receive()!.payload[0]), [1, 2, 3, 9]);
  });

  it("drops datagrams beyond recvQueueBytes of payload", () => {
    const h = new UdpHarness({ udpLimits: { recvQueueBytes: 1000 } });
    const ep = h.stack.udp.bind(5000);
    for (let i = 0; i < 3; i++) h.inject({ dstPort: 5000, payload: new Uint8Array(400) });
    assert.equal(ep.queuedBytes, 800);
    assert.equal(ep.stats.rxQueueDrops, 1);
    h.inject({ dstPort: 5000, payload: new Uint8Array(200) });
    assert.equal(ep.queuedBytes, 1000, "exactly full is allowed");
  });

  it("defaults to 256 KiB and 1024 datagrams per endpoint", () => {
    const h = new UdpHarness();
    assert.equal(h.stack.udp.limits.recvQueueBytes, 256 * 1024);
    assert.equal(h.stack.udp.limits.recvQueueDatagrams, 1024);
    const ep = h.stack.udp.bind(5000);
    for (let i = 0; i < 200; i++) h.inject({ dstPort: 5000, payload: new Uint8Array(1400) });
    assert.equal(ep.queuedDatagrams, Math.floor(256 * 1024 / 1400));
    assert.equal(ep.queuedBytes <= 256 * 1024, true);
  });

  it("rejects a limit that is not a positive integer", () => {
    assert.throws(
      () => new UdpHarness({ udpLimits: { recvQueueBytes: 0 } }),
      /limits\.recvQueueBytes must be a positive integer, got 0/,
    );
  });
});

describe("UdpLayer: receive memory is charged to the session's quota", () => {
  const quota = (maxBufferedBytes: number) =>
    createSessionQuota({ maxBufferedBytes, maxSockets: 8 });

  it("charges bufferCost(copy) per queued datagram and releases it on read and on close", () => {
    const q = quota(1 << 20);
    const h = new UdpHarness({ quota: q });
    const ep = h.stack.udp.bind(5000);
    h.inject({ dstPort: 5000, payload: new Uint8Array(100) });
    h.inject({ dstPort: 5000, payload: new Uint8Array(300) });
    h.inject({ dstPort: 5000 }); // an empty datagram still costs its buffer's overhead
    assert.equal(q.memory.used, bufferCost(100) + bufferCost(300) + bufferCost(0));
    assert.equal(q.memory.used, 400 + 3 * BUFFER_OVERHEAD_BYTES);
    assert.equal(ep.receive()!.payload.length, 100);
    assert.equal(q.memory.used, bufferCost(300) + bufferCost(0));
    ep.close();
    assert.equal(q.memory.used, 0);
    assert.equal(q.memory.stats().peak, 400 + 3 * BUFFER_OVERHEAD_BYTES);
  });

  it("drops a datagram the quota refuses as udp_rcv_quota, without ICMP, and takes one again once read", () => {
    const q = quota(2 * bufferCost(100) + 99);
    const h = new UdpHarness({ quota: q });
    const ep = h.stack.udp.bind(5000);
    for (let i = 0; i < 3; i++) h.inject({ dstPort: 5000, payload: new Uint8Array(100).fill(i) });
    assert.equal(ep.queuedDatagrams, 2);
    assert.equal(ep.stats.rxQuotaDrops, 1);
    assert.equal(ep.stats.rxQueueDrops, 0);
    assert.equal(h.stack.counters.drops.udp_rcv_quota, 1);
    assert.equal(h.drain().length, 0, "a refused charge is no closed port");
    assert.equal(q.memory.stats().refused, 1);
    ep.receive();
    h.inject({ dstPort: 5000, payload: new Uint8Array(100).fill(9) });
    assert.deepEqual([ep.receive()!.payload[0], ep.receive()!.payload[0]], [1, 9]);
    assert.equal(q.memory.used, 0);
  });

  it("a datagram handed to a service (DNS, DHCP) is borrowed, never charged", () => {
    const q = quota(1 << 20);
    const h = new UdpHarness({ quota: q });
    h.inject({ dstPort: 53, payload: new Uint8Array(12) });
    assert.equal(h.drain().length, 1, "the DNS responder answered");
    assert.equal(q.memory.used, 0);
    assert.equal(q.memory.stats().peak, 0);
  });
});

describe("UdpLayer: connected endpoints", () => {
  it("delivers only the connected peer's datagrams; others count as a closed port, as on Linux", () => {
    const h = new UdpHarness();
    const ep = h.stack.udp.bind(5000);
    ep.connect(HARNESS_PEER_IP, 6000);
    h.inject({ dstPort: 5000, srcPort: 6000, payload: enc("yes") });
    h.inject({ dstPort: 5000, srcPort: 6001, payload: enc("no") });
    h.inject({ dstPort: 5000, srcPort: 6000, src: OTHER_IP, payload: enc("no") });
    assert.equal(ep.queuedDatagrams, 1);
    assert.equal(ep.stats.rxPeerMismatch, 2);
    assert.equal(h.stack.counters.drops.udp_peer_mismatch, 2);
    const out = h.drain();
    // Port unreachable to the peer's other port; 10.0.2.16 first needs ARP.
    const icmp = decodeIcmp(out.find((f) => decodeIp(f).ip.dst === HARNESS_PEER_IP)!);
    assert.equal(icmp.icmp.type, "dest_unreachable");
    assert.equal(hex(icmp.bytes.subarray(0, 2)), "0303");
    assert.equal(new TextDecoder().decode(ep.receive()!.payload), "yes");
  });

  it("sends to the connected peer without a destination; disconnect() accepts anyone again", () => {
    const h = new UdpHarness();
    const ep = h.stack.udp.bind(5000);
    assert.throws(
      () => ep.send(enc("x"), h.now),
      (e) => e instanceof NetError && e.code === "ENOTCONN",
    );
    ep.connect(HARNESS_PEER_IP, 6000);
    assert.deepEqual(ep.remote, { address: HARNESS_PEER_IP, port: 6000 });
    ep.send(enc("to peer"), h.now);
    const d = decodeUdp(h.drain()[0]);
    assert.equal(d.ip.dst, HARNESS_PEER_IP);
    assert.equal(d.udp.srcPort, 5000);
    assert.equal(d.udp.dstPort, 6000);
    // An explicit destination still works while connected (as Linux allows).
    ep.send(enc("elsewhere"), h.now, { address: HARNESS_PEER_IP, port: 6001 });
    assert.equal(decodeUdp(h.drain()[0]).udp.dstPort, 6001);
    ep.disconnect();
    assert.equal(ep.remote, undefined);
    h.inject({ dstPort: 5000, srcPort: 7777 });
    assert.equal(ep.queuedDatagrams, 1);
  });

  /** The ICMP destination unreachable the peer's host sends back about `sent`. */
  function unreachable(sent: Uint8Array, code: number): Uint8Array {
    const repr: Icmpv4Repr = { type: "dest_unreachable", code, data: sent.subarray(14, 14 + 28) };
    const icmp = new Uint8Array(Icmpv4Repr.bufferLen(repr));
    Icmpv4Repr.emit(repr, icmp);
    return ipFrame(IpProtocol.ICMP, icmp);
  }

  it("reports ICMP port unreachable for the connected peer once, as ECONNREFUSED (RFC 1122 §4.1.3.3)", () => {
    const h = new UdpHarness();
    const ep = h.stack.udp.bind(5000);
    ep.connect(HARNESS_PEER_IP, 6000);
    ep.send(enc("anyone there?"), h.now);
    const sent = h.drain()[0];
    h.stack.takeDirty();
    h.stack.input(unreachable(sent, 3), h.now);
    assert.equal(ep.stats.icmpErrors, 1);
    assert.equal(ep.hasPendingError, true);
    // Waiting receivers are woken through the READABLE event.
    assert.ok(h.stack.takeDirty().includes(ep));
    assert.throws(() => ep.receive(), (e) => e instanceof NetError && e.code === "ECONNREFUSED");
    // Reported once: the next receive finds nothing, and a send goes out.
    assert.equal(ep.receive(), undefined);
    assert.equal(ep.send(enc("again"), h.now), true);
    // A send reports a pending error too; queued datagrams come before it.
    h.stack.input(unreachable(sent, 2), h.now);
    assert.throws(
      () => ep.send(enc("x"), h.now),
      (e) => e instanceof NetError && e.code === "ECONNREFUSED",
    );
    h.stack.input(unreachable(sent, 1), h.now);
    h.inject({ dstPort: 5000, srcPort: 6000, payload: enc("late reply") });
    assert.equal(new TextDecoder().decode(ep.receive()!.payload), "late reply");
    assert.throws(() => ep.receive(), (e) => e instanceof NetError && e.code === "EHOSTUNREACH");
  });

  it("ignores ICMP errors for unconnected endpoints and other peers, counted as icmp_udp_unmatched", () => {
    const h = new UdpHarness();
    const ep = h.stack.udp.bind(5000);
    ep.send(enc("hello"), h.now, { address: HARNESS_PEER_IP, port: 6000 });
    const sent = h.drain()[0];
    h.stack.input(unreachable(sent, 3), h.now);
    ep.connect(HARNESS_PEER_IP, 6001);
    h.stack.input(unreachable(sent, 3), h.now);
    assert.equal(h.stack.counters.drops.icmp_udp_unmatched, 2);
    assert.equal(ep.stats.icmpErrors, 0);
    assert.equal(ep.receive(), undefined);
    ep.close();
    h.stack.input(unreachable(sent, 3), h.now);
    assert.equal(h.stack.counters.drops.icmp_udp_unmatched, 3);
  });

  it("rejects connecting to 0.0.0.0 or port 0 with a RangeError", () => {
    const h = new UdpHarness();
    const ep = h.stack.udp.bind(5000);
    assert.throws(() => ep.connect(0, 7), /address must be a non-zero IPv4 address/);
    assert.throws(
      () => ep.connect(HARNESS_PEER_IP, 0),
      /port must be an integer in 1\.\.65535, got 0/,
    );
  });
});

describe("UdpLayer: ports and endpoints", () => {
  it("binds ephemeral ports in 49152..65535, distinct, skipping bound ones (RFC 6335 §6)", () => {
    const h = new UdpHarness();
    const seen = new Set<number>();
    for (let i = 0; i < 100; i++) {
      const p = h.stack.udp.bind(0).port;
      assert.ok(p >= 49152 && p <= 65535, `ephemeral port ${p}`);
      assert.ok(!seen.has(p));
      seen.add(p);
    }
  });

  it("fails with EADDRINUSE once every ephemeral port is bound", () => {
    const h = new UdpHarness({ udpLimits: { maxEndpoints: 20000 } });
    for (let i = 0; i < 16384; i++) h.stack.udp.bind(0);
    assert.throws(
      () => h.stack.udp.bind(0),
      (e) =>
        e instanceof NetError && e.code === "EADDRINUSE" && /no ephemeral UDP port/.test(e.message),
    );
  });

  it("refuses a bound port with EADDRINUSE until it is closed", () => {
    const h = new UdpHarness();
    const ep = h.stack.udp.bind(7);
    assert.throws(
      () => h.stack.udp.bind(7),
      (e) =>
        e instanceof NetError && e.code === "EADDRINUSE" &&
        /UDP port 7 is already in use/.test(e.message),
    );
    // TCP and UDP ports are separate spaces.
    h.stack.tcp.listen(7, 8);
    ep.close();
    ep.close();
    assert.equal(h.stack.udp.bind(7).port, 7);
  });

  it("rejects a port outside 0..65535 with a RangeError and enforces maxEndpoints with EMFILE", () => {
    const h = new UdpHarness({ udpLimits: { maxEndpoints: 2 } });
    for (const p of [-1, 65536, 1.5, NaN]) {
      assert.throws(() => h.stack.udp.bind(p), RangeError);
    }
    h.stack.udp.bind(1);
    h.stack.udp.bind(2);
    assert.throws(
      () => h.stack.udp.bind(3),
      (e) => e instanceof NetError && e.code === "EMFILE",
    );
  });

  it("checks send(): payload size (no fragmentation), route, destination, closed", () => {
    const h = new UdpHarness();
    const ep = h.stack.udp.bind(5000);
    const dst = { address: HARNESS_PEER_IP, port: 7 };
    assert.equal(h.stack.udp.maxPayload, 1472);
    assert.equal(ep.send(new Uint8Array(1472), h.now, dst), true);
    assert.equal(decodeIp(h.drain()[0]).packet.length, 1500);
    assert.throws(
      () => ep.send(new Uint8Array(1473), h.now, dst),
      /payload of 1473 bytes exceeds 1472, the most that fits in one IP packet/,
    );
    assert.throws(
      () => ep.send(enc("x"), h.now, { address: parseIpv4Address("8.8.8.8"), port: 53 }),
      (e) => e instanceof NetError && e.code === "EHOSTUNREACH" && /8\.8\.8\.8/.test(e.message),
    );
    assert.throws(
      () => ep.send(enc("x"), h.now, { address: HARNESS_PEER_IP, port: 0 }),
      RangeError,
    );
    ep.close();
    assert.throws(
      () => ep.send(enc("x"), h.now, dst),
      (e) => e instanceof NetError && e.code === "ENOTCONN",
    );
    assert.equal(h.stack.udp.endpoints.size, 0);
  });

  it("a closed endpoint's port answers with port unreachable and its queue is gone", () => {
    const h = new UdpHarness();
    const ep = h.stack.udp.bind(5000);
    h.inject({ dstPort: 5000, payload: enc("a") });
    ep.close();
    assert.equal(ep.queuedDatagrams, 0);
    h.inject({ dstPort: 5000, payload: enc("b") });
    assert.equal(decodeIcmp(h.drain()[0]).icmp.type, "dest_unreachable");
  });
});

describe("UdpLayer: events for the socket layer", () => {
  it("marks an endpoint dirty once per delivery round, READABLE then CLOSED, via Stack.takeDirty", () => {
    const h = new UdpHarness();
    const ep = h.stack.udp.bind(5000);
    const conn = h.stack.tcp.connect(HARNESS_PEER_IP, 80, h.now);
    h.drain();
    h.inject({ dstPort: 5000 });
    h.inject({ dstPort: 5000 });
    assert.equal(ep.events, UdpEvent.READABLE);
    conn.abort(h.now);
    const dirty = h.stack.takeDirty();
    assert.ok(dirty.includes(ep));
    assert.equal(dirty.filter((d) => d === ep).length, 1);
    assert.ok(dirty.includes(conn), "TCP objects come in the same list");
    assert.deepEqual(h.stack.takeDirty(), []);
    ep.events = 0;
    ep.close();
    assert.equal(ep.events, UdpEvent.CLOSED);
    assert.deepEqual(h.stack.takeDirty(), [ep]);
  });
});

describe("UdpLayer: services on a port (the stack's DHCP and DNS servers)", () => {
  /** A service that records what it got and answers "re:" + payload to the sender. */
  function recorder(reason?: string) {
    const got: Array<
      { src: IpAddress; srcPort: number; dst: IpAddress; dstPort: number; text: string }
    > = [];
    const service: UdpService = {
      receive(d, sender, now) {
        const { src, srcPort, dst, dstPort } = d;
        got.push({ src, srcPort, dst, dstPort, text: new TextDecoder().decode(d.payload) });
        if (reason) return reason;
        sender.send({ address: d.src, port: d.srcPort }, enc("re:x"), now);
        return undefined;
      },
    };
    return { got, service };
  }

  it("calls the service synchronously with the datagram; its reply goes out from the port as the exact frame", () => {
    const h = new UdpHarness();
    const { got, service } = recorder();
    h.stack.udp.serve(7, service);
    h.inject({ srcPort: 40000, dstPort: 7, payload: enc("hi") });
    assert.deepEqual(got, [{
      src: HARNESS_PEER_IP,
      srcPort: 40000,
      dst: parseIpv4Address("10.0.2.2"),
      dstPort: 7,
      text: "hi",
    }]);
    const [frame, ...rest] = h.drain();
    assert.equal(rest.length, 0);
    assert.equal(hex(frame), udpToPeerHex(7, 40000, "72653a78", 1));
    assert.equal(h.stack.counters.rxHandled, 1);
    assert.equal(h.stack.udp.stats.rxServiced, 1);
    assert.equal(h.stack.udp.endpoints.size, 0, "a service is not an endpoint");
    assert.deepEqual(h.stack.udp.servicePorts, [7, 53], "with the stack's DNS responder");
  });

  it("counts the reason a service gives for dropping a datagram, and sends no ICMP for it", () => {
    const h = new UdpHarness();
    h.stack.udp.serve(7, recorder("dns_not_query").service);
    h.inject({ dstPort: 7, payload: enc("?") });
    assert.equal(h.stack.counters.drops.dns_not_query, 1);
    assert.equal(h.drain().length, 0);
  });

  it("hears broadcasts only when asked to; otherwise the port counts as closed for them", () => {
    const h = new UdpHarness();
    const unicast = recorder();
    const broadcast = recorder();
    h.stack.udp.serve(7, unicast.service);
    h.stack.udp.serve(8, broadcast.service, { broadcast: true });
    for (const dstPort of [7, 8]) {
      h.inject({ dstPort, dst: 0xffffffff, dstMac: BROADCAST_MAC });
      h.inject({ dstPort, dst: parseIpv4Address("10.0.2.255"), dstMac: BROADCAST_MAC });
    }
    assert.equal(unicast.got.length, 0);
    assert.deepEqual(broadcast.got.map((d) => d.dst), [0xffffffff, parseIpv4Address("10.0.2.255")]);
    assert.equal(h.stack.counters.drops.udp_port_closed, 2);
  });

  it("an exclusive service keeps its port: bind() fails with EADDRINUSE naming it", () => {
    const h = new UdpHarness();
    h.stack.udp.serve(67, recorder().service, { name: "the DHCP server" });
    assert.throws(
      () => h.stack.udp.bind(67),
      (e) =>
        e instanceof NetError && e.code === "EADDRINUSE" &&
        e.message === "UDP port 67 is already in use by the DHCP server",
    );
  });

  it("a fallback service steps aside while a socket is bound on its port, and comes back after", () => {
    const h = new UdpHarness();
    const { got, service } = recorder();
    h.stack.udp.serve(5353, service, { sharing: "fallback" });
    const ep = h.stack.udp.bind(5353);
    h.inject({ dstPort: 5353, payload: enc("a") });
    assert.equal(got.length, 0);
    assert.equal(ep.queuedDatagrams, 1);
    ep.close();
    h.inject({ dstPort: 5353, payload: enc("b") });
    assert.deepEqual(got.map((d) => d.text), ["b"]);
  });

  it("refuses a second service on a port, an exclusive one on a bound port, and a bad port", () => {
    const h = new UdpHarness();
    h.stack.udp.serve(7, recorder().service, { name: "echo" });
    assert.throws(
      () => h.stack.udp.serve(7, recorder().service),
      (e) => e instanceof NetError && e.message === "UDP port 7 is already in use by echo",
    );
    h.stack.udp.bind(9);
    assert.throws(
      () => h.stack.udp.serve(9, recorder().service),
      (e) => e instanceof NetError && e.code === "EADDRINUSE",
    );
    h.stack.udp.serve(9, recorder().service, { sharing: "fallback" });
    assert.throws(
      () => h.stack.udp.serve(0, recorder().service),
      /port must be an integer in 1\.\.65535, got 0/,
    );
    h.stack.udp.unserve(7);
    assert.deepEqual(h.stack.udp.servicePorts, [9, 53]);
    h.inject({ dstPort: 7 });
    assert.equal(h.stack.counters.drops.udp_port_closed, 1);
  });
});
