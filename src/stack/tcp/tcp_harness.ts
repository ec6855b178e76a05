/**
 * The TCP test kit (TESTING.md ring 1), one module for every TCP test: a
 * stack on a channel link and a manual clock ({@linkcode TcpHarness}), a
 * scripted peer that keeps its own sequence numbers ({@linkcode Peer}), one
 * way to reach an established connection in either direction
 * ({@linkcode established}), and builders and assertions of the exact
 * segments the stack must emit ({@linkcode seg}, {@linkcode drainOne},
 * {@linkcode assertSilent}). Tests in other folders use the harness part.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  ETHERNET_HEADER_LEN,
  EthernetFrame,
  EthernetRepr,
  EtherType,
  IpProtocol,
  Ipv4Packet,
  Ipv4Repr,
  parseIpv4Address,
  parseMacAddress,
  seededRandom,
  TcpFlags,
  TcpPacket,
  TcpRepr,
  type TcpSackBlock,
} from "../../wire/mod.ts";
import { ChannelLink } from "../channel_link.ts";
import type { SessionQuota } from "../session_quota.ts";
import { Stack } from "../stack.ts";
import { seqAdd, seqGt } from "./seq.ts";
import { DEFAULT_TCP_CONFIG, type TcpConfig } from "./tcp_config.ts";
import type { TcpConnection } from "./tcp_connection.ts";
import type { TcpLayerLimits } from "./tcp_layer.ts";
import type { TcpListener } from "./tcp_listener.ts";

// ---------------------------------------------------------------- constants

/** The stack's address in harness tests. */
export const HARNESS_STACK_IP: number = parseIpv4Address("10.0.2.2");
/** The scripted peer's address. */
export const HARNESS_PEER_IP: number = parseIpv4Address("10.0.2.15");
/** The stack's MAC. */
export const HARNESS_STACK_MAC: Uint8Array = parseMacAddress("02:00:00:00:00:02");
/** The peer's MAC. */
export const HARNESS_PEER_MAC: Uint8Array = parseMacAddress("52:54:00:12:34:56");

const { ACK, FIN, PSH, SYN } = TcpFlags;

/** The stack's port of passive openings (the listener). */
export const LOCAL_PORT = 80;
/** The peer's port of passive openings (the harness default). */
export const PEER_PORT = 40000;

/** The stack's port of active openings in the conformance tests. */
export const ACTIVE_LOCAL_PORT = 50000;
/** The peer's port of active openings in the conformance tests. */
export const ACTIVE_REMOTE_PORT = 8080;

/** What a SYN offers: the options of the handshake (RFC 9293 §3.7.1, RFC 7323, RFC 2018). */
export interface SynOptions {
  mss?: number;
  windowScale?: number;
  sackPermitted?: boolean;
  timestamp?: { value: number; echo: number };
}

/** The SYN options of a modern (Linux-like) peer: every option, TSval 100. */
export const FULL_SYN_OPTIONS: Readonly<SynOptions> = {
  mss: 1460,
  windowScale: 7,
  sackPermitted: true,
  timestamp: { value: 100, echo: 0 },
};

/** What the scripted peer offers unless told otherwise: MSS 1460 and SACK. */
export const DEFAULT_PEER_SYN: Readonly<SynOptions> = { mss: 1460, sackPermitted: true };

/** A peer that offers no option at all (MSS 536, no scaling, SACK or timestamps). */
export const BARE_PEER: Readonly<PeerOptions> = { syn: {} };

/** A Linux-like peer: every option ({@linkcode FULL_SYN_OPTIONS}). */
export const FULL_PEER: Readonly<PeerOptions> = { syn: FULL_SYN_OPTIONS };

/** The answering side of an active opening: a Linux-like peer at 8080 with ISN 5000. */
export const ACTIVE_PEER: Readonly<PeerOptions> = {
  isn: 5000,
  port: ACTIVE_REMOTE_PORT,
  stackPort: ACTIVE_LOCAL_PORT,
  syn: FULL_SYN_OPTIONS,
};

// ---------------------------------------------------------------- the stack under test

/** A segment from the peer; unspecified fields get harness defaults. */
export interface PeerSegment extends Partial<Omit<TcpRepr, "payload">> {
  flags: number;
  payload?: Uint8Array;
}

/**
 * A stack under test with a scripted peer.
 *
 * @example
 * ```ts
 * const h = new TcpHarness();
 * h.stack.tcp.listen(80, 8);
 * h.inject({ srcPort: 40000, dstPort: 80, seqNumber: 1000, flags: TcpFlags.SYN, mss: 1460 });
 * const [synAck] = h.drain();
 * ```
 */
