/**
 * One TCP connection: the public face of a TCB and its state machine
 * (RFC 9293 §3.10). A segment arrives in {@linkcode TcpConnection.input},
 * which walks the steps of RFC 9293 §3.10.7 and hands each to the part of
 * the connection whose concern it is:
 *
 * - tcp_handshake.ts: SYN, SYN-ACK and option negotiation;
 * - tcp_receiver.ts: acceptability, segment text, FIN, ACK policy, window;
 * - tcp_sender.ts: the ACK field, the peer's window, output (with
 *   tcp_recovery.ts for loss recovery);
 * - tcp_timers.ts: every deadline, fired by {@linkcode TcpConnection.poll};
 * - tcp_control_block.ts: the sequence variables they share.
 *
 * Synchronous: the caller holds the core lock and passes the time in.
 *
 * @module
 */

import type { NetErrorCode } from "../../errors/net_error.ts";
import { type IpAddress, TcpFlags, type TcpRepr } from "../../wire/mod.ts";
import type { SessionQuota } from "../session_quota.ts";
import type { TxPacket } from "../tx_packet.ts";
import type { CongestionControlName } from "./congestion.ts";
import { seqGt, seqLe, seqLt, seqSub } from "./seq.ts";
import type { TcpConfig } from "./tcp_config.ts";
import {
  type TcpConnectionStats,
  TcpControlBlock,
  TcpEvent,
  type TcpState,
} from "./tcp_control_block.ts";
import { TcpHandshake } from "./tcp_handshake.ts";
import type { TcpListener } from "./tcp_listener.ts";
import { TcpReceived, TcpReceiver } from "./tcp_receiver.ts";
import { TcpSender } from "./tcp_sender.ts";
import { TcpTimer, type TcpTimerQueue, TcpTimers } from "./tcp_timers.ts";

export { type TcpConnectionStats, TcpEvent, type TcpState } from "./tcp_control_block.ts";

/** An endpoint that receives the events of a core object it owns (a socket). */
export interface EventOwner {
  /** Called outside the core lock with the event bits raised since the last call. */
  onEvents(bits: number): void;
}

/** What a connection needs from the TCP layer that owns it. */
export interface TcpHost {
  /** The stack's IPv4 address (the local address of connections that name none). */
  readonly localAddr: IpAddress;
  /** Emits a segment of `conn` (the layer adds IP and the checksum). */
  emit(conn: TcpConnection, repr: TcpRepr, now: number): void;
  /**
   * Begins a segment of `conn` of `len` bytes (TCP header included) to be
   * written in place at `frame[l4..]`; undefined when it cannot be sent (the
   * drop is counted). The hot path: no segment object is built.
   */
  beginSegment(conn: TcpConnection, len: number, gso?: boolean): TxPacket | undefined;
  /** What the link takes (`LinkOffload` bits: TSO, partial checksums). */
  readonly linkOffload: number;
  /** Sends the segment begun with `beginSegment`. */
  commitSegment(now: number): void;
  /** Records that `conn` has events for its owner. */
  markDirty(conn: TcpConnection): void;
  /** `conn` entered TIME_WAIT: move it to the time-wait list. */
  enteredTimeWait(conn: TcpConnection): void;
  /** `conn` reached CLOSED: remove it from every list. */
  closed(conn: TcpConnection): void;
  /** RFC 5961 §7: whether one more challenge ACK may be sent now (a global rate limit). */
  allowChallengeAck(now: number): boolean;
  /** Whether one more ACK may answer an unacceptable segment now (a global rate limit). */
  allowUnacceptableAck(now: number): boolean;
  /** The session's quotas: memory for what connections hold, socket units for accept queues. */
  readonly quota: SessionQuota;
  /** The connection became established (a passive one joins its listener's accept queue). */
  established(conn: TcpConnection): void;
  /** The layer's queue of every connection's timers. */
  readonly timerQueue: TcpTimerQueue;
}

