/**
 * The egress gateway of one session: the NAT between the session's machine
 * and the runtime's own outbound sockets. It owns the stack's egress events
 * (src/stack/stack_egress.ts): after the core lock is released it takes what
 * the core recorded (datagrams to outside addresses, DNS queries for other
 * names) and answers through new core entries once the runtime or the
 * upstream resolver has answered. Flows are checked against the server's
 * policy and the session's limits, counted, and listed in the session view.
 *
 * @module
 */

import type { EgressEvent } from "../../stack/stack_egress.ts";
import type { DnsCacheLimits } from "./dns/dns_cache.ts";
import { DnsCache } from "./dns/dns_cache.ts";
import { DnsRelay, type DnsRelayLimits } from "./dns/dns_relay.ts";
import type { DnsUpstream } from "./dns/dns_upstream.ts";
import type { EgressDialer } from "./dialer.ts";
import { EgressCore, type EgressHost } from "./egress_core.ts";
import {
  type EgressCounters,
  type EgressDenial,
  type EgressLimits,
  emptyEgressCounters,
  resolveEgressLimits,
} from "./egress_limits.ts";
import type { EgressPolicy } from "./egress_policy.ts";
import { UdpFlowTable, type UdpFlowView } from "./udp_flows.ts";
import { TcpFlowTable, type TcpFlowView } from "./tcp_flows.ts";

/** What a gateway is made of: the server's dialer, policy and upstream, the session's limits. */
export interface EgressGatewayOptions {
  /** The runtime's outbound sockets. */
  dialer: EgressDialer;
  /** The server's policy. */
  policy: EgressPolicy;
  /** Where names the session does not own are resolved. */
  upstream: DnsUpstream;
  /** Per-session limits (defaults: {@linkcode DEFAULT_EGRESS_LIMITS}). */
  limits?: Partial<EgressLimits>;
  /** The DNS cache's limits. */
  dnsCache?: Partial<DnsCacheLimits>;
  /** The DNS relay's limits. */
  dns?: Partial<DnsRelayLimits>;
}

/** A flow as the session view lists it. */
export type EgressFlowView = TcpFlowView | UdpFlowView;

/** The egress section of the session view (`GET /v1/sessions/:sid`). */
export interface EgressView {
  /** The runtime's dialer. */
  dialer: string;
  /** The DNS upstream. */
  dnsUpstream: string;
  /** Open flows, TCP and UDP. */
  flows: EgressFlowView[];
  /** Flows refused, by reason (the policy's and the limits'). */
  denied: Record<EgressDenial, number>;
  /** Counters. */
  counters: Omit<EgressCounters, "denied">;
  /** The DNS cache. */
  dnsCache: { entries: number; bytes: number; hits: number; misses: number };
  /** The limits in force. */
  limits: EgressLimits;
}

const gateways = new WeakMap<object, EgressGateway>();

/**
 * The gateway serving `session`, if it has one.
 *
 * @example
 * ```ts
 * const view = egressGatewayOf(session)?.view() ?? null;
 * ```
 */
export function egressGatewayOf(session: object): EgressGateway | undefined {
  return gateways.get(session);
}

/**
 * One session's egress.
 *
 * @example
 * ```ts
 * const gw = new EgressGateway(session, { dialer, policy, upstream });
 * // ... the session's machine now reaches the world; when the session ends:
 * gw.close();
 * ```
 */
export class EgressGateway {
  /** The limits in force. */
  readonly limits: EgressLimits;
  readonly #counters: EgressCounters = emptyEgressCounters();
  readonly #core: EgressCore;
  readonly #options: EgressGatewayOptions;
  readonly #udp: UdpFlowTable;
  readonly #tcp: TcpFlowTable;
  readonly #dns: DnsRelay;
  readonly #cache: DnsCache;
  #scheduled = false;
  #closed = false;

  /**
   * Takes over `host`'s egress events (its stack must have egress on;
   * TypeError otherwise). RangeError for a bad limit.
   */
  constructor(host: EgressHost, options: EgressGatewayOptions) {
    this.limits = resolveEgressLimits(options.limits);
    this.#options = options;
    const core = this.#core = new EgressCore(host);
    const clock = host.clock;
    const deny = (reason: EgressDenial) => this.#counters.denied[reason]++;
    const flowDeps = {
      core,
      clock,
      dialer: options.dialer,
      policy: options.policy,
      limits: this.limits,
      counters: this.#counters,
      deny,
    };
    this.#udp = new UdpFlowTable(flowDeps);
    this.#tcp = new TcpFlowTable(flowDeps);
    this.#cache = new DnsCache(options.dnsCache, host.stack.quota.memory);
    this.#dns = new DnsRelay({
      upstream: options.upstream,
      cache: this.#cache,
      policy: options.policy,
      clock,
      maxUdpSize: core.maxUdpPayload,
      limits: options.dns,
      answer: (client, port, reply) =>
        core.enter((egress, now) => egress.answerDns(client, port, reply, now)),
      onFiltered: (reason) => this.#counters.dnsFiltered[reason]++,
    });
    host.stack.egress!.owner = this;
    gateways.set(host, this);
    // Events recorded before the gateway was attached are taken now.
    this.onEvents(0);
  }

  /** Whether {@linkcode EgressGateway.close} ran. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Called by the session after it released the core lock, when the stack's
   * egress recorded events: they are taken in a microtask (never from inside
   * the session's own release path).
   */
  onEvents(_bits: number): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#drain();
    });
  }

  #drain(): void {
    const events = this.#core.enter((egress) => egress.take()) ?? [];
    for (const e of events) this.#dispatch(e);
  }

  #dispatch(e: EgressEvent): void {
    switch (e.kind) {
      case "tcp_syn":
      case "tcp_cancel":
        this.#tcp.handle(e);
        return;
      case "udp":
        this.#udp.handle(e);
        return;
      case "dns":
        this.#dns.handle(e.client, e.clientPort, e.query);
        this.#core.release(e.charge);
        return;
    }
  }

  /**
   * Ends the session's egress: closes every runtime socket, ends DNS
   * resolutions in flight and stops every timer; queued events are dropped
   * and their charges released. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#tcp.close();
    this.#udp.close();
    this.#dns.close();
    this.#cache.clear();
    this.#core.enter((egress) => {
      egress.clear();
      if (egress.owner === this) egress.owner = undefined;
    });
    this.#core.close();
  }

  /** Counters (the server sums them into its totals when the gateway closes). */
  get counters(): EgressCounters {
    const s = this.#dns.stats;
    const c = this.#counters.dns;
    c.queries = s.queries;
    c.cacheHits = s.cacheHits;
    c.upstreamQueries = s.upstreamQueries;
    c.upstreamFailures = s.upstreamFailures;
    c.overloaded = s.overloaded;
    return this.#counters;
  }

  /** Open flows: TCP and UDP. */
  get flowCount(): { tcp: number; udp: number } {
    return { tcp: this.#tcp.size, udp: this.#udp.size };
  }

  /** The egress section of the session view. */
  view(): EgressView {
    const now = this.#core.host.clock.now();
    const { denied, ...counters } = this.counters;
    return {
      dialer: this.#options.dialer.name,
      dnsUpstream: this.#options.upstream.description,
      flows: [...this.#tcp.view(now), ...this.#udp.view(now)],
      denied: { ...denied },
      counters: structuredClone(counters),
      dnsCache: {
        entries: this.#cache.size,
        bytes: this.#cache.bytes,
        hits: this.#cache.stats.hits,
        misses: this.#cache.stats.misses,
      },
      limits: { ...this.limits },
    };
  }
}
