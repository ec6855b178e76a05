/**
 * TCP segments (RFC 9293 §3.1) with the options a modern stack negotiates:
 * MSS (RFC 9293 §3.2), window scale and timestamps (RFC 7323 §2, §3),
 * SACK-permitted and SACK (RFC 2018), and wrap-safe sequence arithmetic
 * (RFC 9293 §3.4).
 *
 * @module
 */

import { readU16, readU32, writeU16, writeU32 } from "./_bytes.ts";
import { checkBuffer, checkUint, copyInto } from "./_validate.ts";
import { checksumAdd, checksumFinish } from "./checksum.ts";
import { type IpAddress, ipPseudoHeaderSum } from "./ip_address.ts";
import { IpProtocol } from "./ipv4.ts";
import { fail, ok, type ParseResult } from "./parse_result.ts";

/**
 * Length of a TCP header without options (data offset 5).
 *
 * @example
 * ```ts
 * const mss = mtu - IPV4_HEADER_LEN - TCP_HEADER_LEN; // 1460 for an MTU of 1500
 * ```
 */
export const TCP_HEADER_LEN = 20;

/**
 * Largest option space: a data offset of 15 words minus the fixed header
 * (RFC 9293 §3.1).
 *
 * @example
 * ```ts
 * const room = TCP_MAX_OPTIONS_LEN - (TcpRepr.headerLen(repr) - TCP_HEADER_LEN);
 * ```
 */
export const TCP_MAX_OPTIONS_LEN = 40;

/**
 * The largest window scale shift (RFC 7323 §2.3).
 *
 * @example
 * ```ts
 * const shift = Math.min(wanted, TCP_MAX_WINDOW_SCALE);
 * ```
 */
export const TCP_MAX_WINDOW_SCALE = 14;

/**
 * The control bits of byte 13 of the header (RFC 9293 §3.1; ECE and CWR from
 * RFC 3168 §6.1).
 *
 * @example
 * ```ts
 * const synAck = TcpFlags.SYN | TcpFlags.ACK;
 * if (pkt.flags & TcpFlags.RST) reset();
 * ```
 */
export const TcpFlags = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

/**
 * TCP option kinds (IANA "TCP Option Kind Numbers").
 *
 * @example
 * ```ts
 * if (options[0] === TcpOptionKind.MSS) readMss();
 * ```
 */
export const TcpOptionKind = {
  END: 0,
  NOP: 1,
  MSS: 2,
  WINDOW_SCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMP: 8,
} as const;

/**
 * A checked view over a TCP segment. After {@link TcpPacket.parse} succeeds
 * no accessor can fail. Neither the checksum nor the options are checked by
 * `parse`; {@link TcpRepr.parse} checks both.
 *
 * @example
 * ```ts
 * const result = TcpPacket.parse(ip.payload);
 * if (result.ok) console.log(result.value.dstPort);
 * ```
 */
export class TcpPacket {
  /** The whole segment: header, options and payload. */
  readonly bytes: Uint8Array;
  /** Header length including options, in bytes (data offset * 4), 20..60. */
  readonly dataOffset: number;

  private constructor(bytes: Uint8Array, dataOffset: number) {
    this.bytes = bytes;
    this.dataOffset = dataOffset;
  }

  /**
   * Checks the header layout. `bytes` must be exactly the segment (the IPv4
   * payload): its length is the segment length.
   *
   * Reasons: `tcp_truncated` (under 20 bytes), `tcp_bad_data_offset` (below
   * 5 words or beyond the buffer).
   */
  static parse(bytes: Uint8Array): ParseResult<TcpPacket> {
    if (bytes.length < TCP_HEADER_LEN) return fail("tcp_truncated");
    const dataOffset = (bytes[12] >>> 4) * 4;
    if (dataOffset < TCP_HEADER_LEN || dataOffset > bytes.length) {
      return fail("tcp_bad_data_offset");
    }
    return ok(new TcpPacket(bytes, dataOffset));
  }

  /** Source port. */
  get srcPort(): number {
    return readU16(this.bytes, 0);
  }

  /** Destination port. */
  get dstPort(): number {
    return readU16(this.bytes, 2);
  }

