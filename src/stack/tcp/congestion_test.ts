import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  type CongestionControl,
  createCongestionControl,
  Cubic,
  CUBIC_ALPHA,
  CUBIC_BETA,
  CUBIC_C,
  DELAY_BOUND_MAX_BYTES,
  HYSTART_ACK_TRAIN_MAX_BYTES,
  initialWindow,
  MIN_RTT_WINDOW_MS,
  NewReno,
} from "./congestion.ts";

const MSS = 1000;

/**
 * Acknowledges one window's worth of data, `segsPerAck` segments per ACK,
 * spread evenly over one RTT with a sender that keeps the window full.
 * Returns the time after the round.
 */
function ackRound(cc: CongestionControl, now: number, rttMs: number, segsPerAck = 1): number {
  const acks = Math.floor(cc.cwnd / MSS / segsPerAck);
  for (let i = 0; i < acks; i++) {
    cc.onAck(segsPerAck * MSS, now + (i * rttMs) / acks, rttMs, cc.cwnd);
  }
  return now + rttMs;
}

/** A continuous ACK clock: one ACK per segment, cwnd segments per RTT, until `end`. */
function ackClock(cc: CongestionControl, now: number, end: number, rttMs: number): number {
  while (now < end) {
    cc.onAck(MSS, now, rttMs, cc.cwnd);
    now += rttMs / (cc.cwnd / MSS);
  }
  return now;
}

/** Slow-starts until cwnd reaches `segments`. */
function growTo(cc: CongestionControl, segments: number): void {
  while (cc.cwnd < segments * MSS) cc.onAck(MSS, 0, 10, cc.cwnd);
  assert.equal(cc.cwnd, segments * MSS);
}

/** Loss at a full window of `segments`, then a full ACK with the reduced window in flight. */
function lossAt(cc: CongestionControl, segments: number, now: number): void {
  growTo(cc, segments);
  cc.onCongestionEvent(now, segments * MSS);
  cc.onRecoveryExit(now, cc.ssthresh);
}

function wCubic(cc: Cubic, tSeconds: number): number {
  return CUBIC_C * (tSeconds - cc.k) ** 3 + cc.wMax;
}

describe("initial window (RFC 6928 §2)", () => {
  it("is min(10*SMSS, max(2*SMSS, 14600))", () => {
    assert.equal(initialWindow(1460), 14600);
    assert.equal(initialWindow(536), 5360);
    assert.equal(initialWindow(1000), 10000);
    assert.equal(initialWindow(9000), 18000);
    assert.equal(initialWindow(1460, 4), 5840);
    for (const name of ["newreno", "cubic"] as const) {
      const cc = createCongestionControl(name, { mss: 1460 });
      assert.equal(cc.name, name);
      assert.equal(cc.cwnd, 14600);
      assert.equal(cc.ssthresh, Infinity);
      assert.equal(cc.mss, 1460);
      assert.equal(cc.inRecovery, false);
    }
    assert.equal(new NewReno({ mss: MSS, initialWindowSegments: 2 }).cwnd, 2000);
  });
});

