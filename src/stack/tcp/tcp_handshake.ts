/**
 * Opening a TCP connection: the SYN and SYN-ACK we send, option negotiation
 * (MSS, RFC 9293 §3.7.1 and RFC 6691; window scaling and timestamps,
 * RFC 7323; SACK-permitted, RFC 2018), the send and receive variables a
 * handshake sets (RFC 9293 §3.10.7.2, §3.10.7.3), completion from a SYN
 * cookie (RFC 4987 §3.6), and the SYN's retransmission (RFC 6298 §5.7).
 *
 * @module
 */

import { TCP_MAX_WINDOW_SCALE, TcpFlags, type TcpRepr } from "../../wire/mod.ts";
import { RttEstimator } from "./rtt_estimator.ts";
import { seqAdd, seqGt, seqLe } from "./seq.ts";
import { DEFAULT_SEND_MSS, type TcpControlBlock } from "./tcp_control_block.ts";
import type { TcpReceiver } from "./tcp_receiver.ts";
import type { TcpSender } from "./tcp_sender.ts";
import { TcpTimer } from "./tcp_timers.ts";

const EMPTY = new Uint8Array(0);

/**
 * The handshake of one connection: it writes the options and initial
 * sequence variables into the TCB and sends our SYN or SYN-ACK. The state
 * changes themselves are the connection's.
 *
 * @example
 * ```ts
 * const hs = new TcpHandshake(tcb, sender, receiver);
 * hs.connect(now); // SYN sent, retransmission timer running
 * ```
 */
export class TcpHandshake {
  #tcb: TcpControlBlock;
  #sender: TcpSender;
  #receiver: TcpReceiver;
  /** The window field of our last SYN or SYN-ACK (never scaled, RFC 7323 §2.2). */
  #synWindow = 0;

  /** Creates the handshake of the connection of `tcb`; picks the window scale we offer. */
  constructor(tcb: TcpControlBlock, sender: TcpSender, receiver: TcpReceiver) {
    this.#tcb = tcb;
    this.#sender = sender;
    this.#receiver = receiver;
    if (tcb.config.windowScaling) {
      // The smallest shift whose window covers the receive buffer as large as it may grow
      // (RFC 7323 §2.3).
      let s = 0;
      while (s < TCP_MAX_WINDOW_SCALE && (65535 << s) < tcb.config.recvBufferMaxBytes) s++;
      tcb.rcvWscale = s;
    }
  }

  /** Active open (RFC 9293 §3.10.1): sends the SYN and starts its retransmission timer. */
  connect(now: number): void {
    const tcb = this.#tcb;
    tcb.sndNxt = seqAdd(tcb.iss, 1);
    tcb.sndMax = tcb.sndNxt;
    this.sendSyn(now, false);
    this.#sender.restartRto(now);
  }

  /**
   * Passive open from a SYN that reached a listener (RFC 9293 §3.10.7.2):
   * records the peer's ISN and options and answers with a SYN-ACK.
   */
  acceptSyn(seg: TcpRepr, now: number): void {
    const tcb = this.#tcb;
    this.receiveSyn(seg);
    tcb.sndWnd = seg.windowLen; // never scaled in a SYN (RFC 7323 §2.2)
    tcb.maxSndWnd = tcb.sndWnd;
    tcb.sndWl1 = seg.seqNumber;
    tcb.sndWl2 = tcb.iss;
    tcb.sndNxt = seqAdd(tcb.iss, 1);
    tcb.sndMax = tcb.sndNxt;
    this.sendSyn(now, true);
    this.#sender.restartRto(now);
  }

