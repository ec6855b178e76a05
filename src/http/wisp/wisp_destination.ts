/**
 * Where a Wisp CONNECT may go: only inside the session's network. A hostname
 * is an IPv4 literal, an IPv6 literal (bare or in brackets) on the session's
 * link, or a name the session knows (its DNS responder's names,
 * `netisle.internal`, and the hostnames its DHCP clients gave); anything else
 * is outside the session and refused with 0x48 (reaching the world is the
 * egress gateway's job, under its policy).
 *
 * @module
 */

import {
  formatIpv4Address,
  formatIpv6Address,
  type Ipv4Address,
  ipv4InSubnet,
  ipv4SubnetBroadcast,
  ipv6InPrefix,
  isIpv4Multicast,
  isIpv6LinkLocal,
  isIpv6Loopback,
  isIpv6Unicast,
  parseIpv4Address,
  parseIpv6Address,
  WispCloseReason,
  WispStreamType,
} from "../../wire/mod.ts";
import type { Session } from "../../session/mod.ts";

/** Port of the session's DNS responder on the stack's own address. */
export const WISP_DNS_PORT = 53;

/** Where a CONNECT goes, or why it may not. */
export type WispDestination =
  | {
    /** A host on the session's link (the tunnelled side). */
    kind: "link";
    address: string;
    port: number;
  }
  | {
    /** UDP to the stack's own DNS responder (10.0.2.2:53): answered in process. */
    kind: "dns";
    address: string;
    port: number;
  }
  | { kind: "refused"; reason: number; detail: string };

const DOTTED_QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/**
 * Classifies a CONNECT's destination for `session`.
 *
 * - port 0, an unknown stream type, an empty or malformed name, the
 *   unspecified, broadcast, multicast or class E addresses, the subnet's
 *   network and broadcast addresses: 0x41 (invalid);
 * - an address outside the session's subnet or its IPv6 /64 and link-local
 *   range (or any IPv6 literal when the session has no IPv6), a name the
 *   session does not know, loopback: 0x48 (blocked);
 * - the stack's own address: its DNS responder over UDP on port 53; any
 *   other port 0x44 (refused: the stack has no loopback);
 * - anything else on the link is a destination.
 *
 * @example
 * ```ts
 * const d = wispDestination(session, WispStreamType.TCP, "8.8.8.8", 53);
 * d.kind === "refused" && d.reason === WispCloseReason.BLOCKED; // true
 * ```
 */
export function wispDestination(
  session: Session,
  streamType: number,
  hostname: string,
  port: number,
): WispDestination {
  const refuse = (reason: number, detail: string): WispDestination => ({
    kind: "refused",
    reason,
    detail,
  });
  if (streamType !== WispStreamType.TCP && streamType !== WispStreamType.UDP) {
    return refuse(WispCloseReason.INVALID, `unknown stream type ${streamType}`);
  }
  if (port === 0) return refuse(WispCloseReason.INVALID, "port 0");
  const name = hostname.trim().toLowerCase().replace(/\.$/, "");
  if (name === "") return refuse(WispCloseReason.INVALID, "an empty hostname");
  const { ours, prefix, names } = session.withCore((stack) => ({
    ours: stack.config.ipv4.address,
    prefix: stack.config.ipv4.prefixLength,
    names: knownNames(stack),
  }));
  let addr: Ipv4Address;
  const quad = DOTTED_QUAD.exec(name);
  if (quad) {
    if (quad.slice(1).some((o) => Number(o) > 255)) {
      return refuse(WispCloseReason.INVALID, `"${name}" is not an IPv4 address`);
    }
    addr = parseIpv4Address(name);
  } else if (name.includes(":") || name.startsWith("[")) {
    return ipv6Destination(session, streamType, name.replace(/^\[(.*)\]$/, "$1"), port);
  } else {
    const known = names.get(name);
    if (known === undefined) {
      return refuse(WispCloseReason.BLOCKED, `"${name}" is not a name of the session`);
    }
    addr = known;
  }
  const first = addr >>> 24;
  if (
    first === 0 || addr === 0xffffffff || isIpv4Multicast(addr) || first >= 240
  ) {
    return refuse(WispCloseReason.INVALID, `${formatIpv4Address(addr)} is not a unicast address`);
  }
  if (first === 127) {
    return refuse(WispCloseReason.BLOCKED, "loopback is the server's host, outside the session");
  }
  if (!ipv4InSubnet(addr, ours, prefix)) {
    return refuse(
      WispCloseReason.BLOCKED,
      `${formatIpv4Address(addr)} is outside the session's network ` +
        `${formatIpv4Address(ours)}/${prefix}`,
    );
  }
  if (prefix < 31) {
    const broadcast = ipv4SubnetBroadcast(ours, prefix);
    const network = (broadcast - (2 ** (32 - prefix) - 1)) >>> 0;
    if (addr === broadcast || addr === network) {
      return refuse(
        WispCloseReason.INVALID,
        `${formatIpv4Address(addr)} is the subnet's ${
          addr === network ? "network" : "broadcast"
        } ` +
          "address",
      );
    }
  }
  const text = formatIpv4Address(addr);
  if (addr === ours) {
    if (streamType === WispStreamType.UDP && port === WISP_DNS_PORT) {
      return { kind: "dns", address: text, port };
    }
    return refuse(
      WispCloseReason.REFUSED,
      `${text} is the session's own address: only its DNS responder (UDP 53) answers there`,
    );
  }
  return { kind: "link", address: text, port };
}

