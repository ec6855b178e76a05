import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  formatIpv6Address,
  Icmpv6Repr,
  IpProtocol,
  IPV6_ALL_MLDV2_ROUTERS,
  IPV6_ALL_NODES,
  IPV6_UNSPECIFIED,
  type Ipv6Address,
  Ipv6Repr,
  TcpFlags,
  TcpRepr,
  UdpRepr,
} from "../wire/mod.ts";
import { checksumAdd, checksumFinish, ipv6PseudoHeaderSum } from "../wire/mod.ts";
import { fromHex, hex } from "./_stack_test_util.ts";
import {
  decodeIcmpv6,
  decodeV6,
  GOLDEN_ECHO,
  GOLDEN_PTB,
  icmpv6Frame,
  ipv6Harness,
  learnPeer,
  PEER6,
  PEER_LL,
  STACK6,
  v6,
  v6Frame,
  type V6FrameOptions,
} from "./_ipv6_test_util.ts";

/** A UDP datagram over IPv6 from the peer with a valid (or `zero`) checksum. */
function udp6(
  dstPort: number,
  payload: Uint8Array,
  o: V6FrameOptions & { zero?: boolean } = {},
): Uint8Array {
  const repr: UdpRepr = { srcPort: 40000, dstPort, payload };
  const buf = new Uint8Array(UdpRepr.bufferLen(repr));
  UdpRepr.emit(repr, buf, 0, 0);
  buf[6] = buf[7] = 0;
  if (!o.zero) {
    const sum = checksumFinish(
      checksumAdd(ipv6PseudoHeaderSum(o.src ?? PEER6, o.dst ?? STACK6, 17, buf.length), buf),
    );
    buf[6] = sum >>> 8;
    buf[7] = sum & 0xff;
  }
  return v6Frame(IpProtocol.UDP, buf, o);
}

const ECHO_PACKET = GOLDEN_ECHO.subarray(14);

describe("ICMPv6 echo (RFC 4443 §4)", () => {
  it("answers Linux's echo request with the exact reply", () => {
    const h = ipv6Harness();
    learnPeer(h);
    h.input(GOLDEN_ECHO);
    // The request with MACs and addresses swapped, type 129: the checksum drops by 0x0100.
    const expected = GOLDEN_ECHO.slice();
    expected.set(GOLDEN_ECHO.subarray(6, 12), 0);
    expected.set(GOLDEN_ECHO.subarray(0, 6), 6);
    expected.set(GOLDEN_ECHO.subarray(38, 54), 22);
    expected.set(GOLDEN_ECHO.subarray(22, 38), 38);
    expected[54] = 129;
    expected.set(fromHex("6543"), 56);
    assert.deepEqual(h.drain().map(hex), [hex(expected)]);
    assert.ok(h.balanced);
  });

  it("answers an echo to all nodes from a unicast address of its own (§4.2)", () => {
    const h = ipv6Harness();
    learnPeer(h, PEER_LL);
    h.input(
      icmpv6Frame({ type: "echo_request", ident: 1, seqNo: 2, data: new Uint8Array(3) }, {
        src: PEER_LL,
        dst: IPV6_ALL_NODES,
      }),
    );
    const [reply] = h.drain();
    const d = decodeIcmpv6(reply);
    assert.deepEqual([formatIpv6Address(d.ip.src), formatIpv6Address(d.ip.dst)], [
      "fe80::ff:fe00:1",
      "fe80::5054:ff:fe12:3456",
    ]);
    assert.deepEqual(d.icmp, { type: "echo_reply", ident: 1, seqNo: 2, data: new Uint8Array(3) });
  });

  it("drops echo replies, unknown types, bad checksums and messages from :: by reason, answering nothing", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const bad = GOLDEN_ECHO.slice();
    bad[60] ^= 1;
    h.input(bad);
    h.input(icmpv6Frame({ type: "echo_reply", ident: 1, seqNo: 1, data: new Uint8Array(0) }));
    h.input(
      icmpv6Frame({
        type: "other",
        icmpType: 200,
        code: 0,
        restOfHeader: 0,
        data: new Uint8Array(0),
      }),
    );
    h.input(
      icmpv6Frame({ type: "other", icmpType: 50, code: 0, restOfHeader: 0, data: ECHO_PACKET }),
    );
    h.input(
      icmpv6Frame({ type: "echo_request", ident: 1, seqNo: 1, data: new Uint8Array(0) }, {
        src: IPV6_UNSPECIFIED,
      }),
    );
    h.input(v6Frame(IpProtocol.ICMPV6, fromHex("8000")));
    assert.deepEqual(
      [
        h.drops.icmpv6_bad_checksum,
        h.drops.icmpv6_unhandled_type,
        h.drops.icmpv6_unspecified_source,
        h.drops.icmpv6_truncated,
      ],
      [1, 3, 1, 1],
    );
    assert.equal(h.drain().length, 0);
    assert.ok(h.balanced);
  });
});