/** Counters and estimates for GET /sockets/:id and `ss -ti`-style views. */
export interface TcpInfo extends TcpConnectionStats {
  state: TcpState;
  sendMss: number;
  rttMs: number | null;
  rttVarMs: number | null;
  rtoMs: number;
  cwnd: number;
  ssthresh: number | null;
  congestionControl: CongestionControlName;
  sendWindow: number;
  recvWindow: number;
  sendWindowScale: number;
  recvWindowScale: number;
  timestamps: boolean;
  sack: boolean;
  bytesInFlight: number;
  sendQueued: number;
  recvQueued: number;
  outOfOrderBytes: number;
  /** The duplicate-ACK threshold now in force (raised by reordering). */
  reordering: number;
}

/**
 * One TCP connection (a TCB). Created by the TCP layer for an active open
 * ({@linkcode TcpConnection.connect}) or a SYN that reached a listener.
 *
 * @example
 * ```ts
 * const conn = stack.tcp.connect(parseIpv4Address("10.0.2.15"), 80, now);
 * // ... frames flow; once conn.state is "ESTABLISHED":
 * conn.send(new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"), now);
 * const reply = conn.read(65536, now);
 * ```
 */
export class TcpConnection {
  /**
   * The local address: the stack's (IPv4, or one of its IPv6 addresses), or
   * (egress) the outside address the peer dialled. Of the peer's family.
   */
  readonly localAddr: IpAddress;
  readonly localPort: number;
  readonly remoteAddr: IpAddress;
  readonly remotePort: number;
  readonly config: TcpConfig;
  /** The demux key of the 4-tuple, set by the layer. */
  readonly key: string;
  /** Why the connection closed, when it did not close cleanly. */
  error: NetErrorCode | undefined;
  /** Pending event bits (see {@linkcode TcpEvent}); the layer clears them after delivery. */
  events = 0;
  /** The endpoint of the layer above that owns this connection (a socket), once there is one. */
  owner: EventOwner | undefined;
  /** The listener that accepted this connection (passive open), until it is accepted. */
  listener: TcpListener | undefined;

  /** Creation order within the layer (connections due at once fire in this order). */
  readonly serial: number;

  readonly #tcb: TcpControlBlock;
  readonly #timers: TcpTimers;
  readonly #receiver: TcpReceiver;
  readonly #sender: TcpSender;
  readonly #handshake: TcpHandshake;
  /** Closed by the application: finishes on its own (RFC 9293 §3.10.4). */
  #orphaned = false;
  /** Holds a unit of the session's socket quota (a passive open not yet accepted). */
  #quotaUnit = false;

  /**
   * Creates a TCB in `state` (SYN_SENT for an active open, SYN_RECEIVED for a
   * passive one). Use {@linkcode TcpConnection.connect} or
   * {@linkcode TcpConnection.acceptSyn} next.
   */
  constructor(init: {
    host: TcpHost;
    key: string;
    /** The local address; the stack's (`host.localAddr`) by default. */
    localAddr?: IpAddress;
    localPort: number;
    remoteAddr: IpAddress;
    remotePort: number;
    config: TcpConfig;
    iss: number;
    mtu: number;
    tsOffset: number;
    state: "SYN_SENT" | "SYN_RECEIVED";
    /** The layer took a unit of the session's socket quota for this (passive) connection. */
    holdsQuotaUnit?: boolean;
    /** Creation order within the layer. */
    serial?: number;
  }) {
    this.key = init.key;
    this.localAddr = init.localAddr ?? init.host.localAddr;
    this.serial = init.serial ?? 0;
    this.#timers = new TcpTimers(init.host.timerQueue, this);
    this.localPort = init.localPort;
    this.remoteAddr = init.remoteAddr;
    this.remotePort = init.remotePort;
    this.config = init.config;
    this.#quotaUnit = init.holdsQuotaUnit === true;
    const tcb = new TcpControlBlock(
      this,
      init.host,
      init.config,
      this.#timers,
      init.state,
      init.mtu,
      init.tsOffset,
    );
    tcb.iss =
      tcb.sndUna =
      tcb.sndNxt =
      tcb.sndMax =
        init.iss;
    this.#tcb = tcb;
    this.#receiver = new TcpReceiver(tcb);
    this.#sender = new TcpSender(tcb, this.#receiver);
    this.#handshake = new TcpHandshake(tcb, this.#sender, this.#receiver);
  }

