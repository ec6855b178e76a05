/**
 * ICMP for one stack (RFC 792, RFC 1122 §3.2.2): answers echo requests,
 * hands validated destination-unreachable messages to the transport that
 * sent the quoted datagram, and sends the stack's own errors (port and
 * protocol unreachable, reassembly time exceeded) under one rate limit.
 *
 * @module
 */

import {
  Icmpv4DestUnreachableCode,
  Icmpv4Packet,
  Icmpv4Repr,
  IpProtocol,
  IPV4_HEADER_LEN,
  type Ipv4Address,
  Ipv4Packet,
  type Ipv4Repr,
} from "../wire/mod.ts";
import type { StackCounters } from "./counters.ts";
import type { Ipv4Output } from "./ipv4_output.ts";
import { TokenBucket } from "./token_bucket.ts";
import type { TcpLayer } from "./tcp/mod.ts";
import type { UdpLayer } from "./udp/mod.ts";

/**
 * Reasons ICMP drops received messages.
 *
 * - `icmp_broadcast_echo_ignored`: an echo request to a broadcast address
 *   (RFC 1122 §3.2.2.6 allows ignoring it; we do, against smurf attacks).
 * - `icmp_unhandled_type`: a type or code the stack does not act on.
 * - `icmp_bad_quote`: an error quoting a datagram we did not send.
 * - `icmp_udp_unmatched`: an error about a UDP datagram no connected
 *   endpoint sent.
 */
export const ICMP_DROP_REASONS: readonly string[] = [
  "icmp_broadcast_echo_ignored",
  "icmp_unhandled_type",
  "icmp_bad_quote",
  "icmp_udp_unmatched",
];

/**
 * The transports ICMP reports errors about our own datagrams to: TCP for
 * fragmentation needed (RFC 5927 §4.1, RFC 1191), UDP for destination
 * unreachable (RFC 1122 §4.1.3.3).
 */
export interface IcmpErrorSinks {
  /** TCP. */
  tcp: Pick<TcpLayer, "fragmentationNeeded">;
  /** UDP. */
  udp: Pick<UdpLayer, "icmpError">;
}

/** What ICMP needs. */
export interface IcmpLayerDeps {
  /** The stack's address (quoted datagrams must come from it). */
  address: Ipv4Address;
  /** The link's IP MTU (bounds the quote of an error). */
  mtu: number;
  /** Errors sent per second, also the burst; 0 sends none. */
  errorsPerSecond: number;
  /** IPv4 output. */
  out: Ipv4Output;
  /** Where errors about our own datagrams go. */
  sinks: IcmpErrorSinks;
  /** The stack's counters (`icmp_error_rate_limited`). */
  counters: StackCounters;
}

/** The kinds of error the stack sends. */
export type IcmpErrorType = "dest_unreachable" | "time_exceeded";

/**
 * ICMP in and out for one stack.
 *
 * @example
 * ```ts
 * const icmp = new IcmpLayer({ address, mtu: 1500, errorsPerSecond: 100, out, sinks, counters });
 * icmp.input(ipHeader, icmpBytes, false, now); // answers an echo request
 * icmp.sendError(datagram, src, Icmpv4DestUnreachableCode.PORT, now);
 * ```
 */
export class IcmpLayer {
  /** ICMP error messages this stack sent, and those the rate limit suppressed. */
  readonly errorStats = { sent: 0, rateLimited: 0 };
  #address: Ipv4Address;
  #mtu: number;
  #bucket: TokenBucket;
  #out: Ipv4Output;
  #sinks: IcmpErrorSinks;
  #counters: StackCounters;

  /** Creates the layer. */
  constructor(deps: IcmpLayerDeps) {
    this.#address = deps.address;
    this.#mtu = deps.mtu;
    this.#bucket = new TokenBucket(deps.errorsPerSecond);
    this.#out = deps.out;
    this.#sinks = deps.sinks;
    this.#counters = deps.counters;
  }

