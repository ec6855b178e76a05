import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { seededRandom, type TcpSackBlock } from "../../wire/mod.ts";
import { Reassembler } from "./reassembler.ts";
import { pageTableCost } from "./paged_ring.ts";
import { bufferCost, MemoryQuota } from "../session_quota.ts";

/** Byte `i` of the test stream (not periodic in 256, to catch misplaced bytes). */
function streamByte(i: number): number {
  return (i * 7 + (i >>> 8) * 13 + 3) & 0xff;
}

/** `n` bytes of the stream starting at stream offset `off`. */
function stream(off: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = streamByte(off + i);
  return out;
}

/** A reassembler test fixture over a stream whose byte 0 has sequence number `isn`. */
function fixture(isn: number, capacity = 1000, maxRanges?: number) {
  const r = new Reassembler({ capacity, maxRanges });
  const seq = (off: number) => (isn + off) >>> 0;
  const add = (off: number, n: number, rcvOff: number, window?: number) =>
    r.add(seq(off), stream(off, n), seq(rcvOff), window);
  /** Pops at `rcvOff`, returning the delivered bytes, concatenated. */
  const pop = (rcvOff: number): Uint8Array => {
    const chunks: Uint8Array[] = [];
    const n = r.pop(seq(rcvOff), (c) => chunks.push(c.slice()));
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    assert.equal(at, n);
    return out;
  };
  const block = (from: number, to: number): TcpSackBlock => ({ left: seq(from), right: seq(to) });
  return { r, seq, add, pop, block };
}

