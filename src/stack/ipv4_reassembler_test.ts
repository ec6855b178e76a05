import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ETHERNET_HEADER_LEN,
  EthernetRepr,
  Icmpv4Repr,
  IpProtocol,
  Ipv4Packet,
  UdpRepr,
} from "../wire/mod.ts";
import type { Stack } from "./stack.ts";
import { Ipv4Reassembler, type Ipv4ReassemblyLimits } from "./ipv4_reassembler.ts";
import { bufferCost, createSessionQuota } from "./session_quota.ts";
import {
  decodeIcmp,
  decodeIp,
  hex,
  internetChecksum,
  ipFrame,
  PEER_IP,
  PEER_MAC,
  STACK_IP,
  STACK_MAC,
  StackHarness,
  u16,
} from "./_stack_test_util.ts";

function makeStack(reassembly: Partial<Ipv4ReassemblyLimits> = {}, mtu = 1500) {
  return new StackHarness({ reassembly, mtu, seed: 11 });
}

/** One fragment frame from the peer carrying `data[offset..offset+len]` of a datagram. */
function fragment(
  protocol: number,
  data: Uint8Array,
  offset: number,
  len: number,
  ident = 0x4242,
  more = offset + len < data.length,
): Uint8Array {
  const part = data.subarray(offset, offset + len);
  return ipFrame(protocol, part, { ident, moreFragments: more, fragmentOffset: offset });
}

/** A UDP datagram (header and `n` payload bytes) from the peer's port 40000 to `port`. */
function udpDatagram(n: number, port = 7000): { udp: Uint8Array; payload: Uint8Array } {
  const payload = new Uint8Array(n);
  for (let i = 0; i < n; i++) payload[i] = (i * 7 + 3) & 0xff;
  const repr: UdpRepr = { srcPort: 40000, dstPort: port, payload };
  const udp = new Uint8Array(UdpRepr.bufferLen(repr));
  UdpRepr.emit(repr, udp, PEER_IP, STACK_IP);
  return { udp, payload };
}

function assertBalanced(stack: Stack): void {
  const c = stack.counters;
  assert.equal(c.rxFrames, c.rxHandled + c.totalDrops());
}