  /**
   * RFC 792 echo (RFC 1122 §3.2.2.6: echo to a broadcast may be ignored) and
   * destination unreachable. `broadcast` tells whether the datagram went to a
   * broadcast address. Returns a drop reason, or undefined when handled.
   */
  input(ip: Ipv4Repr, bytes: Uint8Array, broadcast: boolean, now: number): string | undefined {
    const pkt = Icmpv4Packet.parse(bytes);
    if (!pkt.ok) return pkt.reason;
    const parsed = Icmpv4Repr.parse(pkt.value);
    if (!parsed.ok) return parsed.reason;
    const icmp = parsed.value;
    if (icmp.type === "dest_unreachable") {
      return this.#inputError(icmp.code, icmp.nextHopMtu, icmp.data, now);
    }
    if (icmp.type !== "echo_request") return "icmp_unhandled_type";
    if (broadcast) return "icmp_broadcast_echo_ignored";
    const reply: Icmpv4Repr = {
      type: "echo_reply",
      ident: icmp.ident,
      seqNo: icmp.seqNo,
      data: icmp.data,
    };
    this.#out.send(
      ip.src,
      IpProtocol.ICMP,
      Icmpv4Repr.bufferLen(reply),
      (buf) => Icmpv4Repr.emit(reply, buf),
      now,
      { fragment: true },
    );
    return undefined;
  }

  /**
   * Sends an ICMP error of `type` with `code` about `original` (the received
   * IP datagram, cut at its total length) to `src` (RFC 792). The quote is
   * the original IP header and as much of its data as keeps the error within
   * 576 bytes and the MTU (RFC 1812 §4.3.2.3; Linux does the same), at least
   * the 8 bytes RFC 1122 §3.2.2 asks for when the MTU allows. Never to a
   * source that does not name one host (RFC 1122 §3.2.2: zero, loopback,
   * class E, broadcast, multicast); the caller leaves out datagrams to a
   * broadcast address. At most `errorsPerSecond`, from a token bucket shared
   * by every kind of error (RFC 1812 §4.3.2.8). `from` is the error's source
   * address, the stack's own by default (the egress gateway reports a port
   * unreachable from the outside host it is about).
   */
  sendError(
    original: Uint8Array,
    src: Ipv4Address,
    code: number,
    now: number,
    type: IcmpErrorType = "dest_unreachable",
    from?: Ipv4Address,
  ): void {
    if (src === 0 || src >>> 24 === 127 || src >>> 28 >= 0xe) return;
    if (!this.#bucket.take(now)) {
      this.errorStats.rateLimited++;
      this.#counters.txDrop("icmp_error_rate_limited");
      return;
    }
    const maxQuote = Math.min(576, this.#mtu) - IPV4_HEADER_LEN - 8;
    const data = original.length > maxQuote ? original.subarray(0, maxQuote) : original;
    const repr: Icmpv4Repr = { type, code, data };
    if (
      this.#out.send(
        src,
        IpProtocol.ICMP,
        Icmpv4Repr.bufferLen(repr),
        (buf) => Icmpv4Repr.emit(repr, buf),
        now,
        { src: from },
      )
    ) {
      this.errorStats.sent++;
    }
  }

  /**
   * ICMP destination unreachable (RFC 792, RFC 1122 §3.2.2.1): the quoted
   * datagram must be one we sent. Fragmentation-needed goes to TCP, which
   * checks the quoted sequence number before acting (RFC 5927 §4.1, RFC 1191);
   * errors about UDP datagrams go to the connected endpoint that sent them
   * (RFC 1122 §4.1.3.3). Other errors about TCP are not acted on: RFC 5461
   * and RFC 1122 §4.2.3.9 make them soft errors.
   */
  #inputError(
    code: number,
    nextHopMtu: number | undefined,
    quote: Uint8Array,
    now: number,
  ): string | undefined {
    const q = Ipv4Packet.parseTruncated(quote);
    if (!q.ok || q.value.src !== this.#address) return "icmp_bad_quote";
    const inner = q.value.payload;
    if (inner.length < 8) return "icmp_unhandled_type";
    const localPort = (inner[0] << 8) | inner[1];
    const remotePort = (inner[2] << 8) | inner[3];
    if (q.value.protocol === IpProtocol.UDP) {
      if (code === Icmpv4DestUnreachableCode.FRAG_NEEDED) return "icmp_unhandled_type";
      return this.#sinks.udp.icmpError(q.value.dst, remotePort, localPort, code);
    }
    if (q.value.protocol !== IpProtocol.TCP) return "icmp_unhandled_type";
    if (code !== Icmpv4DestUnreachableCode.FRAG_NEEDED) return "icmp_unhandled_type";
    const seq = ((inner[4] << 24) | (inner[5] << 16) | (inner[6] << 8) | inner[7]) >>> 0;
    return this.#sinks.tcp.fragmentationNeeded(
      q.value.dst,
      remotePort,
      localPort,
      seq,
      nextHopMtu ?? 0,
      now,
    );
  }
}
