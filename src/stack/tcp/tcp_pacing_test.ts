import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseIpv4Address, parseMacAddress } from "../../wire/mod.ts";
import { ChannelLink } from "../channel_link.ts";
import { Stack } from "../stack.ts";
import type { TcpConfig } from "./tcp_config.ts";
import { TcpPacer } from "./tcp_pacer.ts";
import { bytes, established, FULL_SYN_OPTIONS } from "./tcp_harness.ts";

/** One direction of a link: frames in flight, each with its delivery time. */
interface InFlight {
  at: number;
  frame: Uint8Array;
}

/**
 * A transfer from a stack (the sender under test) to a receiver behind a
 * model of v86's NE2000: frames reach the card `delayMs` after they leave
 * (a WebSocket's delivery, in bursts as sent), wait in its receive buffer of
 * `bufferBytes` (a frame that does not fit is dropped, as the card's ring
 * overflows) and are taken out at `drainBytesPerMs`; ACKs come back after
 * `delayMs`. Runs on a simulated clock; returns what the sender counted.
 */
function ne2000Transfer(
  sender: Partial<TcpConfig>,
  options: {
    bytes?: number;
    bufferBytes?: number;
    drainBytesPerMs?: number;
    delayMs?: number;
    ackBatchMs?: number;
  } = {},
) {
  const total = options.bytes ?? 4 * 1024 * 1024;
  const bufferBytes = options.bufferBytes ?? 16 * 1024;
  const drain = options.drainBytesPerMs ?? 1000; // 1 MB/s
  const delay = options.delayMs ?? 1;
  // ACKs reach the sender in batches (a busy event loop reads what arrived per turn).
  const batch = options.ackBatchMs ?? 0;
  const ackAt = (t: number) => batch > 0 ? Math.ceil(t / batch) * batch : t;
  const ipA = parseIpv4Address("10.0.2.2");
  const ipB = parseIpv4Address("10.0.2.15");
  const macA = parseMacAddress("02:00:00:00:00:02");
  const macB = parseMacAddress("52:54:00:12:34:56");
  const linkA = new ChannelLink(1 << 16);
  const linkB = new ChannelLink(1 << 16);
  const a = new Stack({
    mac: macA,
    ipv4: { address: ipA, prefixLength: 24 },
    mtu: 1500,
    tcp: sender,
  }, {
    link: linkA,
  });
  const b = new Stack({ mac: macB, ipv4: { address: ipB, prefixLength: 24 }, mtu: 1500 }, {
    link: linkB,
  });
  a.arp.update(ipB, macB, 0);
  b.arp.update(ipA, macA, 0);
  let now = 0;
  const toCard: InFlight[] = [];
  const toA: InFlight[] = [];
  const card: Uint8Array[] = [];
  let cardBytes = 0;
  let drainDone = Infinity; // when the frame at the head of the card's buffer is taken out
  let dropped = 0;
  const listener = b.tcp.listen(5001, 4);
  const conn = a.tcp.connect(ipB, 5001, now);
  let server: ReturnType<typeof listener.accept>;
  let written = 0;
  let received = 0;
  const chunk = new Uint8Array(64 * 1024);
  const collect = () => {
    for (const f of linkA.drain()) toCard.push({ at: now + delay, frame: f });
    for (const f of linkB.drain()) toA.push({ at: ackAt(now + delay), frame: f });
  };
  for (let step = 0; received < total && step < 10_000_000; step++) {
    // The applications: the sender writes what fits, the receiver reads what arrived.
    while (written < total && conn.state === "ESTABLISHED") {
      const n = conn.send(chunk.subarray(0, Math.min(chunk.length, total - written)), now);
      if (n === 0) break;
      written += n;
    }
    server ??= listener.accept();
    for (let d = server?.read(1 << 20, now); d; d = server!.read(1 << 20, now)) {
      received += d.length;
    }
    collect();
    // The next event.
    const next = Math.min(
      toCard[0]?.at ?? Infinity,
      toA[0]?.at ?? Infinity,
      drainDone,
      a.nextDeadline() ?? Infinity,
      b.nextDeadline() ?? Infinity,
    );
    if (next === Infinity) break;
    now = Math.max(now, next);
    while (toCard.length > 0 && toCard[0].at <= now) {
      const f = toCard.shift()!.frame;
      if (cardBytes + f.length > bufferBytes) {
        dropped++;
        continue;
      }
      card.push(f);
      cardBytes += f.length;
      if (card.length === 1) drainDone = now + f.length / drain;
    }
    while (drainDone <= now) {
      const f = card.shift()!;
      cardBytes -= f.length;
      b.input(f, now);
      drainDone = card.length > 0 ? drainDone + card[0].length / drain : Infinity;
    }
    while (toA.length > 0 && toA[0].at <= now) a.input(toA.shift()!.frame, now);
    for (const s of [a, b]) {
      const d = s.nextDeadline();
      if (d !== undefined && d <= now) s.poll(now);
    }
  }
  const info = conn.info();
  return {
    received,
    ms: now,
    dropped,
    retransmits: info.retransmits,
    retransmittedBytes: info.retransmits * info.sendMss,
    timeouts: info.timeouts,
  };
}

