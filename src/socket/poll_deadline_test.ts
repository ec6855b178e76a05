import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../session/clock.ts";
import { PollDeadline } from "./poll_deadline.ts";

describe("PollDeadline", () => {
  it("waits on one clock share one timer, set for the earliest; the last one ended clears it", () => {
    const clock = new ManualClock(0);
    const a = new PollDeadline(clock, [], 100);
    const b = new PollDeadline(clock, [], 50);
    const c = new PollDeadline(clock, [], 200);
    assert.equal(clock.pendingTimers, 1);
    clock.advance(49);
    assert.deepEqual([a.timedOut, b.timedOut, c.timedOut], [false, false, false]);
    clock.advance(1);
    assert.deepEqual([a.timedOut, b.timedOut, c.timedOut], [false, true, false]);
    assert.equal(b.signal.aborted, true);
    assert.equal((b.signal.reason as DOMException).name, "TimeoutError");
    clock.advance(50);
    assert.deepEqual([a.timedOut, c.timedOut], [true, false]);
    c.dispose();
    assert.equal(clock.pendingTimers, 0, "no wait left: no timer left");
    clock.advance(1000);
    assert.equal(c.timedOut, false, "a disposed wait never expires");
    for (const d of [a, b]) d.dispose();
  });

  it("a wait ends at its own deadline, not at that of one that ended before it", () => {
    const clock = new ManualClock(0);
    const first = new PollDeadline(clock, [], 100);
    const second = new PollDeadline(clock, [], 150);
    clock.advance(10);
    first.dispose();
    clock.advance(90);
    assert.equal(second.timedOut, false, "the timer fired for the first and was set again");
    assert.equal(clock.pendingTimers, 1);
    clock.advance(49);
    assert.equal(second.timedOut, false);
    clock.advance(1);
    assert.equal(second.timedOut, true);
    assert.equal(clock.pendingTimers, 0);
  });

  it("a wait started as another expires, and one earlier than all, keep their own deadlines", () => {
    const clock = new ManualClock(0);
    const late = new PollDeadline(clock, [], 300);
    const first = new PollDeadline(clock, [], 100);
    let next: PollDeadline | undefined;
    first.signal.addEventListener("abort", () => next = new PollDeadline(clock, [], 50));
    clock.advance(100);
    assert.ok(first.timedOut && next !== undefined);
    const early = new PollDeadline(clock, [], 20);
    clock.advance(20);
    assert.deepEqual([early.timedOut, next.timedOut, late.timedOut], [true, false, false]);
    clock.advance(30);
    assert.deepEqual([next.timedOut, late.timedOut], [true, false]);
    clock.advance(150);
    assert.equal(late.timedOut, true);
    assert.equal(clock.pendingTimers, 0);
  });

  it("a caller's signal ends the wait first; a timeout of 0 has passed already; none waits on signals only", () => {
    const clock = new ManualClock(0);
    const ac = new AbortController();
    const d = new PollDeadline(clock, [ac.signal], 1000);
    ac.abort(new Error("gone"));
    assert.equal(d.cancelled, true);
    assert.equal((d.signal.reason as Error).message, "gone");
    d.dispose();
    assert.equal(clock.pendingTimers, 0);
    const now = new PollDeadline(clock, [], 0);
    assert.equal(now.timedOut, true);
    const forever = new PollDeadline(clock, [], undefined);
    assert.equal(clock.pendingTimers, 0);
    clock.advance(1e9);
    assert.equal(forever.signal.aborted, false);
  });
});
