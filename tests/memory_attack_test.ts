/**
 * Issue 11, findings 2 and 3, against a real server process
 * (examples/deno/server.ts, one fresh server per attack), its resident set
 * read from /proc:
 *
 * - One in-order byte per tunnel message to a connection nobody reads: 300
 *   messages of 1 MiB in QEMU-stream framing (the rest of each message is
 *   filler for another MAC), and 100,000 one-byte segments one frame per
 *   message. Before the fix the core kept views into the messages: +316 MiB
 *   and +272 MiB for a few hundred KiB of payload.
 * - Connections that are never accepted: 400 connections each sending up to
 *   256 KiB into a listener's accept queue. Before the fix they were outside
 *   every quota (+135 MiB while the API showed one socket).
 *
 * Each attack prints the growth it measured; the bound is the session's
 * 32 MiB memory quota plus a stated overhead for what the runtime holds on
 * its own (tunnel messages waiting for the garbage collector).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import WebSocket from "ws";
import { DENO, Proc } from "./e2e/harness.ts";
import { decodeTcpFrame, TcpHarness } from "../src/stack/tcp/tcp_harness.ts";
import { arpFrame } from "../src/stack/_stack_test_util.ts";
import {
  encodeStreamFrames,
  QEMU_STREAM_SUBPROTOCOL,
  StreamDeframer,
  TcpFlags,
  type TcpRepr,
} from "../src/wire/mod.ts";

const MiB = 2 ** 20;
/** The session's memory quota (the default). */
const QUOTA_MIB = 32;
/** What the runtime may hold beyond the quota: messages and garbage awaiting collection. */
const OVERHEAD_MIB = 64;
/**
 * The same for the attack that sends 300 messages of 1 MiB: they are garbage
 * once read, and +28 to +106 MiB of them were still uncollected in CI runs,
 * depending on when V8 collected; pinned messages, the bug it catches, cost
 * +316 MiB.
 */
const MESSAGE_GARBAGE_MIB = 128;
const STACK_MAC = "02:00:00:00:00:02";

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  assert.ok(m, "VmRSS in /proc");
  return Number(m[1]) / 1024;
}

const frames = new TcpHarness();

/** A server process, a session on it and its tunnel from this test, as a raw TCP peer. */
class Attack {
  proc!: Proc;
  base = "";
  sid = "";
  token = "";
  ws!: WebSocket;
  /** TCP segments from the stack that a handshake waits for (SYN-ACKs), by peer port. */
  received = new Map<number, TcpRepr>();
  #waiters: Array<() => void> = [];

