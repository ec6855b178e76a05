import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ETHERNET_HEADER_LEN } from "./ethernet.ts";
import { IpProtocol, IPV4_HEADER_LEN } from "./ipv4.ts";
import {
  cloneTcpRepr,
  parseTcpOptions,
  TCP_HEADER_LEN,
  TCP_MAX_OPTIONS_LEN,
  TcpFlags,
  TcpPacket,
  TcpRepr,
  type TcpSackBlock,
  TcpSegment,
  tcpSeqAdd,
  tcpSeqDiff,
  tcpSeqGe,
  tcpSeqGt,
  tcpSeqLe,
  tcpSeqLt,
  writeTcpChecksum,
  writeTcpHeader,
  writeTcpSackBlocks,
  writeTcpTimestamps,
} from "./tcp.ts";
import { checksumAdd, checksumFinish, ipv4PseudoHeaderSum } from "./checksum.ts";
import { seededRandom } from "./random.ts";
import { atOffset, GOLDEN_SYN, hex, LINUX_IP, STACK_IP, toHex } from "./_test_util.ts";
import type { ParseResult } from "./parse_result.ts";

function parsed<T>(result: ParseResult<T>): T {
  if (!result.ok) throw new Error(`expected ok, got ${result.reason}`);
  return result.value;
}

const SYN = GOLDEN_SYN.subarray(ETHERNET_HEADER_LEN + IPV4_HEADER_LEN);
const EMPTY = new Uint8Array(0);

/** The Linux SYN as a repr. */
const SYN_REPR: TcpRepr = {
  srcPort: 45678,
  dstPort: 80,
  seqNumber: 0x12345678,
  ackNumber: 0,
  flags: TcpFlags.SYN,
  windowLen: 64240,
  mss: 1460,
  sackPermitted: true,
  timestamp: { value: 0x0a1b2c3d, echo: 0 },
  windowScale: 7,
  payload: EMPTY,
};

/** Builds a segment with the given option bytes and a valid checksum. */
function segmentWithOptions(options: Uint8Array, payload: Uint8Array = EMPTY): Uint8Array {
  const headerLen = TCP_HEADER_LEN + options.length;
  const seg = new Uint8Array(headerLen + payload.length);
  seg.set(hex("b26e 0050 00000001 00000002 0010 ffff 0000 0000"));
  seg[12] = (headerLen / 4) << 4;
  seg.set(options, TCP_HEADER_LEN);
  seg.set(payload, headerLen);
  fixChecksum(seg);
  return seg;
}

function fixChecksum(seg: Uint8Array): void {
  seg[16] = 0;
  seg[17] = 0;
  const c = checksumFinish(
    checksumAdd(ipv4PseudoHeaderSum(LINUX_IP, STACK_IP, 6, seg.length), seg),
  );
  seg[16] = c >>> 8;
  seg[17] = c & 0xff;
}

function emit(repr: TcpRepr, offset = 0): Uint8Array {
  const buf = atOffset(new Uint8Array(TcpRepr.bufferLen(repr)), offset);
  TcpRepr.emit(repr, buf, LINUX_IP, STACK_IP);
  return buf;
}

function reparse(buf: Uint8Array): TcpRepr {
  return parsed(TcpRepr.parse(parsed(TcpPacket.parse(buf)), LINUX_IP, STACK_IP));
}

