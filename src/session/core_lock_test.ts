import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CoreLock } from "./core_lock.ts";

describe("CoreLock", () => {
  it("runs a section synchronously and returns its value", () => {
    const lock = new CoreLock();
    let ran = false;
    const v = lock.run(() => {
      ran = true;
      return 7;
    });
    assert.equal(ran, true, "ran before run() returned: no microtask hop");
    assert.equal(v, 7);
    assert.equal(lock.stats.acquisitions, 1);
    assert.equal(lock.held, false);
  });

  it("throws instead of deadlocking when entered from inside a critical section", () => {
    const lock = new CoreLock();
    assert.throws(
      () => lock.run(() => lock.run(() => 1)),
      /entered the core lock from inside a critical section/,
    );
    assert.equal(lock.stats.reentries, 1);
    assert.equal(lock.held, false, "the lock is free again after the error");
    assert.equal(lock.run(() => 2), 2);
  });

  it("rethrows what the section throws and releases the lock", () => {
    const lock = new CoreLock();
    assert.throws(() =>
      lock.run(() => {
        throw new RangeError("boom");
      }), RangeError);
    assert.equal(lock.held, false);
  });

  it("calls afterRelease outside the section after every release, which may enter again", () => {
    const seen: boolean[] = [];
    let again = true;
    const lock: CoreLock = new CoreLock(undefined, () => {
      seen.push(lock.held);
      if (again) {
        again = false;
        lock.run(() => 0);
      }
    });
    lock.run(() => 1);
    assert.deepEqual(seen, [false, false]);
    assert.equal(lock.stats.acquisitions, 2);
  });

  it("measures hold time with the injected clock", () => {
    let t = 0;
    const lock = new CoreLock(() => t);
    lock.run(() => t += 5);
    lock.run(() => t += 2);
    assert.equal(lock.stats.heldMs, 7);
    assert.equal(lock.stats.maxHeldMs, 5);
  });

  it("hands the section the clock's time at entry, read once", () => {
    let t = 100;
    let reads = 0;
    const lock = new CoreLock(() => (reads++, t));
    const seen = lock.run((start) => {
      t += 3;
      return start;
    });
    assert.equal(seen, 100);
    assert.equal(reads, 2, "entry and exit only");
    assert.equal(lock.stats.heldMs, 3);
  });
});
