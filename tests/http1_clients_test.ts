/**
 * The Deno server's HTTP/1.1 engine with real clients on loopback (curl as
 * its users run it, and raw sockets for what curl no longer does): keep-alive
 * reuse, HTTP/1.0, chunked uploads, Expect: 100-continue, pipelined requests,
 * large bodies byte-exact (sha256), a streamed (chunked) download, smuggling
 * attempts refused on the wire, and the real app's routes.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { type DenoServer, serveDeno, serveDenoFetch } from "../src/http/serve_deno.ts";
import { SessionRegistry, SystemClock } from "../src/session/mod.ts";

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The test app: echoes what the engine handed it. */
async function handler(req: Request): Promise<Response> {
  const url = new URL(req.url);
  if (url.pathname === "/echo") {
    return Response.json({
      method: req.method,
      path: url.pathname + url.search,
      host: req.headers.get("host"),
      te: req.headers.get("transfer-encoding"),
    });
  }
  if (url.pathname === "/upload") {
    const body = new Uint8Array(await req.arrayBuffer());
    return Response.json({ bytes: body.length, sha256: sha256(body) });
  }
  if (url.pathname === "/stream") {
    const n = Number(url.searchParams.get("n") ?? 10);
    let i = 0;
    return new Response(
      new ReadableStream<Uint8Array>({
        async pull(c) {
          // A macrotask between chunks: the body is not all there at once.
          await new Promise((r) => setTimeout(r, 0));
          if (i === n) return c.close();
          c.enqueue(new Uint8Array(1000).fill(i++ % 256));
        },
      }, { highWaterMark: 0 }),
      { headers: { "content-type": "application/octet-stream" } },
    );
  }
  return new Response("not found", { status: 404 });
}

/** Runs curl; resolves with its exit code, stdout (bytes) and stderr (the -v trace). */
function curl(
  args: string[],
  input?: Uint8Array,
): Promise<{ code: number; out: Uint8Array; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn("curl", ["-sS", ...args], { stdio: ["pipe", "pipe", "pipe"] });
    const out: Uint8Array[] = [];
    let err = "";
    p.stdout.on("data", (d: Uint8Array) => out.push(d));
    p.stderr.on("data", (d: Uint8Array) => err += new TextDecoder().decode(d));
    p.on("error", reject);
    p.on("close", (code: number) => {
      const total = out.reduce((n, c) => n + c.length, 0);
      const all = new Uint8Array(total);
      let at = 0;
      for (const c of out) {
        all.set(c, at);
        at += c.length;
      }
      resolve({ code, out: all, err });
    });
    if (input) p.stdin.end(input);
    else p.stdin.end();
  });
}

/** Writes `request` on a new connection; resolves with everything read until the server closes (or 5 s). */
function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    let text = "";
    const timer = setTimeout(() => s.destroy(), 5000);
    s.on("connect", () => s.write(request));
    s.on("data", (d) => text += new TextDecoder().decode(d));
    const done = () => {
      clearTimeout(timer);
      resolve(text);
    };
    s.on("close", done);
    s.on("error", () => {});
  });
}