describe("TcpConnection pacing (tcp_pacer.ts) into a small NIC buffer (v86's NE2000)", () => {
  const MiB4 = 4 * 1024 * 1024;

  // The ACK train ends slow start within the first flight (1 drop instead of 12). After it,
  // CUBIC's loss-based growth alone would refill the NIC (10 frames) until it overflows, about
  // once every 90 segments (1.1 %); bounded by delay (CongestionOptions.delayBound), the
  // window stops growing once the queue adds 4 ms to the RTT, so the card stays busy without
  // overflowing.
  it("a 4 MiB transfer into 16 KiB drained at 1 MB/s keeps the NIC busy and retransmits <= 1 %", () => {
    const r = ne2000Transfer({ pacing: true });
    assert.equal(r.received, MiB4);
    assert.ok(r.ms < 4500, `took ${r.ms} ms (1 MB/s is 4194 ms)`);
    assert.equal(r.timeouts, 0);
    assert.ok(r.retransmittedBytes <= 0.01 * MiB4, `${r.retransmits} segments retransmitted`);
  });

  // Other small receive queues: pacing keeps each under 1 %, where bursts lose 0.5-3.7 %.
  for (
    const [bufferBytes, drainBytesPerMs, delayMs] of [
      [8 * 1024, 1000, 1],
      [16 * 1024, 10_000, 1],
      [16 * 1024, 1000, 10],
      [32 * 1024, 5000, 2],
    ]
  ) {
    it(`into ${bufferBytes / 1024} KiB drained at ${drainBytesPerMs / 1000} MB/s, ${delayMs} ms away: <= 1 %, fewer than bursts`, () => {
      const options = { bufferBytes, drainBytesPerMs, delayMs };
      const paced = ne2000Transfer({ pacing: true }, options);
      const burst = ne2000Transfer({ pacing: false }, options);
      assert.equal(paced.received, MiB4);
      assert.equal(paced.timeouts, 0);
      assert.ok(paced.ms <= burst.ms * 1.02, `paced ${paced.ms} ms, bursts ${burst.ms} ms`);
      assert.ok(paced.retransmittedBytes <= 0.01 * MiB4, `${paced.retransmits} retransmitted`);
      assert.ok(
        paced.retransmits < burst.retransmits,
        `paced ${paced.retransmits} vs unpaced ${burst.retransmits} segments retransmitted`,
      );
    });
  }

  it("with ACKs taken in 8 ms batches, pacing keeps retransmissions <= 1 % (bursts: far more)", () => {
    const paced = ne2000Transfer({ pacing: true }, { ackBatchMs: 8 });
    const burst = ne2000Transfer({ pacing: false }, { ackBatchMs: 8 });
    assert.equal(paced.received, MiB4);
    assert.ok(paced.ms < 4500, `took ${paced.ms} ms (1 MB/s is 4194 ms)`);
    assert.equal(paced.timeouts, 0);
    assert.ok(paced.retransmittedBytes <= 0.01 * MiB4, `${paced.retransmits} retransmitted`);
    assert.ok(
      paced.retransmits < 0.7 * burst.retransmits,
      `paced ${paced.retransmits} vs unpaced ${burst.retransmits} segments retransmitted`,
    );
  });
});

