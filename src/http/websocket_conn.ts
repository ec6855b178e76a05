/**
 * The server side of a WebSocket connection (RFC 6455) over a plain byte
 * connection, with the message size bounded **before** anything is buffered:
 * a frame header that would take the message (all its fragments together)
 * past `maxMessageBytes` closes the connection with 1009 without reading the
 * payload. The Deno adapter uses it instead of `Deno.upgradeWebSocket`, which
 * has no size option and buffers whole messages (fragmented or not) before
 * the application sees them.
 *
 * Runtime-neutral: the connection is a {@linkcode ByteConn} (a `Deno.Conn`
 * fits as it is). The socket is a {@linkcode TunnelSocket}, so the tunnel and
 * the socket streams take it as they take the runtimes' own.
 *
 * - Reading: one reused 64 KiB buffer; payload bytes are copied once into the
 *   message's own buffer (allocated by the frame's declared length, never
 *   more than the limit; a large remainder is read straight into it) and
 *   unmasked there 32 bits at a time. A consumer that is done with a message
 *   when its listener returns may have large binary messages lent instead:
 *   received into a reused buffer of a per-process pool
 *   ({@linkcode ServerWebSocket.lendBinaryMessages}).
 * - Writing: `send` copies the payload behind its frame header at once (the
 *   caller may reuse its buffer, as with the standard WebSocket); one write
 *   loop drains the queue, queued frames coalesced into writes of up to 256 KiB.
 *   `bufferedAmount` counts the queued bytes.
 * - Keepalive: a connection that received nothing for `idleTimeoutMs` gets a
 *   ping; when nothing arrives within as long again it is closed (1001).
 * - Protocol errors (RFC 6455 §5.1, §5.2, §5.4, §5.5) close with 1002, bad
 *   UTF-8 in a text message with 1007 (§8.1).
 *
 * @module
 */

import type { TunnelSocket } from "../session/tunnel_server.ts";
import {
  LENT_MESSAGE_MAX_BYTES,
  LENT_MESSAGE_MIN_BYTES,
  lentMessagePool,
} from "./message_buffer_pool.ts";

/** A byte connection: what a WebSocket runs over (`Deno.Conn` fits). */
export interface ByteConn {
  /** Reads into `p`; resolves with the count, or null at end of stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes some of `p`; resolves with how many bytes were written. */
  write(p: Uint8Array): Promise<number>;
  /** Closes both directions; idempotent callers may call it twice (errors are ignored). */
  close(): void;
}

/** Options of {@linkcode ServerWebSocket}. */
export interface ServerWebSocketOptions {
  /** Largest message accepted (all fragments together); above it: close 1009. */
  maxMessageBytes: number;
  /** Ping after this long without a byte from the client; close when nothing follows as long again. 0: off. */
  idleTimeoutMs: number;
  /** How long a close handshake (or a failed connection's linger) may take before the connection is dropped. Default 5000 (linger 2000). */
  closeTimeoutMs?: number;
  /** The negotiated subprotocol (for `protocol`). */
  protocol?: string;
}

/** Close code: normal closure (RFC 6455 §7.4.1). */
const CLOSE_NORMAL = 1000;
/** Close code: going away (idle peer, server shutting down). */
const CLOSE_GOING_AWAY = 1001;
/** Close code: protocol error. */
const CLOSE_PROTOCOL_ERROR = 1002;
/** Close code: no status received (reported, never sent). */
const CLOSE_NO_STATUS = 1005;
/** Close code: abnormal closure (reported, never sent). */
const CLOSE_ABNORMAL = 1006;
/** Close code: invalid payload data (bad UTF-8). */
const CLOSE_INVALID_DATA = 1007;
/** Close code: message too big. */
const CLOSE_TOO_BIG = 1009;

/** `readyState`: the opening handshake is under way (WHATWG WebSocket). */
export const CONNECTING = 0;
/** `readyState`: messages flow. */
export const OPEN = 1;
/** `readyState`: a close frame was sent or received, the other not yet. */
export const CLOSING = 2;
/** `readyState`: closed. */
export const CLOSED = 3;

