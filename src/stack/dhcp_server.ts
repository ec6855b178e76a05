/**
 * A DHCPv4 server for one stack (RFC 2131), with defaults like QEMU's user
 * networking: the stack (10.0.2.2) is server, router and DNS server, and
 * guests get addresses from 10.0.2.15 on.
 *
 * The stack serves it on UDP port 67 as a {@linkcode UdpService} (each
 * message is handled and answered when it arrives, broadcast or not) and
 * calls {@linkcode DhcpServer.poll} from its timers. Leases live in a
 * {@linkcode DhcpLeaseTable} bounded by the pool size, whose policy keeps one
 * peer from taking the whole pool (see `dhcp_leases.ts`); each entry expires
 * at a time driven by `now` (offers after {@linkcode DHCP_OFFER_HOLD_MS}).
 *
 * Not supported: relay agents (a message with `giaddr` set is dropped and
 * counted), option overload, static bindings.
 *
 * @module
 */

import {
  DHCP_CLIENT_PORT,
  DhcpMessageType,
  DhcpOp,
  DhcpPacket,
  DhcpRepr,
  formatIpv4Address,
  formatMacAddress,
  IPV4_BROADCAST,
  type Ipv4Address,
  ipv4InSubnet,
  ipv4Netmask,
  ipv4SubnetBroadcast,
  type MacAddress,
} from "../wire/mod.ts";
import type { UdpService, UdpServiceDatagram, UdpServiceSender } from "./udp/udp_service.ts";
import { DHCP_OFFER_HOLD_MS, type DhcpLease, DhcpLeaseTable } from "./dhcp_leases.ts";

/** Configuration of the DHCP server (StackConfig `dhcp`). */
export interface DhcpServerConfig {
  /** Whether the stack runs the server. */
  enabled: boolean;
  /**
   * First address of the pool: by default the stack's network + 15 (10.0.2.15
   * for 10.0.2.2/24), or network + 1 in a subnet too small for that. The
   * stack's own address is never handed out.
   */
  poolStart?: Ipv4Address;
  /**
   * Addresses in the pool (and the most leases held): 16 by default, fewer
   * when the subnet ends sooner; an integer in 1..4096 that fits in the
   * subnet after `poolStart`.
   */
  poolSize?: number;
  /**
   * Offers, and bound leases, one MAC address may hold across client
   * identifiers (each client identifier holds one): 1 by default, an integer
   * in 1..4096. A client that needs one more for its MAC first gives back
   * that MAC's oldest.
   */
  leasesPerMac?: number;
  /** Lease duration in ms (whole seconds, at least 1 s); 24 h by default. */
  leaseMs?: number;
  /** The DNS server given to clients; the stack's own address by default. */
  dns?: Ipv4Address;
  /** The domain name option (15); none by default. */
  domain?: string;
}

/** What the server needs from the stack. */
export interface DhcpServerHost {
  /** The stack's address: server identifier, router and default DNS server. */
  address: Ipv4Address;
  /** The stack's prefix length (the subnet mask option). */
  prefixLength: number;
  /** The link's IP MTU (the interface MTU option). */
  mtu: number;
}

/** Counters of the server. */
export interface DhcpServerStats {
  /** Messages received, valid or not. */
  rx: number;
  /** Messages dropped, by reason (parser reasons and the server's own). */
  drops: Record<string, number>;
  discovers: number;
  offers: number;
  requests: number;
  acks: number;
  naks: number;
  releases: number;
  declines: number;
  informs: number;
  /** DISCOVERs left without an offer because every address was bound. */
  poolExhausted: number;
  /** Leases and offers removed at expiry. */
  expired: number;
  /** Offers and declined addresses taken back early for another client. */
  reclaimed: number;
  /** Entries given back because their MAC reached `leasesPerMac`. */
  perMacReleased: number;
}

/**
 * Reasons the server itself drops a message (besides the parser's): not a
 * BOOTREQUEST, no or an unexpected message type, a relayed message.
 */
export const DHCP_SERVER_DROP_REASONS: readonly string[] = [
  "dhcp_not_request",
  "dhcp_bad_message_type",
  "dhcp_relay_unsupported",
];

const hex = (b: Uint8Array): string =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/**
 * The DHCP server of one stack.
 *
 * @example
 * ```ts
 * const stack = new Stack({ mac, ipv4, mtu: 1500, dhcp: { enabled: true } }, { link });
 * stack.input(discoverFrame, now); // the OFFER is on the link
 * stack.dhcp?.leases(); // [{ address: 10.0.2.15, state: "offered", ... }]
 * ```
 */
