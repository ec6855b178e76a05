/**
 * The transmission control block of one connection (RFC 9293 §3.3.1): the
 * state, the send and receive sequence variables and what the handshake
 * negotiated, shared by the parts of a connection (handshake, receiver,
 * sender, loss recovery), plus the few services they all use (emit a
 * segment, raise an event, change state). Each part keeps its own state
 * beside it; see `TcpConnection` for how they fit together.
 *
 * @module
 */

import type { TcpRepr } from "../../wire/mod.ts";
import type { TcpConfig } from "./tcp_config.ts";
import type { TcpConnection, TcpHost } from "./tcp_connection.ts";
import { seqAdd } from "./seq.ts";
import { TcpTimer, type TcpTimers } from "./tcp_timers.ts";

/** Connection states (RFC 9293 §3.3.2). LISTEN belongs to listeners. */
export type TcpState =
  | "SYN_SENT"
  | "SYN_RECEIVED"
  | "ESTABLISHED"
  | "FIN_WAIT_1"
  | "FIN_WAIT_2"
  | "CLOSE_WAIT"
  | "CLOSING"
  | "LAST_ACK"
  | "TIME_WAIT"
  | "CLOSED";

/** Event bits a connection raises for its owner; delivered after the core lock is released. */
export const TcpEvent = {
  /** Data (or end of stream) can be read. */
  READABLE: 1,
  /** Send buffer space became free. */
  WRITABLE: 2,
  /** The handshake completed. */
  CONNECTED: 4,
  /** The connection reached CLOSED (see `error`). */
  CLOSED: 8,
} as const;

/** RFC 9293 §3.7.1: the send MSS when the peer announces none. */
export const DEFAULT_SEND_MSS = 536;

/** Counters of one connection, reported by `TcpConnection.info()`. */
export interface TcpConnectionStats {
  retransmits: number;
  timeouts: number;
  fastRetransmits: number;
  segmentsIn: number;
  segmentsOut: number;
  bytesAcked: number;
  bytesReceived: number;
  challengeAcks: number;
  /** D-SACKs received (RFC 2883). */
  dsacks: number;
  /** Retransmissions a D-SACK showed to be unnecessary. */
  spuriousRetransmits: number;
}

/**
 * The TCB: sequence variables and negotiated options as RFC 9293 §3.3.1
 * names them, plus the connection's state and timers. Plain fields: the
 * connection's parts read and write them directly, each only the ones its
 * concern owns (the send variables are the sender's, the receive variables
 * the receiver's, the options the handshake's).
 *
 * @example
 * ```ts
 * const tcb = new TcpControlBlock(conn, host, config, new TcpTimers(), "SYN_SENT", 1500, 0);
 * tcb.synchronized(); // false
 * ```
 */
export class TcpControlBlock {
  /** The connection this TCB belongs to (what the host's callbacks name). */
  readonly conn: TcpConnection;
  /** The TCP layer that owns the connection. */
  readonly host: TcpHost;
  readonly config: TcpConfig;
  readonly timers: TcpTimers;
  state: TcpState;

  // Send sequence space.
  /** Initial send sequence number. */
  iss = 0;
  /** Oldest unacknowledged sequence number. */
  sndUna = 0;
  /** Next sequence number to send (goes back to SND.UNA after an RTO). */
  sndNxt = 0;
  /** Highest sequence number sent so far (RFC 6675's HighData + 1). */
  sndMax = 0;
  /** The peer's window, scaled. */
  sndWnd = 0;
  /** The largest window the peer ever offered (RFC 5961 §5.2 MAX.SND.WND). */
  maxSndWnd = 0;
  /** Sequence number of the segment of the last window update. */
  sndWl1 = 0;
  /** Acknowledgment number of the segment of the last window update. */
  sndWl2 = 0;
  /** The peer's window scale (RFC 7323 §2.2). */
  sndWscale = 0;

