/**
 * CORS and the WebSocket Origin check (src/http/cors.ts): NETISLE_CORS_ORIGINS
 * lets pages on the listed origins call the API (preflight included) and read
 * the Netisle-* headers; WebSocket upgrades from other origins answer 403;
 * without the list nothing changes. The browser's side of it runs in
 * tests/client_browser_test.ts (headless Chromium).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createApp } from "../src/http/app.ts";
import { CORS_EXPOSED_HEADERS, parseCorsOrigins } from "../src/http/cors.ts";
import { createIsolatedApp } from "../src/http/isolation/front_door.ts";
import { ManualClock, SessionRegistry } from "../src/session/mod.ts";
import type { TunnelSocket } from "../src/session/tunnel_server.ts";
import { listeningLine, readServerConfig } from "../examples/server_config.ts";

const ALLOWED = "http://app.test:5173";
const OTHER = "http://evil.test";

function app(corsOrigins?: string[]) {
  const registry = new SessionRegistry({ clock: new ManualClock(0) });
  let upgrades = 0;
  const a = createApp({
    registry,
    requestLog: false,
    corsOrigins,
    upgradeWebSocket: () => {
      upgrades++;
      const socket = {
        binaryType: "arraybuffer",
        readyState: 0,
        bufferedAmount: 0,
        send() {},
        close() {},
        addEventListener() {},
      } as unknown as TunnelSocket;
      return { socket, response: new Response(null, { status: 200 }) };
    },
  });
  return { app: a, registry, upgrades: () => upgrades };
}

function preflight(origin: string, method = "POST") {
  return new Request("http://localhost/v1/sessions", {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": method,
      "access-control-request-headers": "authorization, content-type",
    },
  });
}

describe("CORS (NETISLE_CORS_ORIGINS)", () => {
  it("answers a preflight from an allowed origin with the methods, headers and max-age", async () => {
    const res = await app([ALLOWED]).app.request(preflight(ALLOWED));
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), ALLOWED);
    assert.equal(res.headers.get("access-control-allow-methods"), "GET,HEAD,POST,DELETE");
    assert.equal(res.headers.get("access-control-allow-headers"), "Authorization,Content-Type");
    assert.equal(res.headers.get("access-control-max-age"), "600");
    assert.equal(res.headers.get("access-control-allow-credentials"), null);
    assert.match(res.headers.get("vary") ?? "", /Origin/);
  });

  it("gives a disallowed origin no Access-Control-Allow-Origin, so its browser refuses", async () => {
    const { app: a } = app([ALLOWED]);
    const pre = await a.request(preflight(OTHER));
    assert.equal(pre.headers.get("access-control-allow-origin"), null);
    const res = await a.request("/healthz", { headers: { origin: OTHER } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("access-control-allow-origin"), null);
  });

  it("puts the origin and the exposed Netisle-* headers on answers, errors included", async () => {
    const { app: a } = app([ALLOWED, "https://other.test"]);
    const created = await a.request("/v1/sessions", {
      method: "POST",
      headers: { origin: ALLOWED, "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(created.status, 201);
    assert.equal(created.headers.get("access-control-allow-origin"), ALLOWED);
    const exposed = created.headers.get("access-control-expose-headers")?.split(",") ?? [];
    assert.deepEqual(exposed, [...CORS_EXPOSED_HEADERS]);
    for (const h of ["Netisle-Eof", "Netisle-Peer-Address", "Netisle-Peer-Port"]) {
      assert.ok(exposed.includes(h), h);
    }
    const { id } = await created.json();
    const denied = await a.request(`/v1/sessions/${id}`, { headers: { origin: ALLOWED } });
    assert.equal(denied.status, 401);
    assert.equal(denied.headers.get("access-control-allow-origin"), ALLOWED);
  });

  it("with * allows any origin", async () => {
    const res = await app(["*"]).app.request(preflight(OTHER, "DELETE"));
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
  });

  it("without a list sends no CORS headers and checks no Origin, as before", async () => {
    const { app: a, upgrades } = app();
    const pre = await a.request(preflight(ALLOWED));
    assert.equal(pre.headers.get("access-control-allow-origin"), null);
    const res = await a.request("/healthz", { headers: { origin: ALLOWED } });
    assert.equal(res.headers.get("access-control-allow-origin"), null);
    assert.equal(res.headers.get("access-control-expose-headers"), null);
    const created = await (await a.request("/v1/sessions", { method: "POST" })).json();
    const ws = await a.request(`/v1/sessions/${created.id}/tunnel?token=${created.token}`, {
      headers: { upgrade: "websocket", origin: OTHER },
    });
    assert.equal(ws.status, 200);
    assert.equal(upgrades(), 1);
  });

  it("refuses WebSocket upgrades from other origins with 403 EACCES, before any upgrade", async () => {
    const { app: a, upgrades } = app([ALLOWED]);
    const created = await (await a.request("/v1/sessions", { method: "POST" })).json();
    const tunnel = `/v1/sessions/${created.id}/tunnel?token=${created.token}`;
    const refused = await a.request(tunnel, { headers: { upgrade: "websocket", origin: OTHER } });
    assert.equal(refused.status, 403);
    const p = await refused.json();
    assert.equal(p.code, "EACCES");
    assert.match(p.detail, /evil\.test/);
    assert.equal(upgrades(), 0);
    const ok = await a.request(tunnel, { headers: { upgrade: "websocket", origin: ALLOWED } });
    assert.equal(ok.status, 200, "an allowed origin upgrades");
    assert.equal(ok.headers.get("access-control-allow-origin"), null, "the 101 stays untouched");
    const cli = await a.request(tunnel, { headers: { upgrade: "websocket" } });
    assert.equal(cli.status, 200, "no Origin: not a page (CLI, SDK outside a browser)");
    assert.equal(upgrades(), 2);
  });

  it("applies to the isolated front door too", async () => {
    const { app: a, close } = createIsolatedApp({ corsOrigins: [ALLOWED] });
    try {
      const res = await a.request(preflight(ALLOWED));
      assert.equal(res.status, 204);
      assert.equal(res.headers.get("access-control-allow-origin"), ALLOWED);
    } finally {
      close();
    }
  });
});

describe("NETISLE_CORS_ORIGINS in the servers' environment", () => {
  it("parses a comma list of origins and *", () => {
    assert.deepEqual(parseCorsOrigins(" https://App.example/ , http://localhost:5173,*"), [
      "https://app.example",
      "http://localhost:5173",
      "*",
    ]);
    assert.match(parseCorsOrigins("https://a.test/path") as string, /without a path/);
    assert.match(parseCorsOrigins("not a url") as string, /"not a url" is not an origin/);
    assert.match(parseCorsOrigins(" , ") as string, /empty/);
  });

  it("reaches the config, names itself in the listening line, and warns about *", () => {
    const c = readServerConfig({ NETISLE_CORS_ORIGINS: ALLOWED });
    assert.ok(typeof c !== "string");
    assert.deepEqual(c.corsOrigins, [ALLOWED]);
    assert.match(listeningLine("http://x", "Deno", c), /CORS for http:\/\/app\.test:5173/);
    assert.doesNotMatch(listeningLine("http://x", "Deno", c), /WARNING/);
    const any = readServerConfig({ NETISLE_CORS_ORIGINS: "*" });
    assert.ok(typeof any !== "string");
    assert.match(listeningLine("http://x", "Deno", any), /WARNING: NETISLE_CORS_ORIGINS=\*/);
    assert.equal(
      readServerConfig({ NETISLE_CORS_ORIGINS: "ftp:/x y" }),
      'NETISLE_CORS_ORIGINS: "ftp:/x y" is not an origin (scheme://host[:port], or *)',
    );
    const none = readServerConfig({});
    assert.ok(typeof none !== "string" && none.corsOrigins === undefined);
  });
});
