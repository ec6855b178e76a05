import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock, SessionRegistry } from "../session/mod.ts";
import { createApp } from "./app.ts";

function setup(options: { adminToken?: string; maxSessions?: number } = {}) {
  const registry = new SessionRegistry({
    clock: new ManualClock(0),
    limits: { maxSessions: options.maxSessions ?? 10 },
  });
  const app = createApp({ registry, adminToken: options.adminToken, requestLog: false });
  return { registry, app };
}

async function create(
  app: ReturnType<typeof setup>["app"],
  body?: unknown,
  headers: Record<string, string> = {},
) {
  return await app.request("/v1/sessions", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
}

describe("HTTP API: sessions", () => {
  it("POST /v1/sessions creates a session with defaults (201)", async () => {
    const { app, registry } = setup();
    const res = await create(app);
    assert.equal(res.status, 201);
    const body = await res.json();
    assert.match(body.id, /^s_/);
    assert.equal(typeof body.token, "string");
    assert.deepEqual(body.ipv4, { address: "10.0.2.2", prefixLength: 24 });
    assert.equal(body.mtu, 1500);
    assert.match(body.mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    assert.equal(body.tunnel.url, `ws://localhost/v1/sessions/${body.id}/tunnel`);
    assert.equal(res.headers.get("location"), `/v1/sessions/${body.id}`);
    assert.equal(registry.size, 1);
  });

  it("POST /v1/sessions honours ipv4, mac and mtu", async () => {
    const { app } = setup();
    const res = await create(app, {
      ipv4: { address: "192.168.7.1", prefixLength: 16 },
      mac: "02:aa:bb:cc:dd:ee",
      mtu: 9000,
    });
    assert.equal(res.status, 201);
    const body = await res.json();
    assert.deepEqual(body.ipv4, { address: "192.168.7.1", prefixLength: 16 });
    assert.equal(body.mac, "02:aa:bb:cc:dd:ee");
    assert.equal(body.mtu, 9000);
  });

  for (
    const [name, body, field] of [
      ["invalid JSON", "{not json", undefined],
      ["a wrong type", { mtu: "big" }, "mtu"],
      ["an MTU out of range", { mtu: 40 }, "mtu"],
      ["a bad address", { ipv4: { address: "10.0.2.300", prefixLength: 24 } }, "ipv4.address"],
      ["a network address", { ipv4: { address: "10.0.2.0", prefixLength: 24 } }, "ipv4.address"],
      ["a loopback address", { ipv4: { address: "127.0.0.2", prefixLength: 8 } }, "ipv4.address"],
      ["a multicast address", { ipv4: { address: "224.0.0.5", prefixLength: 4 } }, "ipv4.address"],
      ["a class E address", { ipv4: { address: "240.0.0.2", prefixLength: 24 } }, "ipv4.address"],
      ["a 0/8 address", { ipv4: { address: "0.0.2.2", prefixLength: 24 } }, "ipv4.address"],
      ["a DHCP pool out of range", { dhcp: { poolSize: 5000 } }, "dhcp.poolSize"],
      ["an unknown DHCP setting", { dhcp: { pool: 4 } }, undefined],
      [
        "a prefix out of range",
        { ipv4: { address: "10.0.2.2", prefixLength: 31 } },
        "ipv4.prefixLength",
      ],
      ["a multicast MAC", { mac: "01:00:5e:00:00:01" }, "mac"],
      ["a malformed MAC", { mac: "02:00:00:00:00" }, "mac"],
      ["an unknown field", { dchp: true }, undefined],
      ["a non-object body", [1, 2], undefined],
    ] as const
  ) {
    it(`POST /v1/sessions answers 400 with zod's issues for ${name}`, async () => {
      const { app, registry } = setup();
      const res = await create(app, body);
      assert.equal(res.status, 400);
      assert.equal(res.headers.get("content-type"), "application/problem+json");
      const p = await res.json();
      assert.equal(p.code, "EINVAL");
      assert.equal(p.status, 400);
      if (name !== "invalid JSON") {
        assert.ok(Array.isArray(p.issues) && p.issues.length > 0, JSON.stringify(p));
        if (field) {
          assert.ok(
            p.issues.some((i: { path: string[] }) => i.path.join(".") === field),
            JSON.stringify(p.issues),
          );
        }
        if (field) assert.match(p.detail, new RegExp(field.replace(".", "\\.")));
      } else {
        assert.match(p.detail, /not valid JSON/);
      }
      assert.equal(registry.size, 0, "nothing was created");
    });
  }

  it("POST /v1/sessions answers 413 for an oversized body", async () => {
    const { app } = setup();
    const res = await create(app, JSON.stringify({ pad: "x".repeat(20_000) }));
    assert.equal(res.status, 413);
    assert.equal((await res.json()).code, "ETOOLARGE");
  });

  it("POST /v1/sessions answers 429 when the session quota is full", async () => {
    const { app } = setup({ maxSessions: 1 });
    assert.equal((await create(app)).status, 201);
    const res = await create(app);
    assert.equal(res.status, 429);
    assert.equal((await res.json()).code, "ENFILE");
  });

  it("POST /v1/sessions needs the admin token when one is configured", async () => {
    const { app } = setup({ adminToken: "let-me-in" });
    assert.equal((await create(app)).status, 401);
    assert.equal((await create(app, undefined, { authorization: "Bearer wrong" })).status, 401);
    assert.equal((await create(app, undefined, { authorization: "Bearer let-me-in" })).status, 201);
  });

  it("GET /v1/sessions/:sid returns the session and its counters with its token", async () => {
    const { app } = setup();
    const { id, token } = await (await create(app)).json();
    const res = await app.request(`/v1/sessions/${id}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 200);
    const v = await res.json();
    assert.equal(v.id, id);
    assert.equal(v.tunnel.attached, false);
    assert.equal(v.counters.rxFrames, 0);
    assert.equal(typeof v.counters.drops.ethernet_truncated, "number");
  });

  it("answers 401 without a token, with a wrong token, and with another session's token", async () => {
    const { app } = setup();
    const a = await (await create(app)).json();
    const b = await (await create(app)).json();
    const noToken = await app.request(`/v1/sessions/${a.id}`);
    assert.equal(noToken.status, 401);
    assert.match(noToken.headers.get("www-authenticate") ?? "", /^Bearer/);
    for (const token of ["wrong", b.token, a.token + "x", a.token.slice(0, -1)]) {
      const res = await app.request(`/v1/sessions/${a.id}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(res.status, 401);
      assert.equal((await res.json()).code, "EUNAUTHORIZED");
    }
    const del = await app.request(`/v1/sessions/${a.id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${b.token}` },
    });
    assert.equal(del.status, 401);
  });

  it("answers 404 for an unknown session and 400 for a malformed id", async () => {
    const { app } = setup();
    const res = await app.request("/v1/sessions/s_AAAAAAAAAAAAAAAAAAAAAA", {
      headers: { authorization: "Bearer x" },
    });
    assert.equal(res.status, 404);
    assert.equal((await res.json()).code, "ENOTFOUND");
    const bad = await app.request("/v1/sessions/nope", { headers: { authorization: "Bearer x" } });
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).detail, /sid/);
  });

  it("DELETE /v1/sessions/:sid removes the session (204), then 404", async () => {
    const { app, registry } = setup();
    const { id, token } = await (await create(app)).json();
    const auth = { authorization: `Bearer ${token}` };
    assert.equal(
      (await app.request(`/v1/sessions/${id}`, { method: "DELETE", headers: auth })).status,
      204,
    );
    assert.equal(registry.size, 0);
    assert.equal((await app.request(`/v1/sessions/${id}`, { headers: auth })).status, 404);
  });

  it("the tunnel route needs a WebSocket upgrade (426) and accepts ?token=", async () => {
    const { app } = setup();
    const { id, token } = await (await create(app)).json();
    const plain = await app.request(`/v1/sessions/${id}/tunnel?token=${token}`);
    assert.equal(plain.status, 426);
    const wrong = await app.request(`/v1/sessions/${id}/tunnel?token=nope`, {
      headers: { upgrade: "websocket" },
    });
    assert.equal(wrong.status, 401);
    const noRuntime = await app.request(`/v1/sessions/${id}/tunnel?token=${token}`, {
      headers: { upgrade: "websocket" },
    });
    assert.equal(noRuntime.status, 501, "this app was built without a WebSocket upgrader");
  });

  it("unknown routes answer a problem+json 404; /healthz answers ok", async () => {
    const { app } = setup();
    const res = await app.request("/v2/nothing");
    assert.equal(res.status, 404);
    assert.equal(res.headers.get("content-type"), "application/problem+json");
    const h = await app.request("/healthz");
    assert.deepEqual(await h.json(), { status: "ok", sessions: 0 });
  });
});
