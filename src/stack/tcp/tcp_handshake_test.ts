import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TcpFlags } from "../../wire/mod.ts";
import {
  ACTIVE_LOCAL_PORT,
  ACTIVE_PEER,
  ACTIVE_REMOTE_PORT,
  assertSilent,
  BARE_PEER,
  bytes,
  drainOne,
  established,
  FULL_PEER,
  FULL_SYN_OPTIONS,
  HARNESS_PEER_IP,
  LOCAL_PORT,
  PEER_PORT,
  seg,
  type SynOptions,
  TcpHarness,
  u32,
} from "./tcp_harness.ts";
import type { TcpConfig } from "./tcp_config.ts";
import type { TcpConnection } from "./tcp_connection.ts";

const { ACK, FIN, PSH, RST, SYN } = TcpFlags;

const A = { srcPort: ACTIVE_LOCAL_PORT, dstPort: ACTIVE_REMOTE_PORT } as const;

/** What the handshake put in force, as the connection reports it. */
function inForce(conn: TcpConnection) {
  const { sendMss, sendWindowScale, recvWindowScale, timestamps, sack } = conn.info();
  return { sendMss, sendWindowScale, recvWindowScale, timestamps, sack };
}

/** An active open of a fresh harness, its SYN sent (not drained). */
function synSent(config?: Partial<TcpConfig>) {
  const h = new TcpHarness();
  const c = h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now, {
    localPort: ACTIVE_LOCAL_PORT,
    config,
  });
  return { h, c };
}
const P = { srcPort: ACTIVE_REMOTE_PORT, dstPort: ACTIVE_LOCAL_PORT } as const;

/**
 * A SYN offering `syn` to a listener whose stack has `tcp`, and the options
 * of the SYN-ACK (window 65535, unscaled, RFC 7323 §2.2; MSS 1460 always):
 * a passive open answers only what the peer offered (RFC 7323 §1.3, §2.2,
 * §3.2; RFC 2018 §2).
 */
const SYN_ACK_CASES: Array<{
  name: string;
  tcp?: Partial<TcpConfig>;
  syn: SynOptions;
  answer: SynOptions;
}> = [
  {
    name: "answers a full-featured SYN with MSS, SACK-permitted, timestamps and window scale",
    syn: FULL_SYN_OPTIONS,
    answer: { sackPermitted: true, timestamp: { value: 0, echo: 100 }, windowScale: 4 },
  },
  {
    name: "answers a SYN without options with only the MSS option and an unscaled window",
    syn: {},
    answer: {},
  },
  {
    name: "echoes only window scale when the peer offers only window scale",
    syn: { mss: 1460, windowScale: 2 },
    answer: { windowScale: 4 },
  },
  {
    name: "answers SACK-permitted alone with SACK-permitted alone",
    syn: { mss: 1460, sackPermitted: true },
    answer: { sackPermitted: true },
  },
  {
    name: "answers timestamps alone with a timestamp echoing the peer's TSval",
    syn: { mss: 1460, timestamp: { value: 0xdeadbeef, echo: 0 } },
    answer: { timestamp: { value: 0, echo: 0xdeadbeef } },
  },
  {
    name: "offers no option the listener's config disables, even when the peer offers it",
    tcp: { windowScaling: false, sack: false, timestamps: false },
    syn: FULL_SYN_OPTIONS,
    answer: {},
  },
];

