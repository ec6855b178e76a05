/**
 * Neighbor Discovery for IPv6 (RFC 4861 §4): router solicitation and
 * advertisement, neighbour solicitation and advertisement, redirect, and
 * the options source/target link-layer address (§4.6.1, for Ethernet
 * RFC 2464 §6), prefix information (§4.6.2), MTU (§4.6.4) and recursive DNS
 * server (RFC 8106 §5.1). Other options are skipped (RFC 4861 §4.6).
 *
 * These messages travel in ICMPv6: parse the {@linkcode Icmpv6Packet} and
 * verify its checksum first. The checks that need the IP header (hop limit
 * 255, source and destination rules of §6.1 and §7.1) are the stack's.
 *
 * @module
 */

import { readU16, readU32, writeU16, writeU32 } from "./_bytes.ts";
import { checkBuffer, checkMac, checkUint } from "./_validate.ts";
import type { MacAddress } from "./address.ts";
import { type Icmpv6Packet, Icmpv6Type, writeIcmpv6Checksum } from "./icmpv6.ts";
import { type Ipv6Address, readIpv6Unchecked, writeIpv6 } from "./ipv6_address.ts";
import { isIpv6Multicast } from "./ipv6_address_kinds.ts";
import { fail, ok, type ParseResult } from "./parse_result.ts";

/**
 * NDP option types (RFC 4861 §4.6, RFC 8106 §5.1).
 *
 * @example
 * ```ts
 * if (bytes[i] === NdpOptionType.SOURCE_LINK_ADDR) learn(bytes.subarray(i + 2, i + 8));
 * ```
 */
export const NdpOptionType = {
  SOURCE_LINK_ADDR: 1,
  TARGET_LINK_ADDR: 2,
  PREFIX_INFO: 3,
  REDIRECTED_HEADER: 4,
  MTU: 5,
  RDNSS: 25,
} as const;

/** Most options a message may carry before it is refused (`ndp_too_many_options`). */
export const NDP_MAX_OPTIONS = 64;

/**
 * A prefix information option (RFC 4861 §4.6.2).
 *
 * @example
 * ```ts
 * const p: NdpPrefixInfo = { prefix, prefixLength: 64, onLink: true, autonomous: true,
 *   validLifetime: 86400, preferredLifetime: 14400 };
 * ```
 */
export interface NdpPrefixInfo {
  /** The prefix (bits beyond `prefixLength` should be zero). */
  prefix: Ipv6Address;
  /** Prefix length, 0..128. */
  prefixLength: number;
  /** L flag: the prefix is on-link. */
  onLink: boolean;
  /** A flag: hosts may form addresses in it by SLAAC (RFC 4862 §5.5.3). */
  autonomous: boolean;
  /** Valid lifetime in seconds (0xffffffff: infinity). */
  validLifetime: number;
  /** Preferred lifetime in seconds. */
  preferredLifetime: number;
}

/**
 * A recursive DNS server option (RFC 8106 §5.1).
 *
 * @example
 * ```ts
 * const r: NdpRdnss = { lifetime: 1200, servers: [parseIpv6Address("fd00::2")] };
 * ```
 */
export interface NdpRdnss {
  /** Lifetime in seconds. */
  lifetime: number;
  /** The servers, at least one. */
  servers: Ipv6Address[];
}

/**
 * The options of an NDP message that netisle reads and writes. A parsed
 * message holds the first link-layer address option of each kind and every
 * prefix, MTU and RDNSS option; unknown options are skipped.
 *
 * @example
 * ```ts
 * const options: NdpOptions = { targetLinkAddr: mac };
 * ```
 */
export interface NdpOptions {
  /** Source link-layer address (an Ethernet MAC). */
  sourceLinkAddr?: MacAddress;
  /** Target link-layer address (an Ethernet MAC). */
  targetLinkAddr?: MacAddress;
  /** The link MTU. */
  mtu?: number;
  /** Prefix information options. */
  prefixes?: NdpPrefixInfo[];
  /** Recursive DNS server options. */
  rdnss?: NdpRdnss[];
}

/**
 * An NDP message as a plain object (RFC 4861 §4.1 to §4.5).
 *
 * @example
 * ```ts
 * const na: NdpRepr = { type: "neighbor_advert", router: true, solicited: true,
 *   override: true, target, options: { targetLinkAddr: mac } };
 * ```
 */
