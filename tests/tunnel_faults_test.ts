/**
 * The tunnel's fault spec: frame faults and the periodic WebSocket
 * disconnects of `--faults disconnect=...`.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseFaultSpec, startDisconnects } from "../tunnel/ports/fault_port.ts";

describe("tunnel fault spec", () => {
  it("parses disconnect intervals in s or ms, with jitter", () => {
    const s = parseFaultSpec("drop=1%,disconnect=5s,disconnect-jitter=500ms");
    assert.equal(s.drop, 0.01);
    assert.equal(s.disconnectMs, 5000);
    assert.equal(s.disconnectJitterMs, 500);
    assert.equal(parseFaultSpec("disconnect=1.5s").disconnectMs, 1500);
    assert.equal(parseFaultSpec("delay=2ms").disconnectMs, 0);
  });

  it("refuses bad disconnect specs naming the part", () => {
    assert.throws(() => parseFaultSpec("disconnect=5"), /"disconnect=5" needs a duration/);
    assert.throws(() => parseFaultSpec("disconnect=5%"), /needs a duration/);
    assert.throws(() => parseFaultSpec("disconnect=10ms"), /too frequent/);
    assert.throws(
      () => parseFaultSpec("disconnect=1s,disconnect-jitter=2s"),
      /disconnect-jitter \(2000 ms\) must not exceed disconnect \(1000 ms\)/,
    );
    assert.throws(() => parseFaultSpec("delay=2s"), /needs milliseconds/);
    assert.throws(() => parseFaultSpec("explode=1s"), /unknown fault "explode"/);
  });

  /** A scheduler the test drives: pending calls by due time, run by `advance`. */
  function manualTimers() {
    let now = 0;
    let next = 0;
    const pending = new Map<number, { at: number; fn: () => void; ms: number }>();
    return {
      timers: {
        set(fn: () => void, ms: number): unknown {
          const id = next++;
          pending.set(id, { at: now + ms, fn, ms });
          return id;
        },
        clear(handle: unknown): void {
          pending.delete(handle as number);
        },
      },
      get pending(): number {
        return pending.size;
      },
      delays(): number[] {
        return [...pending.values()].map((p) => p.ms);
      },
      advance(ms: number): void {
        const end = now + ms;
        for (;;) {
          const due = [...pending.entries()].filter(([, p]) => p.at <= end)
            .sort((a, b) => a[1].at - b[1].at)[0];
          if (!due) break;
          pending.delete(due[0]);
          now = due[1].at;
          due[1].fn();
        }
        now = end;
      },
    };
  }

  it("startDisconnects calls back every interval until stopped", () => {
    const clock = manualTimers();
    let n = 0;
    const stop = startDisconnects(
      parseFaultSpec("disconnect=100ms"),
      () => n++,
      () => 0.5,
      clock.timers,
    );
    assert.deepEqual(clock.delays(), [100]);
    clock.advance(99);
    assert.equal(n, 0, "not before the interval");
    clock.advance(1);
    assert.equal(n, 1);
    clock.advance(350);
    assert.equal(n, 4, "re-armed after each call");
    stop();
    assert.equal(clock.pending, 0, "stop cancels the pending timer");
    clock.advance(1000);
    assert.equal(n, 4, "no disconnect after stop");
  });

  it("startDisconnects applies jitter either way, never below 100 ms", () => {
    for (const [random, expected] of [[0, 4000], [1, 6000], [0.5, 5000]] as const) {
      const clock = manualTimers();
      startDisconnects(
        parseFaultSpec("disconnect=5s,disconnect-jitter=1s"),
        () => {},
        () => random,
        clock.timers,
      );
      assert.deepEqual(clock.delays(), [expected], `random ${random}`);
    }
    const clock = manualTimers();
    startDisconnects(
      parseFaultSpec("disconnect=100ms,disconnect-jitter=100ms"),
      () => {},
      () => 0,
      clock.timers,
    );
    assert.deepEqual(clock.delays(), [100]);
  });

  it("startDisconnects arms nothing when the spec has no disconnects", () => {
    const clock = manualTimers();
    let m = 0;
    const stop = startDisconnects(parseFaultSpec("drop=1%"), () => m++, Math.random, clock.timers);
    assert.equal(clock.pending, 0);
    clock.advance(60_000);
    stop();
    assert.equal(m, 0);
  });
});
