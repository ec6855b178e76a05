/**
 * Feeds at least a million random and mutated frames to the stack on a
 * manual clock, in three parts:
 *
 * 1. through a session's real entry point, with egress on (an in-memory
 *    outside world: a fake dialer and DNS upstream), checking through the
 *    HTTP API that every frame is accounted for (handled, or counted under a
 *    drop reason), and that when the session ends no egress flow, runtime
 *    socket or timer is left;
 * 2. every protocol (Ethernet, ARP, IPv4 and IPv6 with fragments, ICMP,
 *    UDP, DHCP, DNS, TCP with options, egress to outside addresses) into a
 *    bare stack, whose egress events are answered at random;
 * 3. TCP connections steered into every state (SYN_SENT, SYN_RECEIVED,
 *    ESTABLISHED, FIN_WAIT_1/2, CLOSE_WAIT, LAST_ACK, CLOSING, TIME_WAIT) and
 *    listeners in SYN-cookie mode, hit with mutated copies of valid in-window
 *    segments while the application side sends, reads, closes and aborts.
 *
 * Nothing may throw, every frame the stack emits must be well-formed, and
 * after every batch `Stack.checkInvariants()` must find nothing: pcb lists
 * consistent with states and demux keys, port counts, queue and table sizes
 * within their limits, `rxFrames === rxHandled + drops`.
 *
 * `NETISLE_FUZZ_SEED` replays a run (the seed is printed); `NETISLE_FUZZ_FRAMES`
 * sets the total number of frames (default 1,000,000; split 6/34/60 %). Run
 * with `--v8-flags=--expose-gc` to bound the live heap tightly (32 MiB growth
 * instead of 256 MiB including garbage).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { createApp } from "../src/http/mod.ts";
import { ManualClock, SessionRegistry, type TunnelEndpoint } from "../src/session/mod.ts";
import { ChannelLink } from "../src/stack/channel_link.ts";
import { Stack } from "../src/stack/stack.ts";
import { ETHERNET_HEADER_LEN, type SeededRandom, seededRandom } from "../src/wire/mod.ts";
import { EgressPolicy, EgressService, parseEgressRules } from "../src/apps/egress/mod.ts";
import { FakeDialer, type FakeServerConn } from "../src/apps/egress/fake_dialer.ts";
import { ScriptedUpstream, settle } from "../src/apps/egress/_egress_test_util.ts";
import { egressMetricsCollector } from "../src/http/mod.ts";
import {
  assertWellFormed,
  egressTemplates,
  fixL4Checksum,
  FUZZ_MAX_CONNECTIONS,
  FUZZ_TARGET_STATES,
  hostileIpv6Chain,
  ipv6Templates,
  STACK_IP,
  TcpFuzzDriver,
  templates,
} from "./_fuzz_frames.ts";

const SEED = Number(process.env.NETISLE_FUZZ_SEED ?? Date.now() % 2 ** 31);
const TOTAL = Number(process.env.NETISLE_FUZZ_FRAMES ?? 1_000_000);
const SESSION_FRAMES = Math.round(TOTAL * 0.06);
const STATELESS_FRAMES = Math.round(TOTAL * 0.34);
const TCP_FRAMES = TOTAL - SESSION_FRAMES - STATELESS_FRAMES;
console.log(
  `fuzz seed ${SEED} (NETISLE_FUZZ_SEED=${SEED} replays it), ${TOTAL} frames ` +
    `(NETISLE_FUZZ_FRAMES): session ${SESSION_FRAMES}, protocols ${STATELESS_FRAMES}, ` +
    `tcp states ${TCP_FRAMES}`,
);

/** Frames sent by all parts, printed by the last one. */
const totals = { sent: 0, handled: 0, dropped: 0 };

