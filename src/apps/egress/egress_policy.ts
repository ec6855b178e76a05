/**
 * The egress policy: which outside destinations a session's machine may
 * reach. It is checked on the IP address actually dialled (after any name
 * resolution), per new flow, in this order:
 *
 * 1. the operator's deny rules (`NETISLE_EGRESS_DENY`): `deny_rule`;
 * 2. the server's own addresses, every port: `server_address` (an allow
 *    rule does not open them: a guest must not reach the server's host);
 * 3. the operator's allow rules (`NETISLE_EGRESS_ALLOW`): allowed, except
 *    port 25, which only a rule naming a port range that holds 25 opens;
 * 4. the default deny list ({@linkcode DEFAULT_DENIED_RANGES}): unspecified,
 *    private, shared (RFC 6598), loopback, link-local (cloud metadata at
 *    169.254.169.254), benchmarking (RFC 2544), multicast and reserved
 *    IPv4 ranges; for IPv6 the unspecified and loopback addresses, unique
 *    local, link-local and multicast: `reserved_address`;
 * 5. destination port 25 (SMTP, the spam relay every provider closes):
 *    `smtp_port`;
 * 6. anything else is allowed.
 *
 * IPv6 spellings of an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64)
 * are checked as that IPv4 address too, so `::ffff:127.0.0.1` is loopback.
 *
 * A rule is `[tcp:|udp:]CIDR[:PORT[-PORT]]`; an IPv6 prefix with a port is
 * written in brackets (`[2001:db8::/32]:443`). Rules are comma-separated.
 *
 * @module
 */

import {
  cidrContains,
  embeddedIpv4,
  formatIpAddress,
  formatIpCidr,
  type IpAddress,
  type IpCidr,
  ipFromV4,
  parseIpCidr,
} from "./ip_address.ts";

/** A transport the policy distinguishes. */
export type EgressProtocol = "tcp" | "udp";

/** Why a destination is refused (the `reason` label of the denial counters). */
export type EgressDenyReason = "deny_rule" | "server_address" | "reserved_address" | "smtp_port";

/** Every {@linkcode EgressDenyReason}, in the order the policy checks them. */
export const EGRESS_DENY_REASONS: readonly EgressDenyReason[] = [
  "deny_rule",
  "server_address",
  "reserved_address",
  "smtp_port",
];

/** One operator rule. */
export interface EgressRule {
  /** The transport it applies to; `any` when written without a prefix. */
  readonly protocol: EgressProtocol | "any";
  /** The destination prefix. */
  readonly cidr: IpCidr;
  /** The destination ports, inclusive; undefined for every port. */
  readonly ports?: readonly [number, number];
  /** The rule in canonical text form. */
  readonly text: string;
}

/**
 * The ranges denied unless an allow rule opens them (issue 13): IPv4
 * 0.0.0.0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.168/16,
 * 198.18/15, 224/4, 240/4 (255.255.255.255 within it); IPv6 ::/128, ::1/128,
 * fc00::/7, fe80::/10, ff00::/8.
 */
export const DEFAULT_DENIED_RANGES: readonly string[] = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "224.0.0.0/4",
  "240.0.0.0/4",
  "::/128",
  "::1/128",
  "fc00::/7",
  "fe80::/10",
  "ff00::/8",
];

/** The port denied by default (SMTP submission to port 25, RFC 5321). */
export const SMTP_PORT = 25;

function parsePorts(text: string, rule: string): [number, number] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  const lo = m ? Number(m[1]) : NaN;
  const hi = m ? Number(m[2] ?? m[1]) : NaN;
  if (!m || lo < 1 || hi > 65535 || lo > hi) {
    throw new TypeError(
      `egress rule "${rule}": ports must be PORT or LOW-HIGH within 1..65535, got "${text}"`,
    );
  }
  return [lo, hi];
}

/**
 * Parses one rule, `[tcp:|udp:]CIDR[:PORT[-PORT]]` (an IPv6 prefix with a
 * port in brackets).
 *
 * @throws {TypeError} naming the rule when it is malformed.
 *
 * @example
 * ```ts
 * parseEgressRule("tcp:198.18.0.0/15:80-443").ports; // [80, 443]
 * parseEgressRule("[2001:db8::/32]:53").cidr.family; // 6
 * ```
 */