/** Opcode: continuation frame (RFC 6455 §5.2). */
export const OP_CONT = 0x0;
/** Opcode: text frame. */
export const OP_TEXT = 0x1;
/** Opcode: binary frame. */
export const OP_BINARY = 0x2;
/** Opcode: connection close (RFC 6455 §5.5.1). */
export const OP_CLOSE = 0x8;
/** Opcode: ping (RFC 6455 §5.5.2). */
export const OP_PING = 0x9;
/** Opcode: pong (RFC 6455 §5.5.3). */
export const OP_PONG = 0xa;

const READ_BYTES = 64 * 1024;
/** What a failed connection reads and drops at most before it closes. */
const DRAIN_BYTES = 1024 * 1024;
/** Queued frames are coalesced into writes of up to this many bytes. */
const WRITE_BYTES = 256 * 1024;
/** A queued frame at least this long is written alone, never copied to join others. */
const LARGE_WRITE_BYTES = 32 * 1024;
/** A payload with at least this much left to arrive is read straight into its buffer. */
const DIRECT_READ_BYTES = 16 * 1024;

type Listener = (ev: { data: unknown; code?: number; reason?: string }) => void;

/**
 * XORs `data` with the 4-byte `mask`, starting at mask position `phase`
 * (RFC 6455 §5.3), 32 bits at a time where the buffer is aligned.
 *
 * @example
 * ```ts
 * unmask(payload, new Uint8Array([1, 2, 3, 4]), 0);
 * ```
 */
export function unmask(data: Uint8Array, mask: Uint8Array, phase: number): void {
  const n = data.length;
  let i = 0;
  const head = Math.min(n, (4 - (data.byteOffset & 3)) & 3);
  for (; i < head; i++) data[i] ^= mask[(phase + i) & 3];
  const words = (n - i) >>> 2;
  if (words > 0) {
    const w = new Uint32Array(data.buffer, data.byteOffset + i, words);
    const p = phase + i;
    // Little-endian word of the mask bytes that line up with this position.
    const k = (mask[p & 3] | (mask[(p + 1) & 3] << 8) | (mask[(p + 2) & 3] << 16) |
      (mask[(p + 3) & 3] << 24)) >>> 0;
    if (LITTLE_ENDIAN) {
      for (let j = 0; j < words; j++) w[j] ^= k;
    } else {
      const kb = ((k & 0xff) << 24) | ((k & 0xff00) << 8) | ((k >>> 8) & 0xff00) | (k >>> 24);
      for (let j = 0; j < words; j++) w[j] ^= kb;
    }
    i += words * 4;
  }
  for (; i < n; i++) data[i] ^= mask[(phase + i) & 3];
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Encodes one unmasked server frame (RFC 6455 §5.2): FIN set, `opcode`,
 * `payload` copied behind the header.
 *
 * @example
 * ```ts
 * const frame = encodeFrame(0x2, new Uint8Array([1, 2, 3])); // 82 03 01 02 03
 * ```
 */
export function encodeFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const len = payload.length;
  const hdr = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = new Uint8Array(hdr + len);
  writeFrameHeader(out, opcode, len, hdr);
  out.set(payload, hdr);
  return out;
}

/** Writes an unmasked, final frame header of `hdr` bytes for a `len`-byte payload at `out[0..]`. */
function writeFrameHeader(out: Uint8Array, opcode: number, len: number, hdr: number): void {
  out[0] = 0x80 | opcode;
  if (hdr === 2) {
    out[1] = len;
  } else if (hdr === 4) {
    out[1] = 126;
    out[2] = len >>> 8;
    out[3] = len & 0xff;
  } else {
    out[1] = 127;
    out[2] = out[3] = out[4] = 0;
    out[5] = Math.floor(len / 2 ** 32) & 0xff; // payloads here are < 2^32
    out[6] = len >>> 24;
    out[7] = (len >>> 16) & 0xff;
    out[8] = (len >>> 8) & 0xff;
    out[9] = len & 0xff;
  }
}

