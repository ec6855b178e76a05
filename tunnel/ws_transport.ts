/**
 * The byte stream under the CLI's WebSocket client (ws_client.ts): a TCP
 * (or TLS) connection with ordered, non-blocking writes and a read loop
 * that hands what arrives to the client. Two implementations: `node:net` /
 * `node:tls` (Bun and Node, native there), and Deno's own `Deno.connect` /
 * `Deno.connectTls` (ws_transport_deno.ts), chosen on Deno: it skips the
 * `node:net` layer (a stream, a `Buffer` and an event per read) and reads
 * the rest of a large message's payload straight into the message's own
 * buffer. A consumer's exception in `onData` ends the connection there
 * (reported through `onError`), where `node:net` would leave it uncaught.
 *
 * @module
 */

import net from "node:net";
import tls from "node:tls";
import { Buffer } from "node:buffer";

/** What a transport tells its owner. */
export interface WsTransportEvents {
  /** The connection (and the TLS handshake, if any) is up. */
  onConnect(): void;
  /** Bytes arrived. `chunk` is valid only during the call (its buffer may be read into again). */
  onData(chunk: Uint8Array): void;
  /** The connection failed (before `onClose`). */
  onError(message: string): void;
  /** The connection ended, however it ended; called once. */
  onClose(): void;
  /**
   * Where the next read should go, if somewhere else than the transport's
   * own buffer: the unfilled rest of a large payload in progress. A
   * transport that can, reads into it and reports with `onDirect`.
   */
  directBuffer?(): Uint8Array | undefined;
  /** `n` bytes were read into the buffer `directBuffer` gave. */
  onDirect?(n: number): void;
}

/** A connection's writing side, as the WebSocket client uses it. */
export interface WsTransport {
  /**
   * Queues `bytes` to be written after what is queued; the transport owns
   * them from now on, and gives them back through `written` once they are
   * written (never when the connection failed first).
   */
  write(bytes: Uint8Array, written?: (bytes: Uint8Array) => void): void;
  /** Bytes queued and not yet written. */
  readonly writableLength: number;
  /** Closes the writing side once the queue is written (the peer sees the end). */
  end(): void;
  /** Drops the connection at once. */
  destroy(): void;
}

/** Where to connect. */
export interface WsTransportTarget {
  host: string;
  port: number;
  /** TLS (`wss:`), with SNI for a host name. */
  secure: boolean;
}

/**
 * Connects to `target` over `node:net` (or `node:tls`), with `TCP_NODELAY`,
 * and reports to `events`.
 *
 * @example
 * ```ts ignore
 * const t = connectNodeTransport({ host: "127.0.0.1", port: 8787, secure: false }, {
 *   onConnect: () => t.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")),
 *   onData: (chunk) => console.log(chunk.length),
 *   onError: (m) => console.error(m),
 *   onClose: () => {},
 * });
 * ```
 */
export function connectNodeTransport(
  target: WsTransportTarget,
  events: WsTransportEvents,
): WsTransport {
  const { host, port, secure } = target;
  const socket = secure
    ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host })
    : net.connect({ host, port });
  socket.setNoDelay(true);
  socket.once(secure ? "secureConnect" : "connect", () => events.onConnect());
  socket.on("data", (chunk: Buffer) => events.onData(chunk));
  socket.on("error", (err: Error) => events.onError(err.message));
  socket.on("close", () => events.onClose());
  return {
    write: (bytes, written) =>
      void (written === undefined ? socket.write(bytes) : socket.write(bytes, (err) => {
        if (!err) written(bytes);
      })),
    get writableLength() {
      return socket.writableLength;
    },
    end: () => void socket.end(),
    destroy: () => void socket.destroy(),
  };
}
