import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Icmpv4Repr, IpProtocol, parseIpv4Address, parseMacAddress } from "../wire/mod.ts";
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
      what: "an unknown EtherType (LLDP)",
      frame: () => ethFrame(0x88cc, new Uint8Array(40)),
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

describe("Stack.checkInvariants", () => {
  it("finds an ARP entry that resolves a martian or off-link address, which ARP input never makes", () => {
    const h = makeStack();
    h.input(arpFrame(), 0);
    assert.deepEqual(h.stack.checkInvariants(), []);
    h.stack.arp.update(parseIpv4Address("10.0.2.255"), PEER_MAC, 0);
    h.stack.arp.update(parseIpv4Address("192.168.1.1"), PEER_MAC, 0);
    assert.deepEqual(h.stack.checkInvariants(), [
      "ARP cache resolves 10.0.2.255, not an on-link neighbour",
      "ARP cache resolves 192.168.1.1, not an on-link neighbour",
    ]);
  });
});
