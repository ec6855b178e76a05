import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Ipv6Packet, Ipv6Repr } from "./ipv6.ts";
import { parseIpv6Address } from "./ipv6_address.ts";
import {
  DEFAULT_IPV6_EXT_LIMITS,
  type Ipv6ChainResult,
  Ipv6NextHeader,
  walkIpv6Headers,
} from "./ipv6_ext.ts";
import { IPV6_EXT_DROP_REASONS } from "./ipv6_ext.ts";
import { WIRE_DROP_REASONS } from "./parse_result.ts";
import { hex } from "./_test_util.ts";
import { seededRandom } from "./random.ts";

const SRC = parseIpv6Address("fd00::15");
const DST = parseIpv6Address("fd00::2");
/** An 8-byte ICMPv6 echo request body (checksum irrelevant to the walker). */
const UPPER = hex("8000000000010001");

/** A packet whose payload is `chain` (hex) followed by UPPER; `first` is the fixed header's next header. */
function packet(first: number, chain: string): Ipv6Packet {
  const ext = hex(chain);
  const bytes = new Uint8Array(40 + ext.length + UPPER.length);
  Ipv6Repr.emit({
    src: SRC,
    dst: DST,
    nextHeader: first,
    payloadLen: bytes.length - 40,
    hopLimit: 64,
  }, bytes);
  bytes.set(ext, 40);
  bytes.set(UPPER, 40 + ext.length);
  const r = Ipv6Packet.parse(bytes);
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

function chain(r: Ipv6ChainResult) {
  if (!r.ok) throw new Error(`expected a chain, got ${r.reason}`);
  return r.value;
}

const HBH = Ipv6NextHeader.HOP_BY_HOP;
const DEST = Ipv6NextHeader.DESTINATION_OPTIONS;
const ROUTING = Ipv6NextHeader.ROUTING;
const FRAG = Ipv6NextHeader.FRAGMENT;

describe("walkIpv6Headers (RFC 8200 §4)", () => {
  it("goes straight to the upper layer when there is no extension header", () => {
    const c = chain(walkIpv6Headers(packet(58, "")));
    assert.deepEqual(
      { ...c, payload: [...c.payload] },
      {
        protocol: 58,
        protocolPointer: 6,
        offset: 40,
        payload: [...UPPER],
        headers: 0,
        fragment: undefined,
        routerAlert: undefined,
      },
    );
  });

  it("walks hop-by-hop with an MLD router alert (RFC 2711), then destination options with PadN", () => {
    // HBH: next 60, len 0, router alert 0 (MLD), PadN of 0 bytes.  Dest: next 58, len 0, PadN 4.
    const c = chain(walkIpv6Headers(packet(HBH, "3c00 0502 0000 0100" + "3a00 0104 00000000")));
    assert.equal(c.protocol, 58);
    assert.equal(c.protocolPointer, 48);
    assert.equal(c.offset, 56);
    assert.equal(c.headers, 2);
    assert.equal(c.routerAlert, 0);
    assert.deepEqual([...c.payload], [...UPPER]);
  });

  it("skips Pad1 and unknown options of action 00 (RFC 8200 §4.2)", () => {
    const c = chain(walkIpv6Headers(packet(DEST, "3a00 00 00 1e02 abcd 00")));
    assert.equal(c.protocol, 58);
    assert.equal(c.routerAlert, undefined);
  });

  it("discards unknown options by action: 01 silently, 10 and 11 with a parameter problem code 2", () => {
    assert.deepEqual(walkIpv6Headers(packet(DEST, "3a00 4e02 0000 0100")), {
      ok: false,
      reason: "ipv6_ext_unknown_option",
    });
    assert.deepEqual(walkIpv6Headers(packet(DEST, "3a00 0100 8e02 0000")), {
      ok: false,
      reason: "ipv6_ext_unknown_option",
      paramProblem: { code: 2, pointer: 44, unlessMulticast: false },
    });
    assert.deepEqual(walkIpv6Headers(packet(DEST, "3a00 ce02 0000 0100")), {
      ok: false,
      reason: "ipv6_ext_unknown_option",
      paramProblem: { code: 2, pointer: 42, unlessMulticast: true },
    });
  });

  it("refuses hop-by-hop after another header with code 1 at the pointing next header (§4.1)", () => {
    assert.deepEqual(walkIpv6Headers(packet(DEST, "0000 0104 00000000" + "3a00 0104 00000000")), {
      ok: false,
      reason: "ipv6_ext_hop_by_hop_not_first",
      paramProblem: { code: 1, pointer: 40, unlessMulticast: false },
    });
  });

  it("ignores a routing header with no segments left and refuses one with segments (§4.4)", () => {
    const c = chain(walkIpv6Headers(packet(ROUTING, "3a00 0400 00000000")));
    assert.equal(c.protocol, 58);
    assert.equal(c.offset, 48);
    assert.deepEqual(walkIpv6Headers(packet(ROUTING, "3a02 0001 00000000" + "0".repeat(32))), {
      ok: false,
      reason: "ipv6_ext_routing_unsupported",
      paramProblem: { code: 0, pointer: 42, unlessMulticast: false },
    });
  });

  it("walks through an atomic fragment (RFC 6946 §4) and stops at a real one (§4.5)", () => {
    const atomic = chain(walkIpv6Headers(packet(FRAG, "3a00 0000 12345678")));
    assert.equal(atomic.protocol, 58);
    assert.equal(atomic.fragment, undefined);
    assert.equal(atomic.headers, 1);
    const first = chain(walkIpv6Headers(packet(FRAG, "3a00 0001 12345678")));
    assert.deepEqual(first.fragment, { offset: 0, more: true, ident: 0x12345678 });
    assert.equal(first.protocol, 58);
    assert.equal(first.offset, 48);
    const later = chain(walkIpv6Headers(packet(FRAG, "3a00 05a8 deadbeef")));
    assert.deepEqual(later.fragment, { offset: 1448, more: false, ident: 0xdeadbeef });
  });

  it("leaves no next header (59) and unknown protocols to the caller, with the pointer", () => {
    const none = chain(walkIpv6Headers(packet(DEST, "3b00 0104 00000000")));
    assert.equal(none.protocol, Ipv6NextHeader.NO_NEXT_HEADER);
    const esp = chain(walkIpv6Headers(packet(DEST, "3200 0104 00000000")));
    assert.equal(esp.protocol, Ipv6NextHeader.ESP);
    assert.equal(esp.protocolPointer, 40);
  });

  it("refuses truncated headers and options that run past their header", () => {
    // The header's length says 16 bytes; 8 of header and 8 of UPPER do not hold it whole + more.
    assert.deepEqual(walkIpv6Headers(packet(DEST, "3a02 0104 00000000")), {
      ok: false,
      reason: "ipv6_ext_truncated",
    });
    const bare = new Uint8Array(44);
    Ipv6Repr.emit({ src: SRC, dst: DST, nextHeader: DEST, payloadLen: 4, hopLimit: 64 }, bare);
    const pkt = Ipv6Packet.parse(bare);
    assert.ok(pkt.ok);
    assert.deepEqual(walkIpv6Headers(pkt.value), { ok: false, reason: "ipv6_ext_truncated" });
    assert.deepEqual(walkIpv6Headers(packet(DEST, "3a00 0105 00000000")), {
      ok: false,
      reason: "ipv6_ext_bad_option",
    });
    assert.deepEqual(walkIpv6Headers(packet(DEST, "3a00 01000100 0001")), {
      ok: false,
      reason: "ipv6_ext_bad_option",
    });
    assert.deepEqual(walkIpv6Headers(packet(HBH, "3a00 0503 000000 00")), {
      ok: false,
      reason: "ipv6_ext_bad_option",
    });
  });

  it("bounds the chain: 8 headers pass, a 9th is ipv6_ext_too_many; over 1 KiB is ipv6_ext_too_long", () => {
    const one = "3c00 0104 00000000";
    const eight = one.repeat(7) + "3a00 0104 00000000";
    assert.equal(chain(walkIpv6Headers(packet(DEST, eight))).headers, 8);
    assert.deepEqual(walkIpv6Headers(packet(DEST, one.repeat(8) + "3a00 0104 00000000")), {
      ok: false,
      reason: "ipv6_ext_too_many",
    });
    // One destination options header of 1032 bytes (length field 128).
    const big = "3a80 01ff" + "00".repeat(255) + "01ff" + "00".repeat(255) + "01ff" +
      "00".repeat(255) + "01ff" + "00".repeat(255) + "0100" + "00".repeat(4);
    assert.deepEqual(walkIpv6Headers(packet(DEST, big)), {
      ok: false,
      reason: "ipv6_ext_too_long",
    });
    assert.deepEqual(
      walkIpv6Headers(packet(DEST, one + "3a00 0104 00000000"), {
        maxHeaders: 1,
        maxChainBytes: 1024,
      }),
      { ok: false, reason: "ipv6_ext_too_many" },
    );
    assert.equal(DEFAULT_IPV6_EXT_LIMITS.maxHeaders, 8);
  });

  it("never throws on hostile chains (100,000 random ones) and lists its reasons among the wire's", () => {
    const random = seededRandom(61);
    const buf = new Uint8Array(4);
    const types = [HBH, DEST, ROUTING, FRAG, 58, 59, 6];
    for (let n = 0; n < 100_000; n++) {
      random.fill(buf);
      const len = 40 + (buf[0] % 120);
      const bytes = new Uint8Array(len);
      random.fill(bytes);
      bytes[0] = 0x60;
      bytes[4] = (len - 40) >>> 8;
      bytes[5] = (len - 40) & 0xff;
      bytes[6] = types[buf[1] % types.length];
      for (let i = 40; i < len; i += 8) {
        if (buf[2] & 1) bytes[i] = types[(bytes[i] + buf[3]) % types.length];
      }
      const pkt = Ipv6Packet.parse(bytes);
      assert.ok(pkt.ok);
      const r = walkIpv6Headers(pkt.value);
      if (!r.ok) assert.ok(IPV6_EXT_DROP_REASONS.includes(r.reason), r.reason);
      else assert.ok(r.value.offset <= len && r.value.headers <= 8);
    }
    for (const reason of IPV6_EXT_DROP_REASONS) {
      assert.ok(WIRE_DROP_REASONS.includes(reason), reason);
    }
  });
});