describe("TcpPacket (RFC 9293 §3.1)", () => {
  it("parses a Linux SYN", () => {
    const pkt = parsed(TcpPacket.parse(SYN));
    assert.equal(pkt.srcPort, 45678);
    assert.equal(pkt.dstPort, 80);
    assert.equal(pkt.seqNumber, 0x12345678);
    assert.equal(pkt.ackNumber, 0);
    assert.equal(pkt.dataOffset, 40);
    assert.equal(pkt.flags, TcpFlags.SYN);
    assert.equal(pkt.windowLen, 64240);
    assert.equal(pkt.checksum, 0xe33b);
    assert.equal(pkt.urgentPointer, 0);
    assert.equal(pkt.options.length, 20);
    assert.equal(pkt.payload.length, 0);
    assert.equal(pkt.segmentLen, 1);
    assert.equal(pkt.verifyChecksum(LINUX_IP, STACK_IP), true);
    assert.equal(pkt.verifyChecksum(STACK_IP, LINUX_IP + 1), false);
  });

  it("reads u32 sequence numbers above 2^31 as unsigned", () => {
    const seg = segmentWithOptions(EMPTY);
    seg.set(hex("fffffffe 80000000"), 4);
    const pkt = parsed(TcpPacket.parse(seg));
    assert.equal(pkt.seqNumber, 0xfffffffe);
    assert.equal(pkt.ackNumber, 0x80000000);
  });

  it("counts SYN and FIN in the segment length (RFC 9293 §3.4)", () => {
    const seg = segmentWithOptions(EMPTY, hex("616263"));
    seg[13] = TcpFlags.ACK | TcpFlags.FIN;
    assert.equal(parsed(TcpPacket.parse(seg)).segmentLen, 4);
    seg[13] = TcpFlags.SYN | TcpFlags.FIN;
    assert.equal(parsed(TcpPacket.parse(seg)).segmentLen, 5);
    seg[13] = TcpFlags.ACK;
    assert.equal(parsed(TcpPacket.parse(seg)).segmentLen, 3);
  });

  it("rejects fewer than 20 bytes: tcp_truncated", () => {
    for (const len of [0, 13, 19]) {
      assert.deepEqual(TcpPacket.parse(SYN.subarray(0, len)), {
        ok: false,
        reason: "tcp_truncated",
      });
    }
  });

  it("rejects a data offset below 5 or beyond the segment: tcp_bad_data_offset", () => {
    for (const words of [0, 4, 11, 15]) {
      const seg = SYN.slice();
      seg[12] = words << 4;
      assert.deepEqual(TcpPacket.parse(seg), { ok: false, reason: "tcp_bad_data_offset" });
    }
    const seg = SYN.slice();
    seg[12] = 10 << 4;
    assert.ok(TcpPacket.parse(seg).ok, "exactly 40 bytes of header fits");
  });
});

