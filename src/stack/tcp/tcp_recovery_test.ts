import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { seqGe, seqGt, seqLe, seqLt } from "./seq.ts";
import { bytes, dataSegs, DEFAULT_PEER_SYN, established, Peer, TcpHarness } from "./tcp_harness.ts";
import type { TcpRepr, TcpSackBlock } from "../../wire/mod.ts";
import type { TcpConfig } from "./tcp_config.ts";
import type { TcpConnection } from "./tcp_connection.ts";

const MSS = 1460;

/**
 * An established connection (active open, SYN RTT 100 ms so RTO = 300 ms) to a
 * peer with a large window; `n` full segments are sent and returned.
 */
function inFlight(n: number, tcp: Partial<TcpConfig> = {}, sack = false) {
  const o = established({
    active: true,
    handshakeRttMs: 100,
    tcp,
    peer: { syn: { mss: 1460, sackPermitted: sack, windowScale: 7 }, window: 8 << 20 },
  });
  o.peer.inject({}); // the peer's first ACK carries its scaled window (RFC 7323 §2.2)
  o.conn.send(bytes(n * MSS), o.h.now);
  const sent = o.peer.drain();
  assert.equal(sent.length, n, `expected ${n} segments in flight`);
  for (const s of sent) assert.equal(s.payload.length, MSS);
  return { ...o, sent };
}

function block(sent: TcpRepr[], from: number, to = from): TcpSackBlock {
  return { left: sent[from].seqNumber, right: (sent[to].seqNumber + MSS) >>> 0 };
}

function seqs(segs: TcpRepr[]): number[] {
  return segs.map((s) => s.seqNumber);
}

describe("TcpConnection fast retransmit (RFC 5681 §3.2)", () => {
  it("retransmits the first unacknowledged segment on the third duplicate ACK, not before", () => {
    const { h, peer, conn, sent } = inFlight(10, { congestionControl: "newreno" });
    h.advance(100);
    peer.inject({});
    peer.inject({});
    assert.deepEqual(peer.drain(), [], "two duplicate ACKs are not enough");
    peer.inject({});
    const rxt = peer.drain();
    assert.equal(rxt.length, 1);
    assert.equal(rxt[0].seqNumber, sent[0].seqNumber);
    assert.deepEqual(rxt[0].payload, sent[0].payload);
    assert.equal(conn.info().fastRetransmits, 1);
    assert.equal(conn.info().retransmits, 1);
  });

  it("NewReno: ssthresh = max(FlightSize / 2, 2*SMSS) and cwnd = ssthresh (RFC 5681 §3.2 step 2, eq. 4)", () => {
    const { h, peer, conn } = inFlight(10, { congestionControl: "newreno" });
    h.advance(100);
    for (let i = 0; i < 3; i++) peer.inject({});
    const i = conn.info();
    assert.equal(i.ssthresh, 5 * MSS);
    assert.equal(i.cwnd, 5 * MSS);
  });

  it("NewReno: ssthresh never drops below 2*SMSS (RFC 5681 §3.1 eq. 4)", () => {
    const { h, peer, conn } = inFlight(3, { congestionControl: "newreno" });
    h.advance(100);
    for (let i = 0; i < 3; i++) peer.inject({});
    assert.equal(conn.info().ssthresh, 2 * MSS);
  });

  it("CUBIC: ssthresh = β_cubic * FlightSize with β = 0.7 (RFC 9438 §4.6)", () => {
    const { h, peer, conn } = inFlight(10);
    assert.equal(conn.info().congestionControl, "cubic");
    h.advance(100);
    for (let i = 0; i < 3; i++) peer.inject({});
    const i = conn.info();
    assert.equal(i.ssthresh, Math.round(10 * MSS * 0.7));
    assert.equal(i.cwnd, i.ssthresh);
  });

  it("does not count an ACK that changes the window as a duplicate (RFC 5681 §2)", () => {
    const { h, peer, conn } = inFlight(10);
    h.advance(100);
    for (let i = 0; i < 4; i++) peer.inject({ windowLen: 60000 - i * 1000 });
    assert.deepEqual(dataSegs(peer.drain()), []);
    assert.equal(conn.info().fastRetransmits, 0);
  });

  it("does not count an ACK that carries data as a duplicate (RFC 5681 §2)", () => {
    const { h, peer, conn } = inFlight(10);
    h.advance(100);
    for (let i = 0; i < 4; i++) peer.send(10);
    assert.deepEqual(dataSegs(peer.drain()), []);
    assert.equal(conn.info().fastRetransmits, 0);
  });

  it("does not count ACKs while nothing is outstanding (RFC 5681 §2)", () => {
    const { h, peer, conn } = inFlight(2);
    h.advance(100);
    peer.ackTo(conn.debugSeq().sndMax);
    for (let i = 0; i < 5; i++) peer.inject({});
    assert.deepEqual(peer.drain(), []);
    assert.equal(conn.info().fastRetransmits, 0);
    assert.equal(conn.info().ssthresh, null);
  });

  it("reduces the window once per loss event: more duplicate ACKs in recovery do not (RFC 6582 §3.2)", () => {
    const { h, peer, conn } = inFlight(10, { congestionControl: "newreno" });
    h.advance(100);
    for (let i = 0; i < 3; i++) peer.inject({});
    const ssthresh = conn.info().ssthresh;
    for (let i = 0; i < 6; i++) peer.inject({});
    assert.equal(conn.info().ssthresh, ssthresh);
    assert.equal(conn.info().fastRetransmits, 1);
  });

  it("sends new data as duplicate ACKs show segments leaving the network during recovery", () => {
    const { h, peer, conn, sent } = inFlight(10, { congestionControl: "newreno" });
    conn.send(bytes(10 * MSS), h.now); // queued: cwnd is full
    assert.deepEqual(peer.drain(), []);
    h.advance(100);
    for (let i = 0; i < 3; i++) peer.inject({});
    peer.drain(); // the retransmission
    // cwnd = 5 segments, 10 in flight, each further duplicate ACK means one more has left.
    for (let i = 0; i < 9; i++) peer.inject({});
    const fresh = dataSegs(peer.drain());
    assert.ok(fresh.length >= 1, "new data is clocked out by the duplicate ACKs");
    for (const s of fresh) {
      assert.ok(
        seqGt(s.seqNumber, sent[9].seqNumber),
        "only new data, no spurious retransmission",
      );
    }
  });
});

