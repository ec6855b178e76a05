/**
 * A `Deno.Conn` as the Node `Duplex` that `node:http`'s server takes
 * (`server.emit("connection", socket)`), so that the Deno adapter can own the
 * accept loop (and survive EMFILE) while Node's HTTP/1.1 server parses the
 * requests with its header, request and keep-alive timeouts. A Deno adapter
 * file: it uses `Deno.*`.
 *
 * - Reads go through one loop into one reused buffer of 4 KiB, grown to 64 KiB
 *   while reads fill it; each chunk is copied out to its size (a slow client
 *   cannot pin 64 KiB per byte, an idle connection holds 4 KiB).
 * - `setTimeout` is a real inactivity timer (node's server arms it for
 *   keep-alive), `destroySoon` ends and then destroys (after a
 *   `Connection: close` response, the connection really goes).
 * - {@linkcode DenoConnSocket.takeOver} hands the raw connection, with the
 *   bytes already read, to a WebSocket after an upgrade.
 *
 * @module
 */

import { Duplex } from "node:stream";
import { Buffer } from "node:buffer";
import type { ByteConn } from "./websocket_conn.ts";

const READ_BYTES = 64 * 1024;
/** The read buffer of a connection that is not receiving in bulk (request heads, idle). */
const MIN_READ_BYTES = 4 * 1024;
/** Bytes a socket may have in flight before writes report completion only when done. */
const WRITE_AHEAD_BYTES = 64 * 1024;
/** How long a closing connection waits for its client before it is closed anyway (ms). */
export const LINGER_MS = 2000;
/**
 * How much of an unwanted request body a closing connection reads and drops
 * at most: the largest body a route takes (a 1 MiB send) and its head, so
 * that a client refused mid-upload (408, 413, 429) reads its answer instead of
 * a reset. Read into one reused 16 KiB buffer: it costs time, not memory.
 */
export const LINGER_BYTES = 1024 * 1024 + 64 * 1024;

/** A Node Duplex over a `Deno.Conn`. */
export class DenoConnSocket extends Duplex {
  /** The peer's address, as node:http and `ws` read it. */
  readonly remoteAddress: string;
  /** The peer's port. */
  readonly remotePort: number;
  /** `"IPv4"` or `"IPv6"`. */
  readonly remoteFamily: string;
  #conn: Deno.Conn;
  #onClose: () => void;
  #reading = false;
  #detached = false;
  #closed = false;
  #pendingRead: Promise<void> | undefined;
  #stash: Uint8Array[] = [];
  #stashEof = false;
  #scratch = new Uint8Array(MIN_READ_BYTES);
  #writeChain: Promise<void> = Promise.resolve();
  #inFlight = 0;
  #writeError: Error | undefined;
  #lingering = false;
  #lingerStarted = false;
  #timeoutMs = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastActivity = 0;

  /**
   * Wraps `conn`; `onClose` runs once when the connection is closed (by this
   * socket, or by the WebSocket that took it over).
   *
   * @example
   * ```ts
   * server.emit("connection", new DenoConnSocket(conn, () => release()));
   * ```
   */
  constructor(conn: Deno.Conn, onClose: () => void) {
    super({ allowHalfOpen: true });
    this.#conn = conn;
    this.#onClose = onClose;
    const r = conn.remoteAddr as Deno.NetAddr;
    this.remoteAddress = r.hostname;
    this.remotePort = r.port;
    this.remoteFamily = r.hostname.includes(":") ? "IPv6" : "IPv4";
  }