/** A random or mutated copy of one of `bases`. */
function mutatedFrame(rnd: SeededRandom, bases: Uint8Array[]): Uint8Array {
  const kind = rnd.u32() % 4;
  if (kind === 0) {
    // Pure noise of any length up to a bit past the MTU.
    const f = new Uint8Array(rnd.u32() % 1600);
    rnd.fill(f);
    return f;
  }
  const base = bases[rnd.u32() % bases.length];
  let frame = base.slice();
  if (kind === 1) {
    // Flip a few bytes.
    const flips = 1 + (rnd.u32() % 4);
    for (let k = 0; k < flips; k++) frame[rnd.u32() % frame.length] ^= 1 + (rnd.u32() % 255);
  } else if (kind === 2) {
    // Truncate or extend.
    const len = rnd.u32() % (base.length + 64);
    frame = new Uint8Array(len);
    frame.set(base.subarray(0, Math.min(len, base.length)));
  } else if (rnd.u32() % 2 === 0) {
    // Mutate one byte anywhere past the IPv4 header and fix the transport
    // checksum, so the mutation reaches ARP, DHCP, DNS, ICMP and TCP parsers.
    const flips = 1 + (rnd.u32() % 3);
    for (let k = 0; k < flips; k++) {
      const at = ETHERNET_HEADER_LEN + 20 + (rnd.u32() % (frame.length - ETHERNET_HEADER_LEN - 20));
      frame[at] = rnd.u32() & 0xff;
    }
    fixL4Checksum(frame);
  } else if (rnd.u32() % 8 !== 0) {
    // Mutate one header field past the Ethernet header, keeping the rest valid.
    const at = ETHERNET_HEADER_LEN + (rnd.u32() % Math.min(40, frame.length - ETHERNET_HEADER_LEN));
    frame[at] = rnd.u32() & 0xff;
  }
  return frame;
}

function dropSummary(drops: Record<string, number>): { total: number; text: string; n: number } {
  const reasons = Object.entries(drops).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  const total = reasons.reduce((a, [, n]) => a + n, 0);
  return { total, n: reasons.length, text: reasons.map(([r, n]) => `${r}=${n}`).join(" ") };
}

function assertInvariants(stack: Stack, when: string): void {
  const bad = stack.checkInvariants();
  assert.deepEqual(bad, [], `invariants hold ${when} (seed ${SEED})`);
}

const mib = (n: number) => (n / 2 ** 20).toFixed(1);

describe("Stack.checkInvariants", () => {
  it("finds a pcb on the wrong list, a stale port count and frames not accounted for", () => {
    const drv = new TcpFuzzDriver(seededRandom(9), 9);
    const stack = drv.h.stack;
    const c = drv.open("ESTABLISHED")!;
    assert.equal(c.state, "ESTABLISHED");
    assert.deepEqual(stack.checkInvariants(), []);
    // An ESTABLISHED pcb filed under time-wait as well as active.
    stack.tcp.timeWait.set(c.key, c);
    const bad = stack.checkInvariants();
    assert.ok(
      bad.some((m) => m.includes("time-wait") && m.includes("ESTABLISHED")),
      bad.join("; "),
    );
    assert.ok(bad.some((m) => m.includes("both the active and time-wait lists")));
    assert.ok(
      bad.some((m) => /^port \d+: use count/.test(m)),
      "the port is counted once, held twice",
    );
    stack.tcp.timeWait.delete(c.key);
    assert.deepEqual(stack.checkInvariants(), []);
    stack.counters.rxFrames++;
    assert.match(stack.checkInvariants().join(), /rxFrames \d+ != handled/);
  });
});