export function parseEgressRule(text: string): EgressRule {
  const rule = text.trim();
  let rest = rule;
  let protocol: EgressRule["protocol"] = "any";
  const proto = /^(tcp|udp):/i.exec(rest);
  if (proto) {
    protocol = proto[1].toLowerCase() as EgressProtocol;
    rest = rest.slice(proto[0].length);
  }
  let cidrText: string;
  let portText: string | undefined;
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0) throw new TypeError(`egress rule "${rule}": "[" without "]"`);
    cidrText = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== "" && !after.startsWith(":")) {
      throw new TypeError(`egress rule "${rule}": expected ":PORT" after "]", got "${after}"`);
    }
    portText = after === "" ? undefined : after.slice(1);
  } else if (!rest.includes(":") || /^\d+\.[\d.]*(\/\d+)?:/.test(rest)) {
    // IPv4: the first colon, if any, starts the ports.
    const colon = rest.indexOf(":");
    cidrText = colon < 0 ? rest : rest.slice(0, colon);
    portText = colon < 0 ? undefined : rest.slice(colon + 1);
  } else {
    // IPv6 without brackets: ports only after an explicit prefix length.
    const m = /^([^/]+\/\d{1,3})(?::(.*))?$/.exec(rest);
    cidrText = m ? m[1] : rest;
    portText = m ? m[2] : undefined;
  }
  const cidr = parseIpCidr(cidrText);
  if (!cidr) {
    throw new TypeError(
      `egress rule "${rule}": "${cidrText}" is not an IPv4 or IPv6 address or CIDR prefix`,
    );
  }
  const ports = portText === undefined ? undefined : parsePorts(portText, rule);
  const c = formatIpCidr(cidr);
  const where = ports === undefined
    ? c
    : `${cidr.family === 6 ? `[${c}]` : c}:${ports[0]}${
      ports[1] !== ports[0] ? `-${ports[1]}` : ""
    }`;
  return { protocol, cidr, ports, text: protocol === "any" ? where : `${protocol}:${where}` };
}

/**
 * Parses a comma-separated list of rules (empty entries ignored), as in
 * `NETISLE_EGRESS_ALLOW`.
 *
 * @throws {TypeError} naming the first malformed rule.
 *
 * @example
 * ```ts
 * parseEgressRules("198.18.0.0/15, udp:192.0.2.53:53").length; // 2
 * ```
 */
export function parseEgressRules(text: string | undefined): EgressRule[] {
  if (!text) return [];
  return text.split(",").map((s) => s.trim()).filter((s) => s !== "").map(parseEgressRule);
}

/** What a policy is made of. */
export interface EgressPolicyOptions {
  /** The operator's allow rules: they open default-denied ranges. */
  allow?: readonly EgressRule[];
  /** The operator's deny rules: they win over everything. */
  deny?: readonly EgressRule[];
  /**
   * The server's own addresses: denied on every port, whatever the allow
   * rules say. A function is asked again at most every `refreshMs` (the
   * machine's interfaces may change while the server runs).
   */
  serverAddresses?: readonly IpAddress[] | (() => readonly IpAddress[]);
  /** How long a list of server addresses from a function is used (ms, default 5000). */
  refreshMs?: number;
  /** Monotonic milliseconds for `refreshMs` (default `performance.now`). */
  now?: () => number;
}

/** The addresses a rule or range is checked against: the address and its embedded IPv4. */
function candidates(ip: IpAddress): IpAddress[] {
  if (ip.family === 4) return [ip];
  const v4 = embeddedIpv4(ip);
  return v4 === undefined ? [ip] : [ip, ipFromV4(v4)];
}

function ruleMatches(
  r: EgressRule,
  protocol: EgressProtocol,
  ips: IpAddress[],
  port: number,
): boolean {
  if (r.protocol !== "any" && r.protocol !== protocol) return false;
  if (r.ports && (port < r.ports[0] || port > r.ports[1])) return false;
  return ips.some((ip) => cidrContains(r.cidr, ip));
}

function sameAddress(a: IpAddress, b: IpAddress): boolean {
  const x = a.words;
  const y = b.words;
  return x[0] === y[0] && x[1] === y[1] && x[2] === y[2] && x[3] === y[3];
}

/**
 * The egress policy of a server (see the module documentation for the
 * order of checks).
 *
 * @example
 * ```ts
 * const policy = new EgressPolicy({ allow: parseEgressRules("198.18.0.0/15") });
 * policy.check("tcp", parseIpAddress("198.18.0.1")!, 80); // undefined: allowed
 * policy.check("tcp", parseIpAddress("127.0.0.1")!, 80); // "reserved_address"
 * ```
 */
