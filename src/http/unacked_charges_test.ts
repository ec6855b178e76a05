import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { bufferCost, MemoryQuota } from "../stack/session_quota.ts";
import { UnackedCharges } from "./unacked_charges.ts";

describe("UnackedCharges", () => {
  it("charges each message its cost and gives it back as the client acknowledges, oldest first", () => {
    const quota = new MemoryQuota(1 << 20);
    const u = new UnackedCharges(quota);
    assert.ok(u.tryCharge(1000));
    assert.ok(u.tryCharge(2000));
    assert.equal(quota.used, bufferCost(1000) + bufferCost(2000));
    u.acked(1500); // the first message and half of the second
    assert.equal(quota.used, bufferCost(2000) - 500);
    u.acked(1500);
    assert.equal(quota.used, 0);
    u.acked(100); // more than was sent: nothing left to release
    assert.equal(quota.used, 0);
  });

  it("refuses a message the quota cannot hold and charges nothing for it", () => {
    const quota = new MemoryQuota(bufferCost(1000));
    const u = new UnackedCharges(quota);
    assert.ok(u.tryCharge(1000));
    assert.equal(u.tryCharge(1), false);
    assert.equal(u.charged, bufferCost(1000));
  });

  it("a reservation is settled to what was read, or given back when nothing was", () => {
    const quota = new MemoryQuota(1 << 20);
    const u = new UnackedCharges(quota);
    assert.ok(u.tryReserve(65536));
    u.settle(100);
    assert.equal(quota.used, bufferCost(100));
    assert.ok(u.tryReserve(65536));
    u.settle(0);
    assert.equal(quota.used, bufferCost(100));
    assert.throws(() => new UnackedCharges(quota).settle(1), RangeError);
    u.releaseAll();
    assert.equal(quota.used, 0);
  });
});
