/**
 * The Bun adapter. Unit: the {@linkcode BunTunnelSocket} shim over a fake
 * `ServerWebSocket` (states, `send` statuses, `getBufferedAmount`), and the
 * tunnel's backpressure through it with crafted frames. Cross-runtime: the
 * real `bun run examples/bun/server.ts` in a child process, driven from here
 * with the tunnel client library (both framings) and a long-poll that
 * outlasts Bun's default HTTP idle timeout.
 */

import { after, before, describe, it } from "node:test";
import { connect } from "node:net";
import assert from "node:assert/strict";
import { ManualClock, Session } from "../session/mod.ts";
import { parseIpv4Address, parseMacAddress } from "../wire/mod.ts";
import { attachWebSocketTunnel } from "../session/tunnel_server.ts";
import { TunnelClient } from "../../tunnel/client.ts";
import { type BunServerWebSocket, BunTunnelSocket } from "./serve_bun.ts";
import {
  arpRequest,
  createSession,
  echoRequest,
  isArpReply,
  isEchoReply,
  MemoryPort,
} from "../../tests/_tunnel_test_util.ts";
import { BUN, Proc } from "../../tests/e2e/harness.ts";

class FakeBunSocket implements BunServerWebSocket {
  data!: BunTunnelSocket;
  readyState = 1;
  binaryType = "nodebuffer";
  buffered = 0;
  status = 100;
  sent: Uint8Array[] = [];
  closed: Array<[number | undefined, string | undefined]> = [];
  send(data: Uint8Array | ArrayBuffer | string): number {
    if (this.status !== 0) this.sent.push(new Uint8Array(data as Uint8Array).slice());
    return this.status;
  }
  close(code?: number, reason?: string): void {
    this.closed.push([code, reason]);
    this.readyState = 2;
  }
  getBufferedAmount(): number {
    return this.buffered;
  }
}

/** Sends a WebSocket upgrade request over TCP and resolves with the response head. */
function rawHandshake(base: URL, path: string, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(Number(base.port), base.hostname);
    let head = "";
    sock.on("error", reject);
    sock.on("connect", () => {
      const lines = [
        `GET ${path} HTTP/1.1`,
        `host: ${base.host}`,
        "upgrade: websocket",
        "connection: Upgrade",
        "sec-websocket-version: 13",
        "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
        ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      ];
      sock.write(lines.join("\r\n") + "\r\n\r\n");
    });
    sock.on("data", (d: Uint8Array) => {
      head += new TextDecoder().decode(d);
      const end = head.indexOf("\r\n\r\n");
      if (end >= 0) {
        sock.destroy();
        resolve(head.slice(0, end));
      }
    });
  });
}

function makeSession(): Session {
  return new Session({
    id: "s_bun",
    token: "t",
    clock: new ManualClock(1000),
    stack: {
      mac: parseMacAddress("02:00:00:00:00:02"),
      ipv4: { address: parseIpv4Address("10.0.2.2"), prefixLength: 24 },
      mtu: 1500,
    },
  });
}

