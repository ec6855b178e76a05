/**
 * The receive side of a TCP connection: which segments are acceptable
 * (RFC 9293 §3.10.7.4 first step), the segment text and the FIN (seventh and
 * eighth steps) into the receive queue and the out-of-order store, when an
 * ACK is owed (RFC 5681 §4.2, RFC 9293 §3.8.6.3), and the window we offer
 * (receiver-side silly window avoidance, RFC 9293 §3.8.6.2.2; never shrunk,
 * RFC 7323 §2.4; never more than the session's memory quota can still hold).
 * Received bytes are copied into storage the connection owns and charged:
 * the receive queue's chunks and the reassembler's pages.
 *
 * @module
 */

import { TCP_MAX_WINDOW_SCALE, TcpFlags, type TcpRepr, type TcpSackBlock } from "../../wire/mod.ts";
import { bufferCost, type MemoryQuota } from "../session_quota.ts";
import { DEFAULT_PAGE_BYTES } from "./paged_ring.ts";
import { Reassembler } from "./reassembler.ts";
import { RECEIVE_CHUNK_BYTES, ReceiveQueue } from "./receive_queue.ts";
import { seqAdd, seqGt, seqInRange, seqLt, seqMin, seqSpan, seqSub } from "./seq.ts";
import { type TcpControlBlock, TcpEvent } from "./tcp_control_block.ts";
import { TcpTimer } from "./tcp_timers.ts";

/** What {@linkcode TcpReceiver.processText} found, as bits. */
export const TcpReceived = {
  /** In-order data arrived while the connection is an orphan: it must be reset (RFC 2525 §2.17). */
  DATA_FOR_ORPHAN: 1,
  /** The peer's FIN was reached now (RCV.NXT moved past it): the state machine moves on. */
  FIN: 2,
  /** Segment text was dropped because the memory quota refused its storage ("tcp_rcv_quota"). */
  QUOTA_DROP: 4,
} as const;

/**
 * Quota kept free for moving out-of-order bytes into the receive queue (a
 * page at a time: at most one new chunk each) and for the slack of the
 * queue's last chunk.
 */
const MOVE_RESERVE = bufferCost(RECEIVE_CHUNK_BYTES);

/**
 * How many new bytes a connection may be offered for `available` bytes of
 * memory quota: whole out-of-order pages (the costlier storage), after
 * keeping room to move out-of-order bytes into the receive queue.
 *
 * @example
 * ```ts
 * quotaWindowBytes(60_000); // 20480: five 4 KiB pages
 * ```
 */
export function quotaWindowBytes(available: number): number {
  const spare = available - MOVE_RESERVE;
  if (spare <= 0) return 0;
  return Math.floor(spare / bufferCost(DEFAULT_PAGE_BYTES)) * DEFAULT_PAGE_BYTES;
}

/**
 * The receive side of one connection: it owns the receive queue, the
 * out-of-order store and the receive variables of the TCB (RCV.NXT, the
 * advertised right edge, Last.ACK.sent).
 *
 * @example
 * ```ts
 * const rcv = new TcpReceiver(tcb);
 * if (rcv.acceptable(seg.seqNumber, seg.payload.length)) rcv.processText(seg, now, false);
 * rcv.read(65536); // the bytes delivered in order
 * ```
 */
export class TcpReceiver {
  /** In-order bytes waiting for the application. */
  readonly queue: ReceiveQueue;
  /** Bytes beyond a hole, with the SACK blocks that describe them. */
  readonly reassembler: Reassembler;
  /** The peer's FIN was received: RCV.NXT is past it. */
  finReceived = false;
  /** An ACK is owed now; cleared by every segment we send. */
  ackNow = false;
  #tcb: TcpControlBlock;
  #quota: MemoryQuota;
  /** Sequence number of a FIN that arrived beyond a hole. */
  #pendingFinSeq: number | undefined;
  /** In-order segments received since our last ACK (ACK every second one, RFC 5681 §4.2). */
  #unackedSegments = 0;
  /** The receive buffer now: from `recvBufferBytes`, grown by autotuning. */
  #rcvBuf: number;
  /** Autotuning: when the current measurement round started, and what the application read in it. */
  #drsAt = -Infinity;
  #drsCopied = 0;
  /** The round-trip time seen by the receiver (from timestamps echoed in data), ms; 0 unknown. */
  #rcvRtt = 0;