export class TcpHarness {
  readonly stack: Stack;
  readonly link: ChannelLink;
  now: number;

  /**
   * Creates a stack at 10.0.2.2/24 that already knows the peer's MAC. Its
   * connections do not pace (`pacing: false`) and their buffers do not grow
   * (`*BufferMaxBytes` as the buffers) unless `options.tcp` says so.
   */
  constructor(
    options: {
      tcp?: Partial<TcpConfig>;
      tcpLimits?: Partial<TcpLayerLimits>;
      mtu?: number;
      seed?: number;
      start?: number;
      quota?: SessionQuota;
    } = {},
  ) {
    const rnd = seededRandom(options.seed ?? 1);
    this.link = new ChannelLink(1 << 16);
    this.now = options.start ?? 1000;
    this.stack = new Stack({
      mac: HARNESS_STACK_MAC,
      ipv4: { address: HARNESS_STACK_IP, prefixLength: 24 },
      mtu: options.mtu ?? 1500,
      // Pacing off unless a test asks for it: segments leave as soon as the windows allow,
      // so that each test's exact frames do not depend on the pacing rate.
      // Buffers of fixed size unless a test asks: the window scale and windows it offers do
      // not depend on autotuning.
      tcp: {
        pacing: false,
        recvBufferMaxBytes: options.tcp?.recvBufferBytes ?? DEFAULT_TCP_CONFIG.recvBufferBytes,
        sendBufferMaxBytes: options.tcp?.sendBufferBytes ?? DEFAULT_TCP_CONFIG.sendBufferBytes,
        ...options.tcp,
      },
      tcpLimits: options.tcpLimits,
      arp: { reachableMs: 1e12 },
    }, { link: this.link, random: (b) => rnd.fill(b), quota: options.quota });
    this.stack.arp.update(HARNESS_PEER_IP, HARNESS_PEER_MAC, 0);
  }

  /** Builds the frame of a peer segment (checksums correct unless `corrupt`). */
  frame(seg: PeerSegment, options: { corrupt?: boolean; src?: number } = {}): Uint8Array {
    const repr: TcpRepr = {
      srcPort: seg.srcPort ?? PEER_PORT,
      dstPort: seg.dstPort ?? LOCAL_PORT,
      seqNumber: seg.seqNumber ?? 0,
      ackNumber: seg.ackNumber ?? 0,
      flags: seg.flags,
      windowLen: seg.windowLen ?? 65535,
      payload: seg.payload ?? new Uint8Array(0),
    };
    copyOptions(seg, repr);
    const src = options.src ?? HARNESS_PEER_IP;
    const tcpLen = TcpRepr.bufferLen(repr);
    const f = new Uint8Array(ETHERNET_HEADER_LEN + 20 + tcpLen);
    EthernetRepr.emit(
      { dst: HARNESS_STACK_MAC, src: HARNESS_PEER_MAC, etherType: EtherType.IPV4 },
      f,
    );
    Ipv4Repr.emit({
      src,
      dst: HARNESS_STACK_IP,
      protocol: IpProtocol.TCP,
      payloadLen: tcpLen,
      ttl: 64,
      dontFragment: true,
    }, f.subarray(ETHERNET_HEADER_LEN));
    TcpRepr.emit(repr, f.subarray(ETHERNET_HEADER_LEN + 20), src, HARNESS_STACK_IP);
    if (options.corrupt) f[f.length - 1] ^= 0xff;
    return f;
  }

  /** Injects a peer segment at the current instant. */
  /**
   * Injects a peer segment at the current instant; `offload` is what the
   * link says of the frame (`FrameOffload`: a GSO packet, a checksum it
   * vouched for).
   */
  inject(
    seg: PeerSegment,
    options: { corrupt?: boolean; src?: number; offload?: number } = {},
  ): void {
    this.stack.input(this.frame(seg, options), this.now, options.offload ?? 0);
  }

  /** Removes and decodes every TCP segment the stack emitted; throws on anything else. */
  drain(): TcpRepr[] {
    return this.link.drain().map(decodeTcpFrame);
  }