for (const isn of [1000, 0xffffff00]) {
  const label = isn === 1000 ? "" : " across the 2^32 wrap";

  describe(`Reassembler${label}`, () => {
    it("in-order data is held and popped at once (no-op path)", () => {
      const { r, add, pop } = fixture(isn);
      assert.deepEqual(add(0, 300, 0), { accepted: 300, dropped: 0 });
      assert.equal(r.bufferedBytes, 300);
      assert.deepEqual(pop(0), stream(0, 300));
      assert.equal(r.bufferedBytes, 0);
      assert.equal(r.rangeCount, 0);
      assert.deepEqual(pop(300), new Uint8Array(0));
    });

    it("pop delivers nothing while the byte at RCV.NXT is missing", () => {
      const { r, add, pop } = fixture(isn);
      let called = false;
      add(10, 10, 0);
      assert.equal(r.pop(isn, () => called = true), 0);
      assert.equal(called, false);
      assert.equal(pop(0).length, 0);
      assert.equal(r.bufferedBytes, 10);
    });

    it("fills holes out of order (RFC 9293 §3.10.7.4)", () => {
      const { r, add, pop, block } = fixture(isn);
      assert.deepEqual(add(200, 100, 0), { accepted: 100, dropped: 0 });
      assert.deepEqual(add(50, 50, 0), { accepted: 50, dropped: 0 });
      assert.equal(r.rangeCount, 2);
      assert.equal(r.bufferedBytes, 150);
      assert.deepEqual(r.sackBlocks(4), [block(50, 100), block(200, 300)]);
      assert.deepEqual(add(0, 50, 0), { accepted: 50, dropped: 0 });
      assert.deepEqual(pop(0), stream(0, 100));
      assert.deepEqual(r.sackBlocks(4), [block(200, 300)]);
      assert.deepEqual(add(100, 100, 100), { accepted: 100, dropped: 0 });
      assert.deepEqual(pop(100), stream(100, 200));
      assert.equal(r.bufferedBytes, 0);
      assert.equal(r.rangeCount, 0);
    });

    it("merges adjacent segments into one range", () => {
      const { r, add, block } = fixture(isn);
      add(10, 10, 0);
      add(30, 10, 0);
      add(20, 10, 0);
      assert.equal(r.rangeCount, 1);
      assert.equal(r.bufferedBytes, 30);
      assert.deepEqual(r.sackBlocks(4), [block(10, 40)]);
    });

    it("counts overlap on the left, the right and both sides only once", () => {
      const { r, add, pop, block } = fixture(isn);
      add(100, 100, 0); // [100, 200)
      assert.deepEqual(add(80, 40, 0), { accepted: 20, dropped: 0 }); // left overlap
      assert.deepEqual(add(180, 40, 0), { accepted: 20, dropped: 0 }); // right overlap
      assert.deepEqual(r.sackBlocks(4), [block(80, 220)]);
      assert.deepEqual(add(60, 200, 0), { accepted: 60, dropped: 0 }); // covers it
      assert.deepEqual(add(300, 10, 0), { accepted: 10, dropped: 0 });
      assert.deepEqual(add(400, 10, 0), { accepted: 10, dropped: 0 });
      // Bridges three ranges and both holes between them.
      assert.deepEqual(add(250, 200, 0), { accepted: 200 - 30, dropped: 0 });
      assert.equal(r.rangeCount, 1);
      assert.deepEqual(r.sackBlocks(4), [block(60, 450)]);
      assert.equal(r.bufferedBytes, 390);
      add(0, 60, 0);
      assert.deepEqual(pop(0), stream(0, 450));
      assert.deepEqual(r.counters, {
        acceptedBytes: 450,
        duplicateBytes: 20 + 20 + 140 + 30,
        oldBytes: 0,
        beyondWindowBytes: 0,
        rangeLimitBytes: 0,
        rangeLimitSegments: 0,
        quotaBytes: 0,
        quotaSegments: 0,
      });
    });

    it("accepts nothing new for an exact duplicate, and the last copy wins", () => {
      const { r, seq, add, pop } = fixture(isn);
      add(10, 20, 0);
      const other = new Uint8Array(20).fill(0xee);
      assert.deepEqual(r.add(seq(10), other, seq(0)), { accepted: 0, dropped: 0 });
      assert.deepEqual(add(15, 5, 0), { accepted: 0, dropped: 0 });
      assert.equal(r.bufferedBytes, 20);
      assert.equal(r.counters.duplicateBytes, 25);
      add(0, 10, 0);
      const expected = stream(0, 30);
      expected.fill(0xee, 10, 15);
      expected.fill(0xee, 20, 30);
      assert.deepEqual(pop(0), expected);
    });

    it("keeps only the new part of a segment spanning RCV.NXT", () => {
      const { r, add, pop } = fixture(isn);
      assert.deepEqual(add(90, 30, 100), { accepted: 20, dropped: 10 });
      assert.equal(r.counters.oldBytes, 10);
      assert.deepEqual(pop(100), stream(100, 20));
    });

    it("drops a segment entirely before RCV.NXT", () => {
      const { r, add } = fixture(isn);
      assert.deepEqual(add(50, 50, 100), { accepted: 0, dropped: 50 });
      assert.deepEqual(add(0, 10, 100), { accepted: 0, dropped: 10 });
      assert.equal(r.bufferedBytes, 0);
      assert.equal(r.counters.oldBytes, 60);
      assert.equal(r.counters.beyondWindowBytes, 0);
    });

    it("cuts data beyond the window (capacity or RCV.WND)", () => {
      const { r, add, pop, block } = fixture(isn, 100);
      assert.deepEqual(add(90, 20, 0), { accepted: 10, dropped: 10 });
      assert.deepEqual(add(100, 10, 0), { accepted: 0, dropped: 10 });
      assert.deepEqual(add(50, 20, 0, 60), { accepted: 10, dropped: 10 });
      assert.deepEqual(add(70, 5, 0, 0), { accepted: 0, dropped: 5 });
      assert.deepEqual(add(10, 10, 0, 1e9), { accepted: 10, dropped: 0 });
      assert.equal(r.counters.beyondWindowBytes, 35);
      // Old and beyond in one segment.
      assert.deepEqual(add(-10, 200, 0), { accepted: 100 - 30, dropped: 100 });
      assert.equal(r.counters.oldBytes, 10);
      assert.deepEqual(r.sackBlocks(4), [block(0, 100)]);
      assert.deepEqual(pop(0), stream(0, 100));
      // The window moved: the same sequence space is now acceptable.
      assert.deepEqual(add(100, 100, 100), { accepted: 100, dropped: 0 });
      assert.deepEqual(pop(100), stream(100, 100));
    });

    it("keeps bytes in place while the window slides around its ring", () => {
      const { r, add, pop, block } = fixture(isn, 64);
      for (let base = 0; base < 64 * 20; base += 64 + 37) {
        add(base, 37, base);
        add(base + 40, 24, base); // [40, 64): a full window with a hole
        assert.deepEqual(pop(base), stream(base, 37));
        // RCV.NXT = base + 37; this lands on the ring's first 37 bytes again.
        assert.deepEqual(add(base + 64, 40, base + 37), { accepted: 37, dropped: 3 });
        assert.deepEqual(r.sackBlocks(4), [block(base + 40, base + 101)]);
        assert.deepEqual(add(base + 37, 3, base + 37), { accepted: 3, dropped: 0 });
        assert.equal(r.bufferedBytes, 64);
        assert.deepEqual(pop(base + 37), stream(base + 37, 64));
      }
    });

    it("drops a new range beyond maxRanges and counts it", () => {
      const { r, add, block } = fixture(isn, 1000, 3);
      add(100, 10, 0);
      add(200, 10, 0);
      add(300, 10, 0);
      assert.deepEqual(add(400, 10, 0), { accepted: 0, dropped: 10 });
      assert.deepEqual(add(150, 10, 0), { accepted: 0, dropped: 10 });
      assert.deepEqual(add(395, 10, 0), { accepted: 0, dropped: 10 });
      assert.equal(r.rangeCount, 3);
      assert.equal(r.bufferedBytes, 30);
      assert.equal(r.counters.rangeLimitSegments, 3);
      assert.equal(r.counters.rangeLimitBytes, 30);
      // Touching or overlapping a held range never adds one: accepted.
      assert.deepEqual(add(110, 10, 0), { accepted: 10, dropped: 0 });
      assert.deepEqual(add(295, 10, 0), { accepted: 5, dropped: 0 });
      assert.deepEqual(add(190, 130, 0), { accepted: 130 - 25, dropped: 0 });
      assert.equal(r.rangeCount, 2);
      assert.deepEqual(r.sackBlocks(4), [block(190, 320), block(100, 120)]);
      add(400, 10, 0);
      assert.equal(r.rangeCount, 3);
    });

    it("always takes in-order data, even with maxRanges ranges held", () => {
      const { r, add, pop } = fixture(isn, 1000, 2);
      add(100, 10, 0);
      add(200, 10, 0);
      assert.deepEqual(add(0, 50, 0), { accepted: 50, dropped: 0 });
      assert.equal(r.rangeCount, 3);
      assert.deepEqual(add(70, 5, 0), { accepted: 0, dropped: 5 });
      assert.deepEqual(pop(0), stream(0, 50));
      assert.equal(r.rangeCount, 2);
      assert.deepEqual(add(50, 50, 50), { accepted: 50, dropped: 0 });
      assert.deepEqual(pop(50), stream(50, 60));
    });

    it("reports the most recent block first (RFC 2018 §4)", () => {
      const { r, add, block } = fixture(isn);
      add(100, 10, 0);
      add(300, 10, 0);
      add(200, 10, 0);
      assert.deepEqual(r.sackBlocks(4), [block(200, 210), block(300, 310), block(100, 110)]);
      assert.deepEqual(r.sackBlocks(2), [block(200, 210), block(300, 310)]);
      assert.deepEqual(r.sackBlocks(0), []);
      add(105, 10, 0); // updates the oldest block: it moves to the front
      assert.deepEqual(r.sackBlocks(4), [block(100, 115), block(200, 210), block(300, 310)]);
      add(300, 10, 0); // a duplicate still names its block first
      assert.deepEqual(r.sackBlocks(4), [block(300, 310), block(100, 115), block(200, 210)]);
      add(0, 5, 0, 0); // dropped (zero window): no update
      assert.deepEqual(r.sackBlocks(1), [block(300, 310)]);
      add(210, 90, 0); // joins two blocks into the newest
      assert.deepEqual(r.sackBlocks(4), [block(200, 310), block(100, 115)]);
    });

    it("follows RFC 2018 §7 case 3 (segments 2, 4, 6, 8 lost)", () => {
      // Left window edge 5000, eight 500-byte segments; ISN chosen so the
      // stream offset equals the RFC's sequence number minus 5000.
      const { r, add, pop, block } = fixture(isn, 65535);
      const seg = (n: number) => (n - 1) * 500; // stream offset of segment n
      let rcv = 0;
      const deliver = (n: number) => {
        add(seg(n), 500, rcv);
        rcv += pop(rcv).length;
      };
      const at = (s: number) => s - 5000;
      deliver(1);
      assert.equal(rcv, at(5500));
      assert.deepEqual(r.sackBlocks(4), []);
      deliver(3);
      assert.deepEqual(r.sackBlocks(4), [block(at(6000), at(6500))]);
      deliver(5);
      assert.deepEqual(r.sackBlocks(4), [block(at(7000), at(7500)), block(at(6000), at(6500))]);
      deliver(7);
      assert.deepEqual(r.sackBlocks(4), [
        block(at(8000), at(8500)),
        block(at(7000), at(7500)),
        block(at(6000), at(6500)),
      ]);
      deliver(4); // the 4th segment is retransmitted
      assert.equal(rcv, at(5500));
      assert.deepEqual(r.sackBlocks(4), [block(at(6000), at(7500)), block(at(8000), at(8500))]);
      deliver(2); // the 2nd segment is retransmitted
      assert.equal(rcv, at(7500));
      assert.deepEqual(r.sackBlocks(4), [block(at(8000), at(8500))]);
      deliver(6);
      deliver(8);
      assert.equal(rcv, at(9000));
      assert.deepEqual(r.sackBlocks(4), []);
    });

    it("follows RFC 2018 §7 case 2 (first segment lost)", () => {
      const { r, add, pop, block } = fixture(isn, 65535);
      for (let n = 2; n <= 8; n++) {
        add((n - 1) * 500, 500, 0);
        assert.equal(pop(0).length, 0);
        assert.deepEqual(r.sackBlocks(4), [block(500, n * 500)]);
      }
      add(0, 500, 0);
      assert.deepEqual(pop(0), stream(0, 4000));
    });

    it("discards held bytes that RCV.NXT has passed (caller delivered them)", () => {
      const { r, add, pop, block } = fixture(isn);
      add(10, 10, 0);
      add(30, 10, 0);
      add(50, 10, 0);
      assert.deepEqual(pop(15), stream(15, 5));
      assert.equal(r.bufferedBytes, 20);
      assert.deepEqual(r.sackBlocks(4), [block(50, 60), block(30, 40)]);
      assert.deepEqual(pop(35), stream(35, 5));
      assert.deepEqual(add(55, 20, 45), { accepted: 15, dropped: 0 });
      assert.deepEqual(pop(60), stream(60, 15));
      assert.equal(r.rangeCount, 0);
      assert.equal(pop(500).length, 0);
    });

    it("throws RangeError when RCV.NXT moves backwards with bytes held", () => {
      const { r, seq, add } = fixture(isn);
      add(10, 10, 5);
      assert.throws(() => add(10, 10, 4), /rcvNxt .* is before the previous rcvNxt/);
      assert.throws(() => r.pop(seq(0), () => {}), RangeError);
      r.clear();
      assert.deepEqual(add(10, 10, 0), { accepted: 10, dropped: 0 });
    });

    it("clear drops everything", () => {
      const { r, add, pop } = fixture(isn);
      add(10, 10, 0);
      add(30, 10, 0);
      r.clear();
      assert.equal(r.bufferedBytes, 0);
      assert.equal(r.rangeCount, 0);
      assert.deepEqual(r.sackBlocks(4), []);
      assert.equal(pop(0).length, 0);
      add(0, 5, 0);
      assert.deepEqual(pop(0), stream(0, 5));
    });
  });
}