describe("TcpConnection NewReno partial ACKs without SACK (RFC 6582 §3.2)", () => {
  it("retransmits the next hole at once on a partial ACK (RFC 6582 §3.2 step 3)", () => {
    const { h, peer, conn, sent } = inFlight(10, { congestionControl: "newreno" });
    h.advance(100);
    for (let i = 0; i < 3; i++) peer.inject({});
    assert.deepEqual(seqs(peer.drain()), [sent[0].seqNumber]);
    // Segments 0..2 are now in, 3 was lost too: the ACK covers less than the recovery point.
    h.advance(100);
    peer.ackTo(sent[3].seqNumber);
    const rxt = dataSegs(peer.drain());
    assert.equal(rxt[0].seqNumber, sent[3].seqNumber);
    assert.equal(conn.info().fastRetransmits, 1, "no new loss event");
    assert.equal(conn.info().ssthresh, 5 * MSS);
  });

  it("exits recovery on the full ACK with cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS) (RFC 6582 §3.2 step 3)", () => {
    const { h, peer, conn, sent } = inFlight(10, { congestionControl: "newreno" });
    h.advance(100);
    for (let i = 0; i < 3; i++) peer.inject({});
    peer.drain();
    h.advance(100);
    peer.ackTo((sent[9].seqNumber + MSS) >>> 0);
    assert.equal(conn.info().cwnd, 2 * MSS, "FlightSize 0: SMSS + SMSS");
    assert.equal(conn.info().ssthresh, 5 * MSS);
    assert.equal(conn.info().bytesInFlight, 0);
  });

  it("after recovery, the next three duplicate ACKs are a new loss event", () => {
    const { h, peer, conn, sent } = inFlight(10, { congestionControl: "newreno" });
    h.advance(100);
    for (let i = 0; i < 3; i++) peer.inject({});
    peer.drain();
    h.advance(100);
    peer.ackTo((sent[9].seqNumber + MSS) >>> 0);
    conn.send(bytes(4 * MSS), h.now);
    const next = peer.drain();
    assert.equal(next.length, 2, "cwnd 2 SMSS");
    h.advance(100);
    peer.ackTo(next[1].seqNumber + MSS);
    const more = dataSegs(peer.drain());
    assert.ok(more.length >= 2);
    for (let i = 0; i < 3; i++) peer.inject({});
    const rxt = dataSegs(peer.drain());
    assert.equal(rxt[0].seqNumber, more[0].seqNumber);
    assert.equal(conn.info().fastRetransmits, 2);
  });
});

