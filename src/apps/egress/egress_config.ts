/**
 * The server's egress settings from its environment, read in one place for
 * every runtime, and the service built from them with a runtime's adapters:
 *
 * - `NETISLE_EGRESS=on|off` (default off): sessions reach the world through
 *   the runtime's outbound sockets (each session unless created with
 *   `{"egress": false}`);
 * - `NETISLE_EGRESS_ALLOW`, `NETISLE_EGRESS_DENY`: comma-separated rules
 *   `[tcp:|udp:]CIDR[:PORT[-PORT]]` (see egress_policy.ts);
 * - `NETISLE_DNS_UPSTREAM`: `system` (default where the runtime has a
 *   resolver), `https://…` (DNS-over-HTTPS; the default on Cloudflare) or
 *   `udp:IP:PORT`.
 *
 * @module
 */

import type { EgressDialer } from "./dialer.ts";
import { DohUpstream } from "./dns/doh_upstream.ts";
import {
  type DnsUpstream,
  type DnsUpstreamSpec,
  parseDnsUpstreamSpec,
} from "./dns/dns_upstream.ts";
import { type SystemDnsLookup, SystemDnsUpstream } from "./dns/system_upstream.ts";
import { UdpDnsUpstream } from "./dns/udp_upstream.ts";
import { EgressPolicy, type EgressRule, parseEgressRules } from "./egress_policy.ts";
import { EgressService } from "./egress_service.ts";
import type { EgressLimits } from "./egress_limits.ts";
import { type IpAddress, parseIpAddress } from "./ip_address.ts";

/** The egress settings of a server, as read from its environment. */
export interface EgressConfig {
  /** `NETISLE_EGRESS_ALLOW`. */
  allow: EgressRule[];
  /** `NETISLE_EGRESS_DENY`. */
  deny: EgressRule[];
  /** `NETISLE_DNS_UPSTREAM`. */
  upstream: DnsUpstreamSpec;
  /** The egress variables as given (what a session worker reads again). */
  env: Record<string, string>;
}

/** The variables {@linkcode readEgressConfig} reads. */
export const EGRESS_ENV_VARS: readonly string[] = [
  "NETISLE_EGRESS",
  "NETISLE_EGRESS_ALLOW",
  "NETISLE_EGRESS_DENY",
  "NETISLE_DNS_UPSTREAM",
];

/**
 * Reads the egress variables: undefined when egress is off, the settings,
 * or an error message naming the variable and quoting its value.
 * `defaultUpstream` is the runtime's default for `NETISLE_DNS_UPSTREAM`.
 *
 * @example
 * ```ts
 * readEgressConfig({ NETISLE_EGRESS: "on", NETISLE_EGRESS_ALLOW: "198.18.0.0/15" });
 * ```
 */
export function readEgressConfig(
  env: Record<string, string | undefined>,
  defaultUpstream = "system",
): EgressConfig | undefined | string {
  const on = (env.NETISLE_EGRESS ?? "off").trim().toLowerCase();
  if (on === "off" || on === "") return undefined;
  if (on !== "on") return `NETISLE_EGRESS must be "on" or "off", got "${env.NETISLE_EGRESS}"`;
  const given: Record<string, string> = {};
  for (const k of EGRESS_ENV_VARS) if (env[k] !== undefined) given[k] = env[k]!;
  try {
    return {
      allow: parseEgressRules(env.NETISLE_EGRESS_ALLOW),
      deny: parseEgressRules(env.NETISLE_EGRESS_DENY),
      upstream: parseDnsUpstreamSpec(env.NETISLE_DNS_UPSTREAM || defaultUpstream),
      env: given,
    };
  } catch (err) {
    const which = /NETISLE_DNS_UPSTREAM/.test((err as Error).message) ? "" : "NETISLE_EGRESS_*: ";
    return `${which}${(err as Error).message}`;
  }
}

/**
 * The addresses a server listening on `hostname` calls its own: every
 * address of the machine (`hostAddresses`) when it listens on a wildcard
 * (`0.0.0.0`, `::`, empty), else the address it names.
 *
 * @example
 * ```ts
 * serverAddresses("0.0.0.0", ["127.0.0.1", "198.18.0.1"]).length; // 2
 * ```
 */
export function serverAddresses(hostname: string, hostAddresses: () => string[]): IpAddress[] {
  const h = hostname.replace(/^\[|\]$/g, "");
  const wildcard = h === "" || h === "0.0.0.0" || h === "::";
  const list = wildcard ? hostAddresses() : [h === "localhost" ? "127.0.0.1" : h];
  return list.map(parseIpAddress).filter((a): a is IpAddress => a !== undefined);
}

/** What a runtime gives the egress service. */
export interface EgressRuntime {
  /** Its outbound sockets. */
  dialer: EgressDialer;
  /** Its resolver, for `NETISLE_DNS_UPSTREAM=system`. */
  systemDns?: SystemDnsLookup;
  /**
   * The server's own addresses (see {@linkcode serverAddresses}); a function
   * is asked again every few seconds.
   */
  serverAddresses: IpAddress[] | (() => IpAddress[]);
  /** Per-session limits other than the defaults. */
  limits?: Partial<EgressLimits>;
}

/**
 * Builds the service for `config` with a runtime's adapters. Throws
 * TypeError when the upstream needs what the runtime lacks (`system`
 * without a resolver).
 *
 * @example
 * ```ts
 * const egress = createEgressService(config, { dialer: denoDialer(), systemDns: denoSystemDns(), serverAddresses: [] });
 * ```
 */
export function createEgressService(config: EgressConfig, runtime: EgressRuntime): EgressService {
  let upstream: DnsUpstream;
  const u = config.upstream;
  if (u.kind === "system") {
    if (!runtime.systemDns) {
      throw new TypeError(
        'NETISLE_DNS_UPSTREAM=system: this runtime has no resolver; use "https://…" or udp:IP:PORT',
      );
    }
    upstream = new SystemDnsUpstream(runtime.systemDns);
  } else if (u.kind === "https") {
    upstream = new DohUpstream(u.url);
  } else {
    upstream = new UdpDnsUpstream(runtime.dialer, u.address, u.port);
  }
  return new EgressService({
    dialer: runtime.dialer,
    upstream,
    limits: runtime.limits,
    policy: new EgressPolicy({
      allow: config.allow,
      deny: config.deny,
      serverAddresses: runtime.serverAddresses,
    }),
  });
}
