import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ACTIVE_LOCAL_PORT,
  ACTIVE_PEER,
  ACTIVE_REMOTE_PORT,
  assertSilent,
  bytes,
  decodeTcpFrame,
  drainOne,
  established,
  FULL_PEER,
  FULL_SYN_OPTIONS,
  HARNESS_PEER_IP,
  HARNESS_STACK_IP,
  HARNESS_STACK_MAC,
  LOCAL_PORT,
  Peer,
  type PeerOptions,
  seg,
  TcpHarness,
  u32,
} from "./tcp_harness.ts";
import {
  ETHERNET_HEADER_LEN,
  EthernetRepr,
  EtherType,
  Icmpv4DestUnreachableCode,
  Icmpv4Repr,
  IpProtocol,
  Ipv4Repr,
  seededRandom,
  TcpFlags,
} from "../../wire/mod.ts";

const { ACK, FIN, PSH, SYN } = TcpFlags;

describe("window scaling (RFC 7323 §2)", () => {
  // [receive buffer, the shift we offer]
  const SHIFTS = [
    [4096, 0],
    [65535, 0],
    [65536, 1],
    [131070, 1],
    [131071, 2],
    [1 << 20, 5],
    [1 << 30, 14],
  ];
  for (const [buffer, shift] of SHIFTS) {
    it(`offers shift ${shift} for a ${buffer}-byte buffer: the smallest that covers it (§2.3)`, () => {
      const h = new TcpHarness({ tcp: { recvBufferBytes: buffer } });
      h.stack.tcp.listen(LOCAL_PORT, 8);
      h.inject({ seqNumber: 1, flags: SYN, mss: 1460, windowScale: 0 });
      const synAck = drainOne(h);
      assert.equal(synAck.windowScale, shift, `buffer ${buffer}`);
      assert.equal(
        synAck.windowLen,
        Math.min(65535, buffer),
        "the SYN-ACK window is unscaled (§2.2)",
      );
    });
  }

  it("scales the window field of every non-SYN segment by our shift", () => {
    const h = new TcpHarness({ tcp: { recvBufferBytes: 1 << 20 } });
    const { conn, iss, tsOffset } = established({ harness: h, peer: FULL_PEER });
    conn.send(bytes(10), h.now);
    assert.deepEqual(h.drain(), [
      seg({
        seqNumber: iss + 1,
        ackNumber: 1001,
        flags: ACK | PSH,
        windowLen: (1 << 20) >> 5,
        timestamp: { value: u32(h.now + tsOffset), echo: 101 },
        payload: bytes(10),
      }),
    ]);
    assert.equal(conn.info().recvWindow, 1 << 20);
  });

  it("applies the peer's shift to its window fields, up to 14 (§2.3)", () => {
    const h = new TcpHarness();
    const { conn, iss } = established({
      harness: h,
      peer: { syn: { ...FULL_SYN_OPTIONS, windowScale: 14 }, window: 3 << 14 },
      synWindow: 65535,
    });
    assert.equal(conn.info().sendWindowScale, 14);
    assert.equal(conn.info().sendWindow, 3 << 14);
    h.inject({
      seqNumber: 1001,
      ackNumber: u32(iss + 1),
      flags: ACK,
      windowLen: 1,
      timestamp: { value: 102, echo: 0 },
    });
    assert.equal(conn.info().sendWindow, 1 << 14);
  });

  it("does not scale when only we offer it, and advertises at most 65535", () => {
    const h = new TcpHarness();
    const { conn, iss } = established({ harness: h, peer: { syn: { mss: 1460 } } });
    conn.send(bytes(1), h.now);
    assert.deepEqual(h.drain(), [
      seg({
        seqNumber: iss + 1,
        ackNumber: 1001,
        flags: ACK | PSH,
        windowLen: 65535,
        payload: bytes(1),
      }),
    ]);
    assert.equal(conn.info().recvWindowScale, 0);
  });

  it("never moves the right edge of the window to the left (§2.4, RFC 9293 §3.8.6.2.2)", () => {
    const h = new TcpHarness({ tcp: { recvBufferBytes: 8192, delayedAckMs: 1 } });
    const { conn, iss } = established({ harness: h, peer: { syn: { mss: 1460, windowScale: 0 } } });
    const rnd = seededRandom(42);
    const r = new Uint8Array(2);
    let seq = 1001;
    let right = 1001 + 8192;
    for (let i = 0; i < 300; i++) {
      rnd.fill(r);
      const len = 1 + (r[0] % 200);
      if (seq + len > right) {
        // The peer never sends beyond the window it was offered.
        conn.read(r[1] * 30, h.now);
      } else {
        h.inject({
          seqNumber: u32(seq),
          ackNumber: u32(iss + 1),
          flags: ACK | PSH,
          payload: bytes(len),
        });
        seq += len;
      }
      if (r[1] % 3 === 0) conn.read(r[1] * 20, h.now);
      h.advance(2);
      for (const s of h.drain()) {
        const edge = s.ackNumber + (s.windowLen << conn.info().recvWindowScale);
        assert.ok(edge >= right, `right edge ${edge} moved left of ${right} at step ${i}`);
        right = edge;
      }
    }
    assert.ok(right > 1001 + 8192 * 4, `the window kept moving right (${right})`);
    assert.ok(seq > 1001 + 8192 * 2, `the peer sent ${seq - 1001} bytes`);
  });

  it("keeps the offered window while data fills the buffer: it closes from the left", () => {
    const h = new TcpHarness({ tcp: { recvBufferBytes: 4096 } });
    const { iss } = established({ harness: h, peer: { syn: { mss: 1460 } } });
    const wins: number[] = [];
    for (let i = 0; i < 4; i++) {
      h.inject({
        seqNumber: 1001 + i * 1024,
        ackNumber: u32(iss + 1),
        flags: ACK,
        payload: bytes(1024),
      });
      h.advance(40);
      for (const s of h.drain()) wins.push(s.ackNumber + s.windowLen);
    }
    assert.ok(wins.length > 0);
    for (const w of wins) assert.equal(w, 1001 + 4096);
  });
});

