/**
 * ICMPv6 for one stack (RFC 4443): answers echo requests, hands NDP to the
 * {@linkcode NdpLayer}, accepts MLD and does nothing with it (the stack
 * listens to no group beyond its own), records path MTUs from validated
 * packet too big messages (RFC 8201), and sends the stack's own errors
 * under one rate limit, never about an error, to a multicast destination or
 * to a source that names no single node (RFC 4443 §2.4).
 *
 * @module
 */

import {
  ICMPV6_ERROR_MAX_LEN,
  ICMPV6_HEADER_LEN,
  Icmpv6Packet,
  Icmpv6Repr,
  Icmpv6Type,
  IpProtocol,
  IPV6_HEADER_LEN,
  IPV6_UNSPECIFIED,
  type Ipv6Address,
  Ipv6Packet,
  isIpv6MartianSource,
  isIpv6Multicast,
  isMldType,
  isNdpType,
  MldRepr,
} from "../wire/mod.ts";
import type { StackCounters } from "./counters.ts";
import type { Ipv6Output } from "./ipv6_output.ts";
import type { NdpIpHeader, NdpLayer } from "./ndp_layer.ts";
import type { PathMtuCache } from "./path_mtu_cache.ts";
import { TokenBucket } from "./token_bucket.ts";

/**
 * Reasons ICMPv6 drops received messages (the wire's `icmpv6_*`, `ndp_*`
 * and `mld_*` come on top).
 *
 * - `icmpv6_unhandled_type`: a type the stack does not act on: unknown
 *   informational messages (RFC 4443 §2.4 (b)), echo replies (the stack
 *   sends no requests), errors other than packet too big about its packets.
 * - `icmpv6_bad_quote`: an error quoting a packet the stack did not send.
 * - `icmpv6_unspecified_source`: from :: but neither a neighbour or router
 *   solicitation nor MLD, the only messages a node sends before it has an
 *   address (RFC 4861 §4.1, §4.3, RFC 3810 §5.2.13).
 */
export const ICMPV6_DROP_REASONS: readonly string[] = [
  "icmpv6_unhandled_type",
  "icmpv6_bad_quote",
  "icmpv6_unspecified_source",
];

/** The kinds of error the stack sends (RFC 4443 §3). */
export type Icmpv6ErrorRepr =
  | { type: "dest_unreachable" | "time_exceeded"; code: number }
  | { type: "param_problem"; code: number; pointer: number }
  | { type: "packet_too_big"; mtu: number };

/** What ICMPv6 needs. */
export interface Icmpv6LayerDeps {
  /** IPv6 output (its addressing names the stack's addresses). */
  out: Ipv6Output;
  /** NDP, for neighbour and router messages. */
  ndp: NdpLayer;
  /** Where packet too big messages are recorded. */
  pmtu: PathMtuCache;
  /** Errors sent per second, also the burst; 0 sends none. */
  errorsPerSecond: number;
  /** The stack's counters (`icmpv6_error_rate_limited`). */
  counters: StackCounters;
  /**
   * TCP, told of a packet too big about a segment it sent (RFC 8201 §5.4:
   * the transport lowers its MSS and sends again): the quoted packet's
   * addresses and ports, the quoted sequence number, and the MTU.
   */
  tcpTooBig?: (
    local: Ipv6Address,
    remote: Ipv6Address,
    localPort: number,
    remotePort: number,
    seq: number,
    mtu: number,
    now: number,
  ) => void;
  /**
   * Where a destination unreachable about a UDP datagram the stack sent goes
   * (the UDP layer: its connected endpoint hears of it, RFC 1122 §4.1.3.3);
   * without it such errors are `icmpv6_unhandled_type`.
   */
  udp?: Icmpv6UdpErrorSink;
}

