/**
 * TAP offloads with `IFF_VNET_HDR`: every frame read from or written to the
 * device starts with a 10-byte `struct virtio_net_hdr` (the virtio 1.x
 * network header, in host byte order, little-endian here).
 *
 * Writing, consecutive TCP segments of one flow (the same addresses, ports,
 * ACK, window and options; sequence numbers that follow on; every segment but
 * the last of the same size) become one GSO frame: one header and the
 * payloads joined, with `gso_type` TCPv4 and `gso_size` the segment size. The
 * kernel takes it in one `write()` and hands it to its own TCP as one large
 * packet (or cuts it back into the original segments when forwarding), which
 * costs far fewer system calls and far less per-packet work than one
 * `write()` per frame. The checksum is left partial (`NEEDS_CSUM`, the TCP
 * field holding the pseudo-header sum), as a NIC doing TSO expects.
 *
 * Reading, the port enables `TUN_F_CSUM | TUN_F_TSO4` (`TUNSETOFFLOAD`): the
 * kernel may hand over one large TCP/IPv4 packet where it would have sent
 * many segments, and frames with a partial checksum. A large packet is cut
 * back into segments of `gso_size` payload bytes, each with its own sequence
 * number, IPv4 identification, lengths and full checksums (PSH and FIN only
 * on the last, CWR only on the first), as a NIC would have put them on the
 * wire; a partial checksum is completed.
 *
 * Pure functions over byte arrays, no I/O.
 *
 * @module
 */

import {
  checksumAdd,
  checksumFinish,
  ipv4PseudoHeaderSum,
  segmentTcpGso,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_HDR_LEN,
} from "../../src/wire/mod.ts";

// The header's layout lives with the tunnel's framing (src/wire/vnet_header.ts).
export {
  VNET_F_NEEDS_CSUM,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_HDR_LEN,
} from "../../src/wire/vnet_header.ts";
/** Largest write: a header, an Ethernet header and an IPv4 packet of 65535 bytes. */
export const MAX_OFFLOAD_WRITE = VNET_HDR_LEN + 14 + 65535;

const ETH = 14;
const IP = ETH; // IPv4 header offset in a frame
const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_PSH = 0x08;
const TCP_ACK = 0x10;
const TCP_URG = 0x20;

/** A TCP/IPv4 segment a GSO frame may carry: offsets and sizes within its frame. */
interface Segment {
  /** Offset of the TCP header in the frame. */
  tcp: number;
  /** TCP header length. */
  thl: number;
  /** Payload bytes (from the IPv4 total length, so Ethernet padding is ignored). */
  payload: number;
  seq: number;
  flags: number;
}

/**
 * Parses `f` as a segment that may join a GSO frame: IPv4 without options or
 * fragmentation, TCP with ACK and without SYN, FIN, RST or URG. Undefined for
 * anything else.
 */
function segmentOf(f: Uint8Array): Segment | undefined {
  if (f.length < ETH + 20 + 20 || f[12] !== 0x08 || f[13] !== 0x00) return undefined;
  if (f[IP] !== 0x45 || f[IP + 9] !== 6) return undefined;
  if (((f[IP + 6] << 8) | f[IP + 7]) & 0x3fff) return undefined; // MF or an offset
  const total = (f[IP + 2] << 8) | f[IP + 3];
  const tcp = IP + 20;
  const thl = (f[tcp + 12] >> 4) * 4;
  if (thl < 20 || total < 20 + thl || ETH + total > f.length) return undefined;
  const flags = f[tcp + 13];
  if ((flags & TCP_ACK) === 0 || (flags & (TCP_SYN | TCP_FIN | TCP_RST | TCP_URG)) !== 0) {
    return undefined;
  }
  const seq = ((f[tcp + 4] << 24) | (f[tcp + 5] << 16) | (f[tcp + 6] << 8) | f[tcp + 7]) >>> 0;
  return { tcp, thl, payload: total - 20 - thl, seq, flags };
}

