/**
 * UDP datagrams (RFC 768) over IPv4 and IPv6, with the pseudo-header
 * checksum of either family (RFC 768 "Fields", RFC 8200 §8.1). An address
 * argument is an {@linkcode IpAddress}: a number for IPv4, an
 * {@linkcode Ipv6Address} for IPv6; both ends of a datagram are of one family.
 *
 * @module
 */

import { readU16, writeU16 } from "./_bytes.ts";
import { checkBuffer, checkUint, copyInto } from "./_validate.ts";
import { checksumAdd, checksumFinish, ipv4PseudoHeaderSum } from "./checksum.ts";
import { IpProtocol } from "./ipv4.ts";
import { ipv6PseudoHeaderSum } from "./ipv6.ts";
import { type Ipv6Address, isIpv6Address } from "./ipv6_address.ts";
import type { IpAddress } from "./ip_address.ts";

/** The pseudo-header sum of either family (RFC 768, RFC 8200 §8.1). */
function pseudoHeaderSum(src: IpAddress, dst: IpAddress, len: number): number {
  return typeof src === "string"
    ? ipv6PseudoHeaderSum(src, dst as Ipv6Address, IpProtocol.UDP, len)
    : ipv4PseudoHeaderSum(src, dst as number, IpProtocol.UDP, len);
}
import { fail, ok, type ParseResult } from "./parse_result.ts";

/**
 * Length of the UDP header (RFC 768).
 *
 * @example
 * ```ts
 * const maxPayload = mtu - IPV4_HEADER_LEN - UDP_HEADER_LEN;
 * ```
 */
export const UDP_HEADER_LEN = 8;

/** Largest UDP datagram: the length field is 16 bits. */
const UDP_MAX_LEN = 0xffff;

/**
 * A checked view over a UDP datagram. After {@link UdpPacket.parse} succeeds
 * no accessor can fail. The checksum is not checked by `parse`.
 *
 * @example
 * ```ts
 * const result = UdpPacket.parse(ip.payload);
 * if (result.ok && result.value.verifyChecksum(ip.src, ip.dst)) deliver(result.value.payload);
 * ```
 */
export class UdpPacket {
  /** The datagram, header and payload, cut at the length field. */
  readonly bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /**
   * Checks the header; `bytes` may be longer than the length field, and the
   * datagram is cut there.
   *
   * Reasons: `udp_truncated` (under 8 bytes), `udp_bad_length` (the length
   * field is below 8 or beyond the buffer).
   */
  static parse(bytes: Uint8Array): ParseResult<UdpPacket> {
    if (bytes.length < UDP_HEADER_LEN) return fail("udp_truncated");
    const length = readU16(bytes, 4);
    if (length < UDP_HEADER_LEN || length > bytes.length) return fail("udp_bad_length");
    return ok(new UdpPacket(length < bytes.length ? bytes.subarray(0, length) : bytes));
  }

  /** Source port (0 when unused). */
  get srcPort(): number {
    return readU16(this.bytes, 0);
  }

  /** Destination port. */
  get dstPort(): number {
    return readU16(this.bytes, 2);
  }

  /** Length field: header plus payload. */
  get length(): number {
    return readU16(this.bytes, 4);
  }

  /** Checksum field as received; 0 means the sender computed none. */
  get checksum(): number {
    return readU16(this.bytes, 6);
  }

  /** The payload (a view). */
  get payload(): Uint8Array {
    return this.bytes.subarray(UDP_HEADER_LEN);
  }

  /**
   * Whether the checksum over the pseudo-header, header and payload is valid
   * (RFC 768 "Fields"). Over IPv4 a checksum field of 0 means none was
   * computed and is valid (RFC 1122 §4.1.3.4); over IPv6 (`src` an IPv6
   * address) the checksum is mandatory and 0 is invalid (RFC 8200 §8.1).
   */
  verifyChecksum(src: IpAddress, dst: IpAddress): boolean {
    const bytes = this.bytes;
    if (bytes[6] === 0 && bytes[7] === 0) return typeof src !== "string";
    return checksumFinish(checksumAdd(pseudoHeaderSum(src, dst, bytes.length), bytes)) === 0;
  }
}

/**
 * A UDP datagram as a plain object. After {@link UdpRepr.parse}, `payload` is
 * a view into the datagram (copy it to keep it past the buffer's reuse).
 *
 * @example
 * ```ts
 * const repr: UdpRepr = { srcPort: 68, dstPort: 67, payload: new TextEncoder().encode("hi") };
 * ```
 */
export interface UdpRepr {
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** The payload. */
  payload: Uint8Array;
}

/**
 * Converts between {@link UdpPacket} and {@link UdpRepr}.
 *
 * @example
 * ```ts
 * const buf = new Uint8Array(UdpRepr.bufferLen(repr));
 * UdpRepr.emit(repr, buf, src, dst);
 * ```
 */
export const UdpRepr = {
  /**
   * Verifies the checksum (see {@link UdpPacket.verifyChecksum}) and reads
   * the datagram.
   *
   * Reason: `udp_bad_checksum`.
   */
  parse(pkt: UdpPacket, src: IpAddress, dst: IpAddress): ParseResult<UdpRepr> {
    if (!pkt.verifyChecksum(src, dst)) return fail("udp_bad_checksum");
    const bytes = pkt.bytes;
    return ok({
      srcPort: readU16(bytes, 0),
      dstPort: readU16(bytes, 2),
      payload: bytes.subarray(UDP_HEADER_LEN),
    });
  },

  /**
   * Writes the header, copies the payload (skipped when it already sits at
   * `buf[8..]`) and computes the checksum over the pseudo-header of the
   * addresses' family; a computed 0 is sent as 0xffff (RFC 768 "Fields",
   * RFC 8200 §8.1).
   *
   * @throws {RangeError} when `buf` is too small, a port is not a u16, the
   *   datagram exceeds 65535 bytes, or the addresses are not both IPv4
   *   (u32) or both IPv6.
   */
  emit(repr: UdpRepr, buf: Uint8Array, src: IpAddress, dst: IpAddress): void {
    const where = "UdpRepr.emit";
    const len = UDP_HEADER_LEN + repr.payload.length;
    checkUint(where, "datagram length", len, UDP_MAX_LEN);
    checkBuffer(where, buf, len);
    checkUint(where, "srcPort", repr.srcPort, 0xffff);
    checkUint(where, "dstPort", repr.dstPort, 0xffff);
    if (typeof src === "string" || typeof dst === "string") {
      if (!isIpv6Address(src) || !isIpv6Address(dst)) {
        throw new RangeError(
          `${where}: src and dst must both be IPv6 addresses, got ${typeof src} and ${typeof dst}`,
        );
      }
    } else {
      checkUint(where, "src", src, 0xffffffff);
      checkUint(where, "dst", dst, 0xffffffff);
    }
    // Payload first: it may be a view that overlaps the header's bytes.
    copyInto(buf, UDP_HEADER_LEN, repr.payload);
    writeU16(buf, 0, repr.srcPort);
    writeU16(buf, 2, repr.dstPort);
    writeU16(buf, 4, len);
    buf[6] = 0;
    buf[7] = 0;
    const sum = checksumAdd(pseudoHeaderSum(src, dst, len), buf, 0, len);
    writeU16(buf, 6, checksumFinish(sum) || 0xffff);
  },

  /** The datagram length: `8 + payload.length`. */
  bufferLen(repr: UdpRepr): number {
    return UDP_HEADER_LEN + repr.payload.length;
  },
};