describe("TcpConnection SACK-based loss recovery (RFC 6675, RFC 2018)", () => {
  it("enters recovery on the third duplicate ACK with SACK blocks and retransmits the hole", () => {
    const { h, peer, conn, sent } = inFlight(10, {}, true);
    h.advance(100);
    peer.dupAck([block(sent, 1)]);
    peer.dupAck([block(sent, 1, 2)]);
    assert.deepEqual(peer.drain(), []);
    peer.dupAck([block(sent, 1, 3)]);
    const rxt = dataSegs(peer.drain());
    assert.equal(rxt[0].seqNumber, sent[0].seqNumber);
    assert.equal(conn.info().fastRetransmits, 1);
  });

  it("enters recovery on one ACK that SACKs three segments above the hole (RFC 6675 §4 IsLost)", () => {
    const { h, peer, conn, sent } = inFlight(10, {}, true);
    h.advance(100);
    peer.dupAck([block(sent, 1, 3)]); // the ACKs for segments 1 and 2 were lost
    const rxt = dataSegs(peer.drain());
    assert.equal(rxt[0].seqNumber, sent[0].seqNumber);
    assert.equal(conn.info().fastRetransmits, 1);
  });

  it("retransmits every hole and skips SACKed data (RFC 6675 §5 NextSeg)", () => {
    const { h, peer, conn, sent } = inFlight(10, {}, true);
    h.advance(100);
    // Segments 0, 2 and 4 were lost.
    peer.dupAck([block(sent, 5, 9), block(sent, 3), block(sent, 1)]);
    const rxt = dataSegs(peer.drain());
    assert.deepEqual(seqs(rxt), [sent[0].seqNumber, sent[2].seqNumber, sent[4].seqNumber]);
    assert.equal(conn.info().retransmits, 3);
  });

  it("does not retransmit data above the highest SACK, which is still in flight (RFC 6675 §5 NextSeg)", () => {
    const { h, peer, conn, sent } = inFlight(10, { congestionControl: "newreno" }, true);
    conn.send(bytes(10 * MSS), h.now); // queued behind the full cwnd
    assert.deepEqual(peer.drain(), []);
    h.advance(100);
    // Segment 0 is lost; 1..7 arrive one by one and are SACKed, 8 and 9 are on their way.
    for (let i = 1; i <= 7; i++) peer.dupAck([block(sent, 1, i)]);
    const newData = (sent[9].seqNumber + MSS) >>> 0;
    const old = dataSegs(peer.drain()).filter((s) => seqLt(s.seqNumber, newData));
    assert.deepEqual(seqs(old), [sent[0].seqNumber], "only the hole is retransmitted, not 8 or 9");
    assert.equal(conn.info().retransmits, 1);
  });

  it("retransmits the remaining holes as partial ACKs arrive, each hole once", () => {
    const { h, peer, conn, sent } = inFlight(10, {}, true);
    h.advance(100);
    peer.dupAck([block(sent, 5, 9), block(sent, 3), block(sent, 1)]);
    peer.drain();
    h.advance(100);
    peer.ackTo(sent[2].seqNumber, { sackBlocks: [block(sent, 5, 9), block(sent, 3)] });
    assert.deepEqual(dataSegs(peer.drain()), [], "segments 2 and 4 were already retransmitted");
    peer.ackTo((sent[9].seqNumber + MSS) >>> 0);
    assert.equal(conn.info().bytesInFlight, 0);
    assert.equal(conn.info().retransmits, 3);
    assert.equal(conn.nextDeadline(), undefined);
  });

  it("keeps the pipe at or below cwnd while retransmitting holes (RFC 6675 §5 step 4)", () => {
    const { h, peer, conn } = established({
      active: true,
      handshakeRttMs: 100,
      tcp: { congestionControl: "newreno" },
      peer: { syn: { ...DEFAULT_PEER_SYN, windowScale: 7 }, window: 8 << 20 },
    });
    peer.inject({});
    conn.send(bytes(30 * MSS), h.now);
    const first = peer.drain();
    assert.equal(first.length, 10);
    h.advance(100);
    // Each ACK of one segment grows cwnd by one segment and clocks out two more.
    for (const s of first) peer.ackTo((s.seqNumber + MSS) >>> 0);
    assert.equal(conn.info().cwnd, 20 * MSS);
    const sent = dataSegs(peer.drain());
    assert.equal(sent.length, 20);
    h.advance(100);
    // Segments 0..13 are lost; 14..16 arrive and are SACKed: recovery starts.
    peer.dupAck([block(sent, 14)]);
    peer.dupAck([block(sent, 14, 15)]);
    peer.dupAck([block(sent, 14, 16)]);
    assert.equal(conn.info().cwnd, 10 * MSS, "ssthresh = FlightSize / 2");
    // pipe = retransmitted + 3 segments above the highest SACK: 7 retransmissions fit.
    assert.deepEqual(seqs(dataSegs(peer.drain())), sent.slice(0, 7).map((s) => s.seqNumber));
    // Each later SACK takes one segment out of the pipe: one more retransmission each.
    peer.dupAck([block(sent, 14, 17)]);
    peer.dupAck([block(sent, 14, 18)]);
    peer.dupAck([block(sent, 14, 19)]);
    assert.deepEqual(seqs(dataSegs(peer.drain())), sent.slice(7, 10).map((s) => s.seqNumber));
    assert.equal(conn.info().retransmits, 10, "holes 10..13 wait: the pipe is full");
  });

  it("re-arms the retransmission timer when it retransmits in recovery (RFC 6675 §6)", () => {
    const { h, peer, conn, sent } = inFlight(10, {}, true); // RTO 300
    h.advance(150);
    peer.dupAck([block(sent, 1)]);
    peer.dupAck([block(sent, 1, 2)]);
    peer.dupAck([block(sent, 1, 3)]);
    assert.equal(dataSegs(peer.drain())[0].seqNumber, sent[0].seqNumber);
    // The timer armed at the first send would expire 150 ms from now; the retransmission
    // gets a full RTO to be acknowledged.
    h.advance(299);
    assert.deepEqual(dataSegs(peer.drain()), []);
    assert.equal(conn.info().timeouts, 0);
    peer.ackTo((sent[9].seqNumber + MSS) >>> 0);
    assert.equal(conn.info().timeouts, 0);
    assert.equal(conn.info().bytesInFlight, 0);
  });
});