describe("the HTTP/1.1 engine with real clients", () => {
  let server: DenoServer;
  let base = "";
  const ac = new AbortController();
  before(() => {
    server = serveDenoFetch(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: (u) => base = u },
      () => handler,
    );
  });
  after(async () => {
    ac.abort();
    await server.finished;
  });

  it("curl reuses one keep-alive connection for several requests", async () => {
    const r = await curl(["-v", `${base}/echo?a=1`, `${base}/echo?a=2`, `${base}/echo?a=3`]);
    assert.equal(r.code, 0, r.err);
    const text = new TextDecoder().decode(r.out);
    assert.equal(text.match(/"method":"GET"/g)?.length, 3);
    assert.match(text, /"path":"\/echo\?a=3"/);
    assert.equal(r.err.match(/Re-using existing connection/g)?.length, 2, r.err);
  });

  it("curl -0 (HTTP/1.0): answered, then the server closes the connection", async () => {
    const r = await curl(["-v", "-0", `${base}/echo`]);
    assert.equal(r.code, 0, r.err);
    assert.match(new TextDecoder().decode(r.out), /"method":"GET"/);
    assert.match(r.err, /> GET \/echo HTTP\/1\.0/);
    assert.match(r.err, /< connection: close/i);
  });

  it("a chunked upload of 3 MiB arrives byte-exact", async () => {
    const body = new Uint8Array(3 * 1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 10)) & 0xff;
    const r = await curl([
      "-H",
      "Transfer-Encoding: chunked",
      "-H",
      "Content-Type: application/octet-stream",
      "--data-binary",
      "@-",
      `${base}/upload`,
    ], body);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(r.out)), {
      bytes: body.length,
      sha256: sha256(body),
    });
  });

  it("Expect: 100-continue: curl gets 100 Continue before it sends the body", async () => {
    const body = new Uint8Array(2 * 1024 * 1024).fill(0x61);
    const r = await curl([
      "-v",
      "-H",
      "Expect: 100-continue",
      "--data-binary",
      "@-",
      `${base}/upload`,
    ], body);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /< HTTP\/1\.1 100 Continue/);
    assert.match(r.err, /< HTTP\/1\.1 200 OK/);
    assert.equal(JSON.parse(new TextDecoder().decode(r.out)).sha256, sha256(body));
  });

  it("a streamed body reaches curl whole, in chunks", async () => {
    const r = await curl(["-v", `${base}/stream?n=50`]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /< transfer-encoding: chunked/i);
    assert.equal(r.out.length, 50_000);
    assert.equal(r.out[49_999], 49);
  });

  it("pipelined requests are answered in order on one connection (RFC 9112 §9.3.2)", async () => {
    const text = await raw(
      server.addr.port,
      "GET /echo?n=1 HTTP/1.1\r\nHost: a\r\n\r\n" +
        "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" +
        "GET /echo?n=3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    const statuses = text.match(/HTTP\/1\.1 \d{3}/g);
    assert.deepEqual(statuses, ["HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 200"]);
    const n1 = text.indexOf('"path":"/echo?n=1"');
    const up = text.indexOf('"bytes":3');
    const n3 = text.indexOf('"path":"/echo?n=3"');
    assert.ok(n1 > 0 && up > n1 && n3 > up, text);
  });

  it("request smuggling on the wire: both framings, or two lengths, get 400 and a close (RFC 9112 §6.3)", async () => {
    const both = await raw(
      server.addr.port,
      "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
        "0\r\n\r\nGET /echo HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert.match(both, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.equal(both.match(/HTTP\/1\.1/g)?.length, 1, "nothing after the refusal is answered");
    const two = await raw(
      server.addr.port,
      "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc",
    );
    assert.match(two, /^HTTP\/1\.1 400 Bad Request\r\n.*more than one Content-Length/s);
  });

  it("the real app: healthz, sessions and the socket API over the engine", async () => {
    const registry = new SessionRegistry({ clock: new SystemClock() });
    const stop = new AbortController();
    let url = "";
    const app = serveDeno({
      registry,
      hostname: "127.0.0.1",
      port: 0,
      requestLog: false,
      signal: stop.signal,
      onListen: (u) => url = u,
    });
    try {
      const h = await curl(["-v", `${url}/healthz`, `${url}/healthz`]);
      assert.equal(h.code, 0, h.err);
      assert.match(new TextDecoder().decode(h.out), /^\{"status":"ok".*\}\{"status":"ok"/);
      const s = JSON.parse(
        new TextDecoder().decode((await curl(["-X", "POST", `${url}/v1/sessions`])).out),
      );
      assert.match(s.id, /^s_/);
      const sock = JSON.parse(new TextDecoder().decode(
        (await curl([
          "-H",
          `Authorization: Bearer ${s.token}`,
          "-d",
          '{"protocol":"udp"}',
          `${url}/v1/sessions/${s.id}/sockets`,
        ])).out,
      ));
      assert.equal(sock.protocol, "udp");
    } finally {
      registry.close();
      stop.abort();
      await app.finished;
    }
  });
});