/** Takes ICMPv6 errors about UDP datagrams (the stack's `UdpLayer` implements it). */
export interface Icmpv6UdpErrorSink {
  /** An error quoting a datagram from `localPort` to `remoteAddr:remotePort`; a drop reason or undefined. */
  icmpError(
    remoteAddr: Ipv6Address,
    remotePort: number,
    localPort: number,
    icmpCode: number,
  ): string | undefined;
}

/**
 * ICMPv6 in and out for one stack.
 *
 * @example
 * ```ts
 * const icmp = new Icmpv6Layer({ out, ndp, pmtu, errorsPerSecond: 100, counters });
 * icmp.input(ipHeader, icmpBytes, now); // answers an echo request
 * ```
 */
export class Icmpv6Layer {
  /** ICMPv6 errors this stack sent, and those the rate limit suppressed. */
  readonly errorStats = { sent: 0, rateLimited: 0 };
  #out: Ipv6Output;
  #ndp: NdpLayer;
  #pmtu: PathMtuCache;
  #bucket: TokenBucket;
  #counters: StackCounters;
  #tcpTooBig: Icmpv6LayerDeps["tcpTooBig"];
  #udp: Icmpv6UdpErrorSink | undefined;

  /** Creates the layer. */
  constructor(deps: Icmpv6LayerDeps) {
    this.#out = deps.out;
    this.#ndp = deps.ndp;
    this.#pmtu = deps.pmtu;
    this.#bucket = new TokenBucket(deps.errorsPerSecond);
    this.#counters = deps.counters;
    this.#tcpTooBig = deps.tcpTooBig;
    this.#udp = deps.udp;
  }

  /**
   * Handles an ICMPv6 message (`bytes`, after the extension headers) of a
   * packet from `ip.src` to `ip.dst`, one of the stack's addresses or
   * groups. Returns a drop reason, or undefined when handled.
   */
  input(ip: NdpIpHeader, bytes: Uint8Array, now: number): string | undefined {
    const parsed = Icmpv6Packet.parse(bytes);
    if (!parsed.ok) return parsed.reason;
    const pkt = parsed.value;
    if (!pkt.verifyChecksum(ip.src, ip.dst)) return "icmpv6_bad_checksum";
    const type = pkt.type;
    if (ip.src === IPV6_UNSPECIFIED) {
      const early = type === Icmpv6Type.NEIGHBOR_SOLICIT || type === Icmpv6Type.ROUTER_SOLICIT ||
        type === Icmpv6Type.MLD_REPORT || type === Icmpv6Type.MLDV2_REPORT;
      if (!early) return "icmpv6_unspecified_source";
    }
    if (isNdpType(type)) return this.#ndp.input(ip, pkt, now);
    if (isMldType(type)) {
      // RFC 3810: the stack listens to no group but its own; reports and queries change nothing.
      const mld = MldRepr.parse(pkt);
      return mld.ok ? undefined : mld.reason;
    }
    const repr = Icmpv6Repr.parse(pkt, ip.src, ip.dst);
    if (!repr.ok) return repr.reason;
    const msg = repr.value;
    switch (msg.type) {
      case "echo_request": {
        // RFC 4443 §4.2: also to a multicast address, from a unicast address of ours.
        const src = isIpv6Multicast(ip.dst) ? this.#out.sourceFor(ip.src) : ip.dst;
        const reply: Icmpv6Repr = {
          type: "echo_reply",
          ident: msg.ident,
          seqNo: msg.seqNo,
          data: msg.data,
        };
        this.#out.send(
          src,
          ip.src,
          IpProtocol.ICMPV6,
          Icmpv6Repr.bufferLen(reply),
          (buf) => Icmpv6Repr.emit(reply, buf, src, ip.src),
          now,
        );
        return undefined;
      }
      case "packet_too_big":
      case "dest_unreachable":
      case "time_exceeded":
      case "param_problem": {
        const q = Ipv6Packet.parseTruncated(msg.data);
        if (!q.ok || !this.#isOurs(q.value.src)) return "icmpv6_bad_quote";
        if (msg.type === "dest_unreachable") {
          // RFC 4443 §3.1, RFC 1122 §4.1.3.3: to the UDP endpoint that sent the
          // quoted datagram (the stack sends UDP without extension headers).
          const quoted = q.value.payload;
          if (this.#udp && q.value.nextHeader === IpProtocol.UDP && quoted.length >= 4) {
            const localPort = (quoted[0] << 8) | quoted[1];
            const remotePort = (quoted[2] << 8) | quoted[3];
            return this.#udp.icmpError(q.value.dst, remotePort, localPort, msg.code);
          }
        }
        if (msg.type !== "packet_too_big") return "icmpv6_unhandled_type";
        // RFC 8201 §4: an estimate, never below 1280, never raised by a message.
        this.#pmtu.record(q.value.dst, msg.mtu, now);
        const inner = q.value.payload;
        if (q.value.nextHeader === IpProtocol.TCP && inner.length >= 8 && this.#tcpTooBig) {
          const seq = ((inner[4] << 24) | (inner[5] << 16) | (inner[6] << 8) | inner[7]) >>> 0;
          const localPort = (inner[0] << 8) | inner[1];
          const remotePort = (inner[2] << 8) | inner[3];
          this.#tcpTooBig(q.value.src, q.value.dst, localPort, remotePort, seq, msg.mtu, now);
        }
        return undefined;
      }
      default:
        return "icmpv6_unhandled_type";
    }
  }

