/**
 * IPv4 datagrams (RFC 791 §3.1). Header options (IHL 6..15) are skipped
 * safely but not interpreted; emitted headers never carry options.
 *
 * @module
 */

import type { Ipv4Address } from "./address.ts";
import { readU16, readU32, writeU16, writeU32 } from "./_bytes.ts";
import { checkBuffer, checkUint } from "./_validate.ts";
import { checksumAdd, checksumFinish } from "./checksum.ts";
import { fail, ok, type ParseResult } from "./parse_result.ts";

/**
 * Length of an IPv4 header without options (IHL 5).
 *
 * @example
 * ```ts
 * const mss = mtu - IPV4_HEADER_LEN - TCP_HEADER_LEN;
 * ```
 */
export const IPV4_HEADER_LEN = 20;

/** Largest IPv4 datagram: the total length field is 16 bits. */
const IPV4_MAX_TOTAL_LEN = 0xffff;

/**
 * IP protocol numbers netisle handles (IANA "Assigned Internet Protocol
 * Numbers", RFC 790).
 *
 * @example
 * ```ts
 * if (pkt.protocol === IpProtocol.TCP) handleTcp(pkt.payload);
 * ```
 */
export const IpProtocol = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  /** ICMP for IPv6 (RFC 4443), the next header of ICMPv6 messages. */
  ICMPV6: 58,
} as const;

const FLAG_DF = 0x4000;
const FLAG_MF = 0x2000;
const OFFSET_MASK = 0x1fff;

/**
 * A checked view over an IPv4 datagram. After {@link Ipv4Packet.parse}
 * succeeds no accessor can fail. The header checksum is *not* checked by
 * `parse`; call {@link Ipv4Packet.verifyChecksum} (or use
 * {@link Ipv4Repr.parse}) so that the two drops can be counted apart.
 *
 * @example
 * ```ts
 * const result = Ipv4Packet.parse(frame.payload);
 * if (!result.ok) drops[result.reason]++;
 * else if (!result.value.verifyChecksum()) drops.ipv4_bad_checksum++;
 * ```
 */
export class Ipv4Packet {
  /**
   * The datagram: header and payload, cut at the total length (Ethernet
   * padding removed). For {@link Ipv4Packet.parseTruncated} it may be shorter
   * than the total length.
   */
  readonly bytes: Uint8Array;
  /** Header length in bytes (IHL * 4), 20..60. */
  readonly headerLen: number;

  private constructor(bytes: Uint8Array, headerLen: number) {
    this.bytes = bytes;
    this.headerLen = headerLen;
  }

  /**
   * Checks the header layout (RFC 791 §3.1, RFC 1122 §3.2.1.1-3.2.1.2
   * except the checksum). `bytes` may extend beyond the total length
   * (link-layer padding); the packet is cut at the total length.
   *
   * Reasons: `ipv4_truncated` (under 20 bytes), `ipv4_bad_version`,
   * `ipv4_bad_header_len` (IHL below 5 or beyond the buffer),
   * `ipv4_bad_total_len` (below the header length or beyond the buffer).
   */
  static parse(bytes: Uint8Array): ParseResult<Ipv4Packet> {
    return Ipv4Packet.check(bytes, false);
  }

  /**
   * Like {@link Ipv4Packet.parse}, but accepts a datagram whose total length
   * runs past the end of `bytes`: the original datagram quoted (header plus
   * at least 8 bytes) in an ICMP error (RFC 792, RFC 1812 §4.3.2.3). The
   * payload is whatever of it is present.
   */
  static parseTruncated(bytes: Uint8Array): ParseResult<Ipv4Packet> {
    return Ipv4Packet.check(bytes, true);
  }

