/**
 * One TCP connection: the transmission control block, the state machine of
 * RFC 9293 §3.10, retransmission (RFC 6298), loss recovery (RFC 5681, RFC 6582,
 * SACK per RFC 2018/6675), window scaling and timestamps (RFC 7323), and the
 * robustness rules of RFC 5961. Synchronous: the caller holds the core lock
 * and passes the time in.
 *
 * @module
 */

import { earlier } from "../deadline.ts";
import type { NetErrorCode } from "../../errors/net_error.ts";
import {
  TCP_MAX_WINDOW_SCALE,
  TcpFlags,
  type TcpRepr,
  tcpSeqGe,
  tcpSeqGt,
  tcpSeqLe,
  tcpSeqLt,
} from "../../wire/mod.ts";
import {
  type CongestionControl,
  type CongestionControlName,
  createCongestionControl,
} from "./congestion.ts";
import { Reassembler } from "./reassembler.ts";
import { RttEstimator } from "./rtt_estimator.ts";
import { SackScoreboard } from "./sack_scoreboard.ts";
import { SendBuffer } from "./send_buffer.ts";
import type { TcpConfig } from "./tcp_config.ts";

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

/** An endpoint that receives the events of a core object it owns (a socket). */
export interface EventOwner {
  /** Called outside the core lock with the event bits raised since the last call. */
  onEvents(bits: number): void;
}

/** What a connection needs from the TCP layer that owns it. */
export interface TcpHost {
  /** The stack's IPv4 address. */
  readonly localAddr: number;
  /** Emits a segment of `conn` (the layer adds IP and the checksum). */
  emit(conn: TcpConnection, repr: TcpRepr, now: number): void;
  /** Records that `conn` has events for its owner. */
  markDirty(conn: TcpConnection): void;
  /** `conn` entered TIME_WAIT: move it to the time-wait list. */
  enteredTimeWait(conn: TcpConnection): void;
  /** `conn` reached CLOSED: remove it from every list. */
  closed(conn: TcpConnection): void;
  /** RFC 5961 §7: whether one more challenge ACK may be sent now (a global rate limit). */
  allowChallengeAck(now: number): boolean;
  /** The connection became established (a passive one joins its listener's accept queue). */
  established(conn: TcpConnection): void;
}

/** Options a peer offered in its SYN (RFC 9293 §3.7.1, RFC 7323, RFC 2018). */
export interface TcpSynOptions {
  mss?: number;
  windowScale?: number;
  sackPermitted?: boolean;
  timestamp?: { value: number; echo: number };
}

/** Counters and estimates for GET /sockets/:id and `ss -ti`-style views. */
export interface TcpInfo {
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
  /** The duplicate-ACK threshold now in force (raised by reordering). */
  reordering: number;
}

const SYN_OVERHEAD_MSS = 536; // RFC 9293 §3.7.1: default send MSS when the peer sends none.
const DUP_ACK_THRESHOLD = 3; // RFC 5681 §3.2
const MAX_REORDERING = 64; // segments; Linux caps tcp_reordering at 300
const MAX_PERSIST_MS = 60_000;

/**
 * One TCP connection (a TCB). Created by the TCP layer for an active open
 * ({@linkcode TcpConnection.connect}) or a SYN that reached a listener.
 */
export class TcpConnection {
  readonly localPort: number;
  readonly remoteAddr: number;
  readonly remotePort: number;
  readonly config: TcpConfig;
  /** The demux key of the 4-tuple, set by the layer. */
  readonly key: string;
  state: TcpState;
  /** Why the connection closed, when it did not close cleanly. */
  error: NetErrorCode | undefined;
  /** Pending event bits (see {@linkcode TcpEvent}); the layer clears them after delivery. */
  events = 0;
  /** Opaque owner (the socket layer's endpoint). */
  owner: unknown;
  /** The listener that accepted this connection (passive open), until accepted. */
  listener: unknown;
  /** The list the connection is on, as the API reports it. */
  get pcbList(): "active" | "time-wait" | "closed" {
    return this.state === "TIME_WAIT" ? "time-wait" : this.state === "CLOSED" ? "closed" : "active";
  }

  #host: TcpHost;
  // Send sequence space (RFC 9293 §3.3.1).
  #iss = 0;
  #sndUna = 0;
  #sndNxt = 0;
  #sndMax = 0;
  #sndWnd = 0;
  #maxSndWnd = 0;
  #sndWl1 = 0;
  #sndWl2 = 0;
  #sndWscale = 0;
  // Receive sequence space.
  #irs = 0;
  #rcvNxt = 0;
  #rcvAdvRight = 0;
  #rcvWscale = 0;
  #lastAckSent = 0;
  // Options.
  #sendMss = SYN_OVERHEAD_MSS;
  #wsOk = false;
  #mssOffer: number;
  #tsEnabled = false;
  #tsRecent = 0;
  #tsOffset: number;
  #sackEnabled = false;
  // Buffers.
  #sendBuf: SendBuffer;
  #finQueued = false;
  /** Sequence number of our FIN once it was first sent. */
  #finSeqNo: number | undefined;
  #finAcked = false;
  #recvQueue: Uint8Array[] = [];
  #recvQueueHead = 0;
  #recvQueued = 0;
  #recvFin = false;
  #pendingFinSeq: number | undefined;
  #reasm: Reassembler;
  #orphaned = false;
  // Estimators.
  #rtt: RttEstimator;
  #cc: CongestionControl;
  #rttSeq: number | undefined;
  #rttSentAt = 0;
  // Loss recovery.
  #scoreboard = new SackScoreboard();
  #dupAcks = 0;
  #inRecovery = false;
  #recoveryPoint = 0;
  #highRxt = 0;
  /** Holes retransmitted in the current recovery, for lost-retransmission detection. */
  #rxtLog: Array<{ seq: number; end: number; at: number }> = [];
  /** Tail loss probe deadline (RFC 8985 §7) and whether a probe is outstanding. */
  #tlpAt: number | undefined;
  #tlpOutstanding = false;
  /**
   * Duplicate-ACK threshold in segments: 3 (RFC 5681), raised when a D-SACK
   * shows that a retransmission was spurious, i.e. the network reorders
   * (RFC 2883 §4.2, RFC 4653's idea, as Linux's tcp_reordering).
   */
  #reordering = DUP_ACK_THRESHOLD;
  /** The most recent retransmitted ranges, to tell our spurious retransmissions from network duplicates. */
  #recentRxt: Array<{ seq: number; end: number }> = [];
  #lastSendAt = 0;
  // Timers (absolute deadlines, undefined = stopped).
  #rtoAt: number | undefined;
  #delAckAt: number | undefined;
  #persistAt: number | undefined;
  #keepaliveAt: number | undefined;
  #timeWaitAt: number | undefined;
  #finWait2At: number | undefined;
  #timeouts = 0;
  #persistBackoff = 0;
  #keepaliveSent = 0;
  #ackPendingSegs = 0;
  #ackNow = false;
  // Statistics.
  #stats = {
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

