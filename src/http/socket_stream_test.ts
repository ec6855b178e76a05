import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { advance, SessionPeer, settle } from "../socket/_session_peer_test_util.ts";
import type { TcpSocketEntry } from "../socket/socket_entry.ts";
import { TcpFlags } from "../wire/mod.ts";
import { bufferCost } from "../stack/session_quota.ts";
import type { TunnelSocket } from "../session/tunnel_server.ts";
import { assertProblem, socketApi } from "./_socket_api_test_util.ts";
import {
  STREAM_CLOSE_DELETED,
  STREAM_CLOSE_EOF,
  STREAM_CLOSE_ERROR,
  STREAM_CLOSE_TOO_MUCH,
} from "./socket_stream.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** The server side of a WebSocket, driven by the test as the client would. */
class FakeWebSocket implements TunnelSocket {
  binaryType = "blob";
  readyState = 1;
  bufferedAmount = 0;
  sent: Uint8Array[] = [];
  closedWith: { code?: number; reason?: string } | undefined;
  #listeners = new Map<string, Array<(ev: { data: unknown }) => void>>();

  send(data: Uint8Array | ArrayBuffer): void {
    const b = data instanceof ArrayBuffer ? new Uint8Array(data) : data;
    this.sent.push(b.slice());
  }
  /** The server closes: the client answers the close handshake. */
  close(code?: number, reason?: string): void {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    this.closedWith = { code, reason };
    queueMicrotask(() => this.#finishClose());
  }
  addEventListener(type: string, listener: (ev: { data: unknown }) => void): void {
    const l = this.#listeners.get(type) ?? [];
    l.push(listener);
    this.#listeners.set(type, l);
  }
  /** The client sends a message. */
  message(data: unknown): void {
    for (const l of this.#listeners.get("message") ?? []) l({ data });
  }
  /** The client closes. */
  clientClose(): void {
    if (this.readyState === 3) return;
    this.#finishClose();
  }
  #finishClose(): void {
    this.readyState = 3;
    for (const l of this.#listeners.get("close") ?? []) l({ data: undefined });
  }
  get received(): string {
    return this.sent.map(dec).join("");
  }
}

/** An API whose upgrader hands out FakeWebSockets, and one accepted TCP connection. */
async function streaming(stream = {}) {
  const sockets: FakeWebSocket[] = [];
  const api = socketApi({
    app: {
      upgradeWebSocket: () => {
        const socket = new FakeWebSocket();
        sockets.push(socket);
        return { socket, response: new Response(null, { status: 200 }) };
      },
      stream,
    },
  });
  const lid = await api.create("tcp");
  await api.call("POST", `/sockets/${lid}/bind`, { json: { port: 80 } });
  await api.call("POST", `/sockets/${lid}/listen`, { json: {} });
  const peer = new SessionPeer(api.session, api.tunnel, 80);
  const pending = api.call("POST", `/sockets/${lid}/accept`, { json: {} });
  await settle();
  peer.connect();
  const { id } = await (await pending).json();
  const entry = api.session.sockets.get(id) as TcpSocketEntry;
  const open = async () => {
    const res = await api.call("GET", `/sockets/${id}/stream`, {
      headers: { upgrade: "websocket" },
    });
    assert.equal(res.status, 200);
    return sockets[sockets.length - 1];
  };
  return { ...api, id, entry, peer, open, sockets };
}

describe("GET .../sockets/:id/stream: a TCP connection over a WebSocket", () => {
  it("carries bytes both ways: peer data as binary messages, client messages as segments", async () => {
    const { open, peer, entry, call, id } = await streaming();
    const ws = await open();
    assert.equal(ws.binaryType, "arraybuffer");
    peer.send(enc("banner\r\n"));
    await settle();
    assert.equal(ws.received, "banner\r\n");
    ws.message(enc("hello ").buffer);
    ws.message("world"); // text is taken as UTF-8
    await settle();
    const first = peer.drain().filter((s) => s.payload.length > 0);
    assert.equal(dec(first[0].payload), "hello ");
    // Nagle holds the small second write until the first is acknowledged.
    peer.inject({ ackNumber: (first[0].seqNumber + 6) >>> 0 });
    const second = peer.drain().filter((s) => s.payload.length > 0);
    assert.equal(dec(second[0].payload), "world");
    const view = await (await call("GET", `/sockets/${id}`)).json();
    assert.equal(view.streaming, true);
    assert.equal(entry.pendingBytes, 0);
  });

  it("the client closing sends FIN after the queued bytes and releases the socket", async () => {
    const { open, peer, entry, call, id, clock } = await streaming();
    const ws = await open();
    ws.message(enc("last words"));
    ws.clientClose();
    await settle();
    const segs = peer.drain();
    const payload = segs.filter((s) => s.payload.length > 0).map((s) => dec(s.payload)).join("");
    assert.equal(payload, "last words");
    assert.ok(segs.some((s) => s.flags & TcpFlags.FIN));
    assert.equal(entry.tcpState, "FIN_WAIT_1");
    assert.equal(entry.attachment, undefined);
    assert.equal(entry.socket?.waiterCount, 0);
    // The socket stays in the table and is usable over HTTP again.
    const r = call("POST", `/sockets/${id}/recv`, { query: { timeoutMs: "1" } });
    await advance(clock, 1);
    assert.equal((await r).status, 204);
  });

  it("the peer's FIN closes the WebSocket with 1000 after everything was delivered", async () => {
    const { open, peer, entry } = await streaming();
    const ws = await open();
    peer.send(enc("all of it"), { flags: TcpFlags.ACK | TcpFlags.PSH | TcpFlags.FIN });
    await settle();
    assert.equal(ws.received, "all of it");
    assert.equal(ws.closedWith?.code, STREAM_CLOSE_EOF);
    // The close handshake completed: our side sends FIN too.
    assert.ok(peer.drain().some((s) => s.flags & TcpFlags.FIN));
    assert.equal(entry.tcpState, "LAST_ACK");
    assert.equal(entry.attachment, undefined);
  });

  it("respects backpressure: reads nothing from TCP while bufferedAmount is over the mark", async () => {
    const { open, peer, entry, clock } = await streaming({
      highWaterBytes: 1000,
      drainPollMs: 1,
    });
    const ws = await open();
    ws.bufferedAmount = 5000;
    peer.send(enc("x".repeat(1400)));
    for (let i = 0; i < 5; i++) await advance(clock, 1); // five re-checks of bufferedAmount
    assert.equal(ws.sent.length, 0);
    assert.equal(entry.socket?.info().recvQueued, 1400, "the bytes stay in the receive window");
    ws.bufferedAmount = 0;
    await settle();
    assert.equal(ws.sent.length, 0, "the pump re-checks on its clock, not before");
    await advance(clock, 1);
    assert.equal(ws.received.length, 1400);
    ws.clientClose();
  });

  it("a reset closes the WebSocket with 1011 and the code as reason", async () => {
    const { open, peer } = await streaming();
    const ws = await open();
    peer.inject({ flags: TcpFlags.RST });
    await settle();
    assert.deepEqual(ws.closedWith, { code: STREAM_CLOSE_ERROR, reason: "ECONNRESET" });
  });

  it("deleting the socket closes the WebSocket with 1001 and leaves no waiter", async () => {
    const { open, call, id, entry } = await streaming();
    const ws = await open();
    await settle();
    assert.equal(entry.socket?.waiterCount, 1, "the pump waits for data");
    assert.equal((await call("DELETE", `/sockets/${id}`)).status, 204);
    await settle();
    assert.equal(ws.closedWith?.code, STREAM_CLOSE_DELETED);
    assert.equal(entry.socket?.waiterCount, 0);
  });

  it("a client that outruns the peer is closed with 1009, within its queue bound", async () => {
    const { open, entry, session } = await streaming({ maxQueuedBytes: 2048 });
    const memory = session.stack.quota.memory;
    const ws = await open();
    // The send buffer (512 KiB) takes most of the first message; the rest waits in the queue.
    ws.message(new Uint8Array(512 * 1024 + 1024));
    assert.equal(entry.pendingBytes, 1024);
    const held = memory.used;
    ws.message(new Uint8Array(1024));
    assert.equal(memory.used - held, bufferCost(1024), "a queued message is charged its cost");
    assert.equal(ws.closedWith?.code, undefined);
    ws.message(new Uint8Array(1));
    assert.equal(ws.closedWith?.code, STREAM_CLOSE_TOO_MUCH);
    await settle();
    assert.equal(entry.pendingBytes, 0);
    assert.equal(
      memory.used,
      held - bufferCost(512 * 1024 + 1024),
      "every message's charge is given back when the stream ends",
    );
  });

  it("a message the session's memory quota cannot hold closes the stream with 1009 ENOBUFS", async () => {
    const { open, entry, session } = await streaming();
    const memory = session.stack.quota.memory;
    const ws = await open();
    assert.ok(memory.tryCharge(memory.available - bufferCost(999)));
    const used = memory.used;
    ws.message(new Uint8Array(1000));
    assert.deepEqual(ws.closedWith, {
      code: STREAM_CLOSE_TOO_MUCH,
      reason: "ENOBUFS: the session's buffer quota is full",
    });
    assert.equal(memory.used, used, "nothing charged");
    assert.equal(entry.pendingBytes, 0);
  });

  it("while streaming, HTTP send and recv and a second stream answer 409 EBUSY", async () => {
    const { open, call, id } = await streaming();
    await open();
    await assertProblem(await call("POST", `/sockets/${id}/recv`), 409, "EBUSY");
    await assertProblem(
      await call("POST", `/sockets/${id}/send`, { body: enc("x") }),
      409,
      "EBUSY",
    );
    await assertProblem(
      await call("GET", `/sockets/${id}/stream`, { headers: { upgrade: "websocket" } }),
      409,
      "EBUSY",
    );
  });

  it("refuses a socket that is not a connected TCP socket, a plain GET, and a server without WebSockets", async () => {
    const { call, create } = await streaming();
    const ws = { headers: { upgrade: "websocket" } };
    const t = await create("tcp");
    await assertProblem(await call("GET", `/sockets/${t}/stream`, ws), 409, "ENOTCONN");
    const u = await create("udp");
    await assertProblem(await call("GET", `/sockets/${u}/stream`, ws), 400, "EOPNOTSUPP");
    await assertProblem(await call("GET", `/sockets/${t}/stream`), 426, "EUPGRADE");
    const bare = socketApi();
    const id = await bare.create("tcp");
    await assertProblem(await bare.call("GET", `/sockets/${id}/stream`, ws), 501, "ENOTSUP");
  });
});