  /** The connection's state (RFC 9293 §3.3.2). */
  get state(): TcpState {
    return this.#tcb.state;
  }

  /** The list the connection is on, as the API reports it. */
  get pcbList(): "active" | "time-wait" | "closed" {
    const s = this.#tcb.state;
    return s === "TIME_WAIT" ? "time-wait" : s === "CLOSED" ? "closed" : "active";
  }

  // ---------------------------------------------------------------- opening

  /** Active open (RFC 9293 §3.10.1): sends the SYN. */
  connect(now: number): void {
    this.#handshake.connect(now);
  }

  /**
   * Passive open from a SYN that reached a listener (RFC 9293 §3.10.7.2):
   * records the peer's options and answers with a SYN-ACK.
   */
  acceptSyn(seg: TcpRepr, now: number): void {
    this.#handshake.acceptSyn(seg, now);
  }

  /**
   * Completes a passive open from a valid SYN cookie (RFC 4987 §3.6): the
   * handshake's state was never stored, so only what the cookie carries (the
   * MSS) is known; window scaling, SACK and timestamps stay off.
   */
  acceptCookie(seg: TcpRepr, mss: number, now: number): string | undefined {
    this.#handshake.restoreFromCookie(seg, mss);
    this.#established(now);
    const quotaDrop = this.#processText(seg, now);
    this.#sender.output(now);
    return quotaDrop ? "tcp_rcv_quota" : undefined;
  }

  // ---------------------------------------------------------- quotas

  /** Records that the connection now holds a unit its layer took for it (a SYN cookie's ACK). */
  adoptQuotaUnit(): void {
    this.#quotaUnit = true;
  }

  /**
   * Hands over the unit of the session's socket quota this connection
   * holds, and returns whether it held one. A connection made by a passive
   * open takes a unit of `stack.quota.sockets` when its handshake completes
   * (the ACK of its SYN-ACK, or of a SYN cookie) and keeps it while it waits
   * in its listener's accept queue; half-open connections hold none. The
   * socket layer calls this when it accepts the connection, and from then on
   * the unit is the socket's to release. A connection that closes before it
   * is accepted releases its unit itself. Active opens hold none (the socket
   * layer takes its own).
   *
   * @example
   * ```ts
   * const conn = listener.accept();
   * if (conn) {
   *   const adopted = conn.takeQuotaUnit(); // true: the socket now holds the unit
   *   if (!adopted && !stack.quota.sockets.tryTake()) conn.abort(now);
   * }
   * ```
   */
  takeQuotaUnit(): boolean {
    const held = this.#quotaUnit;
    this.#quotaUnit = false;
    return held;
  }

  /** Whether the connection holds a unit of the session's socket quota (see {@linkcode TcpConnection.takeQuotaUnit}). */
  get holdsQuotaUnit(): boolean {
    return this.#quotaUnit;
  }

  /**
   * Bytes of the session's memory quota this connection's storage is
   * charged now: receive queue chunks, out-of-order pages, send buffer.
   */
  get chargedBytes(): number {
    return this.#receiver.chargedBytes + this.#sender.buffer.chargedBytes;
  }

  // ---------------------------------------------------------- application

  /** Bytes the application can still write before the send buffer is full. */
  get writableBytes(): number {
    return this.#sender.canSend() ? this.#sender.buffer.free : 0;
  }

  /** Bytes waiting for the application to read. */
  get readableBytes(): number {
    return this.#receiver.readableBytes;
  }