describe("TcpRepr", () => {
  it("parses the Linux SYN options: MSS 1460, SACK-permitted, TS, WS 7", () => {
    assert.deepEqual(reparse(SYN), SYN_REPR);
  });

  it("emits the Linux SYN byte for byte, in Linux's option order", () => {
    assert.equal(TcpRepr.headerLen(SYN_REPR), 40);
    assert.equal(toHex(emit(SYN_REPR)), toHex(SYN));
  });

  it("lays out timestamps without SACK-permitted as NOP,NOP,TS", () => {
    const repr: TcpRepr = {
      srcPort: 80,
      dstPort: 45678,
      seqNumber: 1,
      ackNumber: 2,
      flags: TcpFlags.ACK,
      windowLen: 502,
      timestamp: { value: 0xdeadbeef, echo: 0x0a1b2c3d },
      payload: EMPTY,
    };
    const buf = emit(repr);
    assert.equal(toHex(buf.subarray(20)), "0101080adeadbeef0a1b2c3d");
    assert.deepEqual(reparse(buf), repr);
  });

  it("lays out SACK-permitted without timestamps as NOP,NOP,SACKOK", () => {
    const repr: TcpRepr = { ...SYN_REPR, timestamp: undefined };
    delete repr.timestamp;
    const buf = emit(repr);
    assert.equal(toHex(buf.subarray(20)), "020405b4" + "01010402" + "01030307");
    assert.deepEqual(reparse(buf), repr);
  });

  it("emits a SYN/ACK without options as a bare 20-byte header", () => {
    const repr: TcpRepr = {
      srcPort: 80,
      dstPort: 45678,
      seqNumber: 0xffffffff,
      ackNumber: 0x12345679,
      flags: TcpFlags.SYN | TcpFlags.ACK,
      windowLen: 0,
      payload: EMPTY,
    };
    assert.equal(TcpRepr.headerLen(repr), TCP_HEADER_LEN);
    const buf = emit(repr);
    assert.equal(buf.length, 20);
    assert.equal(buf[12], 0x50);
    assert.deepEqual(reparse(buf), repr);
  });

  it("packs 3 SACK blocks with timestamps into exactly 40 bytes", () => {
    const repr: TcpRepr = {
      srcPort: 1,
      dstPort: 2,
      seqNumber: 3,
      ackNumber: 4,
      flags: TcpFlags.ACK,
      windowLen: 5,
      timestamp: { value: 6, echo: 7 },
      sackBlocks: [
        { left: 0xfffffff0, right: 0x10 },
        { left: 100, right: 200 },
        { left: 300, right: 400 },
      ],
      payload: EMPTY,
    };
    assert.equal(TcpRepr.headerLen(repr), TCP_HEADER_LEN + TCP_MAX_OPTIONS_LEN);
    const buf = emit(repr);
    assert.equal(toHex(buf.subarray(32, 36)), "0101051a");
    assert.deepEqual(reparse(buf), repr);
  });

  it("packs 4 SACK blocks without timestamps", () => {
    const sackBlocks = [1, 2, 3, 4].map((n) => ({ left: n * 1000, right: n * 1000 + 500 }));
    const repr: TcpRepr = {
      srcPort: 1,
      dstPort: 2,
      seqNumber: 3,
      ackNumber: 4,
      flags: TcpFlags.ACK,
      windowLen: 5,
      sackBlocks,
      payload: hex("00"),
    };
    assert.equal(TcpRepr.headerLen(repr), 56);
    assert.deepEqual(reparse(emit(repr)), repr);
  });

  it("refuses options that do not fit in 40 bytes", () => {
    const block = { left: 1, right: 2 };
    const base: TcpRepr = {
      srcPort: 1,
      dstPort: 2,
      seqNumber: 3,
      ackNumber: 4,
      flags: TcpFlags.ACK,
      windowLen: 5,
      payload: EMPTY,
    };
    assert.throws(
      () =>
        TcpRepr.headerLen({
          ...base,
          timestamp: { value: 1, echo: 2 },
          sackBlocks: [block, block, block, block],
        }),
      { name: "RangeError", message: /options need 48 bytes.*4 SACK blocks with timestamps/ },
    );
    assert.throws(
      () =>
        TcpRepr.emit(
          { ...base, sackBlocks: [block, block, block, block, block] },
          new Uint8Array(100),
          1,
          2,
        ),
      { name: "RangeError", message: /at most 4 SACK blocks fit, got 5/ },
    );
    assert.throws(
      () => TcpRepr.bufferLen({ ...SYN_REPR, sackBlocks: [block, block, block] }),
      RangeError,
      "a SYN with all options leaves room for two SACK blocks only",
    );
    assert.equal(TcpRepr.headerLen({ ...base, sackBlocks: [] }), 20, "no blocks, no option");
  });

  it("round-trips data segments with every flag, odd payloads and unaligned buffers", () => {
    for (let len = 0; len < 40; len += 3) {
      const repr: TcpRepr = {
        srcPort: 65535,
        dstPort: 1,
        seqNumber: tcpSeqAdd(0xfffffff0, len),
        ackNumber: 0x7fffffff,
        flags: 0xff,
        windowLen: 0xffff,
        urgentPointer: len + 1,
        timestamp: { value: 0xffffffff, echo: 1 },
        payload: new Uint8Array(len).map((_, i) => (i * 131) & 0xff),
      };
      assert.deepEqual(reparse(emit(repr, len % 4)), repr);
    }
  });

  it("emits a payload that already sits after the header", () => {
    const repr: TcpRepr = {
      ...SYN_REPR,
      flags: TcpFlags.ACK | TcpFlags.PSH,
      mss: undefined,
      windowScale: undefined,
      sackPermitted: undefined,
      payload: EMPTY,
    };
    delete repr.mss;
    delete repr.windowScale;
    delete repr.sackPermitted;
    const headerLen = TcpRepr.headerLen(repr);
    const buf = new Uint8Array(headerLen + 5);
    buf.set(hex("68656c6c6f"), headerLen);
    const inPlace = { ...repr, payload: buf.subarray(headerLen) };
    TcpRepr.emit(inPlace, buf, LINUX_IP, STACK_IP);
    assert.deepEqual(reparse(buf), { ...repr, payload: hex("68656c6c6f") });
  });

  it("emits a payload that overlaps the header's own bytes", () => {
    const content = new Uint8Array(30).map((_, i) => i + 1);
    const buf = new Uint8Array(TcpRepr.bufferLen(SYN_REPR) + content.length);
    buf.set(content);
    const repr: TcpRepr = { ...SYN_REPR, payload: buf.subarray(0, content.length) };
    TcpRepr.emit(repr, buf, LINUX_IP, STACK_IP);
    assert.deepEqual(reparse(buf), { ...SYN_REPR, payload: content });
  });

  it("leaves the buffer untouched when an argument is invalid", () => {
    const buf = new Uint8Array(60).fill(0xee);
    assert.throws(() =>
      TcpRepr.emit({ ...SYN_REPR, sackBlocks: [{ left: 1, right: 2 ** 32 }] }, buf, 1, 2)
    );
    assert.ok(buf.every((b) => b === 0xee));
  });

  it("rejects a bad checksum: tcp_bad_checksum", () => {
    const seg = SYN.slice();
    seg[4] ^= 0x01;
    assert.deepEqual(TcpRepr.parse(parsed(TcpPacket.parse(seg)), LINUX_IP, STACK_IP), {
      ok: false,
      reason: "tcp_bad_checksum",
    });
  });

  it("rejects a malformed option list: tcp_bad_option", () => {
    const malformed = [
      "02000000", // length 0
      "02010000", // length 1
      "0101 0206", // MSS claims 6 bytes, 2 left
      "010101 fe", // a kind byte with no length byte
      "080a 00000000", // timestamps claim 10 bytes, 6 left
      "fe03 01 1e08 000000", // unknown kind running past the end
    ];
    for (const text of malformed) {
      const seg = segmentWithOptions(hex(text.padEnd(8, "0")));
      assert.deepEqual(
        TcpRepr.parse(parsed(TcpPacket.parse(seg)), LINUX_IP, STACK_IP),
        { ok: false, reason: "tcp_bad_option" },
        text,
      );
      assert.deepEqual(parseTcpOptions(hex(text)), { ok: false, reason: "tcp_bad_option" }, text);
    }
  });

  it("skips unknown options by their length and stops at end-of-list", () => {
    // TCP-AO-like kind 29 (6 bytes), experimental kind 254 (4 bytes), MSS, EOL, garbage.
    const options = hex("1d06 01020304 fe04 abcd 020405b4 00 ff00ff");
    assert.deepEqual(parsed(parseTcpOptions(options)), { mss: 1460 });
    const seg = segmentWithOptions(options);
    const repr = reparse(seg);
    assert.equal(repr.mss, 1460);
    assert.equal(repr.windowScale, undefined);
  });

  it("ignores known options with a wrong length instead of dropping (like Linux)", () => {
    const options = hex(
      "0205 05b4 00" + // MSS with length 5
        "0304 0700" + // window scale with length 4
        "0403 00" + // SACK-permitted with length 3
        "0509 00000000000000" + // SACK with a partial block
        "0808 000000000000" + // timestamps with length 8
        "01 01 01",
    );
    assert.equal(options.length % 4, 0);
    assert.deepEqual(parsed(parseTcpOptions(options)), {});
    const repr = reparse(segmentWithOptions(options));
    assert.equal(repr.mss, undefined);
    assert.equal(repr.sackPermitted, undefined);
    assert.equal(repr.sackBlocks, undefined);
    assert.equal(repr.timestamp, undefined);
  });

  it("reads a window scale above 14 as 14 (RFC 7323 §2.3)", () => {
    assert.deepEqual(parsed(parseTcpOptions(hex("01 03030f"))), { windowScale: 14 });
    assert.deepEqual(parsed(parseTcpOptions(hex("01 0303ff"))), { windowScale: 14 });
    assert.deepEqual(parsed(parseTcpOptions(hex("01 030300"))), { windowScale: 0 });
  });

  it("parses SACK blocks in the order sent (RFC 2018 §3)", () => {
    const options = hex("0101 0512 00000064 000000c8 fffffff0 00000010");
    assert.deepEqual(parsed(parseTcpOptions(options)), {
      sackBlocks: [{ left: 100, right: 200 }, { left: 0xfffffff0, right: 0x10 }],
    });
  });

  it("throws on misuse", () => {
    const buf = new Uint8Array(60);
    assert.throws(() => TcpRepr.emit(SYN_REPR, new Uint8Array(39), 1, 2), {
      name: "RangeError",
      message: /TcpRepr\.emit: buffer of 39 bytes is too small, need 40/,
    });
    assert.throws(() => TcpRepr.emit({ ...SYN_REPR, srcPort: -1 }, buf, 1, 2), {
      name: "RangeError",
      message: /srcPort must be an integer in 0\.\.65535, got -1/,
    });
    assert.throws(() => TcpRepr.emit({ ...SYN_REPR, seqNumber: -1 }, buf, 1, 2), RangeError);
    assert.throws(() => TcpRepr.emit({ ...SYN_REPR, seqNumber: 2 ** 32 }, buf, 1, 2), RangeError);
    assert.throws(() => TcpRepr.emit({ ...SYN_REPR, windowLen: 65536 }, buf, 1, 2), RangeError);
    assert.throws(() => TcpRepr.emit({ ...SYN_REPR, windowScale: 15 }, buf, 1, 2), {
      name: "RangeError",
      message: /windowScale must be an integer in 0\.\.14, got 15/,
    });
    assert.throws(() => TcpRepr.emit({ ...SYN_REPR, mss: 70000 }, buf, 1, 2), RangeError);
    assert.throws(
      () => TcpRepr.emit({ ...SYN_REPR, timestamp: { value: 1.5, echo: 0 } }, buf, 1, 2),
      RangeError,
    );
    assert.throws(
      () => TcpRepr.emit({ ...SYN_REPR, sackBlocks: [{ left: -1, right: 0 }] }, buf, 1, 2),
      { name: "RangeError", message: /sackBlocks\[0\]\.left/ },
    );
  });
});