describe("TcpPacer", () => {
  it("paces at 2 × cwnd / SRTT in slow start and 1.2 × in congestion avoidance", () => {
    const p = new TcpPacer();
    p.setRate(20_000, Infinity, 10, 1000);
    assert.equal(p.rate, 4000);
    p.setRate(20_000, 10_000, 10, 1000);
    assert.equal(p.rate, 2400);
    p.setRate(20_000, Infinity, undefined, 1000);
    assert.equal(p.rate, 0, "no RTT sample yet: unpaced");
    assert.equal(p.allows(0), true);
  });

  it("lets a burst of one tick (at least two segments) go, then the bytes the rate allows", () => {
    const p = new TcpPacer();
    p.setRate(10_000, 1, 10, 1000); // 1,200 bytes per ms; a burst of max(2,000, 1,200)
    assert.equal(p.allows(1000), true, "after idle the bucket is full");
    p.spend(1000, 1000);
    assert.equal(p.allows(1000), true);
    p.spend(1000, 1000);
    assert.equal(p.allows(1000), false);
    assert.equal(p.nextSendAt(1000), 1000 + 1 / 1200);
    assert.equal(p.allows(1000.5), true, "600 bytes accrued");
    p.spend(1000, 1000.5); // overdraws by 400
    assert.equal(p.allows(1000.7), false);
    assert.ok(Math.abs(p.nextSendAt(1000.7) - (1000.7 + (1 + 160) / 1200)) < 1e-9);
  });
});

describe("TcpConnection with pacing (RFC-less: Linux's sk_pacing_rate)", () => {
  it("holds new data back and sends it when the pacing timer fires", () => {
    const { h, peer, conn } = established({
      tcp: { pacing: true },
      peer: { syn: FULL_SYN_OPTIONS },
    });
    // An RTT sample of 10 ms: one segment, ACKed 10 ms later.
    conn.send(bytes(100), h.now);
    const [one] = peer.drain();
    h.advance(10);
    peer.ackTo((one.seqNumber + 100) >>> 0);
    // Slow start: 2 × cwnd (14,480 B) / the latest RTT (10 ms, above SRTT) = 2,896 B per ms;
    // a burst of two segments, then two segments each millisecond.
    conn.send(bytes(10 * 1448), h.now);
    assert.equal(peer.drain().length, 2, "the burst");
    assert.ok(h.stack.nextDeadline()! < h.now + 1, "the pacing timer");
    let total = 2;
    for (let t = 0; t < 4; t++) {
      h.advance(1);
      const segs = peer.drain();
      assert.equal(segs.length, 2, `2 segments in ms ${t + 1}`);
      total += segs.length;
    }
    assert.equal(total, 10, "all of it in 4 ms");
  });
});

describe("TcpPacer and a late timer", () => {
  it("gives a sender held back and woken late what the rate allowed since it was due", () => {
    const p = new TcpPacer();
    p.setRate(100_000, Infinity, 10, 1000); // 2 × 100,000 / 10 = 20,000 bytes per ms
    p.spend(60_000, 0); // 60,000 bytes at once: held back until the rate has paid for them
    assert.equal(p.allows(0), false);
    const due = p.nextSendAt(0);
    assert.ok(Math.abs(due - 3) < 0.01, `due at ${due}`);
    // The timer fires 3 ms late: 6 ms of rate (120,000) since the send, 60,000 of it owed.
    // The 60,000 left may go now (a bucket capped at one tick would keep only 20,000).
    p.spend(40_000, due + 3);
    assert.equal(p.allows(due + 3), true, "the 3 ms of lateness are not lost");
    p.spend(30_000, due + 3);
    assert.equal(p.allows(due + 3), false, "no more than the rate allowed");
  });

  it("gives no extra burst to a sender that was not held back", () => {
    const p = new TcpPacer();
    p.setRate(100_000, Infinity, 10, 1000);
    p.spend(0, 0);
    p.spend(20_000, 10); // after 10 idle ms the bucket holds one tick: 20,000
    assert.equal(p.allows(10), false);
  });
});