  /** Sequence number (u32). */
  get seqNumber(): number {
    return readU32(this.bytes, 4);
  }

  /** Acknowledgment number (u32; meaningful when ACK is set). */
  get ackNumber(): number {
    return readU32(this.bytes, 8);
  }

  /** Control bits, a combination of {@link TcpFlags}. */
  get flags(): number {
    return this.bytes[13];
  }

  /** Window field as received (not yet scaled). */
  get windowLen(): number {
    return readU16(this.bytes, 14);
  }

  /** Checksum field as received. */
  get checksum(): number {
    return readU16(this.bytes, 16);
  }

  /** Urgent pointer field (meaningful when URG is set). */
  get urgentPointer(): number {
    return readU16(this.bytes, 18);
  }

  /** The raw option bytes, possibly empty (a view). */
  get options(): Uint8Array {
    return this.bytes.subarray(TCP_HEADER_LEN, this.dataOffset);
  }

  /** The payload (a view). */
  get payload(): Uint8Array {
    return this.bytes.subarray(this.dataOffset);
  }

  /** Sequence space the segment occupies: payload length plus one for SYN and one for FIN (RFC 9293 §3.4). */
  get segmentLen(): number {
    const flags = this.bytes[13];
    return this.bytes.length - this.dataOffset + (flags & TcpFlags.SYN ? 1 : 0) +
      (flags & TcpFlags.FIN ? 1 : 0);
  }

  /** Whether the checksum over the pseudo-header and the segment is valid (RFC 9293 §3.1). */
  verifyChecksum(src: IpAddress, dst: IpAddress): boolean {
    const sum = ipPseudoHeaderSum(src, dst, IpProtocol.TCP, this.bytes.length);
    return checksumFinish(checksumAdd(sum, this.bytes)) === 0;
  }
}

/**
 * One SACK block: the sequence numbers of the first byte and of the byte
 * after the last byte of a received block (RFC 2018 §3).
 *
 * @example
 * ```ts
 * const block: TcpSackBlock = { left: 1000, right: 2448 };
 * ```
 */
export interface TcpSackBlock {
  /** First sequence number of the block (u32). */
  left: number;
  /** Sequence number just past the block (u32). */
  right: number;
}

/**
 * The options of a TCP header, as decoded by {@link parseTcpOptions}. A field
 * is present only when its option was (sackPermitted only as `true`).
 *
 * @example
 * ```ts
 * const options: TcpOptions = { mss: 1460, windowScale: 7, sackPermitted: true };
 * ```
 */
export interface TcpOptions {
  /** Maximum segment size (RFC 9293 §3.7.1). */
  mss?: number;
  /** Window scale shift count, 0..14 (RFC 7323 §2). */
  windowScale?: number;
  /** The SACK-permitted option (RFC 2018 §2). */
  sackPermitted?: boolean;
  /** SACK blocks, in the order sent (RFC 2018 §3). */
  sackBlocks?: TcpSackBlock[];
  /** Timestamps: TSval and TSecr (RFC 7323 §3). */
  timestamp?: { value: number; echo: number };
}

/**
 * Decodes the option list into `into`; answers a drop reason or null.
 * Options whose length is wrong for their kind are ignored, as Linux does.
 */
function readOptions(opts: Uint8Array, into: TcpOptions): string | null {
  const end = opts.length;
  let i = 0;
  while (i < end) {
    const kind = opts[i];
    if (kind === TcpOptionKind.END) break;
    if (kind === TcpOptionKind.NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) return "tcp_bad_option";
    const len = opts[i + 1];
    if (len < 2 || i + len > end) return "tcp_bad_option";
    switch (kind) {
      case TcpOptionKind.MSS:
        if (len === 4) into.mss = readU16(opts, i + 2);
        break;
      case TcpOptionKind.WINDOW_SCALE:
        // RFC 7323 §2.3: a shift above 14 is used as 14.
        if (len === 3) into.windowScale = Math.min(opts[i + 2], TCP_MAX_WINDOW_SCALE);
        break;
      case TcpOptionKind.SACK_PERMITTED:
        if (len === 2) into.sackPermitted = true;
        break;
      case TcpOptionKind.SACK:
        if (len >= 10 && (len - 2) % 8 === 0) {
          const blocks: TcpSackBlock[] = [];
          for (let p = i + 2; p < i + len; p += 8) {
            blocks.push({ left: readU32(opts, p), right: readU32(opts, p + 4) });
          }
          into.sackBlocks = blocks;
        }
        break;
      case TcpOptionKind.TIMESTAMP:
        if (len === 10) {
          into.timestamp = { value: readU32(opts, i + 2), echo: readU32(opts, i + 6) };
        }
        break;
    }
    i += len;
  }
  return null;
}

