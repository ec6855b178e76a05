/**
 * IPv4 input for one stack (RFC 791, RFC 1122 §3.2.1): validates a received
 * packet, refuses martian and off-link sources, sends fragments through
 * reassembly, and hands whole datagrams to ICMP, TCP or UDP; with egress,
 * datagrams to addresses outside the session go to the transports' egress
 * entries instead of being dropped. It answers what
 * no transport takes with the ICMP error RFC 1122 asks for (port or protocol
 * unreachable), never about a broadcast.
 *
 * @module
 */

import {
  checksumAdd,
  checksumFinish,
  DHCP_CLIENT_PORT,
  DHCP_SERVER_PORT,
  Icmpv4DestUnreachableCode,
  Icmpv4TimeExceededCode,
  IpProtocol,
  IPV4_BROADCAST,
  IPV4_HEADER_LEN,
  type Ipv4Address,
  ipv4InSubnet,
  ipv4Netmask,
  Ipv4Packet,
  Ipv4Repr,
  ipv4SubnetBroadcast,
  isIpv4MartianSource,
  isIpv4Unicast,
} from "../wire/mod.ts";
import type { IcmpLayer } from "./icmp_layer.ts";
import type { Ipv4Reassembler } from "./ipv4_reassembler.ts";

/**
 * Reasons IPv4 input drops received packets (the wire parser's reasons and
 * the reassembler's come on top).
 *
 * - `ipv4_not_for_us`: to another address than ours or a broadcast address
 *   (and, with egress, not to an outside unicast address either).
 * - `ipv4_martian_source`: from an address that names no host here
 *   (RFC 1122 §3.2.1.3, RFC 1812 §5.3.7): 0.0.0.0/8, loopback, multicast,
 *   class E and the limited broadcast, the subnet's network and broadcast
 *   addresses, or the stack's own address. The one exception is a DHCP
 *   client without an address: 0.0.0.0, UDP port 68 to 67 (RFC 2131 §4.1).
 * - `ipv4_off_link_source`: from a unicast address outside the subnet. The
 *   stack has no route but the link, so nothing could answer it: the strict
 *   reverse-path check of RFC 3704 §2.2.
 * - `ipv4_unsupported_protocol`: a transport other than ICMP, TCP and UDP.
 * - `ipv4_ttl_exceeded`: to an outside address (egress) with a TTL of 1 or
 *   less: answered with a time exceeded from the stack (RFC 1812 §5.3.1).
 */
export const IPV4_DROP_REASONS: readonly string[] = [
  "ipv4_not_for_us",
  "ipv4_martian_source",
  "ipv4_off_link_source",
  "ipv4_unsupported_protocol",
  "ipv4_ttl_exceeded",
];

/** What {@linkcode Ipv4Input}'s data path answers for a packet it leaves to the general path. */
const NOT_FAST = "ipv4_not_fast";

/** A transport above IPv4: returns a drop reason, or undefined when it took the datagram. */
export interface Ipv4Transport {
  /** `offload` is the frame's `FrameOffload` metadata (a checksum the link vouched for). */
  input(
    src: Ipv4Address,
    dst: Ipv4Address,
    bytes: Uint8Array,
    now: number,
    offload?: number,
  ): string | undefined;
}

/** A transport's entry for datagrams to addresses outside the session (egress). */
export type Ipv4OutsideInput = (
  src: Ipv4Address,
  dst: Ipv4Address,
  bytes: Uint8Array,
  now: number,
  offload: number,
) => string | undefined;

/**
 * Where datagrams to addresses outside the session go when the session has
 * egress: the transports' outside entries. A transport without one drops
 * them (`egress_tcp_unsupported`); other protocols are
 * `egress_unsupported_protocol`.
 */
export interface Ipv4Outside {
  /** TCP segments to outside addresses. */
  tcp?: Ipv4OutsideInput;
  /** UDP datagrams to outside addresses. */
  udp: Ipv4OutsideInput;
}

/** What IPv4 input needs. */
export interface Ipv4InputDeps {
  /** The stack's address and the on-link prefix. */
  ipv4: { address: Ipv4Address; prefixLength: number };
  /** Reassembly of fragments. */
  reassembler: Ipv4Reassembler;
  /** ICMP: messages to us, and the errors we send. */
  icmp: IcmpLayer;
  /** TCP. */
  tcp: Ipv4Transport;
  /** UDP (its `udp_port_closed` and `udp_peer_mismatch` are answered with port unreachable). */
  udp: Ipv4Transport;
  /**
   * Egress: where unicast datagrams to addresses outside the subnet go
   * instead of being dropped as `ipv4_not_for_us`. Absent when the session
   * has no egress.
   */
  outside?: Ipv4Outside;
}

