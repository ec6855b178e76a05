/**
 * The `netisle_egress_*` families of `GET /metrics`: totals over the
 * sessions of an {@linkcode EgressService} (closed ones included, so
 * counters never go down) and gauges of what is open now. Every label has a
 * bounded set of values (protocol, direction, outcome, reason).
 *
 * @module
 */

import { EGRESS_DENIALS, EGRESS_DENY_REASONS, type EgressService } from "../apps/egress/mod.ts";
import type { MetricsCollector, MetricsWriter } from "./metrics.ts";

/**
 * A collector for `createApp({ metricsCollectors })` that writes the egress
 * families of `service`.
 *
 * @example
 * ```ts
 * createApp({ registry, metricsCollectors: [egressMetricsCollector(egress)] });
 * ```
 */
export function egressMetricsCollector(service: EgressService): MetricsCollector {
  return (w: MetricsWriter) => {
    const t = service.totals();
    const g = service.gauges();
    w.family("netisle_egress_sessions", "gauge", "Sessions with egress now.").sample(g.sessions);
    w.family("netisle_egress_flows", "gauge", "Egress flows open now, by protocol.")
      .sample(g.tcpConnections, { protocol: "tcp" })
      .sample(g.udpFlows, { protocol: "udp" });
    w.family(
      "netisle_egress_tcp_connects_total",
      "counter",
      "Outbound TCP connections by outcome: opened; refused (RST to the guest); unreachable, " +
        "timed_out (ICMP host unreachable); prohibited by the platform.",
    )
      .sample(t.tcp.opened, { outcome: "opened" })
      .sample(t.tcp.refused, { outcome: "refused" })
      .sample(t.tcp.unreachable, { outcome: "unreachable" })
      .sample(t.tcp.timedOut, { outcome: "timed_out" })
      .sample(t.tcp.prohibited, { outcome: "prohibited" });
    w.family(
      "netisle_egress_tcp_idle_resets_total",
      "counter",
      "Outbound TCP connections reset after idling past the limit.",
    ).sample(t.tcp.idleResets);
    w.family(
      "netisle_egress_bytes_total",
      "counter",
      "Payload bytes through egress, by protocol and direction (out = guest to the world).",
    )
      .sample(t.tcp.bytesOut, { protocol: "tcp", direction: "out" })
      .sample(t.tcp.bytesIn, { protocol: "tcp", direction: "in" })
      .sample(t.udp.bytesOut, { protocol: "udp", direction: "out" })
      .sample(t.udp.bytesIn, { protocol: "udp", direction: "in" });
    w.family("netisle_egress_udp_flows_total", "counter", "UDP flows opened.").sample(t.udp.flows);
    w.family("netisle_egress_udp_datagrams_total", "counter", "UDP datagrams, by direction.")
      .sample(t.udp.datagramsOut, { direction: "out" })
      .sample(t.udp.datagramsIn, { direction: "in" });
    w.family(
      "netisle_egress_udp_dropped_total",
      "counter",
      "UDP datagrams dropped: from a peer the flow never sent to, too large, or queued too long.",
    ).sample(t.udp.dropped);
    w.family(
      "netisle_egress_udp_port_unreachable_total",
      "counter",
      "ICMP port unreachable sent to guests after the runtime reported one.",
    ).sample(t.udp.portUnreachable);
    const denied = w.family(
      "netisle_egress_denied_total",
      "counter",
      "Flows refused at once, by reason (the policy's and the per-session limits').",
    );
    for (const reason of EGRESS_DENIALS) denied.sample(t.denied[reason], { reason });
    w.family(
      "netisle_egress_dns_queries_total",
      "counter",
      "DNS queries relayed upstream, by result.",
    )
      .sample(t.dns.cacheHits, { result: "cache" })
      .sample(t.dns.upstreamQueries, { result: "upstream" })
      .sample(t.dns.upstreamFailures, { result: "servfail_upstream" })
      .sample(t.dns.overloaded, { result: "servfail_overloaded" });
    const filtered = w.family(
      "netisle_egress_dns_filtered_records_total",
      "counter",
      "DNS address records left out because the policy denies the address, by reason.",
    );
    for (const reason of EGRESS_DENY_REASONS) filtered.sample(t.dnsFiltered[reason], { reason });
  };
}
