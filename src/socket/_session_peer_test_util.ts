/**
 * Test helpers for the socket layer: a session on a manual clock with a
 * recording tunnel, and a scripted TCP peer that talks to it through
 * `session.input`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ManualClock } from "../session/clock.ts";
import { Session, type SessionLimits, type TunnelEndpoint } from "../session/session.ts";
import type { TcpConfig } from "../stack/tcp/tcp_config.ts";
import {
  decodeTcpFrame,
  HARNESS_PEER_IP,
  HARNESS_PEER_MAC,
  HARNESS_STACK_IP,
  HARNESS_STACK_MAC,
  type PeerSegment,
  TcpHarness,
} from "../stack/tcp/tcp_harness.ts";
import { EthernetFrame, EtherType, TcpFlags, type TcpRepr } from "../wire/mod.ts";

/** A tunnel that records what the session sends and whether the core lock was held. */
export class RecordingTunnel implements TunnelEndpoint {
  readonly description = "test";
  frames: Uint8Array[] = [];
  lockHeldDuringSend: boolean[] = [];
  constructor(readonly session: Session) {}
  send(frames: Uint8Array[]): void {
    this.lockHeldDuringSend.push(this.session.lock.held);
    for (const f of frames) this.frames.push(f.slice());
  }
  close(): void {}
}

/** A session at 10.0.2.2 on a manual clock with a recording tunnel attached. */
export function makeSession(tcp: Partial<TcpConfig> = {}, limits?: Partial<SessionLimits>) {
  const clock = new ManualClock(1000);
  const session = new Session({
    id: "s_tcp",
    token: "t",
    clock,
    stack: {
      mac: HARNESS_STACK_MAC,
      ipv4: { address: HARNESS_STACK_IP, prefixLength: 24 },
      mtu: 1500,
      arp: { reachableMs: 1e12 },
      tcp,
    },
    limits,
  });
  const tunnel = new RecordingTunnel(session);
  session.attachTunnel(tunnel);
  session.withCore((stack, now) => stack.arp.update(HARNESS_PEER_IP, HARNESS_PEER_MAC, now));
  tunnel.frames = [];
  return { clock, session, tunnel };
}

const frameBuilder = new TcpHarness();

/** A scripted TCP peer at 10.0.2.15 that sends frames through `session.input`. */
export class SessionPeer {
  /** The peer's SND.NXT. */
  seq: number;
  /** The next byte the peer expects from the stack. */
  ack = 0;
  readonly port: number;
  constructor(
    readonly session: Session,
    readonly tunnel: RecordingTunnel,
    readonly stackPort: number,
    options: { port?: number; isn?: number } = {},
  ) {
    this.port = options.port ?? 40000;
    this.seq = options.isn ?? 7000;
  }

  /** The frame of a segment from this peer (defaults: ports, SEQ, ACK, ACK flag). */
  frame(s: Partial<PeerSegment> = {}): Uint8Array {
    return frameBuilder.frame({
      srcPort: this.port,
      dstPort: this.stackPort,
      seqNumber: this.seq,
      ackNumber: this.ack,
      flags: TcpFlags.ACK,
      ...s,
    });
  }

  /** Hands one segment to the session as a frame from the tunnel. */
  inject(s: Partial<PeerSegment> = {}): void {
    this.session.input([this.frame(s)]);
  }

  /** Sends data at SND.NXT (or `seq`) and advances SND.NXT past it. */
  send(data: Uint8Array, s: Partial<PeerSegment> = {}): void {
    this.inject({ flags: TcpFlags.ACK | TcpFlags.PSH, payload: data, ...s });
    const fin = ((s.flags ?? 0) & TcpFlags.FIN) ? 1 : 0;
    const end = ((s.seqNumber ?? this.seq) + data.length + fin) >>> 0;
    if (((end - this.seq) | 0) > 0) this.seq = end;
  }

  /** Opens a connection to a listening stack: SYN, then the ACK of its SYN-ACK. */
  connect(): TcpRepr {
    this.inject({ flags: TcpFlags.SYN, ackNumber: 0, mss: 1460 });
    const [synAck] = this.drain();
    if (!synAck || synAck.flags !== (TcpFlags.SYN | TcpFlags.ACK)) {
      throw new Error("SessionPeer.connect: no SYN-ACK");
    }
    this.seq = (this.seq + 1) >>> 0;
    this.ack = (synAck.seqNumber + 1) >>> 0;
    this.inject({});
    return synAck;
  }

  /** Answers the stack's SYN (an active open) with a SYN-ACK. */
  acceptSyn(syn: TcpRepr, window = 65535): void {
    this.ack = (syn.seqNumber + 1) >>> 0;
    this.inject({ flags: TcpFlags.SYN | TcpFlags.ACK, mss: 1460, windowLen: window });
    this.seq = (this.seq + 1) >>> 0;
  }

  /** Decodes and removes the TCP segments the session sent to this peer's port. */
  drain(): TcpRepr[] {
    const out: TcpRepr[] = [];
    const keep: Uint8Array[] = [];
    for (const f of this.tunnel.frames) {
      const eth = EthernetFrame.parse(f);
      if (!eth.ok || eth.value.etherType !== EtherType.IPV4) continue;
      const seg = decodeTcpFrame(f);
      if (seg.dstPort === this.port) out.push(seg);
      else keep.push(f);
    }
    this.tunnel.frames = keep;
    return out;
  }
}

/** Decodes and removes every TCP segment the session sent, for all peers. */
export function drainAll(tunnel: RecordingTunnel): TcpRepr[] {
  const out: TcpRepr[] = [];
  for (const f of tunnel.frames) {
    const eth = EthernetFrame.parse(f);
    if (eth.ok && eth.value.etherType === EtherType.IPV4) out.push(decodeTcpFrame(f));
  }
  tunnel.frames = [];
  return out;
}

/** Lets promise callbacks and event deliveries run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setTimeout(r, 0));
}

/**
 * Lets pending work run, moves `clock` forward by `ms` (firing the timers
 * that fall due, long-poll timeouts included) and lets the work that follows
 * run.
 */
export async function advance(clock: ManualClock, ms: number): Promise<void> {
  await settle();
  clock.advance(ms);
  await settle();
}

/**
 * Asserts that `pending` is still waiting 1 ms before `ms` has passed on
 * `clock` and has settled once it has: a wait that ends at its timeout, on
 * the clock and not before. Returns (or throws) its outcome.
 */
export async function endsAt<T>(
  clock: ManualClock,
  ms: number,
  pending: T | PromiseLike<T>,
): Promise<T> {
  const w = watch(pending);
  await advance(clock, ms - 1);
  assert.equal(w.settled, false, `still waiting ${ms - 1} ms into a ${ms} ms timeout`);
  await advance(clock, 1);
  assert.equal(w.settled, true, `ended at its ${ms} ms timeout`);
  return await w.promise;
}

/** A promise and whether it has settled yet, for "not before the timeout" checks. */
export function watch<T>(
  value: T | PromiseLike<T>,
): { promise: Promise<T>; readonly settled: boolean } {
  const promise = Promise.resolve(value);
  let settled = false;
  promise.then(() => settled = true, () => settled = true);
  return {
    promise,
    get settled() {
      return settled;
    },
  };
}