  /** Whether the peer's FIN was received and all data before it was read. */
  get readEnded(): boolean {
    return this.#receiver.readEnded;
  }

  /** Whether the application may still write (not shut down, not closed). */
  get canWrite(): boolean {
    return this.#sender.canSend();
  }

  /**
   * Queues `data` for sending and sends what the windows allow. Returns the
   * number of bytes taken: 0 when the send buffer is full or when writing is
   * no longer possible (check {@linkcode TcpConnection.canWrite}).
   */
  send(data: Uint8Array, now: number): number {
    return this.#sender.write(data, now);
  }

  /**
   * Takes up to `max` bytes of received data, or undefined when none is
   * queued. Opening the window may send a window update (RFC 9293 §3.8.6.2.2).
   */
  read(max: number, now: number): Uint8Array | undefined {
    const out = this.#receiver.read(max, now);
    if (this.#receiver.ackNow) this.#sender.output(now);
    return out;
  }

  /** Half-close: queues a FIN after the data (RFC 9293 §3.10.4 CLOSE in ESTABLISHED/CLOSE_WAIT). */
  shutdownWrite(now: number): void {
    if (this.#sender.finQueued) return;
    switch (this.#tcb.state) {
      case "SYN_SENT":
        this.#finish(undefined, now);
        return;
      case "SYN_RECEIVED":
      case "ESTABLISHED":
      case "CLOSE_WAIT":
        this.#sender.queueFin(now);
        return;
      default:
        return;
    }
  }

  /**
   * Close from the application: the connection becomes an orphan that
   * finishes sending and closes on its own. Unread received data means the
   * application lost data: the connection is reset instead (RFC 2525 §2.17).
   * On a connection already CLOSED it frees what the connection still holds.
   */
  close(now: number): void {
    this.#orphaned = true;
    if (this.#receiver.hasUnread) {
      this.abort(now);
      return;
    }
    this.shutdownWrite(now);
    if (this.#tcb.state === "FIN_WAIT_2") this.#startFinWait2(now);
  }

  /**
   * Abort (RFC 9293 §3.10.5 ABORT): sends a RST when synchronized and closes
   * now. On a connection already CLOSED it frees the received bytes nobody
   * read (the owner gave the connection up): a CLOSED connection keeps its
   * unread bytes, charged, until they are read or it is closed or aborted.
   */
  abort(now: number): void {
    const state = this.#tcb.state;
    if (state === "CLOSED") {
      this.#receiver.free();
      return;
    }
    if (state === "TIME_WAIT") {
      this.#finish(undefined, now);
      return;
    }
    if (state !== "SYN_SENT") this.#sender.sendRst(this.#tcb.sndNxt, now);
    this.#finish(undefined, now);
  }

  // ---------------------------------------------------------------- input

  /**
   * Processes a segment for this connection (RFC 9293 §3.10.7.3 and §3.10.7.4,
   * with RFC 5961 and RFC 7323 §5 PAWS). Returns a drop reason, or undefined
   * when the segment was used.
   */
  input(seg: TcpRepr, now: number): string | undefined {
    const tcb = this.#tcb;
    const sender = this.#sender;
    tcb.stats.segmentsIn++;
    if (tcb.state === "SYN_SENT") return this.#inputSynSent(seg, now);
    if (tcb.state === "CLOSED") return "tcp_closed";
    const flags = seg.flags;
    const rst = (flags & TcpFlags.RST) !== 0;

    // RFC 7323 §5.3 PAWS: drop (and ACK) a segment with an old timestamp.
    if (tcb.tsEnabled && seg.timestamp && !rst) {
      if (seqLt(seg.timestamp.value, tcb.tsRecent) && tcb.state !== "SYN_RECEIVED") {
        sender.ackUnacceptable(now);
        return "tcp_paws_rejected";
      }
    }

    // In SYN-RECEIVED a SYN at the peer's ISN is its retransmitted SYN (our SYN-ACK was lost:
    // answer again) or, after a simultaneous open, its SYN-ACK, which completes the handshake
    // (RFC 9293 §3.5 figure 8 line 6; Linux's tcp_validate_incoming). Its SYN lies before RCV.NXT.
    const synAgain = tcb.state === "SYN_RECEIVED" && (flags & TcpFlags.SYN) !== 0 && !rst &&
      seg.seqNumber === tcb.irs;
    if (synAgain && !(flags & TcpFlags.ACK)) {
      this.#handshake.sendSyn(now, true);
      return undefined;
    }

    // First: the sequence number (RFC 9293 §3.10.7.4, the acceptability table).
    const segLen = seg.payload.length + ((flags & TcpFlags.SYN) ? 1 : 0) +
      ((flags & TcpFlags.FIN) ? 1 : 0);
    if (!synAgain && !this.#receiver.acceptable(seg.seqNumber, segLen)) {
      if (rst) return "tcp_rst_out_of_window";
      if (tcb.state === "TIME_WAIT" && (flags & TcpFlags.FIN)) {
        // A retransmitted FIN: re-ACK and restart 2MSL (RFC 9293 §3.10.7.4 TIME-WAIT).
        this.#timers.start(TcpTimer.TIME_WAIT, now + this.config.timeWaitMs);
      }
      sender.ackUnacceptable(now);
      return "tcp_out_of_window";
    }

    // Second: RST (RFC 5961 §3.2).
    if (rst) {
      if (seg.seqNumber !== tcb.rcvNxt) {
        sender.challengeAck(now);
        return "tcp_rst_challenged";
      }
      if (tcb.state === "TIME_WAIT") return "tcp_rst_in_time_wait"; // RFC 1337
      this.#finish(tcb.state === "SYN_RECEIVED" ? "ECONNREFUSED" : "ECONNRESET", now);
      return undefined;
    }

    // Fourth: SYN in a synchronized state (RFC 5961 §4.2): challenge ACK.
    if ((flags & TcpFlags.SYN) && !synAgain) {
      sender.challengeAck(now);
      return "tcp_syn_challenged";
    }

    // Fifth: the ACK field.
    if (!(flags & TcpFlags.ACK)) return "tcp_no_ack";

    // Timestamp bookkeeping (RFC 7323 §4.3): TS.Recent from in-window segments.
    if (tcb.tsEnabled && seg.timestamp && seqLe(seg.seqNumber, tcb.lastAckSent)) {
      tcb.tsRecent = seg.timestamp.value;
    }
    // The receiver's round trip (for its buffer autotuning): data echoing one of our TSvals.
    if (tcb.tsEnabled && seg.timestamp && seg.timestamp.echo !== 0 && seg.payload.length > 0) {
      this.#receiver.noteRtt(seqSub(tcb.tsNow(now), seg.timestamp.echo));
    }

    if (tcb.state === "SYN_RECEIVED") {
      if (seqLe(seg.ackNumber, tcb.sndUna) || seqGt(seg.ackNumber, tcb.sndMax)) {
        sender.sendRst(seg.ackNumber, now);
        return "tcp_bad_ack";
      }
      // A passive connection joins the accept queue only with a unit of the session's
      // socket quota. None free: the ACK is dropped and the connection stays half-open, so
      // that the SYN-ACK's retransmission (or the peer's next segment) tries again, as Linux
      // does when its accept queue is full (tcp_abort_on_overflow off).
      if (this.listener && !this.#quotaUnit) {
        if (!tcb.host.quota.sockets.tryTake()) return "tcp_accept_quota";
        this.#quotaUnit = true;
      }
      this.#handshake.synAckAcked(seg);
      this.#established(now);
    }

    const ackResult = sender.processAck(seg, now);
    if (ackResult !== undefined) return ackResult;
    this.#afterOurFinAcked(now);
    if ((tcb.state as TcpState) === "CLOSED") return undefined; // LAST-ACK is over

    // Seventh: segment text; eighth: FIN.
    const quotaDrop = this.#processText(seg, now);
    sender.output(now);
    return quotaDrop ? "tcp_rcv_quota" : undefined;
  }

  /** RFC 9293 §3.10.7.3: a segment in SYN-SENT. */
  #inputSynSent(seg: TcpRepr, now: number): string | undefined {
    const hs = this.#handshake;
    const f = seg.flags;
    const hasAck = (f & TcpFlags.ACK) !== 0;
    if (hasAck && !hs.acksOurSyn(seg.ackNumber)) {
      if (f & TcpFlags.RST) return "tcp_rst_out_of_window";
      this.#sender.sendRst(seg.ackNumber, now);
      return "tcp_bad_ack";
    }
    if (f & TcpFlags.RST) {
      if (!hasAck) return "tcp_rst_out_of_window"; // RFC 5961 §3.2 / RFC 9293: RST without ACK ignored
      this.#finish("ECONNREFUSED", now);
      return undefined;
    }
    if (!(f & TcpFlags.SYN)) return "tcp_no_syn";
    hs.receiveSyn(seg);
    if (hasAck) {
      hs.synAcked(seg, now);
      this.#tcb.setState("ESTABLISHED", now);
      this.#tcb.signal(TcpEvent.CONNECTED | TcpEvent.WRITABLE);
      this.#receiver.ackNow = true;
      const quotaDrop = this.#processText(seg, now);
      this.#sender.output(now);
      return quotaDrop ? "tcp_rcv_quota" : undefined;
    }
    // Simultaneous open (RFC 9293 §3.5, figure 8): SYN_RECEIVED, answer with SYN-ACK.
    hs.simultaneousOpen(seg);
    this.#tcb.setState("SYN_RECEIVED", now);
    hs.sendSyn(now, true);
    return undefined;
  }

  /** SYN-RECEIVED becomes ESTABLISHED (a passive connection joins its listener's accept queue). */
  #established(now: number): void {
    this.#tcb.setState("ESTABLISHED", now);
    this.#tcb.host.established(this);
    this.#tcb.signal(TcpEvent.CONNECTED | TcpEvent.WRITABLE);
  }

  /** State changes driven by our FIN being acknowledged (RFC 9293 §3.10.7.4 fifth). */
  #afterOurFinAcked(now: number): void {
    if (!this.#sender.finAcked) return;
    // Every byte we sent is acknowledged and no more can be written: the send buffer's storage
    // (up to its autotuned size) goes back to the quota now, not when TIME_WAIT ends.
    const buffer = this.#sender.buffer;
    if (buffer.chargedBytes > 0) buffer.clear();
    switch (this.#tcb.state) {
      case "FIN_WAIT_1":
        this.#tcb.setState("FIN_WAIT_2", now);
        if (this.#orphaned) this.#startFinWait2(now);
        break;
      case "CLOSING":
        this.#enterTimeWait(now);
        break;
      case "LAST_ACK":
        this.#finish(undefined, now);
        break;
    }
  }

  /**
   * Seventh and eighth steps; the FIN moves the state machine (RFC 9293
   * §3.10.7.4). Returns whether text was dropped because the memory quota
   * refused its storage (answered with a rate-limited ACK).
   */
  #processText(seg: TcpRepr, now: number): boolean {
    const r = this.#receiver.processText(seg, now, this.#orphaned);
    if (r & TcpReceived.DATA_FOR_ORPHAN) {
      // Data for an application that is gone (RFC 9293 §3.10.4, RFC 2525 §2.17).
      this.abort(now);
      return false;
    }
    const quotaDrop = (r & TcpReceived.QUOTA_DROP) !== 0;
    if (quotaDrop) this.#sender.ackUnacceptable(now);
    if (!(r & TcpReceived.FIN)) return quotaDrop;
    switch (this.#tcb.state) {
      case "SYN_RECEIVED":
      case "ESTABLISHED":
        this.#tcb.setState("CLOSE_WAIT", now);
        break;
      case "FIN_WAIT_1":
        if (this.#sender.finAcked) this.#enterTimeWait(now);
        else this.#tcb.setState("CLOSING", now);
        break;
      case "FIN_WAIT_2":
        this.#enterTimeWait(now);
        break;
    }
    return quotaDrop;
  }

  // ---------------------------------------------------------------- timers

  /** The earliest deadline of this connection's timers, or undefined. */
  nextDeadline(): number | undefined {
    return this.#timers.nextDeadline();
  }

  /**
   * The connection's key in the layer's timer queue: a lower bound of
   * {@linkcode TcpConnection.nextDeadline}, Infinity when it is not queued
   * (for the invariants).
   */
  get timerQueueKey(): number {
    return this.#timers.heapIndex < 0 ? Infinity : this.#timers.heapKey;
  }

  /** Fires the timers due at `now`. */
  poll(now: number): void {
    const t = this.#timers;
    const sender = this.#sender;
    if (t.expire(TcpTimer.TLP, now)) sender.recovery.onTlpTimer(now);
    if (t.expire(TcpTimer.TIME_WAIT, now)) {
      this.#finish(undefined, now);
      return;
    }
    if (t.expire(TcpTimer.FIN_WAIT_2, now) && this.#tcb.state === "FIN_WAIT_2") {
      this.#finish(undefined, now);
      return;
    }
    if (t.expire(TcpTimer.RTO, now)) {
      this.#onRetransmissionTimeout(now);
      if (this.#tcb.state === "CLOSED") return;
    }
    if (t.expire(TcpTimer.PERSIST, now)) sender.onPersistTimer(now);
    if (t.expire(TcpTimer.DELAYED_ACK, now)) sender.sendAck(now);
    if (t.expire(TcpTimer.KEEPALIVE, now) && !sender.onKeepaliveTimer(now)) {
      this.#finish("ETIMEDOUT", now);
      return;
    }
    if (t.expire(TcpTimer.PACE, now)) sender.output(now);
  }

  /** RFC 6298 §5.5-5.7 and RFC 9293 §3.8.3 R2: back off, retransmit, or give up. */
  #onRetransmissionTimeout(now: number): void {
    const tcb = this.#tcb;
    const sender = this.#sender;
    sender.timeouts++;
    tcb.stats.timeouts++;
    const c = this.config;
    const limit = tcb.state === "SYN_SENT"
      ? c.synRetries
      : tcb.state === "SYN_RECEIVED"
      ? c.synAckRetries
      : c.maxRetransmits;
    if (sender.timeouts > limit) {
      this.#finish("ETIMEDOUT", now);
      return;
    }
    sender.rtt.backoff();
    if (tcb.state === "SYN_SENT" || tcb.state === "SYN_RECEIVED") {
      this.#handshake.retransmitSyn(now);
      return;
    }
    sender.onRetransmissionTimeout(now);
  }

  #startFinWait2(now: number): void {
    this.#timers.start(TcpTimer.FIN_WAIT_2, now + this.config.finWait2TimeoutMs);
  }

  /**
   * Path MTU discovery (RFC 1191 §6.3, RFC 5927 §4.1): an ICMP
   * fragmentation-needed quoting sequence number `seq` lowers the send MSS,
   * but only if `seq` is in flight (a blind attacker cannot guess it) and the
   * MTU is plausible (at least 576, so that no one can shrink segments to
   * nothing). What is in flight is sent again in the smaller size; this is not
   * a congestion signal. Returns whether the message was acted on.
   */
  pathMtuReduced(seq: number, mtu: number, now: number): boolean {
    return this.#sender.pathMtuReduced(seq, mtu, now);
  }

  /** Called by the layer for every segment that reached this connection (keepalive reset). */
  noteActivity(now: number): void {
    this.#sender.keepalivesSent = 0;
    if (this.config.keepaliveIdleMs > 0 && this.#tcb.synchronized()) {
      this.#timers.start(TcpTimer.KEEPALIVE, now + this.config.keepaliveIdleMs);
    }
  }

  // ---------------------------------------------------------------- states

  #enterTimeWait(now: number): void {
    const t = this.#timers;
    this.#tcb.setState("TIME_WAIT", now);
    t.stop(TcpTimer.RTO);
    t.stop(TcpTimer.PERSIST);
    t.stop(TcpTimer.KEEPALIVE);
    t.stop(TcpTimer.FIN_WAIT_2);
    t.stop(TcpTimer.DELAYED_ACK);
    t.stop(TcpTimer.PACE);
    t.start(TcpTimer.TIME_WAIT, now + this.config.timeWaitMs);
    this.#tcb.signal(TcpEvent.READABLE);
    this.#tcb.host.enteredTimeWait(this);
  }