export class EgressPolicy {
  /** The operator's allow rules. */
  readonly allow: readonly EgressRule[];
  /** The operator's deny rules. */
  readonly deny: readonly EgressRule[];
  #defaults: IpCidr[];
  #own: readonly IpAddress[];
  #ownSource: (() => readonly IpAddress[]) | undefined;
  #ownAt = -Infinity;
  #refreshMs: number;
  #now: () => number;

  /** Creates a policy. */
  constructor(options: EgressPolicyOptions = {}) {
    this.allow = [...(options.allow ?? [])];
    this.deny = [...(options.deny ?? [])];
    const own = options.serverAddresses ?? [];
    this.#ownSource = typeof own === "function" ? own : undefined;
    this.#own = typeof own === "function" ? [] : [...own];
    this.#refreshMs = options.refreshMs ?? 5000;
    this.#now = options.now ?? (() => performance.now());
    this.#defaults = DEFAULT_DENIED_RANGES.map((r) => parseIpCidr(r)!);
  }

  /** The server's own addresses now (asked of the source again when it is older than `refreshMs`). */
  get serverAddresses(): readonly IpAddress[] {
    if (this.#ownSource) {
      const now = this.#now();
      if (now - this.#ownAt >= this.#refreshMs) {
        this.#ownAt = now;
        try {
          this.#own = [...this.#ownSource()];
        } catch {
          // Keep the last list.
        }
      }
    }
    return this.#own;
  }

  /**
   * Checks a new flow to `ip`:`port` over `protocol`: undefined when
   * allowed, else the reason it is denied.
   */
  check(protocol: EgressProtocol, ip: IpAddress, port: number): EgressDenyReason | undefined {
    const ips = candidates(ip);
    if (this.deny.some((r) => ruleMatches(r, protocol, ips, port))) return "deny_rule";
    const own = this.serverAddresses;
    if (ips.some((a) => own.some((s) => sameAddress(a, s)))) return "server_address";
    let smtpOnly = false;
    for (const r of this.allow) {
      if (!ruleMatches(r, protocol, ips, port)) continue;
      if (port !== SMTP_PORT || r.ports !== undefined) return undefined;
      smtpOnly = true;
    }
    if (smtpOnly) return "smtp_port";
    if (ips.some((a) => this.#defaults.some((c) => cidrContains(c, a)))) {
      return "reserved_address";
    }
    if (port === SMTP_PORT) return "smtp_port";
    return undefined;
  }

  /**
   * Whether every flow to `ip` is denied, whatever the port and protocol:
   * the reason, or undefined when some flow to it may be allowed. The DNS
   * relay drops answers with such addresses (a public name that
   * resolves to 127.0.0.1 or 169.254.169.254: DNS rebinding), so a guest
   * learns no address it could not reach anyway. Deny rules count only
   * when they name no port and no protocol; any allow rule for the address
   * opens it.
   */
  addressDenied(ip: IpAddress): EgressDenyReason | undefined {
    const ips = candidates(ip);
    const covers = (r: EgressRule) => ips.some((a) => cidrContains(r.cidr, a));
    if (this.deny.some((r) => r.protocol === "any" && r.ports === undefined && covers(r))) {
      return "deny_rule";
    }
    const own = this.serverAddresses;
    if (ips.some((a) => own.some((s) => sameAddress(a, s)))) return "server_address";
    if (this.allow.some(covers)) return undefined;
    if (ips.some((a) => this.#defaults.some((c) => cidrContains(c, a)))) {
      return "reserved_address";
    }
    return undefined;
  }

  /**
   * The policy in words, one line each, for the server's startup log: the
   * operator's rules first (they are what an operator checks), then the
   * defaults.
   */
  describe(): string[] {
    const list = (rules: readonly EgressRule[]) =>
      rules.length === 0 ? "(none)" : rules.map((r) => r.text).join(", ");
    return [
      `egress deny rules (win over everything): ${list(this.deny)}`,
      `egress allow rules (open default-denied ranges; port 25 only when named): ${
        list(this.allow)
      }`,
      `egress always denied, every port: the server's own addresses: ${
        this.serverAddresses.length === 0
          ? "(none)"
          : this.serverAddresses.map(formatIpAddress).join(", ")
      }`,
      `egress denied by default: ${DEFAULT_DENIED_RANGES.join(", ")}, ` +
      `IPv6 spellings of those IPv4 ranges, destination port ${SMTP_PORT}`,
    ];
  }
}
