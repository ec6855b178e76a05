/**
 * A TCP connection inside a session, shaped like Cloudflare's Sockets API
 * (`connect()` from `cloudflare:sockets`): `readable`, `writable`, `opened`,
 * `closed`, `close()`. It rides one `netisle.stream.v1` WebSocket, so
 * backpressure holds end to end: a reader that stops reading stops the
 * server reading the connection (the peer's TCP window closes), and a write
 * resolves only within the credit the server grants as the connection's send
 * buffer takes the bytes.
 *
 * @module
 */

import type { StreamEndpoint } from "../http/socket_stream_protocol.ts";
import type { ApiTransport } from "./api_transport.ts";
import { NetisleError } from "./netisle_error.ts";
import { CLOSE_ABORT, StreamChannel } from "./stream_channel.ts";
import { joinHostPort } from "./netisle_udp_socket.ts";

/** Where to connect: an IPv4 address on the session's link and a port. */
export interface SocketAddress {
  /** The peer's IPv4 address (dotted quad; e.g. the tunnelled machine, 10.0.2.15). */
  hostname: string;
  /** The peer's port. */
  port: number;
}

/** Options of `session.connect()`. */
export interface SocketOptions {
  /** How long the TCP handshake may take, in ms (the server's default 30000, at most 60000). */
  timeoutMs?: number;
  /**
   * As in Cloudflare's API: false (the default) ends the writable side when
   * the peer's FIN arrives; true keeps it open (a half-open connection).
   */
  allowHalfOpen?: boolean;
  /** Only `"off"`: the SDK does not speak TLS itself (run TLS inside the stream). */
  secureTransport?: "off";
  /** Receive window in bytes (at least 1 MiB, the default): what the server may send unread. */
  receiveWindowBytes?: number;
}

/** What `opened` resolves with (Cloudflare's `SocketInfo`, plus the endpoints as objects). */
export interface SocketInfo {
  /** `address:port` of the peer. */
  remoteAddress: string | null;
  /** `address:port` of the socket on the stack. */
  localAddress: string | null;
  /** The peer. */
  remote: StreamEndpoint | null;
  /** The socket on the stack. */
  local: StreamEndpoint | null;
}

/** Whom a socket belongs to. */
export interface SessionCredentials {
  /** The session id. */
  id: string;
  /** The session token. */
  token: string;
}

/** Largest DATA body the SDK sends in one message. */
const MAX_MESSAGE_BYTES = 256 * 1024;

type Item = Uint8Array | "fin" | NetisleError;

const encoder = new TextEncoder();

/**
 * A TCP connection inside a session. Made by `session.connect()` (which
 * returns at once; `opened` says when the handshake is done) and by
 * listeners for accepted connections.
 *
 * @example
 * ```ts
 * const socket = session.connect({ hostname: "10.0.2.15", port: 80 });
 * const writer = socket.writable.getWriter();
 * await writer.write(new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
 * for await (const chunk of socket.readable) console.log(new TextDecoder().decode(chunk));
 * ```
 */
export class NetisleSocket {
  /** The bytes from the peer; ends at the peer's FIN. */
  readonly readable: ReadableStream<Uint8Array>;
  /** The bytes to the peer; `close()` on it sends FIN (a half-close). */
  readonly writable: WritableStream<Uint8Array | ArrayBufferView | ArrayBuffer | string>;
  /** Resolves once the connection is established and its stream open. */
  readonly opened: Promise<SocketInfo>;
  /** Resolves when the connection ended cleanly, rejects with a NetisleError when it failed. */
  readonly closed: Promise<void>;

  #transport: ApiTransport;
  #session: SessionCredentials;
  #options: SocketOptions;
  #id: string | undefined;
  #channel: StreamChannel | undefined;
  #queue: Item[] = [];
  #wake: (() => void) | undefined;
  #readCancelled = false;
  #finSent = false;
  #peerFin = false;
  #closing = false;
  #ended = false;
  #writing: Promise<void> = Promise.resolve();
  #writableController: WritableStreamDefaultController | undefined;
  #resolveOpened!: (info: SocketInfo) => void;
  #rejectOpened!: (err: NetisleError) => void;
  #resolveClosed!: () => void;
  #rejectClosed!: (err: NetisleError) => void;

