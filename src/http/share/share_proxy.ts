/**
 * Proxies one request of a share link to its target inside the session, over
 * HTTP/1.1 on a new TCP connection from the session's stack (`Connection:
 * close`), streaming both bodies with backpressure:
 *
 * - the request body is read from the client only as fast as the target's
 *   TCP window takes it (what waits is held and charged to the session's
 *   memory quota); without a length it goes chunked;
 * - the response body is read from TCP only when the runtime pulls the next
 *   chunk (so a client that stops reading closes the TCP window), each chunk
 *   charged to the quota until the runtime asks for the next; a body that
 *   ends early errors the stream (never a clean end of a truncated body);
 * - `X-Forwarded-For` (when the runtime tells the client's address),
 *   `-Host`, `-Proto` and, for path-based links, `-Prefix` are added; the
 *   hop-by-hop fields are dropped both ways (RFC 9110 §7.6.1);
 * - a WebSocket upgrade is relayed (share_ws_relay.ts) once the target
 *   answers 101; any other answer goes back as it is.
 *
 * @module
 */

import { NetError } from "../../errors/net_error.ts";
import { sleepOn } from "../../socket/poll_deadline.ts";
import { bufferCost } from "../../stack/session_quota.ts";
import type { WebSocketUpgrader } from "../app_env.ts";
import { HttpProblem } from "../problem.ts";
import {
  ChunkedDecoder,
  encodeChunk,
  encodeRequestHead,
  forwardableHeaders,
  HOP_BY_HOP_HEADERS,
  responseBodyFraming,
  type ResponseHead,
  ResponseHeadParser,
} from "./http1_codec.ts";
import type { Share } from "./share_registry.ts";
import { openUpstream, type Upstream } from "./share_upstream.ts";
import { relayWebSocket } from "./share_ws_relay.ts";
import { websocketAccept } from "../websocket_handshake.ts";

/** Limits of the proxy. */
export interface ShareProxyOptions {
  /** How long the TCP connect to the target may take (504 beyond). Default 10 s. */
  connectTimeoutMs?: number;
  /** How long the target may take to send its response head (504 beyond). Default 60 s. */
  headTimeoutMs?: number;
  /** Longest response head accepted (502 beyond). Default 64 KiB. */
  maxHeadBytes?: number;
  /** Requests in flight per share (429 EMFILE beyond). Default 64. */
  maxConnectionsPerShare?: number;
  /** Largest WebSocket message relayed either way (1009 beyond). Default 1 MiB. */
  maxWebSocketMessageBytes?: number;
}

/** One request to proxy. */
export interface ProxyCall {
  /** The share. */
  share: Share;
  /** The client's request. */
  request: Request;
  /** The path and query to ask the target for (a path-based link's prefix stripped). */
  target: string;
  /** What the `X-Forwarded-*` fields say. */
  forwarded: { for?: string; host: string; proto: string; prefix?: string };
  /** The runtime's WebSocket upgrade (upgrades answer 501 without it). */
  upgradeWebSocket?: WebSocketUpgrader;
  /** Limits. */
  options?: ShareProxyOptions;
}

const READ_BYTES = 64 * 1024;
const QUOTA_RETRY_MS = 10;

/**
 * Proxies `call.request` to the share's target and answers with its response.
 *
 * @example
 * ```ts
 * return await proxyShare({ share, request: c.req.raw, target: "/", forwarded: { host, proto: "https" } });
 * ```
 */
