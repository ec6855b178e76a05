import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { established, FULL_SYN_OPTIONS } from "./tcp_harness.ts";
import { resolveTcpConfig } from "./tcp_config.ts";

describe("TcpConnection send-buffer autotuning (as Linux's tcp_sndbuf_expand)", () => {
  it("grows the send buffer to twice cwnd as the window grows, up to sendBufferMaxBytes", () => {
    const { h, peer, conn } = established({
      tcp: { sendBufferMaxBytes: 1024 * 1024 },
      peer: { syn: FULL_SYN_OPTIONS },
    });
    const capacity = () => conn.writableBytes + conn.info().sendQueued;
    assert.equal(capacity(), 512 * 1024, "sendBufferBytes at first");
    const chunk = new Uint8Array(64 * 1024);
    for (let round = 0; round < 12; round++) {
      while (conn.send(chunk, h.now) > 0) { /* fill what the buffer takes */ }
      h.advance(1);
      for (const seg of peer.drain()) peer.ackTo((seg.seqNumber + seg.payload.length) >>> 0);
    }
    assert.ok(conn.info().cwnd > 512 * 1024, `cwnd ${conn.info().cwnd}`);
    assert.equal(capacity(), 1024 * 1024, "grown to the maximum and no further");
  });

  it("keeps a send buffer set without a maximum at its size (as SO_SNDBUF)", () => {
    assert.equal(resolveTcpConfig({ sendBufferBytes: 4096 }).sendBufferMaxBytes, 4096);
    assert.equal(resolveTcpConfig({}).sendBufferMaxBytes, 4 * 1024 * 1024);
    assert.throws(
      () => resolveTcpConfig({ sendBufferBytes: 8192, sendBufferMaxBytes: 4096 }),
      /sendBufferMaxBytes must be an integer in 8192\.\.1073741824, got 4096/,
    );
  });
});

describe("TcpConnection receive-buffer autotuning (as Linux's tcp_rcv_space_adjust)", () => {
  it("offers a window scale for the largest buffer, and grows the window for a fast reader", () => {
    const { h, peer, conn } = established({
      tcp: { recvBufferMaxBytes: 2 * 1024 * 1024 },
      peer: { syn: FULL_SYN_OPTIONS },
    });
    assert.equal(conn.info().recvWindowScale, 6, "65535 << 6 covers 2 MiB");
    const windowOf = () => conn.info().recvWindow;
    assert.ok(windowOf() <= 512 * 1024);
    // Each millisecond (the round trip the timestamps show) the peer sends what the window
    // allows and the application reads it all.
    for (let ms = 0; ms < 12; ms++) {
      let left = conn.info().recvWindow;
      while (left >= 1448) {
        peer.send(1448);
        left -= 1448;
      }
      h.advance(1);
      while (conn.read(1 << 20, h.now)) { /* the application keeps up */ }
      peer.drain();
    }
    assert.ok(windowOf() > 1024 * 1024, `window ${windowOf()}`);
    assert.ok(windowOf() <= 2 * 1024 * 1024);
  });

  it("keeps the window of a reader that does not keep up", () => {
    const { h, peer, conn } = established({
      tcp: { recvBufferMaxBytes: 2 * 1024 * 1024 },
      peer: { syn: FULL_SYN_OPTIONS },
    });
    for (let ms = 0; ms < 12; ms++) {
      for (let i = 0; i < 20; i++) peer.send(1448);
      h.advance(1);
      conn.read(1448, h.now); // one segment a millisecond
      peer.drain();
    }
    assert.ok(conn.readableBytes + conn.info().recvWindow <= 512 * 1024 + 1448);
  });
});