describe("BunTunnelSocket (the shim over Bun's ServerWebSocket)", () => {
  it("is CONNECTING until Bun's open, then follows the Bun socket; close() emits once", () => {
    const shim = new BunTunnelSocket();
    const events: string[] = [];
    shim.addEventListener("open", () => events.push("open"));
    shim.addEventListener("message", (ev) => events.push(`message ${String(ev.data)}`));
    shim.addEventListener("close", () => events.push("close"));
    assert.equal(shim.readyState, 0);
    assert.equal(shim.bufferedAmount, 0);
    assert.throws(() => shim.send(new Uint8Array(1)), /not open \(readyState 0\)/);
    const ws = new FakeBunSocket();
    shim.handleOpen(ws);
    assert.equal(ws.binaryType, "arraybuffer");
    assert.equal(shim.readyState, 1);
    ws.buffered = 12345;
    assert.equal(shim.bufferedAmount, 12345);
    shim.handleMessage("hi");
    shim.close(1000, "bye");
    assert.deepEqual(ws.closed, [[1000, "bye"]]);
    assert.equal(shim.readyState, 2);
    shim.handleMessage("late");
    shim.handleClose();
    shim.handleClose();
    assert.equal(shim.readyState, 3);
    assert.deepEqual(events, ["open", "message hi", "close"]);
  });

  it("maps send statuses: -1 (queued under backpressure) is sent, 0 (dropped) throws", () => {
    const shim = new BunTunnelSocket();
    const ws = new FakeBunSocket();
    shim.handleOpen(ws);
    ws.status = -1;
    shim.send(new Uint8Array([1, 2, 3]));
    assert.equal(ws.sent.length, 1);
    ws.status = 0;
    ws.buffered = 99;
    assert.throws(
      () => shim.send(new Uint8Array(7)),
      /dropped a 7-byte WebSocket message \(status 0: buffered 99 bytes/,
    );
  });

  it("a close() before Bun's open closes the socket as it opens, with no open event", () => {
    const shim = new BunTunnelSocket();
    let opened = false;
    shim.addEventListener("open", () => opened = true);
    shim.close(4001, "session ended");
    const ws = new FakeBunSocket();
    shim.handleOpen(ws);
    assert.deepEqual(ws.closed, [[4001, "session ended"]]);
    assert.equal(opened, false);
  });

  it("carries a tunnel: frames both ways; Bun's buffered bytes and drops are counted", () => {
    const session = makeSession();
    const shim = new BunTunnelSocket();
    attachWebSocketTunnel(session, shim, { maxBufferedBytes: 1000 });
    const ws = new FakeBunSocket();
    shim.handleOpen(ws);
    assert.equal(session.tunnelAttached, true);

    // The stack announces itself (gratuitous ARP) on attach, then answers the request.
    shim.handleMessage(arpRequest().buffer as ArrayBuffer);
    assert.ok(ws.sent.some(isArpReply), "an ARP reply went out through Bun's send");
    const mac = parseMacAddress("02:00:00:00:00:02");
    const sentBefore = ws.sent.length;

    ws.buffered = 5000; // over maxBufferedBytes: the reply is dropped, not queued
    shim.handleMessage(echoRequest(mac, 1).buffer as ArrayBuffer);
    assert.equal(ws.sent.length, sentBefore);
    assert.equal(session.tunnelStats.backpressureDrops, 1);

    ws.buffered = 0;
    ws.status = 0; // Bun dropped it (its own backpressure limit)
    shim.handleMessage(echoRequest(mac, 2).buffer as ArrayBuffer);
    assert.equal(ws.sent.length, sentBefore);
    assert.equal(session.tunnelStats.framesWithoutTunnel, 1);

    ws.status = -1; // queued behind others: sent
    shim.handleMessage(echoRequest(mac, 3).buffer as ArrayBuffer);
    assert.equal(ws.sent.length, sentBefore + 1);
    assert.ok(isEchoReply(3)(ws.sent[sentBefore]));
    shim.handleClose();
    assert.equal(session.tunnelAttached, false);
    session.close();
  });
});

describe("the Bun server (bun run examples/bun/server.ts)", () => {
  let server: Proc;
  let base = "";
  before(async () => {
    server = new Proc(BUN, ["run", "examples/bun/server.ts"], { PORT: "0", NETISLE_LOG: "0" });
    base = (await server.waitFor(/listening on (http:\/\/\S+)/, 30_000))[1];
  });
  after(async () => await server?.stop());

  for (const framing of ["frame", "qemu-stream"] as const) {
    it(`the tunnel client library attaches (${framing} framing) and gets ARP and ping replies`, async () => {
      const s = await createSession(base);
      const port = new MemoryPort();
      const client = new TunnelClient({
        server: base,
        sessionId: s.id,
        token: s.token,
        port,
        framing,
        reconnect: false,
        onState: (st) => {
          if (st === "open") opened();
        },
      });
      let opened!: () => void;
      const open = new Promise<void>((r) => opened = r);
      client.start();
      await open;
      try {
        port.sink!([arpRequest()]);
        await port.waitFor(isArpReply);
        port.sink!([echoRequest(parseMacAddress(s.mac), 7, 1000)]);
        await port.waitFor(isEchoReply(7));
        const view = await (await fetch(`${base}/v1/sessions/${s.id}`, {
          headers: { authorization: `Bearer ${s.token}` },
        })).json();
        assert.equal(view.tunnel.attached, true, JSON.stringify(view.tunnel));
        if (framing === "qemu-stream") {
          assert.match(JSON.stringify(view), /netisle\.qemu-stream\.v1/);
        }
      } finally {
        await client.close();
      }
    });
  }

  it("answers the tunnel subprotocol the route picks, not Bun's default (the first offered)", async () => {
    const s = await createSession(base);
    const url = `${base.replace("http", "ws")}/v1/sessions/${s.id}/tunnel?token=${s.token}`;
    const ws = new WebSocket(url, ["x-unknown", "netisle.qemu-stream.v1"]);
    const protocol = await new Promise<string>((resolve, reject) => {
      ws.onopen = () => resolve(ws.protocol);
      ws.onerror = () => reject(new Error(`WebSocket to ${url} failed`));
    });
    const closed = new Promise((r) => ws.onclose = r);
    ws.close();
    await closed;
    assert.equal(protocol, "netisle.qemu-stream.v1");

    // None of ours offered: no subprotocol in the answer (Bun alone would echo "x-unknown").
    // Checked on the raw handshake: WebSocket clients differ on a missing answer.
    const head = await rawHandshake(new URL(base), `/v1/sessions/${s.id}/tunnel?token=${s.token}`, {
      "sec-websocket-protocol": "x-unknown",
    });
    assert.match(head, /^HTTP\/1\.1 101 /);
    assert.doesNotMatch(head, /sec-websocket-protocol/i);
  });

  // `bun test` stops a test after 5 s unless told otherwise.
  it("a long-poll outlasts Bun's 10 s HTTP idle timeout and answers 204", {
    timeout: 30_000,
  }, async () => {
    const s = await createSession(base);
    const auth = { authorization: `Bearer ${s.token}`, "content-type": "application/json" };
    const sock = await (await fetch(`${base}/v1/sessions/${s.id}/sockets`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ protocol: "udp" }),
    })).json();
    await (await fetch(`${base}/v1/sessions/${s.id}/sockets/${sock.id}/bind`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ port: 5000 }),
    })).body?.cancel();
    const r = await fetch(`${base}/v1/sessions/${s.id}/sockets/${sock.id}/recv?timeoutMs=15000`, {
      method: "POST",
      headers: auth,
    });
    assert.equal(r.status, 204);
  });
});
