/**
 * The IPv6 fixed header (RFC 8200 §3) and the IPv6 pseudo-header of
 * upper-layer checksums (RFC 8200 §8.1). Extension headers are walked by
 * `ipv6_ext.ts`.
 *
 * @module
 */

import { readU16, writeU16 } from "./_bytes.ts";
import { checkBuffer, checkUint } from "./_validate.ts";
import { type Ipv6Address, isIpv6Address, readIpv6Unchecked, writeIpv6 } from "./ipv6_address.ts";
import { fail, ok, type ParseResult } from "./parse_result.ts";

/**
 * Length of the IPv6 fixed header.
 *
 * @example
 * ```ts
 * const mss = mtu - IPV6_HEADER_LEN - 20; // TCP over IPv6: MTU - 60
 * ```
 */
export const IPV6_HEADER_LEN = 40;

/**
 * The smallest link MTU IPv6 allows (RFC 8200 §5): no path MTU estimate
 * goes below it (RFC 8201 §4).
 *
 * @example
 * ```ts
 * const pmtu = Math.max(IPV6_MIN_MTU, ptb.mtu);
 * ```
 */
export const IPV6_MIN_MTU = 1280;

/** Largest payload the 16-bit payload length field can give (no jumbograms). */
const IPV6_MAX_PAYLOAD_LEN = 0xffff;

/**
 * A checked view over an IPv6 packet. After {@link Ipv6Packet.parse}
 * succeeds no accessor can fail.
 *
 * @example
 * ```ts
 * const r = Ipv6Packet.parse(frame.payload);
 * if (r.ok) console.log(formatIpv6Address(r.value.src), r.value.nextHeader);
 * ```
 */
export class Ipv6Packet {
  /**
   * The packet: fixed header and payload, cut at the payload length (link
   * padding removed). After {@link Ipv6Packet.parseTruncated} it may be
   * shorter than the payload length says.
   */
  readonly bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /**
   * Checks the fixed header (RFC 8200 §3). `bytes` may extend beyond the
   * payload length (link padding); the packet is cut there.
   *
   * Reasons: `ipv6_truncated` (under 40 bytes), `ipv6_bad_version`,
   * `ipv6_bad_payload_len` (beyond the buffer).
   */
  static parse(bytes: Uint8Array): ParseResult<Ipv6Packet> {
    return Ipv6Packet.check(bytes, false);
  }

  /**
   * Like {@link Ipv6Packet.parse}, but accepts a packet whose payload runs
   * past the end of `bytes`: the invoking packet an ICMPv6 error quotes
   * (RFC 4443 §2.4 (c)).
   */
  static parseTruncated(bytes: Uint8Array): ParseResult<Ipv6Packet> {
    return Ipv6Packet.check(bytes, true);
  }

  private static check(bytes: Uint8Array, allowTruncated: boolean): ParseResult<Ipv6Packet> {
    if (bytes.length < IPV6_HEADER_LEN) return fail("ipv6_truncated");
    if (bytes[0] >>> 4 !== 6) return fail("ipv6_bad_version");
    const total = IPV6_HEADER_LEN + readU16(bytes, 4);
    if (total > bytes.length && !allowTruncated) return fail("ipv6_bad_payload_len");
    return ok(new Ipv6Packet(total < bytes.length ? bytes.subarray(0, total) : bytes));
  }

  /** IP version (always 6 after a successful parse). */
  get version(): number {
    return this.bytes[0] >>> 4;
  }

  /** Traffic class: DSCP (6 bits) and ECN (2 bits), RFC 8200 §7. */
  get trafficClass(): number {
    return ((this.bytes[0] & 0x0f) << 4) | (this.bytes[1] >>> 4);
  }

  /** Flow label (20 bits, RFC 6437). */
  get flowLabel(): number {
    return ((this.bytes[1] & 0x0f) << 16) | readU16(this.bytes, 2);
  }

  /** Payload length field: bytes after the fixed header, extension headers included. */
  get payloadLen(): number {
    return readU16(this.bytes, 4);
  }

  /** Next header: the first extension header's type or the upper-layer protocol. */
  get nextHeader(): number {
    return this.bytes[6];
  }

  /** Hop limit. */
  get hopLimit(): number {
    return this.bytes[7];
  }

  /** Source address. */
  get src(): Ipv6Address {
    return readIpv6Unchecked(this.bytes, 8);
  }

  /** Destination address. */
  get dst(): Ipv6Address {
    return readIpv6Unchecked(this.bytes, 24);
  }

