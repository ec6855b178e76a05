/**
 * The share proxy's codecs on crafted bytes: HTTP/1.1 response heads and the
 * chunked coding (RFC 9112), the client side of WebSocket framing (RFC 6455
 * §5), and the share registry's keys. Hostile bytes give reasons, never
 * exceptions; state survives chunk boundaries.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ChunkedDecoder,
  encodeChunk,
  encodeRequestHead,
  forwardableHeaders,
  responseBodyFraming,
  ResponseHeadParser,
} from "./http1_codec.ts";
import {
  closePayload,
  encodeClientFrame,
  ServerFrameParser,
  WsOpcode,
} from "./websocket_frames.ts";
import { websocketAccept } from "../websocket_handshake.ts";
import { ShareRegistry } from "./share_registry.ts";
import { ManualClock, Session } from "../../session/mod.ts";
import { parseIpv4Address, parseMacAddress } from "../../wire/mod.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe("HTTP/1.1 for the share proxy (RFC 9112)", () => {
  it("parses a response head split anywhere, skipping 100 Continue (RFC 9110 §15.2)", () => {
    const text =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nhi";
    for (let cut = 1; cut < text.length - 3; cut += 5) {
      const p = new ResponseHeadParser(1024);
      assert.equal(p.push(enc(text.slice(0, cut))), undefined);
      const r = p.push(enc(text.slice(cut)));
      assert.ok(r && "head" in r, `cut at ${cut}`);
      assert.equal(r.head.status, 200);
      assert.deepEqual(r.head.headers, [["content-length", "2"], ["x-a", "b"]]);
      assert.equal(dec(r.rest), "hi");
    }
  });

  it("refuses malformed and oversized heads with a reason", () => {
    for (
      const [text, max] of [
        ["HTTP/2 200 OK\r\n\r\n", 1024],
        ["HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", 1024],
        ["HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", 1024],
        ["HTTP/1.1 200 OK\r\n" + "x: y\r\n".repeat(100), 64],
      ] as const
    ) {
      const r = new ResponseHeadParser(max).push(enc(text));
      assert.ok(r && "error" in r, text.slice(0, 30));
    }
  });

  it("frames bodies as RFC 9112 §6.3 says", () => {
    const head = (status: number, headers: Array<[string, string]>) => ({
      status,
      statusText: "",
      headers,
    });
    assert.deepEqual(responseBodyFraming("HEAD", head(200, [["content-length", "5"]])), {
      kind: "none",
    });
    assert.deepEqual(responseBodyFraming("GET", head(304, [])), { kind: "none" });
    assert.deepEqual(
      responseBodyFraming("GET", head(200, [["transfer-encoding", "gzip, chunked"]])),
      { kind: "chunked" },
    );
    assert.deepEqual(responseBodyFraming("GET", head(200, [["content-length", "5, 5"]])), {
      kind: "length",
      length: 5,
    });
    assert.ok("error" in responseBodyFraming("GET", head(200, [["content-length", "5, 6"]])));
    assert.ok("error" in responseBodyFraming("GET", head(200, [["content-length", "-1"]])));
    assert.deepEqual(responseBodyFraming("GET", head(200, [])), { kind: "close" });
  });

  it("decodes chunked bodies byte by byte; extensions and trailers dropped; bad framing refused", () => {
    const body = "4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\nnext";
    const d = new ChunkedDecoder();
    let out = "";
    let rest = "";
    for (const b of enc(body)) {
      const r = d.push(new Uint8Array([b]));
      assert.ok(!("error" in r));
      for (const p of r.data) out += dec(p);
      if (d.done) rest += dec(r.rest);
    }
    assert.equal(out, "Wikipedia");
    assert.ok(d.done);
    for (const bad of ["zz\r\n", "2\r\nabX\r\n", "1" + "0".repeat(20) + "\r\n"]) {
      assert.ok("error" in new ChunkedDecoder().push(enc(bad)), bad);
    }
    assert.equal(dec(encodeChunk(enc("hi"))), "2\r\nhi\r\n");
    assert.equal(dec(encodeChunk(new Uint8Array(0))), "0\r\n\r\n");
  });

  it("writes request heads and refuses header injection", () => {
    assert.equal(
      dec(encodeRequestHead("GET", "/a?b", [["host", "h"]])),
      "GET /a?b HTTP/1.1\r\nhost: h\r\n\r\n",
    );
    assert.throws(() => encodeRequestHead("GET", "/a", [["x", "1\r\nevil: 1"]]), TypeError);
    assert.throws(() => encodeRequestHead("GET", "http://x/", []), TypeError);
    assert.throws(() => encodeRequestHead("G T", "/", []), TypeError);
    const h = new Headers({ connection: "keep-alive, x-a", "x-a": "1", "x-b": "2", te: "t" });
    assert.deepEqual(forwardableHeaders(h), [["x-b", "2"]]);
  });
});

describe("WebSocket framing, client side (RFC 6455 §5)", () => {
  it("masks what it sends (§5.3) and encodes 7-, 16- and 64-bit lengths", () => {
    for (const n of [5, 200, 70_000]) {
      const payload = new Uint8Array(n).fill(7);
      const f = encodeClientFrame(WsOpcode.BINARY, payload, (b) => b.fill(0x55));
      assert.equal(f[0], 0x82);
      assert.equal(f[1] & 0x80, 0x80, "masked");
      const h = n < 126 ? 2 : n < 65536 ? 4 : 10;
      assert.deepEqual([...f.subarray(h, h + 4)], [0x55, 0x55, 0x55, 0x55]);
      assert.equal(f[h + 4], 7 ^ 0x55);
      assert.equal(f.length, h + 4 + n);
    }
    assert.deepEqual([...closePayload(1000, "ok")], [0x03, 0xe8, 0x6f, 0x6b]);
  });

  it("parses server frames across chunks, assembles fragments, answers reasons for hostile frames", () => {
    const p = new ServerFrameParser(1024);
    const frames = new Uint8Array([
      0x01,
      0x03,
      ...enc("hel"), // text, not final
      0x89,
      0x01,
      0x70, // a ping between fragments
      0x80,
      0x02,
      ...enc("lo"), // continuation, final
      0x88,
      0x02,
      0x03,
      0xe8, // close 1000
    ]);
    const events = [];
    for (const b of frames) {
      const r = p.push(new Uint8Array([b]));
      assert.ok("events" in r);
      events.push(...r.events);
    }
    assert.deepEqual(events.map((e) => e.type), ["ping", "text", "close"]);
    assert.equal(dec((events[1] as { data: Uint8Array }).data), "hello");
    assert.deepEqual(events[2], { type: "close", code: 1000, reason: "" });
    const bad: Array<[number[], number]> = [
      [[0x82, 0x81, 0, 0, 0, 0, 1], 1002], // masked
      [[0xc2, 0x00], 1002], // RSV1
      [[0x89, 0x7e, 0x00, 0x80], 1002], // control over 125
      [[0x00, 0x00], 1002], // continuation without a message
      [[0x83, 0x00], 1002], // unknown opcode
      [[0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0x10, 0x00], 1009], // over the limit
    ];
    for (const [bytes, code] of bad) {
      const r = new ServerFrameParser(1024).push(new Uint8Array(bytes));
      assert.ok("error" in r && r.code === code, JSON.stringify(bytes));
    }
  });

  it("computes Sec-WebSocket-Accept (RFC 6455 §1.3's example)", async () => {
    assert.equal(await websocketAccept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  });
});

describe("ShareRegistry", () => {
  it("keys are 34 base32 characters with 130 bits of secret; only the live key finds its share", () => {
    const clock = new ManualClock(0);
    const session = new Session({
      id: "s_x",
      token: "t",
      clock,
      stack: {
        mac: parseMacAddress("02:00:00:00:00:02"),
        ipv4: { address: parseIpv4Address("10.0.2.2"), prefixLength: 24 },
        mtu: 1500,
      },
    });
    const reg = new ShareRegistry({ clock, maxPerSession: 3 });
    const { share, key } = reg.create(session, { address: "10.0.2.15", port: 80, ttlSeconds: 10 });
    assert.match(key, /^[a-z2-7]{34}$/);
    assert.equal(reg.lookup(key), share);
    assert.equal(reg.lookup(key.toUpperCase()), share, "host names are case-insensitive");
    const wrong = key.slice(0, 33) + (key[33] === "a" ? "b" : "a");
    assert.equal(reg.lookup(wrong), undefined);
    assert.equal(reg.lookup(""), undefined);
    const keys = new Set([key]);
    for (let i = 0; i < 2; i++) {
      keys.add(reg.create(session, { address: "10.0.2.15", port: 80 }).key);
    }
    assert.equal(keys.size, 3);
    assert.throws(() => reg.create(session, { address: "10.0.2.15", port: 80 }), RangeError);
    clock.advance(10_000);
    assert.equal(reg.lookup(key), undefined, "expired");
    assert.equal(reg.list(session).length, 2);
    session.close();
    assert.equal(reg.list(session).length, 0, "the session ended: its shares with it");
  });
});
