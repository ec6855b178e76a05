/**
 * The HTTP/1.1 engine on in-memory connections (exact bytes out, a manual
 * clock): responses and their framing, persistence and pipelining (RFC 9112
 * §9), request bodies read only as the app pulls, chunked bodies, Expect:
 * 100-continue, timeouts, refusals with a linger, streamed responses with
 * backpressure, upgrades handed to the WebSocket engine, a client that goes
 * away.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { latin1, MemConn, settle, testEngine, until } from "./_http1_test_kit.ts";
import { encodeFrame } from "./websocket_conn.ts";
import { readRequestBody } from "./request_body.ts";
import { fixedResponse } from "./fixed_response.ts";
import { bufferCost, MemoryQuota } from "../stack/session_quota.ts";

const OPTS = { headersTimeoutMs: 1000, keepAliveTimeoutMs: 2000, requestTimeoutMs: 3000 };
const GET = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
const hi = () => new Response("hi", { headers: { "x-a": "1" } });
const HI = "HTTP/1.1 200 OK\r\ncontent-type: text/plain;charset=UTF-8\r\nx-a: 1\r\n" +
  "date: DATE\r\ncontent-length: 2\r\n\r\nhi";

/** The responses in `out`, split at each status line. */
function responses(out: string): string[] {
  return out.split(/(?=HTTP\/1\.1 \d{3} )/).filter((s) => s !== "");
}