describe("passive open: the SYN-ACK (RFC 9293 §3.10.7.2)", () => {
  for (const c of SYN_ACK_CASES) {
    it(`${c.name} (RFC 7323 §2.2, §3.2; RFC 2018 §2)`, () => {
      const h = new TcpHarness({ tcp: c.tcp });
      h.stack.tcp.listen(LOCAL_PORT, 8);
      h.inject({ seqNumber: 1000, flags: SYN, ...c.syn });
      const synAck = drainOne(h);
      const answer = { ...c.answer };
      // Our TSval is the clock plus a random offset: take it from the segment.
      if (answer.timestamp) {
        answer.timestamp = { ...answer.timestamp, value: synAck.timestamp!.value };
      }
      assert.deepEqual(
        synAck,
        seg({
          seqNumber: synAck.seqNumber,
          ackNumber: 1001,
          flags: SYN | ACK,
          windowLen: 65535,
          mss: 1460,
          ...answer,
        }),
      );
    });
  }

  it("uses a listener's own config over the stack's (window scale off per listener)", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 8, { windowScaling: false });
    h.inject({ seqNumber: 1000, flags: SYN, mss: 1460, windowScale: 7 });
    const synAck = drainOne(h);
    assert.equal(synAck.windowScale, undefined);
  });

  it("accepts a SYN whose sequence number is 0 and one at 0xffffffff (RFC 9293 §3.4.1)", () => {
    for (const isn of [0, 0xffffffff]) {
      const h = new TcpHarness();
      h.stack.tcp.listen(LOCAL_PORT, 8);
      h.inject({ seqNumber: isn, flags: SYN });
      const synAck = drainOne(h);
      assert.equal(synAck.ackNumber, u32(isn + 1));
    }
  });

  it("acknowledges only the SYN of a SYN that carries data (no TFO; RFC 9293 §3.10.7.2)", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: SYN, payload: bytes(10) });
    assert.equal(drainOne(h).ackNumber, 1001);
  });
});

describe("passive open: completing the handshake (RFC 9293 §3.10.7.4 SYN-RECEIVED)", () => {
  it("enters ESTABLISHED on the ACK of our SYN and joins the accept queue", () => {
    const h = new TcpHarness();
    const l = h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: SYN, mss: 1460 });
    const synAck = drainOne(h);
    assert.equal(l.synQueue.size, 1);
    const [half] = l.synQueue;
    assert.equal(half.state, "SYN_RECEIVED");
    assert.equal(l.acceptQueue.length, 0);
    h.inject({ seqNumber: 1001, ackNumber: u32(synAck.seqNumber + 1), flags: ACK });
    assertSilent(h);
    assert.equal(half.state, "ESTABLISHED");
    assert.equal(l.synQueue.size, 0);
    assert.deepEqual(l.acceptQueue, [half]);
    assert.ok(l.events & 16, "the listener is marked acceptable");
    assert.deepEqual(half.debugSeq(), {
      iss: synAck.seqNumber,
      irs: 1000,
      sndUna: u32(synAck.seqNumber + 1),
      sndNxt: u32(synAck.seqNumber + 1),
      sndMax: u32(synAck.seqNumber + 1),
      rcvNxt: 1001,
    });
  });

  /** What a passive open negotiates with a peer offering `peer` (RFC 9293 §3.7.1, RFC 7323). */
  const NEGOTIATED = [
    {
      name: "negotiates every option with a full-featured peer (MSS less 12 for timestamps)",
      peer: { syn: FULL_SYN_OPTIONS, window: 1000 << 7 },
      info: {
        sendMss: 1460 - 12,
        sendWindowScale: 7,
        recvWindowScale: 4,
        timestamps: true,
        sack: true,
        sendWindow: 1000 << 7,
      },
    },
    {
      name: "falls back to MSS 536 and no options with a peer that offers none",
      peer: BARE_PEER,
      info: {
        sendMss: 536,
        sendWindowScale: 0,
        recvWindowScale: 0,
        timestamps: false,
        sack: false,
        sendWindow: 65535,
      },
    },
  ];
  for (const c of NEGOTIATED) {
    it(`${c.name} (RFC 9293 §3.7.1, RFC 7323 §2.2)`, () => {
      const { conn } = established({ peer: c.peer, synWindow: 65535 });
      assert.deepEqual({ ...inForce(conn), sendWindow: conn.info().sendWindow }, c.info);
    });
  }

  it("sends segments without options and with an unscaled window to a peer that offered none", () => {
    const { h, conn, s } = established({ peer: BARE_PEER });
    conn.send(bytes(1072), h.now);
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: s, ackNumber: 1001, flags: ACK, windowLen: 65535, payload: bytes(536) }),
      seg({
        seqNumber: s + 536,
        ackNumber: 1001,
        flags: ACK | PSH,
        windowLen: 65535,
        payload: bytes(536, 536),
      }),
    ]);
  });

  it("keeps the window of the SYN unscaled until the ACK (RFC 7323 §2.2)", () => {
    const h = new TcpHarness();
    const l = h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: SYN, windowLen: 1000, mss: 1460, windowScale: 7 });
    const synAck = drainOne(h);
    const [half] = l.synQueue;
    assert.equal(half.info().sendWindow, 1000);
    h.inject({
      seqNumber: 1001,
      ackNumber: u32(synAck.seqNumber + 1),
      flags: ACK,
      windowLen: 1000,
    });
    assert.equal(half.info().sendWindow, 1000 << 7);
  });

  it("retransmits the SYN-ACK when the peer retransmits its SYN (RFC 9293 §3.10.7.4)", () => {
    const h = new TcpHarness();
    h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: SYN, mss: 1460 });
    const synAck = drainOne(h);
    h.now += 200;
    h.inject({ seqNumber: 1000, flags: SYN, mss: 1460 });
    assert.deepEqual(h.drain(), [synAck]);
  });

  it("completes on a first data segment when the handshake's ACK was lost", () => {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const l = h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: SYN });
    const iss = drainOne(h).seqNumber;
    h.inject({ seqNumber: 1001, ackNumber: u32(iss + 1), flags: ACK | PSH, payload: bytes(30) });
    const c = l.accept()!;
    assert.equal(c.state, "ESTABLISHED");
    assert.deepEqual(c.read(100, h.now), bytes(30));
  });

  it("enters CLOSE-WAIT when the handshake's ACK carries a FIN, and the connection still waits to be accepted", () => {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const l = h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1000, flags: SYN });
    const iss = drainOne(h).seqNumber;
    h.inject({ seqNumber: 1001, ackNumber: u32(iss + 1), flags: ACK | FIN });
    assert.deepEqual(h.drain(), [
      seg({ seqNumber: iss + 1, ackNumber: 1002, flags: ACK, windowLen: 65534 }),
    ]);
    const c = l.accept()!;
    assert.equal(c.state, "CLOSE_WAIT");
    assert.equal(c.readEnded, true);
  });

  it("stops retransmitting the SYN-ACK once the handshake completes", () => {
    const h = new TcpHarness();
    established({ harness: h, peer: FULL_PEER });
    h.advance(10_000);
    assertSilent(h);
  });
});

