import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { IpProtocol, seededRandom } from "../wire/mod.ts";
import { ManualClock } from "./clock.ts";
import { CLOSE_REPLACED, CLOSE_SESSION_ENDED, Session, type TunnelEndpoint } from "./session.ts";
import { SessionRegistry } from "./registry.ts";
import { arpRequest, makeSession, PEER_IP, STACK_IP } from "./_session_test_util.ts";
import { NetError } from "../errors/mod.ts";
import { makeSession as makePeerSession, SessionPeer } from "../socket/_session_peer_test_util.ts";
import { HARNESS_PEER_IP } from "../stack/tcp/tcp_harness.ts";

class RecordingTunnel implements TunnelEndpoint {
  readonly description = "test";
  sent: Uint8Array[] = [];
  closed: Array<[number, string]> = [];
  lockHeldDuringSend: boolean[] = [];
  constructor(readonly session?: Session) {}
  send(frames: Uint8Array[]): void {
    if (this.session) this.lockHeldDuringSend.push(this.session.lock.held);
    this.sent.push(...frames);
  }
  close(code: number, reason: string): void {
    this.closed.push([code, reason]);
  }
}

/** A manual clock whose timers the test fires itself, as late as it likes. */
class LateClock extends ManualClock {
  pending: Array<{ at: number; fn: () => void }> = [];
  override setTimer(at: number, fn: () => void): number {
    this.pending.push({ at, fn });
    return super.setTimer(at, () => {});
  }
}

describe("Session", () => {
  it("records how long frames waited for the core and how late its timer fired", () => {
    const clock = new LateClock(1000);
    const session = makeSession(clock);
    session.attachTunnel(new RecordingTunnel(session));
    session.input([arpRequest(), arpRequest()]);
    assert.equal(session.coreDelay.frames.count, 2);
    assert.equal(session.coreDelay.frames.summary().maxMs, 0, "the lock was free: no wait");
    session.withCore((stack, now) => stack.tcp.connect(PEER_IP, 80, now));
    const timer = clock.pending.at(-1);
    assert.ok(timer, "connecting armed the session's timer");
    clock.advanceTo(timer.at + 7);
    timer.fn();
    const late = session.coreDelay.timers.summary();
    assert.equal(late.count, 1);
    assert.equal(late.maxMs, 7);
    assert.equal(late.p99Ms, 7, "bucket bound capped at the maximum");
    assert.equal(session.coreDelay.frames.summary().count, 2);
  });

  it("processes input under the lock and sends output to the tunnel after releasing it", () => {
    const session = makeSession();
    const tunnel = new RecordingTunnel(session);
    session.attachTunnel(tunnel);
    assert.equal(tunnel.sent.length, 1, "gratuitous ARP on attach");
    session.input([arpRequest()]);
    assert.equal(tunnel.sent.length, 2, "ARP reply");
    assert.deepEqual(tunnel.lockHeldDuringSend, [false, false]);
    assert.equal(session.stack.counters.rxHandled, 1);
  });

  it("processes a batch of frames in one acquisition", () => {
    const session = makeSession();
    const before = session.lock.stats.acquisitions;
    session.input([arpRequest(), arpRequest(), arpRequest()]);
    assert.equal(session.lock.stats.acquisitions - before, 1);
    assert.equal(session.stack.counters.rxHandled, 3);
  });

  it("a newer tunnel replaces the older one, which is closed with 4000", () => {
    const session = makeSession();
    const a = new RecordingTunnel();
    const b = new RecordingTunnel();
    session.attachTunnel(a);
    session.attachTunnel(b);
    assert.equal(a.closed[0][0], CLOSE_REPLACED);
    session.input([arpRequest()]);
    assert.equal(b.sent.length, 2);
    assert.equal(a.sent.length, 1);
    assert.equal(session.tunnelStats.attaches, 2);
  });

  it("outlives its tunnel: frames emitted meanwhile are counted, a reattach resumes", () => {
    const session = makeSession();
    const a = new RecordingTunnel();
    session.attachTunnel(a);
    session.detachTunnel(a);
    session.input([arpRequest()]);
    assert.equal(session.tunnelStats.framesWithoutTunnel, 1);
    assert.equal(session.frameCounters().txDrops.no_tunnel, 1);
    const b = new RecordingTunnel();
    session.attachTunnel(b);
    session.input([arpRequest()]);
    assert.equal(b.sent.length, 2);
  });

  it("arms one timer at the stack's next deadline and fires it through the lock", () => {
    const clock = new ManualClock(0);
    const session = makeSession(clock);
    const tunnel = new RecordingTunnel();
    session.attachTunnel(tunnel);
    tunnel.sent = [];
    session.withCore((stack, now) =>
      stack.sendIpv4(PEER_IP, IpProtocol.UDP, new Uint8Array(8), now)
    );
    assert.equal(tunnel.sent.length, 1, "ARP request");
    assert.equal(session.timerDeadline, 1000);
    assert.equal(clock.pendingTimers, 1);
    clock.advance(1000);
    assert.equal(tunnel.sent.length, 2, "ARP retry from the timer");
    clock.advance(2000);
    assert.equal(tunnel.sent.length, 3);
    assert.equal(session.timerDeadline, undefined);
    assert.equal(clock.pendingTimers, 0);
    assert.equal(session.stack.counters.txDrops.arp_unresolved, 1);
  });

  it("close() closes the tunnel with 4001, stops the timer and ignores later input", () => {
    const clock = new ManualClock(0);
    const session = makeSession(clock);
    const tunnel = new RecordingTunnel();
    session.attachTunnel(tunnel);
    session.withCore((stack, now) =>
      stack.sendIpv4(PEER_IP, IpProtocol.UDP, new Uint8Array(8), now)
    );
    session.close();
    assert.equal(tunnel.closed[0][0], CLOSE_SESSION_ENDED);
    assert.equal(clock.pendingTimers, 0);
    session.input([arpRequest()]);
    assert.equal(session.stack.counters.rxFrames, 0);
  });

  it("rejects limits that are not positive integers", () => {
    for (const limits of [{ maxSockets: 0 }, { maxBufferedBytes: 1.5 }, { inputQueueFrames: -1 }]) {
      assert.throws(() => makeSession(new ManualClock(0), limits), RangeError);
    }
  });

  it("bounds the input queue", () => {
    const session = makeSession(new ManualClock(0), { inputQueueFrames: 2 });
    session.input([arpRequest(), arpRequest(), arpRequest(), arpRequest()]);
    assert.equal(session.stack.counters.rxFrames, 2);
    assert.equal(session.tunnelStats.inputQueueDrops, 2);
    assert.equal(session.frameCounters().drops.input_queue_full, 2);
    assert.equal(session.frameCounters().rxFrames, 4);
  });

  it("copies borrowed frames that must wait for the lock: the caller reuses them after input returns", () => {
    const session = makeSession();
    const tunnel = new RecordingTunnel();
    session.attachTunnel(tunnel);
    tunnel.sent = [];
    const frames = [arpRequest(), arpRequest()];
    session.withCore(() => {
      session.input(frames, undefined, true);
      for (const f of frames) f.fill(0xee); // the caller's buffer, reused
    });
    assert.equal(session.stack.counters.rxHandled, 2, "both intact when the core got to them");
    assert.equal(tunnel.sent.length, 2, "two ARP replies");
  });
});

