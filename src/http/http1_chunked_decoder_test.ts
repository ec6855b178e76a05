/**
 * The chunked decoder (RFC 9112 §7.1) on well-formed bodies split at every
 * byte, and on hostile framing: each error named, bounds enforced while the
 * bytes arrive, nothing past the body consumed.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkedDecoder, type ChunkedLimits } from "./http1_chunked_decoder.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Decodes `text` delivered in pieces of `step` bytes; the data, what was consumed, the error. */
function decode(
  text: string,
  step = Infinity,
  limits?: ChunkedLimits,
): { data: string; consumed: number; done: boolean; error?: string } {
  const bytes = enc.encode(text);
  const d = new ChunkedDecoder(limits);
  let data = "";
  let at = 0;
  let available = 0;
  while (!d.done && d.error === undefined) {
    if (at === available) {
      if (available === bytes.length) break;
      available = Math.min(bytes.length, available + step);
    }
    at += d.decode(bytes, at, available);
    if (d.dataEnd > d.dataStart) data += dec.decode(bytes.subarray(d.dataStart, d.dataEnd));
  }
  return { data, consumed: at, done: d.done, error: d.error };
}

describe("ChunkedDecoder (RFC 9112 §7.1)", () => {
  const body = '5\r\nhello\r\nA;ext=1;name="v a"\r\n, world!!!\r\n0\r\nX-Trailer: t\r\n\r\n';

  it("decodes data, extensions and trailers, whatever the read boundaries", () => {
    for (const step of [1, 2, 3, 5, 11, Infinity]) {
      const r = decode(body + "GET /next", step);
      assert.equal(r.data, "hello, world!!!", `step ${step}`);
      assert.equal(r.done, true);
      assert.equal(r.consumed, body.length, "nothing after the body is consumed");
    }
  });

  it("reports at most one run of data per call, and the total", () => {
    const bytes = enc.encode("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    const d = new ChunkedDecoder();
    const runs: string[] = [];
    let at = 0;
    while (!d.done) {
      at += d.decode(bytes, at, bytes.length);
      if (d.dataEnd > d.dataStart) runs.push(dec.decode(bytes.subarray(d.dataStart, d.dataEnd)));
    }
    assert.deepEqual(runs, ["abc", "de"]);
    assert.equal(d.total, 5);
  });

  it("reads hex sizes in any case with leading zeros; 13 digits at most", () => {
    assert.equal(
      decode("00000000000000000000Ff\r\n" + "x".repeat(255) + "\r\n0\r\n\r\n").data.length,
      255,
    );
    assert.match(decode("10000000000000\r\n").error!, /more than 13 hex digits/);
  });

  const errors: [string, string, RegExp][] = [
    ["data longer than its size", "3\r\nabcd\r\n0\r\n\r\n", /longer than its chunk size/],
    ["data not followed by CRLF", "3\r\nabc\rX", /not followed by CRLF/],
    ["a size that is not hex", "g\r\n", /must start with a hex digit/],
    ["an empty size", "\r\n", /must start with a hex digit/],
    ["a negative size", "-1\r\n", /must start with a hex digit/],
    ["a bare LF after the size", "3\nabc\r\n", /byte 0x0a in a chunk size/],
    ["a bare CR after the size", "3\rabc", /not ended by CRLF/],
    ["a control byte in an extension", "3;a\x01\r\n", /0x01 in a chunk extension/],
    ["a trailer with obs-fold", "0\r\nA: b\r\n c\r\n\r\n", /at the start of a trailer field/],
    ["a trailer without a colon", "0\r\nAb\r\n\r\n", /0x0d in a trailer field name/],
    ["a bare LF ending the body", "0\r\n\n", /at the start of a trailer field/],
    ["a CR then no LF ending the body", "0\r\n\rX", /not ended by CRLF/],
  ];
  for (const [name, text, reason] of errors) {
    it(`${name}: an error, nothing more decoded`, () => {
      const r = decode(text, 1);
      assert.equal(r.done, false);
      assert.match(r.error ?? "", reason);
    });
  }

  it("bounds: the size line with its extensions, the trailer section, the trailer count", () => {
    const limits = { maxLineBytes: 32, maxTrailerBytes: 40, maxTrailers: 2 };
    assert.match(
      decode(`1;${"e".repeat(40)}\r\n`, 1, limits).error!,
      /chunk-size line longer than 32/,
    );
    assert.match(
      decode(`${"0".repeat(40)}1\r\n`, 1, limits).error!,
      /chunk-size line longer than 32/,
    );
    assert.match(
      decode(`0\r\nA: ${"b".repeat(50)}\r\n\r\n`, 1, limits).error!,
      /trailer section longer than 40/,
    );
    assert.match(
      decode("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 1, limits).error!,
      /more than 2 trailer fields/,
    );
    assert.equal(decode("0\r\nA: 1\r\nB: 2\r\n\r\n", 1, limits).done, true);
  });

  it("hostile bytes never throw (fuzz, seeded): done, an error, or waiting for more", () => {
    let seed = 99;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const alphabet = enc.encode("0123456789abcdefABCDEF;=\r\n \tx:\x00");
    const outcomes = { done: 0, error: 0, waiting: 0 };
    for (let i = 0; i < 3000; i++) {
      const bytes = new Uint8Array(1 + Math.floor(rand() * 60));
      for (let j = 0; j < bytes.length; j++) {
        bytes[j] = alphabet[Math.floor(rand() * alphabet.length)];
      }
      const d = new ChunkedDecoder();
      let at = 0;
      while (!d.done && d.error === undefined && at < bytes.length) {
        const n = d.decode(bytes, at, bytes.length);
        assert.ok(n >= 0 && at + n <= bytes.length);
        at += n;
      }
      outcomes[d.done ? "done" : d.error !== undefined ? "error" : "waiting"]++;
    }
    assert.ok(outcomes.error > 0 && outcomes.waiting > 0, JSON.stringify(outcomes));
  });
});