describe("TcpSegment (the reused receive-path segment)", () => {
  it("parses exactly what TcpRepr.parse does, reason or fields, on mutated segments", () => {
    const rnd = seededRandom(42);
    const src = 0x0a00020f;
    const dst = 0x0a000202;
    const seg = new TcpSegment();
    const bases: TcpRepr[] = [
      {
        srcPort: 1,
        dstPort: 2,
        seqNumber: 3,
        ackNumber: 4,
        flags: 0x10,
        windowLen: 5,
        payload: EMPTY,
      },
      {
        srcPort: 40000,
        dstPort: 80,
        seqNumber: 0xfffffff0,
        ackNumber: 77,
        flags: TcpFlags.SYN,
        windowLen: 64240,
        mss: 1460,
        windowScale: 7,
        sackPermitted: true,
        timestamp: { value: 9, echo: 0 },
        payload: EMPTY,
      },
      {
        srcPort: 80,
        dstPort: 40000,
        seqNumber: 1000,
        ackNumber: 2000,
        flags: TcpFlags.ACK | TcpFlags.PSH,
        windowLen: 512,
        urgentPointer: 3,
        timestamp: { value: 1, echo: 2 },
        sackBlocks: [{ left: 10, right: 20 }, { left: 30, right: 40 }, { left: 50, right: 60 }],
        payload: new Uint8Array(25).map((_, i) => i),
      },
    ];
    let compared = 0;
    for (let round = 0; round < 3000; round++) {
      const base = bases[round % bases.length];
      const bytes = new Uint8Array(TcpRepr.bufferLen(base));
      TcpRepr.emit(base, bytes, src, dst);
      // Mutate a few bytes (sometimes none), sometimes truncate.
      const flips = rnd.u32() % 3;
      for (let k = 0; k < flips; k++) bytes[rnd.u32() % bytes.length] = rnd.u32() & 0xff;
      const cut = rnd.u32() % 4 === 0 ? bytes.subarray(0, rnd.u32() % bytes.length) : bytes;
      const verified = rnd.u32() % 2 === 0;
      const pkt = TcpPacket.parse(cut);
      let want: ParseResult<TcpRepr>;
      if (!pkt.ok) want = pkt;
      else if (verified) {
        // What TcpRepr.parse decodes, checksum aside.
        const fix = cut.slice();
        fix[16] = fix[17] = 0;
        const sum = checksumFinish(
          checksumAdd(ipv4PseudoHeaderSum(src, dst, IpProtocol.TCP, fix.length), fix),
        );
        fix[16] = sum >> 8;
        fix[17] = sum & 0xff;
        want = TcpRepr.parse(parsed(TcpPacket.parse(fix)), src, dst);
        if (want.ok) want.value.payload = cut.subarray(pkt.value.dataOffset);
      } else want = TcpRepr.parse(pkt.value, src, dst);
      const reason = seg.parse(cut, src, dst, verified);
      if (!want.ok) {
        assert.equal(reason, want.reason);
        continue;
      }
      assert.equal(reason, undefined);
      const got: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(seg)) if (v !== undefined) got[k] = v;
      assert.deepEqual(
        JSON.parse(JSON.stringify({ ...got, payload: Array.from(seg.payload) })),
        JSON.parse(JSON.stringify({ ...want.value, payload: Array.from(want.value.payload) })),
      );
      compared++;
    }
    assert.ok(compared > 1000, `compared ${compared} valid segments`);
  });

  it("reuses its option objects, and cloneTcpRepr makes a copy that survives the next parse", () => {
    const seg = new TcpSegment();
    const a: TcpRepr = {
      srcPort: 1,
      dstPort: 2,
      seqNumber: 3,
      ackNumber: 4,
      flags: TcpFlags.ACK,
      windowLen: 5,
      timestamp: { value: 10, echo: 11 },
      sackBlocks: [{ left: 1, right: 2 }],
      payload: new Uint8Array([7, 8]),
    };
    const b: TcpRepr = {
      ...a,
      timestamp: { value: 20, echo: 21 },
      sackBlocks: [{ left: 3, right: 4 }],
    };
    const frame = (r: TcpRepr) => {
      const out = new Uint8Array(TcpRepr.bufferLen(r));
      TcpRepr.emit(r, out, 1, 2);
      return out;
    };
    assert.equal(seg.parse(frame(a), 1, 2), undefined);
    const ts = seg.timestamp;
    const kept = cloneTcpRepr(seg);
    assert.equal(seg.parse(frame(b), 1, 2), undefined);
    assert.equal(seg.timestamp, ts, "the same object, overwritten");
    assert.deepEqual(seg.timestamp, { value: 20, echo: 21 });
    assert.deepEqual(kept.timestamp, { value: 10, echo: 11 });
    assert.deepEqual(kept.sackBlocks, [{ left: 1, right: 2 }]);
    assert.deepEqual(Array.from(kept.payload), [7, 8]);
  });
});

