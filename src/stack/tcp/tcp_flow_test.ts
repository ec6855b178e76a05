import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { seqGe } from "./seq.ts";
import { bytes, dataSegs, DEFAULT_PEER_SYN, established, flagsOf, readAll } from "./tcp_harness.ts";
import { TcpFlags, type TcpRepr } from "../../wire/mod.ts";
import type { TcpConfig } from "./tcp_config.ts";

const MSS = 1460;

/** Active open with a 100 ms SYN RTT (RTO 300 ms) to a peer with window `window`. */
function sender(window = 65535, tcp: Partial<TcpConfig> = {}) {
  const o = established({
    active: true,
    handshakeRttMs: 100,
    tcp,
    peer: { syn: { mss: 1460 }, window },
  });
  return o;
}

/**
 * A sender whose first `first` bytes (segment `seg`) the peer acknowledged
 * 100 ms later while closing its window, with `more` bytes waiting.
 */
function zeroWindow(first: number, more: number) {
  const o = sender();
  o.conn.send(bytes(first), o.h.now);
  const [seg] = o.peer.drain();
  o.h.advance(100);
  o.peer.ackTo(end(seg), { windowLen: 0 });
  o.conn.send(bytes(more), o.h.now);
  return { ...o, seg };
}

function end(s: TcpRepr): number {
  return (s.seqNumber + s.payload.length) >>> 0;
}

describe("TcpConnection zero window and persist timer (RFC 9293 §3.8.6.1)", () => {
  it("sends nothing into a zero window and probes it after one RTO", () => {
    const { h, peer, conn } = zeroWindow(1000, 500);
    assert.deepEqual(peer.drain(), [], "the window is closed");
    const una = conn.debugSeq().sndUna;
    const rto = conn.info().rtoMs;
    assert.equal(rto, 250, "SRTT 100, RTTVAR 37.5 after the data's RTT sample");
    h.advance(rto - 1);
    assert.deepEqual(peer.drain(), []);
    h.advance(1);
    const [probe] = peer.drain();
    assert.equal(probe.flags, TcpFlags.ACK);
    assert.equal(probe.seqNumber, (una - 1) >>> 0, "an old sequence number makes the peer answer");
    assert.equal(probe.payload.length, 0);
    assert.equal(conn.state, "ESTABLISHED");
  });

  it("backs off the probe interval exponentially (RFC 9293 §3.8.6.1, RFC 6298 §5.5)", () => {
    const { h, peer, conn } = zeroWindow(10, 10);
    const start = h.now;
    const at: number[] = [];
    for (let i = 0; i < 5; i++) {
      h.fireNextTimer();
      assert.equal(peer.drain().length, 1);
      at.push(h.now - start);
    }
    const rto = conn.info().rtoMs;
    assert.deepEqual(at, [1, 3, 7, 15, 31].map((n) => n * rto));
  });

  it("caps the probe interval at 60 s", () => {
    const { h, peer } = zeroWindow(10, 10);
    let last = h.now;
    let gap = 0;
    for (let i = 0; i < 12; i++) {
      h.fireNextTimer();
      peer.drain();
      gap = h.now - last;
      last = h.now;
    }
    assert.equal(gap, 60_000);
  });

  it("keeps probing while the peer answers with a zero window, without giving up (RFC 1122 §4.2.2.17)", () => {
    const { h, peer, conn } = sender(65535, { maxRetransmits: 3 });
    conn.send(bytes(10), h.now);
    const [seg] = peer.drain();
    h.advance(100);
    peer.ackTo(end(seg), { windowLen: 0 });
    conn.send(bytes(10), h.now);
    for (let i = 0; i < 30; i++) {
      h.fireNextTimer();
      const [probe] = peer.drain();
      assert.ok(probe, `probe ${i}`);
      peer.inject({ windowLen: 0 }); // the answer: still closed
      assert.deepEqual(peer.drain(), []);
    }
    assert.equal(conn.state, "ESTABLISHED");
    assert.equal(conn.info().sendQueued, 10);
  });

  it("resumes sending at once when a window update opens the window, and stops probing", () => {
    const { h, peer, conn, seg } = zeroWindow(1000, 3000);
    h.advance(300);
    assert.equal(peer.drain().length, 1, "one probe");
    h.advance(100);
    peer.inject({ windowLen: 65535 }); // window update
    const sent = dataSegs(peer.drain());
    assert.deepEqual(
      sent.map((s) => s.payload.length),
      [1460, 1460],
      "Nagle holds the 80-byte tail",
    );
    assert.equal(sent[0].seqNumber, end(seg));
    h.advance(100);
    peer.ackTo(end(sent[1]));
    assert.deepEqual(dataSegs(peer.drain()).map((s) => s.payload.length), [80]);
    h.advance(100);
    peer.ackTo(conn.debugSeq().sndMax);
    h.advance(60_000);
    assert.deepEqual(peer.drain(), [], "no probes after the window opened");
  });

  it("does not count a window update as a duplicate ACK (RFC 5681 §2)", () => {
    const { peer, conn } = zeroWindow(1000, 3 * MSS);
    for (let w = 1; w <= 3; w++) peer.inject({ windowLen: w * 200 });
    assert.equal(conn.info().fastRetransmits, 0);
  });

  it("sends exactly up to the right edge of the offered window", () => {
    const { h, peer, conn } = sender(4 * MSS);
    conn.send(bytes(10 * MSS), h.now);
    const sent = peer.drain();
    assert.equal(sent.length, 4);
    assert.equal(end(sent[3]), (conn.debugSeq().sndUna + 4 * MSS) >>> 0);
    h.advance(100);
    peer.ackTo(end(sent[1]), { windowLen: 4 * MSS });
    assert.equal(dataSegs(peer.drain()).length, 2, "the window slid by two segments");
  });

  it("scales the peer's window field by its window scale in non-SYN segments (RFC 7323 §2.3)", () => {
    const o = established({
      active: true,
      peer: { syn: { mss: 1460, windowScale: 2 }, window: 1 << 18 },
    });
    o.peer.inject({});
    assert.equal(o.conn.info().sendWindow, 65535 << 2);
  });
});