export type NdpRepr =
  | { type: "router_solicit"; options: NdpOptions }
  | {
    type: "router_advert";
    /** Hop limit hosts should use; 0: unspecified. */
    curHopLimit: number;
    /** M flag: addresses by DHCPv6. */
    managed: boolean;
    /** O flag: other configuration by DHCPv6. */
    other: boolean;
    /** Seconds this router is a default router; 0: not one. */
    routerLifetime: number;
    /** Reachable time in ms; 0: unspecified. */
    reachableTime: number;
    /** Retransmission timer in ms; 0: unspecified. */
    retransTimer: number;
    options: NdpOptions;
  }
  | { type: "neighbor_solicit"; target: Ipv6Address; options: NdpOptions }
  | {
    type: "neighbor_advert";
    /** R flag: the sender is a router. */
    router: boolean;
    /** S flag: in answer to a solicitation. */
    solicited: boolean;
    /** O flag: override a cached link-layer address. */
    override: boolean;
    target: Ipv6Address;
    options: NdpOptions;
  }
  | { type: "redirect"; target: Ipv6Address; destination: Ipv6Address; options: NdpOptions };

/**
 * Reasons {@link NdpRepr.parse} refuses a message (RFC 4861 §6.1, §7.1, §8.1).
 *
 * - `ndp_truncated`: shorter than its type's fixed part.
 * - `ndp_bad_code`: an ICMP code other than 0.
 * - `ndp_bad_option`: an option of length 0, running past the message, or a
 *   known option of the wrong length.
 * - `ndp_too_many_options`: more than {@linkcode NDP_MAX_OPTIONS}.
 * - `ndp_multicast_target`: a solicitation or advertisement for a multicast target.
 * - `ndp_not_ndp`: not an NDP type.
 *
 * @example
 * ```ts
 * const drops = new Map(NDP_WIRE_DROP_REASONS.map((r) => [r, 0]));
 * ```
 */
export const NDP_WIRE_DROP_REASONS: readonly string[] = Object.freeze([
  "ndp_truncated",
  "ndp_bad_code",
  "ndp_bad_option",
  "ndp_too_many_options",
  "ndp_multicast_target",
  "ndp_not_ndp",
]);

/** Offset of the options, by message type. */
function optionsOffset(type: number): number {
  switch (type) {
    case Icmpv6Type.ROUTER_SOLICIT:
      return 8;
    case Icmpv6Type.ROUTER_ADVERT:
      return 16;
    case Icmpv6Type.NEIGHBOR_SOLICIT:
    case Icmpv6Type.NEIGHBOR_ADVERT:
      return 24;
    case Icmpv6Type.REDIRECT:
      return 40;
    default:
      return -1;
  }
}

/**
 * Whether an ICMPv6 type is one of NDP's five (RFC 4861 §4).
 *
 * @example
 * ```ts
 * isNdpType(Icmpv6Type.NEIGHBOR_SOLICIT); // true
 * ```
 */
export function isNdpType(type: number): boolean {
  return optionsOffset(type) > 0;
}

function parseOptions(bytes: Uint8Array, start: number): ParseResult<NdpOptions> {
  const options: NdpOptions = {};
  let count = 0;
  for (let i = start; i < bytes.length;) {
    if (i + 2 > bytes.length) return fail("ndp_bad_option");
    const type = bytes[i];
    const olen = bytes[i + 1] * 8;
    if (olen === 0 || i + olen > bytes.length) return fail("ndp_bad_option");
    if (++count > NDP_MAX_OPTIONS) return fail("ndp_too_many_options");
    switch (type) {
      case NdpOptionType.SOURCE_LINK_ADDR:
      case NdpOptionType.TARGET_LINK_ADDR: {
        if (olen !== 8) return fail("ndp_bad_option");
        const mac = bytes.slice(i + 2, i + 8);
        if (type === NdpOptionType.SOURCE_LINK_ADDR) options.sourceLinkAddr ??= mac;
        else options.targetLinkAddr ??= mac;
        break;
      }
      case NdpOptionType.PREFIX_INFO:
        if (olen !== 32) return fail("ndp_bad_option");
        (options.prefixes ??= []).push({
          prefixLength: bytes[i + 2],
          onLink: (bytes[i + 3] & 0x80) !== 0,
          autonomous: (bytes[i + 3] & 0x40) !== 0,
          validLifetime: readU32(bytes, i + 4),
          preferredLifetime: readU32(bytes, i + 8),
          prefix: readIpv6Unchecked(bytes, i + 16),
        });
        break;
      case NdpOptionType.MTU:
        if (olen !== 8) return fail("ndp_bad_option");
        options.mtu ??= readU32(bytes, i + 4);
        break;
      case NdpOptionType.RDNSS: {
        // RFC 8106 §5.1: length 1 + 2n, n >= 1.
        if (olen < 24 || (olen / 8) % 2 !== 1) return fail("ndp_bad_option");
        const servers: Ipv6Address[] = [];
        for (let o = i + 8; o < i + olen; o += 16) servers.push(readIpv6Unchecked(bytes, o));
        (options.rdnss ??= []).push({ lifetime: readU32(bytes, i + 4), servers });
        break;
      }
      default:
        break; // RFC 4861 §4.6: unknown options are skipped
    }
    i += olen;
  }
  return ok(options);
}