/** Segment text of `n` bytes at `seq` from the peer, carrying TSval `value`. */
function withTs(peer: Peer, seq: number, n: number, value: number, flags = ACK | PSH): void {
  peer.sendAt(seq, bytes(n), { flags, timestamp: { value, echo: 0 } });
}

describe("timestamps (RFC 7323 §3, §4)", () => {
  it("ticks TSval once per millisecond (§5.4)", () => {
    const { h, conn, handshake } = established({ peer: FULL_PEER });
    const t0 = h.now;
    h.advance(1234);
    conn.send(bytes(1), h.now);
    const s = drainOne(h);
    assert.equal(u32(s.timestamp!.value - handshake.timestamp!.value), h.now - t0);
  });

  it("echoes the TSval of the latest in-order segment in TSecr (§4.3)", () => {
    const { h, peer, tsOffset } = established({ peer: FULL_PEER });
    withTs(peer, 1001, 10, 500);
    h.advance(40);
    const ack = drainOne(h);
    assert.deepEqual(ack.timestamp, { value: u32(h.now + tsOffset), echo: 500 });
  });

  it("echoes the earliest unacknowledged segment's TSval when one ACK covers two (§4.3 rule 2)", () => {
    const { h, peer } = established({ peer: FULL_PEER });
    withTs(peer, 1001, 100, 500, ACK);
    withTs(peer, 1101, 100, 510, ACK);
    const ack = drainOne(h);
    assert.equal(ack.ackNumber, 1201);
    assert.equal(ack.timestamp!.echo, 500);
  });

  it("does not take TS.Recent from an out-of-order segment (§4.3)", () => {
    const { h, peer } = established({ peer: FULL_PEER });
    withTs(peer, 1101, 100, 600, ACK);
    const dup = drainOne(h);
    assert.equal(dup.ackNumber, 1001);
    assert.equal(dup.timestamp!.echo, 101, "still the TSval of the handshake's ACK");
    withTs(peer, 1001, 100, 601, ACK);
    const ack = drainOne(h);
    assert.equal(ack.ackNumber, 1201);
    assert.equal(ack.timestamp!.echo, 601);
  });

  it("sends no timestamps when they were not negotiated, even if the peer adds them later (§3.2)", () => {
    const { h, peer, conn } = established({ peer: { syn: { mss: 1460 } } });
    peer.sendAt(1001, bytes(5), { timestamp: { value: 9, echo: 9 } });
    conn.send(bytes(3), h.now);
    for (const s of h.drain()) assert.equal(s.timestamp, undefined);
    assert.equal(conn.readableBytes, 5);
  });

  it("includes timestamps on every segment once negotiated: data, ACKs, FIN", () => {
    const { h, peer, conn } = established({ peer: FULL_PEER });
    conn.send(bytes(5), h.now);
    withTs(peer, 1001, 5, 102);
    h.advance(40);
    conn.shutdownWrite(h.now);
    const out = h.drain();
    assert.equal(out.length, 3);
    for (const s of out) assert.ok(s.timestamp, `segment with flags ${s.flags} has a timestamp`);
  });
});

