/**
 * IPv6 input for one stack (RFC 8200): validates a received packet, takes
 * only what is addressed to the stack (its two unicast addresses, the
 * all-nodes and all-routers groups, all MLDv2 routers, the solicited-node
 * groups of its addresses), refuses martian and off-link sources, walks
 * the extension headers within limits ({@linkcode walkIpv6Headers}), and
 * hands ICMPv6 to its layer. Fragments go through reassembly
 * (`ipv6_reassembler.ts`, RFC 8200 §4.5) and the reassembled packet is
 * walked again and dispatched like an unfragmented one; UDP goes to the
 * stack's UDP layer (its closed ports are answered with a port unreachable),
 * TCP to the stack's TCP layer; any other next header is answered with a
 * parameter problem (RFC 8200 §4, RFC 4443 §3.4).
 *
 * With egress, the stack is the link's router: a packet from an on-link
 * source to an off-link unicast address (not in the session's prefix, not
 * link-local) goes, as a router forwards it, to the transports' egress
 * entries ({@linkcode Ipv6Outside}) once its hop limit was decremented and
 * found above zero (RFC 8200 §3; else a time exceeded, RFC 4443 §3.3).
 *
 * @module
 */

import {
  Icmpv6DestUnreachableCode,
  Icmpv6ParamProblemCode,
  IPV6_ALL_MLDV2_ROUTERS,
  IPV6_ALL_NODES,
  IPV6_ALL_ROUTERS,
  IPV6_HEADER_LEN,
  IPV6_UNSPECIFIED,
  type Ipv6Address,
  ipv6BytesEqual,
  type Ipv6ExtLimits,
  Ipv6NextHeader,
  Ipv6Packet,
  ipv6SolicitedNode,
  isIpv6LinkLocal,
  isIpv6MartianSource,
  isIpv6Multicast,
  isIpv6Unicast,
  readIpv6Unchecked,
  walkIpv6Headers,
} from "../wire/mod.ts";
import type { Icmpv6Layer } from "./icmpv6_layer.ts";
import { finishTcpReset, tcpOverIpv6, udpOverIpv6 } from "./ipv6_closed_ports.ts";
import type { Ipv6Output } from "./ipv6_output.ts";
import type { Ipv6Reassembler } from "./ipv6_reassembler.ts";

/**
 * Reasons IPv6 input drops received packets (the wire's `ipv6_*`,
 * `ipv6_ext_*` and the transports' closed-port reasons come on top).
 *
 * - `ipv6_not_for_us`: to another unicast address, or a group the stack
 *   has not joined (with egress: to an on-link or non-unicast address that
 *   is not the stack's, or in a link-layer multicast frame).
 * - `ipv6_martian_source`: from a multicast, loopback, IPv4-mapped or
 *   IPv4-compatible address or one of the stack's own (RFC 4291, RFC 4942
 *   §2.1.6); from :: other than ICMPv6 (RFC 4861 §4.1, §4.3).
 * - `ipv6_off_link_source`: from a unicast address neither link-local nor
 *   in the session's prefix: nothing could answer it (no route beyond the link).
 * - `ipv6_no_next_header`: next header 59: nothing to deliver.
 * - `ipv6_unsupported_protocol`: another next header (answered with a
 *   parameter problem, code 1).
 * - `ipv6_hop_limit_exceeded`: with egress, a packet to an outside address
 *   whose hop limit would reach 0 here (answered with a time exceeded,
 *   code 0, RFC 4443 §3.3).
 * - `ipv6_source_beyond_scope`: with egress, a packet from a link-local
 *   source to an outside address, which a router never forwards (RFC 4291
 *   §2.5.6; answered with a destination unreachable, code 2, RFC 4443 §3.1).
 */
export const IPV6_DROP_REASONS: readonly string[] = [
  "ipv6_not_for_us",
  "ipv6_martian_source",
  "ipv6_off_link_source",
  "ipv6_no_next_header",
  "ipv6_unsupported_protocol",
  "ipv6_hop_limit_exceeded",
  "ipv6_source_beyond_scope",
];

