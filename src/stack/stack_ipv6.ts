/**
 * The IPv6 side of one stack, built beside IPv4 by {@linkcode Stack}: the
 * addressing it checks, and the layers it wires together (`ipv6_output.ts`,
 * `ndp_layer.ts` with `neighbor_cache.ts` and `router_advertiser.ts`,
 * `icmpv6_layer.ts` with `path_mtu_cache.ts`, `ipv6_input.ts` with
 * `ipv6_reassembler.ts`), with one
 * entry for received packets, the timers, and the invariants.
 *
 * @module
 */

import {
  formatIpv6Address,
  IPV6_MIN_MTU,
  type Ipv6Address,
  type Ipv6ExtLimits,
  ipv6InPrefix,
  ipv6LinkLocalFromMac,
  ipv6MulticastMac,
  ipv6Prefix,
  isIpv6LinkLocal,
  isIpv6Unicast,
  type MacAddress,
  parseIpv6Address,
} from "../wire/mod.ts";
import type { StackCounters } from "./counters.ts";
import type { EthernetLayer } from "./ethernet_layer.ts";
import { type Icmpv6ErrorRepr, Icmpv6Layer, type Icmpv6LayerDeps } from "./icmpv6_layer.ts";
import type { ReassemblyLimits } from "./fragment_reassembler.ts";
import { Ipv6Input, type Ipv6InputDeps, type Ipv6Outside } from "./ipv6_input.ts";
import { Ipv6Reassembler } from "./ipv6_reassembler.ts";
import { IPV6_PREFIX_LENGTH, type Ipv6Addressing, Ipv6Output } from "./ipv6_output.ts";
import { NdpLayer } from "./ndp_layer.ts";
import { NeighborCache, type NeighborCacheOptions } from "./neighbor_cache.ts";
import { PathMtuCache } from "./path_mtu_cache.ts";
import {
  DEFAULT_ROUTER_ADVERT_OPTIONS,
  RouterAdvertiser,
  type RouterAdvertOptions,
} from "./router_advertiser.ts";
import type { UdpLayer } from "./udp/mod.ts";
import { DHCPV6_ALL_RELAY_AGENTS_AND_SERVERS } from "../wire/mod.ts";
import type { MemoryQuota } from "./session_quota.ts";

/** The IPv6 addressing a stack gets by default: `fd00::/64`, the stack at `fd00::2`. */
export const DEFAULT_IPV6: { prefix: Ipv6Address; address: Ipv6Address } = Object.freeze({
  prefix: parseIpv6Address("fd00::"),
  address: parseIpv6Address("fd00::2"),
});

/**
 * The IPv6 addressing a stack's settings ask for, checked: undefined when
 * IPv6 is off (`false`, or by default on a link whose MTU is under 1280,
 * RFC 8200 §5).
 *
 * @throws {RangeError} for an explicit IPv6 on an MTU under 1280, a prefix
 *   that is no unicast /64 with zero host bits, or an address outside it.
 * @example
 * ```ts
 * checkIpv6Config(1500, undefined); // DEFAULT_IPV6
 * checkIpv6Config(576, undefined); // undefined
 * ```
 */
export function checkIpv6Config(
  mtu: number,
  v6: { prefix: Ipv6Address; address: Ipv6Address } | false | undefined,
): { prefix: Ipv6Address; address: Ipv6Address } | undefined {
  if (v6 === false) return undefined;
  if (v6 === undefined) return mtu >= IPV6_MIN_MTU ? DEFAULT_IPV6 : undefined;
  if (mtu < IPV6_MIN_MTU) {
    throw new RangeError(`Stack: IPv6 needs an MTU of at least ${IPV6_MIN_MTU}, got ${mtu}`);
  }
  const { prefix, address } = v6;
  if (ipv6Prefix(prefix, IPV6_PREFIX_LENGTH) !== prefix || !isIpv6Unicast(prefix)) {
    throw new RangeError(
      `Stack: ipv6.prefix must be a unicast /64 prefix with zero host bits, got "${
        formatIpv6Address(prefix)
      }"`,
    );
  }
  if (!ipv6InPrefix(address, prefix, IPV6_PREFIX_LENGTH) || address === prefix) {
    throw new RangeError(
      `Stack: ipv6.address must be in ${formatIpv6Address(prefix)}/64 and not the prefix ` +
        `itself, got "${formatIpv6Address(address)}"`,
    );
  }
  return { prefix, address };
}