/** The options of our SYN for a stack with `tcp`: every option enabled is offered (RFC 9293 §3.10.1). */
const SYN_CASES: Array<{ name: string; tcp?: Partial<TcpConfig>; offer: SynOptions }> = [
  {
    name:
      "offers MSS, SACK-permitted, timestamps and window scale in a SYN with an unscaled window",
    offer: { sackPermitted: true, timestamp: { value: 0, echo: 0 }, windowScale: 4 },
  },
  {
    name: "offers only MSS when every option is disabled",
    tcp: { windowScaling: false, sack: false, timestamps: false },
    offer: {},
  },
];

/**
 * A SYN-ACK offering `syn` to our SYN: our ACK and what is in force then
 * (RFC 9293 §3.10.7.3; RFC 7323 §1.3: no option without both offering it).
 */
const SYN_ACK_ANSWERS = [
  {
    name: "completes on a SYN-ACK with the ACK of the peer's SYN, every option in force",
    syn: FULL_SYN_OPTIONS,
    ack: { windowLen: (512 * 1024) >> 4, timestamp: { value: 0, echo: 100 } },
    info: { sendMss: 1448, sendWindowScale: 7, recvWindowScale: 4, timestamps: true, sack: true },
  },
  {
    name: "turns scaling, SACK and timestamps off when the SYN-ACK has no options",
    syn: {},
    ack: { windowLen: 65535 },
    info: { sendMss: 536, sendWindowScale: 0, recvWindowScale: 0, timestamps: false, sack: false },
  },
];