describe("the in-place TCP writers", () => {
  it("write the bytes TcpRepr.emit writes, options and checksum included (RFC 9293 §3.1)", () => {
    const src = 0x0a000202;
    const dst = 0x0a00020f;
    const payload = new Uint8Array(37).map((_, i) => i * 11);
    const cases: Array<{ ts: boolean; sack: TcpSackBlock[] }> = [
      { ts: false, sack: [] },
      { ts: true, sack: [] },
      { ts: true, sack: [{ left: 1000, right: 2448 }, { left: 0xfffffff0, right: 16 }] },
      { ts: false, sack: [1, 2, 3, 4].map((i) => ({ left: i * 100, right: i * 100 + 50 })) },
    ];
    for (const c of cases) {
      const repr: TcpRepr = {
        srcPort: 80,
        dstPort: 40000,
        seqNumber: 0xdeadbeef,
        ackNumber: 0x01020304,
        flags: TcpFlags.ACK | TcpFlags.PSH,
        windowLen: 0xabcd,
        payload,
      };
      if (c.ts) repr.timestamp = { value: 0x11223344, echo: 0x55667788 };
      if (c.sack.length > 0) repr.sackBlocks = c.sack;
      const len = TcpRepr.bufferLen(repr);
      const want = new Uint8Array(len);
      TcpRepr.emit(repr, want, src, dst);
      const got = new Uint8Array(len + 6).fill(0xee);
      const at = 3;
      const headerLen = TcpRepr.headerLen(repr);
      writeTcpHeader(got, at, 80, 40000, 0xdeadbeef, 0x01020304, headerLen, repr.flags, 0xabcd);
      let o = at + 20;
      if (c.ts) {
        writeTcpTimestamps(got, o, 0x11223344, 0x55667788);
        o += 12;
      }
      o += writeTcpSackBlocks(got, o, c.sack);
      assert.equal(o, at + headerLen);
      got.set(payload, o);
      writeTcpChecksum(got, at, len, ipv4PseudoHeaderSum(src, dst, IpProtocol.TCP, len));
      assert.deepEqual(Array.from(got.subarray(at, at + len)), Array.from(want));
      assert.equal(got[0], 0xee);
      assert.equal(got[at + len], 0xee);
    }
  });
});

