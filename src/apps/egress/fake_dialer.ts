/**
 * An in-memory {@linkcode EgressDialer} for tests and the fuzzer: scripted
 * outside hosts (TCP servers that get the far end of a bounded pipe, UDP
 * handlers), refused, unreachable and silent destinations, held dials that a
 * test completes when it chooses, and counts of what is open, so a test can
 * prove nothing leaks.
 *
 * @module
 */

import {
  type DialedTcp,
  type DialedUdp,
  DialError,
  type DialOptions,
  type EgressDialer,
  type UdpHandlers,
} from "./dialer.ts";

/**
 * One direction of an in-memory TCP connection: a byte queue that holds at
 * most `capacity` bytes (a writer waits beyond it, which is how backpressure
 * shows), with an end (FIN) and a failure (RST).
 */
export class FakePipe {
  /** The most bytes held before a writer waits. */
  readonly capacity: number;
  #chunks: Uint8Array[] = [];
  #held = 0;
  #ended = false;
  #error: Error | undefined;
  #readers: Array<() => void> = [];
  #writers: Array<() => void> = [];
  /** Bytes written in total. */
  written = 0;

  /** Creates an empty pipe. */
  constructor(capacity = 256 * 1024) {
    this.capacity = capacity;
  }

  /** Bytes waiting to be read. */
  get held(): number {
    return this.#held;
  }