describe("PAWS (RFC 7323 §5)", () => {
  function withTsRecent(value: number) {
    return established({
      peer: { syn: { ...FULL_SYN_OPTIONS, timestamp: { value, echo: 0 } } },
      ackTsVal: value,
    });
  }

  /** TS.Recent, then the TSvals of two 10-byte segments, and which of them PAWS lets in. */
  const PAWS_CASES = [
    {
      name: "drops a segment with an older TSval and answers with an ACK (§5.3 R1)",
      tsRecent: 1000,
      tsVals: [999],
      accepted: [false],
    },
    {
      name: "accepts a segment whose TSval equals TS.Recent",
      tsRecent: 1000,
      tsVals: [1000],
      accepted: [true],
    },
    {
      name:
        "compares TSvals modulo 2^32: a TSval that wrapped is newer, one before it older (§5.2)",
      tsRecent: 0xfffffff0,
      tsVals: [0x10, 0xfffffff5],
      accepted: [true, false],
    },
  ];
  for (const c of PAWS_CASES) {
    it(c.name, () => {
      const { h, conn, s, tsOffset } = withTsRecent(c.tsRecent);
      let rcvNxt = 1001;
      let tsRecent = c.tsRecent;
      c.tsVals.forEach((value, i) => {
        h.inject({
          seqNumber: rcvNxt,
          ackNumber: s,
          flags: ACK | PSH,
          payload: bytes(10),
          timestamp: { value, echo: 0 },
        });
        if (c.accepted[i]) {
          rcvNxt += 10;
          tsRecent = value;
          assertSilent(h, "the first in-order segment's ACK is delayed");
          h.advance(40);
          h.drain();
        } else {
          assert.deepEqual(h.drain(), [
            seg({
              seqNumber: s,
              ackNumber: rcvNxt,
              flags: ACK,
              windowLen: ((512 * 1024) >> 4) - ((rcvNxt - 1001) >> 4),
              timestamp: { value: u32(h.now + tsOffset), echo: tsRecent },
            }),
          ]);
        }
        assert.equal(conn.readableBytes, rcvNxt - 1001);
      });
      assert.equal(h.drops("tcp_paws_rejected"), c.accepted.filter((a) => !a).length);
    });
  }

  it("does not let a PAWS-rejected segment acknowledge data or close the connection", () => {
    const { h, conn, iss } = withTsRecent(1000);
    conn.send(bytes(10), h.now);
    h.drain();
    h.inject({
      seqNumber: 1001,
      ackNumber: u32(iss + 11),
      flags: ACK | FIN,
      timestamp: { value: 5, echo: 0 },
    });
    assert.equal(conn.state, "ESTABLISHED");
    assert.equal(conn.info().bytesInFlight, 10);
  });
});

