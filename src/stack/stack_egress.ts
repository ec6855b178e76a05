/**
 * The core's side of egress: what the session's machine sends to addresses
 * outside the session becomes an event here, recorded during the critical
 * section and taken by the egress gateway (src/apps/egress) after the core
 * lock is released; the gateway's answers come back as new core entries
 * (datagrams and ICMP errors from outside addresses, deferred DNS answers).
 * The core never calls a runtime and never waits for one.
 *
 * Both families take the same path: an outside address is an IPv4 address
 * outside the subnet, or (when the stack has IPv6) an IPv6 unicast address
 * off the link (`ipv6_input.ts`); events and entries carry `IpAddress`, and
 * the errors the gateway asks for go out as ICMP or ICMPv6 by the guest's
 * family ({@linkcode icmpv6CodeFor}).
 *
 * What becomes an event:
 * - a SYN to an outside address, held unanswered by the TCP layer
 *   ({@linkcode TcpEgressHook}) until the gateway accepts it
 *   ({@linkcode StackEgress.acceptTcp}: the SYN-ACK), refuses it
 *   ({@linkcode StackEgress.refuseTcp}: a RST) or reports it unreachable
 *   ({@linkcode StackEgress.tcpUnreachable}: ICMP); and a RST by which the
 *   guest gives a held SYN up;
 * - a UDP datagram to an outside address (UDP layer, {@linkcode UdpEgressHook});
 * - a DNS query for a name the responder does not own (its
 *   {@linkcode DnsForwarder}), answered later with
 *   {@linkcode StackEgress.answerDns}.
 *
 * Every queued payload is a copy charged to the session's memory quota; the
 * event hands the charge to the gateway, which releases it when done
 * ({@linkcode EgressUdpEvent.charge}). The queue is bounded in events and
 * bytes; what does not fit is dropped and counted.
 *
 * @module
 */

import {
  Icmpv4DestUnreachableCode,
  Icmpv6DestUnreachableCode,
  IpProtocol,
  IPV4_HEADER_LEN,
  type Ipv4Address,
  Ipv4Repr,
  IPV6_HEADER_LEN,
  type Ipv6Address,
  Ipv6Repr,
} from "../wire/mod.ts";
import type { IpAddress } from "../wire/ip_address.ts";
import { bufferCost, type MemoryQuota } from "./session_quota.ts";
import type { UdpEgressHook, UdpLayer } from "./udp/udp_layer.ts";
import type { DnsForwarder } from "./dns_responder.ts";
import type { HeldSyn, TcpEgressHook } from "./tcp/tcp_egress.ts";
import type { TcpLayer } from "./tcp/tcp_layer.ts";
import type { TcpConnection } from "./tcp/tcp_connection.ts";
import type { TcpConfig } from "./tcp/tcp_config.ts";

/** A UDP datagram from the session's machine to an outside address (IPv4 or IPv6). */
export interface EgressUdpEvent {
  readonly kind: "udp";
  /** The guest's address (of the destination's family). */
  readonly src: IpAddress;
  /** The guest's port. */
  readonly srcPort: number;
  /** The outside destination's address. */
  readonly dst: IpAddress;
  /** The outside destination's port. */
  readonly dstPort: number;
  /** The payload: a copy the event owns. */
  readonly payload: Uint8Array;
  /** Bytes charged to the session's memory quota for the copy; the taker releases them. */
  readonly charge: number;
}

/** A DNS query for a name the session does not own, to resolve upstream. */
export interface EgressDnsEvent {
  readonly kind: "dns";
  /** Who asked, over IPv4 or IPv6 (answer with {@linkcode StackEgress.answerDns}). */
  readonly client: IpAddress;
  /** The port the query came from. */
  readonly clientPort: number;
  /** The query message: a copy the event owns. */
  readonly query: Uint8Array;
  /** Bytes charged to the session's memory quota for the copy; the taker releases them. */
  readonly charge: number;
}

/** A SYN to an outside address, held until the gateway answers (or the guest gives up). */
export interface EgressTcpEvent {
  /** `tcp_syn`: a new SYN is held; `tcp_cancel`: the guest reset it before an answer. */
  readonly kind: "tcp_syn" | "tcp_cancel";
  /** The held SYN's key: what {@linkcode StackEgress.acceptTcp} and the others take. */
  readonly key: string;
  /** The guest's address and port (IPv4 or IPv6, of the destination's family). */
  readonly src: IpAddress;
  readonly srcPort: number;
  /** The outside destination. */
  readonly dst: IpAddress;
  readonly dstPort: number;
  /** Nothing is charged for a TCP event (0). */
  readonly charge: number;
}

