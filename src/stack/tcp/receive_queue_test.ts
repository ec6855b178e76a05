import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { bufferCost, MemoryQuota } from "../session_quota.ts";
import {
  RECEIVE_CHUNK_BYTES,
  RECEIVE_HEADROOM_BYTES,
  RECEIVE_POOLED_CHUNK_BYTES,
  receivedHeadroom,
  ReceiveQueue,
} from "./receive_queue.ts";
import { isLargeBuffer, LARGE_BUFFER_BYTES, recycleLargeBuffer } from "../large_buffer_pool.ts";

/** `n` bytes of a pattern starting at `start`. */
function pattern(n: number, start = 0): Uint8Array {
  return new Uint8Array(n).map((_, i) => (start + i) * 7 & 0xff);
}

/** Reads everything queued, `max` bytes at a time, concatenated. */
function drainSmall(q: ReceiveQueue, max: number): Uint8Array {
  const parts: number[] = [];
  for (let out = q.read(max); out; out = q.read(max)) parts.push(...out);
  return new Uint8Array(parts);
}

/** Reads everything queued, concatenated. */
function drain(q: ReceiveQueue): Uint8Array {
  const parts: number[] = [];
  for (let out = q.read(1 << 30); out; out = q.read(1 << 30)) parts.push(...out);
  return new Uint8Array(parts);
}

