/**
 * The per-session limits of egress, the bounded set of reasons a flow is
 * refused, and the counters a gateway keeps (summed over sessions for
 * /metrics, the retired sessions' included so counters never go down).
 *
 * @module
 */

import { EGRESS_DENY_REASONS, type EgressDenyReason } from "./egress_policy.ts";

/** Limits of one session's egress (issue 13's defaults). */
export interface EgressLimits {
  /** Outbound TCP connections open at once (RST beyond). */
  maxTcpConnections: number;
  /** New outbound TCP connections per second (a token bucket; RST beyond). */
  newConnectionsPerSecond: number;
  /** The bucket's size: connections that may start at once. */
  newConnectionsBurst: number;
  /** Dials in progress at once: half-open attempts (RST beyond). */
  maxPendingConnects: number;
  /** UDP flows (guest address and port → one runtime socket) at once (ICMP beyond). */
  maxUdpFlows: number;
  /** How long a dial may take before the guest gets host unreachable (ms). */
  connectTimeoutMs: number;
  /** A TCP connection idle this long both ways is reset (ms). */
  tcpIdleTimeoutMs: number;
  /** A UDP flow idle this long is closed (ms). */
  udpIdleTimeoutMs: number;
  /** A UDP flow whose last destination port was 53 (DNS), idle this long, is closed (ms). */
  dnsUdpIdleTimeoutMs: number;
  /** Datagrams one flow queues while its socket opens (more are dropped). */
  udpQueuedWhileOpening: number;
}

/** Defaults for {@linkcode EgressLimits}. */
export const DEFAULT_EGRESS_LIMITS: EgressLimits = {
  maxTcpConnections: 256,
  newConnectionsPerSecond: 50,
  newConnectionsBurst: 100,
  maxPendingConnects: 32,
  maxUdpFlows: 256,
  connectTimeoutMs: 30_000,
  tcpIdleTimeoutMs: 2 * 60 * 60_000,
  udpIdleTimeoutMs: 60_000,
  dnsUdpIdleTimeoutMs: 30_000,
  udpQueuedWhileOpening: 32,
};

/**
 * Checks `limits` merged over the defaults: every value a positive number
 * (integers for counts). Throws RangeError naming the field.
 *
 * @example
 * ```ts
 * const limits = resolveEgressLimits({ maxTcpConnections: 64 });
 * ```
 */
export function resolveEgressLimits(limits: Partial<EgressLimits> = {}): EgressLimits {
  const l = { ...DEFAULT_EGRESS_LIMITS, ...limits };
  for (const [k, v] of Object.entries(l)) {
    const rate = k === "newConnectionsPerSecond";
    if (!(typeof v === "number" && v > 0 && Number.isFinite(v) && (rate || Number.isInteger(v)))) {
      throw new RangeError(`egress limits: ${k} must be a positive integer, got ${v}`);
    }
  }
  return l;
}

/** Why a new flow is refused by a limit or by the runtime. */
export type EgressLimitReason =
  | "limit_tcp_connections"
  | "limit_new_connections"
  | "limit_pending_connects"
  | "limit_udp_flows"
  | "udp_unsupported";

/** Every reason a flow is refused: the policy's, then the limits'. */
export type EgressDenial = EgressDenyReason | EgressLimitReason;

/** Every {@linkcode EgressDenial}, the `reason` label values of the denial counter. */
export const EGRESS_DENIALS: readonly EgressDenial[] = [
  ...EGRESS_DENY_REASONS,
  "limit_tcp_connections",
  "limit_new_connections",
  "limit_pending_connects",
  "limit_udp_flows",
  "udp_unsupported",
];

/** Counters of one session's egress (or a sum of them). */
export interface EgressCounters {
  /** Flows refused, by reason (policy and limits). */
  denied: Record<EgressDenial, number>;
  /** DNS address records left out because the policy denies the address, by reason. */
  dnsFiltered: Record<EgressDenyReason, number>;
  tcp: {
    /** Outbound connections opened (SYN-ACK sent to the guest). */
    opened: number;
    /** Dials the destination refused (RST to the guest). */
    refused: number;
    /** Dials that found no route (ICMP host unreachable). */
    unreachable: number;
    /** Dials that timed out (ICMP host unreachable). */
    timedOut: number;
    /** Dials the platform refused (ICMP administratively prohibited). */
    prohibited: number;
    /** Connections reset because they idled past the limit. */
    idleResets: number;
    /** Bytes from the guest to the outside, and back. */
    bytesOut: number;
    bytesIn: number;
  };
  udp: {
    /** Flows opened. */
    flows: number;
    /** Datagrams and bytes from the guest to the outside, and back. */
    datagramsOut: number;
    datagramsIn: number;
    bytesOut: number;
    bytesIn: number;
    /** ICMP port unreachable sent to the guest after the runtime reported one. */
    portUnreachable: number;
    /** Datagrams dropped (from a peer the flow never sent to, too large, queue full). */
    dropped: number;
  };
  dns: {
    queries: number;
    cacheHits: number;
    upstreamQueries: number;
    upstreamFailures: number;
    overloaded: number;
  };
}

/**
 * All-zero counters.
 *
 * @example
 * ```ts
 * const c = emptyEgressCounters();
 * c.denied.reserved_address; // 0
 * ```
 */
export function emptyEgressCounters(): EgressCounters {
  const denied = {} as Record<EgressDenial, number>;
  for (const r of EGRESS_DENIALS) denied[r] = 0;
  const dnsFiltered = {} as Record<EgressDenyReason, number>;
  for (const r of EGRESS_DENY_REASONS) dnsFiltered[r] = 0;
  return {
    denied,
    dnsFiltered,
    tcp: {
      opened: 0,
      refused: 0,
      unreachable: 0,
      timedOut: 0,
      prohibited: 0,
      idleResets: 0,
      bytesOut: 0,
      bytesIn: 0,
    },
    udp: {
      flows: 0,
      datagramsOut: 0,
      datagramsIn: 0,
      bytesOut: 0,
      bytesIn: 0,
      portUnreachable: 0,
      dropped: 0,
    },
    dns: { queries: 0, cacheHits: 0, upstreamQueries: 0, upstreamFailures: 0, overloaded: 0 },
  };
}

/**
 * Adds `from` into `into` and returns `into`.
 *
 * @example
 * ```ts
 * const total = addEgressCounters(emptyEgressCounters(), gateway.counters);
 * ```
 */
export function addEgressCounters(into: EgressCounters, from: EgressCounters): EgressCounters {
  const add = (a: Record<string, number>, b: Record<string, number>) => {
    for (const k in b) a[k] = (a[k] ?? 0) + b[k];
  };
  add(into.denied, from.denied);
  add(into.dnsFiltered, from.dnsFiltered);
  add(into.tcp, from.tcp);
  add(into.udp, from.udp);
  add(into.dns, from.dns);
  return into;
}