  /**
   * Starts a socket whose id `open` provides (after creating and connecting
   * one, or an accepted connection's). Use `session.connect()` instead.
   */
  constructor(
    transport: ApiTransport,
    session: SessionCredentials,
    open: () => Promise<string>,
    options: SocketOptions = {},
  ) {
    if (options.secureTransport !== undefined && options.secureTransport !== "off") {
      throw new TypeError(
        `secureTransport "${options.secureTransport}" is not supported: the SDK carries plain TCP`,
      );
    }
    this.#transport = transport;
    this.#session = session;
    this.#options = options;
    this.opened = new Promise((resolve, reject) => {
      this.#resolveOpened = resolve;
      this.#rejectOpened = reject;
    });
    this.closed = new Promise((resolve, reject) => {
      this.#resolveClosed = resolve;
      this.#rejectClosed = reject;
    });
    // Callers who never look at them must not see unhandled rejections.
    this.opened.catch(() => {});
    this.closed.catch(() => {});
    this.readable = new ReadableStream<Uint8Array>({
      type: "bytes",
      pull: (controller) => this.#pull(controller as ReadableByteStreamController),
      cancel: () => this.#cancelRead(),
    });
    this.writable = new WritableStream({
      start: (controller) => {
        this.#writableController = controller;
      },
      write: (chunk) => this.#write(chunk),
      close: () => this.#closeWrite(),
      abort: () => this.#abort(),
    });
    void this.#start(open);
  }

  /** The socket's id in the session (`k_…`), once known. */
  get id(): string | undefined {
    return this.#id;
  }