describe("SessionRegistry", () => {
  it("creates sessions with QEMU-like defaults, unique ids and long random tokens", () => {
    const rnd = seededRandom(1);
    const reg = new SessionRegistry({ clock: new ManualClock(0), random: (b) => rnd.fill(b) });
    const a = reg.create();
    const b = reg.create();
    assert.notEqual(a.id, b.id);
    assert.match(a.id, /^s_[A-Za-z0-9_-]{22}$/);
    assert.match(a.token, /^[A-Za-z0-9_-]{43}$/);
    const v = a.stack.config;
    assert.deepEqual(v.ipv4, { address: STACK_IP, prefixLength: 24 });
    assert.equal(v.mtu, 1500);
    assert.equal(v.mac[0] & 0x03, 0x02, "locally administered unicast");
  });

  it("refuses a session beyond the quota with ENFILE", () => {
    const reg = new SessionRegistry({ clock: new ManualClock(0), limits: { maxSessions: 2 } });
    reg.create();
    reg.create();
    assert.throws(() => reg.create(), (e) => e instanceof NetError && e.code === "ENFILE");
  });

  it("expires idle sessions without a tunnel, keeps those with one, and cleans up on close", () => {
    const clock = new ManualClock(0);
    const reg = new SessionRegistry({
      clock,
      limits: { idleTimeoutMs: 1000, sweepIntervalMs: 500 },
    });
    const idle = reg.create();
    const busy = reg.create();
    busy.attachTunnel(new RecordingTunnel());
    reg.startSweeping();
    clock.advance(1500);
    assert.equal(reg.get(idle.id), undefined);
    assert.equal(idle.closed, true);
    assert.equal(reg.get(busy.id), busy);
    reg.close();
    assert.equal(reg.size, 0);
    assert.equal(clock.pendingTimers, 0, "no timer left behind");
  });
});

describe("Session timer", () => {
  it("re-arms only when the next deadline moves earlier or the timer fired", () => {
    const { clock, session, tunnel } = makePeerSession({ noDelay: true });
    const peer = new SessionPeer(session, tunnel, 50000, { port: 8080 });
    const conn = session.withCore((stack, now) =>
      stack.tcp.connect(HARNESS_PEER_IP, 8080, now, { localPort: 50000 })
    );
    const [syn] = peer.drain();
    assert.equal(session.timerDeadline, 2000, "the SYN's retransmission timer (1 s)");
    peer.acceptSyn(syn);
    peer.drain();
    assert.equal(conn.nextDeadline(), undefined);
    assert.ok(session.stack.nextDeadline()! > 1e12, "only the ARP entry's expiry is left");
    assert.equal(session.timerDeadline, 2000, "a later deadline leaves the timer armed");
    session.withCore((_stack, now) => conn.send(new Uint8Array(2000), now));
    const [a, b] = peer.drain();
    assert.equal(b.payload.length, 540);
    assert.equal(session.timerDeadline, 1200, "an earlier one (RTO 200 ms) re-arms it");
    clock.advance(50);
    peer.ack = (a.seqNumber + a.payload.length) >>> 0;
    peer.inject({});
    assert.equal(conn.nextDeadline(), 1250, "the ACK moved the RTO later");
    assert.equal(session.timerDeadline, 1200, "the timer stays where it was");
    clock.advance(150);
    assert.deepEqual(peer.drain(), [], "it fired with nothing due");
    assert.equal(session.timerDeadline, 1250, "and was re-armed at the new deadline");
    clock.advance(50);
    const [again] = peer.drain();
    assert.equal(again.seqNumber, b.seqNumber, "the RTO retransmits at 1250");
  });
});
