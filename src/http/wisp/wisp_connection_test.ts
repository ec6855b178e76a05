/**
 * The Wisp server in process, on a manual clock: a session at 10.0.2.2 wired
 * to a peer stack at 10.0.2.15 (an echo server on port 7), and a fake
 * WebSocket that records what the server sends. Wisp v1.2 and v2 draft 6
 * (MercuryWorkshop/wisp-protocol), section names quoted in the test names.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../session/clock.ts";
import { Session, type SessionLimits } from "../../session/session.ts";
import { TcpServer } from "../../socket/tcp_socket.ts";
import {
  decodeWispPacket,
  encodeWispClose,
  encodeWispConnect,
  encodeWispData,
  encodeWispInfo,
  encodeWispPassword,
  parseIpv4Address,
  parseMacAddress,
  WispCloseReason,
  WispExtensionId,
  type WispPacket,
  WispStreamType,
} from "../../wire/mod.ts";
import { WispConnection, wispCounters } from "./wisp_connection.ts";
import type { WispOptions } from "./wisp_link.ts";

/** A WebSocket as the server sees it; `bufferedAmount` is set by the test. */
class FakeWs {
  binaryType = "blob";
  readyState = 1;
  bufferedAmount = 0;
  sent: Uint8Array[] = [];
  closed: { code?: number; reason?: string } | undefined;
  #listeners = new Map<string, Array<(ev: { data: unknown }) => void>>();
  send(data: Uint8Array | ArrayBuffer): void {
    this.sent.push(data instanceof ArrayBuffer ? new Uint8Array(data) : data.slice());
  }
  close(code?: number, reason?: string): void {
    if (this.readyState >= 2) return;
    this.closed = { code, reason };
    this.readyState = 3;
    this.#emit("close", { data: undefined });
  }
  addEventListener(type: string, fn: (ev: { data: unknown }) => void): void {
    this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), fn]);
  }
  /** The close code the server gave, if it closed. */
  get closeCode(): number | undefined {
    return this.closed?.code;
  }
  /** A message from the client. */
  message(data: Uint8Array | string): void {
    this.#emit("message", { data: typeof data === "string" ? data : data.slice().buffer });
  }
  /** Packets the server sent, decoded, and forgets them. */
  take(): WispPacket[] {
    const out = this.sent.map((b) => {
      const r = decodeWispPacket(b);
      if (!r.ok) throw new Error(`the server sent an undecodable packet: ${r.reason}`);
      return r.value;
    });
    this.sent = [];
    return out;
  }
  #emit(type: string, ev: { data: unknown }): void {
    for (const fn of this.#listeners.get(type) ?? []) fn(ev);
  }
}

const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setTimeout(r, 0));
};

function setup(limits: Partial<SessionLimits> = {}) {
  const clock = new ManualClock(1000);
  const mk = (id: string, mac: string, ip: string, l?: Partial<SessionLimits>) =>
    new Session({
      id,
      token: `token-of-${id}`,
      clock,
      stack: {
        mac: parseMacAddress(mac),
        ipv4: { address: parseIpv4Address(ip), prefixLength: 24 },
        mtu: 1500,
      },
      limits: l,
    });
  const session = mk("s_wisp", "02:00:00:00:00:02", "10.0.2.2", limits);
  const peer = mk("s_peer", "52:54:00:12:34:56", "10.0.2.15");
  const wire = (to: Session) => ({
    description: "test wire",
    send: (frames: Uint8Array[]) => {
      const copies = frames.map((f) => f.slice());
      queueMicrotask(() => to.input(copies));
    },
    close: () => {},
  });
  session.attachTunnel(wire(peer));
  peer.attachTunnel(wire(session));
  TcpServer.listen(peer, { port: 7 }).serve(async (s) => {
    try {
      for (;;) {
        const c = await s.receive(65536);
        if (c === null) break;
        await s.write(c);
      }
      s.shutdown("write");
    } catch {
      // reset
    }
  });
  return { clock, session, peer };
}

function open(
  session: Session,
  init: { v2?: boolean; authenticated?: boolean; options?: WispOptions } = {},
) {
  const ws = new FakeWs();
  const conn = new WispConnection({
    session,
    socket: ws,
    v2: init.v2 ?? false,
    authenticated: init.authenticated ?? true,
    options: init.options,
  });
  conn.start();
  return { ws, conn };
}

const tcp = WispStreamType.TCP;

