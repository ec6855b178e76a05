/**
 * The QEMU-stream-in-WebSocket tunnel subprotocol (DESIGN.md "Tunnel wire
 * formats"): negotiation, deframing across message boundaries, batching of
 * the frames one core entry emits, a bad length closing the socket (4002)
 * while the session stays, container2wasm's `binary` alias, and the client
 * library with `framing: "qemu-stream"`.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import WsWebSocket from "ws";
import { parseMacAddress } from "../src/wire/mod.ts";
import { TunnelClient, type WebSocketConstructor } from "../tunnel/client.ts";
import {
  batchFrames,
  CLOSE_STREAM_FRAMING_ERROR,
  framingForSubprotocol,
  QEMU_STREAM_SUBPROTOCOL,
  selectTunnelSubprotocol,
} from "../src/wire/tunnel_protocol.ts";
import { encodeStreamFrames, StreamDeframer } from "../src/wire/stream_framing.ts";
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
import { sessionView } from "../src/http/session_view.ts";

/** A raw stream-framing client: records every message and every deframed frame. */
async function openStreamClient(url: string, protocols: string[]) {
  const ws = new WebSocket(url, protocols);
  ws.binaryType = "arraybuffer";
  const messages: Uint8Array[] = [];
  const frames: Uint8Array[] = [];
  const deframer = new StreamDeframer(65550, (f) => frames.push(f.slice()));
  ws.onmessage = (ev) => {
    const m = new Uint8Array(ev.data as ArrayBuffer);
    messages.push(m);
    assert.equal(deframer.push(m), undefined);
  };
  const closed = new Promise<CloseEvent>((r) => ws.onclose = r);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`WebSocket to ${url} failed`));
  });
  return { ws, messages, frames, closed };
}

describe("tunnel subprotocol negotiation (pure)", () => {
  it("selects ours over container2wasm's `binary`, and none for other offers", () => {
    assert.equal(
      selectTunnelSubprotocol(`binary, ${QEMU_STREAM_SUBPROTOCOL}`),
      "netisle.qemu-stream.v1",
    );
    assert.equal(selectTunnelSubprotocol("binary"), "binary");
    assert.equal(selectTunnelSubprotocol("chat, superchat"), undefined);
    assert.equal(selectTunnelSubprotocol(null), undefined);
    assert.equal(framingForSubprotocol("binary"), "qemu-stream");
    assert.equal(framingForSubprotocol(QEMU_STREAM_SUBPROTOCOL), "qemu-stream");
    assert.equal(framingForSubprotocol(undefined), "frame");
  });

  it("batches frames into messages within the limit, keeping order; a big frame goes alone", () => {
    const f = (n: number, tag: number) => new Uint8Array(n).fill(tag);
    const groups = batchFrames([f(1000, 1), f(1000, 2), f(3000, 3), f(10, 4)], 2100);
    assert.deepEqual(groups.map((g) => g.map((x) => x[0])), [[1, 2], [3], [4]]);
    assert.deepEqual(batchFrames([], 100), []);
  });
});

