/**
 * TCP over IPv6 through a whole stack (RFC 9293 over RFC 8200): the frames a
 * Linux peer on the link sends go in, the exact frames the stack answers
 * with come out.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  EtherType,
  IpProtocol,
  IPV6_ALL_NODES,
  type Ipv6Address,
  ipv6MulticastMac,
  Ipv6Repr,
  parseIpv6Address,
  TcpFlags,
  TcpPacket,
  TcpRepr,
} from "../wire/mod.ts";
import { NetError } from "../errors/net_error.ts";
import { finishOffloadedFrames, FrameOffload, LinkOffload } from "./frame_offload.ts";
import {
  decodeNdp,
  decodeV6,
  icmpv6Frame,
  ipv6Harness,
  learnPeer,
  ndpFrame,
  PEER6,
  PEER_LL,
  STACK6,
  STACK_LL,
  V6_PEER_MAC,
  V6_STACK_MAC,
  v6Frame,
  type V6FrameOptions,
} from "./_ipv6_test_util.ts";
import { PEER_IP } from "./_stack_test_util.ts";

type Harness = ReturnType<typeof ipv6Harness>;

/** A TCP segment from the peer over IPv6, checksum over the IPv6 pseudo-header. */
function tcp6(repr: Partial<TcpRepr>, o: V6FrameOptions = {}): Uint8Array {
  const full: TcpRepr = {
    srcPort: 40000,
    dstPort: 8080,
    seqNumber: 1000,
    ackNumber: 0,
    flags: TcpFlags.SYN,
    windowLen: 64240,
    payload: new Uint8Array(0),
    ...repr,
  };
  const buf = new Uint8Array(TcpRepr.bufferLen(full));
  TcpRepr.emit(full, buf, o.src ?? PEER6, o.dst ?? STACK6);
  return v6Frame(IpProtocol.TCP, buf, o);
}

/** Decodes a frame the stack sent as TCP over IPv6, checking the checksum. */
function decodeTcp6(frame: Uint8Array): { ip: Ipv6Repr; tcp: TcpRepr; dstMac: Uint8Array } {
  const d = decodeV6(frame);
  assert.equal(d.ip.nextHeader, IpProtocol.TCP, "not TCP");
  const pkt = TcpPacket.parse(d.payload);
  if (!pkt.ok) throw new Error(`bad TCP: ${pkt.reason}`);
  const r = TcpRepr.parse(pkt.value, d.ip.src, d.ip.dst);
  if (!r.ok) throw new Error(`bad TCP: ${r.reason}`);
  return { ip: d.ip, tcp: r.value, dstMac: d.dstMac };
}

/**
 * The exact frame the stack must send for `tcp` from `src` to `dst`
 * (Ethernet to the peer's MAC, IPv6 hop limit 64, no flow label).
 */
function expectedFrame(tcp: TcpRepr, src: Ipv6Address, dst: Ipv6Address): Uint8Array {
  const len = TcpRepr.bufferLen(tcp);
  const f = new Uint8Array(14 + 40 + len);
  f.set(V6_PEER_MAC, 0);
  f.set(V6_STACK_MAC, 6);
  f[12] = EtherType.IPV6 >>> 8;
  f[13] = EtherType.IPV6 & 0xff;
  Ipv6Repr.emit(
    { src, dst, nextHeader: IpProtocol.TCP, payloadLen: len, hopLimit: 64 },
    f.subarray(14),
  );
  TcpRepr.emit(tcp, f.subarray(54), src, dst);
  return f;
}

/** The peer's solicited neighbour advertisement of its MAC (RFC 4861 §7.2.4). */
function peerAdvert(): Uint8Array {
  return ndpFrame(
    {
      type: "neighbor_advert",
      router: false,
      solicited: true,
      override: true,
      target: PEER6,
      options: { targetLinkAddr: V6_PEER_MAC },
    },
    { src: PEER6, dst: STACK6, hopLimit: 255 },
  );
}

/** Frames out that are TCP (router advertisements and NDP left aside). */
function tcpOut(h: Harness): Uint8Array[] {
  return h.drain().filter((f) => f.length > 54 && f[12] === 0x86 && f[20] === IpProtocol.TCP);
}