describe("Wisp handshake", () => {
  it("v1: CONTINUE on stream 0 with the packet count, nothing else (v1.2 'Establishing a Websocket Connection')", () => {
    const { session } = setup();
    const { ws } = open(session);
    assert.deepEqual(ws.take(), [{ type: "continue", streamId: 0, bufferRemaining: 64 }]);
    session.close();
  });

  it("v1 without the session's token: the WebSocket closes with 1008 before any CONTINUE", () => {
    const { session } = setup();
    const { ws } = open(session, { authenticated: false });
    assert.deepEqual(ws.take(), []);
    assert.equal(ws.closeCode, 1008);
    session.close();
  });

  it("v2: INFO first (UDP, stream-open confirmation, password required without a token), CONTINUE after the client's INFO (v2 'Handshake Steps')", () => {
    const { session } = setup();
    const { ws } = open(session, { v2: true, authenticated: false });
    const [info] = ws.take();
    assert.ok(info.type === "info");
    assert.equal(info.major, 2);
    assert.deepEqual(info.extensions.map((e) => e.id), [
      WispExtensionId.UDP,
      WispExtensionId.STREAM_CONFIRMATION,
      WispExtensionId.PASSWORD,
    ]);
    assert.deepEqual([...info.extensions[2].data], [1], "password required");
    ws.message(encodeWispInfo(2, 0, [{
      id: WispExtensionId.PASSWORD,
      data: encodeWispPassword("u", session.token),
    }]));
    assert.deepEqual(ws.take(), [{ type: "continue", streamId: 0, bufferRemaining: 64 }]);
    assert.equal(ws.closed, undefined);
    session.close();
  });

  it("v2 password extension: a wrong password is CLOSE 0xc0 on stream 0, none 0xc2, then the WebSocket closes", () => {
    const { session } = setup();
    for (
      const [exts, reason] of [
        [[{ id: WispExtensionId.PASSWORD, data: encodeWispPassword("u", "nope") }], 0xc0],
        [[{ id: WispExtensionId.UDP, data: new Uint8Array(0) }], 0xc2],
      ] as const
    ) {
      const { ws } = open(session, { v2: true, authenticated: false });
      ws.take();
      ws.message(encodeWispInfo(2, 0, exts));
      assert.deepEqual(ws.take(), [{ type: "close", streamId: 0, reason }]);
      assert.equal(ws.closeCode, 1008);
    }
    assert.equal(wispCounters(session).get("auth_failed"), 1);
    session.close();
  });

  it("v2: a client that never sends INFO is closed at the handshake timeout when it has no token", async () => {
    const { session, clock } = setup();
    const { ws } = open(session, { v2: true, authenticated: false });
    ws.take();
    clock.advance(9_999);
    assert.equal(ws.closed, undefined);
    clock.advance(1);
    assert.deepEqual(ws.take(), [{ type: "close", streamId: 0, reason: 0xc2 }]);
    assert.equal(ws.closeCode, 1008);
    await settle();
    session.close();
  });
});

