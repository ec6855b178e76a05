/**
 * Shared helpers of the TCP conformance tests (handshake, RST, RFC 5961,
 * close, TIME_WAIT, exhaustion, options, sequence wrap): scripted openings
 * and builders of the exact segments the stack is expected to emit.
 *
 * @module
 */

import assert from "node:assert/strict";
import { TcpFlags, type TcpRepr } from "../../wire/mod.ts";
import { HARNESS_PEER_IP, type PeerSegment, TcpHarness } from "./tcp_harness.ts";
import type { TcpConfig } from "./tcp_config.ts";
import type { TcpConnection } from "./tcp_connection.ts";
import type { TcpListener } from "./tcp_listener.ts";

export const SYN: number = TcpFlags.SYN;
export const ACK: number = TcpFlags.ACK;
export const FIN: number = TcpFlags.FIN;
export const RST: number = TcpFlags.RST;
export const PSH: number = TcpFlags.PSH;

/** The listener port of passive openings. */
export const LOCAL_PORT = 80;
/** The peer's port of passive openings (the harness default). */
export const PEER_PORT = 40000;
/** Ports of active openings. */
export const ACTIVE_LOCAL_PORT = 50000;
export const ACTIVE_REMOTE_PORT = 8080;

/** The peer's SYN options of a modern (Linux-like) peer. */
export const FULL_SYN_OPTIONS = {
  mss: 1460,
  windowScale: 7,
  sackPermitted: true,
  timestamp: { value: 100, echo: 0 },
} as const;

/** u32 addition. */
export function u32(n: number): number {
  return n >>> 0;
}

/** `n` bytes of a recognisable pattern starting at `start`. */
export function bytes(n: number, start = 0): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (start + i) & 0xff;
  return b;
}

/** An expected emitted segment: every field explicit, options only when given. */
export function seg(
  fields: Omit<Partial<TcpRepr>, "seqNumber" | "flags" | "windowLen"> & {
    seqNumber: number;
    flags: number;
    windowLen: number;
  },
): TcpRepr {
  const r: TcpRepr = {
    srcPort: fields.srcPort ?? LOCAL_PORT,
    dstPort: fields.dstPort ?? PEER_PORT,
    seqNumber: fields.seqNumber >>> 0,
    ackNumber: (fields.ackNumber ?? 0) >>> 0,
    flags: fields.flags,
    windowLen: fields.windowLen,
    payload: fields.payload ?? new Uint8Array(0),
  };
  for (
    const k of [
      "urgentPointer",
      "mss",
      "windowScale",
      "sackPermitted",
      "sackBlocks",
      "timestamp",
    ] as const
  ) {
    if (fields[k] !== undefined) (r as unknown as Record<string, unknown>)[k] = fields[k];
  }
  return r;
}

/** Asserts the stack emitted nothing since the last drain. */
export function assertSilent(h: TcpHarness, what = "the stack emitted nothing"): void {
  assert.deepEqual(h.drain(), [], what);
}

/** Drains and asserts exactly one segment, returning it. */
export function drainOne(h: TcpHarness): TcpRepr {
  const out = h.drain();
  assert.equal(out.length, 1, `expected one segment, got ${out.length}: ${JSON.stringify(out)}`);
  return out[0];
}

/** A connection opened by a test, with both sides' next sequence numbers. */
export interface Opened {
  conn: TcpConnection;
  listener?: TcpListener;
  /** Our ISS. */
  iss: number;
  /** The peer's ISN. */
  irs: number;
  /** Our TSval offset: TSval = now + tsOffset (when timestamps are on). */
  tsOffset: number;
  /** The SYN-ACK (passive) or SYN (active) we sent. */
  handshake: TcpRepr;
}

/** Options of a passive opening. */
export interface PassiveOptions {
  peerIsn?: number;
  /** The peer's SYN options (default: {@linkcode FULL_SYN_OPTIONS}). */
  synOptions?: Partial<PeerSegment>;
  /** The window of the SYN and of the completing ACK (unscaled SYN value, then field value). */
  synWindow?: number;
  ackWindow?: number;
  backlog?: number;
  config?: Partial<TcpConfig>;
  /** Peer TSval of the completing ACK (default: SYN TSval + 1). */
  ackTsVal?: number;
  port?: number;
  peerPort?: number;
}

