/**
 * The JSON of a session in the HTTP API (`GET /v1/sessions/:sid`, and the
 * addressing in `POST /v1/sessions`): addressing, tunnel state, frame
 * counters, ARP cache, IPv6 (addresses, neighbour cache, path MTUs, router
 * advertisements), core-lock statistics, IPv4 reassembly, DHCP and the
 * session's quotas, built from what the session and its stack report.
 *
 * @module
 */

import {
  describeLease,
  type DhcpServerStats,
  type Ipv4ReassemblyStats,
  type MemoryQuotaStats,
  type SessionQuota,
  type SocketQuotaStats,
  type StackCountersSnapshot,
} from "../stack/mod.ts";
import { formatIpv4Address, formatIpv6Address, formatMacAddress } from "../wire/mod.ts";
import type { CoreLockStats, DelaySummary, Session } from "../session/mod.ts";
import { egressGatewayOf, type EgressView } from "../apps/egress/mod.ts";

/** A session's quotas: socket units and bytes of storage, used now and at most. */
export interface QuotaView {
  /** API sockets plus connections waiting in accept queues. */
  sockets: SocketQuotaStats;
  /** Bytes of storage the session makes the process hold (buffers plus per-buffer overhead). */
  memory: MemoryQuotaStats;
}

/**
 * The figures of a session's quotas.
 *
 * @example
 * ```ts
 * quotaView(session.stack.quota).sockets; // { used: 3, limit: 256, refused: 0 }
 * ```
 */
export function quotaView(quota: SessionQuota): QuotaView {
  return { sockets: quota.sockets.stats(), memory: quota.memory.stats() };
}

/** The IPv6 part of a {@linkcode SessionView}. */
export interface Ipv6View {
  /** The stack's address, e.g. `fd00::2`. */
  address: string;
  /** The on-link prefix, e.g. `fd00::/64`. */
  prefix: string;
  /** The stack's link-local address (from its MAC). */
  linkLocal: string;
  /** The neighbour cache (RFC 4861 §7.3.2 states). */
  neighbors: Array<{ address: string; mac: string | null; state: string; queued: number }>;
  /** Path MTUs learned from packet too big messages (RFC 8201). */
  pathMtu: Array<{ address: string; mtu: number; expiresInMs: number }>;
  /** Router advertisements sent, solicitations received, and those one advertisement answered. */
  routerAdvertisements: { sent: number; solicited: number; coalesced: number };
  /** Fragmented IPv6 packets by outcome (RFC 8200 §4.5). */
  reassembly: { completed: number; timedOut: number; discarded: number };
  /** The stateless DHCPv6 server's replies and the messages it dropped; null when it is off. */
  dhcpv6: { replies: number; dropped: number } | null;
}

/** The JSON shape of a session in the HTTP API. */
export interface SessionView {
  /** The session id. */
  id: string;
  /** The stack's MAC address. */
  mac: string;
  /** The stack's IPv4 address and prefix length. */
  ipv4: { address: string; prefixLength: number };
  /** IPv6 on the link; null when the session has none. */
  ipv6: Ipv6View | null;
  /** The link MTU. */
  mtu: number;
  /** Milliseconds since the session was created. */
  ageMs: number;
  /** Milliseconds since the last frame or API call that entered the core. */
  idleMs: number;
  /** The tunnel: attached now, what kind, since when, and its counters. */
  tunnel: {
    attached: boolean;
    kind: string | null;
    attachedForMs: number | null;
    attaches: number;
    rejectedMessages: number;
    backpressureDrops: number;
  };
  /** Frames and bytes each way, drops by reason (the session's own included). */
  counters: StackCountersSnapshot;
  /** The ARP cache. */
  arp: Array<{ address: string; mac: string | null; state: string; queued: number }>;
  /** The lock's counters, and the delays of `Session.coreDelay`. */
  coreLock: CoreLockStats & { frameWait: DelaySummary; timerLateness: DelaySummary };
  /** Fragmented IPv4 datagrams by outcome: completed, timed out, discarded over a limit. */
  reassembly: Ipv4ReassemblyStats;
  /** The DHCP server's lease table and counters; null when it is off. */
  dhcp: { leases: Array<ReturnType<typeof describeLease>>; stats: DhcpServerStats } | null;
  /** The session's quotas. */
  quota: QuotaView;
  /** Egress: flows, denials by reason, counters; null when the session has none. */
  egress: EgressView | null;
}

/**
 * The view of `session` for `GET /v1/sessions/:sid`.
 *
 * @example
 * ```ts
 * return c.json(sessionView(c.get("session")));
 * ```
 */
export function sessionView(session: Session): SessionView {
  const stack = session.stack;
  const now = session.clock.now();
  const tunnel = session.tunnel;
  const stats = session.tunnelStats;
  const dhcp = stack.dhcp;
  return {
    id: session.id,
    mac: formatMacAddress(stack.config.mac),
    ipv4: {
      address: formatIpv4Address(stack.config.ipv4.address),
      prefixLength: stack.config.ipv4.prefixLength,
    },
    ipv6: stack.ipv6
      ? {
        address: formatIpv6Address(stack.ipv6.address),
        prefix: `${formatIpv6Address(stack.ipv6.prefix)}/64`,
        linkLocal: formatIpv6Address(stack.ipv6.linkLocal),
        neighbors: stack.neighbors!.entries().map((e) => ({
          address: formatIpv6Address(e.ip),
          mac: e.mac ? formatMacAddress(e.mac) : null,
          state: e.state,
          queued: e.queued,
        })),
        pathMtu: stack.pathMtu!.entries().filter((e) => e.expires > now).map((e) => ({
          address: formatIpv6Address(e.dst),
          mtu: e.mtu,
          expiresInMs: Math.round(e.expires - now),
        })),
        routerAdvertisements: { ...stack.routerAdvertiser!.stats },
        reassembly: { ...stack.ipv6Reassembler!.stats },
        dhcpv6: stack.dhcpv6 ? { ...stack.dhcpv6.stats } : null,
      }
      : null,
    mtu: stack.config.mtu,
    ageMs: Math.round(now - session.createdAt),
    idleMs: Math.round(now - session.lastActivity),
    tunnel: {
      attached: tunnel !== undefined,
      kind: tunnel?.description ?? null,
      attachedForMs: tunnel === undefined ? null : Math.round(now - tunnel.attachedAt),
      attaches: stats.attaches,
      rejectedMessages: stats.rejectedMessages,
      backpressureDrops: stats.backpressureDrops,
    },
    counters: session.frameCounters(),
    arp: stack.arp.entries().map((e) => ({
      address: formatIpv4Address(e.ip),
      mac: e.mac ? formatMacAddress(e.mac) : null,
      state: e.mac ? "reachable" : "incomplete",
      queued: e.queued,
    })),
    coreLock: {
      ...session.lock.stats,
      frameWait: session.coreDelay.frames.summary(),
      timerLateness: session.coreDelay.timers.summary(),
    },
    reassembly: { ...stack.reassembler.stats },
    dhcp: dhcp
      ? {
        leases: dhcp.leases().map((l) => describeLease(l, now)),
        stats: { ...dhcp.stats, drops: { ...dhcp.stats.drops } },
      }
      : null,
    quota: quotaView(stack.quota),
    egress: egressGatewayOf(session)?.view() ?? null,
  };
}
