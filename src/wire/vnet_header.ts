/**
 * The virtio-net header (`struct virtio_net_hdr`, virtio 1.x §5.1.6): the
 * 10 bytes of offload metadata in front of a frame that a Linux TAP device
 * with `IFF_VNET_HDR` reads and writes, and that the tunnel's
 * `netisle.vnet-stream.v1` framing carries. Fields are little-endian (the
 * virtio 1.x byte order; what a TAP uses on a little-endian host).
 *
 * - `flags`: {@linkcode VNET_F_NEEDS_CSUM} (the transport checksum is
 *   partial: the field at `csumStart + csumOffset` holds the pseudo-header
 *   sum, the rest is to be summed from `csumStart`), {@linkcode VNET_F_DATA_VALID}
 *   (the checksum was verified).
 * - `gsoType`: {@linkcode VNET_GSO_NONE}, {@linkcode VNET_GSO_TCPV4} or
 *   {@linkcode VNET_GSO_TCPV6} (a TCP segment of up to 64 KiB standing for
 *   segments of `gsoSize` payload bytes each, as TSO cuts it), possibly with
 *   {@linkcode VNET_GSO_ECN}.
 * - `hdrLen`: bytes of headers (Ethernet, IP, TCP) of a GSO packet.
 *
 * Also the software fallbacks, for a frame with such metadata that must go
 * where no offload is: {@linkcode segmentTcpGso} cuts a TCP GSO packet
 * (IPv4 or IPv6) into its segments, {@linkcode completeChecksum} finishes a partial one.
 *
 * @module
 */

import { checksumAdd, checksumFinish } from "./checksum.ts";

/** Bytes of `struct virtio_net_hdr` (without `num_buffers`). */
export const VNET_HDR_LEN = 10;
/** `flags`: the checksum at `csum_start + csum_offset` is partial. */
export const VNET_F_NEEDS_CSUM = 1;
/** `flags`: the checksum is known to be valid. */
export const VNET_F_DATA_VALID = 2;
/** `gso_type`: not a GSO packet. */
export const VNET_GSO_NONE = 0;
/** `gso_type`: TCP over IPv4 segmentation. */
export const VNET_GSO_TCPV4 = 1;
/** `gso_type`: TCP over IPv6 segmentation (virtio 1.x §5.1.6, `VIRTIO_NET_HDR_GSO_TCPV6`). */
export const VNET_GSO_TCPV6 = 4;
/** `gso_type` bit: the segments carry ECN (CWR on the first only). */
export const VNET_GSO_ECN = 0x80;

