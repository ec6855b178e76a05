/**
 * Test helpers for the deterministic TCP tests: a scripted peer that keeps
 * its own sequence numbers, timestamps and window, and opens a connection to
 * (or from) a {@linkcode TcpHarness} stack.
 *
 * @module
 */

import { TcpFlags, type TcpRepr, type TcpSackBlock } from "../../wire/mod.ts";
import type { TcpConfig } from "./tcp_config.ts";
import type { TcpConnection } from "./tcp_connection.ts";
import { HARNESS_PEER_IP, type PeerSegment, TcpHarness } from "./tcp_harness.ts";
import type { TcpLayerLimits } from "./tcp_layer.ts";

/** What the scripted peer offers in its SYN. */
export interface PeerOptions {
  /** MSS option; null omits it. Default 1460. */
  mss?: number | null;
  /** Window scale option; undefined omits it. */
  windowScale?: number;
  /** SACK-permitted. Default true. */
  sack?: boolean;
  /** Timestamps. Default false. */
  timestamps?: boolean;
  /** The peer's receive window in bytes. Default 65535. */
  window?: number;
  /** The peer's ISN. Default 1_000_000. */
  isn?: number;
  /** The peer's port. Default 40000. */
  port?: number;
  /** The stack's port. Default 80. */
  stackPort?: number;
  /** The peer's timestamp clock start. Default 5000. */
  tsStart?: number;
}

/** Options of {@linkcode open}. */
export interface OpenOptions {
  tcp?: Partial<TcpConfig>;
  tcpLimits?: Partial<TcpLayerLimits>;
  mtu?: number;
  start?: number;
  peer?: PeerOptions;
  /** Open from the stack (connect) instead of from the peer (listen/accept). */
  active?: boolean;
  /** An existing harness to reuse (several connections). */
  harness?: TcpHarness;
  /** Listener backlog. Default 8. */
  backlog?: number;
  /** Milliseconds between the stack's SYN (or SYN-ACK) and the peer's answer. Default 0. */
  handshakeRttMs?: number;
}

/** A scripted peer with one connection to the stack. */
export class Peer {
  readonly h: TcpHarness;
  conn!: TcpConnection;
  /** The peer's SND.NXT. */
  seq: number;
  /** The peer's RCV.NXT: the next stack byte it expects (what it ACKs). */
  ack = 0;
  /** The peer's receive window in bytes (sent scaled). */
  window: number;
  readonly port: number;
  readonly stackPort: number;
  readonly ts: boolean;
  readonly sack: boolean;
  readonly wscale: number;
  /** The stack's window scale as negotiated (0 when not offered by both). */
  stackWscale = 0;
  /** The peer's next TSval. */
  tsVal: number;
  /** The last TSval the stack sent (what the peer echoes). */
  tsRecent = 0;
  /** Every segment the stack sent, through {@linkcode Peer.drain}. */
  readonly log: TcpRepr[] = [];

  constructor(h: TcpHarness, o: PeerOptions = {}) {
    this.h = h;
    this.seq = o.isn ?? 1_000_000;
    this.window = o.window ?? 65535;
    this.port = o.port ?? 40000;
    this.stackPort = o.stackPort ?? 80;
    this.ts = o.timestamps ?? false;
    this.sack = o.sack ?? true;
    this.wscale = o.windowScale ?? 0;
    this.tsVal = o.tsStart ?? 5000;
  }

  /** The window field the peer puts in a (non-SYN) segment. */
  get windowField(): number {
    return Math.min(65535, this.window >>> this.wscale);
  }

  /** A segment with the peer's ports, sequence numbers, window and timestamp filled in. */
  seg(s: Partial<PeerSegment> = {}): PeerSegment {
    const out: PeerSegment = {
      srcPort: this.port,
      dstPort: this.stackPort,
      seqNumber: this.seq,
      ackNumber: this.ack,
      flags: TcpFlags.ACK,
      windowLen: this.windowField,
      ...s,
    };
    if (this.ts && out.timestamp === undefined) {
      out.timestamp = { value: this.tsVal, echo: this.tsRecent };
    }
    return out;
  }

