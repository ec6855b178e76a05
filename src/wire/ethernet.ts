/**
 * Ethernet II frames (IEEE 802.3 §3.2 with an EtherType, as carried by TAP
 * devices and the tunnel): destination MAC, source MAC, EtherType, payload.
 * No preamble and no frame check sequence.
 *
 * @module
 */

import type { MacAddress } from "./address.ts";
import { checkBuffer, checkMac, checkUint } from "./_validate.ts";
import { readU16, writeU16 } from "./_bytes.ts";
import { fail, ok, type ParseResult } from "./parse_result.ts";

/**
 * Length of an Ethernet II header: two MAC addresses and the EtherType.
 *
 * @example
 * ```ts
 * const ipOffset = ETHERNET_HEADER_LEN; // 14
 * ```
 */
export const ETHERNET_HEADER_LEN = 14;

/**
 * The smallest Ethernet frame without FCS (64 bytes on the wire minus the 4
 * FCS bytes); shorter frames are padded with zeros by the sender
 * (IEEE 802.3 §3.2.7). Padding is optional on a tunnel or TAP.
 *
 * @example
 * ```ts
 * const frameLen = Math.max(ETHERNET_MIN_FRAME_LEN, ETHERNET_HEADER_LEN + 28); // 60
 * ```
 */
export const ETHERNET_MIN_FRAME_LEN = 60;

/**
 * EtherType values of the protocols netisle knows (IEEE registry).
 *
 * @example
 * ```ts
 * if (frame.etherType === EtherType.ARP) handleArp(frame.payload);
 * ```
 */
export const EtherType = {
  IPV4: 0x0800,
  ARP: 0x0806,
  IPV6: 0x86dd,
} as const;

/** Smallest value that is an EtherType rather than an 802.3 length. */
const MIN_ETHER_TYPE = 0x0600;

/**
 * A checked view over an Ethernet II frame. After {@link EthernetFrame.parse}
 * succeeds no accessor can fail; accessors return `subarray` views that alias
 * the frame's bytes.
 *
 * @example
 * ```ts
 * const result = EthernetFrame.parse(bytes);
 * if (result.ok && result.value.etherType === EtherType.IPV4) {
 *   const ip = result.value.payload;
 * }
 * ```
 */
export class EthernetFrame {
  /** The whole frame, header and payload. */
  readonly bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /**
   * Checks that `bytes` holds an Ethernet II header.
   *
   * Reasons: `ethernet_truncated` (under 14 bytes), `ethernet_not_ethernet_ii`
   * (the type field is below 0x0600, i.e. an IEEE 802.3 length).
   */
  static parse(bytes: Uint8Array): ParseResult<EthernetFrame> {
    if (bytes.length < ETHERNET_HEADER_LEN) return fail("ethernet_truncated");
    if (readU16(bytes, 12) < MIN_ETHER_TYPE) return fail("ethernet_not_ethernet_ii");
    return ok(new EthernetFrame(bytes));
  }

  /** Destination MAC address (a view of bytes 0..6). */
  get dst(): Uint8Array {
    return this.bytes.subarray(0, 6);
  }

  /** Source MAC address (a view of bytes 6..12). */
  get src(): Uint8Array {
    return this.bytes.subarray(6, 12);
  }

  /** The EtherType, e.g. {@link EtherType.IPV4}. */
  get etherType(): number {
    return readU16(this.bytes, 12);
  }

  /** Everything after the header, including any padding (a view). */
  get payload(): Uint8Array {
    return this.bytes.subarray(ETHERNET_HEADER_LEN);
  }
}

/**
 * An Ethernet II header as a plain object.
 *
 * @example
 * ```ts
 * const repr: EthernetRepr = { dst: BROADCAST_MAC, src: myMac, etherType: EtherType.ARP };
 * ```
 */
export interface EthernetRepr {
  /** Destination MAC address. */
  dst: MacAddress;
  /** Source MAC address. */
  src: MacAddress;
  /** EtherType, at least 0x0600. */
  etherType: number;
}

/**
 * Converts between {@link EthernetFrame} and {@link EthernetRepr}.
 *
 * @example
 * ```ts
 * const frame = new Uint8Array(EthernetRepr.bufferLen(payload.length));
 * EthernetRepr.emit({ dst, src, etherType: EtherType.IPV4 }, frame);
 * frame.set(payload, ETHERNET_HEADER_LEN);
 * ```
 */
export const EthernetRepr = {
  /**
   * Reads the header of a parsed frame. The MAC addresses are copies, so the
   * repr stays valid when the frame's buffer is reused.
   */
  parse(frame: EthernetFrame): EthernetRepr {
    const bytes = frame.bytes;
    return { dst: bytes.slice(0, 6), src: bytes.slice(6, 12), etherType: readU16(bytes, 12) };
  },

  /**
   * Writes the 14 header bytes at `buf[0..14]`; the payload is the caller's.
   * The addresses may be views into `buf` itself.
   *
   * @throws {RangeError} when `buf` is under 14 bytes or the EtherType is not
   *   a u16; {TypeError} when a MAC is not 6 bytes.
   */
  emit(repr: EthernetRepr, buf: Uint8Array): void {
    checkBuffer("EthernetRepr.emit", buf, ETHERNET_HEADER_LEN);
    checkMac("EthernetRepr.emit", "dst", repr.dst);
    checkMac("EthernetRepr.emit", "src", repr.src);
    checkUint("EthernetRepr.emit", "etherType", repr.etherType, 0xffff);
    // Snapshot addresses that alias `buf`, so that a reply can be built in
    // place from a frame's own views (e.g. dst = frame.src, src = frame.dst).
    const dst = repr.dst.buffer === buf.buffer ? repr.dst.slice() : repr.dst;
    const src = repr.src.buffer === buf.buffer ? repr.src.slice() : repr.src;
    buf.set(dst, 0);
    buf.set(src, 6);
    writeU16(buf, 12, repr.etherType);
  },

  /** The frame length for a payload of `payloadLen` bytes: `14 + payloadLen`. */
  bufferLen(payloadLen: number): number {
    return ETHERNET_HEADER_LEN + payloadLen;
  },
};