describe("Http1Engine", () => {
  it("answers with status line, headers, Date and Content-Length, in one write (RFC 9112 §4, §6.2)", async () => {
    const t = testEngine(hi, OPTS);
    const c = t.connect();
    c.push(GET);
    await until(() => c.writes.length === 1, "the response");
    assert.equal(c.output, HI);
    assert.equal(c.closed, false, "HTTP/1.1 persists");
    t.engine.close();
  });

  it("hands the app a Request: method, URL, headers, peer-less fetch API, usable in new Request()", async () => {
    let seen: Record<string, unknown> = {};
    const t = testEngine((req) => {
      const copy = new Request(req, { headers: { "x-copy": "1" } });
      seen = {
        isRequest: req instanceof Request,
        method: req.method,
        url: req.url,
        host: req.headers.get("host"),
        accept: req.headers.get("ACCEPT"),
        copyMethod: copy.method,
        copyUrl: copy.url,
        aborted: req.signal.aborted,
      };
      return new Response(null, { status: 204 });
    }, OPTS);
    const c = t.connect();
    c.push("DELETE /x?y=1 HTTP/1.1\r\nHost: h:9\r\nAccept: a/b\r\n\r\n");
    await until(() => c.writes.length === 1, "the response");
    assert.deepEqual(seen, {
      isRequest: true,
      method: "DELETE",
      url: "http://h:9/x?y=1",
      host: "h:9",
      accept: "a/b",
      copyMethod: "DELETE",
      copyUrl: "http://h:9/x?y=1",
      aborted: false,
    });
    assert.equal(c.output, "HTTP/1.1 204 No Content\r\ndate: DATE\r\n\r\n", "204: no length");
    t.engine.close();
  });

  it("keeps the connection for the next request, and answers pipelined requests in order (§9.3)", async () => {
    let n = 0;
    const t = testEngine((req) => new Response(`${++n}:${new URL(req.url).pathname}`), OPTS);
    const c = t.connect();
    c.push(GET);
    await until(() => c.writes.length === 1, "the first response");
    c.push("GET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\nGET /d HT");
    await until(() => c.writes.length === 3, "two pipelined responses");
    c.push("TP/1.1\r\nHost: h\r\n\r\n");
    await until(() => c.writes.length === 4, "the fourth");
    assert.deepEqual(
      responses(c.output).map((r) => r.slice(r.indexOf("\r\n\r\n") + 4)),
      ["1:/a", "2:/b", "3:/c", "4:/d"],
    );
    assert.equal(c.closed, false);
    t.engine.close();
  });

  it("HTTP/1.0 closes after the response (FIN, then close at the client's EOF); with keep-alive it persists", async () => {
    const t = testEngine(hi, OPTS);
    const c = t.connect();
    c.push("GET / HTTP/1.0\r\n\r\n");
    await until(() => c.writeClosed, "the FIN");
    assert.equal(c.output, HI.replace("\r\n\r\nhi", "\r\nconnection: close\r\n\r\nhi"));
    assert.equal(c.closed, false, "the linger waits for the client");
    c.end();
    await until(() => c.closed, "the close");
    const k = t.connect();
    k.push("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    await until(() => k.writes.length === 1, "the response");
    assert.match(k.output, /\r\nconnection: keep-alive\r\n\r\nhi$/);
    await settle();
    assert.equal(k.writeClosed, false);
    t.engine.close();
  });

  it("reads a request body only as the app pulls it (Content-Length, §6.2)", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    const t = testEngine(async (req) => {
      await gate;
      return new Response(`got ${await req.text()}`);
    }, OPTS);
    const c = t.connect();
    c.push("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01234");
    await settle();
    const reads = c.reads;
    await settle();
    assert.equal(c.reads, reads, "no read while the app has not pulled the body");
    release();
    c.push("56789");
    await until(() => c.writes.length === 1, "the response");
    assert.match(c.output, /content-length: 14\r\n\r\ngot 0123456789$/);
    t.engine.close();
  });

  it("reads a small body of a declared length whole: one buffer of its size, across reads, no stream made", async () => {
    const seen: { size: number; text: string; used: boolean }[] = [];
    const t = testEngine(async (req) => {
      if (req.method === "GET") return hi();
      const buf = await req.arrayBuffer();
      seen.push({
        size: buf.byteLength,
        text: new TextDecoder().decode(buf),
        used: req.bodyUsed,
      });
      await assert.rejects(() => req.text(), TypeError, "read once");
      return new Response("ok");
    }, OPTS);
    const c = t.connect();
    c.push("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n012");
    await settle();
    c.push("3456");
    await settle();
    c.push("789" + GET);
    await until(() => c.writes.length === 2, "both responses");
    assert.deepEqual(seen, [{ size: 10, text: "0123456789", used: true }]);
    assert.match(c.output, /\r\n\r\nok.*\r\n\r\nhi$/s);
    t.engine.close();
  });

  it("the same body through req.body (a stream), and a body over 64 KiB through arrayBuffer, byte-exact", async () => {
    const t = testEngine(async (req) => {
      const bytes = new URL(req.url).pathname === "/stream"
        ? new Uint8Array(await new Response(req.body).arrayBuffer())
        : new Uint8Array(await req.arrayBuffer());
      let sum = 0;
      for (const b of bytes) sum = (sum * 31 + b) >>> 0;
      return new Response(`${bytes.length}:${sum}`);
    }, OPTS);
    const body = "abcdefghij".repeat(7000);
    let sum = 0;
    for (const b of latin1(body)) sum = (sum * 31 + b) >>> 0;
    for (const path of ["/stream", "/big"]) {
      const c = t.connect();
      c.push(`POST ${path} HTTP/1.1\r\nHost: h\r\nContent-Length: ${body.length}\r\n\r\n`);
      for (let i = 0; i < body.length; i += 5000) c.push(body.slice(i, i + 5000));
      await until(() => c.writes.length === 1, `the response to ${path}`);
      assert.match(c.output, new RegExp(`\r\n\r\n${body.length}:${sum}$`), path);
    }
    t.engine.close();
  });

  it("a client that ends its side in the middle of a whole read: the read fails with a TypeError, the answer goes with a close", async () => {
    let failure: unknown;
    const t = testEngine(async (req) => {
      try {
        await req.arrayBuffer();
      } catch (err) {
        failure = err;
      }
      return new Response("late");
    }, OPTS);
    const c = t.connect();
    c.push("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
    await settle();
    c.end();
    await until(() => failure !== undefined, "the failed read");
    assert.ok(failure instanceof TypeError);
    assert.match((failure as Error).message, /closed before the request body ended/);
    await until(() => c.closed, "the close");
    assert.match(c.output, /^HTTP\/1\.1 200 OK\r\n.*connection: close\r\n\r\nlate$/s);
    t.engine.close();
  });

  it("a read of the body still pending when the app answers with a close fails at once, not at the linger's end", async () => {
    let failure: unknown;
    const t = testEngine((req) => {
      req.arrayBuffer().catch((err) => failure = err);
      return new Response("no", { status: 413, headers: { connection: "close" } });
    }, OPTS);
    const c = t.connect();
    c.push("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
    await until(() => c.writeClosed, "the answer and FIN");
    await until(() => failure !== undefined, "the failed read");
    assert.ok(failure instanceof TypeError);
    assert.match((failure as Error).message, /connection is closing/);
    assert.equal(c.closed, false, "still lingering");
    t.engine.close();
  });

  it("the engine's requests have exact bodies: readRequestBody takes a small one whole and never asks for a stream", async () => {
    const seen: [string, number, boolean][] = [];
    const t = testEngine(async (req) => {
      if (req.method === "GET") return hi();
      let touched = false;
      const getter = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(req), "body")!.get!;
      Object.defineProperty(req, "body", {
        get() {
          touched = true;
          return getter.call(req);
        },
      });
      const held = await readRequestBody(req, { maxBytes: 1024, timeoutMs: 1000, clock: t.clock });
      seen.push([new TextDecoder().decode(held.bytes), held.bytes.buffer.byteLength, touched]);
      held.release();
      return new Response("ok");
    }, OPTS);
    const c = t.connect();
    c.push("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab");
    await settle();
    c.push("cde");
    await until(() => c.writes.length === 1, "the first response");
    c.push("POST /e HTTP/1.1\r\nHost: h\r\n\r\n" + GET);
    await until(() => c.writes.length === 3, "the others");
    c.push(
      "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n",
    );
    await until(() => c.writes.length === 4, "the chunked one");
    assert.deepEqual(seen, [
      ["abcde", 5, false],
      ["", 0, false],
      ["xyz", 3, true],
    ]);
    t.engine.close();
  });

  it("a small body that came with its head is taken at once: charged first, no deadline, the next request left in place", async () => {
    const seen: [string, number, number, number][] = [];
    const quota = new MemoryQuota(1 << 20);
    let timers = 0;
    const clock = {
      now: () => 0,
      setTimer: () => ++timers,
      clearTimer: () => {},
    };
    const t = testEngine(async (req) => {
      if (req.method === "GET") return hi();
      const before = timers;
      const held = await readRequestBody(req, { maxBytes: 1024, timeoutMs: 1000, clock, quota });
      seen.push([
        new TextDecoder().decode(held.bytes),
        held.bytes.buffer.byteLength,
        quota.used,
        timers - before,
      ]);
      held.release();
      return new Response("ok");
    }, OPTS);
    const c = t.connect();
    c.push("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nabcde" + GET);
    await until(() => c.writes.length === 2, "both responses");
    c.push("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab");
    await settle();
    c.push("cde");
    await until(() => c.writes.length === 3, "the split one");
    assert.deepEqual(seen, [
      ["abcde", 5, bufferCost(5), 0],
      ["abcde", 5, bufferCost(5), 1],
    ]);
    assert.equal(quota.used, 0);
    assert.match(c.output, /\r\n\r\nok.*\r\n\r\nhi.*\r\n\r\nok$/s);
    t.engine.close();
  });

  it("a fixed response's bytes go out after its head, its stream never made; any other body is read", async () => {
    let touched = 0;
    const t = testEngine((req) => {
      const res = new URL(req.url).pathname === "/fixed"
        ? fixedResponse('{"bytes":64}', { headers: { "content-type": "application/json" } })
        : new Response("plain");
      const getter = Object.getOwnPropertyDescriptor(Response.prototype, "body")!.get!;
      Object.defineProperty(res, "body", {
        get() {
          touched++;
          return getter.call(res);
        },
      });
      return res;
    }, OPTS);
    const c = t.connect();
    c.push("GET /fixed HTTP/1.1\r\nHost: h\r\n\r\n");
    await until(() => c.writes.length === 1, "the fixed response");
    assert.equal(touched, 0, "no stream");
    c.push("GET /plain HTTP/1.1\r\nHost: h\r\n\r\n");
    await until(() => c.writes.length === 2, "the plain one");
    assert.equal(touched, 1);
    assert.match(
      c.output,
      /^HTTP\/1\.1 200 OK\r\ncontent-type: application\/json\r\ndate: DATE\r\ncontent-length: 12\r\n\r\n\{"bytes":64\}HTTP/,
    );
    assert.match(c.output, /content-length: 5\r\n\r\nplain$/);
    t.engine.close();
  });

  it("decodes a chunked body across reads; a malformed one answers 400 in place of the app's response (§7.1)", async () => {
    const t = testEngine(async (req) => {
      try {
        return new Response(`got ${await req.text()}`);
      } catch {
        return new Response("the app saw an error", { status: 500 });
      }
    }, OPTS);
    const c = t.connect();
    c.push("POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab");
    await settle();
    c.push("c\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n");
    await until(() => c.writes.length === 1, "the response");
    assert.match(c.output, /\r\n\r\ngot abcde$/);
    const bad = t.connect();
    bad.push(
      "POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
    );
    await until(() => bad.writeClosed, "the refusal and FIN");
    assert.match(
      bad.output,
      /^HTTP\/1\.1 400 Bad Request\r\ncontent-type: application\/problem\+json\r\n/,
    );
    assert.match(
      bad.output,
      /connection: close\r\n\r\n\{.*"code":"EINVAL".*chunk data longer than its chunk size/,
    );
    assert.doesNotMatch(bad.output, /the app saw an error/);
    t.engine.close();
  });

  it("Expect: 100-continue: 100 at the first pull, not before; none when the app answers without the body (RFC 9110 §10.1.1)", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    const t = testEngine(async (req) => {
      if (new URL(req.url).pathname === "/skip") return new Response("no thanks", { status: 413 });
      await gate;
      return new Response(await req.text());
    }, OPTS);
    const c = t.connect();
    c.push("PUT /s HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    await settle();
    assert.equal(c.output, "", "nothing before the app asks for the body");
    release();
    await until(() => c.writes.length === 1, "the 100");
    assert.equal(c.output, "HTTP/1.1 100 Continue\r\n\r\n");
    c.push("body");
    await until(() => c.writes.length === 2, "the response");
    assert.match(c.output, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n.*\r\n\r\nbody$/s);
    const s = t.connect();
    s.push("PUT /skip HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    await until(() => s.writeClosed, "the answer and FIN");
    assert.match(s.output, /^HTTP\/1\.1 413 Content Too Large\r\n/);
    assert.match(
      s.output,
      /connection: close\r\n\r\nno thanks$/,
      "the unsent body: the connection goes",
    );
    t.engine.close();
  });

  it("drops an unread body that is all buffered and goes on; closes when it is not", async () => {
    const t = testEngine(() => new Response("x"), OPTS);
    const c = t.connect();
    c.push("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc" + GET);
    await until(() => c.writes.length === 2, "two responses");
    assert.equal(c.writeClosed, false);
    const big = t.connect();
    big.push("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\nabc");
    await until(() => big.writeClosed, "the FIN");
    assert.match(big.output, /\r\nconnection: close\r\n\r\nx$/);
    t.engine.close();
  });

  it("refuses a malformed or oversized head with its status, a problem body and a close (431, 400)", async () => {
    const t = testEngine(hi, { ...OPTS, headLimits: { maxHeadBytes: 200 } });
    const big = t.connect();
    big.push("GET / HTTP/1.1\r\nHost: h\r\nX: " + "a".repeat(300));
    await until(() => big.writeClosed, "the 431");
    assert.match(
      big.output,
      /^HTTP\/1\.1 431 Request Header Fields Too Large\r\ncontent-type: application\/problem\+json\r\ncontent-length: \d+\r\ndate: DATE\r\nconnection: close\r\n\r\n/,
    );
    assert.match(big.output, /"code":"ETOOLARGE","detail":"the request head exceeds 200 bytes"/);
    const smuggle = t.connect();
    smuggle.push(
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    await until(() => smuggle.writeClosed, "the 400");
    assert.match(
      smuggle.output,
      /^HTTP\/1\.1 400 Bad Request\r\n.*both Transfer-Encoding and Content-Length/s,
    );
    // The linger reads and drops what the client still sends, then closes at its EOF.
    smuggle.push("garbage".repeat(100));
    await settle();
    assert.equal(smuggle.closed, false);
    smuggle.end();
    await until(() => smuggle.closed, "the close");
    t.engine.close();
  });

  it("timeouts: a silent connection closes without a word, a started head gets 408, an idle keep-alive closes", async () => {
    const t = testEngine(hi, OPTS);
    const silent = t.connect();
    const half = t.connect();
    half.push("GET / HTTP/1.1\r\nHo");
    const kept = t.connect();
    kept.push(GET);
    await until(() => kept.writes.length === 1, "a response");
    await settle(); // the keep-alive deadline is armed once the response is out
    t.clock.advance(999);
    await settle();
    assert.ok(!silent.closed && !half.writeClosed, "not before headersTimeoutMs");
    t.clock.advance(300);
    await until(() => silent.closed && half.writeClosed, "the head timeouts");
    assert.equal(silent.output, "");
    assert.match(
      half.output,
      /^HTTP\/1\.1 408 Request Timeout\r\n.*the request head did not arrive within 1000 ms/s,
    );
    assert.equal(kept.closed, false, "the keep-alive connection has keepAliveTimeoutMs");
    t.clock.advance(1000);
    await until(() => kept.closed, "the idle close");
    assert.equal(kept.output, HI, "closed without a word");
    t.engine.close();
  });

  it("a request body that does not arrive within requestTimeoutMs gets 408; the app's late answer is dropped", async () => {
    const t = testEngine(async (req) => {
      try {
        await req.text();
      } catch {
        // The engine failed the body.
      }
      return new Response("late");
    }, OPTS);
    const c = t.connect();
    c.push("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
    await settle();
    t.clock.advance(3300);
    await until(() => c.writeClosed, "the 408");
    await settle();
    assert.match(
      c.output,
      /^HTTP\/1\.1 408 Request Timeout\r\n.*did not arrive within 3000 ms of its head/s,
    );
    assert.doesNotMatch(c.output, /late/);
    t.engine.close();
  });

  it("Connection: close from the app closes after the response, with a linger that drops what follows", async () => {
    const t = testEngine(
      () =>
        new Response("full", { status: 429, headers: { connection: "close", "retry-after": "1" } }),
      OPTS,
    );
    const c = t.connect();
    c.push("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n" + "x".repeat(100));
    await until(() => c.writeClosed, "the FIN");
    assert.equal(
      c.output,
      "HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/plain;charset=UTF-8\r\nretry-after: 1\r\n" +
        "date: DATE\r\ncontent-length: 4\r\nconnection: close\r\n\r\nfull",
    );
    c.push("y".repeat(4900));
    await settle();
    assert.equal(c.closed, false, "still reading and dropping");
    t.clock.advance(2300);
    await until(() => c.closed, "closed by the linger's end");
    t.engine.close();
  });

  it("HEAD and 304 carry no body; the app's Content-Length passes (§6.3)", async () => {
    const t = testEngine(
      (req) =>
        req.method === "HEAD"
          ? new Response(null, { headers: { "content-length": "5", "content-type": "a/b" } })
          : new Response(null, { status: 304, headers: { "content-length": "7" } }),
      OPTS,
    );
    const c = t.connect();
    c.push("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
    await until(() => c.writes.length === 1, "HEAD");
    assert.equal(
      c.output,
      "HTTP/1.1 200 OK\r\ncontent-type: a/b\r\ndate: DATE\r\ncontent-length: 5\r\n\r\n",
    );
    c.push(GET);
    await until(() => c.writes.length === 2, "304");
    assert.match(
      c.output,
      /HTTP\/1\.1 304 Not Modified\r\ndate: DATE\r\ncontent-length: 7\r\n\r\n$/,
    );
    t.engine.close();
  });

  it("streams a body that is not all there: the head at once, chunks with backpressure, the last chunk (§7.1)", async () => {
    let pulls = 0;
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const t = testEngine(() =>
      new Response(
        new ReadableStream<Uint8Array>({
          start: (c) => void (controller = c),
          pull: () => void pulls++,
        }, { highWaterMark: 0 }),
        { headers: { "content-type": "x/y" } },
      ), OPTS);
    const c = t.connect();
    c.push(GET);
    await until(() => c.writes.length === 1, "the head");
    assert.equal(
      c.output,
      "HTTP/1.1 200 OK\r\ncontent-type: x/y\r\ndate: DATE\r\ntransfer-encoding: chunked\r\n\r\n",
    );
    c.holdWrites = true;
    controller.enqueue(latin1("abc"));
    await until(() => c.writes.length === 2, "the first chunk");
    const pullsWhileHeld = pulls;
    await settle();
    assert.equal(pulls, pullsWhileHeld, "no more is read while the write is pending");
    c.holdWrites = false;
    c.releaseWrites();
    await until(() => pulls > pullsWhileHeld, "the next read");
    controller.enqueue(latin1("0123456789abcdef!"));
    controller.close();
    await until(() => c.output.endsWith("0\r\n\r\n"), "the last chunk");
    assert.equal(
      c.output.slice(c.output.indexOf("\r\n\r\n") + 4),
      "3\r\nabc\r\n11\r\n0123456789abcdef!\r\n0\r\n\r\n",
    );
    assert.equal(c.closed, false, "chunked: the connection persists");
    t.engine.close();
  });

  it("HTTP/1.0 gets a streamed body without chunks, ended by the close", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    const t = testEngine(() =>
      new Response(
        new ReadableStream({
          async pull(c) {
            await gate;
            c.enqueue(latin1("abc"));
            c.close();
          },
        }, { highWaterMark: 0 }),
      ), OPTS);
    const c = t.connect();
    c.push("GET / HTTP/1.0\r\n\r\n");
    await until(() => c.writes.length === 1, "the head");
    release();
    await until(() => c.writeClosed, "the FIN");
    assert.equal(c.output, "HTTP/1.1 200 OK\r\ndate: DATE\r\nconnection: close\r\n\r\nabc");
    t.engine.close();
  });

  it("upgrades to a WebSocket: 101 (RFC 6455 §4.2.2), then the bytes after the head go to the socket", async () => {
    const messages: string[] = [];
    const t = testEngine((req, upgrade) => {
      const { socket, response } = upgrade(req, { protocol: "binary" });
      socket.addEventListener(
        "message",
        (e) => messages.push(new TextDecoder().decode(e.data as ArrayBuffer)),
      );
      return response;
    }, OPTS);
    const c = t.connect();
    const frame = encodeFrame(0x2, latin1("hello"));
    // A client frame is masked (RFC 6455 §5.3): mask bit and a zero mask.
    const masked = new Uint8Array(frame.length + 4);
    masked[0] = frame[0];
    masked[1] = frame[1] | 0x80;
    masked.set(frame.subarray(2), 6);
    c.push(latin1(
      "GET /t HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ));
    c.push(masked);
    await until(() => messages.length === 1, "the message");
    assert.equal(
      c.output,
      "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n" +
        "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nsec-websocket-protocol: binary\r\n\r\n",
    );
    assert.deepEqual(messages, ["hello"]);
    assert.equal(t.engine.websockets.size, 1);
    t.engine.close();
    assert.ok(c.closed, "shutdown closes the WebSocket's connection");
  });

  it("a request that cannot be upgraded: the upgrader throws EUPGRADE", async () => {
    let error = "";
    const t = testEngine((req, upgrade) => {
      try {
        upgrade(req);
      } catch (err) {
        error = (err as Error).message;
      }
      return new Response("no");
    }, OPTS);
    const c = t.connect();
    c.push(GET);
    await until(() => c.writes.length === 1, "the response");
    assert.match(error, /cannot be upgraded/);
    t.engine.close();
  });

  it("a client that goes away while a slow handler waits aborts request.signal", async () => {
    let aborted = false;
    const t = testEngine((req) =>
      new Promise<Response>((resolve) => {
        req.signal.addEventListener("abort", () => {
          aborted = true;
          resolve(new Response("gone"));
        });
      }), OPTS);
    const c = t.connect();
    c.push(GET);
    await settle();
    assert.equal(aborted, false);
    c.end();
    await until(() => aborted, "the abort");
    await until(() => c.closed, "the close");
    t.engine.close();
  });

  it("shutdown closes every connection; the engine serves no more", async () => {
    const t = testEngine(hi, OPTS);
    const a = t.connect();
    const b = t.connect();
    b.push("GET / HTTP/1.1\r\n");
    await settle();
    assert.equal(t.engine.open, 2);
    t.engine.close();
    assert.ok(a.closed && b.closed);
    assert.equal(t.engine.open, 0);
    const late = t.connect();
    assert.ok(late.closed);
  });

  it("with real Requests (lazyRequests false) the same answers, and the signal aborts too", async () => {
    let aborted = false;
    const t = testEngine(
      async (req) => {
        if (req.method === "POST") return new Response(`got ${await req.text()}`);
        req.signal.addEventListener("abort", () => aborted = true);
        return await new Promise<Response>(() => {});
      },
      OPTS,
      { lazyRequests: false },
    );
    const c = t.connect();
    c.push("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok");
    await until(() => c.writes.length === 1, "the response");
    assert.match(c.output, /\r\n\r\ngot ok$/);
    c.push(GET);
    await settle();
    c.end();
    await until(() => aborted, "the abort");
    t.engine.close();
  });

  it("a handler that throws answers 500 EINTERNAL and the connection goes on", async () => {
    const errors: unknown[] = [];
    const orig = console.error;
    console.error = (...a: unknown[]) => errors.push(a);
    try {
      const t = testEngine(() => {
        throw new Error("boom");
      }, OPTS);
      const c = t.connect();
      c.push(GET);
      await until(() => c.writes.length === 1, "the response");
      assert.match(c.output, /^HTTP\/1\.1 500 Internal Server Error\r\n.*"code":"EINTERNAL"/s);
      assert.equal(errors.length, 1);
      assert.equal(c.closed, false);
      t.engine.close();
    } finally {
      console.error = orig;
    }
  });
});

// The kit itself: a MemConn read parks until bytes arrive.
describe("MemConn", () => {
  it("delivers pushed bytes to a pending read and EOF after them", async () => {
    const c = new MemConn();
    const buf = new Uint8Array(4);
    const r = c.read(buf);
    c.push("abcdef");
    assert.equal(await r, 4);
    assert.equal(await c.read(buf), 2);
    c.end();
    assert.equal(await c.read(buf), null);
  });
});
