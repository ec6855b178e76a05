/**
 * IPv6 fragment reassembly through a whole stack (RFC 8200 §4.5, RFC 5722,
 * RFC 6946, RFC 7112): fragments a Linux peer on the link sends go in, the
 * exact frames the stack answers with come out.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  EtherType,
  Icmpv6Repr,
  IpProtocol,
  IPV6_ALL_NODES,
  IPV6_UNSPECIFIED,
  type Ipv6Address,
  Ipv6Repr,
  TcpFlags,
  TcpPacket,
  TcpRepr,
} from "../wire/mod.ts";
import {
  ipv6Harness,
  learnPeer,
  PEER6,
  STACK6,
  V6_PEER_MAC,
  V6_STACK_MAC,
  v6Frame,
  type V6FrameOptions,
} from "./_ipv6_test_util.ts";
import { fromHex } from "./_stack_test_util.ts";
import { Ipv6Reassembler } from "./ipv6_reassembler.ts";
import { bufferCost, createSessionQuota } from "./session_quota.ts";

type Harness = ReturnType<typeof ipv6Harness>;

/** A harness that knows the peer, with IPv6 reassembly `limits` and an optional quota. */
function harness(
  limits: Partial<Ipv6Reassembler["limits"]> = {},
  quota?: ReturnType<typeof createSessionQuota>,
): Harness {
  const h = ipv6Harness({ ipv6Reassembly: limits, quota });
  learnPeer(h);
  return h;
}

interface FragOptions extends V6FrameOptions {
  /** Identification; 0x1234 by default. */
  ident?: number;
  /** The M flag; set unless the fragment reaches the end of `upper`. */
  more?: boolean;
  /** Extension headers (hex) after the fragment header, in the first fragment only. */
  next?: number;
}

/**
 * A fragment from the peer carrying `upper[offset..offset+len]` (`upper` is
 * the fragmentable part: the upper-layer header and data) of next header
 * `nextHeader`.
 */
function frag6(
  nextHeader: number,
  upper: Uint8Array,
  offset: number,
  len: number,
  o: FragOptions = {},
): Uint8Array {
  const more = o.more ?? offset + len < upper.length;
  const ident = o.ident ?? 0x1234;
  const fh = new Uint8Array(8);
  fh[0] = nextHeader;
  const field = offset | (more ? 1 : 0);
  fh[2] = field >>> 8;
  fh[3] = field & 0xff;
  new DataView(fh.buffer).setUint32(4, ident);
  return v6Frame(nextHeader, upper.subarray(offset, offset + len), {
    ...o,
    ext: fh,
    firstHeader: 44,
  });
}

/** An ICMPv6 echo request from the peer with `n` bytes of data: the fragmentable part. */
function echo(n: number, o: { src?: Ipv6Address; dst?: Ipv6Address } = {}): {
  bytes: Uint8Array;
  data: Uint8Array;
} {
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = (i * 13 + 5) & 0xff;
  const repr: Icmpv6Repr = { type: "echo_request", ident: 0x77, seqNo: 3, data };
  const bytes = new Uint8Array(Icmpv6Repr.bufferLen(repr));
  Icmpv6Repr.emit(repr, bytes, o.src ?? PEER6, o.dst ?? STACK6);
  return { bytes, data };
}

/** The exact frame the stack sends: `payload` of `nextHeader` from fd00::2 to the peer, hop limit 64. */
function expected(nextHeader: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(54 + payload.length);
  f.set(V6_PEER_MAC, 0);
  f.set(V6_STACK_MAC, 6);
  f[12] = EtherType.IPV6 >>> 8;
  f[13] = EtherType.IPV6 & 0xff;
  Ipv6Repr.emit(
    { src: STACK6, dst: PEER6, nextHeader, payloadLen: payload.length, hopLimit: 64 },
    f.subarray(14),
  );
  f.set(payload, 54);
  return f;
}

/** The exact ICMPv6 message frame the stack sends to the peer. */
function expectedIcmp(repr: Icmpv6Repr): Uint8Array {
  const buf = new Uint8Array(Icmpv6Repr.bufferLen(repr));
  Icmpv6Repr.emit(repr, buf, STACK6, PEER6);
  return expected(IpProtocol.ICMPV6, buf);
}

/** The echo reply the stack must send for {@linkcode echo}'s request. */
function echoReply(data: Uint8Array): Uint8Array {
  return expectedIcmp({ type: "echo_reply", ident: 0x77, seqNo: 3, data });
}

