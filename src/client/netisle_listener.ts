/**
 * A TCP listener on the session's stack: the tunnelled machine connects to
 * the stack's address (10.0.2.2) on its port, and each connection comes out
 * of the listener as a {@linkcode NetisleSocket}. Accepting is the API's
 * long-poll (`POST .../accept`), repeated; each accepted connection gets its
 * own stream WebSocket.
 *
 * @module
 */

import type { AcceptResultSchema } from "../http/socket_schemas.ts";
import type { StreamEndpoint } from "../http/socket_stream_protocol.ts";
import type { z } from "zod";
import type { ApiTransport } from "./api_transport.ts";
import { NetisleError } from "./netisle_error.ts";
import { NetisleSocket, type SessionCredentials, type SocketOptions } from "./netisle_socket.ts";

/** How long one accept long-poll waits (the server's maximum). */
const ACCEPT_POLL_MS = 60_000;

/**
 * Connections to a port of the stack, as an async iterable of sockets.
 *
 * @example
 * ```ts
 * const listener = await session.listen({ port: 8080 });
 * for await (const socket of listener) {
 *   socket.readable.pipeTo(socket.writable); // echo
 * }
 * ```
 */
export class NetisleListener implements AsyncIterable<NetisleSocket> {
  /** The listening socket's id (`k_…`). */
  readonly id: string;
  /** Where it listens: the stack's address and the port. */
  readonly local: StreamEndpoint;
  #transport: ApiTransport;
  #session: SessionCredentials;
  #options: SocketOptions;
  #closed = new AbortController();

  /** Wraps a listening socket; use `session.listen()` instead. */
  constructor(
    transport: ApiTransport,
    session: SessionCredentials,
    id: string,
    local: StreamEndpoint,
    options: SocketOptions = {},
  ) {
    this.#transport = transport;
    this.#session = session;
    this.id = id;
    this.local = local;
    this.#options = options;
  }

  /** Whether `close()` was called. */
  get isClosed(): boolean {
    return this.#closed.signal.aborted;
  }

  /**
   * The next connection. Waits as long as it takes (`signal` ends the wait:
   * ECANCELED); rejects with ENOTCONN once the listener is closed, and with
   * EUNREACHABLE when the server cannot be reached (call again to retry).
   */
  async accept(options: { signal?: AbortSignal } = {}): Promise<NetisleSocket> {
    const signal = options.signal
      ? anySignal([options.signal, this.#closed.signal])
      : this.#closed.signal;
    for (;;) {
      if (this.#closed.signal.aborted) {
        throw new NetisleError("ENOTCONN", `listener on port ${this.local.port} is closed`);
      }
      let res: Response;
      try {
        res = await this.#transport.request(
          "POST",
          `/v1/sessions/${this.#session.id}/sockets/${this.id}/accept`,
          {
            token: this.#session.token,
            json: { timeoutMs: ACCEPT_POLL_MS },
            signal,
            what: `accept on port ${this.local.port}`,
          },
        );
      } catch (err) {
        if (this.#closed.signal.aborted) continue;
        throw err;
      }
      if (res.status === 204) continue;
      const accepted = await res.json() as z.output<typeof AcceptResultSchema>;
      return new NetisleSocket(
        this.#transport,
        this.#session,
        () => Promise.resolve(accepted.id),
        this.#options,
      );
    }
  }

  /** Accepted connections until the listener is closed. */
  async *[Symbol.asyncIterator](): AsyncIterator<NetisleSocket> {
    for (;;) {
      try {
        yield await this.accept();
      } catch (err) {
        if (this.isClosed) return;
        throw err;
      }
    }
  }

  /** Stops listening: the port is released and connections not yet accepted are reset. */
  async close(): Promise<void> {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort();
    try {
      await this.#transport.request(
        "DELETE",
        `/v1/sessions/${this.#session.id}/sockets/${this.id}`,
        { token: this.#session.token, what: `close the listener on port ${this.local.port}` },
      );
    } catch (err) {
      if (err instanceof NetisleError && err.code === "ENOTFOUND") return;
      throw err;
    }
  }
}

/** A signal that aborts when any of `signals` does. */
function anySignal(signals: AbortSignal[]): AbortSignal {
  const ac = new AbortController();
  for (const s of signals) {
    if (s.aborted) {
      ac.abort(s.reason);
      break;
    }
    s.addEventListener("abort", () => ac.abort(s.reason), { once: true });
  }
  return ac.signal;
}
