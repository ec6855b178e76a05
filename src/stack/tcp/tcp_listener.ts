/**
 * A listening TCP endpoint (an lwIP listen pcb) and what happens to a
 * segment that reaches it (RFC 9293 §3.10.7.2, LISTEN): a SYN opens a
 * half-open connection on the SYN queue, or, when that queue is full, is
 * answered with a SYN cookie (RFC 4987 §3.6) whose returning ACK opens the
 * connection directly; established connections wait on the accept queue.
 *
 * @module
 */

import { type IpAddress, ipHeaderLen, TcpFlags, type TcpRepr } from "../../wire/mod.ts";
import { SYN_COOKIE_MSS_TABLE, type SynCookieCodec } from "./isn.ts";
import { seqAdd, seqGt } from "./seq.ts";
import type { TcpConfig } from "./tcp_config.ts";
import type { SessionQuota } from "../session_quota.ts";
import type { EventOwner, TcpConnection } from "./tcp_connection.ts";
import { quotaWindowBytes } from "./tcp_receiver.ts";

/** Event bit of a listener: a connection waits to be accepted. */
export const LISTENER_ACCEPTABLE = 16;

/** What a listener needs from the TCP layer it belongs to. */
export interface TcpListenerHost {
  /** The link's IP MTU. */
  readonly mtu: number;
  /** The layer's SYN cookie codec. */
  readonly synCookies: SynCookieCodec;
  /** The session's quotas (a cookie's window is no more than the memory quota can hold). */
  readonly quota: SessionQuota;
  /** Counters of the layer (SYN cookies sent and accepted). */
  readonly stats: { synCookiesSent: number; synCookiesAccepted: number };
  /** Whether the layer may hold one more connection. */
  hasRoomForConnection(): boolean;
  /** A fresh ISN for the 4-tuple (RFC 6528). */
  nextIss(
    localAddr: IpAddress,
    localPort: number,
    remoteAddr: IpAddress,
    remotePort: number,
    now: number,
  ): number;
  /**
   * Creates a connection of listener `l` in SYN_RECEIVED on the active list
   * (from `local`, the address the SYN was sent to),
   * or returns a drop reason when a limit refuses it. With `takeUnit` (a SYN
   * cookie's ACK) it takes its unit of the session's socket quota at once;
   * otherwise when its handshake completes.
   */
  openPassive(
    l: TcpListener,
    local: IpAddress,
    src: IpAddress,
    srcPort: number,
    now: number,
    iss: number | undefined,
    takeUnit: boolean,
  ): TcpConnection | string;
  /**
   * Answers a segment nothing will take with a RST (RFC 9293 §3.10.7.1):
   * <SEQ=SEG.ACK><CTL=RST> for one that carries an ACK; from `from`.
   */
  reset(src: IpAddress, seg: TcpRepr, now: number, from: IpAddress): void;
  /** Emits a segment to `dst` from `from` (the layer adds IP and the checksum). */
  emitRepr(dst: IpAddress, repr: TcpRepr, now: number, from: IpAddress): void;
}

/**
 * A listening endpoint (an lwIP listen pcb): the SYN queue of half-open
 * connections and the accept queue of established ones, each bounded by the
 * backlog.
 *
 * @example
 * ```ts
 * const listener = stack.tcp.listen(80, 128);
 * // ... a peer connects ...
 * const conn = listener.accept(); // a TcpConnection, or undefined
 * ```
 */
export class TcpListener {
  readonly port: number;
  readonly backlog: number;
  readonly config: TcpConfig;
  /** Half-open connections (SYN_RECEIVED). */
  readonly synQueue: Set<TcpConnection> = new Set<TcpConnection>();
  /** Established connections not yet accepted. */
  readonly acceptQueue: TcpConnection[] = [];
  /** Pending event bits ({@linkcode LISTENER_ACCEPTABLE}, or 8 = closed). */
  events = 0;
  /** The endpoint of the layer above that owns this listener (a server socket). */
  owner: EventOwner | undefined;
  closed = false;
  /** SYN cookies sent and accepted for this listener. */
  cookiesSent = 0;
  cookiesAccepted = 0;
  #host: TcpListenerHost;

  /** Created by `TcpLayer.listen`. */
  constructor(port: number, backlog: number, config: TcpConfig, host: TcpListenerHost) {
    this.port = port;
    this.backlog = backlog;
    this.config = config;
    this.#host = host;
  }

  /** Takes the oldest established connection, or undefined. */
  accept(): TcpConnection | undefined {
    const c = this.acceptQueue.shift();
    if (c) c.listener = undefined;
    return c;
  }

