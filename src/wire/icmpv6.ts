/**
 * ICMP for IPv6 (RFC 4443): echo request and reply, destination
 * unreachable, packet too big, time exceeded, parameter problem, with the
 * checksum over the IPv6 pseudo-header (RFC 4443 §2.3, RFC 8200 §8.1).
 * Neighbour discovery messages are decoded by `ndp.ts`, MLD by `mld.ts`;
 * here they, and every other type, are kept whole as `other`.
 *
 * @module
 */

import { readU16, readU32, writeU16, writeU32 } from "./_bytes.ts";
import { checkBuffer, checkUint, copyInto } from "./_validate.ts";
import { checksumAdd, checksumFinish } from "./checksum.ts";
import { IpProtocol } from "./ipv4.ts";
import { ipv6PseudoHeaderSum } from "./ipv6.ts";
import type { Ipv6Address } from "./ipv6_address.ts";
import { fail, ok, type ParseResult } from "./parse_result.ts";

/**
 * Length of the ICMPv6 header: type, code, checksum and four
 * message-body bytes (RFC 4443 §2.1).
 *
 * @example
 * ```ts
 * const len = ICMPV6_HEADER_LEN + data.length;
 * ```
 */
export const ICMPV6_HEADER_LEN = 8;

/**
 * The most an ICMPv6 error may be, IPv6 header included: the minimum MTU
 * (RFC 4443 §2.4 (c)).
 *
 * @example
 * ```ts
 * const maxQuote = ICMPV6_ERROR_MAX_LEN - 40 - 8;
 * ```
 */
export const ICMPV6_ERROR_MAX_LEN = 1280;

/**
 * ICMPv6 message types (RFC 4443 §2.1, RFC 4861 §4, RFC 2710 §3, RFC 3810 §5).
 *
 * @example
 * ```ts
 * if (pkt.type === Icmpv6Type.ECHO_REQUEST) reply(pkt);
 * ```
 */
export const Icmpv6Type = {
  DEST_UNREACHABLE: 1,
  PACKET_TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  PARAM_PROBLEM: 4,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
  MLD_QUERY: 130,
  MLD_REPORT: 131,
  MLD_DONE: 132,
  ROUTER_SOLICIT: 133,
  ROUTER_ADVERT: 134,
  NEIGHBOR_SOLICIT: 135,
  NEIGHBOR_ADVERT: 136,
  REDIRECT: 137,
  MLDV2_REPORT: 143,
} as const;

/**
 * Destination unreachable codes (RFC 4443 §3.1).
 *
 * @example
 * ```ts
 * const repr = { type: "dest_unreachable", code: Icmpv6DestUnreachableCode.PORT, data };
 * ```
 */
export const Icmpv6DestUnreachableCode = {
  NO_ROUTE: 0,
  ADMIN_PROHIBITED: 1,
  BEYOND_SCOPE: 2,
  ADDRESS: 3,
  PORT: 4,
  SOURCE_POLICY: 5,
  REJECT_ROUTE: 6,
} as const;

/**
 * Parameter problem codes (RFC 4443 §3.4).
 *
 * @example
 * ```ts
 * const repr = { type: "param_problem", code: Icmpv6ParamProblemCode.NEXT_HEADER, pointer: 6, data };
 * ```
 */
export const Icmpv6ParamProblemCode = {
  HEADER_FIELD: 0,
  NEXT_HEADER: 1,
  OPTION: 2,
} as const;

/**
 * Whether an ICMPv6 type is an error message (types 0..127, RFC 4443 §2.1).
 *
 * @example
 * ```ts
 * isIcmpv6Error(Icmpv6Type.PACKET_TOO_BIG); // true
 * ```
 */
export function isIcmpv6Error(type: number): boolean {
  return type < 128;
}

/**
 * A checked view over an ICMPv6 message. After {@link Icmpv6Packet.parse}
 * succeeds no accessor can fail. The checksum needs the IPv6 addresses:
 * {@link Icmpv6Packet.verifyChecksum}.
 *
 * @example
 * ```ts
 * const r = Icmpv6Packet.parse(chain.payload);
 * if (r.ok && r.value.verifyChecksum(ip.src, ip.dst)) console.log(r.value.type);
 * ```
 */