  /** Creates the receive side of the connection of `tcb`. */
  constructor(tcb: TcpControlBlock) {
    this.#tcb = tcb;
    this.#quota = tcb.host.quota.memory;
    this.#rcvBuf = tcb.config.recvBufferBytes;
    this.queue = new ReceiveQueue(this.#quota);
    this.reassembler = new Reassembler({
      // Room for the window rounded up to the scale; never above the reassembler's 2^30 limit.
      capacity: Math.min(tcb.config.recvBufferMaxBytes + (1 << TCP_MAX_WINDOW_SCALE), 1 << 30),
      quota: this.#quota,
    });
  }

  /** Bytes waiting for the application to read. */
  get readableBytes(): number {
    return this.queue.length;
  }

  /** Whether the peer's FIN was received and all data before it was read. */
  get readEnded(): boolean {
    return this.finReceived && this.queue.length === 0;
  }

  /** Whether received data waits that the application has not read (in order or not). */
  get hasUnread(): boolean {
    return this.queue.length > 0 || this.reassembler.bufferedBytes > 0;
  }

  /** RCV.WND: what remains of the window we advertised. */
  window(): number {
    return seqSpan(this.#tcb.rcvNxt, this.#tcb.rcvAdvRight);
  }

  /**
   * Whether a segment of `len` sequence numbers at `seq` is acceptable
   * (RFC 9293 §3.10.7.4, the table of the first step).
   */
  acceptable(seq: number, len: number): boolean {
    const nxt = this.#tcb.rcvNxt;
    const wnd = this.window();
    if (len === 0) {
      if (wnd === 0) return seq === nxt;
      return seqInRange(seq, nxt, seqAdd(nxt, wnd));
    }
    if (wnd === 0) return false;
    const right = seqAdd(nxt, wnd);
    return seqInRange(seq, nxt, right) || seqInRange(seqAdd(seq, len - 1), nxt, right);
  }

  /**
   * RFC 9293 §3.10.7.4 "seventh, process the segment text" and "eighth,
   * check the FIN bit": delivers in-order text to the receive queue (and
   * what it joins from the out-of-order store), keeps text beyond a hole,
   * decides whether an ACK is owed now or may wait, and advances RCV.NXT
   * past the FIN. Returns {@linkcode TcpReceived} bits for the state
   * machine; with DATA_FOR_ORPHAN nothing after the data was processed.
   * Text whose storage the memory quota refuses is dropped (QUOTA_DROP);
   * the caller answers with a rate-limited ACK.
   */
  processText(seg: TcpRepr, now: number, orphaned: boolean): number {
    const tcb = this.#tcb;
    const st = tcb.state;
    const canReceive = st === "ESTABLISHED" || st === "FIN_WAIT_1" || st === "FIN_WAIT_2";
    let payload = seg.payload;
    let seq = seg.seqNumber;
    if (seg.flags & TcpFlags.SYN) seq = seqAdd(seq, 1);
    let result = 0;
    if (canReceive && payload.length > 0 && !this.finReceived) {
      // Trim what we already have (RFC 9293 §3.10.7.4: "trimmed ... to the window").
      const behind = seqSub(tcb.rcvNxt, seq);
      if (behind > 0) {
        payload = payload.subarray(Math.min(behind, payload.length));
        seq = tcb.rcvNxt;
      }
      const wnd = seqSpan(seq, tcb.rcvAdvRight);
      if (payload.length > wnd) payload = payload.subarray(0, wnd);
      if (payload.length > 0 && seq === tcb.rcvNxt) {
        if (!this.#deliver(payload, false)) {
          result |= TcpReceived.QUOTA_DROP;
        } else {
          // A hole was filled (RFC 5681 §4.2): ACK at once.
          if (this.reassembler.bufferedBytes > 0 && this.#drainReassembler()) this.ackNow = true;
          // Data for an application that is gone (RFC 9293 §3.10.4, RFC 2525 §2.17).
          if (orphaned) return TcpReceived.DATA_FOR_ORPHAN;
          // A large segment (a GSO packet the link passed whole) counts as the segments it
          // stands for: acknowledged by bytes, as Linux's GRO would have it.
          const mss = tcb.mssOffer;
          this.#unackedSegments += payload.length > mss ? Math.ceil(payload.length / mss) : 1;
          if (this.#unackedSegments >= 2 || this.reassembler.bufferedBytes > 0) this.ackNow = true;
          else tcb.timers.startIfStopped(TcpTimer.DELAYED_ACK, now + tcb.config.delayedAckMs);
        }
      } else if (payload.length > 0) {
        // Out of order: keep a copy and send a duplicate ACK with SACK now (RFC 5681 §4.2).
        const refusals = this.reassembler.counters.quotaSegments;
        this.reassembler.add(seq, payload, tcb.rcvNxt, this.window());
        if (this.reassembler.counters.quotaSegments === refusals) this.ackNow = true;
        else result |= TcpReceived.QUOTA_DROP;
      }
    } else if (payload.length > 0) {
      this.ackNow = true;
    }

    if (seg.flags & TcpFlags.FIN) {
      const fin = seqAdd(seg.seqNumber, ((seg.flags & TcpFlags.SYN) ? 1 : 0) + seg.payload.length);
      if (fin === tcb.rcvNxt) result |= this.#receiveFin();
      else if (seqGt(fin, tcb.rcvNxt)) this.#pendingFinSeq = fin;
      this.ackNow = true;
    } else if (this.#pendingFinSeq !== undefined && this.#pendingFinSeq === tcb.rcvNxt) {
      result |= this.#receiveFin();
    }
    return result;
  }

  /**
   * Appends in-order text to the receive queue and moves RCV.NXT past it;
   * false (nothing taken) when the quota refuses its storage, unless
   * `force` (bytes moved from the reassembler, which the core holds already).
   */
  #deliver(chunk: Uint8Array, force: boolean): boolean {
    const tcb = this.#tcb;
    if (!this.queue.append(chunk, force)) return false;
    tcb.rcvNxt = seqAdd(tcb.rcvNxt, chunk.length);
    tcb.stats.bytesReceived += chunk.length;
    tcb.signal(TcpEvent.READABLE);
    return true;
  }

  /**
   * Moves the bytes the reassembler holds from RCV.NXT on into the receive
   * queue, a page at a time while the quota can pay for the queue's storage
   * (each page freed pays for the next); what stays is moved by a later
   * read. Returns whether any moved.
   */
  #drainReassembler(): boolean {
    const tcb = this.#tcb;
    let moved = false;
    for (;;) {
      const k = this.reassembler.nextPopSize(tcb.rcvNxt);
      if (k === 0 || this.queue.costToAppend(k) > this.#quota.available) break;
      // pop() lends a view of one page: the queue copies it. The charge was checked above;
      // force only guards the invariant that popped bytes are never lost.
      this.reassembler.pop(tcb.rcvNxt, (view) => this.#deliver(view, true), k);
      moved = true;
    }
    return moved;
  }

  #receiveFin(): number {
    if (this.finReceived) return 0;
    const tcb = this.#tcb;
    this.finReceived = true;
    this.#pendingFinSeq = undefined;
    tcb.rcvNxt = seqAdd(tcb.rcvNxt, 1);
    this.ackNow = true;
    tcb.signal(TcpEvent.READABLE);
    return TcpReceived.FIN;
  }

  /**
   * Takes up to `max` bytes for the application, or undefined when none is
   * queued. When reading opens the window by a useful amount (2 MSS, half
   * the buffer, or from below one MSS), sets {@linkcode TcpReceiver.ackNow}:
   * the caller sends the window update (RFC 9293 §3.8.6.2.2).
   */
  read(max: number, now = 0): Uint8Array | undefined {
    if (this.queue.length === 0) return undefined;
    const tcb = this.#tcb;
    const before = this.advertisableWindow();
    const out = this.queue.read(max);
    if (out !== undefined) this.#autotune(out.length, now);
    // Bytes held beyond a filled hole that the quota kept out of the queue: in now, and ACKed.
    if (this.reassembler.contiguousBytes(tcb.rcvNxt) > 0 && this.#drainReassembler()) {
      this.ackNow = true;
    }
    // A delayed ACK is owed for a full segment and the application took everything: acknowledge
    // now, so that a bulk sender waiting on it (Nagle, cwnd) goes on; a smaller one waits to
    // ride on the reply (as Linux's tcp_cleanup_rbuf).
    if (
      this.#unackedSegments > 0 && this.queue.length === 0 &&
      seqSpan(tcb.lastAckSent, tcb.rcvNxt) >= tcb.sendMss
    ) {
      this.ackNow = true;
    }
    // A window update only when the window we advertised is at most half the buffer (the peer
    // may be held back, as in tcp_cleanup_rbuf) and it opens by a useful amount.
    const window = this.window();
    if (tcb.synchronized() && !this.finReceived && 2 * window <= this.#rcvBuf) {
      const after = this.advertisableWindow();
      const opened = after - window;
      if (
        opened >= 2 * tcb.sendMss || opened >= this.#rcvBuf / 2 ||
        (before < tcb.sendMss && after >= tcb.sendMss)
      ) {
        this.ackNow = true;
      }
    }
    return out;
  }

  /** The receive buffer now (`recvBufferBytes` at first, grown by autotuning). */
  get bufferBytes(): number {
    return this.#rcvBuf;
  }

  /**
   * Receive-buffer autotuning (as Linux's tcp_rcv_space_adjust): each round
   * trip, when the application read more than half the buffer, the buffer
   * grows to twice what it read (in 64 KiB steps, up to
   * `recvBufferMaxBytes`): a fast reader gets a window the path can fill; a
   * slow one keeps a small one, and the memory quota caps both.
   */
  #autotune(copied: number, now: number): void {
    const max = this.#tcb.config.recvBufferMaxBytes;
    if (this.#rcvBuf >= max) return;
    this.#drsCopied += copied;
    const rtt = this.#rcvRtt > 1 ? this.#rcvRtt : 1;
    if (now - this.#drsAt < rtt) return;
    const c = this.#drsCopied;
    this.#drsAt = now;
    this.#drsCopied = 0;
    if (2 * c <= this.#rcvBuf) return;
    const step = 64 * 1024;
    this.#rcvBuf = Math.min(max, Math.ceil((2 * c) / step) * step);
  }

  /** A round-trip sample from the timestamp echoed in a data segment (RFC 7323 §4), ms. */
  noteRtt(sample: number): void {
    if (!(sample >= 0 && sample < 60_000)) return;
    this.#rcvRtt = this.#rcvRtt === 0 ? sample : this.#rcvRtt + (sample - this.#rcvRtt) / 8;
  }

  /**
   * The receive window we can offer: free buffer, no more than the memory
   * quota can still hold, capped by the scale's range.
   */
  advertisableWindow(): number {
    const free = Math.max(0, this.#rcvBuf - this.queue.length);
    return Math.min(free, this.#quotaWindow(), 65535 << this.#tcb.rcvWscale);
  }

  /**
   * The most bytes from RCV.NXT on that the session's memory quota lets this
   * connection hold: what it holds out of order already, the room left in
   * the receive queue's last chunk, and new pages for what the quota still
   * allows after keeping room to move out-of-order bytes into the queue.
   */
  #quotaWindow(): number {
    return this.queue.tailRoom + this.reassembler.bufferedBytes +
      quotaWindowBytes(this.#quota.available);
  }

  /**
   * The window field of a segment we send now, recording the right edge it
   * advertises. The edge moves right only by a useful amount (receiver-side
   * SWS avoidance, RFC 9293 §3.8.6.2.2) and never left (RFC 7323 §2.4),
   * except when the memory quota can no longer hold what was offered: then
   * it moves back to what the quota allows, so that a peer that keeps to
   * the window sends nothing that would be dropped (RFC 9293 §3.8.6.2.2
   * discourages shrinking but allows it; Linux does it under memory
   * pressure with tcp_shrink_window).
   */
  advertise(): number {
    const tcb = this.#tcb;
    const free = this.advertisableWindow();
    let right = seqAdd(tcb.rcvNxt, free);
    const grow = seqSub(right, tcb.rcvAdvRight);
    if (grow < Math.min(this.#rcvBuf / 2, tcb.sendMss) && grow > 0 && free > 0) {
      right = tcb.rcvAdvRight;
    }
    if (seqLt(right, tcb.rcvAdvRight)) {
      right = seqMin(tcb.rcvAdvRight, seqAdd(tcb.rcvNxt, this.#quotaWindow()));
    }
    const shift = tcb.rcvWscale;
    const field = Math.min(65535, (seqSpan(tcb.rcvNxt, right) + (1 << shift) - 1) >>> shift);
    tcb.rcvAdvRight = seqAdd(tcb.rcvNxt, field << shift);
    return field;
  }

  /** SACK blocks for a segment we send now (RFC 2018 §4), or undefined. */
  sackBlocks(): TcpSackBlock[] | undefined {
    const tcb = this.#tcb;
    if (!tcb.sackEnabled || this.reassembler.rangeCount === 0) return undefined;
    return this.reassembler.sackBlocks(tcb.tsEnabled ? 3 : 4);
  }

  /** A segment carrying our ACK of RCV.NXT was sent: nothing is owed any more. */
  ackSent(): void {
    const tcb = this.#tcb;
    tcb.lastAckSent = tcb.rcvNxt;
    this.#unackedSegments = 0;
    this.ackNow = false;
    tcb.timers.stop(TcpTimer.DELAYED_ACK);
  }

  /** Frees the out-of-order store (the connection closed: nothing more arrives). */
  closed(): void {
    this.reassembler.clear();
  }

  /** Frees everything it holds, unread bytes included (nobody will read them). */
  free(): void {
    this.reassembler.clear();
    this.queue.clear();
  }

  /** Bytes of storage charged to the memory quota now. */
  get chargedBytes(): number {
    return this.queue.chargedBytes + this.reassembler.chargedBytes;
  }
}
