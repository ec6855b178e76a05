import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ICMPV6_HEADER_LEN,
  Icmpv6Packet,
  Icmpv6ParamProblemCode,
  Icmpv6Repr,
  Icmpv6Type,
  isIcmpv6Error,
  writeIcmpv6Checksum,
} from "./icmpv6.ts";
import { type Ipv6Address, parseIpv6Address } from "./ipv6_address.ts";
import { isMldType, MldRepr } from "./mld.ts";
import { GOLDEN_ECHO, GOLDEN_PP, GOLDEN_PTB, V6_PEER_ULA } from "./_ipv6_test_util.ts";
import { atOffset, hex, toHex } from "./_test_util.ts";
import type { ParseResult } from "./parse_result.ts";

function parsed<T>(result: ParseResult<T>): T {
  if (!result.ok) throw new Error(`expected ok, got ${result.reason}`);
  return result.value;
}

const PEER = parseIpv6Address(V6_PEER_ULA);
const STACK = parseIpv6Address("fd00::2");
const ECHO = GOLDEN_ECHO.subarray(54);
const QUOTE = GOLDEN_ECHO.subarray(14, 14 + 48);

function emitted(repr: Icmpv6Repr, src: Ipv6Address, dst: Ipv6Address, offset = 0): Uint8Array {
  const buf = atOffset(new Uint8Array(Icmpv6Repr.bufferLen(repr)), offset);
  Icmpv6Repr.emit(repr, buf, src, dst);
  return buf;
}

describe("Icmpv6Packet (RFC 4443 §2.1, §2.3)", () => {
  it("reads Linux's echo request and verifies its checksum over the pseudo-header", () => {
    const pkt = parsed(Icmpv6Packet.parse(ECHO));
    assert.equal(pkt.type, Icmpv6Type.ECHO_REQUEST);
    assert.equal(pkt.code, 0);
    assert.equal(pkt.checksum, 0x6643);
    assert.equal(pkt.restOfHeader, 0x0a1b0001);
    assert.equal(new TextDecoder().decode(pkt.data), "abcdefgh");
    assert.equal(pkt.verifyChecksum(PEER, STACK), true);
    assert.equal(pkt.verifyChecksum(STACK, PEER), true); // the sum is symmetric in src, dst
    assert.equal(pkt.verifyChecksum(PEER, parseIpv6Address("fd00::3")), false);
  });

  it("rejects fewer than 8 bytes: icmpv6_truncated", () => {
    for (const len of [0, 4, 7]) {
      assert.deepEqual(Icmpv6Packet.parse(ECHO.subarray(0, len)), {
        ok: false,
        reason: "icmpv6_truncated",
      });
    }
  });

  it("tells errors (0..127) from informational messages (RFC 4443 §2.1)", () => {
    assert.equal(isIcmpv6Error(Icmpv6Type.PARAM_PROBLEM), true);
    assert.equal(isIcmpv6Error(127), true);
    assert.equal(isIcmpv6Error(Icmpv6Type.ECHO_REQUEST), false);
    assert.equal(isIcmpv6Error(Icmpv6Type.NEIGHBOR_SOLICIT), false);
  });
});

