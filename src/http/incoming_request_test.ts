/**
 * IncomingRequest passes for a `Request` wherever the app or the runtime
 * takes one: getters, body methods, `new Request(req, init)` before and
 * after its body was read, `clone()`, an abort before or after the signal
 * was asked for.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  headersOf,
  incomingAbort,
  type IncomingBody,
  incomingBodyUsed,
  incomingBufferedBody,
  incomingNote,
  IncomingRequest,
  lazyRequestsWork,
  noteIncoming,
  requestHasBody,
  requestHeader,
} from "./incoming_request.ts";
import { noteRequestPeer, requestPeer } from "./request_peer.ts";
import { markExactBody } from "./request_body.ts";

const enc = new TextEncoder();

function make(method: string, body?: string, fields = ["Host", "h", "Content-Type", "text/plain"]) {
  const stream = body === undefined ? null : new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(enc.encode(body));
      c.close();
    },
  });
  return new IncomingRequest(method, "http://h/p?q=1", fields, stream) as unknown as Request;
}

/** A body source as the engine's: counts the streams and whole reads asked of it. */
function source(body: string, offersWhole: boolean) {
  const calls = { stream: 0, whole: 0 };
  const src: IncomingBody = {
    stream() {
      calls.stream++;
      return new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(enc.encode(body));
          c.close();
        },
      });
    },
    whole() {
      calls.whole++;
      return offersWhole ? Promise.resolve(enc.encode(body)) : undefined;
    },
  };
  const req = new IncomingRequest("POST", "http://h/", ["Content-Type", "text/plain"], src);
  return { req: req as unknown as Request, calls };
}

