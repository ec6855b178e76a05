/**
 * The client SDK (src/client): the same scenario (tests/_sdk_scenario.mjs:
 * connect and echo 1 MiB byte-exact, listen/accept, UDP, errors) on Deno and
 * Bun (the TypeScript sources, their own WebSocket) and Node 20 (the bundle
 * dist/netisle-client.js with `ws`), each against tests/_sdk_server.ts; then,
 * in process, what the scenario cannot see: backpressure both ways, a
 * dropped WebSocket, a reset, an abort. Headless Chromium runs the scenario
 * in tests/client_browser_test.ts.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import WsWebSocket from "ws";
import { BUN, DENO, ROOT } from "./e2e/harness.ts";
import { openSession, startServer, type TestServer, type TestSession } from "./_abuse_server.ts";
import { startPeerServices, startSdkServer } from "./_sdk_server.ts";
import { NetisleClient, NetisleError, type NetisleSession } from "../src/client/mod.ts";
import type { WebSocketConstructor } from "../src/client/mod.ts";
import { TcpServer } from "../src/socket/mod.ts";
import { STREAM_WINDOW_BYTES } from "../src/http/socket_stream_protocol.ts";

const STEPS = ["session", "echo", "listen/accept", "udp", "errors", "done"];

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: ROOT, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

describe("the client SDK on every runtime (tests/_sdk_scenario.mjs)", () => {
  before(() => {
    execFileSync("node", ["scripts/build.mjs"], { cwd: ROOT, stdio: "pipe" });
  });

  it("bundles for browsers without server code: dist/netisle-client.js imports nothing", () => {
    const js = readFileSync(`${ROOT}/dist/netisle-client.js`, "utf8");
    assert.doesNotMatch(js, /^\s*import\s/m, "the bundle imports nothing");
    assert.doesNotMatch(js, /\bhono\b|\bDeno\.|\bBun\.|\brequire\(/);
    assert.match(js, /export \{[^}]*NetisleClient/);
    assert.ok(js.length < 100_000, `${js.length} bytes: the SDK alone, not the server`);
  });

  for (
    const [runtime, argv] of [
      ["deno", [DENO, "run", "-A", "tests/_sdk_run.ts"]],
      ["bun", [BUN, "tests/_sdk_run.ts"]],
      ["node", ["node", "tests/_sdk_run_node.mjs"]],
    ] as const
  ) {
    it(`${runtime}: connect + 1 MiB echo, listen/accept, UDP, errors`, async () => {
      const s = await startSdkServer();
      try {
        const out = await run(argv[0], [...argv.slice(1), s.server, s.id, s.token]);
        for (const step of STEPS) {
          assert.match(out, new RegExp(`^ok ${step}:`, "m"), `step ${step} in:\n${out}`);
        }
        assert.match(out, /^ok echo: 1048576 bytes byte-exact/m);
        assert.match(
          out,
          /ok errors: ECONNREFUSED EHOSTUNREACH EUNAUTHORIZED EADDRINUSE ECONNREFUSED/,
        );
        console.log(`${runtime}: ${out.trim().split("\n").join(" | ")}`);
      } finally {
        await s.proc.stop();
      }
    });
  }
});

/** Waits until `read()` gives the same value `times` times in a row, 50 ms apart. */
async function settled<T>(read: () => Promise<T>, times = 6, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = JSON.stringify(await read());
  let same = 0;
  while (same < times) {
    if (Date.now() > deadline) throw new Error(`never settled; last ${last}`);
    await new Promise((r) => setTimeout(r, 50));
    const now = JSON.stringify(await read());
    same = now === last ? same + 1 : 0;
    last = now;
  }
  return JSON.parse(last);
}