function optionsLen(o: NdpOptions): number {
  let n = 0;
  if (o.sourceLinkAddr) n += 8;
  if (o.targetLinkAddr) n += 8;
  if (o.mtu !== undefined) n += 8;
  n += 32 * (o.prefixes?.length ?? 0);
  for (const r of o.rdnss ?? []) n += 8 + 16 * r.servers.length;
  return n;
}

function writeOptions(where: string, o: NdpOptions, buf: Uint8Array, start: number): void {
  let i = start;
  const lla = (type: number, mac: MacAddress) => {
    checkMac(where, type === 1 ? "sourceLinkAddr" : "targetLinkAddr", mac);
    buf[i] = type;
    buf[i + 1] = 1;
    buf.set(mac, i + 2);
    i += 8;
  };
  if (o.sourceLinkAddr) lla(NdpOptionType.SOURCE_LINK_ADDR, o.sourceLinkAddr);
  if (o.targetLinkAddr) lla(NdpOptionType.TARGET_LINK_ADDR, o.targetLinkAddr);
  if (o.mtu !== undefined) {
    checkUint(where, "mtu", o.mtu, 0xffffffff);
    buf[i] = NdpOptionType.MTU;
    buf[i + 1] = 1;
    writeU16(buf, i + 2, 0);
    writeU32(buf, i + 4, o.mtu);
    i += 8;
  }
  for (const p of o.prefixes ?? []) {
    checkUint(where, "prefixLength", p.prefixLength, 128);
    checkUint(where, "validLifetime", p.validLifetime, 0xffffffff);
    checkUint(where, "preferredLifetime", p.preferredLifetime, 0xffffffff);
    buf[i] = NdpOptionType.PREFIX_INFO;
    buf[i + 1] = 4;
    buf[i + 2] = p.prefixLength;
    buf[i + 3] = (p.onLink ? 0x80 : 0) | (p.autonomous ? 0x40 : 0);
    writeU32(buf, i + 4, p.validLifetime);
    writeU32(buf, i + 8, p.preferredLifetime);
    writeU32(buf, i + 12, 0);
    writeIpv6(buf, i + 16, p.prefix);
    i += 32;
  }
  for (const r of o.rdnss ?? []) {
    if (r.servers.length === 0 || r.servers.length > 127) {
      throw new RangeError(
        `${where}: an RDNSS option needs 1..127 servers, got ${r.servers.length}`,
      );
    }
    checkUint(where, "rdnss lifetime", r.lifetime, 0xffffffff);
    buf[i] = NdpOptionType.RDNSS;
    buf[i + 1] = 1 + 2 * r.servers.length;
    writeU16(buf, i + 2, 0);
    writeU32(buf, i + 4, r.lifetime);
    i += 8;
    for (const s of r.servers) {
      writeIpv6(buf, i, s);
      i += 16;
    }
  }
}

/**
 * Converts between an NDP message in an {@link Icmpv6Packet} and {@link NdpRepr}.
 *
 * @example
 * ```ts
 * const buf = new Uint8Array(NdpRepr.bufferLen(na));
 * NdpRepr.emit(na, buf, target, peer);
 * ```
 */