describe("Reassembler storage: owned pages charged to the memory quota", () => {
  const PAGE = 4096;
  const COST = bufferCost(PAGE);
  /** The page table of the 64 KiB reassemblers below (16 pages), charged while a page is held. */
  const TABLE = pageTableCost(16);

  it("holds no storage until bytes arrive, and coalesces adjacent bytes into one page", () => {
    const quota = new MemoryQuota(1 << 20);
    const r = new Reassembler({ capacity: 64 * 1024, quota });
    assert.equal(r.chargedBytes, 0);
    for (let i = 0; i < 1000; i++) r.add(1000 + i, stream(i, 1), 0); // 1,000 one-byte segments
    assert.equal(r.bufferedBytes, 1000);
    assert.equal(r.rangeCount, 1);
    assert.equal(r.chargedBytes, COST + TABLE, "one page holds them all");
    assert.equal(quota.used, COST + TABLE);
  });

  it("copies: the segment's array may be reused at once", () => {
    const r = new Reassembler({ capacity: 1000 });
    const data = stream(10, 5);
    r.add(10, data, 0);
    data.fill(0);
    r.add(0, stream(0, 10), 0);
    const out: Uint8Array[] = [];
    r.pop(0, (c) => out.push(c.slice()));
    assert.deepEqual(new Uint8Array([...out[0]]), stream(0, 15));
  });

  it("charges a page per page touched and releases pages as bytes are popped, discarded or cleared", () => {
    const quota = new MemoryQuota(1 << 20);
    const r = new Reassembler({ capacity: 64 * 1024, quota });
    r.add(100, stream(100, 10), 0); // page 0
    r.add(5 * PAGE, stream(5 * PAGE, 2 * PAGE), 0); // pages 5 and 6
    assert.equal(quota.used, 3 * COST + TABLE);
    r.add(0, stream(0, 100), 0);
    assert.equal(r.pop(0, () => {}), 110);
    assert.equal(quota.used, 2 * COST + TABLE, "page 0 held only the popped bytes: freed");
    // The caller delivered up to the middle of page 6 itself: page 5 is discarded.
    r.add(7 * PAGE, stream(7 * PAGE, 1), 6 * PAGE + 10);
    assert.equal(r.bufferedBytes, PAGE - 10 + 1);
    assert.equal(quota.used, 2 * COST + TABLE, "page 5 freed, page 7 charged");
    r.clear();
    assert.equal(quota.used, 0);
    assert.equal(r.chargedBytes, 0);
  });

  it("drops a segment whose new page the quota refuses, counts it, and keeps what it holds", () => {
    const quota = new MemoryQuota(COST + TABLE);
    const r = new Reassembler({ capacity: 64 * 1024, quota });
    assert.deepEqual(r.add(100, stream(100, 10), 0), { accepted: 10, dropped: 0 });
    assert.deepEqual(r.add(200, stream(200, 10), 0), { accepted: 10, dropped: 0 }, "same page");
    assert.deepEqual(r.add(PAGE + 1, stream(PAGE + 1, 10), 0), { accepted: 0, dropped: 10 });
    assert.equal(r.counters.quotaSegments, 1);
    assert.equal(r.counters.quotaBytes, 10);
    assert.equal(r.bufferedBytes, 20);
    assert.deepEqual(r.sackBlocks(4), [{ left: 200, right: 210 }, { left: 100, right: 110 }]);
    assert.equal(quota.stats().refused, 1);
    r.clear();
    assert.equal(quota.used, 0);
  });

  it("pops at most max bytes and keeps the rest at RCV.NXT", () => {
    const quota = new MemoryQuota(1 << 20);
    const r = new Reassembler({ capacity: 64 * 1024, quota });
    r.add(0, stream(0, 3 * PAGE), 0);
    assert.equal(r.contiguousBytes(0), 3 * PAGE);
    const out: Uint8Array[] = [];
    assert.equal(r.pop(0, (c) => out.push(c.slice()), PAGE + 10), PAGE + 10);
    assert.equal(quota.used, 2 * COST + TABLE, "the first page is freed");
    assert.equal(r.contiguousBytes(PAGE + 10), 2 * PAGE - 10);
    assert.equal(r.pop(PAGE + 10, (c) => out.push(c.slice())), 2 * PAGE - 10);
    assert.deepEqual(new Uint8Array(out.flatMap((c) => [...c])), stream(0, 3 * PAGE));
    assert.equal(quota.used, 0);
  });
});

