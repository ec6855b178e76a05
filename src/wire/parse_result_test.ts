import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { fail, ok, type ParseResult, WIRE_DROP_REASONS } from "./parse_result.ts";
import { EthernetFrame } from "./ethernet.ts";
import { ArpPacket, ArpRepr } from "./arp.ts";
import { Ipv4Packet, Ipv4Repr } from "./ipv4.ts";
import { Icmpv4Packet, Icmpv4Repr } from "./icmpv4.ts";
import { UdpPacket, UdpRepr } from "./udp.ts";
import { TcpPacket, TcpRepr } from "./tcp.ts";
import { Ipv6Packet } from "./ipv6.ts";
import { walkIpv6Headers } from "./ipv6_ext.ts";
import { Icmpv6Packet, Icmpv6Repr } from "./icmpv6.ts";
import { NdpRepr } from "./ndp.ts";
import { MldRepr } from "./mld.ts";
import { GOLDEN_ECHO, GOLDEN_NS } from "./_ipv6_test_util.ts";
import { checksumAdd, checksumFinish, ipv4PseudoHeaderSum } from "./checksum.ts";
import {
  GOLDEN_ARP_REQUEST,
  GOLDEN_PING,
  GOLDEN_SYN,
  GOLDEN_UDP,
  hex,
  LINUX_IP,
  STACK_IP,
} from "./_test_util.ts";

function reasonOf<T>(result: ParseResult<T>): string {
  assert.equal(result.ok, false, "expected a rejection");
  return result.ok ? "" : result.reason;
}

function value<T>(result: ParseResult<T>): T {
  if (!result.ok) throw new Error(`expected ok, got ${result.reason}`);
  return result.value;
}

function mutate(bytes: Uint8Array, offset: number, ...values: number[]): Uint8Array {
  const copy = bytes.slice();
  copy.set(values, offset);
  return copy;
}

/** A segment whose only option claims a length of 0, with a valid checksum. */
function badOptionSegment(): Uint8Array {
  const seg = hex("0001 0002 00000000 00000000 6000 0000 0000 0000 0200 0000");
  const sum = checksumAdd(ipv4PseudoHeaderSum(LINUX_IP, STACK_IP, 6, seg.length), seg);
  const c = checksumFinish(sum);
  seg[16] = c >>> 8;
  seg[17] = c & 0xff;
  return seg;
}

describe("ParseResult", () => {
  it("ok and fail build the two variants", () => {
    assert.deepEqual(ok(5), { ok: true, value: 5 });
    assert.deepEqual(fail<number>("udp_truncated"), { ok: false, reason: "udp_truncated" });
  });
});