describe("ICMPv6 errors received (RFC 4443 §3, RFC 8201 §4)", () => {
  /** The first 48 bytes of a packet the stack sent to `dst`. */
  function ourPacket(dst: Ipv6Address = PEER6): Uint8Array {
    const p = new Uint8Array(48);
    Ipv6Repr.emit({ src: STACK6, dst, nextHeader: 58, payloadLen: 1400, hopLimit: 64 }, p);
    p[40] = 129;
    return p;
  }

  it("records a validated packet too big, never below 1280 and never raised", () => {
    const h = ipv6Harness();
    const ptb = (mtu: number) => icmpv6Frame({ type: "packet_too_big", mtu, data: ourPacket() });
    h.input(ptb(1400));
    assert.equal(h.stack.pathMtu!.get(PEER6, h.now), 1400);
    h.input(ptb(1450));
    assert.equal(h.stack.pathMtu!.get(PEER6, h.now), 1400);
    h.input(ptb(600));
    assert.equal(h.stack.pathMtu!.get(PEER6, h.now), 1280);
    assert.equal(h.stack.pathMtu!.get(PEER6, h.now + 600_000), 1500); // forgotten after 10 minutes
    assert.equal(h.stack.counters.rxHandled, 3);
    assert.deepEqual(h.stack.checkInvariants(), []);
  });

  it("drops an error quoting a packet the stack did not send, and errors it need not act on", () => {
    const h = ipv6Harness();
    h.input(GOLDEN_PTB); // quotes the peer's own echo request
    h.input(icmpv6Frame({ type: "dest_unreachable", code: 4, data: ourPacket() }));
    h.input(icmpv6Frame({ type: "time_exceeded", code: 0, data: fromHex("6000") }));
    assert.deepEqual([h.drops.icmpv6_bad_quote, h.drops.icmpv6_unhandled_type], [2, 1]);
    assert.equal(h.stack.pathMtu!.size, 0);
  });
});

describe("MLD (RFC 3810): accepted and ignored", () => {
  it("takes MLDv2 reports (also from ::) and queries without a drop or an answer", () => {
    const h = ipv6Harness();
    const alert = fromHex("3a00 0502 0000 0100"); // hop-by-hop: router alert 0 (MLD), PadN
    const report = icmpv6Frame(
      {
        type: "other",
        icmpType: 143,
        code: 0,
        restOfHeader: 1,
        data: fromHex("04000000ff020000000000000000000000000001ff123456"),
      },
      { src: PEER_LL, dst: IPV6_ALL_MLDV2_ROUTERS, hopLimit: 1, ext: alert, firstHeader: 0 },
    );
    assert.equal(hex(report.subarray(0, 6)), "333300000016");
    h.input(report);
    h.input(icmpv6Frame(
      { type: "other", icmpType: 143, code: 0, restOfHeader: 0, data: new Uint8Array(0) },
      {
        src: IPV6_UNSPECIFIED,
        dst: IPV6_ALL_MLDV2_ROUTERS,
        hopLimit: 1,
        ext: alert,
        firstHeader: 0,
      },
    ));
    h.input(icmpv6Frame(
      { type: "other", icmpType: 130, code: 0, restOfHeader: 0x27100000, data: new Uint8Array(16) },
      { src: v6("fe80::1"), dst: IPV6_ALL_NODES, hopLimit: 1, ext: alert, firstHeader: 0 },
    ));
    assert.equal(h.stack.counters.totalDrops(), 0);
    assert.equal(h.stack.counters.rxHandled, 3);
    assert.equal(h.drain().length, 0);
  });
});