export class Icmpv6Packet {
  /** The whole message: header and body. */
  readonly bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /**
   * Checks that `bytes` holds an ICMPv6 header.
   *
   * Reason: `icmpv6_truncated` (under 8 bytes).
   */
  static parse(bytes: Uint8Array): ParseResult<Icmpv6Packet> {
    if (bytes.length < ICMPV6_HEADER_LEN) return fail("icmpv6_truncated");
    return ok(new Icmpv6Packet(bytes));
  }

  /** Message type, e.g. {@link Icmpv6Type.ECHO_REQUEST}. */
  get type(): number {
    return this.bytes[0];
  }

  /** Message code. */
  get code(): number {
    return this.bytes[1];
  }

  /** Checksum field as received. */
  get checksum(): number {
    return readU16(this.bytes, 2);
  }

  /** The four bytes after the checksum as a u32 (MTU, pointer, identifier and sequence). */
  get restOfHeader(): number {
    return readU32(this.bytes, 4);
  }

  /** Everything after the 8-byte header (a view). */
  get data(): Uint8Array {
    return this.bytes.subarray(ICMPV6_HEADER_LEN);
  }

  /** Whether the checksum over pseudo-header and message is valid (RFC 4443 §2.3). */
  verifyChecksum(src: Ipv6Address, dst: Ipv6Address): boolean {
    const sum = ipv6PseudoHeaderSum(src, dst, IpProtocol.ICMPV6, this.bytes.length);
    return checksumFinish(checksumAdd(sum, this.bytes)) === 0;
  }
}

/**
 * An ICMPv6 message as a plain object; `data` is a view into the parsed
 * message (copy it to keep it).
 *
 * - echo (RFC 4443 §4): identifier, sequence number, data.
 * - dest_unreachable, time_exceeded (§3.1, §3.3): `data` quotes the invoking packet.
 * - packet_too_big (§3.2): the next-hop `mtu`.
 * - param_problem (§3.4): the `pointer` to the offending byte.
 * - other: any other type (NDP, MLD, unknown), kept whole: the four bytes
 *   after the checksum in `restOfHeader`.
 *
 * @example
 * ```ts
 * const reply: Icmpv6Repr = { type: "echo_reply", ident: 1, seqNo: 7, data };
 * ```
 */
export type Icmpv6Repr =
  | { type: "echo_request" | "echo_reply"; ident: number; seqNo: number; data: Uint8Array }
  | { type: "dest_unreachable" | "time_exceeded"; code: number; data: Uint8Array }
  | { type: "packet_too_big"; mtu: number; data: Uint8Array }
  | { type: "param_problem"; code: number; pointer: number; data: Uint8Array }
  | { type: "other"; icmpType: number; code: number; restOfHeader: number; data: Uint8Array };

/**
 * Converts between {@link Icmpv6Packet} and {@link Icmpv6Repr}.
 *
 * @example
 * ```ts
 * const buf = new Uint8Array(Icmpv6Repr.bufferLen(reply));
 * Icmpv6Repr.emit(reply, buf, src, dst);
 * ```
 */
