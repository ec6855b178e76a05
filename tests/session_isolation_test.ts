/**
 * Sessions in their own isolates (`NETISLE_ISOLATION=worker`), against the
 * real server process (examples/deno/server.ts; examples/bun/server.ts too
 * when it exists) on a free loopback port:
 *
 * - the socket API works through the forwarding: TCP connect and listen,
 *   UDP, long-polls, a WebSocket byte stream, the tunnel WebSocket, a
 *   streamed pcap — against a second netisle stack in this process, tunnelled
 *   in over the real tunnel WebSocket;
 * - a session whose worker busy-loops does not stall the others, and answers
 *   503 ESESSIONDEAD once the heartbeat timeout passed; a session whose
 *   worker throws an uncaught error does not take the server down.
 *
 * The spin and crash are triggered by the test-only hooks that exist only
 * when the server was started with NETISLE_TEST_HOOKS=1.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { BUN, DENO, Proc, ROOT } from "./e2e/harness.ts";
import { Session, SystemClock } from "../src/session/mod.ts";
import { TcpServer, TcpSocket, UdpSocket } from "../src/socket/mod.ts";
import { parseIpv4Address, parseMacAddress } from "../src/wire/mod.ts";
import { TunnelClient } from "../tunnel/client.ts";
import type { FramePort, FrameSink } from "../tunnel/ports/frame_port.ts";
import { upperEchoServer } from "./_peer_services.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The heartbeat timeout the servers under test run with. */
const TIMEOUT_MS = 2000;

