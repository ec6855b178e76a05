/**
 * A small HTTP/1.1 server on a peer stack (a second session, the "tunnelled
 * machine" of the tests without root), for share links:
 *
 * - `GET /` an HTML page; `GET /bytes?n=N` N bytes (byte i is i % 251), with
 *   Content-Length (`HEAD` too); `GET /chunked` a chunked body;
 *   `GET /headers` the request target and fields as JSON; `POST /echo` the
 *   body back (read whole first);
 * - `GET /ws` with `Upgrade: websocket`: an echo WebSocket (each message back,
 *   as it came; a close answered with a close).
 *
 * One request per connection (the proxy sends `Connection: close`).
 *
 * @module
 */

import type { Session } from "../src/session/mod.ts";
import { TcpServer, type TcpSocket } from "../src/socket/mod.ts";
import { ChunkedDecoder } from "../src/http/share/http1_codec.ts";
import { websocketAccept } from "../src/http/websocket_handshake.ts";

const enc = new TextEncoder();

/** The byte at offset `i` of `/bytes`. */
export const patternByte = (i: number): number => i % 251;

/** Starts the server on `peer`'s `port`; close the returned server to stop it. */
export function httpPeer(peer: Session, port: number): TcpServer {
  const server = TcpServer.listen(peer, { port });
  server.serve(async (s) => {
    try {
      await handle(s);
    } catch {
      s.abort();
    }
  });
  return server;
}

async function handle(s: TcpSocket): Promise<void> {
  let buf = new Uint8Array(0);
  let end = -1;
  while (end < 0) {
    const c = await s.receive(65536);
    if (c === null) return;
    const b = new Uint8Array(buf.length + c.length);
    b.set(buf);
    b.set(c, buf.length);
    buf = b;
    end = new TextDecoder("latin1").decode(buf).indexOf("\r\n\r\n");
  }
  const head = new TextDecoder("latin1").decode(buf.subarray(0, end));
  let rest = buf.subarray(end + 4);
  const [requestLine, ...lines] = head.split("\r\n");
  const [method, target] = requestLine.split(" ");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const url = new URL(target, "http://peer");
  if (url.pathname === "/ws" && headers.upgrade?.toLowerCase() === "websocket") {
    const accept = await websocketAccept(headers["sec-websocket-key"]);
    const proto = headers["sec-websocket-protocol"]?.split(",")[0].trim();
    await s.write(enc.encode(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${accept}\r\n` +
        (proto ? `Sec-WebSocket-Protocol: ${proto}\r\n` : "") + "\r\n",
    ));
    await wsEcho(s, rest);
    return;
  }
  // The request body: by length or chunked.
  const parts: Uint8Array[] = [];
  if (headers["content-length"]) {
    let left = Number(headers["content-length"]) - rest.length;
    parts.push(rest.slice());
    while (left > 0) {
      const c = await s.receive(65536);
      if (c === null) break;
      parts.push(c.slice());
      left -= c.length;
    }
  } else if (headers["transfer-encoding"] === "chunked") {
    const d = new ChunkedDecoder();
    let chunk: Uint8Array | null = rest;
    for (;;) {
      const r = d.push(chunk!);
      if ("error" in r) throw new Error(r.error);
      for (const p of r.data) parts.push(p.slice());
      if (r.done) break;
      chunk = await s.receive(65536);
      if (chunk === null) break;
    }
  }
  rest = new Uint8Array(0);
  const body = concat(parts);
  const respond = async (status: string, type: string, payload: Uint8Array, extra = "") => {
    await s.write(enc.encode(
      `HTTP/1.1 ${status}\r\nContent-Type: ${type}\r\nContent-Length: ${payload.length}\r\n` +
        `Connection: close, X-Hop\r\nX-Hop: drop-me\r\nX-Kept: yes\r\n${extra}\r\n`,
    ));
    if (method !== "HEAD") await s.write(payload);
  };
  switch (url.pathname) {
    case "/":
      await respond("200 OK", "text/html", enc.encode("<!doctype html><title>peer</title>hi"));
      break;
    case "/bytes": {
      const n = Number(url.searchParams.get("n") ?? "0");
      await s.write(enc.encode(
        `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${n}\r\n` +
          "Connection: close\r\n\r\n",
      ));
      if (method === "HEAD") break;
      const block = new Uint8Array(65536);
      for (let off = 0; off < n;) {
        const len = Math.min(block.length, n - off);
        for (let i = 0; i < len; i++) block[i] = patternByte(off + i);
        await s.write(block.subarray(0, len));
        off += len;
      }
      break;
    }
    case "/chunked":
      await s.write(enc.encode(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
          "5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n",
      ));
      break;
    case "/headers":
      await respond(
        "200 OK",
        "application/json",
        enc.encode(JSON.stringify({ method, target, headers })),
      );
      break;
    case "/echo":
      await respond("200 OK", "application/octet-stream", body);
      break;
    default:
      await respond("404 Not Found", "text/plain", enc.encode("not here"));
  }
  s.shutdown("write");
  // Drain until the proxy closes.
  while ((await s.receive(65536)) !== null) { /* nothing */ }
}

/** Echoes WebSocket messages (masked client frames in, unmasked frames out). */
async function wsEcho(s: TcpSocket, first: Uint8Array): Promise<void> {
  let buf = first.slice();
  for (;;) {
    while (buf.length >= 2) {
      const opcode = buf[0] & 0x0f;
      let len = buf[1] & 0x7f;
      let h = 2;
      if (len === 126) {
        if (buf.length < 4) break;
        len = (buf[2] << 8) | buf[3];
        h = 4;
      } else if (len === 127) {
        if (buf.length < 10) break;
        len = Number(new DataView(buf.buffer, buf.byteOffset + 2, 8).getBigUint64(0));
        h = 10;
      }
      if (buf.length < h + 4 + len) break;
      const key = buf.subarray(h, h + 4);
      const payload = buf.slice(h + 4, h + 4 + len);
      for (let i = 0; i < len; i++) payload[i] ^= key[i & 3];
      buf = buf.slice(h + 4 + len);
      if (opcode === 0x9) continue;
      await s.write(frame(opcode === 0x9 ? 0xa : opcode, payload));
      if (opcode === 0x8) {
        s.shutdown("write");
        return;
      }
    }
    const c = await s.receive(65536);
    if (c === null) return;
    const b = new Uint8Array(buf.length + c.length);
    b.set(buf);
    b.set(c, buf.length);
    buf = b;
  }
}

function frame(opcode: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const h = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = new Uint8Array(h + n);
  out[0] = 0x80 | opcode;
  if (h === 2) out[1] = n;
  else if (h === 4) {
    out[1] = 126;
    out[2] = n >> 8;
    out[3] = n & 0xff;
  } else {
    out[1] = 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(n));
  }
  out.set(payload, h);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
