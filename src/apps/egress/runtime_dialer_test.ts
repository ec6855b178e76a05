/**
 * The runtime adapters against real sockets on loopback: under `deno test`
 * the Deno dialer, under `bun test` the Bun one (UDP through node:dgram in
 * both). Peers are node:net and node:dgram servers in the same process.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import dgram from "node:dgram";
import type { EgressDialer } from "./dialer.ts";
import { DialError } from "./dialer.ts";

const isBun = "Bun" in globalThis;

async function dialer(): Promise<EgressDialer> {
  if (isBun) return (await import("./dial_bun.ts")).bunDialer();
  return (await import("./dial_deno.ts")).denoDialer();
}

function listen(onConn: (s: net.Socket) => void): Promise<{ port: number; close(): void }> {
  return new Promise((resolve) => {
    const srv = net.createServer({ allowHalfOpen: true }, onConn);
    srv.listen(0, "127.0.0.1", () => {
      resolve({ port: (srv.address() as net.AddressInfo).port, close: () => srv.close() });
    });
  });
}

async function readAll(conn: { read(max: number): Promise<Uint8Array | null> }) {
  const parts: number[] = [];
  for (;;) {
    const c = await conn.read(65536);
    if (c === null) return parts;
    parts.push(...c);
  }
}

describe(`${isBun ? "Bun" : "Deno"} dialer on loopback`, () => {
  it("connects, writes, reads and half-closes both ways", async () => {
    const d = await dialer();
    let serverGot = "";
    const srv = await listen((s) => {
      s.on("data", (b) => serverGot += b.toString());
      s.on("end", () => {
        // The client finished sending; the server still answers, then ends.
        s.end(`got ${serverGot.length} bytes`);
      });
    });
    try {
      const conn = await d.connectTcp("127.0.0.1", srv.port);
      await conn.write(new TextEncoder().encode("hello, "));
      await conn.write(new TextEncoder().encode("world"));
      await conn.closeWrite();
      const back = new TextDecoder().decode(new Uint8Array(await readAll(conn)));
      assert.equal(back, "got 12 bytes");
      assert.equal(serverGot, "hello, world");
      conn.close();
    } finally {
      srv.close();
    }
  });

  it("moves 8 MiB each way byte-exact with reads bounded by max", async () => {
    const d = await dialer();
    const size = 8 * 1024 * 1024;
    const srv = await listen((s) => s.pipe(s));
    try {
      const conn = await d.connectTcp("127.0.0.1", srv.port);
      const data = new Uint8Array(size);
      for (let i = 0; i < size; i++) data[i] = (i * 31 + (i >> 13)) & 0xff;
      const writing = (async () => {
        for (let o = 0; o < size; o += 100_000) await conn.write(data.subarray(o, o + 100_000));
        await conn.closeWrite();
      })();
      let got = 0;
      let bad = -1;
      for (;;) {
        const c = await conn.read(3000);
        if (c === null) break;
        assert.ok(c.length <= 3000);
        for (let i = 0; i < c.length; i++) if (c[i] !== data[got + i] && bad < 0) bad = got + i;
        got += c.length;
      }
      await writing;
      assert.equal(got, size);
      assert.equal(bad, -1, `first wrong byte at ${bad}`);
      conn.close();
    } finally {
      srv.close();
    }
  });

  it("rejects a refused connection with DialError refused", async () => {
    const d = await dialer();
    const srv = await listen(() => {});
    const port = srv.port;
    srv.close();
    await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(d.connectTcp("127.0.0.1", port), (e: unknown) => {
      assert.ok(e instanceof DialError, String(e));
      assert.equal(e.kind, "refused");
      return true;
    });
  });

  it("rejects a read when the server resets", async () => {
    const d = await dialer();
    const srv = await listen((s) => s.on("data", () => s.resetAndDestroy()));
    try {
      const conn = await d.connectTcp("127.0.0.1", srv.port);
      await conn.write(new Uint8Array([1]));
      await assert.rejects(readAll(conn));
      conn.close();
    } finally {
      srv.close();
    }
  });

  it("sends and receives UDP through node:dgram, to two destinations", async () => {
    const d = await dialer();
    const echo = dgram.createSocket("udp4");
    const echo2 = dgram.createSocket("udp4");
    const bind = (s: dgram.Socket) =>
      new Promise<number>((r) => s.bind(0, "127.0.0.1", () => r(s.address().port)));
    const p1 = await bind(echo);
    const p2 = await bind(echo2);
    echo.on("message", (m, r) => echo.send(m, r.port, r.address));
    echo2.on("message", (m, r) => echo2.send(Buffer.concat([m, m]), r.port, r.address));
    const got: string[] = [];
    let wake!: () => void;
    const sock = await d.openUdp!({
      message: (data, address, port) => {
        got.push(`${address}:${port === p1 ? "p1" : "p2"}:${new TextDecoder().decode(data)}`);
        if (got.length === 2) wake();
      },
      error: () => {},
    });
    const both = new Promise<void>((r) => wake = r);
    await sock.send(new TextEncoder().encode("a"), "127.0.0.1", p1);
    await new Promise((r) => setTimeout(r, 20));
    await sock.send(new TextEncoder().encode("b"), "127.0.0.1", p2);
    await both;
    assert.deepEqual(got.sort(), ["127.0.0.1:p1:a", "127.0.0.1:p2:bb"]);
    sock.close();
    echo.close();
    echo2.close();
  });

  it("dials an IPv6 literal (::1, no brackets) both ways", async () => {
    const d = await dialer();
    const srv = await new Promise<{ port: number; close(): void }>((resolve) => {
      const s = net.createServer({ allowHalfOpen: true }, (c) => {
        c.on("data", (b) => c.end(`v6 ${c.remoteAddress} ${b.toString()}`));
      });
      s.listen(0, "::1", () => {
        resolve({ port: (s.address() as net.AddressInfo).port, close: () => s.close() });
      });
    });
    try {
      const conn = await d.connectTcp("::1", srv.port);
      await conn.write(new TextEncoder().encode("hi"));
      const back = new TextDecoder().decode(new Uint8Array(await readAll(conn)));
      assert.equal(back, "v6 ::1 hi");
      conn.close();
    } finally {
      srv.close();
    }
  });

  it("opens a UDP socket for IPv6 (family 6) and hears the echo from ::1", async () => {
    const d = await dialer();
    const echo = dgram.createSocket("udp6");
    const port = await new Promise<number>((r) =>
      echo.bind(0, "::1", () => r(echo.address().port))
    );
    echo.on("message", (m, r) => echo.send(m, r.port, r.address));
    let got!: (v: string) => void;
    const heard = new Promise<string>((r) => got = r);
    const sock = await d.openUdp!({
      message: (data, address, p) =>
        got(`${address}:${p === port}:${new TextDecoder().decode(data)}`),
      error: () => {},
    }, 6);
    await sock.send(new TextEncoder().encode("six"), "::1", port);
    assert.equal(await heard, "::1:true:six");
    sock.close();
    echo.close();
  });
});
