import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  encodePcapHeader,
  encodePcapRecords,
  PCAP_FILE_HEADER_LEN,
  PCAP_RECORD_HEADER_LEN,
  pcapRecordLen,
  writePcapRecord,
} from "./pcap_writer.ts";
import { hex } from "./_test_util.ts";

// 2023-11-14T22:13:20.0005Z: 1_700_000_000 s (0x6553f100) and half a millisecond.
const T = 1_700_000_000_000.5;
const FRAME = hex("deadbeef");

describe("pcap writer", () => {
  it("encodes the microsecond file header (golden bytes)", () => {
    assert.deepEqual(
      encodePcapHeader({ snaplen: 1514 }),
      hex("d4c3b2a1 0200 0400 00000000 00000000 ea050000 01000000"),
    );
  });

  it("encodes the nanosecond file header and another linktype (golden bytes)", () => {
    assert.deepEqual(
      encodePcapHeader({ snaplen: 65535, precision: "ns", linktype: 101 }),
      hex("4d3cb2a1 0200 0400 00000000 00000000 ffff0000 65000000"),
    );
  });

  it("encodes a record with a microsecond timestamp (golden bytes)", () => {
    const out = encodePcapRecords([{ timeMs: T, data: FRAME }], { snaplen: 1514 });
    assert.deepEqual(out, hex("00f15365 f4010000 04000000 04000000 deadbeef"));
  });

  it("encodes a record with a nanosecond timestamp (golden bytes)", () => {
    const out = encodePcapRecords([{ timeMs: T, data: FRAME }], { snaplen: 1514, precision: "ns" });
    assert.deepEqual(out, hex("00f15365 20a10700 04000000 04000000 deadbeef"));
  });

  it("truncates to snaplen and keeps the original length", () => {
    const out = encodePcapRecords([{ timeMs: 1000, data: FRAME }], { snaplen: 2 });
    assert.deepEqual(out, hex("01000000 00000000 02000000 04000000 dead"));
    assert.equal(pcapRecordLen(4, 2), PCAP_RECORD_HEADER_LEN + 2);
  });

  it("writes records back to back in one buffer", () => {
    const a = new Uint8Array(60).fill(1);
    const b = new Uint8Array(1514).fill(2);
    const out = encodePcapRecords([{ timeMs: 0, data: a }, { timeMs: 1, data: b }], {
      snaplen: 1514,
    });
    assert.equal(out.length, 16 + 60 + 16 + 1514);
    const v = new DataView(out.buffer);
    assert.equal(v.getUint32(76 + 4, true), 1000, "1 ms = 1000 µs");
    assert.equal(v.getUint32(76 + 8, true), 1514);
    assert.equal(out[76 + 16], 2);
  });

  it("writes at an offset of a larger buffer (a view with a byteOffset)", () => {
    const backing = new Uint8Array(100);
    const view = backing.subarray(10);
    const n = writePcapRecord(view, 4, { timeMs: T, data: FRAME }, { snaplen: 1514 });
    assert.equal(n, 20);
    assert.deepEqual(backing.subarray(14, 34), hex("00f15365 f4010000 04000000 04000000 deadbeef"));
  });

  it("never writes a fraction of a full second", () => {
    const out = encodePcapRecords([{ timeMs: 1999.9999999, data: FRAME }], {
      snaplen: 1514,
      precision: "ns",
    });
    const v = new DataView(out.buffer);
    assert.ok(v.getUint32(4, true) < 1e9);
  });

  it("throws RangeError for misuse", () => {
    assert.throws(() => encodePcapHeader({ snaplen: 0 }), RangeError);
    assert.throws(() => encodePcapHeader({ snaplen: 1.5 }), RangeError);
    assert.throws(() => encodePcapHeader({ snaplen: 100, linktype: 70000 }), RangeError);
    assert.throws(
      () => encodePcapRecords([{ timeMs: -1, data: FRAME }], { snaplen: 100 }),
      RangeError,
    );
    assert.throws(
      () => encodePcapRecords([{ timeMs: NaN, data: FRAME }], { snaplen: 100 }),
      RangeError,
    );
    assert.throws(
      () => writePcapRecord(new Uint8Array(19), 0, { timeMs: 0, data: FRAME }, { snaplen: 100 }),
      /does not fit/,
    );
    assert.equal(PCAP_FILE_HEADER_LEN, 24);
  });
});
