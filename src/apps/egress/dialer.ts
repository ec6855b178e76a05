/**
 * The one small interface between the egress gateway and a runtime's
 * outbound sockets. Each runtime implements it in a thin adapter file
 * (`dial_deno.ts` with `Deno.connect`, `dial_bun.ts` with `Bun.connect`,
 * `dial_workerd.ts` with `connect()` from `cloudflare:sockets`,
 * `udp_node.ts` with `node:dgram` where a runtime has outbound UDP); tests
 * use {@linkcode FakeDialer} (fake_dialer.ts). The gateway never names a
 * runtime.
 *
 * Reads pull: the gateway asks for at most as many bytes as its side can
 * take (the free space of the connection's send buffer), so nothing waits
 * in between beyond what the runtime itself holds.
 *
 * @module
 */

/** How a dial failed, as the gateway answers it to the session's machine. */
export type DialFailure =
  /** The destination answered with a reset (RST to the guest). */
  | "refused"
  /** No route, host or network unreachable (ICMP host unreachable to the guest). */
  | "unreachable"
  /** No answer in time (ICMP host unreachable to the guest). */
  | "timeout"
  /** The platform refused the destination (ICMP administratively prohibited). */
  | "prohibited";

/**
 * A failed dial, with its {@linkcode DialFailure} kind.
 *
 * @example
 * ```ts
 * throw new DialError("refused", "connect to 192.0.2.1:80: connection refused");
 * ```
 */
export class DialError extends Error {
  /** What happened, as the gateway answers it. */
  readonly kind: DialFailure;

  /** Creates the error. */
  constructor(kind: DialFailure, message: string) {
    super(message);
    this.name = "DialError";
    this.kind = kind;
  }
}

/**
 * The kind of a runtime's connect error, from its errno-style code or name
 * (`ECONNREFUSED`, Deno's `ConnectionRefused`, …); `unreachable` for
 * anything else (the guest then hears "host unreachable").
 *
 * @example
 * ```ts
 * classifyDialError({ code: "ECONNREFUSED" }); // "refused"
 * ```
 */
export function classifyDialError(err: unknown): DialFailure {
  if (err instanceof DialError) return err.kind;
  const e = err as { code?: unknown; name?: unknown; message?: unknown };
  const text = `${e?.code ?? ""} ${e?.name ?? ""} ${e?.message ?? ""}`;
  if (/ECONNREFUSED|ConnectionRefused|refused/i.test(text)) return "refused";
  if (/ETIMEDOUT|TimedOut|timed out/i.test(text)) return "timeout";
  if (/EACCES|EPERM|PermissionDenied|prohibited|not allowed|blocked/i.test(text)) {
    return "prohibited";
  }
  return "unreachable";
}

/** An outbound TCP connection a runtime opened. */
export interface DialedTcp {
  /**
   * Resolves with the next bytes from the server, at most `max` (a view the
   * caller copies before the next read), or null once the server finished
   * sending (its FIN). Rejects when the connection was reset or failed. One
   * read at a time.
   */
  read(max: number): Promise<Uint8Array | null>;
  /**
   * Writes all of `data`; resolves when the runtime took it (its own send
   * buffer had room), so awaiting it is the backpressure from the server.
   * Rejects when the connection failed.
   */
  write(data: Uint8Array): Promise<void>;
  /** Finishes sending (FIN); reading goes on. */
  closeWrite(): Promise<void>;
  /**
   * Closes the connection both ways and releases it. `reset` asks for an
   * abortive close (RST) where the runtime offers one.
   */
  close(reset?: boolean): void;
}

/** Handlers of an outbound UDP socket's events. */
export interface UdpHandlers {
  /** A datagram arrived from `address`:`port` (`data` is the handler's to keep). */
  message(data: Uint8Array, address: string, port: number): void;
  /**
   * The runtime reported an error for the socket, e.g. `ECONNREFUSED` after
   * an ICMP port unreachable from the peer it last sent to.
   */
  error(code: string, address?: string, port?: number): void;
}