/** A transport's entry for packets to addresses outside the session (egress). */
export type Ipv6OutsideInput = (
  src: Ipv6Address,
  dst: Ipv6Address,
  bytes: Uint8Array,
  now: number,
) => string | undefined;

/**
 * Where IPv6 packets to addresses outside the session go when the session
 * has egress: the transports' outside entries (as IPv4's `Ipv4Outside`). A
 * transport without one drops them (`egress_tcp_unsupported`); other next
 * headers (ICMPv6 included: echo is not relayed) are
 * `egress_unsupported_protocol`.
 */
export interface Ipv6Outside {
  /** TCP segments to outside addresses. */
  tcp?: Ipv6OutsideInput;
  /** UDP datagrams to outside addresses. */
  udp: Ipv6OutsideInput;
}

/** What IPv6 input needs. */
export interface Ipv6InputDeps {
  /** IPv6 output (its addressing names the stack's addresses; resets go out through it). */
  out: Ipv6Output;
  /** ICMPv6: messages to the stack, and the errors it sends. */
  icmp: Icmpv6Layer;
  /** Limits of the extension-header chain. */
  extLimits?: Ipv6ExtLimits;
  /** Reassembly of fragments (RFC 8200 §4.5). */
  reassembler: Ipv6Reassembler;
  /**
   * TCP over IPv6 (the stack's TCP layer): takes the segment and returns a
   * drop reason, or undefined. Without it every TCP port is closed (a RST).
   */
  tcp?: (
    src: Ipv6Address,
    dst: Ipv6Address,
    segment: Uint8Array,
    now: number,
  ) => string | undefined;
  /**
   * UDP over IPv6 (the stack's `UdpLayer`); without it every UDP port is
   * closed. Its `udp_port_closed` and `udp_peer_mismatch` are answered
   * with a port unreachable (RFC 4443 §3.1, RFC 1122 §4.1.3.1).
   */
  udp?: Ipv6UdpInput;
  /** Groups the stack joins beyond its own (ff02::1:2 while the DHCPv6 server runs). */
  groups?: readonly Ipv6Address[];
  /**
   * Egress: where unicast packets to off-link addresses go instead of being
   * dropped as `ipv6_not_for_us`. Absent when the session has no egress.
   */
  outside?: Ipv6Outside;
}

/** Where IPv6 input hands UDP (the stack's `UdpLayer` implements it). */
export interface Ipv6UdpInput {
  /** Takes a datagram (after the extension headers); returns a drop reason or undefined. */
  input(src: Ipv6Address, dst: Ipv6Address, bytes: Uint8Array, now: number): string | undefined;
}

/**
 * IPv6 in for one stack.
 *
 * @example
 * ```ts
 * const input = new Ipv6Input({ out, icmp });
 * const reason = input.input(ethernetPayload, now, linkMulticast); // undefined when handled
 * ```
 */
export class Ipv6Input {
  #out: Ipv6Output;
  #icmp: Icmpv6Layer;
  #limits: Ipv6ExtLimits | undefined;
  #reassembler: Ipv6Reassembler;
  #tcp: Ipv6InputDeps["tcp"];
  #udp: Ipv6UdpInput | undefined;
  #own: Ipv6Address[];
  /** The source of the last packet (see `input`). */
  #lastSrc: Ipv6Address = IPV6_UNSPECIFIED;
  #groups: Set<Ipv6Address>;
  #outside: Ipv6Outside | undefined;

