import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { bufferCost, MemoryQuota } from "../session_quota.ts";
import { PagedRing, pageTableCost } from "./paged_ring.ts";

/** The table of the 4-page rings below. */
const TABLE = pageTableCost(4);

describe("PagedRing", () => {
  it("rounds its size up to whole pages and allocates nothing until reserved", () => {
    const ring = new PagedRing(1000, 256, new MemoryQuota(1 << 20));
    assert.equal(ring.size, 1024);
    assert.equal(ring.pageCount, 0);
    assert.equal(ring.chargedBytes, 0);
  });

  it("charges each page under a reserved span once, wrapping the end of the ring", () => {
    const quota = new MemoryQuota(1 << 20);
    const ring = new PagedRing(1024, 256, quota);
    assert.equal(ring.reserve(1000, 100), true); // pages 3 and 0
    assert.equal(ring.pageCount, 2);
    assert.equal(ring.reserve(1010, 20), true, "already there: nothing new");
    assert.equal(quota.used, 2 * bufferCost(256) + TABLE, "two pages and the table");
    const data = new Uint8Array(100).map((_, i) => i);
    ring.write(1000, data);
    const views: Uint8Array[] = [];
    ring.read(1000, 100, (v) => views.push(v.slice()));
    assert.deepEqual(views.map((v) => v.length), [24, 76]);
    assert.deepEqual(new Uint8Array([...views[0], ...views[1]]), data);
  });

  it("allocates nothing when the quota refuses any page of a span", () => {
    const quota = new MemoryQuota(bufferCost(256) + TABLE);
    const ring = new PagedRing(1024, 256, quota);
    assert.equal(ring.reserve(200, 100), false, "two pages needed, one affordable");
    assert.equal(ring.pageCount, 0);
    assert.equal(quota.used, 0);
    assert.equal(ring.reserve(0, 256), true);
  });

  it("frees the pages of a span but the kept ones, and everything on clear", () => {
    const quota = new MemoryQuota(1 << 20);
    const ring = new PagedRing(1024, 256, quota);
    ring.reserve(0, 1024);
    ring.releaseSpan(0, 600, 10, 590); // pages 0, 1, 2: keep 0 and 2
    assert.equal(ring.pageCount, 3);
    assert.equal(quota.used, 3 * bufferCost(256) + TABLE);
    ring.clear();
    assert.equal(ring.pageCount, 0);
    assert.equal(quota.used, 0);
  });

  it("serves again after its last page was freed (the page table is made anew)", () => {
    const quota = new MemoryQuota(1 << 20);
    const ring = new PagedRing(1024, 256, quota);
    for (let round = 0; round < 3; round++) {
      const at = 300 * round + 900; // wraps in the first round
      assert.equal(ring.reserve(at % 1024, 200), true);
      const data = new Uint8Array(200).map((_, i) => i + round);
      ring.write(at % 1024, data);
      const got: number[] = [];
      ring.read(at % 1024, 200, (v) => got.push(...v));
      assert.deepEqual(new Uint8Array(got), data);
      ring.releaseSpan(at % 1024, 200, -1, -1);
      assert.equal(ring.pageCount, 0);
      assert.equal(quota.used, 0);
    }
    ring.reserve(0, 256);
    ring.clear();
    assert.equal(ring.pageCount, 0);
    assert.equal(ring.reserve(512, 10), true, "after clear, too");
    assert.equal(ring.pageCount, 1);
  });

  it("refuses a page size that is not a power of two", () => {
    assert.throws(
      () => new PagedRing(1024, 1000, new MemoryQuota(1)),
      /pageBytes must be a power of two, got 1000/,
    );
  });
});
