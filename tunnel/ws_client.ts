/**
 * A small WebSocket client (RFC 6455) for the CLI (the tunnel, and the SDK
 * under `connect` and `forward`), over Deno's sockets on Deno and `node:net`
 * (or `node:tls` for `wss:`) elsewhere (ws_transport.ts). It is what the CLI
 * needs and no more: binary messages both ways, subprotocol negotiation,
 * ping and pong (for the keepalive), the closing handshake.
 *
 * Why not the `ws` package: a client must mask every frame it sends
 * (RFC 6455 §5.3) and `ws` does it a byte at a time in JavaScript unless a
 * native addon is installed; with TCP segments of 64 KiB crossing the tunnel
 * that loop was the CLI's largest cost. Here the payload is copied once
 * behind its header and masked in place 32 bits at a time, and each message
 * is one write with `TCP_NODELAY` (Deno's built-in client stalls on Nagle,
 * DESIGN.md).
 *
 * It has the shape of the standard `WebSocket` that {@linkcode TunnelClient}
 * and the SDK's streams use (`onopen`, `onmessage` with an `ArrayBuffer`,
 * `onclose` with a code, `addEventListener` for the four, `protocol`,
 * `bufferedAmount`, `readyState`), plus `ping()`, `on`/`off` for `"pong"`,
 * `sendWithFirstByte()` (a stream's DATA message in one copy) and
 * `terminate()`.
 *
 * @module
 */

import { createHash, randomBytes } from "node:crypto";
import { Buffer } from "node:buffer";
import {
  CLOSED,
  CLOSING,
  CONNECTING,
  OP_BINARY,
  OP_CLOSE,
  OP_CONT,
  OP_PING,
  OP_PONG,
  OP_TEXT,
  OPEN,
  unmask,
} from "../src/http/websocket_conn.ts";
import { WEBSOCKET_GUID as WS_GUID } from "../src/http/websocket_handshake.ts";
import { connectNodeTransport, type WsTransport, type WsTransportEvents } from "./ws_transport.ts";
import { connectDenoTransport, hasDenoConnect } from "./ws_transport_deno.ts";
/** The largest message accepted from the server (the tunnel's own limit is 1 MiB). */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** The largest response head read before the handshake fails. */
const MAX_HEAD_BYTES = 16 * 1024;
/** A payload with at least this much still to come is read straight into its buffer (when the transport can). */
const DIRECT_READ_BYTES = 16 * 1024;
/** Frames of this size and up are built in a buffer of the client's pool. */
const POOL_MIN_BYTES = 16 * 1024;
/** The pool's buffers: a batch of the tunnel's (256 KiB) with its headers. */
const POOL_BUFFER_BYTES = 256 * 1024 + 1024;
/**
 * The most buffers the pool keeps (4.1 MiB), one pool per process whatever
 * the number of sockets: enough for the tunnel's 4 MiB of unsent messages.
 */
const POOL_BUFFERS = 16;
/** Free buffers of POOL_BUFFER_BYTES for large frames, shared by the process's sockets. */
const framePool: ArrayBuffer[] = [];

/** Whether a frame of `bytes` is built in a buffer of the pool. */
function pooledSize(bytes: number): boolean {
  return bytes >= POOL_MIN_BYTES && bytes <= POOL_BUFFER_BYTES;
}

/** Takes a pooled frame's buffer back once the transport wrote it (at most POOL_BUFFERS kept). */
function giveBack(bytes: Uint8Array): void {
  if (framePool.length < POOL_BUFFERS) framePool.push(bytes.buffer as ArrayBuffer);
}
/** How long the closing handshake may take before the socket is dropped. */
const CLOSE_TIMEOUT_MS = 3000;

/** An event delivered to `onmessage`. */
export interface WsMessageEvent {
  data: ArrayBuffer | string;
}

/** An event delivered to `onclose`. */
export interface WsCloseEvent {
  code: number;
  reason: string;
  wasClean: boolean;
}

/** The events of a {@linkcode TunnelWebSocket}, by type. */
export interface WsEvents {
  open: Record<string, never>;
  message: WsMessageEvent;
  close: WsCloseEvent;
  error: { message: string };
}

/** The `on…` property of each event type (no name built per message). */
const ON_PROPERTY = {
  open: "onopen",
  message: "onmessage",
  close: "onclose",
  error: "onerror",
} as const;