/** Listens, answers the peer's SYN, completes the handshake and accepts the connection. */
export function passiveOpen(h: TcpHarness, o: PassiveOptions = {}): Opened {
  const port = o.port ?? LOCAL_PORT;
  const peerPort = o.peerPort ?? PEER_PORT;
  const peerIsn = o.peerIsn ?? 1000;
  const listener = h.stack.tcp.listeners.get(port) ??
    h.stack.tcp.listen(port, o.backlog ?? 8, o.config);
  const synOptions = o.synOptions ?? FULL_SYN_OPTIONS;
  h.inject({
    srcPort: peerPort,
    dstPort: port,
    seqNumber: peerIsn,
    flags: SYN,
    windowLen: o.synWindow ?? 65535,
    ...synOptions,
  });
  const synAck = drainOne(h);
  assert.equal(synAck.flags, SYN | ACK, "SYN-ACK expected");
  const iss = synAck.seqNumber;
  const tsOffset = synAck.timestamp ? u32(synAck.timestamp.value - h.now) : 0;
  const ack: PeerSegment = {
    srcPort: peerPort,
    dstPort: port,
    seqNumber: u32(peerIsn + 1),
    ackNumber: u32(iss + 1),
    flags: ACK,
    windowLen: o.ackWindow ?? 65535,
  };
  if (synAck.timestamp && synOptions.timestamp) {
    ack.timestamp = {
      value: o.ackTsVal ?? u32(synOptions.timestamp.value + 1),
      echo: synAck.timestamp.value,
    };
  }
  h.inject(ack);
  assertSilent(h, "the completing ACK needs no answer");
  const conn = listener.accept();
  assert.ok(conn, "an established connection waits in the accept queue");
  assert.equal(conn.state, "ESTABLISHED");
  return { conn, listener, iss, irs: peerIsn, tsOffset, handshake: synAck };
}

/** Options of an active opening. */
export interface ActiveOptions {
  peerIsn?: number;
  /** The peer's SYN-ACK options (default: {@linkcode FULL_SYN_OPTIONS} with an echo). */
  synAckOptions?: Partial<PeerSegment>;
  synAckWindow?: number;
  config?: Partial<TcpConfig>;
  localPort?: number;
  remotePort?: number;
}

/** Connects, answers our SYN with the peer's SYN-ACK, and checks our completing ACK. */
export function activeOpen(h: TcpHarness, o: ActiveOptions = {}): Opened & { ack: TcpRepr } {
  const localPort = o.localPort ?? ACTIVE_LOCAL_PORT;
  const remotePort = o.remotePort ?? ACTIVE_REMOTE_PORT;
  const peerIsn = o.peerIsn ?? 5000;
  const conn = h.stack.tcp.connect(HARNESS_PEER_IP, remotePort, h.now, {
    localPort,
    config: o.config,
  });
  const syn = drainOne(h);
  assert.equal(syn.flags, SYN);
  const iss = syn.seqNumber;
  const tsOffset = syn.timestamp ? u32(syn.timestamp.value - h.now) : 0;
  const synAckOptions: Partial<PeerSegment> = o.synAckOptions ?? {
    ...FULL_SYN_OPTIONS,
    timestamp: { value: 100, echo: syn.timestamp?.value ?? 0 },
  };
  h.inject({
    srcPort: remotePort,
    dstPort: localPort,
    seqNumber: peerIsn,
    ackNumber: u32(iss + 1),
    flags: SYN | ACK,
    windowLen: o.synAckWindow ?? 65535,
    ...synAckOptions,
  });
  const ack = drainOne(h);
  assert.equal(conn.state, "ESTABLISHED");
  return { conn, iss, irs: peerIsn, tsOffset, handshake: syn, ack };
}

/** A harness whose ISN for the passive tuple (80 ← 10.0.2.15:40000) at its start is `target` ± 250. */
export function harnessWithPassiveIsnNear(
  target: number,
  options: { tcp?: Partial<TcpConfig>; seed?: number } = {},
): TcpHarness {
  const seed = options.seed ?? 1;
  // ISN = floor(now * 250) + F(tuple, key) (RFC 6528): learn F at one instant, then pick the instant.
  const probe = new TcpHarness({ seed, tcp: options.tcp, start: 0 });
  probe.stack.tcp.listen(LOCAL_PORT, 8);
  probe.inject({ seqNumber: 1, flags: SYN });
  const f = drainOne(probe).seqNumber;
  const ticks = u32(target - f);
  const start = Math.floor(ticks / 250);
  return new TcpHarness({ seed, tcp: options.tcp, start });
}