  /**
   * Creates a TCB in `state` (SYN_SENT for an active open, SYN_RECEIVED for a
   * passive one). Use {@linkcode TcpConnection.connect} or
   * {@linkcode TcpConnection.acceptSyn} next.
   */
  constructor(init: {
    host: TcpHost;
    key: string;
    localPort: number;
    remoteAddr: number;
    remotePort: number;
    config: TcpConfig;
    iss: number;
    mtu: number;
    tsOffset: number;
    state: "SYN_SENT" | "SYN_RECEIVED";
  }) {
    this.#host = init.host;
    this.key = init.key;
    this.localPort = init.localPort;
    this.remoteAddr = init.remoteAddr;
    this.remotePort = init.remotePort;
    this.config = init.config;
    this.state = init.state;
    this.#iss = init.iss;
    this.#sndUna = init.iss;
    this.#sndNxt = init.iss;
    this.#sndMax = init.iss;
    this.#recoveryPoint = init.iss;
    this.#mssOffer = Math.min(init.mtu - 40, 65535);
    this.#tsOffset = init.tsOffset;
    this.#sendBuf = new SendBuffer(init.config.sendBufferBytes);
    this.#reasm = new Reassembler({
      // Room for the window rounded up to the scale; never above the reassembler's 2^30 limit.
      capacity: Math.min(init.config.recvBufferBytes + (1 << TCP_MAX_WINDOW_SCALE), 1 << 30),
    });
    this.#rtt = new RttEstimator({
      initialRtoMs: init.config.initialRtoMs,
      minRtoMs: init.config.minRtoMs,
      maxRtoMs: init.config.maxRtoMs,
    });
    this.#cc = createCongestionControl(init.config.congestionControl, { mss: this.#sendMss });
    if (init.config.windowScaling) {
      let s = 0;
      while (s < TCP_MAX_WINDOW_SCALE && (65535 << s) < init.config.recvBufferBytes) s++;
      this.#rcvWscale = s;
    }
  }

  // ---------------------------------------------------------------- opening

  /** Active open (RFC 9293 §3.10.1): sends the SYN. */
  connect(now: number): void {
    this.#sndNxt = (this.#iss + 1) >>> 0;
    this.#sndMax = this.#sndNxt;
    this.#sendSyn(now, false);
    this.#rtoAt = now + this.#rtt.currentRto;
  }

  /**
   * Passive open from a SYN that reached a listener (RFC 9293 §3.10.7.2):
   * records the peer's options and answers with a SYN-ACK.
   */
  acceptSyn(seg: TcpRepr, now: number): void {
    this.#irs = seg.seqNumber;
    this.#rcvNxt = (seg.seqNumber + 1) >>> 0;
    this.#negotiate(seg, now);
    this.#sndWnd = seg.windowLen; // never scaled in a SYN (RFC 7323 §2.2)
    this.#maxSndWnd = this.#sndWnd;
    this.#sndWl1 = seg.seqNumber;
    this.#sndWl2 = this.#iss;
    this.#sndNxt = (this.#iss + 1) >>> 0;
    this.#sndMax = this.#sndNxt;
    this.#sendSyn(now, true);
    this.#rtoAt = now + this.#rtt.currentRto;
  }

  /**
   * Completes a passive open from a valid SYN cookie (RFC 4987 §3.6): the
   * handshake's state was never stored, so only what the cookie carries (the
   * MSS) is known; window scaling, SACK and timestamps stay off.
   */
  acceptCookie(seg: TcpRepr, mss: number, now: number): void {
    this.#irs = (seg.seqNumber - 1) >>> 0;
    this.#rcvNxt = seg.seqNumber;
    this.#sndUna = seg.ackNumber;
    this.#sndNxt = seg.ackNumber;
    this.#sndMax = seg.ackNumber;
    this.#rcvWscale = 0;
    this.#setSendMss(Math.min(mss, this.#mssOffer));
    this.#sndWnd = seg.windowLen;
    this.#maxSndWnd = this.#sndWnd;
    this.#sndWl1 = seg.seqNumber;
    this.#sndWl2 = seg.ackNumber;
    this.#rcvAdvRight = (this.#rcvNxt + Math.min(65535, this.config.recvBufferBytes)) >>> 0;
    this.#setState("ESTABLISHED", now);
    this.#host.established(this);
    this.#signal(TcpEvent.CONNECTED | TcpEvent.WRITABLE);
    this.#processText(seg, now);
    this.#output(now);
  }

  #negotiate(syn: TcpRepr, now: number): void {
    const c = this.config;
    this.#setSendMss(Math.min(syn.mss ?? SYN_OVERHEAD_MSS, this.#mssOffer));
    this.#wsOk = c.windowScaling && syn.windowScale !== undefined;
    if (this.#wsOk) {
      this.#sndWscale = Math.min(syn.windowScale!, TCP_MAX_WINDOW_SCALE);
    } else {
      this.#sndWscale = 0;
      this.#rcvWscale = 0;
    }
    this.#sackEnabled = c.sack && syn.sackPermitted === true;
    if (c.timestamps && syn.timestamp) {
      this.#tsEnabled = true;
      this.#tsRecent = syn.timestamp.value;
    } else {
      this.#tsEnabled = false;
    }
    if (this.#tsEnabled) this.#setSendMss(this.#sendMss - 12);
    void now;
  }

  #setSendMss(mss: number): void {
    this.#sendMss = Math.max(64, mss);
    this.#cc.setMss(this.#sendMss);
  }

  #sendSyn(now: number, withAck: boolean): void {
    const c = this.config;
    // Our window in a SYN is never scaled (RFC 7323 §2.2).
    const win = Math.min(65535, c.recvBufferBytes);
    const repr: TcpRepr = {
      srcPort: this.localPort,
      dstPort: this.remotePort,
      seqNumber: this.#iss,
      ackNumber: withAck ? this.#rcvNxt : 0,
      flags: TcpFlags.SYN | (withAck ? TcpFlags.ACK : 0),
      windowLen: win,
      mss: this.#mssOffer,
      payload: EMPTY,
    };
    // An active open offers every option; a passive one answers only what the peer offered.
    const active = this.state === "SYN_SENT";
    if (c.windowScaling && (active || this.#wsOk)) repr.windowScale = this.#rcvWscale;
    if (c.sack && (active || this.#sackEnabled)) repr.sackPermitted = true;
    if (c.timestamps && (active || this.#tsEnabled)) {
      repr.timestamp = { value: this.#tsNow(now), echo: withAck ? this.#tsRecent : 0 };
    }
    if (withAck) {
      this.#lastAckSent = this.#rcvNxt;
      this.#rcvAdvRight = (this.#rcvNxt + win) >>> 0;
    }
    this.#lastSendAt = now;
    this.#emit(repr, now);
  }

  // ---------------------------------------------------------- application

  /** Bytes the application can still write before the send buffer is full. */
  get writableBytes(): number {
    if (!this.#canSend()) return 0;
    return this.#sendBuf.free;
  }

  /** Bytes waiting for the application to read. */
  get readableBytes(): number {
    return this.#recvQueued;
  }

  /** Whether the peer's FIN was received and all data before it was read. */
  get readEnded(): boolean {
    return this.#recvFin && this.#recvQueued === 0;
  }

  /** Whether the application may still write (not shut down, not closed). */
  get canWrite(): boolean {
    return this.#canSend();
  }

  #canSend(): boolean {
    if (this.#finQueued) return false;
    return this.state === "ESTABLISHED" || this.state === "CLOSE_WAIT" ||
      this.state === "SYN_SENT" || this.state === "SYN_RECEIVED";
  }

  /**
   * Queues `data` for sending and sends what the windows allow. Returns the
   * number of bytes taken: 0 when the send buffer is full or when writing is
   * no longer possible (check {@linkcode TcpConnection.canWrite}).
   */
  send(data: Uint8Array, now: number): number {
    if (!this.#canSend()) return 0;
    const n = this.#sendBuf.write(data);
    if (n > 0 && this.#synchronized()) this.#output(now);
    return n;
  }

  /**
   * Takes up to `max` bytes of received data, or undefined when none is
   * queued. Opening the window may send a window update (RFC 9293 §3.8.6.2.2).
   */
  read(max: number, now: number): Uint8Array | undefined {
    if (this.#recvQueued === 0) return undefined;
    const q = this.#recvQueue;
    let out: Uint8Array;
    const first = q[this.#recvQueueHead];
    if (first.length <= max) {
      // Whole chunks, copied together when there are several.
      let total = 0;
      let i = this.#recvQueueHead;
      while (i < q.length && total + q[i].length <= max) total += q[i++].length;
      if (i === this.#recvQueueHead + 1) {
        out = first;
      } else {
        out = new Uint8Array(total);
        let off = 0;
        for (let k = this.#recvQueueHead; k < i; k++) {
          out.set(q[k], off);
          off += q[k].length;
        }
      }
      this.#recvQueueHead = i;
    } else {
      out = first.subarray(0, max);
      q[this.#recvQueueHead] = first.subarray(max);
    }
    if (this.#recvQueueHead > 64 && this.#recvQueueHead * 2 > q.length) {
      q.splice(0, this.#recvQueueHead);
      this.#recvQueueHead = 0;
    }
    const before = this.#advertisableWindow();
    this.#recvQueued -= out.length;
    if (this.#synchronized() && !this.#recvFin) {
      // Send a window update when the window opens by at least 2 MSS or half the buffer,
      // or from zero (receiver-side SWS avoidance, RFC 9293 §3.8.6.2.2).
      const after = this.#advertisableWindow();
      const opened = after - Math.max(0, (this.#rcvAdvRight - this.#rcvNxt) | 0);
      if (
        opened >= 2 * this.#sendMss || opened >= this.config.recvBufferBytes / 2 ||
        (before < this.#sendMss && after >= this.#sendMss)
      ) {
        this.#ackNow = true;
        this.#output(now);
      }
    }
    return out;
  }

  /** Half-close: queues a FIN after the data (RFC 9293 §3.10.4 CLOSE in ESTABLISHED/CLOSE_WAIT). */
  shutdownWrite(now: number): void {
    if (this.#finQueued) return;
    switch (this.state) {
      case "SYN_SENT":
        this.#finish(undefined, now);
        return;
      case "SYN_RECEIVED":
      case "ESTABLISHED":
      case "CLOSE_WAIT":
        this.#finQueued = true;
        if (this.#synchronized()) this.#output(now);
        return;
      default:
        return;
    }
  }

  /**
   * Close from the application: the connection becomes an orphan that
   * finishes sending and closes on its own. Unread received data means the
   * application lost data: the connection is reset instead (RFC 2525 §2.17).
   */
  close(now: number): void {
    this.#orphaned = true;
    if (this.#recvQueued > 0 || this.#reasm.bufferedBytes > 0) {
      this.abort(now);
      return;
    }
    this.shutdownWrite(now);
    if (this.state === "FIN_WAIT_2") this.#finWait2At = now + this.config.finWait2TimeoutMs;
  }

  /** Abort (RFC 9293 §3.10.5 ABORT): sends a RST when synchronized and closes now. */
  abort(now: number): void {
    if (this.state === "CLOSED" || this.state === "TIME_WAIT") {
      if (this.state === "TIME_WAIT") this.#finish(undefined, now);
      return;
    }
    if (this.state !== "SYN_SENT") {
      this.#emit({
        srcPort: this.localPort,
        dstPort: this.remotePort,
        seqNumber: this.#sndNxt,
        ackNumber: 0,
        flags: TcpFlags.RST,
        windowLen: 0,
        payload: EMPTY,
      }, now);
    }
    this.#finish(undefined, now);
  }

  // ---------------------------------------------------------------- input

  /**
   * Processes a segment for this connection (RFC 9293 §3.10.7.3 and §3.10.7.4,
   * with RFC 5961 and RFC 7323 §5 PAWS). Returns a drop reason, or undefined
   * when the segment was used.
   */
  input(seg: TcpRepr, now: number): string | undefined {
    this.#stats.segmentsIn++;
    if (this.state === "SYN_SENT") return this.#inputSynSent(seg, now);
    if (this.state === "CLOSED") return "tcp_closed";
    const flags = seg.flags;
    const rst = (flags & TcpFlags.RST) !== 0;

    // RFC 7323 §5.3 PAWS: drop (and ACK) a segment with an old timestamp.
    if (this.#tsEnabled && seg.timestamp && !rst) {
      if (tcpSeqLt(seg.timestamp.value, this.#tsRecent) && this.state !== "SYN_RECEIVED") {
        this.#sendAck(now);
        return "tcp_paws_rejected";
      }
    }

    // In SYN-RECEIVED a SYN at the peer's ISN is its retransmitted SYN (our SYN-ACK was lost:
    // answer again) or, after a simultaneous open, its SYN-ACK, which completes the handshake
    // (RFC 9293 §3.5 figure 8 line 6; Linux's tcp_validate_incoming). Its SYN lies before RCV.NXT.
    const synAgain = this.state === "SYN_RECEIVED" && (flags & TcpFlags.SYN) !== 0 && !rst &&
      seg.seqNumber === this.#irs;
    if (synAgain && !(flags & TcpFlags.ACK)) {
      this.#sendSyn(now, true);
      return undefined;
    }

    // First: the sequence number (RFC 9293 §3.10.7.4, the acceptability table).
    const segLen = seg.payload.length + ((flags & TcpFlags.SYN) ? 1 : 0) +
      ((flags & TcpFlags.FIN) ? 1 : 0);
    const rcvWnd = Math.max(0, (this.#rcvAdvRight - this.#rcvNxt) | 0);
    if (!synAgain && !this.#acceptable(seg.seqNumber, segLen, rcvWnd)) {
      if (rst) return "tcp_rst_out_of_window";
      if (this.state === "TIME_WAIT" && (flags & TcpFlags.FIN)) {
        // A retransmitted FIN: re-ACK and restart 2MSL (RFC 9293 §3.10.7.4 TIME-WAIT).
        this.#timeWaitAt = now + this.config.timeWaitMs;
      }
      this.#sendAck(now);
      return "tcp_out_of_window";
    }

    // Second: RST (RFC 5961 §3.2).
    if (rst) {
      if (seg.seqNumber !== this.#rcvNxt) {
        this.#challengeAck(now);
        return "tcp_rst_challenged";
      }
      if (this.state === "TIME_WAIT") return "tcp_rst_in_time_wait"; // RFC 1337
      this.#finish(this.state === "SYN_RECEIVED" ? "ECONNREFUSED" : "ECONNRESET", now);
      return undefined;
    }

    // Fourth: SYN in a synchronized state (RFC 5961 §4.2): challenge ACK.
    if ((flags & TcpFlags.SYN) && !synAgain) {
      this.#challengeAck(now);
      return "tcp_syn_challenged";
    }

    // Fifth: the ACK field.
    if (!(flags & TcpFlags.ACK)) return "tcp_no_ack";

    // Timestamp bookkeeping (RFC 7323 §4.3): TS.Recent from in-window segments.
    if (this.#tsEnabled && seg.timestamp && tcpSeqLe(seg.seqNumber, this.#lastAckSent)) {
      this.#tsRecent = seg.timestamp.value;
    }

    if (this.state === "SYN_RECEIVED") {
      if (tcpSeqLe(seg.ackNumber, this.#sndUna) || tcpSeqGt(seg.ackNumber, this.#sndMax)) {
        this.#sendRst(seg.ackNumber, now);
        return "tcp_bad_ack";
      }
      // The window of a SYN-ACK is never scaled (RFC 7323 §2.2).
      this.#sndWnd = (flags & TcpFlags.SYN) ? seg.windowLen : seg.windowLen << this.#sndWscale;
      this.#maxSndWnd = Math.max(this.#maxSndWnd, this.#sndWnd);
      this.#sndWl1 = seg.seqNumber;
      this.#sndWl2 = seg.ackNumber;
      if (this.#timeouts > 0) this.#rtoAfterSynTimeout();
      this.#setState("ESTABLISHED", now);
      this.#host.established(this);
      this.#signal(TcpEvent.CONNECTED | TcpEvent.WRITABLE);
    }

    const ackResult = this.#processAck(seg, now);
    if (ackResult !== undefined) return ackResult;
    // #processAck may have closed the connection (LAST_ACK).
    if ((this.state as TcpState) === "CLOSED") return undefined;

    // Seventh: segment text; eighth: FIN.
    this.#processText(seg, now);
    this.#output(now);
    return undefined;
  }

  #acceptable(seq: number, len: number, wnd: number): boolean {
    const nxt = this.#rcvNxt;
    if (len === 0) {
      if (wnd === 0) return seq === nxt;
      return tcpSeqLe(nxt, seq) && tcpSeqLt(seq, (nxt + wnd) >>> 0);
    }
    if (wnd === 0) return false;
    const end = (seq + len - 1) >>> 0;
    const right = (nxt + wnd) >>> 0;
    return (tcpSeqLe(nxt, seq) && tcpSeqLt(seq, right)) ||
      (tcpSeqLe(nxt, end) && tcpSeqLt(end, right));
  }

  #inputSynSent(seg: TcpRepr, now: number): string | undefined {
    const f = seg.flags;
    const hasAck = (f & TcpFlags.ACK) !== 0;
    if (hasAck && (tcpSeqLe(seg.ackNumber, this.#iss) || tcpSeqGt(seg.ackNumber, this.#sndMax))) {
      if (f & TcpFlags.RST) return "tcp_rst_out_of_window";
      this.#sendRst(seg.ackNumber, now);
      return "tcp_bad_ack";
    }
    if (f & TcpFlags.RST) {
      if (!hasAck) return "tcp_rst_out_of_window"; // RFC 5961 §3.2 / RFC 9293: RST without ACK ignored
      this.#finish("ECONNREFUSED", now);
      return undefined;
    }
    if (!(f & TcpFlags.SYN)) return "tcp_no_syn";
    this.#irs = seg.seqNumber;
    this.#rcvNxt = (seg.seqNumber + 1) >>> 0;
    this.#negotiate(seg, now);
    if (hasAck) {
      // Our SYN is acknowledged: RTT sample (Karn: only if it was not retransmitted).
      if (this.#timeouts === 0) this.#rtt.sample(now - this.#lastSendAt);
      else this.#rtoAfterSynTimeout();
      this.#rtt.resetBackoff();
      this.#timeouts = 0;
      this.#sndUna = seg.ackNumber;
      this.#sndWnd = seg.windowLen; // never scaled in a SYN-ACK (RFC 7323 §2.2)
      this.#maxSndWnd = this.#sndWnd;
      this.#sndWl1 = seg.seqNumber;
      this.#sndWl2 = seg.ackNumber;
      this.#rtoAt = undefined;
      this.#setState("ESTABLISHED", now);
      this.#signal(TcpEvent.CONNECTED | TcpEvent.WRITABLE);
      this.#rcvAdvRight = (this.#rcvNxt + Math.min(65535, this.config.recvBufferBytes)) >>> 0;
      this.#ackNow = true;
      this.#processText(seg, now);
      this.#output(now);
      return undefined;
    }
    // Simultaneous open (RFC 9293 §3.5, figure 8): SYN_RECEIVED, answer with SYN-ACK.
    this.#sndWnd = seg.windowLen;
    this.#maxSndWnd = this.#sndWnd;
    this.#sndWl1 = seg.seqNumber;
    this.#setState("SYN_RECEIVED", now);
    this.#sendSyn(now, true);
    return undefined;
  }

  /** RFC 9293 §3.10.7.4 "fifth, check the ACK field", with RFC 5961 §5.2. */
  #processAck(seg: TcpRepr, now: number): string | undefined {
    const ack = seg.ackNumber;
    // RFC 5961 §5.2: acceptable if SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT.
    if (tcpSeqGt(ack, this.#sndMax)) {
      this.#sendAck(now);
      return "tcp_ack_unsent";
    }
    if (tcpSeqLt(ack, (this.#sndUna - Math.max(this.#maxSndWnd, 1)) >>> 0)) {
      this.#challengeAck(now);
      return "tcp_ack_too_old";
    }

    if (this.#sackEnabled && seg.sackBlocks && seg.sackBlocks.length > 0) {
      const b = seg.sackBlocks;
      // RFC 2883 §4: a D-SACK's first block lies below the cumulative ACK or inside the second.
      const dsack = tcpSeqLe(b[0].right, ack) ||
        (b.length > 1 && tcpSeqGe(b[0].left, b[1].left) && tcpSeqLe(b[0].right, b[1].right));
      if (dsack) this.#onDsack(b[0].left, b[0].right);
      this.#scoreboard.update(seg.sackBlocks, ack, this.#sndMax);
    }

    const windowField = (seg.flags & TcpFlags.SYN)
      ? seg.windowLen
      : seg.windowLen << this.#sndWscale;
    const windowChanged = windowField !== this.#sndWnd;
    if (tcpSeqGt(ack, this.#sndUna)) {
      this.#newAck(seg, ack, now);
    } else if (
      ack === this.#sndUna && seg.payload.length === 0 && !(seg.flags & TcpFlags.FIN) &&
      !windowChanged && this.#sndMax !== this.#sndUna
    ) {
      this.#dupAck(now);
    }

    // Window update (RFC 9293 §3.10.7.4: SND.WL1 < SEG.SEQ, or equal and SND.WL2 =< SEG.ACK).
    if (
      tcpSeqLt(this.#sndWl1, seg.seqNumber) ||
      (this.#sndWl1 === seg.seqNumber && tcpSeqLe(this.#sndWl2, ack))
    ) {
      const wasZero = this.#sndWnd === 0;
      this.#sndWnd = windowField;
      this.#sndWl1 = seg.seqNumber;
      this.#sndWl2 = ack;
      if (this.#sndWnd > this.#maxSndWnd) this.#maxSndWnd = this.#sndWnd;
      if (wasZero && this.#sndWnd > 0) {
        this.#persistAt = undefined;
        this.#persistBackoff = 0;
      }
    }

    // State changes driven by our FIN being acknowledged.
    const finAcked = this.#finAcked;
    switch (this.state) {
      case "FIN_WAIT_1":
        if (finAcked) {
          this.#setState("FIN_WAIT_2", now);
          if (this.#orphaned) this.#finWait2At = now + this.config.finWait2TimeoutMs;
        }
        break;
      case "CLOSING":
        if (finAcked) this.#enterTimeWait(now);
        break;
      case "LAST_ACK":
        if (finAcked) {
          this.#finish(undefined, now);
          return undefined;
        }
        break;
      case "TIME_WAIT":
        break;
    }
    return undefined;
  }

  /** The sequence number of our FIN (after all queued data). */
  #finSeq(): number {
    return (this.#dataStart() + this.#sendBuf.length) >>> 0;
  }

  /** The sequence number of the first byte in the send buffer. */
  #dataStart(): number {
    // Before our SYN is acknowledged SND.UNA is the SYN itself; after our FIN is, it is past the FIN.
    if (this.#sndUna === this.#iss) return (this.#iss + 1) >>> 0;
    return this.#finAcked ? (this.#sndUna - 1) >>> 0 : this.#sndUna;
  }

  #newAck(seg: TcpRepr, ack: number, now: number): void {
    const prevUna = this.#sndUna;
    const acked = (ack - prevUna) >>> 0;
    const inFlightBefore = (this.#sndMax - prevUna) >>> 0;
    // Bytes of data acknowledged (SYN and FIN take sequence space but are not in the buffer).
    let dataAcked = acked;
    if (prevUna === this.#iss) dataAcked--; // our SYN
    if (this.#finSeqNo !== undefined && tcpSeqGt(ack, this.#finSeqNo)) {
      this.#finAcked = true;
      dataAcked--; // our FIN
    }
    if (dataAcked > this.#sendBuf.length) dataAcked = this.#sendBuf.length;
    if (dataAcked > 0) this.#sendBuf.consume(dataAcked);
    this.#sndUna = ack;
    if (tcpSeqLt(this.#sndNxt, ack)) this.#sndNxt = ack;
    if (tcpSeqLt(this.#highRxt, ack)) this.#highRxt = ack;
    this.#scoreboard.advance(ack);
    this.#stats.bytesAcked += dataAcked;
    this.#dupAcks = 0;

    // RTT (RFC 6298 §3 with Karn's rule; RFC 7323 §4 with timestamps).
    let rttSample: number | undefined;
    if (this.#tsEnabled && seg.timestamp && seg.timestamp.echo !== 0) {
      const echoed = seg.timestamp.echo;
      const delta = (this.#tsNow(now) - echoed) >>> 0;
      if (delta < 0x7fffffff) rttSample = delta;
    } else if (this.#rttSeq !== undefined && tcpSeqGe(ack, this.#rttSeq)) {
      rttSample = now - this.#rttSentAt;
    }
    if (this.#rttSeq !== undefined && tcpSeqGe(ack, this.#rttSeq)) this.#rttSeq = undefined;
    if (rttSample !== undefined && this.#timeouts === 0) this.#rtt.sample(Math.max(rttSample, 0));
    this.#timeouts = 0;
    this.#rtt.resetBackoff();

    // Congestion control and recovery (RFC 5681, RFC 6582, RFC 6675).
    if (this.#inRecovery) {
      if (tcpSeqGe(ack, this.#recoveryPoint)) {
        this.#inRecovery = false;
        this.#rxtLog.length = 0;
        this.#cc.onRecoveryExit(now, (this.#sndMax - ack) >>> 0);
      } else {
        // Partial ACK (RFC 6582 §3.2 step 4): retransmit the next hole now. Without SACK
        // the next hole starts at the new SND.UNA.
        if (!this.#sackEnabled) this.#highRxt = ack;
        this.#retransmitHole(now);
      }
    } else if (dataAcked > 0) {
      this.#cc.onAck(dataAcked, now, rttSample, inFlightBefore);
    }

    // Retransmission timer (RFC 6298 §5.2, §5.3), and the tail loss probe (RFC 8985 §7).
    this.#tlpOutstanding = false;
    if (this.#sndUna === this.#sndMax) {
      this.#rtoAt = undefined;
      this.#tlpAt = undefined;
    } else {
      this.#rtoAt = now + this.#rtt.currentRto;
      this.#armTlp(now);
    }

    if (dataAcked > 0) this.#signal(TcpEvent.WRITABLE);
  }

  /** A D-SACK for `[left, right)`: if it covers one of our retransmissions, the network reorders. */
  #onDsack(left: number, right: number): void {
    this.#stats.dsacks++;
    for (const r of this.#recentRxt) {
      if (tcpSeqLt(left, r.end) && tcpSeqLt(r.seq, right)) {
        this.#stats.spuriousRetransmits++;
        this.#reordering = Math.min(this.#reordering * 2, MAX_REORDERING);
        return;
      }
    }
  }

  #dupAck(now: number): void {
    this.#dupAcks++;
    if (this.#inRecovery) return; // the output loop's pipe estimate accounts for it
    // RFC 6582 §3.2 step 2: no new fast retransmit for data sent before the last RTO.
    if (tcpSeqLt(this.#sndUna, this.#recoveryPoint)) return;
    const sackTrigger = this.#sackEnabled &&
      this.#scoreboard.sackedBytes >= this.#reordering * this.#sendMss;
    if (this.#dupAcks >= this.#reordering || sackTrigger) {
      // Fast retransmit (RFC 5681 §3.2 steps 2-3; RFC 6675 §5 step 4).
      this.#inRecovery = true;
      this.#tlpAt = undefined;
      this.#recoveryPoint = this.#sndMax;
      this.#highRxt = this.#sndUna;
      this.#cc.onCongestionEvent(now, this.#flightSize());
      this.#stats.fastRetransmits++;
      this.#retransmitHole(now);
    }
  }

  #flightSize(): number {
    return (this.#sndMax - this.#sndUna) >>> 0;
  }

  /** Sends the first unSACKed, not yet retransmitted segment below the recovery point. */
  #retransmitHole(now: number): boolean {
    let seq = tcpSeqLt(this.#highRxt, this.#sndUna) ? this.#sndUna : this.#highRxt;
    for (;;) {
      const end = this.#scoreboard.sackedRangeEnd(seq);
      if (end === undefined) break;
      seq = end;
    }
    if (!tcpSeqLt(seq, this.#sndMax)) return false;
    // RFC 6675 §5 NextSeg: only data below the highest SACKed byte can be deemed lost.
    const highSacked = this.#scoreboard.highestSacked;
    if (highSacked !== undefined && !tcpSeqLt(seq, highSacked)) return false;
    const limit = this.#scoreboard.nextSackedStart(seq) ?? this.#sndMax;
    const sent = this.#sendData(seq, limit, now, true);
    if (sent === 0) return false;
    this.#highRxt = (seq + sent) >>> 0;
    if (this.#inRecovery && this.#sackEnabled) {
      if (this.#rxtLog.length >= 512) this.#rxtLog.shift();
      this.#rxtLog.push({ seq, end: (seq + sent) >>> 0, at: now });
    }
    // RFC 6675 §6 (as Linux and BSD): re-arm the timer on each recovery retransmission, so a
    // recovery longer than one RTO does not end in a spurious timeout.
    this.#rtoAt = now + this.#rtt.currentRto;
    return true;
  }

  /** RFC 9293 §3.10.7.4 "seventh, process the segment text" and "eighth, check the FIN bit". */
  #processText(seg: TcpRepr, now: number): void {
    const st = this.state;
    const canReceive = st === "ESTABLISHED" || st === "FIN_WAIT_1" || st === "FIN_WAIT_2";
    let payload = seg.payload;
    let seq = seg.seqNumber;
    if (seg.flags & TcpFlags.SYN) seq = (seq + 1) >>> 0;
    if (canReceive && payload.length > 0 && !this.#recvFin) {
      // Trim what we already have (RFC 9293 §3.10.7.4: "trimmed ... to the window").
      const behind = (this.#rcvNxt - seq) | 0;
      if (behind > 0) {
        payload = payload.subarray(Math.min(behind, payload.length));
        seq = this.#rcvNxt;
      }
      const wnd = Math.max(0, (this.#rcvAdvRight - seq) | 0);
      if (payload.length > wnd) payload = payload.subarray(0, wnd);
      if (payload.length > 0) {
        if (seq === this.#rcvNxt) {
          this.#deliver(payload);
          if (this.#reasm.bufferedBytes > 0) {
            // pop() lends views of its ring: keep copies.
            this.#reasm.pop(this.#rcvNxt, (chunk) => this.#deliver(chunk.slice()));
            this.#ackNow = true; // a hole was filled (RFC 5681 §4.2)
          }
          if (this.#orphaned) {
            // Data for an application that is gone (RFC 9293 §3.10.4, RFC 2525 §2.17).
            this.abort(now);
            return;
          }
          this.#ackPendingSegs++;
          if (this.#ackPendingSegs >= 2 || this.#reasm.bufferedBytes > 0) this.#ackNow = true;
          else if (this.#delAckAt === undefined) this.#delAckAt = now + this.config.delayedAckMs;
        } else {
          // Out of order: keep it and send a duplicate ACK with SACK now (RFC 5681 §4.2).
          this.#reasm.add(
            seq,
            payload,
            this.#rcvNxt,
            Math.max(0, (this.#rcvAdvRight - this.#rcvNxt) | 0),
          );
          this.#ackNow = true;
        }
      }
    } else if (payload.length > 0) {
      this.#ackNow = true;
    }

    if (seg.flags & TcpFlags.FIN) {
      const finSeq = (seg.seqNumber + ((seg.flags & TcpFlags.SYN) ? 1 : 0) + seg.payload.length) >>>
        0;
      if (finSeq === this.#rcvNxt) this.#receiveFin(now);
      else if (tcpSeqGt(finSeq, this.#rcvNxt)) this.#pendingFinSeq = finSeq;
      this.#ackNow = true;
    } else if (this.#pendingFinSeq !== undefined && this.#pendingFinSeq === this.#rcvNxt) {
      this.#receiveFin(now);
    }
  }

  #deliver(chunk: Uint8Array): void {
    this.#recvQueue.push(chunk);
    this.#recvQueued += chunk.length;
    this.#rcvNxt = (this.#rcvNxt + chunk.length) >>> 0;
    this.#stats.bytesReceived += chunk.length;
    this.#signal(TcpEvent.READABLE);
  }

  #receiveFin(now: number): void {
    if (this.#recvFin) return;
    this.#recvFin = true;
    this.#pendingFinSeq = undefined;
    this.#rcvNxt = (this.#rcvNxt + 1) >>> 0;
    this.#ackNow = true;
    this.#signal(TcpEvent.READABLE);
    switch (this.state) {
      case "SYN_RECEIVED":
      case "ESTABLISHED":
        this.#setState("CLOSE_WAIT", now);
        break;
      case "FIN_WAIT_1":
        if (this.#finAcked) this.#enterTimeWait(now);
        else this.#setState("CLOSING", now);
        break;
      case "FIN_WAIT_2":
        this.#enterTimeWait(now);
        break;
    }
  }

  // --------------------------------------------------------------- output

  #synchronized(): boolean {
    return this.state !== "SYN_SENT" && this.state !== "SYN_RECEIVED" && this.state !== "CLOSED";
  }

  /** Sends what the windows allow, then an ACK if one is owed (RFC 9293 §3.8.6, RFC 5681). */
  #output(now: number): void {
    if (!this.#synchronized() || this.state === "TIME_WAIT") {
      if (this.#ackNow) this.#sendAck(now);
      return;
    }
    // RFC 5681 §4.1: restart after an idle period longer than the RTO.
    if (this.#sndUna === this.#sndMax && now - this.#lastSendAt > this.#rtt.currentRto) {
      this.#cc.onIdleRestart(now);
    }
    let sentAny = false;
    if (this.#inRecovery) sentAny = this.#recoveryOutput(now);
    for (;;) {
      const dataEnd = (this.#dataStart() + this.#sendBuf.length) >>> 0;
      const unsent = Math.max(0, (dataEnd - this.#sndNxt) | 0);
      const inFlight = this.#pipe();
      const cwnd = this.#cc.cwnd;
      const wndRight = (this.#sndUna + this.#sndWnd) >>> 0;
      const usableWnd = Math.max(0, (wndRight - this.#sndNxt) | 0);
      const usableCwnd = Math.max(0, cwnd - inFlight);
      let len = Math.min(unsent, this.#sendMss, usableWnd, usableCwnd);
      const finReady = this.#finQueued && !this.#finAcked && unsent === 0 &&
        this.#sndNxt === dataEnd;
      if (len > 0) {
        // Sender-side SWS avoidance and Nagle (RFC 9293 §3.8.6.2.1, §3.7.4).
        const full = len === this.#sendMss;
        const allQueued = len === unsent;
        const nothingInFlight = this.#sndMax === this.#sndUna;
        const halfWindow = len >= this.#maxSndWnd / 2 && this.#maxSndWnd > 0;
        const retransmitting = tcpSeqLt(this.#sndNxt, this.#sndMax);
        const nagleOk = this.config.noDelay || nothingInFlight || this.#finQueued;
        if (!(full || retransmitting || halfWindow || (allQueued && nagleOk))) len = 0;
      }
      if (len > 0) {
        let seq = this.#sndNxt;
        // After an RTO, skip what the receiver already SACKed.
        const skip = this.#scoreboard.sackedRangeEnd(seq);
        if (skip !== undefined) {
          this.#sndNxt = skip;
          continue;
        }
        const limit = tcpSeqLt(seq, this.#sndMax)
          ? (this.#scoreboard.nextSackedStart(seq) ?? this.#sndMax)
          : dataEnd;
        const sent = this.#sendData(
          seq,
          (Math.min((limit - seq) >>> 0, len) + seq) >>> 0,
          now,
          false,
        );
        if (sent === 0) break;
        seq = (seq + sent) >>> 0;
        this.#sndNxt = seq;
        if (tcpSeqGt(seq, this.#sndMax)) this.#sndMax = seq;
        sentAny = true;
        continue;
      }
      if (finReady && usableWnd >= 0 && (this.#sndWnd > 0 || this.#sndMax === this.#sndUna)) {
        this.#sendFin(now);
        sentAny = true;
      }
      break;
    }
    // Zero window with data waiting and nothing in flight: persist (RFC 9293 §3.8.6.1). A
    // window too small to use (sender SWS avoidance) also arms it, as the override timeout.
    const dataEnd = (this.#dataStart() + this.#sendBuf.length) >>> 0;
    const waiting = tcpSeqLt(this.#sndNxt, dataEnd) ||
      (this.#finQueued && !this.#finAcked && this.#sndNxt === dataEnd);
    if (waiting && this.#sndMax === this.#sndUna) {
      if (this.#persistAt === undefined) this.#persistAt = now + this.#persistInterval();
      this.#rtoAt = undefined;
    }
    if (this.#ackNow && !sentAny) this.#sendAck(now);
  }

  /** RFC 6675-style recovery: holes first, then new data, while the pipe is below cwnd. */
  #recoveryOutput(now: number): boolean {
    let sent = this.#resendLostRetransmissions(now);
    for (let guard = 0; guard < 1000; guard++) {
      if (this.#pipe() >= this.#cc.cwnd) break;
      if (!this.#sackEnabled) break; // NewReno retransmits one hole per partial ACK only
      const highSacked = this.#scoreboard.highestSacked;
      if (highSacked === undefined || !tcpSeqLt(this.#highRxt, highSacked)) break;
      if (!this.#retransmitHole(now)) break;
      sent = true;
    }
    return sent;
  }

  /**
   * Lost-retransmission detection: RFC 6675 retransmits each hole once per
   * recovery, so a lost retransmission would wait for the RTO. While ACKs keep
   * arriving (the network delivers), a retransmitted hole still open after
   * 1.5 smoothed RTTs plus a margin was lost again and is resent, in the
   * spirit of RACK (RFC 8985 §6.2) with the retransmission time as the clock.
   */
  #resendLostRetransmissions(now: number): boolean {
    const log = this.#rxtLog;
    while (log.length > 0 && tcpSeqLe(log[0].end, this.#sndUna)) log.shift();
    if (log.length === 0) return false;
    const wait = (this.#rtt.srtt ?? this.#rtt.rto) * 1.5 + 5;
    let sent = false;
    for (const e of log) {
      if (this.#pipe() >= this.#cc.cwnd) break;
      if (now - e.at < wait) continue;
      let seq = tcpSeqLt(e.seq, this.#sndUna) ? this.#sndUna : e.seq;
      const sackedEnd = this.#scoreboard.sackedRangeEnd(seq);
      if (sackedEnd !== undefined) seq = sackedEnd;
      if (!tcpSeqLt(seq, e.end)) continue;
      const limit = this.#scoreboard.nextSackedStart(seq) ?? e.end;
      const end = tcpSeqLt(limit, e.end) ? limit : e.end;
      if (this.#sendData(seq, end, now, true) > 0) {
        e.at = now;
        sent = true;
      }
    }
    return sent;
  }

  /**
   * Bytes in the network (RFC 6675 §4 "pipe", simplified): unSACKed bytes up to
   * HighRxt were (re)sent and count; unSACKed bytes between HighRxt and the
   * highest SACK are deemed lost; everything above the highest SACK counts.
   * Without SACK, each duplicate ACK in recovery means a segment left.
   */
  #pipe(): number {
    const una = this.#sndUna;
    const max = this.#sndMax;
    if (!this.#inRecovery) {
      // After an RTO SND.NXT went back to SND.UNA: what lies beyond it is deemed lost.
      const nxt = this.#sndNxt;
      return ((nxt - una) >>> 0) - this.#scoreboard.sackedBetween(una, nxt);
    }
    const highSacked = this.#scoreboard.highestSacked;
    if (!this.#sackEnabled || highSacked === undefined) {
      return Math.max(0, ((max - una) >>> 0) - this.#dupAcks * this.#sendMss);
    }
    const rxt = tcpSeqGt(this.#highRxt, una) ? this.#highRxt : una;
    const retransmitted = ((rxt - una) >>> 0) - this.#scoreboard.sackedBetween(una, rxt);
    const above = tcpSeqGt(max, highSacked) ? (max - highSacked) >>> 0 : 0;
    return retransmitted + above;
  }

  /** Sends data `[seq, end)` in at most one MSS; returns the bytes sent. */
  #sendData(seq: number, end: number, now: number, isRetransmit: boolean): number {
    const offset = (seq - this.#dataStart()) | 0;
    const avail = this.#sendBuf.length - offset;
    const len = Math.min(this.#sendMss, (end - seq) | 0, avail);
    if (len <= 0 || offset < 0) return 0;
    const retransmission = isRetransmit || tcpSeqLt(seq, this.#sndMax);
    const payload = this.#sendBuf.peek(offset, len);
    const dataEnd = (this.#dataStart() + this.#sendBuf.length) >>> 0;
    let flags = TcpFlags.ACK;
    if (((seq + len) >>> 0) === dataEnd) flags |= TcpFlags.PSH;
    this.#emitSegment(flags, seq, payload, now);
    if (retransmission) {
      this.#stats.retransmits++;
      if (this.#recentRxt.length >= 64) this.#recentRxt.shift();
      this.#recentRxt.push({ seq, end: (seq + len) >>> 0 });
      // Karn (RFC 6298 §3): the ACK of a retransmitted timed segment is ambiguous.
      if (this.#rttSeq !== undefined && tcpSeqLt(seq, this.#rttSeq)) this.#rttSeq = undefined;
    } else if (this.#rttSeq === undefined && !this.#tsEnabled) {
      this.#rttSeq = (seq + len) >>> 0;
      this.#rttSentAt = now;
    }
    if (this.#rtoAt === undefined) this.#rtoAt = now + this.#rtt.currentRto;
    if (!retransmission && this.#tlpAt === undefined) this.#armTlp(now);
    this.#lastSendAt = now;
    return len;
  }

  #sendFin(now: number): void {
    const seq = this.#finSeq();
    this.#finSeqNo = seq;
    this.#emitSegment(TcpFlags.FIN | TcpFlags.ACK, seq, EMPTY, now);
    const next = (seq + 1) >>> 0;
    this.#sndNxt = next;
    if (tcpSeqGt(next, this.#sndMax)) this.#sndMax = next;
    if (this.#rtoAt === undefined) this.#rtoAt = now + this.#rtt.currentRto;
    this.#lastSendAt = now;
    if (this.state === "ESTABLISHED") this.#setState("FIN_WAIT_1", now);
    else if (this.state === "CLOSE_WAIT") this.#setState("LAST_ACK", now);
  }

  #sendAck(now: number): void {
    this.#emitSegment(TcpFlags.ACK, this.#sndNxt, EMPTY, now);
  }

  /** RFC 5961 §7: a rate-limited ACK in answer to a suspicious RST, SYN or ACK. */
  #challengeAck(now: number): void {
    if (!this.#host.allowChallengeAck(now)) return;
    this.#stats.challengeAcks++;
    this.#sendAck(now);
  }

  #sendRst(seq: number, now: number): void {
    this.#emit({
      srcPort: this.localPort,
      dstPort: this.remotePort,
      seqNumber: seq,
      ackNumber: 0,
      flags: TcpFlags.RST,
      windowLen: 0,
      payload: EMPTY,
    }, now);
  }

  /** The receive window we can offer: free buffer, capped by the scale's range. */
  #advertisableWindow(): number {
    const free = Math.max(0, this.config.recvBufferBytes - this.#recvQueued);
    return Math.min(free, 65535 << this.#rcvWscale);
  }

  /** Builds and emits a segment carrying ACK, window, timestamps and SACK blocks. */
  #emitSegment(flags: number, seq: number, payload: Uint8Array, now: number): void {
    // Receiver-side SWS avoidance (RFC 9293 §3.8.6.2.2): move the right edge only by a
    // useful amount, and never shrink the window (RFC 7323 §2.4).
    const free = this.#advertisableWindow();
    let right = (this.#rcvNxt + free) >>> 0;
    const grow = (right - this.#rcvAdvRight) | 0;
    if (grow < Math.min(this.config.recvBufferBytes / 2, this.#sendMss) && grow > 0 && free > 0) {
      right = this.#rcvAdvRight;
    }
    if (tcpSeqLt(right, this.#rcvAdvRight)) right = this.#rcvAdvRight;
    const wnd = Math.max(0, (right - this.#rcvNxt) | 0);
    const shift = this.#rcvWscale;
    const field = Math.min(65535, (wnd + (1 << shift) - 1) >>> shift);
    this.#rcvAdvRight = (this.#rcvNxt + (field << shift)) >>> 0;
    const repr: TcpRepr = {
      srcPort: this.localPort,
      dstPort: this.remotePort,
      seqNumber: seq,
      ackNumber: this.#rcvNxt,
      flags,
      windowLen: field,
      payload,
    };
    if (this.#tsEnabled) repr.timestamp = { value: this.#tsNow(now), echo: this.#tsRecent };
    if (this.#sackEnabled && this.#reasm.rangeCount > 0) {
      repr.sackBlocks = this.#reasm.sackBlocks(this.#tsEnabled ? 3 : 4);
    }
    this.#lastAckSent = this.#rcvNxt;
    this.#ackPendingSegs = 0;
    this.#ackNow = false;
    this.#delAckAt = undefined;
    this.#emit(repr, now);
  }

  #emit(repr: TcpRepr, now: number): void {
    this.#stats.segmentsOut++;
    this.#host.emit(this, repr, now);
    if (this.config.keepaliveIdleMs > 0 && this.#synchronized()) {
      this.#keepaliveAt = now + this.config.keepaliveIdleMs;
    }
  }

  #tsNow(now: number): number {
    return (Math.floor(now) + this.#tsOffset) >>> 0;
  }

  /** RFC 6298 §5.7: after the SYN or SYN-ACK timed out, data starts with an RTO of at least 3 s. */
  #rtoAfterSynTimeout(): void {
    if (this.#rtt.srtt !== undefined || this.#rtt.rto >= 3000) return;
    const c = this.config;
    this.#rtt = new RttEstimator({
      initialRtoMs: Math.min(3000, c.maxRtoMs),
      minRtoMs: c.minRtoMs,
      maxRtoMs: c.maxRtoMs,
    });
  }

  #persistInterval(): number {
    const base = Math.max(this.#rtt.rto, 200);
    return Math.min(MAX_PERSIST_MS, base * 2 ** this.#persistBackoff);
  }

  // ---------------------------------------------------------------- timers

  /** The earliest deadline of this connection's timers, or undefined. */
  nextDeadline(): number | undefined {
    // Called for every connection after every core entry: no allocation here.
    let d = earlier(this.#rtoAt, this.#tlpAt);
    d = earlier(d, this.#delAckAt);
    d = earlier(d, this.#persistAt);
    d = earlier(d, this.#keepaliveAt);
    d = earlier(d, this.#timeWaitAt);
    return earlier(d, this.#finWait2At);
  }

  /**
   * Arms the tail loss probe (RFC 8985 §7.2): PTO = 2·SRTT (at least 10 ms),
   * plus the peer's delayed-ACK allowance when one segment is in flight, and
   * only if it fires before the RTO.
   */
  #armTlp(now: number): void {
    const srtt = this.#rtt.srtt;
    if (srtt === undefined || this.#inRecovery || this.#tlpOutstanding || !this.#sackEnabled) {
      this.#tlpAt = undefined;
      return;
    }
    let pto = Math.max(2 * srtt, 10);
    if (this.#flightSize() <= this.#sendMss) pto += 50;
    const at = now + pto;
    this.#tlpAt = this.#rtoAt !== undefined && at >= this.#rtoAt ? undefined : at;
  }

  /**
   * The probe (RFC 8985 §7.3): new data if the receiver's window allows,
   * otherwise the last segment again, so that the ACK it draws carries the
   * SACK information that starts fast recovery instead of an RTO.
   */
  #sendTlp(now: number): void {
    if (this.#inRecovery || this.#sndUna === this.#sndMax || !this.#synchronized()) return;
    if (this.#finSeqNo !== undefined) return; // the FIN is out: leave the tail to the RTO
    const dataEnd = (this.#dataStart() + this.#sendBuf.length) >>> 0;
    const wndRight = (this.#sndUna + this.#sndWnd) >>> 0;
    let sent = 0;
    if (
      this.#sndNxt === this.#sndMax && tcpSeqLt(this.#sndNxt, dataEnd) &&
      tcpSeqLt(this.#sndNxt, wndRight)
    ) {
      sent = this.#sendData(this.#sndNxt, dataEnd, now, false);
      this.#sndNxt = (this.#sndNxt + sent) >>> 0;
      this.#sndMax = this.#sndNxt;
    }
    if (sent === 0) {
      const back = (this.#sndMax - this.#sendMss) >>> 0;
      const start = tcpSeqGt(back, this.#sndUna) ? back : this.#sndUna;
      sent = this.#sendData(start, this.#sndMax, now, true);
    }
    if (sent > 0) {
      this.#tlpOutstanding = true;
      this.#tlpAt = undefined;
      this.#rtoAt = now + this.#rtt.currentRto;
    }
  }

  /** Fires the timers due at `now`. */
  poll(now: number): void {
    if (this.#tlpAt !== undefined && now >= this.#tlpAt) {
      this.#tlpAt = undefined;
      this.#sendTlp(now);
    }
    if (this.#timeWaitAt !== undefined && now >= this.#timeWaitAt) {
      this.#timeWaitAt = undefined;
      this.#finish(undefined, now);
      return;
    }
    if (this.#finWait2At !== undefined && now >= this.#finWait2At) {
      this.#finWait2At = undefined;
      if (this.state === "FIN_WAIT_2") {
        this.#finish(undefined, now);
        return;
      }
    }
    if (this.#rtoAt !== undefined && now >= this.#rtoAt) {
      this.#rtoAt = undefined;
      this.#onRetransmissionTimeout(now);
      if (this.state === "CLOSED") return;
    }
    if (this.#persistAt !== undefined && now >= this.#persistAt) {
      this.#persistAt = undefined;
      if (this.#sndWnd === 0) {
        // Zero-window probe: an old sequence number makes the peer answer with its window.
        this.#emitSegment(TcpFlags.ACK, (this.#sndUna - 1) >>> 0, EMPTY, now);
        this.#persistBackoff = Math.min(this.#persistBackoff + 1, 16);
        this.#persistAt = now + this.#persistInterval();
      } else if (this.#sndMax === this.#sndUna) {
        // Override timeout of sender SWS avoidance (RFC 9293 §3.8.6.2.1): use the small window.
        const sent = this.#sendData(this.#sndNxt, (this.#sndUna + this.#sndWnd) >>> 0, now, false);
        this.#sndNxt = (this.#sndNxt + sent) >>> 0;
        if (tcpSeqGt(this.#sndNxt, this.#sndMax)) this.#sndMax = this.#sndNxt;
      }
    }
    if (this.#delAckAt !== undefined && now >= this.#delAckAt) {
      this.#delAckAt = undefined;
      this.#sendAck(now);
    }
    if (this.#keepaliveAt !== undefined && now >= this.#keepaliveAt) {
      this.#keepaliveAt = undefined;
      this.#onKeepalive(now);
    }
  }

  #onRetransmissionTimeout(now: number): void {
    this.#timeouts++;
    this.#stats.timeouts++;
    const limit = this.state === "SYN_SENT"
      ? this.config.synRetries
      : this.state === "SYN_RECEIVED"
      ? this.config.synAckRetries
      : this.config.maxRetransmits;
    if (this.#timeouts > limit) {
      this.#finish("ETIMEDOUT", now);
      return;
    }
    this.#rtt.backoff();
    if (this.state === "SYN_SENT" || this.state === "SYN_RECEIVED") {
      this.#stats.retransmits++;
      this.#sendSyn(now, this.state === "SYN_RECEIVED");
      this.#rtoAt = now + this.#rtt.currentRto;
      return;
    }
    if (this.#sndUna === this.#sndMax) return;
    // RFC 5681 §3.1 eq. 4 and RFC 6298 §5.4-5.6: collapse cwnd, go back to SND.UNA.
    this.#cc.onRetransmissionTimeout(now, this.#flightSize());
    this.#inRecovery = false;
    this.#rxtLog.length = 0;
    this.#tlpAt = undefined;
    this.#recoveryPoint = this.#sndMax; // RFC 6582 §3.2 step 4: recover = highest sent
    this.#dupAcks = 0;
    this.#rttSeq = undefined;
    this.#sndNxt = this.#sndUna;
    this.#highRxt = this.#sndUna;
    this.#rtoAt = now + this.#rtt.currentRto;
    // Retransmit the first segment now, even into a closed window (it is a probe then).
    const dataEnd = (this.#dataStart() + this.#sendBuf.length) >>> 0;
    if (tcpSeqLt(this.#sndNxt, dataEnd)) {
      const sent = this.#sendData(this.#sndNxt, dataEnd, now, true);
      this.#sndNxt = (this.#sndNxt + sent) >>> 0;
    } else if (this.#finQueued) {
      this.#stats.retransmits++;
      this.#sendFin(now);
    }
    this.#output(now);
  }

  #onKeepalive(now: number): void {
    if (this.state !== "ESTABLISHED" && this.state !== "CLOSE_WAIT") return;
    if (this.#sndUna !== this.#sndMax) {
      this.#keepaliveAt = now + this.config.keepaliveIdleMs;
      return;
    }
    if (this.#keepaliveSent >= this.config.keepaliveProbes) {
      this.#finish("ETIMEDOUT", now);
      return;
    }
    this.#keepaliveSent++;
    this.#emitSegment(TcpFlags.ACK, (this.#sndUna - 1) >>> 0, EMPTY, now);
    this.#keepaliveAt = now + this.config.keepaliveIntervalMs;
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
    if (!this.#synchronized() || this.state === "TIME_WAIT") return false;
    if (tcpSeqLt(seq, this.#sndUna) || !tcpSeqLt(seq, this.#sndMax)) return false;
    if (!Number.isInteger(mtu) || mtu < 576) return false;
    const mss = mtu - 40 - (this.#tsEnabled ? 12 : 0);
    if (mss >= this.#sendMss) return false;
    this.#setSendMss(mss);
    this.#rttSeq = undefined;
    this.#sndNxt = this.#sndUna;
    this.#highRxt = this.#sndUna;
    this.#output(now);
    return true;
  }

  /** Called by the layer for every segment that reached this connection (keepalive reset). */
  noteActivity(now: number): void {
    this.#keepaliveSent = 0;
    if (this.config.keepaliveIdleMs > 0 && this.#synchronized()) {
      this.#keepaliveAt = now + this.config.keepaliveIdleMs;
    }
  }

  // ---------------------------------------------------------------- states

  #setState(state: TcpState, now: number): void {
    this.state = state;
    // Keepalive idle time starts when the connection is established (RFC 9293 §3.8.4).
    if (state === "ESTABLISHED" && this.config.keepaliveIdleMs > 0) {
      this.#keepaliveAt = now + this.config.keepaliveIdleMs;
    }
  }

  #enterTimeWait(now: number): void {
    this.#setState("TIME_WAIT", now);
    this.#rtoAt = undefined;
    this.#persistAt = undefined;
    this.#keepaliveAt = undefined;
    this.#finWait2At = undefined;
    this.#delAckAt = undefined;
    this.#timeWaitAt = now + this.config.timeWaitMs;
    this.#signal(TcpEvent.READABLE);
    this.#host.enteredTimeWait(this);
  }

  /** Whether a new SYN may take over this TIME_WAIT connection (RFC 9293 §3.10.7.4, RFC 6191). */
  acceptsNewSyn(seg: TcpRepr): boolean {
    if (this.state !== "TIME_WAIT") return false;
    if (this.#tsEnabled && seg.timestamp) return tcpSeqGt(seg.timestamp.value, this.#tsRecent);
    return tcpSeqGt(seg.seqNumber, this.#rcvNxt);
  }

  /** The sequence number a successor connection should start beyond (RFC 9293 §3.10.7.4). */
  get sndNxt(): number {
    return this.#sndNxt;
  }

  #finish(error: NetErrorCode | undefined, _now: number): void {
    if (this.state === "CLOSED") return;
    this.state = "CLOSED";
    this.error = error;
    this.#rtoAt =
      this.#delAckAt =
      this.#persistAt =
      this.#keepaliveAt =
        undefined;
    this.#timeWaitAt = this.#finWait2At = undefined;
    this.#reasm.clear();
    this.#signal(TcpEvent.CLOSED | TcpEvent.READABLE | TcpEvent.WRITABLE);
    this.#host.closed(this);
  }

  #signal(bits: number): void {
    if (this.events === 0) this.#host.markDirty(this);
    this.events |= bits;
  }

  /** A snapshot of the connection's estimates and counters. */
  info(): TcpInfo {
    return {
      state: this.state,
      sendMss: this.#sendMss,
      rttMs: this.#rtt.srtt ?? null,
      rttVarMs: this.#rtt.rttvar ?? null,
      rtoMs: this.#rtt.currentRto,
      cwnd: this.#cc.cwnd,
      ssthresh: Number.isFinite(this.#cc.ssthresh) ? this.#cc.ssthresh : null,
      congestionControl: this.#cc.name,
      sendWindow: this.#sndWnd,
      recvWindow: Math.max(0, (this.#rcvAdvRight - this.#rcvNxt) | 0),
      sendWindowScale: this.#sndWscale,
      recvWindowScale: this.#rcvWscale,
      timestamps: this.#tsEnabled,
      sack: this.#sackEnabled,
      bytesInFlight: this.#flightSize(),
      sendQueued: this.#sendBuf.length,
      recvQueued: this.#recvQueued,
      outOfOrderBytes: this.#reasm.bufferedBytes,
      reordering: this.#reordering,
      ...this.#stats,
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
    return {
      iss: this.#iss,
      irs: this.#irs,
      sndUna: this.#sndUna,
      sndNxt: this.#sndNxt,
      sndMax: this.#sndMax,
      rcvNxt: this.#rcvNxt,
    };
  }
}

const EMPTY = new Uint8Array(0);
