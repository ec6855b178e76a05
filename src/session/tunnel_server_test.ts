/**
 * attachWebSocketTunnel with a socket that lends its messages: the tunnel
 * opts in, and frames that must wait for the core lock outlive the message
 * buffer they arrived in (DESIGN.md: frames are borrowed).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { attachWebSocketTunnel, type TunnelSocket } from "./tunnel_server.ts";
import { arpRequest, makeSession } from "./_session_test_util.ts";
import { encodeStreamFrames, StreamDeframer } from "../wire/stream_framing.ts";
import { VNET_HDR_LEN } from "../wire/vnet_header.ts";
import type { TunnelFraming } from "../wire/tunnel_protocol.ts";

/**
 * A socket that lends every binary message as the server's WebSocket engine
 * does: in one buffer, reused (here: overwritten) as soon as the listeners
 * returned.
 */
class LendingSocket implements TunnelSocket {
  binaryType = "arraybuffer";
  readonly readyState = 1;
  readonly bufferedAmount = 0;
  lending = false;
  sent: Uint8Array[] = [];
  #buffer = new ArrayBuffer(64 * 1024);
  #listeners: ((ev: { data: unknown }) => void)[] = [];

  send(data: Uint8Array | ArrayBuffer): void {
    this.sent.push(data instanceof ArrayBuffer ? new Uint8Array(data) : data.slice());
  }
  lendBinaryMessages(): void {
    this.lending = true;
  }
  close(): void {}
  addEventListener(type: string, listener: (ev: { data: unknown }) => void): void {
    if (type === "message") this.#listeners.push(listener);
  }

  /** Delivers `bytes` as one lent message, then reuses the buffer. */
  deliver(bytes: Uint8Array): void {
    assert.ok(this.lending, "only a consumer that opted in gets lent messages");
    const view = new Uint8Array(this.#buffer, 0, bytes.length);
    view.set(bytes);
    for (const l of this.#listeners) l({ data: view });
    new Uint8Array(this.#buffer).fill(0xee); // the next message's bytes
  }
}

/** The ARP replies in the messages `sent` (encoded as `framing` says). */
function arpReplies(sent: Uint8Array[], framing: TunnelFraming): number {
  let n = 0;
  const count = (f: Uint8Array) => {
    if (f[12] === 0x08 && f[13] === 0x06 && f[21] === 2) n++;
  };
  const skip = framing === "vnet-stream" ? VNET_HDR_LEN : 0;
  const deframer = new StreamDeframer(1 << 20, (r) => count(r.subarray(skip)));
  for (const m of sent) {
    if (framing === "frame") count(m);
    else deframer.push(m);
  }
  return n;
}

/** `frames` as one message of `framing`. */
function message(frames: Uint8Array[], framing: TunnelFraming): Uint8Array {
  if (framing === "frame") return frames[0];
  if (framing === "qemu-stream") return encodeStreamFrames(frames);
  // vnet records: a zero virtio-net header (no offload) in front of each frame.
  return encodeStreamFrames(frames.map((f) => {
    const r = new Uint8Array(VNET_HDR_LEN + f.length);
    r.set(f, VNET_HDR_LEN);
    return r;
  }));
}

describe("attachWebSocketTunnel with a lending socket", () => {
  for (const framing of ["frame", "qemu-stream", "vnet-stream"] as const) {
    const count = framing === "frame" ? 1 : 3;
    it(`${framing}: frames that wait for the core lock are copied before the buffer is reused`, () => {
      const session = makeSession();
      const socket = new LendingSocket();
      attachWebSocketTunnel(session, socket, { framing });
      assert.ok(socket.lending, "the tunnel opted in");
      socket.sent = [];
      const frames = Array.from({ length: count }, () => arpRequest());
      // The lock is held (the core is busy): the frames wait in the input queue, and the
      // socket overwrites its buffer before the core gets to them.
      session.withCore(() => {
        socket.deliver(message(frames, framing));
        assert.equal(session.stack.counters.rxFrames, 0, "queued, not processed yet");
      });
      assert.equal(session.stack.counters.rxFrames, count);
      assert.equal(session.stack.counters.rxHandled, count, "processed intact after the reuse");
      assert.equal(arpReplies(socket.sent, framing), count, "an ARP reply to each");
      // With the lock free, the frames are processed within the call (no copy needed).
      socket.deliver(message(frames, framing));
      assert.equal(session.stack.counters.rxHandled, 2 * count);
      assert.equal(arpReplies(socket.sent, framing), 2 * count);
    });
  }
});
