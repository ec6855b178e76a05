/**
 * Abuse of the tunnel on a real server (Deno.serve on loopback, `ws`
 * clients): garbage messages, frames too short or too long, a message over
 * the 1 MiB limit, a broken QEMU stream, wrong tokens, and reconnect storms
 * (hundreds of connects and disconnects, then dozens of clients replacing one
 * another at once). Each is refused or closed with a clear status or close
 * code, the session keeps answering ARP and ping through a good client, and
 * its counters add up. Each case prints what it sent and what survived.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import WsWebSocket from "ws";
import { parseMacAddress, seededRandom } from "../src/wire/mod.ts";
import type { SessionRegistry } from "../src/session/mod.ts";
import { CLOSE_MESSAGE_TOO_BIG, CLOSE_UNSUPPORTED_DATA } from "../src/session/tunnel_server.ts";
import {
  CLOSE_STREAM_FRAMING_ERROR,
  QEMU_STREAM_SUBPROTOCOL,
} from "../src/wire/tunnel_protocol.ts";
import {
  arpRequest,
  type CreatedSession,
  createSession,
  echoRequest,
  eventually,
  isArpReply,
  isEchoReply,
  withServer,
} from "./_tunnel_test_util.ts";
import { sessionView } from "../src/http/session_view.ts";

/** A `ws` client that records messages and how it ended. */
class Client {
  readonly ws: WsWebSocket;
  readonly received: Uint8Array[] = [];
  closed: { code: number; reason: string } | undefined;
  status: number | undefined;
  readonly opened: Promise<boolean>;

  constructor(url: string, protocols?: string[]) {
    this.ws = new WsWebSocket(url, protocols);
    this.ws.binaryType = "nodebuffer";
    this.ws.on("message", (d: Uint8Array) => this.received.push(new Uint8Array(d)));
    this.ws.on("close", (code: number, reason: Uint8Array) => {
      this.closed = { code, reason: new TextDecoder().decode(reason) };
    });
    this.ws.on("error", () => {});
    this.opened = new Promise((resolve) => {
      this.ws.on("open", () => resolve(true));
      this.ws.on("unexpected-response", (_req: unknown, res: { statusCode: number }) => {
        this.status = res.statusCode;
        resolve(false);
      });
      this.ws.on("error", () => resolve(false));
    });
  }

  send(data: Uint8Array | string): void {
    this.ws.send(data);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.ws.close();
    await eventually(() => this.closed !== undefined, 3000);
  }
}

const url = (s: CreatedSession, token = s.token) =>
  `${s.tunnel.url}?token=${encodeURIComponent(token)}`;

/** ARP and one ping through a fresh client: the session still answers. */
async function assertSessionAnswers(s: CreatedSession, seq: number): Promise<void> {
  const c = new Client(url(s));
  assert.ok(await c.opened, "a good client connects");
  c.send(arpRequest());
  c.send(echoRequest(parseMacAddress(s.mac), seq));
  assert.ok(
    await eventually(() => c.received.some(isArpReply) && c.received.some(isEchoReply(seq))),
    `ARP and ping ${seq} answered (got ${c.received.length} messages)`,
  );
  await c.close();
}

/** Asserts the session view's counters add up: every frame handled or dropped for a reason. */
function assertCountersAddUp(registry: SessionRegistry, s: CreatedSession) {
  const view = sessionView(registry.get(s.id)!);
  const c = view.counters;
  const drops = Object.values(c.drops as Record<string, number>).reduce((a, b) => a + b, 0);
  assert.equal(c.rxFrames, c.rxHandled + drops, "rxFrames = handled + dropped");
  return view;
}

