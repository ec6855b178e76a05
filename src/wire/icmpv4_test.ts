import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ETHERNET_HEADER_LEN } from "./ethernet.ts";
import {
  ICMPV4_HEADER_LEN,
  Icmpv4DestUnreachableCode,
  Icmpv4Packet,
  Icmpv4Repr,
  Icmpv4TimeExceededCode,
  Icmpv4Type,
} from "./icmpv4.ts";
import { IPV4_HEADER_LEN, Ipv4Packet } from "./ipv4.ts";
import { atOffset, GOLDEN_PING, GOLDEN_UDP, hex } from "./_test_util.ts";
import type { ParseResult } from "./parse_result.ts";

function parsed<T>(result: ParseResult<T>): T {
  if (!result.ok) throw new Error(`expected ok, got ${result.reason}`);
  return result.value;
}

const PING_ICMP = GOLDEN_PING.subarray(ETHERNET_HEADER_LEN + IPV4_HEADER_LEN);
const UDP_DATAGRAM = GOLDEN_UDP.subarray(ETHERNET_HEADER_LEN);

function roundTrip(repr: Icmpv4Repr, offset = 0): Icmpv4Repr {
  const buf = atOffset(new Uint8Array(Icmpv4Repr.bufferLen(repr)), offset);
  Icmpv4Repr.emit(repr, buf);
  const pkt = parsed(Icmpv4Packet.parse(buf));
  assert.equal(pkt.verifyChecksum(), true);
  return parsed(Icmpv4Repr.parse(pkt));
}

describe("Icmpv4Packet (RFC 792)", () => {
  it("parses a Linux echo request with checksum e257", () => {
    const pkt = parsed(Icmpv4Packet.parse(PING_ICMP));
    assert.equal(pkt.type, Icmpv4Type.ECHO_REQUEST);
    assert.equal(pkt.code, 0);
    assert.equal(pkt.checksum, 0xe257);
    assert.equal(pkt.ident, 0x0a1b);
    assert.equal(pkt.seqNo, 1);
    assert.equal(pkt.restOfHeader, 0x0a1b0001);
    assert.equal(pkt.data.length, 56);
    assert.equal(pkt.verifyChecksum(), true);
  });

  it("reads the next-hop MTU of fragmentation needed (RFC 1191 §4)", () => {
    const pkt = parsed(Icmpv4Packet.parse(hex("0304 0000 0000 05dc")));
    assert.equal(pkt.nextHopMtu, 1500);
    assert.equal(pkt.data.length, 0);
  });

  it("rejects fewer than 8 bytes: icmp_truncated", () => {
    for (const len of [0, 4, 7]) {
      assert.deepEqual(Icmpv4Packet.parse(PING_ICMP.subarray(0, len)), {
        ok: false,
        reason: "icmp_truncated",
      });
    }
  });
});

