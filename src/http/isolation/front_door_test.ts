/**
 * The front door in-process: each "worker" is a `ChannelWorker` (both sides
 * in this isolate) running the real worker app, so the front door's own
 * duties are tested without threads: admin token, validation and quota
 * before a worker starts, token checks, body limits, `/metrics` sums and
 * retired counters, and the 503 `ESESSIONDEAD` of a crashed session.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChannelWorker } from "../../session/isolated/_channel_worker_test_util.ts";
import { serveSessionWorker } from "../../session/isolated/mod.ts";
import { assertProblem } from "../_socket_api_test_util.ts";
import { createIsolatedApp, type IsolatedAppOptions } from "./front_door.ts";
import { buildWorkerApp } from "./worker_app.ts";

function frontDoor(options: Partial<IsolatedAppOptions> = {}) {
  const workers: ChannelWorker[] = [];
  const isolated = createIsolatedApp({
    requestLog: false,
    ...options,
    workerFactory: () => {
      const w = new ChannelWorker();
      serveSessionWorker(w.scope(), buildWorkerApp);
      workers.push(w);
      return w;
    },
  });
  const create = async (headers: Record<string, string> = {}) => {
    const res = await isolated.app.request("/v1/sessions", { method: "POST", headers });
    assert.equal(res.status, 201, await res.clone().text());
    return await res.json() as { id: string; token: string };
  };
  const call = (
    s: { id: string; token: string },
    method: string,
    path: string,
    init: RequestInit = {},
  ) =>
    isolated.app.request(`/v1/sessions/${s.id}${path}`, {
      method,
      ...init,
      headers: { authorization: `Bearer ${s.token}`, ...init.headers as Record<string, string> },
    });
  return { ...isolated, workers, create, call };
}

describe("the isolated front door", () => {
  it("checks the admin token, the body and the quota before it starts a worker", async () => {
    const fd = frontDoor({ adminToken: "adm", maxSessions: 2 });
    try {
      const admin = { authorization: "Bearer adm" };
      await assertProblem(
        await fd.app.request("/v1/sessions", { method: "POST" }),
        401,
        "EUNAUTHORIZED",
      );
      await assertProblem(
        await fd.app.request("/v1/sessions", {
          method: "POST",
          headers: admin,
          body: '{"mtu":"x"}',
        }),
        400,
        "EINVAL",
        "mtu",
      );
      await assertProblem(
        await fd.app.request("/v1/sessions", { method: "POST", headers: admin, body: "{" }),
        400,
        "EINVAL",
      );
      assert.equal(fd.workers.length, 0, "no worker started for refused requests");
      const a = await fd.create(admin);
      await fd.create(admin);
      await assertProblem(
        await fd.app.request("/v1/sessions", { method: "POST", headers: admin }),
        429,
        "ENFILE",
      );
      assert.equal(fd.workers.length, 2);
      const health = await (await fd.app.request("/healthz")).json();
      assert.deepEqual(health, { status: "ok", sessions: 2, isolation: "worker", deadSessions: 0 });

      const view = await (await fd.call(a, "GET", "")).json();
      assert.equal(view.id, a.id);
      await assertProblem(await fd.call({ ...a, token: "wrong" }, "GET", ""), 401, "EUNAUTHORIZED");
      await assertProblem(
        await fd.call({ id: "nope", token: a.token }, "GET", ""),
        400,
        "EINVAL",
        "sid",
      );
      await assertProblem(
        await fd.call({ id: "s_AAAAAAAAAAAAAAAAAAAAAA", token: a.token }, "GET", ""),
        404,
        "ENOTFOUND",
      );
      await assertProblem(
        await fd.call(a, "POST", "/sockets/k_x/send", {
          body: new Uint8Array(1024 * 1024 + 65 * 1024),
        }),
        413,
        "ETOOLARGE",
      );
      // The worker's app answers what reaches it: its own validation, errors and routes.
      await assertProblem(
        await fd.call(a, "POST", "/sockets", { body: '{"protocol":"sctp"}' }),
        400,
        "EINVAL",
        "protocol",
      );
      const doc = await (await fd.app.request("/openapi.json")).json();
      assert.ok(
        doc.paths["/v1/sessions/{sid}/sockets"],
        "the OpenAPI document lists the session routes",
      );
    } finally {
      fd.close();
    }
  });

  it("/metrics sums the workers and keeps the counters of deleted sessions", async () => {
    const fd = frontDoor({ metricsToken: "m" });
    try {
      const a = await fd.create();
      const b = await fd.create();
      for (const s of [a, b]) {
        assert.equal(
          (await fd.call(s, "POST", "/sockets", { body: '{"protocol":"udp"}' })).status,
          201,
        );
      }
      assert.equal((await fd.app.request("/metrics")).status, 401);
      const scrape = async () =>
        await (await fd.app.request("/metrics", { headers: { authorization: "Bearer m" } })).text();
      const series = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? "NaN");
      const SOCKETS = /^netisle_sockets\{protocol="udp"\} (\d+)$/m;
      const CREATED_SOCKETS =
        /^netisle_http_requests_total\{method="POST",route="\/v1\/sessions\/:sid\/sockets",status="201"\} (\d+)$/m;
      let text = await scrape();
      assert.equal(series(text, /^netisle_sessions (\d+)$/m), 2);
      assert.equal(series(text, SOCKETS), 2);
      assert.equal(series(text, CREATED_SOCKETS), 2);
      assert.equal((await fd.call(a, "DELETE", "")).status, 204);
      await assertProblem(await fd.call(a, "GET", ""), 404, "ENOTFOUND");
      for (let i = 0; i < 100 && fd.workers[0].terminated === false; i++) {
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.equal(fd.workers[0].terminated, true, "the deleted session's worker ended");
      text = await scrape();
      assert.equal(series(text, /^netisle_sessions (\d+)$/m), 1);
      assert.equal(series(text, SOCKETS), 1, "gauges are of live sessions");
      assert.equal(series(text, CREATED_SOCKETS), 2, "counters never go down");
    } finally {
      fd.close();
    }
  });

  it("a crashed worker's session answers 503 ESESSIONDEAD until it is deleted", async () => {
    const fd = frontDoor();
    try {
      const a = await fd.create();
      const b = await fd.create();
      const ev = new ErrorEvent("error", {
        message: "Uncaught RangeError: oops",
        cancelable: true,
      });
      fd.workers[0].dispatchEvent(ev);
      assert.equal(ev.defaultPrevented, true);
      const p = await assertProblem(await fd.call(a, "GET", "/sockets"), 503, "ESESSIONDEAD");
      assert.match(p.detail, /crashed: Uncaught RangeError: oops/);
      assert.equal((await fd.call(b, "GET", "")).status, 200, "the other session is unaffected");
      const health = await (await fd.app.request("/healthz")).json();
      assert.equal(health.sessions, 1);
      assert.equal(health.deadSessions, 1);
      const metrics = await (await fd.app.request("/metrics")).text();
      assert.match(metrics, /^netisle_isolated_session_deaths_total\{reason="crash"\} 1$/m);
      assert.equal((await fd.call(a, "DELETE", "")).status, 204);
      await assertProblem(await fd.call(a, "GET", ""), 404, "ENOTFOUND");
    } finally {
      fd.close();
    }
  });
});