/** What the core records for the gateway. */
export type EgressEvent = EgressUdpEvent | EgressDnsEvent | EgressTcpEvent;

/** Event bit of {@linkcode StackEgress}: events wait in its queue. */
export const EGRESS_EVENTS_PENDING = 32;

/** Limits of the event queue. */
export interface StackEgressLimits {
  /** Events waiting for the gateway; more are dropped (`egress_queue_full`). */
  maxQueuedEvents: number;
  /** Payload bytes waiting for the gateway; more are dropped (`egress_queue_full`). */
  maxQueuedBytes: number;
}

/** Defaults for {@linkcode StackEgressLimits}: 1024 events, 1 MiB. */
export const DEFAULT_STACK_EGRESS_LIMITS: StackEgressLimits = {
  maxQueuedEvents: 1024,
  maxQueuedBytes: 1024 * 1024,
};

/**
 * Reasons egress drops what the session's machine sends outside.
 *
 * - `egress_queue_full`: the gateway has not taken the events queued before.
 * - `egress_quota`: the session's memory quota refused the copy.
 * - `egress_unsupported_protocol`: a transport other than TCP and UDP to an
 *   outside address (ICMP echo is not relayed).
 * - `egress_tcp_unsupported`: a TCP segment to an outside address while the
 *   core has no TCP egress (the TCP layer's own reasons are
 *   `TCP_EGRESS_DROP_REASONS`).
 */
export const EGRESS_DROP_REASONS: readonly string[] = [
  "egress_queue_full",
  "egress_quota",
  "egress_unsupported_protocol",
  "egress_tcp_unsupported",
];

/** What {@linkcode StackEgress} needs from the stack. */
export interface StackEgressDeps {
  /** The stack's IPv4 address: the source of router errors over IPv4. */
  localAddr: Ipv4Address;
  /** The session's memory quota, charged for queued copies. */
  memory: MemoryQuota;
  /** The UDP layer, which sends the gateway's datagrams. */
  udp: UdpLayer;
  /** The TCP layer, which holds SYNs to outside addresses and opens their connections. */
  tcp: TcpLayer;
  /**
   * Sends an ICMP destination unreachable with `code` quoting `quote` to
   * `to`, from `from` (rate-limited with the stack's other errors).
   */
  sendIcmpError(
    quote: Uint8Array,
    to: Ipv4Address,
    code: number,
    from: Ipv4Address,
    now: number,
  ): void;
  /**
   * Sends an ICMPv6 destination unreachable with `code` quoting the IPv6
   * packet `quote` to its source, from `from` or else the stack's address
   * for it (rate-limited with the stack's other ICMPv6 errors). Absent
   * without IPv6.
   */
  sendIcmpv6Error?(
    quote: Uint8Array,
    code: number,
    from: Ipv6Address | undefined,
    now: number,
  ): void;
  /** Queue limits. */
  limits?: Partial<StackEgressLimits>;
}

/** Counters of the core's egress. */
export interface StackEgressStats {
  /** UDP datagrams queued for the gateway. */
  udpQueued: number;
  /** DNS queries queued for the gateway. */
  dnsQueued: number;
  /** SYNs to outside addresses reported to the gateway. */
  synsHeld: number;
  /** Held SYNs the guest gave up before the gateway answered. */
  synsCancelled: number;
  /** Events dropped because the queue was full. */
  queueFull: number;
  /** Events dropped because the memory quota refused their copy. */
  quotaRefused: number;
  /** Datagrams the gateway sent to the session's machine. */
  udpDelivered: number;
  /** ICMP errors the gateway asked for. */
  icmpErrors: number;
  /** Deferred DNS answers sent. */
  dnsAnswered: number;
}

/** The port DNS answers come from. */
const DNS_PORT = 53;

/**
 * The egress events of one stack and the entries that answer them.
 *
 * @example
 * ```ts
 * // After the core lock was released, in the gateway:
 * const events = session.withCore((stack) => stack.egress!.take());
 * for (const e of events) if (e.kind === "udp") relay(e); // then release e.charge
 * // An answer comes back as a core entry:
 * session.withCore((stack, now) => stack.egress!.sendUdp(from, fromPort, guest, guestPort, data, now));
 * ```
 */
