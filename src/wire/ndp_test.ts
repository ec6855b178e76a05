import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Icmpv6Packet } from "./icmpv6.ts";
import { type Ipv6Address, parseIpv6Address } from "./ipv6_address.ts";
import { IPV6_ALL_NODES, IPV6_ALL_ROUTERS } from "./ipv6_address_kinds.ts";
import { isNdpType, NDP_MAX_OPTIONS, NDP_WIRE_DROP_REASONS, NdpRepr } from "./ndp.ts";
import { WIRE_DROP_REASONS } from "./parse_result.ts";
import {
  GOLDEN_NA,
  GOLDEN_NS,
  GOLDEN_RA,
  GOLDEN_RS,
  V6_PEER_LINK_LOCAL,
  V6_PEER_MAC,
  V6_STACK_LINK_LOCAL,
  V6_STACK_MAC,
} from "./_ipv6_test_util.ts";
import { atOffset, hex, toHex } from "./_test_util.ts";
import type { ParseResult } from "./parse_result.ts";

function parsed<T>(result: ParseResult<T>): T {
  if (!result.ok) throw new Error(`expected ok, got ${result.reason}`);
  return result.value;
}

const PEER_LL = parseIpv6Address(V6_PEER_LINK_LOCAL);
const STACK_LL = parseIpv6Address(V6_STACK_LINK_LOCAL);
const STACK = parseIpv6Address("fd00::2");
const SOLICITED = parseIpv6Address("ff02::1:ff00:2");

function decode(frame: Uint8Array, src: Ipv6Address, dst: Ipv6Address): NdpRepr {
  const pkt = parsed(Icmpv6Packet.parse(frame.subarray(54)));
  assert.equal(pkt.verifyChecksum(src, dst), true);
  return parsed(NdpRepr.parse(pkt));
}

function emit(repr: NdpRepr, src: Ipv6Address, dst: Ipv6Address): string {
  const buf = atOffset(new Uint8Array(NdpRepr.bufferLen(repr)), 1);
  NdpRepr.emit(repr, buf, src, dst);
  return toHex(buf);
}

/** An NDP message of `type` (hex) with a zero checksum: the parser does not check it. */
function msg(body: string): NdpRepr | string {
  const r = NdpRepr.parse(parsed(Icmpv6Packet.parse(hex(body))));
  return r.ok ? r.value : r.reason;
}

const NS_HEAD = "87000000 00000000 fd000000000000000000000000000002";

