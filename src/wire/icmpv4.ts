/**
 * ICMP for IPv4 (RFC 792): echo request and reply, destination unreachable,
 * time exceeded. Messages of any other type keep their type, code, the four
 * rest-of-header bytes and their data, so nothing is lost.
 *
 * @module
 */

import { readU16, readU32, writeU16, writeU32 } from "./_bytes.ts";
import { checkBuffer, checkUint, copyInto } from "./_validate.ts";
import { checksumAdd, checksumFinish } from "./checksum.ts";
import { fail, ok, type ParseResult } from "./parse_result.ts";

/**
 * Length of the ICMP header: type, code, checksum and four rest-of-header
 * bytes (RFC 792).
 *
 * @example
 * ```ts
 * const len = ICMPV4_HEADER_LEN + data.length;
 * ```
 */
export const ICMPV4_HEADER_LEN = 8;

/**
 * ICMP message types netisle decodes (RFC 792).
 *
 * @example
 * ```ts
 * if (pkt.type === Icmpv4Type.ECHO_REQUEST) reply(pkt);
 * ```
 */
export const Icmpv4Type = {
  ECHO_REPLY: 0,
  DEST_UNREACHABLE: 3,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
} as const;

/**
 * Destination unreachable codes (RFC 792, RFC 1122 §3.2.2.1, RFC 1812
 * §5.2.7.1).
 *
 * @example
 * ```ts
 * const repr = { type: "dest_unreachable", code: Icmpv4DestUnreachableCode.PORT, data };
 * ```
 */
export const Icmpv4DestUnreachableCode = {
  NET: 0,
  HOST: 1,
  PROTOCOL: 2,
  PORT: 3,
  FRAG_NEEDED: 4,
  SOURCE_ROUTE_FAILED: 5,
  NET_UNKNOWN: 6,
  HOST_UNKNOWN: 7,
  SOURCE_HOST_ISOLATED: 8,
  NET_PROHIBITED: 9,
  HOST_PROHIBITED: 10,
  NET_TOS: 11,
  HOST_TOS: 12,
  COMM_PROHIBITED: 13,
  HOST_PRECEDENCE_VIOLATION: 14,
  PRECEDENCE_CUTOFF: 15,
} as const;

/**
 * Time exceeded codes (RFC 792).
 *
 * @example
 * ```ts
 * const repr = { type: "time_exceeded", code: Icmpv4TimeExceededCode.TTL_EXCEEDED, data };
 * ```
 */
export const Icmpv4TimeExceededCode = {
  TTL_EXCEEDED: 0,
  FRAG_REASSEMBLY_EXCEEDED: 1,
} as const;

/**
 * A checked view over an ICMP message. After {@link Icmpv4Packet.parse}
 * succeeds no accessor can fail; which accessors are meaningful depends on
 * the type. The checksum is not checked by `parse`.
 *
 * @example
 * ```ts
 * const result = Icmpv4Packet.parse(ip.payload);
 * if (result.ok && result.value.verifyChecksum()) console.log(result.value.type);
 * ```
 */
export class Icmpv4Packet {
  /** The whole message: header and data. */
  readonly bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /**
   * Checks that `bytes` holds an ICMP header.
   *
   * Reason: `icmp_truncated` (under 8 bytes).
   */
  static parse(bytes: Uint8Array): ParseResult<Icmpv4Packet> {
    if (bytes.length < ICMPV4_HEADER_LEN) return fail("icmp_truncated");
    return ok(new Icmpv4Packet(bytes));
  }

  /** Message type, e.g. {@link Icmpv4Type.ECHO_REQUEST}. */
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

  /** Echo identifier (bytes 4..6). */
  get ident(): number {
    return readU16(this.bytes, 4);
  }

  /** Echo sequence number (bytes 6..8). */
  get seqNo(): number {
    return readU16(this.bytes, 6);
  }

  /** The four rest-of-header bytes 4..8 as a u32. */
  get restOfHeader(): number {
    return readU32(this.bytes, 4);
  }

  /** Next-hop MTU of a fragmentation-needed message (bytes 6..8, RFC 1191 §4). */
  get nextHopMtu(): number {
    return readU16(this.bytes, 6);
  }

  /** Everything after the 8-byte header (a view). */
  get data(): Uint8Array {
    return this.bytes.subarray(ICMPV4_HEADER_LEN);
  }

  /** Whether the checksum over the whole message is valid (RFC 792). */
  verifyChecksum(): boolean {
    return checksumFinish(checksumAdd(0, this.bytes)) === 0;
  }
}

