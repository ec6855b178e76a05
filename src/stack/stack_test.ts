import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ArpOperation,
  ArpRepr,
  ETHERNET_HEADER_LEN,
  EthernetRepr,
  EtherType,
  Icmpv4Repr,
  IpProtocol,
  Ipv4Repr,
  parseIpv4Address,
  parseMacAddress,
} from "../wire/mod.ts";
import { ChannelLink } from "./channel_link.ts";
import { Stack } from "./stack.ts";

const STACK_MAC = parseMacAddress("02:00:00:00:00:02");
const PEER_MAC = parseMacAddress("52:54:00:12:34:56");
const STACK_IP = parseIpv4Address("10.0.2.2");
const PEER_IP = parseIpv4Address("10.0.2.15");

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function fromHex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function makeStack(mtu = 1500) {
  const link = new ChannelLink(64);
  const stack = new Stack({
    mac: STACK_MAC,
    ipv4: { address: STACK_IP, prefixLength: 24 },
    mtu,
  }, { link });
  return { stack, link };
}

function arpFrame(
  op: number,
  senderMac: Uint8Array,
  senderIp: number,
  targetIp: number,
  dst?: Uint8Array,
) {
  const frame = new Uint8Array(42);
  EthernetRepr.emit({
    dst: dst ?? parseMacAddress("ff:ff:ff:ff:ff:ff"),
    src: senderMac,
    etherType: EtherType.ARP,
  }, frame);
  ArpRepr.emit({
    operation: op,
    senderMac,
    senderIp,
    targetMac: new Uint8Array(6),
    targetIp,
  }, frame.subarray(ETHERNET_HEADER_LEN));
  return frame;
}

function ipFrame(
  src: number,
  dst: number,
  protocol: number,
  payload: Uint8Array,
  dstMac = STACK_MAC,
) {
  const frame = new Uint8Array(ETHERNET_HEADER_LEN + 20 + payload.length);
  EthernetRepr.emit({ dst: dstMac, src: PEER_MAC, etherType: EtherType.IPV4 }, frame);
  Ipv4Repr.emit(
    { src, dst, protocol, payloadLen: payload.length, ttl: 64, ident: 0x1234, dontFragment: true },
    frame.subarray(ETHERNET_HEADER_LEN),
  );
  frame.set(payload, ETHERNET_HEADER_LEN + 20);
  return frame;
}

function echoRequest(ident: number, seqNo: number, data: Uint8Array) {
  const repr: Icmpv4Repr = { type: "echo_request", ident, seqNo, data };
  const buf = new Uint8Array(Icmpv4Repr.bufferLen(repr));
  Icmpv4Repr.emit(repr, buf);
  return buf;
}

