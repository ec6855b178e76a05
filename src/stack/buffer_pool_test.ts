import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BufferPool } from "./buffer_pool.ts";

describe("BufferPool", () => {
  it("hands a buffer given back out again, once, and ignores buffers it did not hand out", () => {
    const pool = new BufferPool(1024, 4);
    const a = pool.take();
    assert.equal(a.byteLength, 1024);
    assert.ok(pool.holds(a));
    pool.give(a);
    assert.ok(!pool.holds(a), "given back: no longer held");
    pool.give(a); // a second time: ignored, or two holders would share it
    pool.give(new ArrayBuffer(1024)); // not the pool's: ignored
    assert.equal(pool.free, 1);
    assert.equal(pool.take(), a, "the same storage");
    assert.notEqual(pool.take(), a, "only once");
  });

  it("keeps at most maxFree free buffers", () => {
    const pool = new BufferPool(64, 3);
    const taken = Array.from({ length: 5 }, () => pool.take());
    for (const b of taken) pool.give(b);
    assert.equal(pool.free, 3);
  });

  it("zeroes a reused buffer only when asked to", () => {
    for (const zeroOnReuse of [false, true]) {
      const pool = new BufferPool(16, 1, { zeroOnReuse });
      const a = pool.take();
      new Uint8Array(a).fill(0xee);
      pool.give(a);
      const b = new Uint8Array(pool.take());
      assert.equal(b.buffer, a);
      assert.deepEqual(
        [...b],
        new Array(16).fill(zeroOnReuse ? 0 : 0xee),
        `zeroOnReuse ${zeroOnReuse}`,
      );
    }
  });

  it("knows a buffer it holds for another (hold) and drops it when given back", () => {
    const pool = new BufferPool(64, 4);
    const big = new ArrayBuffer(100);
    pool.hold(big);
    assert.ok(pool.holds(big));
    pool.give(big);
    assert.ok(!pool.holds(big));
    assert.equal(pool.free, 0, "not of the pool's size: dropped");
  });

  it("refuses sizes that are not positive integers", () => {
    assert.throws(() => new BufferPool(0, 1), RangeError);
    assert.throws(() => new BufferPool(64, -1), RangeError);
  });
});