describe("MSS and MTU (RFC 9293 §3.7.1, RFC 6691)", () => {
  it("announces MTU − 40 as our MSS: 536 on a 576-byte link", () => {
    const h = new TcpHarness({ mtu: 576 });
    h.stack.tcp.listen(LOCAL_PORT, 8);
    h.inject({ seqNumber: 1, flags: SYN, mss: 1460 });
    assert.equal(drainOne(h).mss, 536);
    h.stack.tcp.connect(HARNESS_PEER_IP, ACTIVE_REMOTE_PORT, h.now, {
      localPort: ACTIVE_LOCAL_PORT,
    });
    assert.equal(drainOne(h).mss, 536);
  });

  /**
   * The send MSS in force and the segments of one write: the peer's MSS,
   * less 12 bytes when timestamps are on (RFC 6691 §2), never more than the
   * link MTU allows (RFC 9293 §3.7.1).
   */
  const SEGMENT_SIZES: Array<{
    name: string;
    mtu?: number;
    active?: boolean;
    peer: PeerOptions;
    write: number;
    sendMss: number;
    sizes: number[];
  }> = [
    {
      name: "sends at most the peer's MSS minus the 12 bytes of timestamps per segment",
      peer: { syn: { ...FULL_SYN_OPTIONS, mss: 536 } },
      write: 5000,
      sendMss: 524,
      sizes: Array(9).fill(524), // the last 284 bytes wait for an ACK (Nagle)
    },
    {
      name: "sends whole peer-MSS segments when timestamps are off",
      peer: { syn: { mss: 1000 } },
      write: 3000,
      sendMss: 1000,
      sizes: [1000, 1000, 1000],
    },
    {
      name: "never exceeds the link MTU even when the peer's MSS is larger",
      mtu: 576,
      peer: { syn: { ...FULL_SYN_OPTIONS, mss: 9000 } },
      write: 20_000,
      sendMss: 536 - 12,
      sizes: Array(10).fill(524), // the initial window: 10 segments (RFC 6928)
    },
    {
      name: "caps a jumbo peer MSS at our MTU on Ethernet: 1448-byte segments with timestamps",
      peer: { syn: { ...FULL_SYN_OPTIONS, mss: 9000 } },
      write: 3000,
      sendMss: 1448,
      sizes: [1448, 1448],
    },
    {
      name: "uses the SYN-ACK's MSS on an active open",
      active: true,
      peer: { ...ACTIVE_PEER, syn: { mss: 700 } },
      write: 1400,
      sendMss: 700,
      sizes: [700, 700],
    },
  ];
  for (const c of SEGMENT_SIZES) {
    it(c.name, () => {
      const { h, conn } = established({ mtu: c.mtu, active: c.active, peer: c.peer });
      conn.send(bytes(c.write), h.now);
      const frames = h.link.drain();
      const mtu = c.mtu ?? 1500;
      for (const f of frames) {
        assert.ok(f.length - 14 <= mtu, `IP packet of ${f.length - 14} bytes`);
      }
      assert.deepEqual(frames.map((f) => decodeTcpFrame(f).payload.length), c.sizes);
      assert.equal(conn.info().sendMss, c.sendMss);
    });
  }

  it("caps a cookie's MSS at the link MTU", () => {
    const h = new TcpHarness({ mtu: 576 });
    const l = h.stack.tcp.listen(LOCAL_PORT, 1);
    h.inject({ srcPort: 30000, seqNumber: 1, flags: SYN, mss: 1460 });
    h.inject({ seqNumber: 7000, flags: SYN, mss: 1460 });
    const out = h.drain();
    const cookie = out[1];
    assert.equal(cookie.mss, 536);
    h.inject({ seqNumber: 7001, ackNumber: u32(cookie.seqNumber + 1), flags: ACK });
    assert.equal(l.accept()!.info().sendMss, 536);
  });
});

