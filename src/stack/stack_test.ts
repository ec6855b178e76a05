import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ArpOperation,
  Icmpv4Repr,
  IpProtocol,
  parseIpv4Address,
  parseMacAddress,
} from "../wire/mod.ts";
import { ChannelLink } from "./channel_link.ts";
import { Stack } from "./stack.ts";
import {
  arpFrame,
  echoRequest,
  ethFrame,
  fromHex,
  hex,
  internetChecksum,
  ipFrame,
  PEER_IP,
  PEER_MAC,
  STACK_IP,
  STACK_MAC,
  StackHarness,
} from "./_stack_test_util.ts";

/** A stack that knows nobody yet (ARP tests start from an empty cache). */
function makeStack(mtu = 1500) {
  return new StackHarness({ mtu, knowPeer: false });
}

describe("Stack: ARP (RFC 826)", () => {
  it("answers a request for its address with the exact reply frame", () => {
    const h = makeStack();
    h.input(arpFrame(), 0);
    const out = h.drain();
    assert.equal(out.length, 1);
    // dst peer, src stack, ARP; htype 1 ptype 0800 hlen 6 plen 4 op 2; sender stack; target peer; pad to 60.
    assert.equal(
      hex(out[0]),
      "525400123456" + "020000000002" + "0806" + "0001" + "0800" + "06" + "04" + "0002" +
        "020000000002" + "0a000202" + "525400123456" + "0a00020f" + "00".repeat(18),
    );
    assert.equal(h.stack.counters.rxHandled, 1);
  });

  it("learns the sender of a request addressed to it (merge rule)", () => {
    const h = makeStack();
    h.input(arpFrame(), 5);
    assert.deepEqual(h.stack.arp.lookup(PEER_IP, 10), PEER_MAC);
  });

  it("does not create an entry from a request for another address, and counts it", () => {
    const h = makeStack();
    h.input(arpFrame({ targetIp: parseIpv4Address("10.0.2.3") }), 0);
    assert.equal(h.link.length, 0);
    assert.equal(h.stack.arp.lookup(PEER_IP, 0), undefined);
    assert.equal(h.drops.arp_not_for_us, 1);
  });

  it("refreshes an existing entry from a gratuitous ARP not addressed to it", () => {
    const h = makeStack();
    h.input(arpFrame(), 0);
    const newMac = parseMacAddress("52:54:00:aa:bb:cc");
    h.input(arpFrame({ senderMac: newMac, targetIp: PEER_IP }), 100);
    assert.deepEqual(h.stack.arp.lookup(PEER_IP, 100), newMac);
  });

  it("ignores an ARP whose sender claims the stack's own address", () => {
    const h = makeStack();
    h.input(arpFrame({ senderIp: STACK_IP, targetIp: STACK_IP }), 0);
    assert.equal(h.link.length, 0);
    assert.equal(h.drops.arp_address_conflict, 1);
  });

  it("answers an ARP probe (sender 0.0.0.0) without learning from it (RFC 5227 §2.1.1)", () => {
    const h = makeStack();
    h.input(arpFrame({ senderIp: 0 }), 0);
    assert.equal(h.drain().length, 1);
    assert.equal(h.stack.arp.size, 0);
  });

  it("announces itself with a gratuitous ARP request", () => {
    const h = makeStack();
    h.stack.announce();
    const [f] = h.drain();
    assert.equal(
      hex(f.subarray(0, 42)),
      "ffffffffffff" + "020000000002" + "0806" + "000108000604" + "0001" + "020000000002" +
        "0a000202" + "000000000000" + "0a000202",
    );
  });

  it("queues a packet while resolving, retries the request each second, gives up after 3", () => {
    const { stack, link } = makeStack();
    assert.equal(stack.sendIpv4(PEER_IP, IpProtocol.UDP, new Uint8Array(8), 0), true);
    let out = link.drain();
    assert.equal(out.length, 1, "one ARP request");
    assert.equal(hex(out[0].subarray(12, 14)), "0806");
    assert.equal(stack.nextDeadline(), 1000);
    stack.poll(999);
    assert.equal(link.length, 0);
    stack.poll(1000);
    stack.poll(2000);
    out = link.drain();
    assert.equal(out.length, 2, "two retries");
    stack.poll(3000);
    assert.equal(link.length, 0);
    assert.equal(stack.counters.txDrops.arp_unresolved, 1);
    assert.equal(stack.arp.size, 0);
    assert.equal(stack.nextDeadline(), undefined);
  });

  it("sends the queued packet once the reply arrives", () => {
    const h = makeStack();
    h.stack.sendIpv4(PEER_IP, IpProtocol.UDP, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), 0);
    h.drain();
    h.input(arpFrame({ operation: ArpOperation.REPLY, dstMac: STACK_MAC }), 10);
    const out = h.drain();
    assert.equal(out.length, 1);
    assert.equal(hex(out[0].subarray(0, 14)), "525400123456020000000002" + "0800");
    assert.equal(hex(out[0].subarray(34)), "0102030405060708");
  });

  it("bounds the frames queued per unresolved neighbour", () => {
    const { stack, link } = makeStack();
    let accepted = 0;
    for (let i = 0; i < 40; i++) {
      if (stack.sendIpv4(PEER_IP, IpProtocol.UDP, new Uint8Array(8), 0)) accepted++;
    }
    assert.equal(accepted, 16);
    assert.equal(stack.counters.txDrops.arp_queue_full, 24);
    assert.equal(link.drain().length, 1);
  });
});

