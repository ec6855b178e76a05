/**
 * The JSON of sockets in the HTTP API: a listing row
 * (`GET .../sockets`, `POST .../shutdown`), the details of one socket
 * (`GET .../sockets/:id`) and the listing itself, built from what the socket
 * table and its entries report.
 *
 * @module
 */

import type { TcpInfo, TcpState } from "../stack/tcp/mod.ts";
import type { Endpoint, SocketProtocol } from "../socket/local_address.ts";
import type {
  ListenerStats,
  PcbList,
  SocketEntry,
  SocketState,
  UdpSocketStats,
} from "../socket/socket_entry.ts";
import type { PcbCounts, SocketTable, SocketTableLimits } from "../socket/socket_table.ts";
import { type QuotaView, quotaView } from "./session_view.ts";

/** One row of the socket listing. */
export interface SocketView {
  /** The handle. */
  id: string;
  /** The transport. */
  protocol: SocketProtocol;
  /** Where the socket is in its life cycle. */
  state: SocketState;
  /** The exact TCP state of a connection (RFC 9293 names), else null. */
  tcpState: TcpState | null;
  /** The core list its control block is on. */
  pcbList: PcbList;
  /** The local endpoint, once bound. */
  local: Endpoint | null;
  /** The peer (TCP) or the default peer (connected UDP). */
  remote: Endpoint | null;
  /** Bytes queued to send (TCP: not yet acknowledged) plus bytes the API holds for sending. */
  sendQueued: number;
  /** Bytes received and not yet read. */
  recvQueued: number;
  /** For an accepted connection, the id of its listening socket; else null. */
  acceptedFrom: string | null;
  /** Whether a WebSocket stream is attached. */
  streaming: boolean;
  /** Why the socket closed, when it did not close cleanly (errno-style), else null. */
  error: string | null;
  /**
   * A listener's connections waiting to be accepted (each holds a unit of the
   * session's socket quota); null for other sockets.
   */
  acceptQueue: number | null;
}

/** Details of one socket: the row plus its protocol-specific counters. */
export interface SocketDetails extends SocketView {
  /** TCP connection estimates and counters (rtt, rto, cwnd, windows, retransmits...). */
  tcp: TcpInfo | null;
  /** A listener's queues and SYN-cookie counters. */
  listener: ListenerStats | null;
  /** A UDP socket's queue and counters. */
  udp: UdpSocketStats | null;
}

/** Body of `GET /v1/sessions/:sid/sockets`. */
export interface SocketListView {
  /** A row per socket, oldest first. */
  sockets: SocketView[];
  /** Control blocks on each core list. */
  pcbs: PcbCounts;
  /** Bytes buffered for all sockets (core queues plus what the API holds). */
  bufferedBytes: number;
  /** The session's socket limits. */
  limits: SocketTableLimits;
  /** The session's quotas, used now (API sockets and queued connections; bytes held). */
  quota: QuotaView;
}

/**
 * One socket's row.
 *
 * @example
 * ```ts
 * return c.json(socketView(entry)); // {id, protocol, state, tcpState, pcbList, ...}
 * ```
 */
export function socketView(entry: SocketEntry): SocketView {
  const q = entry.queued();
  const tcp = entry.protocol === "tcp" ? entry : undefined;
  return {
    id: entry.id,
    protocol: entry.protocol,
    state: entry.state,
    tcpState: tcp ? tcp.tcpState : null,
    pcbList: entry.pcbList,
    local: entry.localEndpoint,
    remote: entry.remote,
    sendQueued: q.send + entry.pendingBytes,
    recvQueued: q.recv,
    acceptedFrom: tcp?.acceptedFrom ?? null,
    streaming: entry.attachment !== undefined,
    error: tcp ? tcp.failure : null,
    acceptQueue: tcp?.listenerStats()?.acceptQueue ?? null,
  };
}

/**
 * One socket's row plus its protocol-specific counters.
 *
 * @example
 * ```ts
 * socketDetails(entry).listener?.acceptQueue; // connections waiting to be accepted
 * ```
 */
export function socketDetails(entry: SocketEntry): SocketDetails {
  const view = socketView(entry);
  if (entry.protocol === "tcp") {
    return { ...view, tcp: entry.tcpInfo(), listener: entry.listenerStats(), udp: null };
  }
  return { ...view, tcp: null, listener: null, udp: entry.udpStats() };
}

/**
 * The socket listing of a session.
 *
 * @example
 * ```ts
 * return c.json(socketListView(session.sockets));
 * ```
 */
export function socketListView(table: SocketTable): SocketListView {
  return {
    sockets: table.entries().map(socketView),
    pcbs: table.pcbCounts(),
    bufferedBytes: table.bufferedBytes(),
    limits: { ...table.limits },
    quota: quotaView(table.quota),
  };
}