export class DhcpServer implements UdpService {
  /** The first pool address. */
  readonly poolStart: Ipv4Address;
  /** Number of pool addresses. */
  readonly poolSize: number;
  /** Lease duration (ms). */
  readonly leaseMs: number;
  /** Offers, and bound leases, one MAC may hold. */
  readonly leasesPerMac: number;
  /** DNS server option. */
  readonly dns: Ipv4Address;
  /** Domain name option, if any. */
  readonly domain: string | undefined;
  /** Counters. */
  readonly stats: DhcpServerStats = {
    rx: 0,
    drops: {},
    discovers: 0,
    offers: 0,
    requests: 0,
    acks: 0,
    naks: 0,
    releases: 0,
    declines: 0,
    informs: 0,
    poolExhausted: 0,
    expired: 0,
    reclaimed: 0,
    perMacReleased: 0,
  };
  #host: DhcpServerHost;
  #table: DhcpLeaseTable;

  /** @throws {RangeError} when the pool is not inside the stack's subnet or an option is out of range. */
  constructor(config: DhcpServerConfig, host: DhcpServerHost) {
    this.#host = host;
    const { address, prefixLength } = host;
    const network = (address & ipv4Netmask(prefixLength)) >>> 0;
    const broadcast = ipv4SubnetBroadcast(address, prefixLength);
    // QEMU's .15 when the subnet has room after it, else from the first host.
    const start = network + 15 < broadcast ? network + 15 : network + 1;
    this.poolStart = config.poolStart ?? start;
    this.poolSize = config.poolSize ?? Math.max(1, Math.min(16, broadcast - this.poolStart));
    this.leaseMs = config.leaseMs ?? 24 * 3600_000;
    this.leasesPerMac = config.leasesPerMac ?? 1;
    this.dns = config.dns ?? address;
    this.domain = config.domain;
    if (!Number.isInteger(this.poolSize) || this.poolSize < 1 || this.poolSize > 4096) {
      throw new RangeError(
        `DhcpServer: poolSize must be an integer in 1..4096, got ${this.poolSize}`,
      );
    }
    if (
      !Number.isInteger(this.leasesPerMac) || this.leasesPerMac < 1 || this.leasesPerMac > 4096
    ) {
      throw new RangeError(
        `DhcpServer: leasesPerMac must be an integer in 1..4096, got ${this.leasesPerMac}`,
      );
    }
    if (!Number.isInteger(this.leaseMs) || this.leaseMs < 1000 || this.leaseMs % 1000 !== 0) {
      throw new RangeError(
        `DhcpServer: leaseMs must be whole seconds of at least 1000, got ${this.leaseMs}`,
      );
    }
    if (this.domain !== undefined && (this.domain.length < 1 || this.domain.length > 255)) {
      throw new RangeError(`DhcpServer: domain must hold 1..255 characters, got "${this.domain}"`);
    }
    const last = this.poolStart + this.poolSize - 1;
    if (
      !ipv4InSubnet(this.poolStart, address, prefixLength) ||
      !ipv4InSubnet(last, address, prefixLength) || this.poolStart === network ||
      last >= broadcast
    ) {
      throw new RangeError(
        `DhcpServer: pool ${formatIpv4Address(this.poolStart)} + ${this.poolSize} must lie in ` +
          `${formatIpv4Address(network)}/${prefixLength} without its network or broadcast address`,
      );
    }
    this.#table = new DhcpLeaseTable({
      poolStart: this.poolStart,
      poolSize: this.poolSize,
      exclude: address,
      leasesPerMac: this.leasesPerMac,
    });
  }

  /** A copy of the lease table (offered, bound and declined entries), by address. */
  leases(): DhcpLease[] {
    return this.#table.leases();
  }

  /** The earliest lease or offer expiry, or undefined when the table is empty. */
  nextDeadline(): number | undefined {
    return this.#table.nextDeadline();
  }

  /** Removes leases and offers whose time is up. */
  poll(now: number): void {
    this.#table.expire(now);
    this.#syncStats();
  }

  #syncStats(): void {
    const t = this.#table.stats;
    this.stats.expired = t.expired;
    this.stats.reclaimed = t.reclaimed;
    this.stats.perMacReleased = t.perMacReleased;
  }

  /**
   * Handles one message that arrived on UDP port 67 and answers it (the
   * {@linkcode UdpService} entry). Never throws for any bytes: returns the
   * reason a message was dropped, also counted in `stats.drops`.
   */
  receive(d: UdpServiceDatagram, out: UdpServiceSender, now: number): string | undefined {
    this.stats.rx++;
    const reason = this.#handle(d.payload, out, now);
    this.#syncStats();
    if (reason !== undefined) this.stats.drops[reason] = (this.stats.drops[reason] ?? 0) + 1;
    return reason;
  }

  #handle(bytes: Uint8Array, out: UdpServiceSender, now: number): string | undefined {
    const pkt = DhcpPacket.parse(bytes);
    if (!pkt.ok) return pkt.reason;
    const parsed = DhcpRepr.parse(pkt.value);
    if (!parsed.ok) return parsed.reason;
    const m = parsed.value;
    if (m.op !== DhcpOp.REQUEST) return "dhcp_not_request";
    if (m.giaddr !== 0) return "dhcp_relay_unsupported";
    this.poll(now);
    switch (m.messageType) {
      case DhcpMessageType.DISCOVER:
        this.stats.discovers++;
        return this.#discover(m, out, now);
      case DhcpMessageType.REQUEST:
        this.stats.requests++;
        return this.#request(m, out, now);
      case DhcpMessageType.RELEASE:
        this.stats.releases++;
        return this.#release(m);
      case DhcpMessageType.DECLINE:
        this.stats.declines++;
        return this.#decline(m, now);
      case DhcpMessageType.INFORM:
        this.stats.informs++;
        this.#reply(m, DhcpMessageType.ACK, 0, out, now);
        return undefined;
      default:
        return "dhcp_bad_message_type";
    }
  }

  #key(m: DhcpRepr): string {
    return m.clientId ? `id:${hex(m.clientId)}` : `mac:${hex(m.chaddr)}`;
  }

  /**
   * RFC 2131 §4.3.1: choose an address and OFFER it: the client's own entry,
   * else the address it asks for when free, else the lowest free one, else
   * the oldest offer or declined address taken back.
   */
  #discover(m: DhcpRepr, out: UdpServiceSender, now: number): string | undefined {
    const t = this.#table;
    const key = this.#key(m);
    const mine = t.ofClient(key);
    if (mine?.state === "bound") {
      // Keep the binding and its expiry; the client re-discovering does not shorten it.
      this.#reply(m, DhcpMessageType.OFFER, mine.address, out, now);
      return undefined;
    }
    if (mine === undefined) t.limitMac(m.chaddr, key, "offered");
    let addr = mine?.address;
    if (addr === undefined && m.requestedIp !== undefined && t.isFree(m.requestedIp, key)) {
      addr = m.requestedIp;
    }
    addr ??= t.pickFree() ?? t.reclaim();
    if (addr === undefined) {
      this.stats.poolExhausted++;
      return undefined;
    }
    const entry = { clientKey: key, mac: m.chaddr, address: addr, state: "offered" as const };
    t.set(entry, now, now + DHCP_OFFER_HOLD_MS, m.hostname);
    this.#reply(m, DhcpMessageType.OFFER, addr, out, now);
    return undefined;
  }

  /**
   * RFC 2131 §4.3.2: SELECTING, INIT-REBOOT, RENEWING and REBINDING. A client
   * may be bound to an address free for it or held only by another client's
   * offer; a SELECTING client whose own offer is gone (expired or taken back)
   * gets the address it selected on the same terms.
   */
  #request(m: DhcpRepr, out: UdpServiceSender, now: number): string | undefined {
    const t = this.#table;
    const key = this.#key(m);
    const mine = t.ofClient(key);
    const ours = this.#host.address;
    let want: Ipv4Address;
    if (m.serverId !== undefined) {
      // SELECTING: the client chose a server.
      if (m.serverId !== ours) {
        t.forgetOffer(key);
        return undefined;
      }
      want = m.requestedIp ?? m.ciaddr;
      if (mine !== undefined && mine.address !== want) return this.#nak(m, out, now);
    } else if (m.requestedIp !== undefined && m.ciaddr === 0) {
      // INIT-REBOOT: verify a remembered address.
      want = m.requestedIp;
      if (!ipv4InSubnet(want, ours, this.#host.prefixLength)) return this.#nak(m, out, now);
    } else if (m.ciaddr !== 0) {
      // RENEWING (unicast) or REBINDING (broadcast): extend the lease on ciaddr.
      want = m.ciaddr;
    } else {
      return "dhcp_bad_message_type";
    }
    if (!t.canBind(want, key)) return this.#nak(m, out, now);
    if (mine?.state !== "bound") t.limitMac(m.chaddr, key, "bound");
    const entry = { clientKey: key, mac: m.chaddr, address: want, state: "bound" as const };
    t.set(entry, now, now + this.leaseMs, m.hostname);
    this.#reply(m, DhcpMessageType.ACK, want, out, now);
    return undefined;
  }

  #nak(m: DhcpRepr, out: UdpServiceSender, now: number): undefined {
    this.#reply(m, DhcpMessageType.NAK, 0, out, now);
    return undefined;
  }

  /** RFC 2131 §4.3.4: the client gives its address back. */
  #release(m: DhcpRepr): undefined {
    if (m.serverId !== undefined && m.serverId !== this.#host.address) return;
    this.#table.release(m.ciaddr, this.#key(m));
  }

  /** RFC 2131 §4.3.3: the address is in use by someone else; keep it out for a lease time. */
  #decline(m: DhcpRepr, now: number): undefined {
    if (m.serverId !== undefined && m.serverId !== this.#host.address) return;
    if (m.requestedIp === undefined) return;
    this.#table.decline(m.requestedIp, this.#key(m), now, now + this.leaseMs);
  }

  /** Builds and sends an OFFER, ACK or NAK (RFC 2131 §4.3.1 table 3; §4.1 addressing). */
  #reply(
    m: DhcpRepr,
    type: number,
    yiaddr: Ipv4Address,
    out: UdpServiceSender,
    now: number,
  ): void {
    const host = this.#host;
    const nak = type === DhcpMessageType.NAK;
    const inform = m.messageType === DhcpMessageType.INFORM;
    const r: DhcpRepr = {
      op: DhcpOp.REPLY,
      hops: 0,
      xid: m.xid,
      secs: 0,
      broadcast: m.broadcast,
      ciaddr: inform || type === DhcpMessageType.ACK ? m.ciaddr : 0,
      yiaddr,
      siaddr: 0,
      giaddr: 0,
      chaddr: m.chaddr,
      messageType: type,
      serverId: host.address,
    };
    if (m.clientId) r.clientId = m.clientId;
    if (!nak) {
      if (!inform) {
        const secs = this.leaseMs / 1000;
        r.leaseTime = secs;
        r.renewalTime = Math.floor(secs / 2);
        r.rebindingTime = Math.floor(secs * 7 / 8);
      }
      r.subnetMask = ipv4Netmask(host.prefixLength);
      r.routers = [host.address];
      r.dnsServers = [this.dns];
      if (this.domain !== undefined) r.domainName = this.domain;
      r.interfaceMtu = host.mtu;
    }
    // RFC 2131 §4.1: to ciaddr when the client has one (not for a NAK); broadcast
    // when it asked or for a NAK; otherwise unicast to yiaddr at chaddr, no ARP.
    let dst: Ipv4Address;
    let dstMac: MacAddress | undefined;
    if (m.ciaddr !== 0 && !nak) {
      dst = m.ciaddr;
    } else if (m.broadcast || nak || yiaddr === 0) {
      dst = IPV4_BROADCAST;
    } else {
      dst = yiaddr;
      dstMac = m.chaddr;
    }
    const payload = new Uint8Array(DhcpRepr.bufferLen(r));
    DhcpRepr.emit(r, payload);
    if (!out.send({ address: dst, port: DHCP_CLIENT_PORT, dstMac }, payload, now)) return;
    if (type === DhcpMessageType.OFFER) this.stats.offers++;
    else if (nak) this.stats.naks++;
    else this.stats.acks++;
  }
}

/** A lease as JSON (the session view). */
export function describeLease(l: DhcpLease, now: number): {
  address: string;
  mac: string;
  state: string;
  expiresInMs: number;
  hostname: string | null;
} {
  return {
    address: formatIpv4Address(l.address),
    mac: formatMacAddress(l.mac),
    state: l.state,
    expiresInMs: Math.max(0, Math.round(l.expiresAt - now)),
    hostname: l.hostname ?? null,
  };
}