describe("tunnel abuse on a real server", () => {
  it("garbage, short, long and oversized messages are dropped or closed with a clear code", async () => {
    await withServer(async (base, registry) => {
      const s = await createSession(base);
      const session = registry.get(s.id)!;

      // A text message: 1003.
      let c = new Client(url(s));
      assert.ok(await c.opened);
      c.send("hello, are you a frame?");
      assert.ok(await eventually(() => c.closed !== undefined));
      console.log(`text message: closed ${c.closed!.code} "${c.closed!.reason}"`);
      assert.equal(c.closed!.code, CLOSE_UNSUPPORTED_DATA);

      // Frames under 14 bytes and over the largest frame: dropped and counted, the socket stays.
      c = new Client(url(s));
      assert.ok(await c.opened);
      const before = session.tunnelStats.rejectedMessages;
      for (let n = 0; n < 14; n++) c.send(new Uint8Array(n));
      for (const n of [1515, 9000, 65_536, 512 * 1024]) c.send(new Uint8Array(n));
      // Random bytes of frame size: these reach the stack and are dropped by reason.
      const rnd = seededRandom(42);
      for (let i = 0; i < 1000; i++) {
        const f = new Uint8Array(14 + (rnd.u32() % 1500));
        rnd.fill(f);
        c.send(f);
      }
      c.send(arpRequest());
      assert.ok(await eventually(() => c.received.some(isArpReply)), "ARP still answered");
      const rejected = session.tunnelStats.rejectedMessages - before;
      console.log(
        `14 short + 4 long messages + 1000 random frames: ${rejected} rejected, socket open: ` +
          `${c.closed === undefined}`,
      );
      assert.equal(rejected, 18);
      assert.equal(c.closed, undefined);

      // A message over the 1 MiB limit: 1009.
      c.send(new Uint8Array(2 * 1024 * 1024));
      assert.ok(await eventually(() => c.closed !== undefined));
      console.log(`2 MiB message: closed ${c.closed!.code} "${c.closed!.reason}"`);
      assert.equal(c.closed!.code, CLOSE_MESSAGE_TOO_BIG);

      // QEMU stream framing with a length over the largest frame: 4002.
      c = new Client(url(s), [QEMU_STREAM_SUBPROTOCOL]);
      assert.ok(await c.opened);
      c.send(Uint8Array.of(0x00, 0x10, 0x00, 0x00, 1, 2, 3));
      assert.ok(await eventually(() => c.closed !== undefined));
      console.log(`qemu-stream length 1048576: closed ${c.closed!.code} "${c.closed!.reason}"`);
      assert.equal(c.closed!.code, CLOSE_STREAM_FRAMING_ERROR);

      await assertSessionAnswers(s, 1);
      const view = assertCountersAddUp(registry, s);
      const reasons = Object.entries(view.counters.drops as Record<string, number>)
        .filter(([, n]) => n > 0).map(([r, n]) => `${r}=${n}`).join(" ");
      console.log(
        `session after the garbage: rx ${view.counters.rxFrames}, handled ` +
          `${view.counters.rxHandled}, rejected messages ${view.tunnel.rejectedMessages}; ${reasons}`,
      );
    });
  });

  it("wrong tokens, unknown sessions and plain HTTP are refused without attaching", async () => {
    await withServer(async (base, registry) => {
      const s = await createSession(base);
      const other = await createSession(base);
      const session = registry.get(s.id)!;
      const attaches = session.tunnelStats.attaches;
      const cases: Array<[string, string, number]> = [
        ["wrong token", url(s, "nope"), 401],
        ["no token", s.tunnel.url, 401],
        ["another session's token", url(s, other.token), 401],
        ["unknown session", url(s).replace(s.id, `s_${"B".repeat(22)}`), 404],
        ["malformed session id", url(s).replace(s.id, "s_bad"), 400],
      ];
      for (const [name, u, status] of cases) {
        const c = new Client(u);
        assert.equal(await c.opened, false, `${name} does not open`);
        console.log(`${name}: HTTP ${c.status}`);
        assert.equal(c.status, status, name);
      }
      const plain = await fetch(url(s).replace(/^ws/, "http"));
      console.log(`plain GET of the tunnel URL: ${plain.status} ${(await plain.json()).code}`);
      assert.equal(plain.status, 426);
      assert.equal(session.tunnelStats.attaches, attaches, "nothing attached");
      await assertSessionAnswers(s, 2);
    });
  });

  it("reconnect storms: hundreds of connects, then concurrent replacement, leave one tunnel", async () => {
    await withServer(async (base, registry) => {
      const s = await createSession(base);
      const session = registry.get(s.id)!;
      const start = session.tunnelStats.attaches;
      const t0 = performance.now();
      // 300 clients in a row, each closing before the next, half of them without waiting.
      const quick: Client[] = [];
      for (let i = 0; i < 300; i++) {
        const c = new Client(url(s));
        assert.ok(await c.opened);
        if (i % 2 === 0) c.send(arpRequest());
        if (i % 2 === 0) await c.close();
        else {
          c.ws.terminate();
          quick.push(c);
        }
      }
      assert.ok(await eventually(() => !session.tunnel !== undefined), "no tunnel left");
      console.log(
        `300 sequential connects/disconnects in ${(performance.now() - t0).toFixed(0)} ms: ` +
          `attaches +${session.tunnelStats.attaches - start}, attached now ` +
          `${session.tunnel !== undefined}`,
      );
      assert.equal(session.tunnelStats.attaches - start, 300);

      // 60 clients at once: each replaces the previous one; exactly one stays.
      const storm = Array.from({ length: 60 }, () => new Client(url(s)));
      const opened = await Promise.all(storm.map((c) => c.opened));
      assert.ok(opened.every(Boolean), "all connect");
      assert.ok(await eventually(() => storm.filter((c) => c.closed).length === 59, 5000));
      const codes: Record<number, number> = {};
      for (const c of storm) if (c.closed) codes[c.closed.code] = (codes[c.closed.code] ?? 0) + 1;
      const survivor = storm.find((c) => !c.closed)!;
      console.log(`60 concurrent clients: closed with ${JSON.stringify(codes)}, 1 survivor`);
      assert.deepEqual(codes, { 4000: 59 });
      survivor.send(arpRequest());
      survivor.send(echoRequest(parseMacAddress(s.mac), 3));
      assert.ok(
        await eventually(() =>
          survivor.received.some(isArpReply) && survivor.received.some(isEchoReply(3))
        ),
        "the survivor carries the session's frames",
      );
      const metrics = await (await fetch(`${base}/metrics`)).text();
      const attachedGauge = Number(/^netisle_tunnels_attached (\d+)/m.exec(metrics)?.[1]);
      console.log(`netisle_tunnels_attached ${attachedGauge}`);
      assert.equal(attachedGauge, 1);
      await survivor.close();
      assert.ok(await eventually(() => !session.tunnel !== undefined));
      await assertSessionAnswers(s, 4);
      const view = assertCountersAddUp(registry, s);
      console.log(
        `session after the storms: attaches ${view.tunnel.attaches}, rx ${view.counters.rxFrames}` +
          `, tx ${view.counters.txFrames}, frames without tunnel ` +
          `${view.counters.txDrops.no_tunnel ?? 0}`,
      );
    });
  });
});