  /** Moves the clock forward by `ms`, firing timers at their exact deadlines. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (let guard = 0; guard < 1_000_000; guard++) {
      const d = this.stack.nextDeadline();
      if (d === undefined || d > end) break;
      this.now = Math.max(this.now, d);
      this.stack.poll(this.now);
    }
    this.now = end;
  }

  /** Moves the clock to the next timer deadline and fires it; returns the new time. */
  fireNextTimer(): number {
    const d = this.stack.nextDeadline();
    if (d === undefined) throw new Error("TcpHarness.fireNextTimer: no timer is pending");
    this.now = Math.max(this.now, d);
    this.stack.poll(this.now);
    return this.now;
  }

  /** How many frames the stack dropped for `reason`. */
  drops(reason: string): number {
    return (this.stack.counters.drops as unknown as Record<string, number>)[reason] ?? 0;
  }
}

const OPTION_FIELDS = [
  "urgentPointer",
  "mss",
  "windowScale",
  "sackPermitted",
  "sackBlocks",
  "timestamp",
] as const;

/** Copies the optional header fields that `from` sets onto `to`. */
function copyOptions(from: Partial<TcpRepr>, to: TcpRepr): void {
  for (const k of OPTION_FIELDS) {
    if (from[k] !== undefined) (to as unknown as Record<string, unknown>)[k] = from[k];
  }
}

/** Decodes an emitted frame as Ethernet/IPv4/TCP, checking every checksum. */
export function decodeTcpFrame(frame: Uint8Array): TcpRepr {
  const eth = EthernetFrame.parse(frame);
  if (!eth.ok || eth.value.etherType !== EtherType.IPV4) throw new Error("not an IPv4 frame");
  const ip = Ipv4Packet.parse(eth.value.payload);
  if (!ip.ok) throw new Error(`bad IPv4: ${ip.reason}`);
  const ipr = Ipv4Repr.parse(ip.value);
  if (!ipr.ok) throw new Error(`bad IPv4: ${ipr.reason}`);
  if (ipr.value.protocol !== IpProtocol.TCP) {
    throw new Error(`not TCP: protocol ${ipr.value.protocol}`);
  }
  const tcp = TcpPacket.parse(ip.value.payload);
  if (!tcp.ok) throw new Error(`bad TCP: ${tcp.reason}`);
  const r = TcpRepr.parse(tcp.value, ipr.value.src, ipr.value.dst);
  if (!r.ok) throw new Error(`bad TCP: ${r.reason}`);
  // Copy the payload out of the frame so tests can keep it.
  r.value.payload = r.value.payload.slice();
  return r.value;
}

// ---------------------------------------------------------------- bytes

/** u32 arithmetic for expected sequence numbers. */
export function u32(n: number): number {
  return n >>> 0;
}

/** `n` bytes of a pattern starting at `seed` (so reordered data can be checked). */
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

// ---------------------------------------------------------------- exact segments

/**
 * An expected segment from the stack: every field explicit, options only
 * when given; ports default to a passive opening's (80 → 40000).
 */
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
  copyOptions(fields, r);
  return r;
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

// ---------------------------------------------------------------- the scripted peer

/** Who the scripted peer is and what it offers. */
export interface PeerOptions {
  /** What its SYN (or SYN-ACK) offers; a timestamp option sets its TSval clock. Default {@linkcode DEFAULT_PEER_SYN}. */
  syn?: SynOptions;
  /** Its receive window in bytes. Default 65535 << its window scale (the largest field). */
  window?: number;
  /** Its ISN. Default 1000. */
  isn?: number;
  /** Its port. Default 40000. */
  port?: number;
  /** The stack's port. Default 80. */
  stackPort?: number;
}

/** A scripted peer with one connection to the stack. */
export class Peer {
  readonly h: TcpHarness;
  conn!: TcpConnection;
  /** The options it offered in its SYN. */
  readonly syn: SynOptions;
  /** The peer's SND.NXT. */
  seq: number;
  /** The peer's RCV.NXT: the next stack byte it expects (what it ACKs). */
  ack = 0;
  /** The peer's receive window in bytes (sent scaled). */
  window: number;
  readonly port: number;
  readonly stackPort: number;
  /** Timestamps in use: offered, then agreed by the stack's SYN or SYN-ACK. */
  ts: boolean;
  /** SACK in use: offered, then agreed. */
  sack: boolean;
  readonly wscale: number;
  /** The stack's window scale as negotiated (0 when not offered by both). */
  stackWscale = 0;
  /** The peer's next TSval. */
  tsVal: number;
  /** The last TSval the stack sent (what the peer echoes). */
  tsRecent = 0;
  /** Every segment the stack sent, through {@linkcode Peer.drain}. */
  readonly log: TcpRepr[] = [];

