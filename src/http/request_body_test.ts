import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../session/mod.ts";
import { bufferCost, MemoryQuota } from "../stack/session_quota.ts";
import { HttpProblem } from "./problem.ts";
import { readRequestBody } from "./request_body.ts";

/**
 * A request whose body the test feeds by hand: `push` hands the server a
 * chunk when it asks for one, `end` finishes it; `pulls` counts the reads the
 * server made (a body that is refused is never pulled).
 */
function feedRequest(contentLength?: number) {
  let ctrl!: ReadableStreamDefaultController<Uint8Array>;
  const stats = { pulls: 0, cancelled: false };
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      ctrl = c;
    },
    pull() {
      stats.pulls++;
    },
    cancel() {
      stats.cancelled = true;
    },
  }, { highWaterMark: 0 });
  const headers: Record<string, string> = {};
  if (contentLength !== undefined) headers["content-length"] = String(contentLength);
  const req = new Request("http://localhost/x", {
    method: "POST",
    headers,
    body,
    duplex: "half",
  } as RequestInit);
  return {
    req,
    stats,
    push: (n: number, fill = 1) => ctrl.enqueue(new Uint8Array(n).fill(fill)),
    end: () => ctrl.close(),
    fail: () => ctrl.error(new TypeError("connection reset")),
  };
}

/** Lets pending reads and promise callbacks run (no real time passes). */
const turn = () => new Promise<void>((r) => setTimeout(r, 0));

async function rejectsWith(p: Promise<unknown>, status: string, close: boolean) {
  const err = await p.then(() => undefined, (e) => e);
  assert.ok(err instanceof HttpProblem, `rejects with an HttpProblem, got ${err}`);
  assert.equal(err.code, status);
  assert.equal(err.headers.connection, close ? "close" : undefined);
  return err;
}