describe("tunnel with the QEMU stream subprotocol", () => {
  it("negotiates netisle.qemu-stream.v1, deframes across messages, batches replies", async () => {
    await withServer(async (base, registry) => {
      const s = await createSession(base);
      const mac = parseMacAddress(s.mac);
      const c = await openStreamClient(`${s.tunnel.url}?token=${s.token}`, [
        QEMU_STREAM_SUBPROTOCOL,
      ]);
      assert.equal(c.ws.protocol, QEMU_STREAM_SUBPROTOCOL);
      // ARP and three pings as one stream, cut into messages mid-prefix and mid-frame.
      const stream = encodeStreamFrames([
        arpRequest(),
        echoRequest(mac, 1),
        echoRequest(mac, 2),
        echoRequest(mac, 3),
      ]);
      for (const [a, b] of [[0, 2], [2, 50], [50, 51], [51, stream.length]]) {
        c.ws.send(stream.subarray(a, b));
      }
      assert.ok(
        await eventually(() =>
          c.frames.some(isArpReply) && [1, 2, 3].every((q) => c.frames.some(isEchoReply(q)))
        ),
        `got ${c.frames.length} frames in ${c.messages.length} messages`,
      );
      // The three pings completed in one message arrive in one core entry: one reply message.
      const replyMessages = c.messages.filter((m) => {
        const frames: Uint8Array[] = [];
        new StreamDeframer(65550, (f) => frames.push(f)).push(m);
        return frames.some(isEchoReply(1));
      });
      const inIt: Uint8Array[] = [];
      new StreamDeframer(65550, (f) => inIt.push(f)).push(replyMessages[0]);
      assert.ok(
        inIt.filter((f) => [1, 2, 3].some((q) => isEchoReply(q)(f))).length >= 2,
        "echo replies batched in a message",
      );
      const view = sessionView(registry.get(s.id)!);
      assert.match(view.tunnel.kind!, /qemu-stream/);
      assert.match(view.tunnel.kind!, /netisle\.qemu-stream\.v1/);
      assert.equal(view.tunnel.rejectedMessages, 0);
      c.ws.close();
      await c.closed;
    });
  });

  it("accepts container2wasm's subprotocol name `binary`", async () => {
    await withServer(async (base, registry) => {
      const s = await createSession(base);
      const c = await openStreamClient(`${s.tunnel.url}?token=${s.token}`, ["binary"]);
      assert.equal(c.ws.protocol, "binary");
      c.ws.send(encodeStreamFrames([arpRequest()]));
      assert.ok(await eventually(() => c.frames.some(isArpReply)));
      assert.match(sessionView(registry.get(s.id)!).tunnel.kind!, /subprotocol binary/);
      c.ws.close();
      await c.closed;
    });
  });

  it("a bad length closes the WebSocket with 4002 and a reason, counts it, keeps the session", async () => {
    await withServer(async (base, registry) => {
      const s = await createSession(base);
      const session = registry.get(s.id)!;
      const c = await openStreamClient(`${s.tunnel.url}?token=${s.token}`, [
        QEMU_STREAM_SUBPROTOCOL,
      ]);
      const before = session.tunnelStats.rejectedMessages;
      // A whole ARP request, then a prefix claiming 4 GiB.
      const bad = new Uint8Array([...encodeStreamFrames([arpRequest()]), 0xff, 0xff, 0xff, 0xff]);
      c.ws.send(bad);
      const ev = await c.closed;
      assert.equal(ev.code, CLOSE_STREAM_FRAMING_ERROR);
      assert.match(ev.reason, /framing error: length 4294967295 exceeds/);
      assert.equal(session.tunnelStats.rejectedMessages, before + 1);
      assert.ok(c.frames.some(isArpReply), "the whole frame before the bad prefix was delivered");
      assert.equal(registry.get(s.id), session, "the session stays");
      // A new tunnel works on the same session.
      const again = await openStreamClient(`${s.tunnel.url}?token=${s.token}`, [
        QEMU_STREAM_SUBPROTOCOL,
      ]);
      again.ws.send(encodeStreamFrames([echoRequest(parseMacAddress(s.mac), 7)]));
      assert.ok(await eventually(() => again.frames.some(isEchoReply(7))));
      again.ws.close();
      await again.closed;
    });
  });

  it("the client library with framing qemu-stream sends one message per port batch", async () => {
    await withServer(async (base, registry) => {
      const s = await createSession(base);
      const mac = parseMacAddress(s.mac);
      const port = new MemoryPort();
      const client = new TunnelClient({
        server: base,
        sessionId: s.id,
        token: s.token,
        port,
        framing: "qemu-stream",
        WebSocket: WsWebSocket as unknown as WebSocketConstructor,
        reconnect: { minDelayMs: 50, maxDelayMs: 200 },
      });
      client.start();
      const session = registry.get(s.id)!;
      assert.ok(await eventually(() => session.tunnelAttached));
      port.sink!([arpRequest(), echoRequest(mac, 1), echoRequest(mac, 2), echoRequest(mac, 3)]);
      await port.waitFor(isArpReply);
      for (const q of [1, 2, 3]) await port.waitFor(isEchoReply(q));
      assert.equal(client.stats.framesUp, 4);
      assert.equal(client.stats.messagesUp, 1, "four frames read together, one message");
      assert.ok(client.stats.messagesDown < client.stats.framesDown, JSON.stringify(client.stats));
      assert.match(session.tunnel!.description, /qemu-stream/);
      await client.close();
    });
  });
});