  /**
   * The variables of a passive open completed by a valid SYN cookie
   * (RFC 4987 §3.6): the handshake's state was never stored, so only what the
   * cookie carries (the MSS) is known; window scaling, SACK and timestamps
   * stay off. `seg` is the ACK that carried the cookie.
   */
  restoreFromCookie(seg: TcpRepr, mss: number): void {
    const tcb = this.#tcb;
    tcb.irs = seqAdd(seg.seqNumber, -1);
    tcb.rcvNxt = seg.seqNumber;
    tcb.sndUna = seg.ackNumber;
    tcb.sndNxt = seg.ackNumber;
    tcb.sndMax = seg.ackNumber;
    tcb.rcvWscale = 0;
    this.#sender.setMss(Math.min(mss, tcb.mssOffer));
    tcb.sndWnd = seg.windowLen;
    tcb.maxSndWnd = tcb.sndWnd;
    tcb.sndWl1 = seg.seqNumber;
    tcb.sndWl2 = seg.ackNumber;
    // What the cookie's SYN-ACK offered, as far as it can be known again.
    tcb.rcvAdvRight = seqAdd(tcb.rcvNxt, Math.min(65535, this.#receiver.advertisableWindow()));
  }

  /** Whether `ack` acknowledges our SYN and nothing we did not send (ISS < ack <= SND.MAX). */
  acksOurSyn(ack: number): boolean {
    const tcb = this.#tcb;
    return !(seqLe(ack, tcb.iss) || seqGt(ack, tcb.sndMax));
  }

  /** The peer's SYN: its ISN sets IRS and RCV.NXT, its options are negotiated. */
  receiveSyn(syn: TcpRepr): void {
    const tcb = this.#tcb;
    tcb.irs = syn.seqNumber;
    tcb.rcvNxt = seqAdd(syn.seqNumber, 1);
    this.#negotiate(syn);
  }

  /**
   * SYN-SENT: the SYN-ACK acknowledged our SYN (RFC 9293 §3.10.7.3): an RTT
   * sample unless the SYN was retransmitted (Karn), the send window, and
   * the window we offered in our SYN.
   */
  synAcked(seg: TcpRepr, now: number): void {
    const tcb = this.#tcb;
    const sender = this.#sender;
    if (sender.timeouts === 0) sender.rtt.sample(now - sender.lastSendAt);
    else this.#rtoAfterSynTimeout();
    sender.rtt.resetBackoff();
    sender.timeouts = 0;
    tcb.sndUna = seg.ackNumber;
    tcb.sndWnd = seg.windowLen; // never scaled in a SYN-ACK (RFC 7323 §2.2)
    tcb.maxSndWnd = tcb.sndWnd;
    tcb.sndWl1 = seg.seqNumber;
    tcb.sndWl2 = seg.ackNumber;
    tcb.timers.stop(TcpTimer.RTO);
    tcb.rcvAdvRight = seqAdd(tcb.rcvNxt, this.#synWindow);
  }

  /** SYN-SENT: a SYN without ACK crossed ours (RFC 9293 §3.5 figure 8): the peer's window. */
  simultaneousOpen(seg: TcpRepr): void {
    const tcb = this.#tcb;
    tcb.sndWnd = seg.windowLen;
    tcb.maxSndWnd = tcb.sndWnd;
    tcb.sndWl1 = seg.seqNumber;
  }

  /**
   * SYN-RECEIVED: the ACK of our SYN-ACK arrived (RFC 9293 §3.10.7.4 fifth):
   * the send window (unscaled when the segment is the peer's SYN-ACK of a
   * simultaneous open, RFC 7323 §2.2).
   */
  synAckAcked(seg: TcpRepr): void {
    const tcb = this.#tcb;
    tcb.sndWnd = (seg.flags & TcpFlags.SYN) ? seg.windowLen : seg.windowLen << tcb.sndWscale;
    tcb.maxSndWnd = Math.max(tcb.maxSndWnd, tcb.sndWnd);
    tcb.sndWl1 = seg.seqNumber;
    tcb.sndWl2 = seg.ackNumber;
    if (this.#sender.timeouts > 0) this.#rtoAfterSynTimeout();
  }

  /** The retransmission timer fired in SYN-SENT or SYN-RECEIVED: the SYN (or SYN-ACK) again. */
  retransmitSyn(now: number): void {
    this.#tcb.stats.retransmits++;
    this.sendSyn(now, this.#tcb.state === "SYN_RECEIVED");
    this.#sender.restartRto(now);
  }

  #negotiate(syn: TcpRepr): void {
    const tcb = this.#tcb;
    const c = tcb.config;
    this.#sender.setMss(Math.min(syn.mss ?? DEFAULT_SEND_MSS, tcb.mssOffer));
    tcb.wsOk = c.windowScaling && syn.windowScale !== undefined;
    if (tcb.wsOk) {
      tcb.sndWscale = Math.min(syn.windowScale!, TCP_MAX_WINDOW_SCALE);
    } else {
      tcb.sndWscale = 0;
      tcb.rcvWscale = 0;
    }
    tcb.sackEnabled = c.sack && syn.sackPermitted === true;
    if (c.timestamps && syn.timestamp) {
      tcb.tsEnabled = true;
      tcb.tsRecent = syn.timestamp.value;
    } else {
      tcb.tsEnabled = false;
    }
    // RFC 6691 §2: the MSS counts no options; timestamps take 12 bytes of every segment.
    if (tcb.tsEnabled) this.#sender.setMss(tcb.sendMss - 12);
  }

  /**
   * Sends our SYN (`withAck` false) or SYN-ACK. An active open offers every
   * option the config enables; a passive one answers only what the peer
   * offered. The window of a SYN is never scaled (RFC 7323 §2.2) and, as
   * every window we offer, no more than the memory quota can hold.
   */
  sendSyn(now: number, withAck: boolean): void {
    const tcb = this.#tcb;
    const c = tcb.config;
    const conn = tcb.conn;
    const win = Math.min(65535, this.#receiver.advertisableWindow());
    this.#synWindow = win;
    const repr: TcpRepr = {
      srcPort: conn.localPort,
      dstPort: conn.remotePort,
      seqNumber: tcb.iss,
      ackNumber: withAck ? tcb.rcvNxt : 0,
      flags: TcpFlags.SYN | (withAck ? TcpFlags.ACK : 0),
      windowLen: win,
      mss: tcb.mssOffer,
      payload: EMPTY,
    };
    const active = tcb.state === "SYN_SENT";
    if (c.windowScaling && (active || tcb.wsOk)) repr.windowScale = tcb.rcvWscale;
    if (c.sack && (active || tcb.sackEnabled)) repr.sackPermitted = true;
    if (c.timestamps && (active || tcb.tsEnabled)) {
      repr.timestamp = { value: tcb.tsNow(now), echo: withAck ? tcb.tsRecent : 0 };
    }
    if (withAck) {
      tcb.lastAckSent = tcb.rcvNxt;
      tcb.rcvAdvRight = seqAdd(tcb.rcvNxt, win);
    }
    this.#sender.lastSendAt = now;
    tcb.emit(repr, now);
  }

  /** RFC 6298 §5.7: after the SYN or SYN-ACK timed out, data starts with an RTO of at least 3 s. */
  #rtoAfterSynTimeout(): void {
    const sender = this.#sender;
    if (sender.rtt.srtt !== undefined || sender.rtt.rto >= 3000) return;
    const c = this.#tcb.config;
    sender.rtt = new RttEstimator({
      initialRtoMs: Math.min(3000, c.maxRtoMs),
      minRtoMs: c.minRtoMs,
      maxRtoMs: c.maxRtoMs,
    });
  }
}
