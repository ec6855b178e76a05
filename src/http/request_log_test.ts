import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { ManualClock, SessionRegistry } from "../session/mod.ts";
import { createApp } from "./app.ts";
import {
  formatRequestLogLine,
  type RequestLogEntry,
  requestObserver,
  UNMATCHED_ROUTE,
} from "./request_log.ts";

function setup() {
  const entries: RequestLogEntry[] = [];
  const registry = new SessionRegistry({ clock: new ManualClock(0) });
  const app = createApp({ registry, requestLog: (e) => entries.push(e) });
  return { app, entries };
}

describe("request log", () => {
  it("writes one entry per request with the route pattern, status and session", async () => {
    const { app, entries } = setup();
    const { id, token } = await (await app.request("/v1/sessions", { method: "POST" })).json();
    await app.request(`/v1/sessions/${id}`, { headers: { authorization: `Bearer ${token}` } });
    await app.request(`/v1/sessions/${id}`, { headers: { authorization: "Bearer wrong" } });
    await app.request(`/v1/sessions/${id}/pcap?maxFrames=0`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(entries.length, 4);
    assert.deepEqual(
      entries.map(({ method, route, status, sessionId }) => ({ method, route, status, sessionId })),
      [
        { method: "POST", route: "/v1/sessions", status: 201, sessionId: undefined },
        { method: "GET", route: "/v1/sessions/:sid", status: 200, sessionId: id },
        { method: "GET", route: "/v1/sessions/:sid", status: 401, sessionId: undefined },
        { method: "GET", route: "/v1/sessions/:sid/pcap", status: 400, sessionId: id },
      ],
    );
    for (const e of entries) assert.ok(e.durationMs >= 0);
  });

  it("never logs tokens, queries or raw paths", async () => {
    const { app, entries } = setup();
    const { id, token } = await (await app.request("/v1/sessions", { method: "POST" })).json();
    await app.request(`/v1/sessions/${id}/tunnel?token=${token}`);
    await app.request(`/v1/sessions/${id}/tunnel?token=not-the-token-xyz`);
    await app.request("/secret-path-123?token=abc");
    const lines = entries.map(formatRequestLogLine).join("\n");
    assert.ok(!lines.includes(token));
    assert.ok(!lines.includes("not-the-token-xyz"));
    assert.ok(!lines.includes("secret-path-123"));
    assert.ok(!lines.includes("?"));
    assert.equal(entries[1].route, "/v1/sessions/:sid/tunnel");
    assert.equal(entries[1].status, 426);
    assert.equal(entries[2].status, 401);
    assert.equal(entries[3].route, UNMATCHED_ROUTE);
    assert.equal(entries[3].status, 404);
  });

  it("logs to console.log by default and not at all with requestLog: false", async () => {
    const lines: unknown[] = [];
    const original = console.log;
    console.log = (...args: unknown[]) => void lines.push(args.join(" "));
    try {
      const registry = new SessionRegistry({ clock: new ManualClock(0) });
      await createApp({ registry }).request("/healthz");
      await createApp({ registry, requestLog: false }).request("/healthz");
    } finally {
      console.log = original;
    }
    assert.equal(lines.length, 1);
    assert.match(String(lines[0]), /^http method=GET route=\/healthz status=200 ms=\d+\.\d$/);
  });

  it("formats logfmt-style lines", () => {
    assert.equal(
      formatRequestLogLine({ method: "GET", route: "/healthz", status: 200, durationMs: 0.42 }),
      "http method=GET route=/healthz status=200 ms=0.4",
    );
    assert.equal(
      formatRequestLogLine({
        method: "DELETE",
        route: "/v1/sessions/:sid",
        status: 204,
        durationMs: 12.345,
        sessionId: "s_abc",
      }),
      "http method=DELETE route=/v1/sessions/:sid status=204 ms=12.3 session=s_abc",
    );
  });

  it("measures with the injected clock and survives a throwing logger", async () => {
    let t = 100;
    const entries: RequestLogEntry[] = [];
    const app = new Hono();
    app.use(requestObserver({ log: (e) => entries.push(e), now: () => t }));
    app.get("/slow/:x", (c) => {
      t += 25;
      return c.text("ok");
    });
    await app.request("/slow/1");
    assert.equal(entries[0].durationMs, 25);
    assert.equal(entries[0].route, "/slow/:x");

    const failing = new Hono();
    failing.use(requestObserver({
      log: () => {
        throw new Error("disk full");
      },
    }));
    failing.get("/", (c) => c.text("fine"));
    const res = await failing.request("/");
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "fine");
  });
});