/**
 * Decodes a TCP option list (RFC 9293 §3.2). End-of-list stops decoding; NOPs
 * are skipped; unknown kinds are skipped by their length; a known kind with a
 * wrong length is ignored (tolerant like Linux). A window scale above 14 is
 * read as 14 (RFC 7323 §2.3).
 *
 * Reason: `tcp_bad_option` when an option's length is below 2 or runs past
 * the end of the list.
 *
 * @example
 * ```ts
 * const result = parseTcpOptions(new Uint8Array([2, 4, 0x05, 0xb4])); // { mss: 1460 }
 * ```
 */
export function parseTcpOptions(options: Uint8Array): ParseResult<TcpOptions> {
  const out: TcpOptions = {};
  const reason = readOptions(options, out);
  return reason === null ? ok(out) : fail(reason);
}

/**
 * A TCP segment as a plain object. After {@link TcpRepr.parse}, `payload` is
 * a view into the segment (copy it to keep it past the buffer's reuse), and
 * `urgentPointer` and each option field are present only when the segment
 * carried them (`urgentPointer` when non-zero).
 *
 * @example
 * ```ts
 * const syn: TcpRepr = {
 *   srcPort: 40000, dstPort: 80, seqNumber: iss, ackNumber: 0,
 *   flags: TcpFlags.SYN, windowLen: 64240, mss: 1460, windowScale: 7,
 *   sackPermitted: true, timestamp: { value: now, echo: 0 }, payload: new Uint8Array(0),
 * };
 * ```
 */
export interface TcpRepr {
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** Sequence number (u32). */
  seqNumber: number;
  /** Acknowledgment number (u32). */
  ackNumber: number;
  /** Control bits, a combination of {@link TcpFlags}. */
  flags: number;
  /** Window field as sent on the wire (already scaled down). */
  windowLen: number;
  /** Urgent pointer; 0 when omitted. */
  urgentPointer?: number;
  /** MSS option (RFC 9293 §3.7.1). */
  mss?: number;
  /** Window scale option, 0..14 (RFC 7323 §2). */
  windowScale?: number;
  /** SACK-permitted option (RFC 2018 §2). */
  sackPermitted?: boolean;
  /** SACK option blocks, at most 4, and 3 with timestamps (RFC 2018 §3). */
  sackBlocks?: TcpSackBlock[];
  /** Timestamps option (RFC 7323 §3). */
  timestamp?: { value: number; echo: number };
  /** The payload. */
  payload: Uint8Array;
}

/** Bytes of options emitted for `repr` (always a multiple of 4). */
function optionsLen(repr: TcpRepr): number {
  let len = 0;
  if (repr.mss !== undefined) len += 4;
  if (repr.timestamp !== undefined) len += 12; // SACKOK+TS or NOP,NOP,TS
  else if (repr.sackPermitted) len += 4; // NOP,NOP,SACKOK
  if (repr.windowScale !== undefined) len += 4; // NOP,WS
  const blocks = repr.sackBlocks;
  if (blocks !== undefined && blocks.length > 0) len += 4 + 8 * blocks.length; // NOP,NOP,SACK
  return len;
}

/**
 * Converts between {@link TcpPacket} and {@link TcpRepr}.
 *
 * @example
 * ```ts
 * const buf = new Uint8Array(TcpRepr.bufferLen(syn));
 * TcpRepr.emit(syn, buf, localIp, remoteIp);
 * ```
 */