/**
 * IPv4 input for one stack.
 *
 * @example
 * ```ts
 * const input = new Ipv4Input({ ipv4, reassembler, icmp, tcp, udp });
 * const reason = input.input(ipPacket, now, false); // undefined when delivered
 * ```
 */
export class Ipv4Input {
  #address: Ipv4Address;
  #prefixLength: number;
  #mask: number;
  #broadcast: Ipv4Address;
  #reassembler: Ipv4Reassembler;
  #icmp: IcmpLayer;
  #tcp: Ipv4Transport;
  #udp: Ipv4Transport;
  #outside: Ipv4Outside | undefined;

  /** Creates the input path. */
  constructor(deps: Ipv4InputDeps) {
    this.#address = deps.ipv4.address;
    this.#prefixLength = deps.ipv4.prefixLength;
    this.#mask = ipv4Netmask(deps.ipv4.prefixLength);
    this.#broadcast = ipv4SubnetBroadcast(deps.ipv4.address, deps.ipv4.prefixLength);
    this.#reassembler = deps.reassembler;
    this.#icmp = deps.icmp;
    this.#tcp = deps.tcp;
    this.#udp = deps.udp;
    this.#outside = deps.outside;
  }

  /**
   * RFC 1122 §3.2.1: validates a received packet (header, checksum,
   * destination, source), reassembles fragments, and demultiplexes the whole
   * datagram. Packets from martian or off-link sources are refused before
   * they reach reassembly or a transport: no connection, datagram or reply
   * comes from them. `linkBroadcast` tells whether it came in a link-layer broadcast
   * frame; `offload` is what the link said of it (`FrameOffload`). Returns a drop reason, or undefined when the packet was handled
   * (a stored fragment counts as handled).
   */
  input(bytes: Uint8Array, now: number, linkBroadcast: boolean, offload = 0): string | undefined {
    const fast = this.#fastTcp(bytes, now, linkBroadcast, offload);
    if (fast !== NOT_FAST) return fast;
    const pkt = Ipv4Packet.parse(bytes);
    if (!pkt.ok) return pkt.reason;
    const parsed = Ipv4Repr.parse(pkt.value);
    if (!parsed.ok) return parsed.reason;
    const ip = parsed.value;
    const ours = this.#address;
    const broadcast = ip.dst === IPV4_BROADCAST || ip.dst === this.#broadcast;
    const outside = ip.dst !== ours && !broadcast && this.#isOutside(ip.dst, linkBroadcast);
    if (ip.dst !== ours && !broadcast && !outside) return "ipv4_not_for_us";
    if (isIpv4MartianSource(ip.src, ours, this.#prefixLength)) {
      // A DHCP client without an address talks to us only, never outside.
      if (outside || !isDhcpClientWithoutAddress(pkt.value)) return "ipv4_martian_source";
    } else if (!ipv4InSubnet(ip.src, ours, this.#prefixLength)) {
      return "ipv4_off_link_source";
    }
    if (outside && ip.ttl <= 1) {
      // RFC 1812 §5.3.1: a router that would forward a datagram whose TTL reaches 0 drops it
      // and sends a time exceeded (RFC 792), from its own address: traceroute's first hop.
      this.#icmp.sendError(
        pkt.value.bytes,
        ip.src,
        Icmpv4TimeExceededCode.TTL_EXCEEDED,
        now,
        "time_exceeded",
      );
      return "ipv4_ttl_exceeded";
    }
    if (pkt.value.isFragment) {
      const r = this.#reassembler.input(pkt.value, linkBroadcast, now);
      if (r.kind === "stored") return undefined;
      if (r.kind === "dropped") return r.reason;
      // The reassembled datagram goes through the same demux as an unfragmented one.
      const whole = Ipv4Packet.parse(r.datagram);
      if (!whole.ok) return whole.reason;
      if (outside) return this.#demuxOutside(whole.value, ip, now, 0);
      return this.#demux(whole.value, ip, broadcast, r.linkBroadcast, now, 0);
    }
    if (outside) return this.#demuxOutside(pkt.value, ip, now, offload);
    return this.#demux(pkt.value, ip, broadcast, linkBroadcast, now, offload);
  }

  /**
   * The data path: a valid, unfragmented TCP segment to our address from an
   * on-link host, with a 20-byte header, in a unicast frame, checked in place
   * and handed to TCP without building the objects the general path does.
   * Anything else (or anything invalid) returns {@linkcode NOT_FAST} for the
   * general path, which then decides exactly as it would have.
   */
  #fastTcp(
    bytes: Uint8Array,
    now: number,
    linkBroadcast: boolean,
    offload: number,
  ): string | undefined {
    if (bytes.length < IPV4_HEADER_LEN || bytes[0] !== 0x45 || bytes[9] !== IpProtocol.TCP) {
      return NOT_FAST;
    }
    const total = (bytes[2] << 8) | bytes[3];
    // MF clear and offset zero; DF may be set.
    if (linkBroadcast || total < IPV4_HEADER_LEN || total > bytes.length) return NOT_FAST;
    if (((bytes[6] & 0x3f) | bytes[7]) !== 0) return NOT_FAST;
    const dst = ((bytes[16] << 24) | (bytes[17] << 16) | (bytes[18] << 8) | bytes[19]) >>> 0;
    if (dst !== this.#address) return NOT_FAST;
    const src = ((bytes[12] << 24) | (bytes[13] << 16) | (bytes[14] << 8) | bytes[15]) >>> 0;
    // An on-link host: in the subnet, unicast, not us, not the network or broadcast address
    // (what !isIpv4MartianSource && ipv4InSubnet say, with the mask computed once).
    const mask = this.#mask;
    if (
      ((src ^ dst) & mask) !== 0 || src === dst || !isIpv4Unicast(src) ||
      (mask !== 0xfffffffe && mask !== 0xffffffff &&
        ((src & ~mask) === 0 || (src | mask) >>> 0 === 0xffffffff)) ||
      checksumFinish(checksumAdd(0, bytes, 0, IPV4_HEADER_LEN)) !== 0
    ) {
      return NOT_FAST;
    }
    return this.#tcp.input(src, dst, bytes.subarray(IPV4_HEADER_LEN, total), now, offload);
  }

  /**
   * Whether `dst` is an address outside the session that egress may take:
   * only with egress on, in a unicast frame, and never an on-link address,
   * a multicast or class E address, 0.0.0.0/8 or loopback (RFC 1812
   * §5.3.7: a router does not forward to martian destinations).
   */
  #isOutside(dst: Ipv4Address, linkBroadcast: boolean): boolean {
    if (this.#outside === undefined || linkBroadcast) return false;
    const top = dst >>> 24;
    if (top === 0 || top === 127 || top >= 224) return false;
    return !ipv4InSubnet(dst, this.#address, this.#prefixLength);
  }

  /**
   * Hands a whole datagram for an outside address to its transport's egress
   * entry, with what the link said of it (`offload`: a GSO packet, a
   * checksum it vouched for).
   */
  #demuxOutside(
    packet: Ipv4Packet,
    ip: Ipv4Repr,
    now: number,
    offload: number,
  ): string | undefined {
    const outside = this.#outside!;
    switch (ip.protocol) {
      case IpProtocol.UDP:
        return outside.udp(ip.src, ip.dst, packet.payload, now, offload);
      case IpProtocol.TCP:
        return outside.tcp
          ? outside.tcp(ip.src, ip.dst, packet.payload, now, offload)
          : "egress_tcp_unsupported";
      default:
        return "egress_unsupported_protocol";
    }
  }

  /** Hands a whole (unfragmented or reassembled) datagram to its protocol. */
  #demux(
    packet: Ipv4Packet,
    ip: Ipv4Repr,
    broadcast: boolean,
    linkBroadcast: boolean,
    now: number,
    offload: number,
  ): string | undefined {
    const payload = packet.payload;
    switch (ip.protocol) {
      case IpProtocol.ICMP:
        return this.#icmp.input(ip, payload, broadcast, now);
      case IpProtocol.TCP:
        return this.#tcp.input(ip.src, ip.dst, payload, now, offload);
      case IpProtocol.UDP: {
        const r = this.#udp.input(ip.src, ip.dst, payload, now);
        // RFC 1122 §4.1.3.1: port unreachable; §3.2.2: never about a broadcast.
        if (
          (r === "udp_port_closed" || r === "udp_peer_mismatch") && !broadcast && !linkBroadcast
        ) {
          this.#icmp.sendError(packet.bytes, ip.src, Icmpv4DestUnreachableCode.PORT, now);
        }
        return r;
      }
      default:
        // RFC 1122 §3.2.2.1: protocol unreachable for a transport we do not implement.
        if (!broadcast && !linkBroadcast) {
          this.#icmp.sendError(packet.bytes, ip.src, Icmpv4DestUnreachableCode.PROTOCOL, now);
        }
        return "ipv4_unsupported_protocol";
    }
  }
}

/**
 * Whether `p` is what a DHCP client sends before it has an address: from
 * 0.0.0.0, an unfragmented UDP datagram from port 68 to port 67 (RFC 2131
 * §4.1, RFC 1122 §3.2.1.3 (a): 0.0.0.0 is a source only while a host learns
 * its address).
 */
function isDhcpClientWithoutAddress(p: Ipv4Packet): boolean {
  const udp = p.payload;
  return p.src === 0 && p.protocol === IpProtocol.UDP && !p.isFragment && udp.length >= 4 &&
    ((udp[0] << 8) | udp[1]) === DHCP_CLIENT_PORT && ((udp[2] << 8) | udp[3]) === DHCP_SERVER_PORT;
}
