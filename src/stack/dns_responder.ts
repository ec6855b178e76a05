/**
 * A small authoritative DNS responder for the session's own names (by
 * default `netisle.internal` is the stack's address, IPv4 and, when the
 * session has IPv6, IPv6). It never recurses and never stays silent for a
 * query it can parse a header of:
 *
 * - A for one of its names: its IPv4 addresses; AAAA (RFC 3596 §2): its
 *   IPv6 addresses; ANY: both; TTL 60, AA set.
 * - Any other type, or a family the name has no address of: NOERROR
 *   without answers (NODATA, RFC 2308 §2.2).
 * - Another name under `internal`: NXDOMAIN (the zone is ours).
 * - Any other name: REFUSED; or, when the session has egress, nothing yet:
 *   the query goes to a {@linkcode DnsForwarder} (the egress gateway
 *   resolves it upstream and answers later through the core), and SERVFAIL
 *   at once when the forwarder cannot take it.
 * - A class other than IN/ANY: REFUSED.
 * - An opcode other than QUERY: NOTIMP.
 * - A malformed question (no or several questions, bad labels, a
 *   compression-pointer loop, truncated): FORMERR without a question.
 * - Fewer than 12 bytes, or a response (QR set): dropped, counted as
 *   `dns_truncated` / `dns_not_query` (answering responses invites loops).
 *
 * Names compare case-insensitively, with or without a trailing dot.
 *
 * The stack serves it on UDP port 53 of its own addresses, over IPv4 and
 * IPv6 alike, as a {@linkcode UdpService} that steps aside while a socket is
 * bound there. An answer comes from the address the query was sent to.
 *
 * @module
 */

import type { UdpService, UdpServiceDatagram, UdpServiceSender } from "./udp/udp_service.ts";
import {
  DnsClass,
  DnsRcode,
  DnsType,
  emitDnsResponse,
  ipv6ToBytes,
  parseDnsHeader,
  parseDnsQuery,
} from "../wire/mod.ts";
import { type IpAddress, isIpv6 } from "../wire/ip_address.ts";

/** The UDP port the responder answers on. */
export const DNS_PORT = 53;
/** TTL of the A and AAAA records given out, in seconds. */
export const DNS_TTL = 60;
/** The name the stack's own address answers to. */
export const DNS_DEFAULT_NAME = "netisle.internal";

/** Reasons the responder drops a query without answering. */
export const DNS_DROP_REASONS: readonly string[] = ["dns_truncated", "dns_not_query"];

/**
 * Where the responder defers queries for names it does not own (the
 * stack's egress). `query` is borrowed: copy what you keep.
 */
export interface DnsForwarder {
  /**
   * Takes a query from `client` (over IPv4 or IPv6) to answer later; false
   * when it cannot (the responder answers SERVFAIL).
   */
  forward(query: Uint8Array, client: IpAddress, clientPort: number, now: number): boolean;
}

/** Answers DNS queries from a fixed table of names. */
export class DnsResponder implements UdpService {
  readonly #names = new Map<string, readonly IpAddress[]>();
  /** Queries answered, dropped, and deferred to the forwarder. */
  readonly stats = { answered: 0, dropped: 0, forwarded: 0 };
  #forwarder: DnsForwarder | undefined;

  /**
   * Creates a responder for `names` (name → address, or addresses of
   * either family: IPv4 ones answer A, IPv6 ones AAAA).
   *
   * @example
   * ```ts
   * const dns = new DnsResponder({
   *   "netisle.internal": [parseIpv4Address("10.0.2.2"), parseIpv6Address("fd00::2")],
   * });
   * const r = dns.answer(udpPayload);
   * if (r.reply) send(r.reply);
   * ```
   */
  constructor(
    names: Record<string, IpAddress | readonly IpAddress[]>,
    forwarder?: DnsForwarder,
  ) {
    for (const [name, addr] of Object.entries(names)) {
      this.#names.set(normalize(name), Array.isArray(addr) ? [...addr] : [addr as IpAddress]);
    }
    this.#forwarder = forwarder;
  }

