/**
 * `NETISLE_ENGINE=deno-serve` (`engine: "deno-serve"` of `serveDeno`, the
 * default on Deno Deploy): `Deno.serve` behind the same guard as the default
 * engine, and both engines in one isolate (the default engine leaves the
 * process's global `Request` and `Response` alone).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { serveDeno } from "../src/http/serve_deno.ts";
import { SessionRegistry, SystemClock } from "../src/session/mod.ts";

const UPGRADE_NO_KEY = "GET /v1/sessions/s_AAAAAAAAAAAAAAAAAAAAAA/tunnel HTTP/1.1\r\n" +
  "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";

function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    let text = "";
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(text);
    }, 5000);
    sock.on("connect", () => sock.write(request));
    sock.on("data", (d) => {
      text += new TextDecoder().decode(d);
      if (text.includes("\r\n\r\n") && text.endsWith("}")) {
        clearTimeout(timer);
        sock.destroy();
        resolve(text);
      }
    });
    sock.on("error", () => resolve(text));
  });
}

describe("serveDeno with engine deno-serve", () => {
  it("runs beside the default engine in one isolate: both answer, globals untouched", async () => {
    const registry = new SessionRegistry({ clock: new SystemClock() });
    const ac = new AbortController();
    const urls: string[] = [];
    const globals = [globalThis.Request, globalThis.Response];
    const servers = (["netisle", "deno-serve"] as const).map((engine) =>
      serveDeno({
        registry,
        hostname: "127.0.0.1",
        port: 0,
        signal: ac.signal,
        requestLog: false,
        engine,
        onListen: (url) => urls.push(url),
      })
    );
    try {
      await new Promise<void>((r) => {
        const t = setInterval(() => {
          if (urls.length === 2) {
            clearInterval(t);
            r();
          }
        }, 5);
      });
      for (const url of urls) {
        const h = await fetch(`${url}/healthz`);
        assert.equal(h.status, 200, url);
        assert.equal((await h.json()).status, "ok");
      }
      assert.deepEqual([globalThis.Request, globalThis.Response], globals);
      assert.ok(servers[0].connections !== undefined && servers[1].connections === undefined);
    } finally {
      registry.close();
      ac.abort();
      await Promise.all(servers.map((s) => s.finished));
    }
  });

  it("serves the app behind the same guard: healthz, 400 for a malformed upgrade, the session rate limit", async () => {
    const registry = new SessionRegistry({ clock: new SystemClock() });
    const ac = new AbortController();
    let base = "";
    const server = serveDeno({
      registry,
      hostname: "127.0.0.1",
      port: 0,
      signal: ac.signal,
      requestLog: false,
      engine: "deno-serve",
      sessionsPerMinute: 1,
      onListen: (url) => base = url,
    });
    try {
      await new Promise<void>((r) => {
        const t = setInterval(() => {
          if (base) {
            clearInterval(t);
            r();
          }
        }, 5);
      });
      assert.equal(server.connections, undefined, "no connection accounting with Deno.serve");
      const h = await fetch(`${base}/healthz`);
      assert.equal(h.status, 200);
      await h.body?.cancel();
      const r = await rawExchange(server.addr.port, UPGRADE_NO_KEY);
      assert.match(r, /^HTTP\/1\.1 400 /);
      assert.match(r, /"code":"EINVAL"/);
      const a = await fetch(`${base}/v1/sessions`, { method: "POST" });
      const b = await fetch(`${base}/v1/sessions`, { method: "POST" });
      await a.body?.cancel();
      await b.body?.cancel();
      assert.deepEqual([a.status, b.status], [201, 429]);
    } finally {
      registry.close();
      ac.abort();
      await server.finished;
    }
  });
});