describe("NdpRepr (RFC 4861 §4)", () => {
  it("decodes Linux's neighbour solicitation and emits it byte for byte (§4.3, §4.6.1)", () => {
    const ns = decode(GOLDEN_NS, PEER_LL, SOLICITED);
    assert.deepEqual(ns, {
      type: "neighbor_solicit",
      target: STACK,
      options: { sourceLinkAddr: V6_PEER_MAC },
    });
    assert.equal(emit(ns, PEER_LL, SOLICITED), toHex(GOLDEN_NS.subarray(54)));
  });

  it("decodes and emits a solicited advertisement with R, S, O (§4.4)", () => {
    const na = decode(GOLDEN_NA, STACK, PEER_LL);
    assert.deepEqual(na, {
      type: "neighbor_advert",
      router: true,
      solicited: true,
      override: true,
      target: STACK,
      options: { targetLinkAddr: V6_STACK_MAC },
    });
    assert.equal(emit(na, STACK, PEER_LL), toHex(GOLDEN_NA.subarray(54)));
  });

  it("decodes and emits a router advertisement with MTU, prefix and RDNSS (§4.2, §4.6.2, §4.6.4, RFC 8106 §5.1)", () => {
    const ra = decode(GOLDEN_RA, STACK_LL, IPV6_ALL_NODES);
    assert.deepEqual(ra, {
      type: "router_advert",
      curHopLimit: 64,
      managed: false,
      other: false,
      routerLifetime: 0,
      reachableTime: 0,
      retransTimer: 0,
      options: {
        sourceLinkAddr: V6_STACK_MAC,
        mtu: 1500,
        prefixes: [{
          prefixLength: 64,
          onLink: true,
          autonomous: true,
          validLifetime: 86400,
          preferredLifetime: 14400,
          prefix: parseIpv6Address("fd00::"),
        }],
        rdnss: [{ lifetime: 1200, servers: [STACK] }],
      },
    });
    assert.equal(emit(ra, STACK_LL, IPV6_ALL_NODES), toHex(GOLDEN_RA.subarray(54)));
  });

  it("decodes and emits a router solicitation (§4.1)", () => {
    const rs = decode(GOLDEN_RS, PEER_LL, IPV6_ALL_ROUTERS);
    assert.deepEqual(rs, { type: "router_solicit", options: { sourceLinkAddr: V6_PEER_MAC } });
    assert.equal(emit(rs, PEER_LL, IPV6_ALL_ROUTERS), toHex(GOLDEN_RS.subarray(54)));
  });

  it("decodes a redirect (§4.5) and round-trips one with flags and managed/other set", () => {
    const redirect = msg(
      "89000000 00000000" + "fe80" + "0".repeat(26) + "01" + "fd00" + "0".repeat(26) + "99",
    );
    assert.deepEqual(redirect, {
      type: "redirect",
      target: parseIpv6Address("fe80::1"),
      destination: parseIpv6Address("fd00::99"),
      options: {},
    });
    const ra: NdpRepr = {
      type: "router_advert",
      curHopLimit: 255,
      managed: true,
      other: true,
      routerLifetime: 1800,
      reachableTime: 30000,
      retransTimer: 1000,
      options: {},
    };
    const buf = new Uint8Array(NdpRepr.bufferLen(ra));
    NdpRepr.emit(ra, buf, STACK_LL, IPV6_ALL_NODES);
    assert.equal(toHex(buf.subarray(4)), "ffc0070800007530000003e8");
    assert.deepEqual(parsed(NdpRepr.parse(parsed(Icmpv6Packet.parse(buf)))), ra);
  });

  it("skips unknown options (§4.6) and keeps the first link-layer address of each kind", () => {
    const r = msg(NS_HEAD + "fe01 000000000000" + "0101 aaaaaaaaaaaa" + "0101 bbbbbbbbbbbb");
    assert.deepEqual(r, {
      type: "neighbor_solicit",
      target: STACK,
      options: { sourceLinkAddr: hex("aaaaaaaaaaaa") },
    });
  });

  it("refuses hostile messages by reason (§6.1, §7.1)", () => {
    const cases: Array<[string, string]> = [
      ["87000000 00000000 fd00", "ndp_truncated"],
      ["86000000 00000000 00000000", "ndp_truncated"],
      ["87010000 00000000 fd000000000000000000000000000002", "ndp_bad_code"],
      [NS_HEAD + "0100 525400123456", "ndp_bad_option"], // length 0 (§4.6)
      [NS_HEAD + "0102 525400123456", "ndp_bad_option"], // runs past the end
      [NS_HEAD + "01", "ndp_bad_option"], // one lone byte
      [NS_HEAD + "0102 525400123456 0000000000000000", "ndp_bad_option"], // LLA not 6 bytes
      [NS_HEAD + "0502 0000000005dc 0000000000000000", "ndp_bad_option"], // MTU of length 2
      [NS_HEAD + "0301 000000000000", "ndp_bad_option"], // prefix of length 1
      [NS_HEAD + "1902 000000000708" + "0".repeat(16), "ndp_bad_option"], // RDNSS of even length
      [NS_HEAD + "1901 000000000708", "ndp_bad_option"], // RDNSS without a server
      [NS_HEAD + "fe01 000000000000".repeat(NDP_MAX_OPTIONS + 1), "ndp_too_many_options"],
      ["87000000 00000000 ff020000000000000000000000000001", "ndp_multicast_target"],
      ["88000000 00000000 ff020000000000000000000000000001", "ndp_multicast_target"],
      ["80000000 00000000", "ndp_not_ndp"],
    ];
    for (const [body, reason] of cases) assert.equal(msg(body), reason, body);
    assert.equal(typeof msg(NS_HEAD + "fe01 000000000000".repeat(NDP_MAX_OPTIONS)), "object");
    for (const r of NDP_WIRE_DROP_REASONS) assert.ok(WIRE_DROP_REASONS.includes(r), r);
    assert.deepEqual([133, 134, 135, 136, 137, 128, 143].map(isNdpType), [
      true,
      true,
      true,
      true,
      true,
      false,
      false,
    ]);
  });

  it("throws on misuse of the emitter", () => {
    const buf = new Uint8Array(64);
    const ns = (options: object) =>
      NdpRepr.emit(
        { type: "neighbor_solicit", target: STACK, options } as NdpRepr,
        buf,
        STACK,
        STACK,
      );
    assert.throws(() => ns({ sourceLinkAddr: new Uint8Array(5) }), TypeError);
    assert.throws(() => ns({ rdnss: [{ lifetime: 1, servers: [] }] }), RangeError);
    assert.throws(() => ns({ mtu: -1 }), RangeError);
    assert.throws(
      () => NdpRepr.emit({ type: "router_solicit", options: {} }, new Uint8Array(7), STACK, STACK),
      RangeError,
    );
    assert.throws(
      () => NdpRepr.emit({ type: "x" } as unknown as NdpRepr, buf, STACK, STACK),
      TypeError,
    );
  });
});
