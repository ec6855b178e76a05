/**
 * The tunnel CLI's own WebSocket client (tunnel/ws_client.ts) against the
 * real server: the handshake and subprotocol, masked binary messages both
 * ways (large ones too), ping and pong, the closing handshake from either
 * side, and the TunnelClient running on it.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { encodeStreamFrames, StreamDeframer } from "../src/wire/stream_framing.ts";
import { QEMU_STREAM_SUBPROTOCOL, VNET_STREAM_SUBPROTOCOL } from "../src/wire/tunnel_protocol.ts";
import { parseMacAddress } from "../src/wire/mod.ts";
import { TunnelWebSocket } from "../tunnel/ws_client.ts";
import { TunnelClient, type WebSocketConstructor } from "../tunnel/client.ts";
import {
  arpRequest,
  createSession,
  echoRequest,
  eventually,
  isArpReply,
  isEchoReply,
  MemoryPort,
  withServer,
} from "./_tunnel_test_util.ts";

type Transport = "deno" | "node";

function open(url: string, protocols?: string[], transport?: Transport) {
  const ws = new TunnelWebSocket(url, protocols, transport);
  const frames: Uint8Array[] = [];
  const closes: Array<{ code: number; wasClean: boolean }> = [];
  const deframer = new StreamDeframer(70_000, (f) => frames.push(f.slice()));
  ws.onmessage = (ev) => {
    assert.ok(ev.data instanceof ArrayBuffer);
    // Without a subprotocol a message is one frame; with the stream framing, length-prefixed.
    if (protocols === undefined) frames.push(new Uint8Array(ev.data));
    else assert.equal(deframer.push(new Uint8Array(ev.data)), undefined);
  };
  ws.onclose = (ev) => closes.push({ code: ev.code, wasClean: ev.wasClean });
  const opened = new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = (e) => reject(new Error(e.message));
  });
  return { ws, frames, closes, opened };
}

/**
 * A WebSocket echo server (Deno's own) on a free port: every message comes
 * back as it was.
 */
async function withEcho(fn: (url: string) => Promise<void>): Promise<void> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.binaryType = "arraybuffer";
    socket.onmessage = (ev) => socket.send(ev.data);
    return response;
  });
  try {
    await fn(`ws://127.0.0.1:${server.addr.port}/`);
  } finally {
    await server.shutdown();
  }
}