/**
 * A server-side WebSocket over a {@linkcode ByteConn}. Created CONNECTING
 * (before the handshake response is written), started with
 * {@linkcode ServerWebSocket.start} once the `101` is out.
 *
 * @example
 * ```ts
 * const ws = new ServerWebSocket({ maxMessageBytes: 1 << 20, idleTimeoutMs: 60_000 });
 * attachWebSocketTunnel(session, ws);
 * await conn.write(handshake101);
 * ws.start(conn, bytesAfterTheHead, () => gate.release());
 * ```
 */
export class ServerWebSocket implements TunnelSocket {
  /** `"arraybuffer"` (default) or `"uint8array"`: how binary messages are delivered. */
  binaryType = "arraybuffer";
  /** The negotiated subprotocol, or "". */
  readonly protocol: string;
  #state = CONNECTING;
  #opts: ServerWebSocketOptions;
  #conn: ByteConn | undefined;
  #onEnd: (() => void) | undefined;
  #listeners = new Map<string, Listener[]>();
  #queue: Uint8Array[] = [];
  /** For each entry of #queue, what to call once it is written (sendInPlace's `written`). */
  #afterWrite: ((() => void) | undefined)[] = [];
  #queued = 0;
  #writing = false;
  #pendingClose: { code?: number; reason?: string } | undefined;
  #closeSent = false;
  #closeEmitted = false;
  #closeCode = CLOSE_ABNORMAL;
  #closeReason = "";
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #idleTimer: ReturnType<typeof setInterval> | undefined;
  #heard = true;
  /** Bytes dropped since the connection failed; -1 while it has not. */
  #drained = -1;
  #pinged = false;
  // Reader state (a frame may span reads).
  #hdr = new Uint8Array(14);
  #hdrLen = 0;
  #payload: Uint8Array | undefined;
  #payloadFilled = 0;
  #opcode = 0;
  #fin = false;
  #mask = new Uint8Array(4);
  #fragments: Uint8Array[] = [];
  #fragmentBytes = 0;
  #fragmentOpcode = -1;
  #decoder = new TextDecoder("utf-8", { fatal: true });
  /** Whether large binary messages are lent (see lendBinaryMessages). */
  #lending = false;
  /** The pooled buffer #payload lives in, while a lent message is received. */
  #lent: ArrayBuffer | undefined;
  /** A read straight into #payload is in flight (its buffer must not go back to the pool yet). */
  #directRead = false;

  /** A socket that has not started yet (state CONNECTING). */
  constructor(options: ServerWebSocketOptions) {
    this.#opts = options;
    this.protocol = options.protocol ?? "";
  }

  /** CONNECTING, OPEN, CLOSING or CLOSED (0..3). */
  get readyState(): number {
    return this.#state;
  }

  /** Bytes queued for the client and not yet written. */
  get bufferedAmount(): number {
    return this.#queued;
  }

  /** Adds a listener for `open`, `message`, `close` or `error`. */
  addEventListener(type: string, listener: Listener): void {
    const list = this.#listeners.get(type) ?? [];
    list.push(listener);
    this.#listeners.set(type, list);
  }

  /**
   * Lends binary messages from now on, to save a fresh (zero-filled)
   * buffer per large message. The caller promises, for every `message`
   * listener of this socket, that a listener is done with a binary
   * message's bytes when it returns: it copies what it keeps, keeps no view
   * of them, and never transfers or detaches their buffer.
   *
   * A whole (unfragmented) binary message of
   * {@linkcode LENT_MESSAGE_MIN_BYTES} to {@linkcode LENT_MESSAGE_MAX_BYTES}
   * bytes is then received into a buffer of one per-process pool (at most
   * 16 free buffers, 4 MiB, whatever the number of connections) and
   * delivered as a `Uint8Array` of exactly its length, whatever
   * `binaryType` says. Once every listener returned, the buffer goes back
   * to the pool, and a later message, of any connection, overwrites it.
   * Bytes of `data.buffer` outside the view are what earlier messages left
   * there: a listener reads the view only. Other messages (shorter, longer,
   * fragmented, text, control) are delivered as before, in buffers of
   * their own.
   *
   * @example
   * ```ts
   * ws.lendBinaryMessages();
   * ws.addEventListener("message", (ev) => {
   *   if (ev.data instanceof Uint8Array) deframer.push(ev.data); // copies what it keeps
   * });
   * ```
   */
  lendBinaryMessages(): void {
    this.#lending = true;
  }

