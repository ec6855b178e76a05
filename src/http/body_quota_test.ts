import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { bufferCost } from "../stack/session_quota.ts";
import { decodeUdp } from "../stack/udp/_udp_test_util.ts";
import { assertProblem, socketApi } from "./_socket_api_test_util.ts";
import { DEFAULT_BODY_TIMEOUT_MS } from "./request_body.ts";

/** Lets pending reads and promise callbacks run (no real time passes). */
const turn = () => new Promise<void>((r) => setTimeout(r, 0));

/** A body the test feeds by hand, counting the reads the server made. */
function fedBody() {
  let ctrl!: ReadableStreamDefaultController<Uint8Array>;
  const stats = { pulls: 0 };
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      ctrl = c;
    },
    pull() {
      stats.pulls++;
    },
  }, { highWaterMark: 0 });
  return {
    stream,
    stats,
    push: (n: number) => ctrl.enqueue(new Uint8Array(n).fill(0x61)),
    pushBytes: (b: Uint8Array) => ctrl.enqueue(b),
    end: () => ctrl.close(),
  };
}

type Api = ReturnType<typeof socketApi>;

/** `POST path` (relative to the session) with a fed body and, when given, a Content-Length. */
function postFed(api: Api, path: string, contentLength?: number) {
  const body = fedBody();
  const headers: Record<string, string> = { authorization: `Bearer ${api.session.token}` };
  if (contentLength !== undefined) headers["content-length"] = String(contentLength);
  const res = Promise.resolve(api.app.request(
    new Request(`http://localhost/v1/sessions/${api.session.id}${path}`, {
      method: "POST",
      headers,
      body: body.stream,
      duplex: "half",
    } as RequestInit),
  ));
  return { ...body, res };
}

describe("HTTP API: request bodies count against the session's memory quota before they are read", () => {
  it("of 30 concurrent sends whose sum passes the quota, those over get 429 ENOBUFS unread; the charge never passes the limit", async () => {
    const size = 1024;
    const cost = bufferCost(size);
    const fits = 10;
    const api = socketApi({ sessionLimits: { maxBufferedBytes: fits * cost + cost - 1 } });
    const quota = api.session.stack.quota.memory;
    const id = await api.create("udp");
    await api.call("POST", `/sockets/${id}/bind`, { json: { port: 5000 } });
    assert.equal(quota.used, 0);
    const sends = Array.from(
      { length: 30 },
      () => postFed(api, `/sockets/${id}/send?address=10.0.2.15&port=9`, size),
    );
    const answered = new Map<number, Response>();
    sends.forEach((s, i) => s.res.then((r) => answered.set(i, r)));
    for (let t = 0; t < 100 && answered.size < 30 - fits; t++) await turn();
    assert.equal(answered.size, 30 - fits, "all but the sends that fit were answered at once");
    assert.equal(quota.used, fits * cost, "the sends that fit are charged before their bodies");
    for (const [i, res] of answered) {
      assert.equal(res.headers.get("connection"), "close");
      const p = await assertProblem(res, 429, "ENOBUFS");
      assert.match(p.detail, /the request body needs 1536 more/);
      assert.equal(sends[i].stats.pulls, 0, "a refused body is never read");
    }
    // The others finish their bodies one after the other and are sent.
    let sent = 0;
    for (const [i, s] of sends.entries()) {
      if (answered.has(i)) continue;
      assert.ok(s.stats.pulls > 0, "an admitted body is being read");
      s.push(size);
      s.end();
      const res = await s.res;
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { bytes: size });
      assert.equal(decodeUdp(api.tunnel.frames.shift()!).udp.payload.length, size);
      sent++;
    }
    assert.equal(sent, fits);
    assert.equal(quota.used, 0, "every charge was released");
    assert.ok(quota.stats().peak <= quota.limit, `peak ${quota.stats().peak} of ${quota.limit}`);
    assert.equal(quota.stats().refused, 30 - fits);
  });

  it("a chunked send is charged as it arrives and refused (429, unread rest) once the charge fails", async () => {
    const api = socketApi({ sessionLimits: { maxBufferedBytes: 64 * 1024 } });
    const quota = api.session.stack.quota.memory;
    const id = await api.create("udp");
    await api.call("POST", `/sockets/${id}/bind`, { json: { port: 5000 } });
    const s = postFed(api, `/sockets/${id}/send?address=10.0.2.15&port=9`);
    let res: Response | undefined;
    s.res.then((r) => res = r);
    let pushed = 0;
    for (let t = 0; t < 100 && !res; t++) {
      await turn();
      if (!res) {
        s.push(8192);
        pushed += 8192;
      }
      assert.ok(quota.used <= quota.limit);
    }
    assert.ok(res, "answered");
    await assertProblem(res, 429, "ENOBUFS");
    assert.equal(res.headers.get("connection"), "close");
    assert.ok(pushed <= 64 * 1024, `stopped reading after ${pushed} bytes`);
    assert.equal(quota.used, 0);
    assert.ok(quota.stats().peak <= quota.limit);
  });

  it("JSON bodies of session routes are charged while they are read, and released after", async () => {
    const api = socketApi();
    const quota = api.session.stack.quota.memory;
    const json = new TextEncoder().encode(JSON.stringify({ protocol: "tcp" }));
    const s = postFed(api, "/sockets", json.length);
    await turn();
    assert.equal(quota.used, bufferCost(json.length), "charged before the body arrived");
    s.pushBytes(json);
    s.end();
    const res = await s.res;
    assert.equal(res.status, 201);
    assert.equal(quota.used, 0);
  });

  it("a body that does not arrive within the deadline gets 408 with Connection: close; its charge is released", async () => {
    const api = socketApi();
    const quota = api.session.stack.quota.memory;
    const id = await api.create("udp");
    await api.call("POST", `/sockets/${id}/bind`, { json: { port: 5000 } });
    const s = postFed(api, `/sockets/${id}/send?address=10.0.2.15&port=9`, 4096);
    let res: Response | undefined;
    s.res.then((r) => res = r);
    await turn();
    s.push(4000);
    await turn();
    api.clock.advance(DEFAULT_BODY_TIMEOUT_MS - 1);
    await turn();
    assert.equal(res, undefined, "still reading 1 ms before the deadline");
    assert.equal(quota.used, bufferCost(4096));
    api.clock.advance(1);
    for (let t = 0; t < 10 && !res; t++) await turn();
    assert.ok(res);
    const p = await assertProblem(res, 408, "EBODYTIMEOUT");
    assert.match(p.detail, /within 30000 ms/);
    assert.equal(res.headers.get("connection"), "close");
    assert.equal(quota.used, 0);
    assert.equal(api.tunnel.frames.length, 0, "nothing was sent");
    assert.equal((await api.call("GET", "/sockets")).status, 200, "the session still answers");
  });
});