  /** Whether a new SYN may take over this TIME_WAIT connection (RFC 9293 §3.10.7.4, RFC 6191). */
  acceptsNewSyn(seg: TcpRepr): boolean {
    const tcb = this.#tcb;
    if (tcb.state !== "TIME_WAIT") return false;
    if (tcb.tsEnabled && seg.timestamp) return seqGt(seg.timestamp.value, tcb.tsRecent);
    return seqGt(seg.seqNumber, tcb.rcvNxt);
  }

  /** The sequence number a successor connection should start beyond (RFC 9293 §3.10.7.4). */
  get sndNxt(): number {
    return this.#tcb.sndNxt;
  }

  #finish(error: NetErrorCode | undefined, _now: number): void {
    const tcb = this.#tcb;
    if (tcb.state === "CLOSED") return;
    tcb.state = "CLOSED";
    this.error = error;
    this.#timers.stopAll();
    this.#sender.buffer.clear();
    // Unread bytes stay readable for an owner; nobody reads those of an orphan or of a
    // connection never accepted.
    if (this.#orphaned || this.listener !== undefined) this.#receiver.free();
    else this.#receiver.closed();
    if (this.takeQuotaUnit()) tcb.host.quota.sockets.release();
    tcb.signal(TcpEvent.CLOSED | TcpEvent.READABLE | TcpEvent.WRITABLE);
    tcb.host.closed(this);
  }