/** Frames out, without NDP (router advertisements, neighbour probes). */
function out(h: Harness): Uint8Array[] {
  return h.drain().filter((f) => !(f.length > 54 && f[20] === 58 && f[54] >= 133 && f[54] <= 137));
}

describe("IPv6 reassembly answers what arrives in fragments (RFC 8200 §4.5)", () => {
  it("answers a 1200-byte echo request sent in two fragments with the exact echo reply", () => {
    const h = harness();
    const { bytes, data } = echo(1200);
    h.input(frag6(58, bytes, 0, 608));
    assert.deepEqual(out(h), []);
    assert.equal(h.stack.ipv6Reassembler!.datagrams, 1);
    h.input(frag6(58, bytes, 608, 600));
    assert.deepEqual(out(h), [echoReply(data)]);
    assert.equal(h.stack.ipv6Reassembler!.datagrams, 0);
    assert.equal(h.stack.ipv6Reassembler!.stats.completed, 1);
    assert.ok(h.balanced);
  });

  for (const order of [[0, 1, 2], [2, 0, 1], [1, 2, 0]]) {
    it(`answers an echo request in three fragments arriving in order ${order}`, () => {
      const h = harness();
      const { bytes, data } = echo(1200);
      const pieces = [[0, 400], [400, 400], [800, 408]];
      for (const i of order) h.input(frag6(58, bytes, pieces[i][0], pieces[i][1]));
      assert.deepEqual(out(h), [echoReply(data)]);
      assert.ok(h.balanced);
      assert.deepEqual(h.stack.checkInvariants(), []);
    });
  }

  it("delivers a TCP SYN sent in two fragments to a listener, which answers with a SYN-ACK", () => {
    const h = harness();
    h.stack.tcp.listen(8080, 8);
    const syn: TcpRepr = {
      srcPort: 40000,
      dstPort: 8080,
      seqNumber: 1000,
      ackNumber: 0,
      flags: TcpFlags.SYN,
      windowLen: 64240,
      payload: new Uint8Array(0),
      mss: 1440,
      sackPermitted: true,
    };
    const seg = new Uint8Array(TcpRepr.bufferLen(syn));
    TcpRepr.emit(syn, seg, PEER6, STACK6);
    h.input(frag6(IpProtocol.TCP, seg, 0, 24));
    h.input(frag6(IpProtocol.TCP, seg, 24, seg.length - 24));
    const [synAck, ...rest] = out(h);
    assert.equal(rest.length, 0);
    const tcp = TcpPacket.parse(synAck.subarray(54));
    assert.ok(tcp.ok);
    const r = TcpRepr.parse(tcp.value, STACK6, PEER6);
    assert.ok(r.ok);
    assert.equal(r.value.flags, TcpFlags.SYN | TcpFlags.ACK);
    assert.equal(r.value.ackNumber, 1001);
    assert.equal(r.value.mss, 1440);
    assert.ok(h.balanced);
  });

  it("walks extension headers after the fragment header, within the same limits", () => {
    const h = harness();
    const { bytes, data } = echo(1200);
    // Destination options (PadN to 8 bytes) then ICMPv6, inside the fragmentable part.
    const upper = new Uint8Array(8 + bytes.length);
    upper.set(fromHex("3a00 0104 00000000"));
    upper.set(bytes, 8);
    h.input(frag6(60, upper, 0, 608));
    h.input(frag6(60, upper, 608, upper.length - 608));
    assert.deepEqual(out(h), [echoReply(data)]);
    // Two destination options headers after the fragment header, one allowed: refused once whole.
    const two = new Uint8Array(8 + upper.length);
    two.set(fromHex("3c00 0104 00000000"));
    two.set(upper, 8);
    const h2 = ipv6Harness({ ipv6ExtLimits: { maxHeaders: 1, maxChainBytes: 1024 } });
    learnPeer(h2);
    h2.input(frag6(60, two, 0, 608));
    h2.input(frag6(60, two, 608, two.length - 608));
    assert.equal(h2.drops.ipv6_ext_too_many, 1);
    assert.deepEqual(out(h2), []);
    assert.ok(h.balanced && h2.balanced);
  });

  it("refuses a fragment header inside a reassembled packet (ipv6_fragment_nested)", () => {
    const h = harness();
    const { bytes } = echo(1200);
    const upper = new Uint8Array(8 + bytes.length);
    upper.set(fromHex("3a00 0001 00000099")); // offset 0, M set: a fragment of another packet
    upper.set(bytes, 8);
    h.input(frag6(44, upper, 0, 608));
    h.input(frag6(44, upper, 608, upper.length - 608));
    assert.equal(h.drops.ipv6_fragment_nested, 1);
    assert.equal(h.stack.ipv6Reassembler!.datagrams, 0);
    assert.deepEqual(out(h), []);
  });

  it("still answers an atomic fragment as a whole packet (RFC 6946 §4)", () => {
    const h = harness();
    const { bytes, data } = echo(16);
    h.input(frag6(58, bytes, 0, bytes.length, { more: false }));
    assert.deepEqual(out(h), [echoReply(data)]);
    assert.equal(h.stack.ipv6Reassembler!.stats.completed, 0);
  });

  it("refuses fragments from :: as martian (RFC 4861 §4.1: no fragments before an address)", () => {
    const h = harness();
    const { bytes } = echo(1200, { src: IPV6_UNSPECIFIED });
    h.input(frag6(58, bytes, 0, 608, { src: IPV6_UNSPECIFIED }));
    assert.equal(h.drops.ipv6_martian_source, 1);
    assert.equal(h.stack.ipv6Reassembler!.datagrams, 0);
  });
});