describe("IncomingRequest", () => {
  it("is a Request: instanceof, method, url, headers, the getters a real one has", () => {
    assert.equal(lazyRequestsWork(), true);
    const req = make("GET");
    assert.ok(req instanceof Request);
    assert.equal(req.method, "GET");
    assert.equal(req.url, "http://h/p?q=1");
    assert.equal(req.headers.get("content-type"), "text/plain");
    assert.equal(req.headers, req.headers, "one Headers object");
    assert.equal(req.body, null);
    assert.equal(req.bodyUsed, false);
    assert.equal(req.redirect, "follow");
    assert.equal(req.cache, "default");
    assert.equal(Object.prototype.toString.call(req), "[object Request]");
  });

  it("reads its body once: text(), then bodyUsed and a second read fails", async () => {
    const req = make("POST", "hello");
    assert.equal(await req.text(), "hello");
    assert.equal(req.bodyUsed, true);
    await assert.rejects(() => req.text(), TypeError);
    assert.deepEqual(await make("POST", '{"a":1}').json(), { a: 1 });
    assert.equal(new TextDecoder().decode(await make("POST", "xy").arrayBuffer()), "xy");
  });

  it("new Request(req, init) keeps method, URL, headers and body", async () => {
    const req = make("PUT", "data");
    const copy = new Request(req, { headers: { "x-b": "2" } });
    assert.equal(copy.method, "PUT");
    assert.equal(copy.url, "http://h/p?q=1");
    assert.equal(copy.headers.get("x-b"), "2");
    assert.equal(await copy.text(), "data");
  });

  it("new Request(req, { body }) after its body was read, as the JSON middleware does", async () => {
    const req = make("POST", "{}");
    const stream = req.body!;
    const reader = stream.getReader();
    await reader.read();
    reader.releaseLock();
    incomingBodyUsed(req);
    const copy = new Request(req, {
      body: '{"x":1}',
      headers: { "content-type": "application/json" },
    });
    assert.equal(copy.method, "POST");
    assert.deepEqual(await copy.json(), { x: 1 });
    assert.equal(req.body, stream, "the original keeps its body");
    assert.equal(req.bodyUsed, true);
  });

  it("clone() gives a real Request with the same body", async () => {
    const req = make("POST", "twice");
    const c = req.clone();
    assert.equal(await c.text(), "twice");
    assert.equal(await req.text(), "twice");
  });

  it("the signal aborts when the engine says the client left, asked for before or after", () => {
    const before = make("GET");
    const signal = before.signal;
    let fired = false;
    signal.addEventListener("abort", () => fired = true);
    incomingAbort(before);
    assert.ok(signal.aborted && fired);
    const after = make("GET");
    incomingAbort(after);
    assert.equal(after.signal.aborted, true);
    assert.equal(make("GET").signal.aborted, false);
  });

  it("a body source: read whole by arrayBuffer, bytes, text and json, its stream never made", async () => {
    const a = source("abc", true);
    const buf = await a.req.arrayBuffer();
    assert.equal(buf.byteLength, 3);
    assert.equal(a.req.bodyUsed, true);
    await assert.rejects(() => a.req.text(), TypeError, "read once");
    assert.deepEqual(a.calls, { stream: 0, whole: 1 });
    assert.deepEqual(await source("xy", true).req.bytes(), enc.encode("xy"));
    assert.equal(await source("héllo", true).req.text(), "héllo");
    assert.deepEqual(await source('{"a":[1]}', true).req.json(), { a: [1] });
    await assert.rejects(() => source("{", true).req.json(), SyntaxError);
    // After a whole read, a copy made through new Request has no body; the original stays used.
    const copy = new Request(a.req, { body: "new" });
    assert.equal(await copy.text(), "new");
    assert.equal(a.req.bodyUsed, true);
  });

  it("a body source that declines a whole read, or whose body was asked for, is read as a stream", async () => {
    const d = source("declined", false);
    assert.equal(await d.req.text(), "declined");
    assert.deepEqual(d.calls, { stream: 1, whole: 1 });
    const s = source("streamed", true);
    const stream = s.req.body!;
    assert.equal(s.req.body, stream, "one stream");
    assert.equal(await new Response(stream).text(), "streamed");
    await assert.rejects(() => s.req.arrayBuffer(), TypeError);
    assert.deepEqual(s.calls, { stream: 1, whole: 0 });
    const m = source("passed on", true);
    assert.equal(await new Request(m.req).text(), "passed on", "materialized with its stream");
    assert.deepEqual(m.calls, { stream: 1, whole: 0 });
  });

  it("requestHeader reads a field as headers.get does, before and after the headers were made", () => {
    const fields = ["Host", "h", "X-A", "1", "Content-Length", "3", "x-a", "2, 3", "X-Ab", "no"];
    const names = ["host", "x-a", "content-length", "x-ab", "x-b", "x"];
    const real = headersOf(fields);
    const lazy = new IncomingRequest("POST", "http://h/", [...fields], null) as unknown as Request;
    for (const n of names) assert.equal(requestHeader(lazy, n), real.get(n), n);
    assert.equal(requestHeader(lazy, "x-a"), "1, 2, 3");
    assert.equal(lazy.headers.get("x-a"), "1, 2, 3", "made after");
    for (const n of names) assert.equal(requestHeader(lazy, n), real.get(n), `${n} after`);
    const plain = new Request("http://h/", { headers: { "X-A": "1" } });
    assert.equal(requestHeader(plain, "x-a"), "1");
  });

  it("requestHasBody tells a body from none without making the stream; a buffered body is taken once", async () => {
    const a = source("abc", true);
    assert.equal(requestHasBody(a.req), true);
    assert.equal(requestHasBody(make("POST")), false);
    assert.equal(requestHasBody(make("POST", "x")), true);
    assert.deepEqual(a.calls, { stream: 0, whole: 0 }, "no stream made");
    assert.equal(requestHasBody(new Request("http://h/", { method: "POST", body: "x" })), true);
    assert.equal(requestHasBody(new Request("http://h/", { method: "POST" })), false);
    // A source that has it all: taken at once, then the body is used; one that has not: nothing read.
    let offered = enc.encode("ready") as Uint8Array | undefined;
    const ready = new IncomingRequest("POST", "http://h/", [], {
      stream: () => new ReadableStream(),
      whole: () => undefined,
      buffered: () => offered,
    }) as unknown as Request;
    assert.deepEqual(incomingBufferedBody(ready), enc.encode("ready"));
    assert.equal(ready.bodyUsed, true);
    offered = enc.encode("again");
    assert.equal(incomingBufferedBody(ready), undefined, "taken once");
    offered = undefined;
    const waiting = source("later", true);
    assert.equal(incomingBufferedBody(waiting.req), undefined, "no buffered() offered");
    assert.equal(await waiting.req.text(), "later");
    assert.equal(
      incomingBufferedBody(new Request("http://h/", { method: "POST", body: "x" })),
      undefined,
    );
  });

  it("keeps the engine's and the guard's notes (exact body, peer) as fields; other requests in maps", () => {
    const lazy = make("POST", "x");
    const real = new Request("http://h/", { method: "POST", body: "x" });
    assert.equal(incomingNote(lazy, "peer"), undefined);
    assert.equal(incomingNote(lazy, "exact"), false);
    assert.equal(incomingNote(real, "exact"), undefined, "not an IncomingRequest: not noted here");
    noteRequestPeer(lazy, "192.0.2.7");
    noteRequestPeer(real, "192.0.2.8");
    assert.equal(requestPeer(lazy), "192.0.2.7");
    assert.equal(incomingNote(lazy, "peer"), "192.0.2.7");
    assert.equal(requestPeer(real), "192.0.2.8");
    assert.equal(noteIncoming(real, "peer", "x"), false);
    markExactBody(lazy);
    assert.equal(incomingNote(lazy, "exact"), true);
  });

  it("headersOf appends flat fields, repeated names joined", () => {
    const h = headersOf(["A", "1", "b", "2", "a", "3"]);
    assert.equal(h.get("a"), "1, 3");
    assert.equal(h.get("B"), "2");
  });
});
