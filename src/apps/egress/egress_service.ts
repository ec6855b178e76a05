/**
 * The server's egress: one policy, dialer and DNS upstream for every
 * session, a gateway per session created with egress on (the registry's
 * {@linkcode SessionEgressProvider}), and the counters of every gateway,
 * closed ones included, for /metrics.
 *
 * @module
 */

import type { Session, SessionEgressProvider } from "../../session/mod.ts";
import type { DnsCacheLimits } from "./dns/dns_cache.ts";
import type { DnsRelayLimits } from "./dns/dns_relay.ts";
import type { DnsUpstream } from "./dns/dns_upstream.ts";
import type { EgressDialer } from "./dialer.ts";
import { EgressGateway } from "./egress_gateway.ts";
import {
  addEgressCounters,
  type EgressCounters,
  type EgressLimits,
  emptyEgressCounters,
  resolveEgressLimits,
} from "./egress_limits.ts";
import type { EgressPolicy } from "./egress_policy.ts";

/** What the server's egress is made of. */
export interface EgressServiceOptions {
  /** The runtime's outbound sockets. */
  dialer: EgressDialer;
  /** The policy every session's flows are checked against. */
  policy: EgressPolicy;
  /** Where names the sessions do not own are resolved. */
  upstream: DnsUpstream;
  /** Per-session limits. */
  limits?: Partial<EgressLimits>;
  /** Per-session DNS cache limits. */
  dnsCache?: Partial<DnsCacheLimits>;
  /** Per-session DNS relay limits. */
  dns?: Partial<DnsRelayLimits>;
}

/** Flows open now, summed over the live gateways. */
export interface EgressGauges {
  /** Sessions with egress. */
  sessions: number;
  /** Outbound TCP connections open. */
  tcpConnections: number;
  /** UDP flows open. */
  udpFlows: number;
}

/**
 * Egress for a registry's sessions.
 *
 * @example
 * ```ts
 * const egress = new EgressService({ dialer, policy, upstream });
 * const registry = new SessionRegistry({ clock, egress });
 * for (const line of egress.describe()) console.log(line);
 * ```
 */
export class EgressService implements SessionEgressProvider {
  /** The policy. */
  readonly policy: EgressPolicy;
  /** The dialer. */
  readonly dialer: EgressDialer;
  /** The DNS upstream. */
  readonly upstream: DnsUpstream;
  /** The per-session limits. */
  readonly limits: EgressLimits;
  /** Counters of the gateways that closed, summed. */
  readonly retired: EgressCounters = emptyEgressCounters();
  #options: EgressServiceOptions;
  #live = new Set<EgressGateway>();

  /** Creates the service; RangeError for a bad limit. */
  constructor(options: EgressServiceOptions) {
    this.#options = options;
    this.policy = options.policy;
    this.dialer = options.dialer;
    this.upstream = options.upstream;
    this.limits = resolveEgressLimits(options.limits);
  }

  /** Starts a gateway for `session` (its stack has egress on); it closes with the session. */
  attach(session: Session): EgressGateway {
    const gw = new EgressGateway(session, { ...this.#options, limits: this.limits });
    this.#live.add(gw);
    session.onClose(() => {
      if (!this.#live.delete(gw)) return;
      gw.close();
      addEgressCounters(this.retired, gw.counters);
    });
    return gw;
  }

  /** Every counter, over closed and live gateways. */
  totals(): EgressCounters {
    const t = addEgressCounters(emptyEgressCounters(), this.retired);
    for (const gw of this.#live) addEgressCounters(t, gw.counters);
    return t;
  }

  /** What is open now. */
  gauges(): EgressGauges {
    const g: EgressGauges = { sessions: this.#live.size, tcpConnections: 0, udpFlows: 0 };
    for (const gw of this.#live) {
      const n = gw.flowCount;
      g.tcpConnections += n.tcp;
      g.udpFlows += n.udp;
    }
    return g;
  }

  /** The startup lines: what egress does and the operator's rules. */
  describe(): string[] {
    const l = this.limits;
    return [
      `egress on: outbound sockets by ${this.dialer.name}${
        this.dialer.openUdp ? "" : " (no outbound UDP: UDP gets ICMP prohibited)"
      }, DNS upstream ${this.upstream.description}`,
      ...this.policy.describe(),
      `egress limits per session: ${l.maxTcpConnections} TCP connections, ` +
      `${l.newConnectionsPerSecond}/s new (burst ${l.newConnectionsBurst}), ` +
      `${l.maxPendingConnects} pending connects, ${l.maxUdpFlows} UDP flows`,
    ];
  }
}