describe("active open: the SYN (RFC 9293 §3.10.1)", () => {
  for (const c of SYN_CASES) {
    it(c.name, () => {
      const h = new TcpHarness({ tcp: c.tcp });
      h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now, {
        localPort: ACTIVE_LOCAL_PORT,
      });
      const syn = drainOne(h);
      const offer = { ...c.offer };
      if (offer.timestamp) offer.timestamp = { value: syn.timestamp!.value, echo: 0 };
      assert.deepEqual(
        syn,
        seg({ ...A, seqNumber: syn.seqNumber, flags: SYN, windowLen: 65535, mss: 1460, ...offer }),
      );
    });
  }

  it("picks an ephemeral source port in 49152..65535 when none is given (RFC 6056)", () => {
    const h = new TcpHarness();
    const c = h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now);
    assert.ok(c.localPort >= 49152 && c.localPort <= 65535, `port ${c.localPort}`);
    assert.equal(drainOne(h).srcPort, c.localPort);
  });

  for (const c of SYN_ACK_ANSWERS) {
    it(`${c.name} (RFC 9293 §3.10.7.3, RFC 7323 §1.3)`, () => {
      const { h, conn, s, ack, tsOffset } = established({
        active: true,
        peer: { ...ACTIVE_PEER, syn: c.syn },
      });
      const expected = { ...c.ack };
      if (expected.timestamp) {
        expected.timestamp = { ...expected.timestamp, value: u32(h.now + tsOffset) };
      }
      assert.deepEqual(ack, seg({ ...A, seqNumber: s, ackNumber: 5001, flags: ACK, ...expected }));
      assert.deepEqual(inForce(conn), c.info);
      assert.ok(conn.events & 4, "CONNECTED is raised");
    });
  }

  it("never scales the window of the SYN-ACK (RFC 7323 §2.2)", () => {
    const h = new TcpHarness();
    const { conn } = established({ harness: h, active: true, peer: ACTIVE_PEER, synWindow: 1000 });
    assert.equal(conn.info().sendWindow, 1000);
    assert.equal(conn.info().sendWindowScale, 7);
  });

  it("completes after a retransmitted SYN and stops the timer", () => {
    const { h, c } = synSent();
    const syn = drainOne(h);
    h.fireNextTimer();
    h.drain();
    h.inject({
      ...P,
      seqNumber: 7,
      ackNumber: u32(syn.seqNumber + 1),
      flags: SYN | ACK,
      mss: 1460,
    });
    assert.equal(c.state, "ESTABLISHED");
    assert.equal(drainOne(h).flags, ACK);
    h.advance(200_000);
    assertSilent(h);
  });

  it("re-acknowledges a retransmitted SYN-ACK after its ACK was lost (RFC 9293 §3.10.7.4 first)", () => {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const { iss, ack } = established({
      harness: h,
      active: true,
      peer: { ...ACTIVE_PEER, syn: { mss: 1460 } },
    });
    h.inject({ ...P, seqNumber: 5000, ackNumber: u32(iss + 1), flags: SYN | ACK, mss: 1460 });
    assert.deepEqual(h.drain(), [ack]);
  });

  it("accepts data carried by the SYN-ACK (RFC 9293 §3.10.7.3 sixth)", () => {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const c = h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now, {
      localPort: ACTIVE_LOCAL_PORT,
    });
    const syn = drainOne(h);
    h.inject({
      ...P,
      seqNumber: 7,
      ackNumber: u32(syn.seqNumber + 1),
      flags: SYN | ACK,
      mss: 1460,
      payload: bytes(12),
    });
    assert.deepEqual(h.drain(), [
      seg({ ...A, seqNumber: syn.seqNumber + 1, ackNumber: 20, flags: ACK, windowLen: 65535 - 12 }),
    ]);
    assert.deepEqual(c.read(100, h.now), bytes(12));
  });

  it("ignores a segment without SYN or RST in SYN-SENT (RFC 9293 §3.10.7.3 fifth)", () => {
    const { h, c } = synSent();
    const syn = drainOne(h);
    h.inject({ ...P, seqNumber: 7, ackNumber: u32(syn.seqNumber + 1), flags: ACK });
    assertSilent(h);
    assert.equal(c.state, "SYN_SENT");
  });

  it("deletes the TCB silently when closed in SYN-SENT (RFC 9293 §3.10.4)", () => {
    const { h, c } = synSent();
    h.drain();
    c.close(h.now);
    assertSilent(h);
    assert.equal(c.state, "CLOSED");
    assert.equal(h.stack.tcp.active.size, 0);
  });

  it("aborts silently in SYN-SENT (RFC 9293 §3.10.5)", () => {
    const { h, c } = synSent();
    h.drain();
    c.abort(h.now);
    assertSilent(h);
    assert.equal(c.state, "CLOSED");
  });

  it("sends data queued in SYN-SENT right after the handshake's ACK", () => {
    const h = new TcpHarness();
    const c = h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now, {
      localPort: ACTIVE_LOCAL_PORT,
      config: { timestamps: false },
    });
    const syn = drainOne(h);
    assert.equal(c.send(bytes(100), h.now), 100);
    assertSilent(h, "no data before the handshake");
    h.inject({
      ...P,
      seqNumber: 7,
      ackNumber: u32(syn.seqNumber + 1),
      flags: SYN | ACK,
      mss: 1460,
    });
    const out = h.drain();
    assert.deepEqual(out, [
      seg({
        ...A,
        seqNumber: syn.seqNumber + 1,
        ackNumber: 8,
        flags: ACK | PSH,
        windowLen: 65535,
        payload: bytes(100),
      }),
    ]);
  });
});

