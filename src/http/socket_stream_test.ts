import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { advance, SessionPeer, settle } from "../socket/_session_peer_test_util.ts";
import type { TcpSocketEntry } from "../socket/socket_entry.ts";
import { TcpFlags } from "../wire/mod.ts";
import type { TunnelSocket } from "../session/tunnel_server.ts";
import { bufferCost, MemoryQuota } from "../stack/session_quota.ts";
import { assertProblem, socketApi } from "./_socket_api_test_util.ts";
import {
  openSocketStream,
  type SocketStreamOptions,
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
  /** A client that stops reading: what is sent stays in `bufferedAmount`. */
  holdSends = false;
  sent: Uint8Array[] = [];
  closedWith: { code?: number; reason?: string } | undefined;
  #listeners = new Map<string, Array<(ev: { data: unknown }) => void>>();

  send(data: Uint8Array | ArrayBuffer): void {
    const b = data instanceof ArrayBuffer ? new Uint8Array(data) : data;
    this.sent.push(b.slice());
    if (this.holdSends) this.bufferedAmount += b.byteLength;
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
  get sentBytes(): number {
    return this.sent.reduce((n, b) => n + b.byteLength, 0);
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
      reason: "ENOBUFS: the session's memory quota is full",
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

/**
 * A stream on an accepted connection with a quota of its own (so the test
 * sees exactly what the stream charges), on the session's manual clock.
 */
async function quotaStream(limit: number, options: SocketStreamOptions) {
  const s = await streaming();
  const quota = new MemoryQuota(limit);
  const ws = new FakeWebSocket();
  const pending = openSocketStream(s.session.sockets, s.entry, { quota, clock: s.clock }, options);
  pending.start(ws);
  /** Lets the pump run: settles, advancing the clock by its poll interval `n` times. */
  const run = async (n = 3) => {
    await settle();
    for (let i = 0; i < n; i++) {
      s.clock.advance(options.drainPollMs ?? 10);
      await settle();
    }
  };
  return { ...s, quota, ws, run };
}

describe("socket streams count what they buffer against the session's memory quota", () => {
  it("a client that stops reading stops the TCP sender: the WebSocket holds at most the high-water mark and a chunk, all charged", async () => {
    const opts = { highWaterBytes: 16 * 1024, chunkBytes: 4096, drainPollMs: 1 };
    const { quota, ws, run, peer, entry } = await quotaStream(1 << 20, opts);
    ws.holdSends = true;
    const seg = new Uint8Array(1400).fill(0x78);
    let offered = 0;
    let peak = 0;
    // Far more than the receive buffer (512 KiB): the peer keeps sending.
    for (let i = 0; i < 420; i++) {
      peer.send(seg);
      offered += seg.length;
      if (i % 20 === 0) {
        await run(2);
        peer.drain();
        peak = Math.max(peak, quota.used);
      }
    }
    await run(5);
    const info = entry.socket!.info();
    console.log(
      `client stalled: ${ws.sentBytes} bytes in the WebSocket, ${info.recvQueued} in the ` +
        `receive buffer (window ${info.recvWindow}), ${offered} offered; charged ${quota.used}`,
    );
    assert.ok(ws.bufferedAmount <= 16 * 1024 + 4096, `WebSocket holds ${ws.bufferedAmount}`);
    assert.equal(ws.bufferedAmount, ws.sentBytes, "nothing was read by the client");
    assert.equal(
      quota.used,
      ws.sent.reduce((n, b) => n + bufferCost(b.byteLength), 0),
      "every byte the WebSocket holds is charged",
    );
    assert.ok(peak <= quota.used);
    assert.equal(info.recvWindow, 0, "the receive window closed on the peer");
    assert.ok(ws.sentBytes + info.recvQueued < offered, "the peer's surplus was not accepted");
    // The client reads again: everything flows and the charges go back to zero.
    const held = ws.sentBytes + info.recvQueued;
    ws.holdSends = false;
    ws.bufferedAmount = 0;
    for (let i = 0; i < 300 && ws.sentBytes < held; i++) await run(1);
    assert.equal(ws.sentBytes, held, "every accepted byte reached the client");
    await run(2);
    assert.equal(quota.used, 0);
    assert.ok(quota.stats().peak <= 16 * 1024 + 4096 + 6 * 512 + bufferCost(4096));
    ws.clientClose();
  });

  it("reads no chunk the quota cannot take: the bytes wait in the receive buffer until it can", async () => {
    const limit = 2 * bufferCost(4096) + 100;
    const opts = { highWaterBytes: 1 << 20, chunkBytes: 4096, drainPollMs: 1 };
    const { quota, ws, run, peer, entry } = await quotaStream(limit, opts);
    ws.holdSends = true;
    for (let i = 0; i < 10; i++) peer.send(new Uint8Array(1400).fill(i));
    await run(5);
    // A chunk is charged in full before it is read: what fits is about two of them.
    assert.ok(ws.sentBytes > 0 && ws.sentBytes <= 2 * 4096, `${ws.sentBytes} bytes went out`);
    assert.equal(quota.used, ws.sent.reduce((n, b) => n + bufferCost(b.byteLength), 0));
    assert.ok(quota.used + bufferCost(4096) > limit, "the next chunk would not fit");
    assert.equal(entry.socket!.info().recvQueued, 14_000 - ws.sentBytes, "the rest waits in TCP");
    assert.ok(quota.stats().refused > 0, "the pump asked and was refused");
    ws.bufferedAmount = 0;
    ws.holdSends = false;
    await run(5);
    assert.equal(ws.sentBytes, 14_000, "all of it once the client read");
    const all = new Uint8Array(14_000);
    let at = 0;
    for (const b of ws.sent) {
      all.set(b, at);
      at += b.length;
    }
    for (let i = 0; i < 10; i++) assert.equal(all[i * 1400], i, `segment ${i} in order`);
    assert.equal(quota.used, 0);
    assert.ok(quota.stats().peak <= limit);
    ws.clientClose();
  });

  it("client messages are charged until TCP took all of them; one the quota cannot take closes with 1009 ENOBUFS", async () => {
    // Client messages are the socket's held buffers: charged to the session's quota.
    const { open, peer, entry, session, clock } = await streaming({ drainPollMs: 1 });
    const quota = session.stack.quota.memory;
    const ws = await open();
    const run = async (n: number) => {
      await settle();
      for (let i = 0; i < n; i++) await advance(clock, 1);
    };
    const base = quota.used;
    // The send buffer (512 KiB) takes most of the first message; the rest waits, and the
    // whole message stays held (and charged) until TCP took its last byte.
    const first = new Uint8Array(512 * 1024 + 1024);
    ws.message(first.buffer);
    assert.equal(entry.pendingBytes, 1024);
    const afterFirst = quota.used;
    assert.ok(afterFirst - base >= bufferCost(first.length), "the whole message is charged");
    ws.message(new Uint8Array(2000).buffer);
    assert.equal(quota.used - afterFirst, bufferCost(2000));
    // The peer acknowledges everything it got: the queue drains into the send buffer.
    await run(1);
    const data = peer.drain().filter((s) => s.payload.length > 0);
    const last = data[data.length - 1];
    peer.inject({ ackNumber: (last.seqNumber + last.payload.length) >>> 0, windowLen: 65535 });
    await run(2);
    assert.equal(entry.pendingBytes, 0);
    const drained = quota.used;
    assert.ok(drained < afterFirst - bufferCost(first.length) + bufferCost(2000), "released");
    // A message the quota cannot take.
    assert.ok(quota.tryCharge(quota.available - 1000));
    const full = quota.used;
    ws.message(new Uint8Array(2000).buffer);
    assert.deepEqual(ws.closedWith, {
      code: STREAM_CLOSE_TOO_MUCH,
      reason: "ENOBUFS: the session's memory quota is full",
    });
    await settle();
    assert.ok(quota.used <= full, "the refused message is not charged");
    assert.equal(entry.attachment, undefined);
  });

  it("the route charges the session's own quota", async () => {
    const { open, peer, session, clock } = await streaming({ drainPollMs: 1 });
    const ws = await open();
    ws.holdSends = true;
    const before = session.stack.quota.memory.used;
    peer.send(enc("x".repeat(1400)));
    await settle();
    clock.advance(1);
    await settle();
    assert.equal(ws.sentBytes, 1400);
    assert.ok(session.stack.quota.memory.used >= before + bufferCost(1400));
    ws.clientClose();
    await settle();
    assert.equal(session.stack.quota.memory.used, before, "released when the WebSocket closed");
  });
});