  /** A peer of `h` described by `o`. */
  constructor(h: TcpHarness, o: PeerOptions = {}) {
    this.h = h;
    this.syn = o.syn ?? DEFAULT_PEER_SYN;
    this.seq = o.isn ?? 1000;
    this.port = o.port ?? PEER_PORT;
    this.stackPort = o.stackPort ?? LOCAL_PORT;
    this.ts = this.syn.timestamp !== undefined;
    this.sack = this.syn.sackPermitted === true;
    this.wscale = this.syn.windowScale ?? 0;
    this.window = o.window ?? (65535 << this.wscale);
    this.tsVal = this.syn.timestamp?.value ?? 0;
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
      flags: ACK,
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
    this.inject({ flags: ACK | PSH, payload: data, ...s });
    const end = seqAdd(s.seqNumber ?? this.seq, data.length + (((s.flags ?? 0) & FIN) ? 1 : 0));
    if (seqGt(end, this.seq)) this.seq = end;
  }

  /** Sends data at an explicit sequence number without moving SND.NXT. */
  sendAt(seq: number, payload: Uint8Array | number, s: Partial<PeerSegment> = {}): void {
    const data = typeof payload === "number" ? bytes(payload, seq) : payload;
    this.inject({ flags: ACK | PSH, seqNumber: seq >>> 0, payload: data, ...s });
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
      const end = seqAdd(seg.seqNumber, seg.payload.length + ((seg.flags & FIN) ? 1 : 0));
      if (seqGt(end, hi) && (seg.payload.length > 0 || seg.flags & FIN)) hi = end;
    }
    if (hi !== this.ack) this.ackTo(hi, s);
    return segs;
  }

  /** The stack's sequence-space view. */
  get stackSeq(): ReturnType<TcpConnection["debugSeq"]> {
    return this.conn.debugSeq();
  }
}

// ---------------------------------------------------------------- established()

/** Options of {@linkcode established}. */
export interface EstablishedOptions {
  /** Config of a new harness's stack (ignored with `harness`). */
  tcp?: Partial<TcpConfig>;
  tcpLimits?: Partial<TcpLayerLimits>;
  mtu?: number;
  start?: number;
  seed?: number;
  quota?: SessionQuota;
  /** An existing harness (several connections). */
  harness?: TcpHarness;
  /** The peer. */
  peer?: PeerOptions;
  /** Open from the stack (connect) instead of from the peer (listen, SYN, accept). */
  active?: boolean;
  /** Listener backlog. Default 8. */
  backlog?: number;
  /** The listener's own config (passive), or the connection's (active). */
  config?: Partial<TcpConfig>;
  /** The window field of the peer's SYN or SYN-ACK. Default min(65535, peer window). */
  synWindow?: number;
  /** The TSval of the peer's completing ACK (passive). Default: its SYN's + 1. */
  ackTsVal?: number;
  /** Milliseconds between the stack's SYN (or SYN-ACK) and the peer's answer. Default 0. */
  handshakeRttMs?: number;
}

/** A connection {@linkcode established} between the stack and a scripted peer. */
export interface Established {
  h: TcpHarness;
  peer: Peer;
  conn: TcpConnection;
  /** The listener (passive openings). */
  listener: TcpListener | undefined;
  /** Our ISS. */
  iss: number;
  /** Our SND.NXT after the handshake: ISS + 1. */
  s: number;
  /** The peer's ISN. */
  irs: number;
  /** Our TSval offset: TSval = now + tsOffset (when timestamps are on). */
  tsOffset: number;
  /** The SYN-ACK (passive) or SYN (active) we sent. */
  handshake: TcpRepr;
  /** Our ACK of the peer's SYN-ACK (active openings). */
  ack: TcpRepr | undefined;
}

/**
 * Opens a connection between a fresh (or given) harness and a scripted peer,
 * asserting every handshake segment. Passive by default: the stack listens,
 * the peer sends its SYN, answers our SYN-ACK, and the connection is
 * accepted. With `active`, the stack connects and the peer answers with a
 * SYN-ACK. The peer's TSval clock ticks once after its handshake segment.
 *
 * @example
 * ```ts
 * const { h, peer, conn } = established({ peer: { syn: FULL_SYN_OPTIONS } });
 * peer.send(100);
 * assert.equal(conn.readableBytes, 100);
 * ```
 */