describe("TcpConnection congestion window after a retransmission timeout (RFC 5681 §3.1)", () => {
  it("NewReno: cwnd = 1 SMSS (the loss window) and ssthresh = max(FlightSize/2, 2*SMSS)", () => {
    const { h, conn, peer } = inFlight(10, { congestionControl: "newreno" });
    h.advance(300);
    assert.equal(dataSegs(peer.drain()).length, 1);
    assert.equal(conn.info().cwnd, MSS);
    assert.equal(conn.info().ssthresh, 5 * MSS);
  });

  it("CUBIC: cwnd = 1 SMSS and ssthresh = 0.7 * FlightSize (RFC 9438 §4.8)", () => {
    const { h, conn } = inFlight(10);
    h.advance(300);
    assert.equal(conn.info().cwnd, MSS);
    assert.equal(conn.info().ssthresh, Math.round(10 * MSS * 0.7));
  });

  it("keeps ssthresh on a repeated timeout of the same data (RFC 5681 §3.1)", () => {
    const { h, conn } = inFlight(10, { congestionControl: "newreno" });
    h.advance(300);
    const ssthresh = conn.info().ssthresh;
    h.advance(600);
    assert.equal(conn.info().timeouts, 2);
    assert.equal(conn.info().ssthresh, ssthresh);
    assert.equal(conn.info().cwnd, MSS);
  });

  it("slow-starts from one segment after the timeout, going back to SND.UNA (RFC 5681 §3.1, RFC 3465 §2.3)", () => {
    const { h, conn, peer, sent } = inFlight(10, { congestionControl: "newreno" });
    h.advance(300);
    const [r0] = dataSegs(peer.drain());
    assert.equal(r0.seqNumber, sent[0].seqNumber);
    h.advance(100);
    peer.ackTo(sent[1].seqNumber);
    assert.equal(conn.info().cwnd, 2 * MSS, "L = 1 SMSS after an RTO");
    assert.deepEqual(seqs(dataSegs(peer.drain())), [sent[1].seqNumber, sent[2].seqNumber]);
    h.advance(100);
    peer.ackTo(sent[3].seqNumber);
    assert.equal(conn.info().cwnd, 3 * MSS);
  });

  it("does not start a fast retransmit for duplicate ACKs of data sent before the timeout (RFC 6582 §3.2 step 2)", () => {
    const { h, conn, peer, sent } = inFlight(10, { congestionControl: "newreno" });
    h.advance(300);
    assert.deepEqual(seqs(dataSegs(peer.drain())), [sent[0].seqNumber]);
    const ssthresh = conn.info().ssthresh;
    // Segments 1..9 arrive late; the receiver still misses 0 and sends duplicate ACKs.
    for (let i = 0; i < 9; i++) peer.inject({});
    assert.deepEqual(peer.drain(), [], "no fast retransmit, no burst");
    assert.equal(conn.info().fastRetransmits, 0);
    assert.equal(conn.info().cwnd, MSS);
    assert.equal(conn.info().ssthresh, ssthresh);
    // The retransmission fills the hole: slow start resumes from one segment.
    peer.ackTo((sent[9].seqNumber + MSS) >>> 0);
    assert.equal(conn.info().cwnd, 2 * MSS);
  });

  it("after the timeout, does not resend what the receiver SACKed (RFC 6675 §5.1)", () => {
    const { h, conn, peer, sent } = inFlight(4, {}, true);
    h.advance(100);
    peer.dupAck([block(sent, 3), block(sent, 1)]); // 0 and 2 lost; not enough for recovery
    assert.deepEqual(peer.drain(), []);
    // Fire timers until the RTO (a tail loss probe, RFC 8985, may come first).
    while (conn.info().timeouts === 0) h.fireNextTimer();
    const rxt = dataSegs(peer.drain());
    assert.equal(rxt[rxt.length - 1].seqNumber, sent[0].seqNumber, "the RTO resends SND.UNA");
    h.advance(50);
    peer.ackTo(sent[2].seqNumber, { sackBlocks: [block(sent, 3)] });
    assert.deepEqual(seqs(dataSegs(peer.drain())), [sent[2].seqNumber], "segment 3 is skipped");
    assert.equal(conn.info().cwnd, 2 * MSS);
  });
});