/** An outbound UDP socket a runtime opened (unconnected: it may send anywhere). */
export interface DialedUdp {
  /** Sends one datagram; rejects when the runtime refused it. */
  send(data: Uint8Array, address: string, port: number): Promise<void>;
  /** Closes the socket; no handler runs afterwards. */
  close(): void;
}

/** Options of {@linkcode EgressDialer.connectTcp}. */
export interface DialOptions {
  /** Aborts the dial (the guest gave up, or the session ended). */
  signal?: AbortSignal;
}

/**
 * A runtime's outbound sockets.
 *
 * @example
 * ```ts
 * const conn = await dialer.connectTcp("192.0.2.10", 80, { signal });
 * await conn.write(new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
 * const first = await conn.read(65536);
 * ```
 */
export interface EgressDialer {
  /** A short name for logs and the session view (`deno`, `bun`, `workerd`, `fake`). */
  readonly name: string;
  /**
   * Opens a TCP connection to `address` (an IPv4 or IPv6 literal, never a
   * name; IPv6 without brackets, e.g. `2001:db8::10`) and `port`. Rejects with a {@linkcode DialError} (or an error
   * {@linkcode classifyDialError} understands); on abort, with the signal's
   * reason, leaving nothing open.
   */
  connectTcp(address: string, port: number, options?: DialOptions): Promise<DialedTcp>;
  /**
   * Opens an unconnected UDP socket on an ephemeral port, bound for
   * `family` (4 by default; 6 for a flow to an IPv6 destination); undefined
   * when the runtime has no outbound UDP (Cloudflare Workers), and the
   * gateway then answers UDP to outside addresses with ICMP
   * administratively prohibited.
   */
  openUdp?: (handlers: UdpHandlers, family?: 4 | 6) => Promise<DialedUdp>;
}

/**
 * A dialer that keeps at most `maxOpen` connections open at once and queues
 * dials beyond it (first come, first served) until one closes: Cloudflare
 * Workers allow 6 simultaneous outbound connections per request context, and
 * a seventh must wait rather than fail. A queued dial that is aborted leaves
 * the queue.
 *
 * @example
 * ```ts
 * const dialer = new LimitedDialer(workerdDialer(), 6);
 * ```
 */
export class LimitedDialer implements EgressDialer {
  readonly name: string;
  readonly openUdp?: EgressDialer["openUdp"];
  /** The most connections open at once. */
  readonly maxOpen: number;
  #inner: EgressDialer;
  #open = 0;
  #queue: Array<() => void> = [];

  /** Wraps `inner`; RangeError unless `maxOpen` is a positive integer. */
  constructor(inner: EgressDialer, maxOpen: number) {
    if (!Number.isInteger(maxOpen) || maxOpen < 1) {
      throw new RangeError(`LimitedDialer: maxOpen must be a positive integer, got ${maxOpen}`);
    }
    this.#inner = inner;
    this.name = inner.name;
    this.maxOpen = maxOpen;
    if (inner.openUdp) this.openUdp = (h, family) => inner.openUdp!(h, family);
  }

  /** Connections open now (dials in progress included). */
  get open(): number {
    return this.#open;
  }

  /** Dials waiting for a free slot. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Waits for a slot, then dials; the slot is freed when the connection closes or the dial fails. */
  async connectTcp(address: string, port: number, options: DialOptions = {}): Promise<DialedTcp> {
    await this.#slot(options.signal);
    let conn: DialedTcp;
    try {
      conn = await this.#inner.connectTcp(address, port, options);
    } catch (err) {
      this.#free();
      throw err;
    }
    let closed = false;
    return {
      read: (max) => conn.read(max),
      write: (data) => conn.write(data),
      closeWrite: () => conn.closeWrite(),
      close: (reset) => {
        if (closed) return;
        closed = true;
        conn.close(reset);
        this.#free();
      },
    };
  }

  #slot(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#open < this.maxOpen) {
      this.#open++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const go = () => {
        signal?.removeEventListener("abort", onAbort);
        this.#open++;
        resolve();
      };
      const onAbort = () => {
        const i = this.#queue.indexOf(go);
        if (i >= 0) this.#queue.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#queue.push(go);
    });
  }

  #free(): void {
    this.#open--;
    this.#queue.shift()?.();
  }
}