describe("Reassembler options", () => {
  it("rejects a bad capacity or maxRanges", () => {
    for (const capacity of [0, -1, 2.5, NaN, 0x40000001]) {
      assert.throws(() => new Reassembler({ capacity }), RangeError);
    }
    assert.throws(
      () => new Reassembler({ capacity: 0 }),
      /capacity must be an integer in 1\.\.1073741824, got 0/,
    );
    assert.throws(
      () => new Reassembler({ capacity: 10, maxRanges: 0 }),
      /maxRanges must be a positive integer, got 0/,
    );
    const r = new Reassembler({ capacity: 10 });
    assert.equal(r.capacity, 10);
    assert.equal(r.maxRanges, 32);
  });

  it("delivers a range wrapping the end of its ring as one view per page", () => {
    const r = new Reassembler({ capacity: 8, pageBytes: 4 });
    r.add(0, stream(0, 4), 0);
    r.add(5, stream(5, 3), 0); // keeps the ring base from resetting
    assert.equal(r.pop(0, () => {}), 4); // base now at ring index 4
    assert.deepEqual(r.add(8, stream(8, 4), 4), { accepted: 4, dropped: 0 }); // ring 0..3
    r.add(4, stream(4, 1), 4);
    const chunks: Uint8Array[] = [];
    assert.equal(r.pop(4, (c) => chunks.push(c.slice())), 8);
    assert.deepEqual(chunks.map((c) => c.length), [4, 4]);
    assert.deepEqual(new Uint8Array([...chunks[0], ...chunks[1]]), stream(4, 8));
  });
});

