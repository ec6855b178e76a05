/**
 * The front door's handle and the worker side, wired together in one
 * isolate over a `MessageChannel` (the same messages a real Worker carries):
 * forwarding, the response credit window, WebSocket relays, heartbeat
 * timeouts, crashes, and the end of a session.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type RelaySocket, relayWebSocket } from "./relay.ts";
import { RESPONSE_CREDIT_BYTES, type WorkerInit } from "./protocol.ts";
import { SessionDeadError, SessionWorker } from "./session_worker.ts";
import { type PortUpgrader, serveSessionWorker, type WorkerApp } from "./worker_side.ts";
import type { PortSocket } from "./port_socket.ts";
import { ChannelWorker } from "./_channel_worker_test_util.ts";

const INIT: WorkerInit = { t: "init", testHooks: false, websocket: true, requestLog: false };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts a worker side serving `handler` and returns the front door's handle. */
function start(
  handler: (req: Request, upgrade: PortUpgrader) => Response | Promise<Response>,
  opts: { heartbeatTimeoutMs?: number; sessions?: () => number; sweep?: () => number } = {},
) {
  const w = new ChannelWorker();
  const deaths: string[] = [];
  const ended: string[] = [];
  serveSessionWorker(w.scope(), (_init, upgrade): WorkerApp => ({
    fetch: (req) => handler(req, upgrade),
    sessions: opts.sessions ?? (() => 1),
    sweep: opts.sweep ?? (() => 0),
    metrics: () => "# TYPE x counter\nx 1\n",
  }));
  const handle = new SessionWorker(w, {
    init: { ...INIT, sweepIntervalMs: 20 },
    heartbeatIntervalMs: 20,
    heartbeatTimeoutMs: opts.heartbeatTimeoutMs ?? 5000,
    onDeath: (reason, detail) => deaths.push(`${reason}: ${detail}`),
    onEnded: (reason, metrics) => ended.push(`${reason}: ${metrics.trim().split("\n").pop()}`),
  });
  return { w, handle, deaths, ended };
}