for (const name of ["newreno", "cubic"] as const) {
  describe(`${name}: slow start (RFC 5681 §3.1, RFC 3465)`, () => {
    it("doubles cwnd per RTT with one ACK per segment", () => {
      const cc = createCongestionControl(name, { mss: MSS });
      let now = 0;
      for (const want of [20, 40, 80, 160]) {
        now = ackRound(cc, now, 50);
        assert.equal(cc.cwnd, want * MSS);
      }
    });

    it("doubles cwnd per RTT with delayed ACKs too (L = 2*SMSS)", () => {
      const cc = createCongestionControl(name, { mss: MSS });
      let now = 0;
      for (const want of [20, 40, 80]) {
        now = ackRound(cc, now, 50, 2);
        assert.equal(cc.cwnd, want * MSS);
      }
    });

    it("counts bytes: a stretch ACK adds at most 2*SMSS, a small one adds its bytes (RFC 3465 §2.2)", () => {
      const cc = createCongestionControl(name, { mss: MSS });
      cc.onAck(5 * MSS, 0, 50, cc.cwnd);
      assert.equal(cc.cwnd, 12 * MSS);
      cc.onAck(100, 1, 50, cc.cwnd);
      assert.equal(cc.cwnd, 12 * MSS + 100);
    });

    it("stops at ssthresh", () => {
      const cc = createCongestionControl(name, { mss: MSS });
      lossAt(cc, 20, 0); // ssthresh 10 (newreno) or 14 (cubic) segments, cwnd = ssthresh
      cc.onRetransmissionTimeout(1, 0); // repeated-loss path aside: cwnd 1 MSS, ssthresh kept
      const ssthresh = cc.ssthresh;
      for (let i = 0; i < 100 && cc.cwnd < ssthresh; i++) cc.onAck(3 * MSS, 2, 50, cc.cwnd);
      assert.equal(cc.cwnd, ssthresh);
    });

    it("adds only 1 SMSS per ACK in slow start after an RTO (RFC 3465 §2.3)", () => {
      const cc = createCongestionControl(name, { mss: MSS });
      cc.onRetransmissionTimeout(0, 40 * MSS);
      assert.equal(cc.cwnd, MSS);
      cc.onAck(4 * MSS, 1, 50, cc.cwnd);
      assert.equal(cc.cwnd, 2 * MSS);
    });

    it("does not grow while application-limited (RFC 9438 §5.8, RFC 7661)", () => {
      const cc = createCongestionControl(name, { mss: MSS });
      cc.onAck(MSS, 0, 50, 4 * MSS); // 4 of 10 segments in flight
      assert.equal(cc.cwnd, 10 * MSS);
      cc.onAck(MSS, 1, 50, 5 * MSS); // half the window counts as using it
      assert.equal(cc.cwnd, 11 * MSS);
      cc.onAck(MSS, 2, 50, Infinity);
      assert.equal(cc.cwnd, 12 * MSS);
      cc.onAck(0, 3, 50, Infinity);
      cc.onAck(NaN, 3, 50, Infinity);
      assert.equal(cc.cwnd, 12 * MSS);
    });
  });

  describe(`${name}: recovery bookkeeping (RFC 5681 §3.2, RFC 6582 §3.2)`, () => {
    const beta = name === "newreno" ? 0.5 : CUBIC_BETA;
    // NewReno halves with integer division; CUBIC rounds FlightSize * 0.7 to whole bytes.
    const reduce = (flight: number) =>
      name === "newreno" ? Math.floor(flight / 2) : Math.round(flight * beta);

    it("inflates per duplicate ACK, deflates on partial ACKs, and exits without a burst", () => {
      const cc = createCongestionControl(name, { mss: MSS });
      growTo(cc, 40);
      cc.onCongestionEvent(0, 40 * MSS);
      const ssthresh = 40 * MSS * beta;
      assert.equal(cc.ssthresh, ssthresh);
      assert.equal(cc.cwnd, ssthresh);
      assert.equal(cc.inRecovery, true);
      for (let i = 0; i < 3; i++) cc.onDupAck(); // RFC 5681 step 3: ssthresh + 3*SMSS
      assert.equal(cc.cwnd, ssthresh + 3 * MSS);
      cc.onDupAck(); // step 4
      assert.equal(cc.cwnd, ssthresh + 4 * MSS);
      cc.onAck(5 * MSS, 1, 50, Infinity); // ignored during recovery
      assert.equal(cc.cwnd, ssthresh + 4 * MSS);
      cc.onPartialAck(3 * MSS); // deflate by 3 SMSS, add back 1
      assert.equal(cc.cwnd, ssthresh + 2 * MSS);
      cc.onPartialAck(500); // less than SMSS: nothing added back
      assert.equal(cc.cwnd, ssthresh + 2 * MSS - 500);
      cc.onCongestionEvent(2, 30 * MSS); // one reduction per recovery
      assert.equal(cc.ssthresh, ssthresh);
      cc.onRecoveryExit(3, 5 * MSS); // min(ssthresh, max(FlightSize, SMSS) + SMSS)
      assert.equal(cc.inRecovery, false);
      assert.equal(cc.cwnd, 6 * MSS);
      const again = createCongestionControl(name, { mss: MSS });
      growTo(again, 40);
      again.onCongestionEvent(0, 40 * MSS);
      again.onRecoveryExit(1, 40 * MSS);
      assert.equal(again.cwnd, ssthresh);
      again.onDupAck();
      again.onPartialAck(MSS);
      again.onRecoveryExit(2, 0);
      assert.equal(again.cwnd, ssthresh); // outside recovery these do nothing
    });

    it(`sets ssthresh = max(FlightSize * ${beta}, 2*SMSS) on loss`, () => {
      const cc = createCongestionControl(name, { mss: MSS });
      cc.onCongestionEvent(0, 2 * MSS);
      assert.equal(cc.ssthresh, 2 * MSS);
      assert.equal(cc.cwnd, 2 * MSS);
      const cc2 = createCongestionControl(name, { mss: MSS });
      cc2.onCongestionEvent(0, 100 * MSS + 1); // flight, not cwnd, decides
      assert.equal(cc2.ssthresh, reduce(100 * MSS + 1));
    });

    it(`on RTO sets cwnd = 1 SMSS and ssthresh = max(FlightSize * ${beta}, 2*SMSS) (RFC 5681 §3.1)`, () => {
      const cc = createCongestionControl(name, { mss: MSS });
      growTo(cc, 40);
      cc.onCongestionEvent(0, 40 * MSS);
      cc.onRetransmissionTimeout(1000, 36 * MSS);
      assert.equal(cc.inRecovery, false);
      assert.equal(cc.cwnd, MSS);
      assert.equal(cc.ssthresh, reduce(36 * MSS));
      // The same segment times out again: ssthresh is held (RFC 5681 §3.1).
      cc.onRetransmissionTimeout(3000, MSS);
      assert.equal(cc.ssthresh, reduce(36 * MSS));
      assert.equal(cc.cwnd, MSS);
      // After new data is acknowledged, a later timeout recomputes it.
      cc.onAck(MSS, 3100, 100, cc.cwnd);
      cc.onRetransmissionTimeout(5000, 2 * MSS);
      assert.equal(cc.ssthresh, 2 * MSS);
    });

    it("restarts from min(cwnd, IW) after idle (RFC 5681 §4.1)", () => {
      const cc = createCongestionControl(name, { mss: MSS });
      growTo(cc, 40);
      cc.onIdleRestart(10_000);
      assert.equal(cc.cwnd, 10 * MSS);
      const small = createCongestionControl(name, { mss: MSS });
      small.onRetransmissionTimeout(0, 10 * MSS);
      small.onIdleRestart(10_000);
      assert.equal(small.cwnd, MSS);
    });

    it("keeps cwnd and ssthresh in segments when the SMSS changes", () => {
      const cc = createCongestionControl(name, { mss: 1460 });
      cc.onCongestionEvent(0, 40 * 1460);
      cc.onRecoveryExit(1, 40 * 1460);
      const segs = cc.cwnd / 1460;
      const ssSegs = cc.ssthresh / 1460;
      cc.setMss(1200);
      assert.equal(cc.mss, 1200);
      assert.ok(Math.abs(cc.cwnd / 1200 - segs) < 0.01);
      assert.ok(Math.abs(cc.ssthresh / 1200 - ssSegs) < 0.01);
      assert.throws(() => cc.setMss(0), RangeError);
      assert.throws(() => cc.setMss(1.5), RangeError);
    });
  });
}