export const TcpRepr = {
  /**
   * Verifies the checksum and decodes the header and options (see
   * {@link parseTcpOptions}).
   *
   * Reasons: `tcp_bad_checksum`, `tcp_bad_option`.
   */
  parse(pkt: TcpPacket, src: IpAddress, dst: IpAddress): ParseResult<TcpRepr> {
    if (!pkt.verifyChecksum(src, dst)) return fail("tcp_bad_checksum");
    const bytes = pkt.bytes;
    const repr: TcpRepr = {
      srcPort: readU16(bytes, 0),
      dstPort: readU16(bytes, 2),
      seqNumber: readU32(bytes, 4),
      ackNumber: readU32(bytes, 8),
      flags: bytes[13],
      windowLen: readU16(bytes, 14),
      payload: bytes.subarray(pkt.dataOffset),
    };
    const urgentPointer = readU16(bytes, 18);
    if (urgentPointer !== 0) repr.urgentPointer = urgentPointer;
    if (pkt.dataOffset > TCP_HEADER_LEN) {
      const reason = readOptions(bytes.subarray(TCP_HEADER_LEN, pkt.dataOffset), repr);
      if (reason !== null) return fail(reason);
    }
    return ok(repr);
  },

  /**
   * Writes the header, the options, the payload (copy skipped when it
   * already sits after the header in `buf`) and the checksum to
   * `buf[0..bufferLen(repr)]`.
   *
   * Options are laid out like Linux's `tcp_options_write`, each group padded
   * to 4 bytes: MSS; SACK-permitted and timestamps as SACKOK,TS or
   * NOP,NOP,TS (or NOP,NOP,SACKOK without timestamps); NOP,WS; NOP,NOP,SACK.
   *
   * @throws {RangeError} when the options exceed 40 bytes (at most 4 SACK
   *   blocks, 3 with timestamps), `buf` is too small or a field is out of
   *   range (window scale above 14 included).
   */
  emit(repr: TcpRepr, buf: Uint8Array, src: IpAddress, dst: IpAddress): void {
    const where = "TcpRepr.emit";
    const headerLen = TcpRepr.headerLen(repr);
    const len = headerLen + repr.payload.length;
    checkBuffer(where, buf, len);
    checkUint(where, "srcPort", repr.srcPort, 0xffff);
    checkUint(where, "dstPort", repr.dstPort, 0xffff);
    checkUint(where, "seqNumber", repr.seqNumber, 0xffffffff);
    checkUint(where, "ackNumber", repr.ackNumber, 0xffffffff);
    checkUint(where, "flags", repr.flags, 0xff);
    checkUint(where, "windowLen", repr.windowLen, 0xffff);
    const urgentPointer = repr.urgentPointer ?? 0;
    checkUint(where, "urgentPointer", urgentPointer, 0xffff);
    if (typeof src === "number") checkUint(where, "src", src, 0xffffffff);
    if (typeof dst === "number") checkUint(where, "dst", dst, 0xffffffff);
    if (typeof src !== typeof dst) {
      throw new RangeError(`${where}: src and dst must be of one IP family`);
    }
    if (repr.mss !== undefined) checkUint(where, "mss", repr.mss, 0xffff);
    if (repr.windowScale !== undefined) {
      checkUint(where, "windowScale", repr.windowScale, TCP_MAX_WINDOW_SCALE);
    }
    const ts = repr.timestamp;
    if (ts !== undefined) {
      checkUint(where, "timestamp.value", ts.value, 0xffffffff);
      checkUint(where, "timestamp.echo", ts.echo, 0xffffffff);
    }
    const blocks = repr.sackBlocks;
    if (blocks !== undefined) {
      for (let b = 0; b < blocks.length; b++) {
        checkUint(where, `sackBlocks[${b}].left`, blocks[b].left, 0xffffffff);
        checkUint(where, `sackBlocks[${b}].right`, blocks[b].right, 0xffffffff);
      }
    }

    // Payload first: it may be a view that overlaps the header's bytes.
    copyInto(buf, headerLen, repr.payload);
    writeU16(buf, 0, repr.srcPort);
    writeU16(buf, 2, repr.dstPort);
    writeU32(buf, 4, repr.seqNumber);
    writeU32(buf, 8, repr.ackNumber);
    buf[12] = (headerLen / 4) << 4;
    buf[13] = repr.flags;
    writeU16(buf, 14, repr.windowLen);
    buf[16] = 0;
    buf[17] = 0;
    writeU16(buf, 18, urgentPointer);

    let i = TCP_HEADER_LEN;
    if (repr.mss !== undefined) {
      buf[i] = TcpOptionKind.MSS;
      buf[i + 1] = 4;
      writeU16(buf, i + 2, repr.mss);
      i += 4;
    }
    if (ts !== undefined) {
      if (repr.sackPermitted) {
        buf[i] = TcpOptionKind.SACK_PERMITTED;
        buf[i + 1] = 2;
      } else {
        buf[i] = TcpOptionKind.NOP;
        buf[i + 1] = TcpOptionKind.NOP;
      }
      buf[i + 2] = TcpOptionKind.TIMESTAMP;
      buf[i + 3] = 10;
      writeU32(buf, i + 4, ts.value);
      writeU32(buf, i + 8, ts.echo);
      i += 12;
    } else if (repr.sackPermitted) {
      buf[i] = TcpOptionKind.NOP;
      buf[i + 1] = TcpOptionKind.NOP;
      buf[i + 2] = TcpOptionKind.SACK_PERMITTED;
      buf[i + 3] = 2;
      i += 4;
    }
    if (repr.windowScale !== undefined) {
      buf[i] = TcpOptionKind.NOP;
      buf[i + 1] = TcpOptionKind.WINDOW_SCALE;
      buf[i + 2] = 3;
      buf[i + 3] = repr.windowScale;
      i += 4;
    }
    if (blocks !== undefined && blocks.length > 0) {
      buf[i] = TcpOptionKind.NOP;
      buf[i + 1] = TcpOptionKind.NOP;
      buf[i + 2] = TcpOptionKind.SACK;
      buf[i + 3] = 2 + 8 * blocks.length;
      i += 4;
      for (let b = 0; b < blocks.length; b++) {
        writeU32(buf, i, blocks[b].left);
        writeU32(buf, i + 4, blocks[b].right);
        i += 8;
      }
    }

    const sum = checksumAdd(ipPseudoHeaderSum(src, dst, IpProtocol.TCP, len), buf, 0, len);
    writeU16(buf, 16, checksumFinish(sum));
  },

  /** The segment length: header, options and payload. */
  bufferLen(repr: TcpRepr): number {
    return TcpRepr.headerLen(repr) + repr.payload.length;
  },

  /**
   * The header length including the options {@link TcpRepr.emit} writes.
   *
   * @throws {RangeError} when the options exceed 40 bytes.
   */
  headerLen(repr: TcpRepr): number {
    const blocks = repr.sackBlocks;
    if (blocks !== undefined && blocks.length > 4) {
      throw new RangeError(`TcpRepr: at most 4 SACK blocks fit, got ${blocks.length}`);
    }
    const len = optionsLen(repr);
    if (len > TCP_MAX_OPTIONS_LEN) {
      throw new RangeError(
        `TcpRepr: options need ${len} bytes, more than the ${TCP_MAX_OPTIONS_LEN} that fit` +
          ` (${blocks?.length ?? 0} SACK blocks${repr.timestamp ? " with timestamps" : ""})`,
      );
    }
    return TCP_HEADER_LEN + len;
  },
};

