/**
 * Keepalives on both sides of the tunnel. Client: pings every interval, and
 * a pong that does not come back in time terminates the socket and
 * reconnects (against a `ws` server that never answers pings, and through a
 * TCP proxy that stops forwarding, where the session survives). Server: Deno's
 * `idleTimeout` detaches a peer that does not answer pings; the session stays.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import WsWebSocket, { WebSocketServer } from "ws";
import { parseMacAddress } from "../src/wire/mod.ts";
import { TunnelClient, type WebSocketConstructor } from "../tunnel/client.ts";
import { startKeepalive } from "../tunnel/keepalive.ts";
import {
  arpRequest,
  createSession,
  echoRequest,
  eventually,
  isEchoReply,
  MemoryPort,
  withServer,
} from "./_tunnel_test_util.ts";

const WS = WsWebSocket as unknown as WebSocketConstructor;

/** A `ws` server that counts connections; `autoPong: false` makes it a dead peer. */
async function wsServer(autoPong: boolean) {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, autoPong });
  await new Promise((r) => wss.once("listening", r));
  let connections = 0;
  wss.on("connection", () => connections++);
  const port = (wss.address() as AddressInfo).port;
  return {
    base: `http://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    },
  };
}

/** A TCP proxy whose existing connections can be frozen (bytes are held, sockets stay open). */
async function pausableProxy(target: string) {
  const t = new URL(target);
  const live: Array<{ a: Socket; b: Socket }> = [];
  const server: Server = createServer((a) => {
    const b = new (a.constructor as typeof Socket)();
    b.connect(Number(t.port), t.hostname);
    a.pipe(b);
    b.pipe(a);
    const onErr = () => {
      a.destroy();
      b.destroy();
    };
    a.on("error", onErr);
    b.on("error", onErr);
    live.push({ a, b });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    base: `http://127.0.0.1:${port}`,
    /** Freezes every current connection: nothing passes either way any more. */
    freeze() {
      for (const { a, b } of live.splice(0)) {
        a.unpipe(b);
        b.unpipe(a);
        a.pause();
        b.pause();
      }
    },
    close: async () => {
      for (const { a, b } of live) {
        a.destroy();
        b.destroy();
      }
      server.close();
      await new Promise((r) => setTimeout(r, 10));
    },
  };
}

describe("tunnel keepalive", () => {
  it("startKeepalive rejects a non-positive timing", () => {
    const fake = { ping() {}, on() {}, off() {} };
    assert.throws(
      () => startKeepalive(fake, { intervalMs: 0, timeoutMs: 1 }, () => {}),
      RangeError,
    );
  });

  it("the client terminates and reconnects when the server stops answering pings", async () => {
    const srv = await wsServer(false);
    const reasons: string[] = [];
    const client = new TunnelClient({
      server: srv.base,
      sessionId: "s_dead",
      token: "t",
      port: new MemoryPort(),
      WebSocket: WS,
      reconnect: { minDelayMs: 20, maxDelayMs: 50 },
      keepalive: { intervalMs: 100, timeoutMs: 150 },
      onState: (st, why) => reasons.push(`${st}: ${why ?? ""}`),
    });
    try {
      client.start();
      assert.ok(await eventually(() => srv.connections >= 2, 5000), reasons.join("\n"));
      assert.ok(client.stats.keepaliveTimeouts >= 1);
      assert.ok(
        reasons.some((r) => /^waiting: keepalive: no pong within 0.15 s/.test(r)),
        reasons.join("\n"),
      );
    } finally {
      await client.close();
      await srv.close();
    }
  });

  it("a server that answers pings keeps the same connection", async () => {
    const srv = await wsServer(true);
    const client = new TunnelClient({
      server: srv.base,
      sessionId: "s_alive",
      token: "t",
      port: new MemoryPort(),
      WebSocket: WS,
      reconnect: { minDelayMs: 20, maxDelayMs: 50 },
      keepalive: { intervalMs: 50, timeoutMs: 400 },
    });
    try {
      client.start();
      assert.ok(await eventually(() => client.state === "open"));
      await new Promise((r) => setTimeout(r, 600)); // a dozen pings, each answered
      assert.equal(srv.connections, 1);
      assert.equal(client.stats.keepaliveTimeouts, 0);
      assert.equal(client.state, "open");
    } finally {
      await client.close();
      await srv.close();
    }
  });

  it("through a frozen TCP path the client reconnects and the session carries on", async () => {
    await withServer(async (base, registry) => {
      const s = await createSession(base);
      const proxy = await pausableProxy(base);
      const port = new MemoryPort();
      const client = new TunnelClient({
        server: proxy.base,
        sessionId: s.id,
        token: s.token,
        port,
        WebSocket: WS,
        reconnect: { minDelayMs: 20, maxDelayMs: 100 },
        keepalive: { intervalMs: 100, timeoutMs: 200 },
      });
      try {
        client.start();
        const session = registry.get(s.id)!;
        const mac = parseMacAddress(s.mac);
        assert.ok(await eventually(() => client.state === "open"));
        port.sink!([arpRequest(), echoRequest(mac, 1)]);
        await port.waitFor(isEchoReply(1));
        proxy.freeze();
        assert.ok(await eventually(() => client.stats.connects >= 2, 5000), client.state);
        assert.equal(client.stats.keepaliveTimeouts, 1);
        assert.ok(await eventually(() => client.state === "open"));
        port.sink!([echoRequest(mac, 2)]);
        await port.waitFor(isEchoReply(2));
        assert.equal(registry.get(s.id), session, "the same session");
      } finally {
        await client.close();
        await proxy.close();
      }
    });
  });

  it("the server detaches a tunnel peer that does not answer pings; the session stays", async () => {
    await withServer(async (base, registry) => {
      const s = await createSession(base);
      const session = registry.get(s.id)!;
      const peer = new WsWebSocket(`${s.tunnel.url}?token=${s.token}`, { autoPong: false });
      const closed = new Promise<number>((r) => peer.on("close", (code) => r(code)));
      await new Promise((r) => peer.once("open", r));
      assert.ok(await eventually(() => session.tunnelAttached));
      assert.ok(await eventually(() => !session.tunnelAttached, 8000), "detached after idle");
      assert.equal(registry.get(s.id), session);
      await closed;
      peer.terminate();
    }, { idleTimeoutSeconds: 1 });
  });
});