describe("Stack: IPv4 and ICMP echo (RFC 791, RFC 792, RFC 1122 §3.2)", () => {
  it("answers an echo request with the exact echo reply", () => {
    const h = makeStack();
    h.input(arpFrame(), 0);
    h.drain();
    const data = fromHex("000102030405060708090a0b0c0d0e0f");
    h.input(ipFrame(IpProtocol.ICMP, echoRequest(0x4242, 7, data)), 1);
    const [reply] = h.drain();
    assert.ok(reply);
    assert.equal(reply.length, 14 + 20 + 8 + 16);
    assert.equal(hex(reply.subarray(0, 14)), "525400123456020000000002" + "0800");
    // IPv4: v4 ihl5, tos 0, len 44, ident 1 (first packet), no flags, ttl 64, ICMP, checksum, src, dst.
    const ip = reply.subarray(14, 34);
    assert.equal(hex(ip.subarray(0, 10)), "4500002c000100004001");
    assert.equal(hex(ip.subarray(12, 20)), "0a0002020a00020f");
    const expected = Icmpv4Repr.bufferLen({ type: "echo_reply", ident: 0x4242, seqNo: 7, data });
    const icmp = new Uint8Array(expected);
    Icmpv4Repr.emit({ type: "echo_reply", ident: 0x4242, seqNo: 7, data }, icmp);
    assert.equal(hex(reply.subarray(34)), hex(icmp));
    assert.equal(hex(reply.subarray(34, 38)), "0000" + hex(icmp.subarray(2, 4)));
    assert.equal(internetChecksum(ip), 0, "the reply's IP header checksum verifies");
  });

  it("ignores an echo request sent to the broadcast address (RFC 1122 §3.2.2.6)", () => {
    const h = makeStack();
    h.input(
      ipFrame(IpProtocol.ICMP, echoRequest(1, 1, new Uint8Array(4)), {
        dst: parseIpv4Address("10.0.2.255"),
      }),
      0,
    );
    assert.equal(h.link.length, 0);
    assert.equal(h.drops.icmp_broadcast_echo_ignored, 1);
  });

  const echo = echoRequest(1, 1, new Uint8Array(4));
  /** Frames the stack drops without a word, each with its reason. */
  const silentDrops: Array<{ what: string; frame: () => Uint8Array; reason: string }> = [
    {
      what: "a packet for another address",
      frame: () => ipFrame(IpProtocol.ICMP, echo, { dst: parseIpv4Address("10.0.2.3") }),
      reason: "ipv4_not_for_us",
    },
    {
      what: "a packet from a multicast source",
      frame: () => ipFrame(IpProtocol.ICMP, echo, { src: parseIpv4Address("224.0.0.1") }),
      reason: "ipv4_bad_source",
    },
    {
      what: "a packet from the stack's own address",
      frame: () => ipFrame(IpProtocol.ICMP, echo, { src: STACK_IP }),
      reason: "ipv4_bad_source",
    },
    {
      what: "a non-last fragment whose length is no multiple of 8",
      frame: () => ipFrame(IpProtocol.ICMP, echo, { moreFragments: true }),
      reason: "ipv4_fragment_bad_length",
    },
    {
      what: "an IPv4 header with a bad checksum",
      frame: () => {
        const f = ipFrame(IpProtocol.ICMP, echo);
        f[14 + 10] ^= 0xff;
        return f;
      },
      reason: "ipv4_bad_checksum",
    },
    {
      what: "a frame for another MAC",
      frame: () => ipFrame(IpProtocol.ICMP, echo, { dstMac: PEER_MAC }),
      reason: "ethernet_not_for_us",
    },
    {
      what: "a frame longer than the MTU + 14",
      frame: () => new Uint8Array(14 + 1501),
      reason: "ethernet_oversized",
    },
    {
      what: "an unknown EtherType (IPv6)",
      frame: () => ethFrame(0x86dd, new Uint8Array(40)),
      reason: "ethernet_unsupported_ethertype",
    },
  ];
  for (const c of silentDrops) {
    it(`drops ${c.what} as ${c.reason}, silently`, () => {
      const h = makeStack();
      h.input(c.frame(), 0);
      assert.equal(h.link.length, 0);
      assert.equal(h.drops[c.reason], 1);
      assert.equal(h.stack.counters.totalDrops(), 1);
      assert.equal(h.stack.counters.rxFrames, 1);
      assert.ok(h.balanced);
    });
  }

  it("answers an unknown protocol with protocol unreachable (here first an ARP request)", () => {
    const h = makeStack();
    h.input(ipFrame(99, echo), 0);
    assert.equal(h.link.length, 1);
    assert.equal(h.drops.ipv4_unsupported_protocol, 1);
  });

  it("refuses to send an IP packet larger than the MTU, and to send off-link", () => {
    const { stack, link } = makeStack(576);
    assert.equal(stack.sendIpv4(PEER_IP, IpProtocol.UDP, new Uint8Array(557), 0), false);
    assert.equal(
      stack.sendIpv4(parseIpv4Address("8.8.8.8"), IpProtocol.UDP, new Uint8Array(8), 0),
      false,
    );
    assert.equal(link.length, 0);
    assert.equal(stack.counters.txDrops.ipv4_exceeds_mtu, 1);
    assert.equal(stack.counters.txDrops.ipv4_no_route, 1);
  });

  it("rejects an invalid configuration with a RangeError naming the field", () => {
    const link = new ChannelLink();
    const ipv4 = { address: STACK_IP, prefixLength: 24 };
    const bad: Array<[Partial<ConstructorParameters<typeof Stack>[0]>, RegExp]> = [
      [{ mtu: 40 }, /mtu must be an integer in 68\.\.65535, got 40/],
      [
        { ipv4: { address: STACK_IP, prefixLength: 31 } },
        /prefixLength must be an integer in 1\.\.30, got 31/,
      ],
      [{ mac: parseMacAddress("01:00:5e:00:00:01") }, /mac must be a 6-byte unicast address/],
      [{ icmpErrorsPerSecond: -1 }, /icmpErrorsPerSecond must be an integer >= 0, got -1/],
    ];
    for (const [change, message] of bad) {
      assert.throws(
        () => new Stack({ mac: STACK_MAC, ipv4, mtu: 1500, ...change }, { link }),
        (e) => e instanceof RangeError && message.test(e.message),
      );
    }
  });
});
