import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { seededRandom } from "../../wire/mod.ts";
import { SendBuffer } from "./send_buffer.ts";

function bytes(from: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (from + i) & 0xff;
  return out;
}

describe("SendBuffer", () => {
  it("rejects a capacity that is not a positive integer", () => {
    for (const bad of [0, -1, 1.5, NaN, Infinity]) {
      assert.throws(() => new SendBuffer(bad), RangeError);
    }
    assert.throws(() => new SendBuffer(0), /capacity must be a positive integer, got 0/);
  });

  it("starts empty with all of its capacity free", () => {
    const sb = new SendBuffer(100);
    assert.equal(sb.length, 0);
    assert.equal(sb.capacity, 100);
    assert.equal(sb.free, 100);
  });

  it("write takes as much as fits and returns the count (backpressure)", () => {
    const sb = new SendBuffer(10);
    assert.equal(sb.write(bytes(0, 6)), 6);
    assert.equal(sb.write(bytes(6, 6)), 4);
    assert.equal(sb.length, 10);
    assert.equal(sb.free, 0);
    assert.equal(sb.write(bytes(0, 1)), 0);
    assert.equal(sb.write(new Uint8Array(0)), 0);
    assert.deepEqual(sb.peek(0, 10), bytes(0, 10));
  });

  it("write copies: the caller may reuse its array at once", () => {
    const sb = new SendBuffer(8);
    const data = bytes(1, 4);
    sb.write(data);
    data.fill(0);
    assert.deepEqual(sb.peek(0, 4), bytes(1, 4));
  });

  it("peek of a contiguous range is a zero-copy view of the storage", () => {
    const sb = new SendBuffer(16);
    sb.write(bytes(0, 8));
    const a = sb.peek(2, 4);
    const b = sb.peek(0, 8);
    assert.deepEqual(a, bytes(2, 4));
    assert.equal(a.buffer, b.buffer);
    assert.equal(sb.peek(3, 0).length, 0);
    assert.equal(sb.peek(8, 0).length, 0);
  });

  it("peek copies a wrapped range into out, or into a new array", () => {
    const sb = new SendBuffer(10);
    sb.write(bytes(0, 8));
    sb.consume(6); // head at index 6, holds bytes 6..7
    assert.equal(sb.write(bytes(8, 6)), 6); // indexes 8,9,0,1,2,3
    assert.equal(sb.length, 8);
    assert.deepEqual(sb.peek(0, 8), bytes(6, 8));
    const out = new Uint8Array(20);
    const v = sb.peek(1, 6, out);
    assert.deepEqual(v, bytes(7, 6));
    assert.equal(v.buffer, out.buffer);
    assert.deepEqual(sb.peek(4, 4), bytes(10, 4)); // after the wrap: contiguous view
    assert.throws(() => sb.peek(0, 8, new Uint8Array(7)), /out holds 7 bytes/);
  });

  it("peek throws RangeError for ranges outside the bytes held", () => {
    const sb = new SendBuffer(10);
    sb.write(bytes(0, 5));
    assert.throws(() => sb.peek(0, 6), RangeError);
    assert.throws(() => sb.peek(4, 2), /range \[4, 4 \+ 2\) is outside the 5 bytes held/);
    assert.throws(() => sb.peek(-1, 1), RangeError);
    assert.throws(() => sb.peek(0, -1), RangeError);
    assert.throws(() => sb.peek(0.5, 1), RangeError);
  });

  it("consume drops acknowledged bytes from the front (RFC 9293 §3.10.7.4)", () => {
    const sb = new SendBuffer(10);
    sb.write(bytes(0, 10));
    sb.consume(3);
    assert.equal(sb.length, 7);
    assert.equal(sb.free, 3);
    assert.deepEqual(sb.peek(0, 7), bytes(3, 7));
    sb.consume(0);
    assert.equal(sb.length, 7);
    assert.throws(() => sb.consume(8), /cannot drop 8 bytes, 7 are held/);
    assert.throws(() => sb.consume(-1), RangeError);
    sb.consume(7);
    assert.equal(sb.length, 0);
  });

  it("an emptied buffer restarts at the front so writes stay contiguous", () => {
    const sb = new SendBuffer(10);
    sb.write(bytes(0, 7));
    sb.consume(7);
    sb.write(bytes(50, 10));
    const whole = sb.peek(0, 10);
    const again = sb.peek(0, 10);
    assert.equal(whole.byteOffset, again.byteOffset);
    assert.equal(whole.buffer, again.buffer); // a view, not a copy: no wrap
    assert.deepEqual(whole, bytes(50, 10));
  });

  it("resize grows and keeps the bytes in order, even when wrapped", () => {
    const sb = new SendBuffer(8);
    sb.write(bytes(0, 8));
    sb.consume(5);
    sb.write(bytes(8, 4)); // wrapped: holds 5..11
    sb.resize(16);
    assert.equal(sb.capacity, 16);
    assert.equal(sb.length, 7);
    assert.equal(sb.free, 9);
    assert.deepEqual(sb.peek(0, 7), bytes(5, 7));
    assert.equal(sb.write(bytes(12, 20)), 9);
    assert.deepEqual(sb.peek(0, 16), bytes(5, 16));
    sb.resize(16);
    assert.equal(sb.capacity, 16);
    assert.throws(() => sb.resize(8), /cannot shrink from 16 to 8 bytes/);
    assert.throws(() => sb.resize(0), RangeError);
    const fresh = new SendBuffer(4);
    fresh.resize(6); // before any storage exists
    assert.equal(fresh.write(bytes(0, 9)), 6);
    assert.deepEqual(fresh.peek(0, 6), bytes(0, 6));
  });

  it("clear drops everything", () => {
    const sb = new SendBuffer(4);
    sb.write(bytes(0, 4));
    sb.clear();
    assert.equal(sb.length, 0);
    assert.equal(sb.free, 4);
    assert.equal(sb.write(bytes(9, 2)), 2);
    assert.deepEqual(sb.peek(0, 2), bytes(9, 2));
  });

  it("matches a reference queue under random writes, peeks and consumes", () => {
    const rng = seededRandom(0x5e4d);
    const cap = 977; // not a power of two
    const sb = new SendBuffer(cap);
    let ref: number[] = [];
    let nextByte = 0;
    const out = new Uint8Array(cap);
    for (let step = 0; step < 5000; step++) {
      const op = rng.u32() % 3;
      if (op === 0) {
        const n = rng.u32() % 400;
        const data = bytes(nextByte, n);
        const took = sb.write(data);
        assert.equal(took, Math.min(n, cap - ref.length));
        for (let i = 0; i < took; i++) ref.push(data[i]);
        nextByte += took;
      } else if (op === 1) {
        const n = ref.length === 0 ? 0 : rng.u32() % (ref.length + 1);
        sb.consume(n);
        ref = ref.slice(n);
      } else {
        const off = rng.u32() % (ref.length + 1);
        const len = rng.u32() % (ref.length - off + 1);
        const got = sb.peek(off, len, rng.next() < 0.5 ? out : undefined);
        assert.equal(got.length, len);
        assert.deepEqual(Array.from(got), ref.slice(off, off + len));
      }
      assert.equal(sb.length, ref.length);
      assert.equal(sb.free, cap - ref.length);
    }
  });

  it("keeps the stream intact when the storage grows while the bytes wrap around it", () => {
    // The storage starts at 4096 bytes: 2500 consumed, then 3500 held wrap past its end,
    // and the next write needs 5500 bytes of storage.
    const sb = new SendBuffer(64 * 1024);
    assert.equal(sb.write(bytes(0, 3000)), 3000);
    sb.consume(2500);
    assert.equal(sb.write(bytes(3000, 3000)), 3000);
    assert.deepEqual(Array.from(sb.peek(0, 3500)), Array.from(bytes(2500, 3500)));
    assert.equal(sb.write(bytes(6000, 2000)), 2000);
    assert.equal(sb.length, 5500);
    assert.deepEqual(Array.from(sb.peek(0, 5500)), Array.from(bytes(2500, 5500)));
    sb.resize(128 * 1024);
    assert.equal(sb.write(bytes(8000, 100_000)), 100_000);
    assert.deepEqual(Array.from(sb.peek(5400, 200)), Array.from(bytes(7900, 200)));
  });

  it("copyOut writes a range into a frame, also across the wrap", () => {
    const sb = new SendBuffer(8);
    sb.write(bytes(0, 8));
    sb.consume(6);
    sb.write(bytes(8, 4)); // holds 6..11, wrapped after 7
    const frame = new Uint8Array(10).fill(0xee);
    sb.copyOut(1, 4, frame, 3);
    assert.deepEqual(Array.from(frame), [0xee, 0xee, 0xee, 7, 8, 9, 10, 0xee, 0xee, 0xee]);
    sb.copyOut(0, 0, frame, 10); // nothing, even at the end
    assert.throws(() => sb.copyOut(3, 4, frame, 0), /range \[3, 3 \+ 4\) of the 6 bytes/);
    assert.throws(() => sb.copyOut(0, 4, frame, 7), RangeError);
  });
});
