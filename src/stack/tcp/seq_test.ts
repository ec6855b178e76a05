import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  seqAdd,
  seqGe,
  seqGt,
  seqInRange,
  seqLe,
  seqLt,
  seqMax,
  seqMin,
  seqSpan,
  seqSub,
} from "./seq.ts";

describe("sequence arithmetic modulo 2^32 (RFC 9293 §3.4)", () => {
  // [a, b] pairs with a before b, across and away from the wrap.
  const ORDERED = [[0, 1], [0xfffffff0, 0x10], [0x7ffffff0, 0x80000010], [5, 0x7fffffff]];

  it("orders numbers less than 2^31 apart, across the wrap", () => {
    for (const [a, b] of ORDERED) {
      assert.deepEqual(
        [seqLt(a, b), seqLe(a, b), seqGt(a, b), seqGe(a, b)],
        [true, true, false, false],
        `${a} before ${b}`,
      );
      assert.deepEqual([seqLt(b, a), seqGt(b, a)], [false, true]);
      assert.deepEqual([seqLe(a, a), seqGe(a, a), seqLt(a, a)], [true, true, false]);
    }
  });

  it("adds and subtracts with wrap", () => {
    assert.equal(seqAdd(0xffffffff, 2), 1);
    assert.equal(seqAdd(1, -2), 0xffffffff);
    assert.equal(seqSub(1, 0xffffffff), 2);
    assert.equal(seqSub(0xffffffff, 1), -2);
  });

  it("measures the span to a later number and 0 to an earlier one", () => {
    assert.equal(seqSpan(0xfffffff0, 0x10), 32);
    assert.equal(seqSpan(0x10, 0xfffffff0), 0);
    assert.equal(seqSpan(7, 7), 0);
  });

  it("picks the later and the earlier number", () => {
    for (const [a, b] of ORDERED) {
      assert.equal(seqMax(a, b), b);
      assert.equal(seqMax(b, a), b);
      assert.equal(seqMin(a, b), a);
      assert.equal(seqMin(b, a), a);
    }
  });

  it("tests membership of the half-open range [left, right)", () => {
    assert.equal(seqInRange(0, 0xfffffff0, 0x10), true);
    assert.equal(seqInRange(0xfffffff0, 0xfffffff0, 0x10), true);
    assert.equal(seqInRange(0x10, 0xfffffff0, 0x10), false);
    assert.equal(seqInRange(0xffffffef, 0xfffffff0, 0x10), false);
    assert.equal(seqInRange(5, 5, 5), false, "an empty range holds nothing");
  });
});