describe("NewReno congestion avoidance (RFC 5681 §3.1, RFC 3465 §2.1)", () => {
  it("grows about 1 SMSS per RTT, whatever the ACK pattern", () => {
    for (const segsPerAck of [1, 2, 3]) {
      const cc = new NewReno({ mss: MSS });
      lossAt(cc, 40, 0);
      assert.equal(cc.cwnd, 20 * MSS);
      let now = 100;
      for (let round = 1; round <= 10; round++) {
        now = ackRound(cc, now, 50, segsPerAck);
        // A round of ceil-less ACK counts may leave part of a window uncounted.
        assert.ok(Math.abs(cc.cwnd - (20 + round) * MSS) <= MSS, `${segsPerAck}/ack ${cc.cwnd}`);
      }
    }
  });

  it("adds exactly one SMSS once a full cwnd of bytes is acknowledged", () => {
    const cc = new NewReno({ mss: MSS });
    lossAt(cc, 40, 0);
    for (let i = 0; i < 39; i++) cc.onAck(500, 1, 50, cc.cwnd);
    assert.equal(cc.cwnd, 20 * MSS); // 19500 of 20000 bytes counted
    cc.onAck(500, 2, 50, cc.cwnd);
    assert.equal(cc.cwnd, 21 * MSS);
  });

  it("does not grow in congestion avoidance unless the window is full", () => {
    const cc = new NewReno({ mss: MSS });
    lossAt(cc, 40, 0);
    for (let i = 0; i < 100; i++) cc.onAck(MSS, 1, 50, 18 * MSS);
    assert.equal(cc.cwnd, 20 * MSS);
  });

  it("halves on loss (RFC 5681 eq. 4)", () => {
    const cc = new NewReno({ mss: MSS });
    growTo(cc, 64);
    cc.onCongestionEvent(0, 64 * MSS);
    assert.equal(cc.ssthresh, 32 * MSS);
    assert.equal(cc.cwnd, 32 * MSS);
  });
});