  /** Injects a segment built by {@linkcode Peer.seg}. */
  inject(s: Partial<PeerSegment> = {}): void {
    this.h.inject(this.seg(s));
  }

  /** Sends `payload` at the peer's SND.NXT (or `seq`) and advances SND.NXT past it. */
  send(payload: Uint8Array | number, s: Partial<PeerSegment> = {}): void {
    const data = typeof payload === "number" ? bytes(payload, this.seq) : payload;
    this.inject({ flags: TcpFlags.ACK | TcpFlags.PSH, payload: data, ...s });
    const end = ((s.seqNumber ?? this.seq) + data.length +
      (((s.flags ?? 0) & TcpFlags.FIN) ? 1 : 0)) >>> 0;
    if (((end - this.seq) | 0) > 0) this.seq = end;
  }

  /** Sends data at an explicit sequence number without moving SND.NXT. */
  sendAt(seq: number, payload: Uint8Array | number, s: Partial<PeerSegment> = {}): void {
    const data = typeof payload === "number" ? bytes(payload, seq) : payload;
    this.inject({ flags: TcpFlags.ACK | TcpFlags.PSH, seqNumber: seq >>> 0, payload: data, ...s });
  }

  /** Acknowledges up to `ack` (absolute), with optional SACK blocks and window. */
  ackTo(ack: number, s: Partial<PeerSegment> & { sackBlocks?: TcpSackBlock[] } = {}): void {
    this.ack = ack >>> 0;
    this.inject({ ackNumber: this.ack, ...s });
  }

  /** A duplicate ACK (same ack as last time) with optional SACK blocks. */
  dupAck(sackBlocks?: TcpSackBlock[]): void {
    this.inject(sackBlocks ? { sackBlocks } : {});
  }

  /** Drains the stack's segments, recording the last TSval for echoing. */
  drain(): TcpRepr[] {
    const segs = this.h.drain();
    for (const s of segs) {
      if (s.timestamp) this.tsRecent = s.timestamp.value;
      this.log.push(s);
    }
    return segs;
  }

  /** Drains and acknowledges everything the stack sent (cumulatively, one ACK). */
  drainAndAck(s: Partial<PeerSegment> = {}): TcpRepr[] {
    const segs = this.drain();
    let hi = this.ack;
    for (const seg of segs) {
      const end = (seg.seqNumber + seg.payload.length + ((seg.flags & TcpFlags.FIN) ? 1 : 0)) >>>
        0;
      if (((end - hi) | 0) > 0 && (seg.payload.length > 0 || seg.flags & TcpFlags.FIN)) hi = end;
    }
    if (hi !== this.ack) this.ackTo(hi, s);
    return segs;
  }

  /** The stack's sequence-space view. */
  get stackSeq(): ReturnType<TcpConnection["debugSeq"]> {
    return this.conn.debugSeq();
  }
}

/** `n` bytes of a pattern derived from `seed` (so reordered data can be checked). */
export function bytes(n: number, seed = 0): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (seed + i) & 0xff;
  return b;
}

/** Concatenates chunks. */
export function concat(chunks: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** Reads everything the connection holds. */
export function readAll(conn: TcpConnection, now: number): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (;;) {
    const c = conn.read(1 << 30, now);
    if (c === undefined) break;
    chunks.push(c);
  }
  return concat(chunks);
}

/** Flag names of a segment, e.g. "SYN|ACK", for readable assertions. */
export function flagsOf(s: { flags: number }): string {
  const names: string[] = [];
  for (const [k, v] of Object.entries(TcpFlags)) if (s.flags & v) names.push(k);
  return names.join("|");
}

/** Payload-carrying segments only. */
export function dataSegs(segs: TcpRepr[]): TcpRepr[] {
  return segs.filter((s) => s.payload.length > 0);
}