/**
 * A reference model: held bytes in a Map keyed by stream offset (an unbounded
 * integer), ranges recomputed from it.
 */
class Model {
  held = new Map<number, number>();
  runs(rcv: number, cap: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    let i = rcv;
    while (i < rcv + cap) {
      if (!this.held.has(i)) {
        i++;
        continue;
      }
      const start = i;
      while (this.held.has(i)) i++;
      out.push([start, i]);
    }
    return out;
  }
}

function randomized(
  seed: number,
  capacity: number,
  maxRanges: number,
  maxLen: number,
  pageBytes = 4096,
) {
  const rng = seededRandom(seed);
  const isn = 0xffffff00 - (rng.u32() % 0x400); // the stream crosses 2^32
  const total = 20_000;
  const quota = new MemoryQuota(1 << 30);
  const r = new Reassembler({ capacity, maxRanges, quota, pageBytes });
  const pageCost = bufferCost(pageBytes);
  const model = new Model();
  const seq = (off: number) => (isn + off) >>> 0;
  const received = new Uint8Array(total);
  let rcv = 0;
  const deliver = (c: Uint8Array) => {
    received.set(c, rcv);
    rcv += c.length;
  };
  let steps = 0;
  while (rcv < total) {
    steps++;
    assert.ok(steps < 200_000, `seed ${seed}: no progress at offset ${rcv}`);
    // Pick a segment near the window: sometimes old, sometimes beyond it.
    const start = Math.max(0, rcv + Math.floor((rng.next() * 1.4 - 0.2) * capacity));
    const len = Math.min(total - start, 1 + (rng.u32() % maxLen));
    if (len <= 0) continue;
    const data = stream(start, len);
    const window = rng.next() < 0.1 ? rng.u32() % (capacity + 1) : capacity;

    if (start <= rcv && start + len > rcv && rng.next() < 0.3) {
      // The caller's fast path: it delivers in-order bytes itself, then pops.
      const n = Math.min(start + len, rcv + window) - rcv;
      if (n <= 0) continue;
      const before = rcv;
      deliver(data.subarray(rcv - start, rcv - start + n));
      for (const k of [...model.held.keys()]) if (k < rcv) model.held.delete(k);
      const popped = r.pop(seq(rcv), deliver);
      const runs = model.runs(before + n, capacity);
      const expect = runs.length > 0 && runs[0][0] === before + n ? runs[0][1] - runs[0][0] : 0;
      assert.equal(popped, expect);
      for (let i = before + n; i < before + n + popped; i++) model.held.delete(i);
    } else {
      // Reference result.
      const s = Math.max(start, rcv);
      const e = Math.min(start + len, rcv + window);
      let expAccepted = 0;
      let expDropped = len;
      if (s < e) {
        const runs = model.runs(rcv, capacity);
        const touches = runs.some(([a, b]) => b >= s && a <= e);
        if (touches || runs.length < maxRanges || s === rcv) {
          for (let i = s; i < e; i++) {
            if (!model.held.has(i)) expAccepted++;
            model.held.set(i, streamByte(i));
          }
          expDropped = len - (e - s);
        }
      }
      const res = r.add(seq(start), data, seq(rcv), window);
      assert.deepEqual(res, { accepted: expAccepted, dropped: expDropped }, `seed ${seed}`);
      if (s < e && expDropped < len) {
        // RFC 2018 §4: the first block holds the segment just received.
        const first = r.sackBlocks(1)[0];
        assert.ok(first !== undefined);
        const from = (seq(s) - first.left) >>> 0;
        const to = (first.right - seq(e)) >>> 0;
        assert.ok(from < capacity && to < capacity, `seed ${seed}: first block misses segment`);
      }
      const before = rcv;
      const popped = r.pop(seq(rcv), deliver);
      let expect = 0;
      while (model.held.has(before + expect)) model.held.delete(before + expect++);
      assert.equal(popped, expect);
    }
    // The rest of the state matches the model.
    assert.equal(r.bufferedBytes, model.held.size);
    const runs = model.runs(rcv, capacity);
    assert.equal(r.rangeCount, runs.length);
    const blocks = r.sackBlocks(Infinity).map((b) => [b.left, b.right]);
    blocks.sort((x, y) => ((x[0] - seq(rcv)) >>> 0) - ((y[0] - seq(rcv)) >>> 0));
    assert.deepEqual(blocks, runs.map(([a, b]) => [seq(a), seq(b)]));
    // Storage: enough pages for the bytes held, none beyond the pages the runs touch; their
    // cost and, while any is held, the page table's.
    const pages = r.pageCount;
    const table = pageTableCost(Math.ceil(capacity / pageBytes));
    assert.equal(r.chargedBytes, pages === 0 ? 0 : pages * pageCost + table);
    assert.equal(quota.used, r.chargedBytes);
    assert.ok(pages >= Math.ceil(r.bufferedBytes / pageBytes), `seed ${seed}: too few pages`);
    const most = runs.reduce((n, [a, b]) => n + Math.ceil((b - a) / pageBytes) + 1, 0);
    assert.ok(pages <= most, `seed ${seed}: ${pages} pages for runs that touch at most ${most}`);
  }
  assert.deepEqual(received, stream(0, total), `seed ${seed}: delivered stream differs`);
  assert.equal(quota.used, 0, `seed ${seed}: every page is released once all is delivered`);
  return r.counters;
}

describe("Reassembler against a reference model", () => {
  it("delivers a shuffled, duplicated, overlapping stream byte for byte (wrapping 2^32)", () => {
    for (const seed of [1, 2, 3, 0xbeef]) {
      const counters = randomized(seed, 4096, 1000, 600);
      assert.equal(counters.rangeLimitSegments, 0);
      assert.ok(counters.duplicateBytes > 0 && counters.oldBytes > 0);
      assert.ok(counters.beyondWindowBytes > 0);
    }
  });

  it("does the same with small pages: every page released when its bytes leave", () => {
    for (const seed of [4, 5, 6]) randomized(seed, 4096, 1000, 600, 64);
  });

  it("does the same with a small ring and a tight range limit", () => {
    for (const seed of [7, 8, 9, 0xcafe]) {
      const counters = randomized(seed, 700, 4, 60);
      assert.ok(counters.rangeLimitSegments > 0);
    }
  });
});
