/**
 * What the socket table's per-protocol operations share: the table's host
 * (the session), the checks every operation makes, the route check, and the
 * long-poll that ends on its timeout, when the socket leaves the table or
 * when the caller goes away.
 *
 * @module
 */

import type { Stack } from "../stack/stack.ts";
import { formatIpAddress, type IpAddress, type Ipv4Address, isIpv6LinkLocal } from "../wire/mod.ts";
import { NetError } from "../errors/net_error.ts";
import type { Endpoint, SocketProtocol } from "./local_address.ts";
import { LocalAddress } from "./local_address.ts";
import { PollDeadline, type PollOptions, pollTimeout } from "./poll_deadline.ts";
import type { SocketEntry, TcpSocketEntry } from "./socket_entry.ts";
import type { CoreAccess, TcpSocket } from "./tcp_socket.ts";
import type { BufferHold } from "./buffer_hold.ts";

/** What the table needs from its session. */
export interface SocketTableHost extends CoreAccess {
  /** The session's stack (read for addresses and pcb lists, entered only through `withCore`). */
  readonly stack: Stack;
}

/** What {@linkcode SocketTable.receive} returns. */
export interface ReceiveResult {
  /** The bytes read (a datagram for UDP, cut at `maxBytes`). */
  data: Uint8Array;
  /** TCP: the peer finished sending and everything before was read. */
  eof: boolean;
  /** UDP: the sender. */
  from?: Endpoint;
  /** UDP: the datagram was longer than `maxBytes`; the rest was discarded. */
  truncated?: boolean;
}

/**
 * What the per-protocol operations need from their table.
 *
 * @example
 * ```ts
 * const child = ctx.adoptAccepted(listenerEntry, sock); // a new k_ entry
 * ```
 */
export interface TableContext {
  /** The session. */
  readonly host: SocketTableHost;
  /** Fails with EMFILE when an accept on `listener` could not add a socket now. */
  checkCanAccept(listener: TcpSocketEntry): void;
  /** Adds a connection accepted on `listener` as a new entry sharing its address (EMFILE when full). */
  adoptAccepted(listener: TcpSocketEntry, sock: TcpSocket): TcpSocketEntry;
  /** Charges a buffer the API holds for `entry` to the session's memory quota (ENOBUFS when refused). */
  holdBuffer(entry: SocketEntry, data: Uint8Array, charged?: number): BufferHold;
  /** Gives back a charge a caller handed over for data that is not kept after all. */
  releaseCharge(charged: number | undefined): void;
}

/**
 * Starts the long-poll of an operation on `entry`: it ends at the timeout
 * (default 30 s, at most 60 s, on the session's clock), when the caller's
 * signal aborts or when the entry leaves the table.
 *
 * @example
 * ```ts
 * const wait = longPoll(host, entry, options);
 * try { await sock.receive(max, wait.signal); } finally { wait.dispose(); }
 * ```
 */
export function longPoll(host: CoreAccess, entry: SocketEntry, options: PollOptions): PollDeadline {
  return new PollDeadline(
    host.clock,
    [options.signal, entry.removedSignal],
    pollTimeout(options.timeoutMs),
  );
}

/**
 * Turns what a long-poll threw into the error to report: its own error (a
 * reset, a closed listener) unless the wait was cut short — then ENOTCONN
 * when the socket left the table, ECANCELED when the caller went away.
 *
 * @example
 * ```ts
 * catch (err) { if (wait.timedOut) return undefined; throw waitFailure(wait, err, entry.id); }
 * ```
 */
export function waitFailure(wait: PollDeadline, err: unknown, id: string): unknown {
  if (!wait.signal.aborted) return err;
  const r = wait.signal.reason;
  if (r instanceof NetError) return r;
  return new NetError("ECANCELED", `the caller went away while waiting on socket ${id}`);
}

/**
 * A new address object used by one entry.
 *
 * @example
 * ```ts
 * entry.local = newAddress("udp", ours, 5353, false);
 * ```
 */