export const NdpRepr = {
  /**
   * Decodes an NDP message whose checksum the caller verified
   * ({@linkcode Icmpv6Packet.verifyChecksum}). Reasons: see
   * {@linkcode NDP_WIRE_DROP_REASONS}.
   */
  parse(pkt: Icmpv6Packet): ParseResult<NdpRepr> {
    const bytes = pkt.bytes;
    const type = bytes[0];
    const start = optionsOffset(type);
    if (start < 0) return fail("ndp_not_ndp");
    if (bytes.length < start) return fail("ndp_truncated");
    if (bytes[1] !== 0) return fail("ndp_bad_code");
    const parsed = parseOptions(bytes, start);
    if (!parsed.ok) return parsed;
    const options = parsed.value;
    switch (type) {
      case Icmpv6Type.ROUTER_SOLICIT:
        return ok({ type: "router_solicit", options });
      case Icmpv6Type.ROUTER_ADVERT:
        return ok({
          type: "router_advert",
          curHopLimit: bytes[4],
          managed: (bytes[5] & 0x80) !== 0,
          other: (bytes[5] & 0x40) !== 0,
          routerLifetime: readU16(bytes, 6),
          reachableTime: readU32(bytes, 8),
          retransTimer: readU32(bytes, 12),
          options,
        });
      case Icmpv6Type.NEIGHBOR_SOLICIT:
      case Icmpv6Type.NEIGHBOR_ADVERT: {
        const target = readIpv6Unchecked(bytes, 8);
        if (isIpv6Multicast(target)) return fail("ndp_multicast_target");
        if (type === Icmpv6Type.NEIGHBOR_SOLICIT) {
          return ok({ type: "neighbor_solicit", target, options });
        }
        return ok({
          type: "neighbor_advert",
          router: (bytes[4] & 0x80) !== 0,
          solicited: (bytes[4] & 0x40) !== 0,
          override: (bytes[4] & 0x20) !== 0,
          target,
          options,
        });
      }
      default:
        return ok({
          type: "redirect",
          target: readIpv6Unchecked(bytes, 8),
          destination: readIpv6Unchecked(bytes, 24),
          options,
        });
    }
  },

  /**
   * Writes the message (ICMPv6 header, body, options in the order SLLA,
   * TLLA, MTU, prefixes, RDNSS) to `buf[0..bufferLen(repr)]` with its
   * checksum over the pseudo-header of `src` and `dst`.
   *
   * @throws {RangeError} when `buf` is too small or a field is out of range;
   *   {TypeError} for a MAC that is not 6 bytes or an unknown `repr.type`.
   */
  emit(repr: NdpRepr, buf: Uint8Array, src: Ipv6Address, dst: Ipv6Address): void {
    const where = "NdpRepr.emit";
    const len = NdpRepr.bufferLen(repr);
    checkBuffer(where, buf, len);
    const msg = buf.subarray(0, len);
    msg.fill(0);
    let start: number;
    switch (repr.type) {
      case "router_solicit":
        msg[0] = Icmpv6Type.ROUTER_SOLICIT;
        start = 8;
        break;
      case "router_advert":
        checkUint(where, "curHopLimit", repr.curHopLimit, 0xff);
        checkUint(where, "routerLifetime", repr.routerLifetime, 0xffff);
        checkUint(where, "reachableTime", repr.reachableTime, 0xffffffff);
        checkUint(where, "retransTimer", repr.retransTimer, 0xffffffff);
        msg[0] = Icmpv6Type.ROUTER_ADVERT;
        msg[4] = repr.curHopLimit;
        msg[5] = (repr.managed ? 0x80 : 0) | (repr.other ? 0x40 : 0);
        writeU16(msg, 6, repr.routerLifetime);
        writeU32(msg, 8, repr.reachableTime);
        writeU32(msg, 12, repr.retransTimer);
        start = 16;
        break;
      case "neighbor_solicit":
        msg[0] = Icmpv6Type.NEIGHBOR_SOLICIT;
        writeIpv6(msg, 8, repr.target);
        start = 24;
        break;
      case "neighbor_advert":
        msg[0] = Icmpv6Type.NEIGHBOR_ADVERT;
        msg[4] = (repr.router ? 0x80 : 0) | (repr.solicited ? 0x40 : 0) |
          (repr.override ? 0x20 : 0);
        writeIpv6(msg, 8, repr.target);
        start = 24;
        break;
      case "redirect":
        msg[0] = Icmpv6Type.REDIRECT;
        writeIpv6(msg, 8, repr.target);
        writeIpv6(msg, 24, repr.destination);
        start = 40;
        break;
      default:
        throw new TypeError(
          `${where}: unknown NDP repr type "${(repr as { type: unknown }).type}"`,
        );
    }
    writeOptions(where, repr.options, msg, start);
    writeIcmpv6Checksum(msg, src, dst);
  },

  /** The message length: the type's fixed part plus the options. */
  bufferLen(repr: NdpRepr): number {
    const fixed = repr.type === "router_solicit"
      ? 8
      : repr.type === "router_advert"
      ? 16
      : repr.type === "redirect"
      ? 40
      : 24;
    return fixed + optionsLen(repr.options);
  },
};
