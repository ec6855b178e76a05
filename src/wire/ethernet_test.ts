import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BROADCAST_MAC } from "./address.ts";
import {
  ETHERNET_HEADER_LEN,
  ETHERNET_MIN_FRAME_LEN,
  EthernetFrame,
  EthernetRepr,
  EtherType,
} from "./ethernet.ts";
import { GOLDEN_ARP_REQUEST, GOLDEN_SYN, hex, LINUX_MAC, STACK_MAC } from "./_test_util.ts";
import type { ParseResult } from "./parse_result.ts";

function parsed<T>(result: ParseResult<T>): T {
  if (!result.ok) throw new Error(`expected ok, got ${result.reason}`);
  return result.value;
}

describe("EthernetFrame (Ethernet II)", () => {
  it("parses a Linux ARP broadcast", () => {
    const frame = parsed(EthernetFrame.parse(GOLDEN_ARP_REQUEST));
    assert.deepEqual(frame.dst, BROADCAST_MAC);
    assert.deepEqual(frame.src, LINUX_MAC);
    assert.equal(frame.etherType, EtherType.ARP);
    assert.equal(frame.payload.length, 28);
    assert.equal(frame.payload.byteOffset, GOLDEN_ARP_REQUEST.byteOffset + ETHERNET_HEADER_LEN);
    assert.equal(frame.bytes, GOLDEN_ARP_REQUEST);
  });

  it("returns views, not copies", () => {
    const bytes = GOLDEN_SYN.slice();
    const frame = parsed(EthernetFrame.parse(bytes));
    assert.equal(frame.dst.buffer, bytes.buffer);
    bytes[0] = 0x42;
    assert.equal(frame.dst[0], 0x42);
  });

  it("accepts a bare header with an empty payload", () => {
    const frame = parsed(EthernetFrame.parse(hex("ffffffffffff 020000000001 0800")));
    assert.equal(frame.payload.length, 0);
  });

  it("rejects a frame shorter than 14 bytes: ethernet_truncated", () => {
    for (let len = 0; len < ETHERNET_HEADER_LEN; len++) {
      assert.deepEqual(EthernetFrame.parse(GOLDEN_SYN.subarray(0, len)), {
        ok: false,
        reason: "ethernet_truncated",
      });
    }
  });

  it("rejects an IEEE 802.3 length field: ethernet_not_ethernet_ii", () => {
    for (const type of ["05dc", "0000", "05ff"]) {
      const result = EthernetFrame.parse(hex(`ffffffffffff 020000000001 ${type} aaaa03`));
      assert.deepEqual(result, { ok: false, reason: "ethernet_not_ethernet_ii" });
    }
    assert.ok(EthernetFrame.parse(hex("ffffffffffff 020000000001 0600")).ok);
  });
});

describe("EthernetRepr", () => {
  it("parses copies of the addresses", () => {
    const bytes = GOLDEN_ARP_REQUEST.slice();
    const repr = EthernetRepr.parse(parsed(EthernetFrame.parse(bytes)));
    assert.deepEqual(repr, { dst: BROADCAST_MAC, src: LINUX_MAC, etherType: EtherType.ARP });
    bytes.fill(0);
    assert.deepEqual(repr.src, LINUX_MAC, "the repr survives buffer reuse");
  });

  it("emits the golden header and round-trips", () => {
    const repr: EthernetRepr = { dst: LINUX_MAC, src: STACK_MAC, etherType: EtherType.IPV4 };
    const buf = new Uint8Array(EthernetRepr.bufferLen(4)).fill(0xee);
    assert.equal(buf.length, 18);
    EthernetRepr.emit(repr, buf);
    assert.deepEqual(buf, hex("525400123456 020000000001 0800 eeeeeeee"));
    assert.deepEqual(EthernetRepr.parse(parsed(EthernetFrame.parse(buf))), repr);
  });

  it("swaps the addresses in place using the frame's own views", () => {
    const bytes = GOLDEN_SYN.slice();
    const frame = parsed(EthernetFrame.parse(bytes));
    EthernetRepr.emit({ dst: frame.src, src: frame.dst, etherType: frame.etherType }, bytes);
    assert.deepEqual(bytes.subarray(0, 6), LINUX_MAC);
    assert.deepEqual(bytes.subarray(6, 12), STACK_MAC);
  });

  it("has the minimum frame length of 60 bytes without FCS", () => {
    assert.equal(ETHERNET_MIN_FRAME_LEN, 60);
  });

  it("throws on misuse", () => {
    const repr: EthernetRepr = { dst: LINUX_MAC, src: STACK_MAC, etherType: EtherType.IPV4 };
    assert.throws(() => EthernetRepr.emit(repr, new Uint8Array(13)), {
      name: "RangeError",
      message: /buffer of 13 bytes is too small, need 14/,
    });
    assert.throws(
      () => EthernetRepr.emit({ ...repr, dst: new Uint8Array(5) }, new Uint8Array(14)),
      { name: "TypeError", message: /dst must be a 6-byte Uint8Array, got 5 bytes/ },
    );
    assert.throws(
      () => EthernetRepr.emit({ ...repr, etherType: 0x10000 }, new Uint8Array(14)),
      RangeError,
    );
  });
});