  async start(framing: "stream" | "frame"): Promise<void> {
    this.proc = new Proc(DENO, ["run", "-A", "examples/deno/server.ts"], {
      PORT: "0",
      NETISLE_LOG: "0",
    });
    this.base = (await this.proc.waitFor(/listening on (http:\/\/\S+)/))[1];
    const created = await (await fetch(`${this.base}/v1/sessions`, {
      method: "POST",
      body: JSON.stringify({ mac: STACK_MAC, dhcp: false }),
    })).json();
    this.sid = created.id;
    this.token = created.token;
    const url = `${
      this.base.replace("http", "ws")
    }/v1/sessions/${this.sid}/tunnel?token=${this.token}`;
    this.ws = new WebSocket(url, framing === "stream" ? [QEMU_STREAM_SUBPROTOCOL] : []);
    this.ws.binaryType = "arraybuffer";
    const deframer = new StreamDeframer(65536 + 14, (f) => this.#got(f.slice()));
    this.ws.on("message", (data: ArrayBuffer) => {
      const bytes = new Uint8Array(data);
      if (framing === "stream") deframer.push(bytes);
      else this.#got(bytes);
    });
    await new Promise<void>((resolve, reject) => {
      this.ws.once("open", () => resolve());
      this.ws.once("error", reject);
    });
    this.framing = framing;
    // The stack learns the peer from its ARP request.
    this.send([arpFrame()]);
  }

  framing: "stream" | "frame" = "stream";

  #got(f: Uint8Array): void {
    // Only SYN-ACKs are kept: the attacker ignores everything else the stack says.
    if (f.length < 54 || f[12] !== 0x08 || f[13] !== 0x00 || f[23] !== 6) return;
    if ((f[47] & (TcpFlags.SYN | TcpFlags.ACK)) !== (TcpFlags.SYN | TcpFlags.ACK)) return;
    const seg = decodeTcpFrame(f);
    this.received.set(seg.dstPort, seg);
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Sends frames as one message (stream framing) or one message each. */
  send(list: Uint8Array[]): void {
    if (this.framing === "stream") this.ws.send(encodeStreamFrames(list));
    else for (const f of list) this.ws.send(f);
  }

  /** Waits for the stack's SYN-ACK to `port`. */
  async synAck(port: number, timeoutMs = 5_000): Promise<TcpRepr> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const seg = this.received.get(port);
      if (seg) {
        this.received.delete(port);
        return seg;
      }
      if (Date.now() > deadline) throw new Error(`no SYN-ACK to port ${port}`);
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  async api(method: string, path: string, json?: unknown): Promise<Response> {
    return await fetch(`${this.base}/v1/sessions/${this.sid}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}` },
      body: json === undefined ? undefined : JSON.stringify(json),
    });
  }

  /** A listening socket on the stack's port 80. */
  async listen(backlog: number): Promise<string> {
    const { id } = await (await this.api("POST", "/sockets", { protocol: "tcp" })).json();
    await (await this.api("POST", `/sockets/${id}/bind`, { port: 80 })).body?.cancel();
    const res = await this.api("POST", `/sockets/${id}/listen`, { backlog });
    assert.equal(res.status, 200, await res.text());
    return id;
  }

  /** Opens a connection from `port`: SYN, SYN-ACK, ACK. Returns the peer's next SEQ and the window. */
  async connect(port: number): Promise<{ seq: number; ack: number; window: number }> {
    this.send([frames.frame({ srcPort: port, seqNumber: 1000, flags: TcpFlags.SYN, mss: 1460 })]);
    const synAck = await this.synAck(port);
    const ack = (synAck.seqNumber + 1) >>> 0;
    this.send([
      frames.frame({ srcPort: port, seqNumber: 1001, ackNumber: ack, flags: TcpFlags.ACK }),
    ]);
    return { seq: 1001, ack, window: synAck.windowLen };
  }

  async view(): Promise<{ quota: { memory: { used: number; limit: number } } }> {
    return await (await this.api("GET", "")).json();
  }

  async stop(): Promise<void> {
    this.ws?.terminate();
    await this.proc?.stop();
  }
}

/** `count` frames of `size` bytes for a MAC nobody has: the stack drops them on arrival. */
function filler(count: number, size: number): Uint8Array[] {
  const f = new Uint8Array(size);
  f.set([0x02, 0, 0, 0, 0, 0x99], 0); // another destination
  f.set([0x52, 0x54, 0, 0x12, 0x34, 0x56], 6);
  f[12] = 0x08; // IPv4 (never parsed: not for us)
  return Array.from({ length: count }, () => f);
}

