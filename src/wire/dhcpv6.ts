/**
 * DHCPv6 client/server messages (RFC 8415 §8) and the options netisle's
 * stateless server reads and writes: Client and Server Identifier (§21.2,
 * §21.3), IA_NA / IA_TA / IA_PD (only their presence), Option Request
 * (§21.7), Elapsed Time (§21.9), Information Refresh Time (§21.23) and DNS
 * Recursive Name Server (RFC 3646 §3). Other options are skipped on parse;
 * relay messages (§9) are not parsed.
 *
 * Parsing walks the options within limits and never throws: a message
 * whose options run past its end, or hold more than
 * {@linkcode DHCPV6_MAX_OPTIONS}, is rejected with a reason.
 *
 * @module
 */

import { readU16, readU32, writeU16, writeU32 } from "./_bytes.ts";
import { checkBuffer, checkMac, checkUint } from "./_validate.ts";
import type { MacAddress } from "./address.ts";
import {
  type Ipv6Address,
  isIpv6Address,
  parseIpv6Address,
  readIpv6Unchecked,
  writeIpv6,
} from "./ipv6_address.ts";
import { fail, ok, type ParseResult } from "./parse_result.ts";

/** The UDP port clients listen on (RFC 8415 §7.2). */
export const DHCPV6_CLIENT_PORT = 546;
/** The UDP port servers and relay agents listen on (RFC 8415 §7.2). */
export const DHCPV6_SERVER_PORT = 547;
/** All_DHCP_Relay_Agents_and_Servers, ff02::1:2 (RFC 8415 §7.1): where clients send. */
export const DHCPV6_ALL_RELAY_AGENTS_AND_SERVERS: Ipv6Address = parseIpv6Address("ff02::1:2");
/** Length of the fixed part of a client/server message: msg-type and transaction-id (§8). */
export const DHCPV6_HEADER_LEN = 4;
/** Length of an option's code and length fields (§21.1). */
export const DHCPV6_OPTION_HEADER_LEN = 4;
/** The most options {@linkcode Dhcpv6Packet.parse} walks before it gives up. */
export const DHCPV6_MAX_OPTIONS = 64;
/** The longest DUID (RFC 8415 §11.1: at most 130 octets with its type code). */
export const DHCPV6_MAX_DUID_LEN = 130;

/**
 * DHCPv6 message types (RFC 8415 §7.3).
 *
 * @example
 * ```ts
 * if (pkt.msgType === Dhcpv6MessageType.INFORMATION_REQUEST) reply(pkt);
 * ```
 */
export const Dhcpv6MessageType = {
  SOLICIT: 1,
  ADVERTISE: 2,
  REQUEST: 3,
  CONFIRM: 4,
  RENEW: 5,
  REBIND: 6,
  REPLY: 7,
  RELEASE: 8,
  DECLINE: 9,
  RECONFIGURE: 10,
  INFORMATION_REQUEST: 11,
  RELAY_FORW: 12,
  RELAY_REPL: 13,
} as const;

/**
 * DHCPv6 option codes used here (RFC 8415 §21, RFC 3646 §3-4).
 *
 * @example
 * ```ts
 * const wantsDns = repr.oro?.includes(Dhcpv6Option.DNS_SERVERS);
 * ```
 */
export const Dhcpv6Option = {
  CLIENTID: 1,
  SERVERID: 2,
  IA_NA: 3,
  IA_TA: 4,
  ORO: 6,
  ELAPSED_TIME: 8,
  DNS_SERVERS: 23,
  DOMAIN_LIST: 24,
  IA_PD: 25,
  INFORMATION_REFRESH_TIME: 32,
} as const;

/**
 * Reasons the DHCPv6 parsers reject a message.
 *
 * - `dhcpv6_truncated`: under 4 bytes.
 * - `dhcpv6_relay_unsupported`: a Relay-forward or Relay-reply (§9).
 * - `dhcpv6_bad_option`: an option runs past the message, or one this codec
 *   reads has a length its definition forbids (an empty or over-long DUID, an
 *   odd ORO, DNS servers not a multiple of 16 bytes...).
 * - `dhcpv6_too_many_options`: more than {@linkcode DHCPV6_MAX_OPTIONS}.
 */
