/**
 * The Cloudflare Worker (examples/cloudflare) in the real workerd runtime:
 * builds the bundle, starts workerd on a free loopback port with
 * examples/cloudflare/workerd.capnp (object storage in a temporary
 * directory), and talks to it over HTTP and WebSockets. Each session is its
 * own Durable Object: two sessions are isolated from each other; the tunnel
 * answers ARP and ping with crafted frames (also in QEMU stream framing, with
 * the subprotocol answered) and a live pcap streams out of the object;
 * deleting a session closes its tunnel with 4001; the object's alarm expires
 * an idle session; a new workerd process brings a session back from storage;
 * and workerd serves wrangler.jsonc itself. Needs no root.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import process from "node:process";
import WebSocketClient from "ws";
import { ROOT } from "./e2e/harness.ts";
import { QEMU_STREAM_SUBPROTOCOL } from "../src/wire/tunnel_protocol.ts";
import { encodeStreamFrames, StreamDeframer } from "../src/wire/stream_framing.ts";
import { Proc } from "./e2e/harness.ts";
import {
  ArpPacket,
  ArpRepr,
  ETHERNET_HEADER_LEN,
  formatMacAddress,
  parseMacAddress,
} from "../src/wire/mod.ts";
import {
  arpRequest,
  echoRequest,
  isArpReply,
  isEchoReply,
  PEER_MAC,
  STACK_IP,
} from "./_tunnel_test_util.ts";

const WORKERD = `${ROOT}/node_modules/.bin/workerd`;
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** workerd serving the Worker on a free loopback port. */
class Workerd {
  constructor(readonly proc: Proc, readonly base: string) {}