describe("IPv6 reassembly refuses what RFC 8200 §4.5, RFC 5722 and RFC 7112 forbid", () => {
  it("discards the whole datagram silently on an overlap (RFC 5722 §4)", () => {
    const h = harness();
    const { bytes } = echo(1200);
    h.input(frag6(58, bytes, 0, 608));
    h.input(frag6(58, bytes, 600, 608)); // overlaps 600..608
    assert.equal(h.drops.ipv6_reassembly_overlap, 1);
    assert.equal(h.stack.ipv6Reassembler!.datagrams, 0);
    assert.equal(h.stack.ipv6Reassembler!.stats.discarded, 1);
    // The rest of the datagram starts a new one and never completes.
    h.input(frag6(58, bytes, 608, 600));
    assert.deepEqual(out(h), []);
    assert.ok(h.balanced);
  });

  it("drops an exact duplicate alone and keeps the datagram", () => {
    const h = harness();
    const { bytes, data } = echo(1200);
    h.input(frag6(58, bytes, 0, 608));
    h.input(frag6(58, bytes, 0, 608));
    assert.equal(h.drops.ipv6_reassembly_duplicate, 1);
    h.input(frag6(58, bytes, 608, 600));
    assert.deepEqual(out(h), [echoReply(data)]);
    assert.ok(h.balanced);
  });

  it("answers a fragment not a multiple of 8 bytes with parameter problem code 0 at the payload length", () => {
    const h = harness();
    const { bytes } = echo(1200);
    const f = frag6(58, bytes, 0, 604, { more: true });
    h.input(f);
    assert.equal(h.drops.ipv6_fragment_bad_length, 1);
    assert.deepEqual(out(h), [
      expectedIcmp({ type: "param_problem", code: 0, pointer: 4, data: f.subarray(14) }),
    ]);
    assert.equal(h.stack.ipv6Reassembler!.datagrams, 0);
  });

  it("answers a fragment past 65535 bytes of payload with parameter problem code 0 at the offset", () => {
    const h = harness();
    const big = new Uint8Array(65536);
    const f = frag6(58, big, 65520, 16);
    h.input(f);
    assert.equal(h.drops.ipv6_reassembly_too_big, 1);
    assert.deepEqual(out(h), [
      expectedIcmp({ type: "param_problem", code: 0, pointer: 42, data: f.subarray(14) }),
    ]);
  });

  it("drops a first fragment without the whole header chain, with parameter problem code 3 (RFC 7112 §5)", () => {
    const h = harness();
    const seg = new Uint8Array(40);
    // TCP: only 16 of its 20 header bytes in the first fragment.
    const f = frag6(IpProtocol.TCP, seg, 0, 16);
    h.input(f);
    // A destination options header of 16 bytes cut by the first fragment's end.
    const opts = new Uint8Array(64);
    opts.set(fromHex("3a01 0106 0000000000000000"));
    h.input(frag6(60, opts, 0, 8));
    assert.equal(h.drops.ipv6_fragment_incomplete_chain, 2);
    const sent = out(h);
    assert.deepEqual(
      sent[0],
      expectedIcmp({ type: "param_problem", code: 3, pointer: 0, data: f.subarray(14) }),
    );
    assert.equal(sent.length, 2);
    assert.equal(h.stack.ipv6Reassembler!.datagrams, 0);
    assert.ok(h.balanced);
  });
});