  /** The checks shared by {@link Ipv4Packet.parse} and {@link Ipv4Packet.parseTruncated}. */
  private static check(bytes: Uint8Array, allowTruncated: boolean): ParseResult<Ipv4Packet> {
    if (bytes.length < IPV4_HEADER_LEN) return fail("ipv4_truncated");
    const b0 = bytes[0];
    if (b0 >>> 4 !== 4) return fail("ipv4_bad_version");
    const headerLen = (b0 & 0x0f) * 4;
    if (headerLen < IPV4_HEADER_LEN || headerLen > bytes.length) {
      return fail("ipv4_bad_header_len");
    }
    const totalLen = readU16(bytes, 2);
    if (totalLen < headerLen || (totalLen > bytes.length && !allowTruncated)) {
      return fail("ipv4_bad_total_len");
    }
    const packet = totalLen < bytes.length ? bytes.subarray(0, totalLen) : bytes;
    return ok(new Ipv4Packet(packet, headerLen));
  }

  /** IP version (always 4 after a successful parse). */
  get version(): number {
    return this.bytes[0] >>> 4;
  }

  /** The former type-of-service byte: DSCP (6 bits) and ECN (2 bits), RFC 2474, RFC 3168. */
  get dscpEcn(): number {
    return this.bytes[1];
  }

  /** Total length field: header plus payload in bytes. */
  get totalLen(): number {
    return readU16(this.bytes, 2);
  }

  /** Identification field. */
  get ident(): number {
    return readU16(this.bytes, 4);
  }

  /** The Don't Fragment flag. */
  get dontFragment(): boolean {
    return (readU16(this.bytes, 6) & FLAG_DF) !== 0;
  }

  /** The More Fragments flag. */
  get moreFragments(): boolean {
    return (readU16(this.bytes, 6) & FLAG_MF) !== 0;
  }

  /** Fragment offset in bytes (the field counts 8-byte units). */
  get fragmentOffset(): number {
    return (readU16(this.bytes, 6) & OFFSET_MASK) * 8;
  }

  /** Whether this datagram is a fragment: MF set or a non-zero offset. */
  get isFragment(): boolean {
    return (readU16(this.bytes, 6) & (FLAG_MF | OFFSET_MASK)) !== 0;
  }

  /** Time to live. */
  get ttl(): number {
    return this.bytes[8];
  }

  /** Protocol number, e.g. {@link IpProtocol.TCP}. */
  get protocol(): number {
    return this.bytes[9];
  }

  /** Header checksum field as received. */
  get checksum(): number {
    return readU16(this.bytes, 10);
  }

  /** Source address. */
  get src(): Ipv4Address {
    return readU32(this.bytes, 12);
  }

  /** Destination address. */
  get dst(): Ipv4Address {
    return readU32(this.bytes, 16);
  }

  /** The header including options (a view). */
  get header(): Uint8Array {
    return this.bytes.subarray(0, this.headerLen);
  }

  /** The header options, possibly empty (a view). */
  get options(): Uint8Array {
    return this.bytes.subarray(IPV4_HEADER_LEN, this.headerLen);
  }

  /** The payload, cut at the total length (a view). */
  get payload(): Uint8Array {
    return this.bytes.subarray(this.headerLen);
  }

  /** Whether the header checksum is valid (RFC 791 §3.1 "Header Checksum"). */
  verifyChecksum(): boolean {
    return checksumFinish(checksumAdd(0, this.bytes, 0, this.headerLen)) === 0;
  }
}

/**
 * An IPv4 header as a plain object. Emitted headers have no options.
 *
 * {@link Ipv4Repr.parse} always fills `ident`, `dontFragment` and `dscpEcn`,
 * and fills `moreFragments` and `fragmentOffset` only for a fragment.
 *
 * @example
 * ```ts
 * const repr: Ipv4Repr = { src, dst, protocol: IpProtocol.UDP, payloadLen: 12, ttl: 64 };
 * ```
 */
export interface Ipv4Repr {
  /** Source address. */
  src: Ipv4Address;
  /** Destination address. */
  dst: Ipv4Address;
  /** Protocol number, e.g. {@link IpProtocol.TCP}. */
  protocol: number;
  /** Payload length in bytes (total length minus the header). */
  payloadLen: number;
  /** Time to live. */
  ttl: number;
  /** Identification field; 0 when omitted. */
  ident?: number;
  /** Don't Fragment flag; false when omitted. */
  dontFragment?: boolean;
  /** DSCP and ECN byte; 0 when omitted. */
  dscpEcn?: number;
  /** More Fragments flag; false when omitted. */
  moreFragments?: boolean;
  /** Fragment offset in bytes, a multiple of 8; 0 when omitted. */
  fragmentOffset?: number;
}

