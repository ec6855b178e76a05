import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TokenBucket } from "./token_bucket.ts";

describe("TokenBucket (the rate limit of the stack's ICMP errors, RFC 1812 §4.3.2.8)", () => {
  it("starts full, then refills `rate` per second up to the burst", () => {
    const b = new TokenBucket(10, 3);
    const takes = (now: number, n: number) => [...Array(n)].filter(() => b.take(now)).length;
    assert.equal(takes(0, 5), 3, "the burst");
    assert.equal(takes(99, 1), 0, "0.99 of a token");
    assert.equal(takes(100, 1), 1, "one token per 100 ms");
    assert.equal(takes(10_000, 10), 3, "never more than the burst");
  });

  it("adds nothing when the clock steps back, and a rate of 0 allows nothing", () => {
    const b = new TokenBucket(1);
    assert.equal(b.take(5000), true);
    assert.equal(b.take(4000), false);
    assert.equal(b.take(5999), false);
    assert.equal(b.take(6000), true);
    assert.equal(new TokenBucket(0).take(0), false);
  });

  it("rejects a negative or non-finite rate with a RangeError quoting it", () => {
    assert.throws(() => new TokenBucket(-1), /rate and burst must be finite and >= 0, got -1/);
    assert.throws(() => new TokenBucket(1, Infinity), /got 1 and Infinity/);
  });
});
