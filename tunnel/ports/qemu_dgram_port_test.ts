/**
 * The QEMU dgram port over real loopback UDP sockets, with a fake QEMU built
 * from `node:dgram` (one frame per datagram).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import {
  bindQemuDgram,
  parseQemuDgramAddress,
  parseUdpPeer,
  type QemuDgramPort,
  type QemuDgramPortOptions,
} from "./qemu_dgram_port.ts";

function frame(len: number, fill: number): Uint8Array {
  return new Uint8Array(len).fill(fill);
}

/** A fake QEMU: a bound UDP socket that records every datagram it receives. */
class FakeQemu {
  socket: Socket = createSocket("udp4");
  got: Uint8Array[] = [];

  async bind(): Promise<number> {
    await new Promise<void>((r) => this.socket.bind(0, "127.0.0.1", () => r()));
    this.socket.on("message", (m) => this.got.push(new Uint8Array(m)));
    return this.socket.address().port;
  }

  send(data: Uint8Array, port: number): Promise<void> {
    return new Promise((r) => this.socket.send(data, port, "127.0.0.1", () => r()));
  }

  close(): void {
    this.socket.close();
  }
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function open(
  extra: Partial<QemuDgramPortOptions> = {},
): Promise<{ port: QemuDgramPort; got: Uint8Array[]; logs: string[] }> {
  const logs: string[] = [];
  const port = await bindQemuDgram({
    bind: { host: "127.0.0.1", port: 0 },
    log: (l) => logs.push(l),
    ...extra,
  });
  const got: Uint8Array[] = [];
  port.start((frames) => got.push(...frames));
  return { port, got, logs };
}

describe("QEMU dgram addresses", () => {
  it("parses udp:HOST:PORT and a peer HOST:PORT", () => {
    assert.deepEqual(parseQemuDgramAddress("udp:127.0.0.1:5556"), {
      host: "127.0.0.1",
      port: 5556,
    });
    assert.deepEqual(parseQemuDgramAddress("udp:[::1]:0"), { host: "::1", port: 0 });
    assert.deepEqual(parseUdpPeer("localhost:5557"), { host: "localhost", port: 5557 });
  });

  it("rejects other forms with a TypeError that quotes the value", () => {
    for (const bad of ["tcp:127.0.0.1:1", "udp:127.0.0.1", "udp:1.2.3.4:99999", "127.0.0.1:1"]) {
      assert.throws(
        () => parseQemuDgramAddress(bad),
        (e: Error) => e instanceof TypeError && e.message.includes(`"${bad}"`),
      );
    }
    for (const bad of ["127.0.0.1:0", "udp:127.0.0.1:5", "nohost"]) {
      assert.throws(
        () => parseUdpPeer(bad),
        (e: Error) => e instanceof TypeError && e.message.includes(`"${bad}"`),
      );
    }
  });
});

describe("QemuDgramPort over loopback UDP", () => {
  it("learns the peer from the first datagram and sends frames back to it", async () => {
    const { port, got, logs } = await open();
    const q = new FakeQemu();
    try {
      const qPort = await q.bind();
      port.send(frame(60, 1));
      assert.equal(port.stats.txNoPeer, 1, "no peer known yet");
      await q.send(frame(60, 2), port.address.port);
      await until(() => got.length === 1, "a frame from QEMU");
      assert.deepEqual(got[0], frame(60, 2));
      assert.deepEqual(port.peer, { host: "127.0.0.1", port: qPort });
      assert.ok(logs.some((l) => l.includes(`127.0.0.1:${qPort} (learned)`)), logs.join("\n"));
      port.send(frame(1514, 3));
      port.send(frame(70, 4));
      await until(() => q.got.length === 2, "two frames at QEMU");
      assert.deepEqual(q.got, [frame(1514, 3), frame(70, 4)]);
      assert.equal(port.stats.txFrames, 2);
      assert.equal(port.stats.rxFrames, 1);
      assert.equal(port.stats.peerChanges, 1);
    } finally {
      q.close();
      await port.close();
    }
  });

  it("follows a learned peer that moves to another port", async () => {
    const { port, got } = await open();
    const q1 = new FakeQemu();
    const q2 = new FakeQemu();
    try {
      await q1.bind();
      const p2 = await q2.bind();
      await q1.send(frame(60, 1), port.address.port);
      await until(() => got.length === 1, "the first frame");
      await q2.send(frame(60, 2), port.address.port);
      await until(() => got.length === 2, "the second frame");
      assert.equal(port.peer?.port, p2);
      port.send(frame(60, 5));
      await until(() => q2.got.length === 1, "a frame at the new peer");
      assert.equal(q1.got.length, 0);
      assert.equal(port.stats.peerChanges, 2);
    } finally {
      q1.close();
      q2.close();
      await port.close();
    }
  });

  it("with a fixed peer, sends there at once and drops datagrams from anyone else", async () => {
    const q = new FakeQemu();
    const stranger = new FakeQemu();
    const qPort = await q.bind();
    await stranger.bind();
    const { port, got } = await open({ peer: { host: "127.0.0.1", port: qPort } });
    try {
      port.send(frame(60, 1));
      await until(() => q.got.length === 1, "a frame at the fixed peer");
      await stranger.send(frame(60, 2), port.address.port);
      await q.send(frame(60, 3), port.address.port);
      await until(() => got.length === 1, "the peer's frame");
      assert.equal(got[0][0], 3);
      assert.equal(port.stats.rxForeign, 1);
      assert.equal(port.peer?.port, qPort);
    } finally {
      q.close();
      stranger.close();
      await port.close();
    }
  });

  it("drops and counts datagrams over maxFrameLen or shorter than an Ethernet header", async () => {
    const { port, got } = await open({ maxFrameLen: 1514 });
    const q = new FakeQemu();
    try {
      await q.bind();
      await q.send(frame(1515, 1), port.address.port);
      await q.send(frame(13, 2), port.address.port);
      await q.send(frame(1514, 3), port.address.port);
      await until(() => got.length === 1, "the good frame");
      await until(() => port.stats.rxOversize === 1 && port.stats.rxRunt === 1, "the drops");
      assert.equal(got[0].length, 1514);
    } finally {
      q.close();
      await port.close();
    }
  });

  it("bounds the datagrams in flight", async () => {
    const q = new FakeQemu();
    const qPort = await q.bind();
    const { port } = await open({ peer: { host: "127.0.0.1", port: qPort }, maxInFlight: 4 });
    try {
      for (let i = 0; i < 10; i++) port.send(frame(60, i));
      assert.equal(port.stats.txFrames, 4);
      assert.equal(port.stats.txOverflow, 6);
      assert.equal(port.stats.txErrors, 6);
      await until(() => q.got.length === 4, "the four frames in flight");
      port.send(frame(60, 99));
      await until(() => q.got.length === 5, "a frame once the sends completed");
    } finally {
      q.close();
      await port.close();
    }
  });

  it("rejects a bind address in use with the address in the message", async () => {
    const { port } = await open();
    try {
      await assert.rejects(
        bindQemuDgram({ bind: port.address }),
        (e: Error) => e.message.includes(`cannot bind udp:127.0.0.1:${port.address.port}`),
      );
    } finally {
      await port.close();
    }
  });
});