  /** TCP_NODELAY on the connection. */
  setNoDelay(noDelay = true): this {
    try {
      (this.#conn as Deno.TcpConn).setNoDelay?.(noDelay);
    } catch {
      // Closed already.
    }
    return this;
  }

  /** Keepalive probes are not used; present because node:http may call it. */
  setKeepAlive(): this {
    return this;
  }

  /** Emits `timeout` after `ms` without reads or writes (0 disables), as net.Socket does. */
  setTimeout(ms: number, callback?: () => void): this {
    if (callback) this.once("timeout", callback);
    this.#timeoutMs = ms;
    this.#lastActivity = Date.now();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (ms > 0 && !this.#closed) this.#armTimer(ms);
    return this;
  }

  #armTimer(delay: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#timeoutMs <= 0 || this.#closed) return;
      const idle = Date.now() - this.#lastActivity;
      if (idle >= this.#timeoutMs) this.emit("timeout");
      else this.#armTimer(this.#timeoutMs - idle);
    }, delay);
  }

  /**
   * Ends the writable side (the response is out, then FIN) and closes the
   * connection after a short linger: up to {@linkcode LINGER_BYTES} more of a
   * request body the client is still sending are read and dropped, for at
   * most {@linkcode LINGER_MS}, so that the client reads its response (408,
   * 413) before the close; closing with unread data would send a RST that
   * may destroy the response in flight.
   */
  destroySoon(): void {
    if (this.destroyed || this.#lingering) return;
    // Stop reading now: what the client still sends is not parsed (or drained by
    // anyone) any more, only dropped by the linger, a bounded amount.
    this.#lingering = true;
    if (this.writableFinished) {
      void this.#linger();
      return;
    }
    this.once("finish", () => void this.#linger());
    this.end();
  }

  async #linger(): Promise<void> {
    if (this.#lingerStarted) return;
    this.#lingerStarted = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<void>((r) => timer = setTimeout(r, LINGER_MS));
    let eof = false;
    try {
      if (this.#reading) await this.#pendingRead;
      const buf = new Uint8Array(16 * 1024);
      let total = 0;
      while (!this.#closed && !this.#detached && total < LINGER_BYTES) {
        const n = await Promise.race([this.#conn.read(buf), expired.then(() => -1)]);
        if (n === null) eof = true;
        if (n === null || n === -1) break;
        total += n;
      }
    } catch {
      eof = true; // reset by the peer
    }
    // Still sending: stop reading and give the client the rest of the linger time to
    // read its response before the close (which, with unread data, sends a RST).
    if (!eof) await expired;
    clearTimeout(timer);
    if (!this.#detached) this.#closeConn();
    this.destroy();
  }

  override _read(): void {
    if (!this.#reading && !this.#detached && !this.#lingering) this.#pendingRead = this.#pump();
  }

  async #pump(): Promise<void> {
    this.#reading = true;
    try {
      while (!this.#detached && !this.#lingering) {
        const buf = this.#scratch;
        const n = await this.#conn.read(buf);
        // Grow while reads fill the buffer (bodies, bulk), shrink back when they do not:
        // an idle connection's pending read holds only MIN_READ_BYTES.
        if (n === buf.length && buf.length < READ_BYTES) {
          this.#scratch = new Uint8Array(buf.length * 4);
        } else if (n !== null && n < MIN_READ_BYTES && buf.length > MIN_READ_BYTES) {
          this.#scratch = new Uint8Array(MIN_READ_BYTES);
        }
        this.#lastActivity = Date.now();
        if (n === null) {
          if (this.#detached) this.#stashEof = true;
          else this.push(null);
          break;
        }
        // The scratch buffer is reused: the chunk is a copy of its size (a slow client
        // cannot pin more than it sent).
        const chunk = buf.slice(0, n);
        if (this.#lingering) break; // a body nobody reads any more: dropped
        if (this.#detached) {
          this.#stash.push(chunk);
          break;
        }
        if (!this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) break;
      }
    } catch (err) {
      if (!this.#closed && !this.#detached) this.destroy(err as Error);
    } finally {
      this.#reading = false;
    }
  }

  override _write(
    chunk: Uint8Array,
    _encoding: string,
    callback: (err?: Error | null) => void,
  ): void {
    this.#queueWrite(chunk, callback);
  }

  override _writev(
    chunks: { chunk: Uint8Array }[],
    callback: (err?: Error | null) => void,
  ): void {
    const data = chunks.length === 1 ? chunks[0].chunk : Buffer.concat(chunks.map((c) => c.chunk));
    this.#queueWrite(data, callback);
  }

  /**
   * Writes in order behind the writes in flight. While less than
   * {@linkcode WRITE_AHEAD_BYTES} are in flight the stream is told at once that
   * the chunk is written (a response is done without waiting for the write's
   * completion, as net.Socket's synchronous writes do); beyond that, when it is.
   */
  #queueWrite(data: Uint8Array, callback: (err?: Error | null) => void): void {
    this.#lastActivity = Date.now();
    this.#inFlight += data.length;
    const early = this.#inFlight <= WRITE_AHEAD_BYTES;
    this.#writeChain = this.#writeChain.then(async () => {
      if (this.#writeError) throw this.#writeError;
      let off = 0;
      while (off < data.length) {
        off += await this.#conn.write(off === 0 ? data : data.subarray(off));
      }
    }).then(() => {
      this.#inFlight -= data.length;
      if (!early) callback();
    }, (err) => {
      this.#inFlight -= data.length;
      this.#writeError ??= err as Error;
      if (!early) callback(err as Error);
      else if (!this.destroyed) this.destroy(err as Error);
    });
    if (early) callback();
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.#writeChain.then(() => (this.#conn as Deno.TcpConn).closeWrite()).then(
      () => callback(),
      () => callback(),
    );
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#detached) this.#closeConn();
    callback(err);
  }

  #closeConn(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Closed already.
    }
    this.#onClose();
  }

  /**
   * Detaches the connection from this stream (after an HTTP upgrade): no
   * more reads or events here. Returns the connection (closing it runs
   * `onClose`) and the bytes read from it that the stream did not consume:
   * `head` (what node:http read past the request head) and what is still
   * buffered. A read in flight is not lost: the connection's first `read`
   * returns what it brings.
   */
  takeOver(head: Uint8Array): { conn: ByteConn; initial: Uint8Array } {
    this.#detached = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const parts: Uint8Array[] = [head];
    for (;;) {
      const c = this.read() as Uint8Array | null;
      if (c === null) break;
      parts.push(c);
    }
    const total = parts.reduce((n, p) => n + p.length, 0);
    const initial = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      initial.set(p, off);
      off += p.length;
    }
    this.removeAllListeners();
    this.on("error", () => {});
    this.destroy();
    const conn = this.#conn;
    let inFlight = this.#reading ? this.#pendingRead : undefined;
    const read = async (p: Uint8Array): Promise<number | null> => {
      if (inFlight) {
        await inFlight;
        inFlight = undefined;
      }
      if (this.#stash.length > 0) {
        const first = this.#stash[0];
        const n = Math.min(first.length, p.length);
        p.set(first.subarray(0, n));
        if (n === first.length) this.#stash.shift();
        else this.#stash[0] = first.subarray(n);
        return n;
      }
      if (this.#stashEof) return null;
      return await conn.read(p);
    };
    return {
      conn: { read, write: (p) => conn.write(p), close: () => this.#closeConn() },
      initial,
    };
  }

  /** Closes the connection at once (shutdown). */
  terminate(): void {
    if (this.#detached) this.#closeConn();
    else this.destroy();
  }
}
