/**
 * Services on a UDP port: the stack's own servers (DHCP on port 67, DNS on
 * port 53) plug into the UDP layer here instead of being special cases in
 * IPv4 demux or endpoints polled after every frame.
 *
 * A service is called synchronously, inside the core, with each datagram for
 * its port and may answer at once through its {@linkcode UdpServiceSender}.
 * The datagram is borrowed: its payload is a view into the received frame,
 * valid for the call only (copy what you keep).
 *
 * @module
 */

import type { MacAddress } from "../../wire/mod.ts";
import type { IpAddress } from "../../wire/ip_address.ts";

/** A received datagram as a service sees it. */
export interface UdpServiceDatagram {
  /**
   * The sender's address: IPv4 (0.0.0.0 for a DHCP client without one) or
   * IPv6 (a link-local address for a DHCPv6 client), of `dst`'s family.
   */
  src: IpAddress;
  /** The sender's port. */
  srcPort: number;
  /**
   * The destination: one of the stack's addresses, a broadcast address, or
   * an IPv6 group the stack joined (ff02::1:2 for DHCPv6).
   */
  dst: IpAddress;
  /** The service's port. */
  dstPort: number;
  /** The payload: borrowed, valid during the call only. */
  payload: Uint8Array;
}

/** Where a service sends to. */
export interface UdpServiceDestination {
  /** A neighbour on the link, a broadcast address or an IPv6 group. */
  address: IpAddress;
  /** UDP port. */
  port: number;
  /**
   * Sends the frame to this MAC without ARP: the DHCP server's unicast reply
   * to a client that has no address yet (RFC 2131 §4.1). Ignored for
   * broadcast addresses and IPv6.
   */
  dstMac?: MacAddress;
  /**
   * The source address, of `address`'s family: by default the stack's
   * address (for IPv6 the one {@linkcode UdpIpv6Output.sourceFor} picks).
   * An answer to a datagram sent to one of the stack's addresses comes from
   * that address, so that the client recognises it.
   */
  src?: IpAddress;
}

/** How a service sends: from its own port, checksum computed (RFC 768). */
export interface UdpServiceSender {
  /** The service's port, the source port of everything it sends. */
  readonly port: number;
  /**
   * Sends one datagram; false when the IP layer dropped it (counted in
   * `txDrops`) or, for an IPv6 destination, the stack has no IPv6.
   */
  send(to: UdpServiceDestination, payload: Uint8Array, now: number): boolean;
}

/**
 * A server on a UDP port, registered with {@linkcode UdpLayer.serve}.
 *
 * @example
 * ```ts
 * const echo: UdpService = {
 *   receive(d, sender, now) {
 *     sender.send({ address: d.src, port: d.srcPort }, d.payload, now);
 *     return undefined;
 *   },
 * };
 * stack.udp.serve(7, echo);
 * ```
 */
export interface UdpService {
  /**
   * Handles one datagram (length and checksum already verified). Returns a
   * drop reason, counted by the stack, or undefined when the datagram was
   * used. Must not throw for any payload.
   */
  receive(d: UdpServiceDatagram, sender: UdpServiceSender, now: number): string | undefined;
}

/** How a service shares its port, given to {@linkcode UdpLayer.serve}. */
export interface UdpServiceOptions {
  /**
   * `"exclusive"` (the default): the port is the service's, `bind()` on it
   * fails with EADDRINUSE (the DHCP server). `"fallback"`: a socket bound on
   * the port takes its datagrams, and the service answers only while none is
   * bound (the DNS responder, so that a program in the session can run its
   * own DNS server).
   */
  sharing?: "exclusive" | "fallback";
  /**
   * Whether datagrams to a broadcast address (255.255.255.255 or the
   * subnet's) or an IPv6 group the stack joined reach the service, as DHCP
   * and DHCPv6 need; by default only those to the stack's own addresses do.
   */
  broadcast?: boolean;
  /** A name for messages ("the DHCP server"). */
  name?: string;
  /**
   * The IP family the service speaks: `"both"` (the default, the DNS
   * responder), `"ipv4"` (DHCP) or `"ipv6"` (DHCPv6). Datagrams of the other
   * family find the port closed (`udp_port_closed`), so that a DHCPv4
   * message over IPv6 never reaches the DHCPv4 server.
   */
  family?: "both" | "ipv4" | "ipv6";
}