describe("Wisp streams", () => {
  it("a TCP stream to the peer is a socket of the session; v2's open confirmation is a CONTINUE; data echoes; deleting the socket closes the stream (0x02)", async () => {
    const { session } = setup();
    const { ws } = open(session, { v2: true, authenticated: true });
    ws.take();
    ws.message(encodeWispInfo(2, 0, [{
      id: WispExtensionId.STREAM_CONFIRMATION,
      data: new Uint8Array(0),
    }]));
    ws.take();
    ws.message(encodeWispConnect(5, tcp, 7, "10.0.2.15"));
    // Data sent before the connection is up waits in the stream's queue (v1.2 CONNECT).
    ws.message(encodeWispData(5, new TextEncoder().encode("early")));
    await settle();
    const packets = ws.take();
    assert.deepEqual(packets[0], { type: "continue", streamId: 5, bufferRemaining: 63 });
    const echoed = packets.filter((p) => p.type === "data").map((p) =>
      p.type === "data" ? new TextDecoder().decode(p.payload) : ""
    ).join("");
    assert.equal(echoed, "early");
    const rows = session.sockets.entries();
    assert.equal(rows.length, 1);
    assert.equal(rows[0].state, "connected");
    assert.ok(rows[0].attachment, "the stream owns the socket (HTTP send/recv answer EBUSY)");
    session.sockets.delete(rows[0].id);
    assert.deepEqual(ws.take(), [{
      type: "close",
      streamId: 5,
      reason: WispCloseReason.VOLUNTARY,
    }]);
    session.close();
  });

  it("CONTINUE renews the client's packet count once half of it is used (v1.2 '0x03 - CONTINUE')", async () => {
    const { session } = setup();
    const { ws } = open(session, { options: { bufferPackets: 4 } });
    ws.take();
    ws.message(encodeWispConnect(1, tcp, 7, "10.0.2.15"));
    await settle();
    ws.take();
    ws.message(encodeWispData(1, new Uint8Array([1])));
    await settle();
    assert.deepEqual(ws.take().filter((p) => p.type === "continue"), []);
    ws.message(encodeWispData(1, new Uint8Array([2])));
    await settle();
    assert.deepEqual(ws.take().filter((p) => p.type === "continue"), [
      { type: "continue", streamId: 1, bufferRemaining: 4 },
    ]);
    session.close();
  });

  it("close reasons of a CONNECT: outside 0x48, refused 0x44, invalid 0x41, own address 0x44 (v1.2 'Server Only Close Reasons')", async () => {
    const { session } = setup();
    const { ws } = open(session);
    ws.take();
    const cases: Array<[string, number, number, number]> = [
      ["8.8.8.8", 53, tcp, 0x48],
      ["example.com", 80, tcp, 0x48],
      ["::1", 80, tcp, 0x48],
      ["[::1]", 80, tcp, 0x48],
      ["2001:db8::1", 80, tcp, 0x48],
      ["fd00::2", 80, tcp, 0x44],
      ["[fe80::ff:fe00:2]", 80, tcp, 0x44],
      ["fe80::5054:ff:fe12:3456", 9, tcp, 0x44],
      ["ff02::1", 7, tcp, 0x41],
      ["fd00::zz", 7, tcp, 0x41],
      ["10.0.2.15", 9, tcp, 0x44],
      ["10.0.2.2", 80, tcp, 0x44],
      ["10.0.2.255", 7, tcp, 0x41],
      ["10.0.2.0", 7, tcp, 0x41],
      ["224.0.0.1", 7, tcp, 0x41],
      ["10.0.2.15", 0, tcp, 0x41],
      ["10.0.2.15", 7, 9, 0x41],
      ["", 7, tcp, 0x41],
    ];
    let id = 10;
    for (const [host, port, type, reason] of cases) {
      ws.message(encodeWispConnect(++id, type, port, host));
      await settle();
      assert.deepEqual(ws.take(), [{ type: "close", streamId: id, reason }], `${host}:${port}`);
    }
    assert.equal(session.sockets.size, 0, "no socket is left behind");
    // A CONNECT whose hostname is not UTF-8: its header parsed, so it is answered.
    ws.message(new Uint8Array([1, 99, 0, 0, 0, 1, 7, 0, 0xff]));
    assert.deepEqual(ws.take(), [{ type: "close", streamId: 99, reason: 0x41 }]);
    session.close();
  });

  it("limits: streams per connection and the session's socket quota answer 0x49", async () => {
    const { session } = setup({ maxSockets: 3 });
    const a = open(session, { options: { maxStreamsPerConnection: 2 } });
    a.ws.take();
    for (let id = 1; id <= 3; id++) a.ws.message(encodeWispConnect(id, tcp, 7, "10.0.2.15"));
    assert.deepEqual(a.ws.take(), [{ type: "close", streamId: 3, reason: 0x49 }]);
    const b = open(session);
    b.ws.take();
    b.ws.message(encodeWispConnect(1, tcp, 7, "10.0.2.15"));
    b.ws.message(encodeWispConnect(2, tcp, 7, "10.0.2.15"));
    assert.deepEqual(b.ws.take(), [{ type: "close", streamId: 2, reason: 0x49 }]);
    assert.equal(session.sockets.size, 3);
    await settle();
    session.close();
  });

  it("a text message closes with 1003, a message over the limit with 1009", () => {
    const { session } = setup();
    const t = open(session);
    t.ws.message("hello");
    assert.equal(t.ws.closeCode, 1003);
    const big = open(session, { options: { maxMessageBytes: 100 } });
    big.ws.message(encodeWispData(1, new Uint8Array(200)));
    assert.equal(big.ws.closeCode, 1009);
    session.close();
  });

  it("a client that stops reading: no more reads from TCP beyond the high-water mark", async () => {
    const { session, peer, clock } = setup();
    const { ws } = open(session, { options: { highWaterBytes: 64 * 1024, chunkBytes: 16 * 1024 } });
    ws.take();
    ws.message(encodeWispConnect(1, tcp, 7, "10.0.2.15"));
    await settle();
    // The WebSocket sends nothing on: everything handed to it stays buffered.
    const realSend = ws.send.bind(ws);
    ws.send = (d) => {
      realSend(d);
      ws.bufferedAmount += d instanceof ArrayBuffer ? d.byteLength : d.length;
    };
    const payload = new Uint8Array(60_000);
    for (let i = 0; i < 10; i++) ws.message(encodeWispData(1, payload));
    for (let i = 0; i < 20; i++) {
      await settle();
      clock.advance(10);
    }
    const sentData = ws.take().filter((p) => p.type === "data")
      .reduce((n, p) => n + (p.type === "data" ? p.payload.length : 0), 0);
    assert.ok(sentData <= 64 * 1024 + 16 * 1024, `handed to the WebSocket: ${sentData}`);
    const row = session.sockets.entries()[0];
    assert.ok(row.queued().recv > 0, "the rest waits in TCP's receive buffer");
    // The client reads again: the WebSocket drains and the data moves on.
    ws.bufferedAmount = 0;
    for (let i = 0; i < 20; i++) {
      await settle();
      clock.advance(10);
    }
    assert.ok(ws.take().some((p) => p.type === "data"));
    peer.close();
    session.close();
  });

  it("the WebSocket closing resets its streams and gives every charge back", async () => {
    const { session } = setup();
    const { ws } = open(session);
    ws.take();
    ws.message(encodeWispConnect(1, tcp, 7, "10.0.2.15"));
    ws.message(encodeWispConnect(2, WispStreamType.UDP, 7, "10.0.2.15"));
    await settle();
    assert.equal(session.sockets.size, 2);
    ws.message(encodeWispData(1, new Uint8Array(1000)));
    ws.close(1006);
    await settle();
    assert.equal(session.sockets.size, 0);
    assert.equal(session.sockets.bufferedBytes(), 0);
    ws.message(encodeWispClose(1, 2)); // after the end: ignored, no throw
    session.close();
  });
});