/** The fields of a virtio-net header. */
export interface VnetHeader {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

/**
 * Writes a virtio-net header at `buf[at..at+10]`.
 *
 * @example
 * ```ts
 * writeVnetHeader(buf, 0, VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, 66, 1448, 34, 16);
 * ```
 */
export function writeVnetHeader(
  buf: Uint8Array,
  at: number,
  flags: number,
  gsoType: number,
  hdrLen: number,
  gsoSize: number,
  csumStart: number,
  csumOffset: number,
): void {
  buf[at] = flags;
  buf[at + 1] = gsoType;
  buf[at + 2] = hdrLen & 0xff;
  buf[at + 3] = hdrLen >>> 8;
  buf[at + 4] = gsoSize & 0xff;
  buf[at + 5] = gsoSize >>> 8;
  buf[at + 6] = csumStart & 0xff;
  buf[at + 7] = csumStart >>> 8;
  buf[at + 8] = csumOffset & 0xff;
  buf[at + 9] = csumOffset >>> 8;
}

/**
 * Reads the virtio-net header at `buf[at..at+10]` (the caller checked the
 * length).
 *
 * @example
 * ```ts
 * const h = readVnetHeader(record, 0);
 * if (h.gsoType === VNET_GSO_TCPV4) console.log(`segments of ${h.gsoSize} bytes`);
 * ```
 */
export function readVnetHeader(buf: Uint8Array, at: number): VnetHeader {
  return {
    flags: buf[at],
    gsoType: buf[at + 1],
    hdrLen: buf[at + 2] | (buf[at + 3] << 8),
    gsoSize: buf[at + 4] | (buf[at + 5] << 8),
    csumStart: buf[at + 6] | (buf[at + 7] << 8),
    csumOffset: buf[at + 8] | (buf[at + 9] << 8),
  };
}

const ETH = 14;
/** The fixed IPv6 header (RFC 8200 §3). */
const IPV6_HEADER_BYTES = 40;
const TCP_PSH = 0x08;
const TCP_FIN = 0x01;
const TCP_CWR = 0x80;

/**
 * Whether `frame` is a TCP segment over IPv4 in an Ethernet II frame, with
 * its TCP header inside the frame: the offset of the TCP header, or -1.
 */
export function tcpv4HeaderOffset(frame: Uint8Array): number {
  if (frame.length < ETH + 20 || frame[12] !== 0x08 || frame[13] !== 0x00) return -1;
  if ((frame[ETH] >> 4) !== 4 || frame[ETH + 9] !== 6) return -1;
  const ihl = (frame[ETH] & 0x0f) * 4;
  const tcp = ETH + ihl;
  if (ihl < 20 || frame.length < tcp + 20) return -1;
  const thl = (frame[tcp + 12] >> 4) * 4;
  if (thl < 20 || frame.length < tcp + thl) return -1;
  return tcp;
}

/**
 * Finishes a partial checksum in place (virtio's NEEDS_CSUM): the 16-bit
 * field at `csumStart + csumOffset` holds the pseudo-header sum; summing
 * from `csumStart` to the end with it in place and complementing gives the
 * checksum (RFC 1071). Returns false, changing nothing, when the offsets lie
 * outside the frame.
 *
 * @example
 * ```ts
 * completeChecksum(frame, 34, 16); // a TCP/IPv4 segment's checksum
 * ```
 */
export function completeChecksum(
  frame: Uint8Array,
  csumStart: number,
  csumOffset: number,
): boolean {
  const field = csumStart + csumOffset;
  if (field + 2 > frame.length || csumStart >= frame.length) return false;
  const sum = checksumFinish(checksumAdd(0, frame, csumStart, frame.length));
  frame[field] = sum >> 8;
  frame[field + 1] = sum & 0xff;
  return true;
}

/**
 * Writes the partial checksum of a TCP/IPv4 segment (virtio's NEEDS_CSUM):
 * the pseudo-header sum over the segment's full TCP length, not
 * complemented, as Linux leaves it for a device to finish.
 *
 * @example
 * ```ts
 * writePartialTcpChecksum(frame, 34, ipv4PseudoHeaderSum(src, dst, 6, tcpLen));
 * ```
 */
export function writePartialTcpChecksum(
  frame: Uint8Array,
  tcpAt: number,
  pseudoSum: number,
): void {
  const partial = ~checksumFinish(pseudoSum) & 0xffff;
  frame[tcpAt + 16] = partial >> 8;
  frame[tcpAt + 17] = partial & 0xff;
}

/**
 * Whether `frame` is a TCP segment over IPv6 in an Ethernet II frame, TCP
 * right after the fixed header (no extension headers, as GSO packets are),
 * with its TCP header inside the frame: the offset of the TCP header, or -1.
 *
 * @example
 * ```ts
 * tcpv6HeaderOffset(frame); // 54 for TCP over IPv6
 * ```
 */
export function tcpv6HeaderOffset(frame: Uint8Array): number {
  const tcp = ETH + IPV6_HEADER_BYTES;
  if (frame.length < tcp + 20 || frame[12] !== 0x86 || frame[13] !== 0xdd) return -1;
  if ((frame[ETH] >> 4) !== 6 || frame[ETH + 6] !== 6) return -1;
  const thl = (frame[tcp + 12] >> 4) * 4;
  if (thl < 20 || frame.length < tcp + thl) return -1;
  return tcp;
}

/**
 * Cuts a TCP GSO packet over IPv4 or IPv6 (one large segment, checksum
 * partial or not) into the segments it stands for, `gsoSize` payload bytes
 * each, as TSO would put them on the wire: each a whole frame with its own
 * sequence number, lengths and full checksums (and for IPv4 a consecutive
 * identification and the header checksum); PSH and FIN on the last segment
 * only, CWR on the first only. The segments share one new buffer. Returns
 * undefined for a frame that is not TCP over IPv4 or IPv6 (without
 * extension headers) or a `gsoSize` of 0.
 *
 * @example
 * ```ts
 * const segments = segmentTcpGso(bigFrame, 1448); // 45 frames for 64 KiB
 * ```
 */
export function segmentTcpGso(f: Uint8Array, gsoSize: number): Uint8Array[] | undefined {
  const v6 = f.length > 13 && f[12] === 0x86 && f[13] === 0xdd;
  const tcp = v6 ? tcpv6HeaderOffset(f) : tcpv4HeaderOffset(f);
  if (tcp < 0 || gsoSize <= 0) return undefined;
  const ihl = tcp - ETH;
  const hdrLen = tcp + (f[tcp + 12] >> 4) * 4;
  // The packet's end by its IP length (so Ethernet padding is ignored).
  const total = v6
    ? ((f[ETH + 4] << 8) | f[ETH + 5]) + tcp
    : ((f[ETH + 2] << 8) | f[ETH + 3]) + ETH;
  const end = total >= hdrLen && total <= f.length ? total : f.length;
  const payload = end - hdrLen;
  const count = Math.max(1, Math.ceil(payload / gsoSize));
  const out = new Uint8Array(count * hdrLen + payload);
  const frames: Uint8Array[] = [];
  const seq0 = ((f[tcp + 4] << 24) | (f[tcp + 5] << 16) | (f[tcp + 6] << 8) | f[tcp + 7]) >>> 0;
  const id0 = (f[ETH + 4] << 8) | f[ETH + 5];
  const flags = f[tcp + 13];
  // The pseudo-header's addresses (RFC 9293 §3.1, RFC 8200 §8.1), summed once.
  const addresses = v6 ? checksumAdd(0, f, ETH + 8, tcp) : checksumAdd(0, f, ETH + 12, ETH + 20);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const off = i * gsoSize;
    const len = Math.min(gsoSize, payload - off);
    const seg = out.subarray(at, at + hdrLen + len);
    at += hdrLen + len;
    seg.set(f.subarray(0, hdrLen));
    seg.set(f.subarray(hdrLen + off, hdrLen + off + len), hdrLen);
    const tcpLen = hdrLen - tcp + len;
    if (v6) {
      seg[ETH + 4] = tcpLen >> 8;
      seg[ETH + 5] = tcpLen & 0xff;
    } else {
      const ipLen = ihl + tcpLen;
      seg[ETH + 2] = ipLen >> 8;
      seg[ETH + 3] = ipLen & 0xff;
      const id = (id0 + i) & 0xffff;
      seg[ETH + 4] = id >> 8;
      seg[ETH + 5] = id & 0xff;
      seg[ETH + 10] = 0;
      seg[ETH + 11] = 0;
      const ipSum = checksumFinish(checksumAdd(0, seg, ETH, ETH + ihl));
      seg[ETH + 10] = ipSum >> 8;
      seg[ETH + 11] = ipSum & 0xff;
    }
    const seq = (seq0 + off) >>> 0;
    seg[tcp + 4] = seq >>> 24;
    seg[tcp + 5] = (seq >>> 16) & 0xff;
    seg[tcp + 6] = (seq >>> 8) & 0xff;
    seg[tcp + 7] = seq & 0xff;
    let fl = flags;
    if (i < count - 1) fl &= ~(TCP_PSH | TCP_FIN);
    if (i > 0) fl &= ~TCP_CWR;
    seg[tcp + 13] = fl;
    seg[tcp + 16] = 0;
    seg[tcp + 17] = 0;
    const sum = checksumFinish(checksumAdd(addresses + 6 + tcpLen, seg, tcp));
    seg[tcp + 16] = sum >> 8;
    seg[tcp + 17] = sum & 0xff;
    frames.push(seg);
  }
  return frames;
}