const NO_PAYLOAD = new Uint8Array(0);

/**
 * A received TCP segment parsed into a reused object: the receive path's
 * {@linkcode TcpRepr}, without a result object, an options object or a
 * payload view per segment when there is no payload. Every field is always
 * present (options `undefined` when absent), so the object's shape never
 * changes; `timestamp` and `sackBlocks` are objects the segment owns and
 * overwrites on the next {@linkcode TcpSegment.parse}. Nothing may keep the
 * segment, its `timestamp`, `sackBlocks` or `payload` past the processing
 * of the segment: copy what must be kept (see {@linkcode cloneTcpRepr}).
 *
 * @example
 * ```ts
 * const seg = new TcpSegment();
 * const reason = seg.parse(ipPayload, src, dst); // undefined when valid
 * if (reason === undefined && seg.timestamp) console.log(seg.timestamp.value);
 * ```
 */
export class TcpSegment implements TcpRepr {
  /** Source port. */
  srcPort = 0;
  /** Destination port. */
  dstPort = 0;
  /** Sequence number (u32). */
  seqNumber = 0;
  /** Acknowledgment number (u32). */
  ackNumber = 0;
  /** Control bits. */
  flags = 0;
  /** Window field as received. */
  windowLen = 0;
  /** Urgent pointer when non-zero. */
  urgentPointer: number | undefined = undefined;
  /** MSS option. */
  mss: number | undefined = undefined;
  /** Window scale option (above 14 read as 14). */
  windowScale: number | undefined = undefined;
  /** SACK-permitted option. */
  sackPermitted: boolean | undefined = undefined;
  /** SACK blocks (owned by the segment, overwritten by the next parse). */
  sackBlocks: TcpSackBlock[] | undefined = undefined;
  /** Timestamps (owned by the segment, overwritten by the next parse). */
  timestamp: { value: number; echo: number } | undefined = undefined;
  /** The payload: a view into the parsed bytes, or a shared empty array. */
  payload: Uint8Array = NO_PAYLOAD;
  readonly #ts = { value: 0, echo: 0 };
  readonly #sack: TcpSackBlock[][] = [1, 2, 3, 4].map((n) =>
    Array.from({ length: n }, () => ({ left: 0, right: 0 }))
  );

  /**
   * Parses `bytes`, exactly the segment (the IP payload), sent from `src`
   * to `dst`: checks the layout and, unless `checksumVerified` (the link
   * vouched for it), the checksum, then decodes the header and options as
   * {@linkcode TcpRepr.parse} does. Returns a drop reason (`tcp_truncated`,
   * `tcp_bad_data_offset`, `tcp_bad_checksum`, `tcp_bad_option`), or
   * undefined when the segment is valid.
   */
  parse(
    bytes: Uint8Array,
    src: IpAddress,
    dst: IpAddress,
    checksumVerified = false,
  ): string | undefined {
    const len = bytes.length;
    if (len < TCP_HEADER_LEN) return "tcp_truncated";
    const dataOffset = (bytes[12] >>> 4) * 4;
    if (dataOffset < TCP_HEADER_LEN || dataOffset > len) return "tcp_bad_data_offset";
    if (!checksumVerified) {
      const sum = ipPseudoHeaderSum(src, dst, IpProtocol.TCP, len);
      if (checksumFinish(checksumAdd(sum, bytes)) !== 0) return "tcp_bad_checksum";
    }
    this.srcPort = (bytes[0] << 8) | bytes[1];
    this.dstPort = (bytes[2] << 8) | bytes[3];
    this.seqNumber = readU32(bytes, 4);
    this.ackNumber = readU32(bytes, 8);
    this.flags = bytes[13];
    this.windowLen = (bytes[14] << 8) | bytes[15];
    const urgent = (bytes[18] << 8) | bytes[19];
    this.urgentPointer = urgent === 0 ? undefined : urgent;
    this.mss = undefined;
    this.windowScale = undefined;
    this.sackPermitted = undefined;
    this.sackBlocks = undefined;
    this.timestamp = undefined;
    if (dataOffset > TCP_HEADER_LEN) {
      const reason = this.#options(bytes, TCP_HEADER_LEN, dataOffset);
      if (reason !== undefined) return reason;
    }
    this.payload = dataOffset === len ? NO_PAYLOAD : bytes.subarray(dataOffset);
    return undefined;
  }

  /** The option list at `b[i..end)`, decoded like {@linkcode parseTcpOptions}. */
  #options(b: Uint8Array, i: number, end: number): string | undefined {
    while (i < end) {
      const kind = b[i];
      if (kind === TcpOptionKind.END) break;
      if (kind === TcpOptionKind.NOP) {
        i++;
        continue;
      }
      if (i + 1 >= end) return "tcp_bad_option";
      const len = b[i + 1];
      if (len < 2 || i + len > end) return "tcp_bad_option";
      switch (kind) {
        case TcpOptionKind.MSS:
          if (len === 4) this.mss = (b[i + 2] << 8) | b[i + 3];
          break;
        case TcpOptionKind.WINDOW_SCALE:
          if (len === 3) this.windowScale = Math.min(b[i + 2], TCP_MAX_WINDOW_SCALE);
          break;
        case TcpOptionKind.SACK_PERMITTED:
          if (len === 2) this.sackPermitted = true;
          break;
        case TcpOptionKind.SACK:
          if (len >= 10 && (len - 2) % 8 === 0) {
            const n = (len - 2) / 8;
            // More than 4 blocks cannot fit in 40 bytes of options.
            const blocks = this.#sack[n - 1];
            for (let k = 0, p = i + 2; k < n; k++, p += 8) {
              blocks[k].left = readU32(b, p);
              blocks[k].right = readU32(b, p + 4);
            }
            this.sackBlocks = blocks;
          }
          break;
        case TcpOptionKind.TIMESTAMP:
          if (len === 10) {
            const ts = this.#ts;
            ts.value = readU32(b, i + 2);
            ts.echo = readU32(b, i + 6);
            this.timestamp = ts;
          }
          break;
      }
      i += len;
    }
    return undefined;
  }
}

