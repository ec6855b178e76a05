import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_RTT_OPTIONS, RttEstimator } from "./rtt_estimator.ts";

describe("RttEstimator (RFC 6298)", () => {
  it("starts with the 1 s initial RTO and no estimates (RFC 6298 §2.1)", () => {
    const rtt = new RttEstimator();
    assert.equal(rtt.rto, 1000);
    assert.equal(rtt.currentRto, 1000);
    assert.equal(rtt.srtt, undefined);
    assert.equal(rtt.rttvar, undefined);
    assert.equal(rtt.latestRtt, undefined);
    assert.equal(rtt.minRtt, undefined);
    assert.equal(rtt.backoffCount, 0);
    assert.equal(rtt.initialRto, 1000);
  });

  it("sets SRTT = R, RTTVAR = R/2 on the first sample (RFC 6298 §2.2)", () => {
    const rtt = new RttEstimator();
    rtt.sample(100);
    assert.equal(rtt.srtt, 100);
    assert.equal(rtt.rttvar, 50);
    assert.equal(rtt.rto, 300); // 100 + 4 * 50
    assert.equal(rtt.latestRtt, 100);
    assert.equal(rtt.minRtt, 100);
  });

  it("updates RTTVAR with the old SRTT, then SRTT, with α = 1/8, β = 1/4 (RFC 6298 §2.3)", () => {
    const rtt = new RttEstimator();
    rtt.sample(100);
    rtt.sample(200);
    // RTTVAR = 3/4 * 50 + 1/4 * |100 - 200| = 62.5; SRTT = 7/8 * 100 + 1/8 * 200 = 112.5
    assert.equal(rtt.rttvar, 62.5);
    assert.equal(rtt.srtt, 112.5);
    assert.equal(rtt.rto, 112.5 + 4 * 62.5);
    rtt.sample(50);
    // RTTVAR = 3/4 * 62.5 + 1/4 * 62.5 = 62.5; SRTT = 7/8 * 112.5 + 1/8 * 50 = 104.6875
    assert.equal(rtt.rttvar, 62.5);
    assert.equal(rtt.srtt, 104.6875);
    assert.equal(rtt.latestRtt, 50);
    assert.equal(rtt.minRtt, 50);
  });

  it("converges on a steady RTT and the RTO falls to the 200 ms Linux floor (RFC 6298 §2.4)", () => {
    const rtt = new RttEstimator();
    for (let i = 0; i < 200; i++) rtt.sample(10);
    assert.ok(Math.abs(rtt.srtt! - 10) < 1e-9);
    assert.ok(rtt.rttvar! < 1e-9);
    assert.equal(rtt.rto, 200);
  });

  it("keeps the RTO at least SRTT + G when RTTVAR is tiny (RFC 6298 §2.2)", () => {
    const rtt = new RttEstimator({ minRtoMs: 1, clockGranularityMs: 5 });
    for (let i = 0; i < 300; i++) rtt.sample(50);
    assert.equal(rtt.rto, 55);
  });

  it("follows the RFC's 1 s floor when configured so (RFC 6298 §2.4)", () => {
    const rtt = new RttEstimator({ minRtoMs: 1000 });
    rtt.sample(20);
    assert.equal(rtt.rto, 1000);
  });

  it("clamps the RTO to maxRtoMs (RFC 6298 §2.5)", () => {
    const rtt = new RttEstimator({ maxRtoMs: 60_000 });
    rtt.sample(50_000);
    assert.equal(rtt.rto, 60_000);
  });

  it("ignores negative, NaN and infinite samples", () => {
    const rtt = new RttEstimator();
    rtt.sample(-1);
    rtt.sample(NaN);
    rtt.sample(Infinity);
    assert.equal(rtt.srtt, undefined);
    assert.equal(rtt.rto, 1000);
    rtt.sample(0);
    assert.equal(rtt.srtt, 0);
    assert.equal(rtt.rto, 200);
  });

  it("doubles the timer on each backoff up to maxRtoMs, keeping the base RTO (RFC 6298 §5.5)", () => {
    const rtt = new RttEstimator();
    rtt.backoff();
    assert.equal(rtt.currentRto, 2000);
    rtt.backoff();
    assert.equal(rtt.currentRto, 4000);
    assert.equal(rtt.backoffCount, 2);
    assert.equal(rtt.rto, 1000);
    for (let i = 0; i < 10; i++) rtt.backoff();
    assert.equal(rtt.currentRto, 120_000);
    for (let i = 0; i < 2000; i++) rtt.backoff();
    assert.equal(rtt.currentRto, 120_000);
    rtt.resetBackoff();
    assert.equal(rtt.backoffCount, 0);
    assert.equal(rtt.currentRto, 1000);
  });

  it("keeps the backoff across samples until the caller resets it (Karn, RFC 6298 §5)", () => {
    const rtt = new RttEstimator();
    rtt.backoff();
    rtt.sample(100);
    assert.equal(rtt.rto, 300);
    assert.equal(rtt.currentRto, 600);
  });

  it("damps timestamp samples by the expected samples per window (RFC 7323 Appendix G)", () => {
    const rtt = new RttEstimator();
    rtt.sample(100);
    rtt.sample(200, 4);
    // β' = 1/16, α' = 1/32
    assert.equal(rtt.rttvar, (15 / 16) * 50 + (1 / 16) * 100);
    assert.equal(rtt.srtt, (31 / 32) * 100 + (1 / 32) * 200);
  });

  it("rejects inconsistent options with a RangeError", () => {
    assert.throws(() => new RttEstimator({ minRtoMs: 2000 }), RangeError);
    assert.throws(() => new RttEstimator({ maxRtoMs: 500 }), RangeError);
    assert.throws(() => new RttEstimator({ initialRtoMs: NaN }), RangeError);
    assert.throws(() => new RttEstimator({ clockGranularityMs: -1 }), RangeError);
    assert.throws(() => new RttEstimator({ minRtoMs: 0, initialRtoMs: 0 }), RangeError);
    assert.equal(DEFAULT_RTT_OPTIONS.minRtoMs, 200);
    assert.equal(new RttEstimator({ initialRtoMs: 3000 }).rto, 3000);
  });
});