describe("Icmpv6Repr (RFC 4443 §3, §4)", () => {
  it("decodes the echo request and emits the exact echo message back", () => {
    const repr = parsed(Icmpv6Repr.parse(parsed(Icmpv6Packet.parse(ECHO)), PEER, STACK));
    assert.deepEqual({ ...repr, data: toHex((repr as { data: Uint8Array }).data) }, {
      type: "echo_request",
      ident: 0x0a1b,
      seqNo: 1,
      data: toHex(new TextEncoder().encode("abcdefgh")),
    });
    assert.equal(toHex(emitted(repr, PEER, STACK, 1)), toHex(ECHO));
  });

  it("emits the exact parameter problem (code 1, pointer 6) and packet too big (MTU 1280)", () => {
    const pp: Icmpv6Repr = {
      type: "param_problem",
      code: Icmpv6ParamProblemCode.NEXT_HEADER,
      pointer: 6,
      data: QUOTE,
    };
    assert.equal(toHex(emitted(pp, STACK, PEER)), toHex(GOLDEN_PP.subarray(54)));
    const ptb: Icmpv6Repr = { type: "packet_too_big", mtu: 1280, data: QUOTE };
    assert.equal(toHex(emitted(ptb, PEER, STACK, 2)), toHex(GOLDEN_PTB.subarray(54)));
  });

  it("decodes each error type with its field, and keeps other types whole", () => {
    const ptb = parsed(
      Icmpv6Repr.parse(parsed(Icmpv6Packet.parse(GOLDEN_PTB.subarray(54))), PEER, STACK),
    );
    assert.equal(ptb.type, "packet_too_big");
    assert.equal((ptb as { mtu: number }).mtu, 1280);
    assert.equal(toHex((ptb as { data: Uint8Array }).data), toHex(QUOTE));
    const pp = parsed(
      Icmpv6Repr.parse(parsed(Icmpv6Packet.parse(GOLDEN_PP.subarray(54))), STACK, PEER),
    );
    assert.deepEqual(
      [pp.type, (pp as { code: number }).code, (pp as { pointer: number }).pointer],
      [
        "param_problem",
        1,
        6,
      ],
    );
    const cases: Icmpv6Repr[] = [
      { type: "dest_unreachable", code: 4, data: QUOTE },
      { type: "time_exceeded", code: 1, data: QUOTE },
      { type: "echo_reply", ident: 1, seqNo: 0xffff, data: new Uint8Array(0) },
      { type: "other", icmpType: 200, code: 3, restOfHeader: 0xdeadbeef, data: hex("0102") },
    ];
    for (const repr of cases) {
      const buf = emitted(repr, PEER, STACK);
      assert.equal(parsed(Icmpv6Packet.parse(buf)).verifyChecksum(PEER, STACK), true);
      assert.deepEqual(
        parsed(Icmpv6Repr.parse(parsed(Icmpv6Packet.parse(buf)), PEER, STACK)),
        repr,
      );
    }
  });

  it("refuses a wrong checksum: icmpv6_bad_checksum", () => {
    const bad = ECHO.slice();
    bad[9] ^= 1;
    assert.deepEqual(Icmpv6Repr.parse(parsed(Icmpv6Packet.parse(bad)), PEER, STACK), {
      ok: false,
      reason: "icmpv6_bad_checksum",
    });
  });

  it("throws on misuse of the emitter", () => {
    const buf = new Uint8Array(16);
    assert.throws(
      () =>
        Icmpv6Repr.emit(
          { type: "echo_reply", ident: 65536, seqNo: 0, data: new Uint8Array(0) },
          buf,
          PEER,
          STACK,
        ),
      RangeError,
    );
    assert.throws(
      () =>
        Icmpv6Repr.emit(
          { type: "param_problem", code: 256, pointer: 0, data: new Uint8Array(0) },
          buf,
          PEER,
          STACK,
        ),
      RangeError,
    );
    assert.throws(
      () =>
        Icmpv6Repr.emit(
          { type: "echo_reply", ident: 1, seqNo: 0, data: new Uint8Array(9) },
          buf,
          PEER,
          STACK,
        ),
      RangeError,
    );
    assert.throws(
      () => Icmpv6Repr.emit({ type: "nope" } as unknown as Icmpv6Repr, buf, PEER, STACK),
      TypeError,
    );
    assert.throws(() => writeIcmpv6Checksum(new Uint8Array(3), PEER, STACK), RangeError);
    assert.equal(ICMPV6_HEADER_LEN, 8);
  });
});

describe("MldRepr (RFC 2710 §3, RFC 3810 §5)", () => {
  it("recognises queries, reports, done and MLDv2 reports", () => {
    const group = "ff02 0000 0000 0000 0000 0001 ff12 3456";
    const msg = (type: string, rest: string) =>
      parsed(Icmpv6Packet.parse(hex(type + "000000" + rest)));
    assert.deepEqual(parsed(MldRepr.parse(msg("82", "2710 0000" + "0".repeat(32)))), {
      type: "query",
      maxResponseDelay: 10000,
      group: parseIpv6Address("::"),
    });
    assert.deepEqual(parsed(MldRepr.parse(msg("83", "0000 0000" + group))), {
      type: "report",
      group: parseIpv6Address("ff02::1:ff12:3456"),
    });
    assert.deepEqual(parsed(MldRepr.parse(msg("84", "0000 0000" + group))).type, "done");
    assert.deepEqual(parsed(MldRepr.parse(msg("8f", "0000 0002"))), {
      type: "report_v2",
      records: 2,
    });
    assert.deepEqual(MldRepr.parse(msg("83", "0000 0000")), { ok: false, reason: "mld_truncated" });
    assert.deepEqual(MldRepr.parse(msg("80", "0000 0000")), { ok: false, reason: "mld_not_mld" });
    assert.deepEqual([130, 131, 132, 143, 133, 128].map(isMldType), [
      true,
      true,
      true,
      true,
      false,
      false,
    ]);
  });
});