/**
 * A copy of `repr` that shares nothing with it (options, SACK blocks and
 * payload copied): what to keep of a {@linkcode TcpSegment} past its
 * processing.
 *
 * @example
 * ```ts
 * const kept = cloneTcpRepr(seg); // survives the next seg.parse()
 * ```
 */
export function cloneTcpRepr(repr: TcpRepr): TcpRepr {
  const out: TcpRepr = {
    srcPort: repr.srcPort,
    dstPort: repr.dstPort,
    seqNumber: repr.seqNumber,
    ackNumber: repr.ackNumber,
    flags: repr.flags,
    windowLen: repr.windowLen,
    payload: repr.payload.slice(),
  };
  if (repr.urgentPointer !== undefined) out.urgentPointer = repr.urgentPointer;
  if (repr.mss !== undefined) out.mss = repr.mss;
  if (repr.windowScale !== undefined) out.windowScale = repr.windowScale;
  if (repr.sackPermitted !== undefined) out.sackPermitted = repr.sackPermitted;
  if (repr.sackBlocks !== undefined) {
    out.sackBlocks = repr.sackBlocks.map((b) => ({ left: b.left, right: b.right }));
  }
  if (repr.timestamp !== undefined) {
    out.timestamp = { value: repr.timestamp.value, echo: repr.timestamp.echo };
  }
  return out;
}

