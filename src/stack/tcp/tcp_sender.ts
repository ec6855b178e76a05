/**
 * The send side of a TCP connection: the send buffer and our FIN, the ACK
 * field of arriving segments (RFC 9293 §3.10.7.4 fifth step with RFC 5961
 * §5.2), the peer's window, RTT measurement (RFC 6298 with Karn's rule,
 * RFC 7323 §4), congestion control (RFC 5681), and output: cutting the
 * stream into segments under the windows, Nagle and sender-side silly
 * window avoidance (RFC 9293 §3.7.4, §3.8.6.2.1), zero-window probes
 * (§3.8.6.1), keepalive probes (§3.8.4) and path MTU reductions (RFC 1191).
 * Loss recovery is its own part (tcp_recovery.ts), owned by the sender.
 *
 * @module
 */

import {
  TCP_HEADER_LEN,
  TcpFlags,
  type TcpRepr,
  writePartialTcpChecksum,
  writeTcpChecksum,
  writeTcpHeader,
  writeTcpSackBlocks,
  writeTcpTimestamps,
} from "../../wire/mod.ts";
import { FrameOffload, LinkOffload } from "../frame_offload.ts";
import { type CongestionControl, createCongestionControl } from "./congestion.ts";
import { RttEstimator } from "./rtt_estimator.ts";
import { SendBuffer } from "./send_buffer.ts";
import { seqAdd, seqGe, seqGt, seqLe, seqLt, seqMax, seqSpan, seqSub } from "./seq.ts";
import { type TcpControlBlock, TcpEvent } from "./tcp_control_block.ts";
import type { TcpReceiver } from "./tcp_receiver.ts";
import { PACING_TICK_MS, TcpPacer } from "./tcp_pacer.ts";
import { TcpRecovery } from "./tcp_recovery.ts";
import { TcpTimer } from "./tcp_timers.ts";

const MAX_PERSIST_MS = 60_000;
/** Most payload of a segmentation-offload segment: a 64 KiB IPv4 packet less the headers. */
const MAX_GSO_PAYLOAD = 0xffff - 20 - 60;
/**
 * The same over IPv6: its 40-byte header counted in the 64 KiB too, so that a
 * large frame is never longer than an IPv4 one (what the tunnel and a TAP
 * take: an Ethernet header and 65535 bytes).
 */
const MAX_GSO_PAYLOAD_V6 = 0xffff - 40 - 60;
const EMPTY = new Uint8Array(0);

/**
 * The send side of one connection: it owns the send buffer, the send
 * variables of the TCB (SND.UNA, SND.NXT, SND.MAX, SND.WND, ...), the RTT
 * estimator, congestion control and loss recovery, and builds every segment
 * the connection sends (with the receiver's ACK, window and SACK blocks).
 *
 * @example
 * ```ts
 * const snd = new TcpSender(tcb, receiver);
 * snd.write(new TextEncoder().encode("hello"), now); // queued and sent as the windows allow
 * ```
 */
export class TcpSender {
  /** Bytes the application handed over that the peer has not acknowledged. */
  readonly buffer: SendBuffer;
  /** Fast retransmit, SACK recovery, lost-retransmission detection and tail loss probes. */
  readonly recovery: TcpRecovery;
  rtt: RttEstimator;
  readonly cc: CongestionControl;
  /** Pacing of new data (when `config.pacing`). */
  readonly pacer: TcpPacer = new TcpPacer();
  /** The latest RTT sample (ms). */
  lastRtt = 0;
  /** The application shut down writing: a FIN follows the data. */
  finQueued = false;
  /** Sequence number of our FIN once it was first sent. */
  finSeqNo: number | undefined;
  /** The peer acknowledged our FIN. */
  finAcked = false;
  /** Consecutive retransmission timeouts (reset by an ACK of new data). */
  timeouts = 0;
  /** When we last sent a segment carrying data, a SYN or a FIN. */
  lastSendAt = 0;
  /** Keepalive probes sent without an answer. */
  keepalivesSent = 0;
  #tcb: TcpControlBlock;
  #receiver: TcpReceiver;
  /** The segment being timed for an RTT sample without timestamps (RFC 6298 §3), and when it left. */
  #rttSeq: number | undefined;
  #rttSentAt = 0;
  #persistBackoff = 0;

