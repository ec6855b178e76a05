/**
 * Runtime adapter: outbound TCP on Cloudflare Workers and workerd with
 * `connect()` from `cloudflare:sockets` (half-open allowed, so a FIN each
 * way is passed on). Workers have no outbound UDP: `openUdp` is absent and
 * the gateway answers UDP to the outside with ICMP administratively
 * prohibited. A Worker may have 6 connections open at once per request
 * context: dials beyond wait in a {@linkcode LimitedDialer} queue rather than
 * fail. Not in the library bundle's graph (mod.ts): the Durable Object
 * imports it, and the bundler leaves `cloudflare:sockets` to the runtime.
 *
 * What the platform refuses (its own addresses, private ranges, port 25 on
 * Cloudflare) fails the dial; the gateway answers it with ICMP
 * administratively prohibited when the error says so, host unreachable
 * otherwise.
 *
 * @module
 */

import { connect } from "cloudflare:sockets";
import {
  classifyDialError,
  type DialedTcp,
  DialError,
  type EgressDialer,
  LimitedDialer,
} from "./dialer.ts";

/** The part of a `cloudflare:sockets` Socket the adapter uses. */
interface WorkerSocket {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  readonly opened: Promise<unknown>;
  close(): Promise<void>;
}

/** Outbound connections open at once per request context on Cloudflare Workers. */
export const WORKERS_MAX_CONNECTIONS = 6;

class WorkerTcp implements DialedTcp {
  #socket: WorkerSocket;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #rest: Uint8Array | undefined;
  #closed = false;

  constructor(socket: WorkerSocket) {
    this.#socket = socket;
    this.#reader = socket.readable.getReader();
    this.#writer = socket.writable.getWriter();
  }

  async read(max: number): Promise<Uint8Array | null> {
    let chunk = this.#rest;
    this.#rest = undefined;
    if (chunk === undefined) {
      const { done, value } = await this.#reader.read();
      if (done) return null;
      chunk = value;
    }
    if (chunk.length <= max) return chunk;
    this.#rest = chunk.subarray(max);
    return chunk.subarray(0, max);
  }

  write(data: Uint8Array): Promise<void> {
    // The writer keeps the chunk until it is sent: hand it a copy of a view we may reuse.
    return this.#writer.write(data.slice());
  }

  closeWrite(): Promise<void> {
    return this.#writer.close();
  }

  close(_reset?: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close().catch(() => {});
  }
}

/**
 * The Workers dialer: `connect()` behind a queue of
 * {@linkcode WORKERS_MAX_CONNECTIONS}.
 *
 * @example
 * ```ts
 * const egress = createEgressService(config, { dialer: workerdDialer(), serverAddresses: [] });
 * ```
 */
export function workerdDialer(maxOpen: number = WORKERS_MAX_CONNECTIONS): EgressDialer {
  const inner: EgressDialer = {
    name: "workerd",
    async connectTcp(address, port, options = {}) {
      const signal = options.signal;
      signal?.throwIfAborted();
      const hostname = address.includes(":") ? `[${address}]` : address;
      const socket = connect({ hostname, port }, { allowHalfOpen: true }) as WorkerSocket;
      const onAbort = () => socket.close().catch(() => {});
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        await socket.opened;
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        throw new DialError(
          classifyDialError(err),
          `connect to ${address}:${port}: ${(err as Error).message}`,
        );
      } finally {
        signal?.removeEventListener("abort", onAbort);
      }
      if (signal?.aborted) {
        socket.close().catch(() => {});
        throw signal.reason;
      }
      return new WorkerTcp(socket);
    },
  };
  return new LimitedDialer(inner, maxOpen);
}
