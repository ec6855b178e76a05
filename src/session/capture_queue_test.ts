import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BUFFER_OVERHEAD_BYTES, bufferCost, MemoryQuota } from "../stack/session_quota.ts";
import { CAPTURE_CHUNK_BYTES, CAPTURE_RECORD_HEADER_BYTES, CaptureQueue } from "./capture_queue.ts";

/** A frame of `len` bytes whose bytes say which frame it is. */
function frame(i: number, len: number): Uint8Array {
  return new Uint8Array(len).fill(i & 0xff);
}

describe("CaptureQueue", () => {
  it("keeps frames in order with their time and direction, a frame costing its bytes plus 16", () => {
    const q = new CaptureQueue({ maxCost: 4 << 20 });
    for (let i = 0; i < 1000; i++) {
      assert.equal(q.push(i * 0.5, i % 3 ? "rx" : "tx", frame(i, 14)), undefined);
    }
    const perChunk = Math.floor(CAPTURE_CHUNK_BYTES / (CAPTURE_RECORD_HEADER_BYTES + 14));
    assert.deepEqual(q.storage(), {
      buffers: Math.ceil(1000 / perChunk),
      bytes: Math.ceil(1000 / perChunk) * CAPTURE_CHUNK_BYTES,
    });
    assert.equal(q.cost, Math.ceil(1000 / perChunk) * bufferCost(CAPTURE_CHUNK_BYTES));
    assert.equal(q.frames, 1000);
    assert.equal(q.bytes, 14_000);
    const got = [...q.take(600), ...q.take()];
    assert.equal(got.length, 1000);
    got.forEach((f, i) => {
      assert.equal(f.timeMs, i * 0.5);
      assert.equal(f.direction, i % 3 ? "rx" : "tx");
      assert.deepEqual(f.data, frame(i, 14));
    });
    assert.equal(q.frames, 0);
    assert.equal(q.bytes, 0);
  });

  it("frees the chunks it has read, keeps the last one for the next frames, and clear() frees all", () => {
    const memory = new MemoryQuota(1 << 20);
    const q = new CaptureQueue({ maxCost: 1 << 20, memory });
    const perChunk = Math.floor(CAPTURE_CHUNK_BYTES / (CAPTURE_RECORD_HEADER_BYTES + 100));
    for (let i = 0; i < 3 * perChunk; i++) q.push(0, "rx", frame(i, 100));
    assert.equal(q.storage().buffers, 3);
    assert.equal(memory.used, 3 * bufferCost(CAPTURE_CHUNK_BYTES), "charged chunk by chunk");
    q.take(perChunk + 1);
    assert.equal(q.storage().buffers, 2, "the chunk read to its end is freed");
    assert.equal(memory.used, 2 * bufferCost(CAPTURE_CHUNK_BYTES));
    q.take();
    assert.equal(q.storage().buffers, 1, "the last chunk stays for the next frames");
    q.push(0, "tx", frame(7, 100));
    assert.equal(q.storage().buffers, 1, "and is written again");
    assert.deepEqual(q.take()[0].data, frame(7, 100));
    q.clear();
    assert.deepEqual(q.storage(), { buffers: 0, bytes: 0 });
    assert.equal(q.cost, 0);
    assert.equal(memory.used, 0, "clear() releases every charge");
  });

  it("gives a frame larger than a chunk a chunk of its own size", () => {
    const q = new CaptureQueue({ maxCost: 1 << 20 });
    q.push(0, "rx", frame(1, 60));
    q.push(0, "rx", frame(2, 20_000));
    q.push(0, "rx", frame(3, 60));
    assert.deepEqual(q.storage(), {
      buffers: 3,
      bytes: CAPTURE_CHUNK_BYTES + 20_016 + CAPTURE_CHUNK_BYTES,
    });
    assert.deepEqual(q.take().map((f) => [f.data.length, f.data[0]]), [[60, 1], [20_000, 2], [
      60,
      3,
    ]]);
  });

  it("refuses with `full` at its bound and with `quota` when the memory quota refuses", () => {
    const small = new CaptureQueue({ maxCost: bufferCost(3 * 30) });
    for (let i = 0; i < 3; i++) assert.equal(small.push(0, "rx", frame(i, 14)), undefined);
    assert.equal(small.push(0, "rx", frame(3, 14)), "full");
    assert.equal(small.cost, bufferCost(90), "one chunk sized to the bound");
    const memory = new MemoryQuota(bufferCost(100));
    const q = new CaptureQueue({ maxCost: 1 << 20, memory });
    assert.equal(q.push(0, "rx", frame(0, 84)), undefined, "a chunk of the frame's size fits");
    assert.equal(memory.used, bufferCost(100));
    assert.equal(q.push(0, "rx", frame(1, 84)), "quota");
    assert.equal(memory.stats().refused, 3, "16 KiB refused, then both sizes for the second frame");
    assert.equal(q.frames, 1);
  });

  it("lets go of the chunk it kept when the next frame does not fit in it", () => {
    const q = new CaptureQueue({ maxCost: bufferCost(CAPTURE_RECORD_HEADER_BYTES + 20_000) });
    q.push(0, "rx", frame(0, 14));
    q.take();
    assert.equal(q.storage().bytes, CAPTURE_CHUNK_BYTES, "an empty 16 KiB chunk is kept");
    assert.equal(q.push(0, "rx", frame(1, 20_000)), undefined, "room for the large frame's own");
    assert.deepEqual(q.storage(), { buffers: 1, bytes: CAPTURE_RECORD_HEADER_BYTES + 20_000 });
    assert.equal(q.cost, q.storage().bytes + BUFFER_OVERHEAD_BYTES);
    assert.throws(() => new CaptureQueue({ maxCost: 0 }), RangeError);
  });
});