/** A frame port whose "device" is a second netisle stack: the tunnelled machine. */
class SessionPort implements FramePort {
  readonly name = "session";
  readonly maxFrameLen = 1514;
  readonly stats = { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, txErrors: 0 };
  constructor(readonly peer: Session) {}
  start(sink: FrameSink): void {
    this.peer.attachTunnel({
      description: "test port",
      send: (frames) => sink(frames.map((f) => f.slice())),
      close: () => {},
    });
  }
  send(frame: Uint8Array): void {
    this.peer.input([frame]);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

interface Created {
  id: string;
  token: string;
}

/** A server process with isolation on, and helpers to call it. */
class IsolatedServer {
  proc!: Proc;
  base = "";
  constructor(
    readonly runtime: "deno" | "bun",
    readonly entry: string,
    readonly testHooks = true,
  ) {}

  async start(): Promise<void> {
    const cmd = this.runtime === "deno" ? DENO : BUN;
    const args = this.runtime === "deno" ? ["run", "-A", this.entry] : ["run", this.entry];
    this.proc = new Proc(cmd, args, {
      PORT: "0",
      NETISLE_ISOLATION: "worker",
      ...(this.testHooks ? { NETISLE_TEST_HOOKS: "1" } : {}),
      NETISLE_WORKER_TIMEOUT_MS: String(TIMEOUT_MS),
      NETISLE_LOG: "0",
    });
    const m = await this.proc.waitFor(/listening on (http:\/\/\S+)/);
    this.base = m[1];
    const health = await (await fetch(`${this.base}/healthz`)).json();
    assert.equal(health.isolation, "worker", "the server runs sessions in workers");
  }

  async create(quiet = false): Promise<Created> {
    const t0 = performance.now();
    const res = await fetch(`${this.base}/v1/sessions`, { method: "POST" });
    assert.equal(res.status, 201, await res.clone().text());
    const body = await res.json();
    if (!quiet) console.log(`  session created in ${(performance.now() - t0).toFixed(1)} ms`);
    return body;
  }

  /** The server process's resident set size, from /metrics. */
  async rss(): Promise<number | undefined> {
    const text = await (await fetch(`${this.base}/metrics`)).text();
    const m = /^netisle_process_memory_bytes\{kind="rss"\} (\d+)$/m.exec(text);
    return m ? Number(m[1]) : undefined;
  }

  call(
    s: Created,
    method: string,
    path: string,
    init: { json?: unknown; body?: BodyInit; signal?: AbortSignal } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${s.token}` };
    let body = init.body;
    if (init.json !== undefined) {
      body = JSON.stringify(init.json);
      headers["content-type"] = "application/json";
    }
    return fetch(`${this.base}/v1/sessions/${s.id}${path}`, {
      method,
      headers,
      body,
      signal: init.signal,
    });
  }

  /**
   * A second stack at 10.0.2.15 tunnelled into session `s` over the real tunnel WebSocket,
   * with `framing` (the CLI's default is the qemu-stream subprotocol).
   */
  async attachPeer(
    s: Created,
    framing: "frame" | "qemu-stream" = "frame",
  ): Promise<{ peer: Session; client: TunnelClient }> {
    const peer = new Session({
      id: "s_peer",
      token: "peer",
      clock: new SystemClock(),
      stack: {
        mac: parseMacAddress("52:54:00:12:34:56"),
        ipv4: { address: parseIpv4Address("10.0.2.15"), prefixLength: 24 },
        mtu: 1500,
      },
    });
    const client = new TunnelClient({
      server: this.base,
      sessionId: s.id,
      token: s.token,
      port: new SessionPort(peer),
      reconnect: false,
      framing,
    });
    client.start();
    for (let i = 0; i < 500 && client.state !== "open"; i++) await sleep(10);
    assert.equal(client.state, "open", "the tunnel WebSocket opened through the front door");
    return { peer, client };
  }

  async stop(): Promise<void> {
    await this.proc?.stop();
  }
}

async function json(res: Response, status = 200) {
  assert.equal(res.status, status, await res.clone().text());
  return await res.json();
}

async function assertDead(res: Response) {
  assert.equal(res.status, 503, await res.clone().text());
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  const p = await res.json();
  assert.equal(p.code, "ESESSIONDEAD");
  return p;
}

/** A UDP round trip from the session (HTTP send) to the peer and back (HTTP recv). */
async function udpRoundTrip(srv: IsolatedServer, s: Created, peer: Session, port: number) {
  const peerSock = UdpSocket.bind(peer, { port });
  try {
    const { id } = await json(
      await srv.call(s, "POST", "/sockets", { json: { protocol: "udp" } }),
      201,
    );
    await json(
      await srv.call(s, "POST", `/sockets/${id}/send?address=10.0.2.15&port=${port}`, {
        body: "ping",
      }),
    );
    const q = await peerSock.receive({ timeoutMs: 5000 });
    assert.equal(dec(q.data), "ping");
    peerSock.send(enc("pong"), { address: q.address, port: q.port });
    const r = await srv.call(s, "POST", `/sockets/${id}/recv?timeoutMs=5000`);
    assert.equal(r.status, 200);
    assert.equal(dec(new Uint8Array(await r.arrayBuffer())), "pong");
    assert.equal(r.headers.get("netisle-peer-address"), "10.0.2.15");
    assert.equal((await srv.call(s, "DELETE", `/sockets/${id}`)).status, 204);
  } finally {
    peerSock.close();
  }
}

const runtimes: Array<{ runtime: "deno" | "bun"; entry: string }> = [
  { runtime: "deno", entry: "examples/deno/server.ts" },
];
if (existsSync(`${ROOT}/examples/bun/server.ts`) && existsSync(BUN)) {
  runtimes.push({ runtime: "bun", entry: "examples/bun/server.ts" });
}

for (const { runtime, entry } of runtimes) {
  describe(`sessions in their own workers (${runtime}, ${entry})`, () => {
    const srv = new IsolatedServer(runtime, entry);
    before(async () => await srv.start());
    after(async () => await srv.stop());

    it("the socket API works through the forwarding: TCP, UDP, long-polls, streams, pcap", async () => {
      const s = await srv.create();
      assert.match(s.id, /^s_/);
      // The subprotocol must survive the front door's relay (the CLI offers it by default).
      const { peer, client } = await srv.attachPeer(s, "qemu-stream");
      try {
        const view = await json(await srv.call(s, "GET", ""));
        assert.equal(view.id, s.id);
        assert.equal(view.tunnel.attached, true);
        assert.match(view.tunnel.kind, /qemu-stream/);

        // TCP connect, send, recv, shutdown, EOF.
        const echo = upperEchoServer(peer, 7);
        const { id } = await json(
          await srv.call(s, "POST", "/sockets", { json: { protocol: "tcp" } }),
          201,
        );
        const c = await json(
          await srv.call(s, "POST", `/sockets/${id}/connect`, {
            json: { address: "10.0.2.15", port: 7, timeoutMs: 5000 },
          }),
        );
        assert.deepEqual(c.remote, { address: "10.0.2.15", port: 7 });
        assert.deepEqual(
          await json(await srv.call(s, "POST", `/sockets/${id}/send`, { body: "hello" })),
          {
            bytes: 5,
          },
        );
        const r1 = await srv.call(s, "POST", `/sockets/${id}/recv?timeoutMs=5000`);
        assert.equal(dec(new Uint8Array(await r1.arrayBuffer())), "HELLO");
        await json(
          await srv.call(s, "POST", `/sockets/${id}/shutdown`, { json: { how: "write" } }),
        );
        const r2 = await srv.call(s, "POST", `/sockets/${id}/recv?timeoutMs=5000`);
        assert.equal(r2.status, 200);
        assert.equal((await r2.arrayBuffer()).byteLength, 0);
        assert.equal(r2.headers.get("netisle-eof"), "1");

        // A long-poll that times out answers 204.
        const { id: uid } = await json(
          await srv.call(s, "POST", "/sockets", { json: { protocol: "udp" } }),
          201,
        );
        await json(await srv.call(s, "POST", `/sockets/${uid}/bind`, { json: { port: 6000 } }));
        assert.equal((await srv.call(s, "POST", `/sockets/${uid}/recv?timeoutMs=200`)).status, 204);

        // Listen and accept a connection the peer makes.
        const { id: lid } = await json(
          await srv.call(s, "POST", "/sockets", { json: { protocol: "tcp" } }),
          201,
        );
        await json(await srv.call(s, "POST", `/sockets/${lid}/bind`, { json: { port: 8080 } }));
        await json(await srv.call(s, "POST", `/sockets/${lid}/listen`, { json: {} }));
        const peerClient = (async () => {
          const t = await TcpSocket.connect(peer, {
            address: "10.0.2.2",
            port: 8080,
            timeoutMs: 5000,
          });
          await t.write(enc("GET / HTTP/1.0\r\n\r\n"));
          t.shutdown("write");
          let got = "";
          for (;;) {
            const chunk = await t.receive(65536);
            if (chunk === null) break;
            got += dec(chunk);
          }
          return got;
        })();
        const acc = await json(
          await srv.call(s, "POST", `/sockets/${lid}/accept`, { json: { timeoutMs: 5000 } }),
        );
        assert.deepEqual(acc.local, { address: "10.0.2.2", port: 8080 });
        let request = "";
        for (;;) {
          const r = await srv.call(s, "POST", `/sockets/${acc.id}/recv?timeoutMs=5000`);
          assert.equal(r.status, 200);
          const text = dec(new Uint8Array(await r.arrayBuffer()));
          if (r.headers.get("netisle-eof") === "1") break;
          request += text;
        }
        assert.equal(request, "GET / HTTP/1.0\r\n\r\n");
        await json(
          await srv.call(s, "POST", `/sockets/${acc.id}/send`, {
            body: "HTTP/1.0 200 OK\r\n\r\nhi\n",
          }),
        );
        assert.equal((await srv.call(s, "DELETE", `/sockets/${acc.id}`)).status, 204);
        assert.equal(await peerClient, "HTTP/1.0 200 OK\r\n\r\nhi\n");

        // UDP both ways.
        await udpRoundTrip(srv, s, peer, 53);

        // A WebSocket byte stream: 256 KiB from the peer arrive whole, FIN closes with 1000.
        const size = 256 * 1024;
        const payload = new Uint8Array(size);
        for (let i = 0; i < size; i++) payload[i] = (i * 7 + (i >> 10)) & 0xff;
        const bulk = TcpServer.listen(peer, { port: 9 });
        (async () => {
          const t = await bulk.accept();
          await t.write(payload);
          t.shutdown("write");
        })();
        const { id: sid2 } = await json(
          await srv.call(s, "POST", "/sockets", { json: { protocol: "tcp" } }),
          201,
        );
        await json(
          await srv.call(s, "POST", `/sockets/${sid2}/connect`, {
            json: { address: "10.0.2.15", port: 9 },
          }),
        );
        const ws = new WebSocket(
          `${
            srv.base.replace("http", "ws")
          }/v1/sessions/${s.id}/sockets/${sid2}/stream?token=${s.token}`,
        );
        ws.binaryType = "arraybuffer";
        const parts: Uint8Array[] = [];
        ws.onmessage = (ev) => parts.push(new Uint8Array(ev.data as ArrayBuffer));
        const t0 = performance.now();
        const closeEv = await new Promise<CloseEvent>((r) => ws.onclose = r);
        assert.equal(closeEv.code, 1000);
        const got = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let o = 0;
        for (const p of parts) {
          got.set(p, o);
          o += p.length;
        }
        assert.equal(got.length, size);
        const digest = async (b: Uint8Array) =>
          new Uint8Array(await crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>));
        assert.deepEqual(await digest(got), await digest(payload));
        console.log(
          `  ${size} bytes over a forwarded stream in ${(performance.now() - t0).toFixed(0)} ms`,
        );
        bulk.close();

        // A streamed pcap: the capture of a UDP exchange arrives through the credit window.
        const pcap = await srv.call(s, "GET", "/pcap?maxFrames=2");
        assert.equal(pcap.status, 200);
        assert.equal(pcap.headers.get("content-type"), "application/vnd.tcpdump.pcap");
        const pcapBody = pcap.arrayBuffer();
        await sleep(50);
        await udpRoundTrip(srv, s, peer, 54);
        const bytes = new Uint8Array(await pcapBody);
        assert.ok(
          bytes.length > 24 + 2 * 16,
          `pcap has a header and 2 records (${bytes.length} bytes)`,
        );
        assert.equal(new DataView(bytes.buffer).getUint32(0, true), 0xa1b2c3d4);

        // Tokens are checked: wrong token 401, unknown session 404.
        const bad = await fetch(`${srv.base}/v1/sessions/${s.id}`, {
          headers: { authorization: "Bearer nope" },
        });
        assert.equal(bad.status, 401);
        const missing = await fetch(`${srv.base}/v1/sessions/s_AAAAAAAAAAAAAAAAAAAAAA`, {
          headers: { authorization: `Bearer ${s.token}` },
        });
        assert.equal(missing.status, 404);

        // /metrics sums the workers' counters.
        const metrics = await (await fetch(`${srv.base}/metrics`)).text();
        const rx = /^netisle_frames_total\{direction="rx"\} (\d+)$/m.exec(metrics);
        assert.ok(
          rx && Number(rx[1]) > 0,
          `frames counted across workers:\n${metrics.slice(0, 400)}`,
        );

        echo.close();
        // DELETE ends the session and its worker; the tunnel client is told (4001).
        assert.equal((await srv.call(s, "DELETE", "")).status, 204);
        const reason = await Promise.race([client.closed, sleep(5000).then(() => "no close")]);
        assert.match(reason, /deleted|4001/);
        assert.equal((await srv.call(s, "GET", "")).status, 404);
      } finally {
        await client.close();
        peer.close();
      }
    });

    it("a busy-looping session does not stall another; it answers ESESSIONDEAD after the heartbeat timeout; a crash does not take the server down", async () => {
      const a = await srv.create();
      const b = await srv.create();
      const { peer, client } = await srv.attachPeer(b);
      try {
        // A tunnel attached to A, to see it closed when A's worker is terminated.
        const tunnelA = new WebSocket(
          `${srv.base.replace("http", "ws")}/v1/sessions/${a.id}/tunnel?token=${a.token}`,
        );
        const tunnelAClosed = new Promise<CloseEvent>((r) => tunnelA.onclose = r);
        await new Promise((r) => tunnelA.onopen = r);

        const spin = await srv.call(a, "POST", "/_test/spin");
        assert.equal(spin.status, 202);
        await spin.body?.cancel();
        const spunAt = performance.now();
        // A request to A now waits for a worker that never answers.
        let aAnswered = false;
        const aPending = srv.call(a, "GET", "").then((r) => {
          aAnswered = true;
          return r;
        });

        const latencies: number[] = [];
        for (let i = 0; i < 50; i++) {
          const t = performance.now();
          const v = await json(await srv.call(b, "GET", ""));
          latencies.push(performance.now() - t);
          assert.equal(v.id, b.id);
        }
        const tUdp = performance.now();
        await udpRoundTrip(srv, b, peer, 53);
        const udpMs = performance.now() - tUdp;
        const doneAt = performance.now() - spunAt;
        latencies.sort((x, y) => x - y);
        console.log(
          `  B while A spins: 50 GETs, median ${latencies[25].toFixed(1)} ms, max ${
            latencies[49].toFixed(1)
          } ms; UDP round trip ${udpMs.toFixed(1)} ms; all done ${
            doneAt.toFixed(0)
          } ms after the spin began`,
        );
        // The point of isolation: B finished while A was still spinning (A has not answered).
        assert.equal(aAnswered, false, "A answered while its worker should be spinning");

        const aRes = await aPending;
        console.log(
          `  A's pending request answered ${
            (performance.now() - spunAt).toFixed(0)
          } ms after the spin began`,
        );
        const p = await assertDead(aRes);
        assert.match(p.detail, /heartbeat/);
        assert.equal((await tunnelAClosed).code, 4004);
        await assertDead(await srv.call(a, "GET", "/sockets"));
        // Wrong token still gets 401, not the dead session's state.
        const bad = await fetch(`${srv.base}/v1/sessions/${a.id}`, {
          headers: { authorization: "Bearer x" },
        });
        assert.equal(bad.status, 401);

        // C crashes with an uncaught error: 503 too, and the server lives on.
        const c = await srv.create();
        assert.equal((await json(await srv.call(c, "GET", ""))).id, c.id);
        assert.equal((await srv.call(c, "POST", "/_test/crash")).status, 202);
        let cRes: Response | undefined;
        for (let i = 0; i < 100; i++) {
          cRes = await srv.call(c, "GET", "");
          if (cRes.status !== 200) break;
          await cRes.body?.cancel();
          await sleep(20);
        }
        const pc = await assertDead(cRes!);
        assert.match(pc.detail, /crash/);

        const health = await json(await fetch(`${srv.base}/healthz`));
        assert.equal(health.status, "ok");
        assert.equal(health.sessions, 1, "B is the one live session left");
        assert.equal(health.deadSessions, 2);
        // B is unaffected by both.
        await udpRoundTrip(srv, b, peer, 55);
        const metrics = await (await fetch(`${srv.base}/metrics`)).text();
        assert.match(metrics, /^netisle_isolated_session_deaths_total\{reason="crash"\} 1$/m);
        assert.match(
          metrics,
          /^netisle_isolated_session_deaths_total\{reason="unresponsive"\} 1$/m,
        );

        // A dead session can be deleted; then it is gone.
        assert.equal((await srv.call(a, "DELETE", "")).status, 204);
        assert.equal((await srv.call(a, "GET", "")).status, 404);
        assert.equal((await srv.call(b, "DELETE", "")).status, 204);
      } finally {
        await client.close();
        peer.close();
      }
    });

    it("prints the cost of a worker per session (creation time, memory)", async () => {
      const n = 10;
      const before = await srv.rss();
      const times: number[] = [];
      const made: Created[] = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        made.push(await srv.create(true));
        times.push(performance.now() - t);
      }
      await sleep(200);
      const afterRss = await srv.rss();
      times.sort((x, y) => x - y);
      const perSession = before !== undefined && afterRss !== undefined
        ? `${((afterRss - before) / n / 1048576).toFixed(1)} MiB RSS per session`
        : "RSS not reported by this runtime";
      console.log(
        `  ${n} isolated sessions: creation median ${times[n >> 1].toFixed(0)} ms, max ${
          times[n - 1].toFixed(0)
        } ms; ${perSession}`,
      );
      for (const s of made) assert.equal((await srv.call(s, "DELETE", "")).status, 204);
      const health = await json(await fetch(`${srv.base}/healthz`));
      assert.equal(health.sessions, 0);
    });
  });
}

describe("test hooks are off unless NETISLE_TEST_HOOKS=1", () => {
  const srv = new IsolatedServer("deno", "examples/deno/server.ts", false);
  before(async () => await srv.start());
  after(async () => await srv.stop());

  it("a session's token holder cannot make its worker spin or crash", async () => {
    const s = await srv.create();
    for (const action of ["spin", "crash"]) {
      const r = await srv.call(s, "POST", `/_test/${action}`);
      assert.equal(r.status, 404, `/_test/${action} is no route without test hooks`);
      await r.body?.cancel();
    }
    await sleep(TIMEOUT_MS + 500);
    assert.equal((await json(await srv.call(s, "GET", ""))).id, s.id, "the worker still answers");
  });
});
