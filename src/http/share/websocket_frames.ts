/**
 * The client side of the WebSocket framing (RFC 6455 §5), for a share link
 * that relays a browser's WebSocket to a server inside the session: frames
 * the proxy sends are masked (§5.3), frames it receives must not be. The
 * parser keeps its state across chunks, assembles fragmented messages up to
 * a limit, and answers an error instead of throwing on hostile bytes.
 *
 * @module
 */

/** Opcodes (RFC 6455 §5.2). */
export const WsOpcode = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

/** What the parser hands out. */
export type WsEvent =
  | { type: "text" | "binary"; data: Uint8Array }
  | { type: "close"; code: number | undefined; reason: string }
  | { type: "ping" | "pong"; data: Uint8Array };

/**
 * One frame from a client (masked with a fresh key from `random`), FIN set.
 *
 * @example
 * ```ts
 * tcp.write(encodeClientFrame(WsOpcode.TEXT, new TextEncoder().encode("hi")));
 * ```
 */
export function encodeClientFrame(
  opcode: number,
  payload: Uint8Array,
  random: (b: Uint8Array) => void = (b) => crypto.getRandomValues(b),
): Uint8Array {
  const n = payload.length;
  const lenBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const out = new Uint8Array(2 + lenBytes + 4 + n);
  out[0] = 0x80 | opcode;
  let o = 2;
  if (lenBytes === 0) out[1] = 0x80 | n;
  else if (lenBytes === 2) {
    out[1] = 0x80 | 126;
    out[2] = n >> 8;
    out[3] = n & 0xff;
    o = 4;
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(n));
    o = 10;
  }
  const key = out.subarray(o, o + 4);
  random(key);
  o += 4;
  for (let i = 0; i < n; i++) out[o + i] = payload[i] ^ key[i & 3];
  return out;
}

/**
 * A close frame's payload: the code (u16 BE) and a UTF-8 reason, cut to fit
 * 125 bytes (RFC 6455 §5.5.1).
 *
 * @example
 * ```ts
 * encodeClientFrame(WsOpcode.CLOSE, closePayload(1000, "bye"));
 * ```
 */
export function closePayload(code: number | undefined, reason = ""): Uint8Array {
  if (code === undefined) return new Uint8Array(0);
  const r = new TextEncoder().encode(reason).subarray(0, 123);
  const out = new Uint8Array(2 + r.length);
  out[0] = code >> 8;
  out[1] = code & 0xff;
  out.set(r, 2);
  return out;
}

/**
 * Parses frames from a server (unmasked), incrementally.
 *
 * @example
 * ```ts
 * const p = new ServerFrameParser(1 << 20);
 * const r = p.push(bytesFromTcp);
 * if ("error" in r) fail(r.error); else for (const ev of r.events) deliver(ev);
 * ```
 */
export class ServerFrameParser {
  #max: number;
  #buf = new Uint8Array(0);
  #parts: Uint8Array[] = [];
  #partBytes = 0;
  #partType: "text" | "binary" | undefined;

  /** A parser that refuses messages over `maxMessageBytes`. */
  constructor(maxMessageBytes: number) {
    this.#max = maxMessageBytes;
  }

  /** Bytes waiting to make a whole frame, and fragments of a message not yet complete. */
  get bufferedBytes(): number {
    return this.#buf.length + this.#partBytes;
  }

  /** Adds bytes: the events they complete, or an error (the connection must close, 1002/1009). */
  push(chunk: Uint8Array): { events: WsEvent[] } | { error: string; code: number } {
    let b: Uint8Array;
    if (this.#buf.length === 0) b = chunk;
    else {
      b = new Uint8Array(this.#buf.length + chunk.length);
      b.set(this.#buf);
      b.set(chunk, this.#buf.length);
    }
    const events: WsEvent[] = [];
    let o = 0;
    for (;;) {
      if (b.length - o < 2) break;
      const fin = (b[o] & 0x80) !== 0;
      if (b[o] & 0x70) return { error: "a frame with reserved bits set", code: 1002 };
      const opcode = b[o] & 0x0f;
      if (b[o + 1] & 0x80) return { error: "a masked frame from the server", code: 1002 };
      let len = b[o + 1] & 0x7f;
      let h = 2;
      if (len === 126) {
        if (b.length - o < 4) break;
        len = (b[o + 2] << 8) | b[o + 3];
        h = 4;
      } else if (len === 127) {
        if (b.length - o < 10) break;
        const big = new DataView(b.buffer, b.byteOffset + o + 2, 8).getBigUint64(0);
        if (big > BigInt(this.#max)) return { error: "a frame over the message limit", code: 1009 };
        len = Number(big);
        h = 10;
      }
      const control = opcode >= 0x8;
      if (control && (len > 125 || !fin)) {
        return { error: "a control frame over 125 bytes or fragmented", code: 1002 };
      }
      if (!control && this.#partBytes + len > this.#max) {
        return { error: `a message over ${this.#max} bytes`, code: 1009 };
      }
      if (b.length - o < h + len) break;
      const payload = b.slice(o + h, o + h + len);
      o += h + len;
      switch (opcode) {
        case WsOpcode.CLOSE: {
          const code = payload.length >= 2 ? (payload[0] << 8) | payload[1] : undefined;
          const reason = payload.length > 2 ? new TextDecoder().decode(payload.subarray(2)) : "";
          events.push({ type: "close", code, reason });
          break;
        }
        case WsOpcode.PING:
          events.push({ type: "ping", data: payload });
          break;
        case WsOpcode.PONG:
          events.push({ type: "pong", data: payload });
          break;
        case WsOpcode.TEXT:
        case WsOpcode.BINARY:
          if (this.#partType) return { error: "a new message inside a fragmented one", code: 1002 };
          if (fin) {
            events.push({ type: opcode === WsOpcode.TEXT ? "text" : "binary", data: payload });
          } else {
            this.#partType = opcode === WsOpcode.TEXT ? "text" : "binary";
            this.#parts = [payload];
            this.#partBytes = payload.length;
          }
          break;
        case WsOpcode.CONTINUATION:
          if (!this.#partType) return { error: "a continuation without a message", code: 1002 };
          this.#parts.push(payload);
          this.#partBytes += payload.length;
          if (fin) {
            const data = new Uint8Array(this.#partBytes);
            let k = 0;
            for (const p of this.#parts) {
              data.set(p, k);
              k += p.length;
            }
            events.push({ type: this.#partType, data });
            this.#parts = [];
            this.#partBytes = 0;
            this.#partType = undefined;
          }
          break;
        default:
          return { error: `an unknown opcode ${opcode}`, code: 1002 };
      }
    }
    this.#buf = o === b.length ? new Uint8Array(0) : b.slice(o);
    return { events };
  }
}
