/**
 * Address objects: a bound local endpoint (protocol, address, port), kept
 * apart from the sockets that use it (DESIGN.md: an address is not a
 * socket). A listener and the connections it accepted share one.
 *
 * @module
 */

import { formatIpAddress, type IpAddress } from "../wire/mod.ts";

/** The transport of a socket. */
export type SocketProtocol = "tcp" | "udp";

/** An IPv4 endpoint: a dotted-quad address and a port. */
export interface Endpoint {
  /** Dotted-quad IPv4 address. */
  address: string;
  /** Port, 0..65535. */
  port: number;
}

/**
 * A bound local endpoint (an "address object": protocol, address, port),
 * separate from the sockets that use it. A TCP address object created by
 * `bind` holds the port reservation itself ({@linkcode LocalAddress.reserved})
 * until `listen` or `connect` passes it to the core's listener or connection.
 *
 * @example
 * ```ts
 * const entry = table.create("tcp");
 * table.bind(entry, { port: 8080 });
 * entry.local?.endpoint; // { address: "10.0.2.2", port: 8080 }
 * ```
 */
export class LocalAddress {
  /** The transport. */
  readonly protocol: SocketProtocol;
  /**
   * The stack's address the socket was bound to (IPv4 by default; one of
   * its IPv6 addresses when bound there). A TCP port takes both families
   * whatever the address says, as a dual-stack socket does.
   */
  readonly address: IpAddress;
  /** The local port. */
  readonly port: number;
  /** Whether this object still holds a TCP port reservation (`tcp.bindPort`). */
  reserved: boolean;
  /** Table entries using this address (a listener and the connections it accepted share one). */
  users = 0;

  /** Describes an address; `reserved` says whether it holds a `bindPort` reservation. */
  constructor(protocol: SocketProtocol, address: IpAddress, port: number, reserved: boolean) {
    this.protocol = protocol;
    this.address = address;
    this.port = port;
    this.reserved = reserved;
  }

  /** The address and port as an {@linkcode Endpoint}. */
  get endpoint(): Endpoint {
    return { address: formatIpAddress(this.address), port: this.port };
  }
}
