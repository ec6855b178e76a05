import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DelayHistogram } from "./delay_histogram.ts";

describe("DelayHistogram", () => {
  it("is all zeros when empty", () => {
    assert.deepEqual(new DelayHistogram().summary(), {
      count: 0,
      p50Ms: 0,
      p99Ms: 0,
      maxMs: 0,
      meanMs: 0,
    });
  });

  it("reports quantiles as power-of-two bucket bounds, capped at the exact maximum", () => {
    const h = new DelayHistogram();
    for (let i = 0; i < 98; i++) h.record(0.003); // 3 µs: bucket [2, 4) µs
    h.record(1.5); // 1500 µs: bucket [1024, 2048) µs
    h.record(12);
    const s = h.summary();
    assert.equal(s.count, 100);
    assert.equal(s.p50Ms, 0.004);
    assert.equal(s.p99Ms, 2.048);
    assert.equal(s.maxMs, 12);
    assert.ok(Math.abs(s.meanMs - (98 * 0.003 + 13.5) / 100) < 1e-12);
    assert.equal(h.quantile(1), 12);
    assert.equal(h.quantile(0), 0.004);
  });

  it("counts negative, NaN and sub-microsecond delays as 0 and huge ones in the last bucket", () => {
    const h = new DelayHistogram();
    h.record(-5);
    h.record(NaN);
    h.record(0.0004);
    assert.equal(h.quantile(1), 0.0004);
    h.record(3 * 3600_000);
    assert.equal(h.count, 4);
    assert.equal(h.quantile(1), 3 * 3600_000);
    assert.equal(h.quantile(0.5), 0.001, "the bound of the sub-microsecond bucket");
  });

  it("merges another histogram's counts, sum and maximum", () => {
    const a = new DelayHistogram();
    const b = new DelayHistogram();
    a.record(0.003);
    b.record(0.003);
    b.record(5);
    a.merge(b);
    assert.equal(a.count, 3);
    assert.equal(a.summary().maxMs, 5);
    assert.equal(a.quantile(0.5), 0.004);
    assert.ok(Math.abs(a.summary().meanMs - 5.006 / 3) < 1e-12);
    assert.equal(b.count, 2, "the source is unchanged");
  });

  it("rejects a quantile outside 0..1 and forgets everything on reset", () => {
    const h = new DelayHistogram();
    h.record(1);
    assert.throws(() => h.quantile(1.5), /q must be in 0\.\.1, got 1\.5/);
    h.reset();
    assert.equal(h.summary().count, 0);
    assert.equal(h.summary().maxMs, 0);
  });
});