describe("WIRE_DROP_REASONS", () => {
  it("lists unique snake_case reasons with a protocol prefix", () => {
    assert.equal(new Set(WIRE_DROP_REASONS).size, WIRE_DROP_REASONS.length);
    for (const reason of WIRE_DROP_REASONS) {
      assert.match(reason, /^(ethernet|arp|ipv4|icmp|udp|tcp|ipv6|icmpv6|ndp|mld)_[a-z0-9_]+$/);
    }
    assert.ok(Object.isFrozen(WIRE_DROP_REASONS));
  });

  it("every listed reason is produced by some input, and nothing else is", () => {
    const arp = GOLDEN_ARP_REQUEST.subarray(14);
    const ip = GOLDEN_PING.subarray(14);
    const icmp = ip.subarray(20);
    const udp = GOLDEN_UDP.subarray(34);
    const tcp = GOLDEN_SYN.subarray(34);
    const produced = [
      reasonOf(EthernetFrame.parse(new Uint8Array(13))),
      reasonOf(EthernetFrame.parse(mutate(GOLDEN_ARP_REQUEST, 12, 0x05, 0xdc))),
      reasonOf(ArpPacket.parse(arp.subarray(0, 27))),
      reasonOf(ArpPacket.parse(mutate(arp, 0, 0, 6))),
      reasonOf(ArpPacket.parse(mutate(arp, 2, 0x86, 0xdd))),
      reasonOf(ArpRepr.parse(value(ArpPacket.parse(mutate(arp, 6, 0, 9))))),
      reasonOf(Ipv4Packet.parse(ip.subarray(0, 19))),
      reasonOf(Ipv4Packet.parse(mutate(ip, 0, 0x65))),
      reasonOf(Ipv4Packet.parse(mutate(ip, 0, 0x44))),
      reasonOf(Ipv4Packet.parse(mutate(ip, 2, 0x01, 0x00))),
      reasonOf(Ipv4Repr.parse(value(Ipv4Packet.parse(mutate(ip, 8, 1))))),
      reasonOf(Icmpv4Packet.parse(icmp.subarray(0, 7))),
      reasonOf(Icmpv4Repr.parse(value(Icmpv4Packet.parse(mutate(icmp, 4, 0))))),
      reasonOf(UdpPacket.parse(udp.subarray(0, 7))),
      reasonOf(UdpPacket.parse(mutate(udp, 4, 0, 7))),
      reasonOf(UdpRepr.parse(value(UdpPacket.parse(udp)), LINUX_IP, LINUX_IP)),
      reasonOf(TcpPacket.parse(tcp.subarray(0, 19))),
      reasonOf(TcpPacket.parse(mutate(tcp, 12, 0x40))),
      reasonOf(TcpRepr.parse(value(TcpPacket.parse(tcp)), STACK_IP, LINUX_IP + 1)),
      reasonOf(TcpRepr.parse(value(TcpPacket.parse(badOptionSegment())), LINUX_IP, STACK_IP)),
      ...ipv6Reasons(),
    ];
    assert.deepEqual(new Set(produced), new Set(WIRE_DROP_REASONS));
  });
});

/** One input per IPv6, extension-header, ICMPv6, NDP and MLD reason. */
function ipv6Reasons(): string[] {
  const ip = GOLDEN_ECHO.subarray(14);
  const icmp = ip.subarray(40);
  const ns = GOLDEN_NS.subarray(54);
  /** The golden packet with `ext` (hex) between the fixed header and the ICMPv6 message. */
  const chain = (first: number, ext: string) => {
    const e = hex(ext);
    const b = new Uint8Array(ip.length + e.length);
    b.set(ip.subarray(0, 40));
    b.set(e, 40);
    b.set(icmp, 40 + e.length);
    b[4] = (b.length - 40) >>> 8;
    b[5] = (b.length - 40) & 0xff;
    b[6] = first;
    return reasonOf(walkIpv6Headers(value(Ipv6Packet.parse(b))));
  };
  const ndp = (bytes: Uint8Array) => reasonOf(NdpRepr.parse(value(Icmpv6Packet.parse(bytes))));
  return [
    reasonOf(Ipv6Packet.parse(ip.subarray(0, 39))),
    reasonOf(Ipv6Packet.parse(mutate(ip, 0, 0x45))),
    reasonOf(Ipv6Packet.parse(ip.subarray(0, ip.length - 1))),
    chain(60, "3a05 0104 00000000"),
    chain(60, "3c00 0104 00000000".repeat(8) + "3a00 0104 00000000"),
    chain(60, "3a80" + "00".repeat(1030)),
    chain(60, "0000 0104 00000000"),
    chain(60, "3a00 0105 00000000"),
    chain(60, "3a00 8e02 0000 0100"),
    chain(43, "3a00 0001 00000000"),
    reasonOf(Icmpv6Packet.parse(icmp.subarray(0, 7))),
    reasonOf(
      Icmpv6Repr.parse(
        value(Icmpv6Packet.parse(mutate(icmp, 4, 0))),
        value(Ipv6Packet.parse(ip)).src,
        value(Ipv6Packet.parse(ip)).dst,
      ),
    ),
    ndp(ns.subarray(0, 20)),
    ndp(mutate(ns, 1, 1)),
    ndp(mutate(ns, 25, 0)),
    ndp(hex("87000000 00000000 fd000000000000000000000000000002" + "fe01000000000000".repeat(65))),
    ndp(mutate(ns, 8, 0xff)),
    ndp(icmp),
    reasonOf(MldRepr.parse(value(Icmpv6Packet.parse(hex("83000000 00000000"))))),
    reasonOf(MldRepr.parse(value(Icmpv6Packet.parse(icmp)))),
  ];
}
