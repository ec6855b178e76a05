import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  checksumAdd,
  checksumFinish,
  ETHERNET_HEADER_LEN,
  EthernetRepr,
  EtherType,
  internetChecksum,
  IpProtocol,
  ipv4PseudoHeaderSum,
  Ipv4Repr,
  parseIpv4Address,
  parseMacAddress,
  TcpFlags,
  TcpRepr,
} from "../../src/wire/mod.ts";
import {
  acceptTapRead,
  encodeTapWrite,
  MAX_OFFLOAD_WRITE,
  splitTapGso,
  tcpRunEnd,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_TCPV4,
  VNET_HDR_LEN,
} from "./tap_offload.ts";

const SRC = parseIpv4Address("10.0.2.2");
const DST = parseIpv4Address("10.0.2.15");
const SRC_MAC = parseMacAddress("02:00:00:00:00:02");
const DST_MAC = parseMacAddress("52:54:00:12:34:56");

interface Seg {
  seq: number;
  len: number;
  flags?: number;
  ident?: number;
  ack?: number;
  srcPort?: number;
  proto?: number;
}

/** One TCP/IPv4 frame from the stack, checksums complete, payload bytes derived from seq. */
function frame(s: Seg): Uint8Array {
  const payload = new Uint8Array(s.len).map((_, i) => (s.seq + i) * 7);
  const tcp: TcpRepr = {
    srcPort: s.srcPort ?? 5201,
    dstPort: 40000,
    seqNumber: s.seq >>> 0,
    ackNumber: s.ack ?? 1000,
    flags: s.flags ?? TcpFlags.ACK,
    windowLen: 512,
    timestamp: { value: 77, echo: 66 },
    payload,
  };
  const tcpLen = TcpRepr.bufferLen(tcp);
  const f = new Uint8Array(ETHERNET_HEADER_LEN + 20 + tcpLen);
  EthernetRepr.emit({ dst: DST_MAC, src: SRC_MAC, etherType: EtherType.IPV4 }, f);
  Ipv4Repr.emit({
    src: SRC,
    dst: DST,
    protocol: s.proto ?? IpProtocol.TCP,
    payloadLen: tcpLen,
    ttl: 64,
    ident: s.ident ?? 1,
    dontFragment: true,
  }, f.subarray(ETHERNET_HEADER_LEN));
  TcpRepr.emit(tcp, f.subarray(ETHERNET_HEADER_LEN + 20), SRC, DST);
  return f;
}

/**
 * What the kernel does with a GSO frame it must cut (inet_gso_segment and
 * tcp_gso_segment): one segment per gso_size bytes, sequence numbers and IPv4
 * ids counting up, PSH only on the last, full checksums.
 */
function kernelSegments(write: Uint8Array): Uint8Array[] {
  const v = new DataView(write.buffer, write.byteOffset);
  const hdrLen = v.getUint16(2, true);
  const gsoSize = v.getUint16(4, true);
  const f = write.subarray(VNET_HDR_LEN);
  const head = f.subarray(0, hdrLen);
  const data = f.subarray(hdrLen);
  const out: Uint8Array[] = [];
  const fv = new DataView(f.buffer, f.byteOffset);
  const seq0 = fv.getUint32(34 + 4);
  const id0 = fv.getUint16(14 + 4);
  for (let at = 0, i = 0; at < data.length; at += gsoSize, i++) {
    const chunk = data.subarray(at, Math.min(data.length, at + gsoSize));
    const s = new Uint8Array(hdrLen + chunk.length);
    s.set(head);
    s.set(chunk, hdrLen);
    const sv = new DataView(s.buffer);
    const last = at + gsoSize >= data.length;
    sv.setUint16(14 + 2, s.length - 14);
    sv.setUint16(14 + 4, (id0 + i) & 0xffff);
    sv.setUint16(14 + 10, 0);
    sv.setUint16(14 + 10, internetChecksum(s.subarray(14, 34)));
    sv.setUint32(34 + 4, (seq0 + at) >>> 0);
    if (!last) s[34 + 13] &= ~TcpFlags.PSH;
    sv.setUint16(34 + 16, 0);
    const sum = checksumAdd(ipv4PseudoHeaderSum(SRC, DST, 6, s.length - 34), s, 34);
    sv.setUint16(34 + 16, checksumFinish(sum));
    out.push(s);
  }
  return out;
}