/** What the IPv6 side needs from its stack. */
export interface StackIpv6Deps {
  /** The checked prefix and address ({@linkcode checkIpv6Config}). */
  addressing: { prefix: Ipv6Address; address: Ipv6Address };
  /** The stack's MAC (its link-local address derives from it). */
  mac: MacAddress;
  /** The link's IP MTU. */
  mtu: number;
  /** The link layer (IPv6 listens to its groups' MACs there). */
  eth: EthernetLayer;
  /** The stack's counters. */
  counters: StackCounters;
  /** The stack's random source (router advertisement timing). */
  random: (buf: Uint8Array) => void;
  /** ICMPv6 errors per second, also the burst. */
  errorsPerSecond: number;
  /** Neighbour cache limits and timings. */
  ndp?: Partial<NeighborCacheOptions>;
  /** Router advertisement timings and lifetimes. */
  routerAdvert?: Partial<RouterAdvertOptions>;
  /** Limits of the extension-header chain. */
  extLimits?: Ipv6ExtLimits;
  /** Limits of reassembly (memory, datagrams, fragments, time; 60 s by default). */
  reassembly?: Partial<ReassemblyLimits>;
  /** The session's memory quota, charged for held fragments. */
  memory?: MemoryQuota;
  /** TCP, told of packet too big messages about its segments (see `Icmpv6LayerDeps.tcpTooBig`). */
  tcpTooBig?: Icmpv6LayerDeps["tcpTooBig"];
  /** TCP over IPv6 (see `Ipv6InputDeps.tcp`). */
  tcp?: Ipv6InputDeps["tcp"];
  /**
   * The stack's UDP layer: it sends over IPv6 through this side's output,
   * gets UDP from IPv6 input and ICMPv6 errors about its datagrams.
   * Without it every UDP port over IPv6 is closed.
   */
  udp?: UdpLayer;
  /**
   * Whether the stateless DHCPv6 server runs: the stack then joins
   * ff02::1:2 (RFC 8415 §7.1) and sets the O flag in its router
   * advertisements (RFC 4861 §4.2).
   */
  dhcpv6?: boolean;
  /**
   * Egress over IPv6: where packets to off-link unicast addresses go (see
   * `Ipv6InputDeps.outside`). With it the router advertisements announce
   * a default route: router lifetime {@linkcode EGRESS_ROUTER_LIFETIME}
   * unless `routerAdvert.routerLifetime` says otherwise.
   */
  outside?: Ipv6Outside;
}

/**
 * The router lifetime, in s, the stack advertises when it has IPv6 egress:
 * RFC 4861 §6.2.1's default AdvDefaultLifetime, 3 × MaxRtrAdvInterval
 * (600 s by default), at most 9000.
 *
 * @example
 * ```ts
 * egressRouterLifetime(600_000); // 1800
 * ```
 */
export function egressRouterLifetime(maxIntervalMs: number): number {
  return Math.min(9000, Math.ceil((3 * maxIntervalMs) / 1000));
}

/**
 * IPv6 on one stack's link.
 *
 * @example
 * ```ts
 * const v6 = new StackIpv6({ addressing: DEFAULT_IPV6, mac, mtu: 1500, eth, counters, random, errorsPerSecond: 100 });
 * v6.input(ethernetPayload, now, linkMulticast);
 * v6.poll(now);
 * ```
 */
export class StackIpv6 {
  /** The stack's addresses: prefix, address, link-local. */
  readonly addressing: Readonly<Ipv6Addressing>;
  /** The neighbour cache (RFC 4861). */
  readonly neighbors: NeighborCache;
  /** Path MTUs learned from packet too big (RFC 8201). */
  readonly pathMtu: PathMtuCache;
  /** The router advertisement schedule and its counts. */
  readonly routerAdvertiser: RouterAdvertiser;
  /** IPv6 output: what the transports send through. */
  readonly out: Ipv6Output;
  /** Reassembly of received fragments (RFC 8200 §4.5). */
  readonly reassembler: Ipv6Reassembler;
  #ndp: NdpLayer;
  #icmp: Icmpv6Layer;
  #input: Ipv6Input;