describe("Stack: ARP (RFC 826)", () => {
  it("answers a request for its address with the exact reply frame", () => {
    const { stack, link } = makeStack();
    stack.input(arpFrame(ArpOperation.REQUEST, PEER_MAC, PEER_IP, STACK_IP), 0);
    const out = link.drain();
    assert.equal(out.length, 1);
    // dst peer, src stack, ARP; htype 1 ptype 0800 hlen 6 plen 4 op 2; sender stack; target peer; pad to 60.
    assert.equal(
      hex(out[0]),
      "525400123456" + "020000000002" + "0806" + "0001" + "0800" + "06" + "04" + "0002" +
        "020000000002" + "0a000202" + "525400123456" + "0a00020f" + "00".repeat(18),
    );
    assert.equal(stack.counters.rxHandled, 1);
  });

  it("learns the sender of a request addressed to it (merge rule)", () => {
    const { stack } = makeStack();
    stack.input(arpFrame(ArpOperation.REQUEST, PEER_MAC, PEER_IP, STACK_IP), 5);
    assert.deepEqual(stack.arp.lookup(PEER_IP, 10), PEER_MAC);
  });

  it("does not create an entry from a request for another address, and counts it", () => {
    const { stack, link } = makeStack();
    stack.input(arpFrame(ArpOperation.REQUEST, PEER_MAC, PEER_IP, parseIpv4Address("10.0.2.3")), 0);
    assert.equal(link.length, 0);
    assert.equal(stack.arp.lookup(PEER_IP, 0), undefined);
    assert.equal(stack.counters.drops.arp_not_for_us, 1);
  });

  it("refreshes an existing entry from a gratuitous ARP not addressed to it", () => {
    const { stack } = makeStack();
    stack.input(arpFrame(ArpOperation.REQUEST, PEER_MAC, PEER_IP, STACK_IP), 0);
    const newMac = parseMacAddress("52:54:00:aa:bb:cc");
    stack.input(arpFrame(ArpOperation.REQUEST, newMac, PEER_IP, PEER_IP), 100);
    assert.deepEqual(stack.arp.lookup(PEER_IP, 100), newMac);
  });

  it("ignores an ARP whose sender claims the stack's own address", () => {
    const { stack, link } = makeStack();
    stack.input(arpFrame(ArpOperation.REQUEST, PEER_MAC, STACK_IP, STACK_IP), 0);
    assert.equal(link.length, 0);
    assert.equal(stack.counters.drops.arp_address_conflict, 1);
  });

  it("answers an ARP probe (sender 0.0.0.0) without learning from it (RFC 5227 §2.1.1)", () => {
    const { stack, link } = makeStack();
    stack.input(arpFrame(ArpOperation.REQUEST, PEER_MAC, 0, STACK_IP), 0);
    assert.equal(link.drain().length, 1);
    assert.equal(stack.arp.size, 0);
  });

  it("announces itself with a gratuitous ARP request", () => {
    const { stack, link } = makeStack();
    stack.announce();
    const [f] = link.drain();
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
    const { stack, link } = makeStack();
    stack.sendIpv4(PEER_IP, IpProtocol.UDP, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), 0);
    link.drain();
    stack.input(arpFrame(ArpOperation.REPLY, PEER_MAC, PEER_IP, STACK_IP, STACK_MAC), 10);
    const out = link.drain();
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
    const { stack, link } = makeStack();
    stack.input(arpFrame(ArpOperation.REQUEST, PEER_MAC, PEER_IP, STACK_IP), 0);
    link.drain();
    const data = fromHex("000102030405060708090a0b0c0d0e0f");
    stack.input(ipFrame(PEER_IP, STACK_IP, IpProtocol.ICMP, echoRequest(0x4242, 7, data)), 1);
    const [reply] = link.drain();
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
  });

  it("ignores an echo request sent to the broadcast address (RFC 1122 §3.2.2.6)", () => {
    const { stack, link } = makeStack();
    stack.input(
      ipFrame(
        PEER_IP,
        parseIpv4Address("10.0.2.255"),
        IpProtocol.ICMP,
        echoRequest(1, 1, new Uint8Array(4)),
      ),
      0,
    );
    assert.equal(link.length, 0);
    assert.equal(stack.counters.drops.icmp_broadcast_echo_ignored, 1);
  });

  it("drops packets for other addresses, from bad sources, fragments, and unknown protocols", () => {
    const { stack, link } = makeStack();
    const echo = echoRequest(1, 1, new Uint8Array(4));
    stack.input(ipFrame(PEER_IP, parseIpv4Address("10.0.2.3"), IpProtocol.ICMP, echo), 0);
    stack.input(ipFrame(parseIpv4Address("224.0.0.1"), STACK_IP, IpProtocol.ICMP, echo), 0);
    stack.input(ipFrame(STACK_IP, STACK_IP, IpProtocol.ICMP, echo), 0);
    const frag = ipFrame(PEER_IP, STACK_IP, IpProtocol.ICMP, echo);
    frag[14 + 6] = 0x20; // more fragments
    frag[14 + 10] = frag[14 + 11] = 0;
    const sum = Ipv4Checksum(frag.subarray(14, 34));
    frag[14 + 10] = sum >> 8;
    frag[14 + 11] = sum & 0xff;
    stack.input(frag, 0);
    assert.equal(link.length, 0);
    // An unknown protocol is answered with protocol unreachable (here first an ARP request).
    stack.input(ipFrame(PEER_IP, STACK_IP, 99, echo), 0);
    assert.equal(link.length, 1);
    const d = stack.counters.drops;
    assert.equal(d.ipv4_not_for_us, 1);
    assert.equal(d.ipv4_bad_source, 2);
    assert.equal(d.ipv4_unsupported_protocol, 1);
    assert.equal(d.ipv4_fragment_bad_length, 1);
  });

  it("drops an IPv4 header with a bad checksum", () => {
    const { stack } = makeStack();
    const f = ipFrame(PEER_IP, STACK_IP, IpProtocol.ICMP, echoRequest(1, 1, new Uint8Array(4)));
    f[14 + 10] ^= 0xff;
    stack.input(f, 0);
    assert.equal(stack.counters.drops.ipv4_bad_checksum, 1);
  });

  it("drops frames for another MAC, oversized frames and unknown EtherTypes", () => {
    const { stack } = makeStack(576);
    const echo = echoRequest(1, 1, new Uint8Array(4));
    stack.input(ipFrame(PEER_IP, STACK_IP, IpProtocol.ICMP, echo, PEER_MAC), 0);
    stack.input(new Uint8Array(14 + 577), 0);
    const v6 = ipFrame(PEER_IP, STACK_IP, IpProtocol.ICMP, echo);
    v6[12] = 0x86;
    v6[13] = 0xdd;
    stack.input(v6, 0);
    const d = stack.counters.drops;
    assert.equal(d.ethernet_not_for_us, 1);
    assert.equal(d.ethernet_oversized, 1);
    assert.equal(d.ethernet_unsupported_ethertype, 1);
    assert.equal(stack.counters.rxFrames, 3);
    assert.equal(stack.counters.rxFrames, stack.counters.rxHandled + stack.counters.totalDrops());
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
    assert.throws(
      () =>
        new Stack({ mac: STACK_MAC, ipv4: { address: STACK_IP, prefixLength: 24 }, mtu: 40 }, {
          link,
        }),
      /mtu must be an integer in 68\.\.65535, got 40/,
    );
    assert.throws(
      () =>
        new Stack({ mac: STACK_MAC, ipv4: { address: STACK_IP, prefixLength: 31 }, mtu: 1500 }, {
          link,
        }),
      /prefixLength/,
    );
  });
});

function Ipv4Checksum(header: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < header.length; i += 2) sum += (header[i] << 8) | header[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