/** The names the session answers for: its DNS responder's and its DHCP clients' hostnames. */
function knownNames(stack: Session["stack"]): Map<string, Ipv4Address> {
  const out = new Map<string, Ipv4Address>();
  const dns = stack.config.dns;
  if (dns?.enabled ?? true) {
    out.set("netisle.internal", stack.config.ipv4.address);
    for (const [n, a] of Object.entries(dns?.names ?? {})) out.set(n.toLowerCase(), a);
  }
  for (const l of stack.dhcp?.leases() ?? []) {
    if (l.state !== "bound" || !l.hostname) continue;
    const h = l.hostname.toLowerCase();
    out.set(h, l.address);
    out.set(`${h}.internal`, l.address);
  }
  return out;
}

/** The IPv6 half of {@linkcode wispDestination}: `text` is the literal without brackets. */
function ipv6Destination(
  session: Session,
  streamType: number,
  text: string,
  port: number,
): WispDestination {
  let addr;
  try {
    addr = parseIpv6Address(text);
  } catch {
    return {
      kind: "refused",
      reason: WispCloseReason.INVALID,
      detail: `"${text}" is not an IP address`,
    };
  }
  const v6 = session.withCore((stack) => stack.ipv6);
  if (v6 === undefined) {
    return { kind: "refused", reason: WispCloseReason.BLOCKED, detail: "the session has no IPv6" };
  }
  const shown = formatIpv6Address(addr);
  if (isIpv6Loopback(addr)) {
    return {
      kind: "refused",
      reason: WispCloseReason.BLOCKED,
      detail: "loopback is the server's host, outside the session",
    };
  }
  if (!isIpv6Unicast(addr)) {
    return {
      kind: "refused",
      reason: WispCloseReason.INVALID,
      detail: `${shown} is not a unicast address`,
    };
  }
  if (!isIpv6LinkLocal(addr) && !ipv6InPrefix(addr, v6.prefix, 64)) {
    return {
      kind: "refused",
      reason: WispCloseReason.BLOCKED,
      detail: `${shown} is outside the session's network ${formatIpv6Address(v6.prefix)}/64`,
    };
  }
  if (addr === v6.address || addr === v6.linkLocal) {
    if (streamType === WispStreamType.UDP && port === WISP_DNS_PORT) {
      return { kind: "dns", address: shown, port };
    }
    return {
      kind: "refused",
      reason: WispCloseReason.REFUSED,
      detail:
        `${shown} is the session's own address: only its DNS responder (UDP 53) answers there`,
    };
  }
  return { kind: "link", address: shown, port };
}
