import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ETHERNET_HEADER_LEN } from "./ethernet.ts";
import { IPV4_HEADER_LEN } from "./ipv4.ts";
import { UDP_HEADER_LEN, UdpPacket, UdpRepr } from "./udp.ts";
import { atOffset, GOLDEN_UDP, hex, LINUX_IP, STACK_IP } from "./_test_util.ts";
import type { ParseResult } from "./parse_result.ts";

function parsed<T>(result: ParseResult<T>): T {
  if (!result.ok) throw new Error(`expected ok, got ${result.reason}`);
  return result.value;
}

const DATAGRAM = GOLDEN_UDP.subarray(ETHERNET_HEADER_LEN + IPV4_HEADER_LEN);
const DNS_QUERY = DATAGRAM.subarray(UDP_HEADER_LEN);

describe("UdpPacket (RFC 768)", () => {
  it("parses a DNS query with checksum 97f1", () => {
    const pkt = parsed(UdpPacket.parse(DATAGRAM));
    assert.equal(pkt.srcPort, 54321);
    assert.equal(pkt.dstPort, 53);
    assert.equal(pkt.length, 37);
    assert.equal(pkt.checksum, 0x97f1);
    assert.equal(pkt.payload.length, 29);
    assert.equal(pkt.verifyChecksum(LINUX_IP, STACK_IP), true);
    assert.equal(pkt.verifyChecksum(STACK_IP, LINUX_IP + 1), false, "pseudo-header counts");
  });

  it("cuts the payload at the length field", () => {
    const bytes = new Uint8Array(DATAGRAM.length + 5).fill(0xaa);
    bytes.set(DATAGRAM);
    const pkt = parsed(UdpPacket.parse(bytes));
    assert.equal(pkt.bytes.length, 37);
    assert.deepEqual(pkt.payload, DNS_QUERY);
    assert.equal(pkt.verifyChecksum(LINUX_IP, STACK_IP), true);
  });

  it("accepts a zero checksum as not computed (RFC 1122 §4.1.3.4)", () => {
    const bytes = DATAGRAM.slice();
    bytes[6] = 0;
    bytes[7] = 0;
    const pkt = parsed(UdpPacket.parse(bytes));
    assert.equal(pkt.verifyChecksum(1, 2), true);
    assert.equal(parsed(UdpRepr.parse(pkt, 1, 2)).dstPort, 53);
  });

  it("rejects fewer than 8 bytes: udp_truncated", () => {
    assert.deepEqual(UdpPacket.parse(DATAGRAM.subarray(0, 7)), {
      ok: false,
      reason: "udp_truncated",
    });
  });

  it("rejects a length field below 8 or beyond the buffer: udp_bad_length", () => {
    for (const length of [0, 7, 38, 0xffff]) {
      const bytes = DATAGRAM.slice();
      bytes[4] = length >>> 8;
      bytes[5] = length & 0xff;
      assert.deepEqual(UdpPacket.parse(bytes), { ok: false, reason: "udp_bad_length" });
    }
    assert.ok(UdpPacket.parse(hex("0001 0002 0008 0000")).ok);
  });
});

describe("UdpRepr", () => {
  it("parses the DNS query", () => {
    assert.deepEqual(parsed(UdpRepr.parse(parsed(UdpPacket.parse(DATAGRAM)), LINUX_IP, STACK_IP)), {
      srcPort: 54321,
      dstPort: 53,
      payload: DNS_QUERY,
    });
  });

  it("rejects a bad checksum: udp_bad_checksum", () => {
    const bytes = DATAGRAM.slice();
    bytes[12] ^= 1;
    const pkt = parsed(UdpPacket.parse(bytes));
    assert.deepEqual(UdpRepr.parse(pkt, LINUX_IP, STACK_IP), {
      ok: false,
      reason: "udp_bad_checksum",
    });
  });

  it("emits the golden datagram byte for byte", () => {
    const repr: UdpRepr = { srcPort: 54321, dstPort: 53, payload: DNS_QUERY };
    const buf = new Uint8Array(UdpRepr.bufferLen(repr));
    UdpRepr.emit(repr, buf, LINUX_IP, STACK_IP);
    assert.deepEqual(buf, DATAGRAM);
  });

  it("emits a payload that already sits in the buffer", () => {
    const buf = new Uint8Array(8 + DNS_QUERY.length);
    buf.set(DNS_QUERY, 8);
    UdpRepr.emit(
      { srcPort: 54321, dstPort: 53, payload: buf.subarray(8) },
      buf,
      LINUX_IP,
      STACK_IP,
    );
    assert.deepEqual(buf, DATAGRAM);
  });

  it("sends a computed checksum of 0 as 0xffff (RFC 768)", () => {
    const repr: UdpRepr = { srcPort: 1, dstPort: 2, payload: new Uint8Array(2) };
    const buf = new Uint8Array(10);
    UdpRepr.emit(repr, buf, LINUX_IP, STACK_IP);
    const c = (buf[6] << 8) | buf[7];
    // Adding the checksum value as a payload word makes the sum 0xffff.
    const zeroing: UdpRepr = { ...repr, payload: new Uint8Array([c >>> 8, c & 0xff]) };
    UdpRepr.emit(zeroing, buf, LINUX_IP, STACK_IP);
    assert.deepEqual(buf.subarray(6, 8), hex("ffff"));
    const pkt = parsed(UdpPacket.parse(buf));
    assert.equal(pkt.verifyChecksum(LINUX_IP, STACK_IP), true);
    assert.deepEqual(parsed(UdpRepr.parse(pkt, LINUX_IP, STACK_IP)), zeroing);
  });

  it("round-trips payloads of every length 0..64 at unaligned offsets", () => {
    for (let len = 0; len <= 64; len++) {
      const repr: UdpRepr = {
        srcPort: 40000 + len,
        dstPort: 65535,
        payload: new Uint8Array(len).map((_, i) => 255 - i),
      };
      const buf = atOffset(new Uint8Array(UdpRepr.bufferLen(repr)), len % 4);
      UdpRepr.emit(repr, buf, 0xc0a80001, 0xffffffff);
      assert.deepEqual(
        parsed(UdpRepr.parse(parsed(UdpPacket.parse(buf)), 0xc0a80001, 0xffffffff)),
        repr,
      );
    }
  });

  it("throws on misuse", () => {
    const repr: UdpRepr = { srcPort: 1, dstPort: 2, payload: new Uint8Array(3) };
    assert.throws(() => UdpRepr.emit(repr, new Uint8Array(10), 1, 2), {
      name: "RangeError",
      message: /UdpRepr\.emit: buffer of 10 bytes is too small, need 11/,
    });
    assert.throws(() => UdpRepr.emit({ ...repr, srcPort: 70000 }, new Uint8Array(11), 1, 2), {
      name: "RangeError",
      message: /srcPort must be an integer in 0\.\.65535, got 70000/,
    });
    assert.throws(
      () => UdpRepr.emit({ ...repr, payload: new Uint8Array(65528) }, new Uint8Array(70000), 1, 2),
      RangeError,
    );
    assert.throws(() => UdpRepr.emit(repr, new Uint8Array(11), -1, 2), RangeError);
  });
});