export async function proxyShare(call: ProxyCall): Promise<Response> {
  const { share, request } = call;
  const o = call.options ?? {};
  if (share.active.size >= (o.maxConnectionsPerShare ?? 64)) {
    throw new HttpProblem("EMFILE", "this share link has its maximum of requests in flight");
  }
  const upgrade = request.headers.get("upgrade")?.toLowerCase() === "websocket";
  if (upgrade && !call.upgradeWebSocket) {
    throw new HttpProblem("ENOTSUP", "this server was started without WebSocket support");
  }
  const ac = new AbortController();
  share.active.add(ac);
  share.requests++;
  // The share expiring cuts this connection too.
  const expiry = share.clock.setTimer(share.deadline, () => ac.abort(new Error("expired")));
  const signal = AbortSignal.any([ac.signal, request.signal]);
  let up: Upstream | undefined;
  let handedOver = false;
  const done = (abort: boolean) => {
    share.clock.clearTimer(expiry);
    share.active.delete(ac);
    up?.close(abort);
  };
  try {
    up = await openUpstream(share, o.connectTimeoutMs ?? 10_000, signal, () => ac.abort());
    const key = upgrade ? randomKey() : undefined;
    const body = !upgrade && request.body !== null && request.method !== "GET" &&
      request.method !== "HEAD";
    const headers = requestHeaders(call, key, body);
    await up.write(encodeRequestHead(request.method, call.target, headers), signal);
    if (body) void sendBody(up, request, headers, signal).catch(() => ac.abort());
    const { head, rest } = await readHead(up, o, signal);
    if (upgrade && head.status === 101) {
      const accept = head.headers.find(([k]) => k === "sec-websocket-accept")?.[1];
      if (accept !== await websocketAccept(key!)) {
        throw new HttpProblem("ECONNREFUSED", "the target's WebSocket handshake was wrong");
      }
      const protocol = head.headers.find(([k]) => k === "sec-websocket-protocol")?.[1];
      const { socket, response } = call.upgradeWebSocket!(request, { protocol });
      handedOver = true;
      relayWebSocket({
        share,
        upstream: up,
        client: socket,
        rest,
        abort: ac,
        maxMessageBytes: o.maxWebSocketMessageBytes ?? 1024 * 1024,
        done,
      });
      return response;
    }
    const framing = responseBodyFraming(request.method, head);
    if ("error" in framing) throw new HttpProblem("ECONNREFUSED", `the target: ${framing.error}`);
    const out = new Headers();
    const named = new Set(
      head.headers.filter(([k]) => k === "connection")
        .flatMap(([, v]) => v.split(",").map((x) => x.trim().toLowerCase())),
    );
    for (const [k, v] of head.headers) {
      if (HOP_BY_HOP_HEADERS.has(k) || named.has(k)) continue;
      if (k === "content-length" && framing.kind !== "length" && framing.kind !== "none") continue;
      out.append(k, v);
    }
    if (framing.kind === "none") {
      handedOver = true;
      done(false);
      return new Response(null, { status: head.status, statusText: head.statusText, headers: out });
    }
    handedOver = true;
    const stream = responseBody(share, up, framing, rest, signal, done);
    return new Response(stream, { status: head.status, statusText: head.statusText, headers: out });
  } catch (err) {
    if (err instanceof NetError && err.code === "ECANCELED") {
      throw new HttpProblem("ECANCELED", "the client went away");
    }
    if (signal.aborted && !(err instanceof HttpProblem)) {
      throw new HttpProblem("ECONNRESET", "the share link ended or the target's socket closed");
    }
    throw err;
  } finally {
    if (!handedOver) done(true);
  }
}

function requestHeaders(
  call: ProxyCall,
  key: string | undefined,
  body: boolean,
): Array<[string, string]> {
  const req = call.request;
  const out = forwardableHeaders(req.headers).filter(([k]) =>
    !k.startsWith("sec-websocket-") && k !== "x-forwarded-host" && k !== "x-forwarded-proto" &&
    k !== "x-forwarded-prefix" && k !== "x-forwarded-for"
  );
  if (!req.headers.has("host")) out.unshift(["host", call.forwarded.host]);
  const f = call.forwarded;
  const prior = req.headers.get("x-forwarded-for");
  if (f.for) out.push(["x-forwarded-for", prior ? `${prior}, ${f.for}` : f.for]);
  else if (prior) out.push(["x-forwarded-for", prior]);
  out.push(["x-forwarded-host", f.host], ["x-forwarded-proto", f.proto]);
  if (f.prefix) out.push(["x-forwarded-prefix", f.prefix]);
  if (key) {
    out.push(["connection", "Upgrade"], ["upgrade", "websocket"]);
    out.push(["sec-websocket-key", key], ["sec-websocket-version", "13"]);
    const proto = req.headers.get("sec-websocket-protocol");
    if (proto) out.push(["sec-websocket-protocol", proto]);
  } else {
    out.push(["connection", "close"]);
    if (body && !req.headers.has("content-length")) out.push(["transfer-encoding", "chunked"]);
  }
  return out;
}

