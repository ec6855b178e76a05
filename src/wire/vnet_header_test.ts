import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checksumAdd, checksumFinish, ipv4PseudoHeaderSum } from "./checksum.ts";
import { ETHERNET_HEADER_LEN, EthernetRepr, EtherType } from "./ethernet.ts";
import { IpProtocol, Ipv4Repr } from "./ipv4.ts";
import { ipv6PseudoHeaderSum, Ipv6Repr } from "./ipv6.ts";
import { parseIpv6Address } from "./ipv6_address.ts";
import { TcpFlags, TcpRepr } from "./tcp.ts";
import {
  completeChecksum,
  readVnetHeader,
  segmentTcpGso,
  tcpv4HeaderOffset,
  tcpv6HeaderOffset,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_TCPV4,
  VNET_HDR_LEN,
  writePartialTcpChecksum,
  writeVnetHeader,
} from "./vnet_header.ts";

const SRC = 0x0a000202;
const DST = 0x0a00020f;
const MAC_A = new Uint8Array([2, 0, 0, 0, 0, 2]);
const MAC_B = new Uint8Array([0x52, 0x54, 0, 0x12, 0x34, 0x56]);

/** The test's segment at `seq`: payload bytes derived from the sequence number (from `base`). */
function segment(seq: number, len: number, flags: number, base: number): TcpRepr {
  return {
    srcPort: 80,
    dstPort: 40000,
    seqNumber: seq >>> 0,
    ackNumber: 1000,
    flags,
    windowLen: 512,
    timestamp: { value: 77, echo: 66 },
    payload: new Uint8Array(len).map((_, i) => (seq - base + i) * 7),
  };
}

const SRC6 = parseIpv6Address("fd00::2");
const DST6 = parseIpv6Address("fd00::15");

/** `tcp` in an Ethernet frame over IPv4 (identification `ident`, DF) or IPv6, checksums complete. */
function wrap(tcp: TcpRepr, v6: boolean, ident = 0): Uint8Array {
  const tcpLen = TcpRepr.bufferLen(tcp);
  const ipLen = v6 ? 40 : 20;
  const f = new Uint8Array(ETHERNET_HEADER_LEN + ipLen + tcpLen);
  const etherType = v6 ? EtherType.IPV6 : EtherType.IPV4;
  EthernetRepr.emit({ dst: MAC_B, src: MAC_A, etherType }, f);
  const ip = f.subarray(ETHERNET_HEADER_LEN);
  if (v6) {
    Ipv6Repr.emit({
      src: SRC6,
      dst: DST6,
      nextHeader: IpProtocol.TCP,
      payloadLen: tcpLen,
      hopLimit: 64,
    }, ip);
  } else {
    Ipv4Repr.emit({
      src: SRC,
      dst: DST,
      protocol: IpProtocol.TCP,
      payloadLen: tcpLen,
      ttl: 64,
      ident,
      dontFragment: true,
    }, ip);
  }
  TcpRepr.emit(tcp, f.subarray(ETHERNET_HEADER_LEN + ipLen), v6 ? SRC6 : SRC, v6 ? DST6 : DST);
  return f;
}

/** A TCP/IPv4 frame of {@linkcode segment}. */
function frame(seq: number, len: number, flags: number, ident: number, base = seq): Uint8Array {
  return wrap(segment(seq, len, flags, base), false, ident);
}

/** {@linkcode segment} over IPv6 (RFC 8200), without extension headers. */
function frame6(seq: number, len: number, flags: number, base = seq): Uint8Array {
  return wrap(segment(seq, len, flags, base), true);
}

