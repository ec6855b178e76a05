import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  BUFFER_OVERHEAD_BYTES,
  bufferCost,
  createSessionQuota,
  MemoryQuota,
  SocketQuota,
} from "./session_quota.ts";

describe("MemoryQuota", () => {
  it("charges up to its limit, refuses past it and counts the refusals", () => {
    const q = new MemoryQuota(1000);
    assert.equal(q.tryCharge(600), true);
    assert.equal(q.tryCharge(401), false);
    assert.equal(q.tryCharge(400), true);
    assert.equal(q.available, 0);
    q.release(500);
    assert.deepEqual(q.stats(), { used: 500, peak: 1000, limit: 1000, refused: 1 });
  });

  it("refuses to release more than was charged", () => {
    const q = new MemoryQuota(10);
    q.tryCharge(5);
    assert.throws(() => q.release(6), RangeError);
  });

  it("forceCharge passes the limit and leaves nothing available", () => {
    const q = new MemoryQuota(10);
    q.forceCharge(15);
    assert.equal(q.used, 15);
    assert.equal(q.available, 0);
    assert.equal(q.tryCharge(1), false);
  });

  it("costs a buffer its bytes plus the per-allocation overhead", () => {
    assert.equal(bufferCost(0), BUFFER_OVERHEAD_BYTES);
    assert.equal(bufferCost(16384), 16384 + BUFFER_OVERHEAD_BYTES);
  });

  it("rejects a limit that is not a non-negative integer", () => {
    assert.throws(() => new MemoryQuota(-1), RangeError);
    assert.throws(() => new MemoryQuota(1.5), RangeError);
  });
});

describe("SocketQuota", () => {
  it("takes units up to its limit and gives them back", () => {
    const q = createSessionQuota({ maxBufferedBytes: 1, maxSockets: 2 }).sockets;
    assert.equal(q.tryTake(), true);
    assert.equal(q.tryTake(), true);
    assert.equal(q.tryTake(), false);
    q.release();
    assert.equal(q.tryTake(), true);
    assert.deepEqual(q.stats(), { used: 2, limit: 2, refused: 1 });
  });

  it("refuses to release a unit not taken", () => {
    assert.throws(() => new SocketQuota(1).release(), RangeError);
  });
});