  /**
   * Sends an ICMPv6 error about `invoking` (the received IPv6 packet, cut at
   * its payload length) under the rules of RFC 4443 §2.4: never when the
   * packet went to a multicast group or a link-layer multicast or broadcast
   * (`linkMulticast`), except packet too big and a parameter problem about
   * an option (`allowMulticast`, §2.4 (e.3)); never to a source that names
   * no single node; quoting as much of the packet as keeps the error within
   * 1280 bytes (§2.4 (c)); at most `errorsPerSecond` (§2.4 (f)). The caller
   * never asks about an ICMPv6 error message (§2.4 (e.1)). The source is
   * `from` when given (the egress gateway reports a port unreachable from
   * the outside host it is about), else the packet's destination when it
   * is the stack's, else the stack's address for its source.
   */
  sendError(
    invoking: Uint8Array,
    error: Icmpv6ErrorRepr,
    now: number,
    linkMulticast: boolean,
    allowMulticast = false,
    from?: Ipv6Address,
  ): void {
    const p = Ipv6Packet.parseTruncated(invoking);
    if (!p.ok) return;
    const origSrc = p.value.src;
    const origDst = p.value.dst;
    if (!allowMulticast && (linkMulticast || isIpv6Multicast(origDst))) return;
    const a = this.#out.addressing;
    if (origSrc === IPV6_UNSPECIFIED || isIpv6MartianSource(origSrc, [a.address, a.linkLocal])) {
      return;
    }
    if (!this.#bucket.take(now)) {
      this.errorStats.rateLimited++;
      this.#counters.txDrop("icmpv6_error_rate_limited");
      return;
    }
    const maxQuote = ICMPV6_ERROR_MAX_LEN - IPV6_HEADER_LEN - ICMPV6_HEADER_LEN;
    const data = invoking.length > maxQuote ? invoking.subarray(0, maxQuote) : invoking;
    const repr: Icmpv6Repr = { ...error, data } as Icmpv6Repr;
    const src = from ?? (this.#isOurs(origDst) ? origDst : this.#out.sourceFor(origSrc));
    if (
      this.#out.send(
        src,
        origSrc,
        IpProtocol.ICMPV6,
        Icmpv6Repr.bufferLen(repr),
        (buf) => Icmpv6Repr.emit(repr, buf, src, origSrc),
        now,
      )
    ) {
      this.errorStats.sent++;
    }
  }

  #isOurs(addr: Ipv6Address): boolean {
    const a = this.#out.addressing;
    return addr === a.address || addr === a.linkLocal;
  }
}