  /** Creates the send side of the connection of `tcb`; segments carry what `receiver` owes. */
  constructor(tcb: TcpControlBlock, receiver: TcpReceiver) {
    this.#tcb = tcb;
    this.#receiver = receiver;
    const c = tcb.config;
    this.buffer = new SendBuffer(c.sendBufferBytes, tcb.host.quota.memory);
    this.rtt = new RttEstimator({
      initialRtoMs: c.initialRtoMs,
      minRtoMs: c.minRtoMs,
      maxRtoMs: c.maxRtoMs,
    });
    this.cc = createCongestionControl(c.congestionControl, {
      mss: tcb.sendMss,
      ackTrain: c.pacing,
      delayBound: c.pacing,
    });
    this.recovery = new TcpRecovery(tcb, this);
  }

  // ------------------------------------------------------------ the application

  /** Whether the application may still write (not shut down, not closing or closed). */
  canSend(): boolean {
    if (this.finQueued) return false;
    const s = this.#tcb.state;
    return s === "ESTABLISHED" || s === "CLOSE_WAIT" || s === "SYN_SENT" || s === "SYN_RECEIVED";
  }

  /** Queues `data` and sends what the windows allow; returns the bytes taken (0 when full). */
  write(data: Uint8Array, now: number): number {
    if (!this.canSend()) return 0;
    const n = this.buffer.write(data);
    if (n > 0 && this.#tcb.synchronized()) this.output(now);
    return n;
  }

  /** Queues our FIN after the data (RFC 9293 §3.10.4) and sends it when it may go. */
  queueFin(now: number): void {
    this.finQueued = true;
    if (this.#tcb.synchronized()) this.output(now);
  }

  /** Sets the send MSS (at least 64 bytes) and tells congestion control. */
  setMss(mss: number): void {
    this.#tcb.sendMss = Math.max(64, mss);
    this.cc.setMss(this.#tcb.sendMss);
  }

  /** The sequence number of the first byte in the send buffer. */
  dataStart(): number {
    const tcb = this.#tcb;
    // Before our SYN is acknowledged SND.UNA is the SYN itself; after our FIN is, it is past the FIN.
    if (tcb.sndUna === tcb.iss) return seqAdd(tcb.iss, 1);
    return this.finAcked ? seqAdd(tcb.sndUna, -1) : tcb.sndUna;
  }

  /** The sequence number just after the last byte in the send buffer (where our FIN goes). */
  dataEnd(): number {
    return seqAdd(this.dataStart(), this.buffer.length);
  }

  /** Sequence space sent and not acknowledged (RFC 5681 FlightSize). */
  flightSize(): number {
    return seqSpan(this.#tcb.sndUna, this.#tcb.sndMax);
  }

  // ------------------------------------------------------------ the ACK field

  /**
   * RFC 9293 §3.10.7.4 "fifth, check the ACK field" for the send side, with
   * RFC 5961 §5.2: SACK information, new data acknowledged or a duplicate
   * ACK, and the window update. Returns a drop reason for an unacceptable
   * ACK (answered as RFC 5961 says), undefined otherwise. State changes on
   * our FIN being acknowledged are the caller's ({@linkcode TcpSender.finAcked}).
   */
  processAck(seg: TcpRepr, now: number): string | undefined {
    const tcb = this.#tcb;
    const ack = seg.ackNumber;
    // RFC 5961 §5.2: acceptable if SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT.
    if (seqGt(ack, tcb.sndMax)) {
      this.ackUnacceptable(now);
      return "tcp_ack_unsent";
    }
    if (seqLt(ack, seqAdd(tcb.sndUna, -Math.max(tcb.maxSndWnd, 1)))) {
      this.challengeAck(now);
      return "tcp_ack_too_old";
    }

    if (tcb.sackEnabled && seg.sackBlocks && seg.sackBlocks.length > 0) {
      this.recovery.onSackBlocks(seg.sackBlocks, ack);
    }

    const windowField = (seg.flags & TcpFlags.SYN) ? seg.windowLen : seg.windowLen << tcb.sndWscale;
    const windowChanged = windowField !== tcb.sndWnd;
    if (seqGt(ack, tcb.sndUna)) {
      this.#newAck(seg, ack, now);
    } else if (
      ack === tcb.sndUna && seg.payload.length === 0 && !(seg.flags & TcpFlags.FIN) &&
      !windowChanged && tcb.sndMax !== tcb.sndUna
    ) {
      this.recovery.onDuplicateAck(now);
    } else if (ack === tcb.sndUna && tcb.sackEnabled && seg.sackBlocks?.length) {
      // Not a duplicate ACK by RFC 5681 §2 (it updates the window or carries data), but its
      // SACK blocks still tell what is lost (RFC 6675 §5, RFC 8985).
      this.recovery.onSackInformation(now);
    }

    // Window update (RFC 9293 §3.10.7.4: SND.WL1 < SEG.SEQ, or equal and SND.WL2 =< SEG.ACK).
    if (
      seqLt(tcb.sndWl1, seg.seqNumber) || (tcb.sndWl1 === seg.seqNumber && seqLe(tcb.sndWl2, ack))
    ) {
      const wasZero = tcb.sndWnd === 0;
      tcb.sndWnd = windowField;
      tcb.sndWl1 = seg.seqNumber;
      tcb.sndWl2 = ack;
      if (tcb.sndWnd > tcb.maxSndWnd) tcb.maxSndWnd = tcb.sndWnd;
      if (wasZero && tcb.sndWnd > 0) {
        tcb.timers.stop(TcpTimer.PERSIST);
        this.#persistBackoff = 0;
      }
    }
    return undefined;
  }

  #newAck(seg: TcpRepr, ack: number, now: number): void {
    const tcb = this.#tcb;
    const prevUna = tcb.sndUna;
    const inFlightBefore = seqSpan(prevUna, tcb.sndMax);
    // Bytes of data acknowledged (SYN and FIN take sequence space but are not in the buffer).
    let dataAcked = seqSub(ack, prevUna);
    if (prevUna === tcb.iss) dataAcked--; // our SYN
    if (this.finSeqNo !== undefined && seqGt(ack, this.finSeqNo)) {
      this.finAcked = true;
      dataAcked--; // our FIN
    }
    if (dataAcked > this.buffer.length) dataAcked = this.buffer.length;
    if (dataAcked > 0) this.buffer.consume(dataAcked);
    tcb.sndUna = ack;
    if (seqLt(tcb.sndNxt, ack)) tcb.sndNxt = ack;
    this.recovery.onCumulativeAck(ack);
    tcb.stats.bytesAcked += dataAcked;

    // RTT (RFC 6298 §3 with Karn's rule; RFC 7323 §4 with timestamps).
    let rttSample: number | undefined;
    if (tcb.tsEnabled && seg.timestamp && seg.timestamp.echo !== 0) {
      const delta = seqSub(tcb.tsNow(now), seg.timestamp.echo);
      if (delta >= 0 && delta < 0x7fffffff) rttSample = delta;
    } else if (this.#rttSeq !== undefined && seqGe(ack, this.#rttSeq)) {
      rttSample = now - this.#rttSentAt;
    }
    if (this.#rttSeq !== undefined && seqGe(ack, this.#rttSeq)) this.#rttSeq = undefined;
    if (rttSample !== undefined && this.timeouts === 0) {
      this.rtt.sample(Math.max(rttSample, 0));
      this.lastRtt = rttSample;
    }
    this.timeouts = 0;
    this.rtt.resetBackoff();

    // Congestion control and recovery (RFC 5681, RFC 6582, RFC 6675).
    this.recovery.onNewAck(ack, dataAcked, inFlightBefore, rttSample, now);
    this.#autotune();

    // Retransmission timer (RFC 6298 §5.2, §5.3), and the tail loss probe (RFC 8985 §7).
    this.recovery.tlpOutstanding = false;
    if (tcb.sndUna === tcb.sndMax) {
      tcb.timers.stop(TcpTimer.RTO);
      tcb.timers.stop(TcpTimer.TLP);
    } else {
      this.restartRto(now);
      this.recovery.armTlp(now);
    }
    if (dataAcked > 0) tcb.signal(TcpEvent.WRITABLE);
  }

  /**
   * Send-buffer autotuning (as Linux's tcp_sndbuf_expand): a capacity of
   * twice cwnd, in steps of 64 KiB, up to `sendBufferMaxBytes`, so that the
   * application can keep a growing window full. Raises WRITABLE when it grew.
   */
  #autotune(): void {
    const c = this.#tcb.config;
    const buffer = this.buffer;
    const cap = buffer.capacity;
    if (cap >= c.sendBufferMaxBytes) return;
    const want = 2 * this.cc.cwnd;
    if (want <= cap) return;
    const step = 64 * 1024;
    buffer.resize(Math.min(c.sendBufferMaxBytes, Math.ceil(want / step) * step));
    this.#tcb.signal(TcpEvent.WRITABLE);
  }

  /** (Re)starts the retransmission timer with the current RTO (RFC 6298 §5). */
  restartRto(now: number): void {
    this.#tcb.timers.start(TcpTimer.RTO, now + this.rtt.currentRto);
  }

  // ------------------------------------------------------------ output

  /** Sends what the windows allow, then an ACK if one is owed (RFC 9293 §3.8.6, RFC 5681). */
  output(now: number): void {
    const tcb = this.#tcb;
    const recovery = this.recovery;
    if (!tcb.synchronized() || tcb.state === "TIME_WAIT") {
      if (this.#receiver.ackNow) this.sendAck(now);
      return;
    }
    // RFC 5681 §4.1: restart after an idle period longer than the RTO.
    if (tcb.sndUna === tcb.sndMax && now - this.lastSendAt > this.rtt.currentRto) {
      this.cc.onIdleRestart(now);
    }
    let sentAny = false;
    /** Pacing holds the next segment back (the pacing timer will send it). */
    let paced = false;
    const mss = tcb.sendMss;
    // With TCP segmentation offload, one segment carries up to 64 KiB of whole MSS-sized pieces.
    const tso = (tcb.host.linkOffload & LinkOffload.TSO) !== 0;
    const gsoLimit = tcb.ipv6 ? MAX_GSO_PAYLOAD_V6 : MAX_GSO_PAYLOAD;
    const gsoMax = tso ? Math.max(mss, Math.floor(gsoLimit / mss) * mss) : mss;
    if (recovery.inRecovery) sentAny = recovery.output(now);
    for (;;) {
      const dataEnd = this.dataEnd();
      const unsent = seqSpan(tcb.sndNxt, dataEnd);
      const usableWnd = seqSpan(tcb.sndNxt, seqAdd(tcb.sndUna, tcb.sndWnd));
      const usableCwnd = Math.max(0, this.cc.cwnd - recovery.pipe());
      let maxLen = gsoMax;
      if (tso && tcb.config.pacing && this.pacer.rate > 0) {
        // As Linux's TSO autosizing: no more than about one tick of the pacing rate at once.
        const tick = Math.floor((this.pacer.rate * PACING_TICK_MS) / mss) * mss;
        maxLen = Math.min(gsoMax, Math.max(2 * mss, tick));
      }
      let len = Math.min(unsent, maxLen, usableWnd, usableCwnd);
      // Only the last piece of a large segment may be short: whole MSS-sized pieces otherwise.
      if (len > mss && len < unsent) len -= len % mss;
      const finReady = this.finQueued && !this.finAcked && unsent === 0 && tcb.sndNxt === dataEnd;
      if (len > 0) {
        // Sender-side SWS avoidance and Nagle (RFC 9293 §3.8.6.2.1, §3.7.4).
        const full = len >= mss;
        const allQueued = len === unsent;
        const nothingInFlight = tcb.sndMax === tcb.sndUna;
        const halfWindow = len >= tcb.maxSndWnd / 2 && tcb.maxSndWnd > 0;
        const retransmitting = seqLt(tcb.sndNxt, tcb.sndMax);
        const nagleOk = tcb.config.noDelay || nothingInFlight || this.finQueued;
        if (!(full || retransmitting || halfWindow || (allQueued && nagleOk))) len = 0;
      }
      if (len > 0 && this.heldByPacing(now)) {
        paced = true;
        break;
      }
      if (len > 0) {
        const seq = tcb.sndNxt;
        // After an RTO, skip what the receiver already SACKed.
        const skip = recovery.scoreboard.sackedRangeEnd(seq);
        if (skip !== undefined) {
          tcb.sndNxt = skip;
          continue;
        }
        const limit = seqLt(seq, tcb.sndMax)
          ? (recovery.scoreboard.nextSackedStart(seq) ?? tcb.sndMax)
          : dataEnd;
        const end = seqAdd(seq, Math.min(seqSub(limit, seq), len));
        const sent = this.sendData(seq, end, now, false, len > mss ? len : mss);
        if (sent === 0) break;
        tcb.sndNxt = seqAdd(seq, sent);
        tcb.sndMax = seqMax(tcb.sndMax, tcb.sndNxt);
        sentAny = true;
        continue;
      }
      if (finReady && (tcb.sndWnd > 0 || tcb.sndMax === tcb.sndUna)) {
        this.sendFin(now);
        sentAny = true;
      }
      break;
    }
    // Zero window with data waiting and nothing in flight: persist (RFC 9293 §3.8.6.1). A
    // window too small to use (sender SWS avoidance) also arms it, as the override timeout.
    const dataEnd = this.dataEnd();
    const waiting = seqLt(tcb.sndNxt, dataEnd) ||
      (this.finQueued && !this.finAcked && tcb.sndNxt === dataEnd);
    if (waiting && tcb.sndMax === tcb.sndUna && !paced) {
      tcb.timers.startIfStopped(TcpTimer.PERSIST, now + this.#persistInterval());
      tcb.timers.stop(TcpTimer.RTO);
    }
    if (this.#receiver.ackNow && !sentAny) this.sendAck(now);
  }

  /**
   * With pacing on: whether the pacer holds the next segment back at `now`
   * (the rate follows cwnd and the RTT); if so the pacing timer is armed for
   * when it may leave.
   */
  heldByPacing(now: number): boolean {
    const tcb = this.#tcb;
    if (!tcb.config.pacing) return false;
    const pacer = this.pacer;
    const srtt = this.rtt.srtt;
    const rtt = srtt !== undefined && this.lastRtt > srtt ? this.lastRtt : srtt;
    pacer.setRate(this.cc.cwnd, this.cc.ssthresh, rtt, tcb.sendMss);
    if (pacer.allows(now)) return false;
    tcb.timers.start(TcpTimer.PACE, pacer.nextSendAt(now));
    return true;
  }

  /**
   * Sends data `[seq, end)` in at most one MSS, or `maxLen` bytes in one
   * segmentation-offload segment; returns the bytes sent.
   */
  sendData(
    seq: number,
    end: number,
    now: number,
    isRetransmit: boolean,
    maxLen: number = this.#tcb.sendMss,
  ): number {
    const tcb = this.#tcb;
    const start = this.dataStart();
    const offset = seqSub(seq, start);
    // One segment's text is the MSS less the SACK option it carries (RFC 2018 §3); a large
    // segment for the link to cut keeps its length (transmit cuts it by the same measure).
    const cap = maxLen > tcb.sendMss
      ? maxLen
      : Math.min(maxLen, tcb.sendMss - this.#receiver.sackOptionBytes());
    const len = Math.min(cap, seqSub(end, seq), this.buffer.length - offset);
    if (len <= 0 || offset < 0) return 0;
    const retransmission = isRetransmit || seqLt(seq, tcb.sndMax);
    let flags = TcpFlags.ACK;
    if (seqAdd(seq, len) === seqAdd(start, this.buffer.length)) flags |= TcpFlags.PSH;
    this.transmit(flags, seq, now, offset, len);
    this.pacer.spend(len, now);
    if (retransmission) {
      tcb.stats.retransmits++;
      this.recovery.noteRetransmission(seq, seqAdd(seq, len));
      // Karn (RFC 6298 §3): the ACK of a retransmitted timed segment is ambiguous.
      if (this.#rttSeq !== undefined && seqLt(seq, this.#rttSeq)) this.#rttSeq = undefined;
    } else if (this.#rttSeq === undefined && !tcb.tsEnabled) {
      this.#rttSeq = seqAdd(seq, len);
      this.#rttSentAt = now;
    }
    tcb.timers.startIfStopped(TcpTimer.RTO, now + this.rtt.currentRto);
    if (!retransmission && !tcb.timers.running(TcpTimer.TLP)) this.recovery.armTlp(now);
    this.lastSendAt = now;
    return len;
  }

  /** Sends our FIN after the data; ESTABLISHED becomes FIN-WAIT-1, CLOSE-WAIT becomes LAST-ACK. */
  sendFin(now: number): void {
    const tcb = this.#tcb;
    const seq = this.dataEnd();
    this.finSeqNo = seq;
    this.transmit(TcpFlags.FIN | TcpFlags.ACK, seq, now);
    tcb.sndNxt = seqAdd(seq, 1);
    tcb.sndMax = seqMax(tcb.sndMax, tcb.sndNxt);
    tcb.timers.startIfStopped(TcpTimer.RTO, now + this.rtt.currentRto);
    this.lastSendAt = now;
    if (tcb.state === "ESTABLISHED") tcb.setState("FIN_WAIT_1", now);
    else if (tcb.state === "CLOSE_WAIT") tcb.setState("LAST_ACK", now);
  }

  /** Sends a bare ACK: <SEQ=SND.NXT><ACK=RCV.NXT>. */
  sendAck(now: number): void {
    this.transmit(TcpFlags.ACK, this.#tcb.sndNxt, now);
  }

  /**
   * The ACK RFC 9293 §3.10.7.4 sends after an unacceptable segment (out of
   * window, PAWS, unsent data acknowledged, text the quota cannot hold),
   * under the layer's rate limit so that forged segments cannot draw a
   * reply each.
   */
  ackUnacceptable(now: number): void {
    if (this.#tcb.host.allowUnacceptableAck(now)) this.sendAck(now);
  }

  /** RFC 5961 §7: a rate-limited ACK in answer to a suspicious RST, SYN or ACK. */
  challengeAck(now: number): void {
    const tcb = this.#tcb;
    if (!tcb.host.allowChallengeAck(now)) return;
    tcb.stats.challengeAcks++;
    this.sendAck(now);
  }

  /** Sends <SEQ=seq><CTL=RST>. */
  sendRst(seq: number, now: number): void {
    const tcb = this.#tcb;
    const conn = tcb.conn;
    tcb.emit({
      srcPort: conn.localPort,
      dstPort: conn.remotePort,
      seqNumber: seq,
      ackNumber: 0,
      flags: TcpFlags.RST,
      windowLen: 0,
      payload: EMPTY,
    }, now);
  }

  /**
   * Sends a segment carrying our ACK, window, timestamps and SACK blocks,
   * with `dataLen` bytes of the send buffer from `dataOffset` as its text:
   * written in place into its frame (tx_packet.ts), no segment object built.
   */
  transmit(flags: number, seq: number, now: number, dataOffset = 0, dataLen = 0): void {
    const tcb = this.#tcb;
    const receiver = this.#receiver;
    const conn = tcb.conn;
    const ack = tcb.rcvNxt;
    const window = receiver.advertise();
    const ts = tcb.tsEnabled;
    const sackBlocks = receiver.sackBlocks();
    receiver.ackSent();
    const headerLen = TCP_HEADER_LEN + (ts ? 12 : 0) +
      (sackBlocks === undefined ? 0 : 4 + 8 * sackBlocks.length);
    const len = headerLen + dataLen;
    tcb.stats.segmentsOut++;
    const host = tcb.host;
    // The text of each segment on the wire: the MSS less the SACK option (RFC 2018 §3).
    const mss = tcb.sendMss - (sackBlocks === undefined ? 0 : 4 + 8 * sackBlocks.length);
    const gso = dataLen > mss;
    const tx = host.beginSegment(conn, len, gso);
    if (tx !== undefined) {
      const f = tx.frame;
      const at = tx.l4;
      writeTcpHeader(f, at, conn.localPort, conn.remotePort, seq, ack, headerLen, flags, window);
      let o = at + TCP_HEADER_LEN;
      if (ts) {
        writeTcpTimestamps(f, o, tcb.tsNow(now), tcb.tsRecent);
        o += 12;
      }
      if (sackBlocks !== undefined) o += writeTcpSackBlocks(f, o, sackBlocks);
      if (dataLen > 0) this.buffer.copyOut(dataOffset, dataLen, f, o);
      if (gso || (host.linkOffload & LinkOffload.CSUM) !== 0) {
        // The link finishes the checksum (and cuts a large segment into MSS-sized ones).
        writePartialTcpChecksum(f, at, tx.pseudoSum);
        tx.offload = gso
          ? (tcb.ipv6 ? FrameOffload.GSO_TCPV6 : FrameOffload.GSO_TCPV4) |
            FrameOffload.CSUM_PARTIAL | mss
          : FrameOffload.CSUM_PARTIAL;
      } else {
        writeTcpChecksum(f, at, len, tx.pseudoSum);
      }
      host.commitSegment(now);
    }
    tcb.sent(now);
  }

  // ------------------------------------------------------------ timers

  /**
   * The retransmission timer fired with data or a FIN outstanding (RFC 5681
   * §3.1 eq. 4, RFC 6298 §5.4-5.6): collapse cwnd, go back to SND.UNA and
   * resend the first segment, even into a closed window (it is a probe then).
   */
  onRetransmissionTimeout(now: number): void {
    const tcb = this.#tcb;
    if (tcb.sndUna === tcb.sndMax) return;
    this.cc.onRetransmissionTimeout(now, this.flightSize());
    this.recovery.onRetransmissionTimeout();
    this.#rttSeq = undefined;
    tcb.sndNxt = tcb.sndUna;
    this.restartRto(now);
    const dataEnd = this.dataEnd();
    if (seqLt(tcb.sndNxt, dataEnd)) {
      const sent = this.sendData(tcb.sndNxt, dataEnd, now, true);
      tcb.sndNxt = seqAdd(tcb.sndNxt, sent);
    } else if (this.finQueued) {
      tcb.stats.retransmits++;
      this.sendFin(now);
    }
    this.output(now);
  }

  /**
   * The persist timer fired: a zero-window probe (an old sequence number
   * makes the peer answer with its window, RFC 9293 §3.8.6.1), or, when the
   * window is open but too small to use, the override timeout of sender SWS
   * avoidance sends into it (§3.8.6.2.1).
   */
  onPersistTimer(now: number): void {
    const tcb = this.#tcb;
    if (tcb.sndWnd === 0) {
      this.transmit(TcpFlags.ACK, seqAdd(tcb.sndUna, -1), now);
      this.#persistBackoff = Math.min(this.#persistBackoff + 1, 16);
      tcb.timers.start(TcpTimer.PERSIST, now + this.#persistInterval());
    } else if (tcb.sndMax === tcb.sndUna) {
      const sent = this.sendData(tcb.sndNxt, seqAdd(tcb.sndUna, tcb.sndWnd), now, false);
      tcb.sndNxt = seqAdd(tcb.sndNxt, sent);
      tcb.sndMax = seqMax(tcb.sndMax, tcb.sndNxt);
    }
  }

  #persistInterval(): number {
    const base = Math.max(this.rtt.rto, 200);
    return Math.min(MAX_PERSIST_MS, base * 2 ** this.#persistBackoff);
  }

  /**
   * The keepalive timer fired (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6): sends a
   * probe <SEQ=SND.UNA-1>, or returns false when the probes are used up and
   * the connection must fail with ETIMEDOUT.
   */
  onKeepaliveTimer(now: number): boolean {
    const tcb = this.#tcb;
    const c = tcb.config;
    if (tcb.state !== "ESTABLISHED" && tcb.state !== "CLOSE_WAIT") return true;
    if (tcb.sndUna !== tcb.sndMax) {
      tcb.timers.start(TcpTimer.KEEPALIVE, now + c.keepaliveIdleMs);
      return true;
    }
    if (this.keepalivesSent >= c.keepaliveProbes) return false;
    this.keepalivesSent++;
    this.transmit(TcpFlags.ACK, seqAdd(tcb.sndUna, -1), now);
    tcb.timers.start(TcpTimer.KEEPALIVE, now + c.keepaliveIntervalMs);
    return true;
  }

  /**
   * Path MTU discovery (RFC 1191 §6.3, RFC 5927 §4.1): lowers the send MSS
   * for an ICMP fragmentation-needed quoting an in-flight `seq` and a
   * plausible MTU (at least 576; 1280 over IPv6, RFC 8201 §4), and sends what is in flight again in the
   * smaller size; not a congestion signal. Returns whether it acted.
   */
  pathMtuReduced(seq: number, mtu: number, now: number): boolean {
    const tcb = this.#tcb;
    if (!tcb.synchronized() || tcb.state === "TIME_WAIT") return false;
    if (seqLt(seq, tcb.sndUna) || !seqLt(seq, tcb.sndMax)) return false;
    if (!Number.isInteger(mtu) || mtu < (tcb.ipv6 ? 1280 : 576)) return false;
    const mss = mtu - 20 - tcb.netHeaderLen - (tcb.tsEnabled ? 12 : 0);
    if (mss >= tcb.sendMss) return false;
    this.setMss(mss);
    this.#rttSeq = undefined;
    tcb.sndNxt = tcb.sndUna;
    this.recovery.onMtuReduced();
    this.output(now);
    return true;
  }
}
