import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  FRAME_ARENA_CHUNK_BYTES,
  FrameArena,
  LARGE_FRAME_HEADROOM,
  largeFrameHeadroom,
} from "./frame_arena.ts";
import { LARGE_BUFFER_POOL_BUFFERS, recycleLargeBuffer } from "./large_buffer_pool.ts";

describe("FrameArena", () => {
  it("hands out zero-filled frames at 2 mod 4, so that IP and TCP headers are aligned", () => {
    const arena = new FrameArena();
    for (const len of [60, 1514, 61, 1, 9000]) {
      const f = arena.alloc(len);
      assert.equal(f.length, len);
      assert.equal(f.byteOffset % 4, 2);
      assert.ok(f.every((b) => b === 0));
    }
  });

  it("never hands out the same bytes twice: frames of one chunk follow each other", () => {
    const arena = new FrameArena();
    const a = arena.alloc(1514);
    a.fill(0xaa);
    const b = arena.alloc(1514);
    assert.equal(a.buffer, b.buffer);
    assert.ok(b.byteOffset >= a.byteOffset + a.length);
    assert.ok(b.every((x) => x === 0));
    assert.ok(a.every((x) => x === 0xaa));
  });

  it("starts a new chunk when the current one is full, leaving the old frames alone", () => {
    const arena = new FrameArena();
    const first = arena.alloc(1514);
    let last = first;
    for (let i = 0; i < FRAME_ARENA_CHUNK_BYTES / 1514; i++) last = arena.alloc(1514);
    assert.notEqual(last.buffer, first.buffer);
    assert.equal(last.byteOffset % 4, 2);
  });

  it("gives a large frame a buffer of its own", () => {
    const arena = new FrameArena();
    const small = arena.alloc(100);
    const big = arena.alloc(65549);
    assert.notEqual(big.buffer, small.buffer);
    assert.equal(big.length, 65549);
    assert.equal(arena.alloc(100).buffer, small.buffer);
  });

  it("leaves a large frame at least 32 bytes of its own before it, and says so (largeFrameHeadroom)", () => {
    const arena = new FrameArena();
    const big = arena.alloc(65549);
    assert.ok(big.byteOffset >= LARGE_FRAME_HEADROOM);
    assert.equal(big.byteOffset % 4, 2);
    assert.equal(largeFrameHeadroom(big), big.byteOffset);
    assert.equal(largeFrameHeadroom(arena.alloc(1514)), 0, "a chunk's frame shares its buffer");
    assert.equal(largeFrameHeadroom(new Uint8Array(65549)), 0, "not the arena's: no headroom");
    const tail = new Uint8Array(new ArrayBuffer(70_000), 40, 60_000);
    assert.equal(largeFrameHeadroom(tail), 0, "bytes after it: another's buffer");
  });

  it("hands a large frame's buffer out again once it is given back, zeroed, and only once", () => {
    const arena = new FrameArena();
    const a = arena.alloc(60_000).fill(0xee);
    recycleLargeBuffer(a);
    assert.equal(largeFrameHeadroom(a), 0, "given back: no longer the holder's");
    recycleLargeBuffer(a); // a second time: ignored, or two frames would share it
    const b = arena.alloc(65_549);
    assert.equal(b.buffer, a.buffer, "the same storage");
    assert.equal(b.byteOffset % 4, 2);
    assert.ok(b.every((x) => x === 0), "zeroed again: nothing of the last frame");
    assert.equal(largeFrameHeadroom(b), b.byteOffset);
    const c = arena.alloc(60_000);
    assert.notEqual(c.buffer, b.buffer, "the second give-back was ignored");
    // Arrays an arena did not make, or that share a chunk, are not taken.
    recycleLargeBuffer(new Uint8Array(new ArrayBuffer(65_792), 40, 60_000));
    recycleLargeBuffer(arena.alloc(1514));
    assert.notEqual(arena.alloc(60_000).buffer, b.buffer);
  });

  it("keeps at most LARGE_BUFFER_POOL_BUFFERS buffers for reuse", () => {
    const arena = new FrameArena();
    const frames = Array.from({ length: LARGE_BUFFER_POOL_BUFFERS + 5 }, () => arena.alloc(60_000));
    for (const f of frames) recycleLargeBuffer(f);
    const again = new Set(
      Array.from({ length: LARGE_BUFFER_POOL_BUFFERS + 5 }, () => arena.alloc(60_000).buffer),
    );
    const reused = frames.filter((f) => again.has(f.buffer as ArrayBuffer)).length;
    assert.equal(reused, LARGE_BUFFER_POOL_BUFFERS);
  });

  it("reserves the headroom before every frame", () => {
    const arena = new FrameArena();
    arena.headroom = 14;
    const a = arena.alloc(60);
    const b = arena.alloc(60);
    assert.ok(a.byteOffset >= 14);
    assert.ok(b.byteOffset - (a.byteOffset + a.length) >= 14);
    assert.equal(b.byteOffset % 4, 2);
    const big = arena.alloc(20_000);
    assert.ok(big.byteOffset >= 14);
  });

  it("rejects a bad chunk size or headroom", () => {
    assert.throws(() => new FrameArena(100), /chunkBytes must be an integer >= 4096, got 100/);
    const arena = new FrameArena();
    assert.throws(() => arena.headroom = 65, /headroom must be an integer in 0..64, got 65/);
    assert.throws(() => arena.headroom = 1.5, RangeError);
  });
});