describe("SessionWorker and serveSessionWorker", () => {
  it("forwards method, URL, headers and body, and returns status, headers and body", async () => {
    const { handle } = start(async (req) =>
      new Response(
        `${req.method} ${new URL(req.url).pathname} ${req.headers.get("x-a")} ${await req.text()}`,
        {
          status: 201,
          headers: { "x-b": "2" },
        },
      )
    );
    await handle.ready;
    const res = await handle.request({
      method: "POST",
      url: "http://h/v1/sessions/s_x/sockets",
      headers: [["x-a", "1"]],
      body: new TextEncoder().encode("hi").buffer,
    });
    assert.equal(res.status, 201);
    assert.deepEqual(res.headers.find(([k]) => k === "x-b"), ["x-b", "2"]);
    assert.equal(await new Response(res.body).text(), "POST /v1/sessions/s_x/sockets 1 hi");
    handle.terminate();
  });

  it("streams a long body no further ahead of the reader than the credit window", async () => {
    let produced = 0;
    const chunk = 64 * 1024;
    const { handle } = start(() =>
      new Response(
        new ReadableStream<Uint8Array>({
          pull(c) {
            if (produced >= 4 * 1024 * 1024) return c.close();
            produced += chunk;
            c.enqueue(new Uint8Array(chunk).fill(7));
          },
        }, { highWaterMark: 0 }),
      )
    );
    await handle.ready;
    const res = await handle.request({ method: "GET", url: "http://h/p", headers: [], body: null });
    const reader = res.body!.getReader();
    let consumed = 0;
    let maxAhead = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      consumed += value.byteLength;
      if (consumed % (512 * 1024) === 0) await sleep(5); // a slow reader
      maxAhead = Math.max(maxAhead, produced - consumed);
    }
    assert.equal(consumed, 4 * 1024 * 1024);
    // The producer's own one-chunk lookahead aside, the worker stays within the window.
    assert.ok(maxAhead <= RESPONSE_CREDIT_BYTES + 2 * chunk, `ahead by ${maxAhead} bytes`);
    handle.terminate();
  });

  it("cancelling the body cancels the worker's stream; aborting the request aborts its signal", async () => {
    let cancelled = false;
    let aborted = false;
    const { handle } = start((req) => {
      if (new URL(req.url).pathname === "/poll") {
        return new Promise((resolve) =>
          req.signal.addEventListener("abort", () => {
            aborted = true;
            resolve(new Response(null, { status: 204 }));
          })
        );
      }
      return new Response(
        new ReadableStream({
          pull: (c) => c.enqueue(new Uint8Array(1000)),
          cancel: () => {
            cancelled = true;
          },
        }),
      );
    });
    await handle.ready;
    const res = await handle.request({ method: "GET", url: "http://h/s", headers: [], body: null });
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    const ac = new AbortController();
    const poll = handle.request({
      method: "GET",
      url: "http://h/poll",
      headers: [],
      body: null,
      signal: ac.signal,
    });
    await sleep(20);
    ac.abort();
    assert.equal((await poll).status, 204);
    for (let i = 0; i < 50 && !cancelled; i++) await sleep(5);
    assert.equal(cancelled, true);
    assert.equal(aborted, true);
    handle.terminate();
  });

  it("relays a WebSocket both ways with backpressure accounting and close codes", async () => {
    let workerSide: PortSocket | undefined;
    const { handle } = start((req, upgrade) => {
      const { socket, response } = upgrade(req);
      workerSide = socket;
      socket.addEventListener(
        "message",
        (ev) => socket.send(new TextEncoder().encode(`echo:${ev.data}`)),
      );
      return response;
    });
    await handle.ready;
    const ch = new MessageChannel();
    const res = await handle.request({
      method: "GET",
      url: "http://h/ws",
      headers: [],
      body: null,
      port: ch.port2,
    });
    assert.equal(res.upgrade, true);
    // A stand-in for the client's real socket.
    const sent: unknown[] = [];
    const listeners = new Map<
      string,
      ((ev: { data?: unknown; code?: number; reason?: string }) => void)[]
    >();
    let closedWith: [number | undefined, string | undefined] | undefined;
    const client: RelaySocket = {
      binaryType: "arraybuffer",
      readyState: 1,
      bufferedAmount: 0,
      send: (d) => sent.push(d),
      close: (code, reason) => closedWith = [code, reason],
      // deno-lint-ignore no-explicit-any
      addEventListener: (type: string, l: any) =>
        listeners.set(type, [...(listeners.get(type) ?? []), l]),
    };
    relayWebSocket(client, ch.port1, { overflow: "close" });
    for (let i = 0; i < 50 && workerSide?.readyState !== 1; i++) await sleep(5);
    assert.equal(workerSide?.readyState, 1);
    for (const l of listeners.get("message")!) l({ data: "hi" });
    for (let i = 0; i < 50 && sent.length === 0; i++) await sleep(5);
    assert.equal(new TextDecoder().decode(sent[0] as ArrayBuffer), "echo:hi");
    for (let i = 0; i < 50 && workerSide!.bufferedAmount !== 0; i++) await sleep(5);
    assert.equal(workerSide!.bufferedAmount, 0, "the front door acknowledged what it wrote");
    workerSide!.close(4001, "session ended");
    for (let i = 0; i < 50 && !closedWith; i++) await sleep(5);
    assert.deepEqual(closedWith, [4001, "session ended"]);
    handle.terminate();
  });

  it("a worker that stops answering pings is terminated and its requests fail with SessionDeadError", async () => {
    const { w, handle, deaths } = start(() => new Promise<Response>(() => {}), {
      heartbeatTimeoutMs: 100,
    });
    await handle.ready;
    const pending = handle.request({ method: "GET", url: "http://h/", headers: [], body: null });
    w.hung = true;
    await assert.rejects(
      pending,
      (err) => err instanceof SessionDeadError && /heartbeat/.test(err.message),
    );
    assert.equal(handle.state, "dead");
    assert.equal(w.terminated, true);
    assert.equal(deaths.length, 1);
    assert.match(deaths[0], /^unresponsive: /);
    await assert.rejects(
      handle.request({ method: "GET", url: "http://h/", headers: [], body: null }),
      SessionDeadError,
    );
  });

  it("an uncaught error in the worker is kept from the front door and kills only that worker", async () => {
    const { w, handle, deaths } = start(() => new Promise<Response>(() => {}));
    await handle.ready;
    const pending = handle.request({ method: "GET", url: "http://h/", headers: [], body: null });
    const ev = new ErrorEvent("error", { message: "Uncaught Error: boom", cancelable: true });
    w.dispatchEvent(ev);
    assert.equal(ev.defaultPrevented, true, "the error does not propagate to the main isolate");
    await assert.rejects(
      pending,
      (err) => err instanceof SessionDeadError && /crashed.*boom/.test(err.message),
    );
    assert.deepEqual(deaths, ["crash: the session worker crashed: Uncaught Error: boom"]);
  });

  it("reports the end of its session with its last metrics (deleted, then expired)", async () => {
    let alive = 1;
    const del = start((req) => {
      if (req.method === "DELETE") alive = 0;
      return new Response(null, { status: 204 });
    }, { sessions: () => alive });
    await del.handle.ready;
    // A first request sees the session alive; the DELETE ends it.
    await del.handle.request({ method: "GET", url: "http://h/", headers: [], body: null });
    assert.equal(del.ended.length, 0);
    await del.handle.request({ method: "DELETE", url: "http://h/", headers: [], body: null });
    for (let i = 0; i < 50 && del.ended.length === 0; i++) await sleep(5);
    assert.deepEqual(del.ended, ["deleted: x 1"]);
    assert.equal(del.handle.state, "ended");

    let live = 1;
    let requested = false;
    const exp = start(() => {
      requested = true;
      return new Response("ok");
    }, {
      sessions: () => live,
      sweep: () => {
        if (live === 0 || !requested) return 0;
        live = 0;
        return 1;
      },
    });
    await exp.handle.ready;
    await new Response(
      (await exp.handle.request({ method: "GET", url: "http://h/", headers: [], body: null })).body,
    ).text();
    for (let i = 0; i < 100 && exp.ended.length === 0; i++) await sleep(5);
    assert.deepEqual(exp.ended, ["expired: x 1"]);
  });

  it("ignores test hooks unless the init message enabled them", async () => {
    const { handle } = start(() => new Response("alive"));
    await handle.ready;
    handle.testHook("spin");
    handle.testHook("crash");
    await sleep(30);
    const res = await handle.request({ method: "GET", url: "http://h/", headers: [], body: null });
    assert.equal(await new Response(res.body).text(), "alive");
    handle.terminate();
  });
});