  /**
   * A segment from `src` to `dst`, the stack's address of the peer's family,
   * for the listening port (RFC 9293 §3.10.7.2), with
   * SYN cookies when the SYN queue is full (RFC 4987 §3.6). `issFloor` is
   * set when the SYN takes over a TIME-WAIT connection: the new ISS lies
   * beyond it (RFC 9293 §3.10.7.4, RFC 6191). Returns a drop reason, or
   * undefined when the segment was used.
   */
  input(
    src: IpAddress,
    dst: IpAddress,
    seg: TcpRepr,
    now: number,
    issFloor?: number,
  ): string | undefined {
    const host = this.#host;
    const f = seg.flags;
    if (f & TcpFlags.RST) return "tcp_rst_to_listener";
    if (f & TcpFlags.ACK) {
      if (!(f & TcpFlags.SYN)) return this.#inputCookieAck(src, dst, seg, now);
      host.reset(src, seg, now, dst);
      return "tcp_listen_bad_segment";
    }
    if (!(f & TcpFlags.SYN)) return "tcp_listen_bad_segment";
    if (this.acceptQueue.length >= this.backlog) return "tcp_accept_queue_full";
    if (this.synQueue.size >= this.backlog || !host.hasRoomForConnection()) {
      this.#sendCookie(src, dst, seg, now);
      return undefined;
    }
    let iss: number | undefined;
    if (issFloor !== undefined) {
      const fresh = host.nextIss(dst, this.port, src, seg.srcPort, now);
      iss = seqGt(fresh, issFloor) ? fresh : issFloor;
    }
    const conn = host.openPassive(this, dst, src, seg.srcPort, now, iss, false);
    if (typeof conn === "string") return conn;
    this.synQueue.add(conn);
    conn.acceptSyn(seg, now);
    return undefined;
  }

  /** An ACK without SYN: possibly the third segment of a handshake answered with a SYN cookie. */
  #inputCookieAck(
    src: IpAddress,
    dst: IpAddress,
    seg: TcpRepr,
    now: number,
  ): string | undefined {
    const host = this.#host;
    const cookie = seqAdd(seg.ackNumber, -1);
    const decoded = host.synCookies.decode(
      dst,
      this.port,
      src,
      seg.srcPort,
      seqAdd(seg.seqNumber, -1),
      cookie,
      now,
    );
    if (decoded && this.acceptQueue.length < this.backlog && host.hasRoomForConnection()) {
      const conn = host.openPassive(this, dst, src, seg.srcPort, now, cookie, true);
      // Refused for the socket quota: dropped silently, as a SYN would be; the peer's next
      // segment carries the same cookie and may find a unit free (RFC 4987 §3.6).
      if (typeof conn === "string") return conn;
      this.cookiesAccepted++;
      host.stats.synCookiesAccepted++;
      return conn.acceptCookie(seg, SYN_COOKIE_MSS_TABLE[decoded.mssIndex], now);
    }
    host.reset(src, seg, now, dst);
    return decoded ? "tcp_accept_queue_full" : "tcp_bad_cookie";
  }

  /** Answers a SYN with a SYN-ACK whose ISN encodes the handshake (RFC 4987 §3.6). */
  #sendCookie(src: IpAddress, dst: IpAddress, seg: TcpRepr, now: number): void {
    const host = this.#host;
    const peerMss = seg.mss ?? 536;
    const ourMss = Math.min(host.mtu - 20 - ipHeaderLen(src), 65535);
    let mssIndex = 0;
    for (let i = 0; i < SYN_COOKIE_MSS_TABLE.length; i++) {
      if (SYN_COOKIE_MSS_TABLE[i] <= peerMss && SYN_COOKIE_MSS_TABLE[i] <= ourMss) {
        mssIndex = i;
      }
    }
    const iss = host.synCookies.encode(
      dst,
      this.port,
      src,
      seg.srcPort,
      seg.seqNumber,
      mssIndex,
      now,
    );
    host.emitRepr(
      src,
      {
        srcPort: this.port,
        dstPort: seg.srcPort,
        seqNumber: iss,
        ackNumber: seqAdd(seg.seqNumber, 1),
        flags: TcpFlags.SYN | TcpFlags.ACK,
        windowLen: Math.min(
          65535,
          this.config.recvBufferBytes, // a cookie's SYN-ACK: no window scale, the initial buffer
          quotaWindowBytes(host.quota.memory.available),
        ),
        // Our own MSS (RFC 9293 §3.7.1); the peer's is what the cookie encodes.
        mss: ourMss,
        payload: new Uint8Array(0),
      },
      now,
      dst,
    );
    this.cookiesSent++;
    host.stats.synCookiesSent++;
  }
}