describe("Cubic (RFC 9438)", () => {
  it("multiplies by β = 0.7 on loss and remembers W_max (§4.6)", () => {
    const cc = new Cubic({ mss: MSS });
    growTo(cc, 100);
    cc.onCongestionEvent(0, 100 * MSS);
    assert.equal(cc.ssthresh, 70 * MSS);
    assert.equal(cc.cwnd, 70 * MSS);
    assert.equal(cc.wMax, 100);
    assert.equal(cc.epochStart, undefined);
  });

  it("follows W_cubic(t) = C(t-K)³ + W_max through the concave and convex regions (§4.2)", () => {
    const cc = new Cubic({ mss: MSS });
    lossAt(cc, 1000, 0);
    assert.equal(cc.cwnd, 700 * MSS);
    const t0 = 10_000;
    let now = ackClock(cc, t0, t0 + 1, 100); // the first ACK starts the epoch
    assert.equal(cc.epochStart, t0);
    const k = Math.cbrt((1000 - 700) / CUBIC_C); // K = ∛(W_max (1 - β) / C) ≈ 9.086 s
    assert.ok(Math.abs(cc.k - k) < 1e-9);
    assert.ok(Math.abs(wCubic(cc, 0) - 700) < 1e-9);
    for (const t of [0.5, 1, 2, 4, 6, 8, k, 10, 11, 12]) {
      now = ackClock(cc, now, t0 + t * 1000, 100);
      const segs = cc.cwnd / MSS;
      const want = wCubic(cc, (now - t0) / 1000);
      assert.ok(Math.abs(segs - want) / want < 0.005, `t=${t}: cwnd ${segs} vs W_cubic ${want}`);
    }
    // Concave below W_max, a plateau at K, convex above.
    assert.ok(cc.cwnd > 1000 * MSS && cc.cwnd < 1020 * MSS);
  });

  it("reduces W_max further with fast convergence when cwnd did not reach it (§4.7)", () => {
    const cc = new Cubic({ mss: MSS });
    lossAt(cc, 100, 0);
    assert.equal(cc.wMax, 100);
    cc.onCongestionEvent(1000, 70 * MSS); // loss again at cwnd 70 < W_max 100
    assert.ok(Math.abs(cc.wMax - (70 * (1 + CUBIC_BETA)) / 2) < 1e-9); // 59.5
    assert.equal(cc.cwnd, 49 * MSS);

    const plain = new Cubic({ mss: MSS, fastConvergence: false });
    lossAt(plain, 100, 0);
    plain.onCongestionEvent(1000, 70 * MSS);
    assert.equal(plain.wMax, 70);

    const grown = new Cubic({ mss: MSS });
    lossAt(grown, 100, 0);
    ackClock(grown, 100, 10_000, 100); // past W_max (K ≈ 4.2 s)
    const cwnd = grown.cwnd / MSS;
    assert.ok(cwnd > 100);
    grown.onCongestionEvent(10_000, grown.cwnd);
    assert.ok(Math.abs(grown.wMax - cwnd) < 1e-3);
  });

  it("stays in the Reno-friendly region at small RTT and short times (§4.3)", () => {
    const cc = new Cubic({ mss: MSS });
    lossAt(cc, 20, 0); // cwnd 14, W_max 20, K ≈ 2.47 s
    const t0 = 1000;
    // 10 RTTs of 1 ms: W_est gains α_cubic ≈ 0.529 segments per RTT.
    ackClock(cc, t0, t0 + 10, 1);
    const segs = cc.cwnd / MSS;
    assert.ok(Math.abs(segs - cc.wEst) < 0.001, "cwnd follows W_est");
    assert.ok(Math.abs(segs - (14 + 10 * CUBIC_ALPHA)) < 0.3, `cwnd ${segs}`);
    assert.ok(segs > wCubic(cc, 0.01) + 4);
    // Once W_est passes cwnd_prior (20), α becomes 1: about one segment per RTT.
    let now = ackClock(cc, t0 + 10, t0 + 20, 1);
    const before = cc.wEst;
    assert.ok(before > 20);
    now = ackClock(cc, now, now + 10, 1);
    assert.ok(Math.abs(cc.wEst - before - 10) < 0.6, `W_est grew ${cc.wEst - before}`);
  });

  it("clamps the target to 1.5 × cwnd: at most half a segment per segment acknowledged (§4.2)", () => {
    const cc = new Cubic({ mss: MSS });
    lossAt(cc, 1000, 0);
    cc.onAck(MSS, 10_000, 100, cc.cwnd); // starts the epoch
    const before = cc.cwnd;
    // 30 s later W_cubic(t + RTT) is thousands of segments above cwnd.
    assert.ok(wCubic(cc, 30) > 1.5 * (before / MSS));
    cc.onAck(MSS, 40_000, 100, cc.cwnd);
    assert.equal(cc.cwnd, Math.floor(before + MSS / 2));
    const bigger = cc.cwnd;
    cc.onAck(4 * MSS, 40_001, 100, cc.cwnd); // 4 segments: +2
    assert.equal(cc.cwnd, Math.floor(bigger + 2 * MSS));
  });

  it("never shrinks cwnd on an ACK (target lower bound, §4.2)", () => {
    const cc = new Cubic({ mss: MSS });
    lossAt(cc, 100, 0);
    let prev = cc.cwnd;
    let now = 1000;
    for (let i = 0; i < 5000; i++) {
      cc.onAck(MSS, now, 40, cc.cwnd);
      assert.ok(cc.cwnd >= prev);
      prev = cc.cwnd;
      now += 7;
    }
  });

  it("after a timeout starts the next epoch with K = 0 and W_max = cwnd_epoch (§4.8)", () => {
    const cc = new Cubic({ mss: MSS });
    growTo(cc, 100);
    cc.onRetransmissionTimeout(0, 100 * MSS);
    assert.equal(cc.cwnd, MSS);
    assert.equal(cc.ssthresh, 70 * MSS);
    let now = 1000;
    while (cc.cwnd < cc.ssthresh) cc.onAck(MSS, now++, 100, cc.cwnd);
    assert.equal(cc.cwnd, 70 * MSS);
    assert.equal(cc.epochStart, undefined);
    cc.onAck(MSS, now, 100, cc.cwnd);
    assert.equal(cc.epochStart, now);
    assert.equal(cc.k, 0);
    assert.ok(Math.abs(cc.wMax - 70) < 1e-9);
    assert.ok(Math.abs(cc.wEst - 70) < 0.1);
  });

  it("excludes idle time from t by shifting the epoch (§5.8)", () => {
    const cc = new Cubic({ mss: MSS });
    lossAt(cc, 100, 0);
    let now = ackClock(cc, 1000, 3000, 100);
    const epoch = cc.epochStart!;
    const lastAck = now - 100 / (cc.cwnd / MSS);
    now += 60_000;
    cc.onIdleRestart(now);
    assert.equal(cc.cwnd, 10 * MSS);
    assert.ok(Math.abs(cc.epochStart! - (epoch + (now - lastAck))) < 1e-6);
  });

  it("excludes application-limited periods from t and does not grow then (§5.8)", () => {
    const cc = new Cubic({ mss: MSS });
    lossAt(cc, 100, 0);
    cc.onAck(MSS, 1000, 100, cc.cwnd); // epoch starts at 1000
    const cwnd = cc.cwnd;
    cc.onAck(MSS, 6000, 100, 10 * MSS); // app-limited for 5 s
    assert.equal(cc.cwnd, cwnd);
    assert.equal(cc.epochStart, 6000);
    cc.onAck(MSS, 6100, 100, cc.cwnd);
    assert.ok(cc.cwnd > cwnd);
  });

  it("computes K from W_max and cwnd_epoch and α_cubic ≈ 0.529 (§4.1, §4.3)", () => {
    assert.ok(Math.abs(CUBIC_ALPHA - 0.9 / 1.7) < 1e-12);
    const cc = new Cubic({ mss: MSS });
    lossAt(cc, 200, 0);
    cc.onAck(MSS, 500, 100, cc.cwnd);
    assert.ok(Math.abs(cc.k - Math.cbrt((200 - 140) / 0.4)) < 1e-9);
  });

  it("keeps W_max in segments when the SMSS changes", () => {
    const cc = new Cubic({ mss: 1460 });
    cc.onCongestionEvent(0, 30 * 1460);
    const wMax = cc.wMax;
    cc.setMss(1000);
    assert.equal(cc.wMax, wMax);
    assert.equal(cc.cwnd, 21 * 1000); // 30 * 1460 * 0.7 = 21 segments
  });
});

