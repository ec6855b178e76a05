/**
 * The QEMU stream port over real loopback sockets (TCP and Unix), with a fake
 * QEMU built from `node:net` that speaks the length-prefixed framing.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { existsSync, lstatSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeStreamFrames, StreamDeframer } from "../../src/wire/stream_framing.ts";
import {
  listenQemuStream,
  parseHostPort,
  parseQemuStreamAddress,
  type QemuStreamAddress,
  type QemuStreamPort,
} from "./qemu_stream_port.ts";

/** A frame of `len` bytes whose every byte is `fill`. */
function frame(len: number, fill: number): Uint8Array {
  return new Uint8Array(len).fill(fill);
}

/** A fake QEMU: connects, collects the frames the port sends, writes raw bytes. */
class FakeQemu {
  socket: Socket;
  frames: Uint8Array[] = [];
  closed = false;
  #waiters: Array<() => void> = [];

  constructor(address: QemuStreamAddress) {
    this.socket = address.type === "unix"
      ? connect(address.path)
      : connect(address.port, address.host);
    const d = new StreamDeframer(65550, (f) => this.frames.push(new Uint8Array(f)));
    this.socket.on("data", (c: Uint8Array) => {
      d.push(c);
      this.#wake();
    });
    this.socket.on("close", () => {
      this.closed = true;
      this.#wake();
    });
    this.socket.on("error", () => {});
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  connected(): Promise<void> {
    return new Promise((r) => this.socket.once("connect", () => r()));
  }

  write(bytes: Uint8Array): Promise<void> {
    return new Promise((r) => this.socket.write(bytes, () => r()));
  }

  /** Waits until `cond()` holds; fails after 5 s. */
  async until(cond: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 5000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  end(): void {
    this.socket.destroy();
  }
}

/** Waits up to 5 s for `cond()`. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function tcpPort(
  extra: Partial<Parameters<typeof listenQemuStream>[0]> = {},
): Promise<{ port: QemuStreamPort; got: Uint8Array[]; logs: string[] }> {
  const logs: string[] = [];
  const port = await listenQemuStream({
    address: { type: "tcp", host: "127.0.0.1", port: 0 },
    log: (l) => logs.push(l),
    ...extra,
  });
  const got: Uint8Array[] = [];
  port.start((frames) => got.push(...frames));
  return { port, got, logs };
}

describe("parseQemuStreamAddress", () => {
  it("parses unix:PATH, tcp:HOST:PORT and tcp:[IPV6]:PORT", () => {
    assert.deepEqual(parseQemuStreamAddress("unix:/tmp/a b.sock"), {
      type: "unix",
      path: "/tmp/a b.sock",
    });
    assert.deepEqual(parseQemuStreamAddress("tcp:127.0.0.1:5555"), {
      type: "tcp",
      host: "127.0.0.1",
      port: 5555,
    });
    assert.deepEqual(parseQemuStreamAddress("tcp:[::1]:7"), { type: "tcp", host: "::1", port: 7 });
    assert.deepEqual(parseHostPort("localhost:0"), { host: "localhost", port: 0 });
  });

  it("rejects other forms with a TypeError that quotes the value", () => {
    for (const bad of ["udp:1.2.3.4:5", "unix:", "tcp:1.2.3.4", "tcp:host:70000", "tcp::5", "x"]) {
      assert.throws(
        () => parseQemuStreamAddress(bad),
        (e: Error) => e instanceof TypeError && e.message.includes(`"${bad}"`),
        bad,
      );
    }
  });
});

describe("QemuStreamPort over loopback TCP", () => {
  it("deframes frames split anywhere across writes", async () => {
    const { port, got } = await tcpPort();
    try {
      const q = new FakeQemu(port.address);
      await q.connected();
      const a = frame(60, 1);
      const b = frame(1514, 2);
      const bytes = encodeStreamFrames([a, b]);
      // Writes of 1 byte, then 3, then 97: prefixes and frames split in many places.
      for (const step of [1, 3, 97]) {
        got.length = 0;
        for (let i = 0; i < bytes.length; i += step) await q.write(bytes.slice(i, i + step));
        await until(() => got.length === 2, `two frames in writes of ${step}`);
        assert.deepEqual(got[0], a);
        assert.deepEqual(got[1], b);
      }
      assert.equal(port.stats.rxFrames, 6);
      assert.equal(port.stats.rxBytes, 3 * (60 + 1514));
      q.end();
    } finally {
      await port.close();
    }
  });

  it("sends frames to QEMU length-prefixed, several per write", async () => {
    const { port } = await tcpPort();
    try {
      const q = new FakeQemu(port.address);
      await q.connected();
      await until(() => port.connected, "the port to accept");
      const sent = [frame(60, 3), frame(1000, 4), frame(1514, 5)];
      for (const f of sent) port.send(f);
      await q.until(() => q.frames.length === 3, "three frames at QEMU");
      assert.deepEqual(q.frames, sent);
      assert.equal(port.stats.txFrames, 3);
      assert.equal(port.stats.txBytes, 60 + 1000 + 1514);
      assert.equal(port.stats.txErrors, 0);
      q.end();
    } finally {
      await port.close();
    }
  });

  it("drops frames for QEMU while none is connected, and keeps listening after QEMU leaves", async () => {
    const { port, got, logs } = await tcpPort();
    try {
      port.send(frame(60, 1));
      assert.equal(port.stats.txNoPeer, 1);
      assert.equal(port.stats.txErrors, 1);
      const q1 = new FakeQemu(port.address);
      await q1.connected();
      await until(() => port.connected, "the first connection");
      q1.end();
      await until(() => !port.connected, "the disconnect to be noticed");
      assert.ok(logs.some((l) => /QEMU disconnected; still listening/.test(l)), logs.join("\n"));
      const q2 = new FakeQemu(port.address);
      await q2.connected();
      await q2.write(encodeStreamFrames([frame(64, 9)]));
      await until(() => got.length === 1, "a frame over the second connection");
      port.send(frame(70, 8));
      await q2.until(() => q2.frames.length === 1, "a frame at the second QEMU");
      assert.equal(port.stats.connections, 2);
      q2.end();
    } finally {
      await port.close();
    }
  });

  it("a second QEMU connection replaces the first, which is closed", async () => {
    const { port, got, logs } = await tcpPort();
    try {
      const q1 = new FakeQemu(port.address);
      await q1.connected();
      await until(() => port.stats.connections === 1, "the first connection");
      const q2 = new FakeQemu(port.address);
      await q2.connected();
      await q1.until(() => q1.closed, "the first connection to be closed");
      assert.equal(port.stats.replaced, 1);
      assert.ok(logs.some((l) => /replaces the current one/.test(l)), logs.join("\n"));
      port.send(frame(60, 7));
      await q2.until(() => q2.frames.length === 1, "a frame at the second QEMU");
      await q2.write(encodeStreamFrames([frame(60, 6)]));
      await until(() => got.length === 1, "a frame from the second QEMU");
      assert.equal(got[0][0], 6);
      q2.end();
    } finally {
      await port.close();
    }
  });

  it("closes a connection whose length prefix is over the limit, logs and counts it, keeps listening", async () => {
    const { port, got, logs } = await tcpPort({ maxStreamFrameLen: 4000 });
    try {
      const q = new FakeQemu(port.address);
      await q.connected();
      // A good frame, then a prefix of 4001 in the same write: the good one still arrives.
      const bad = new Uint8Array([0, 0, 0x0f, 0xa1, 1, 2, 3]);
      const good = encodeStreamFrames([frame(60, 1)]);
      const both = new Uint8Array(good.length + bad.length);
      both.set(good);
      both.set(bad, good.length);
      await q.write(both);
      await q.until(() => q.closed, "the port to close the connection");
      assert.equal(got.length, 1);
      assert.equal(port.stats.malformed, 1);
      assert.ok(
        logs.some((l) => /frame length 4001 is over the limit of 4000 bytes/.test(l)),
        logs.join("\n"),
      );
      const q2 = new FakeQemu(port.address);
      await q2.connected();
      await q2.write(encodeStreamFrames([frame(60, 2)]));
      await until(() => got.length === 2, "a frame over a new connection");
      q2.end();
    } finally {
      await port.close();
    }
  });

  it("drops and counts frames over maxFrameLen and shorter than an Ethernet header", async () => {
    const { port, got } = await tcpPort({ maxFrameLen: 1514 });
    try {
      const q = new FakeQemu(port.address);
      await q.connected();
      await q.write(encodeStreamFrames([frame(1515, 1), frame(13, 2), frame(0, 3), frame(14, 4)]));
      await until(() => port.stats.rxRunt === 2 && got.length === 1, "the drops");
      assert.equal(port.stats.rxOversize, 1);
      assert.equal(got[0].length, 14);
      assert.equal(port.stats.malformed, 0);
      q.end();
    } finally {
      await port.close();
    }
  });

  it("bounds the bytes waiting for a QEMU that does not read", async () => {
    const limit = 64 * 1024;
    const { port } = await tcpPort({ maxQueuedBytes: limit });
    try {
      const q = new FakeQemu(port.address);
      await q.connected();
      q.socket.pause();
      await until(() => port.connected, "the port to accept");
      // Under the limit per turn, so only a backlog across turns (the kernel's buffers full)
      // can hit it.
      for (let round = 0; round < 2000 && port.stats.txOverflow === 0; round++) {
        for (let i = 0; i < 32; i++) port.send(frame(1514, 1));
        await new Promise((r) => setTimeout(r, 1));
      }
      assert.ok(port.stats.txOverflow > 0, JSON.stringify(port.stats));
      assert.ok(port.stats.txFrames > 32, JSON.stringify(port.stats));
      assert.equal(port.stats.txErrors, port.stats.txOverflow);
      q.end();
    } finally {
      await port.close();
    }
  });
});

describe("QemuStreamPort over a Unix socket", () => {
  it("replaces a stale socket file, carries frames both ways and removes the file on close", async () => {
    const dir = mkdtempSync(join(tmpdir(), "netisle-qemu-stream-"));
    const path = join(dir, "q.sock");
    try {
      // A stale socket left by an earlier run: bound, never unlinked (node:net would unlink it).
      execFileSync("python3", [
        "-c",
        "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
        path,
      ]);
      assert.ok(lstatSync(path).isSocket(), "the stale socket file is there");
      const logs: string[] = [];
      const port = await listenQemuStream({
        address: { type: "unix", path },
        log: (l) => logs.push(l),
      });
      assert.equal(port.name, `qemu-stream:unix:${path}`);
      const got: Uint8Array[] = [];
      port.start((frames) => got.push(...frames));
      const q = new FakeQemu({ type: "unix", path });
      await q.connected();
      await q.write(encodeStreamFrames([frame(100, 5)]));
      await until(() => got.length === 1, "a frame over the Unix socket");
      port.send(frame(200, 6));
      await q.until(() => q.frames.length === 1, "a frame at QEMU");
      assert.equal(q.frames[0].length, 200);
      q.end();
      await port.close();
      assert.equal(existsSync(path), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses to replace a file that is not a socket", async () => {
    const dir = mkdtempSync(join(tmpdir(), "netisle-qemu-stream-"));
    const path = join(dir, "regular");
    try {
      writeFileSync(path, "keep me");
      await assert.rejects(
        listenQemuStream({ address: { type: "unix", path } }),
        (e: Error) => e.message.includes(`"${path}" exists and is not a Unix socket`),
      );
      assert.equal(existsSync(path), true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a socket path another listener is using, which keeps working", async () => {
    const dir = mkdtempSync(join(tmpdir(), "netisle-qemu-stream-"));
    const path = join(dir, "q.sock");
    const port = await listenQemuStream({ address: { type: "unix", path }, log: () => {} });
    try {
      const got: Uint8Array[] = [];
      port.start((frames) => got.push(...frames));
      await assert.rejects(
        listenQemuStream({ address: { type: "unix", path } }),
        (e: Error) => e.message.includes(`unix:${path}: another process listens there`),
      );
      const q = new FakeQemu({ type: "unix", path });
      await q.connected();
      await q.write(encodeStreamFrames([frame(60, 1)]));
      await until(() => got.length === 1, "a frame at the first listener");
      q.end();
    } finally {
      await port.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("rejects an address in use with the address in the message", async () => {
    const { port } = await tcpPort();
    try {
      const a = port.address;
      assert.equal(a.type, "tcp");
      await assert.rejects(
        listenQemuStream({ address: a }),
        (e: Error) => e.message.includes(`cannot listen on tcp:127.0.0.1:${a.port}`),
      );
    } finally {
      await port.close();
    }
  });
});
