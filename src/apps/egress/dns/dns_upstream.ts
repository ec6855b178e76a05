/**
 * Where the egress resolver sends the names a session does not own
 * (`NETISLE_DNS_UPSTREAM`): the runtime's own resolver (`system`),
 * DNS-over-HTTPS (`https://…`, RFC 8484) or a DNS server over UDP
 * (`udp:IP:PORT`, with TCP when an answer is truncated). Each upstream
 * answers one question with a set of records; the relay caches it and
 * builds the guest's response.
 *
 * @module
 */

import type { DnsQuestion } from "../../../wire/mod.ts";
import type { TimerClock } from "../../../socket/poll_deadline.ts";
import { type DnsMessage, type DnsRecord, DnsRecordType, parseDnsMessage } from "./dns_message.ts";
import { parseIpAddress } from "../ip_address.ts";

/** What an upstream answered for one question. */
export interface DnsAnswerSet {
  /** RCODE: NOERROR (0), NXDOMAIN (3), … */
  rcode: number;
  /** The answer section. */
  answers: DnsRecord[];
  /** The authority section (an SOA for negative caching, RFC 2308 §3). */
  authority: DnsRecord[];
}

/** Options of one resolution. */
export interface DnsResolveOptions {
  /** Ends the resolution (the relay's timeout, the session closing). */
  signal: AbortSignal;
  /** The clock retransmissions run on (the session's). */
  clock: TimerClock;
}

/**
 * A resolver the relay asks.
 *
 * @example
 * ```ts
 * const set = await upstream.resolve({ name: "example.com", type: 1, class: 1 }, { signal, clock });
 * ```
 */
export interface DnsUpstream {
  /** What it is, for the startup log and the session view (`system`, `https://…`, `udp:…`). */
  readonly description: string;
  /** Resolves one question; rejects when the upstream failed or the signal aborted. */
  resolve(question: DnsQuestion, options: DnsResolveOptions): Promise<DnsAnswerSet>;
}

/** A parsed `NETISLE_DNS_UPSTREAM`. */
export type DnsUpstreamSpec =
  | { kind: "system" }
  | { kind: "https"; url: string }
  | { kind: "udp"; address: string; port: number };

/**
 * Parses `NETISLE_DNS_UPSTREAM`: `system`, an `https://` URL (DNS-over-HTTPS)
 * or `udp:IP:PORT` (`udp:[IPv6]:PORT`; the port defaults to 53).
 *
 * @throws {TypeError} quoting the value when it is none of these.
 *
 * @example
 * ```ts
 * parseDnsUpstreamSpec("udp:198.18.0.53:53"); // { kind: "udp", address: "198.18.0.53", port: 53 }
 * ```
 */
export function parseDnsUpstreamSpec(text: string): DnsUpstreamSpec {
  const t = text.trim();
  if (t === "system") return { kind: "system" };
  if (/^https:\/\//i.test(t)) {
    try {
      return { kind: "https", url: new URL(t).href };
    } catch {
      // fall through to the error
    }
  }
  const m = /^udp:(?:\[([^\]]+)\]|([^:]+))(?::(\d{1,5}))?$/i.exec(t);
  if (m) {
    const address = m[1] ?? m[2];
    const port = Number(m[3] ?? 53);
    if (parseIpAddress(address) && port >= 1 && port <= 65535) {
      return { kind: "udp", address, port };
    }
  }
  throw new TypeError(
    `NETISLE_DNS_UPSTREAM must be "system", an https:// URL or udp:IP:PORT, got "${text}"`,
  );
}

/**
 * The answer set of an upstream's response to `question`, after checking
 * that it is a response to it (QR, the id, the question, case-insensitively:
 * RFC 5452 §9.1). Throws an Error naming what did not match.
 *
 * @example
 * ```ts
 * const set = answerSetOf(parseDnsMessage(bytes), question, 0);
 * ```
 */
export function answerSetOf(
  parsed: ReturnType<typeof parseDnsMessage>,
  question: DnsQuestion,
  id: number,
): DnsAnswerSet & { truncated: boolean } {
  if (!parsed.ok) throw new Error(`the upstream's response does not parse: ${parsed.reason}`);
  const m: DnsMessage = parsed.value;
  if (!m.qr || m.id !== id) throw new Error("the upstream's response has another id");
  const q = m.questions[0];
  if (
    m.questions.length !== 1 || q.type !== question.type || q.class !== question.class ||
    q.name.toLowerCase() !== question.name.toLowerCase()
  ) {
    throw new Error("the upstream's response answers another question");
  }
  const keep = (r: DnsRecord) => r.type !== DnsRecordType.OPT;
  return {
    rcode: m.rcode,
    answers: m.answers.filter(keep),
    authority: m.authority.filter(keep),
    truncated: m.tc,
  };
}