  // Receive sequence space.
  /** Initial receive sequence number. */
  irs = 0;
  /** Next sequence number expected. */
  rcvNxt = 0;
  /** Right edge of the window we advertised: RCV.NXT + RCV.WND when we sent it. */
  rcvAdvRight = 0;
  /** Our window scale (RFC 7323 §2.2). */
  rcvWscale = 0;
  /** RCV.NXT of the last ACK we sent (RFC 7323 §4.3 Last.ACK.sent). */
  lastAckSent = 0;

  // What the handshake negotiated.
  /** Largest segment text we send. */
  sendMss = DEFAULT_SEND_MSS;
  /** The MSS we announce: the link MTU minus the IPv4 and TCP headers. */
  readonly mssOffer: number;
  /** Both sides offered window scaling. */
  wsOk = false;
  /** Both sides offered timestamps (RFC 7323 §3.2). */
  tsEnabled = false;
  /** TS.Recent (RFC 7323 §4.3). */
  tsRecent = 0;
  /** Random offset of our TSval clock (RFC 7323 §5.4). */
  readonly tsOffset: number;
  /** Both sides offered SACK (RFC 2018 §2). */
  sackEnabled = false;

  readonly stats: TcpConnectionStats = {
    retransmits: 0,
    timeouts: 0,
    fastRetransmits: 0,
    segmentsIn: 0,
    segmentsOut: 0,
    bytesAcked: 0,
    bytesReceived: 0,
    challengeAcks: 0,
    dsacks: 0,
    spuriousRetransmits: 0,
  };

  /** Whether the connection runs over IPv6 (no link offload then: the tunnel's is IPv4-only). */
  readonly ipv6: boolean;
  /** The IP header in front of each segment: 20 bytes (IPv4), 40 (IPv6, RFC 8200 §8.3). */
  readonly netHeaderLen: number;

  /** Creates the TCB of `conn` in `state`. */
  constructor(
    conn: TcpConnection,
    host: TcpHost,
    config: TcpConfig,
    timers: TcpTimers,
    state: TcpState,
    mtu: number,
    tsOffset: number,
  ) {
    this.conn = conn;
    this.host = host;
    this.config = config;
    this.timers = timers;
    this.state = state;
    this.ipv6 = typeof conn.remoteAddr === "string";
    this.netHeaderLen = this.ipv6 ? 40 : 20;
    this.mssOffer = Math.min(mtu - 20 - this.netHeaderLen, 65535);
    this.tsOffset = tsOffset;
  }

  /** Whether the handshake is over and the connection not closed (RFC 9293 §3.3.2). */
  synchronized(): boolean {
    const s = this.state;
    return s !== "SYN_SENT" && s !== "SYN_RECEIVED" && s !== "CLOSED";
  }

  /** Our TSval at `now`: one tick per millisecond from a random offset (RFC 7323 §5.4). */
  tsNow(now: number): number {
    return seqAdd(Math.floor(now), this.tsOffset);
  }

  /** Moves to `state`; keepalive idle time starts when the connection is established (RFC 9293 §3.8.4). */
  setState(state: TcpState, now: number): void {
    this.state = state;
    if (state === "ESTABLISHED" && this.config.keepaliveIdleMs > 0) {
      this.timers.start(TcpTimer.KEEPALIVE, now + this.config.keepaliveIdleMs);
    }
  }

  /** Hands a segment to the layer (which adds IP and the checksum); sending restarts keepalive. */
  emit(repr: TcpRepr, now: number): void {
    this.stats.segmentsOut++;
    this.host.emit(this.conn, repr, now);
    this.sent(now);
  }

  /** A segment was sent (or dropped on the way down): keepalive's idle time starts again. */
  sent(now: number): void {
    if (this.config.keepaliveIdleMs > 0 && this.synchronized()) {
      this.timers.start(TcpTimer.KEEPALIVE, now + this.config.keepaliveIdleMs);
    }
  }

  /** Raises event bits for the connection's owner (delivered after the core lock is released). */
  signal(bits: number): void {
    const conn = this.conn;
    if (conn.events === 0) this.host.markDirty(conn);
    conn.events |= bits;
  }
}