/** Whether bytes `from..to` of `a` and `b` are equal. */
function sameBytes(a: Uint8Array, b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The end (exclusive) of the run of frames starting at `start` that can be
 * written as one GSO frame: at least `start + 1`. A run has one flow, one
 * segment size (only the last segment may be shorter), following sequence
 * numbers, equal headers but for the sequence number, the IPv4 identification
 * and the checksums, PSH only on its last segment, and fits one IPv4 packet.
 *
 * @example
 * ```ts
 * const end = tcpRunEnd(frames, 0); // frames[0..end) go in one write
 * ```
 */
export function tcpRunEnd(frames: readonly Uint8Array[], start: number): number {
  const head = frames[start];
  const h = segmentOf(head);
  if (!h || h.payload === 0 || (h.flags & TCP_PSH) !== 0) return start + 1;
  const mss = h.payload;
  let bytes = 20 + h.thl + h.payload;
  let nextSeq = (h.seq + h.payload) >>> 0;
  let end = start + 1;
  while (end < frames.length) {
    const f = frames[end];
    const s = segmentOf(f);
    if (
      !s || s.thl !== h.thl || s.seq !== nextSeq || s.payload === 0 || s.payload > mss ||
      bytes + s.payload > 65535 || (s.flags & ~TCP_PSH) !== h.flags ||
      // MACs and the EtherType; TOS, flags, TTL, protocol, addresses; ports, ACK, window, options.
      !sameBytes(f, head, 0, ETH) || f[IP + 1] !== head[IP + 1] ||
      !sameBytes(f, head, IP + 6, IP + 10) || !sameBytes(f, head, IP + 12, IP + 20) ||
      !sameBytes(f, head, h.tcp, h.tcp + 4) || !sameBytes(f, head, h.tcp + 8, h.tcp + 13) ||
      !sameBytes(f, head, h.tcp + 14, h.tcp + 16) ||
      !sameBytes(f, head, h.tcp + 20, h.tcp + h.thl)
    ) {
      break;
    }
    end++;
    bytes += s.payload;
    nextSeq = (nextSeq + s.payload) >>> 0;
    if (s.payload < mss || (s.flags & TCP_PSH) !== 0) break; // only the last may be short or push
  }
  return end;
}

function putHeader(
  buf: Uint8Array,
  flags: number,
  gsoType: number,
  hdrLen: number,
  gsoSize: number,
  csumStart: number,
  csumOffset: number,
): void {
  const v = new DataView(buf.buffer, buf.byteOffset, VNET_HDR_LEN);
  v.setUint8(0, flags);
  v.setUint8(1, gsoType);
  v.setUint16(2, hdrLen, true);
  v.setUint16(4, gsoSize, true);
  v.setUint16(6, csumStart, true);
  v.setUint16(8, csumOffset, true);
}

/**
 * Writes frames `start..end` (a run from {@linkcode tcpRunEnd}) into `buf`
 * as one TAP write and returns its length. One frame goes as it is behind an
 * empty header; several become one GSO frame (header and flags of the first
 * segment, PSH if the last had it, the payloads in order, IPv4 total length
 * and checksum recomputed, TCP checksum partial).
 *
 * @throws {RangeError} when `buf` is shorter than {@linkcode MAX_OFFLOAD_WRITE}.
 */
export function encodeTapWrite(
  frames: readonly Uint8Array[],
  start: number,
  end: number,
  buf: Uint8Array,
): number {
  if (buf.length < MAX_OFFLOAD_WRITE) {
    throw new RangeError(`encodeTapWrite: buffer of ${buf.length} bytes < ${MAX_OFFLOAD_WRITE}`);
  }
  const head = frames[start];
  if (end - start === 1) {
    putHeader(buf, 0, VNET_GSO_NONE, 0, 0, 0, 0);
    buf.set(head, VNET_HDR_LEN);
    return VNET_HDR_LEN + head.length;
  }
  const h = segmentOf(head)!;
  const hdrEnd = h.tcp + h.thl;
  const o = VNET_HDR_LEN;
  buf.set(head.subarray(0, hdrEnd), o);
  let at = o + hdrEnd;
  // tcpRunEnd checked every segment of the run: same header lengths, so only the
  // payload length (from the IPv4 total length) differs.
  for (let i = start; i < end; i++) {
    const f = frames[i];
    const payload = ((f[IP + 2] << 8) | f[IP + 3]) - (hdrEnd - ETH);
    buf.set(f.subarray(hdrEnd, hdrEnd + payload), at);
    at += payload;
  }
  const lastFlags = frames[end - 1][h.tcp + 13];
  const ipLen = at - o - ETH;
  const tcpLen = ipLen - 20;
  // IPv4: total length, header checksum.
  buf[o + IP + 2] = ipLen >> 8;
  buf[o + IP + 3] = ipLen & 0xff;
  buf[o + IP + 10] = 0;
  buf[o + IP + 11] = 0;
  const ipSum = checksumFinish(checksumAdd(0, buf, o + IP, o + IP + 20));
  buf[o + IP + 10] = ipSum >> 8;
  buf[o + IP + 11] = ipSum & 0xff;
  // TCP: PSH from the last segment; the checksum field holds the pseudo-header sum
  // (not complemented) for the device to finish over each segment.
  buf[o + h.tcp + 13] = h.flags | (lastFlags & TCP_PSH);
  const src = ((head[IP + 12] << 24) | (head[IP + 13] << 16) | (head[IP + 14] << 8) |
    head[IP + 15]) >>> 0;
  const dst = ((head[IP + 16] << 24) | (head[IP + 17] << 16) | (head[IP + 18] << 8) |
    head[IP + 19]) >>> 0;
  const pseudo = ~checksumFinish(ipv4PseudoHeaderSum(src, dst, 6, tcpLen)) & 0xffff;
  buf[o + h.tcp + 16] = pseudo >> 8;
  buf[o + h.tcp + 17] = pseudo & 0xff;
  putHeader(buf, VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, hdrEnd, h.payload, h.tcp, 16);
  return at;
}

/** `TUNSETOFFLOAD` flags: the reader takes partial checksums and TCPv4 GSO packets. */
export const TUN_F_CSUM = 0x01;
/** See {@linkcode TUN_F_CSUM}. */
export const TUN_F_TSO4 = 0x02;
/** `_IOW('T', 208, unsigned int)`: which offloads the reader of a TAP device handles. */
export const TUNSETOFFLOAD = 0x400454d0;

/**
 * Cuts a TCPv4 GSO packet read from the device (`buf[VNET_HDR_LEN..n)`,
 * header in front) into the segments it stands for, each a complete frame
 * with full checksums (RFC 9293 §3.1 checksum over the pseudo-header). The
 * segments share one new buffer. Returns the frames, or why the packet must
 * be dropped.
 */
export function splitTapGso(buf: Uint8Array, n: number): Uint8Array[] | string {
  const v = new DataView(buf.buffer, buf.byteOffset, VNET_HDR_LEN);
  if (buf[1] !== VNET_GSO_TCPV4) return "gso-type";
  const f = buf.subarray(VNET_HDR_LEN, n);
  if (f.length < ETH + 20 || f[12] !== 0x08 || f[13] !== 0x00 || (f[IP] >> 4) !== 4) {
    return "gso-not-ipv4";
  }
  const ihl = (f[IP] & 0x0f) * 4;
  const tcp = IP + ihl;
  if (ihl < 20 || f[IP + 9] !== 6 || f.length < tcp + 20) return "gso-not-tcp";
  const hdrLen = tcp + (f[tcp + 12] >> 4) * 4;
  const gsoSize = v.getUint16(4, true);
  if (hdrLen < tcp + 20 || hdrLen > f.length || gsoSize === 0) return "gso-bad-header";
  // The cutting itself is the stack's (vnet_header.ts): one rule for both ends of the tunnel.
  return segmentTcpGso(f, gsoSize) ?? "gso-not-tcp";
}

/**
 * Checks the virtio header in front of a frame read from the device and
 * completes a partial checksum in place. Returns undefined when the frame at
 * `buf[VNET_HDR_LEN..n)` is ready, `"gso"` for a GSO packet (cut it with
 * {@linkcode splitTapGso}), or why it must be dropped.
 */
export function acceptTapRead(buf: Uint8Array, n: number): string | undefined {
  if (n < VNET_HDR_LEN + ETH) return "short";
  if (buf[1] !== VNET_GSO_NONE) return "gso";
  if ((buf[0] & VNET_F_NEEDS_CSUM) === 0) return undefined;
  const csumStart = VNET_HDR_LEN + (buf[6] | (buf[7] << 8));
  const field = csumStart + (buf[8] | (buf[9] << 8));
  if (field + 2 > n) return "bad-csum-offset";
  // The field holds the pseudo-header sum: summing from csum_start over it finishes it.
  const sum = checksumFinish(checksumAdd(0, buf, csumStart, n));
  buf[field] = sum >> 8;
  buf[field + 1] = sum & 0xff;
  return undefined;
}