/**
 * Writes the fixed 20-byte TCP header (RFC 9293 §3.1) at `buf[at..at+20]`
 * with a zero checksum and urgent pointer, for a segment whose header
 * (options included) is `headerLen` bytes. No checks: the sending path
 * passes fields it keeps in range, and {@linkcode TcpRepr.emit} is the
 * checked way to build a segment.
 *
 * @example
 * ```ts
 * writeTcpHeader(frame, 34, 80, 40000, seq, ack, 32, TcpFlags.ACK, 512);
 * writeTcpTimestamps(frame, 34 + 20, tsVal, tsEcr);
 * writeTcpChecksum(frame, 34, 32 + payloadLen, pseudoSum);
 * ```
 */
export function writeTcpHeader(
  buf: Uint8Array,
  at: number,
  srcPort: number,
  dstPort: number,
  seq: number,
  ack: number,
  headerLen: number,
  flags: number,
  window: number,
): void {
  buf[at] = srcPort >>> 8;
  buf[at + 1] = srcPort & 0xff;
  buf[at + 2] = dstPort >>> 8;
  buf[at + 3] = dstPort & 0xff;
  buf[at + 4] = seq >>> 24;
  buf[at + 5] = (seq >>> 16) & 0xff;
  buf[at + 6] = (seq >>> 8) & 0xff;
  buf[at + 7] = seq & 0xff;
  buf[at + 8] = ack >>> 24;
  buf[at + 9] = (ack >>> 16) & 0xff;
  buf[at + 10] = (ack >>> 8) & 0xff;
  buf[at + 11] = ack & 0xff;
  buf[at + 12] = (headerLen >>> 2) << 4;
  buf[at + 13] = flags;
  buf[at + 14] = window >>> 8;
  buf[at + 15] = window & 0xff;
  buf[at + 16] = 0;
  buf[at + 17] = 0;
  buf[at + 18] = 0;
  buf[at + 19] = 0;
}

