/**
 * A stateless DHCPv6 server (RFC 8415 §6.1) on UDP port 547: it answers
 * Information-request with a Reply carrying the stack's address as DNS
 * server (RFC 3646 §3). Addresses come from SLAAC (the router
 * advertisements' prefix), so the server gives none: Solicit, Request and
 * the other stateful messages are ignored and counted. The stack sets the
 * O flag in its router advertisements while the server runs (RFC 4861
 * §4.2), and joins All_DHCP_Relay_Agents_and_Servers (ff02::1:2), where
 * clients send.
 *
 * @module
 */

import type { UdpService, UdpServiceDatagram, UdpServiceSender } from "./udp/udp_service.ts";
import {
  DHCPV6_CLIENT_PORT,
  DHCPV6_DROP_REASONS,
  dhcpv6DuidLl,
  Dhcpv6MessageType,
  Dhcpv6Packet,
  Dhcpv6Repr,
  type Ipv6Address,
  isIpv6Multicast,
  type MacAddress,
} from "../wire/mod.ts";
import { isIpv6 } from "../wire/ip_address.ts";

/** Settings of the stateless DHCPv6 server. */
export interface Dhcpv6ServerConfig {
  /**
   * Whether the server runs (it needs IPv6). By default it follows the
   * DHCPv4 server's `dhcp.enabled`: a session with DHCP has both.
   */
  enabled?: boolean;
  /**
   * Information Refresh Time (RFC 8415 §21.23), in seconds: when clients ask
   * again. 86400 (IRT_DEFAULT) by default; at least 600 (IRT_MINIMUM).
   */
  informationRefreshSeconds?: number;
}

/** IRT_DEFAULT (RFC 8415 §7.6), in seconds. */
export const DHCPV6_DEFAULT_REFRESH_SECONDS = 86_400;
/** IRT_MINIMUM (RFC 8415 §7.6), in seconds: clients use no less. */
export const DHCPV6_MIN_REFRESH_SECONDS = 600;

/**
 * Reasons the server drops a message without answering (the wire's
 * `dhcpv6_*` parse reasons come on top):
 *
 * - `dhcpv6_stateful_ignored`: Solicit, Request, Confirm, Renew, Rebind,
 *   Release or Decline: the server gives no addresses (SLAAC does).
 * - `dhcpv6_not_client_message`: a message servers send (Advertise, Reply,
 *   Reconfigure) or an unknown type.
 * - `dhcpv6_unicast`: sent to a unicast address; servers discard
 *   Information-request (and Solicit, Confirm, Rebind) sent so (RFC 8415 §16).
 * - `dhcpv6_other_server`: an Information-request naming another server's
 *   DUID (RFC 8415 §16.12).
 * - `dhcpv6_ia_in_information_request`: an Information-request holding an
 *   IA option (RFC 8415 §16.12).
 */
export const DHCPV6_SERVER_DROP_REASONS: readonly string[] = [
  ...DHCPV6_DROP_REASONS,
  "dhcpv6_stateful_ignored",
  "dhcpv6_not_client_message",
  "dhcpv6_unicast",
  "dhcpv6_other_server",
  "dhcpv6_ia_in_information_request",
];

const STATEFUL: ReadonlySet<number> = new Set([
  Dhcpv6MessageType.SOLICIT,
  Dhcpv6MessageType.REQUEST,
  Dhcpv6MessageType.CONFIRM,
  Dhcpv6MessageType.RENEW,
  Dhcpv6MessageType.REBIND,
  Dhcpv6MessageType.RELEASE,
  Dhcpv6MessageType.DECLINE,
]);

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The stateless DHCPv6 server of one stack.
 *
 * @example
 * ```ts
 * const server = new Dhcpv6Server({}, { mac, dnsServer: parseIpv6Address("fd00::2") });
 * stack.udp.serve(DHCPV6_SERVER_PORT, server, { broadcast: true, family: "ipv6" });
 * ```
 */