async function settled(cond: () => Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error("the server did not take the attack in time");
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("memory attacks against a real server (issue 11)", () => {
  let attack: Attack;
  before(() => {
    attack = new Attack();
  });
  after(async () => await attack.stop());

  for (const framing of ["stream", "frame"] as const) {
    it(`one in-order byte per tunnel message (${framing} framing) costs about a byte`, async () => {
      attack = new Attack();
      await attack.start(framing);
      const lid = await attack.listen(16);
      const { seq, ack } = await attack.connect(40000);
      const accepted = await (await attack.api("POST", `/sockets/${lid}/accept`, {})).json();
      const pid = attack.proc.child.pid!;
      const rss0 = rssMiB(pid);
      const messages = framing === "stream" ? 300 : 100_000;
      const pad = framing === "stream" ? filler(690, 1514) : [];
      for (let i = 0; i < messages; i++) {
        const byte = frames.frame({
          srcPort: 40000,
          seqNumber: (seq + i) >>> 0,
          ackNumber: ack,
          flags: TcpFlags.ACK | TcpFlags.PSH,
          payload: new Uint8Array([i & 0xff]),
          windowLen: 65535,
        });
        attack.send(framing === "stream" ? [byte, ...pad] : [byte]);
        // Let the socket drain now and then: the attacker's memory is not under test.
        if (i % (framing === "stream" ? 10 : 5000) === 0) {
          await new Promise((r) => setTimeout(r, 0));
        }
      }
      await settled(async () => {
        const s = await (await attack.api("GET", `/sockets/${accepted.id}`)).json();
        return s.recvQueued === messages;
      });
      const grown = rssMiB(pid) - rss0;
      const view = await attack.view();
      console.log(
        `${framing} framing: ${messages} messages of ${
          framing === "stream" ? "1 MiB" : "one frame"
        }, one unread byte each: server RSS +${grown.toFixed(0)} MiB; quota charged ` +
          `${(view.quota.memory.used / 1024).toFixed(0)} KiB`,
      );
      assert.ok(view.quota.memory.used < 1 * MiB, "a byte costs about a byte in the quota");
      const overhead = framing === "stream" ? MESSAGE_GARBAGE_MIB : OVERHEAD_MIB;
      assert.ok(
        grown < QUOTA_MIB + overhead,
        `RSS grew ${grown.toFixed(0)} MiB, more than the quota plus ${overhead} MiB`,
      );
      await attack.stop();
    });
  }

  it("connections never accepted stay inside the socket and memory quotas", async () => {
    attack = new Attack();
    await attack.start("stream");
    await attack.listen(1024); // the API's largest backlog
    const pid = attack.proc.child.pid!;
    const rss0 = rssMiB(pid);
    const CONNECTIONS = 400;
    const PER_CONNECTION = 256 * 1024;
    const payload = new Uint8Array(1400).fill(0x61);
    let opened = 0;
    for (let c = 0; c < CONNECTIONS; c++) {
      const port = 20000 + c;
      let conn;
      try {
        conn = await attack.connect(port);
      } catch {
        continue; // no SYN-ACK (the SYN queue is full)
      }
      opened++;
      // Blind data up to 256 KiB, within the window the SYN-ACK offered (scaled windows
      // are not negotiated here, so at most 64 KiB per window; the rest waits for ACKs
      // that the attacker ignores: it sends it anyway).
      const batch: Uint8Array[] = [];
      for (let off = 0; off < PER_CONNECTION; off += payload.length) {
        batch.push(frames.frame({
          srcPort: port,
          seqNumber: (conn.seq + off) >>> 0,
          ackNumber: conn.ack,
          flags: TcpFlags.ACK,
          payload,
        }));
        if (batch.length === 40) attack.send(batch.splice(0));
      }
      if (batch.length) attack.send(batch);
      if (c % 20 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    await new Promise((r) => setTimeout(r, 500)); // the last messages reach the core
    const view = await attack.view() as unknown as {
      quota: { memory: { used: number; limit: number }; sockets: { used: number; limit: number } };
    };
    const list = await (await attack.api("GET", "/sockets")).json();
    const grown = rssMiB(pid) - rss0;
    console.log(
      `${opened} of ${CONNECTIONS} handshakes answered, ${list.sockets[0].acceptQueue} ` +
        `queued: sockets ${view.quota.sockets.used}/${view.quota.sockets.limit}, memory ` +
        `${(view.quota.memory.used / MiB).toFixed(1)}/${
          view.quota.memory.limit / MiB
        } MiB; server RSS +${grown.toFixed(0)} MiB`,
    );
    assert.ok(view.quota.sockets.used <= view.quota.sockets.limit);
    assert.equal(
      list.sockets[0].acceptQueue,
      view.quota.sockets.used - 1,
      "each queued holds a unit",
    );
    assert.ok(view.quota.memory.used <= view.quota.memory.limit);
    assert.ok(
      grown < QUOTA_MIB + OVERHEAD_MIB,
      `RSS grew ${grown.toFixed(0)} MiB, more than the quota plus ${OVERHEAD_MIB} MiB`,
    );
  });
});