/** Opens a connection from the peer to the stack's `port`; returns the stack's ISS. */
function handshake(h: Harness, port: number, o: V6FrameOptions = {}): number {
  h.input(tcp6({ dstPort: port, mss: 1440 }, o));
  const [synAck] = tcpOut(h);
  const s = decodeTcp6(synAck).tcp;
  h.input(
    tcp6({
      dstPort: port,
      seqNumber: 1001,
      ackNumber: (s.seqNumber + 1) >>> 0,
      flags: TcpFlags.ACK,
    }, o),
  );
  return s.seqNumber;
}

describe("TCP over IPv6 (RFC 9293, RFC 8200 §8)", () => {
  it("answers a SYN to a listener with a SYN-ACK from fd00::2 offering MSS = MTU - 60 (RFC 8200 §8.3)", () => {
    const h = ipv6Harness();
    learnPeer(h);
    h.stack.tcp.listen(8080, 8);
    h.input(tcp6({ mss: 1440, windowScale: 7, sackPermitted: true }));
    const out = tcpOut(h);
    assert.equal(out.length, 1);
    const { ip, tcp } = decodeTcp6(out[0]);
    assert.equal(ip.src, STACK6);
    assert.equal(ip.dst, PEER6);
    assert.equal(tcp.flags, TcpFlags.SYN | TcpFlags.ACK);
    assert.equal(tcp.ackNumber, 1001);
    assert.equal(tcp.mss, 1440);
    assert.equal(tcp.srcPort, 8080);
    assert.equal(tcp.dstPort, 40000);
    // Byte for byte what a stack must send (its ISS and window are its own choice).
    assert.deepEqual(out[0], expectedFrame(tcp, STACK6, PEER6));
    assert.deepEqual(h.stack.tcp.checkInvariants(), []);
  });

  it("completes the handshake, delivers data both ways, and names the IPv6 peer", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const l = h.stack.tcp.listen(8080, 8);
    const iss = handshake(h, 8080);
    const conn = l.accept();
    assert.ok(conn, "the connection is in the accept queue");
    assert.equal(conn.state, "ESTABLISHED");
    assert.equal(conn.localAddr, STACK6);
    assert.equal(conn.remoteAddr, PEER6);
    const hello = new TextEncoder().encode("hello over v6");
    h.input(
      tcp6({
        seqNumber: 1001,
        ackNumber: (iss + 1) >>> 0,
        flags: TcpFlags.ACK | TcpFlags.PSH,
        payload: hello,
      }),
    );
    assert.deepEqual(conn.read(100, h.now), hello);
    conn.send(new TextEncoder().encode("reply"), h.now);
    h.stack.poll(h.now + 50);
    const out = tcpOut(h).map(decodeTcp6);
    const data = out.find((s) => s.tcp.payload.length > 0);
    assert.ok(data, "the stack sent the reply");
    assert.equal(new TextDecoder().decode(data.tcp.payload), "reply");
    assert.equal(data.tcp.seqNumber, (iss + 1) >>> 0);
    assert.equal(data.tcp.ackNumber, 1001 + hello.length);
    assert.equal(data.ip.src, STACK6);
    assert.deepEqual(h.stack.tcp.checkInvariants(), []);
  });

  it("answers on the link-local address a SYN sent to it (RFC 6724 §5 rule 2)", () => {
    const h = ipv6Harness();
    learnPeer(h, PEER_LL);
    const l = h.stack.tcp.listen(22, 8);
    handshake(h, 22, { src: PEER_LL, dst: STACK_LL });
    const conn = l.accept();
    assert.ok(conn);
    assert.equal(conn.localAddr, STACK_LL);
    assert.equal(conn.remoteAddr, PEER_LL);
    assert.deepEqual(h.stack.tcp.checkInvariants(), []);
  });

  it("resets a SYN to a closed port from the address it was sent to (RFC 9293 §3.10.7.1)", () => {
    const h = ipv6Harness();
    learnPeer(h);
    h.input(tcp6({ dstPort: 9 }));
    const out = tcpOut(h);
    assert.equal(out.length, 1);
    const rst: TcpRepr = {
      srcPort: 9,
      dstPort: 40000,
      seqNumber: 0,
      ackNumber: 1001,
      flags: TcpFlags.RST | TcpFlags.ACK,
      windowLen: 0,
      payload: new Uint8Array(0),
    };
    assert.deepEqual(out[0], expectedFrame(rst, STACK6, PEER6));
    assert.equal(h.drops.tcp_port_closed, 1);
  });

  it("drops a segment to a multicast group without answering", () => {
    const h = ipv6Harness();
    learnPeer(h);
    h.stack.tcp.listen(8080, 8);
    h.input(tcp6({}, { dst: IPV6_ALL_NODES, dstMac: ipv6MulticastMac(IPV6_ALL_NODES) }));
    assert.deepEqual(tcpOut(h), []);
    assert.equal(h.drops.tcp_broadcast, 1);
  });

  it("opens a connection to an IPv6 peer: neighbour solicitation first, then the SYN with MSS 1440", () => {
    const h = ipv6Harness();
    const conn = h.stack.tcp.connect(PEER6, 22, h.now);
    assert.equal(conn.localAddr, STACK6);
    const first = h.drain().filter((f) => decodeV6(f).ip.nextHeader === IpProtocol.ICMPV6);
    assert.equal(first.length, 1, "one neighbour solicitation goes out");
    assert.equal(decodeNdp(first[0]).ndp.type, "neighbor_solicit");
    h.input(peerAdvert());
    const out = tcpOut(h).map(decodeTcp6);
    assert.equal(out.length, 1);
    assert.equal(out[0].tcp.flags, TcpFlags.SYN);
    assert.equal(out[0].tcp.mss, 1440);
    assert.equal(out[0].tcp.dstPort, 22);
    assert.equal(out[0].ip.dst, PEER6);
    assert.deepEqual(out[0].dstMac, V6_PEER_MAC);
    // The SYN-ACK completes it.
    h.input(
      tcp6({
        srcPort: 22,
        dstPort: conn.localPort,
        seqNumber: 5000,
        ackNumber: (out[0].tcp.seqNumber + 1) >>> 0,
        flags: TcpFlags.SYN | TcpFlags.ACK,
        mss: 1440,
      }),
    );
    assert.equal(conn.state, "ESTABLISHED");
    assert.deepEqual(h.stack.tcp.checkInvariants(), []);
  });

  it("refuses to connect off the link, to itself, or without IPv6, saying why", () => {
    const h = ipv6Harness();
    for (const a of ["2001:db8::1", "fd00::2", "ff02::1"]) {
      assert.throws(
        () => h.stack.tcp.connect(parseIpv6Address(a), 80, h.now),
        (e: unknown) => e instanceof NetError && e.code === "EINVAL" && e.message.includes(a),
      );
    }
    const off = ipv6Harness({ ipv6: false });
    assert.throws(
      () => off.stack.tcp.connect(PEER6, 80, off.now),
      (e: unknown) => e instanceof NetError && /has no IPv6/.test(e.message),
    );
  });

  it("keeps an IPv4 and an IPv6 connection with the same ports apart", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const l = h.stack.tcp.listen(8080, 8);
    handshake(h, 8080);
    const c6 = l.accept();
    // The same ports over IPv4 from 10.0.2.15.
    const c4 = h.stack.tcp.connect(PEER_IP, 40000, h.now, { localPort: 8081 });
    assert.ok(c6 && c4);
    assert.notEqual(c6.key, c4.key);
    assert.equal(h.stack.tcp.active.size, 2);
    assert.deepEqual(h.stack.tcp.checkInvariants(), []);
  });

  it("answers with a SYN cookie when the SYN queue is full, and takes its ACK (RFC 4987 §3.6)", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const l = h.stack.tcp.listen(8080, 1);
    h.input(tcp6({ srcPort: 40001, mss: 1440 }));
    tcpOut(h);
    h.input(tcp6({ srcPort: 40002, seqNumber: 7000, mss: 1440 }));
    const [cookie] = tcpOut(h).map(decodeTcp6);
    assert.equal(cookie.tcp.flags, TcpFlags.SYN | TcpFlags.ACK);
    assert.equal(cookie.tcp.mss, 1440);
    assert.equal(l.cookiesSent, 1);
    h.input(
      tcp6({
        srcPort: 40002,
        seqNumber: 7001,
        ackNumber: (cookie.tcp.seqNumber + 1) >>> 0,
        flags: TcpFlags.ACK,
      }),
    );
    assert.equal(l.cookiesAccepted, 1);
    const conn = l.accept();
    assert.ok(conn);
    assert.equal(conn.remoteAddr, PEER6);
    assert.equal(conn.info().sendMss, 1440);
    assert.deepEqual(h.stack.tcp.checkInvariants(), []);
  });

  it("lowers the MSS for a packet too big quoting a segment in flight and sends it again (RFC 8201 §5.4)", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const l = h.stack.tcp.listen(8080, 8);
    handshake(h, 8080);
    const conn = l.accept()!;
    conn.send(new Uint8Array(3000).fill(7), h.now);
    const sent = tcpOut(h);
    assert.ok(sent.length >= 2, "the data goes out in full-sized segments");
    assert.equal(decodeTcp6(sent[0]).tcp.payload.length, 1440);
    const quoted = sent[0].subarray(14, 14 + 1232); // as much as fits in a 1280-byte error
    h.input(icmpv6Frame({ type: "packet_too_big", mtu: 1280, data: quoted }));
    assert.equal(conn.info().sendMss, 1280 - 60);
    const again = tcpOut(h).map(decodeTcp6);
    assert.ok(again.length > 0, "the data in flight goes out again");
    assert.ok(again.every((s) => s.tcp.payload.length <= 1220));
    assert.equal(again[0].tcp.seqNumber, decodeTcp6(sent[0]).tcp.seqNumber);
    assert.equal(h.stack.pathMtu!.size, 1);
  });

  it("ignores a packet too big under 1280 or quoting nothing in flight (RFC 8201 §4, RFC 5927 §4.1)", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const l = h.stack.tcp.listen(8080, 8);
    handshake(h, 8080);
    const conn = l.accept()!;
    conn.send(new Uint8Array(1000).fill(7), h.now);
    const [seg] = tcpOut(h);
    const quoted = seg.subarray(14);
    h.input(icmpv6Frame({ type: "packet_too_big", mtu: 1000, data: quoted }));
    assert.equal(conn.info().sendMss, 1440);
    const forged = quoted.slice();
    forged[40 + 4] ^= 0x80; // a sequence number far from anything in flight
    h.input(icmpv6Frame({ type: "packet_too_big", mtu: 1280, data: forged }));
    assert.equal(conn.info().sendMss, 1440);
    assert.deepEqual(tcpOut(h), []);
  });
});

