import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ArpOperation, ETHERNET_HEADER_LEN } from "../wire/mod.ts";
import { FrameCapture } from "./frame_capture.ts";
import process from "node:process";
import { CAPTURE_CHUNK_BYTES, CAPTURE_RECORD_HEADER_BYTES } from "./capture_queue.ts";
import { DEFAULT_CAPTURE_QUEUE_BYTES } from "./frame_capture.ts";
import { BUFFER_OVERHEAD_BYTES, bufferCost } from "../stack/session_quota.ts";
import type { TunnelEndpoint } from "./session.ts";
import { arpRequest, makeSession } from "./_session_test_util.ts";

const nullTunnel: TunnelEndpoint = { description: "test", send() {}, close() {} };

describe("FrameCapture", () => {
  it("does nothing without subscribers", () => {
    let clockReads = 0;
    const capture = new FrameCapture(() => ++clockReads);
    capture.offer([new Uint8Array(60)], "rx");
    assert.equal(capture.captured, 0);
    assert.equal(clockReads, 0, "no timestamp is taken when nobody listens");
  });

  it("queues private copies with the wall-clock time and direction", () => {
    const capture = new FrameCapture(() => 1234.5);
    const sub = capture.subscribe();
    const a = new Uint8Array([1, 2, 3]);
    const b = new Uint8Array([4, 5]);
    capture.offer([a, b], "tx");
    a[0] = 99; // the stack reuses its buffers
    const got = sub.take();
    assert.equal(got.length, 2);
    assert.deepEqual([...got[0].data], [1, 2, 3]);
    assert.deepEqual([...got[1].data], [4, 5]);
    assert.equal(got[0].timeMs, 1234.5);
    assert.equal(got[1].direction, "tx");
    assert.equal(sub.queuedFrames, 0);
    assert.equal(sub.queuedBytes, 0);
    assert.equal(capture.captured, 2);
  });

  it("take(max) returns at most max frames, oldest first", () => {
    const capture = new FrameCapture(() => 0);
    const sub = capture.subscribe();
    for (let i = 0; i < 5; i++) capture.offer([new Uint8Array([i])], "rx");
    assert.deepEqual(sub.take(2).map((f) => f.data[0]), [0, 1]);
    assert.deepEqual(sub.take().map((f) => f.data[0]), [2, 3, 4]);
    assert.deepEqual(sub.take(), []);
  });

  it("drops and counts frames beyond a subscriber's bound on what it holds, per subscriber", () => {
    const capture = new FrameCapture(() => 0);
    // Room for one chunk holding two records of 16 + 60 bytes.
    const bound = bufferCost(2 * (CAPTURE_RECORD_HEADER_BYTES + 60));
    const slow = capture.subscribe({ maxQueuedBytes: bound });
    const fast = capture.subscribe();
    for (let i = 0; i < 3; i++) capture.offer([new Uint8Array(60)], "rx");
    assert.equal(slow.queuedFrames, 2);
    assert.equal(slow.queuedBytes, 120);
    assert.equal(slow.queuedCost, bound, "what it holds: the chunk and its overhead");
    assert.equal(slow.dropped, 1);
    assert.equal(fast.queuedFrames, 3);
    assert.equal(fast.dropped, 0);
    assert.equal(capture.dropped, 1);
    slow.take();
    capture.offer([new Uint8Array(60)], "rx");
    assert.equal(slow.queuedFrames, 1, "room again once the reader caught up");
  });

  it("wait() resolves when a frame arrives and when the subscription closes", async () => {
    const capture = new FrameCapture(() => 0);
    const sub = capture.subscribe();
    let woke = false;
    const p = sub.wait().then(() => woke = true);
    await Promise.resolve();
    assert.equal(woke, false);
    capture.offer([new Uint8Array(1)], "rx");
    await p;
    assert.equal(woke, true);
    sub.take();
    const q = sub.wait();
    sub.close();
    await q;
    assert.equal(sub.closed, true);
    assert.equal(capture.size, 0, "a closed subscription leaves the hub");
  });

  it("keeps queued frames takeable after close, and stops adding", () => {
    const capture = new FrameCapture(() => 0);
    const sub = capture.subscribe();
    capture.offer([new Uint8Array(1)], "rx");
    sub.close();
    capture.offer([new Uint8Array(1)], "rx");
    assert.equal(sub.take().length, 1);
  });

  it("refuses more than maxSubscribers captures with EMFILE, and frees a slot on close", () => {
    const capture = new FrameCapture(() => 0, 2);
    const a = capture.subscribe();
    capture.subscribe();
    assert.throws(() => capture.subscribe(), (e: Error & { code?: string }) => e.code === "EMFILE");
    a.close();
    assert.equal(capture.subscribe().closed, false);
    assert.equal(new FrameCapture().maxSubscribers, 4);
  });

  it("close() ends every subscription; later ones start closed", () => {
    const capture = new FrameCapture(() => 0);
    const a = capture.subscribe();
    const b = capture.subscribe();
    capture.close();
    assert.ok(a.closed && b.closed);
    assert.equal(capture.size, 0);
    assert.equal(capture.subscribe().closed, true);
    assert.throws(() => new FrameCapture().subscribe({ maxQueuedBytes: 0 }), RangeError);
  });
});