describe("TcpConnection tail loss probes and lost retransmissions (RFC 8985)", () => {
  it("a probe the receiver SACKs while the tail below it is missing starts recovery at once (§7.4, §6.2)", () => {
    const { h, peer, conn, sent } = inFlight(10, {}, true);
    h.advance(100);
    peer.ackTo(sent[5].seqNumber); // 0..4 arrived; 5..9, the tail, were lost
    assert.deepEqual(peer.drain(), []);
    // The probe timer fires (2 SRTT, before the RTO): the last segment goes out again.
    h.fireNextTimer();
    const probe = dataSegs(peer.drain());
    assert.deepEqual(seqs(probe), [sent[9].seqNumber], "the probe repeats the last segment");
    assert.equal(conn.info().timeouts, 0);
    // Its ACK SACKs it; the window changed too, so it is no duplicate ACK (RFC 5681 §2).
    peer.ackTo(sent[5].seqNumber, { sackBlocks: [block(sent, 9)], windowLen: 60000 });
    const rxt = dataSegs(peer.drain());
    assert.deepEqual(seqs(rxt), [5, 6, 7, 8].map((i) => sent[i].seqNumber));
    assert.equal(conn.info().fastRetransmits, 1);
    assert.equal(conn.info().timeouts, 0);
  });

  it("a probe whose ACK SACKs nothing starts no recovery", () => {
    const { h, peer, conn, sent } = inFlight(10, {}, true);
    h.advance(100);
    peer.ackTo(sent[5].seqNumber);
    h.fireNextTimer();
    peer.drain();
    peer.dupAck(); // an ACK without SACK blocks: nothing is known lost
    assert.deepEqual(peer.drain(), []);
    assert.equal(conn.info().fastRetransmits, 0);
  });

  it("resends a lost retransmission when no ACK comes to show it, well before the RTO (§6.3)", () => {
    const { h, peer, conn, sent } = inFlight(10, {}, true);
    h.advance(100);
    // Segment 0 was lost; everything else arrives and is SACKed.
    peer.dupAck([block(sent, 1, 9)]);
    const first = dataSegs(peer.drain());
    assert.deepEqual(seqs(first), [sent[0].seqNumber], "fast retransmit");
    const at = h.now;
    // The retransmission is lost too, and nothing else is in flight to draw an ACK.
    const rto = h.stack.tcp.active.values().next().value!.nextDeadline()!;
    h.fireNextTimer();
    const again = dataSegs(peer.drain());
    assert.deepEqual(seqs(again), [sent[0].seqNumber], "sent again");
    assert.ok(h.now - at < 300, `after ${h.now - at} ms, before the RTO (300 ms)`);
    assert.ok(h.now < rto || conn.info().timeouts === 0);
    assert.equal(conn.info().timeouts, 0);
    // Its ACK ends the recovery.
    peer.ackTo((sent[9].seqNumber + MSS) >>> 0);
    assert.equal(conn.info().bytesInFlight, 0);
  });
});

