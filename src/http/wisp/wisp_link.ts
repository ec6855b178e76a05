/**
 * What a Wisp stream needs from its connection (wisp_connection.ts), and the
 * server's options: a type-only seam so that the streams and the connection
 * do not import each other.
 *
 * @module
 */

import type { SocketTable } from "../../socket/socket_table.ts";
import type { Session } from "../../session/mod.ts";

/** Tuning and limits of the Wisp server; every field has a default. */
export interface WispOptions {
  /**
   * Packets a TCP stream may have sent and not yet taken by TCP (the
   * CONTINUE count; Wisp flow control counts packets). Default 64.
   */
  bufferPackets?: number;
  /** Bytes a stream may have queued from the client before it is closed with 0x49. Default 8 MiB. */
  maxQueuedBytesPerStream?: number;
  /** Streams open at once on one connection; more are closed with 0x49. Default 128. */
  maxStreamsPerConnection?: number;
  /**
   * What the server may have handed to the WebSocket and not yet seen it
   * send, for all streams together: reads from TCP stop beyond it, so a
   * client that stops reading stops the TCP senders. Default 1 MiB.
   */
  highWaterBytes?: number;
  /** Largest DATA payload the server sends. Default 64 KiB. */
  chunkBytes?: number;
  /** Largest message accepted from the client (1009 beyond). Default 1 MiB + 5. */
  maxMessageBytes?: number;
  /** How long a TCP connect may take before 0x43. Default 10 s. */
  connectTimeoutMs?: number;
  /** v2: how long the client has to send its INFO (and its password). Default 10 s. */
  handshakeTimeoutMs?: number;
  /** How often the server looks at `bufferedAmount` while it waits for it to drop (ms). Default 10. */
  drainPollMs?: number;
  /**
   * Control packets (CLOSE, CONTINUE) the client has not read, in bytes,
   * before the connection is closed with 1008. Default 1 MiB.
   */
  maxControlBacklogBytes?: number;
  /** v2: the MOTD extension's text, if any. */
  motd?: string;
}

/** The defaults of {@linkcode WispOptions}. */
export const DEFAULT_WISP_OPTIONS: Readonly<Required<Omit<WispOptions, "motd">>> = Object.freeze({
  bufferPackets: 64,
  maxQueuedBytesPerStream: 8 * 1024 * 1024,
  maxStreamsPerConnection: 128,
  highWaterBytes: 1024 * 1024,
  chunkBytes: 64 * 1024,
  maxMessageBytes: 1024 * 1024 + 5,
  connectTimeoutMs: 10_000,
  handshakeTimeoutMs: 10_000,
  drainPollMs: 10,
  maxControlBacklogBytes: 1024 * 1024,
});

/** Options with every default filled in. */
export type ResolvedWispOptions = Required<Omit<WispOptions, "motd">> & { motd?: string };

/**
 * A stream's view of its connection.
 *
 * @example
 * ```ts
 * await link.reserve(5 + 65536, signal); // room in the WebSocket and the quota
 * const chunk = sock.read(65536);
 * link.sendReserved(encodeWispData(id, chunk), 5 + 65536);
 * ```
 */
export interface WispLink {
  /** The session the streams open connections in. */
  readonly session: Session;
  /** Its socket table: every stream is a socket there. */
  readonly table: SocketTable;
  /** The options in force. */
  readonly options: ResolvedWispOptions;
  /** Whether the connection negotiated v2's stream-open confirmation. */
  readonly confirmsOpen: boolean;
  /** Sends a control packet (CONTINUE, CLOSE) now. */
  sendControl(message: Uint8Array<ArrayBuffer>): void;
  /**
   * Resolves once `bytes` more fit what the WebSocket may hold for the
   * server and the session's memory quota took their cost; rejects with the
   * signal's reason. Follow with {@linkcode WispLink.sendReserved} or
   * {@linkcode WispLink.cancelReservation}.
   */
  reserve(bytes: number, signal: AbortSignal): Promise<void>;
  /** Sends `message` (at most the reserved size) against a reservation of `reserved` bytes. */
  sendReserved(message: Uint8Array<ArrayBuffer>, reserved: number): void;
  /** Gives a reservation back unused. */
  cancelReservation(reserved: number): void;
  /** The stream `id` ended: it leaves the connection's table. */
  forget(id: number): void;
  /** Counts an event of the connection (for the session's Wisp counters). */
  count(what: string): void;
}