describe("the client SDK in process: backpressure and failures", () => {
  let server: TestServer;
  let t: TestSession;
  let session: NetisleSession;
  const sockets: WsWebSocket[] = [];
  /** `ws`'s WebSocket, remembering each one so a test can drop it. */
  class Recorded extends WsWebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  }

  before(async () => {
    server = await startServer();
    t = await openSession(server);
    startPeerServices(t.peer);
    const client = new NetisleClient({
      server: server.base,
      WebSocket: Recorded as unknown as WebSocketConstructor,
    });
    session = client.session(t.id, t.token);
  });
  after(async () => {
    t.close();
    await server.close();
  });

  const row = async (id: string) => {
    const res = await t.api("GET", `/sockets/${id}`);
    return await res.json();
  };

  it("a reader that stops stops the peer: the server sends at most the window ahead", async () => {
    const socket = session.connect({ hostname: "10.0.2.15", port: 19 }); // chargen
    await socket.opened;
    const id = socket.id!;
    const stalled = await settled(async () => {
      const r = await row(id);
      return { received: r.tcp.bytesReceived, queued: r.recvQueued };
    });
    const sentToClient = stalled.received - stalled.queued;
    assert.ok(stalled.queued > 0, "the rest waits in the stack's receive buffer");
    assert.ok(
      sentToClient <= STREAM_WINDOW_BYTES,
      `${sentToClient} bytes went to a client that read nothing (window ${STREAM_WINDOW_BYTES})`,
    );
    const reader = socket.readable.getReader();
    let read = 0;
    while (read < 4 * STREAM_WINDOW_BYTES) read += (await reader.read()).value!.length;
    const after = await row(id);
    assert.ok(
      after.tcp.bytesReceived > stalled.received + 2 * STREAM_WINDOW_BYTES,
      "it flows again",
    );
    reader.releaseLock();
    await socket.close();
  });

  it("a peer that stops reading stops the writer: writes wait for credit", async () => {
    const socket = session.connect({ hostname: "10.0.2.15", port: 19 }); // never reads
    await socket.opened;
    const writer = socket.writable.getWriter();
    let written = 0;
    let failed: unknown;
    const chunk = new Uint8Array(64 * 1024);
    (async () => {
      try {
        while (written < 64 * 1024 * 1024) {
          await writer.write(chunk);
          written += chunk.length;
        }
      } catch (err) {
        failed = err;
      }
    })();
    const stuck = await settled(() => Promise.resolve(written));
    assert.equal(failed, undefined);
    // Peer window (512 KiB) + send buffer (512 KiB) + the stream's queue (4 MiB) + one chunk.
    assert.ok(stuck <= 6 * 1024 * 1024, `${stuck} bytes accepted by a peer that reads nothing`);
    assert.ok(stuck >= 1024 * 1024, `${stuck} bytes: the buffers fill first`);
    const r = await row(socket.id!);
    assert.ok(r.sendQueued > 0, "queued on the stack, not in the client");
    socket.readable.cancel().catch(() => {});
    await socket.close();
  });

  it("a dropped WebSocket fails the socket with ECONNABORTED and resets the connection", async () => {
    let peerError = "";
    const listener = TcpServer.listen(t.peer, { port: 5001 });
    listener.serve(async (s) => {
      try {
        while ((await s.receive(65536)) !== null);
      } catch (err) {
        peerError = (err as { code?: string }).code ?? String(err);
      }
    });
    const before = sockets.length;
    const socket = session.connect({ hostname: "10.0.2.15", port: 5001 });
    await socket.opened;
    const id = socket.id!;
    sockets[before].terminate(); // no close frame: as a network drop
    const err = await socket.closed.then(() => undefined, (e) => e);
    assert.ok(err instanceof NetisleError, String(err));
    assert.equal(err.code, "ECONNABORTED");
    await assert.rejects(socket.readable.getReader().read(), /ECONNABORTED|abnormally/);
    const deadline = Date.now() + 5000;
    while (peerError === "" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(peerError, "ECONNRESET", "the peer saw a reset, not a clean end");
    assert.equal((await t.api("GET", `/sockets/${id}`)).status, 404, "the socket is gone");
    listener.close();
  });

  it("a reset by the peer rejects closed and the reader with ECONNRESET", async () => {
    const listener = TcpServer.listen(t.peer, { port: 5002 });
    listener.serve((s) => s.abort());
    const socket = session.connect({ hostname: "10.0.2.15", port: 5002 });
    await socket.opened.catch(() => {});
    const err = await socket.closed.then(() => undefined, (e) => e);
    assert.ok(err instanceof NetisleError);
    assert.equal(err.code, "ECONNRESET");
    listener.close();
  });

  it("writable.abort() resets the connection; close() ends it gracefully", async () => {
    const seen: string[] = [];
    const listener = TcpServer.listen(t.peer, { port: 5003 });
    listener.serve(async (s) => {
      try {
        while ((await s.receive(65536)) !== null);
        seen.push("FIN");
      } catch (err) {
        seen.push((err as { code?: string }).code ?? "error");
      }
    });
    const a = session.connect({ hostname: "10.0.2.15", port: 5003 });
    await a.opened;
    await a.writable.abort(new Error("changed my mind"));
    await a.closed;
    const b = session.connect({ hostname: "10.0.2.15", port: 5003 });
    await b.opened;
    await b.close();
    const deadline = Date.now() + 5000;
    while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(seen, ["ECONNRESET", "FIN"]);
    listener.close();
  });

  it("without allowHalfOpen the peer's FIN ends the writable side too (Cloudflare's default)", async () => {
    let peerSaw = "";
    const listener = TcpServer.listen(t.peer, { port: 5004 });
    listener.serve(async (s) => {
      await s.write(new TextEncoder().encode("bye\n"));
      s.shutdown("write");
      peerSaw = (await s.receive(100)) === null ? "FIN" : "data";
    });
    const socket = session.connect({ hostname: "10.0.2.15", port: 5004 });
    await socket.opened;
    const w = socket.writable.getWriter();
    let text = "";
    for await (const c of socket.readable) text += new TextDecoder().decode(c);
    assert.equal(text, "bye\n");
    await socket.closed;
    const deadline = Date.now() + 5000;
    while (peerSaw === "" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(peerSaw, "FIN", "our side ended by itself");
    await assert.rejects(w.write("more"), /EPIPE|closed|FIN/);
    listener.close();
  });

  it("refuses TLS and bad addresses at once, as TypeErrors", () => {
    assert.throws(
      () => session.connect("10.0.2.15:443", { secureTransport: "on" as "off" }),
      /secureTransport "on" is not supported/,
    );
    assert.throws(() => session.connect("10.0.2.15"), /expected host:port/);
    assert.throws(() => new NetisleClient({ server: "ftp://x" }), TypeError);
  });
});