  /** Builds the layers and makes the link listen to the groups the stack joins. */
  constructor(deps: StackIpv6Deps) {
    const addressing = { ...deps.addressing, linkLocal: ipv6LinkLocalFromMac(deps.mac) };
    this.addressing = Object.freeze(addressing);
    const { eth, counters, mtu } = deps;
    const allocFrame = (len: number) => eth.allocFrame(len);
    const out = this.out = new Ipv6Output({ addressing, mtu, eth, counters, allocFrame });
    this.neighbors = new NeighborCache(deps.ndp);
    const ra = deps.routerAdvert;
    this.routerAdvertiser = new RouterAdvertiser(
      {
        ...ra,
        otherConfig: ra?.otherConfig ?? deps.dhcpv6 ?? false,
        // RFC 4861 §6.2.1: a default router only when packets can leave the link (egress).
        routerLifetime: ra?.routerLifetime ??
          (deps.outside
            ? egressRouterLifetime(
              ra?.maxIntervalMs ?? DEFAULT_ROUTER_ADVERT_OPTIONS.maxIntervalMs,
            )
            : 0),
      },
      deps.random,
    );
    deps.udp?.setIpv6(out);
    this.#ndp = new NdpLayer({
      out,
      cache: this.neighbors,
      advertiser: this.routerAdvertiser,
      eth,
      mtu,
      counters,
      allocFrame,
    });
    this.pathMtu = new PathMtuCache(mtu);
    this.#icmp = new Icmpv6Layer({
      out,
      ndp: this.#ndp,
      pmtu: this.pathMtu,
      errorsPerSecond: deps.errorsPerSecond,
      counters,
      tcpTooBig: deps.tcpTooBig,
      udp: deps.udp,
    });
    this.reassembler = new Ipv6Reassembler(deps.reassembly, deps.memory, deps.extLimits);
    this.#input = new Ipv6Input({
      out,
      icmp: this.#icmp,
      extLimits: deps.extLimits,
      reassembler: this.reassembler,
      tcp: deps.tcp,
      udp: deps.udp,
      groups: deps.dhcpv6 ? [DHCPV6_ALL_RELAY_AGENTS_AND_SERVERS] : [],
      outside: deps.outside,
    });
    eth.multicastMacs = this.#input.groups.map(ipv6MulticastMac);
  }

  /**
   * Sends an ICMPv6 error about `invoking` (an IPv6 packet, or its first
   * bytes) to its source, from `from` or the stack's address for it, under
   * the rules and rate limit of the stack's other errors (RFC 4443 §2.4):
   * the egress gateway's answers about flows to outside addresses.
   */
  sendError(invoking: Uint8Array, error: Icmpv6ErrorRepr, now: number, from?: Ipv6Address): void {
    this.#icmp.sendError(invoking, error, now, false, false, from);
  }

  /** ICMPv6 errors sent, and those the rate limit suppressed. */
  get errorStats(): { sent: number; rateLimited: number } {
    return this.#icmp.errorStats;
  }

  /**
   * An IPv6 packet from the link (`multicast`: to a group MAC). The first
   * one starts router advertisements. Returns a drop reason, or undefined.
   */
  input(payload: Uint8Array, now: number, multicast: boolean): string | undefined {
    this.#ndp.heard(now);
    return this.#input.input(payload, now, multicast);
  }

  /**
   * Runs the timers: neighbour resolution and probes, router
   * advertisements, reassembly time-outs.
   */
  poll(now: number): void {
    this.#ndp.poll(now);
    for (const e of this.reassembler.poll(now)) {
      // RFC 8200 §4.5: time exceeded code 1, only when the offset-0 fragment
      // arrived; never about a multicast packet (sendError checks, RFC 4443 §2.4).
      if (e.firstFragment) {
        this.#icmp.sendError(
          e.firstFragment,
          { type: "time_exceeded", code: 1 },
          now,
          e.linkBroadcast,
        );
      }
    }
  }

  /** The earliest time {@linkcode StackIpv6.poll} has work, or undefined. */
  nextDeadline(): number | undefined {
    const a = this.#ndp.nextDeadline();
    const b = this.reassembler.nextDeadline();
    return a === undefined ? b : b === undefined ? a : Math.min(a, b);
  }

  /**
   * Violations of the IPv6 side's limits (empty when all hold): the
   * neighbour cache within its entries and queues, holding only on-link
   * unicast neighbours; the path MTU table within its size, never under 1280.
   */
  checkInvariants(): string[] {
    const bad: string[] = [];
    const n = this.neighbors;
    const o = n.options;
    if (n.size > o.maxEntries || n.queued > o.maxQueuedTotal) {
      bad.push(`neighbour cache holds ${n.size} entries, ${n.queued} frames, over its limits`);
    }
    const a = this.addressing;
    for (const e of n.entries()) {
      if (e.queued > o.maxQueuedPerEntry) {
        bad.push(`neighbour ${formatIpv6Address(e.ip)} queues ${e.queued} frames`);
      }
      if (
        !isIpv6Unicast(e.ip) || e.ip === a.address || e.ip === a.linkLocal ||
        !(isIpv6LinkLocal(e.ip) || ipv6InPrefix(e.ip, a.prefix, IPV6_PREFIX_LENGTH))
      ) {
        bad.push(`neighbour cache holds ${formatIpv6Address(e.ip)}, not an on-link neighbour`);
      }
    }
    const r = this.reassembler;
    if (r.bytesHeld > r.limits.maxBytes || r.datagrams > r.limits.maxDatagrams) {
      bad.push(
        `IPv6 reassembly holds ${r.bytesHeld} bytes in ${r.datagrams} datagrams, over its limits`,
      );
    }
    const pm = this.pathMtu;
    if (pm.size > pm.options.maxEntries || pm.entries().some((e) => e.mtu < IPV6_MIN_MTU)) {
      bad.push(`path MTU table holds ${pm.size} entries or one under ${IPV6_MIN_MTU}`);
    }
    return bad;
  }
}
