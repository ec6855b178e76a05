/**
 * Loss recovery of a TCP connection's send side: fast retransmit on
 * duplicate ACKs (RFC 5681 §3.2) with a threshold raised by reordering
 * (D-SACK, RFC 2883 §4), NewReno partial ACKs (RFC 6582), SACK-based
 * recovery with a pipe estimate (RFC 6675), detection of lost
 * retransmissions in the spirit of RACK (RFC 8985 §6.2) and tail loss probes
 * (RFC 8985 §7) whose SACKed probe starts recovery for the tail it reveals
 * lost (§7.4). The retransmission timeout itself is the sender's.
 *
 * @module
 */

import type { TcpSackBlock } from "../../wire/mod.ts";
import { SackScoreboard } from "./sack_scoreboard.ts";
import { seqAdd, seqGe, seqLe, seqLt, seqMax, seqMin, seqSpan } from "./seq.ts";
import type { TcpControlBlock } from "./tcp_control_block.ts";
import type { TcpSender } from "./tcp_sender.ts";
import { TcpTimer } from "./tcp_timers.ts";

const DUP_ACK_THRESHOLD = 3; // RFC 5681 §3.2
const MAX_REORDERING = 64; // segments; Linux caps tcp_reordering at 300

/**
 * The loss recovery state of one connection's sender: the SACK scoreboard,
 * whether a recovery episode runs and up to where, and what was
 * retransmitted in it.
 *
 * @example
 * ```ts
 * const recovery = sender.recovery;
 * recovery.onDuplicateAck(now); // the third one starts fast retransmit
 * recovery.inRecovery; // true
 * ```
 */
export class TcpRecovery {
  /** What the receiver reported holding above SND.UNA (RFC 6675 §3). */
  readonly scoreboard: SackScoreboard = new SackScoreboard();
  /** A recovery episode runs (RFC 6675 §5, RFC 6582). */
  inRecovery = false;
  /** A tail loss probe is outstanding (RFC 8985 §7.3). */
  tlpOutstanding = false;
  /**
   * Duplicate-ACK threshold in segments: 3 (RFC 5681), raised when a D-SACK
   * shows that a retransmission was spurious, i.e. the network reorders
   * (RFC 2883 §4.2, RFC 4653's idea, as Linux's tcp_reordering).
   */
  reordering: number = DUP_ACK_THRESHOLD;
  #tcb: TcpControlBlock;
  #sender: TcpSender;
  #dupAcks = 0;
  /** RFC 6582 "recover": SND.MAX when the episode (or the last RTO) began. */
  #recoveryPoint: number;
  /** RFC 6675 HighRxt: the highest sequence number retransmitted in this episode. */
  #highRxt = 0;
  /** Holes retransmitted in the current recovery, for lost-retransmission detection. */
  #rxtLog: Array<{ seq: number; end: number; at: number }> = [];
  /** The most recent retransmitted ranges, to tell our spurious retransmissions from network duplicates. */
  #recentRxt: Array<{ seq: number; end: number }> = [];

  /** Creates the loss recovery of `sender` (the TCB's ISS must be set). */
  constructor(tcb: TcpControlBlock, sender: TcpSender) {
    this.#tcb = tcb;
    this.#sender = sender;
    this.#recoveryPoint = tcb.iss;
  }

  // ------------------------------------------------------------ ACK events

  /** SACK blocks arrived with an acceptable ACK: D-SACK check (RFC 2883 §4) and the scoreboard. */
  onSackBlocks(blocks: readonly TcpSackBlock[], ack: number): void {
    const b = blocks;
    // RFC 2883 §4: a D-SACK's first block lies below the cumulative ACK or inside the second.
    const dsack = seqLe(b[0].right, ack) ||
      (b.length > 1 && seqGe(b[0].left, b[1].left) && seqLe(b[0].right, b[1].right));
    if (dsack) this.#onDsack(b[0].left, b[0].right);
    this.scoreboard.update(blocks, ack, this.#tcb.sndMax);
  }

  /** A D-SACK for `[left, right)`: if it covers one of our retransmissions, the network reorders. */
  #onDsack(left: number, right: number): void {
    const stats = this.#tcb.stats;
    stats.dsacks++;
    for (const r of this.#recentRxt) {
      if (seqLt(left, r.end) && seqLt(r.seq, right)) {
        stats.spuriousRetransmits++;
        this.reordering = Math.min(this.reordering * 2, MAX_REORDERING);
        return;
      }
    }
  }

  /** SND.UNA advanced to `ack`: forget what lies below it. */
  onCumulativeAck(ack: number): void {
    this.#highRxt = seqMax(this.#highRxt, ack);
    this.scoreboard.advance(ack);
    this.#dupAcks = 0;
  }