  /** Whether queries for other names go to a forwarder (the session has egress). */
  get forwarding(): boolean {
    return this.#forwarder !== undefined;
  }

  /**
   * Answers one query: a reply to send, the reason it was dropped, or
   * `forward` when it is for a name the responder does not own and a
   * forwarder is set.
   */
  answer(query: Uint8Array): { reply: Uint8Array } | { reason: string } | { forward: true } {
    const h = parseDnsHeader(query);
    if (!h.ok) return this.#drop(h.reason);
    if (h.value.qr) return this.#drop("dns_not_query");
    const { id, opcode, rd } = h.value;
    if (opcode !== 0) return this.#reply({ id, opcode, aa: false, rd, rcode: DnsRcode.NOTIMP });
    const q = parseDnsQuery(query);
    if (!q.ok) return this.#reply({ id, opcode, aa: false, rd, rcode: DnsRcode.FORMERR });
    const question = q.value.question;
    if (question.class !== DnsClass.IN && question.class !== DnsClass.ANY) {
      return this.#reply({ id, opcode, aa: false, rd, rcode: DnsRcode.REFUSED, question });
    }
    const name = normalize(question.name);
    const addrs = this.#names.get(name);
    if (addrs === undefined) {
      const ours = name === "internal" || name.endsWith(".internal");
      if (!ours && this.#forwarder) return { forward: true };
      const rcode = ours ? DnsRcode.NXDOMAIN : DnsRcode.REFUSED;
      return this.#reply({ id, opcode, aa: ours, rd, rcode, question });
    }
    const t = question.type;
    const wantA = t === DnsType.A || t === DnsType.ANY;
    const wantAaaa = t === DnsType.AAAA || t === DnsType.ANY;
    const answers = [];
    for (const addr of addrs) {
      if (isIpv6(addr) ? !wantAaaa : !wantA) continue;
      answers.push({
        type: isIpv6(addr) ? DnsType.AAAA : DnsType.A,
        class: DnsClass.IN,
        ttl: DNS_TTL,
        rdata: isIpv6(addr) ? ipv6ToBytes(addr) : new Uint8Array([
          addr >>> 24,
          (addr >>> 16) & 0xff,
          (addr >>> 8) & 0xff,
          addr & 0xff,
        ]),
      });
    }
    return this.#reply({ id, opcode, aa: true, rd, rcode: DnsRcode.NOERROR, question, answers });
  }

  /**
   * Answers a query that arrived on UDP port 53 (the {@linkcode UdpService}
   * entry): the reply goes back to the sender's address and port, from the
   * address the query was sent to. Returns the drop reason of a query it
   * does not answer.
   */
  receive(d: UdpServiceDatagram, sender: UdpServiceSender, now: number): string | undefined {
    const r = this.answer(d.payload);
    if ("reason" in r) return r.reason;
    let reply: Uint8Array;
    if ("forward" in r) {
      if (this.#forwarder!.forward(d.payload, d.src, d.srcPort, now)) {
        this.stats.forwarded++;
        return undefined;
      }
      reply = this.#serverFailure(d.payload);
    } else {
      reply = r.reply;
    }
    sender.send({ address: d.src, port: d.srcPort, src: d.dst }, reply, now);
    return undefined;
  }

  /** SERVFAIL for a query that parsed (the forwarder could not take it). */
  #serverFailure(query: Uint8Array): Uint8Array {
    const q = parseDnsQuery(query);
    const { id, opcode, rd } = q.ok ? q.value.header : { id: 0, opcode: 0, rd: false };
    const question = q.ok ? q.value.question : undefined;
    return this.#reply({ id, opcode, aa: false, rd, rcode: DnsRcode.SERVFAIL, question }).reply;
  }

  #reply(r: Parameters<typeof emitDnsResponse>[0]): { reply: Uint8Array } {
    this.stats.answered++;
    return { reply: emitDnsResponse(r) };
  }

  #drop(reason: string): { reason: string } {
    this.stats.dropped++;
    return { reason };
  }
}

function normalize(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith(".") ? n.slice(0, -1) : n;
}