export class StackEgress implements UdpEgressHook, DnsForwarder, TcpEgressHook {
  /** Pending event bits ({@linkcode EGRESS_EVENTS_PENDING}); the session clears them. */
  events = 0;
  /** The gateway, told of events through `onEvents` after the lock is released. */
  owner: unknown;
  /** The queue limits. */
  readonly limits: StackEgressLimits;
  /** Counters. */
  readonly stats: StackEgressStats = {
    udpQueued: 0,
    dnsQueued: 0,
    synsHeld: 0,
    synsCancelled: 0,
    queueFull: 0,
    quotaRefused: 0,
    udpDelivered: 0,
    icmpErrors: 0,
    dnsAnswered: 0,
  };
  #deps: StackEgressDeps;
  #queue: EgressEvent[] = [];
  #queuedBytes = 0;
  #dirty = false;

  /** Created by the stack when its configuration turns egress on. */
  constructor(deps: StackEgressDeps) {
    this.#deps = deps;
    this.limits = { ...DEFAULT_STACK_EGRESS_LIMITS, ...deps.limits };
    for (const [k, v] of Object.entries(this.limits)) {
      if (!Number.isSafeInteger(v) || v < 1) {
        throw new RangeError(`StackEgress: limits.${k} must be a positive integer, got ${v}`);
      }
    }
  }

