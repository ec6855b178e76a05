import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { SessionPeer, settle } from "../socket/_session_peer_test_util.ts";
import type { TcpSocketEntry } from "../socket/socket_entry.ts";
import { decodeUdp, udpFrame } from "../stack/udp/_udp_test_util.ts";
import { TcpFlags } from "../wire/mod.ts";
import type { TunnelSocket } from "../session/tunnel_server.ts";
import { assertProblem, socketApi } from "./_socket_api_test_util.ts";
import { STREAM_CLOSE_DELETED, STREAM_CLOSE_ERROR } from "./socket_stream.ts";
import {
  decodeStreamMessage,
  decodeUdpData,
  encodeStreamAck,
  encodeStreamData,
  encodeStreamFin,
  encodeUdpData,
  selectStreamSubprotocol,
  STREAM_SUBPROTOCOL,
  STREAM_WINDOW_BYTES,
  type StreamMessage,
} from "./socket_stream_protocol.ts";
import { STREAM_CLOSE_PROTOCOL_ERROR } from "./socket_stream_v1.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** The server side of a v1 WebSocket, driven by the test as the client would. */
class FakeV1Socket implements TunnelSocket {
  binaryType = "blob";
  readyState = 1;
  bufferedAmount = 0;
  sent: StreamMessage[] = [];
  closedWith: { code?: number; reason?: string } | undefined;
  #listeners = new Map<string, Array<(ev: { data: unknown }) => void>>();