describe("TAP offloads (IFF_VNET_HDR): TCP segments written as one GSO frame", () => {
  it("joins consecutive full segments and a short, pushed last one; the kernel's cut gives them back byte-exact", () => {
    const frames = [
      frame({ seq: 0xffff_f000, len: 1448, ident: 10 }), // crosses the 2^32 wrap
      frame({ seq: 0xffff_f000 + 1448, len: 1448, ident: 11 }),
      frame({ seq: 0xffff_f000 + 2896, len: 1448, ident: 12 }),
      frame({ seq: 0xffff_f000 + 4344, len: 100, ident: 13, flags: TcpFlags.ACK | TcpFlags.PSH }),
    ];
    assert.equal(tcpRunEnd(frames, 0), 4);
    const buf = new Uint8Array(MAX_OFFLOAD_WRITE);
    const len = encodeTapWrite(frames, 0, 4, buf);
    const w = buf.subarray(0, len);
    const v = new DataView(w.buffer);
    const hdrLen = 14 + 20 + 32; // TCP with timestamps (and two NOPs)
    assert.deepEqual(
      [
        w[0],
        w[1],
        v.getUint16(2, true),
        v.getUint16(4, true),
        v.getUint16(6, true),
        v.getUint16(8, true),
      ],
      [VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, hdrLen, 1448, 34, 16],
    );
    assert.equal(len, VNET_HDR_LEN + hdrLen + 3 * 1448 + 100);
    const f = w.subarray(VNET_HDR_LEN);
    assert.equal(new DataView(f.buffer, f.byteOffset).getUint16(16), len - VNET_HDR_LEN - 14);
    assert.equal(internetChecksum(f.subarray(14, 34)), 0, "the IPv4 header checksum is valid");
    assert.equal(f[34 + 13], TcpFlags.ACK | TcpFlags.PSH, "PSH from the last segment");
    const pseudo = ~checksumFinish(ipv4PseudoHeaderSum(SRC, DST, 6, f.length - 34)) & 0xffff;
    assert.equal(
      (f[34 + 16] << 8) | f[34 + 17],
      pseudo,
      "the TCP field holds the pseudo-header sum",
    );
    assert.deepEqual(kernelSegments(w), frames);
  });

  it("writes a lone segment, or anything else, as it is behind an empty header", () => {
    const buf = new Uint8Array(MAX_OFFLOAD_WRITE);
    const f = frame({ seq: 1, len: 10 });
    const len = encodeTapWrite([f], 0, 1, buf);
    assert.deepEqual([...buf.subarray(0, VNET_HDR_LEN)], new Array(VNET_HDR_LEN).fill(0));
    assert.deepEqual(buf.subarray(VNET_HDR_LEN, len), f);
  });

  it("ends a run at a gap, another flow, another ACK, a longer segment, a flag or a pushed head", () => {
    const full = (seq: number, o: Partial<Seg> = {}) => frame({ seq, len: 1000, ...o });
    const cases: Array<[string, Uint8Array[], number]> = [
      ["a sequence gap", [full(0), full(1001)], 1],
      ["another port", [full(0), full(1000, { srcPort: 1 })], 1],
      ["another ACK number", [full(0), full(1000, { ack: 2000 })], 1],
      ["a longer segment", [full(0), frame({ seq: 1000, len: 1001 })], 1],
      [
        "a short segment before a full one",
        [full(0), frame({ seq: 1000, len: 10 }), full(1010)],
        2,
      ],
      ["FIN", [full(0), full(1000, { flags: TcpFlags.ACK | TcpFlags.FIN })], 1],
      ["a pushed head", [full(0, { flags: TcpFlags.ACK | TcpFlags.PSH }), full(1000)], 1],
      ["PSH ends the run", [
        full(0),
        full(1000, { flags: TcpFlags.ACK | TcpFlags.PSH }),
        full(2000),
      ], 2],
      ["no payload (a pure ACK)", [frame({ seq: 0, len: 0 }), frame({ seq: 0, len: 0 })], 1],
      ["not TCP", [full(0, { proto: 17 }), full(1000, { proto: 17 })], 1],
    ];
    for (const [what, frames, end] of cases) assert.equal(tcpRunEnd(frames, 0), end, what);
    // 65535 bytes of IPv4 at most: 20 + 32 + 45 × 1448 = 65212 fit, a 46th does not.
    const many = Array.from({ length: 46 }, (_, i) => frame({ seq: i * 1448, len: 1448 }));
    assert.equal(tcpRunEnd(many, 0), 45);
  });
});

