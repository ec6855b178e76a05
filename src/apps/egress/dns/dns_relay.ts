/**
 * The egress resolver of one session: the DNS queries the session's
 * responder defers (names it does not own) are answered from the session's
 * cache or resolved upstream, and the answer goes back through the core
 * ({@linkcode DnsRelayDeps.answer}). It never stays silent: a failed or
 * timed-out upstream, or too many questions in flight, is SERVFAIL
 * (RFC 1035 §4.1.1). Identical questions in flight share one upstream
 * resolution.
 *
 * Answers are built afresh for each client: its id and question as asked,
 * RA set, TTLs counted down, at most 512 bytes (or what its EDNS(0) OPT
 * record advertises, up to the link's limit; RFC 6891 §6.2.3), TC set when
 * answers had to go. A/AAAA records whose address the egress policy denies
 * on every port (a public name resolving to 127.0.0.1: DNS rebinding) are
 * left out and counted.
 *
 * @module
 */

import { type DnsQuestion, DnsRcode, parseDnsQuery } from "../../../wire/mod.ts";
import type { IpAddress as GuestAddress } from "../../../wire/ip_address.ts";
import type { TimerClock } from "../../../socket/poll_deadline.ts";
import type { EgressDenyReason, EgressPolicy } from "../egress_policy.ts";
import { type IpAddress, ipFromV4 } from "../ip_address.ts";
import type { DnsCache } from "./dns_cache.ts";
import { buildDnsMessage, type DnsRecord, DnsRecordType, parseDnsMessage } from "./dns_message.ts";
import type { DnsAnswerSet, DnsUpstream } from "./dns_upstream.ts";

/** Limits of a relay. */
export interface DnsRelayLimits {
  /** Upstream resolutions in flight; a question beyond gets SERVFAIL. */
  maxPending: number;
  /** How long an upstream may take (ms) before the client gets SERVFAIL. */
  timeoutMs: number;
}

/** Defaults for {@linkcode DnsRelayLimits}: 64 in flight, 5 s. */
export const DEFAULT_DNS_RELAY_LIMITS: DnsRelayLimits = {
  maxPending: 64,
  timeoutMs: 5000,
};

/** Counters of a relay. */
export interface DnsRelayStats {
  /** Queries taken from the responder. */
  queries: number;
  /** Answered from the cache. */
  cacheHits: number;
  /** Upstream resolutions started. */
  upstreamQueries: number;
  /** SERVFAIL answers: the upstream failed or timed out. */
  upstreamFailures: number;
  /** SERVFAIL answers: too many questions in flight. */
  overloaded: number;
  /** Address records left out because the policy denies the address. */
  filteredRecords: number;
  /** Answers sent. */
  answered: number;
}

/** What a relay needs. */
export interface DnsRelayDeps {
  upstream: DnsUpstream;
  cache: DnsCache;
  policy: EgressPolicy;
  /** The session's clock (timeouts, cache ages). */
  clock: TimerClock;
  /** Sends `reply` to the client through the core. */
  answer(client: GuestAddress, clientPort: number, reply: Uint8Array): void;
  /** Counts an address record left out, by the reason its address is denied. */
  onFiltered?(reason: EgressDenyReason): void;
  /** The largest UDP answer the link carries over IPv4 (MTU − 28); over IPv6 it is 20 bytes less. */
  maxUdpSize: number;
  limits?: Partial<DnsRelayLimits>;
}

interface Query {
  client: GuestAddress;
  clientPort: number;
  id: number;
  rd: boolean;
  question: DnsQuestion;
  /** The client's EDNS(0) UDP size, when it sent an OPT record. */
  edns?: number;
}

function addressOf(r: DnsRecord): IpAddress | undefined {
  if (r.type === DnsRecordType.A && r.data.length === 4) {
    return ipFromV4(((r.data[0] << 24) | (r.data[1] << 16) | (r.data[2] << 8) | r.data[3]) >>> 0);
  }
  if (r.type === DnsRecordType.AAAA && r.data.length === 16) {
    const d = r.data;
    const w = (i: number) =>
      ((d[4 * i] << 24) | (d[4 * i + 1] << 16) | (d[4 * i + 2] << 8) | d[4 * i + 3]) >>> 0;
    return { family: 6, words: [w(0), w(1), w(2), w(3)] };
  }
  return undefined;
}

/**
 * One session's resolver.
 *
 * @example
 * ```ts
 * const fwd = new DnsRelay({ upstream, cache, policy, clock, maxUdpSize: 1472, answer });
 * fwd.handle(event.client, event.clientPort, event.query);
 * ```
 */
export class DnsRelay {
  /** The limits in force. */
  readonly limits: DnsRelayLimits;
  /** Counters. */
  readonly stats: DnsRelayStats = {
    queries: 0,
    cacheHits: 0,
    upstreamQueries: 0,
    upstreamFailures: 0,
    overloaded: 0,
    filteredRecords: 0,
    answered: 0,
  };
  #deps: DnsRelayDeps;
  #inFlight = new Map<string, { waiting: Query[]; abort: AbortController }>();
  #closed = false;