  /**
   * Starts the socket on `conn` once the handshake response is written.
   * `initial` holds bytes the client sent after its request head; `onEnd`
   * runs once when the connection is closed.
   */
  start(conn: ByteConn, initial: Uint8Array, onEnd?: () => void): void {
    this.#conn = conn;
    this.#onEnd = onEnd;
    if (this.#state !== CONNECTING) {
      // Closed before it opened (close() while CONNECTING): end at once.
      this.#teardown();
      return;
    }
    this.#state = OPEN;
    if (this.#opts.idleTimeoutMs > 0) {
      this.#idleTimer = setInterval(() => this.#idleTick(), this.#opts.idleTimeoutMs);
    }
    this.#emit("open", undefined);
    if (this.#pendingClose) {
      const { code, reason } = this.#pendingClose;
      this.close(code, reason);
    }
    if (initial.length > 0 && this.#state === OPEN) this.#consume(initial);
    void this.#readLoop();
  }

  /** Sends one message: binary for bytes, text for a string. Throws when not open. */
  send(data: Uint8Array | ArrayBuffer | string): void {
    if (this.#state !== OPEN) {
      throw new Error(`WebSocket is not open (readyState ${this.#state})`);
    }
    if (typeof data === "string") {
      this.#enqueue(encodeFrame(OP_TEXT, new TextEncoder().encode(data)));
    } else {
      const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
      this.#enqueue(encodeFrame(OP_BINARY, bytes));
    }
  }

  /**
   * Sends one binary message made of the byte `first` and then `rest`,
   * copying `rest` once (into the frame), not twice as building the message
   * first would. Throws when not open.
   */
  sendWithFirstByte(first: number, rest: Uint8Array): void {
    if (this.#state !== OPEN) {
      throw new Error(`WebSocket is not open (readyState ${this.#state})`);
    }
    const len = 1 + rest.length;
    const hdr = len < 126 ? 2 : len < 65536 ? 4 : 10;
    const out = new Uint8Array(hdr + len);
    writeFrameHeader(out, OP_BINARY, len, hdr);
    out[hdr] = first;
    out.set(rest, hdr + 1);
    this.#enqueue(out);
  }

  /**
   * Sends `payload` as one binary message without copying it: the frame
   * header (RFC 6455 §5.2, at most 10 bytes) is written into the
   * `headroom` bytes before `payload` in its buffer, which the caller owns
   * and hands over with the payload (it must not touch either until the
   * write is done). With less than 10 bytes of headroom it copies, as
   * {@linkcode ServerWebSocket.send} does. `written`, when given, is called
   * with `payload` once the socket is done with its buffer (the write
   * completed, or the payload was copied), so that the caller may reuse it;
   * never when the connection failed first. Throws when not open.
   */
  sendInPlace(
    payload: Uint8Array,
    headroom: number,
    written?: (payload: Uint8Array) => void,
  ): void {
    if (this.#state !== OPEN) {
      throw new Error(`WebSocket is not open (readyState ${this.#state})`);
    }
    const len = payload.length;
    const hdr = len < 126 ? 2 : len < 65536 ? 4 : 10;
    if (headroom < hdr || payload.byteOffset < hdr) {
      this.#enqueue(encodeFrame(OP_BINARY, payload));
      written?.(payload);
      return;
    }
    const out = new Uint8Array(payload.buffer, payload.byteOffset - hdr, hdr + len);
    writeFrameHeader(out, OP_BINARY, len, hdr);
    this.#enqueue(out, written === undefined ? undefined : () => written(payload));
  }

  /**
   * Starts the closing handshake (RFC 6455 §7.1.2) with `code` and `reason`
   * (at most 123 bytes of UTF-8). Before the socket opened, it closes as
   * soon as it would open.
   */
  close(code?: number, reason?: string): void {
    if (this.#state === CONNECTING) {
      this.#pendingClose = { code, reason };
      this.#state = CLOSING;
      this.#closeCode = code ?? CLOSE_NO_STATUS;
      this.#closeReason = reason ?? "";
      return;
    }
    if (this.#state !== OPEN) return;
    this.#state = CLOSING;
    this.#sendClose(code, reason);
    this.#closeCode = code ?? CLOSE_NO_STATUS;
    this.#closeReason = reason ?? "";
    this.#closeTimer = setTimeout(() => this.#teardown(), this.#opts.closeTimeoutMs ?? 5000);
  }

  /** Drops the connection at once (no closing handshake), e.g. at server shutdown. */
  terminate(): void {
    this.#teardown();
  }

  #sendClose(code?: number, reason?: string): void {
    if (this.#closeSent) return;
    this.#closeSent = true;
    let payload = new Uint8Array(0);
    if (code !== undefined) {
      const r = new TextEncoder().encode(reason ?? "").subarray(0, 123);
      payload = new Uint8Array(2 + r.length);
      payload[0] = code >>> 8;
      payload[1] = code & 0xff;
      payload.set(r, 2);
    }
    this.#enqueue(encodeFrame(OP_CLOSE, payload));
  }

  #enqueue(frame: Uint8Array, afterWrite?: () => void): void {
    this.#queue.push(frame);
    this.#afterWrite.push(afterWrite);
    this.#queued += frame.length;
    if (!this.#writing) void this.#writeLoop();
  }

  async #writeLoop(): Promise<void> {
    const conn = this.#conn;
    if (!conn) return;
    this.#writing = true;
    try {
      while (this.#queue.length > 0) {
        let chunk = this.#queue[0];
        let taken = 1;
        if (chunk.length < LARGE_WRITE_BYTES && this.#queue.length > 1) {
          // Coalesce queued small frames into one write (one system call instead of one per
          // message); a large one is written as it is (it may be a view sent in place).
          let total = chunk.length;
          while (
            taken < this.#queue.length && this.#queue[taken].length < LARGE_WRITE_BYTES &&
            total + this.#queue[taken].length <= WRITE_BYTES
          ) {
            total += this.#queue[taken].length;
            taken++;
          }
          if (taken > 1) {
            const joined = new Uint8Array(total);
            let off = 0;
            for (let i = 0; i < taken; i++) {
              joined.set(this.#queue[i], off);
              off += this.#queue[i].length;
            }
            chunk = joined;
          }
        }
        let off = 0;
        while (off < chunk.length) off += await conn.write(off === 0 ? chunk : chunk.subarray(off));
        this.#queue.splice(0, taken);
        this.#queued -= chunk.length;
        for (const after of this.#afterWrite.splice(0, taken)) after?.();
      }
    } catch {
      this.#queue = [];
      this.#afterWrite = [];
      this.#queued = 0;
      this.#teardown();
    } finally {
      this.#writing = false;
    }
    if (this.#closeSent && this.#state === CLOSED && this.#drained < 0) this.#teardown();
  }

  async #readLoop(): Promise<void> {
    const conn = this.#conn!;
    const buf = new Uint8Array(READ_BYTES);
    try {
      while (this.#state === OPEN || this.#state === CLOSING || this.#drained >= 0) {
        // A large payload in progress is read straight into its own buffer (no copy).
        const p = this.#payload;
        if (p !== undefined && p.length - this.#payloadFilled >= DIRECT_READ_BYTES) {
          const into = p.subarray(this.#payloadFilled);
          let got: number | null;
          // While the read is in flight the runtime may write into a lent buffer: it goes
          // back to the pool only once the read settled (see #giveBackLent).
          this.#directRead = true;
          try {
            got = await conn.read(into);
          } finally {
            this.#directRead = false;
          }
          // Failed or closed meanwhile: a lent buffer was left to us to give back.
          if (this.#payload !== p) this.#giveBackLent();
          if (got === null) break;
          this.#heard = true;
          if (this.#payload !== p) continue;
          unmask(into.subarray(0, got), this.#mask, this.#payloadFilled);
          this.#payloadFilled += got;
          if (this.#payloadFilled === p.length) this.#endFrame();
          continue;
        }
        const n = await conn.read(buf);
        if (n === null) break;
        this.#heard = true;
        if (this.#drained >= 0) {
          // Failed: what the client still sends is dropped unread, a bounded amount.
          this.#drained += n;
          if (this.#drained > DRAIN_BYTES) break;
          continue;
        }
        this.#consume(buf.subarray(0, n));
      }
      // Closed by a close frame: the write loop (or its timer) ends the connection once
      // our close frame is out.
      if (this.#state === CLOSED && this.#writing && this.#drained < 0) return;
    } catch {
      // A reset or a closed conn: reported as an abnormal close below.
    }
    this.#teardown();
  }

  /** Parses `chunk` (borrowed: copied where kept). */
  #consume(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length && (this.#state === OPEN || this.#state === CLOSING)) {
      if (this.#payload === undefined) {
        // Header: 2 bytes, then the extended length and the mask.
        const hdr = this.#hdr;
        while (this.#hdrLen < 2 && i < chunk.length) hdr[this.#hdrLen++] = chunk[i++];
        if (this.#hdrLen < 2) return;
        if ((hdr[1] & 0x80) === 0) {
          this.#fail(CLOSE_PROTOCOL_ERROR, "client frames must be masked");
          return;
        }
        const len7 = hdr[1] & 0x7f;
        const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + 4;
        while (this.#hdrLen < need && i < chunk.length) hdr[this.#hdrLen++] = chunk[i++];
        if (this.#hdrLen < need) return;
        if (!this.#beginFrame(need)) return;
        if (this.#payload!.length === 0) this.#endFrame();
        continue;
      }
      const p = this.#payload;
      const take = Math.min(p.length - this.#payloadFilled, chunk.length - i);
      p.set(chunk.subarray(i, i + take), this.#payloadFilled);
      unmask(
        p.subarray(this.#payloadFilled, this.#payloadFilled + take),
        this.#mask,
        this.#payloadFilled,
      );
      this.#payloadFilled += take;
      i += take;
      if (this.#payloadFilled === p.length) this.#endFrame();
    }
  }

  /** Checks a complete frame header; allocates the payload. False: the connection is failing. */
  #beginFrame(hdrLen: number): boolean {
    const hdr = this.#hdr;
    const fin = (hdr[0] & 0x80) !== 0;
    const opcode = hdr[0] & 0x0f;
    if ((hdr[0] & 0x70) !== 0) {
      return this.#fail(CLOSE_PROTOCOL_ERROR, "RSV bits set without an extension");
    }
    if ((hdr[1] & 0x80) === 0) {
      return this.#fail(CLOSE_PROTOCOL_ERROR, "client frames must be masked");
    }
    const len7 = hdr[1] & 0x7f;
    let len: number;
    if (len7 === 126) len = (hdr[2] << 8) | hdr[3];
    else if (len7 === 127) {
      const hi = ((hdr[2] << 24) >>> 0) + (hdr[3] << 16) + (hdr[4] << 8) + hdr[5];
      const lo = ((hdr[6] << 24) >>> 0) + (hdr[7] << 16) + (hdr[8] << 8) + hdr[9];
      len = hi * 2 ** 32 + lo;
    } else len = len7;
    this.#mask.set(hdr.subarray(hdrLen - 4, hdrLen));
    const control = (opcode & 0x8) !== 0;
    if (control) {
      if (opcode !== OP_CLOSE && opcode !== OP_PING && opcode !== OP_PONG) {
        return this.#fail(CLOSE_PROTOCOL_ERROR, `unknown opcode ${opcode}`);
      }
      if (!fin || len > 125) {
        return this.#fail(CLOSE_PROTOCOL_ERROR, "control frames must be whole and <= 125 bytes");
      }
    } else if (opcode === OP_CONT) {
      if (this.#fragmentOpcode < 0) {
        return this.#fail(CLOSE_PROTOCOL_ERROR, "continuation without a message");
      }
    } else if (opcode === OP_TEXT || opcode === OP_BINARY) {
      if (this.#fragmentOpcode >= 0) {
        return this.#fail(CLOSE_PROTOCOL_ERROR, "new message before the last one ended");
      }
    } else {
      return this.#fail(CLOSE_PROTOCOL_ERROR, `unknown opcode ${opcode}`);
    }
    if (!control) {
      // The bound, before a byte of payload is held: this frame plus the fragments so far.
      const total = this.#fragmentBytes + len;
      if (total > this.#opts.maxMessageBytes) {
        return this.#fail(
          CLOSE_TOO_BIG,
          `message of ${total}+ bytes exceeds the limit of ${this.#opts.maxMessageBytes}`,
        );
      }
    }
    this.#fin = fin;
    this.#opcode = opcode;
    if (
      this.#lending && opcode === OP_BINARY && fin && len >= LENT_MESSAGE_MIN_BYTES &&
      len <= LENT_MESSAGE_MAX_BYTES && this.#state === OPEN
    ) {
      // A whole binary message, lent (see lendBinaryMessages). No bytes pass from one
      // message (or connection) to the next: the view is exactly `len` long and the message
      // is delivered only once #payloadFilled reached `len`, i.e. once each of its bytes was
      // written by this frame's payload (copied in #consume, or read in place by conn.read,
      // which writes the `got` bytes it reports). What lies beyond the view stays stale and
      // is never part of a message, so the buffer needs no zeroing.
      const buffer = lentMessagePool.take();
      this.#lent = buffer;
      this.#payload = new Uint8Array(buffer, 0, len);
    } else {
      this.#payload = new Uint8Array(len);
    }
    this.#payloadFilled = 0;
    this.#hdrLen = 0;
    return true;
  }

  #endFrame(): void {
    const payload = this.#payload!;
    this.#payload = undefined;
    this.#hdrLen = 0;
    const lent = this.#lent;
    if (lent !== undefined) {
      // A lent message (a whole binary one): the listeners are done with it when they
      // return, so its buffer goes back to the pool then (also when one throws).
      this.#lent = undefined;
      try {
        // Data after our close frame is discarded (§7.1.2).
        if (this.#state === OPEN) this.#emit("message", payload);
      } finally {
        lentMessagePool.give(lent);
      }
      return;
    }
    const opcode = this.#opcode;
    if (opcode === OP_PING) {
      if (this.#state === OPEN) this.#enqueue(encodeFrame(OP_PONG, payload));
      return;
    }
    if (opcode === OP_PONG) {
      this.#pinged = false;
      return;
    }
    if (opcode === OP_CLOSE) {
      this.#onCloseFrame(payload);
      return;
    }
    if (this.#state !== OPEN) return; // data after our close frame is discarded (§7.1.2)
    if (opcode !== OP_CONT) this.#fragmentOpcode = opcode;
    if (!this.#fin) {
      this.#fragments.push(payload);
      this.#fragmentBytes += payload.length;
      return;
    }
    let message = payload;
    if (this.#fragments.length > 0) {
      message = new Uint8Array(this.#fragmentBytes + payload.length);
      let off = 0;
      for (const f of this.#fragments) {
        message.set(f, off);
        off += f.length;
      }
      message.set(payload, off);
    }
    const kind = this.#fragmentOpcode;
    this.#fragments = [];
    this.#fragmentBytes = 0;
    this.#fragmentOpcode = -1;
    if (kind === OP_TEXT) {
      let text: string;
      try {
        text = this.#decoder.decode(message);
      } catch {
        this.#fail(CLOSE_INVALID_DATA, "a text message is not valid UTF-8");
        return;
      }
      this.#emit("message", text);
      return;
    }
    this.#emit("message", this.binaryType === "arraybuffer" ? message.buffer : message);
  }

  #onCloseFrame(payload: Uint8Array): void {
    let code = CLOSE_NO_STATUS;
    let reason = "";
    if (payload.length >= 2) {
      code = (payload[0] << 8) | payload[1];
      try {
        reason = this.#decoder.decode(payload.subarray(2));
      } catch {
        reason = "";
      }
    } else if (payload.length === 1) {
      code = CLOSE_PROTOCOL_ERROR;
    }
    if (this.#state === OPEN) {
      // Echo the code (§5.5.1), then close the TCP connection once it is written.
      this.#state = CLOSING;
      this.#closeCode = code;
      this.#closeReason = reason;
      this.#sendClose(
        code === CLOSE_NO_STATUS ? undefined : code === CLOSE_ABNORMAL ? CLOSE_NORMAL : code,
      );
    }
    this.#state = CLOSED;
    if (!this.#writing) this.#teardown();
    else this.#closeTimer ??= setTimeout(() => this.#teardown(), this.#opts.closeTimeoutMs ?? 5000);
  }

  /** Fails the connection (§7.1.7): a close frame with `code`, then the TCP connection goes. */
  #fail(code: number, reason: string): boolean {
    if (this.#state === OPEN) {
      this.#closeCode = code;
      this.#closeReason = reason;
      this.#sendClose(code, reason);
    }
    this.#state = CLOSED;
    this.#payload = undefined;
    this.#giveBackLent();
    this.#fragments = [];
    this.#fragmentBytes = 0;
    // Linger: a client still sending (the rest of a refused message) would make an
    // immediate close a reset that can destroy our close frame before it is read. Read
    // and drop up to DRAIN_BYTES until the client closes, at most closeTimeoutMs.
    this.#drained = 0;
    this.#closeTimer ??= setTimeout(() => this.#teardown(), this.#opts.closeTimeoutMs ?? 2000);
    this.#emitClose();
    return false;
  }

  #idleTick(): void {
    if (this.#state !== OPEN) return;
    if (this.#heard) {
      this.#heard = false;
      this.#pinged = false;
      return;
    }
    if (this.#pinged) {
      this.#closeCode = CLOSE_GOING_AWAY;
      this.#closeReason = "no pong from an idle peer";
      this.#teardown();
      return;
    }
    this.#pinged = true;
    this.#enqueue(encodeFrame(OP_PING, new Uint8Array(0)));
  }

  #teardown(): void {
    this.#state = CLOSED;
    if (this.#idleTimer !== undefined) clearInterval(this.#idleTimer);
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    this.#idleTimer = undefined;
    this.#closeTimer = undefined;
    this.#payload = undefined;
    this.#giveBackLent();
    this.#fragments = [];
    if (this.#conn) {
      try {
        this.#conn.close();
      } catch {
        // Already closed.
      }
      this.#conn = undefined;
      const end = this.#onEnd;
      this.#onEnd = undefined;
      end?.();
    }
    this.#emitClose();
  }

  /**
   * Gives the lent buffer of a message that will not be completed back to
   * the pool, unless a read into it is still in flight: the read loop calls
   * this again once that read settled.
   */
  #giveBackLent(): void {
    const lent = this.#lent;
    if (lent === undefined || this.#directRead) return;
    this.#lent = undefined;
    lentMessagePool.give(lent);
  }

  #emitClose(): void {
    if (this.#closeEmitted) return;
    this.#closeEmitted = true;
    const ev = { data: undefined, code: this.#closeCode, reason: this.#closeReason };
    for (const l of this.#listeners.get("close") ?? []) l(ev);
  }

  #emit(type: string, data: unknown): void {
    for (const l of this.#listeners.get(type) ?? []) l({ data });
  }
}
