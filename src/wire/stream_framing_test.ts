import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  encodeStreamFrames,
  StreamDeframer,
  streamFramesLength,
  writeStreamFrames,
} from "./stream_framing.ts";
import { seededRandom } from "./mod.ts";

function frame(len: number, fill: number): Uint8Array {
  return new Uint8Array(len).fill(fill);
}

describe("QEMU stream framing", () => {
  it("encodes a big-endian u32 length before every frame", () => {
    const out = encodeStreamFrames([frame(3, 1), frame(0x0102, 2)]);
    assert.deepEqual([...out.subarray(0, 7)], [0, 0, 0, 3, 1, 1, 1]);
    assert.deepEqual([...out.subarray(7, 11)], [0, 0, 1, 2]);
    assert.equal(out.length, 7 + 4 + 0x0102);
  });

  it("writes the same framing into a caller's buffer, at its start", () => {
    const frames = [frame(3, 1), frame(0x010203, 2), frame(0, 3)];
    assert.equal(streamFramesLength(frames), 4 + 3 + 4 + 0x010203 + 4);
    const out = new Uint8Array(streamFramesLength(frames) + 5).fill(0xee);
    assert.equal(writeStreamFrames(out, frames), streamFramesLength(frames));
    assert.deepEqual(out.subarray(0, streamFramesLength(frames)), encodeStreamFrames(frames));
    assert.deepEqual([...out.subarray(7, 11)], [0, 1, 2, 3]);
    assert.deepEqual([...out.subarray(-5)], [0xee, 0xee, 0xee, 0xee, 0xee], "nothing past the end");
  });

  it("decodes frames split at every possible boundary", () => {
    const frames = [frame(60, 1), frame(1514, 2), frame(14, 3)];
    const bytes = encodeStreamFrames(frames);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const got: Uint8Array[] = [];
      const d = new StreamDeframer(2000, (f) => got.push(f.slice()));
      assert.equal(d.push(bytes.subarray(0, cut)), undefined);
      assert.equal(d.push(bytes.subarray(cut)), undefined);
      assert.deepEqual(got, frames, `cut at ${cut}`);
      assert.equal(d.pendingBytes, 0);
    }
  });

  it("decodes a stream fed in random chunk sizes (seeded)", () => {
    const rand = seededRandom(7);
    const frames = Array.from(
      { length: 200 },
      (_, i) => frame(14 + Math.floor(rand.next() * 1500), i),
    );
    const bytes = encodeStreamFrames(frames);
    const got: Uint8Array[] = [];
    const d = new StreamDeframer(2000, (f) => got.push(f.slice()));
    for (let at = 0; at < bytes.length;) {
      const n = 1 + Math.floor(rand.next() * 3000);
      d.push(bytes.subarray(at, at + n));
      at += n;
    }
    assert.deepEqual(got, frames);
  });

  it("refuses a length over the limit and stays failed", () => {
    const got: Uint8Array[] = [];
    const d = new StreamDeframer(100, (f) => got.push(f));
    const err = d.push(new Uint8Array([0, 0, 0, 101, 9, 9]));
    assert.deepEqual(err, { reason: "frame-too-long", length: 101, limit: 100 });
    assert.deepEqual(d.push(encodeStreamFrames([frame(10, 1)])), err);
    assert.equal(got.length, 0);
  });

  it("refuses an over-long length split across chunks", () => {
    const d = new StreamDeframer(100, () => assert.fail("no frame expected"));
    assert.equal(d.push(new Uint8Array([0, 0])), undefined);
    assert.equal(d.push(new Uint8Array([1, 0]))?.reason, "frame-too-long");
  });
});
