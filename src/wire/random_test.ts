import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { seededRandom } from "./random.ts";

describe("seededRandom", () => {
  it("is deterministic for a seed, pinned so that other tests stay stable", () => {
    const a = seededRandom(0);
    assert.deepEqual([a.u32(), a.u32(), a.u32()], [0x64625032, 0xd9c0799c, 0xaf362e10]);
    const b = seededRandom(42);
    assert.deepEqual([b.u32(), b.u32(), b.u32()], [0x20e44818, 0x0895a923, 0x1339a01f]);
  });

  it("takes the seed modulo 2^32", () => {
    assert.equal(seededRandom(-1).u32(), seededRandom(0xffffffff).u32());
    assert.equal(seededRandom(2 ** 32 + 7).u32(), seededRandom(7).u32());
    assert.equal(seededRandom(7.9).u32(), seededRandom(7).u32());
  });

  it("gives different streams for different seeds", () => {
    const seen = new Set<number>();
    for (let seed = 0; seed < 1000; seed++) seen.add(seededRandom(seed).u32());
    assert.equal(seen.size, 1000);
  });

  it("next() is in [0, 1) and roughly uniform", () => {
    const rng = seededRandom(99);
    const buckets = new Array<number>(10).fill(0);
    let sum = 0;
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const x = rng.next();
      assert.ok(x >= 0 && x < 1);
      sum += x;
      buckets[Math.floor(x * 10)]++;
    }
    assert.ok(Math.abs(sum / n - 0.5) < 0.01, `mean ${sum / n}`);
    for (const count of buckets) assert.ok(Math.abs(count - n / 10) < n / 100, `bucket ${count}`);
  });

  it("u32() returns unsigned 32-bit integers using all bits", () => {
    const rng = seededRandom(5);
    let or = 0;
    let and = 0xffffffff;
    for (let i = 0; i < 1000; i++) {
      const x = rng.u32();
      assert.ok(Number.isInteger(x) && x >= 0 && x <= 0xffffffff);
      or |= x;
      and &= x;
    }
    assert.equal(or >>> 0, 0xffffffff);
    assert.equal(and, 0);
  });

  it("fill() writes every byte for every length, deterministically", () => {
    for (let len = 0; len < 10; len++) {
      const a = new Uint8Array(len);
      const b = new Uint8Array(len);
      seededRandom(len).fill(a);
      seededRandom(len).fill(b);
      assert.deepEqual(a, b);
    }
    const big = new Uint8Array(4099);
    seededRandom(1).fill(big);
    const counts = new Array<number>(256).fill(0);
    for (const byte of big) counts[byte]++;
    assert.ok(counts.every((c) => c < 50), "no byte value dominates");
    assert.ok(big.subarray(4096).some((b) => b !== 0), "the tail is filled");
  });

  it("fill works detached from its generator object", () => {
    const rng = seededRandom(3);
    const fill = rng.fill;
    const buf = new Uint8Array(8);
    fill(buf);
    assert.ok(buf.some((b) => b !== 0));
  });

  it("rejects a non-finite seed", () => {
    assert.throws(() => seededRandom(NaN), { name: "RangeError", message: /got NaN/ });
    assert.throws(() => seededRandom(Infinity), RangeError);
  });
});