export const DHCPV6_DROP_REASONS: readonly string[] = [
  "dhcpv6_truncated",
  "dhcpv6_relay_unsupported",
  "dhcpv6_bad_option",
  "dhcpv6_too_many_options",
];

/**
 * A DUID-LL (RFC 8415 §11.4): type 3, hardware type 1 (Ethernet), the MAC.
 *
 * @example
 * ```ts
 * dhcpv6DuidLl(parseMacAddress("02:00:00:00:00:01")); // 00 03 00 01 02 00 00 00 00 01
 * ```
 */
export function dhcpv6DuidLl(mac: MacAddress): Uint8Array {
  checkMac("dhcpv6DuidLl", "mac", mac);
  const duid = new Uint8Array(10);
  duid.set([0, 3, 0, 1]);
  duid.set(mac, 4);
  return duid;
}

/**
 * A checked view over a DHCPv6 client/server message (RFC 8415 §8): after
 * {@link Dhcpv6Packet.parse} succeeds every option lies inside the message
 * and no accessor can fail.
 *
 * @example
 * ```ts
 * const pkt = Dhcpv6Packet.parse(udp.payload);
 * if (pkt.ok) console.log(pkt.value.msgType, pkt.value.transactionId);
 * ```
 */
export class Dhcpv6Packet {
  /** The whole message. */
  readonly bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /**
   * Checks the header and walks the options (§21.1).
   *
   * Reasons: `dhcpv6_truncated`, `dhcpv6_relay_unsupported`,
   * `dhcpv6_bad_option` (an option runs past the end),
   * `dhcpv6_too_many_options`.
   */
  static parse(bytes: Uint8Array): ParseResult<Dhcpv6Packet> {
    if (bytes.length < DHCPV6_HEADER_LEN) return fail("dhcpv6_truncated");
    const type = bytes[0];
    if (type === Dhcpv6MessageType.RELAY_FORW || type === Dhcpv6MessageType.RELAY_REPL) {
      return fail("dhcpv6_relay_unsupported");
    }
    let at = DHCPV6_HEADER_LEN;
    let count = 0;
    while (at < bytes.length) {
      if (++count > DHCPV6_MAX_OPTIONS) return fail("dhcpv6_too_many_options");
      if (bytes.length - at < DHCPV6_OPTION_HEADER_LEN) return fail("dhcpv6_bad_option");
      const len = readU16(bytes, at + 2);
      at += DHCPV6_OPTION_HEADER_LEN + len;
      if (at > bytes.length) return fail("dhcpv6_bad_option");
    }
    return ok(new Dhcpv6Packet(bytes));
  }

  /** msg-type (see {@linkcode Dhcpv6MessageType}). */
  get msgType(): number {
    return this.bytes[0];
  }

  /** transaction-id, 24 bits. */
  get transactionId(): number {
    return (this.bytes[1] << 16) | (this.bytes[2] << 8) | this.bytes[3];
  }

  /** The options area (a view). */
  get options(): Uint8Array {
    return this.bytes.subarray(DHCPV6_HEADER_LEN);
  }

  /** The options in order, each as its code and a view of its data. */
  *eachOption(): Generator<{ code: number; data: Uint8Array }> {
    const b = this.bytes;
    let at = DHCPV6_HEADER_LEN;
    while (at < b.length) {
      const len = readU16(b, at + 2);
      const start = at + DHCPV6_OPTION_HEADER_LEN;
      yield { code: readU16(b, at), data: b.subarray(start, start + len) };
      at = start + len;
    }
  }
}

/**
 * A DHCPv6 client/server message as a plain object: the options this
 * codec knows, absent ones `undefined`. Views (`clientId`, `serverId`)
 * point into the parsed message: copy them to keep them.
 *
 * @example
 * ```ts
 * const reply: Dhcpv6Repr = {
 *   msgType: Dhcpv6MessageType.REPLY,
 *   transactionId: request.transactionId,
 *   clientId: request.clientId,
 *   serverId: dhcpv6DuidLl(mac),
 *   dnsServers: [parseIpv6Address("fd00::2")],
 * };
 * ```
 */
