import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { formatIpv4Address } from "./address.ts";
import { ARP_PACKET_LEN, ArpOperation, ArpPacket, ArpRepr } from "./arp.ts";
import { ETHERNET_HEADER_LEN } from "./ethernet.ts";
import {
  GOLDEN_ARP_REPLY,
  GOLDEN_ARP_REQUEST,
  hex,
  LINUX_IP,
  LINUX_MAC,
  STACK_IP,
  STACK_MAC,
} from "./_test_util.ts";
import type { ParseResult } from "./parse_result.ts";

function parsed<T>(result: ParseResult<T>): T {
  if (!result.ok) throw new Error(`expected ok, got ${result.reason}`);
  return result.value;
}

const REQUEST_BODY = GOLDEN_ARP_REQUEST.subarray(ETHERNET_HEADER_LEN);

describe("ArpPacket (RFC 826)", () => {
  it("parses a Linux who-has request", () => {
    const pkt = parsed(ArpPacket.parse(REQUEST_BODY));
    assert.equal(pkt.hardwareType, 1);
    assert.equal(pkt.protocolType, 0x0800);
    assert.equal(pkt.operation, ArpOperation.REQUEST);
    assert.deepEqual(pkt.senderMac, LINUX_MAC);
    assert.equal(formatIpv4Address(pkt.senderIp), "10.0.2.15");
    assert.deepEqual(pkt.targetMac, new Uint8Array(6));
    assert.equal(formatIpv4Address(pkt.targetIp), "10.0.2.2");
  });

  it("ignores Ethernet padding after the 28 bytes", () => {
    const padded = new Uint8Array(46);
    padded.set(REQUEST_BODY);
    padded.fill(0xaa, ARP_PACKET_LEN);
    const repr = parsed(ArpRepr.parse(parsed(ArpPacket.parse(padded))));
    assert.equal(repr.targetIp, STACK_IP);
  });

  it("rejects short packets: arp_truncated", () => {
    assert.deepEqual(ArpPacket.parse(REQUEST_BODY.subarray(0, 27)), {
      ok: false,
      reason: "arp_truncated",
    });
    assert.deepEqual(ArpPacket.parse(new Uint8Array(0)), { ok: false, reason: "arp_truncated" });
  });

  it("rejects other hardware: arp_unsupported_hardware", () => {
    const ieee802 = REQUEST_BODY.slice();
    ieee802[1] = 6;
    assert.deepEqual(ArpPacket.parse(ieee802), { ok: false, reason: "arp_unsupported_hardware" });
    const hlen = REQUEST_BODY.slice();
    hlen[4] = 8;
    assert.deepEqual(ArpPacket.parse(hlen), { ok: false, reason: "arp_unsupported_hardware" });
  });

  it("rejects other protocols: arp_unsupported_protocol", () => {
    const ipv6 = REQUEST_BODY.slice();
    ipv6.set([0x86, 0xdd], 2);
    assert.deepEqual(ArpPacket.parse(ipv6), { ok: false, reason: "arp_unsupported_protocol" });
    const plen = REQUEST_BODY.slice();
    plen[5] = 16;
    assert.deepEqual(ArpPacket.parse(plen), { ok: false, reason: "arp_unsupported_protocol" });
  });
});

describe("ArpRepr", () => {
  it("parses copies of the addresses", () => {
    const bytes = REQUEST_BODY.slice();
    const repr = parsed(ArpRepr.parse(parsed(ArpPacket.parse(bytes))));
    assert.deepEqual(repr, {
      operation: ArpOperation.REQUEST,
      senderMac: LINUX_MAC,
      senderIp: LINUX_IP,
      targetMac: new Uint8Array(6),
      targetIp: STACK_IP,
    });
    bytes.fill(0);
    assert.deepEqual(repr.senderMac, LINUX_MAC);
  });

  it("rejects unknown operations: arp_unsupported_operation", () => {
    for (const op of [0, 3, 4, 8, 0x0101]) {
      const bytes = REQUEST_BODY.slice();
      bytes[6] = op >>> 8;
      bytes[7] = op & 0xff;
      const pkt = parsed(ArpPacket.parse(bytes));
      assert.equal(pkt.operation, op);
      assert.deepEqual(ArpRepr.parse(pkt), { ok: false, reason: "arp_unsupported_operation" });
    }
  });

  it("emits the golden request and reply byte for byte", () => {
    const buf = new Uint8Array(ArpRepr.bufferLen());
    ArpRepr.emit({
      operation: ArpOperation.REQUEST,
      senderMac: LINUX_MAC,
      senderIp: LINUX_IP,
      targetMac: new Uint8Array(6),
      targetIp: STACK_IP,
    }, buf);
    assert.deepEqual(buf, REQUEST_BODY);
    const reply: ArpRepr = {
      operation: ArpOperation.REPLY,
      senderMac: STACK_MAC,
      senderIp: STACK_IP,
      targetMac: LINUX_MAC,
      targetIp: LINUX_IP,
    };
    ArpRepr.emit(reply, buf);
    assert.deepEqual(buf, GOLDEN_ARP_REPLY.subarray(ETHERNET_HEADER_LEN));
    assert.deepEqual(parsed(ArpRepr.parse(parsed(ArpPacket.parse(buf)))), reply);
  });

  it("builds a reply in place over the request, from the request's own views", () => {
    const buf = REQUEST_BODY.slice();
    const pkt = parsed(ArpPacket.parse(buf));
    ArpRepr.emit({
      operation: ArpOperation.REPLY,
      senderMac: STACK_MAC,
      senderIp: pkt.targetIp,
      targetMac: pkt.senderMac,
      targetIp: pkt.senderIp,
    }, buf);
    assert.deepEqual(buf, GOLDEN_ARP_REPLY.subarray(ETHERNET_HEADER_LEN));
  });

  it("throws on misuse", () => {
    const repr: ArpRepr = {
      operation: ArpOperation.REPLY,
      senderMac: STACK_MAC,
      senderIp: STACK_IP,
      targetMac: LINUX_MAC,
      targetIp: LINUX_IP,
    };
    assert.throws(() => ArpRepr.emit(repr, new Uint8Array(27)), {
      name: "RangeError",
      message: /ArpRepr\.emit: buffer of 27 bytes is too small, need 28/,
    });
    assert.throws(
      () => ArpRepr.emit({ ...repr, senderMac: hex("0200") }, new Uint8Array(28)),
      { name: "TypeError", message: /senderMac must be a 6-byte Uint8Array, got 2 bytes/ },
    );
    assert.throws(() => ArpRepr.emit({ ...repr, targetIp: -1 }, new Uint8Array(28)), {
      name: "RangeError",
      message: /targetIp must be an integer in 0\.\.4294967295, got -1/,
    });
  });
});