  /**
   * Serves examples/cloudflare/workerd.capnp with Durable Object storage in
   * `storage`; `config` may name another config (e.g. wrangler.jsonc).
   */
  static async start(
    storage: string,
    env: Record<string, string> = {},
    config = `${ROOT}/examples/cloudflare/workerd.capnp`,
  ): Promise<Workerd> {
    const port = await freePort();
    const args = ["serve", config, "--socket-addr", `http=127.0.0.1:${port}`];
    if (config.endsWith(".capnp")) args.push("--directory-path", `storage=${storage}`);
    mkdirSync(storage, { recursive: true });
    const proc = new Proc(WORKERD, args, { NETISLE_LOG: "0", ...env });
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        const res = await fetch(`${base}/healthz`);
        await res.body?.cancel();
        if (res.status === 200) break;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline || proc.child.exitCode !== null) {
        await proc.stop();
        throw new Error(
          `workerd did not answer /healthz (within 20 s, or exited):\n${proc.output}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return new Workerd(proc, base);
  }

  stop(): Promise<void> {
    return this.proc.stop();
  }
}

interface Created {
  id: string;
  token: string;
  mac: string;
  tunnel: { url: string };
}

async function createSession(base: string): Promise<Created> {
  const res = await fetch(`${base}/v1/sessions`, { method: "POST" });
  assert.equal(res.status, 201, await res.clone().text());
  return await res.json() as Created;
}

function authed(token: string, init: RequestInit = {}): RequestInit {
  return { ...init, headers: { ...init.headers, authorization: `Bearer ${token}` } };
}

async function problemOf(res: Response): Promise<{ code: string; detail: string }> {
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  return await res.json() as { code: string; detail: string };
}

/** A tunnel WebSocket that collects every frame it receives. */
class Tunnel {
  frames: Uint8Array[] = [];
  closed: Promise<{ code: number; reason: string }>;
  #waiters: Array<() => void> = [];

  constructor(readonly ws: WebSocketClient) {
    ws.on("message", (data: Uint8Array, isBinary: boolean) => {
      if (isBinary) this.frames.push(new Uint8Array(data));
      for (const w of this.#waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => {
      ws.on("close", (code: number, reason: Uint8Array) => {
        resolve({ code, reason: new TextDecoder().decode(reason) });
      });
    });
  }

  /** Opens `url`; rejects with the HTTP status when the handshake is refused. */
  static open(
    url: string,
    headers: Record<string, string> = {},
    protocols: string[] = [],
  ): Promise<Tunnel> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocketClient(url, protocols, { headers });
      ws.once("open", () => resolve(new Tunnel(ws)));
      ws.once("unexpected-response", (_req: unknown, res: { statusCode: number }) => {
        reject(new Error(`handshake refused: ${res.statusCode}`));
        ws.terminate();
      });
      ws.once("error", (err: Error) => reject(err));
    });
  }

  send(frame: Uint8Array): void {
    this.ws.send(frame);
  }

  async waitFor(pred: (f: Uint8Array) => boolean, timeoutMs = 5000): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.frames.find(pred);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`timed out waiting for a frame; got ${this.frames.length} frames`);
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200));
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  close(): void {
    this.ws.close();
  }
}

async function statusOfHandshake(url: string, headers: Record<string, string> = {}) {
  try {
    const t = await Tunnel.open(url, headers);
    t.close();
    return 101;
  } catch (err) {
    const m = /handshake refused: (\d+)/.exec((err as Error).message);
    if (!m) throw err;
    return Number(m[1]);
  }
}

describe("the Cloudflare Worker in workerd (one Durable Object per session)", () => {
  let wd: Workerd;
  const storage = mkdtempSync(`${tmpdir()}/netisle-workerd-`);

  before(async () => {
    execFileSync(process.execPath.endsWith("deno") ? "node" : process.execPath, [
      `${ROOT}/scripts/build_workerd.mjs`,
      "--quiet",
    ], { stdio: "inherit", cwd: ROOT });
    wd = await Workerd.start(`${storage}/main`);
  });

  after(async () => {
    await wd?.stop();
    rmSync(storage, { recursive: true, force: true });
  });

  it("answers the service routes in the Worker", async () => {
    const health = await fetch(`${wd.base}/healthz`);
    assert.deepEqual(await health.json(), { status: "ok", runtime: "workerd" });
    const doc = await fetch(`${wd.base}/openapi.json`);
    assert.equal(doc.status, 200);
    const paths = Object.keys((await doc.json() as { paths: object }).paths);
    assert.ok(paths.includes("/v1/sessions/{sid}/tunnel"), paths.join(" "));
    const metrics = await fetch(`${wd.base}/metrics`);
    assert.equal(metrics.status, 404);
    assert.match((await problemOf(metrics)).detail, /per session/);
    const bad = await fetch(`${wd.base}/v1/sessions/nope`);
    assert.equal(bad.status, 400);
    assert.equal((await problemOf(bad)).code, "EINVAL");
  });

  it("keeps two sessions apart: one session's token reaches none of the other's routes", async () => {
    const a = await createSession(wd.base);
    const b = await createSession(wd.base);
    assert.notEqual(a.id, b.id);
    assert.match(a.id, /^s_[A-Za-z0-9_-]{22}$/);
    assert.match(
      a.tunnel.url,
      new RegExp(`^ws://127\\.0\\.0\\.1:\\d+/v1/sessions/${a.id}/tunnel$`),
    );

    const sockRes = await fetch(
      `${wd.base}/v1/sessions/${b.id}/sockets`,
      authed(b.token, { method: "POST", body: JSON.stringify({ protocol: "tcp" }) }),
    );
    assert.equal(sockRes.status, 201);
    const sock = await sockRes.json() as { id: string };

    // A's token on B's session and B's socket: 401.
    for (const path of ["", "/sockets", `/sockets/${sock.id}`]) {
      const res = await fetch(`${wd.base}/v1/sessions/${b.id}${path}`, authed(a.token));
      assert.equal(res.status, 401, `GET ${path} with the other session's token`);
      assert.equal((await problemOf(res)).code, "EUNAUTHORIZED");
    }
    const del = await fetch(
      `${wd.base}/v1/sessions/${b.id}/sockets/${sock.id}`,
      authed(a.token, { method: "DELETE" }),
    );
    assert.equal(del.status, 401);
    // B's socket id inside A's session (A's token): 404, A's object has no such socket.
    const cross = await fetch(`${wd.base}/v1/sessions/${a.id}/sockets/${sock.id}`, authed(a.token));
    assert.equal(cross.status, 404);
    assert.equal((await problemOf(cross)).code, "ENOTFOUND");
    const listA = await fetch(`${wd.base}/v1/sessions/${a.id}/sockets`, authed(a.token));
    assert.deepEqual((await listA.json() as { sockets: unknown[] }).sockets, []);
    // The tunnel refuses the other session's token, in the query and as a header.
    assert.equal(await statusOfHandshake(`${b.tunnel.url}?token=${a.token}`), 401);
    assert.equal(
      await statusOfHandshake(b.tunnel.url, { authorization: `Bearer ${a.token}` }),
      401,
    );
    assert.equal(await statusOfHandshake(b.tunnel.url), 401);
    // Per-session metrics: behind the session's token, counting only that object's session.
    const m = await fetch(`${wd.base}/v1/sessions/${b.id}/metrics`, authed(b.token));
    assert.equal(m.status, 200);
    assert.match(await m.text(), /^netisle_sessions 1$/m);
    const m401 = await fetch(`${wd.base}/v1/sessions/${b.id}/metrics`, authed(a.token));
    assert.equal(m401.status, 401);
    await m401.body?.cancel();

    for (const s of [a, b]) {
      const res = await fetch(
        `${wd.base}/v1/sessions/${s.id}`,
        authed(s.token, { method: "DELETE" }),
      );
      assert.equal(res.status, 204);
    }
  });

  it("carries frames through the tunnel: ARP and ping answered by the session's stack", async () => {
    const s = await createSession(wd.base);
    const stackMac = parseMacAddress(s.mac);
    const t = await Tunnel.open(s.tunnel.url, { authorization: `Bearer ${s.token}` });
    // A live capture streamed out of the object through the Worker: the ARP request and reply.
    const pcap = await fetch(`${wd.base}/v1/sessions/${s.id}/pcap?maxFrames=2`, authed(s.token));
    assert.equal(pcap.status, 200);
    try {
      t.send(arpRequest());
      const reply = await t.waitFor(isArpReply);
      const pkt = ArpPacket.parse(reply.subarray(ETHERNET_HEADER_LEN));
      assert.ok(pkt.ok, "the ARP reply parses");
      const arp = ArpRepr.parse(pkt.value);
      assert.ok(arp.ok, "the ARP reply is a valid ARP operation");
      assert.equal(formatMacAddress(arp.value.senderMac), s.mac);
      assert.equal(arp.value.senderIp, STACK_IP);
      assert.equal(formatMacAddress(arp.value.targetMac), formatMacAddress(PEER_MAC));
      const file = new Uint8Array(await pcap.arrayBuffer());
      assert.deepEqual([...file.subarray(0, 4)], [0xd4, 0xc3, 0xb2, 0xa1], "pcap magic (µs, LE)");
      // Global header, then two records (16-byte header + frame): 42-byte request, reply.
      assert.equal(file.length, 24 + 16 + 42 + 16 + reply.length);

      for (const seq of [1, 2, 3]) {
        const req = echoRequest(stackMac, seq);
        t.send(req);
        const echo = await t.waitFor(isEchoReply(seq));
        assert.deepEqual(echo.subarray(0, 6), PEER_MAC, "to the peer's MAC");
        // Same payload back (ident, seq and data after the ICMP header).
        assert.deepEqual(echo.subarray(38), req.subarray(38));
      }
      const view = await fetch(`${wd.base}/v1/sessions/${s.id}`, authed(s.token));
      const body = await view.json() as {
        tunnel: { attached: boolean };
        counters: { rxFrames: number; txFrames: number };
      };
      assert.equal(body.tunnel.attached, true);
      assert.equal(body.counters.rxFrames, 4);
      assert.ok(body.counters.txFrames >= 4, `txFrames ${body.counters.txFrames}`);
    } finally {
      t.close();
    }
  });

  it("answers the tunnel subprotocol: QEMU stream framing in workerd", async () => {
    const s = await createSession(wd.base);
    const t = await Tunnel.open(`${s.tunnel.url}?token=${s.token}`, {}, [
      "binary",
      QEMU_STREAM_SUBPROTOCOL,
    ]);
    try {
      assert.equal(t.ws.protocol, QEMU_STREAM_SUBPROTOCOL);
      // Two frames in one message, each behind its u32 big-endian length.
      t.send(encodeStreamFrames([arpRequest(), echoRequest(parseMacAddress(s.mac), 9)]));
      const frames: Uint8Array[] = [];
      const deframer = new StreamDeframer(1514, (f) => frames.push(f.slice()));
      const deadline = Date.now() + 5000;
      let next = 0;
      while (!frames.some(isEchoReply(9)) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        for (; next < t.frames.length; next++) {
          assert.equal(deframer.push(t.frames[next]), undefined, "well-formed stream framing");
        }
      }
      assert.ok(frames.some(isArpReply), "an ARP reply, deframed");
      assert.ok(frames.some(isEchoReply(9)), "an echo reply, deframed");
    } finally {
      t.close();
    }
  });

  it("deleting a session closes its tunnel with 4001; afterwards the session is 404", async () => {
    const s = await createSession(wd.base);
    const t = await Tunnel.open(`${s.tunnel.url}?token=${s.token}`);
    t.send(arpRequest());
    await t.waitFor(isArpReply);
    const del = await fetch(
      `${wd.base}/v1/sessions/${s.id}`,
      authed(s.token, { method: "DELETE" }),
    );
    assert.equal(del.status, 204);
    const closed = await t.closed;
    assert.equal(closed.code, 4001);
    const after = await fetch(`${wd.base}/v1/sessions/${s.id}`, authed(s.token));
    assert.equal(after.status, 404);
    assert.equal((await problemOf(after)).code, "ENOTFOUND");
    assert.equal(await statusOfHandshake(`${s.tunnel.url}?token=${s.token}`), 404);
    const again = await fetch(
      `${wd.base}/v1/sessions/${s.id}`,
      authed(s.token, { method: "DELETE" }),
    );
    assert.equal(again.status, 404);
    await again.body?.cancel();
  });

  it("the object's alarm expires an idle session but not one with a tunnel", async () => {
    const idle = await Workerd.start(`${storage}/idle`, { NETISLE_IDLE_TIMEOUT_MS: "1000" });
    try {
      const lonely = await createSession(idle.base);
      const busy = await createSession(idle.base);
      const t = await Tunnel.open(`${busy.tunnel.url}?token=${busy.token}`);
      try {
        const deadline = Date.now() + 15_000;
        let status = 200;
        while (status !== 404 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 250));
          const res = await fetch(`${idle.base}/v1/sessions/${lonely.id}`, authed(lonely.token));
          status = res.status;
          await res.body?.cancel();
        }
        assert.equal(status, 404, "the idle session expired within 15 s");
        const res = await fetch(`${idle.base}/v1/sessions/${busy.id}`, authed(busy.token));
        assert.equal(res.status, 200, "the session with a tunnel is kept");
        await res.body?.cancel();
        t.send(arpRequest());
        await t.waitFor(isArpReply);
      } finally {
        t.close();
      }
    } finally {
      await idle.stop();
    }
  });

  it("an object re-created from storage brings its session back: same id, token and MAC, empty stack", async () => {
    const dir = `${storage}/restart`;
    const first = await Workerd.start(dir);
    let s: Created;
    try {
      s = await createSession(first.base);
      const sock = await fetch(
        `${first.base}/v1/sessions/${s.id}/sockets`,
        authed(s.token, { method: "POST", body: JSON.stringify({ protocol: "udp" }) }),
      );
      assert.equal(sock.status, 201);
      await sock.body?.cancel();
    } finally {
      await first.stop();
    }
    // A new workerd process: every object is gone from memory, only storage is left.
    const second = await Workerd.start(dir);
    try {
      const res = await fetch(`${second.base}/v1/sessions/${s.id}`, authed(s.token));
      assert.equal(res.status, 200);
      const view = await res.json() as { id: string; mac: string; counters: { rxFrames: number } };
      assert.equal(view.id, s.id);
      assert.equal(view.mac, s.mac);
      assert.equal(view.counters.rxFrames, 0);
      const list = await fetch(`${second.base}/v1/sessions/${s.id}/sockets`, authed(s.token));
      assert.deepEqual(
        (await list.json() as { sockets: unknown[] }).sockets,
        [],
        "sockets are memory",
      );
      const wrong = await fetch(`${second.base}/v1/sessions/${s.id}`, authed("x" + s.token));
      assert.equal(wrong.status, 401);
      await wrong.body?.cancel();
      const t = await Tunnel.open(
        `${s.tunnel.url.replace(first.base.slice(4), second.base.slice(4))}?token=${s.token}`,
      );
      try {
        t.send(arpRequest());
        const reply = await t.waitFor(isArpReply);
        assert.equal(formatMacAddress(reply.subarray(6, 12)), s.mac);
      } finally {
        t.close();
      }
      const del = await fetch(
        `${second.base}/v1/sessions/${s.id}`,
        authed(s.token, { method: "DELETE" }),
      );
      assert.equal(del.status, 204);
    } finally {
      await second.stop();
    }
    // Deleted means deleted: storage is cleared too.
    const third = await Workerd.start(dir);
    try {
      const res = await fetch(`${third.base}/v1/sessions/${s.id}`, authed(s.token));
      assert.equal(res.status, 404);
      await res.body?.cancel();
    } finally {
      await third.stop();
    }
  });

  it("workerd serves examples/cloudflare/wrangler.jsonc as wrangler would deploy it", async () => {
    // A copy outside the repository (workerd keeps its state in .wrangler/ beside the
    // config), with `main` pointing back at the Worker; everything else as committed.
    const dir = `${storage}/wrangler`;
    mkdirSync(dir, { recursive: true });
    const original = readFileSync(`${ROOT}/examples/cloudflare/wrangler.jsonc`, "utf8");
    const copy = original.replace(
      '"main": "worker.ts"',
      `"main": ${JSON.stringify(`${ROOT}/examples/cloudflare/worker.ts`)}`,
    );
    assert.notEqual(copy, original, 'wrangler.jsonc has "main": "worker.ts"');
    writeFileSync(`${dir}/wrangler.jsonc`, copy);
    const esbuild = { WORKERD_ESBUILD: `${ROOT}/node_modules/.bin/esbuild` };
    const wr = await Workerd.start(dir, esbuild, `${dir}/wrangler.jsonc`);
    try {
      const s = await createSession(wr.base);
      const res = await fetch(`${wr.base}/v1/sessions/${s.id}`, authed(s.token));
      assert.equal(res.status, 200);
      await res.body?.cancel();
      const t = await Tunnel.open(`${s.tunnel.url}?token=${s.token}`);
      try {
        t.send(arpRequest());
        await t.waitFor(isArpReply);
      } finally {
        t.close();
      }
    } finally {
      await wr.stop();
    }
  });
});
