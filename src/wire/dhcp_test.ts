import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  DHCP_MIN_EMIT_LEN,
  DHCP_MIN_LEN,
  DhcpMessageType,
  DhcpOp,
  DhcpOption,
  DhcpPacket,
  DhcpRepr,
} from "./dhcp.ts";
import { hex, toHex } from "./_test_util.ts";
import type { ParseResult } from "./parse_result.ts";

function parsed<T>(result: ParseResult<T>): T {
  if (!result.ok) throw new Error(`expected ok, got ${result.reason}`);
  return result.value;
}

const MAC = hex("525400123456");

const DISCOVER: DhcpRepr = {
  op: DhcpOp.REQUEST,
  hops: 0,
  xid: 0x12345678,
  secs: 3,
  broadcast: true,
  ciaddr: 0,
  yiaddr: 0,
  siaddr: 0,
  giaddr: 0,
  chaddr: MAC,
  messageType: DhcpMessageType.DISCOVER,
  requestedIp: 0x0a00020f,
  hostname: "guest",
  parameterRequestList: [1, 3, 6, 15, 26],
  clientId: hex("01525400123456"),
};

function roundTrip(repr: DhcpRepr): Uint8Array {
  const buf = new Uint8Array(DhcpRepr.bufferLen(repr));
  DhcpRepr.emit(repr, buf);
  return buf;
}

describe("DhcpRepr (RFC 2131 §2, RFC 2132)", () => {
  it("emits the fixed fields, the cookie and the options in order", () => {
    const buf = roundTrip(DISCOVER);
    assert.equal(buf.length, DHCP_MIN_EMIT_LEN);
    assert.equal(
      toHex(buf.subarray(0, 44)),
      "01010600" + "12345678" + "0003" + "8000" + "00000000".repeat(4) + "525400123456" +
        "00".repeat(10),
    );
    assert.equal(toHex(buf.subarray(236, 240)), "63825363");
    assert.equal(
      toHex(buf.subarray(240, 240 + 3 + 7 + 6 + 7 + 9 + 1)),
      "350101" + "0c056775657374" + "32040a00020f" + "3705" + "0103060f1a" + "3d0701525400123456" +
        "ff",
    );
    assert.ok(buf.subarray(273).every((b) => b === 0), "zero padding to 300 bytes");
  });

  it("round-trips every option", () => {
    const offer: DhcpRepr = {
      ...DISCOVER,
      op: DhcpOp.REPLY,
      yiaddr: 0x0a00020f,
      messageType: DhcpMessageType.OFFER,
      serverId: 0x0a000202,
      leaseTime: 86400,
      renewalTime: 43200,
      rebindingTime: 75600,
      subnetMask: 0xffffff00,
      routers: [0x0a000202],
      dnsServers: [0x0a000202, 0x08080808],
      domainName: "netisle.internal",
      interfaceMtu: 1500,
    };
    const back = parsed(DhcpRepr.parse(parsed(DhcpPacket.parse(roundTrip(offer)))));
    assert.deepEqual(back, offer);
  });

  it("grows past 300 bytes for many options", () => {
    const big: DhcpRepr = { ...DISCOVER, domainName: "x".repeat(200) };
    const buf = roundTrip(big);
    assert.equal(buf.length, DHCP_MIN_LEN + 3 + 7 + 202 + 6 + 7 + 9 + 1);
    assert.equal(parsed(DhcpRepr.parse(parsed(DhcpPacket.parse(buf)))).domainName, big.domainName);
  });

  it("skips pad and unknown options, and accepts a missing end option", () => {
    const buf = new Uint8Array(DHCP_MIN_LEN + 9);
    buf.set(roundTrip(DISCOVER).subarray(0, DHCP_MIN_LEN));
    buf.set([0, 0, 99, 2, 1, 2, 53, 1, 3], DHCP_MIN_LEN);
    const r = parsed(DhcpRepr.parse(parsed(DhcpPacket.parse(buf))));
    assert.equal(r.messageType, DhcpMessageType.REQUEST);
    assert.equal(r.hostname, undefined);
  });

  it("rejects hostile bytes with reasons, never throwing", () => {
    const good = roundTrip(DISCOVER);
    const reason = (b: Uint8Array): string => {
      const p = DhcpPacket.parse(b);
      if (!p.ok) return p.reason;
      const r = DhcpRepr.parse(p.value);
      return r.ok ? "ok" : r.reason;
    };
    assert.equal(reason(good.subarray(0, 239)), "dhcp_truncated");
    const cookie = good.slice();
    cookie[239] ^= 1;
    assert.equal(reason(cookie), "dhcp_bad_cookie");
    const hw = good.slice();
    hw[2] = 16;
    assert.equal(reason(hw), "dhcp_unsupported_hardware");
    const overrun = good.slice(0, DHCP_MIN_LEN + 3);
    overrun.set([12, 5, 65], DHCP_MIN_LEN);
    assert.equal(reason(overrun), "dhcp_bad_option");
    const noLen = good.slice(0, DHCP_MIN_LEN + 1);
    noLen[DHCP_MIN_LEN] = 53;
    assert.equal(reason(noLen), "dhcp_bad_option");
    for (
      const [code, value] of [
        [DhcpOption.MESSAGE_TYPE, [9]],
        [DhcpOption.MESSAGE_TYPE, [1, 1]],
        [DhcpOption.SERVER_ID, [10, 0, 2]],
        [DhcpOption.ROUTER, [10, 0, 2, 2, 1]],
        [DhcpOption.INTERFACE_MTU, [0, 67]],
        [DhcpOption.LEASE_TIME, [1]],
        [DhcpOption.CLIENT_ID, [1]],
        [DhcpOption.HOSTNAME, []],
      ] as const
    ) {
      const b = good.slice(0, DHCP_MIN_LEN + 2 + value.length);
      b.set([code, value.length, ...value], DHCP_MIN_LEN);
      assert.equal(reason(b), "dhcp_bad_option", `option ${code} ${value}`);
    }
    // Random bytes behind a valid header never throw.
    let seed = 7;
    for (let i = 0; i < 2000; i++) {
      const b = good.slice(0, DHCP_MIN_LEN + (i % 60));
      for (let j = DHCP_MIN_LEN; j < b.length; j++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        b[j] = seed >>> 24;
      }
      assert.doesNotThrow(() => reason(b));
    }
  });

  it("throws for misuse of the emitter", () => {
    assert.throws(() => DhcpRepr.emit(DISCOVER, new Uint8Array(100)), RangeError);
    assert.throws(() => roundTrip({ ...DISCOVER, chaddr: new Uint8Array(5) }), TypeError);
    assert.throws(() => roundTrip({ ...DISCOVER, xid: -1 }), RangeError);
    assert.throws(() => roundTrip({ ...DISCOVER, hostname: "x".repeat(256) }), RangeError);
    assert.throws(() => roundTrip({ ...DISCOVER, hostname: "\u{1f600}" }), RangeError);
  });
});
