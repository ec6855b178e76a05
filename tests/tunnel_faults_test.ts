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

  it("startDisconnects calls back periodically until stopped, and never when off", async () => {
    let n = 0;
    const stop = startDisconnects(parseFaultSpec("disconnect=100ms"), () => n++);
    await new Promise((r) => setTimeout(r, 450));
    stop();
    const seen = n;
    assert.ok(seen >= 2, `disconnects: ${seen}`);
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(n, seen, "no disconnect after stop");
    let m = 0;
    startDisconnects(parseFaultSpec("drop=1%"), () => m++)();
    assert.equal(m, 0);
  });
});