describe("TcpConnection sender-side silly window avoidance and Nagle (RFC 9293 §3.8.6.2.1, §3.7.4)", () => {
  it("does not send a small segment into a small usable window while more data waits", () => {
    const { h, peer, conn } = sender(4000);
    conn.send(bytes(10_000), h.now);
    const sent = peer.drain();
    assert.deepEqual(
      sent.map((s) => s.payload.length),
      [1460, 1460],
      "1080 usable bytes stay unused",
    );
    h.advance(100);
    peer.ackTo(end(sent[1]), { windowLen: 4000 });
    assert.deepEqual(dataSegs(peer.drain()).map((s) => s.payload.length), [1460, 1460]);
  });

  it("sends what a small window allows after the override timeout when nothing is in flight (RFC 9293 §3.8.6.2.1)", () => {
    const { h, peer, conn } = sender(4000);
    conn.send(bytes(10_000), h.now);
    const sent = peer.drain();
    h.advance(100);
    // The peer has not read yet: only 1080 bytes of window are left, and its window
    // update may be lost. The sender must not wait forever.
    peer.ackTo(end(sent[1]), { windowLen: 1080 });
    assert.deepEqual(peer.drain(), []);
    h.advance(5000);
    const more = dataSegs(peer.drain());
    assert.ok(more.length >= 1, "the small window was used");
    assert.equal(more[0].seqNumber, end(sent[1]));
    assert.equal(more[0].payload.length, 1080);
  });

  it("sends a segment smaller than the MSS when it fills half of the largest window seen", () => {
    const { h, peer, conn } = sender(1000);
    conn.send(bytes(5000), h.now);
    const [seg] = peer.drain();
    assert.equal(seg.payload.length, 1000);
  });

  it("sends a small write at once when nothing is in flight (Nagle, RFC 9293 §3.7.4)", () => {
    const { h, peer, conn } = sender();
    conn.send(bytes(10), h.now);
    const [seg] = peer.drain();
    assert.equal(seg.payload.length, 10);
    assert.equal(flagsOf(seg), "PSH|ACK");
  });

  it("holds small writes while data is unacknowledged and sends them as one segment on the ACK (Nagle)", () => {
    const { h, peer, conn } = sender();
    conn.send(bytes(10), h.now);
    const [first] = peer.drain();
    for (let i = 0; i < 5; i++) conn.send(bytes(100), h.now);
    assert.deepEqual(peer.drain(), [], "coalescing while data is in flight");
    h.advance(100);
    peer.ackTo(end(first));
    const segs = dataSegs(peer.drain());
    assert.deepEqual(segs.map((s) => s.payload.length), [500]);
  });

  it("sends a full segment even while data is in flight (Nagle holds only partial segments)", () => {
    const { h, peer, conn } = sender();
    conn.send(bytes(10), h.now);
    peer.drain();
    conn.send(bytes(MSS + 100), h.now);
    const segs = peer.drain();
    assert.deepEqual(segs.map((s) => s.payload.length), [MSS], "the 100-byte tail waits");
  });

  it("sends every small write at once with noDelay", () => {
    const { h, peer, conn } = sender(65535, { noDelay: true });
    for (let i = 0; i < 5; i++) conn.send(bytes(100), h.now);
    assert.deepEqual(peer.drain().map((s) => s.payload.length), [100, 100, 100, 100, 100]);
  });

  it("flushes data held by Nagle together with the FIN on shutdown", () => {
    const { h, peer, conn } = sender();
    conn.send(bytes(10), h.now);
    peer.drain();
    conn.send(bytes(100), h.now);
    assert.deepEqual(peer.drain(), []);
    conn.shutdownWrite(h.now);
    const segs = peer.drain();
    assert.equal(segs[0].payload.length, 100);
    assert.ok(segs[segs.length - 1].flags & TcpFlags.FIN);
  });
});