describe("Capture memory (issue 11)", () => {
  it("stalled captures of 14-byte frames hold what they account, within their bound", () => {
    const session = makeSession();
    const memory = session.stack.quota.memory;
    const subs = Array.from({ length: 4 }, () => session.capture.subscribe());
    // A forced collection where the runtime offers one (Deno with --expose-gc, Bun).
    const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
    const gc = g.gc ?? (g.Bun ? () => g.Bun!.gc(true) : undefined);
    gc?.();
    const before = process.memoryUsage();
    const batch = [new Uint8Array(14)]; // one array for every offer: no garbage to measure
    let offers = 0;
    while (subs.some((s) => s.dropped === 0)) {
      session.capture.offer(batch, "rx");
      offers++;
    }
    gc?.();
    const after = process.memoryUsage();
    let accounted = 0;
    for (const s of subs) {
      const { buffers, bytes } = s.storage();
      assert.equal(s.queuedCost, bytes + buffers * BUFFER_OVERHEAD_BYTES, "cost = owned bytes");
      assert.ok(s.queuedCost <= DEFAULT_CAPTURE_QUEUE_BYTES, "within the queue's bound");
      assert.ok(s.queuedCost > DEFAULT_CAPTURE_QUEUE_BYTES - bufferCost(CAPTURE_CHUNK_BYTES));
      accounted += s.queuedCost;
    }
    assert.equal(memory.used, accounted, "the session's memory quota is charged all of it");
    // V8 counts buffer storage in `external`; JavaScriptCore (Bun) reports it in both
    // `heapUsed` and `external`, so there the resident set is the honest figure.
    const grown = g.Bun
      ? after.rss - before.rss
      : after.heapUsed + after.external - before.heapUsed - before.external;
    const MiB = (n: number) => (n / 2 ** 20).toFixed(1);
    console.log(
      `4 stalled captures, ${offers} offers of 14-byte frames: ${subs[0].queuedFrames} frames ` +
        `queued each; accounted ${MiB(accounted)} MiB; held memory grew ${MiB(grown)} MiB, ` +
        `rss ${MiB(after.rss - before.rss)} MiB`,
    );
    // The bound: what is accounted, plus a quarter for the allocator's own pages and slack,
    // plus 8 MiB for what the loop left to collect (on main this grew 168 MiB for 16).
    assert.ok(
      grown <= accounted * 1.25 + 8 * 2 ** 20,
      `memory grew ${MiB(grown)} MiB for ${MiB(accounted)} MiB accounted`,
    );
    for (const s of subs) s.discard();
    assert.equal(memory.used, 0, "discarding the captures gives the memory back");
  });

  it("a capture the memory quota refuses drops frames and counts them", () => {
    const session = makeSession(undefined, {
      maxBufferedBytes: 2 * bufferCost(CAPTURE_CHUNK_BYTES),
    });
    const memory = session.stack.quota.memory;
    const a = session.capture.subscribe();
    const b = session.capture.subscribe();
    const frame = new Uint8Array(1000);
    for (let i = 0; i < 40; i++) session.capture.offer([frame], "tx");
    assert.equal(a.storage().buffers + b.storage().buffers, 2, "one chunk each: the quota's all");
    assert.ok(memory.used <= memory.limit);
    assert.ok(session.capture.droppedOverQuota > 0);
    assert.equal(session.capture.dropped, a.dropped + b.dropped);
    assert.equal(a.queuedFrames + a.dropped, 40, "every frame queued or dropped");
    assert.ok(memory.stats().refused > 0, "the quota counts the refusals");
    a.discard();
    b.discard();
    assert.equal(memory.used, 0);
  });
});

describe("Session capture tap", () => {
  it("sees frames both ways, outside the core lock", () => {
    const session = makeSession();
    const heldDuringOffer: boolean[] = [];
    const offer = session.capture.offer.bind(session.capture);
    session.capture.offer = (frames, direction) => {
      heldDuringOffer.push(session.lock.held);
      offer(frames, direction);
    };
    const sub = session.capture.subscribe();
    session.attachTunnel(nullTunnel); // gratuitous ARP
    const req = arpRequest();
    session.input([req]);
    const got = sub.take();
    assert.deepEqual(got.map((f) => f.direction), ["tx", "rx", "tx"]);
    assert.deepEqual(got[1].data, req);
    assert.notEqual(got[1].data.buffer, req.buffer, "a copy, not the caller's buffer");
    assert.equal(got[2].data.length, 60, "the ARP reply, padded to the Ethernet minimum");
    assert.equal(got[2].data[ETHERNET_HEADER_LEN + 7], ArpOperation.REPLY);
    assert.ok(heldDuringOffer.length >= 3);
    assert.ok(heldDuringOffer.every((h) => !h), "never offered inside the core lock");
  });

  it("captures what the stack sends even with no tunnel attached", () => {
    const session = makeSession();
    const sub = session.capture.subscribe();
    session.input([arpRequest()]);
    assert.deepEqual(sub.take().map((f) => f.direction), ["rx", "tx"]);
    assert.equal(session.tunnelStats.framesWithoutTunnel, 1);
  });

  it("closing the session ends its captures", () => {
    const session = makeSession();
    const sub = session.capture.subscribe();
    session.close();
    assert.equal(sub.closed, true);
    assert.equal(session.capture.subscribe().closed, true);
  });
});