describe("TAP offloads: frames read from the device", () => {
  it("cuts a GSO packet back into segments with full checksums, as the kernel would", () => {
    const frames = [
      frame({ seq: 0xffff_fff0, len: 1448, ident: 0xffff }), // sequence and id wrap
      frame({ seq: 0xffff_fff0 + 1448, len: 1448, ident: 0 }),
      frame({ seq: 0xffff_fff0 + 2896, len: 7, ident: 1, flags: TcpFlags.ACK | TcpFlags.PSH }),
    ];
    const buf = new Uint8Array(MAX_OFFLOAD_WRITE);
    const len = encodeTapWrite(frames, 0, 3, buf);
    const reference = kernelSegments(buf.subarray(0, len));
    assert.deepEqual(reference, frames);
    assert.deepEqual(splitTapGso(buf, len), frames);
  });

  it("refuses a GSO packet it cannot cut", () => {
    const f = frame({ seq: 1, len: 100 });
    const buf = new Uint8Array(VNET_HDR_LEN + f.length);
    buf.set(f, VNET_HDR_LEN);
    buf[1] = 4; // UDP GSO
    assert.equal(splitTapGso(buf, buf.length), "gso-type");
    buf[1] = VNET_GSO_TCPV4;
    buf[VNET_HDR_LEN + 12] = 0x86; // not IPv4
    assert.equal(splitTapGso(buf, buf.length), "gso-not-ipv4");
    buf[VNET_HDR_LEN + 12] = 0x08;
    assert.equal(splitTapGso(buf, buf.length), "gso-bad-header", "gso_size 0");
  });

  it("completes a partial checksum in place and refuses GSO frames and runts", () => {
    const f = frame({ seq: 5, len: 33 });
    const w = new Uint8Array(VNET_HDR_LEN + f.length);
    w.set(f, VNET_HDR_LEN);
    const v = new DataView(w.buffer);
    w[0] = VNET_F_NEEDS_CSUM;
    v.setUint16(6, 34, true);
    v.setUint16(8, 16, true);
    const pseudo = ~checksumFinish(ipv4PseudoHeaderSum(SRC, DST, 6, f.length - 34)) & 0xffff;
    v.setUint16(VNET_HDR_LEN + 34 + 16, pseudo);
    assert.equal(acceptTapRead(w, w.length), undefined);
    assert.deepEqual(w.subarray(VNET_HDR_LEN), f, "the checksum is the full one again");
    w[1] = VNET_GSO_TCPV4;
    assert.equal(acceptTapRead(w, w.length), "gso");
    assert.equal(acceptTapRead(w, VNET_HDR_LEN + 10), "short");
    w[1] = 0;
    v.setUint16(8, 60000, true);
    assert.equal(acceptTapRead(w, w.length), "bad-csum-offset");
  });
});