/**
 * A WebSocket client connection (see the module documentation).
 *
 * @example
 * ```ts ignore
 * const ws = new TunnelWebSocket("ws://127.0.0.1:8787/v1/sessions/s_x/tunnel?token=t", [
 *   "netisle.vnet-stream.v1",
 *   "netisle.qemu-stream.v1",
 * ]);
 * ws.onopen = () => ws.send(new Uint8Array([1, 2, 3]));
 * ws.onmessage = (ev) => console.log(ev.data);
 * ```
 */
export class TunnelWebSocket {
  /** Always binary messages as `ArrayBuffer`s (the property exists for the standard shape). */
  binaryType = "arraybuffer";
  /** The subprotocol the server chose, or "" before the handshake or when none. */
  protocol = "";
  /** Called once the handshake completed. */
  onopen: ((ev: Record<string, never>) => void) | null = null;
  /** Called with every message. */
  onmessage: ((ev: WsMessageEvent) => void) | null = null;
  /** Called once when the connection ended, with the close code (1006 when it was dropped). */
  onclose: ((ev: WsCloseEvent) => void) | null = null;
  /** Called when the connection failed (before `onclose`). */
  onerror: ((ev: { message: string }) => void) | null = null;
  #state = CONNECTING;
  #socket: WsTransport;
  #key: string;
  #offered: string[];
  #head: Buffer | undefined = Buffer.alloc(0);
  #pongListeners: Array<() => void> = [];
  #listeners: { [K in keyof WsEvents]: Array<(ev: WsEvents[K]) => void> } = {
    open: [],
    message: [],
    close: [],
    error: [],
  };
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #closeSent = false;
  #closeCode = 1006;
  #closeReason = "";
  #closeEmitted = false;
  // Reader state: a frame may span chunks.
  #hdr = new Uint8Array(14);
  #hdrLen = 0;
  #payload: Uint8Array | undefined;
  #payloadFilled = 0;
  #opcode = 0;
  #fin = false;
  #fragments: Uint8Array[] = [];
  #fragmentBytes = 0;
  #fragmentOpcode = -1;

  /**
   * Connects to `url` (`ws:` or `wss:`), offering `protocols`, over Deno's
   * sockets where they exist and `node:net` elsewhere (`transport` picks
   * one).
   */
  constructor(url: string, protocols?: string | string[], transport?: "deno" | "node") {
    const u = new URL(url);
    if (u.protocol !== "ws:" && u.protocol !== "wss:") {
      throw new SyntaxError(`TunnelWebSocket: the URL scheme must be ws: or wss:, got ${url}`);
    }
    this.#offered = protocols === undefined ? [] : typeof protocols === "string" ? [protocols] : [
      ...protocols,
    ];
    this.#key = randomBytes(16).toString("base64");
    const secure = u.protocol === "wss:";
    const port = Number(u.port || (secure ? 443 : 80));
    const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
    const request = [
      `GET ${u.pathname}${u.search} HTTP/1.1`,
      `Host: ${u.host}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${this.#key}`,
      "Sec-WebSocket-Version: 13",
      ...(this.#offered.length > 0 ? [`Sec-WebSocket-Protocol: ${this.#offered.join(", ")}`] : []),
      "",
      "",
    ].join("\r\n");
    const events: WsTransportEvents = {
      onConnect: () => this.#socket.write(new TextEncoder().encode(request)),
      onData: (chunk) => this.#onData(chunk),
      onError: (message) => this.#emit("error", { message }),
      onClose: () => this.#ended(),
      directBuffer: () => {
        const p = this.#payload;
        return p !== undefined && p.length - this.#payloadFilled >= DIRECT_READ_BYTES
          ? p.subarray(this.#payloadFilled)
          : undefined;
      },
      onDirect: (n) => {
        this.#payloadFilled += n;
        if (this.#payloadFilled === this.#payload!.length) this.#endFrame();
      },
    };
    const target = { host, port, secure };
    // On Deno its own sockets (ws_transport_deno.ts); node:net on Bun and Node.
    this.#socket = transport === "deno" || (transport === undefined && hasDenoConnect())
      ? connectDenoTransport(target, events)
      : connectNodeTransport(target, events);
  }

  /** CONNECTING, OPEN, CLOSING or CLOSED (0..3). */
  get readyState(): number {
    return this.#state;
  }

  /** Bytes handed to `send` that the socket has not written yet. */
  get bufferedAmount(): number {
    return this.#socket.writableLength;
  }

  /**
   * Sends one binary message (a string as text). The payload is copied
   * behind the frame header and masked there; the caller may reuse its
   * buffer at once. Throws when the socket is not open.
   */
  send(data: Uint8Array | ArrayBuffer | string): void {
    if (this.#state !== OPEN) {
      throw new Error(`WebSocket is not open (readyState ${this.#state})`);
    }
    if (typeof data === "string") this.#write(OP_TEXT, new TextEncoder().encode(data));
    else this.#write(OP_BINARY, data instanceof Uint8Array ? data : new Uint8Array(data));
  }

  /**
   * Sends one binary message of the byte `first` and then `rest`, copying
   * `rest` once (into the masked frame), not twice as building the message
   * first would. Throws when the socket is not open.
   */
  sendWithFirstByte(first: number, rest: Uint8Array): void {
    if (this.#state !== OPEN) {
      throw new Error(`WebSocket is not open (readyState ${this.#state})`);
    }
    this.#write(OP_BINARY, rest, first);
  }

  /**
   * Sends one binary message of `length` bytes that `fill` writes: it gets
   * the frame's payload (exactly `length` bytes, masked once it returns), so
   * a message made of parts (a batch of stream-framed records) costs one
   * copy. The parts may be reused once `fill` returned. Throws when the
   * socket is not open.
   */
  sendFilled(length: number, fill: (payload: Uint8Array) => void): void {
    if (this.#state !== OPEN) {
      throw new Error(`WebSocket is not open (readyState ${this.#state})`);
    }
    const out = this.#begin(OP_BINARY, length);
    const hdr = out.length - length;
    fill(out.subarray(hdr));
    this.#finish(out, hdr);
  }

  /**
   * Adds a listener of `open`, `message`, `close` or `error`, called after
   * the matching `on…` property (the standard `WebSocket`'s EventTarget
   * shape, which the client SDK's streams use).
   */
  addEventListener<K extends keyof WsEvents>(type: K, listener: (ev: WsEvents[K]) => void): void {
    (this.#listeners[type] as Array<(ev: WsEvents[K]) => void>).push(listener);
  }

  /** Removes a listener added with {@linkcode TunnelWebSocket.addEventListener}. */
  removeEventListener<K extends keyof WsEvents>(
    type: K,
    listener: (ev: WsEvents[K]) => void,
  ): void {
    const list = this.#listeners[type] as Array<(ev: WsEvents[K]) => void>;
    const i = list.indexOf(listener);
    if (i >= 0) list.splice(i, 1);
  }

  #emit<K extends keyof WsEvents>(type: K, ev: WsEvents[K]): void {
    (this[ON_PROPERTY[type]] as ((ev: WsEvents[K]) => void) | null)?.(ev);
    const list = this.#listeners[type] as Array<(ev: WsEvents[K]) => void>;
    if (list.length > 0) { for (const l of [...list]) l(ev); }
  }

  /** Sends a ping; the pong is reported to the `"pong"` listeners. */
  ping(): void {
    if (this.#state !== OPEN) throw new Error("WebSocket is not open");
    this.#write(OP_PING, new Uint8Array(0));
  }

  /** Adds a listener of pongs (the keepalive's). */
  on(event: "pong", listener: () => void): this {
    if (event === "pong") this.#pongListeners.push(listener);
    return this;
  }

  /** Removes a listener added with {@linkcode TunnelWebSocket.on}. */
  off(event: "pong", listener: () => void): this {
    if (event === "pong") this.#pongListeners = this.#pongListeners.filter((l) => l !== listener);
    return this;
  }

  /** Starts the closing handshake (RFC 6455 §7.1.2); the connection ends when it completes. */
  close(code?: number, reason?: string): void {
    if (this.#state === CLOSED || this.#state === CLOSING) return;
    if (this.#state === CONNECTING) {
      this.#closeCode = code ?? 1005;
      this.#closeReason = reason ?? "";
      this.terminate();
      return;
    }
    this.#state = CLOSING;
    this.#closeCode = code ?? 1005;
    this.#closeReason = reason ?? "";
    this.#sendClose(code, reason);
    this.#closeTimer = setTimeout(() => this.#socket.destroy(), CLOSE_TIMEOUT_MS);
  }

  /** Drops the connection at once, without a closing handshake (a network fault, say). */
  terminate(): void {
    this.#socket.destroy();
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
    this.#write(OP_CLOSE, payload);
  }

  /**
   * One masked frame (RFC 6455 §5.2, §5.3), FIN set, written in one call;
   * with `first`, the payload is that byte and then `payload`.
   */
  #write(opcode: number, payload: Uint8Array, first?: number): void {
    const extra = first === undefined ? 0 : 1;
    const out = this.#begin(opcode, payload.length + extra);
    const hdr = out.length - payload.length - extra;
    if (first !== undefined) out[hdr] = first;
    out.set(payload, hdr + extra);
    this.#finish(out, hdr);
  }

  /**
   * A frame of a `len`-byte payload with its header written, the masking
   * key last; the caller fills the payload, then calls `#finish`. A large
   * frame is built in a buffer of the process's pool, which the transport
   * gives back once the bytes are written (a fresh 256 KiB buffer per
   * message was the most of what sending cost).
   */
  #begin(opcode: number, len: number): Buffer {
    const hdr = len < 126 ? 6 : len < 65536 ? 8 : 14;
    const out = pooledSize(hdr + len)
      ? Buffer.from(framePool.pop() ?? new ArrayBuffer(POOL_BUFFER_BYTES), 0, hdr + len)
      : Buffer.allocUnsafe(hdr + len);
    out[0] = 0x80 | opcode;
    if (len < 126) {
      out[1] = 0x80 | len;
    } else if (len < 65536) {
      out[1] = 0x80 | 126;
      out[2] = len >>> 8;
      out[3] = len & 0xff;
    } else {
      out[1] = 0x80 | 127;
      out.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
      out.writeUInt32BE(len >>> 0, 6);
    }
    return out;
  }

  /** Masks the payload behind `hdr` with a fresh key and writes the frame. */
  #finish(out: Buffer, hdr: number): void {
    const key = randomMask();
    out.set(key, hdr - 4);
    unmask(out.subarray(hdr), key, 0); // masking is the same XOR
    this.#socket.write(out, pooledSize(out.length) ? giveBack : undefined);
  }

  #onData(chunk: Uint8Array): void {
    if (this.#state === CONNECTING) {
      const rest = this.#handshake(chunk);
      if (rest === undefined || rest.length === 0) return;
      chunk = rest;
    }
    this.#consume(chunk);
  }

  /** Reads the response head; returns the bytes after it once the handshake is done. */
  #handshake(chunk: Uint8Array): Uint8Array | undefined {
    const head = Buffer.concat([this.#head!, chunk]);
    const end = head.indexOf("\r\n\r\n");
    if (end < 0) {
      if (head.length > MAX_HEAD_BYTES) this.#fail("the handshake response head is too long");
      else this.#head = head;
      return undefined;
    }
    this.#head = undefined;
    const lines = head.subarray(0, end).toString("latin1").split("\r\n");
    const status = /^HTTP\/1\.1 (\d{3})/.exec(lines[0]);
    const fields = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const i = line.indexOf(":");
      if (i > 0) fields.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
    }
    const accept = createHash("sha1").update(this.#key + WS_GUID).digest("base64");
    const chosen = fields.get("sec-websocket-protocol") ?? "";
    if (!status || status[1] !== "101") {
      this.#fail(`the server answered ${lines[0]} instead of 101 Switching Protocols`);
    } else if (fields.get("upgrade")?.toLowerCase() !== "websocket") {
      this.#fail("the server did not upgrade to websocket");
    } else if (fields.get("sec-websocket-accept") !== accept) {
      this.#fail("the server's Sec-WebSocket-Accept does not match our key");
    } else if (chosen !== "" && !this.#offered.includes(chosen)) {
      this.#fail(`the server chose subprotocol ${JSON.stringify(chosen)}, which was not offered`);
    } else {
      this.protocol = chosen;
      this.#state = OPEN;
      this.#emit("open", {});
      return head.subarray(end + 4);
    }
    return undefined;
  }

  /** Parses server frames (unmasked, RFC 6455 §5.1) from `chunk`. */
  #consume(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length && (this.#state === OPEN || this.#state === CLOSING)) {
      if (this.#payload === undefined) {
        const hdr = this.#hdr;
        while (this.#hdrLen < 2 && i < chunk.length) hdr[this.#hdrLen++] = chunk[i++];
        if (this.#hdrLen < 2) return;
        if ((hdr[1] & 0x80) !== 0) {
          this.#fail("the server sent a masked frame");
          return;
        }
        const len7 = hdr[1] & 0x7f;
        const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0);
        while (this.#hdrLen < need && i < chunk.length) hdr[this.#hdrLen++] = chunk[i++];
        if (this.#hdrLen < need) return;
        if (!this.#beginFrame(len7)) return;
        if (this.#payload!.length === 0) this.#endFrame();
        continue;
      }
      const p = this.#payload;
      const take = Math.min(p.length - this.#payloadFilled, chunk.length - i);
      p.set(chunk.subarray(i, i + take), this.#payloadFilled);
      this.#payloadFilled += take;
      i += take;
      if (this.#payloadFilled === p.length) this.#endFrame();
    }
  }

  #beginFrame(len7: number): boolean {
    const hdr = this.#hdr;
    const opcode = hdr[0] & 0x0f;
    const fin = (hdr[0] & 0x80) !== 0;
    let len = len7;
    if (len7 === 126) len = (hdr[2] << 8) | hdr[3];
    else if (len7 === 127) {
      const hi = ((hdr[2] << 24) | (hdr[3] << 16) | (hdr[4] << 8) | hdr[5]) >>> 0;
      const lo = ((hdr[6] << 24) | (hdr[7] << 16) | (hdr[8] << 8) | hdr[9]) >>> 0;
      len = hi * 2 ** 32 + lo;
    }
    if ((hdr[0] & 0x70) !== 0) return this.#fail("the server set a reserved bit");
    const control = opcode >= 0x8;
    if (control && (!fin || len > 125)) return this.#fail("a fragmented or long control frame");
    if (!control) {
      if (opcode === OP_CONT ? this.#fragmentOpcode < 0 : this.#fragmentOpcode >= 0) {
        return this.#fail("a continuation out of place");
      }
      if (opcode !== OP_CONT && opcode !== OP_TEXT && opcode !== OP_BINARY) {
        return this.#fail(`unknown opcode ${opcode}`);
      }
      if (this.#fragmentBytes + len > MAX_MESSAGE_BYTES) {
        return this.#fail(`a message over ${MAX_MESSAGE_BYTES} bytes`);
      }
    } else if (opcode !== OP_CLOSE && opcode !== OP_PING && opcode !== OP_PONG) {
      return this.#fail(`unknown opcode ${opcode}`);
    }
    this.#opcode = opcode;
    this.#fin = fin;
    this.#payload = new Uint8Array(len);
    this.#payloadFilled = 0;
    this.#hdrLen = 0;
    return true;
  }

  #endFrame(): void {
    const p = this.#payload!;
    this.#payload = undefined;
    switch (this.#opcode) {
      case OP_PING:
        if (this.#state === OPEN) this.#write(OP_PONG, p);
        return;
      case OP_PONG:
        for (const l of [...this.#pongListeners]) l();
        return;
      case OP_CLOSE: {
        const code = p.length >= 2 ? (p[0] << 8) | p[1] : 1005;
        const reason = p.length > 2 ? new TextDecoder().decode(p.subarray(2)) : "";
        if (this.#state === OPEN) {
          this.#state = CLOSING;
          this.#closeCode = code;
          this.#closeReason = reason;
          this.#sendClose(code === 1005 ? undefined : code, reason);
        }
        this.#socket.end();
        return;
      }
    }
    if (this.#opcode !== OP_CONT) this.#fragmentOpcode = this.#opcode;
    if (!this.#fin) {
      this.#fragments.push(p);
      this.#fragmentBytes += p.length;
      return;
    }
    let message = p;
    if (this.#fragments.length > 0) {
      this.#fragments.push(p);
      message = new Uint8Array(this.#fragmentBytes + p.length);
      let at = 0;
      for (const f of this.#fragments) {
        message.set(f, at);
        at += f.length;
      }
      this.#fragments = [];
      this.#fragmentBytes = 0;
    }
    const opcode = this.#fragmentOpcode;
    this.#fragmentOpcode = -1;
    const data = opcode === OP_TEXT ? new TextDecoder().decode(message) : message.buffer;
    this.#emit("message", { data: data as ArrayBuffer | string });
  }

  /** A protocol error: close 1002 (or drop a connection that never opened). */
  #fail(why: string): false {
    this.#emit("error", { message: why });
    if (this.#state === OPEN) {
      this.#state = CLOSING;
      this.#closeCode = 1002;
      this.#closeReason = why.slice(0, 100);
      this.#sendClose(1002, this.#closeReason);
      this.#socket.end();
    } else {
      this.#socket.destroy();
    }
    return false;
  }

  #ended(): void {
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    const clean = this.#closeSent && this.#state === CLOSING;
    this.#state = CLOSED;
    if (this.#closeEmitted) return;
    this.#closeEmitted = true;
    this.#emit("close", {
      code: clean ? this.#closeCode : 1006,
      reason: clean ? this.#closeReason : "",
      wasClean: clean,
    });
  }
}

/** A fresh masking key (RFC 6455 §5.3: unpredictable). */
function randomMask(): Uint8Array {
  const key = new Uint8Array(4);
  crypto.getRandomValues(key);
  return key;
}