/**
 * Our SYN (active) or SYN-ACK (passive) goes unanswered: retransmitted the
 * same after 1 s, then with the interval doubled, until the retries are used
 * up; then the connection is dropped silently (RFC 6298 §2.1, §5.5; Linux's
 * tcp_syn_retries and tcp_synack_retries).
 */
const SYN_RETRANSMISSIONS: Array<{
  name: string;
  active: boolean;
  tcp?: Partial<TcpConfig>;
  times: number[];
  giveUp: number;
}> = [
  {
    name: "retransmits the SYN after 1 s and doubles the interval, then fails with ETIMEDOUT",
    active: true,
    times: [1000, 3000, 7000, 15000, 31000, 63000],
    giveUp: 127000,
  },
  {
    name: "honours a smaller synRetries",
    active: true,
    tcp: { synRetries: 1 },
    times: [1000],
    giveUp: 3000,
  },
  {
    name:
      "retransmits the SYN-ACK with backoff and drops the half-open connection after synAckRetries",
    active: false,
    tcp: { synAckRetries: 3 },
    times: [1000, 3000, 7000],
    giveUp: 15000,
  },
];

describe("retransmission of the SYN and SYN-ACK (RFC 6298 §2.1, §5.5)", () => {
  for (const c of SYN_RETRANSMISSIONS) {
    it(c.name, () => {
      const h = new TcpHarness({ tcp: c.tcp });
      const t0 = h.now;
      const l = c.active ? undefined : h.stack.tcp.listen(LOCAL_PORT, 8);
      const conn = c.active
        ? h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, t0, {
          localPort: ACTIVE_LOCAL_PORT,
        })
        : undefined;
      if (l) h.inject({ seqNumber: 1000, flags: SYN, ...FULL_SYN_OPTIONS });
      const first = drainOne(h);
      const off = u32(first.timestamp!.value - t0);
      const echo = c.active ? 0 : 100;
      const times: number[] = [];
      for (const _ of c.times) {
        const t = h.fireNextTimer();
        times.push(t - t0);
        assert.deepEqual(drainOne(h), { ...first, timestamp: { value: u32(t + off), echo } });
        if (conn) assert.equal(conn.state, "SYN_SENT");
      }
      assert.deepEqual(times, c.times);
      assert.equal(h.fireNextTimer() - t0, c.giveUp);
      assertSilent(h, "giving up sends nothing (no RST)");
      if (conn) {
        assert.equal(conn.state, "CLOSED");
        assert.equal(conn.error, "ETIMEDOUT");
        assert.ok(conn.events & 8, "CLOSED is raised");
      }
      if (l) assert.equal(l.synQueue.size, 0);
      assert.equal(h.stack.tcp.active.size, 0);
      assert.equal(h.stack.tcp.nextDeadline(), undefined);
    });
  }
});