async function sendBody(
  up: Upstream,
  request: Request,
  headers: Array<[string, string]>,
  signal: AbortSignal,
): Promise<void> {
  const chunked = headers.some(([k, v]) => k === "transfer-encoding" && v === "chunked");
  const reader = request.body!.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (value.length === 0) continue;
      await up.write(chunked ? encodeChunk(value) : value, signal);
    }
    if (chunked) await up.write(encodeChunk(new Uint8Array(0)), signal);
  } finally {
    reader.releaseLock();
  }
}

async function readHead(
  up: Upstream,
  o: ShareProxyOptions,
  signal: AbortSignal,
): Promise<{ head: ResponseHead; rest: Uint8Array }> {
  const parser = new ResponseHeadParser(o.maxHeadBytes ?? 64 * 1024);
  const clock = up.clock;
  const timeout = new AbortController();
  const t = clock.setTimer(clock.now() + (o.headTimeoutMs ?? 60_000), () => timeout.abort());
  const both = AbortSignal.any([signal, timeout.signal]);
  try {
    for (;;) {
      const c = up.sock.read(READ_BYTES);
      if (c === null) {
        throw new HttpProblem("ECONNRESET", "the target closed the connection before answering");
      }
      if (c === undefined) {
        try {
          await up.sock.waitReadable(both);
        } catch (err) {
          if (timeout.signal.aborted) {
            throw new HttpProblem("ETIMEDOUT", "the target did not answer in time");
          }
          throw err;
        }
        continue;
      }
      const r = parser.push(c);
      if (r === undefined) continue;
      if ("error" in r) throw new HttpProblem("ECONNREFUSED", `the target's answer: ${r.error}`);
      return r;
    }
  } finally {
    clock.clearTimer(t);
  }
}

function responseBody(
  share: Share,
  up: Upstream,
  framing: { kind: "length"; length: number } | { kind: "chunked" } | { kind: "close" },
  rest: Uint8Array,
  signal: AbortSignal,
  done: (abort: boolean) => void,
): ReadableStream<Uint8Array> {
  const quota = share.session.stack.quota.memory;
  let charged = 0;
  let left = framing.kind === "length" ? framing.length : Infinity;
  const chunked = framing.kind === "chunked" ? new ChunkedDecoder() : undefined;
  let pending: Uint8Array | undefined = rest.length > 0 ? rest.slice() : undefined;
  let finished = false;
  const finish = (abort: boolean) => {
    if (finished) return;
    finished = true;
    quota.release(charged);
    charged = 0;
    done(abort);
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      // What the runtime pulled before is consumed: its charge goes back.
      quota.release(charged);
      charged = 0;
      try {
        for (;;) {
          if (left === 0 || chunked?.done) {
            controller.close();
            finish(false);
            return;
          }
          const cost = bufferCost(READ_BYTES);
          while (!quota.tryCharge(cost)) await sleepOn(up.clock, QUOTA_RETRY_MS, signal);
          charged = cost;
          let c: Uint8Array | null | undefined = pending;
          pending = undefined;
          if (c === undefined) c = up.sock.read(READ_BYTES);
          if (c === undefined) {
            quota.release(cost);
            charged = 0;
            await up.sock.waitReadable(signal);
            continue;
          }
          if (c === null) {
            quota.release(cost);
            charged = 0;
            if (framing.kind === "close") {
              controller.close();
              finish(false);
            } else {
              controller.error(new Error("the target closed the connection before the body ended"));
              finish(true);
            }
            return;
          }
          let parts: Uint8Array[];
          if (chunked) {
            const r = chunked.push(c);
            if ("error" in r) throw new Error(`the target's chunked body: ${r.error}`);
            parts = r.data;
          } else {
            parts = [c.length > left ? c.subarray(0, left) : c];
            left -= parts[0].length;
          }
          let n = 0;
          for (const p of parts) n += p.length;
          // Charged now: what the runtime holds until it pulls again.
          quota.release(cost);
          charged = bufferCost(n);
          quota.forceCharge(charged);
          if (n === 0) continue;
          for (const p of parts) if (p.length > 0) controller.enqueue(p);
          return;
        }
      } catch (err) {
        controller.error(err);
        finish(true);
      }
    },
    cancel() {
      finish(true);
    },
  }, { highWaterMark: 0 });
}

function randomKey(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return btoa(String.fromCharCode(...b));
}