export const Icmpv6Repr = {
  /**
   * Verifies the checksum over the pseudo-header of `src` and `dst` and
   * decodes the message by type.
   *
   * Reason: `icmpv6_bad_checksum`.
   */
  parse(pkt: Icmpv6Packet, src: Ipv6Address, dst: Ipv6Address): ParseResult<Icmpv6Repr> {
    if (!pkt.verifyChecksum(src, dst)) return fail("icmpv6_bad_checksum");
    const bytes = pkt.bytes;
    const type = bytes[0];
    const code = bytes[1];
    const data = bytes.subarray(ICMPV6_HEADER_LEN);
    switch (type) {
      case Icmpv6Type.ECHO_REQUEST:
      case Icmpv6Type.ECHO_REPLY:
        return ok({
          type: type === Icmpv6Type.ECHO_REQUEST ? "echo_request" : "echo_reply",
          ident: readU16(bytes, 4),
          seqNo: readU16(bytes, 6),
          data,
        });
      case Icmpv6Type.DEST_UNREACHABLE:
        return ok({ type: "dest_unreachable", code, data });
      case Icmpv6Type.TIME_EXCEEDED:
        return ok({ type: "time_exceeded", code, data });
      case Icmpv6Type.PACKET_TOO_BIG:
        return ok({ type: "packet_too_big", mtu: readU32(bytes, 4), data });
      case Icmpv6Type.PARAM_PROBLEM:
        return ok({ type: "param_problem", code, pointer: readU32(bytes, 4), data });
      default:
        return ok({ type: "other", icmpType: type, code, restOfHeader: readU32(bytes, 4), data });
    }
  },

  /**
   * Writes the message to `buf[0..bufferLen(repr)]` with its checksum over
   * the pseudo-header of `src` and `dst`. Echo messages and packet too big
   * have code 0.
   *
   * @throws {RangeError} when `buf` is too small or a field is out of range;
   *   {TypeError} for an unknown `repr.type`.
   */
  emit(repr: Icmpv6Repr, buf: Uint8Array, src: Ipv6Address, dst: Ipv6Address): void {
    const where = "Icmpv6Repr.emit";
    const len = ICMPV6_HEADER_LEN + repr.data.length;
    checkBuffer(where, buf, len);
    let type: number;
    let code = 0;
    let rest: number;
    switch (repr.type) {
      case "echo_request":
      case "echo_reply":
        checkUint(where, "ident", repr.ident, 0xffff);
        checkUint(where, "seqNo", repr.seqNo, 0xffff);
        type = repr.type === "echo_request" ? Icmpv6Type.ECHO_REQUEST : Icmpv6Type.ECHO_REPLY;
        rest = repr.ident * 0x10000 + repr.seqNo;
        break;
      case "dest_unreachable":
      case "time_exceeded":
        checkUint(where, "code", repr.code, 0xff);
        type = repr.type === "dest_unreachable"
          ? Icmpv6Type.DEST_UNREACHABLE
          : Icmpv6Type.TIME_EXCEEDED;
        code = repr.code;
        rest = 0;
        break;
      case "packet_too_big":
        checkUint(where, "mtu", repr.mtu, 0xffffffff);
        type = Icmpv6Type.PACKET_TOO_BIG;
        rest = repr.mtu;
        break;
      case "param_problem":
        checkUint(where, "code", repr.code, 0xff);
        checkUint(where, "pointer", repr.pointer, 0xffffffff);
        type = Icmpv6Type.PARAM_PROBLEM;
        code = repr.code;
        rest = repr.pointer;
        break;
      case "other":
        checkUint(where, "icmpType", repr.icmpType, 0xff);
        checkUint(where, "code", repr.code, 0xff);
        checkUint(where, "restOfHeader", repr.restOfHeader, 0xffffffff);
        type = repr.icmpType;
        code = repr.code;
        rest = repr.restOfHeader;
        break;
      default:
        throw new TypeError(
          `${where}: unknown ICMPv6 repr type "${(repr as { type: unknown }).type}"`,
        );
    }
    // Data first: it may be a view that overlaps the header's bytes.
    copyInto(buf, ICMPV6_HEADER_LEN, repr.data);
    buf[0] = type;
    buf[1] = code;
    buf[2] = 0;
    buf[3] = 0;
    writeU32(buf, 4, rest);
    writeIcmpv6Checksum(buf.subarray(0, len), src, dst);
  },

  /** The message length: `8 + data.length`. */
  bufferLen(repr: Icmpv6Repr): number {
    return ICMPV6_HEADER_LEN + repr.data.length;
  },
};

/**
 * Fills in the checksum of the ICMPv6 message `msg` (its checksum field
 * zero or not) over the pseudo-header of `src` and `dst` (RFC 4443 §2.3).
 *
 * @throws {RangeError} when `msg` is under 4 bytes.
 * @example
 * ```ts
 * writeIcmpv6Checksum(frame.subarray(54), stackAddress, peer);
 * ```
 */
export function writeIcmpv6Checksum(msg: Uint8Array, src: Ipv6Address, dst: Ipv6Address): void {
  checkBuffer("writeIcmpv6Checksum", msg, 4);
  msg[2] = 0;
  msg[3] = 0;
  const sum = ipv6PseudoHeaderSum(src, dst, IpProtocol.ICMPV6, msg.length);
  writeU16(msg, 2, checksumFinish(checksumAdd(sum, msg)));
}