  /** Whether the writer ended the pipe. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Appends a copy of `data`; resolves once the pipe holds no more than its capacity. */
  async write(data: Uint8Array): Promise<void> {
    if (this.#error) throw this.#error;
    if (this.#ended) throw new Error("write after end");
    if (data.length > 0) {
      this.#chunks.push(data.slice());
      this.#held += data.length;
      this.written += data.length;
      this.#wake(this.#readers);
    }
    while (this.#held > this.capacity && !this.#error) {
      await new Promise<void>((r) => this.#writers.push(r));
    }
    if (this.#error) throw this.#error;
  }

  /** Up to `max` bytes, null at the end; waits while empty; rejects after a failure. */
  async read(max: number): Promise<Uint8Array | null> {
    for (;;) {
      if (this.#error) throw this.#error;
      if (this.#held > 0) {
        const first = this.#chunks[0];
        let out: Uint8Array;
        if (first.length <= max) {
          out = first;
          this.#chunks.shift();
        } else {
          out = first.subarray(0, max);
          this.#chunks[0] = first.subarray(max);
        }
        this.#held -= out.length;
        if (this.#held <= this.capacity) this.#wake(this.#writers);
        return out;
      }
      if (this.#ended) return null;
      await new Promise<void>((r) => this.#readers.push(r));
    }
  }

  /** Ends the pipe (FIN): reads return null once it is empty. */
  end(): void {
    this.#ended = true;
    this.#wake(this.#readers);
  }

  /** Fails the pipe (RST): pending and later reads and writes reject with `err`. */
  fail(err: Error): void {
    if (this.#error) return;
    this.#error = err;
    this.#chunks = [];
    this.#held = 0;
    this.#wake(this.#readers);
    this.#wake(this.#writers);
  }

  #wake(list: Array<() => void>): void {
    for (const w of list.splice(0)) w();
  }
}

/** The outside host's end of a fake TCP connection. */
export interface FakeServerConn {
  /** The dialled address and port. */
  readonly address: string;
  readonly port: number;
  /** Bytes from the gateway (the guest's bytes). */
  readonly fromClient: FakePipe;
  /** Bytes to the gateway. */
  readonly toClient: FakePipe;
  /** Whether the gateway closed the connection, and whether with a reset. */
  readonly closed: { done: boolean; reset: boolean };
  /** Resets the connection from the server's side. */
  reset(): void;
}

/** What the fake dialer does with a dial to an address and port. */
type TcpBehaviour =
  | { kind: "serve"; handler: (conn: FakeServerConn) => void }
  | { kind: "refuse" }
  | { kind: "unreachable" }
  | { kind: "silent" }
  | { kind: "hold" };

/** A dial waiting for the test (`hold`). */
export interface HeldDial {
  readonly address: string;
  readonly port: number;
  /** Completes the dial with a connection to `handler`. */
  accept(handler?: (conn: FakeServerConn) => void): void;
  /** Fails the dial. */
  fail(kind: DialError["kind"]): void;
}

/**
 * A scripted outside world.
 *
 * @example
 * ```ts
 * const fake = new FakeDialer();
 * fake.serve("198.18.0.10", 80, (c) => void c.toClient.write(new TextEncoder().encode("hi")));
 * fake.refuse("198.18.0.11", 80);
 * fake.udp("198.18.0.10", 7, (data, reply) => reply(data)); // an echo server
 * ```
 */
export class FakeDialer implements EgressDialer {
  readonly name = "fake";
  /** Every TCP dial, in order, as `address:port`. */
  readonly dials: string[] = [];
  /** Dials waiting for the test. */
  readonly held: HeldDial[] = [];
  /** Connections the gateway holds open now. */
  openConnections = 0;
  /** UDP sockets the gateway holds open now. */
  openUdpSockets = 0;
  /** Every UDP socket opened, in order: `inject` delivers a datagram as if from outside. */
  readonly udpSockets: Array<
    {
      closed: boolean;
      /** The family the socket was opened for. */
      family: 4 | 6;
      inject(data: Uint8Array, address: string, port: number): void;
    }
  > = [];
  /** Server ends of every connection made, in order. */
  readonly connections: FakeServerConn[] = [];
  /** Capacity of each direction's pipe. */
  pipeCapacity = 256 * 1024;
  /** When false, `openUdp` is absent (a runtime without outbound UDP). */
  readonly openUdp?: EgressDialer["openUdp"];
  #tcp = new Map<string, TcpBehaviour>();
  #udp = new Map<
    string,
    ((data: Uint8Array, reply: (d: Uint8Array) => void) => void) | "refused"
  >();

  /** Creates a world where every dial is refused until scripted otherwise. */
  constructor(options: { udp?: boolean } = {}) {
    if (options.udp ?? true) {
      this.openUdp = (h, family = 4) => Promise.resolve(this.#openUdp(h, family));
    }
  }

  /** A TCP server at `address`:`port` (port 0: every port). */
  serve(address: string, port: number, handler: (conn: FakeServerConn) => void): void {
    this.#tcp.set(`${address}:${port}`, { kind: "serve", handler });
  }

  /** Dials to `address`:`port` (0: every port) are refused (RST). */
  refuse(address: string, port = 0): void {
    this.#tcp.set(`${address}:${port}`, { kind: "refuse" });
  }

  /** Dials to `address` fail as host unreachable. */
  unreachable(address: string): void {
    this.#tcp.set(`${address}:0`, { kind: "unreachable" });
  }

  /** Dials to `address` never complete (until aborted). */
  silent(address: string): void {
    this.#tcp.set(`${address}:0`, { kind: "silent" });
  }

  /** Dials to `address` wait in {@linkcode FakeDialer.held} for the test. */
  hold(address: string): void {
    this.#tcp.set(`${address}:0`, { kind: "hold" });
  }

  /** A UDP handler at `address`:`port`: `reply` answers from there. */
  udp(
    address: string,
    port: number,
    handler: (data: Uint8Array, reply: (d: Uint8Array) => void) => void,
  ): void {
    this.#udp.set(`${address}:${port}`, handler);
  }

  /** Datagrams to `address`:`port` draw an `ECONNREFUSED` (an ICMP port unreachable). */
  udpRefuse(address: string, port: number): void {
    this.#udp.set(`${address}:${port}`, "refused");
  }

  /** The TCP behaviour for a destination. */
  #behaviour(address: string, port: number): TcpBehaviour {
    return this.#tcp.get(`${address}:${port}`) ?? this.#tcp.get(`${address}:0`) ??
      { kind: "refuse" };
  }

  /** Dials as scripted. */
  connectTcp(address: string, port: number, options: DialOptions = {}): Promise<DialedTcp> {
    this.dials.push(`${address}:${port}`);
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const b = this.#behaviour(address, port);
    switch (b.kind) {
      case "serve":
        return Promise.resolve(this.#connect(address, port, b.handler));
      case "refuse":
        return Promise.reject(
          new DialError("refused", `connect to ${address}:${port}: connection refused`),
        );
      case "unreachable":
        return Promise.reject(
          new DialError("unreachable", `connect to ${address}:${port}: no route to host`),
        );
      case "silent":
        return new Promise((_, reject) => {
          signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
        });
      case "hold":
        return new Promise((resolve, reject) => {
          let settled = false;
          const held: HeldDial = {
            address,
            port,
            accept: (handler = () => {}) => {
              if (settled) return;
              settled = true;
              this.#unhold(held);
              resolve(this.#connect(address, port, handler));
            },
            fail: (kind) => {
              if (settled) return;
              settled = true;
              this.#unhold(held);
              reject(new DialError(kind, `connect to ${address}:${port}: ${kind}`));
            },
          };
          signal?.addEventListener("abort", () => {
            if (settled) return;
            settled = true;
            this.#unhold(held);
            reject(signal.reason);
          }, { once: true });
          this.held.push(held);
        });
    }
  }

  #unhold(h: HeldDial): void {
    const i = this.held.indexOf(h);
    if (i >= 0) this.held.splice(i, 1);
  }

  #connect(address: string, port: number, handler: (c: FakeServerConn) => void): DialedTcp {
    const up = new FakePipe(this.pipeCapacity);
    const down = new FakePipe(this.pipeCapacity);
    const closed = { done: false, reset: false };
    this.openConnections++;
    const server: FakeServerConn = {
      address,
      port,
      fromClient: up,
      toClient: down,
      closed,
      reset: () => {
        const err = Object.assign(new Error("connection reset by peer"), { code: "ECONNRESET" });
        down.fail(err);
        up.fail(err);
      },
    };
    this.connections.push(server);
    handler(server);
    return {
      read: (max) => down.read(max),
      write: (data) => up.write(data),
      closeWrite: () => {
        up.end();
        return Promise.resolve();
      },
      close: (reset = false) => {
        if (closed.done) return;
        closed.done = true;
        closed.reset = reset;
        this.openConnections--;
        const err = Object.assign(new Error("connection closed"), { code: "ECONNRESET" });
        if (reset) up.fail(err);
        else up.end();
        down.fail(err);
      },
    };
  }

  #openUdp(h: UdpHandlers, family: 4 | 6): DialedUdp {
    let closed = false;
    this.openUdpSockets++;
    const record = {
      get closed() {
        return closed;
      },
      family,
      inject: (data: Uint8Array, address: string, port: number) => {
        if (!closed) h.message(data.slice(), address, port);
      },
    };
    this.udpSockets.push(record);
    return {
      send: (data, address, port) => {
        if (closed) return Promise.reject(new Error("socket closed"));
        const target = this.#udp.get(`${address}:${port}`);
        const copy = data.slice();
        queueMicrotask(() => {
          if (closed) return;
          if (target === "refused") h.error("ECONNREFUSED", address, port);
          else {target?.(copy, (reply) =>
              queueMicrotask(() => {
                if (!closed) h.message(reply.slice(), address, port);
              }));}
        });
        return Promise.resolve();
      },
      close: () => {
        if (closed) return;
        closed = true;
        this.openUdpSockets--;
      },
    };
  }
}