  /**
   * New data was acknowledged (after {@linkcode TcpRecovery.onCumulativeAck}):
   * leaves recovery at the recovery point, retransmits the next hole on a
   * partial ACK (RFC 6582 §3.2 step 4), or lets congestion control grow.
   */
  onNewAck(
    ack: number,
    dataAcked: number,
    inFlightBefore: number,
    rttSample: number | undefined,
    now: number,
  ): void {
    const cc = this.#sender.cc;
    if (this.inRecovery) {
      if (seqGe(ack, this.#recoveryPoint)) {
        this.inRecovery = false;
        this.#rxtLog.length = 0;
        // RFC 6675 never inflated cwnd: it leaves recovery at ssthresh (as RFC 6937 §3 and
        // Linux); RFC 6582's deflation to FlightSize + SMSS is for NewReno's inflated window.
        const flight = seqSpan(ack, this.#tcb.sndMax);
        cc.onRecoveryExit(now, this.#tcb.sackEnabled ? Infinity : flight);
      } else {
        // Without SACK the next hole starts at the new SND.UNA.
        if (!this.#tcb.sackEnabled) this.#highRxt = ack;
        this.#retransmitHole(now);
      }
    } else if (this.#probeRevealsLoss()) {
      this.#enterRecovery(now);
    } else if (dataAcked > 0) {
      cc.onAck(dataAcked, now, rttSample, inFlightBefore);
    }
  }

  /**
   * RFC 8985 §7.4 with §6.2: a tail loss probe is out and the receiver
   * SACKed data above SND.UNA. The probe went out a PTO (at least two
   * smoothed RTTs) after the segments below it, so whatever the SACK leaves
   * unacknowledged below the highest SACKed byte had far longer than RACK's
   * reordering window to arrive: it is lost, and recovery starts now rather
   * than at the RTO.
   */
  #probeRevealsLoss(): boolean {
    if (!this.tlpOutstanding || !this.#tcb.sackEnabled) return false;
    const high = this.scoreboard.highestSacked;
    return high !== undefined && seqLt(this.#tcb.sndUna, high) &&
      !seqLt(this.#tcb.sndUna, this.#recoveryPoint);
  }

  /** Fast retransmit: a recovery episode up to SND.MAX (RFC 5681 §3.2, RFC 6675 §5 step 4). */
  #enterRecovery(now: number): void {
    const tcb = this.#tcb;
    this.inRecovery = true;
    this.tlpOutstanding = false;
    tcb.timers.stop(TcpTimer.TLP);
    this.#recoveryPoint = tcb.sndMax;
    this.#highRxt = tcb.sndUna;
    this.#sender.cc.onCongestionEvent(
      now,
      Math.min(this.#sender.flightSize(), this.#sender.cc.cwnd),
    );
    tcb.stats.fastRetransmits++;
    this.#retransmitHole(now);
  }

  /** A duplicate ACK (RFC 5681 §2): the threshold (or enough SACKed bytes) starts fast retransmit. */
  onDuplicateAck(now: number): void {
    const tcb = this.#tcb;
    this.#dupAcks++;
    if (this.inRecovery) return; // the output loop's pipe estimate accounts for it
    // RFC 6582 §3.2 step 2: no new fast retransmit for data sent before the last RTO.
    if (seqLt(tcb.sndUna, this.#recoveryPoint)) return;
    const sackTrigger = tcb.sackEnabled &&
      this.scoreboard.sackedBytes >= this.reordering * tcb.sendMss;
    if (this.#dupAcks >= this.reordering || sackTrigger || this.#probeRevealsLoss()) {
      // Fast retransmit (RFC 5681 §3.2 steps 2-3; RFC 6675 §5 step 4; RFC 8985 §7.4).
      this.#enterRecovery(now);
    }
  }

  /**
   * An ACK at SND.UNA with SACK blocks that is no duplicate ACK (it changed
   * the window or carried data): enough SACKed bytes (RFC 6675 §4 IsLost)
   * or a SACKed tail loss probe (RFC 8985 §7.4) start recovery all the same.
   */
  onSackInformation(now: number): void {
    const tcb = this.#tcb;
    if (this.inRecovery || seqLt(tcb.sndUna, this.#recoveryPoint)) return;
    if (
      this.scoreboard.sackedBytes >= this.reordering * tcb.sendMss || this.#probeRevealsLoss()
    ) {
      this.#enterRecovery(now);
    }
  }

  /** The retransmission timer fired: the episode ends, and SND.MAX becomes the recovery point. */
  onRetransmissionTimeout(): void {
    const tcb = this.#tcb;
    this.inRecovery = false;
    this.#rxtLog.length = 0;
    tcb.timers.stop(TcpTimer.TLP);
    this.#recoveryPoint = tcb.sndMax; // RFC 6582 §3.2 step 4: recover = highest sent
    this.#dupAcks = 0;
    this.#highRxt = tcb.sndUna;
  }

  /** The send MSS shrank and everything in flight is sent again. */
  onMtuReduced(): void {
    this.#highRxt = this.#tcb.sndUna;
  }

  /** The sender retransmitted `[seq, end)`: remembered to recognise a D-SACK for it. */
  noteRetransmission(seq: number, end: number): void {
    if (this.#recentRxt.length >= 64) this.#recentRxt.shift();
    this.#recentRxt.push({ seq, end });
  }

  // ------------------------------------------------------------ output

  /** RFC 6675-style recovery: holes first, then new data, while the pipe is below cwnd. */
  output(now: number): boolean {
    const tcb = this.#tcb;
    const cc = this.#sender.cc;
    let sent = this.#resendLostRetransmissions(now);
    for (let guard = 0; guard < 1000; guard++) {
      if (this.pipe() >= cc.cwnd) break;
      if (!tcb.sackEnabled) break; // NewReno retransmits one hole per partial ACK only
      const highSacked = this.scoreboard.highestSacked;
      if (highSacked === undefined || !seqLt(this.#highRxt, highSacked)) break;
      // Retransmissions are paced as new data is (as Linux's tcp_xmit_retransmit_queue).
      if (this.#sender.heldByPacing(now)) break;
      if (!this.#retransmitHole(now)) break;
      sent = true;
    }
    return sent;
  }

  /** Sends the first unSACKed, not yet retransmitted segment below the recovery point. */
  #retransmitHole(now: number): boolean {
    const tcb = this.#tcb;
    let seq = seqMax(this.#highRxt, tcb.sndUna);
    for (;;) {
      const end = this.scoreboard.sackedRangeEnd(seq);
      if (end === undefined) break;
      seq = end;
    }
    if (!seqLt(seq, tcb.sndMax)) return false;
    // RFC 6675 §5 NextSeg: only data below the highest SACKed byte can be deemed lost.
    const highSacked = this.scoreboard.highestSacked;
    if (highSacked !== undefined && !seqLt(seq, highSacked)) return false;
    const limit = this.scoreboard.nextSackedStart(seq) ?? tcb.sndMax;
    const sent = this.#sender.sendData(seq, limit, now, true);
    if (sent === 0) return false;
    this.#highRxt = seqAdd(seq, sent);
    if (this.inRecovery && tcb.sackEnabled) {
      if (this.#rxtLog.length >= 512) this.#rxtLog.shift();
      this.#rxtLog.push({ seq, end: seqAdd(seq, sent), at: now });
      if (!tcb.timers.running(TcpTimer.TLP)) this.#armLostRetransmitTimer(now);
    }
    // RFC 6675 §6 (as Linux and BSD): re-arm the timer on each recovery retransmission, so a
    // recovery longer than one RTO does not end in a spurious timeout.
    this.#sender.restartRto(now);
    return true;
  }

  /**
   * Lost-retransmission detection: RFC 6675 retransmits each hole once per
   * recovery, so a lost retransmission would wait for the RTO. While ACKs keep
   * arriving (the network delivers), a retransmitted hole still open after
   * 1.5 smoothed RTTs plus a margin was lost again and is resent, in the
   * spirit of RACK (RFC 8985 §6.2) with the retransmission time as the clock.
   */
  #resendLostRetransmissions(now: number): boolean {
    const tcb = this.#tcb;
    const sender = this.#sender;
    const log = this.#rxtLog;
    while (log.length > 0 && seqLe(log[0].end, tcb.sndUna)) log.shift();
    if (log.length === 0) return false;
    const wait = this.#lostRetransmitWait();
    let sent = false;
    for (const e of log) {
      if (this.pipe() >= sender.cc.cwnd) break;
      if (now - e.at < wait) continue;
      if (sender.heldByPacing(now)) break;
      let seq = seqMax(e.seq, tcb.sndUna);
      const sackedEnd = this.scoreboard.sackedRangeEnd(seq);
      if (sackedEnd !== undefined) seq = sackedEnd;
      if (!seqLt(seq, e.end)) continue;
      const end = seqMin(this.scoreboard.nextSackedStart(seq) ?? e.end, e.end);
      if (sender.sendData(seq, end, now, true) > 0) {
        e.at = now;
        sent = true;
      }
    }
    return sent;
  }

  /** How long a retransmitted hole may stay open before it counts as lost again. */
  #lostRetransmitWait(): number {
    const rtt = this.#sender.rtt;
    return (rtt.srtt ?? rtt.rto) * 1.5 + 5;
  }

  /**
   * In recovery, the TLP timer serves as RACK's reordering timer (RFC 8985
   * §6.3): it fires when the oldest retransmission still open has waited
   * 1.5 smoothed RTTs and 5 ms, so that a lost retransmission
   * is sent again even when no ACK comes to trigger it (everything else
   * SACKed, nothing new to send), instead of waiting for the RTO.
   */
  #armLostRetransmitTimer(now: number): void {
    const tcb = this.#tcb;
    const timers = tcb.timers;
    const log = this.#rxtLog;
    while (log.length > 0 && seqLe(log[0].end, tcb.sndUna)) log.shift();
    if (log.length === 0) {
      timers.stop(TcpTimer.TLP);
      return;
    }
    let first = log[0].at;
    for (const e of log) if (e.at < first) first = e.at;
    const at = Math.max(first + this.#lostRetransmitWait(), now + 1);
    const rtoAt = timers.deadline(TcpTimer.RTO);
    if (rtoAt !== undefined && at >= rtoAt) timers.stop(TcpTimer.TLP);
    else timers.start(TcpTimer.TLP, at);
  }

  /**
   * Bytes in the network (RFC 6675 §4 "pipe", simplified): unSACKed bytes up to
   * HighRxt were (re)sent and count; unSACKed bytes between HighRxt and the
   * highest SACK are deemed lost; everything above the highest SACK counts.
   * Without SACK, each duplicate ACK in recovery means a segment left.
   */
  pipe(): number {
    const tcb = this.#tcb;
    const una = tcb.sndUna;
    const max = tcb.sndMax;
    if (!this.inRecovery) {
      // After an RTO SND.NXT went back to SND.UNA: what lies beyond it is deemed lost.
      const nxt = tcb.sndNxt;
      return seqSpan(una, nxt) - this.scoreboard.sackedBetween(una, nxt);
    }
    const highSacked = this.scoreboard.highestSacked;
    if (!tcb.sackEnabled || highSacked === undefined) {
      return Math.max(0, seqSpan(una, max) - this.#dupAcks * tcb.sendMss);
    }
    const rxt = seqMax(this.#highRxt, una);
    const retransmitted = seqSpan(una, rxt) - this.scoreboard.sackedBetween(una, rxt);
    return retransmitted + seqSpan(highSacked, max);
  }

  // ------------------------------------------------------------ tail loss probe

  /**
   * Arms the tail loss probe (RFC 8985 §7.2): PTO = 2·SRTT (at least 10 ms),
   * plus the peer's delayed-ACK allowance when one segment is in flight, and
   * only if it fires before the RTO.
   */
  armTlp(now: number): void {
    const tcb = this.#tcb;
    const timers = tcb.timers;
    const srtt = this.#sender.rtt.srtt;
    if (this.inRecovery && tcb.sackEnabled) {
      this.#armLostRetransmitTimer(now);
      return;
    }
    if (srtt === undefined || this.inRecovery || this.tlpOutstanding || !tcb.sackEnabled) {
      timers.stop(TcpTimer.TLP);
      return;
    }
    let pto = Math.max(2 * srtt, 10);
    if (this.#sender.flightSize() <= tcb.sendMss) pto += 50;
    const at = now + pto;
    const rtoAt = timers.deadline(TcpTimer.RTO);
    if (rtoAt !== undefined && at >= rtoAt) timers.stop(TcpTimer.TLP);
    else timers.start(TcpTimer.TLP, at);
  }

  /**
   * The probe (RFC 8985 §7.3): new data if the receiver's window allows,
   * otherwise the last segment again, so that the ACK it draws carries the
   * SACK information that starts fast recovery instead of an RTO.
   */
  onTlpTimer(now: number): void {
    const tcb = this.#tcb;
    const sender = this.#sender;
    if (this.inRecovery) {
      // The reordering timer's role (see #armLostRetransmitTimer).
      if (this.#resendLostRetransmissions(now)) sender.restartRto(now);
      this.#armLostRetransmitTimer(now);
      return;
    }
    if (tcb.sndUna === tcb.sndMax || !tcb.synchronized()) return;
    if (sender.finSeqNo !== undefined) return; // the FIN is out: leave the tail to the RTO
    const dataEnd = sender.dataEnd();
    const wndRight = seqAdd(tcb.sndUna, tcb.sndWnd);
    let sent = 0;
    if (
      tcb.sndNxt === tcb.sndMax && seqLt(tcb.sndNxt, dataEnd) && seqLt(tcb.sndNxt, wndRight)
    ) {
      sent = sender.sendData(tcb.sndNxt, dataEnd, now, false);
      tcb.sndNxt = seqAdd(tcb.sndNxt, sent);
      tcb.sndMax = tcb.sndNxt;
    }
    if (sent === 0) {
      const start = seqMax(seqAdd(tcb.sndMax, -tcb.sendMss), tcb.sndUna);
      sent = sender.sendData(start, tcb.sndMax, now, true);
    }
    if (sent > 0) {
      this.tlpOutstanding = true;
      tcb.timers.stop(TcpTimer.TLP);
      sender.restartRto(now);
    }
  }
}