  /**
   * Closes the connection both ways (Cloudflare's `close()`): FIN if not yet
   * sent, then the stream; data still unread is dropped (and the stack resets
   * the connection if some had arrived, RFC 2525). Resolves like `closed`.
   */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      const ch = this.#channel;
      if (ch && !ch.ended) {
        try {
          if (!this.#finSent) ch.fin();
          this.#finSent = true;
        } catch {
          // The stream is ending anyway.
        }
        ch.close(1000, "closed by the client");
      }
      this.#push(new NetisleError("ENOTCONN", "the socket was closed"));
      this.#writableController?.error(new NetisleError("EPIPE", "the socket was closed"));
    }
    return this.closed;
  }

  /**
   * Drops the connection at once (not in Cloudflare's API): the stream
   * closes without a FIN, so the stack resets the connection (RST), and
   * `closed` resolves. What a proxy does when the other side of it failed.
   */
  reset(): Promise<void> {
    this.#abort();
    this.#writableController?.error(new NetisleError("ECONNRESET", "the socket was reset"));
    return this.closed;
  }

  async #start(open: () => Promise<string>): Promise<void> {
    let id: string;
    try {
      id = await open();
    } catch (err) {
      this.#fail(asNetisleError(err));
      return;
    }
    this.#id = id;
    if (this.#closing) {
      void this.#deleteQuietly(id);
      this.#fail(new NetisleError("ECANCELED", "the socket was closed before it opened"));
      return;
    }
    const url = this.#transport.streamUrl(this.#session.id, id, this.#session.token);
    try {
      this.#channel = new StreamChannel(url, this.#transport.WebSocket, {
        open: (info) => {
          const extra = (this.#options.receiveWindowBytes ?? 0) - 1024 * 1024;
          if (extra > 0) this.#channel?.grant(extra);
          this.#resolveOpened({
            remoteAddress: info.remote ? joinHostPort(info.remote.address, info.remote.port) : null,
            localAddress: info.local ? joinHostPort(info.local.address, info.local.port) : null,
            remote: info.remote,
            local: info.local,
          });
        },
        data: (body) => {
          if (this.#readCancelled) {
            this.#channel?.consumed(body.length);
            return;
          }
          this.#push(body);
        },
        fin: () => {
          this.#peerFin = true;
          this.#push("fin");
          if (!this.#options.allowHalfOpen) void this.#autoFin();
          this.#maybeDone();
        },
        error: () => {},
        closed: (error) => this.#onChannelClosed(error),
      });
    } catch (err) {
      // The server keeps an accepted or connected socket until its stream ends: drop it.
      void this.#deleteQuietly(id);
      this.#fail(asNetisleError(err));
    }
  }

  #onChannelClosed(error: NetisleError | undefined): void {
    if (this.#ended) return;
    this.#ended = true;
    if (error && !this.#closing) {
      this.#rejectOpened(error);
      this.#push(error);
      this.#writableController?.error(error);
      this.#rejectClosed(error);
      return;
    }
    this.#rejectOpened(new NetisleError("ECANCELED", "the socket was closed before it opened"));
    if (!this.#peerFin) this.#push("fin");
    this.#resolveClosed();
  }

  #fail(error: NetisleError): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#rejectOpened(error);
    this.#push(error);
    this.#writableController?.error(error);
    this.#rejectClosed(error);
  }

  #push(item: Item): void {
    this.#queue.push(item);
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  async #pull(controller: ReadableByteStreamController): Promise<void> {
    while (this.#queue.length === 0) await new Promise<void>((r) => this.#wake = r);
    const item = this.#queue.shift()!;
    if (item === "fin") {
      controller.close();
      controller.byobRequest?.respond(0);
      return;
    }
    if (item instanceof NetisleError) {
      if (this.#closing && item.code === "ENOTCONN") {
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      controller.error(item);
      return;
    }
    // Enqueuing transfers the chunk's buffer (a byte stream): count it first.
    const n = item.length;
    controller.enqueue(item);
    this.#channel?.consumed(n);
  }

  #cancelRead(): void {
    // Nothing more is wanted: discard what came and keep the credit flowing, so the
    // peer is not stopped by a reader that left (data is dropped, as after SHUT_RD).
    this.#readCancelled = true;
    let n = 0;
    for (const item of this.#queue.splice(0)) if (item instanceof Uint8Array) n += item.length;
    if (n > 0) this.#channel?.consumed(n);
  }

  async #ready(): Promise<StreamChannel> {
    await this.opened;
    const ch = this.#channel!;
    if (this.#finSent) throw new NetisleError("EPIPE", "the writable side was closed (FIN sent)");
    return ch;
  }

  #write(chunk: Uint8Array | ArrayBufferView | ArrayBuffer | string): Promise<void> {
    const bytes = toBytes(chunk);
    const p = this.#writing.then(async () => {
      const ch = await this.#ready();
      let off = 0;
      while (off < bytes.length) {
        const n = await ch.reserve(Math.min(MAX_MESSAGE_BYTES, bytes.length - off), true);
        if (this.#finSent) {
          throw new NetisleError("EPIPE", "the peer ended the connection (allowHalfOpen is false)");
        }
        ch.sendData(bytes.subarray(off, off + n));
        off += n;
      }
    });
    this.#writing = p.catch(() => {});
    return p;
  }

  async #closeWrite(): Promise<void> {
    const ch = await this.#ready();
    await this.#writing;
    if (this.#finSent) return;
    this.#finSent = true;
    ch.fin();
    this.#maybeDone();
  }

  /** Both directions ended: the client closes the stream (the protocol's rule). */
  #maybeDone(): void {
    if (this.#finSent && this.#peerFin) this.#channel?.close(1000, "end of stream");
  }

  /** The peer's FIN with allowHalfOpen false: end our side too, after the write in progress. */
  async #autoFin(): Promise<void> {
    await this.#writing;
    if (this.#finSent || !this.#channel || this.#channel.ended) return;
    this.#finSent = true;
    try {
      this.#channel.fin();
    } catch {
      // Ended meanwhile.
    }
    this.#maybeDone();
  }

  #abort(): void {
    // The server resets the connection when its stream closes without our FIN.
    if (this.#closing) return;
    this.#closing = true;
    const ch = this.#channel;
    if (ch) ch.close(CLOSE_ABORT, "aborted by the client");
    this.#push(new NetisleError("ENOTCONN", "the socket was aborted"));
  }

  async #deleteQuietly(id: string): Promise<void> {
    try {
      await this.#transport.request(
        "DELETE",
        `/v1/sessions/${this.#session.id}/sockets/${id}`,
        { token: this.#session.token, what: "close the socket" },
      );
    } catch {
      // Best effort: the session's idle sweep or its deletion reclaims it.
    }
  }
}

/**
 * Bytes of a chunk written to a socket: bytes as they are, strings as UTF-8.
 *
 * @example
 * ```ts
 * toBytes("hi"); // Uint8Array [104, 105]
 * ```
 */
export function toBytes(chunk: Uint8Array | ArrayBufferView | ArrayBuffer | string): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (typeof chunk === "string") return encoder.encode(chunk);
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  if (ArrayBuffer.isView(chunk)) {
    return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
  throw new TypeError(`cannot write a ${typeof chunk} to a socket: give bytes or a string`);
}

/**
 * Any error as a NetisleError (TypeErrors of misuse pass through as EINVAL).
 *
 * @example
 * ```ts
 * asNetisleError(new TypeError("bad")).code; // "EINVAL"
 * ```
 */
export function asNetisleError(err: unknown): NetisleError {
  if (err instanceof NetisleError) return err;
  return new NetisleError("EINVAL", (err as Error)?.message ?? String(err), { cause: err });
}
