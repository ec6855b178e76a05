/**
 * Connection deadlines on a manual clock: each fires between its duration
 * and two ticks after, never early; re-arming and disarming cost no timer
 * of their own; one runtime timer for all, none while nothing is armed.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ConnectionTimeouts, TimeoutEntry } from "./connection_timeouts.ts";
import { ManualClock } from "../session/clock.ts";

/** A manual clock that counts the timers set on it. */
class CountingClock extends ManualClock {
  timersSet = 0;
  override setTimer(at: number, fn: () => void): number {
    this.timersSet++;
    return super.setTimer(at, fn);
  }
}

describe("ConnectionTimeouts", () => {
  it("fires a deadline no earlier than its duration and at most two ticks after", () => {
    const clock = new CountingClock(0);
    const t = new ConnectionTimeouts(clock, [1000, 5000]);
    assert.equal(t.tickMs, 125);
    const fired: [string, number, number][] = [];
    const a = new TimeoutEntry((kind) => fired.push(["a", kind, clock.now()]));
    const b = new TimeoutEntry((kind) => fired.push(["b", kind, clock.now()]));
    t.arm(a, 0);
    clock.advance(60);
    t.arm(b, 1);
    for (let i = 0; i < 60; i++) clock.advance(100);
    assert.equal(fired.length, 2);
    const [fa, fb] = fired;
    assert.deepEqual(fa.slice(0, 2), ["a", 0]);
    assert.ok(fa[2] >= 1000 && fa[2] <= 1000 + 2 * t.tickMs, `a fired at ${fa[2]}`);
    assert.deepEqual(fb.slice(0, 2), ["b", 1]);
    assert.ok(fb[2] >= 60 + 5000 && fb[2] <= 60 + 5000 + 2 * t.tickMs, `b fired at ${fb[2]}`);
    assert.equal(t.armed, 0);
  });

  it("re-arming moves a deadline, disarming cancels it; neither sets a timer", () => {
    const clock = new CountingClock(0);
    const t = new ConnectionTimeouts(clock, [800]);
    let fired = 0;
    const e = new TimeoutEntry(() => fired++);
    t.arm(e, 0);
    assert.equal(clock.timersSet, 1);
    for (let i = 0; i < 20; i++) {
      clock.advance(200);
      for (let j = 0; j < 50; j++) t.arm(e, 0); // activity: the deadline moves on
    }
    assert.equal(fired, 0, "a connection with activity does not time out");
    // 1000 arms over 4 s: one timer per tick (100 ms), none per arm.
    assert.ok(clock.timersSet <= 4000 / t.tickMs + 1, `${clock.timersSet} timers`);
    t.disarm(e);
    assert.equal(e.kind, -1);
    clock.advance(10_000);
    assert.equal(fired, 0);
    assert.ok(clock.timersSet <= 4000 / t.tickMs + 2, "no ticking once disarmed");
  });

  it("keeps one timer for thousands of entries and stops ticking once none is armed", () => {
    const clock = new CountingClock(0);
    const t = new ConnectionTimeouts(clock, [10_000, 30_000]);
    let fired = 0;
    const entries = Array.from({ length: 5000 }, () => new TimeoutEntry(() => fired++));
    entries.forEach((e, i) => t.arm(e, i % 2));
    assert.equal(clock.timersSet, 1);
    assert.equal(t.armed, 5000);
    clock.advance(20_000);
    assert.equal(fired, 2500, "the 10 s half fired");
    clock.advance(20_000);
    assert.equal(fired, 5000);
    const set = clock.timersSet;
    clock.advance(60_000);
    assert.equal(clock.timersSet, set, "no timer while nothing is armed");
  });

  it("a deadline re-armed from its own callback, and stop() ends everything", () => {
    const clock = new ManualClock(0);
    const t = new ConnectionTimeouts(clock, [100]);
    let fired = 0;
    const e = new TimeoutEntry(() => {
      if (++fired < 3) t.arm(e, 0);
    });
    t.arm(e, 0);
    clock.advance(1000);
    assert.equal(fired, 3);
    t.arm(e, 0);
    t.stop();
    clock.advance(1000);
    assert.equal(fired, 3, "nothing fires after stop()");
  });

  it("refuses a duration that is not positive", () => {
    assert.throws(() => new ConnectionTimeouts(new ManualClock(), [0]), RangeError);
  });
});