  /** Creates the relay. */
  constructor(deps: DnsRelayDeps) {
    this.#deps = deps;
    this.limits = { ...DEFAULT_DNS_RELAY_LIMITS, ...deps.limits };
  }

  /** Upstream resolutions in flight. */
  get pending(): number {
    return this.#inFlight.size;
  }

  /** Answers a deferred query (its bytes are borrowed for the call). */
  handle(client: GuestAddress, clientPort: number, query: Uint8Array): void {
    if (this.#closed) return;
    this.stats.queries++;
    const q = this.#parse(client, clientPort, query);
    if (!q) return;
    const now = this.#deps.clock.now();
    const cached = this.#deps.cache.get(q.question, now);
    if (cached) {
      this.stats.cacheHits++;
      this.#reply(q, cached);
      return;
    }
    const key = `${q.question.name.toLowerCase()}|${q.question.type}|${q.question.class}`;
    const running = this.#inFlight.get(key);
    if (running) {
      running.waiting.push(q);
      return;
    }
    if (this.#inFlight.size >= this.limits.maxPending) {
      this.stats.overloaded++;
      this.#reply(q, { rcode: DnsRcode.SERVFAIL, answers: [], authority: [] });
      return;
    }
    const abort = new AbortController();
    const entry = { waiting: [q], abort };
    this.#inFlight.set(key, entry);
    this.stats.upstreamQueries++;
    void this.#resolve(key, q.question, entry);
  }

  /** Ends every resolution in flight (their clients get nothing more); idempotent. */
  close(): void {
    this.#closed = true;
    for (const e of this.#inFlight.values()) e.abort.abort(new Error("the session ended"));
    this.#inFlight.clear();
  }

  async #resolve(
    key: string,
    question: DnsQuestion,
    entry: { waiting: Query[]; abort: AbortController },
  ): Promise<void> {
    const { clock } = this.#deps;
    const timer = clock.setTimer(
      clock.now() + this.limits.timeoutMs,
      () =>
        entry.abort.abort(new Error(`DNS upstream timed out after ${this.limits.timeoutMs} ms`)),
    );
    let set: DnsAnswerSet;
    try {
      set = await this.#deps.upstream.resolve(question, { signal: entry.abort.signal, clock });
      set = this.#filter(set);
      this.#deps.cache.put(question, set, clock.now());
    } catch {
      this.stats.upstreamFailures++;
      set = { rcode: DnsRcode.SERVFAIL, answers: [], authority: [] };
    } finally {
      clock.clearTimer(timer);
    }
    if (this.#inFlight.get(key) !== entry) return;
    this.#inFlight.delete(key);
    for (const q of entry.waiting) this.#reply(q, set);
  }

  #filter(set: DnsAnswerSet): DnsAnswerSet {
    const answers = set.answers.filter((r) => {
      const ip = addressOf(r);
      const reason = ip && this.#deps.policy.addressDenied(ip);
      if (!reason) return true;
      this.stats.filteredRecords++;
      this.#deps.onFiltered?.(reason);
      return false;
    });
    return answers.length === set.answers.length ? set : { ...set, answers };
  }

  #parse(client: GuestAddress, clientPort: number, query: Uint8Array): Query | undefined {
    const full = parseDnsMessage(query);
    if (full.ok && full.value.questions.length === 1) {
      const m = full.value;
      const opt = m.additional.find((r) => r.type === DnsRecordType.OPT);
      return { client, clientPort, id: m.id, rd: m.rd, question: m.questions[0], edns: opt?.class };
    }
    const q = parseDnsQuery(query);
    if (!q.ok) return undefined;
    return {
      client,
      clientPort,
      id: q.value.header.id,
      rd: q.value.header.rd,
      question: q.value.question,
    };
  }

  #reply(q: Query, set: DnsAnswerSet): void {
    if (this.#closed) return;
    // An IPv6 header is 20 bytes longer than IPv4's (RFC 8200 §3).
    const link = this.#deps.maxUdpSize - (typeof q.client === "string" ? 20 : 0);
    const maxSize = q.edns === undefined ? 512 : Math.max(512, Math.min(q.edns, link));
    const reply = buildDnsMessage({
      id: q.id,
      response: true,
      rd: q.rd,
      ra: true,
      rcode: set.rcode,
      question: q.question,
      answers: set.answers,
      authority: set.authority,
      additional: q.edns === undefined
        ? []
        : [{ name: "", type: DnsRecordType.OPT, class: link, ttl: 0, data: new Uint8Array(0) }],
      maxSize,
    });
    this.stats.answered++;
    this.#deps.answer(q.client, q.clientPort, reply);
  }
}