  /** A snapshot of the connection's estimates and counters. */
  info(): TcpInfo {
    const tcb = this.#tcb;
    const sender = this.#sender;
    const rtt = sender.rtt;
    const cc = sender.cc;
    return {
      state: tcb.state,
      sendMss: tcb.sendMss,
      rttMs: rtt.srtt ?? null,
      rttVarMs: rtt.rttvar ?? null,
      rtoMs: rtt.currentRto,
      cwnd: cc.cwnd,
      ssthresh: Number.isFinite(cc.ssthresh) ? cc.ssthresh : null,
      congestionControl: cc.name,
      sendWindow: tcb.sndWnd,
      recvWindow: this.#receiver.window(),
      sendWindowScale: tcb.sndWscale,
      recvWindowScale: tcb.rcvWscale,
      timestamps: tcb.tsEnabled,
      sack: tcb.sackEnabled,
      bytesInFlight: sender.flightSize(),
      sendQueued: sender.buffer.length,
      recvQueued: this.#receiver.readableBytes,
      outOfOrderBytes: this.#receiver.reassembler.bufferedBytes,
      reordering: sender.recovery.reordering,
      ...tcb.stats,
    };
  }

  /** Sequence-space snapshot for tests and debugging. */
  debugSeq(): {
    iss: number;
    irs: number;
    sndUna: number;
    sndNxt: number;
    sndMax: number;
    rcvNxt: number;
  } {
    const tcb = this.#tcb;
    return {
      iss: tcb.iss,
      irs: tcb.irs,
      sndUna: tcb.sndUna,
      sndNxt: tcb.sndNxt,
      sndMax: tcb.sndMax,
      rcvNxt: tcb.rcvNxt,
    };
  }
}
