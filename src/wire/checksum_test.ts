import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checksumAdd, checksumFinish, internetChecksum, ipv4PseudoHeaderSum } from "./checksum.ts";
import { atOffset, hex, LINUX_IP, STACK_IP } from "./_test_util.ts";
import { seededRandom } from "./random.ts";

/** Byte-pair reference: the RFC 1071 §4.1 algorithm, no cleverness. */
function referenceChecksum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i < bytes.length; i += 2) {
    sum += (bytes[i] << 8) + (i + 1 < bytes.length ? bytes[i + 1] : 0);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

describe("internetChecksum (RFC 1071)", () => {
  it("matches the RFC 1071 §3 example: sum ddf2, checksum 220d", () => {
    const bytes = hex("0001 f203 f4f5 f6f7");
    assert.equal(checksumFinish(checksumAdd(0, bytes)), 0x220d);
    assert.equal(internetChecksum(bytes), 0x220d);
    assert.equal(~checksumFinish(checksumAdd(0, bytes)) & 0xffff, 0xddf2);
  });

  it("matches the well-known IPv4 header checksum b861", () => {
    const header = hex("4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7");
    assert.equal(internetChecksum(header), 0xb861);
    header[10] = 0xb8;
    header[11] = 0x61;
    assert.equal(internetChecksum(header), 0, "a valid header sums to 0");
  });

  it("is 0xffff for empty and all-zero input", () => {
    assert.equal(internetChecksum(new Uint8Array(0)), 0xffff);
    assert.equal(internetChecksum(new Uint8Array(7)), 0xffff);
  });

  it("pads an odd trailing byte with zero", () => {
    assert.equal(internetChecksum(hex("ab")), ~0xab00 & 0xffff);
    assert.equal(internetChecksum(hex("0102 03")), ~(0x0102 + 0x0300) & 0xffff);
  });

  it("handles carries when every byte is 0xff", () => {
    for (const len of [1, 2, 3, 4, 63, 64, 65, 1500, 4096]) {
      const bytes = new Uint8Array(len).fill(0xff);
      assert.equal(internetChecksum(bytes), referenceChecksum(bytes), `length ${len}`);
    }
  });

  it("matches the reference for every length 0..300 at byte offsets 0..7", () => {
    const rng = seededRandom(1071);
    const data = new Uint8Array(300);
    rng.fill(data);
    for (let offset = 0; offset < 8; offset++) {
      for (let len = 0; len <= 300; len++) {
        const bytes = atOffset(data.subarray(0, len), offset);
        assert.equal(
          internetChecksum(bytes),
          referenceChecksum(bytes),
          `length ${len} at byteOffset ${offset}`,
        );
      }
    }
  });

  it("honours start and end inside a buffer, also at odd positions", () => {
    const rng = seededRandom(77);
    const data = new Uint8Array(200);
    rng.fill(data);
    for (let start = 0; start < 12; start++) {
      for (const end of [start, start + 1, start + 63, start + 64, start + 150, 200]) {
        const expected = referenceChecksum(data.subarray(start, end));
        assert.equal(
          checksumFinish(checksumAdd(0, data, start, end)),
          expected,
          `${start}..${end}`,
        );
      }
    }
  });

  it("composes partial sums over even-length pieces", () => {
    const rng = seededRandom(5);
    const data = new Uint8Array(1501);
    rng.fill(data);
    let sum = 0;
    for (let i = 0; i < data.length; i += 100) {
      sum = checksumAdd(sum, data, i, Math.min(i + 100, data.length));
    }
    assert.equal(checksumFinish(sum), referenceChecksum(data));
    // Pieces handed over as separate views work the same.
    const a = atOffset(data.subarray(0, 14), 3);
    const b = atOffset(data.subarray(14), 1);
    assert.equal(checksumFinish(checksumAdd(checksumAdd(0, a), b)), referenceChecksum(data));
  });

  it("matches the reference on large buffers (runs of 2^20 words are folded)", () => {
    const rng = seededRandom(65536);
    for (const len of [65536, 65535, 4 * 1024 * 1024 + 4099]) {
      const data = new Uint8Array(len + 2);
      rng.fill(data);
      for (const offset of [0, 1, 2]) {
        const bytes = data.subarray(offset, offset + len);
        assert.equal(internetChecksum(bytes), referenceChecksum(bytes), `${len} at ${offset}`);
      }
    }
    const ones = new Uint8Array(4 * 1024 * 1024 + 8).fill(0xff);
    assert.equal(internetChecksum(ones), referenceChecksum(ones));
  });

  it("verifies to 0 once the computed checksum is stored", () => {
    const rng = seededRandom(9);
    for (let trial = 0; trial < 200; trial++) {
      const bytes = new Uint8Array(2 + Math.floor(rng.next() * 300));
      rng.fill(bytes);
      bytes[0] = 0;
      bytes[1] = 0;
      const c = internetChecksum(bytes);
      bytes[0] = c >>> 8;
      bytes[1] = c & 0xff;
      assert.equal(internetChecksum(bytes), 0);
    }
  });

  it("rejects a range outside the buffer with a RangeError", () => {
    const bytes = new Uint8Array(10);
    assert.throws(() => checksumAdd(0, bytes, 0, 11), {
      name: "RangeError",
      message: /range 0\.\.11 is outside a 10-byte buffer/,
    });
    assert.throws(() => checksumAdd(0, bytes, 6, 5), RangeError);
    assert.throws(() => checksumAdd(0, bytes, -1), RangeError);
  });
});

describe("ipv4PseudoHeaderSum (RFC 768, RFC 9293 §3.1)", () => {
  it("equals the sum over the 12-byte pseudo-header", () => {
    const pseudo = hex("0a00020f 0a000202 00 06 0028");
    assert.equal(
      checksumFinish(ipv4PseudoHeaderSum(LINUX_IP, STACK_IP, 6, 40)),
      referenceChecksum(pseudo),
    );
    const high = hex("ffffffff c0a80001 00 11 ffff");
    assert.equal(
      checksumFinish(ipv4PseudoHeaderSum(0xffffffff, 0xc0a80001, 17, 0xffff)),
      referenceChecksum(high),
    );
  });

  it("chains with checksumAdd like one contiguous buffer", () => {
    const segment = hex("b26e0050 12345678 00000000 5002faf0 00000000 616263");
    const pseudo = hex("0a00020f 0a000202 00 06 0017");
    const whole = new Uint8Array(pseudo.length + segment.length);
    whole.set(pseudo);
    whole.set(segment, pseudo.length);
    const sum = checksumAdd(ipv4PseudoHeaderSum(LINUX_IP, STACK_IP, 6, segment.length), segment);
    assert.equal(checksumFinish(sum), referenceChecksum(whole));
  });
});