export interface Dhcpv6Repr {
  /** msg-type (see {@linkcode Dhcpv6MessageType}). */
  msgType: number;
  /** transaction-id, 24 bits. */
  transactionId: number;
  /** Client Identifier (option 1): the client's DUID. */
  clientId?: Uint8Array;
  /** Server Identifier (option 2): the server's DUID. */
  serverId?: Uint8Array;
  /**
   * Whether the message holds an IA_NA, IA_TA or IA_PD (options 3, 4, 25);
   * emitted as one empty IA_NA with IAID 0.
   */
  hasIa?: boolean;
  /** Option Request (option 6): the option codes the client asks for. */
  oro?: number[];
  /** Elapsed Time (option 8), in hundredths of a second. */
  elapsedTime?: number;
  /** DNS Recursive Name Server (option 23, RFC 3646 §3). */
  dnsServers?: Ipv6Address[];
  /** Information Refresh Time (option 32), in seconds. */
  informationRefreshTime?: number;
}

function duidOk(data: Uint8Array): boolean {
  return data.length >= 2 && data.length <= DHCPV6_MAX_DUID_LEN;
}

/**
 * Converts between {@link Dhcpv6Packet} and {@link Dhcpv6Repr}.
 *
 * @example
 * ```ts
 * const buf = new Uint8Array(Dhcpv6Repr.bufferLen(reply));
 * Dhcpv6Repr.emit(reply, buf);
 * ```
 */