describe("the virtio-net header (virtio 1.x §5.1.6)", () => {
  it("writes and reads its fields little-endian, as a TAP with IFF_VNET_HDR does", () => {
    const b = new Uint8Array(VNET_HDR_LEN + 2);
    writeVnetHeader(b, 1, VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, 66, 1448, 34, 16);
    assert.deepEqual(Array.from(b), [0, 1, 1, 66, 0, 0xa8, 0x05, 34, 0, 16, 0, 0]);
    assert.deepEqual(readVnetHeader(b, 1), {
      flags: 1,
      gsoType: 1,
      hdrLen: 66,
      gsoSize: 1448,
      csumStart: 34,
      csumOffset: 16,
    });
  });

  it("cuts a TCPv4 GSO packet into the segments TSO would send (PSH last, ids counting up)", () => {
    const mss = 100;
    const seq = 0xfffffff0; // across the sequence wrap
    const big = frame(seq, 350, TcpFlags.ACK | TcpFlags.PSH, 500);
    const tcp = tcpv4HeaderOffset(big);
    assert.equal(tcp, 34);
    // What the stack hands over: the checksum partial.
    const tcpLen = big.length - tcp;
    writePartialTcpChecksum(big, tcp, ipv4PseudoHeaderSum(SRC, DST, IpProtocol.TCP, tcpLen));
    const segs = segmentTcpGso(big, mss)!;
    assert.equal(segs.length, 4);
    for (let i = 0; i < 4; i++) {
      const len = i < 3 ? mss : 50;
      const want = frame(
        seq + i * mss,
        len,
        TcpFlags.ACK | (i === 3 ? TcpFlags.PSH : 0),
        500 + i,
        seq,
      );
      assert.deepEqual(Array.from(segs[i]), Array.from(want), `segment ${i}`);
    }
    assert.equal(segmentTcpGso(big, 0), undefined);
    const udp = big.slice();
    udp[23] = IpProtocol.UDP;
    assert.equal(segmentTcpGso(udp, mss), undefined);
  });

  it("cuts a TCPv6 GSO packet into the segments TSO would send (PSH last, payload lengths)", () => {
    const mss = 100;
    const seq = 0xffffffc0;
    const big = frame6(seq, 250, TcpFlags.ACK | TcpFlags.PSH | TcpFlags.CWR);
    const tcp = tcpv6HeaderOffset(big);
    assert.equal(tcp, 54);
    assert.equal(tcpv4HeaderOffset(big), -1);
    const tcpLen = big.length - tcp;
    writePartialTcpChecksum(big, tcp, ipv6PseudoHeaderSum(SRC6, DST6, IpProtocol.TCP, tcpLen));
    const segs = segmentTcpGso(big, mss)!;
    assert.equal(segs.length, 3);
    for (let i = 0; i < 3; i++) {
      const flags = TcpFlags.ACK | (i === 2 ? TcpFlags.PSH : 0) | (i === 0 ? TcpFlags.CWR : 0);
      const want = frame6(seq + i * mss, i < 2 ? mss : 50, flags, seq);
      assert.deepEqual(Array.from(segs[i]), Array.from(want), `segment ${i}`);
    }
    const withOptions = big.slice();
    withOptions[ETHERNET_HEADER_LEN + 6] = 0; // a hop-by-hop options header first
    assert.equal(tcpv6HeaderOffset(withOptions), -1);
    assert.equal(segmentTcpGso(withOptions, mss), undefined);
  });

  it("completes a partial checksum to the full one (RFC 1071)", () => {
    const f = frame(1000, 333, TcpFlags.ACK, 1);
    const want = f.slice(34 + 16, 34 + 18);
    writePartialTcpChecksum(f, 34, ipv4PseudoHeaderSum(SRC, DST, IpProtocol.TCP, f.length - 34));
    assert.notDeepEqual(Array.from(f.slice(50, 52)), Array.from(want));
    assert.equal(completeChecksum(f, 34, 16), true);
    assert.deepEqual(Array.from(f.slice(50, 52)), Array.from(want));
    const sum = ipv4PseudoHeaderSum(SRC, DST, IpProtocol.TCP, f.length - 34);
    assert.equal(checksumFinish(checksumAdd(sum, f, 34)), 0);
    assert.equal(completeChecksum(f, f.length - 1, 16), false, "a field beyond the frame");
  });
});