describe("simultaneous open (RFC 9293 §3.5, figure 8)", () => {
  function crossSyns() {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const c = h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now, {
      localPort: ACTIVE_LOCAL_PORT,
    });
    const syn = drainOne(h);
    h.inject({ ...P, seqNumber: 300, flags: SYN, mss: 1400, windowScale: 2, sackPermitted: true });
    return { h, c, iss: syn.seqNumber };
  }

  it("answers a SYN received in SYN-SENT with a SYN-ACK of the same ISS and enters SYN-RECEIVED", () => {
    const { h, c, iss } = crossSyns();
    assert.equal(c.state, "SYN_RECEIVED");
    assert.deepEqual(
      h.drain(),
      [seg({
        ...A,
        seqNumber: iss,
        ackNumber: 301,
        flags: SYN | ACK,
        windowLen: 65535,
        mss: 1460,
        sackPermitted: true,
        windowScale: 4,
      })],
    );
  });

  it("becomes ESTABLISHED on the peer's SYN-ACK without waiting for a retransmission (figure 8 line 6)", () => {
    const { h, c, iss } = crossSyns();
    h.drain();
    h.inject({
      ...P,
      seqNumber: 300,
      ackNumber: u32(iss + 1),
      flags: SYN | ACK,
      windowLen: 100,
      mss: 1400,
    });
    assert.equal(c.state, "ESTABLISHED");
    assert.equal(c.info().sendWindow, 100, "the window of a SYN-ACK is not scaled (RFC 7323 §2.2)");
    assert.equal(c.info().sendMss, 1400);
    for (const s of h.drain()) assert.equal(s.flags & RST, 0);
  });

  it("answers the peer's SYN-ACK with <SEQ=SEG.ACK><CTL=RST> when it does not acknowledge our SYN", () => {
    const { h, c, iss } = crossSyns();
    h.drain();
    h.inject({ ...P, seqNumber: 300, ackNumber: u32(iss + 5), flags: SYN | ACK });
    assert.deepEqual(h.drain(), [seg({ ...A, seqNumber: iss + 5, flags: RST, windowLen: 0 })]);
    assert.equal(c.state, "SYN_RECEIVED");
  });

  it("retransmits its SYN-ACK when the peer repeats its SYN", () => {
    const { h, c } = crossSyns();
    const synAck = drainOne(h);
    h.inject({ ...P, seqNumber: 300, flags: SYN, mss: 1400, windowScale: 2, sackPermitted: true });
    assert.deepEqual(h.drain(), [synAck]);
    assert.equal(c.state, "SYN_RECEIVED");
  });

  it("becomes ESTABLISHED on the peer's plain ACK", () => {
    const { h, c, iss } = crossSyns();
    h.drain();
    h.inject({ ...P, seqNumber: 301, ackNumber: u32(iss + 1), flags: ACK, windowLen: 100 });
    assert.equal(c.state, "ESTABLISHED");
    assert.equal(c.info().sendWindow, 100 << 2);
    assertSilent(h);
  });

  it("fails with ECONNREFUSED on an acceptable RST in SYN-RECEIVED after an active open (RFC 9293 §3.10.7.4)", () => {
    const { h, c } = crossSyns();
    h.drain();
    h.inject({ ...P, seqNumber: 301, flags: RST });
    assert.equal(c.state, "CLOSED");
    assert.equal(c.error, "ECONNREFUSED");
    assertSilent(h);
  });
});

describe("passive and active opening together", () => {
  it("exchanges data between a listener and the peer in both directions", () => {
    const h = new TcpHarness({ tcp: { timestamps: false } });
    const { conn, iss } = established({ harness: h, peer: { syn: { mss: 1460 } } });
    h.inject({ seqNumber: 1001, ackNumber: u32(iss + 1), flags: ACK | PSH, payload: bytes(10) });
    assert.deepEqual(conn.read(100, h.now), bytes(10));
    conn.send(bytes(5), h.now);
    assert.deepEqual(h.drain(), [
      // The right edge moved by only 10 bytes: receiver SWS avoidance keeps it (RFC 9293 §3.8.6.2.2).
      seg({
        seqNumber: iss + 1,
        ackNumber: 1011,
        flags: ACK | PSH,
        windowLen: 65525,
        payload: bytes(5),
      }),
    ]);
    assert.equal(conn.remotePort, PEER_PORT);
  });
});
