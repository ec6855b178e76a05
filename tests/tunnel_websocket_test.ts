/**
 * Cross-layer: a real server (Deno.serve on loopback) and real WebSocket
 * clients. A raw client in the v86 style (one frame per message) gets ARP and
 * ping answers; the tunnel client library carries frames from an in-memory
 * port and reattaches to the same session after its WebSocket drops.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { serveDeno } from "../src/http/serve_deno.ts";
import { SessionRegistry, SystemClock } from "../src/session/mod.ts";
import {
  ArpOperation,
  ArpRepr,
  ETHERNET_HEADER_LEN,
  EthernetRepr,
  EtherType,
  Icmpv4Repr,
  IpProtocol,
  Ipv4Repr,
  parseIpv4Address,
  parseMacAddress,
} from "../src/wire/mod.ts";
import { TunnelClient } from "../tunnel/client.ts";
import type { FramePort, FrameSink } from "../tunnel/ports/frame_port.ts";
import { tunnelUrl } from "../tunnel/protocol.ts";

const PEER_MAC = parseMacAddress("52:54:00:12:34:56");
const PEER_IP = parseIpv4Address("10.0.2.15");
const STACK_IP = parseIpv4Address("10.0.2.2");

function arpRequest(): Uint8Array {
  const f = new Uint8Array(42);
  EthernetRepr.emit({
    dst: parseMacAddress("ff:ff:ff:ff:ff:ff"),
    src: PEER_MAC,
    etherType: EtherType.ARP,
  }, f);
  ArpRepr.emit({
    operation: ArpOperation.REQUEST,
    senderMac: PEER_MAC,
    senderIp: PEER_IP,
    targetMac: new Uint8Array(6),
    targetIp: STACK_IP,
  }, f.subarray(ETHERNET_HEADER_LEN));
  return f;
}

function echoRequest(stackMac: Uint8Array, seq: number): Uint8Array {
  const icmp: Icmpv4Repr = { type: "echo_request", ident: 9, seqNo: seq, data: new Uint8Array(32) };
  const payload = new Uint8Array(Icmpv4Repr.bufferLen(icmp));
  Icmpv4Repr.emit(icmp, payload);
  const f = new Uint8Array(ETHERNET_HEADER_LEN + 20 + payload.length);
  EthernetRepr.emit({ dst: stackMac, src: PEER_MAC, etherType: EtherType.IPV4 }, f);
  Ipv4Repr.emit(
    { src: PEER_IP, dst: STACK_IP, protocol: IpProtocol.ICMP, payloadLen: payload.length, ttl: 64 },
    f.subarray(ETHERNET_HEADER_LEN),
  );
  f.set(payload, ETHERNET_HEADER_LEN + 20);
  return f;
}

/** An in-memory frame port: the test plays the local machine. */
class MemoryPort implements FramePort {
  readonly name = "memory";
  readonly maxFrameLen = 1514;
  readonly stats = { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, txErrors: 0 };
  received: Uint8Array[] = [];
  sink: FrameSink | undefined;
  #waiters: Array<() => void> = [];
  start(sink: FrameSink): void {
    this.sink = sink;
  }
  send(frame: Uint8Array): void {
    this.received.push(frame);
    for (const w of this.#waiters.splice(0)) w();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  async waitFor(pred: (f: Uint8Array) => boolean, timeoutMs = 5000): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.received.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error("timed out waiting for a frame from the tunnel");
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
}

const isArpReply = (f: Uint8Array) => f[12] === 0x08 && f[13] === 0x06 && f[21] === 2;
const isEchoReply = (seq: number) => (f: Uint8Array) =>
  f[12] === 0x08 && f[13] === 0x00 && f[23] === IpProtocol.ICMP && f[34] === 0 &&
  ((f[40] << 8) | f[41]) === seq;

async function withServer(fn: (base: string, registry: SessionRegistry) => Promise<void>) {
  const registry = new SessionRegistry({ clock: new SystemClock() });
  const ac = new AbortController();
  let base = "";
  const ready = new Promise<void>((resolve) => {
    serveDeno({
      registry,
      hostname: "127.0.0.1",
      port: 0,
      signal: ac.signal,
      onListen: (url) => {
        base = url;
        resolve();
      },
    });
  });
  await ready;
  try {
    await fn(base, registry);
  } finally {
    registry.close();
    ac.abort();
  }
}

async function createSession(base: string) {
  const res = await fetch(`${base}/v1/sessions`, { method: "POST" });
  assert.equal(res.status, 201);
  return await res.json() as { id: string; token: string; mac: string; tunnel: { url: string } };
}

describe("tunnel over a real WebSocket", () => {
  it("a v86-style client (one frame per message, token in the query) gets ARP and ping answers", async () => {
    await withServer(async (base) => {
      const s = await createSession(base);
      assert.equal(tunnelUrl(base, s.id), s.tunnel.url);
      const ws = new WebSocket(`${s.tunnel.url}?token=${s.token}`);
      ws.binaryType = "arraybuffer";
      const frames: Uint8Array[] = [];
      let notify = () => {};
      ws.onmessage = (ev) => {
        frames.push(new Uint8Array(ev.data as ArrayBuffer));
        notify();
      };
      await new Promise((r) => ws.onopen = r);
      const next = async (pred: (f: Uint8Array) => boolean) => {
        for (let i = 0; i < 100; i++) {
          const f = frames.find(pred);
          if (f) return f;
          await new Promise<void>((r) => {
            notify = r;
            setTimeout(r, 50);
          });
        }
        throw new Error("no matching frame");
      };
      ws.send(arpRequest());
      const reply = await next(isArpReply);
      assert.deepEqual([...reply.subarray(22, 28)], [...parseMacAddress(s.mac)]);
      ws.send(echoRequest(parseMacAddress(s.mac), 1));
      await next(isEchoReply(1));
      const closed = new Promise((r) => ws.onclose = r);
      ws.close();
      await closed;
    });
  });

  it("the client library reconnects after the WebSocket drops and resumes the same session", async () => {
    await withServer(async (base, registry) => {
      const s = await createSession(base);
      const port = new MemoryPort();
      const states: string[] = [];
      const client = new TunnelClient({
        server: base,
        sessionId: s.id,
        token: s.token,
        port,
        reconnect: { minDelayMs: 50, maxDelayMs: 200 },
        onState: (st) => states.push(st),
      });
      client.start();
      const session = registry.get(s.id)!;
      for (let i = 0; i < 100 && !session.tunnelAttached; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(session.tunnelAttached, true);
      port.sink!([arpRequest()]);
      await port.waitFor(isArpReply);
      port.sink!([echoRequest(parseMacAddress(s.mac), 1)]);
      await port.waitFor(isEchoReply(1));

      // Drop the WebSocket from the server side, as a network fault would.
      const attachesBefore = session.tunnelStats.attaches;
      session.closeTunnel(1011, "test: simulated network fault");
      for (let i = 0; i < 200 && session.tunnelStats.attaches === attachesBefore; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(session.tunnelStats.attaches, attachesBefore + 1, `states: ${states.join(",")}`);
      assert.ok(states.includes("waiting"));
      port.sink!([echoRequest(parseMacAddress(s.mac), 2)]);
      await port.waitFor(isEchoReply(2));
      assert.equal(registry.get(s.id), session, "the same session and stack");
      await client.close();
      assert.equal(client.state, "closed");
    });
  });

  it("a client whose session is deleted stops with a clear reason", async () => {
    await withServer(async (base) => {
      const s = await createSession(base);
      const port = new MemoryPort();
      const client = new TunnelClient({
        server: base,
        sessionId: s.id,
        token: s.token,
        port,
        reconnect: { minDelayMs: 50, maxDelayMs: 200 },
      });
      client.start();
      await new Promise((r) => setTimeout(r, 200));
      const del = await fetch(`${base}/v1/sessions/${s.id}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${s.token}` },
      });
      assert.equal(del.status, 204);
      const reason = await client.closed;
      assert.match(reason, /session was deleted or expired/);
      await client.close();
    });
  });
});