/** An ICMP fragmentation-needed from the peer quoting `quoted` (IP header + 8 bytes of TCP). */
function fragNeeded(quoted: Uint8Array, nextHopMtu: number): Uint8Array {
  const icmp: Icmpv4Repr = {
    type: "dest_unreachable",
    code: Icmpv4DestUnreachableCode.FRAG_NEEDED,
    nextHopMtu,
    data: quoted,
  };
  const icmpLen = Icmpv4Repr.bufferLen(icmp);
  const f = new Uint8Array(ETHERNET_HEADER_LEN + 20 + icmpLen);
  EthernetRepr.emit({
    dst: HARNESS_STACK_MAC,
    src: new Uint8Array([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
    etherType: EtherType.IPV4,
  }, f);
  Ipv4Repr.emit(
    {
      src: HARNESS_PEER_IP,
      dst: HARNESS_STACK_IP,
      protocol: IpProtocol.ICMP,
      payloadLen: icmpLen,
      ttl: 64,
    },
    f.subarray(ETHERNET_HEADER_LEN),
  );
  Icmpv4Repr.emit(icmp, f.subarray(ETHERNET_HEADER_LEN + 20));
  return f;
}

/**
 * An ICMP fragmentation-needed quoting (a forgery of) the first of two
 * full segments in flight, and what the stack makes of it: a new send MSS
 * and the in-flight data resent in that size, or nothing but a drop counted.
 */
const FRAG_NEEDED_CASES: Array<{
  name: string;
  mtu: number;
  forge?: (quoted: Uint8Array) => void;
  sendMss: number;
  drop?: string;
}> = [
  {
    name: "lowers the send MSS and resends what is in flight in the smaller size (RFC 1191 §6.3)",
    mtu: 1280,
    // 1280 - 20 (IP) - 20 (TCP) - 12 (timestamps) = 1228 bytes of payload per segment.
    sendMss: 1228,
  },
  {
    name: "ignores a fragmentation-needed whose quoted sequence number is not in flight",
    mtu: 576,
    forge: (quoted) => quoted[24] ^= 0x80, // SEG.SEQ far outside [SND.UNA, SND.NXT)
    sendMss: 1448,
    drop: "icmp_frag_needed_ignored",
  },
  {
    name:
      "ignores an implausibly small MTU (below 576) so that segments cannot be shrunk to nothing",
    mtu: 200,
    sendMss: 1448,
    drop: "icmp_frag_needed_ignored",
  },
  {
    name: "ignores a fragmentation-needed quoting a datagram the stack did not send",
    mtu: 1280,
    forge: (quoted) => quoted[12] ^= 1, // the quoted source address is no longer ours
    sendMss: 1448,
    drop: "icmp_bad_quote",
  },
];

describe("ICMP fragmentation-needed (RFC 5927 §4.1)", () => {
  for (const c of FRAG_NEEDED_CASES) {
    it(c.name, () => {
      const { h, conn } = established({ peer: FULL_PEER });
      conn.send(bytes(2 * 1448), h.now);
      const frames = h.link.drain();
      assert.equal(frames.length, 2);
      const quoted = frames[0].slice(ETHERNET_HEADER_LEN, ETHERNET_HEADER_LEN + 28);
      c.forge?.(quoted);
      h.stack.input(fragNeeded(quoted, c.mtu), h.now);
      assert.equal(conn.state, "ESTABLISHED");
      assert.equal(conn.info().sendMss, c.sendMss);
      const out = h.drain();
      if (c.drop) {
        assert.deepEqual(out, [], "no answer to the ICMP message");
        assert.equal(h.drops(c.drop), 1);
      } else {
        const { sndUna } = conn.debugSeq();
        assert.deepEqual(
          out.map((s) => [s.seqNumber, s.payload.length]),
          [[sndUna, 1228], [u32(sndUna + 1228), 1228], [u32(sndUna + 2456), 440]],
          "the data in flight is resent at once, in the smaller size",
        );
        assert.equal(h.drops("icmp_frag_needed_ignored"), 0);
      }
    });
  }
});