export function newAddress(
  protocol: SocketProtocol,
  address: IpAddress,
  port: number,
  reserved: boolean,
): LocalAddress {
  const a = new LocalAddress(protocol, address, port, reserved);
  a.users = 1;
  return a;
}

/**
 * The stack's own address.
 *
 * @example
 * ```ts
 * formatIpv4Address(ownAddress(session)); // "10.0.2.2"
 * ```
 */
export function ownAddress(host: CoreAccess): Ipv4Address {
  return host.withCore((stack) => stack.config.ipv4.address);
}

/**
 * Returns the stack's address to reach `addr` from: its IPv4 address, or
 * for an IPv6 peer its IPv6 address (link-local for a link-local peer, RFC
 * 6724 §5 rule 2). EHOSTUNREACH when `addr` is not on the link, is one of
 * the stack's own, or is IPv6 and the session has no IPv6.
 *
 * @example
 * ```ts
 * const ours = checkRoute(session, parseIpAddress("fd00::15")); // fd00::2
 * ```
 */
export function checkRoute(host: CoreAccess, addr: IpAddress): IpAddress {
  const { ours, own, routed } = host.withCore((stack) => {
    if (typeof addr === "number") {
      const v4 = stack.config.ipv4.address;
      return { ours: v4 as IpAddress, own: addr === v4, routed: stack.hasRoute(addr) };
    }
    const v6 = stack.ipv6;
    if (v6 === undefined) return { ours: undefined, own: false, routed: false };
    return {
      ours: isIpv6LinkLocal(addr) ? v6.linkLocal : v6.address,
      own: addr === v6.address || addr === v6.linkLocal,
      routed: stack.hasRoute(addr),
    };
  });
  if (own) {
    throw new NetError(
      "EHOSTUNREACH",
      `${formatIpAddress(addr)} is the session's own address (there is no loopback)`,
    );
  }
  if (ours === undefined) {
    throw new NetError(
      "EHOSTUNREACH",
      `no route to ${formatIpAddress(addr)}: the session has no IPv6`,
    );
  }
  if (!routed) {
    throw new NetError(
      "EHOSTUNREACH",
      `no route to ${formatIpAddress(addr)}: only hosts on the session's link are reachable`,
    );
  }
  return ours;
}

/**
 * `entry` as a TCP entry; EOPNOTSUPP for UDP.
 *
 * @example
 * ```ts
 * const e = tcpEntry(entry, "listen");
 * ```
 */
export function tcpEntry(entry: SocketEntry, op: string): TcpSocketEntry {
  if (entry.protocol !== "tcp") {
    throw new NetError("EOPNOTSUPP", `${op} needs a TCP socket; socket ${entry.id} is UDP`);
  }
  return entry;
}

/**
 * The connection of a TCP entry; ENOTCONN without one.
 *
 * @example
 * ```ts
 * const sock = connectedSocket(entry, "send");
 * ```
 */
export function connectedSocket(entry: TcpSocketEntry, op: string): TcpSocket {
  const sock = entry.socket;
  if (!sock) {
    throw new NetError(
      "ENOTCONN",
      `cannot ${op}: socket ${entry.id} is ${entry.state}, not connected`,
    );
  }
  return sock;
}

/**
 * EBUSY while a WebSocket stream is attached to `entry`.
 *
 * @example
 * ```ts
 * checkNotStreaming(entry); // before an HTTP send or recv
 * ```
 */
export function checkNotStreaming(entry: SocketEntry): void {
  if (entry.attachment) {
    throw new NetError(
      "EBUSY",
      `socket ${entry.id} is streaming over a WebSocket; close the stream first`,
    );
  }
}

/**
 * ENOTCONN once `entry` left the table.
 *
 * @example
 * ```ts
 * checkLive(entry); // first thing in every operation
 * ```
 */
export function checkLive(entry: SocketEntry): void {
  if (entry.removed) throw new NetError("ENOTCONN", `socket ${entry.id} was closed`);
}
