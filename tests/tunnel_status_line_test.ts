/**
 * The tunnel CLI's status display: pure formatting of the live line and of
 * rates, and the reporter's two modes (a line redrawn in place on a TTY,
 * plain summaries elsewhere).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { TunnelClientStats } from "../tunnel/client.ts";
import {
  computeRates,
  displayState,
  formatByteRate,
  formatCountRate,
  formatStatusLine,
  StatusReporter,
} from "../tunnel/status_line.ts";

function stats(over: Partial<TunnelClientStats> = {}): TunnelClientStats {
  return {
    framesUp: 0,
    bytesUp: 0,
    messagesUp: 0,
    framesDown: 0,
    bytesDown: 0,
    messagesDown: 0,
    framesDropped: 0,
    rejectedDown: 0,
    connects: 0,
    keepaliveTimeouts: 0,
    ...over,
  };
}

describe("tunnel status line", () => {
  it("names the states connecting, up, reconnecting", () => {
    assert.equal(displayState("connecting"), "connecting");
    assert.equal(displayState("open"), "up");
    assert.equal(displayState("waiting"), "reconnecting");
    assert.equal(displayState("closed"), "closed");
  });

  it("formats byte and count rates with units", () => {
    assert.equal(formatByteRate(0), "0 B/s");
    assert.equal(formatByteRate(999), "999 B/s");
    assert.equal(formatByteRate(1500), "1.5 kB/s");
    assert.equal(formatByteRate(12_345_678), "12.3 MB/s");
    assert.equal(formatByteRate(2.5e9), "2.5 GB/s");
    assert.equal(formatByteRate(-5), "0 B/s");
    assert.equal(formatCountRate(9999.4), "9999");
    assert.equal(formatCountRate(12_345), "12.3k");
  });

  it("computes rates from two samples and never divides by zero", () => {
    const a = { atMs: 1000, stats: stats({ framesUp: 10, bytesUp: 1000 }) };
    const b = {
      atMs: 3000,
      stats: stats({ framesUp: 30, bytesUp: 5000, framesDown: 4, bytesDown: 400 }),
    };
    assert.deepEqual(computeRates(a, b), {
      framesUpPerS: 10,
      bytesUpPerS: 2000,
      framesDownPerS: 2,
      bytesDownPerS: 200,
    });
    assert.equal(computeRates(a, a).framesUpPerS, 0);
  });

  it("formats the whole line", () => {
    const line = formatStatusLine({
      state: "open",
      framing: "stream",
      reconnects: 2,
      dropped: 7,
      rates: { framesUpPerS: 120, bytesUpPerS: 180_000, framesDownPerS: 80, bytesDownPerS: 9600 },
    });
    assert.equal(
      line,
      "tunnel up [stream] | up 120 fr/s 180.0 kB/s | down 80 fr/s 9.6 kB/s | reconnects 2 | dropped 7",
    );
  });

  it("on a TTY redraws one line in place and logs state changes above it", async () => {
    let now = 0;
    const s = stats({ connects: 3 });
    const writes: string[] = [];
    const logs: string[] = [];
    const r = new StatusReporter({
      source: () => ({ state: "open", stats: s, framing: "frame" }),
      tty: true,
      write: (t) => writes.push(t),
      log: (l) => logs.push(l),
      refreshMs: 10,
      now: () => now,
    });
    r.start();
    now = 1000;
    s.framesUp = 50;
    s.bytesUp = 50_000;
    await new Promise((res) => setTimeout(res, 40));
    r.event("tunnel waiting: test");
    r.stop();
    const line = writes.find((w) => w.includes("up 50 fr/s 50.0 kB/s"));
    assert.ok(line?.startsWith("\r\x1b[2K"), JSON.stringify(writes));
    assert.match(line!, /reconnects 2/);
    assert.ok(!writes.some((w) => w.includes("\n")), "the live line never scrolls");
    assert.deepEqual(logs, ["tunnel waiting: test"]);
    assert.equal(writes.at(-1), "\r\x1b[2K", "stop clears the line");
  });

  it("elsewhere logs plain summary lines with totals", async () => {
    const logs: string[] = [];
    const writes: string[] = [];
    const s = stats({ connects: 1, framesUp: 3, bytesUp: 300, messagesUp: 1 });
    const r = new StatusReporter({
      source: () => ({ state: "open", stats: s, framing: "stream" }),
      tty: false,
      write: (t) => writes.push(t),
      log: (l) => logs.push(l),
      summaryMs: 10,
    });
    r.start();
    await new Promise((res) => setTimeout(res, 40));
    r.event("tunnel open");
    r.stop();
    assert.deepEqual(writes, [], "no escape codes off a terminal");
    assert.ok(logs.includes("tunnel open"));
    assert.ok(
      logs.some((l) => /^tunnel up \[stream\].*total up 3 frames 300 B in 1 msgs/.test(l)),
      logs.join("\n"),
    );
  });
});
