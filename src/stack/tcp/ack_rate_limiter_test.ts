import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AckRateLimiter } from "./ack_rate_limiter.ts";

describe("AckRateLimiter (RFC 5961 §7)", () => {
  it("allows perSecond ACKs per one-second window and counts the ones it suppresses", () => {
    const l = new AckRateLimiter(2);
    assert.deepEqual([l.allow(1000), l.allow(1500), l.allow(1999)], [true, true, false]);
    assert.equal(l.suppressed, 1);
    assert.deepEqual([l.allow(2000), l.allow(2000), l.allow(2000)], [true, true, false]);
    assert.equal(l.suppressed, 2);
  });

  it("allows none with a limit of 0, and refuses a limit that is not a non-negative integer", () => {
    const l = new AckRateLimiter(0);
    assert.equal(l.allow(5000), false);
    assert.throws(() => new AckRateLimiter(-1), /perSecond must be a non-negative integer, got -1/);
    assert.throws(() => new AckRateLimiter(1.5), RangeError);
  });
});