/**
 * A path with a fixed RTT and unlimited bandwidth: segments reach a model
 * receiver after RTT/2, which ACKs each one (with SACK blocks) after RTT/2
 * more. The application keeps the send buffer full.
 */
class Path {
  readonly h: TcpHarness;
  readonly peer: Peer;
  readonly conn: TcpConnection;
  readonly rtt: number;
  #toPeer: Array<{ at: number; seg: TcpRepr }> = [];
  #toStack: Array<{ at: number; ack: number; sack: TcpSackBlock[] }> = [];
  #rcvNxt: number;
  #ooo: TcpSackBlock[] = [];
  /** Return true to lose a data segment. */
  drop: (seg: TcpRepr) => boolean = () => false;

  constructor(congestionControl: "cubic" | "newreno", rtt: number) {
    const o = established({
      active: true,
      handshakeRttMs: rtt,
      tcp: { congestionControl, sendBufferBytes: 4 << 20 },
      peer: { syn: { ...DEFAULT_PEER_SYN, windowScale: 9 }, window: 32 << 20 },
    });
    this.h = o.h;
    this.peer = o.peer;
    this.conn = o.conn;
    this.rtt = rtt;
    this.#rcvNxt = o.peer.ack;
    o.peer.inject({}); // the peer's first ACK carries its scaled window
  }

  /** Runs for `ms` in 1 ms steps. */
  run(ms: number, each?: () => void): void {
    const end = this.h.now + ms;
    while (this.h.now < end) {
      this.h.advance(1);
      const now = this.h.now;
      while (this.#toStack.length > 0 && this.#toStack[0].at <= now) {
        const a = this.#toStack.shift()!;
        this.peer.ackTo(a.ack, a.sack.length > 0 ? { sackBlocks: a.sack } : {});
      }
      this.#fill();
      for (const seg of this.peer.drain()) {
        if (seg.payload.length === 0 || this.drop(seg)) continue;
        this.#toPeer.push({ at: now + this.rtt / 2, seg });
      }
      while (this.#toPeer.length > 0 && this.#toPeer[0].at <= now) {
        this.#receive(this.#toPeer.shift()!.seg, now);
      }
      each?.();
    }
  }