for (const transport of ["deno", "node"] as const) {
  describe(`TunnelWebSocket (the CLI's WebSocket client) over ${transport} sockets`, () => {
    it("receives large messages byte-exact, read straight into their buffers or across reads", async () => {
      await withEcho(async (url) => {
        const ws = new TunnelWebSocket(url, [], transport);
        const got: Uint8Array[] = [];
        ws.onmessage = (ev) => got.push(new Uint8Array(ev.data as ArrayBuffer));
        await new Promise<void>((resolve, reject) => {
          ws.onopen = () => resolve();
          ws.onerror = (e) => reject(new Error(e.message));
        });
        // Sizes around the 7- and 16-bit length forms, the direct-read threshold, a 64 KiB
        // segment and 1 MiB; several queued at once so that reads hold more than one.
        // Then a run of large ones, more than the client's pool of frame buffers holds: each
        // must go out whole before its buffer carries the next.
        const sizes = [0, 125, 126, 65535, 65536, 16 * 1024 + 1, 70_000, 1 << 20, 3];
        for (let k = 0; k < 12; k++) sizes.push(200_000 + k);
        const sent = sizes.map((n, k) => {
          const m = new Uint8Array(n);
          for (let i = 0; i < n; i++) m[i] = (i * 7 + k) & 0xff;
          return m;
        });
        for (const m of sent) ws.send(m);
        assert.ok(await eventually(() => got.length === sent.length, 10_000));
        for (let k = 0; k < sent.length; k++) assert.deepEqual(got[k], sent[k], `message ${k}`);
        // The EventTarget shape (the SDK's streams) and a message built with its first byte.
        const heard: Uint8Array[] = [];
        const listener = (ev: { data: ArrayBuffer | string }) =>
          heard.push(new Uint8Array(ev.data as ArrayBuffer));
        ws.addEventListener("message", listener);
        ws.sendWithFirstByte(0x42, sent[6]);
        assert.ok(await eventually(() => heard.length === 1, 10_000));
        assert.equal(heard[0][0], 0x42);
        assert.deepEqual(heard[0].subarray(1), sent[6]);
        assert.deepEqual(got[got.length - 1], heard[0], "the on… property heard it too");
        // A message its caller writes into the frame (the tunnel's batches), small and large:
        // the parts may be reused once fill returned.
        for (const len of [5, 100_000]) {
          const part = sent[7].subarray(0, len);
          ws.sendFilled(len + 2, (out) => {
            assert.equal(out.length, len + 2);
            out[0] = 0xa1;
            out.set(part, 1);
            out[len + 1] = 0xa2;
          });
          assert.ok(await eventually(() => heard.length === (len === 5 ? 2 : 3), 10_000));
          const m = heard[heard.length - 1];
          assert.deepEqual([m[0], m[len + 1], m.length], [0xa1, 0xa2, len + 2]);
          assert.deepEqual(m.subarray(1, len + 1), part);
        }
        ws.removeEventListener("message", listener);
        ws.send(sent[1]);
        assert.ok(await eventually(() => got.length === sent.length + 4));
        assert.equal(heard.length, 3, "a removed listener hears no more");
        const closed = new Promise<number>((r) => (ws.onclose = (ev) => r(ev.code)));
        ws.close(1000);
        assert.equal(await closed, 1000);
      });
    });

    it("reports a refused connection as an error, then a close", async () => {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (l.addr as Deno.NetAddr).port;
      l.close();
      const ws = new TunnelWebSocket(`ws://127.0.0.1:${port}/`, [], transport);
      const errors: string[] = [];
      ws.onerror = (e) => errors.push(e.message);
      const code = await new Promise<number>((r) => (ws.onclose = (ev) => r(ev.code)));
      assert.equal(code, 1006);
      assert.equal(errors.length, 1);
      assert.match(errors[0], /refused/i);
    });

    it("negotiates the subprotocol and carries masked binary messages both ways", async () => {
      await withServer(async (base) => {
        const s = await createSession(base);
        const mac = parseMacAddress(s.mac);
        const c = open(`${s.tunnel.url}?token=${s.token}`, [QEMU_STREAM_SUBPROTOCOL], transport);
        await c.opened;
        assert.equal(c.ws.protocol, QEMU_STREAM_SUBPROTOCOL);
        assert.equal(c.ws.readyState, 1);
        // A message of 70 kB (a 64-bit length) with a large ping inside, and a small one.
        c.ws.send(encodeStreamFrames([arpRequest(), echoRequest(mac, 1, 1400)]));
        c.ws.send(encodeStreamFrames([echoRequest(mac, 2, 1400)]));
        assert.ok(
          await eventually(() =>
            c.frames.some(isArpReply) && [1, 2].every((q) => c.frames.some(isEchoReply(q)))
          ),
        );
        let pongs = 0;
        c.ws.on("pong", () => pongs++);
        c.ws.ping();
        assert.ok(await eventually(() => pongs === 1));
        c.ws.close(1000, "done");
        assert.ok(await eventually(() => c.closes.length === 1));
        assert.deepEqual(c.closes, [{ code: 1000, wasClean: true }]);
        assert.equal(c.ws.readyState, 3);
        assert.throws(() => c.ws.send(new Uint8Array(1)), /not open/);
      });
    });

    it("reports the server's close code (a newer tunnel replaced it: 4000)", async () => {
      await withServer(async (base) => {
        const s = await createSession(base);
        const a = open(`${s.tunnel.url}?token=${s.token}`, undefined, transport);
        await a.opened;
        assert.equal(a.ws.protocol, "");
        const b = open(`${s.tunnel.url}?token=${s.token}`, undefined, transport);
        await b.opened;
        assert.ok(await eventually(() => a.closes.length === 1));
        assert.equal(a.closes[0].code, 4000);
        b.ws.terminate();
        assert.ok(await eventually(() => b.closes.length === 1));
        assert.deepEqual(b.closes[0], { code: 1006, wasClean: false });
      });
    });

    it("fails the handshake of a path that is no tunnel", async () => {
      await withServer(async (base) => {
        const c = open(
          `${base.replace("http", "ws")}/v1/sessions/s_nope/tunnel?token=x`,
          undefined,
          transport,
        );
        await assert.rejects(c.opened, /instead of 101/);
      });
    });

    it("runs the TunnelClient with the vnet stream", async () => {
      await withServer(async (base, registry) => {
        const s = await createSession(base);
        const mac = parseMacAddress(s.mac);
        const port = new (class extends MemoryPort {
          setVnetPassthrough(on: boolean): boolean {
            return on;
          }
        })();
        const client = new TunnelClient({
          server: base,
          sessionId: s.id,
          token: s.token,
          port,
          framing: "vnet-stream",
          WebSocket: class extends TunnelWebSocket {
            constructor(url: string, protocols?: string | string[]) {
              super(url, protocols, transport);
            }
          } as unknown as WebSocketConstructor,
          keepalive: { intervalMs: 50, timeoutMs: 1000 },
        });
        client.start();
        const session = registry.get(s.id)!;
        assert.ok(await eventually(() => session.tunnelAttached && client.state === "open"));
        assert.equal(client.activeFraming, "vnet-stream");
        const rec = (f: Uint8Array) => {
          const r = new Uint8Array(10 + f.length);
          r.set(f, 10);
          return r;
        };
        port.sink!([rec(arpRequest()), rec(echoRequest(mac, 5))]);
        await port.waitFor((r) => isEchoReply(5)(r.subarray(10)));
        await new Promise((r) => setTimeout(r, 200)); // a few keepalive rounds
        assert.equal(client.stats.keepaliveTimeouts, 0);
        assert.match(session.tunnel!.description, new RegExp(VNET_STREAM_SUBPROTOCOL));
        await client.close();
      });
    });
  });
}