describe("TCP sequence arithmetic (RFC 9293 §3.4)", () => {
  it("compares across the 2^32 wrap", () => {
    const below = 0xfffffff0;
    const above = 0x00000010;
    assert.equal(tcpSeqLt(below, above), true);
    assert.equal(tcpSeqLe(below, above), true);
    assert.equal(tcpSeqGt(below, above), false);
    assert.equal(tcpSeqGe(below, above), false);
    assert.equal(tcpSeqGt(above, below), true);
    assert.equal(tcpSeqGe(above, below), true);
    assert.equal(tcpSeqLt(above, below), false);
    assert.equal(tcpSeqLt(0xffffffff, 0), true);
    assert.equal(tcpSeqLe(7, 7), true);
    assert.equal(tcpSeqGe(7, 7), true);
    assert.equal(tcpSeqLt(7, 7), false);
    assert.equal(tcpSeqGt(7, 7), false);
  });

  it("treats a distance of up to 2^31 - 1 as forward", () => {
    assert.equal(tcpSeqLt(0, 0x7fffffff), true);
    assert.equal(tcpSeqLt(0x80000000, 0xffffffff), true);
    assert.equal(tcpSeqGt(0x7fffffff, 0), true);
    assert.equal(tcpSeqDiff(0x7fffffff, 0), 0x7fffffff);
    assert.equal(tcpSeqDiff(0x80000000, 0), -0x80000000);
  });

  it("adds and subtracts modulo 2^32", () => {
    assert.equal(tcpSeqAdd(0xffffffff, 1), 0);
    assert.equal(tcpSeqAdd(0xfffffff0, 0x20), 0x10);
    assert.equal(tcpSeqAdd(5, -10), 0xfffffffb);
    assert.equal(tcpSeqAdd(0x12345678, 0), 0x12345678);
    assert.equal(tcpSeqDiff(0x10, 0xfffffff0), 0x20);
    assert.equal(tcpSeqDiff(0xfffffff0, 0x10), -0x20);
    assert.equal(tcpSeqDiff(1, 0xffffffff), 2);
  });

  it("agrees with BigInt arithmetic on random pairs", () => {
    let a = 0x9e3779b9;
    for (let i = 0; i < 2000; i++) {
      a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
      const b = (a + ((i * 2654435761) >>> 0)) >>> 0;
      const diff = Number(BigInt.asIntN(32, BigInt(a) - BigInt(b)));
      assert.equal(tcpSeqDiff(a, b), diff);
      assert.equal(tcpSeqLt(a, b), diff < 0);
      assert.equal(tcpSeqGe(a, b), diff >= 0);
      const n = i * 1000003;
      assert.equal(tcpSeqAdd(a, n), Number(BigInt.asUintN(32, BigInt(a) + BigInt(n))));
    }
  });
});
