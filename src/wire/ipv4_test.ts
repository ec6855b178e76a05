import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { formatIpv4Address, parseIpv4Address } from "./address.ts";
import { ETHERNET_HEADER_LEN } from "./ethernet.ts";
import { IpProtocol, IPV4_HEADER_LEN, Ipv4Packet, Ipv4Repr } from "./ipv4.ts";
import { GOLDEN_PING, GOLDEN_SYN, hex, LINUX_IP, STACK_IP } from "./_test_util.ts";
import type { ParseResult } from "./parse_result.ts";

function parsed<T>(result: ParseResult<T>): T {
  if (!result.ok) throw new Error(`expected ok, got ${result.reason}`);
  return result.value;
}

function reason<T>(result: ParseResult<T>): string {
  return result.ok ? "ok" : result.reason;
}

const PING_IP = GOLDEN_PING.subarray(ETHERNET_HEADER_LEN);
/** The frequently cited example header with checksum b861. */
const EXAMPLE_HEADER = hex("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7");

function withFixedChecksum(bytes: Uint8Array): Uint8Array {
  const pkt = parsed(Ipv4Packet.parse(bytes));
  bytes[10] = 0;
  bytes[11] = 0;
  let sum = 0;
  for (let i = 0; i < pkt.headerLen; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  bytes[10] = c >>> 8;
  bytes[11] = c & 0xff;
  return bytes;
}

describe("Ipv4Packet (RFC 791 §3.1)", () => {
  it("parses a Linux ping datagram", () => {
    const pkt = parsed(Ipv4Packet.parse(PING_IP));
    assert.equal(pkt.version, 4);
    assert.equal(pkt.headerLen, 20);
    assert.equal(pkt.dscpEcn, 0);
    assert.equal(pkt.totalLen, 84);
    assert.equal(pkt.ident, 0x3a5c);
    assert.equal(pkt.dontFragment, true);
    assert.equal(pkt.moreFragments, false);
    assert.equal(pkt.fragmentOffset, 0);
    assert.equal(pkt.isFragment, false);
    assert.equal(pkt.ttl, 64);
    assert.equal(pkt.protocol, IpProtocol.ICMP);
    assert.equal(pkt.checksum, 0xe83c);
    assert.equal(formatIpv4Address(pkt.src), "10.0.2.15");
    assert.equal(formatIpv4Address(pkt.dst), "10.0.2.2");
    assert.equal(pkt.header.length, 20);
    assert.equal(pkt.options.length, 0);
    assert.equal(pkt.payload.length, 64);
    assert.equal(pkt.payload[0], 8, "ICMP echo request follows");
    assert.equal(pkt.verifyChecksum(), true);
  });

  it("verifies the example header b861 and detects a flipped bit", () => {
    const header = new Uint8Array(115);
    header.set(EXAMPLE_HEADER);
    assert.equal(parsed(Ipv4Packet.parse(header)).verifyChecksum(), true);
    header[8] ^= 0x01;
    assert.equal(parsed(Ipv4Packet.parse(header)).verifyChecksum(), false);
  });

  it("cuts Ethernet padding at the total length", () => {
    const padded = new Uint8Array(46); // a 40-byte datagram padded to the 46-byte minimum
    const syn = GOLDEN_SYN.subarray(ETHERNET_HEADER_LEN);
    const short = syn.slice(0, 40);
    short[2] = 0;
    short[3] = 40;
    padded.set(withFixedChecksum(short));
    padded.fill(0xaa, 40);
    const pkt = parsed(Ipv4Packet.parse(padded));
    assert.equal(pkt.bytes.length, 40);
    assert.equal(pkt.payload.length, 20);
    assert.equal(pkt.payload.byteOffset, padded.byteOffset + 20);
    assert.ok(!pkt.payload.includes(0xaa));
  });

  it("skips header options (IHL 5..15) without interpreting them", () => {
    // IHL 6: a 4-byte Router Alert option (RFC 2113), then 4 payload bytes.
    const bytes = withFixedChecksum(
      hex("4600 001c 0001 0000 4011 0000 0a00020f 0a000202 94040000 01020304"),
    );
    const pkt = parsed(Ipv4Packet.parse(bytes));
    assert.equal(pkt.headerLen, 24);
    assert.deepEqual(pkt.options, hex("94040000"));
    assert.deepEqual(pkt.payload, hex("01020304"));
    assert.equal(pkt.verifyChecksum(), true);
    assert.equal(parsed(Ipv4Repr.parse(pkt)).payloadLen, 4);
    // IHL 15: 40 option bytes of NOPs, no payload.
    const max = new Uint8Array(60).fill(1);
    max.set(hex("4f00 003c 0000 0000 4006 0000 0a00020f 0a000202"));
    const maxPkt = parsed(Ipv4Packet.parse(withFixedChecksum(max)));
    assert.equal(maxPkt.headerLen, 60);
    assert.equal(maxPkt.payload.length, 0);
  });

  it("reads fragment fields in bytes", () => {
    const first = withFixedChecksum(
      hex("4500 001c abcd 2000 4011 0000 0a00020f 0a000202 0000000000000000"),
    );
    const pkt = parsed(Ipv4Packet.parse(first));
    assert.equal(pkt.moreFragments, true);
    assert.equal(pkt.fragmentOffset, 0);
    assert.equal(pkt.isFragment, true);
    const last = withFixedChecksum(
      hex("4500 001c abcd 00b9 4011 0000 0a00020f 0a000202 0000000000000000"),
    );
    const lastPkt = parsed(Ipv4Packet.parse(last));
    assert.equal(lastPkt.moreFragments, false);
    assert.equal(lastPkt.fragmentOffset, 185 * 8);
    assert.equal(lastPkt.isFragment, true);
    assert.equal(lastPkt.dontFragment, false);
  });

  it("rejects a buffer under 20 bytes: ipv4_truncated", () => {
    for (const len of [0, 1, 19]) {
      assert.equal(reason(Ipv4Packet.parse(PING_IP.subarray(0, len))), "ipv4_truncated");
    }
  });

  it("rejects other versions: ipv4_bad_version", () => {
    for (const first of [0x65, 0x05, 0xf5, 0x55]) {
      const bytes = PING_IP.slice();
      bytes[0] = first;
      assert.equal(reason(Ipv4Packet.parse(bytes)), "ipv4_bad_version");
    }
  });

  it("rejects IHL below 5 or beyond the buffer: ipv4_bad_header_len", () => {
    for (const ihl of [0, 1, 4]) {
      const bytes = PING_IP.slice();
      bytes[0] = 0x40 | ihl;
      assert.equal(reason(Ipv4Packet.parse(bytes)), "ipv4_bad_header_len");
    }
    const bytes = PING_IP.slice(0, 40);
    bytes[0] = 0x4f; // 60-byte header in a 40-byte buffer
    assert.equal(reason(Ipv4Packet.parse(bytes)), "ipv4_bad_header_len");
  });

  it("rejects a total length below the header or beyond the buffer: ipv4_bad_total_len", () => {
    for (const totalLen of [0, 19, 85, 0xffff]) {
      const bytes = PING_IP.slice();
      bytes[2] = totalLen >>> 8;
      bytes[3] = totalLen & 0xff;
      assert.equal(reason(Ipv4Packet.parse(bytes)), "ipv4_bad_total_len", `totalLen ${totalLen}`);
    }
    const withOptions = hex("4600 0016 0001 0000 4011 0000 0a00020f 0a000202 94040000");
    assert.equal(reason(Ipv4Packet.parse(withOptions)), "ipv4_bad_total_len");
  });

  it("parseTruncated accepts a datagram quoted in an ICMP error (RFC 792)", () => {
    const quoted = PING_IP.subarray(0, 28); // header + 8 bytes of the 84
    assert.equal(reason(Ipv4Packet.parse(quoted)), "ipv4_bad_total_len");
    const pkt = parsed(Ipv4Packet.parseTruncated(quoted));
    assert.equal(pkt.totalLen, 84);
    assert.equal(pkt.payload.length, 8);
    assert.equal(pkt.protocol, IpProtocol.ICMP);
    assert.equal(pkt.verifyChecksum(), true);
    // The other checks still apply.
    const bad = quoted.slice();
    bad[3] = 10;
    assert.equal(reason(Ipv4Packet.parseTruncated(bad)), "ipv4_bad_total_len");
    assert.equal(reason(Ipv4Packet.parseTruncated(quoted.subarray(0, 19))), "ipv4_truncated");
  });
});

describe("Ipv4Repr", () => {
  it("parses the ping header", () => {
    assert.deepEqual(parsed(Ipv4Repr.parse(parsed(Ipv4Packet.parse(PING_IP)))), {
      src: LINUX_IP,
      dst: STACK_IP,
      protocol: IpProtocol.ICMP,
      payloadLen: 64,
      ttl: 64,
      ident: 0x3a5c,
      dontFragment: true,
      dscpEcn: 0,
    });
  });

  it("rejects a bad header checksum: ipv4_bad_checksum", () => {
    const bytes = PING_IP.slice();
    bytes[11] ^= 0x40;
    const pkt = parsed(Ipv4Packet.parse(bytes));
    assert.equal(pkt.verifyChecksum(), false);
    assert.deepEqual(Ipv4Repr.parse(pkt), { ok: false, reason: "ipv4_bad_checksum" });
  });

  it("emits the example header b861 byte for byte", () => {
    const buf = new Uint8Array(20);
    Ipv4Repr.emit({
      src: parseIpv4Address("192.168.0.1"),
      dst: parseIpv4Address("192.168.0.199"),
      protocol: IpProtocol.UDP,
      payloadLen: 0x73 - 20,
      ttl: 64,
      dontFragment: true,
    }, buf);
    assert.deepEqual(buf, EXAMPLE_HEADER);
  });

  it("emits the ping header byte for byte", () => {
    const buf = new Uint8Array(84);
    Ipv4Repr.emit({
      src: LINUX_IP,
      dst: STACK_IP,
      protocol: IpProtocol.ICMP,
      payloadLen: 64,
      ttl: 64,
      ident: 0x3a5c,
      dontFragment: true,
    }, buf);
    assert.deepEqual(buf.subarray(0, 20), PING_IP.subarray(0, 20));
  });

  it("round-trips every field, fragments included", () => {
    const reprs: Ipv4Repr[] = [
      {
        src: 1,
        dst: 0xffffffff,
        protocol: 6,
        payloadLen: 0,
        ttl: 0,
        ident: 0,
        dontFragment: false,
        dscpEcn: 0,
      },
      {
        src: 0xc0a80001,
        dst: 0xe0000001,
        protocol: 17,
        payloadLen: 65515,
        ttl: 255,
        ident: 0xffff,
        dontFragment: true,
        dscpEcn: 0xb8,
      },
      {
        src: LINUX_IP,
        dst: STACK_IP,
        protocol: 1,
        payloadLen: 8,
        ttl: 3,
        ident: 7,
        dontFragment: false,
        dscpEcn: 2,
        moreFragments: true,
        fragmentOffset: 1480,
      },
      {
        src: LINUX_IP,
        dst: STACK_IP,
        protocol: 200,
        payloadLen: 8,
        ttl: 3,
        ident: 7,
        dontFragment: false,
        dscpEcn: 0,
        moreFragments: false,
        fragmentOffset: 65528,
      },
    ];
    for (const repr of reprs) {
      const buf = new Uint8Array(Ipv4Repr.bufferLen(repr));
      Ipv4Repr.emit(repr, buf);
      const pkt = parsed(Ipv4Packet.parse(buf));
      assert.equal(pkt.bytes.length, IPV4_HEADER_LEN + repr.payloadLen);
      assert.deepEqual(parsed(Ipv4Repr.parse(pkt)), repr);
    }
  });

  it("fills the defaults for omitted optional fields", () => {
    const buf = new Uint8Array(20);
    Ipv4Repr.emit({ src: 1, dst: 2, protocol: 6, payloadLen: 0, ttl: 64 }, buf);
    assert.deepEqual(parsed(Ipv4Repr.parse(parsed(Ipv4Packet.parse(buf)))), {
      src: 1,
      dst: 2,
      protocol: 6,
      payloadLen: 0,
      ttl: 64,
      ident: 0,
      dontFragment: false,
      dscpEcn: 0,
    });
  });

  it("throws on misuse", () => {
    const repr: Ipv4Repr = { src: 1, dst: 2, protocol: 6, payloadLen: 0, ttl: 64 };
    assert.throws(() => Ipv4Repr.emit(repr, new Uint8Array(19)), {
      name: "RangeError",
      message: /Ipv4Repr\.emit: buffer of 19 bytes is too small, need 20/,
    });
    const buf = new Uint8Array(20);
    assert.throws(() => Ipv4Repr.emit({ ...repr, ttl: 256 }, buf), {
      name: "RangeError",
      message: /ttl must be an integer in 0\.\.255, got 256/,
    });
    assert.throws(() => Ipv4Repr.emit({ ...repr, payloadLen: 65516 }, buf), RangeError);
    assert.throws(() => Ipv4Repr.emit({ ...repr, src: -5 }, buf), RangeError);
    assert.throws(() => Ipv4Repr.emit({ ...repr, ident: 0x10000 }, buf), RangeError);
    assert.throws(() => Ipv4Repr.emit({ ...repr, fragmentOffset: 12 }, buf), {
      name: "RangeError",
      message: /fragmentOffset must be a multiple of 8 in 0\.\.65528, got 12/,
    });
  });
});
