/**
 * Share links on a real server (Deno, loopback) with real clients (`fetch`,
 * the `ws` package), no root: the session's tunnelled side is a second stack
 * at 10.0.2.15 running tests/_http_peer.ts on port 80.
 *
 * Creation, listing and revocation; path-based links (prefix stripped, the
 * 308 to the trailing slash) and host-based ones; bodies streamed both ways
 * byte-exact (Content-Length, chunked, a streamed upload); X-Forwarded-*;
 * hop-by-hop fields dropped; WebSocket upgrades relayed; unknown, malformed,
 * revoked and expired keys answer one identical 404; revoking cuts a
 * WebSocket in flight; limits; neither the key nor the token in a link's
 * path beyond the key, a listing or a log line.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import WebSocket from "ws";
import { serveDeno } from "../src/http/serve_deno.ts";
import type { RequestLogEntry } from "../src/http/request_log.ts";
import type { ShareOptions } from "../src/http/share/share_routes.ts";
import {
  ManualClock,
  Session,
  SessionRegistry,
  SystemClock,
  type TunnelEndpoint,
} from "../src/session/mod.ts";
import { parseIpv4Address, parseMacAddress } from "../src/wire/mod.ts";
import { httpPeer, patternByte } from "./_http_peer.ts";

function wireTo(other: Session): TunnelEndpoint {
  return {
    description: "test wire",
    send: (frames) => setTimeout(() => other.input(frames.map((f) => f.slice())), 0),
    close: () => {},
  };
}

interface Env {
  base: string;
  sid: string;
  token: string;
  clock: ManualClock;
  log: RequestLogEntry[];
  session: Session;
  api(method: string, path: string, json?: unknown): Promise<Response>;
}

async function withServer(shares: ShareOptions, fn: (env: Env) => Promise<void>) {
  const registry = new SessionRegistry({ clock: new SystemClock() });
  const clock = new ManualClock(0);
  const log: RequestLogEntry[] = [];
  const ac = new AbortController();
  const base = await new Promise<string>((resolve) => {
    serveDeno({
      registry,
      hostname: "127.0.0.1",
      port: 0,
      signal: ac.signal,
      clock,
      requestLog: (e) => log.push(e),
      shares,
      onListen: resolve,
    });
  });
  const created = await (await fetch(`${base}/v1/sessions`, { method: "POST" })).json();
  const session = registry.get(created.id)!;
  const peer = new Session({
    id: "s_peer",
    token: "peer",
    clock: new SystemClock(),
    stack: {
      mac: parseMacAddress("52:54:00:12:34:56"),
      ipv4: { address: parseIpv4Address("10.0.2.15"), prefixLength: 24 },
      mtu: 1500,
    },
  });
  session.attachTunnel(wireTo(peer));
  peer.attachTunnel(wireTo(session));
  httpPeer(peer, 80);
  const api: Env["api"] = (method, path, json) =>
    fetch(`${base}/v1/sessions/${created.id}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${created.token}`,
        ...(json !== undefined ? { "content-type": "application/json" } : {}),
      },
      body: json !== undefined ? JSON.stringify(json) : undefined,
    });
  try {
    await fn({ base, sid: created.id, token: created.token, clock, log, session, api });
  } finally {
    peer.close();
    registry.close();
    ac.abort();
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function createShare(env: Env, body: Record<string, unknown> = {}) {
  const r = await env.api("POST", "/shares", { address: "10.0.2.15", port: 80, ...body });
  assert.equal(r.status, 201, await r.clone().text());
  return await r.json();
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("share links (path-based)", () => {
  it("creates a link to a server in the session and proxies pages, bodies and headers", async () => {
    await withServer({}, async (env) => {
      const s = await createShare(env, { name: "preview", ttlSeconds: 600 });
      assert.match(s.url, new RegExp(`^${env.base}/share/[a-z2-7]{34}/$`));
      assert.ok(!s.url.includes(env.token), "the token is not in the link");
      assert.match(s.id, /^sh_[a-z2-7]{8}$/);
      assert.equal(s.name, "preview");
      assert.equal(Date.parse(s.expiresAt) - Date.parse(s.createdAt), 600_000);

      const page = await fetch(s.url);
      assert.equal(page.status, 200);
      assert.equal(await page.text(), "<!doctype html><title>peer</title>hi");
      assert.equal(page.headers.get("x-kept"), "yes");
      assert.equal(
        page.headers.get("x-hop"),
        null,
        "a field the Connection field names is dropped",
      );

      const h = await (await fetch(`${s.url}headers?q=1`, { headers: { "x-custom": "v" } })).json();
      const key = new URL(s.url).pathname.split("/")[2];
      assert.equal(h.target, "/headers?q=1", "the prefix is stripped");
      assert.equal(h.headers["x-custom"], "v");
      assert.equal(h.headers["x-forwarded-prefix"], `/share/${key}`);
      assert.equal(h.headers["x-forwarded-proto"], "http");
      assert.equal(h.headers["x-forwarded-host"], new URL(env.base).host);
      assert.equal(h.headers["x-forwarded-for"], "127.0.0.1");
      assert.equal(h.headers.connection, "close");

      const n = 8 * 1024 * 1024 + 3;
      const big = new Uint8Array(await (await fetch(`${s.url}bytes?n=${n}`)).arrayBuffer());
      const want = new Uint8Array(n);
      for (let i = 0; i < n; i++) want[i] = patternByte(i);
      assert.equal(sha(big), sha(want), "8 MiB byte-exact");
      const head = await fetch(`${s.url}bytes?n=1234`, { method: "HEAD" });
      assert.equal(head.headers.get("content-length"), "1234");
      assert.equal((await head.arrayBuffer()).byteLength, 0);

      assert.equal(await (await fetch(`${s.url}chunked`)).text(), "hello world");

      // A streamed upload without a length goes chunked to the target, and comes back.
      const up = new Uint8Array(1024 * 1024 + 17).map((_, i) => (i * 7) % 256);
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          for (let o = 0; o < up.length; o += 100_000) c.enqueue(up.slice(o, o + 100_000));
          c.close();
        },
      });
      const echoed = await fetch(`${s.url}echo`, {
        method: "POST",
        body,
        // @ts-ignore: duplex is needed for a stream body (fetch standard)
        duplex: "half",
      });
      assert.equal(sha(new Uint8Array(await echoed.arrayBuffer())), sha(up));

      const noSlash = await fetch(s.url.slice(0, -1), { redirect: "manual" });
      assert.equal(noSlash.status, 308);
      assert.equal(new URL(noSlash.headers.get("location")!, env.base).href, s.url);

      const list = await (await env.api("GET", "/shares")).json();
      assert.equal(list.shares.length, 1);
      assert.equal(list.shares[0].id, s.id);
      assert.equal(list.shares[0].requests, 6);
      assert.ok(!JSON.stringify(list).includes(key), "the listing never shows the key");

      const lines = env.log.filter((e) => e.route === "/share/:key/*");
      assert.ok(lines.length >= 7, "share requests are logged under their pattern");
      assert.ok(!JSON.stringify(env.log).includes(key), "no log entry carries the key");
      assert.ok(!JSON.stringify(env.log).includes(env.token), "nor the token");
      assert.equal(env.session.sockets.size, 0, "every proxied connection was closed");
    });
  });

  it("relays a WebSocket both ways, and revoking the link cuts it", async () => {
    await withServer({}, async (env) => {
      const s = await createShare(env);
      const ws = new WebSocket(s.url.replace(/^http/, "ws") + "ws", ["chat"]);
      const messages: string[] = [];
      const closed = new Promise<number>((r) => ws.on("close", (code) => r(code)));
      await new Promise<void>((resolve, reject) => {
        ws.on("open", () => resolve());
        ws.on("error", reject);
      });
      assert.equal(ws.protocol, "chat", "the target's subprotocol reaches the browser");
      const next = () => new Promise<string>((r) => ws.once("message", (d) => r(String(d))));
      ws.send("hello");
      messages.push(await next());
      const bin = new Uint8Array(200_000).map((_, i) => i % 256);
      const binBack = new Promise<Uint8Array>((r) =>
        ws.once("message", (d) => r(new Uint8Array(d as Buffer)))
      );
      ws.send(bin);
      assert.equal(sha(await binBack), sha(bin), "a 200 kB binary message byte-exact");
      assert.deepEqual(messages, ["hello"]);
      assert.equal(env.session.sockets.size, 1, "the relay is a socket of the session");
      assert.equal((await env.api("DELETE", `/shares/${s.id}`)).status, 204);
      assert.equal(await closed, 1001);
      const after = await fetch(s.url);
      assert.equal(after.status, 404);
      await after.body?.cancel();
    });
  });

  it("unknown, malformed, revoked and expired keys answer the same 404", async () => {
    await withServer({}, async (env) => {
      const a = await createShare(env, { ttlSeconds: 5 });
      const b = await createShare(env);
      assert.equal((await env.api("DELETE", `/shares/${b.id}`)).status, 204);
      assert.equal((await env.api("DELETE", `/shares/${b.id}`)).status, 404);
      assert.equal((await fetch(a.url)).status, 200);
      env.clock.advance(5000);
      const bodies = new Set<string>();
      for (
        const url of [
          a.url,
          b.url,
          `${env.base}/share/${"a".repeat(34)}/`,
          `${env.base}/share/x/`,
          `${env.base}/share/${new URL(a.url).pathname.split("/")[2].toUpperCase().slice(0, 33)}/`,
        ]
      ) {
        const r = await fetch(url);
        assert.equal(r.status, 404, url);
        bodies.add(await r.text());
      }
      assert.equal(bodies.size, 1, "one answer for every kind of bad key");
      assert.deepEqual((await (await env.api("GET", "/shares")).json()).shares, []);
    });
  });

  it("limits and validation: shares per session, targets on the session's network only", async () => {
    await withServer({ maxPerSession: 2 }, async (env) => {
      await createShare(env);
      await createShare(env);
      const third = await env.api("POST", "/shares", { address: "10.0.2.15", port: 80 });
      assert.equal(third.status, 429);
      assert.equal((await third.json()).code, "EMFILE");
      for (const address of ["8.8.8.8", "10.0.2.2", "10.0.2.255"]) {
        const r = await env.api("POST", "/shares", { address, port: 80 });
        assert.equal(r.status, 400, address);
        await r.body?.cancel();
      }
      const refused = await createShareAt(env, 81);
      assert.equal(refused, 502, "a port nobody listens on: 502");
      const noAuth = await fetch(`${env.base}/v1/sessions/${env.sid}/shares`);
      assert.equal(noAuth.status, 401);
      await noAuth.body?.cancel();
    });
  });
});

async function createShareAt(env: Env, port: number): Promise<number> {
  const list = await (await env.api("GET", "/shares")).json();
  for (const s of list.shares) await env.api("DELETE", `/shares/${s.id}`);
  const s = await createShare(env, { port });
  const r = await fetch(s.url);
  await r.body?.cancel();
  return r.status;
}

describe("share links (host-based, NETISLE_SHARE_DOMAIN)", () => {
  it("links are <key>.<domain>; any path on that host goes to the share, others to the API", async () => {
    await withServer({ domain: "share.test" }, async (env) => {
      const s = await createShare(env);
      const u = new URL(s.url);
      assert.match(u.hostname, /^[a-z2-7]{34}\.share\.test$/);
      assert.equal(u.protocol, "http:");
      const port = new URL(env.base).port;
      const viaHost = (path: string, host = `${u.hostname}:${port}`) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          // node:http sets the Host field as given (fetch may not).
          import("node:http").then((http) => {
            const req = http.request(
              { host: "127.0.0.1", port: Number(port), path, headers: { host } },
              (res) => {
                let body = "";
                res.on("data", (d) => body += d);
                res.on("end", () => resolve({ status: res.statusCode!, body }));
              },
            );
            req.on("error", reject);
            req.end();
          });
        });
      const h = await viaHost("/headers");
      assert.equal(h.status, 200);
      const j = JSON.parse(h.body);
      assert.equal(j.target, "/headers");
      assert.equal(j.headers["x-forwarded-prefix"], undefined);
      assert.equal(j.headers["x-forwarded-host"], `${u.hostname}:${port}`);
      // Paths that are the API's elsewhere are the app's on a share host.
      assert.equal((await viaHost("/v1/sessions")).status, 404);
      assert.equal((await viaHost("/healthz", `${"b".repeat(34)}.share.test`)).status, 404);
      assert.equal((await viaHost("/healthz", `localhost:${port}`)).status, 200);
      const key = u.hostname.split(".")[0];
      assert.equal(
        (await viaHost(`/share/${key}/headers`, `localhost:${port}`)).status,
        404,
        "with a share domain, links never answer on the API's origin",
      );
      assert.ok(env.log.some((e) => e.route === "(share host)"));
      assert.ok(!JSON.stringify(env.log).includes(u.hostname.split(".")[0]));
    });
  });
});