/**
 * Converts between {@link Ipv4Packet} and {@link Ipv4Repr}.
 *
 * @example
 * ```ts
 * const buf = new Uint8Array(Ipv4Repr.bufferLen(repr));
 * Ipv4Repr.emit(repr, buf);
 * buf.set(payload, IPV4_HEADER_LEN);
 * ```
 */
export const Ipv4Repr = {
  /**
   * Reads a parsed datagram and verifies its header checksum. Fragments are
   * not rejected: check {@link Ipv4Packet.isFragment} before handing the
   * payload to a transport.
   *
   * Reason: `ipv4_bad_checksum`.
   */
  parse(pkt: Ipv4Packet): ParseResult<Ipv4Repr> {
    if (!pkt.verifyChecksum()) return fail("ipv4_bad_checksum");
    const bytes = pkt.bytes;
    const flags = readU16(bytes, 6);
    const repr: Ipv4Repr = {
      src: readU32(bytes, 12),
      dst: readU32(bytes, 16),
      protocol: bytes[9],
      payloadLen: readU16(bytes, 2) - pkt.headerLen,
      ttl: bytes[8],
      ident: readU16(bytes, 4),
      dontFragment: (flags & FLAG_DF) !== 0,
      dscpEcn: bytes[1],
    };
    if ((flags & (FLAG_MF | OFFSET_MASK)) !== 0) {
      repr.moreFragments = (flags & FLAG_MF) !== 0;
      repr.fragmentOffset = (flags & OFFSET_MASK) * 8;
    }
    return ok(repr);
  },

  /**
   * Writes the 20-byte header, checksum included, at `buf[0..20]`. The
   * payload is the caller's, at `buf[20..]`.
   *
   * @throws {RangeError} when `buf` is under 20 bytes or a field is out of
   *   range (the total length must fit 16 bits, the fragment offset must be a
   *   multiple of 8).
   */
  emit(repr: Ipv4Repr, buf: Uint8Array): void {
    const where = "Ipv4Repr.emit";
    checkBuffer(where, buf, IPV4_HEADER_LEN);
    checkUint(where, "src", repr.src, 0xffffffff);
    checkUint(where, "dst", repr.dst, 0xffffffff);
    checkUint(where, "protocol", repr.protocol, 0xff);
    checkUint(where, "payloadLen", repr.payloadLen, IPV4_MAX_TOTAL_LEN - IPV4_HEADER_LEN);
    checkUint(where, "ttl", repr.ttl, 0xff);
    const ident = repr.ident ?? 0;
    checkUint(where, "ident", ident, 0xffff);
    const dscpEcn = repr.dscpEcn ?? 0;
    checkUint(where, "dscpEcn", dscpEcn, 0xff);
    const fragmentOffset = repr.fragmentOffset ?? 0;
    if (!(fragmentOffset >= 0 && fragmentOffset <= OFFSET_MASK * 8 && fragmentOffset % 8 === 0)) {
      throw new RangeError(
        `${where}: fragmentOffset must be a multiple of 8 in 0..65528, got ${fragmentOffset}`,
      );
    }
    buf[0] = 0x45;
    buf[1] = dscpEcn;
    writeU16(buf, 2, IPV4_HEADER_LEN + repr.payloadLen);
    writeU16(buf, 4, ident);
    writeU16(
      buf,
      6,
      (repr.dontFragment ? FLAG_DF : 0) | (repr.moreFragments ? FLAG_MF : 0) |
        (fragmentOffset / 8),
    );
    buf[8] = repr.ttl;
    buf[9] = repr.protocol;
    buf[10] = 0;
    buf[11] = 0;
    writeU32(buf, 12, repr.src);
    writeU32(buf, 16, repr.dst);
    writeU16(buf, 10, checksumFinish(checksumAdd(0, buf, 0, IPV4_HEADER_LEN)));
  },

  /** The datagram length: `20 + payloadLen`. */
  bufferLen(repr: Ipv4Repr): number {
    return IPV4_HEADER_LEN + repr.payloadLen;
  },
};
