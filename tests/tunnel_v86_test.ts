/**
 * v86 compatibility: a client that behaves exactly like v86's network relay
 * adapter (src/browser/network.js: `new WebSocket(url)` with no subprotocol,
 * `binaryType = "arraybuffer"`, frames sent before the socket opens are queued
 * and flushed on open, every `send` is one raw Ethernet frame, every message
 * received is handed to the NIC as one frame) does ARP and ping with the
 * stack through the tunnel URL with `?token=`, and every message it gets is
 * exactly one Ethernet frame.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseMacAddress } from "../src/wire/mod.ts";
import { tunnelUrl } from "../src/wire/tunnel_protocol.ts";
import {
  arpRequest,
  createSession,
  echoRequest,
  eventually,
  isArpReply,
  isEchoReply,
  PEER_MAC,
  withServer,
} from "./_tunnel_test_util.ts";
import { sessionView } from "../src/http/session_view.ts";

/** v86's relay adapter, reduced to what touches the wire. */
class V86StyleAdapter {
  socket: WebSocket | undefined;
  sendQueue: Uint8Array[] = [];
  /** What v86 would hand to its NIC: one entry per message. */
  received: Uint8Array[] = [];
  constructor(readonly url: string) {}
  connect(): void {
    if (this.socket && (this.socket.readyState === 0 || this.socket.readyState === 1)) return;
    this.socket = new WebSocket(this.url);
    this.socket.binaryType = "arraybuffer";
    this.socket.onopen = () => {
      for (const f of this.sendQueue) this.send(f);
      this.sendQueue = [];
    };
    this.socket.onmessage = (e) => this.received.push(new Uint8Array(e.data as ArrayBuffer));
  }
  send(data: Uint8Array): void {
    if (!this.socket || this.socket.readyState !== 1) {
      this.sendQueue.push(data);
      if (this.sendQueue.length > 128) this.sendQueue = this.sendQueue.slice(-64);
      this.connect();
    } else {
      this.socket.send(data);
    }
  }
  async close(): Promise<void> {
    const s = this.socket;
    if (!s || s.readyState === 3) return;
    const closed = new Promise((r) => s.onclose = r);
    s.close();
    await closed;
  }
}

/** The length a message must have if it holds exactly one Ethernet frame (padding allowed). */
function expectedFrameLen(m: Uint8Array): number {
  const etherType = (m[12] << 8) | m[13];
  let len: number;
  if (etherType === 0x0806) len = 14 + 28;
  else if (etherType === 0x0800) len = 14 + ((m[16] << 8) | m[17]);
  else throw new Error(`unexpected EtherType 0x${etherType.toString(16)}`);
  return Math.max(len, m.length === 60 ? 60 : len);
}

describe("v86 compatibility (one raw frame per message, no subprotocol)", () => {
  it("a v86-style relay client does ARP and ping and gets one frame per message", async () => {
    await withServer(async (base, registry) => {
      const s = await createSession(base);
      assert.equal(tunnelUrl(base, s.id), s.tunnel.url);
      const stackMac = parseMacAddress(s.mac);
      const v86 = new V86StyleAdapter(`${s.tunnel.url}?token=${encodeURIComponent(s.token)}`);
      // Like v86: the first frames are sent before the socket exists; they wait in the queue.
      v86.send(arpRequest());
      v86.send(echoRequest(stackMac, 1));
      for (let seq = 2; seq <= 6; seq++) v86.send(echoRequest(stackMac, seq, 1000));
      assert.ok(
        await eventually(() =>
          v86.received.some(isArpReply) &&
          [1, 2, 3, 4, 5, 6].every((seq) => v86.received.some(isEchoReply(seq)))
        ),
        `replies missing; got ${v86.received.length} messages`,
      );
      assert.equal(v86.socket!.protocol, "", "no subprotocol was negotiated");
      const arp = v86.received.find(isArpReply)!;
      assert.deepEqual([...arp.subarray(22, 28)], [...stackMac], "ARP reply names the stack");
      for (const m of v86.received) {
        assert.ok(m.length >= 14 && m.length <= 1514, `message of ${m.length} bytes`);
        assert.equal(m.length, expectedFrameLen(m), "the message is exactly one frame");
        assert.deepEqual([...m.subarray(6, 12)], [...stackMac], "source MAC is the stack's");
        const dst = [...m.subarray(0, 6)];
        assert.ok(
          dst.every((b) => b === 0xff) || dst.join() === [...PEER_MAC].join(),
          `destination ${dst} is the peer or broadcast`,
        );
      }
      for (let seq = 1; seq <= 6; seq++) {
        assert.equal(v86.received.filter(isEchoReply(seq)).length, 1, `one reply to ping ${seq}`);
      }
      const view = sessionView(registry.get(s.id)!);
      assert.equal(view.tunnel.kind, "websocket frame-per-message");
      assert.equal(view.tunnel.rejectedMessages, 0);
      await v86.close();
    });
  });
});
