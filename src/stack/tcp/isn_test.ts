import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  IsnGenerator,
  sipHash24,
  SYN_COOKIE_MSS_TABLE,
  SYN_COOKIE_PERIOD_MS,
  SynCookieCodec,
  synCookieMssIndex,
} from "./isn.ts";
import { seededRandom } from "../../wire/random.ts";

/**
 * SipHash-2-4 with key 00 01 .. 0f over the messages (), (00), (00 01), ...,
 * (00 .. 3e): the 64 reference vectors published with the paper.
 */
const VECTORS = [
  "726fdb47dd0e0e31",
  "74f839c593dc67fd",
  "0d6c8009d9a94f5a",
  "85676696d7fb7e2d",
  "cf2794e0277187b7",
  "18765564cd99a68d",
  "cbc9466e58fee3ce",
  "ab0200f58b01d137",
  "93f5f5799a932462",
  "9e0082df0ba9e4b0",
  "7a5dbbc594ddb9f3",
  "f4b32f46226bada7",
  "751e8fbc860ee5fb",
  "14ea5627c0843d90",
  "f723ca908e7af2ee",
  "a129ca6149be45e5",
  "3f2acc7f57c29bdb",
  "699ae9f52cbe4794",
  "4bc1b3f0968dd39c",
  "bb6dc91da77961bd",
  "bed65cf21aa2ee98",
  "d0f2cbb02e3b67c7",
  "93536795e3a33e88",
  "a80c038ccd5ccec8",
  "b8ad50c6f649af94",
  "bce192de8a85b8ea",
  "17d835b85bbb15f3",
  "2f2e6163076bcfad",
  "de4daaaca71dc9a5",
  "a6a2506687956571",
  "ad87a3535c49ef28",
  "32d892fad841c342",
  "7127512f72f27cce",
  "a7f32346f95978e3",
  "12e0b01abb051238",
  "15e034d40fa197ae",
  "314dffbe0815a3b4",
  "027990f029623981",
  "cadcd4e59ef40c4d",
  "9abfd8766a33735c",
  "0e3ea96b5304a7d0",
  "ad0c42d6fc585992",
  "187306c89bc215a9",
  "d4a60abcf3792b95",
  "f935451de4f21df2",
  "a9538f0419755787",
  "db9acddff56ca510",
  "d06c98cd5c0975eb",
  "e612a3cb9ecba951",
  "c766e62cfcadaf96",
  "ee64435a9752fe72",
  "a192d576b245165a",
  "0a8787bf8ecb74b2",
  "81b3e73d20b49b6f",
  "7fa8220ba3b2ecea",
  "245731c13ca42499",
  "b78dbfaf3a8d83bd",
  "ea1ad565322a1a0b",
  "60e61c23a3795013",
  "6606d7e446282b93",
  "6ca4ecb15c5f91e1",
  "9f626da15c9625f3",
  "e51b38608ef25f57",
  "958a324ceb064572",
];

function hex64(r: { hi: number; lo: number }): string {
  return r.hi.toString(16).padStart(8, "0") + r.lo.toString(16).padStart(8, "0");
}