  /** Creates the layer. */
  constructor(deps: Ipv6InputDeps) {
    this.#out = deps.out;
    this.#icmp = deps.icmp;
    this.#limits = deps.extLimits;
    this.#reassembler = deps.reassembler;
    this.#tcp = deps.tcp;
    this.#udp = deps.udp;
    this.#outside = deps.outside;
    const a = deps.out.addressing;
    this.#own = [a.address, a.linkLocal];
    this.#groups = new Set([
      IPV6_ALL_NODES,
      IPV6_ALL_ROUTERS,
      IPV6_ALL_MLDV2_ROUTERS,
      ipv6SolicitedNode(a.address),
      ipv6SolicitedNode(a.linkLocal),
      ...deps.groups ?? [],
    ]);
  }

  /** The groups the stack listens to (RFC 4291 §2.8 for a router). */
  get groups(): readonly Ipv6Address[] {
    return [...this.#groups];
  }

  /**
   * Handles one IPv6 packet (an Ethernet payload, possibly padded);
   * `linkMulticast` tells whether the frame went to a group MAC. Returns a
   * drop reason, or undefined when handled.
   */
  input(bytes: Uint8Array, now: number, linkMulticast: boolean): string | undefined {
    const parsed = Ipv6Packet.parse(bytes);
    if (!parsed.ok) return parsed.reason;
    const pkt = parsed.value;
    // The addresses as strings, reusing the last source's and the stack's own: no new
    // strings per packet of a flow.
    const bytes6 = pkt.bytes;
    const src = ipv6BytesEqual(bytes6, 8, this.#lastSrc)
      ? this.#lastSrc
      : (this.#lastSrc = readIpv6Unchecked(bytes6, 8));
    const own = this.#own[0];
    const dst = ipv6BytesEqual(bytes6, 24, own) ? own : readIpv6Unchecked(bytes6, 24);
    const multicast = isIpv6Multicast(dst);
    let outside = false;
    if (multicast ? !this.#groups.has(dst) : dst !== this.#own[0] && dst !== this.#own[1]) {
      if (!this.#isOutside(dst, linkMulticast)) return "ipv6_not_for_us";
      outside = true;
    }
    const unspecified = src === IPV6_UNSPECIFIED;
    if (!unspecified) {
      if (isIpv6MartianSource(src, this.#own)) return "ipv6_martian_source";
      if (!this.#out.isOnLink(src)) return "ipv6_off_link_source";
      // The hot path: TCP right behind the fixed header, to one of the stack's addresses.
      if (
        !outside && !multicast && pkt.bytes[6] === Ipv6NextHeader.TCP && this.#tcp !== undefined
      ) {
        return this.#tcp(src, dst, pkt.bytes.subarray(IPV6_HEADER_LEN), now);
      }
    } else if (outside) {
      return "ipv6_martian_source"; // RFC 4291 §2.5.2: never forwarded
    }
    if (outside && isIpv6LinkLocal(src)) {
      this.#icmp.sendError(
        pkt.bytes,
        { type: "dest_unreachable", code: Icmpv6DestUnreachableCode.BEYOND_SCOPE },
        now,
        linkMulticast,
      );
      return "ipv6_source_beyond_scope";
    }
    if (outside && pkt.hopLimit <= 1) {
      // RFC 8200 §3: a router that decrements the hop limit to zero discards the
      // packet and sends a time exceeded, code 0 (RFC 4443 §3.3), quoting it.
      this.#icmp.sendError(pkt.bytes, { type: "time_exceeded", code: 0 }, now, linkMulticast);
      return "ipv6_hop_limit_exceeded";
    }
    return this.#deliver(pkt, src, dst, now, linkMulticast, false, outside);
  }

  /**
   * Whether `dst` is an address outside the session that egress may take:
   * only with egress on, in a unicast frame, a unicast address (not ::,
   * loopback, IPv4-mapped or -compatible, multicast) that is off the link
   * (neither in the session's prefix nor link-local, RFC 4291 §2.5.6: a
   * router never forwards link-local destinations).
   */
  #isOutside(dst: Ipv6Address, linkMulticast: boolean): boolean {
    if (this.#outside === undefined || linkMulticast) return false;
    return isIpv6Unicast(dst) && !isIpv6LinkLocal(dst) && !this.#out.isOnLink(dst);
  }

  /**
   * Walks a packet that passed the address checks and hands it to its upper
   * layer; a fragment goes to reassembly, and the reassembled packet comes
   * back here (`reassembled`: a fragment header in it is refused).
   */
  #deliver(
    pkt: Ipv6Packet,
    src: Ipv6Address,
    dst: Ipv6Address,
    now: number,
    linkMulticast: boolean,
    reassembled: boolean,
    outside = false,
  ): string | undefined {
    const multicast = isIpv6Multicast(dst);
    const unspecified = src === IPV6_UNSPECIFIED;
    const walked = walkIpv6Headers(pkt, this.#limits);
    if (!walked.ok) {
      const pp = walked.paramProblem;
      if (pp && !unspecified) {
        this.#icmp.sendError(
          pkt.bytes,
          { type: "param_problem", code: pp.code, pointer: pp.pointer },
          now,
          linkMulticast,
          pp.code === Icmpv6ParamProblemCode.OPTION && !pp.unlessMulticast,
        );
      }
      return walked.reason;
    }
    const chain = walked.value;
    if (unspecified && (chain.fragment || chain.protocol !== Ipv6NextHeader.ICMPV6)) {
      return "ipv6_martian_source";
    }
    if (chain.fragment) {
      if (reassembled) return "ipv6_fragment_nested";
      const r = this.#reassembler.input(pkt, chain, linkMulticast, now);
      if (r.kind === "stored") return undefined;
      if (r.kind === "dropped") {
        const pp = r.paramProblem;
        if (pp) {
          this.#icmp.sendError(
            pkt.bytes,
            { type: "param_problem", code: pp.code, pointer: pp.pointer },
            now,
            linkMulticast,
          );
        }
        return r.reason;
      }
      const whole = Ipv6Packet.parse(r.packet);
      if (!whole.ok) return whole.reason;
      return this.#deliver(whole.value, src, dst, now, r.linkMulticast, true, outside);
    }
    if (outside) {
      const o = this.#outside!;
      switch (chain.protocol) {
        case Ipv6NextHeader.UDP:
          return o.udp(src, dst, chain.payload, now);
        case Ipv6NextHeader.TCP:
          return o.tcp ? o.tcp(src, dst, chain.payload, now) : "egress_tcp_unsupported";
        case Ipv6NextHeader.NO_NEXT_HEADER:
          return "ipv6_no_next_header";
        default:
          return "egress_unsupported_protocol";
      }
    }
    switch (chain.protocol) {
      case Ipv6NextHeader.ICMPV6:
        return this.#icmp.input({ src, dst, hopLimit: pkt.hopLimit }, chain.payload, now);
      case Ipv6NextHeader.UDP: {
        const reason = this.#udp
          ? this.#udp.input(src, dst, chain.payload, now)
          : udpOverIpv6(src, dst, chain.payload);
        if (reason === "udp_port_closed" || reason === "udp_peer_mismatch") {
          this.#icmp.sendError(
            pkt.bytes,
            { type: "dest_unreachable", code: Icmpv6DestUnreachableCode.PORT },
            now,
            linkMulticast,
          );
        }
        return reason;
      }
      case Ipv6NextHeader.TCP: {
        // RFC 9293 §3.9.1 (OPEN): no connection to or from a multicast address.
        if (this.#tcp !== undefined) {
          return multicast ? "tcp_broadcast" : this.#tcp(src, dst, chain.payload, now);
        }
        const r = tcpOverIpv6(src, dst, chain.payload);
        if (typeof r === "string") return r;
        if (!multicast && !linkMulticast) {
          this.#out.send(
            dst,
            src,
            Ipv6NextHeader.TCP,
            r.length,
            (buf) => finishTcpReset(r, buf, dst, src),
            now,
          );
        }
        return "tcp_port_closed";
      }
      case Ipv6NextHeader.NO_NEXT_HEADER:
        return "ipv6_no_next_header";
      default:
        this.#icmp.sendError(
          pkt.bytes,
          {
            type: "param_problem",
            code: Icmpv6ParamProblemCode.NEXT_HEADER,
            pointer: chain.protocolPointer,
          },
          now,
          linkMulticast,
        );
        return "ipv6_unsupported_protocol";
    }
  }
}
