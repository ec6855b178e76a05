/**
 * ARP for IPv4 over Ethernet (RFC 826). Other hardware or protocol address
 * types are rejected.
 *
 * @module
 */

import type { Ipv4Address, MacAddress } from "./address.ts";
import { readU16, readU32, writeU16, writeU32 } from "./_bytes.ts";
import { checkBuffer, checkMac, checkUint } from "./_validate.ts";
import { EtherType } from "./ethernet.ts";
import { fail, ok, type ParseResult } from "./parse_result.ts";

/**
 * Length of an Ethernet/IPv4 ARP packet (RFC 826): 8 bytes of fixed header
 * and two (MAC, IPv4) address pairs.
 *
 * @example
 * ```ts
 * const frameLen = ETHERNET_HEADER_LEN + ARP_PACKET_LEN; // 42
 * ```
 */
export const ARP_PACKET_LEN = 28;

/**
 * ARP opcodes (RFC 826, "ar$op").
 *
 * @example
 * ```ts
 * if (pkt.operation === ArpOperation.REQUEST) reply();
 * ```
 */
export const ArpOperation = {
  REQUEST: 1,
  REPLY: 2,
} as const;

/** ar$hrd for Ethernet (RFC 826; IANA ARP hardware types). */
const HARDWARE_ETHERNET = 1;

/**
 * A checked view over an Ethernet/IPv4 ARP packet. After
 * {@link ArpPacket.parse} succeeds no accessor can fail. Bytes after the 28th
 * (Ethernet padding) are ignored.
 *
 * @example
 * ```ts
 * const result = ArpPacket.parse(frame.payload);
 * if (result.ok) console.log(formatIpv4Address(result.value.targetIp));
 * ```
 */
export class ArpPacket {
  /** The packet's bytes, including any trailing padding. */
  readonly bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /**
   * Checks the length and the address types (RFC 826 "Packet format").
   *
   * Reasons: `arp_truncated` (under 28 bytes), `arp_unsupported_hardware`
   * (hardware type not 1 or hardware length not 6),
   * `arp_unsupported_protocol` (protocol type not 0x0800 or protocol length
   * not 4). The operation is checked by {@link ArpRepr.parse}.
   */
  static parse(bytes: Uint8Array): ParseResult<ArpPacket> {
    if (bytes.length < ARP_PACKET_LEN) return fail("arp_truncated");
    if (readU16(bytes, 0) !== HARDWARE_ETHERNET || bytes[4] !== 6) {
      return fail("arp_unsupported_hardware");
    }
    if (readU16(bytes, 2) !== EtherType.IPV4 || bytes[5] !== 4) {
      return fail("arp_unsupported_protocol");
    }
    return ok(new ArpPacket(bytes));
  }

  /** Hardware type (always 1, Ethernet, after a successful parse). */
  get hardwareType(): number {
    return readU16(this.bytes, 0);
  }

  /** Protocol type (always 0x0800, IPv4, after a successful parse). */
  get protocolType(): number {
    return readU16(this.bytes, 2);
  }

  /** The opcode, e.g. {@link ArpOperation.REQUEST}; may be any u16. */
  get operation(): number {
    return readU16(this.bytes, 6);
  }

  /** Sender hardware address (a view of bytes 8..14). */
  get senderMac(): Uint8Array {
    return this.bytes.subarray(8, 14);
  }

  /** Sender protocol address. */
  get senderIp(): Ipv4Address {
    return readU32(this.bytes, 14);
  }

  /** Target hardware address (a view of bytes 18..24). */
  get targetMac(): Uint8Array {
    return this.bytes.subarray(18, 24);
  }

  /** Target protocol address. */
  get targetIp(): Ipv4Address {
    return readU32(this.bytes, 24);
  }
}

/**
 * An Ethernet/IPv4 ARP packet as a plain object.
 *
 * @example
 * ```ts
 * const request: ArpRepr = {
 *   operation: ArpOperation.REQUEST,
 *   senderMac: myMac, senderIp: myIp,
 *   targetMac: new Uint8Array(6), targetIp: parseIpv4Address("10.0.2.15"),
 * };
 * ```
 */
export interface ArpRepr {
  /** {@link ArpOperation.REQUEST} or {@link ArpOperation.REPLY}. */
  operation: number;
  /** Sender hardware address. */
  senderMac: MacAddress;
  /** Sender protocol address. */
  senderIp: Ipv4Address;
  /** Target hardware address (zeros in a request). */
  targetMac: MacAddress;
  /** Target protocol address. */
  targetIp: Ipv4Address;
}

/**
 * Converts between {@link ArpPacket} and {@link ArpRepr}.
 *
 * @example
 * ```ts
 * const buf = new Uint8Array(ArpRepr.bufferLen());
 * ArpRepr.emit(request, buf);
 * ```
 */
export const ArpRepr = {
  /**
   * Reads a parsed packet. The MAC addresses are copies, so the repr stays
   * valid when the packet's buffer is reused (the ARP cache keeps them).
   *
   * Reason: `arp_unsupported_operation` for opcodes other than request (1)
   * and reply (2).
   */
  parse(pkt: ArpPacket): ParseResult<ArpRepr> {
    const operation = pkt.operation;
    if (operation !== ArpOperation.REQUEST && operation !== ArpOperation.REPLY) {
      return fail("arp_unsupported_operation");
    }
    const bytes = pkt.bytes;
    return ok({
      operation,
      senderMac: bytes.slice(8, 14),
      senderIp: readU32(bytes, 14),
      targetMac: bytes.slice(18, 24),
      targetIp: readU32(bytes, 24),
    });
  },

  /**
   * Writes the 28-byte packet at `buf[0..28]`. The addresses may be views
   * into `buf` itself.
   *
   * @throws {RangeError} when `buf` is under 28 bytes or a field is out of
   *   range; {TypeError} when a MAC is not 6 bytes.
   */
  emit(repr: ArpRepr, buf: Uint8Array): void {
    const where = "ArpRepr.emit";
    checkBuffer(where, buf, ARP_PACKET_LEN);
    checkUint(where, "operation", repr.operation, 0xffff);
    checkMac(where, "senderMac", repr.senderMac);
    checkMac(where, "targetMac", repr.targetMac);
    checkUint(where, "senderIp", repr.senderIp, 0xffffffff);
    checkUint(where, "targetIp", repr.targetIp, 0xffffffff);
    // Snapshot addresses that alias `buf`, so that a reply can be built in
    // place from the request's own views (targetMac = request.senderMac).
    const senderMac = repr.senderMac.buffer === buf.buffer
      ? repr.senderMac.slice()
      : repr.senderMac;
    const targetMac = repr.targetMac.buffer === buf.buffer
      ? repr.targetMac.slice()
      : repr.targetMac;
    writeU16(buf, 0, HARDWARE_ETHERNET);
    writeU16(buf, 2, EtherType.IPV4);
    buf[4] = 6;
    buf[5] = 4;
    writeU16(buf, 6, repr.operation);
    buf.set(senderMac, 8);
    writeU32(buf, 14, repr.senderIp);
    buf.set(targetMac, 18);
    writeU32(buf, 24, repr.targetIp);
  },

  /** Always {@link ARP_PACKET_LEN} (28). */
  bufferLen(): number {
    return ARP_PACKET_LEN;
  },
};