describe("IPv4 reassembly in the stack", () => {
  it("delivers a UDP datagram sent in three fragments in order", () => {
    const { stack } = makeStack();
    const ep = stack.udp.bind(7000);
    const { udp, payload } = udpDatagram(3000);
    stack.input(fragment(IpProtocol.UDP, udp, 0, 1480), 1);
    stack.input(fragment(IpProtocol.UDP, udp, 1480, 1480), 2);
    assert.equal(ep.receive(), undefined);
    assert.equal(stack.reassembler.datagrams, 1);
    assert.equal(stack.reassembler.bytesHeld, 2960);
    stack.input(fragment(IpProtocol.UDP, udp, 2960, 48), 3);
    const got = ep.receive();
    assert.ok(got);
    assert.deepEqual(got.payload, payload);
    assert.equal(got.srcPort, 40000);
    assert.equal(stack.counters.rxHandled, 3);
    assert.equal(stack.reassembler.datagrams, 0);
    assert.equal(stack.reassembler.bytesHeld, 0);
    assert.equal(stack.reassembler.stats.completed, 1);
    assert.equal(stack.reassembler.nextDeadline(), undefined);
    assertBalanced(stack);
  });

  it("delivers fragments that arrive out of order and counts an exact duplicate", () => {
    const { stack } = makeStack();
    const ep = stack.udp.bind(7000);
    const { udp, payload } = udpDatagram(2000);
    stack.input(fragment(IpProtocol.UDP, udp, 1600, 408), 1);
    stack.input(fragment(IpProtocol.UDP, udp, 800, 800), 2);
    stack.input(fragment(IpProtocol.UDP, udp, 800, 800), 3); // duplicate
    assert.equal(stack.counters.drops.ipv4_reassembly_duplicate, 1);
    stack.input(fragment(IpProtocol.UDP, udp, 0, 800), 4);
    assert.deepEqual(ep.receive()?.payload, payload);
    assert.equal(stack.counters.rxHandled, 3);
    assertBalanced(stack);
  });

  it("discards the whole datagram on an overlap, and on a same-offset fragment with other bytes", () => {
    const { stack } = makeStack();
    const ep = stack.udp.bind(7000);
    const { udp } = udpDatagram(2000);
    stack.input(fragment(IpProtocol.UDP, udp, 0, 800), 1);
    stack.input(fragment(IpProtocol.UDP, udp, 792, 800), 2); // overlaps by 8 bytes
    assert.equal(stack.counters.drops.ipv4_reassembly_overlap, 1);
    assert.equal(stack.reassembler.datagrams, 0);
    assert.equal(stack.reassembler.bytesHeld, 0);
    assert.equal(stack.reassembler.stats.discarded, 1);

    stack.input(fragment(IpProtocol.UDP, udp, 0, 800, 7), 3);
    const changed = fragment(IpProtocol.UDP, udp, 0, 800, 7);
    changed[changed.length - 1] ^= 1; // same place, different data (no checksum covers it here)
    stack.input(changed, 4);
    assert.equal(stack.counters.drops.ipv4_reassembly_overlap, 2);
    // The rest of the datagram alone never completes it.
    stack.input(fragment(IpProtocol.UDP, udp, 800, 800, 7), 5);
    stack.input(fragment(IpProtocol.UDP, udp, 1600, 408, 7), 6);
    assert.equal(ep.receive(), undefined);
    assertBalanced(stack);
  });

  it("rejects a last fragment that disagrees with the known length", () => {
    const { stack } = makeStack();
    const { udp } = udpDatagram(2000);
    stack.input(fragment(IpProtocol.UDP, udp, 1600, 408), 1);
    stack.input(fragment(IpProtocol.UDP, udp, 800, 400, 0x4242, false), 2);
    assert.equal(stack.counters.drops.ipv4_reassembly_overlap, 1);
    assert.equal(stack.reassembler.datagrams, 0);
  });

  it("refuses bad fragment lengths, tiny TCP fragments and datagrams over 65535 bytes", () => {
    const { stack } = makeStack();
    const data = new Uint8Array(64);
    stack.input(fragment(IpProtocol.UDP, data, 0, 12, 1, true), 1);
    stack.input(fragment(IpProtocol.UDP, new Uint8Array(0), 0, 0, 2, true), 1);
    stack.input(fragment(IpProtocol.TCP, data, 8, 16, 3, true), 1);
    const far = new Uint8Array(65528 + 16);
    stack.input(fragment(IpProtocol.UDP, far, 65528, 16, 4, false), 1);
    const d = stack.counters.drops;
    assert.equal(d.ipv4_fragment_bad_length, 2);
    assert.equal(d.ipv4_fragment_tiny, 1);
    assert.equal(d.ipv4_reassembly_too_big, 1);
    assert.equal(stack.reassembler.datagrams, 0);
    assertBalanced(stack);
  });

  it("times out after 30 s with ICMP time exceeded (code 1) quoting the first fragment", () => {
    const { stack, link } = makeStack();
    const { udp } = udpDatagram(3000);
    const first = fragment(IpProtocol.UDP, udp, 0, 1480);
    stack.input(first, 1000);
    stack.input(fragment(IpProtocol.UDP, udp, 2960, 48), 2000);
    assert.equal(stack.nextDeadline(), 31_000);
    stack.poll(30_999);
    assert.equal(link.length, 0);
    stack.poll(31_000);
    assert.equal(stack.reassembler.stats.timedOut, 1);
    assert.equal(stack.reassembler.bytesHeld, 0);
    assert.equal(stack.reassembler.nextDeadline(), undefined);
    const frames = link.drain();
    assert.equal(frames.length, 1);
    // The quote: the first fragment's header and data, up to 576 bytes in all.
    const quote = first.subarray(ETHERNET_HEADER_LEN, ETHERNET_HEADER_LEN + 548);
    const icmpNoSum = new Uint8Array(8 + quote.length);
    icmpNoSum.set([11, 1, 0, 0, 0, 0, 0, 0]);
    icmpNoSum.set(quote, 8);
    const sum = internetChecksum(icmpNoSum);
    const ipNoSum = Uint8Array.from(
      ("45000240" + "0001" + "0000" + "4001" + "0000" + "0a000202" + "0a00020f").match(/../g)!
        .map((b) => parseInt(b, 16)),
    );
    const ipSum = internetChecksum(ipNoSum);
    const expected = "525400123456" + "020000000002" + "0800" + hex(ipNoSum.subarray(0, 10)) +
      u16(ipSum) + hex(ipNoSum.subarray(12)) + "0b01" + u16(sum) + "00000000" + hex(quote);
    assert.equal(hex(frames[0]), expected);
    assert.equal(stack.icmpErrorStats.sent, 1);
  });

  it("times out silently when the first fragment never came", () => {
    const { stack, link } = makeStack({ timeoutMs: 5000 });
    const { udp } = udpDatagram(3000);
    stack.input(fragment(IpProtocol.UDP, udp, 1480, 1480), 0);
    assert.equal(stack.reassembler.nextDeadline(), 5000);
    stack.poll(5000);
    assert.equal(link.length, 0);
    assert.equal(stack.reassembler.stats.timedOut, 1);
  });

  it("rate-limits time-exceeded errors with the shared ICMP token bucket", () => {
    const { stack, link } = new StackHarness({ icmpErrorsPerSecond: 2, seed: 1 });
    const { udp } = udpDatagram(3000);
    for (let id = 1; id <= 3; id++) stack.input(fragment(IpProtocol.UDP, udp, 0, 1480, id), 0);
    stack.poll(30_000);
    assert.equal(link.drain().length, 2);
    assert.equal(stack.icmpErrorStats.rateLimited, 1);
  });

  it("enforces the byte budget, the datagram count and the fragments per datagram", () => {
    const { stack } = makeStack({ maxBytes: 2000, maxDatagrams: 2, maxFragments: 3 });
    const { udp } = udpDatagram(4000);
    stack.input(fragment(IpProtocol.UDP, udp, 0, 1480, 1), 0);
    stack.input(fragment(IpProtocol.UDP, udp, 0, 1480, 2), 0); // over 2000 bytes
    assert.equal(stack.counters.drops.ipv4_reassembly_full, 1);
    stack.input(fragment(IpProtocol.UDP, udp, 0, 8, 3), 0);
    stack.input(fragment(IpProtocol.UDP, udp, 0, 8, 4), 0); // a third datagram
    assert.equal(stack.counters.drops.ipv4_reassembly_full, 2);
    assert.equal(stack.reassembler.datagrams, 2);
    stack.input(fragment(IpProtocol.UDP, udp, 16, 8, 3), 0);
    stack.input(fragment(IpProtocol.UDP, udp, 32, 8, 3), 0);
    stack.input(fragment(IpProtocol.UDP, udp, 48, 8, 3), 0); // a fourth fragment of ident 3
    assert.equal(stack.counters.drops.ipv4_reassembly_full, 3);
    assert.equal(stack.reassembler.bytesHeld, 1480 + 24);
    assertBalanced(stack);
  });

  it("answers a 3000-byte ping sent in fragments with a fragmented echo reply", () => {
    const { stack, link } = makeStack();
    const data = new Uint8Array(3000);
    for (let i = 0; i < data.length; i++) data[i] = i & 0xff;
    const req: Icmpv4Repr = { type: "echo_request", ident: 0x77, seqNo: 3, data };
    const icmp = new Uint8Array(Icmpv4Repr.bufferLen(req));
    Icmpv4Repr.emit(req, icmp);
    stack.input(fragment(IpProtocol.ICMP, icmp, 1480, 1480), 1);
    stack.input(fragment(IpProtocol.ICMP, icmp, 2960, 48), 1);
    stack.input(fragment(IpProtocol.ICMP, icmp, 0, 1480), 1);
    const frames = link.drain();
    assert.equal(frames.length, 3);
    const decoded = frames.map(decodeIp);
    assert.deepEqual(
      decoded.map((d) => [d.ip.fragmentOffset, d.ip.moreFragments, d.payload.length]),
      [
        [0, true, 1480],
        [1480, true, 1480],
        [2960, false, 48],
      ],
    );
    assert.ok(decoded.every((d) => d.ip.ident === decoded[0].ip.ident && !d.ip.dontFragment));
    // Reassembled on the peer's side, it is the echo reply with the same data.
    const peer = new Ipv4Reassembler();
    let whole: Uint8Array | undefined;
    for (const d of decoded) {
      const pkt = Ipv4Packet.parse(d.packet);
      assert.ok(pkt.ok);
      const r = peer.input(pkt.value, false, 0);
      if (r.kind === "complete") whole = r.datagram;
    }
    assert.ok(whole);
    const eth = new Uint8Array(ETHERNET_HEADER_LEN + whole.length);
    EthernetRepr.emit({ dst: PEER_MAC, src: STACK_MAC, etherType: 0x0800 }, eth);
    eth.set(whole, ETHERNET_HEADER_LEN);
    const reply = decodeIcmp(eth);
    assert.equal(reply.icmp.type, "echo_reply");
    if (reply.icmp.type !== "echo_reply") return;
    assert.equal(reply.icmp.ident, 0x77);
    assert.equal(reply.icmp.seqNo, 3);
    assert.deepEqual(reply.icmp.data, data);
    assertBalanced(stack);
  });

  it("answers a reassembled datagram to a closed port with port unreachable", () => {
    const { stack, link } = makeStack();
    const { udp } = udpDatagram(1000, 9);
    stack.input(fragment(IpProtocol.UDP, udp, 0, 504), 1);
    stack.input(fragment(IpProtocol.UDP, udp, 504, 504), 1);
    const [f] = link.drain();
    const e = decodeIcmp(f);
    assert.equal(e.icmp.type, "dest_unreachable");
    // The quote is the reassembled datagram: total length 1028, no fragment bits.
    assert.equal(hex(e.icmp.data.subarray(2, 8)), "0404" + "4242" + "0000");
    assert.equal(stack.counters.drops.udp_port_closed, 1);
    assertBalanced(stack);
  });

  it("does not fragment UDP on output", () => {
    const { stack } = makeStack({}, 576);
    assert.equal(stack.sendIpv4(PEER_IP, IpProtocol.UDP, new Uint8Array(600), 0), false);
    assert.equal(stack.counters.txDrops.ipv4_exceeds_mtu, 1);
  });
});