describe("ReceiveQueue", () => {
  it("copies what it appends: the caller's array may be reused at once", () => {
    const q = new ReceiveQueue();
    const data = pattern(10);
    q.append(data);
    data.fill(0);
    assert.deepEqual(q.read(100), pattern(10));
  });

  it("coalesces small segments into chunks that double from 1 KiB up to 64 KiB", () => {
    const quota = new MemoryQuota(1 << 20);
    const q = new ReceiveQueue(quota);
    q.append(pattern(1000));
    assert.equal(q.chargedBytes, bufferCost(1024));
    q.append(pattern(1000, 1000)); // 24 fill the first chunk, 976 go to a 2 KiB one
    assert.equal(q.chargedBytes, bufferCost(1024) + bufferCost(2048));
    for (let i = 2; i < 200; i++) q.append(pattern(1000, i * 1000));
    // 200,000 bytes: 1 + 2 + 4 + 8 + 16 + 32 + 64 + 64 + 64 KiB chunks.
    const sizes = [1024, 2048, 4096, 8192, 16384, 32768, 65536, 65536, 65536];
    assert.equal(q.chargedBytes, sizes.reduce((n, s) => n + bufferCost(s), 0));
    assert.equal(quota.used, q.chargedBytes);
    assert.equal(q.length, 200_000);
    assert.deepEqual(drain(q), pattern(200_000));
    assert.equal(quota.used, 0, "every chunk read out is freed");
    // Emptied while streaming: the next burst starts at half the last chunk, then halves again.
    q.append(pattern(10));
    assert.equal(q.chargedBytes, bufferCost(32768));
    q.read(10);
    q.append(pattern(10));
    assert.equal(q.chargedBytes, bufferCost(16384));
  });

  it("makes the first chunk of a burst at the segment's size, charged as 1 KiB, grown when another joins", () => {
    const quota = new MemoryQuota(1 << 20);
    const q = new ReceiveQueue(quota);
    q.append(pattern(64));
    assert.equal(q.chargedBytes, bufferCost(1024), "charged as the 1 KiB chunk it may become");
    assert.equal(q.tailRoom, 1024 - 64, "and takes as much more");
    const alone = q.read(1000)!;
    assert.deepEqual(alone, pattern(64));
    assert.equal(alone.buffer.byteLength, 64, "read as made: storage of its size, no copy");
    assert.equal(quota.used, 0);
    // A second segment joins the first: the chunk gets its 1 KiB, the bytes stay in order.
    q.append(pattern(100));
    q.append(pattern(200, 100));
    assert.equal(q.chargedBytes, bufferCost(1024));
    assert.deepEqual(q.read(50), pattern(50));
    assert.deepEqual(q.read(1000), pattern(250, 50));
    // Read in part before the next one joins it.
    q.append(pattern(30));
    assert.deepEqual(q.read(10), pattern(10));
    q.append(pattern(5, 30));
    assert.deepEqual(drain(q), pattern(25, 10));
    assert.equal(quota.used, 0);
  });

  it("gives a large segment a chunk of its own size, with headroom before it", () => {
    const q = new ReceiveQueue();
    q.append(pattern(10));
    q.append(pattern(30_000, 10));
    assert.equal(
      q.chargedBytes,
      bufferCost(1024) + bufferCost(RECEIVE_HEADROOM_BYTES + 30_000),
      "the headroom is storage too",
    );
    assert.equal(q.tailRoom, 0);
    const small = q.read(1 << 20)!;
    assert.deepEqual(small, pattern(10), "the small chunk, then the large one whole");
    assert.equal(receivedHeadroom(small), 0, "a small chunk's buffer is shared: no headroom");
    const big = q.read(1 << 20)!;
    assert.equal(big.buffer.byteLength, RECEIVE_HEADROOM_BYTES + 30_000);
    assert.equal(receivedHeadroom(big), RECEIVE_HEADROOM_BYTES);
    assert.deepEqual(big, pattern(30_000, 10));
    assert.equal(receivedHeadroom(new Uint8Array(30_000)), 0, "not the queue's: no headroom");
    assert.equal(q.chargedBytes, 0);
  });

  it("keeps a segment of 48 KiB and more in a pooled buffer, charged whole, handed over with its headroom", () => {
    const q = new ReceiveQueue();
    q.append(pattern(60_000, 10));
    assert.equal(q.chargedBytes, bufferCost(LARGE_BUFFER_BYTES), "the buffer's full size");
    const big = q.read(1 << 20)!;
    assert.equal(big.buffer.byteLength, LARGE_BUFFER_BYTES);
    assert.equal(big.byteOffset, RECEIVE_HEADROOM_BYTES);
    assert.equal(receivedHeadroom(big), RECEIVE_HEADROOM_BYTES);
    assert.ok(isLargeBuffer(big.buffer), "the reader holds it now");
    assert.deepEqual(big, pattern(60_000, 10));
    assert.ok(
      new Uint8Array(big.buffer, RECEIVE_HEADROOM_BYTES + 60_000).every((b) => b === 0),
      "nothing but zeros after it",
    );
    assert.equal(q.chargedBytes, 0);
    // Given back by its reader, the buffer carries the next large segment, zeroed first.
    recycleLargeBuffer(big);
    assert.equal(receivedHeadroom(big), 0, "given back: no longer the reader's");
    q.append(pattern(RECEIVE_POOLED_CHUNK_BYTES, 3));
    const next = q.read(1 << 20)!;
    assert.equal(next.buffer, big.buffer, "the same storage");
    assert.deepEqual(next, pattern(RECEIVE_POOLED_CHUNK_BYTES, 3));
    assert.ok(
      new Uint8Array(next.buffer, RECEIVE_HEADROOM_BYTES + RECEIVE_POOLED_CHUNK_BYTES)
        .every((b) => b === 0),
      "zeroed: nothing of the last segment",
    );
  });

  it("gives a pooled buffer back itself once it copied the chunk out, or dropped it", () => {
    const q = new ReceiveQueue();
    // The pool hands out the buffer given back last: follow one buffer through.
    q.append(pattern(60_000));
    const a = q.read(1 << 20)!;
    recycleLargeBuffer(a);
    q.append(pattern(60_000, 1)); // in a's buffer, then copied out in small reads
    assert.deepEqual(drainSmall(q, 10_000), pattern(60_000, 1));
    q.append(pattern(60_000, 2));
    const c = q.read(1 << 20)!;
    assert.equal(c.buffer, a.buffer, "copied out: the queue gave the buffer back");
    assert.deepEqual(c, pattern(60_000, 2));
    q.append(pattern(60_000, 3));
    const d = q.read(1 << 20)!;
    assert.notEqual(d.buffer, c.buffer, "a chunk handed over is the reader's to give back");
    recycleLargeBuffer(d);
    q.append(pattern(60_000, 4)); // in d's buffer, then dropped
    q.clear();
    assert.equal(q.chargedBytes, 0);
    q.append(pattern(60_000, 5));
    const f = q.read(1 << 20)!;
    assert.equal(f.buffer, d.buffer, "cleared: the queue gave the buffer back");
    assert.deepEqual(f, pattern(60_000, 5));
    recycleLargeBuffer(c);
    recycleLargeBuffer(f);
  });

  it("reads up to max bytes across chunks, as one new array the caller owns", () => {
    const q = new ReceiveQueue();
    for (let i = 0; i < 5; i++) q.append(pattern(700, i * 700)); // chunks of 1024 and 2476 of 4096
    const a = q.read(100)!;
    assert.deepEqual(a, pattern(100));
    a.fill(0); // the caller's: changing it changes nothing queued
    const b = q.read(2000)!;
    assert.deepEqual(b, pattern(2000, 100), "the rest of the first chunk and part of the next");
    assert.deepEqual(q.read(10_000), pattern(1400, 2100));
    assert.equal(q.read(10), undefined);
  });

  it("hands over a full chunk at the front without copying, even when more follows", () => {
    const quota = new MemoryQuota(1 << 20);
    const q = new ReceiveQueue(quota);
    q.append(pattern(RECEIVE_CHUNK_BYTES)); // a chunk of its own, full
    q.append(pattern(100, RECEIVE_CHUNK_BYTES));
    const out = q.read(1 << 20)!;
    assert.equal(out.length, RECEIVE_CHUNK_BYTES);
    assert.equal(out.byteOffset, RECEIVE_HEADROOM_BYTES);
    assert.equal(out.buffer.byteLength, LARGE_BUFFER_BYTES, "a pooled buffer, nothing else in it");
    assert.deepEqual(out, pattern(RECEIVE_CHUNK_BYTES));
    assert.equal(quota.used, bufferCost(1024), "its charge went with it");
    assert.deepEqual(q.read(1 << 20), pattern(100, RECEIVE_CHUNK_BYTES));
  });

  it("refuses, whole, a segment whose storage the quota refuses", () => {
    const quota = new MemoryQuota(bufferCost(1024));
    const q = new ReceiveQueue(quota);
    assert.equal(q.append(pattern(1000)), true);
    assert.equal(q.append(pattern(24, 1000)), true, "fits in the room left");
    assert.equal(q.append(pattern(100, 1024)), false);
    assert.equal(q.length, 1024);
    assert.equal(q.append(pattern(100, 1024), true), true, "forced: bytes already held elsewhere");
    assert.equal(quota.used, bufferCost(1024) + bufferCost(2048));
    assert.deepEqual(drain(q), pattern(1124));
  });

  it("frees every chunk on clear", () => {
    const quota = new MemoryQuota(1 << 20);
    const q = new ReceiveQueue(quota);
    for (let i = 0; i < 10; i++) q.append(pattern(3000));
    q.clear();
    assert.equal(q.length, 0);
    assert.equal(q.chargedBytes, 0);
    assert.equal(quota.used, 0);
    assert.equal(q.read(10), undefined);
  });

  it("matches a reference byte stream under random appends and reads", () => {
    const quota = new MemoryQuota(1 << 30);
    const q = new ReceiveQueue(quota);
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    let written = 0;
    let read = 0;
    for (let step = 0; step < 5000; step++) {
      if (rnd(2) === 0) {
        const n = 1 + (rnd(4) === 0 ? rnd(40_000) : rnd(300));
        q.append(pattern(n, written));
        written += n;
      } else {
        const out = q.read(1 + rnd(20_000));
        if (out) {
          assert.deepEqual(out, pattern(out.length, read));
          read += out.length;
        }
      }
      assert.equal(q.length, written - read);
      assert.equal(quota.used, q.chargedBytes);
    }
    q.clear();
    assert.equal(quota.used, 0);
  });
});
