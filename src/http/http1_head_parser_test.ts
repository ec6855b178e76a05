/**
 * The request-head parser against well-formed and hostile heads (RFC 9112):
 * the same result whatever the read boundaries, each refusal with its status
 * and reason, bounds enforced as the bytes arrive, never an exception.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  HEAD_INCOMPLETE,
  HEAD_REFUSED,
  type HeadLimits,
  type HeadRefusal,
  type RequestHead,
  RequestHeadParser,
} from "./http1_head_parser.ts";

const enc = new TextEncoder();

/** Parses `text` fed in one piece. */
function parse(text: string, limits?: HeadLimits): RequestHead | HeadRefusal {
  const bytes = typeof text === "string" ? latin1(text) : text;
  const p = new RequestHeadParser(limits);
  const n = p.feed(bytes, 0, bytes.length);
  if (n === HEAD_REFUSED) return p.refusal!;
  if (n === HEAD_INCOMPLETE) return { status: 0, reason: "incomplete" };
  return p.parse(bytes, 0);
}

function latin1(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

function ok(text: string): RequestHead {
  const r = parse(text);
  assert.ok("method" in r, `expected a head, got ${JSON.stringify(r)} for ${JSON.stringify(text)}`);
  return r;
}

function refused(text: string, status: number, reason: RegExp, limits?: HeadLimits): void {
  const r = parse(text, limits);
  assert.ok(!("method" in r), `expected ${status} for ${JSON.stringify(text.slice(0, 80))}`);
  assert.equal(r.status, status, `${JSON.stringify(text.slice(0, 80))}: ${r.reason}`);
  assert.match(r.reason, reason);
}

describe("RequestHeadParser (RFC 9112)", () => {
  it("reads the request line, field lines and the URL of an origin-form request (§3, §5)", () => {
    const h = ok(
      "GET /v1/sessions?x=1 HTTP/1.1\r\nHost: example.com:8787\r\nAccept:  */* \r\nX-Empty:\r\n\r\n",
    );
    assert.equal(h.method, "GET");
    assert.equal(h.target, "/v1/sessions?x=1");
    assert.equal(h.minor, 1);
    assert.equal(h.url, "http://example.com:8787/v1/sessions?x=1");
    assert.deepEqual(h.fields, ["Host", "example.com:8787", "Accept", "*/*", "X-Empty", ""]);
    assert.equal(h.contentLength, -1);
    assert.equal(h.chunked, false);
    assert.equal(h.keepAlive, true);
    assert.equal(h.upgrade, false);
    assert.equal(h.expectContinue, false);
  });

  it("finds the same head whatever the read boundaries, scanning each byte once (incremental)", () => {
    const text = "POST /send HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-Long: " +
      "v".repeat(300) + "\r\n\r\nhello";
    const bytes = enc.encode(text);
    const headLength = text.indexOf("\r\n\r\n") + 4;
    const whole = new RequestHeadParser();
    assert.equal(whole.feed(bytes, 0, bytes.length), headLength, "the head ends before the body");
    const expected = whole.parse(bytes, 0);
    for (const step of [1, 2, 3, 7, 64]) {
      const p = new RequestHeadParser();
      let n = HEAD_INCOMPLETE;
      let fed = 0;
      while (n === HEAD_INCOMPLETE) {
        fed = Math.min(bytes.length, fed + step);
        n = p.feed(bytes, 0, fed);
        if (n === HEAD_INCOMPLETE) assert.equal(p.scanned, fed, "everything fed was scanned");
      }
      assert.equal(n, headLength, `step ${step}`);
      assert.deepEqual(p.parse(bytes, 0), expected, `step ${step}`);
    }
  });

  it("parses a head at an offset in a larger buffer, and resets between heads", () => {
    const bytes = enc.encode(
      "xxGET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
    );
    const p = new RequestHeadParser();
    const n = p.feed(bytes, 2, bytes.length);
    assert.equal((p.parse(bytes, 2) as RequestHead).target, "/a");
    p.reset();
    const m = p.feed(bytes, 2 + n, bytes.length);
    assert.equal(m, n);
    assert.equal((p.parse(bytes, 2 + n) as RequestHead).target, "/b");
  });

  it("skips empty lines before the request line (§2.2)", () => {
    assert.equal(ok("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n").target, "/");
  });

  it("HTTP/1.0: persistent only with Connection: keep-alive; Host optional; Upgrade and Expect ignored (§9.3, RFC 9110 §7.8, §10.1.1)", () => {
    const plain = ok("GET / HTTP/1.0\r\n\r\n");
    assert.equal(plain.minor, 0);
    assert.equal(plain.keepAlive, false);
    assert.equal(plain.url, "http://localhost/");
    assert.equal(ok("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keepAlive, true);
    const up = ok(
      "GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\nExpect: 100-continue\r\n\r\n",
    );
    assert.equal(up.upgrade, false);
    assert.equal(up.expectContinue, false);
  });

  it("HTTP/1.1: Connection: close ends persistence, in any case and among other tokens", () => {
    assert.equal(
      ok("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n").keepAlive,
      false,
    );
    assert.equal(ok("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n").keepAlive, true);
  });

  it("a higher 1.x minor version is read as 1.1; another major version is 505 (RFC 9110 §6.2)", () => {
    assert.equal(ok("GET / HTTP/1.7\r\nHost: a\r\n\r\n").minor, 1);
    refused("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, /HTTP version "HTTP\/2\.0" is not supported/);
    refused("GET / HTTP/0.9\r\n\r\n", 505, /not supported/);
  });

  it("Upgrade needs HTTP/1.1, Connection: upgrade and an Upgrade field (RFC 9110 §7.8)", () => {
    assert.equal(
      ok(
        "GET /t HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
      )
        .upgrade,
      true,
    );
    assert.equal(ok("GET /t HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n").upgrade, false);
    assert.equal(ok("GET /t HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n").upgrade, false);
  });

  it("keeps obs-text in values, byte for byte (ISO-8859-1, RFC 9110 §5.5)", () => {
    const h = ok("GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xe9 \xff\r\n\r\n");
    assert.equal(h.fields[3], "caf\xe9 \xff");
  });

  describe("message framing: Content-Length and Transfer-Encoding (§6)", () => {
    it("reads a Content-Length and a chunked Transfer-Encoding, in any case", () => {
      assert.equal(
        ok("POST / HTTP/1.1\r\nHost: a\r\ncontent-LENGTH: 0042\r\n\r\n").contentLength,
        42,
      );
      const c = ok("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  Chunked \r\n\r\n");
      assert.equal(c.chunked, true);
      assert.equal(c.contentLength, -1);
    });

    const smuggling: [string, string, number, RegExp][] = [
      [
        "duplicate Content-Length, same value",
        "Content-Length: 5\r\nContent-Length: 5",
        400,
        /more than one Content-Length/,
      ],
      [
        "conflicting Content-Length",
        "Content-Length: 5\r\nContent-Length: 6",
        400,
        /more than one Content-Length/,
      ],
      ["a Content-Length list", "Content-Length: 5, 5", 400, /invalid Content-Length "5, 5"/],
      ["a signed Content-Length", "Content-Length: +5", 400, /invalid Content-Length/],
      ["a hex Content-Length", "Content-Length: 0x5", 400, /invalid Content-Length/],
      ["an empty Content-Length", "Content-Length:", 400, /invalid Content-Length ""/],
      [
        "a 16-digit Content-Length",
        "Content-Length: 1234567890123456",
        400,
        /invalid Content-Length/,
      ],
      [
        "both framings",
        "Content-Length: 5\r\nTransfer-Encoding: chunked",
        400,
        /both Transfer-Encoding and Content-Length/,
      ],
      [
        "both framings, the other order",
        "Transfer-Encoding: chunked\r\nContent-Length: 5",
        400,
        /both/,
      ],
      [
        "two Transfer-Encoding lines",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
        400,
        /more than one Transfer-Encoding/,
      ],
      [
        "chunked twice",
        "Transfer-Encoding: chunked, chunked",
        400,
        /chunked applied more than once/,
      ],
      ["chunked not last", "Transfer-Encoding: chunked, gzip", 400, /does not end with chunked/],
      ["no chunked at all", "Transfer-Encoding: gzip", 400, /does not end with chunked/],
      ["an empty Transfer-Encoding", "Transfer-Encoding: ", 400, /does not end with chunked/],
      [
        "a coding before chunked",
        "Transfer-Encoding: gzip, chunked",
        501,
        /unsupported transfer coding "gzip"/,
      ],
    ];
    for (const [name, fields, status, reason] of smuggling) {
      it(`${name}: ${status}`, () => {
        refused(`POST / HTTP/1.1\r\nHost: a\r\n${fields}\r\n\r\n`, status, reason);
      });
    }

    it("Transfer-Encoding in HTTP/1.0 is faulty framing (§6.1)", () => {
      refused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, /HTTP\/1\.0/);
    });
  });

  describe("Host (§3.2)", () => {
    it("an HTTP/1.1 request without Host, with two, or with an invalid one: 400", () => {
      refused("GET / HTTP/1.1\r\n\r\n", 400, /without Host/);
      refused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, /more than one Host/);
      for (const bad of ["a b", "a/b", "u@h", "[::1", "a:b:c", "h\\x"]) {
        refused(`GET / HTTP/1.1\r\nHost: ${bad}\r\n\r\n`, 400, /invalid Host/);
      }
    });

    it("accepts names, IPv4 and IPv6 literals with ports, and an empty Host", () => {
      for (
        const [host, url] of [["a.example:80", "http://a.example:80/"], [
          "[::1]:8787",
          "http://[::1]:8787/",
        ], ["", "http://localhost/"]]
      ) {
        assert.equal(ok(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`).url, url);
      }
    });
  });

  describe("request targets (§3.2)", () => {
    it("absolute-form: the target's authority wins over Host (§3.2.2)", () => {
      const h = ok("GET HTTP://other.example:81/p?q=1 HTTP/1.1\r\nHost: a\r\n\r\n");
      assert.equal(h.url, "http://other.example:81/p?q=1");
      assert.equal(ok("GET http://o.example HTTP/1.1\r\nHost: a\r\n\r\n").url, "http://o.example/");
    });

    it("absolute-form with userinfo, an empty authority or another scheme: 400", () => {
      refused("GET http://user@h/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, /invalid request target/);
      refused("GET http:///p HTTP/1.1\r\nHost: a\r\n\r\n", 400, /invalid request target/);
      refused("GET ftp://h/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, /invalid request target/);
    });

    it("asterisk-form only for OPTIONS; authority-form CONNECT is 501; a fragment is 400", () => {
      assert.equal(ok("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").asterisk, true);
      refused("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, /only for OPTIONS/);
      refused("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", 501, /CONNECT/);
      refused("GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400, /fragment/);
    });
  });

  describe("Expect (RFC 9110 §10.1.1)", () => {
    it("100-continue is noted; any other expectation is 417", () => {
      assert.equal(
        ok("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n")
          .expectContinue,
        true,
      );
      refused(
        "POST / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n",
        417,
        /unsupported expectation "teapot"/,
      );
    });
  });

  describe("syntax: refused at the first bad byte (§2.2, §3, §5)", () => {
    const cases: [string, string, RegExp][] = [
      ["a bare LF ending a field line", "GET / HTTP/1.1\nHost: a\r\n\r\n", /LF/],
      [
        "a bare LF between fields",
        "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
        /LF in a field value/,
      ],
      ["a bare CR in a value", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", /bare CR/],
      ["a bare LF as the empty line", "GET / HTTP/1.1\r\nHost: a\r\n\n", /LF in a field name/],
      ["obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", /obs-fold/],
      ["whitespace before the first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", /obs-fold/],
      [
        "whitespace before a colon",
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        /between a field name and its colon/,
      ],
      ["an empty field name", "GET / HTTP/1.1\r\n: a\r\n\r\n", /a field name/],
      [
        "a NUL in a value",
        "GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
        /0x00 is not allowed in a field value/,
      ],
      ["a DEL in a value", "GET / HTTP/1.1\r\nHost: a\x7fb\r\n\r\n", /0x7f/],
      [
        "a control byte in a name",
        "GET / HTTP/1.1\r\nHo\x01st: a\r\n\r\n",
        /0x01 is not allowed in a field name/,
      ],
      ["a non-token method", "G(T / HTTP/1.1\r\n\r\n", /the method/],
      ["a space in the target", "GET /a b HTTP/1.1\r\n\r\n", /HTTP version/],
      ["two spaces after the method", "GET  / HTTP/1.1\r\n\r\n", /empty request target/],
      ["a non-ASCII target", "GET /caf\xe9 HTTP/1.1\r\n\r\n", /the request target/],
      ["no version (HTTP/0.9)", "GET /\r\n\r\n", /the request target/],
      ["a lowercase version", "GET / http/1.1\r\n\r\n", /malformed HTTP version "http\/1\.1"/],
      ["a long version", "GET / HTTP/1.10\r\n\r\n", /HTTP version/],
      ["a request line starting with a space", " GET / HTTP/1.1\r\n\r\n", /a request line/],
      ["a CR without LF before the request line", "\rGET / HTTP/1.1\r\n\r\n", /CR without LF/],
    ];
    for (const [name, text, reason] of cases) {
      it(`${name}: 400`, () => refused(text, 400, reason));
    }
  });

  describe("bounds (431, 414)", () => {
    const limits: HeadLimits = { maxHeadBytes: 256, maxLineBytes: 64, maxFields: 4 };

    it("a head past maxHeadBytes is refused as soon as that many bytes are in, without its end", () => {
      const p = new RequestHeadParser(limits);
      const bytes = enc.encode("GET / HTTP/1.1\r\n" + "X-A: b\r\n".repeat(3) + "x".repeat(1000));
      assert.equal(p.feed(bytes, 0, 200), HEAD_REFUSED);
      assert.equal(p.refusal!.status, 431);
      const q = new RequestHeadParser({ ...limits, maxLineBytes: 1000, maxFields: 100 });
      const many = enc.encode("GET / HTTP/1.1\r\n" + "X-A: bbbbbbbbbbbbbbbbbbbbbb\r\n".repeat(20));
      assert.equal(q.feed(many, 0, many.length), HEAD_REFUSED);
      assert.equal(q.refusal!.status, 431);
      assert.match(q.refusal!.reason, /exceeds 256 bytes/);
    });

    it("a field line past maxLineBytes: 431; a request line past it: 414", () => {
      refused(
        `GET / HTTP/1.1\r\nX: ${"a".repeat(70)}\r\n\r\n`,
        431,
        /field line exceeds 64/,
        limits,
      );
      refused(`GET /${"a".repeat(70)} HTTP/1.1\r\n\r\n`, 414, /request line exceeds 64/, limits);
      // Refused while the line is still arriving, not only at its end.
      const p = new RequestHeadParser(limits);
      const b = enc.encode(`GET / HTTP/1.1\r\nX: ${"a".repeat(100)}`);
      assert.equal(p.feed(b, 0, b.length), HEAD_REFUSED);
    });

    it("more than maxFields field lines: 431", () => {
      refused(
        "GET / HTTP/1.1\r\n" + "X: 1\r\n".repeat(5) + "\r\n",
        431,
        /more than 4 header fields/,
        limits,
      );
      assert.ok(
        "method" in parse("GET / HTTP/1.1\r\nHost: a\r\n" + "X: 1\r\n".repeat(3) + "\r\n", limits),
      );
    });
  });

  it("hostile bytes never throw: random heads get a result or a refusal (fuzz, seeded)", () => {
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const alphabet = latin1(
      "GET POST / HTTP/1.1\r\n:Host: a,chunked,Content-Length:0123456789 \t\x00\x7f\xff\r\n",
    );
    let results = 0;
    let refusals = 0;
    for (let i = 0; i < 3000; i++) {
      const len = 1 + Math.floor(rand() * 120);
      const bytes = new Uint8Array(len);
      const prefix = rand() < 0.5 ? latin1("GET / HTTP/1.1\r\n") : new Uint8Array(0);
      for (let j = 0; j < len; j++) {
        bytes[j] = rand() < 0.8
          ? alphabet[Math.floor(rand() * alphabet.length)]
          : Math.floor(rand() * 256);
      }
      const all = new Uint8Array(prefix.length + len + 4);
      all.set(prefix);
      all.set(bytes, prefix.length);
      all.set(latin1("\r\n\r\n"), prefix.length + len);
      const p = new RequestHeadParser();
      const n = p.feed(all, 0, all.length);
      if (n === HEAD_REFUSED) {
        refusals++;
        assert.ok(p.refusal && p.refusal.status >= 400);
      } else if (n > 0) {
        const r = p.parse(all, 0);
        assert.ok("method" in r || r.status >= 400);
        results++;
      }
    }
    assert.ok(refusals > 0 && results > 0, `${refusals} refusals, ${results} heads`);
  });
});
