import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checksumAdd, checksumFinish } from "./checksum.ts";
import { IPV6_HEADER_LEN, Ipv6Packet, ipv6PseudoHeaderSum, Ipv6Repr } from "./ipv6.ts";
import { formatIpv6Address, parseIpv6Address } from "./ipv6_address.ts";
import { GOLDEN_ECHO, V6_PEER_ULA } from "./_ipv6_test_util.ts";
import { atOffset, hex, toHex } from "./_test_util.ts";
import type { ParseResult } from "./parse_result.ts";

function parsed<T>(result: ParseResult<T>): T {
  if (!result.ok) throw new Error(`expected ok, got ${result.reason}`);
  return result.value;
}

const PACKET = GOLDEN_ECHO.subarray(14);

describe("Ipv6Packet (RFC 8200 §3)", () => {
  it("reads every field of Linux's echo request", () => {
    const pkt = parsed(Ipv6Packet.parse(atOffset(PACKET, 1)));
    assert.equal(pkt.version, 6);
    assert.equal(pkt.trafficClass, 0);
    assert.equal(pkt.flowLabel, 0);
    assert.equal(pkt.payloadLen, 16);
    assert.equal(pkt.nextHeader, 58);
    assert.equal(pkt.hopLimit, 64);
    assert.equal(formatIpv6Address(pkt.src), V6_PEER_ULA);
    assert.equal(formatIpv6Address(pkt.dst), "fd00::2");
    assert.equal(pkt.header.length, 40);
    assert.equal(pkt.payload.length, 16);
  });

  it("reads traffic class and flow label across their nibble boundaries", () => {
    const bytes = PACKET.slice();
    bytes.set(hex("6ab12345"), 0);
    const pkt = parsed(Ipv6Packet.parse(bytes));
    assert.equal(pkt.trafficClass, 0xab);
    assert.equal(pkt.flowLabel, 0x12345);
  });

  it("cuts link padding at the payload length", () => {
    const padded = new Uint8Array(PACKET.length + 10);
    padded.set(PACKET);
    const pkt = parsed(Ipv6Packet.parse(padded));
    assert.equal(pkt.bytes.length, PACKET.length);
  });

  it("rejects short, wrong-version and overlong packets by reason", () => {
    assert.deepEqual(Ipv6Packet.parse(PACKET.subarray(0, 39)), {
      ok: false,
      reason: "ipv6_truncated",
    });
    const v4 = PACKET.slice();
    v4[0] = 0x45;
    assert.deepEqual(Ipv6Packet.parse(v4), { ok: false, reason: "ipv6_bad_version" });
    assert.deepEqual(Ipv6Packet.parse(PACKET.subarray(0, PACKET.length - 1)), {
      ok: false,
      reason: "ipv6_bad_payload_len",
    });
  });

  it("parseTruncated accepts the cut invoking packet an ICMPv6 error quotes (RFC 4443 §2.4 (c))", () => {
    const quote = PACKET.subarray(0, 48);
    const pkt = parsed(Ipv6Packet.parseTruncated(quote));
    assert.equal(pkt.payloadLen, 16);
    assert.equal(pkt.payload.length, 8);
    assert.deepEqual(Ipv6Packet.parseTruncated(quote.subarray(0, 30)), {
      ok: false,
      reason: "ipv6_truncated",
    });
  });
});

describe("Ipv6Repr (RFC 8200 §3)", () => {
  it("emits the exact header of the golden packet and parses it back", () => {
    const repr: Ipv6Repr = {
      src: parseIpv6Address(V6_PEER_ULA),
      dst: parseIpv6Address("fd00::2"),
      nextHeader: 58,
      payloadLen: 16,
      hopLimit: 64,
    };
    const buf = atOffset(new Uint8Array(Ipv6Repr.bufferLen(repr)), 3);
    Ipv6Repr.emit(repr, buf);
    assert.equal(toHex(buf.subarray(0, IPV6_HEADER_LEN)), toHex(PACKET.subarray(0, 40)));
    buf.set(PACKET.subarray(40), 40);
    assert.deepEqual(Ipv6Repr.parse(parsed(Ipv6Packet.parse(buf))), {
      ...repr,
      trafficClass: 0,
      flowLabel: 0,
    });
  });

  it("writes traffic class and flow label", () => {
    const buf = new Uint8Array(40);
    const addr = parseIpv6Address("::1");
    Ipv6Repr.emit({
      src: addr,
      dst: addr,
      nextHeader: 59,
      payloadLen: 0,
      hopLimit: 1,
      trafficClass: 0xab,
      flowLabel: 0x12345,
    }, buf);
    assert.equal(toHex(buf.subarray(0, 8)), "6ab12345" + "00003b01");
  });

  it("throws on misuse: small buffer, fields out of range, text addresses", () => {
    const addr = parseIpv6Address("::1");
    const ok = { src: addr, dst: addr, nextHeader: 6, payloadLen: 0, hopLimit: 64 };
    assert.throws(() => Ipv6Repr.emit(ok, new Uint8Array(39)), RangeError);
    assert.throws(() => Ipv6Repr.emit({ ...ok, hopLimit: 256 }, new Uint8Array(40)), RangeError);
    assert.throws(
      () => Ipv6Repr.emit({ ...ok, payloadLen: 65536 }, new Uint8Array(40)),
      RangeError,
    );
    assert.throws(
      () => Ipv6Repr.emit({ ...ok, flowLabel: 0x100000 }, new Uint8Array(40)),
      RangeError,
    );
    assert.throws(
      () => Ipv6Repr.emit({ ...ok, src: "::1" as typeof addr }, new Uint8Array(40)),
      TypeError,
    );
  });
});

describe("ipv6PseudoHeaderSum (RFC 8200 §8.1)", () => {
  it("validates the golden echo request's ICMPv6 checksum", () => {
    const pkt = parsed(Ipv6Packet.parse(PACKET));
    const sum = ipv6PseudoHeaderSum(pkt.src, pkt.dst, 58, pkt.payload.length);
    assert.equal(checksumFinish(checksumAdd(sum, pkt.payload)), 0);
    const wrong = ipv6PseudoHeaderSum(pkt.src, pkt.dst, 17, pkt.payload.length);
    assert.notEqual(checksumFinish(checksumAdd(wrong, pkt.payload)), 0);
  });

  it("counts a length above 65535 in both halves of its 32 bits", () => {
    const z = parseIpv6Address("::");
    assert.equal(ipv6PseudoHeaderSum(z, z, 6, 0x12345), 6 + 1 + 0x2345);
  });
});