  /** Events waiting for the gateway. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Payload bytes waiting for the gateway. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  // ------------------------------------------------------------ from the core

  /**
   * The UDP layer's hook: a verified datagram to an outside address. The
   * payload is borrowed; it is copied (and charged) into the queue.
   */
  datagram(
    d: {
      src: IpAddress;
      srcPort: number;
      dst: IpAddress;
      dstPort: number;
      payload: Uint8Array;
    },
    _now: number,
  ): string | undefined {
    const copy = this.#copy(d.payload);
    if (typeof copy === "string") return copy;
    this.#push({
      kind: "udp",
      src: d.src,
      srcPort: d.srcPort,
      dst: d.dst,
      dstPort: d.dstPort,
      payload: copy.bytes,
      charge: copy.charge,
    });
    this.stats.udpQueued++;
    return undefined;
  }

  /**
   * The DNS responder's hook: a query it does not answer itself. False when
   * it cannot be queued (the responder then answers SERVFAIL at once).
   */
  forward(query: Uint8Array, client: IpAddress, clientPort: number, _now: number): boolean {
    const copy = this.#copy(query);
    if (typeof copy === "string") return false;
    this.#push({ kind: "dns", client, clientPort, query: copy.bytes, charge: copy.charge });
    this.stats.dnsQueued++;
    return true;
  }

  /** The TCP layer's hook: a SYN to an outside address is held. False when the queue is full. */
  synHeld(h: HeldSyn, _now: number): boolean {
    if (this.#queue.length >= this.limits.maxQueuedEvents) {
      this.stats.queueFull++;
      return false;
    }
    this.#push(this.#tcpEvent("tcp_syn", h));
    this.stats.synsHeld++;
    return true;
  }

  /** The TCP layer's hook: the guest reset a held SYN. */
  synCancelled(h: HeldSyn, _now: number): void {
    this.stats.synsCancelled++;
    // Beyond the queue's limit the gateway learns it when its accept finds nothing held.
    if (this.#queue.length < this.limits.maxQueuedEvents) {
      this.#push(this.#tcpEvent("tcp_cancel", h));
    }
  }

  #tcpEvent(kind: "tcp_syn" | "tcp_cancel", h: HeldSyn): EgressTcpEvent {
    return {
      kind,
      key: h.key,
      src: h.guest,
      srcPort: h.guestPort,
      dst: h.outside,
      dstPort: h.outsidePort,
      charge: 0,
    };
  }

  // ------------------------------------------------------------ for the gateway

  /**
   * The outbound connection for the held SYN `key` opened: the SYN-ACK goes
   * out and the connection (SYN-RECEIVED, from the outside address) is
   * returned for the gateway to own. Undefined when the SYN is no longer
   * held (the guest gave up) or the TCP layer is full (then a RST).
   */
  acceptTcp(key: string, now: number, config?: Partial<TcpConfig>): TcpConnection | undefined {
    return this.#deps.tcp.acceptHeld(key, now, config);
  }

  /**
   * The destination of the held SYN `key` refused the connection, or the
   * policy denied it: a RST from the outside address. Returns whether it was
   * still held.
   */
  refuseTcp(key: string, now: number): boolean {
    return this.#deps.tcp.refuseHeld(key, now);
  }

  /**
   * The destination of the held SYN `key` is unreachable (or the dial timed
   * out, or the platform prohibits it): an ICMP destination unreachable with
   * `code` from the stack, the router (RFC 792, RFC 1812 §5.2.7.1), quoting
   * the SYN's IP header and first 8 bytes (ports and sequence number, which
   * the guest's TCP checks, RFC 5927 §4.1). `code` is ICMPv4's; for an IPv6
   * flow it becomes the ICMPv6 code RFC 7915 §4.2 translates it to
   * ({@linkcode icmpv6CodeFor}: administratively prohibited stays so, host
   * unreachable is "no route to destination", RFC 4443 §3.1). Returns
   * whether it was held.
   */
  tcpUnreachable(key: string, code: number, now: number): boolean {
    const h = this.#deps.tcp.dropHeld(key);
    if (h === undefined) return false;
    const seq = h.syn.seqNumber;
    const quote = this.#quote(
      h.guest,
      h.outside,
      IpProtocol.TCP,
      20,
      (q, t) => {
        q[t + 4] = seq >>> 24;
        q[t + 5] = (seq >>> 16) & 0xff;
        q[t + 6] = (seq >>> 8) & 0xff;
        q[t + 7] = seq & 0xff;
      },
      h.guestPort,
      h.outsidePort,
    );
    this.#unreachable(quote, h.guest, code, undefined, now);
    return true;
  }

  /**
   * An IP header like the one the guest sent from `guest` to `outside` and
   * the first 8 bytes of its transport header (ports, then what `fill`
   * writes), the quote of an ICMP error (RFC 792; RFC 4443 §2.4 (c)).
   */
  #quote(
    guest: IpAddress,
    outside: IpAddress,
    protocol: number,
    transportLen: number,
    fill: (q: Uint8Array, at: number) => void,
    guestPort: number,
    outsidePort: number,
  ): Uint8Array {
    const v6 = typeof guest === "string";
    const t = v6 ? IPV6_HEADER_LEN : IPV4_HEADER_LEN;
    const q = new Uint8Array(t + 8);
    if (v6) {
      Ipv6Repr.emit({
        src: guest,
        dst: outside as Ipv6Address,
        nextHeader: protocol,
        payloadLen: transportLen,
        hopLimit: 64,
      }, q);
    } else {
      Ipv4Repr.emit({
        src: guest,
        dst: outside as Ipv4Address,
        protocol,
        payloadLen: transportLen,
        ttl: 64,
        dontFragment: protocol === IpProtocol.TCP,
      }, q);
    }
    q[t] = guestPort >>> 8;
    q[t + 1] = guestPort & 0xff;
    q[t + 2] = outsidePort >>> 8;
    q[t + 3] = outsidePort & 0xff;
    fill(q, t);
    return q;
  }

  /** Sends the ICMP (or ICMPv6) destination unreachable for `quote` to `guest`. */
  #unreachable(
    quote: Uint8Array,
    guest: IpAddress,
    code: number,
    from: IpAddress | undefined,
    now: number,
  ): void {
    if (typeof guest === "string") {
      this.#deps.sendIcmpv6Error?.(quote, icmpv6CodeFor(code), from as Ipv6Address, now);
    } else {
      this.#deps.sendIcmpError(
        quote,
        guest,
        code,
        (from as Ipv4Address | undefined) ?? this.#deps.localAddr,
        now,
      );
    }
    this.stats.icmpErrors++;
  }

  /**
   * Removes and returns the queued events (oldest first). Each carries the
   * quota charge of its copy, which the caller now owns and must release.
   */
  take(): EgressEvent[] {
    const q = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    return q;
  }

  /**
   * Sends a UDP datagram to the session's machine from an outside address
   * (a reply the gateway relays). False when the IP layer dropped it.
   */
  sendUdp(
    from: IpAddress,
    fromPort: number,
    to: IpAddress,
    toPort: number,
    payload: Uint8Array,
    now: number,
  ): boolean {
    const ok = this.#deps.udp.sendFrom(
      { address: from, port: fromPort },
      { address: to, port: toPort },
      payload,
      now,
    );
    if (ok) this.stats.udpDelivered++;
    return ok;
  }

  /**
   * Tells the session's machine that a datagram it sent from
   * `guest`:`guestPort` to `outside`:`outsidePort` could not be delivered
   * (RFC 792, RFC 1122 §3.2.2.1; RFC 4443 §3.1 over IPv6): an ICMP
   * destination unreachable with `code` (ICMPv4's, translated for IPv6 as
   * {@linkcode icmpv6CodeFor} says) quoting an IP and UDP header like its
   * datagram's. A port unreachable comes from the outside address (as the
   * destination host sends it), anything else from the stack (the router
   * that could not deliver it).
   */
  udpUnreachable(
    guest: IpAddress,
    guestPort: number,
    outside: IpAddress,
    outsidePort: number,
    code: number,
    now: number,
  ): void {
    const quote = this.#quote(
      guest,
      outside,
      IpProtocol.UDP,
      8,
      (q, t) => {
        q[t + 5] = 8;
      },
      guestPort,
      outsidePort,
    );
    const from = code === Icmpv4DestUnreachableCode.PORT ? outside : undefined;
    this.#unreachable(quote, guest, code, from, now);
  }

  /**
   * Answers a forwarded DNS query: `reply` goes to the client from the
   * stack's port 53 and its address of the client's family, as the
   * responder's own answers do.
   */
  answerDns(client: IpAddress, clientPort: number, reply: Uint8Array, now: number): boolean {
    const ok = this.#deps.udp.sendFrom(
      { port: DNS_PORT },
      { address: client, port: clientPort },
      reply,
      now,
    );
    if (ok) this.stats.dnsAnswered++;
    return ok;
  }

  /** Whether events were raised since the last call (the stack's dirty list); clears the mark. */
  takeDirty(): boolean {
    const d = this.#dirty;
    this.#dirty = false;
    return d;
  }

  /**
   * Drops every queued event and releases its charge (the session ends, or
   * nobody takes them). Returns how many were dropped.
   */
  clear(): number {
    const q = this.take();
    for (const e of q) this.#deps.memory.release(e.charge);
    return q.length;
  }

  #copy(bytes: Uint8Array): { bytes: Uint8Array; charge: number } | string {
    if (
      this.#queue.length >= this.limits.maxQueuedEvents ||
      this.#queuedBytes + bytes.length > this.limits.maxQueuedBytes
    ) {
      this.stats.queueFull++;
      return "egress_queue_full";
    }
    const charge = bufferCost(bytes.length);
    if (!this.#deps.memory.tryCharge(charge)) {
      this.stats.quotaRefused++;
      return "egress_quota";
    }
    return { bytes: bytes.slice(), charge };
  }

  #push(e: EgressEvent): void {
    this.#queue.push(e);
    this.#queuedBytes += e.kind === "udp"
      ? e.payload.length
      : e.kind === "dns"
      ? e.query.length
      : 0;
    this.events |= EGRESS_EVENTS_PENDING;
    this.#dirty = true;
  }
}

/**
 * The ICMPv6 destination unreachable code for an ICMPv4 one, as RFC 7915
 * §4.2 translates them: port unreachable (3) is port unreachable (4);
 * network, host, host and communication administratively prohibited (9,
 * 10, 13) and precedence cutoff (15) are administratively prohibited (1);
 * everything else is no route to destination (0).
 *
 * @example
 * ```ts
 * icmpv6CodeFor(Icmpv4DestUnreachableCode.COMM_PROHIBITED); // 1 (ADMIN_PROHIBITED)
 * ```
 */
export function icmpv6CodeFor(icmpv4Code: number): number {
  switch (icmpv4Code) {
    case Icmpv4DestUnreachableCode.PORT:
      return Icmpv6DestUnreachableCode.PORT;
    case Icmpv4DestUnreachableCode.NET_PROHIBITED:
    case Icmpv4DestUnreachableCode.HOST_PROHIBITED:
    case Icmpv4DestUnreachableCode.COMM_PROHIBITED:
    case Icmpv4DestUnreachableCode.PRECEDENCE_CUTOFF:
      return Icmpv6DestUnreachableCode.ADMIN_PROHIBITED;
    default:
      return Icmpv6DestUnreachableCode.NO_ROUTE;
  }
}