describe("ICMPv6 errors sent (RFC 4443 §2.4, §3)", () => {
  it("answers UDP to a closed port with port unreachable quoting the whole datagram", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const frame = udp6(9, new Uint8Array(20));
    h.input(frame);
    const [err] = h.drain();
    const d = decodeIcmpv6(err);
    assert.deepEqual([d.ip.src, d.ip.dst, d.ip.hopLimit], [STACK6, PEER6, 64]);
    assert.deepEqual(d.icmp, { type: "dest_unreachable", code: 4, data: frame.subarray(14) });
    assert.equal(h.drops.udp_port_closed, 1);
    assert.equal(h.stack.icmpv6ErrorStats.sent, 1);
  });

  it("sends no error about a datagram to a group, from ::, or with a zero checksum (RFC 8200 §8.1)", () => {
    const h = ipv6Harness();
    learnPeer(h);
    h.input(udp6(9, new Uint8Array(4), { dst: IPV6_ALL_NODES }));
    h.input(udp6(9, new Uint8Array(4), { zero: true }));
    h.input(udp6(9, new Uint8Array(4), { src: IPV6_UNSPECIFIED }));
    assert.deepEqual([
      h.drops.udp_port_closed,
      h.drops.udp6_zero_checksum,
      h.drops.ipv6_martian_source,
    ], [1, 1, 1]);
    assert.equal(h.drain().length, 0);
  });

  it("quotes at most what keeps the error within 1280 bytes (§2.4 (c))", () => {
    const h = ipv6Harness();
    learnPeer(h);
    h.input(udp6(9, new Uint8Array(1400)));
    const [err] = h.drain();
    assert.equal(err.length, 14 + 1280);
    assert.equal(decodeV6(err).ip.payloadLen, 1240);
  });

  it("rate-limits errors with one token bucket (§2.4 (f))", () => {
    const h = ipv6Harness({ icmpErrorsPerSecond: 2 });
    learnPeer(h);
    for (let i = 0; i < 5; i++) h.input(udp6(9, new Uint8Array(1)));
    assert.equal(h.drain().length, 2);
    assert.equal(h.stack.counters.txDrops.icmpv6_error_rate_limited, 3);
    h.input(udp6(9, new Uint8Array(1)), h.now + 500);
    assert.equal(h.drain().length, 1);
    assert.deepEqual(h.stack.icmpv6ErrorStats, { sent: 3, rateLimited: 3 });
  });

  it("resets a TCP segment to a closed port (RFC 9293 §3.10.7.1): SYN gets RST+ACK, ACK gets RST", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const seg = (flags: number, seq: number, ack: number) => {
      const repr: TcpRepr = {
        srcPort: 40000,
        dstPort: 22,
        seqNumber: seq,
        ackNumber: ack,
        flags,
        windowLen: 65535,
        payload: new Uint8Array(0),
      };
      const buf = new Uint8Array(TcpRepr.bufferLen(repr));
      TcpRepr.emit(repr, buf, 0, 0);
      buf[16] = buf[17] = 0;
      const sum = checksumFinish(
        checksumAdd(ipv6PseudoHeaderSum(PEER6, STACK6, 6, buf.length), buf),
      );
      buf[16] = sum >>> 8;
      buf[17] = sum & 0xff;
      return v6Frame(IpProtocol.TCP, buf);
    };
    h.input(seg(TcpFlags.SYN, 1000, 0));
    h.input(seg(TcpFlags.ACK, 5, 777));
    h.input(seg(TcpFlags.RST, 5, 0));
    const out = h.drain().map(decodeV6);
    assert.equal(out.length, 2);
    for (const d of out) {
      assert.deepEqual([d.ip.src, d.ip.dst, d.ip.nextHeader], [STACK6, PEER6, 6]);
      const sum = checksumFinish(
        checksumAdd(ipv6PseudoHeaderSum(d.ip.src, d.ip.dst, 6, d.payload.length), d.payload),
      );
      assert.equal(sum, 0);
    }
    // Window 0, urgent pointer 0; bytes 16..18 the checksum checked above.
    assert.equal(
      hex(out[0].payload.subarray(0, 16)),
      "0016" + "9c40" + "00000000" + "000003e9" + "5014" + "0000",
    );
    assert.equal(hex(out[0].payload.subarray(18)), "0000");
    assert.equal(
      hex(out[1].payload.subarray(0, 14)),
      "0016" + "9c40" + "00000309" + "00000000" + "5004",
    );
    assert.equal(h.drops.tcp_port_closed, 3);
  });

  it("answers an unknown next header with parameter problem code 1 pointing at it (RFC 8200 §4)", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const direct = v6Frame(253, new Uint8Array(8));
    h.input(direct);
    const viaDest = v6Frame(253, new Uint8Array(8), {
      ext: fromHex("fd00 0104 00000000"),
      firstHeader: 60,
    });
    h.input(viaDest);
    const [a, b] = h.drain().map(decodeIcmpv6);
    assert.deepEqual(a.icmp, {
      type: "param_problem",
      code: 1,
      pointer: 6,
      data: direct.subarray(14),
    });
    assert.deepEqual(b.icmp, {
      type: "param_problem",
      code: 1,
      pointer: 40,
      data: viaDest.subarray(14),
    });
    assert.equal(h.drops.ipv6_unsupported_protocol, 2);
  });

  it("about an unknown option: action 10 answers even a group, 11 only unicast (RFC 8200 §4.2)", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const opt = (type: string) => fromHex(`3a00 ${type}02 0000 0100`);
    const echo: Icmpv6Repr = { type: "echo_request", ident: 1, seqNo: 1, data: new Uint8Array(0) };
    h.input(icmpv6Frame(echo, { dst: IPV6_ALL_NODES, ext: opt("8e"), firstHeader: 60 }));
    h.input(icmpv6Frame(echo, { dst: IPV6_ALL_NODES, ext: opt("ce"), firstHeader: 60 }));
    h.input(icmpv6Frame(echo, { ext: opt("ce"), firstHeader: 60 }));
    const out = h.drain().map(decodeIcmpv6);
    assert.deepEqual(
      out.map((
        d,
      ) => [
        d.icmp.type,
        (d.icmp as { code: number }).code,
        (d.icmp as { pointer: number }).pointer,
      ]),
      [
        ["param_problem", 2, 42],
        ["param_problem", 2, 42],
      ],
    );
    assert.equal(h.drops.ipv6_ext_unknown_option, 3);
  });
});
