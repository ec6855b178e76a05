import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { seededRandom } from "../wire/mod.ts";
import { type DeadlineEntry, DeadlineHeap } from "./deadline_heap.ts";

function entry(): DeadlineEntry {
  return { heapIndex: -1, heapKey: 0 };
}

describe("DeadlineHeap", () => {
  it("keeps the earliest key on top through inserts, moves both ways and deletes", () => {
    const rnd = seededRandom(7);
    const heap = new DeadlineHeap<DeadlineEntry>();
    const all = Array.from({ length: 200 }, entry);
    const inHeap = new Set<DeadlineEntry>();
    for (let step = 0; step < 20_000; step++) {
      const e = all[rnd.u32() % all.length];
      if (rnd.u32() % 4 === 0) {
        heap.delete(e);
        inHeap.delete(e);
        assert.equal(e.heapIndex, -1);
      } else {
        heap.set(e, rnd.u32() % 10_001);
        inHeap.add(e);
      }
      assert.equal(heap.size, inHeap.size);
      let min = Infinity;
      for (const x of inHeap) min = Math.min(min, x.heapKey);
      assert.equal(heap.peek()?.heapKey ?? Infinity, min);
    }
    heap.clear();
    assert.equal(heap.size, 0);
    assert.ok(all.every((e) => e.heapIndex === -1));
  });

  it("pops in key order", () => {
    const heap = new DeadlineHeap<DeadlineEntry>();
    const keys = [50, 10, 40, 10, 30, 20];
    for (const k of keys) heap.set(entry(), k);
    const out: number[] = [];
    for (let e = heap.peek(); e; e = heap.peek()) {
      out.push(e.heapKey);
      heap.delete(e);
    }
    assert.deepEqual(out, [10, 10, 20, 30, 40, 50]);
  });
});