  #fill(): void {
    const n = this.conn.writableBytes;
    if (n > 0) this.conn.send(new Uint8Array(n), this.h.now);
  }

  #receive(seg: TcpRepr, now: number): void {
    const l = seg.seqNumber;
    const r = (l + seg.payload.length) >>> 0;
    if (seqLe(l, this.#rcvNxt)) {
      if (seqGt(r, this.#rcvNxt)) this.#rcvNxt = r;
      // Pull in held blocks that are now contiguous.
      let moved = true;
      while (moved) {
        moved = false;
        for (let i = 0; i < this.#ooo.length; i++) {
          const b = this.#ooo[i];
          if (seqLe(b.left, this.#rcvNxt)) {
            if (seqGt(b.right, this.#rcvNxt)) this.#rcvNxt = b.right;
            this.#ooo.splice(i, 1);
            moved = true;
            break;
          }
        }
      }
    } else {
      // Merge with an adjacent block; the newest block goes first (RFC 2018 §4).
      let nl = l;
      let nr = r;
      this.#ooo = this.#ooo.filter((b) => {
        if (seqGe(b.right, nl) && seqGe(nr, b.left)) {
          if (seqLt(b.left, nl)) nl = b.left;
          if (seqGt(b.right, nr)) nr = b.right;
          return false;
        }
        return true;
      });
      this.#ooo.unshift({ left: nl, right: nr });
    }
    this.#toStack.push({ at: now + this.rtt / 2, ack: this.#rcvNxt, sack: this.#ooo.slice(0, 3) });
  }
}

describe("TcpConnection congestion avoidance over time (RFC 9438, RFC 5681)", () => {
  it("CUBIC: after a loss, cwnd grows concave up to W_max at t = K, then convex beyond it (RFC 9438 §4.2-§4.5)", () => {
    const rtt = 200;
    const path = new Path("cubic", rtt);
    let lost = false;
    let cwndAtDrop = 0;
    path.drop = () => {
      if (!lost && path.conn.info().cwnd >= 100 * MSS) {
        lost = true;
        cwndAtDrop = path.conn.info().cwnd;
        return true;
      }
      return false;
    };
    // Slow start up to the loss, recovery, then congestion avoidance sampled every 100 ms
    // from the start of the epoch (the first ACK after recovery).
    let epoch: number | undefined;
    let ssthresh = 0;
    const samples: number[] = [];
    path.run(14_000, () => {
      const i = path.conn.info();
      if (epoch === undefined && lost && i.ssthresh !== null && i.cwnd > i.ssthresh) {
        epoch = path.h.now;
        ssthresh = i.ssthresh;
      }
      if (epoch !== undefined && (path.h.now - epoch) % 100 === 0) samples.push(i.cwnd / MSS);
    });
    assert.ok(lost && epoch !== undefined, "the loss happened and recovery ended");
    const info = path.conn.info();
    assert.equal(info.fastRetransmits, 1);
    assert.equal(info.timeouts, 0, "recovered without a timeout");
    assert.equal(info.retransmits, 1, "one loss, one retransmission");
    // ssthresh = 0.7 * FlightSize; the flight at detection was about cwnd (slow start went on).
    assert.ok(ssthresh >= 0.7 * cwndAtDrop, `ssthresh ${ssthresh}`);
    assert.ok(ssthresh <= 0.7 * (cwndAtDrop + 10 * MSS), `ssthresh ${ssthresh}`);
    const wMax = ssthresh / 0.7 / MSS; // segments
    const k = Math.cbrt((wMax - ssthresh / MSS) / 0.4); // RFC 9438 eq. 2, seconds
    for (let i = 1; i < samples.length; i++) {
      assert.ok(samples[i] >= samples[i - 1], `cwnd never shrinks without loss (sample ${i})`);
    }
    const at = (sec: number) => samples[Math.round(sec * 10)];
    assert.ok(samples.length > 20 * k, "sampled past 2K");
    // Concave: more growth in the first half of [0, K] than in the second.
    assert.ok(at(k / 2) - at(0) > at(k) - at(k / 2), "concave below W_max");
    // At K the window is back near W_max.
    assert.ok(Math.abs(at(k) - wMax) <= 0.1 * wMax, `cwnd ${at(k)} at K vs W_max ${wMax}`);
    // Convex: growth accelerates after K, and the window passes W_max.
    assert.ok(at(2 * k) - at(1.5 * k) > at(1.5 * k) - at(k), "convex above W_max");
    assert.ok(at(2 * k) > wMax * 1.1, `cwnd ${at(2 * k)} at 2K vs W_max ${wMax}`);
  });

  it("NewReno: congestion avoidance adds about one SMSS per RTT (RFC 5681 §3.1)", () => {
    const rtt = 100;
    const path = new Path("newreno", rtt);
    let lost = false;
    path.drop = () => {
      if (!lost && path.conn.info().cwnd >= 40 * MSS) {
        lost = true;
        return true;
      }
      return false;
    };
    let recovered: number | undefined;
    path.run(2000, () => {
      const i = path.conn.info();
      if (lost && recovered === undefined && i.cwnd === i.ssthresh) recovered = i.cwnd;
    });
    assert.ok(lost);
    assert.ok(recovered !== undefined, "recovery ended with cwnd = ssthresh");
    const start = path.conn.info();
    assert.equal(start.fastRetransmits, 1);
    assert.equal(start.retransmits, 1);
    path.run(20 * rtt);
    const grown = (path.conn.info().cwnd - start.cwnd) / MSS;
    assert.ok(grown >= 18 && grown <= 21, `grew ${grown} segments in 20 RTTs`);
  });

  it("slow start doubles cwnd every RTT before any loss (RFC 5681 §3.1)", () => {
    const path = new Path("cubic", 100);
    const c0 = path.conn.info().cwnd;
    path.run(101); // the first flight leaves 1 ms in
    const c1 = path.conn.info().cwnd;
    path.run(100);
    const c2 = path.conn.info().cwnd;
    assert.equal(c1, 2 * c0);
    assert.equal(c2, 2 * c1);
  });
});
