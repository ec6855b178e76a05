/**
 * TCP and UDP over IPv6 while the stack has no transport over IPv6 (issue
 * 17, part 1): every port is closed. A UDP datagram is answered with an
 * ICMPv6 port unreachable (RFC 4443 §3.1, RFC 1122 §4.1.3.1), a TCP segment
 * with the reset a CLOSED port sends (RFC 9293 §3.10.7.1), so that a
 * client fails at once instead of waiting out its timeouts (a resolver
 * given the stack's address by RDNSS moves on to the next server). The
 * checksum, mandatory for both over IPv6 (RFC 8200 §8.1), is checked first.
 *
 * @module
 */

import {
  checksumAdd,
  checksumFinish,
  IpProtocol,
  type Ipv6Address,
  ipv6PseudoHeaderSum,
  TCP_HEADER_LEN,
  TcpFlags,
  TcpPacket,
  UdpPacket,
} from "../wire/mod.ts";

/** Whether the upper-layer checksum of `bytes` over the IPv6 pseudo-header is valid (and not 0 for UDP). */
function checksumOk(protocol: number, src: Ipv6Address, dst: Ipv6Address, bytes: Uint8Array) {
  const sum = ipv6PseudoHeaderSum(src, dst, protocol, bytes.length);
  return checksumFinish(checksumAdd(sum, bytes)) === 0;
}

/**
 * Checks a UDP datagram over IPv6. Returns a drop reason: `udp_truncated`,
 * `udp_bad_length`, `udp_bad_checksum` (also a zero checksum, RFC 8200
 * §8.1), or `udp_port_closed`, for which the caller sends a port unreachable.
 *
 * @example
 * ```ts
 * const reason = udpOverIpv6(src, dst, bytes);
 * if (reason === "udp_port_closed") icmp.sendError(packet, { type: "dest_unreachable", code: 4 }, now, false);
 * ```
 */
export function udpOverIpv6(src: Ipv6Address, dst: Ipv6Address, bytes: Uint8Array): string {
  const p = UdpPacket.parse(bytes);
  if (!p.ok) return p.reason;
  const udp = p.value.bytes.subarray(0, p.value.length);
  if (p.value.checksum === 0 || !checksumOk(IpProtocol.UDP, src, dst, udp)) {
    return "udp_bad_checksum";
  }
  return "udp_port_closed";
}

/**
 * Checks a TCP segment over IPv6 to a closed port and builds the reset to
 * send (RFC 9293 §3.10.7.1): none for a reset; for a segment with ACK,
 * `<SEQ=SEG.ACK><CTL=RST>`; else `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`.
 * The reset's checksum is left for {@linkcode finishTcpReset} (it needs the
 * addresses the reply goes between).
 *
 * @example
 * ```ts
 * const r = tcpOverIpv6(src, dst, bytes);
 * if (typeof r !== "string") out.send(dst, src, 6, 20, (b) => finishTcpReset(r, b, dst, src), now);
 * ```
 */
export function tcpOverIpv6(
  src: Ipv6Address,
  dst: Ipv6Address,
  bytes: Uint8Array,
): string | Uint8Array {
  const p = TcpPacket.parse(bytes);
  if (!p.ok) return p.reason;
  const seg = p.value;
  if (!checksumOk(IpProtocol.TCP, src, dst, bytes)) return "tcp_bad_checksum";
  const flags = seg.flags;
  if ((flags & TcpFlags.RST) !== 0) return "tcp_port_closed";
  const rst = new Uint8Array(TCP_HEADER_LEN);
  rst[0] = bytes[2];
  rst[1] = bytes[3];
  rst[2] = bytes[0];
  rst[3] = bytes[1];
  const view = new DataView(rst.buffer);
  if ((flags & TcpFlags.ACK) !== 0) {
    view.setUint32(4, seg.ackNumber);
    rst[13] = TcpFlags.RST;
  } else {
    view.setUint32(8, (seg.seqNumber + seg.segmentLen) >>> 0);
    rst[13] = TcpFlags.RST | TcpFlags.ACK;
  }
  rst[12] = (TCP_HEADER_LEN / 4) << 4;
  return rst;
}

/**
 * Copies the reset `rst` into `buf` with its checksum over the pseudo-header
 * of `src` (the stack) and `dst` (the peer).
 *
 * @example
 * ```ts
 * finishTcpReset(rst, payloadView, stackAddress, peer);
 * ```
 */
export function finishTcpReset(
  rst: Uint8Array,
  buf: Uint8Array,
  src: Ipv6Address,
  dst: Ipv6Address,
): void {
  buf.set(rst);
  buf[16] = 0;
  buf[17] = 0;
  const sum = checksumFinish(
    checksumAdd(ipv6PseudoHeaderSum(src, dst, IpProtocol.TCP, rst.length), buf, 0, rst.length),
  );
  buf[16] = sum >>> 8;
  buf[17] = sum & 0xff;
}