describe("createCongestionControl", () => {
  it("builds both algorithms and rejects unknown names and bad options", () => {
    assert.ok(createCongestionControl("newreno", { mss: MSS }) instanceof NewReno);
    assert.ok(createCongestionControl("cubic", { mss: MSS }) instanceof Cubic);
    // @ts-expect-error: not an algorithm
    assert.throws(() => createCongestionControl("bbr", { mss: MSS }), TypeError);
    assert.throws(() => new Cubic({ mss: 0 }), RangeError);
    assert.throws(() => new NewReno({ mss: NaN }), RangeError);
    assert.throws(() => new NewReno({ mss: MSS, initialWindowSegments: 0 }), RangeError);
  });
});

describe("HyStart++ (RFC 9406) in the initial slow start", () => {
  /** One round of `cwnd` segments, one ACK per segment, every sample `rtt`. */
  function round(cc: CongestionControl, rtt: number): void {
    const n = Math.floor(cc.cwnd / MSS);
    for (let i = 0; i < n; i++) cc.onAck(MSS, 0, rtt, cc.cwnd - i * MSS);
  }

  for (const name of ["newreno", "cubic"] as const) {
    it(`${name}: a round whose minimum RTT rose by max(4 ms, RTT/8) turns conservative (§4.2)`, () => {
      const cc = createCongestionControl(name, { mss: MSS }) as NewReno | Cubic;
      round(cc, 20);
      round(cc, 22); // +2 ms: below the threshold of max(4, 20/8 = 2.5) ms
      assert.equal(cc.conservativeSlowStart, false);
      const before = cc.cwnd;
      round(cc, 27); // +5 ms from 22: conservative from its 8th sample on
      assert.equal(cc.conservativeSlowStart, true);
      assert.ok(cc.cwnd < before + before, "grew less than double in that round");
      // CSS: a quarter of slow start's growth per ACK.
      const c0 = cc.cwnd;
      cc.onAck(MSS, 0, 27, cc.cwnd);
      assert.equal(cc.cwnd, c0 + MSS / 4);
      assert.equal(cc.ssthresh, Infinity);
      for (let r = 0; r < 5; r++) round(cc, 27);
      assert.equal(cc.conservativeSlowStart, false);
      // After 5 CSS rounds: congestion avoidance from the cwnd reached (ssthresh = cwnd then).
      assert.ok(cc.ssthresh !== Infinity && cc.ssthresh <= cc.cwnd && cc.ssthresh > c0);
    });

    it(`${name}: an RTT that falls below the CSS baseline resumes slow start (§4.2)`, () => {
      const cc = createCongestionControl(name, { mss: MSS }) as NewReno | Cubic;
      round(cc, 20);
      round(cc, 30);
      assert.equal(cc.conservativeSlowStart, true);
      round(cc, 20);
      assert.equal(cc.conservativeSlowStart, false);
      assert.equal(cc.ssthresh, Infinity);
    });
  }

  for (const name of ["newreno", "cubic"] as const) {
    it(`${name}: ACKs of one flight still arriving a minimum RTT after the round began end slow start (the ACK train)`, () => {
      const cc = createCongestionControl(name, { mss: MSS, ackTrain: true });
      // The initial window's ACKs come one every 3 ms (a slow bottleneck); the minimum RTT is 8.
      let flight = cc.cwnd;
      for (let i = 0, t = 10; i < 3; i++, t += 3) {
        cc.onAck(MSS, t, 8 + 3 * i, flight);
        flight += MSS; // 2 sent, 1 acknowledged
        assert.equal(cc.ssthresh, Infinity, `still slow start at ${t} ms`);
      }
      const cwnd = cc.cwnd;
      cc.onAck(MSS, 19, 17, flight); // 9 ms into the round: more than the 8 ms minimum RTT
      assert.equal(cc.ssthresh, cwnd, "congestion avoidance from the window reached");
      assert.ok(cc.cwnd >= cwnd && cc.cwnd < cwnd + MSS, `cwnd ${cc.cwnd}: no more slow start`);
    });
  }

  it("the ACK train leaves windows above HYSTART_ACK_TRAIN_MAX_BYTES to the RTT test and loss", () => {
    const cc = new Cubic({ mss: MSS, ackTrain: true });
    growTo(cc, Math.ceil(HYSTART_ACK_TRAIN_MAX_BYTES / MSS) + 1);
    // A whole flight of ACKs, one every 0.1 ms, the last 20 ms into the round (minimum RTT 8):
    // a sender bound by its own CPU, not a small queue.
    const n = Math.floor(cc.cwnd / MSS);
    let flight = cc.cwnd;
    for (let i = 0; i <= n; i++, flight += MSS) cc.onAck(MSS, 1000 + (20 * i) / n, 8, flight);
    assert.equal(cc.ssthresh, Infinity, "still slow start");
    assert.ok(cc.cwnd >= 2 * n * MSS, `cwnd ${cc.cwnd}: doubled in the round`);
  });

  it("an unpaced sender (ackTrain off, the default) keeps slow start through the same ACK train", () => {
    const cc = createCongestionControl("cubic", { mss: MSS });
    let flight = cc.cwnd;
    for (let i = 0, t = 10; i < 3; i++, t += 3) {
      cc.onAck(MSS, t, 8 + 3 * i, flight);
      flight += MSS;
    }
    const cwnd = cc.cwnd;
    cc.onAck(MSS, 19, 17, flight);
    assert.equal(cc.ssthresh, Infinity);
    assert.equal(cc.cwnd, cwnd + MSS, "slow start: one MSS per MSS acknowledged");
  });

  it("the ACK train does not count the RTT between two flights (rounds end past the flight)", () => {
    const cc = new Cubic({ mss: MSS, ackTrain: true });
    const n = cc.cwnd / MSS;
    // The whole initial window is acknowledged at 100 ms, the next flight (sent then, two
    // segments per ACK) at 200 ms.
    let flight = cc.cwnd;
    for (let i = 0; i < n; i++, flight += MSS) cc.onAck(MSS, 100, 100, flight);
    assert.equal(cc.cwnd, 2 * n * MSS);
    for (let i = 0; i < 2 * n; i++, flight += MSS) cc.onAck(MSS, 200, 100, flight);
    assert.equal(cc.ssthresh, Infinity);
    assert.equal(cc.cwnd, 4 * n * MSS, "doubled twice");
  });

  it("needs 8 samples in a round, and is off after the first loss", () => {
    const cc = new Cubic({ mss: MSS, initialWindowSegments: 4 });
    round(cc, 10); // 4 samples
    round(cc, 40); // 8 ACKs but the round of 8 segments just meets 8 samples
    const small = new Cubic({ mss: MSS, initialWindowSegments: 2 });
    round(small, 10);
    round(small, 40); // 4 samples: no verdict
    assert.equal(small.conservativeSlowStart, false);
    cc.onCongestionEvent(0, cc.cwnd);
    cc.onRecoveryExit(0, cc.ssthresh);
    assert.equal(cc.conservativeSlowStart, false);
  });
});