describe("fuzz: random and mutated frames", () => {
  it("into a session with egress: every frame is handled or counted in GET /v1/sessions/:sid, nothing leaks", async () => {
    const rnd = seededRandom(SEED);
    const clock = new ManualClock(0);
    // The outside world: an echo server on 198.18.0.10:80, a refusal on :81, a host that
    // never answers, UDP echo on :7 and :53, a DNS upstream that knows one name.
    const dialer = new FakeDialer();
    dialer.pipeCapacity = 32 * 1024;
    const echoServer = (c: FakeServerConn) => {
      void (async () => {
        try {
          for (;;) {
            const d = await c.fromClient.read(4096);
            if (d === null) break;
            await c.toClient.write(d);
          }
          c.toClient.end();
        } catch {
          // Reset: the fuzzer's guest gave up.
        }
      })();
    };
    dialer.serve("198.18.0.10", 80, echoServer);
    dialer.serve("2001:db8::10", 80, echoServer); // the IPv6 templates' outside host
    dialer.refuse("198.18.0.10", 81);
    dialer.silent("198.18.0.11");
    for (const port of [7, 53]) dialer.udp("198.18.0.10", port, (d, reply) => reply(d));
    dialer.udp("2001:db8::10", 7, (d, reply) => reply(d));
    const upstream = new ScriptedUpstream();
    upstream.answers.set("www.example.test", {
      rcode: 0,
      answers: [{
        name: "www.example.test",
        type: 1,
        class: 1,
        ttl: 60,
        data: Uint8Array.of(198, 18, 0, 10),
      }],
      authority: [],
    });
    const egress = new EgressService({
      dialer,
      upstream,
      policy: new EgressPolicy({ allow: parseEgressRules("198.18.0.0/15") }),
      limits: { connectTimeoutMs: 5_000 },
    });
    const registry = new SessionRegistry({ clock, random: (b) => rnd.fill(b), egress });
    const app = createApp({
      registry,
      requestLog: false,
      metricsCollectors: [egressMetricsCollector(egress)],
    });
    const created = await (await app.request("/v1/sessions", { method: "POST" })).json();
    const session = registry.get(created.id)!;
    let emitted = 0;
    const tunnel: TunnelEndpoint = {
      description: "fuzz",
      send(frames) {
        for (const f of frames) {
          assertWellFormed(f);
          emitted++;
        }
      },
      close() {},
    };
    session.attachTunnel(tunnel);
    const mac = session.stack.config.mac;
    const bases = [...templates(mac), ...egressTemplates(mac), ...ipv6Templates(mac)];
    for (let i = 0; i < SESSION_FRAMES; i++) {
      session.input([mutatedFrame(rnd, bases)]);
      if (i % 250 === 249) await settle(2); // the gateway, the fake world and the relay run
      if (i % 1000 === 999) clock.advance(250);
    }
    await settle(4);

    const res = await app.request(`/v1/sessions/${created.id}`, {
      headers: { authorization: `Bearer ${created.token}` },
    });
    assert.equal(res.status, 200);
    const c = (await res.json()).counters;
    const d = dropSummary(c.drops);
    assert.equal(c.rxFrames, SESSION_FRAMES, "every frame was counted on arrival");
    assert.equal(c.rxHandled + d.total, SESSION_FRAMES, "every frame was handled or dropped");
    console.log(
      `session: sent ${SESSION_FRAMES}, handled ${c.rxHandled}, dropped ${d.total} under ` +
        `${d.n} reasons, emitted ${emitted}: ${d.text}`,
    );
    assert.ok(c.rxHandled > 0, "some mutated frames were still valid and handled");
    assert.ok(d.n >= 10, "the mutations reach many different checks");
    assert.equal(emitted, c.txFrames);
    assertInvariants(session.stack, "after the session run");
    const t = egress.totals();
    console.log(
      `session egress: TCP opened ${t.tcp.opened} refused ${t.tcp.refused}, UDP flows ` +
        `${t.udp.flows} (${t.udp.datagramsOut} out, ${t.udp.datagramsIn} in), DNS ` +
        `${t.dns.queries} queries, denied ${JSON.stringify(t.denied)}, open now ` +
        `${JSON.stringify(egress.gauges())}`,
    );
    if (SESSION_FRAMES >= 10_000) {
      assert.ok(t.tcp.opened > 0, "egress connections were opened");
      assert.ok(t.udp.flows > 0 && t.dns.queries > 0, "UDP flows and DNS queries went out");
    }
    totals.sent += SESSION_FRAMES;
    totals.handled += c.rxHandled;
    totals.dropped += d.total;
    registry.close();
    await settle(4);
    // Nothing is left once the session ended: no flow, runtime socket, dial or timer.
    assert.deepEqual(egress.gauges(), { sessions: 0, tcpConnections: 0, udpFlows: 0 });
    assert.equal(dialer.openConnections, 0, "every runtime connection closed");
    assert.equal(dialer.openUdpSockets, 0, "every runtime UDP socket closed");
    assert.equal(dialer.held.length, 0);
    assert.equal(clock.pendingTimers, 0, "no timer of the session or its egress is left");
    // Incomplete fragments stay with the closed stack until their reassembly timeout.
    session.stack.poll(clock.now() + 120_000);
    assert.equal(session.stack.quota.memory.used, 0, "every byte charged was released");
  });

  it("every protocol into a bare stack: nothing throws, limits and invariants hold", () => {
    const rnd = seededRandom(SEED + 1);
    const link = new ChannelLink(1 << 16);
    const stack = new Stack({
      mac: Uint8Array.of(2, 0, 0, 0, 0, 2),
      ipv4: { address: STACK_IP, prefixLength: 24 },
      mtu: 1500,
      dhcp: { enabled: true },
      arp: { maxEntries: 32 },
      reassembly: { maxBytes: 64 * 1024, maxDatagrams: 16 },
      ipv6Reassembly: { maxBytes: 64 * 1024, maxDatagrams: 16 },
      egress: { enabled: true },
    }, { link, random: (b) => rnd.fill(b) });
    /** Answers the stack's egress events at random, as a gateway could, and frees their copies. */
    const answerEgress = () => {
      const e = stack.egress!;
      for (const ev of e.take()) {
        const pick = rnd.u32() % 3;
        if (ev.kind === "tcp_syn") {
          if (pick === 0) e.acceptTcp(ev.key, now);
          else if (pick === 1) e.refuseTcp(ev.key, now);
          else e.tcpUnreachable(ev.key, 1, now);
        } else if (ev.kind === "udp") {
          if (pick === 0) e.sendUdp(ev.dst, ev.dstPort, ev.src, ev.srcPort, ev.payload, now);
          else if (pick === 1) e.udpUnreachable(ev.src, ev.srcPort, ev.dst, ev.dstPort, 3, now);
        } else if (ev.kind === "dns") {
          e.answerDns(ev.client, ev.clientPort, ev.query.slice(0, 12), now);
        }
        if (ev.charge) stack.quota.memory.release(ev.charge);
      }
    };
    stack.tcp.listen(80, 16);
    const udp = stack.udp.bind(5000);
    const mac = stack.config.mac;
    const bases = [...templates(mac), ...egressTemplates(mac), ...ipv6Templates(mac)];
    let now = 0;
    let emitted = 0;
    let maxArp = 0;
    let maxReasm = 0;
    let maxReasm6 = 0;
    let maxNeighbors = 0;
    for (let i = 0; i < STATELESS_FRAMES; i++) {
      // One in eight: a hostile chain of IPv6 extension headers.
      const frame = rnd.u32() % 8 === 0 ? hostileIpv6Chain(rnd, mac) : mutatedFrame(rnd, bases);
      // A mutated ARP sender address fills the cache with made-up neighbours.
      stack.input(frame, now);
      if ((i & 255) === 255) {
        for (const f of link.drain()) {
          assertWellFormed(f);
          emitted++;
        }
        now += rnd.u32() % 400;
        answerEgress();
        stack.poll(now);
        maxArp = Math.max(maxArp, stack.arp.size);
        maxNeighbors = Math.max(maxNeighbors, stack.neighbors!.size);
        maxReasm = Math.max(maxReasm, stack.reassembler.bytesHeld);
        maxReasm6 = Math.max(maxReasm6, stack.ipv6Reassembler!.bytesHeld);
      }
      if ((i & 4095) === 4095) {
        assertInvariants(stack, `after frame ${i}`);
        while (udp.receive());
      }
    }
    const c = stack.counters;
    const d = dropSummary(c.drops);
    assert.equal(c.rxFrames, STATELESS_FRAMES);
    assert.equal(c.rxHandled + d.total, STATELESS_FRAMES);
    assertInvariants(stack, "at the end");
    const dhcp = stack.dhcp!.stats;
    const dhcpDrops = dropSummary(dhcp.drops);
    console.log(
      `protocols: sent ${STATELESS_FRAMES}, handled ${c.rxHandled}, dropped ${d.total} under ` +
        `${d.n} reasons, emitted ${emitted}; max ARP entries ${maxArp}/32, IPv6 neighbours ` +
        `${maxNeighbors}/${stack.neighbors!.options.maxEntries}, max reassembly ` +
        `bytes ${maxReasm}/65536, IPv6 ${maxReasm6}/65536 (${
          stack.ipv6Reassembler!.stats.completed
        } completed), DHCP leases ${stack.dhcp!.leases().length}: ${d.text}; DHCP server ` +
        `received ${dhcp.rx}, dropped ${dhcpDrops.text}`,
    );
    assert.ok(d.n >= 25, `the mutations reach many different checks (${d.n})`);
    // Coverage checks need volume: a short run (NETISLE_FUZZ_FRAMES) only checks safety.
    const coverage = STATELESS_FRAMES >= 100_000
      ? [
        "arp",
        "icmp",
        "ipv4_reassembly",
        "udp",
        "tcp",
        "dns",
        "ipv6_ext",
        "ipv6",
        "icmpv6",
        "ndp",
        "dhcpv6",
      ]
      : [];
    for (const r of coverage) {
      assert.ok(
        Object.keys(c.drops).some((k) => k.startsWith(r) && c.drops[k] > 0),
        `some ${r} frames were dropped by a ${r} check`,
      );
    }
    if (coverage.length) assert.ok(dhcpDrops.total > 0, "the DHCP server dropped some messages");
    totals.sent += STATELESS_FRAMES;
    totals.handled += c.rxHandled;
    totals.dropped += d.total;
  });

  it("TCP in every state and listeners in SYN-cookie mode: mutated in-window segments", () => {
    const rnd = seededRandom(SEED + 2);
    const drv = new TcpFuzzDriver(rnd, SEED + 2);
    const stack = drv.h.stack;
    (globalThis as { gc?: () => void }).gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    let maxConns = 0;
    let maxOoo = 0;
    let batches = 0;
    const started = performance.now();
    while (drv.sent < TCP_FRAMES) {
      for (let i = 0; i < 512 && drv.sent < TCP_FRAMES; i++) {
        if ((i & 63) === 0) {
          drv.h.advance(rnd.u32() % 300);
          drv.acceptAll();
          drv.replenish(32);
        }
        drv.mutatedSegment();
        if ((i & 7) === 0) drv.appAction();
      }
      // Timers: mostly short steps, sometimes long enough for 2MSL, FIN_WAIT_2
      // timeouts, keepalives and retransmission give-up.
      drv.h.advance(batches % 16 === 15 ? 5_000 + (rnd.u32() % 100_000) : rnd.u32() % 1500);
      drv.drainChecked();
      drv.deliverEvents();
      batches++;
      maxConns = Math.max(maxConns, stack.tcp.connectionCount);
      for (const c of drv.conns) maxOoo = Math.max(maxOoo, c.info().outOfOrderBytes);
      assertInvariants(stack, `after batch ${batches}`);
    }
    const ms = performance.now() - started;
    // With --v8-flags=--expose-gc the figure is the live heap, otherwise it includes garbage.
    (globalThis as { gc?: () => void }).gc?.();
    const heapAfter = process.memoryUsage().heapUsed;
    const c = stack.counters;
    const d = dropSummary(c.drops);
    assert.equal(c.rxFrames, drv.sent, "every frame was counted on arrival");
    assert.equal(c.rxHandled + d.total, drv.sent, "every frame was handled or dropped");
    console.log(
      `tcp: sent ${drv.sent} in ${batches} batches (${(ms / 1000).toFixed(1)} s), handled ` +
        `${c.rxHandled}, dropped ${d.total} under ${d.n} reasons, emitted ${drv.emitted}; ` +
        `max connections ${maxConns}/${FUZZ_MAX_CONNECTIONS}, max out-of-order bytes ${maxOoo}, cookies sent ` +
        `${drv.cookieListener.cookiesSent} accepted ${drv.cookieListener.cookiesAccepted}, ` +
        `RSTs sent ${stack.tcp.stats.rstsSent}, challenge ACKs limited ` +
        `${stack.tcp.stats.challengeAcksLimited}, heap ${mib(heapBefore)} -> ${mib(heapAfter)} MiB`,
    );
    console.log(`tcp: states reached ${JSON.stringify(drv.reached)}`);
    console.log(`tcp: mutated segments by target state ${JSON.stringify(drv.hits)}`);
    console.log(`tcp: drops ${d.text}`);
    for (const s of FUZZ_TARGET_STATES) {
      assert.ok((drv.reached[s] ?? 0) > 0, `a connection was steered into ${s}`);
      const min = Math.min(100, TCP_FRAMES / 2000);
      assert.ok((drv.hits[s] ?? 0) > min, `mutated segments hit connections in ${s}`);
    }
    assert.ok(drv.cookieListener.cookiesSent > 0, "the small listener fell back to SYN cookies");
    assert.ok(drv.cookieListener.cookiesAccepted > 0, "a SYN cookie completed a handshake");
    assert.ok(d.n >= 15, `the mutations reach many different checks (${d.n})`);
    const heapLimit = (globalThis as { gc?: unknown }).gc ? 32 : 256;
    assert.ok(
      heapAfter - heapBefore < heapLimit * 2 ** 20,
      `heap grew by ${mib(heapAfter - heapBefore)} MiB, within ${heapLimit} MiB`,
    );
    stack.tcp.abortAll(drv.h.now);
    drv.drainChecked();
    assertInvariants(stack, "after abortAll");
    assert.equal(stack.tcp.connectionCount, 0);
    totals.sent += drv.sent;
    totals.handled += c.rxHandled;
    totals.dropped += d.total;
    console.log(
      `fuzz total (seed ${SEED}): sent ${totals.sent}, handled ${totals.handled}, dropped ` +
        `${totals.dropped}`,
    );
    assert.ok(totals.sent >= TOTAL, `at least ${TOTAL} frames were sent`);
  });
});