describe("TcpConnection receive window (RFC 9293 §3.8.6.2.2, RFC 7323 §2.4)", () => {
  const small = { recvBufferBytes: 4096, windowScaling: false };

  /** Fills the 4096-byte receive buffer; returns the final ACK. */
  function fill() {
    const o = established({ tcp: small });
    const base = o.peer.seq;
    o.peer.send(1400);
    o.peer.send(1400);
    o.peer.send(1296);
    o.h.advance(40);
    const segs = o.peer.drain();
    const last = segs[segs.length - 1];
    assert.equal(last.ackNumber, base + 4096);
    return { ...o, base, last };
  }

  it("advertises a zero window when the receive buffer is full", () => {
    const { last } = fill();
    assert.equal(last.windowLen, 0);
  });

  it("does not advertise a window opened by a small read (receiver SWS avoidance)", () => {
    const { h, peer, conn } = fill();
    assert.equal(conn.read(100, h.now)!.length, 100);
    assert.deepEqual(peer.drain(), [], "no window update for 100 bytes");
    // An ACK sent for another reason still offers a zero window.
    peer.inject({ seqNumber: peer.seq - 1 }); // a keepalive-style probe
    const [ack] = peer.drain();
    assert.equal(ack.windowLen, 0);
  });

  it("sends a window update once the window can take a full segment", () => {
    const { h, peer, conn } = fill();
    assert.equal(conn.read(1000, h.now)!.length, 1000);
    assert.equal(conn.read(400, h.now)!.length, 400);
    assert.deepEqual(peer.drain(), [], "1400 free bytes: less than one segment");
    conn.read(100, h.now);
    const [upd] = peer.drain();
    assert.equal(upd.flags, TcpFlags.ACK);
    assert.equal(upd.payload.length, 0);
    assert.equal(upd.windowLen, 1500);
  });

  it("sends one window update, not one per read", () => {
    const { h, peer, conn } = fill();
    conn.read(1400, h.now);
    conn.read(1400, h.now);
    assert.equal(peer.drain().length, 1);
    conn.read(10, h.now);
    conn.read(10, h.now);
    assert.deepEqual(peer.drain(), []);
  });

  it("drops data sent into a zero window and answers with an ACK for RCV.NXT (RFC 9293 §3.10.7.4)", () => {
    const { h, peer, conn, base } = fill();
    peer.sendAt(base + 4096, 1);
    const [ack] = peer.drain();
    assert.equal(ack.ackNumber, base + 4096);
    assert.equal(ack.windowLen, 0);
    assert.equal(conn.readableBytes, 4096);
    assert.equal(readAll(conn, h.now).length, 4096);
  });

  it("never moves the right edge of the advertised window to the left (RFC 7323 §2.4)", () => {
    const { h, peer, conn } = established({ tcp: { recvBufferBytes: 8192, windowScaling: false } });
    let right = 0;
    const check = () => {
      for (const s of peer.drain()) {
        const r = (s.ackNumber + s.windowLen) >>> 0;
        if (right !== 0) {
          assert.ok(seqGe(r, right), `right edge moved back: ${r} < ${right}`);
        }
        right = r;
      }
    };
    for (let i = 0; i < 40; i++) {
      peer.send(700);
      if (i % 3 === 0) conn.read(500, h.now);
      if (i % 7 === 0) conn.read(5000, h.now);
      h.advance(40);
      check();
    }
  });

  it("advertises the window right-shifted by its window scale (RFC 7323 §2.3)", () => {
    const { h, peer, conn } = established({
      peer: { syn: { ...DEFAULT_PEER_SYN, windowScale: 7 } },
    });
    peer.send(1000);
    h.advance(40);
    const [ack] = peer.drain();
    const shift = conn.info().recvWindowScale;
    assert.ok(shift > 0);
    const free = 512 * 1024 - 1000;
    assert.equal(ack.windowLen, Math.ceil(free / (1 << shift)));
  });
});