/**
 * An ICMP message as a plain object. `data` is a view into the parsed
 * message (copy it to keep it past the buffer's reuse).
 *
 * - echo: the identifier, sequence number and echoed data (RFC 792 "Echo").
 * - dest_unreachable: `data` is the quoted original datagram, its IP header
 *   plus at least 8 bytes; `nextHopMtu` is set by `parse` for code
 *   FRAG_NEEDED (RFC 1191 §4).
 * - time_exceeded: `data` is the quoted original datagram.
 * - other: any other type, kept whole.
 *
 * @example
 * ```ts
 * const reply: Icmpv4Repr = { type: "echo_reply", ident: 1, seqNo: 7, data };
 * ```
 */
export type Icmpv4Repr =
  | { type: "echo_request" | "echo_reply"; ident: number; seqNo: number; data: Uint8Array }
  | { type: "dest_unreachable"; code: number; nextHopMtu?: number; data: Uint8Array }
  | { type: "time_exceeded"; code: number; data: Uint8Array }
  | { type: "other"; icmpType: number; code: number; restOfHeader: number; data: Uint8Array };

/**
 * Converts between {@link Icmpv4Packet} and {@link Icmpv4Repr}.
 *
 * @example
 * ```ts
 * const buf = new Uint8Array(Icmpv4Repr.bufferLen(reply));
 * Icmpv4Repr.emit(reply, buf);
 * ```
 */
export const Icmpv4Repr = {
  /**
   * Verifies the checksum and decodes the message by type.
   *
   * Reason: `icmp_bad_checksum`.
   */
  parse(pkt: Icmpv4Packet): ParseResult<Icmpv4Repr> {
    if (!pkt.verifyChecksum()) return fail("icmp_bad_checksum");
    const bytes = pkt.bytes;
    const type = bytes[0];
    const code = bytes[1];
    const data = bytes.subarray(ICMPV4_HEADER_LEN);
    switch (type) {
      case Icmpv4Type.ECHO_REQUEST:
      case Icmpv4Type.ECHO_REPLY:
        return ok({
          type: type === Icmpv4Type.ECHO_REQUEST ? "echo_request" : "echo_reply",
          ident: readU16(bytes, 4),
          seqNo: readU16(bytes, 6),
          data,
        });
      case Icmpv4Type.DEST_UNREACHABLE:
        if (code === Icmpv4DestUnreachableCode.FRAG_NEEDED) {
          return ok({ type: "dest_unreachable", code, nextHopMtu: readU16(bytes, 6), data });
        }
        return ok({ type: "dest_unreachable", code, data });
      case Icmpv4Type.TIME_EXCEEDED:
        return ok({ type: "time_exceeded", code, data });
      default:
        return ok({ type: "other", icmpType: type, code, restOfHeader: readU32(bytes, 4), data });
    }
  },

  /**
   * Writes the header and copies the data to `buf[0..bufferLen(repr)]`,
   * checksum included. Echo messages have code 0; the unused
   * rest-of-header bytes of error messages are zero.
   *
   * @throws {RangeError} when `buf` is too small or a field is out of range;
   *   {TypeError} for an unknown `repr.type`.
   */
  emit(repr: Icmpv4Repr, buf: Uint8Array): void {
    const where = "Icmpv4Repr.emit";
    const len = ICMPV4_HEADER_LEN + repr.data.length;
    checkBuffer(where, buf, len);
    let type: number;
    let code: number;
    let rest: number;
    switch (repr.type) {
      case "echo_request":
      case "echo_reply":
        checkUint(where, "ident", repr.ident, 0xffff);
        checkUint(where, "seqNo", repr.seqNo, 0xffff);
        type = repr.type === "echo_request" ? Icmpv4Type.ECHO_REQUEST : Icmpv4Type.ECHO_REPLY;
        code = 0;
        rest = repr.ident * 0x10000 + repr.seqNo;
        break;
      case "dest_unreachable":
        checkUint(where, "code", repr.code, 0xff);
        rest = repr.nextHopMtu ?? 0;
        checkUint(where, "nextHopMtu", rest, 0xffff);
        type = Icmpv4Type.DEST_UNREACHABLE;
        code = repr.code;
        break;
      case "time_exceeded":
        checkUint(where, "code", repr.code, 0xff);
        type = Icmpv4Type.TIME_EXCEEDED;
        code = repr.code;
        rest = 0;
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
          `${where}: unknown ICMP repr type "${(repr as { type: unknown }).type}"`,
        );
    }
    // Data first: it may be a view that overlaps the header's bytes.
    copyInto(buf, ICMPV4_HEADER_LEN, repr.data);
    buf[0] = type;
    buf[1] = code;
    buf[2] = 0;
    buf[3] = 0;
    writeU32(buf, 4, rest);
    writeU16(buf, 2, checksumFinish(checksumAdd(0, buf, 0, len)));
  },

  /** The message length: `8 + data.length`. */
  bufferLen(repr: Icmpv4Repr): number {
    return ICMPV4_HEADER_LEN + repr.data.length;
  },
};