describe("IPv4 reassembly owns and pays for what it holds", () => {
  const quota = (maxBufferedBytes: number) =>
    createSessionQuota({ maxBufferedBytes, maxSockets: 8 });

  it("copies fragments out of their frames: reusing a frame's buffer changes nothing", () => {
    const { stack } = makeStack();
    const ep = stack.udp.bind(7000);
    const { udp, payload } = udpDatagram(2000);
    const first = fragment(IpProtocol.UDP, udp, 0, 1000);
    stack.input(first, 1);
    first.fill(0xee); // the link reuses the buffer
    stack.input(fragment(IpProtocol.UDP, udp, 1000, 1008), 2);
    assert.deepEqual(ep.receive()?.payload, payload);
  });

  it("charges bufferCost of each copy (and of the first header) to the session, released at completion", () => {
    const q = quota(1 << 20);
    const h = new StackHarness({ quota: q });
    const ep = h.stack.udp.bind(7000);
    const { udp } = udpDatagram(3000);
    h.input(fragment(IpProtocol.UDP, udp, 1480, 1480));
    assert.equal(q.memory.used, bufferCost(1480));
    h.input(fragment(IpProtocol.UDP, udp, 0, 1480));
    assert.equal(q.memory.used, 2 * bufferCost(1480) + bufferCost(20));
    h.input(fragment(IpProtocol.UDP, udp, 2960, 48));
    // Done: the reassembler holds nothing; the UDP queue holds the datagram's copy.
    assert.equal(h.stack.reassembler.datagrams, 0);
    assert.equal(q.memory.used, bufferCost(3000));
    ep.receive();
    assert.equal(q.memory.used, 0);
  });

  it("releases the charge when a datagram times out or is discarded for an overlap", () => {
    const q = quota(1 << 20);
    const h = new StackHarness({ quota: q });
    const { udp } = udpDatagram(3000);
    h.input(fragment(IpProtocol.UDP, udp, 0, 1480, 1), 0);
    h.input(fragment(IpProtocol.UDP, udp, 0, 1480, 2), 0);
    h.input(fragment(IpProtocol.UDP, udp, 8, 1480, 2), 0); // overlaps: ident 2 is discarded
    assert.equal(h.drops.ipv4_reassembly_overlap, 1);
    assert.equal(q.memory.used, bufferCost(1480) + bufferCost(20));
    h.stack.poll(30_000);
    assert.equal(h.stack.reassembler.stats.timedOut, 1);
    assert.equal(q.memory.used, 0);
  });

  it("drops a fragment the session's quota refuses as ipv4_reassembly_quota, beside its own limits", () => {
    const q = quota(bufferCost(1480) + bufferCost(20) + bufferCost(8));
    const h = new StackHarness({ quota: q });
    const { udp } = udpDatagram(3000);
    h.input(fragment(IpProtocol.UDP, udp, 0, 1480, 1));
    h.input(fragment(IpProtocol.UDP, udp, 0, 1480, 2)); // a second datagram: no room
    assert.equal(h.drops.ipv4_reassembly_quota, 1);
    assert.equal(h.stack.reassembler.datagrams, 1, "the refused fragment started nothing");
    assert.equal(h.stack.reassembler.bytesHeld, 1480);
    assert.equal(q.memory.stats().refused, 1);
    assert.ok(h.balanced);
  });
});

describe("Ipv4Reassembler", () => {
  it("rejects limits that are not positive integers", () => {
    assert.throws(() => new Ipv4Reassembler({ timeoutMs: 0 }), RangeError);
    assert.throws(() => new Ipv4Reassembler({ maxBytes: 1.5 }), RangeError);
  });
});