export class Dhcpv6Server implements UdpService {
  /** The server's DUID: a DUID-LL of the stack's MAC (RFC 8415 §11.4). */
  readonly duid: Uint8Array;
  /** The address given as DNS recursive name server. */
  readonly dnsServer: Ipv6Address;
  /** Information Refresh Time given out, in seconds. */
  readonly refreshSeconds: number;
  /** Replies sent, and messages dropped (by reason in the stack's counters). */
  readonly stats = { replies: 0, dropped: 0 };

  /**
   * Creates the server for a stack with MAC `mac` whose IPv6 address is `dnsServer`.
   *
   * @throws {RangeError} for an information refresh time that is not an
   *   integer in 600..4294967295.
   */
  constructor(config: Dhcpv6ServerConfig, stack: { mac: MacAddress; dnsServer: Ipv6Address }) {
    const refresh = config.informationRefreshSeconds ?? DHCPV6_DEFAULT_REFRESH_SECONDS;
    if (
      !Number.isInteger(refresh) || refresh < DHCPV6_MIN_REFRESH_SECONDS || refresh > 0xffffffff
    ) {
      throw new RangeError(
        `Dhcpv6Server: informationRefreshSeconds must be an integer in ` +
          `${DHCPV6_MIN_REFRESH_SECONDS}..4294967295, got ${refresh}`,
      );
    }
    this.refreshSeconds = refresh;
    this.duid = dhcpv6DuidLl(stack.mac);
    this.dnsServer = stack.dnsServer;
  }

  /**
   * Answers a message to port 547 (the {@linkcode UdpService} entry). Over
   * IPv4 the port is closed (`udp_port_closed`: the IPv4 input answers with
   * a port unreachable); the stack serves it with `family: "ipv6"`, so that
   * never reaches here.
   */
  receive(d: UdpServiceDatagram, sender: UdpServiceSender, now: number): string | undefined {
    if (!isIpv6(d.dst)) return "udp_port_closed";
    const reply = this.answer(d.payload, isIpv6Multicast(d.dst));
    if (!reply.ok) {
      this.stats.dropped++;
      return reply.reason;
    }
    sender.send({ address: d.src, port: d.srcPort || DHCPV6_CLIENT_PORT }, reply.value, now);
    this.stats.replies++;
    return undefined;
  }

  /**
   * The Reply to one client message (RFC 8415 §18.3.6), or the reason it
   * gets none; `multicast` tells whether it was sent to ff02::1:2. Never
   * throws for any bytes.
   */
  answer(bytes: Uint8Array, multicast: boolean): { ok: true; value: Uint8Array } | {
    ok: false;
    reason: string;
  } {
    const pkt = Dhcpv6Packet.parse(bytes);
    if (!pkt.ok) return pkt;
    const type = pkt.value.msgType;
    if (STATEFUL.has(type)) return { ok: false, reason: "dhcpv6_stateful_ignored" };
    if (type !== Dhcpv6MessageType.INFORMATION_REQUEST) {
      return { ok: false, reason: "dhcpv6_not_client_message" };
    }
    if (!multicast) return { ok: false, reason: "dhcpv6_unicast" };
    const parsed = Dhcpv6Repr.parse(pkt.value);
    if (!parsed.ok) return parsed;
    const req = parsed.value;
    if (req.serverId !== undefined && !sameBytes(req.serverId, this.duid)) {
      return { ok: false, reason: "dhcpv6_other_server" };
    }
    if (req.hasIa) return { ok: false, reason: "dhcpv6_ia_in_information_request" };
    const reply: Dhcpv6Repr = {
      msgType: Dhcpv6MessageType.REPLY,
      transactionId: req.transactionId,
      clientId: req.clientId,
      serverId: this.duid,
      dnsServers: [this.dnsServer],
      informationRefreshTime: this.refreshSeconds,
    };
    const buf = new Uint8Array(Dhcpv6Repr.bufferLen(reply));
    Dhcpv6Repr.emit(reply, buf);
    return { ok: true, value: buf };
  }
}