  send(data: Uint8Array | ArrayBuffer): void {
    const b = data instanceof ArrayBuffer ? new Uint8Array(data) : data;
    const m = decodeStreamMessage(b.slice());
    if ("invalid" in m) throw new Error(`the server sent ${m.invalid}`);
    this.sent.push(m);
  }
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
  /** The client sends a message (as an ArrayBuffer, as a real socket delivers it). */
  message(m: Uint8Array): void {
    for (const l of this.#listeners.get("message") ?? []) l({ data: m.slice().buffer });
  }
  /** The client's WebSocket goes away. */
  clientClose(): void {
    if (this.readyState === 3) return;
    this.#finishClose();
  }
  #finishClose(): void {
    this.readyState = 3;
    for (const l of this.#listeners.get("close") ?? []) l({ data: undefined });
  }
  /** The DATA bodies received so far, concatenated as text. */
  get text(): string {
    return this.sent.map((m) => m.type === "data" ? dec(m.data) : "").join("");
  }
  types(): string[] {
    return this.sent.map((m) => m.type);
  }
  acked(): number {
    return this.sent.reduce((n, m) => n + (m.type === "ack" ? m.bytes : 0), 0);
  }
}

const V1 = { upgrade: "websocket", "sec-websocket-protocol": STREAM_SUBPROTOCOL };

/** An API whose upgrader hands out FakeV1Sockets (recording the protocol asked for). */
function v1Api(stream = {}) {
  const sockets: FakeV1Socket[] = [];
  const protocols: Array<string | undefined> = [];
  const api = socketApi({
    app: {
      upgradeWebSocket: ((_req: Request, o?: { protocol?: string }) => {
        const socket = new FakeV1Socket();
        sockets.push(socket);
        protocols.push(o?.protocol);
        return { socket, response: new Response(null, { status: 200 }) };
      }) as never,
      stream,
    },
  });
  const open = async (id: string) => {
    const res = await api.call("GET", `/sockets/${id}/stream`, { headers: V1 });
    assert.equal(res.status, 200);
    return sockets[sockets.length - 1];
  };
  return { ...api, sockets, protocols, open };
}

/** One accepted TCP connection from a scripted peer, streamed with v1. */
async function tcpV1(stream = {}) {
  const api = v1Api(stream);
  const lid = await api.create("tcp");
  await api.call("POST", `/sockets/${lid}/bind`, { json: { port: 80 } });
  await api.call("POST", `/sockets/${lid}/listen`, { json: {} });
  const peer = new SessionPeer(api.session, api.tunnel, 80);
  const pending = api.call("POST", `/sockets/${lid}/accept`, { json: {} });
  await settle();
  peer.connect();
  const { id } = await (await pending).json();
  const entry = api.session.sockets.get(id) as TcpSocketEntry;
  const ws = await api.open(id);
  return { ...api, id, entry, peer, ws };
}

describe("netisle.stream.v1 messages (socket_stream_protocol.ts)", () => {
  it("encode and decode each other; malformed messages give a reason", () => {
    assert.deepEqual(decodeStreamMessage(encodeStreamAck(70000)), { type: "ack", bytes: 70000 });
    assert.deepEqual(decodeStreamMessage(encodeStreamFin()), { type: "fin" });
    const d = decodeStreamMessage(encodeStreamData(enc("hi")));
    assert.ok(!("invalid" in d) && d.type === "data" && dec(d.data) === "hi");
    const u = decodeUdpData(
      encodeUdpData({ address: "10.0.2.15", port: 5353 }, enc("q")).subarray(1),
    );
    assert.deepEqual([u?.peer, dec(u!.payload)], [{ address: "10.0.2.15", port: 5353 }, "q"]);
    assert.equal(decodeUdpData(new Uint8Array(5)), undefined);
    for (const bad of [new Uint8Array(0), new Uint8Array([1, 0, 0]), new Uint8Array([9])]) {
      assert.ok("invalid" in decodeStreamMessage(bad));
    }
    assert.throws(() => encodeStreamAck(0), RangeError);
    assert.throws(() => encodeUdpData({ address: "10.0.2", port: 1 }, enc("x")), TypeError);
  });

  it("the subprotocol is picked only when offered", () => {
    assert.equal(selectStreamSubprotocol(`binary, ${STREAM_SUBPROTOCOL}`), STREAM_SUBPROTOCOL);
    assert.equal(selectStreamSubprotocol("netisle.qemu-stream.v1"), undefined);
    assert.equal(selectStreamSubprotocol(null), undefined);
  });
});

describe("GET .../stream with netisle.stream.v1: TCP", () => {
  it("answers the subprotocol and opens with the endpoints, then grants the queue as credit", async () => {
    const { ws, protocols } = await tcpV1();
    assert.deepEqual(protocols, [STREAM_SUBPROTOCOL]);
    assert.equal(ws.binaryType, "arraybuffer");
    const [open, grant] = ws.sent;
    assert.deepEqual(open, {
      type: "open",
      info: {
        protocol: "tcp",
        local: { address: "10.0.2.2", port: 80 },
        remote: { address: "10.0.2.15", port: 40000 },
      },
    });
    assert.deepEqual(grant, { type: "ack", bytes: 4 * 1024 * 1024 - STREAM_WINDOW_BYTES });
  });

  it("carries DATA both ways and acknowledges what the send buffer took", async () => {
    const { ws, peer } = await tcpV1();
    peer.send(enc("banner\r\n"));
    await settle();
    assert.equal(ws.text, "banner\r\n");
    const before = ws.acked();
    ws.message(encodeStreamData(new Uint8Array(100_000).fill(65)));
    await settle();
    assert.equal(ws.acked(), before, "no ACK below window/8");
    ws.message(encodeStreamData(new Uint8Array(100_000).fill(66)));
    await settle();
    const got = peer.drain().reduce((n, s) => n + s.payload.length, 0);
    assert.ok(got > 0, "segments went to the peer");
    assert.equal(ws.acked() - before, 200_000, "one ACK for all the send buffer took");
  });

  it("a client FIN becomes a TCP FIN while the peer's data keeps flowing (half-close)", async () => {
    const { ws, peer, entry } = await tcpV1();
    ws.message(encodeStreamData(enc("request")));
    ws.message(encodeStreamFin());
    await settle();
    const segs = peer.drain();
    assert.equal(
      segs.filter((s) => s.payload.length > 0).map((s) => dec(s.payload)).join(""),
      "request",
    );
    assert.ok(segs.some((s) => s.flags & TcpFlags.FIN));
    assert.equal(entry.tcpState, "FIN_WAIT_1");
    peer.ack = (peer.ack + 8) >>> 0;
    peer.send(enc("response after our FIN"));
    await settle();
    assert.equal(ws.text, "response after our FIN");
    assert.equal(
      ws.closedWith as unknown,
      undefined,
      "the stream stays open for the other direction",
    );
  });

  it("the peer's FIN becomes a FIN message; the client may still send; both ended: the socket is gone, the client closes", async () => {
    const { ws, peer, entry, session, id } = await tcpV1();
    peer.send(enc("bye"), { flags: TcpFlags.ACK | TcpFlags.PSH | TcpFlags.FIN });
    await settle();
    assert.deepEqual(ws.types().slice(-2), ["data", "fin"]);
    assert.equal(ws.closedWith as unknown, undefined);
    ws.message(encodeStreamData(enc("late")));
    ws.message(encodeStreamFin());
    await settle();
    const segs = peer.drain();
    assert.equal(
      segs.filter((s) => s.payload.length > 0).map((s) => dec(s.payload)).join(""),
      "late",
    );
    assert.ok(segs.some((s) => s.flags & TcpFlags.FIN));
    assert.equal(session.sockets.get(id), undefined, "the stream owned the socket");
    assert.equal(entry.tcpState, "LAST_ACK", "closed gracefully, not reset");
    // The client closes the WebSocket (a server close could race its last ACKs).
    assert.equal(ws.closedWith as unknown, undefined);
    ws.clientClose();
    await settle();
    assert.ok(!peer.drain().some((s) => s.flags & TcpFlags.RST));
  });

  it("reads from TCP only within the client's credit; an ACK lets more through", async () => {
    const { ws, peer, entry } = await tcpV1({ chunkBytes: 1 << 20 });
    // The peer sends 1.5 MiB in 1460-byte segments; the stack acknowledges, the window allows.
    const seg = new Uint8Array(1460).fill(66);
    let sent = 0;
    while (sent < 1.5 * 1024 * 1024) {
      peer.send(seg);
      sent += seg.length;
      if (sent % (64 * 1460) === 0) {
        await settle();
        peer.drain();
      }
    }
    await settle();
    const delivered = () =>
      ws.sent.reduce((n, m) => n + (m.type === "data" ? m.data.length : 0), 0);
    const queued = () => entry.socket!.info().recvQueued;
    assert.equal(delivered(), STREAM_WINDOW_BYTES, "exactly the initial credit");
    const left = queued();
    assert.ok(left > 0, "the rest waits in the receive buffer");
    ws.message(encodeStreamAck(100_000));
    await settle();
    assert.equal(delivered(), STREAM_WINDOW_BYTES + 100_000);
    assert.equal(queued(), left - 100_000);
  });

  it("what the client has not acknowledged is charged to the session's quota until it does", async () => {
    const { ws, peer, session } = await tcpV1({ chunkBytes: 64 * 1024 });
    const memory = session.stack.quota.memory;
    const base = memory.used;
    const seg = new Uint8Array(1460).fill(67);
    for (let i = 0; i < 100; i++) peer.send(seg);
    await settle();
    const delivered = ws.sent.reduce((n, m) => n + (m.type === "data" ? m.data.length : 0), 0);
    assert.equal(delivered, 146_000);
    assert.ok(
      memory.used - base >= 146_000,
      `unacknowledged DATA is charged: ${memory.used - base}`,
    );
    const held = memory.used;
    ws.message(encodeStreamAck(146_000));
    await settle();
    assert.ok(held - memory.used >= 146_000, "the client's ACK gives the charge back");
    ws.clientClose();
    await settle();
  });

  it("a WebSocket that ends before the client's FIN resets the connection and deletes the socket", async () => {
    const { ws, peer, session, id } = await tcpV1();
    ws.clientClose();
    await settle();
    assert.ok(peer.drain().some((s) => s.flags & TcpFlags.RST), "RST, not a clean FIN");
    assert.equal(session.sockets.get(id), undefined);
  });

  it("a reset closes with 1011 ECONNRESET; deleting the socket closes with 1001", async () => {
    const a = await tcpV1();
    a.peer.inject({ flags: TcpFlags.RST });
    await settle();
    assert.deepEqual(a.ws.closedWith, { code: STREAM_CLOSE_ERROR, reason: "ECONNRESET" });
    assert.equal(a.session.sockets.get(a.id), undefined);
    const b = await tcpV1();
    assert.equal((await b.call("DELETE", `/sockets/${b.id}`)).status, 204);
    await settle();
    assert.equal(b.ws.closedWith?.code, STREAM_CLOSE_DELETED);
    assert.equal(b.entry.socket?.waiterCount, 0);
  });

  it("closes with 1002 on a broken protocol: text, an unknown type, DATA after FIN", async () => {
    for (
      const bad of [
        (ws: FakeV1Socket) => {
          for (const l of [ws]) l.message(new Uint8Array([7, 1, 2]));
        },
        (ws: FakeV1Socket) => {
          ws.message(encodeStreamFin());
          ws.message(encodeStreamData(enc("more")));
        },
      ]
    ) {
      const { ws, peer } = await tcpV1();
      bad(ws);
      await settle();
      assert.equal(ws.closedWith?.code, STREAM_CLOSE_PROTOCOL_ERROR);
      assert.match(ws.closedWith?.reason ?? "", /netisle\.stream\.v1/);
      assert.ok(peer.drain().some((s) => s.flags & TcpFlags.RST));
    }
  });

  it("without the subprotocol the original stream answers (no type bytes)", async () => {
    const api = v1Api();
    const lid = await api.create("tcp");
    await api.call("POST", `/sockets/${lid}/bind`, { json: { port: 80 } });
    await api.call("POST", `/sockets/${lid}/listen`, { json: {} });
    const peer = new SessionPeer(api.session, api.tunnel, 80);
    const pending = api.call("POST", `/sockets/${lid}/accept`, { json: {} });
    await settle();
    peer.connect();
    const { id } = await (await pending).json();
    const res = await api.call("GET", `/sockets/${id}/stream`, {
      headers: { upgrade: "websocket" },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(api.protocols, [undefined]);
    const u = await api.create("udp");
    await assertProblem(
      await api.call("GET", `/sockets/${u}/stream`, { headers: { upgrade: "websocket" } }),
      400,
      "EOPNOTSUPP",
    );
  });
});

describe("GET .../stream with netisle.stream.v1: UDP", () => {
  it("binds an unbound socket, opens with its endpoint, and carries datagrams both ways with their peers", async () => {
    const api = v1Api();
    const id = await api.create("udp");
    const ws = await api.open(id);
    const open = ws.sent[0];
    assert.ok(open.type === "open" && open.info.protocol === "udp" && open.info.remote === null);
    const port = open.type === "open" ? open.info.local!.port : 0;
    assert.ok(port >= 49152);
    ws.message(encodeUdpData({ address: "10.0.2.15", port: 53 }, enc("query")));
    await settle();
    const out = decodeUdp(api.tunnel.frames.shift()!);
    assert.deepEqual([out.udp.srcPort, out.udp.dstPort, dec(out.udp.payload)], [port, 53, "query"]);
    api.session.input([udpFrame({ srcPort: 53, dstPort: port, payload: enc("answer") })]);
    await settle();
    const last = ws.sent[ws.sent.length - 1];
    assert.equal(last.type, "data");
    const d = decodeUdpData(last.type === "data" ? last.data : new Uint8Array(0));
    assert.deepEqual([d?.peer, dec(d!.payload)], [{ address: "10.0.2.15", port: 53 }, "answer"]);
    const view = await (await api.call("GET", `/sockets/${id}`)).json();
    assert.equal(view.streaming, true);
  });

  it("a datagram that cannot go is an ERROR message and the stream goes on", async () => {
    const api = v1Api();
    const id = await api.create("udp");
    const ws = await api.open(id);
    ws.message(encodeUdpData({ address: "0.0.0.0", port: 0 }, enc("to whom?")));
    ws.message(encodeUdpData({ address: "10.0.2.15", port: 9 }, new Uint8Array(1500)));
    ws.message(encodeUdpData({ address: "192.168.7.1", port: 9 }, enc("far")));
    await settle();
    const codes = ws.sent.flatMap((m) => m.type === "error" ? [m.error.code] : []);
    assert.deepEqual(codes, ["ENOTCONN", "EMSGSIZE", "EHOSTUNREACH"]);
    assert.equal(ws.closedWith as unknown, undefined);
    ws.message(encodeUdpData({ address: "10.0.2.15", port: 9 }, enc("fine")));
    await settle();
    assert.equal(dec(decodeUdp(api.tunnel.frames.pop()!).udp.payload), "fine");
  });

  it("a connected socket sends to its peer with 0.0.0.0:0; the WebSocket ending deletes the socket", async () => {
    const api = v1Api();
    const id = await api.create("udp");
    await api.call("POST", `/sockets/${id}/connect`, { json: { address: "10.0.2.15", port: 7 } });
    const ws = await api.open(id);
    const open = ws.sent[0];
    assert.ok(open.type === "open");
    assert.deepEqual(open.type === "open" && open.info.remote, { address: "10.0.2.15", port: 7 });
    ws.message(encodeUdpData({ address: "0.0.0.0", port: 0 }, enc("ping")));
    await settle();
    assert.equal(decodeUdp(api.tunnel.frames.pop()!).udp.dstPort, 7);
    ws.clientClose();
    await settle();
    assert.equal(api.session.sockets.get(id), undefined);
    assert.equal(
      api.session.stack.udp.endpoints.size,
      0,
      "no endpoint is left (DHCP is a UDP service, not an endpoint)",
    );
  });

  it("holds datagrams in the socket's queue while the client has no credit", async () => {
    const api = v1Api();
    const id = await api.create("udp");
    await api.call("POST", `/sockets/${id}/bind`, { json: { port: 5000 } });
    const ws = await api.open(id);
    const big = new Uint8Array(1400);
    const n = Math.ceil(STREAM_WINDOW_BYTES / (1400 + 6)) + 3;
    for (let i = 0; i < n; i++) {
      api.session.input([udpFrame({ srcPort: 4000, dstPort: 5000, payload: big })]);
      if (i % 50 === 0) await settle();
    }
    await settle();
    const datas = () => ws.sent.filter((m) => m.type === "data").length;
    const fit = Math.floor(STREAM_WINDOW_BYTES / 1406);
    assert.equal(datas(), fit);
    ws.message(encodeStreamAck(1406 * 3));
    await settle();
    assert.equal(datas(), Math.min(n, fit + 3));
  });
});