  /** The fixed header (a view). */
  get header(): Uint8Array {
    return this.bytes.subarray(0, IPV6_HEADER_LEN);
  }

  /** Everything after the fixed header, cut at the payload length (a view). */
  get payload(): Uint8Array {
    return this.bytes.subarray(IPV6_HEADER_LEN);
  }
}

/**
 * An IPv6 fixed header as a plain object.
 *
 * @example
 * ```ts
 * const repr: Ipv6Repr = { src, dst, nextHeader: IpProtocol.ICMPV6, payloadLen: 8, hopLimit: 255 };
 * ```
 */
export interface Ipv6Repr {
  /** Source address. */
  src: Ipv6Address;
  /** Destination address. */
  dst: Ipv6Address;
  /** Next header: an extension header type or the upper-layer protocol. */
  nextHeader: number;
  /** Bytes after the fixed header. */
  payloadLen: number;
  /** Hop limit. */
  hopLimit: number;
  /** Traffic class; 0 when omitted. */
  trafficClass?: number;
  /** Flow label; 0 when omitted. */
  flowLabel?: number;
}

/**
 * Converts between {@link Ipv6Packet} and {@link Ipv6Repr}.
 *
 * @example
 * ```ts
 * const buf = new Uint8Array(Ipv6Repr.bufferLen(repr));
 * Ipv6Repr.emit(repr, buf);
 * buf.set(payload, IPV6_HEADER_LEN);
 * ```
 */
export const Ipv6Repr = {
  /** Reads the fixed header of a parsed packet (IPv6 has no header checksum). */
  parse(pkt: Ipv6Packet): Ipv6Repr {
    return {
      src: pkt.src,
      dst: pkt.dst,
      nextHeader: pkt.nextHeader,
      payloadLen: pkt.payloadLen,
      hopLimit: pkt.hopLimit,
      trafficClass: pkt.trafficClass,
      flowLabel: pkt.flowLabel,
    };
  },

  /**
   * Writes the 40-byte fixed header at `buf[0..40]`; the payload is the
   * caller's.
   *
   * @throws {RangeError} when `buf` is under 40 bytes or a field is out of
   *   range; {TypeError} when an address is not an {@linkcode Ipv6Address}.
   */
  emit(repr: Ipv6Repr, buf: Uint8Array): void {
    const where = "Ipv6Repr.emit";
    checkBuffer(where, buf, IPV6_HEADER_LEN);
    checkUint(where, "nextHeader", repr.nextHeader, 0xff);
    checkUint(where, "payloadLen", repr.payloadLen, IPV6_MAX_PAYLOAD_LEN);
    checkUint(where, "hopLimit", repr.hopLimit, 0xff);
    const tc = repr.trafficClass ?? 0;
    checkUint(where, "trafficClass", tc, 0xff);
    const flow = repr.flowLabel ?? 0;
    checkUint(where, "flowLabel", flow, 0xfffff);
    if (!isIpv6Address(repr.src) || !isIpv6Address(repr.dst)) {
      throw new TypeError(`${where}: src and dst must be Ipv6Address values`);
    }
    buf[0] = 0x60 | (tc >>> 4);
    buf[1] = ((tc & 0x0f) << 4) | (flow >>> 16);
    writeU16(buf, 2, flow & 0xffff);
    writeU16(buf, 4, repr.payloadLen);
    buf[6] = repr.nextHeader;
    buf[7] = repr.hopLimit;
    writeIpv6(buf, 8, repr.src);
    writeIpv6(buf, 24, repr.dst);
  },

  /** The packet length: `40 + payloadLen`. */
  bufferLen(repr: Ipv6Repr): number {
    return IPV6_HEADER_LEN + repr.payloadLen;
  },
};

/**
 * The partial sum of the IPv6 pseudo-header of upper-layer checksums
 * (RFC 8200 §8.1): source and destination addresses, the upper-layer packet
 * length (32 bits) and the next header value.
 *
 * @example
 * ```ts
 * const sum = ipv6PseudoHeaderSum(src, dst, IpProtocol.ICMPV6, icmp.length);
 * const valid = checksumFinish(checksumAdd(sum, icmp)) === 0;
 * ```
 */
export function ipv6PseudoHeaderSum(
  src: Ipv6Address,
  dst: Ipv6Address,
  nextHeader: number,
  length: number,
): number {
  let sum = nextHeader + (length >>> 16) + (length & 0xffff);
  for (let i = 0; i < 8; i++) sum += src.charCodeAt(i) + dst.charCodeAt(i);
  return sum;
}