/**
 * Writes the 12-byte timestamps option as NOP, NOP, TS (RFC 7323 §3.2,
 * Appendix A's layout, as Linux sends it outside a SYN) at `buf[at..at+12]`.
 *
 * @example
 * ```ts
 * writeTcpTimestamps(frame, tcpAt + 20, tsVal, tsEcr);
 * ```
 */
export function writeTcpTimestamps(
  buf: Uint8Array,
  at: number,
  value: number,
  echo: number,
): void {
  buf[at] = TcpOptionKind.NOP;
  buf[at + 1] = TcpOptionKind.NOP;
  buf[at + 2] = TcpOptionKind.TIMESTAMP;
  buf[at + 3] = 10;
  writeU32(buf, at + 4, value);
  writeU32(buf, at + 8, echo);
}

/**
 * Writes a SACK option of `blocks` as NOP, NOP, SACK (RFC 2018 §3) at
 * `buf[at..]` and returns its length, `4 + 8 * blocks.length` (0 for none).
 *
 * @example
 * ```ts
 * const n = writeTcpSackBlocks(frame, tcpAt + 32, [{ left: 1000, right: 2448 }]); // 12
 * ```
 */
export function writeTcpSackBlocks(
  buf: Uint8Array,
  at: number,
  blocks: readonly TcpSackBlock[],
): number {
  const n = blocks.length;
  if (n === 0) return 0;
  buf[at] = TcpOptionKind.NOP;
  buf[at + 1] = TcpOptionKind.NOP;
  buf[at + 2] = TcpOptionKind.SACK;
  buf[at + 3] = 2 + 8 * n;
  let i = at + 4;
  for (let b = 0; b < n; b++) {
    writeU32(buf, i, blocks[b].left);
    writeU32(buf, i + 4, blocks[b].right);
    i += 8;
  }
  return 4 + 8 * n;
}

/**
 * Computes the TCP checksum (RFC 9293 §3.1) of the `len`-byte segment at
 * `buf[at..at+len]`, whose checksum field is zero, over the pseudo-header sum
 * `pseudoSum` (e.g. {@linkcode ipPseudoHeaderSum}), and stores it.
 *
 * @example
 * ```ts
 * writeTcpChecksum(frame, 34, segmentLen, ipv4PseudoHeaderSum(src, dst, 6, segmentLen));
 * ```
 */
export function writeTcpChecksum(
  buf: Uint8Array,
  at: number,
  len: number,
  pseudoSum: number,
): void {
  const sum = checksumFinish(checksumAdd(pseudoSum, buf, at, at + len));
  buf[at + 16] = sum >>> 8;
  buf[at + 17] = sum & 0xff;
}

/**
 * Whether sequence number `a` comes before `b`, modulo 2^32 (RFC 9293 §3.4).
 *
 * @example
 * ```ts
 * tcpSeqLt(0xfffffff0, 0x10); // true: 0x10 is 32 bytes later, across the wrap
 * ```
 */
export function tcpSeqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/**
 * Whether `a` is before or equal to `b`, modulo 2^32 (RFC 9293 §3.4).
 *
 * @example
 * ```ts
 * tcpSeqLe(5, 5); // true
 * ```
 */
export function tcpSeqLe(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}

/**
 * Whether `a` comes after `b`, modulo 2^32 (RFC 9293 §3.4).
 *
 * @example
 * ```ts
 * tcpSeqGt(0x10, 0xfffffff0); // true
 * ```
 */
export function tcpSeqGt(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

/**
 * Whether `a` is after or equal to `b`, modulo 2^32 (RFC 9293 §3.4).
 *
 * @example
 * ```ts
 * tcpSeqGe(0, 0xffffffff); // true
 * ```
 */
export function tcpSeqGe(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}

/**
 * `a + n` modulo 2^32, as an unsigned number.
 *
 * @example
 * ```ts
 * tcpSeqAdd(0xffffffff, 2); // 1
 * ```
 */
export function tcpSeqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/**
 * The signed distance `a - b` modulo 2^32, in -2^31..2^31-1.
 *
 * @example
 * ```ts
 * tcpSeqDiff(1, 0xffffffff); // 2
 * ```
 */
export function tcpSeqDiff(a: number, b: number): number {
  return (a - b) | 0;
}