describe("IPv6 reassembly within its limits and the session's quota", () => {
  it("times out after 60 s with time exceeded code 1 quoting the first fragment, and frees the quota", () => {
    const q = createSessionQuota({ maxBufferedBytes: 1 << 20, maxSockets: 8 });
    const h = harness({}, q);
    const base = q.memory.used;
    const { bytes } = echo(1200);
    const first = frag6(58, bytes, 0, 608);
    h.input(first);
    assert.equal(q.memory.used - base, bufferCost(608) + bufferCost(48));
    h.stack.poll(h.now + 59_999);
    assert.deepEqual(out(h), []);
    assert.equal(h.stack.nextDeadline(), h.now + 60_000);
    h.stack.poll(h.now + 60_000);
    assert.deepEqual(out(h), [
      expectedIcmp({ type: "time_exceeded", code: 1, data: first.subarray(14) }),
    ]);
    assert.equal(h.stack.ipv6Reassembler!.stats.timedOut, 1);
    assert.equal(q.memory.used, base);
  });

  it("times out silently without the first fragment, or for a multicast destination", () => {
    const h = harness();
    const { bytes } = echo(1200);
    h.input(frag6(58, bytes, 608, 600));
    const m = echo(1200, { dst: IPV6_ALL_NODES });
    h.input(frag6(58, m.bytes, 0, 608, { dst: IPV6_ALL_NODES, ident: 9 }));
    assert.equal(h.stack.ipv6Reassembler!.datagrams, 2);
    h.stack.poll(h.now + 60_000);
    assert.deepEqual(out(h), []);
    assert.equal(h.stack.ipv6Reassembler!.stats.timedOut, 2);
  });

  it("releases the charge at completion and when a datagram is discarded", () => {
    const q = createSessionQuota({ maxBufferedBytes: 1 << 20, maxSockets: 8 });
    const h = harness({}, q);
    const base = q.memory.used;
    const { bytes } = echo(1200);
    h.input(frag6(58, bytes, 608, 600));
    assert.equal(q.memory.used - base, bufferCost(600));
    h.input(frag6(58, bytes, 0, 608));
    assert.equal(q.memory.used, base);
    h.input(frag6(58, bytes, 0, 608, { ident: 2 }));
    h.input(frag6(58, bytes, 8, 608, { ident: 2 }));
    assert.equal(q.memory.used, base);
  });

  it("copies fragments out of their frames: reusing a frame's buffer changes nothing", () => {
    const h = harness();
    const { bytes, data } = echo(1200);
    const first = frag6(58, bytes, 0, 608);
    h.input(first);
    first.fill(0xee);
    h.input(frag6(58, bytes, 608, 600));
    assert.deepEqual(out(h), [echoReply(data)]);
  });

  it("refuses and counts fragments past the byte budget, the datagram count, the fragments per datagram and the quota", () => {
    const { bytes } = echo(1200);
    const hb = harness({ maxBytes: 1000 });
    hb.input(frag6(58, bytes, 0, 608));
    hb.input(frag6(58, bytes, 608, 600));
    assert.equal(hb.drops.ipv6_reassembly_full, 1);
    const hd = harness({ maxDatagrams: 1 });
    hd.input(frag6(58, bytes, 0, 608, { ident: 1 }));
    hd.input(frag6(58, bytes, 0, 608, { ident: 2 }));
    assert.equal(hd.drops.ipv6_reassembly_full, 1);
    const hf = harness({ maxFragments: 2 });
    for (const [o, l] of [[0, 400], [400, 400], [800, 408]]) hf.input(frag6(58, bytes, o, l));
    assert.equal(hf.drops.ipv6_reassembly_full, 1);
    assert.deepEqual(out(hf), []);
    const q = createSessionQuota({ maxBufferedBytes: 1 << 20, maxSockets: 8 });
    const hq = harness({}, q);
    q.memory.tryCharge(q.memory.available - bufferCost(100));
    hq.input(frag6(58, bytes, 0, 608));
    assert.equal(hq.drops.ipv6_reassembly_quota, 1);
    assert.equal(hq.stack.ipv6Reassembler!.datagrams, 0);
    for (const h of [hb, hd, hf, hq]) {
      assert.ok(h.balanced);
      assert.deepEqual(h.stack.checkInvariants(), []);
    }
  });

  it("rejects limits that are not positive integers", () => {
    assert.throws(() => new Ipv6Reassembler({ timeoutMs: 0 }), RangeError);
    assert.throws(() => new Ipv6Reassembler({ maxFragments: 2.5 }), RangeError);
  });
});
