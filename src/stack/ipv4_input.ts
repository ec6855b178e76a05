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
  DHCP_CLIENT_PORT,
  DHCP_SERVER_PORT,
  Icmpv4DestUnreachableCode,
  IpProtocol,
  IPV4_BROADCAST,
  type Ipv4Address,
  ipv4InSubnet,
  Ipv4Packet,
  Ipv4Repr,
  ipv4SubnetBroadcast,
  isIpv4MartianSource,
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
 */
export const IPV4_DROP_REASONS: readonly string[] = [
  "ipv4_not_for_us",
  "ipv4_martian_source",
  "ipv4_off_link_source",
  "ipv4_unsupported_protocol",
];

/** A transport above IPv4: returns a drop reason, or undefined when it took the datagram. */
export interface Ipv4Transport {
  input(src: Ipv4Address, dst: Ipv4Address, bytes: Uint8Array, now: number): string | undefined;
}

/** A transport's entry for datagrams to addresses outside the session (egress). */
export type Ipv4OutsideInput = (
  src: Ipv4Address,
  dst: Ipv4Address,
  bytes: Uint8Array,
  now: number,
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
   * frame. Returns a drop reason, or undefined when the packet was handled
   * (a stored fragment counts as handled).
   */
  input(bytes: Uint8Array, now: number, linkBroadcast: boolean): string | undefined {
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
    if (pkt.value.isFragment) {
      const r = this.#reassembler.input(pkt.value, linkBroadcast, now);
      if (r.kind === "stored") return undefined;
      if (r.kind === "dropped") return r.reason;
      // The reassembled datagram goes through the same demux as an unfragmented one.
      const whole = Ipv4Packet.parse(r.datagram);
      if (!whole.ok) return whole.reason;
      if (outside) return this.#demuxOutside(whole.value, ip, now);
      return this.#demux(whole.value, ip, broadcast, r.linkBroadcast, now);
    }
    if (outside) return this.#demuxOutside(pkt.value, ip, now);
    return this.#demux(pkt.value, ip, broadcast, linkBroadcast, now);
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

  /** Hands a whole datagram for an outside address to its transport's egress entry. */
  #demuxOutside(packet: Ipv4Packet, ip: Ipv4Repr, now: number): string | undefined {
    const outside = this.#outside!;
    switch (ip.protocol) {
      case IpProtocol.UDP:
        return outside.udp(ip.src, ip.dst, packet.payload, now);
      case IpProtocol.TCP:
        return outside.tcp
          ? outside.tcp(ip.src, ip.dst, packet.payload, now)
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
  ): string | undefined {
    const payload = packet.payload;
    switch (ip.protocol) {
      case IpProtocol.ICMP:
        return this.#icmp.input(ip, payload, broadcast, now);
      case IpProtocol.TCP:
        return this.#tcp.input(ip.src, ip.dst, payload, now);
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
