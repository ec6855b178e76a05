/**
 * Cross-layer: the HTTP socket API on a real server (Deno.serve on loopback)
 * with real `fetch` and WebSocket clients. The far side of the session's
 * network is a second netisle stack (a Session at 10.0.2.15) wired to the
 * session's tunnel, so every byte crosses real TCP: handshakes, ACKs,
 * windows, Nagle, FIN and RST, on the system clock.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { serveDeno } from "../src/http/serve_deno.ts";
import { Session, SessionRegistry, SystemClock, type TunnelEndpoint } from "../src/session/mod.ts";
import { TcpServer, TcpSocket, UdpSocket } from "../src/socket/mod.ts";
import { parseIpv4Address, parseMacAddress } from "../src/wire/mod.ts";
import { upperEchoServer } from "./_peer_services.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** A tunnel endpoint that hands frames to another session (one tick later, like a wire). */
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
  peer: Session;
  registry: SessionRegistry;
  api(method: string, path: string, init?: { json?: unknown; body?: BodyInit }): Promise<Response>;
}

async function withApi(fn: (env: Env) => Promise<void>) {
  const registry = new SessionRegistry({ clock: new SystemClock() });
  const ac = new AbortController();
  let base = "";
  await new Promise<void>((resolve) => {
    serveDeno({
      registry,
      hostname: "127.0.0.1",
      port: 0,
      signal: ac.signal,
      requestLog: false,
      onListen: (url) => {
        base = url;
        resolve();
      },
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
  const api: Env["api"] = (method, path, init = {}) => {
    const headers: Record<string, string> = { authorization: `Bearer ${created.token}` };
    let body = init.body;
    if (init.json !== undefined) {
      body = JSON.stringify(init.json);
      headers["content-type"] = "application/json";
    }
    return fetch(`${base}/v1/sessions/${created.id}${path}`, { method, headers, body });
  };
  try {
    await fn({ base, sid: created.id, token: created.token, peer, registry, api });
  } finally {
    peer.close();
    registry.close();
    ac.abort();
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function readAll(sock: TcpSocket): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (;;) {
    const c = await sock.receive(65536);
    if (c === null) break;
    parts.push(c.slice());
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

async function json(res: Response, status = 200) {
  assert.equal(res.status, status, await res.clone().text());
  return await res.json();
}

async function recvText(env: Env, id: string): Promise<{ text: string; eof: boolean }> {
  const r = await env.api("POST", `/sockets/${id}/recv?timeoutMs=5000`);
  assert.equal(r.status, 200);
  return {
    text: dec(new Uint8Array(await r.arrayBuffer())),
    eof: r.headers.get("netisle-eof") === "1",
  };
}

describe("the socket API over a real server, against a second stack", () => {
  it("connect, send, recv the reply, shut down writing, read to EOF, close", async () => {
    await withApi(async (env) => {
      const server = upperEchoServer(env.peer, 7);
      const { id } = await json(
        await env.api("POST", "/sockets", { json: { protocol: "tcp" } }),
        201,
      );
      const c = await json(
        await env.api("POST", `/sockets/${id}/connect`, {
          json: { address: "10.0.2.15", port: 7, timeoutMs: 5000 },
        }),
      );
      assert.deepEqual(c.remote, { address: "10.0.2.15", port: 7 });
      assert.deepEqual(
        await json(await env.api("POST", `/sockets/${id}/send`, { body: "hello" })),
        {
          bytes: 5,
        },
      );
      assert.deepEqual(await recvText(env, id), { text: "HELLO", eof: false });
      await json(await env.api("POST", `/sockets/${id}/shutdown`, { json: { how: "write" } }));
      assert.deepEqual(await recvText(env, id), { text: "", eof: true });
      const details = await json(await env.api("GET", `/sockets/${id}`));
      assert.ok(details.tcp.rttMs !== null, "an RTT sample was taken");
      assert.equal((await env.api("DELETE", `/sockets/${id}`)).status, 204);
      server.close();
    });
  });

  it("listen and accept a connection from the peer, read its request and answer it", async () => {
    await withApi(async (env) => {
      const { id: lid } = await json(
        await env.api("POST", "/sockets", { json: { protocol: "tcp" } }),
        201,
      );
      await json(await env.api("POST", `/sockets/${lid}/bind`, { json: { port: 8080 } }));
      await json(await env.api("POST", `/sockets/${lid}/listen`, { json: {} }));
      const client = (async () => {
        const s = await TcpSocket.connect(env.peer, {
          address: "10.0.2.2",
          port: 8080,
          timeoutMs: 5000,
        });
        await s.write(enc("GET / HTTP/1.0\r\n\r\n"));
        s.shutdown("write");
        return dec(await readAll(s));
      })();
      const acc = await json(
        await env.api("POST", `/sockets/${lid}/accept`, { json: { timeoutMs: 5000 } }),
      );
      assert.deepEqual(acc.local, { address: "10.0.2.2", port: 8080 });
      let request = "";
      for (;;) {
        const r = await recvText(env, acc.id);
        if (r.eof) break;
        request += r.text;
      }
      assert.equal(request, "GET / HTTP/1.0\r\n\r\n");
      await json(
        await env.api("POST", `/sockets/${acc.id}/send`, { body: "HTTP/1.0 200 OK\r\n\r\nhi\n" }),
      );
      assert.equal((await env.api("DELETE", `/sockets/${acc.id}`)).status, 204);
      assert.equal(await client, "HTTP/1.0 200 OK\r\n\r\nhi\n");
    });
  });

  it("UDP: unconnected send and recv with the sender's headers, then connected", async () => {
    await withApi(async (env) => {
      const peerSock = UdpSocket.bind(env.peer, { port: 53 });
      const { id } = await json(
        await env.api("POST", "/sockets", { json: { protocol: "udp" } }),
        201,
      );
      await json(await env.api("POST", `/sockets/${id}/bind`, { json: { port: 5000 } }));
      await json(
        await env.api("POST", `/sockets/${id}/send?address=10.0.2.15&port=53`, { body: "query" }),
      );
      const q = await peerSock.receive({ timeoutMs: 5000 });
      assert.deepEqual([dec(q.data), q.address, q.port], ["query", "10.0.2.2", 5000]);
      peerSock.send(enc("answer"), { address: q.address, port: q.port });
      const r = await env.api("POST", `/sockets/${id}/recv?timeoutMs=5000`);
      assert.equal(dec(new Uint8Array(await r.arrayBuffer())), "answer");
      assert.equal(r.headers.get("netisle-peer-address"), "10.0.2.15");
      assert.equal(r.headers.get("netisle-peer-port"), "53");
      await json(
        await env.api("POST", `/sockets/${id}/connect`, {
          json: { address: "10.0.2.15", port: 53 },
        }),
      );
      await json(await env.api("POST", `/sockets/${id}/send`, { body: "again" }));
      assert.equal(dec((await peerSock.receive({ timeoutMs: 5000 })).data), "again");
      peerSock.close();
    });
  });

  it("a WebSocket stream carries the byte stream both ways; closing it sends FIN", async () => {
    await withApi(async (env) => {
      const server = upperEchoServer(env.peer, 7);
      const { id } = await json(
        await env.api("POST", "/sockets", { json: { protocol: "tcp" } }),
        201,
      );
      await json(
        await env.api("POST", `/sockets/${id}/connect`, {
          json: { address: "10.0.2.15", port: 7 },
        }),
      );
      const url = `${env.base.replace("http", "ws")}/v1/sessions/${env.sid}/sockets/${id}/stream` +
        `?token=${env.token}`;
      const ws = new WebSocket(url);
      ws.binaryType = "arraybuffer";
      let got = "";
      const closed = new Promise<CloseEvent>((r) => ws.onclose = r);
      ws.onmessage = (ev) => got += dec(new Uint8Array(ev.data as ArrayBuffer));
      await new Promise((r) => ws.onopen = r);
      ws.send(enc("ssh-2.0-test\r\n"));
      for (let i = 0; i < 200 && got.length < 14; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(got, "SSH-2.0-TEST\r\n");
      ws.close(1000);
      // Our FIN makes the echo server shut down too; its FIN closes... nothing: the stream is gone,
      // and the socket, still in the table, reads the end over HTTP.
      await closed;
      assert.deepEqual(await recvText(env, id), { text: "", eof: true });
      server.close();
    });
  });

  it("the peer's FIN closes the WebSocket after a large transfer arrives whole", async () => {
    await withApi(async (env) => {
      const size = 1024 * 1024;
      const payload = new Uint8Array(size);
      for (let i = 0; i < size; i++) payload[i] = (i * 7 + (i >> 10)) & 0xff;
      const server = TcpServer.listen(env.peer, { port: 9 });
      (async () => {
        const s = await server.accept();
        await s.write(payload);
        s.shutdown("write");
      })();
      const { id } = await json(
        await env.api("POST", "/sockets", { json: { protocol: "tcp" } }),
        201,
      );
      await json(
        await env.api("POST", `/sockets/${id}/connect`, {
          json: { address: "10.0.2.15", port: 9 },
        }),
      );
      const ws = new WebSocket(
        `${
          env.base.replace("http", "ws")
        }/v1/sessions/${env.sid}/sockets/${id}/stream?token=${env.token}`,
      );
      ws.binaryType = "arraybuffer";
      const parts: Uint8Array[] = [];
      ws.onmessage = (ev) => parts.push(new Uint8Array(ev.data as ArrayBuffer));
      const ev = await new Promise<CloseEvent>((r) => ws.onclose = r);
      assert.equal(ev.code, 1000);
      const got = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let o = 0;
      for (const p of parts) {
        got.set(p, o);
        o += p.length;
      }
      assert.equal(got.length, size);
      const digest = async (b: Uint8Array) =>
        new Uint8Array(await crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>));
      assert.deepEqual(await digest(got), await digest(payload));
      server.close();
    });
  });

  it("DELETE of the session resets the peer's connections and leaves nothing", async () => {
    await withApi(async (env) => {
      const server = upperEchoServer(env.peer, 7);
      const { id } = await json(
        await env.api("POST", "/sockets", { json: { protocol: "tcp" } }),
        201,
      );
      await json(
        await env.api("POST", `/sockets/${id}/connect`, {
          json: { address: "10.0.2.15", port: 7 },
        }),
      );
      const session = env.registry.get(env.sid)!;
      assert.equal(env.peer.stack.tcp.active.size, 1);
      const res = await fetch(`${env.base}/v1/sessions/${env.sid}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${env.token}` },
      });
      assert.equal(res.status, 204);
      assert.equal(session.sockets.size, 0);
      assert.equal(session.stack.tcp.active.size, 0);
      assert.equal(session.timerDeadline, undefined);
      for (let i = 0; i < 100 && env.peer.stack.tcp.active.size > 0; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(env.peer.stack.tcp.active.size, 0, "the RST reached the peer");
      server.close();
    });
  });
});