/** A slow, obviously-correct BigInt SipHash-2-4, straight from the paper's description. */
function referenceSipHash(key: Uint8Array, msg: Uint8Array): bigint {
  const M = (1n << 64n) - 1n;
  const rotl = (x: bigint, b: bigint) => ((x << b) | (x >> (64n - b))) & M;
  const le = (b: Uint8Array, i: number, n: number) => {
    let v = 0n;
    for (let j = n - 1; j >= 0; j--) v = (v << 8n) | BigInt(b[i + j]);
    return v;
  };
  const k0 = le(key, 0, 8);
  const k1 = le(key, 8, 8);
  let v0 = k0 ^ 0x736f6d6570736575n;
  let v1 = k1 ^ 0x646f72616e646f6dn;
  let v2 = k0 ^ 0x6c7967656e657261n;
  let v3 = k1 ^ 0x7465646279746573n;
  const round = () => {
    v0 = (v0 + v1) & M;
    v1 = rotl(v1, 13n) ^ v0;
    v0 = rotl(v0, 32n);
    v2 = (v2 + v3) & M;
    v3 = rotl(v3, 16n) ^ v2;
    v0 = (v0 + v3) & M;
    v3 = rotl(v3, 21n) ^ v0;
    v2 = (v2 + v1) & M;
    v1 = rotl(v1, 17n) ^ v2;
    v2 = rotl(v2, 32n);
  };
  const words = Math.floor(msg.length / 8);
  for (let w = 0; w <= words; w++) {
    const m = w < words
      ? le(msg, w * 8, 8)
      : le(msg, w * 8, msg.length % 8) | (BigInt(msg.length & 0xff) << 56n);
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  v2 ^= 0xffn;
  for (let i = 0; i < 4; i++) round();
  return v0 ^ v1 ^ v2 ^ v3;
}

const KEY = Uint8Array.from({ length: 16 }, (_, i) => i);
const LOCAL = 0x0a000202; // 10.0.2.2
const REMOTE = 0x0a00020f; // 10.0.2.15

describe("sipHash24 (SipHash paper, Appendix A)", () => {
  it("hashes the empty message under key 00..0f to 726fdb47dd0e0e31", () => {
    assert.equal(hex64(sipHash24(KEY, new Uint8Array(0))), "726fdb47dd0e0e31");
  });

  it("matches all 64 reference vectors for messages 00, 00 01, ..., 00..3e", () => {
    const msg = Uint8Array.from({ length: 64 }, (_, i) => i);
    for (let len = 0; len < 64; len++) {
      assert.equal(hex64(sipHash24(KEY, msg.subarray(0, len))), VECTORS[len], `length ${len}`);
    }
  });

  it("matches the paper's worked example (15-byte message): a129ca6149be45e5", () => {
    const msg = Uint8Array.from({ length: 15 }, (_, i) => i);
    assert.equal(hex64(sipHash24(KEY, msg)), "a129ca6149be45e5");
  });

  it("agrees with a BigInt reference for random keys and lengths 0..300", () => {
    const rng = seededRandom(6528);
    for (let n = 0; n < 400; n++) {
      const key = new Uint8Array(16);
      rng.fill(key);
      const msg = new Uint8Array(n < 300 ? n : Math.floor(rng.next() * 1000));
      rng.fill(msg);
      const want = referenceSipHash(key, msg).toString(16).padStart(16, "0");
      assert.equal(hex64(sipHash24(key, msg)), want, `length ${msg.length}`);
    }
  });

  it("returns unsigned halves and rejects keys that are not 16 bytes", () => {
    const r = sipHash24(KEY, new Uint8Array([0xff, 0xfe]));
    assert.ok(r.hi >= 0 && r.hi <= 0xffffffff && Number.isInteger(r.hi));
    assert.ok(r.lo >= 0 && r.lo <= 0xffffffff && Number.isInteger(r.lo));
    assert.throws(() => sipHash24(new Uint8Array(15), new Uint8Array(0)), RangeError);
  });
});

describe("IsnGenerator (RFC 6528)", () => {
  const random = seededRandom(1).fill;

  it("keys F with 16 bytes drawn from the injected random source (RFC 6528 §3)", () => {
    const draws: number[] = [];
    const gen = new IsnGenerator((buf) => {
      draws.push(buf.length);
      buf.set(KEY);
    });
    assert.deepEqual(draws, [16]);
    // F = low 32 bits of SipHash(key, localip | localport | remoteip | remoteport), M = 0 at now 0.
    const tuple = new Uint8Array([10, 0, 2, 2, 0, 80, 10, 0, 2, 15, 0x9c, 0x40]);
    assert.equal(gen.next(LOCAL, 80, REMOTE, 40000, 0), sipHash24(KEY, tuple).lo);
  });

  it("gives unrelated ISNs to different 4-tuples at the same instant (RFC 6528 §3)", () => {
    const gen = new IsnGenerator(random);
    const seen = new Set<number>();
    for (let port = 40000; port < 40100; port++) seen.add(gen.next(LOCAL, 80, REMOTE, port, 5));
    seen.add(gen.next(REMOTE, 80, LOCAL, 40000, 5));
    seen.add(gen.next(LOCAL, 81, REMOTE, 40000, 5));
    seen.add(gen.next(LOCAL, 80, REMOTE + 1, 40000, 5));
    assert.equal(seen.size, 103);
  });

  it("advances by 250 per ms (a 4 µs clock) for the same tuple (RFC 6528 §3)", () => {
    const gen = new IsnGenerator(random);
    const a = gen.next(LOCAL, 80, REMOTE, 40000, 1000);
    assert.equal(gen.next(LOCAL, 80, REMOTE, 40000, 1001), (a + 250) >>> 0);
    assert.equal(gen.next(LOCAL, 80, REMOTE, 40000, 1000.5), (a + 125) >>> 0);
    assert.equal(gen.next(LOCAL, 80, REMOTE, 40000, 5000), (a + 4000 * 250) >>> 0);
  });

  it("wraps modulo 2^32 (the timer wraps about every 4.77 hours)", () => {
    const gen = new IsnGenerator(random);
    const a = gen.next(LOCAL, 80, REMOTE, 40000, 0);
    const wrapMs = 0x100000000 / 250; // 17179869.184 ms
    assert.equal(gen.next(LOCAL, 80, REMOTE, 40000, wrapMs), a);
    assert.equal(gen.next(LOCAL, 80, REMOTE, 40000, 3 * wrapMs + 1), (a + 250) >>> 0);
    const late = gen.next(LOCAL, 80, REMOTE, 40000, 1.7e12);
    assert.ok(late >= 0 && late <= 0xffffffff && Number.isInteger(late));
    const before = gen.next(LOCAL, 80, REMOTE, 40000, -1);
    assert.equal((a - before) >>> 0, 250);
  });

  it("differs between generators with different secrets", () => {
    const a = new IsnGenerator(seededRandom(1).fill).next(LOCAL, 80, REMOTE, 40000, 0);
    const b = new IsnGenerator(seededRandom(2).fill).next(LOCAL, 80, REMOTE, 40000, 0);
    assert.notEqual(a, b);
  });

  it("rejects invalid arguments with the fitting error", () => {
    const gen = new IsnGenerator(random);
    assert.throws(() => gen.next(LOCAL, 65536, REMOTE, 1, 0), RangeError);
    assert.throws(() => gen.next(-1, 80, REMOTE, 1, 0), RangeError);
    assert.throws(() => gen.next(LOCAL, 80, 2 ** 32, 1, 0), RangeError);
    assert.throws(() => gen.next(LOCAL, 80, REMOTE, 1.5, 0), RangeError);
    assert.throws(() => gen.next(LOCAL, 80, REMOTE, 1, NaN), RangeError);
    // @ts-expect-error: not a function
    assert.throws(() => new IsnGenerator(undefined), TypeError);
  });
});

describe("SynCookieCodec (RFC 4987 §3.6)", () => {
  const peerIsn = 0xfffffff0;

  it("round-trips every MSS index", () => {
    const codec = new SynCookieCodec(seededRandom(7).fill);
    for (let i = 0; i < SYN_COOKIE_MSS_TABLE.length; i++) {
      const cookie = codec.encode(LOCAL, 80, REMOTE, 40000, peerIsn, i, 1_000_000);
      assert.ok(cookie >= 0 && cookie <= 0xffffffff && Number.isInteger(cookie));
      assert.deepEqual(codec.decode(LOCAL, 80, REMOTE, 40000, peerIsn, cookie, 1_000_500), {
        mssIndex: i,
      });
    }
  });

  it("rejects the cookie for another tuple or another peer ISN", () => {
    const codec = new SynCookieCodec(seededRandom(8).fill);
    const cookie = codec.encode(LOCAL, 80, REMOTE, 40000, peerIsn, 3, 0);
    assert.equal(codec.decode(LOCAL, 80, REMOTE, 40001, peerIsn, cookie, 0), undefined);
    assert.equal(codec.decode(LOCAL, 81, REMOTE, 40000, peerIsn, cookie, 0), undefined);
    assert.equal(codec.decode(LOCAL, 80, REMOTE + 1, 40000, peerIsn, cookie, 0), undefined);
    assert.equal(codec.decode(LOCAL + 1, 80, REMOTE, 40000, peerIsn, cookie, 0), undefined);
    assert.equal(codec.decode(LOCAL, 80, REMOTE, 40000, peerIsn + 1, cookie, 0), undefined);
    assert.deepEqual(codec.decode(LOCAL, 80, REMOTE, 40000, peerIsn, cookie, 0), { mssIndex: 3 });
  });

  it("accepts the current and previous 64 s periods, then expires", () => {
    const codec = new SynCookieCodec(seededRandom(9).fill);
    const t0 = 10 * SYN_COOKIE_PERIOD_MS + 5;
    const cookie = codec.encode(LOCAL, 80, REMOTE, 40000, peerIsn, 2, t0);
    const at = (now: number) => codec.decode(LOCAL, 80, REMOTE, 40000, peerIsn, cookie, now);
    assert.deepEqual(at(t0), { mssIndex: 2 });
    assert.deepEqual(at(11 * SYN_COOKIE_PERIOD_MS), { mssIndex: 2 });
    assert.deepEqual(at(12 * SYN_COOKIE_PERIOD_MS - 1), { mssIndex: 2 });
    assert.equal(at(12 * SYN_COOKIE_PERIOD_MS), undefined);
    assert.equal(at(t0 + 32 * SYN_COOKIE_PERIOD_MS), undefined); // same 5-bit counter, old period
    assert.equal(at(t0 - SYN_COOKIE_PERIOD_MS), undefined); // from the future
  });

  it("rejects tampered cookies: every single-bit flip fails", () => {
    const codec = new SynCookieCodec(seededRandom(10).fill);
    const cookie = codec.encode(LOCAL, 80, REMOTE, 40000, peerIsn, 1, 0);
    for (let bit = 0; bit < 32; bit++) {
      const bad = (cookie ^ (1 << bit)) >>> 0;
      assert.equal(
        codec.decode(LOCAL, 80, REMOTE, 40000, peerIsn, bad, 0),
        undefined,
        `bit ${bit}`,
      );
    }
  });

  it("accepts almost no random guesses (24-bit MAC)", () => {
    const codec = new SynCookieCodec(seededRandom(11).fill);
    const rng = seededRandom(12);
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      if (codec.decode(LOCAL, 80, REMOTE, 40000, peerIsn, rng.u32(), 0) !== undefined) accepted++;
    }
    assert.ok(accepted <= 1, `accepted ${accepted} forged cookies`);
  });

  it("hides the counter and index: cookies of different connections look unrelated", () => {
    const codec = new SynCookieCodec(seededRandom(13).fill);
    const tops = new Set<number>();
    for (let port = 1000; port < 1064; port++) {
      tops.add(codec.encode(LOCAL, 80, REMOTE, port, peerIsn, 3, 0) >>> 24);
    }
    assert.ok(tops.size > 40, `only ${tops.size} distinct top bytes`);
  });

  it("picks the largest table MSS not above the peer's", () => {
    assert.deepEqual([...SYN_COOKIE_MSS_TABLE], [536, 1300, 1440, 1460]);
    assert.equal(synCookieMssIndex(1460), 3);
    assert.equal(synCookieMssIndex(9000), 3);
    assert.equal(synCookieMssIndex(1450), 2);
    assert.equal(synCookieMssIndex(1400), 1);
    assert.equal(synCookieMssIndex(536), 0);
    assert.equal(synCookieMssIndex(100), 0);
  });

  it("rejects an MSS index outside the table and bad arguments", () => {
    const codec = new SynCookieCodec(seededRandom(14).fill);
    assert.throws(() => codec.encode(LOCAL, 80, REMOTE, 1, peerIsn, 4, 0), RangeError);
    assert.throws(() => codec.encode(LOCAL, 80, REMOTE, 1, peerIsn, -1, 0), RangeError);
    assert.throws(() => codec.encode(LOCAL, 80, REMOTE, 1, 2 ** 32, 0, 0), RangeError);
    assert.throws(() => codec.encode(LOCAL, 80, REMOTE, 1, peerIsn, 0, NaN), RangeError);
  });
});
