/**
 * The WebSocket client's byte stream on Deno (see ws_transport.ts), over
 * `Deno.connect` / `Deno.connectTls`: one read loop into a buffer of its
 * own (or straight into a large payload's buffer, when the client has one in
 * progress) and one write loop over a queue.
 *
 * @module
 */

import type { WsTransport, WsTransportEvents, WsTransportTarget } from "./ws_transport.ts";

/** The read buffer: large enough for a few 64 KiB segments per read. */
const READ_BYTES = 256 * 1024;

/** Whether `Deno.connect` is there to use (the CLI runs on Deno). */
export function hasDenoConnect(): boolean {
  const d = (globalThis as { Deno?: { connect?: unknown } }).Deno;
  return typeof d?.connect === "function";
}

/**
 * Connects to `target` with Deno's sockets, with `TCP_NODELAY`, and reports
 * to `events`.
 *
 * @example
 * ```ts ignore
 * const t = connectDenoTransport({ host: "127.0.0.1", port: 8787, secure: false }, {
 *   onConnect: () => t.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")),
 *   onData: (chunk) => console.log(chunk.length),
 *   onError: (m) => console.error(m),
 *   onClose: () => {},
 * });
 * ```
 */
export function connectDenoTransport(
  target: WsTransportTarget,
  events: WsTransportEvents,
): WsTransport {
  return new DenoTransport(target, events);
}

class DenoTransport implements WsTransport {
  readonly #events: WsTransportEvents;
  #conn: Deno.Conn | undefined;
  #queue: Uint8Array[] = [];
  #written: (((bytes: Uint8Array) => void) | undefined)[] = [];
  #queued = 0;
  #writing = false;
  #ending = false;
  #destroyed = false;
  #closed = false;

  constructor(target: WsTransportTarget, events: WsTransportEvents) {
    this.#events = events;
    void this.#run(target);
  }

  get writableLength(): number {
    return this.#queued;
  }

  write(bytes: Uint8Array, written?: (bytes: Uint8Array) => void): void {
    if (this.#destroyed || this.#ending) return;
    this.#queue.push(bytes);
    this.#written.push(written);
    this.#queued += bytes.length;
    if (this.#conn !== undefined && !this.#writing) void this.#writeLoop();
  }

  end(): void {
    if (this.#ending || this.#destroyed) return;
    this.#ending = true;
    if (this.#conn !== undefined && !this.#writing) void this.#writeLoop();
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#queue = [];
    this.#written = [];
    this.#queued = 0;
    try {
      this.#conn?.close();
    } catch {
      // Already closed.
    }
    // Before the connection opened there is no read loop to notice: end here.
    if (this.#conn === undefined) this.#finish();
  }

  async #run(target: WsTransportTarget): Promise<void> {
    let conn: Deno.Conn;
    try {
      conn = target.secure
        ? await Deno.connectTls({ hostname: target.host, port: target.port })
        : await Deno.connect({ hostname: target.host, port: target.port });
    } catch (error) {
      if (!this.#destroyed) this.#events.onError(messageOf(error));
      this.#finish();
      return;
    }
    if (this.#destroyed) {
      conn.close();
      return;
    }
    this.#conn = conn;
    if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
    this.#events.onConnect();
    if (!this.#writing && (this.#queue.length > 0 || this.#ending)) void this.#writeLoop();
    const events = this.#events;
    const buf = new Uint8Array(READ_BYTES);
    try {
      while (!this.#destroyed) {
        const direct = events.directBuffer?.();
        if (direct !== undefined) {
          const n = await conn.read(direct);
          if (n === null) break;
          events.onDirect!(n);
          continue;
        }
        const n = await conn.read(buf);
        if (n === null) break;
        events.onData(buf.subarray(0, n));
      }
    } catch (error) {
      if (!this.#destroyed) events.onError(messageOf(error));
    }
    if (!this.#destroyed) {
      this.#destroyed = true;
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
    this.#finish();
  }

  async #writeLoop(): Promise<void> {
    const conn = this.#conn!;
    this.#writing = true;
    try {
      while (this.#queue.length > 0 && !this.#destroyed) {
        const chunk = this.#queue[0];
        let off = 0;
        while (off < chunk.length) off += await conn.write(off === 0 ? chunk : chunk.subarray(off));
        this.#queue.shift();
        this.#queued -= chunk.length;
        this.#written.shift()?.(chunk);
      }
      if (this.#ending && !this.#destroyed) await conn.closeWrite();
    } catch (error) {
      if (!this.#destroyed) {
        this.#events.onError(messageOf(error));
        this.destroy();
      }
    } finally {
      this.#writing = false;
    }
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#events.onClose();
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
