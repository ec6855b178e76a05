import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "./clock.ts";
import { SessionRegistry } from "./registry.ts";
import { addSessionTotals, copySessionTotals, emptySessionTotals } from "./session_totals.ts";

function sumNow(registry: SessionRegistry) {
  const t = copySessionTotals(registry.retired);
  for (const s of registry.list()) addSessionTotals(t, s);
  return t;
}

describe("session totals", () => {
  it("sums frames, drops and lock statistics over sessions", () => {
    const registry = new SessionRegistry({ clock: new ManualClock(0) });
    const a = registry.create();
    const b = registry.create();
    a.input([new Uint8Array(20)]); // a runt-ish frame: dropped by the stack
    b.input([new Uint8Array(10)]);
    const t = sumNow(registry);
    assert.equal(t.rxFrames, 2);
    assert.equal(t.rxBytes, 30);
    const dropped = Object.values(t.rxDrops).reduce((x, y) => x + y, 0);
    assert.ok(dropped >= 1, JSON.stringify(t.rxDrops));
    assert.equal(t.rxDrops.input_queue_full, 0);
    assert.equal(t.coreLockAcquisitions, 2);
  });

  it("keeps deleted sessions' counters in registry.retired so counters never go down", () => {
    const registry = new SessionRegistry({ clock: new ManualClock(0) });
    const a = registry.create();
    a.input([new Uint8Array(60), new Uint8Array(60)]);
    const before = sumNow(registry);
    registry.delete(a.id);
    const after = sumNow(registry);
    assert.equal(registry.size, 0);
    // Closing may itself enter the core (closing sockets), so counters may grow; never shrink.
    assert.equal(after.rxFrames, before.rxFrames);
    assert.equal(after.rxBytes, 120);
    assert.deepEqual(after.rxDrops, before.rxDrops);
    assert.ok(after.coreLockAcquisitions >= before.coreLockAcquisitions);
    assert.ok(after.coreLockAcquisitions > 0);
  });

  it("copies deeply", () => {
    const t = emptySessionTotals();
    const c = copySessionTotals(t);
    c.rxDrops.x = 1;
    assert.equal(t.rxDrops.x, undefined);
  });
});