describe("Icmpv4Repr", () => {
  it("parses the echo request", () => {
    const repr = parsed(Icmpv4Repr.parse(parsed(Icmpv4Packet.parse(PING_ICMP))));
    assert.deepEqual(repr, {
      type: "echo_request",
      ident: 0x0a1b,
      seqNo: 1,
      data: PING_ICMP.subarray(8),
    });
  });

  it("answers the echo request with checksum ea57", () => {
    const request = parsed(Icmpv4Repr.parse(parsed(Icmpv4Packet.parse(PING_ICMP))));
    assert.equal(request.type, "echo_request");
    if (request.type !== "echo_request") return;
    const reply: Icmpv4Repr = { ...request, type: "echo_reply" };
    const buf = new Uint8Array(Icmpv4Repr.bufferLen(reply));
    assert.equal(buf.length, 64);
    Icmpv4Repr.emit(reply, buf);
    assert.deepEqual(buf.subarray(0, 8), hex("0000 ea57 0a1b 0001"));
    assert.deepEqual(buf.subarray(8), PING_ICMP.subarray(8));
  });

  it("rejects a bad checksum: icmp_bad_checksum", () => {
    const bytes = PING_ICMP.slice();
    bytes[20] ^= 0x80;
    const pkt = parsed(Icmpv4Packet.parse(bytes));
    assert.equal(pkt.verifyChecksum(), false);
    assert.deepEqual(Icmpv4Repr.parse(pkt), { ok: false, reason: "icmp_bad_checksum" });
  });

  it("round-trips echo messages, odd data lengths and unaligned buffers", () => {
    for (let len = 0; len < 12; len++) {
      for (const type of ["echo_request", "echo_reply"] as const) {
        const data = new Uint8Array(len).map((_, i) => i * 37 + 1);
        const repr: Icmpv4Repr = { type, ident: 0xffff, seqNo: len, data };
        assert.deepEqual(roundTrip(repr, len % 4), repr);
      }
    }
  });

  it("round-trips port unreachable quoting the original datagram", () => {
    const quoted = UDP_DATAGRAM.subarray(0, IPV4_HEADER_LEN + 8);
    const repr: Icmpv4Repr = {
      type: "dest_unreachable",
      code: Icmpv4DestUnreachableCode.PORT,
      data: quoted,
    };
    const back = roundTrip(repr);
    assert.deepEqual(back, repr);
    assert.equal(back.type, "dest_unreachable");
    const original = parsed(Ipv4Packet.parseTruncated(back.data));
    assert.equal(original.protocol, 17);
    assert.deepEqual(original.payload, UDP_DATAGRAM.subarray(20, 28));
  });

  it("round-trips fragmentation needed with its MTU, and zeroes unused bytes", () => {
    const data = UDP_DATAGRAM.subarray(0, 28);
    const repr: Icmpv4Repr = {
      type: "dest_unreachable",
      code: Icmpv4DestUnreachableCode.FRAG_NEEDED,
      nextHopMtu: 1280,
      data,
    };
    const buf = new Uint8Array(Icmpv4Repr.bufferLen(repr)).fill(0xee);
    Icmpv4Repr.emit(repr, buf);
    assert.deepEqual(buf.subarray(0, 2), hex("0304"));
    assert.deepEqual(buf.subarray(4, 8), hex("0000 0500"));
    assert.deepEqual(parsed(Icmpv4Repr.parse(parsed(Icmpv4Packet.parse(buf)))), repr);
    // Other codes do not report an MTU.
    const host: Icmpv4Repr = { type: "dest_unreachable", code: 1, data };
    assert.deepEqual(roundTrip(host), host);
  });

  it("round-trips time exceeded", () => {
    const repr: Icmpv4Repr = {
      type: "time_exceeded",
      code: Icmpv4TimeExceededCode.TTL_EXCEEDED,
      data: UDP_DATAGRAM.subarray(0, 28),
    };
    assert.deepEqual(roundTrip(repr), repr);
    const reassembly: Icmpv4Repr = { ...repr, code: 1 };
    assert.deepEqual(roundTrip(reassembly), reassembly);
  });

  it("keeps every other type whole", () => {
    // A timestamp request (type 13): id, seq, three timestamps.
    const repr: Icmpv4Repr = {
      type: "other",
      icmpType: 13,
      code: 0,
      restOfHeader: 0x12340001,
      data: hex("00000001 00000000 00000000"),
    };
    assert.deepEqual(roundTrip(repr), repr);
    const redirect: Icmpv4Repr = {
      type: "other",
      icmpType: 5,
      code: 1,
      restOfHeader: 0x0a000201,
      data: UDP_DATAGRAM.subarray(0, 28),
    };
    assert.deepEqual(roundTrip(redirect), redirect);
    const weird: Icmpv4Repr = {
      type: "other",
      icmpType: 255,
      code: 255,
      restOfHeader: 0xffffffff,
      data: new Uint8Array(0),
    };
    assert.deepEqual(roundTrip(weird), weird);
  });

  it("throws on misuse", () => {
    const repr: Icmpv4Repr = { type: "echo_reply", ident: 1, seqNo: 2, data: new Uint8Array(4) };
    assert.throws(() => Icmpv4Repr.emit(repr, new Uint8Array(11)), {
      name: "RangeError",
      message: /Icmpv4Repr\.emit: buffer of 11 bytes is too small, need 12/,
    });
    assert.throws(() => Icmpv4Repr.emit({ ...repr, seqNo: 65536 }, new Uint8Array(12)), {
      name: "RangeError",
      message: /seqNo must be an integer in 0\.\.65535, got 65536/,
    });
    assert.throws(
      () =>
        Icmpv4Repr.emit(
          { type: "dest_unreachable", code: 4, nextHopMtu: -1, data: new Uint8Array(0) },
          new Uint8Array(8),
        ),
      RangeError,
    );
    assert.throws(
      () =>
        Icmpv4Repr.emit(
          { type: "bogus", data: new Uint8Array(0) } as unknown as Icmpv4Repr,
          new Uint8Array(8),
        ),
      { name: "TypeError", message: /unknown ICMP repr type "bogus"/ },
    );
  });

  it("emits data that overlaps the header's own bytes (copied before the header is written)", () => {
    const content = hex("45000054 3a5c4000 4001e83c 0a00020f 0a000202 08006c2a");
    const buf = new Uint8Array(8 + content.length);
    buf.set(content);
    const repr: Icmpv4Repr = {
      type: "time_exceeded",
      code: 0,
      data: buf.subarray(0, content.length),
    };
    Icmpv4Repr.emit(repr, buf);
    assert.deepEqual(buf.subarray(8), content);
    assert.equal(parsed(Icmpv4Packet.parse(buf)).verifyChecksum(), true);
  });

  it("has an 8-byte header", () => {
    assert.equal(ICMPV4_HEADER_LEN, 8);
  });
});