/**
 * Opens a connection between a fresh (or given) harness and a scripted peer
 * and drains the handshake. Passive by default: the stack listens, the peer
 * connects, the connection is accepted. With `active`, the stack connects.
 */
export function open(
  options: OpenOptions = {},
): { h: TcpHarness; peer: Peer; conn: TcpConnection } {
  const h = options.harness ??
    new TcpHarness({
      tcp: options.tcp,
      tcpLimits: options.tcpLimits,
      mtu: options.mtu,
      start: options.start,
    });
  const po = options.peer ?? {};
  const peer = new Peer(h, po);
  const mss = po.mss === undefined ? 1460 : po.mss;
  const synOpts: Partial<TcpRepr> = {};
  if (mss !== null) synOpts.mss = mss;
  if (po.windowScale !== undefined) synOpts.windowScale = po.windowScale;
  if (peer.sack) synOpts.sackPermitted = true;
  if (peer.ts) synOpts.timestamp = { value: peer.tsVal, echo: 0 };
  const synWindow = Math.min(65535, peer.window);

  if (!options.active) {
    const l = h.stack.tcp.listeners.get(peer.stackPort) ??
      h.stack.tcp.listen(peer.stackPort, options.backlog ?? 8);
    h.inject({
      srcPort: peer.port,
      dstPort: peer.stackPort,
      seqNumber: peer.seq,
      flags: TcpFlags.SYN,
      windowLen: synWindow,
      ...synOpts,
    });
    const synAck = peer.drain();
    if (synAck.length !== 1 || synAck[0].flags !== (TcpFlags.SYN | TcpFlags.ACK)) {
      throw new Error(`open: expected one SYN-ACK, got ${synAck.map(flagsOf).join(", ")}`);
    }
    peer.seq = (peer.seq + 1) >>> 0;
    peer.ack = (synAck[0].seqNumber + 1) >>> 0;
    if (synAck[0].windowScale !== undefined && po.windowScale !== undefined) {
      peer.stackWscale = synAck[0].windowScale;
    }
    if (options.handshakeRttMs) h.advance(options.handshakeRttMs);
    peer.inject({});
    const conn = l.accept();
    if (!conn) throw new Error("open: the connection was not accepted");
    if (conn.state !== "ESTABLISHED") throw new Error(`open: state ${conn.state}`);
    peer.conn = conn;
    const extra = peer.drain();
    if (extra.length !== 0) throw new Error(`open: unexpected ${extra.map(flagsOf).join(", ")}`);
    return { h, peer, conn };
  }

  const conn = h.stack.tcp.connect(HARNESS_PEER_IP, peer.port, h.now, {
    localPort: peer.stackPort,
    config: options.tcp,
  });
  peer.conn = conn;
  const syn = peer.drain();
  if (syn.length !== 1 || syn[0].flags !== TcpFlags.SYN) {
    throw new Error(`open: expected one SYN, got ${syn.map(flagsOf).join(", ")}`);
  }
  peer.ack = (syn[0].seqNumber + 1) >>> 0;
  if (options.handshakeRttMs) h.advance(options.handshakeRttMs);
  if (synOpts.timestamp) synOpts.timestamp = { value: peer.tsVal, echo: peer.tsRecent };
  if (syn[0].windowScale !== undefined && po.windowScale !== undefined) {
    peer.stackWscale = syn[0].windowScale;
  }
  h.inject({
    srcPort: peer.port,
    dstPort: peer.stackPort,
    seqNumber: peer.seq,
    ackNumber: peer.ack,
    flags: TcpFlags.SYN | TcpFlags.ACK,
    windowLen: synWindow,
    ...synOpts,
  });
  peer.seq = (peer.seq + 1) >>> 0;
  const ack = peer.drain();
  if (ack.length !== 1 || ack[0].flags !== TcpFlags.ACK) {
    throw new Error(`open: expected the handshake ACK, got ${ack.map(flagsOf).join(", ")}`);
  }
  if (conn.state !== "ESTABLISHED") throw new Error(`open: state ${conn.state}`);
  return { h, peer, conn };
}