export const Dhcpv6Repr = {
  /**
   * Reads the options this codec knows; the first of a repeated option wins,
   * unknown ones are skipped. Reason: `dhcpv6_bad_option` for a known
   * option of a length its definition forbids.
   */
  parse(pkt: Dhcpv6Packet): ParseResult<Dhcpv6Repr> {
    const repr: Dhcpv6Repr = { msgType: pkt.msgType, transactionId: pkt.transactionId };
    for (const { code, data } of pkt.eachOption()) {
      const len = data.length;
      switch (code) {
        case Dhcpv6Option.CLIENTID:
          if (!duidOk(data)) return fail("dhcpv6_bad_option");
          repr.clientId ??= data;
          break;
        case Dhcpv6Option.SERVERID:
          if (!duidOk(data)) return fail("dhcpv6_bad_option");
          repr.serverId ??= data;
          break;
        case Dhcpv6Option.IA_NA:
        case Dhcpv6Option.IA_TA:
        case Dhcpv6Option.IA_PD:
          repr.hasIa = true;
          break;
        case Dhcpv6Option.ORO:
          if (len % 2 !== 0) return fail("dhcpv6_bad_option");
          if (repr.oro === undefined) {
            const codes: number[] = [];
            for (let i = 0; i < len; i += 2) codes.push(readU16(data, i));
            repr.oro = codes;
          }
          break;
        case Dhcpv6Option.ELAPSED_TIME:
          if (len !== 2) return fail("dhcpv6_bad_option");
          repr.elapsedTime ??= readU16(data, 0);
          break;
        case Dhcpv6Option.DNS_SERVERS:
          if (len % 16 !== 0) return fail("dhcpv6_bad_option");
          if (repr.dnsServers === undefined) {
            const servers: Ipv6Address[] = [];
            for (let i = 0; i < len; i += 16) servers.push(readIpv6Unchecked(data, i));
            repr.dnsServers = servers;
          }
          break;
        case Dhcpv6Option.INFORMATION_REFRESH_TIME:
          if (len !== 4) return fail("dhcpv6_bad_option");
          repr.informationRefreshTime ??= readU32(data, 0);
          break;
      }
    }
    return ok(repr);
  },

  /** The message length `repr` emits to. */
  bufferLen(repr: Dhcpv6Repr): number {
    const h = DHCPV6_OPTION_HEADER_LEN;
    let len = DHCPV6_HEADER_LEN;
    if (repr.clientId) len += h + repr.clientId.length;
    if (repr.serverId) len += h + repr.serverId.length;
    if (repr.hasIa) len += h + 12;
    if (repr.oro) len += h + 2 * repr.oro.length;
    if (repr.elapsedTime !== undefined) len += h + 2;
    if (repr.dnsServers) len += h + 16 * repr.dnsServers.length;
    if (repr.informationRefreshTime !== undefined) len += h + 4;
    return len;
  },

  /**
   * Writes the message: header, then Client Identifier, Server Identifier,
   * IA_NA, Option Request, Elapsed Time, DNS servers, Information Refresh
   * Time, those present.
   *
   * @throws {RangeError} when `buf` is too small, a field is out of range
   *   (msg-type a u8, transaction-id 24 bits, a DUID of 2..130 bytes, option
   *   codes u16, at most 4095 DNS servers) or a DNS server is no IPv6 address.
   */
  emit(repr: Dhcpv6Repr, buf: Uint8Array): void {
    const where = "Dhcpv6Repr.emit";
    checkUint(where, "msgType", repr.msgType, 0xff);
    checkUint(where, "transactionId", repr.transactionId, 0xffffff);
    for (
      const [name, duid] of [["clientId", repr.clientId], ["serverId", repr.serverId]] as const
    ) {
      if (duid !== undefined && !duidOk(duid)) {
        throw new RangeError(
          `${where}: ${name} must be a DUID of 2..${DHCPV6_MAX_DUID_LEN} bytes, got ${duid.length}`,
        );
      }
    }
    for (const c of repr.oro ?? []) checkUint(where, "oro code", c, 0xffff);
    if (repr.oro && repr.oro.length > 0x7fff) {
      throw new RangeError(`${where}: oro holds ${repr.oro.length} codes, over 32767`);
    }
    if (repr.elapsedTime !== undefined) {
      checkUint(where, "elapsedTime", repr.elapsedTime, 0xffff);
    }
    if (repr.informationRefreshTime !== undefined) {
      checkUint(where, "informationRefreshTime", repr.informationRefreshTime, 0xffffffff);
    }
    const servers = repr.dnsServers ?? [];
    if (servers.length > 4095) {
      throw new RangeError(`${where}: dnsServers holds ${servers.length} addresses, over 4095`);
    }
    for (const s of servers) {
      if (!isIpv6Address(s)) throw new RangeError(`${where}: dnsServers holds a non-IPv6 ${s}`);
    }
    const len = Dhcpv6Repr.bufferLen(repr);
    checkBuffer(where, buf, len);
    buf[0] = repr.msgType;
    buf[1] = repr.transactionId >>> 16;
    buf[2] = repr.transactionId >>> 8;
    buf[3] = repr.transactionId;
    let at = DHCPV6_HEADER_LEN;
    const option = (code: number, dataLen: number): number => {
      writeU16(buf, at, code);
      writeU16(buf, at + 2, dataLen);
      const start = at + DHCPV6_OPTION_HEADER_LEN;
      at = start + dataLen;
      return start;
    };
    if (repr.clientId) buf.set(repr.clientId, option(Dhcpv6Option.CLIENTID, repr.clientId.length));
    if (repr.serverId) buf.set(repr.serverId, option(Dhcpv6Option.SERVERID, repr.serverId.length));
    if (repr.hasIa) buf.fill(0, option(Dhcpv6Option.IA_NA, 12), at);
    if (repr.oro) {
      const start = option(Dhcpv6Option.ORO, 2 * repr.oro.length);
      repr.oro.forEach((c, i) => writeU16(buf, start + 2 * i, c));
    }
    if (repr.elapsedTime !== undefined) {
      writeU16(buf, option(Dhcpv6Option.ELAPSED_TIME, 2), repr.elapsedTime);
    }
    if (repr.dnsServers) {
      const start = option(Dhcpv6Option.DNS_SERVERS, 16 * servers.length);
      servers.forEach((s, i) => writeIpv6(buf, start + 16 * i, s));
    }
    if (repr.informationRefreshTime !== undefined) {
      writeU32(
        buf,
        option(Dhcpv6Option.INFORMATION_REFRESH_TIME, 4),
        repr.informationRefreshTime,
      );
    }
  },
};