describe("TCP over IPv6 with segmentation offload (a link that cuts large segments itself)", () => {
  /** An established connection from the peer (window 1 MiB) on a stack whose link takes `offload`. */
  function bulk6(offload: number, mss = 1440) {
    const h = ipv6Harness({ tcp: { pacing: false } });
    learnPeer(h);
    h.stack.setLinkOffload(offload);
    const l = h.stack.tcp.listen(8080, 8);
    h.input(tcp6({ dstPort: 8080, mss, windowScale: 7 }));
    const [synAck] = tcpOut(h);
    const iss = decodeTcp6(synAck).tcp.seqNumber;
    h.input(tcp6({
      dstPort: 8080,
      seqNumber: 1001,
      ackNumber: (iss + 1) >>> 0,
      flags: TcpFlags.ACK,
      windowLen: 8192, // × 128: 1 MiB
    }));
    const conn = l.accept()!;
    h.drain();
    return { h, conn };
  }
  const data = new Uint8Array(100_000).map((_, i) => i * 13);
  /** What a receiver sees of a segment: everything but the checksum. */
  const view = (s: { ip: Ipv6Repr; tcp: TcpRepr }) => ({
    ip: s.ip,
    tcp: { ...s.tcp, payload: Array.from(s.tcp.payload) },
  });

  it("sends one segment of 10 MSS pieces with GSO_TCPV6, the MSS as segment size and a partial checksum", () => {
    const { h, conn } = bulk6(LinkOffload.TSO | LinkOffload.CSUM);
    conn.send(data, h.now);
    const { frames, offload } = h.link.drainWithOffload();
    const mss = 1440;
    assert.equal(frames.length, 1, "the initial window in one segment");
    assert.equal(offload![0], FrameOffload.GSO_TCPV6 | FrameOffload.CSUM_PARTIAL | mss);
    assert.equal(frames[0].length, 14 + 40 + 20 + 10 * mss);
    assert.throws(() => decodeTcp6(frames[0]), /bad TCP/, "the checksum is partial");
    // Cut in software, it is exactly what the stack sends without offload.
    const cut = finishOffloadedFrames(frames, offload!).map(decodeTcp6);
    const plain = bulk6(0);
    plain.conn.send(data, plain.h.now);
    const want = tcpOut(plain.h).map(decodeTcp6);
    assert.equal(cut.length, 10);
    assert.deepEqual(cut.map(view), want.map(view));
  });

  it("keeps a large segment's IPv6 payload within 65535 − 40 − 60 bytes, so its frame is never longer than an IPv4 one", () => {
    // 65395 / 1309 = 49.96: 49 pieces (an IPv4 packet's limit, 65455, would take 50).
    const { h, conn } = bulk6(LinkOffload.TSO | LinkOffload.CSUM, 1309);
    conn.send(new Uint8Array(1 << 20), h.now);
    h.link.drainWithOffload();
    // ACK everything sent, again and again: slow start grows cwnd by 2 MSS an ACK past 64 KiB.
    let largest = 0;
    let largestOffload = 0;
    for (let k = 0; k < 60; k++) {
      h.now += 1;
      conn.send(new Uint8Array(1 << 18), h.now); // keep the send buffer full
      h.input(tcp6({
        dstPort: 8080,
        seqNumber: 1001,
        ackNumber: conn.debugSeq().sndNxt,
        flags: TcpFlags.ACK,
        windowLen: 8192,
      }));
      const { frames, offload } = h.link.drainWithOffload();
      frames.forEach((f, i) => {
        if (f.length <= largest) return;
        largest = f.length;
        largestOffload = offload![i];
      });
    }
    assert.equal(largest, 14 + 40 + 20 + 49 * 1309, "49 pieces of 1309 bytes");
    assert.equal(largestOffload, FrameOffload.GSO_TCPV6 | FrameOffload.CSUM_PARTIAL | 1309);
  });

  it("finishes offloaded frames that must wait for neighbour discovery (RFC 4861 §7.2.2)", () => {
    const { h, conn } = bulk6(LinkOffload.TSO | LinkOffload.CSUM);
    // Idle past the reachable and then the stale time (RFC 4861 §7.3.2): the entry is collected.
    const end = h.now + 1_400_000;
    while (h.now < end) {
      h.now = Math.min(end, Math.max(h.now + 1, h.stack.nextDeadline() ?? end));
      h.stack.poll(h.now);
    }
    h.drain();
    conn.send(data.subarray(0, 5 * 1440), h.now);
    const asked = h.link.drainWithOffload();
    assert.deepEqual(asked.frames.map((f) => decodeNdp(f).ndp.type), ["neighbor_solicit"]);
    assert.equal(asked.offload, undefined, "the segment waits");
    h.input(peerAdvert());
    const { frames, offload } = h.link.drainWithOffload();
    assert.equal(offload, undefined, "the waiting GSO packet was cut and its checksums finished");
    assert.deepEqual(frames.map((f) => decodeTcp6(f).tcp.payload.length), [
      1440,
      1440,
      1440,
      1440,
      1440,
    ]);
  });

  it("leaves only the checksum to a link with checksum offload alone", () => {
    const { h, conn } = bulk6(LinkOffload.CSUM);
    conn.send(data.subarray(0, 3 * 1440), h.now);
    const { frames, offload } = h.link.drainWithOffload();
    assert.deepEqual(offload, [1, 2, 3].map(() => FrameOffload.CSUM_PARTIAL));
    const done = finishOffloadedFrames(frames, offload!).map(decodeTcp6);
    assert.deepEqual(done.map((s) => s.tcp.payload.length), [1440, 1440, 1440]);
  });
});