export function established(o: EstablishedOptions = {}): Established {
  const h = o.harness ??
    new TcpHarness({
      tcp: o.tcp,
      tcpLimits: o.tcpLimits,
      mtu: o.mtu,
      start: o.start,
      seed: o.seed,
      quota: o.quota,
    });
  const peer = new Peer(h, o.peer);
  const irs = peer.seq;
  const synWindow = o.synWindow ?? Math.min(65535, peer.window);
  const options = (echo: number): SynOptions => {
    const offer: SynOptions = { ...peer.syn };
    if (offer.timestamp) offer.timestamp = { value: peer.tsVal, echo };
    return offer;
  };
  const ours = (s: TcpRepr) => {
    if (s.windowScale !== undefined && peer.syn.windowScale !== undefined) {
      peer.stackWscale = s.windowScale;
    }
    peer.ts &&= s.timestamp !== undefined;
    peer.sack &&= s.sackPermitted === true;
    return s.timestamp ? u32(s.timestamp.value - h.now) : 0;
  };

  if (!o.active) {
    const listener = h.stack.tcp.listeners.get(peer.stackPort) ??
      h.stack.tcp.listen(peer.stackPort, o.backlog ?? 8, o.config);
    peer.inject({ seqNumber: irs, ackNumber: 0, flags: SYN, windowLen: synWindow, ...options(0) });
    const synAck = peer.drain();
    assert.equal(synAck.length, 1, `one SYN-ACK expected, got ${synAck.map(flagsOf)}`);
    assert.equal(synAck[0].flags, SYN | ACK, "SYN-ACK expected");
    const tsOffset = ours(synAck[0]);
    if (o.handshakeRttMs) h.advance(o.handshakeRttMs);
    peer.seq = seqAdd(irs, 1);
    peer.ack = seqAdd(synAck[0].seqNumber, 1);
    peer.tsVal = o.ackTsVal ?? peer.tsVal + 1;
    peer.inject();
    assertSilent(h, "the completing ACK needs no answer");
    const conn = listener.accept();
    assert.ok(conn, "an established connection waits in the accept queue");
    assert.equal(conn.state, "ESTABLISHED");
    peer.conn = conn;
    const iss = synAck[0].seqNumber;
    return {
      h,
      peer,
      conn,
      listener,
      iss,
      s: u32(iss + 1),
      irs,
      tsOffset,
      handshake: synAck[0],
      ack: undefined,
    };
  }

  const conn = h.stack.tcp.connect(HARNESS_PEER_IP, peer.port, h.now, {
    localPort: peer.stackPort,
    config: o.config,
  });
  peer.conn = conn;
  const syn = peer.drain();
  assert.equal(syn.length, 1, `one SYN expected, got ${syn.map(flagsOf)}`);
  assert.equal(syn[0].flags, SYN, "SYN expected");
  const tsOffset = ours(syn[0]);
  if (o.handshakeRttMs) h.advance(o.handshakeRttMs);
  const iss = syn[0].seqNumber;
  peer.ack = seqAdd(iss, 1);
  peer.inject({
    seqNumber: irs,
    flags: SYN | ACK,
    windowLen: synWindow,
    ...options(syn[0].timestamp?.value ?? 0),
  });
  peer.seq = seqAdd(irs, 1);
  peer.tsVal++;
  const ack = peer.drain();
  assert.equal(ack.length, 1, `the handshake's ACK expected, got ${ack.map(flagsOf)}`);
  assert.equal(ack[0].flags, ACK);
  assert.equal(conn.state, "ESTABLISHED");
  return {
    h,
    peer,
    conn,
    listener: undefined,
    iss,
    s: u32(iss + 1),
    irs,
    tsOffset,
    handshake: syn[0],
    ack: ack[0],
  };
}

/**
 * Closes an established connection actively into TIME-WAIT: our FIN, then
 * the peer's FIN that acknowledges it (RFC 9293 §3.6).
 */
export function intoTimeWait(o: Established): Established {
  o.conn.shutdownWrite(o.h.now);
  const fin = o.peer.drain();
  assert.equal(fin.length, 1, "our FIN");
  o.peer.inject({ flags: FIN | ACK, ackNumber: seqAdd(o.s, 1) });
  o.peer.seq = seqAdd(o.peer.seq, 1);
  o.peer.ack = seqAdd(o.s, 1);
  o.peer.drain();
  assert.equal(o.conn.state, "TIME_WAIT");
  return o;
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
  const start = Math.floor(u32(target - f) / 250);
  return new TcpHarness({ seed, tcp: options.tcp, start });
}
