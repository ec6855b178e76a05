/**
 * Runtime adapter: outbound TCP with `Bun.connect` (UDP and the system
 * resolver come from node_net.ts). Bun pushes received data to a handler;
 * the adapter holds at most what one callback delivered and pauses the
 * socket until the gateway has taken it, so the gateway's pull (and with it
 * the guest's window) is what paces the server. `close(true)` terminates
 * the socket at once.
 *
 * @module
 */

import { classifyDialError, type DialedTcp, DialError, type EgressDialer } from "./dialer.ts";
import { nodeDgramUdp } from "./node_net.ts";

/** The part of Bun's TCP socket the adapter uses. */
interface BunSocket {
  write(data: Uint8Array): number;
  end(): void;
  shutdown(halfClose?: boolean): void;
  terminate(): void;
  pause(): void;
  resume(): void;
  setNoDelay(noDelay?: boolean): boolean;
}

/** The handlers of `Bun.connect` the adapter gives. */
interface BunSocketHandlers {
  open(s: BunSocket): void;
  data(s: BunSocket, d: Uint8Array): void;
  end(s: BunSocket): void;
  close(s: BunSocket, err?: Error): void;
  error(s: BunSocket, err: Error): void;
  drain(s: BunSocket): void;
}

/** The part of the `Bun` global the adapter uses. */
interface BunGlobal {
  connect(options: {
    hostname: string;
    port: number;
    allowHalfOpen?: boolean;
    socket: BunSocketHandlers;
  }): Promise<BunSocket>;
}

/** A {@linkcode DialedTcp} over a Bun socket, fed by its handlers. */
class BunTcp implements DialedTcp {
  socket!: BunSocket;
  #chunks: Uint8Array[] = [];
  #ended = false;
  #error: Error | undefined;
  #reader: (() => void) | undefined;
  #drain: (() => void) | undefined;
  #closed = false;

  /** Handler: data arrived (pause until it is read). */
  data(d: Uint8Array): void {
    this.#chunks.push(d);
    this.socket.pause();
    this.#wakeReader();
  }

  /** Handler: the server finished sending. */
  end(): void {
    this.#ended = true;
    this.#wakeReader();
  }

  /** Handler: the connection closed or failed. */
  fail(err: Error): void {
    this.#error ??= err;
    this.#wakeReader();
    const d = this.#drain;
    this.#drain = undefined;
    d?.();
  }

  /** Handler: the socket's send buffer has room again. */
  drained(): void {
    const d = this.#drain;
    this.#drain = undefined;
    d?.();
  }

  #wakeReader(): void {
    const r = this.#reader;
    this.#reader = undefined;
    r?.();
  }

  async read(max: number): Promise<Uint8Array | null> {
    for (;;) {
      const first = this.#chunks[0];
      if (first !== undefined) {
        if (first.length <= max) {
          this.#chunks.shift();
          if (this.#chunks.length === 0 && !this.#closed) this.socket.resume();
          return first;
        }
        this.#chunks[0] = first.subarray(max);
        return first.subarray(0, max);
      }
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((r) => this.#reader = r);
    }
  }

  async write(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) {
      if (this.#error) throw this.#error;
      off += this.socket.write(data.subarray(off));
      if (off < data.length) await new Promise<void>((r) => this.#drain = r);
    }
  }

  closeWrite(): Promise<void> {
    // Bun 1.4: shutdown() is the write half (SHUT_WR); shutdown(true) stops reading.
    this.socket.shutdown();
    return Promise.resolve();
  }

  close(reset = false): void {
    if (this.#closed) return;
    this.#closed = true;
    if (reset) this.socket.terminate();
    else this.socket.end();
  }
}

/**
 * The Bun dialer: `Bun.connect` for TCP (half-open allowed), `node:dgram`
 * for UDP.
 *
 * @example
 * ```ts
 * const service = new EgressService({ dialer: bunDialer(), policy, upstream });
 * ```
 */
export function bunDialer(): EgressDialer {
  return {
    name: "bun",
    async connectTcp(address, port, options = {}) {
      const signal = options.signal;
      signal?.throwIfAborted();
      const bun = (globalThis as unknown as { Bun?: BunGlobal }).Bun;
      if (!bun) throw new TypeError("bunDialer: this runtime has no Bun global");
      const conn = new BunTcp();
      let socket: BunSocket;
      try {
        socket = await bun.connect({
          hostname: address,
          port,
          allowHalfOpen: true,
          socket: {
            open: (s) => conn.socket = s,
            data: (_s, d) => conn.data(d),
            end: () => conn.end(),
            // Closed without an error after both sides finished: the end of the stream.
            close: (_s, err) => err ? conn.fail(err) : conn.end(),
            error: (_s, err) => conn.fail(err),
            drain: () => conn.drained(),
          },
        });
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        throw new DialError(
          classifyDialError(err),
          `connect to ${address}:${port}: ${(err as Error).message}`,
        );
      }
      conn.socket = socket;
      socket.setNoDelay(true);
      if (signal?.aborted) {
        conn.close(true);
        throw signal.reason;
      }
      return conn;
    },
    openUdp: nodeDgramUdp,
  };
}