describe("readRequestBody: size, deadline and the session's memory quota", () => {
  it("charges the declared Content-Length before the first byte is read and releases it once", async () => {
    const clock = new ManualClock(0);
    const quota = new MemoryQuota(1 << 20);
    const f = feedRequest(3000);
    const reading = readRequestBody(f.req, { maxBytes: 4096, timeoutMs: 1000, clock, quota });
    await turn();
    assert.equal(f.stats.pulls, 1, "the server asked for the body");
    assert.equal(quota.used, bufferCost(3000), "charged before any byte arrived");
    f.push(1000, 7);
    f.push(2000, 8);
    f.end();
    const body = await reading;
    assert.equal(body.bytes.length, 3000);
    assert.equal(body.bytes[999], 7);
    assert.equal(body.bytes[1000], 8);
    assert.equal(body.charged, bufferCost(3000));
    assert.equal(quota.used, bufferCost(3000), "held while the route uses the bytes");
    body.release();
    body.release();
    assert.equal(quota.used, 0, "released exactly once");
    assert.equal(clock.pendingTimers, 0, "the deadline is gone");
  });

  it("refuses a declared length that does not fit with 429 ENOBUFS, reading nothing", async () => {
    const clock = new ManualClock(0);
    const quota = new MemoryQuota(10_000);
    assert.ok(quota.tryCharge(6000));
    const f = feedRequest(5000);
    const err = await rejectsWith(
      readRequestBody(f.req, { maxBytes: 1 << 20, timeoutMs: 1000, clock, quota }),
      "ENOBUFS",
      true,
    );
    assert.match(err.message, /request body needs 5512 more/);
    assert.equal(f.stats.pulls, 0, "not a byte was read");
    assert.equal(f.stats.cancelled, false, "the body is left alone (Deno would drain it)");
    assert.equal(quota.used, 6000, "nothing stays charged");
    assert.equal(quota.stats().refused, 1);
    assert.equal(clock.pendingTimers, 0);
  });

  it("charges a chunked body as its buffer grows and refuses once a charge fails", async () => {
    const clock = new ManualClock(0);
    const quota = new MemoryQuota(40_000);
    const f = feedRequest();
    const reading = readRequestBody(f.req, {
      maxBytes: 1 << 20,
      timeoutMs: 1000,
      clock,
      quota,
    });
    const p = reading.then(() => undefined, (e) => e);
    let peak = 0;
    for (let i = 0; i < 10; i++) {
      await turn();
      f.push(4096);
      await turn();
      peak = Math.max(peak, quota.used);
    }
    const err = await p;
    assert.ok(err instanceof HttpProblem);
    assert.equal(err.code, "ENOBUFS");
    assert.equal(err.headers.connection, "close");
    assert.ok(peak <= quota.limit, `charged ${peak} of ${quota.limit}`);
    assert.ok(peak >= bufferCost(16_384), `the buffer grew to 16 KiB first (peak ${peak})`);
    assert.ok(f.stats.pulls <= 6, `stopped reading once the charge failed (${f.stats.pulls})`);
    assert.equal(quota.used, 0, "nothing stays charged");
  });

  it("a chunked body that fits ends charged for one buffer of at most twice its size", async () => {
    const clock = new ManualClock(0);
    const quota = new MemoryQuota(1 << 20);
    const f = feedRequest();
    const reading = readRequestBody(f.req, { maxBytes: 1 << 20, timeoutMs: 1000, clock, quota });
    for (const n of [10, 300, 5000, 20_000]) {
      await turn();
      f.push(n);
    }
    f.end();
    const body = await reading;
    assert.equal(body.bytes.length, 25_310);
    assert.ok(body.charged <= bufferCost(2 * 25_310), `charged ${body.charged}`);
    assert.equal(quota.used, body.charged, "the buffers outgrown were released");
    body.release();
    assert.equal(quota.used, 0);
  });

  it("413 ETOOLARGE: a declared length over the limit before reading, a chunked body at the limit", async () => {
    const clock = new ManualClock(0);
    const quota = new MemoryQuota(1 << 20);
    const declared = feedRequest(5000);
    await rejectsWith(
      readRequestBody(declared.req, { maxBytes: 4096, timeoutMs: 1000, clock, quota }),
      "ETOOLARGE",
      true,
    );
    assert.equal(declared.stats.pulls, 0);
    const chunked = feedRequest();
    const p = readRequestBody(chunked.req, { maxBytes: 4096, timeoutMs: 1000, clock, quota });
    for (let i = 0; i < 3; i++) {
      await turn();
      chunked.push(2000);
    }
    await rejectsWith(p, "ETOOLARGE", true);
    assert.equal(chunked.stats.cancelled, false);
    assert.equal(quota.used, 0);
    assert.equal(clock.pendingTimers, 0);
  });

  it("408 EBODYTIMEOUT with Connection: close when the clock passes the deadline; the charge is released", async () => {
    const clock = new ManualClock(0);
    const quota = new MemoryQuota(1 << 20);
    const f = feedRequest(4000);
    const reading = readRequestBody(f.req, { maxBytes: 4096, timeoutMs: 1000, clock, quota });
    const p = reading.then(() => undefined, (e) => e);
    await turn();
    f.push(3999);
    await turn();
    clock.advance(999);
    await turn();
    assert.equal(quota.used, bufferCost(4000), "still waiting for the last byte at 999 ms");
    clock.advance(1);
    const err = await p;
    assert.ok(err instanceof HttpProblem);
    assert.equal(err.code, "EBODYTIMEOUT");
    assert.equal(err.headers.connection, "close");
    assert.match(err.message, /within 1000 ms/);
    assert.equal(quota.used, 0);
    assert.equal(f.stats.cancelled, false);
  });

  it("499 ECANCELED when the client goes away mid-body; nothing stays charged", async () => {
    const clock = new ManualClock(0);
    const quota = new MemoryQuota(1 << 20);
    const f = feedRequest(4000);
    const reading = readRequestBody(f.req, { maxBytes: 4096, timeoutMs: 1000, clock, quota });
    await turn();
    f.push(100);
    await turn();
    f.fail();
    await rejectsWith(reading, "ECANCELED", false);
    assert.equal(quota.used, 0);
    assert.equal(clock.pendingTimers, 0);
  });

  it("refuses more bytes than the declared Content-Length", async () => {
    const clock = new ManualClock(0);
    const quota = new MemoryQuota(1 << 20);
    const f = feedRequest(100);
    const reading = readRequestBody(f.req, { maxBytes: 4096, timeoutMs: 1000, clock, quota });
    await turn();
    f.push(101);
    await rejectsWith(reading, "EINVAL", true);
    assert.equal(quota.used, 0);
  });

  it("a request without a body is empty and charges nothing", async () => {
    const clock = new ManualClock(0);
    const quota = new MemoryQuota(100);
    const body = await readRequestBody(new Request("http://localhost/x", { method: "POST" }), {
      maxBytes: 10,
      timeoutMs: 1000,
      clock,
      quota,
    });
    assert.equal(body.bytes.length, 0);
    assert.equal(body.charged, 0);
    assert.equal(quota.used, 0);
    assert.equal(clock.pendingTimers, 0);
  });
});
