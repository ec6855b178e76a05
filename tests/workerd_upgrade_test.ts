/**
 * The workerd adapter refuses a malformed WebSocket handshake before it makes
 * a `WebSocketPair` (RFC 6455 §4.2.1, §4.4): the app answers 400 `EINVAL`
 * (426 `EUPGRADE` for a version other than 13), as the Deno and Bun adapters
 * do, instead of a 500. A fake `WebSocketPair` stands in for workerd's.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createApp } from "../src/http/app.ts";
import { upgradeWorkerdWebSocket } from "../src/http/serve_workerd.ts";
import { SessionRegistry, SystemClock } from "../src/session/mod.ts";

describe("upgradeWorkerdWebSocket", () => {
  it("answers a handshake without Sec-WebSocket-Key with 400 EINVAL and makes no pair", async () => {
    let pairs = 0;
    const g = globalThis as { WebSocketPair?: unknown };
    g.WebSocketPair = class {
      0 = {};
      1 = { accept() {} };
      constructor() {
        pairs++;
      }
    };
    const registry = new SessionRegistry({ clock: new SystemClock() });
    try {
      const app = createApp({
        registry,
        upgradeWebSocket: upgradeWorkerdWebSocket,
        requestLog: false,
      });
      const created = await (await app.request("/v1/sessions", { method: "POST" })).json();
      const headers = {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-version": "13",
        authorization: `Bearer ${created.token}`,
      };
      const res = await app.request(`/v1/sessions/${created.id}/tunnel`, { headers });
      assert.equal(res.status, 400);
      assert.equal(res.headers.get("content-type"), "application/problem+json");
      const body = await res.json();
      assert.equal(body.code, "EINVAL");
      assert.match(body.detail, /Sec-WebSocket-Key is missing/);
      const v8 = await app.request(`/v1/sessions/${created.id}/tunnel`, {
        headers: {
          ...headers,
          "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
          "sec-websocket-version": "8",
        },
      });
      assert.equal(v8.status, 426);
      assert.equal(v8.headers.get("sec-websocket-version"), "13");
      assert.equal(pairs, 0, "no WebSocketPair was made");
      assert.equal(registry.get(created.id)!.tunnelAttached, false);
    } finally {
      delete g.WebSocketPair;
      registry.close();
    }
  });
});
