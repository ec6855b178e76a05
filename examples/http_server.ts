/**
 * A small HTTP/1.1 server running on a session's stack, enough for `curl`:
 * one request per connection, `Content-Length` bodies, fetch-style handlers.
 *
 * @module
 */

import { type CoreAccess, TcpServer, type TcpSocket } from "../src/socket/mod.ts";

/** Handles one request; the body has been read completely. */
export type HttpHandler = (request: Request) => Response | Promise<Response>;

const MAX_HEAD = 16 * 1024;
const MAX_BODY = 1024 * 1024;

/**
 * Serves HTTP/1.1 on `port` of the stack until `signal` aborts.
 *
 * @example
 * ```ts
 * serveHttp(session, 8080, () => new Response("hello from netisle\n"));
 * ```
 */
export function serveHttp(
  core: CoreAccess,
  port: number,
  handler: HttpHandler,
  signal?: AbortSignal,
): TcpServer {
  const server = TcpServer.listen(core, { port, backlog: 256 });
  server.serve((sock) => handle(sock, handler), signal);
  return server;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function indexOfHeadEnd(buf: Uint8Array): number {
  for (let i = 3; i < buf.length; i++) {
    if (buf[i - 3] === 13 && buf[i - 2] === 10 && buf[i - 1] === 13 && buf[i] === 10) return i + 1;
  }
  return -1;
}

async function handle(sock: TcpSocket, handler: HttpHandler): Promise<void> {
  const enc = new TextEncoder();
  try {
    let buf: Uint8Array = new Uint8Array(0);
    let headEnd = -1;
    while ((headEnd = indexOfHeadEnd(buf)) < 0) {
      if (buf.length > MAX_HEAD) throw new Error("request head too large");
      const chunk = await sock.receive(MAX_HEAD);
      if (chunk === null) throw new Error("connection closed before the request head");
      buf = concat(buf, chunk);
    }
    const head = new TextDecoder().decode(buf.subarray(0, headEnd));
    const [requestLine, ...headerLines] = head.trimEnd().split("\r\n");
    const [method, target] = requestLine.split(" ");
    const headers = new Headers();
    for (const line of headerLines) {
      const i = line.indexOf(":");
      if (i > 0) headers.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
    }
    const length = Number(headers.get("content-length") ?? "0");
    if (!Number.isInteger(length) || length < 0 || length > MAX_BODY) {
      throw new Error("bad content-length");
    }
    let body = buf.subarray(headEnd);
    while (body.length < length) {
      const chunk = await sock.receive(MAX_BODY);
      if (chunk === null) break;
      body = concat(body, chunk);
    }
    const url = new URL(target ?? "/", `http://${headers.get("host") ?? "netisle"}`);
    const hasBody = method !== "GET" && method !== "HEAD";
    const request = new Request(url, {
      method,
      headers,
      body: hasBody ? body.slice(0, length) : undefined,
    });
    const response = await handler(request);
    const payload = new Uint8Array(await response.arrayBuffer());
    let out = `HTTP/1.1 ${response.status} ${response.statusText || "OK"}\r\n`;
    response.headers.forEach((v, k) => out += `${k}: ${v}\r\n`);
    out += `content-length: ${payload.length}\r\nconnection: close\r\n\r\n`;
    await sock.write(enc.encode(out));
    if (method !== "HEAD") await sock.write(payload);
    sock.shutdown("write");
    // Drain until the client closes, so the close is clean (no RST for unread data).
    const linger = AbortSignal.timeout(5000);
    while ((await sock.receive(MAX_HEAD, linger)) !== null) { /* discard */ }
    sock.close();
  } catch {
    sock.abort();
  }
}