describe("delay-bounded growth (CongestionOptions.delayBound, paced senders)", () => {
  /** A window in congestion avoidance after a loss at `segments`, RTT samples of 10 ms. */
  function avoiding(name: "newreno" | "cubic", segments: number): CongestionControl {
    const cc = createCongestionControl(name, { mss: MSS, delayBound: true });
    lossAt(cc, segments, 0); // slow start's ACKs sampled 10 ms
    return cc;
  }

  for (const name of ["newreno", "cubic"] as const) {
    it(`${name}: ACKs whose RTT exceeds the minimum by max(4 ms, RTT/8) do not grow cwnd`, () => {
      const cc = avoiding(name, 20);
      const held = cc.cwnd;
      // Minimum 10 ms: the margin is 4 ms. Two seconds of ACKs at 14 ms hold the window.
      let now = ackClock(cc, 100, 2100, 14);
      assert.equal(cc.cwnd, held, "held while the queue is 4 ms long");
      // A queue of 3 ms: growth as without the bound (about a segment per RTT or more).
      now = ackClock(cc, now, now + 200, 13);
      assert.ok(cc.cwnd >= held + 5 * MSS, `cwnd ${cc.cwnd} grew from ${held}`);
    });

    it(`${name}: without delayBound (the default) the same ACKs grow cwnd`, () => {
      const cc = createCongestionControl(name, { mss: MSS });
      growTo(cc, 20);
      lossAt(cc, 20, 0);
      const before = cc.cwnd;
      ackClock(cc, 100, 2100, 14);
      assert.ok(cc.cwnd > before + 50 * MSS, `cwnd ${cc.cwnd}`);
    });
  }

  it("does not hold slow start (HyStart++ governs it) nor the reduction on loss", () => {
    const cc = createCongestionControl("cubic", { mss: MSS, delayBound: true });
    cc.onAck(MSS, 0, 10, cc.cwnd);
    const iw = cc.cwnd;
    cc.onAck(MSS, 1, 30, cc.cwnd);
    assert.equal(cc.cwnd, iw + MSS, "slow start grew on an ACK 20 ms above the minimum");
    lossAt(cc, cc.cwnd / MSS, 2);
    assert.equal(cc.cwnd, Math.floor(0.7 * (iw + MSS)));
  });

  it("holds no window above DELAY_BOUND_MAX_BYTES (RTTs that rise with batching, not the window)", () => {
    const cc = avoiding("cubic", Math.ceil(DELAY_BOUND_MAX_BYTES / 0.7 / MSS) + 20);
    const before = cc.cwnd;
    assert.ok(before > DELAY_BOUND_MAX_BYTES);
    ackClock(cc, 100, 2100, 14);
    assert.ok(cc.cwnd > before + 10 * MSS, `cwnd ${cc.cwnd} grew from ${before}`);
  });

  it("takes a new minimum RTT once the old one is MIN_RTT_WINDOW_MS old", () => {
    const cc = avoiding("newreno", 20);
    const held = cc.cwnd;
    // The path's RTT rose for good, from 10 to 40 ms: held until the 10 ms minimum expires.
    let now = ackClock(cc, 100, MIN_RTT_WINDOW_MS - 100, 40);
    assert.equal(cc.cwnd, held);
    now = ackClock(cc, now, MIN_RTT_WINDOW_MS + 2000, 40);
    assert.ok(cc.cwnd > held, "grows again against the new minimum of 40 ms");
  });
});
