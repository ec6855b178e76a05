/**
 * One HTTP/1.1 connection of the engine (`http1_engine.ts`): reads request
 * heads, hands each request to the app as a web-standard `Request`, writes
 * the `Response`, keeps the connection alive or closes it, and hands an
 * upgraded connection to the WebSocket engine.
 *
 * - **Reading.** One buffer per connection, 1 KiB at rest, grown (×4, up to
 *   the head limit for heads and 64 KiB for bodies) only while reads fill it,
 *   and given up for a fresh 1 KiB one when the connection goes idle. At most
 *   one read is in flight. While the app handles a request whose body is in,
 *   a read stays pending so that a client that goes away aborts
 *   `request.signal` at once (and bytes of a pipelined next request wait in
 *   the buffer, in order).
 * - **Request bodies** are a `ReadableStream` that reads from the connection
 *   only when the app pulls (high-water mark 0): a body refused by the body
 *   budget or a quota check is never read. Chunks are copies of their size.
 *   `Expect: 100-continue` is answered at the first pull (RFC 9110 §10.1.1).
 *   Content-Length and chunked framing (`http1_chunked_decoder.ts`); a
 *   framing error answers 400 in place of the app's response.
 * - **Responses.** A body that is all there at once (Hono's `c.json`,
 *   `c.text`) is written with its `Content-Length` in the same write as the
 *   head, built in a pooled buffer; any other body is streamed with
 *   backpressure (each chunk written before the next is read): `chunked`,
 *   the app's `Content-Length` when it set one, or until the close for
 *   HTTP/1.0. HEAD, 204, 304 and 1xx carry no body (RFC 9112 §6.3).
 * - **Persistence** (RFC 9112 §9.3): HTTP/1.1 unless `Connection: close`;
 *   HTTP/1.0 only with `Connection: keep-alive`. A response with
 *   `Connection: close` (the app's 408, 413, 429), a request body the app
 *   left unread (unless its rest is already buffered), a closing client or
 *   a shutting-down server close after the response, with a linger: FIN,
 *   then up to {@linkcode LINGER_BYTES} of what the client still sends are
 *   read and dropped for at most {@linkcode LINGER_MS}, so that it reads its
 *   answer instead of a reset.
 * - **Timeouts** (`connection_timeouts.ts`): the head within
 *   `headersTimeoutMs` of the connection or of its first byte (an unfinished
 *   head gets 408), an idle keep-alive connection closes after
 *   `keepAliveTimeoutMs`, a request body must be in within
 *   `requestTimeoutMs` of its head (408 otherwise).
 *
 * Runtime-neutral: the transport is a {@linkcode Http1Transport}
 * (`Deno.Conn` fits).
 *
 * @module
 */

import type { PeerHandler } from "./serve_guard.ts";
import type { ByteConn, ServerWebSocket } from "./websocket_conn.ts";
import { websocketAccept } from "./websocket_handshake.ts";
import { problemResponse } from "./problem.ts";
import {
  HEAD_REFUSED,
  type HeadLimits,
  type RequestHead,
  RequestHeadParser,
} from "./http1_head_parser.ts";
import { ChunkedDecoder } from "./http1_chunked_decoder.ts";
import { type ConnectionTimeouts, TimeoutEntry } from "./connection_timeouts.ts";
import { headersOf, incomingAbort, incomingBodyUsed, IncomingRequest } from "./incoming_request.ts";
import type { BufferPool } from "./buffer_pool.ts";
import { refusalResponse, statusLine, writeLatin1 } from "./http1_response_head.ts";

/** A byte stream the engine serves: a `ByteConn` that may also half-close. */
export interface Http1Transport extends ByteConn {
  /** Sends FIN (no more writes); reading goes on. Optional: without it, linger reads only. */
  closeWrite?(): Promise<void>;
}

/** Timeout kinds of {@linkcode ConnectionTimeouts} (their order in the engine's durations). */
export const TIMEOUT_HEAD = 0;
/** An idle keep-alive connection. */
export const TIMEOUT_IDLE = 1;
/** A request body that has not arrived. */
export const TIMEOUT_BODY = 2;
/** A closing connection's linger. */
export const TIMEOUT_LINGER = 3;

/** How long a closing connection waits for its client before it is closed anyway (ms). */
export const LINGER_MS = 2000;
/**
 * How much of an unwanted request body a closing connection reads and drops
 * at most: the largest body a route takes (a 1 MiB send) and its head, so
 * that a client refused mid-upload (408, 413, 429) reads its answer instead
 * of a reset.
 */
export const LINGER_BYTES = 1024 * 1024 + 64 * 1024;
/** The read buffer of a connection at rest. */
export const IDLE_BUFFER_BYTES = 1024;
/** The read buffer at most while a body streams in. */
const BODY_BUFFER_BYTES = 64 * 1024;
/** Microtasks a handler may take before it counts as slow (waiting for I/O or time). */
const SLOW_TURNS = 64;
/** The read buffer at most while lingering. */
const LINGER_BUFFER_BYTES = 16 * 1024;

/** What a request that may be upgraded carries until its handler returns. */
export interface PendingUpgrade {
  /** The socket the route's upgrade made. */
  ws?: ServerWebSocket;
  /** The response the upgrade returned; answered with 101 when the handler returns it. */
  placeholder?: Response;
}

/** What a connection needs from its engine. */
export interface Http1Context {
  /** The app behind the adapter's guard. */
  readonly handler: PeerHandler;
  /** Requests are {@linkcode IncomingRequest}s (else real `Request`s with a signal each). */
  readonly lazyRequests: boolean;
  /** The connections' deadlines. */
  readonly timeouts: ConnectionTimeouts;
  /** Buffers for writes. */
  readonly pool: BufferPool;
  /** Bounds of request heads. */
  readonly headLimits: Readonly<HeadLimits>;
  /** The `Date` field value of now. */
  date(): string;
  /** True once the server is shutting down: no more keep-alive. */
  readonly stopping: boolean;
  /** Requests that may be upgraded, and what their upgrade made. */
  readonly upgrades: WeakMap<Request, PendingUpgrade>;
  /** Open WebSockets. */
  readonly websockets: Set<ServerWebSocket>;
  /** Called once when a connection is gone (its transport closed). */
  ended(conn: Http1Connection): void;
  /** A rate-limited log line. */
  log(key: string, message: string): void;
}

const RUNNING = 0;
const LINGERING = 1;
const CLOSED = 2;
const UPGRADED = 3;

const EMPTY = new Uint8Array(0);
const CONTINUE_100 = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");
const LAST_CHUNK = new TextEncoder().encode("0\r\n\r\n");
const CRLF = "\r\n";

type ReadResult = ReadableStreamReadResult<Uint8Array>;

/**
 * Serves one connection until it closes or is upgraded.
 *
 * @example
 * ```ts
 * const c = new Http1Connection(context, conn, "192.0.2.7", () => ticket());
 * void c.run();
 * ```
 */
export class Http1Connection {
  /** The client's address. */
  readonly peer: string;
  #ctx: Http1Context;
  #conn: Http1Transport;
  #onClose: (() => void) | undefined;
  #buf: Uint8Array = new Uint8Array(IDLE_BUFFER_BYTES);
  #start = 0;
  #end = 0;
  /** The last read filled all the room it had: grow before the next. */
  #filled = false;
  #reading: Promise<void> | undefined;
  /** The buffer the read in flight reads into, and where. */
  #readBuf: Uint8Array = EMPTY;
  #readAt = 0;
  #eof = false;
  #state = RUNNING;
  #ended = false;
  #parser: RequestHeadParser;
  #timeout: TimeoutEntry;
  // The request in progress.
  #req: Request | undefined;
  #ac: AbortController | undefined;
  #bodyOpen = false;
  #bodyLeft = 0;
  #chunked: ChunkedDecoder | undefined;
  #bodyController: ReadableStreamDefaultController<Uint8Array> | undefined;
  #bodyError: string | undefined;
  #expectContinue = false;
  #mayUpgrade = false;
  /** The handler did not answer within {@linkcode SLOW_TURNS} microtasks. */
  #slow = false;
  #responseStarted = false;
  #sideWrite: Promise<void> | undefined;
  #probe = new ReadProbe();

  /** A connection on `conn` from `peer`; `onClose` runs once when it is gone. */
  constructor(ctx: Http1Context, conn: Http1Transport, peer: string, onClose?: () => void) {
    this.#ctx = ctx;
    this.#conn = conn;
    this.peer = peer;
    this.#onClose = onClose;
    this.#parser = new RequestHeadParser(ctx.headLimits);
    this.#timeout = new TimeoutEntry((kind) => this.#onTimeout(kind));
  }

  /** Bytes of read buffer this connection holds now. */
  get bufferBytes(): number {
    return this.#buf.length;
  }

  /** Serves requests until the connection closes or is upgraded. */
  async run(): Promise<void> {
    const ctx = this.#ctx;
    const timeouts = ctx.timeouts;
    const parser = this.#parser;
    const maxHead = ctx.headLimits.maxHeadBytes;
    timeouts.arm(this.#timeout, TIMEOUT_HEAD);
    let fresh = true;
    try {
      while (this.#state === RUNNING) {
        // The next head: from the buffer (pipelined) or from reads.
        parser.reset();
        if (!fresh) {
          if (this.#start < this.#end) timeouts.arm(this.#timeout, TIMEOUT_HEAD);
          else {
            timeouts.arm(this.#timeout, TIMEOUT_IDLE);
            this.#shrink();
          }
        }
        fresh = false;
        let n = this.#start < this.#end ? parser.feed(this.#buf, this.#start, this.#end) : 0;
        while (n === 0) {
          if (this.#eof) return;
          const had = this.#end - this.#start;
          if (this.#reading === undefined) this.#makeRoom(maxHead);
          await this.#fill();
          if (this.#state !== RUNNING) return;
          if (had === 0 && this.#end > this.#start && this.#timeout.kind === TIMEOUT_IDLE) {
            // The first byte of the next request: its head has headersTimeoutMs from now.
            timeouts.arm(this.#timeout, TIMEOUT_HEAD);
          }
          if (this.#start < this.#end) n = parser.feed(this.#buf, this.#start, this.#end);
        }
        if (n === HEAD_REFUSED) {
          await this.#refuse(parser.refusal!.status, parser.refusal!.reason);
          return;
        }
        if (!(await this.#serve(n))) return;
      }
    } catch (err) {
      ctx.log("connection", `a connection failed: ${(err as Error)?.message ?? err}`);
    } finally {
      if (this.#state === RUNNING) this.#destroy();
    }
  }

  /** Closes the connection at once (server shutdown). */
  terminate(): void {
    if (this.#state !== UPGRADED) this.#destroy();
  }

  /** Serves the request whose head is buffered; true to go on with the next. */
  async #serve(headBytes: number): Promise<boolean> {
    const ctx = this.#ctx;
    const parsed = this.#parser.parse(this.#buf, this.#start);
    this.#start += headBytes;
    if (!("method" in parsed)) {
      await this.#refuse(parsed.status, parsed.reason);
      return false;
    }
    const head = parsed;
    const method = head.method;
    const hasBody = head.chunked || head.contentLength > 0;
    this.#bodyOpen = hasBody;
    this.#bodyLeft = head.chunked ? -1 : hasBody ? head.contentLength : 0;
    this.#chunked = head.chunked ? new ChunkedDecoder() : undefined;
    this.#bodyError = undefined;
    this.#bodyController = undefined;
    this.#expectContinue = head.expectContinue && hasBody;
    this.#mayUpgrade = head.upgrade;
    this.#responseStarted = false;
    if (hasBody) ctx.timeouts.arm(this.#timeout, TIMEOUT_BODY);
    else ctx.timeouts.disarm(this.#timeout);
    if (head.asterisk) {
      // OPTIONS * (RFC 9112 §3.2.4): about the server, not a resource.
      return await this.#finish(
        `${statusLine(204)}allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n` +
          `date: ${ctx.date()}\r\n`,
        !head.keepAlive,
        head,
        undefined,
      );
    }
    if (method === "TRACE" || method === "TRACK") {
      await this.#refuse(501, `method ${method} is not supported`);
      return false;
    }
    // GET and HEAD cannot carry a body in a Request: one sent anyway is dropped after.
    const takesBody = hasBody && method !== "GET" && method !== "HEAD";
    let req: Request;
    try {
      req = this.#request(head, takesBody ? this.#bodyStream() : null);
    } catch (err) {
      await this.#refuse(400, `the request cannot be represented: ${(err as Error).message}`);
      return false;
    }
    this.#slow = false;
    let upgrade: PendingUpgrade | undefined;
    if (head.upgrade) {
      upgrade = {};
      ctx.upgrades.set(req, upgrade);
    }
    let res: Response;
    try {
      const answer = ctx.handler(req, this.peer);
      if (answer instanceof Promise) {
        // A handler that answers within a few microtasks needs no read watching for the
        // client's leaving (the read for the next request starts after the response); one
        // that waits for I/O or time (a long-poll, a body still arriving) gets it.
        let settled = false;
        answer.then(() => settled = true, () => settled = true);
        for (let i = 0; i < SLOW_TURNS && !settled; i++) await null;
        if (!settled) {
          this.#slow = true;
          if (!this.#bodyOpen && !head.upgrade) this.#watch();
        }
      }
      res = await answer;
    } catch (err) {
      console.error("netisle: unhandled error in a request:", err);
      res = problemResponse("EINTERNAL", "internal error; see the server log");
    }
    if (this.#state !== RUNNING) {
      // Timed out or closed meanwhile: the answer was given (408) or nobody is left.
      upgrade?.ws?.terminate();
      cancelBody(res);
      return false;
    }
    if (upgrade?.ws !== undefined) {
      if (res === upgrade.placeholder) return await this.#upgrade(req, upgrade.ws);
      upgrade.ws.terminate();
    }
    if (this.#bodyError !== undefined) {
      cancelBody(res);
      await this.#refuse(400, this.#bodyError);
      return false;
    }
    return await this.#respond(head, res);
  }

  /** The app's `Request` (see `incoming_request.ts`); throws what `new Request` throws. */
  #request(head: RequestHead, body: ReadableStream<Uint8Array> | null): Request {
    let req: Request;
    if (this.#ctx.lazyRequests) {
      // The header fields passed the parser's checks; Headers checks them again when made.
      req = new IncomingRequest(head.method, head.url, head.fields, body) as unknown as Request;
      if (this.#eof) incomingAbort(req);
    } else {
      const ac = new AbortController();
      this.#ac = ac;
      req = new Request(
        head.url,
        body !== null
          ? {
            method: head.method,
            headers: headersOf(head.fields),
            signal: ac.signal,
            body,
            duplex: "half",
          } as RequestInit
          : { method: head.method, headers: headersOf(head.fields), signal: ac.signal },
      );
    }
    this.#req = req;
    return req;
  }

  /** The client went away, or the answer was given: the request's signal aborts. */
  #abortRequest(): void {
    const req = this.#req;
    const ac = this.#ac;
    this.#req = undefined;
    this.#ac = undefined;
    if (req !== undefined) incomingAbort(req);
    ac?.abort();
  }

  // ------------------------------------------------------------------ request bodies

  #bodyStream(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#bodyController = controller;
      },
      pull: (controller) => this.#pull(controller),
    }, { highWaterMark: 0 });
  }

  /** Delivers the next piece of the request body (reads only now, as the app asks). */
  async #pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    if (this.#req !== undefined) incomingBodyUsed(this.#req);
    if (this.#expectContinue) {
      this.#expectContinue = false;
      // RFC 9110 §10.1.1: the client waits for this before it sends the body.
      if (this.#start === this.#end && this.#state === RUNNING) {
        this.#sideWrite = this.#writeAll(CONTINUE_100).catch(() => {});
        await this.#sideWrite;
        this.#sideWrite = undefined;
      }
    }
    for (;;) {
      if (controller !== this.#bodyController || !this.#bodyOpen) return;
      if (this.#start < this.#end) {
        const chunk = this.#takeBody();
        if (this.#bodyError !== undefined) {
          controller.error(new TypeError(`malformed request body: ${this.#bodyError}`));
          return;
        }
        if (chunk !== undefined) controller.enqueue(chunk);
        if (!this.#bodyOpen) {
          controller.close();
          // The body is in: under a slow handler a read watches for the client's leaving.
          if (this.#slow && !this.#mayUpgrade) this.#watch();
          return;
        }
        if (chunk !== undefined) return;
      }
      if (this.#eof || this.#state !== RUNNING) {
        controller.error(
          new TypeError("the connection closed before the request body ended"),
        );
        return;
      }
      if (this.#reading === undefined) this.#makeRoom(BODY_BUFFER_BYTES);
      await this.#fill();
    }
  }

  /** Takes buffered body bytes (a copy), updating the framing; undefined when none were data. */
  #takeBody(): Uint8Array | undefined {
    const buf = this.#buf;
    const d = this.#chunked;
    if (d !== undefined) {
      while (this.#start < this.#end) {
        this.#start += d.decode(buf, this.#start, this.#end);
        if (d.error !== undefined) {
          this.#bodyError = d.error;
          this.#bodyOpen = false;
          return undefined;
        }
        if (d.done) this.#bodyDone();
        if (d.dataEnd > d.dataStart) return buf.slice(d.dataStart, d.dataEnd);
        if (d.done) return undefined;
      }
      return undefined;
    }
    const take = Math.min(this.#bodyLeft, this.#end - this.#start);
    const chunk = buf.slice(this.#start, this.#start + take);
    this.#start += take;
    this.#bodyLeft -= take;
    if (this.#bodyLeft === 0) this.#bodyDone();
    return chunk;
  }

  #bodyDone(): void {
    this.#bodyOpen = false;
    if (this.#timeout.kind === TIMEOUT_BODY) this.#ctx.timeouts.disarm(this.#timeout);
  }

  /** Drops the rest of a request body the app did not read when it is all buffered. */
  #skipBody(): boolean {
    if (this.#reading !== undefined) return false;
    const d = this.#chunked;
    if (d !== undefined) {
      while (!d.done && d.error === undefined && this.#start < this.#end) {
        this.#start += d.decode(this.#buf, this.#start, this.#end);
      }
      if (!d.done) return false;
    } else {
      if (this.#end - this.#start < this.#bodyLeft) return false;
      this.#start += this.#bodyLeft;
      this.#bodyLeft = 0;
    }
    this.#bodyDone();
    const c = this.#bodyController;
    this.#bodyController = undefined;
    try {
      c?.error(new TypeError("the request body was dropped: the response was sent first"));
    } catch {
      // Closed already.
    }
    return true;
  }

  // ------------------------------------------------------------------ responses

  /** Writes the app's response; true to keep the connection. */
  async #respond(head: RequestHead, res: Response): Promise<boolean> {
    const status = res.status;
    let close = !head.keepAlive || head.upgrade || this.#eof || this.#ctx.stopping;
    let length = -1;
    let date = true;
    let text = statusLine(status);
    res.headers.forEach((value, name) => {
      switch (name) {
        case "connection":
          if (/(^|,)[ \t]*close[ \t]*(,|$)/i.test(value)) close = true;
          return;
        case "content-length":
          length = /^[0-9]{1,15}$/.test(value) ? Number(value) : -1;
          return;
        case "transfer-encoding":
        case "keep-alive":
          return;
        case "date":
          date = false;
      }
      text += name + ": " + value + CRLF;
    });
    if (date) text += "date: " + this.#ctx.date() + CRLF;
    // The rest of a body the app did not read: dropped if it is all here, else the connection goes.
    if (this.#bodyOpen && (close || !this.#skipBody())) close = true;
    const method = head.method;
    if (method === "HEAD" || status === 204 || status === 304 || status < 200) {
      if (length >= 0 && status !== 204 && status >= 200) {
        text += "content-length: " + length + CRLF;
      }
      cancelBody(res);
      return await this.#finish(text, close, head, undefined);
    }
    const body = res.body;
    if (body === null) return await this.#finish(text, close, head, EMPTY);
    // A body that is all there at once (a Response made from a string or bytes) goes out
    // with its length; any other is streamed, its head written now.
    const reader = body.getReader();
    const probe = this.#probe;
    const first = await probe.now(reader.read());
    if (first === undefined) {
      return await this.#stream(text, close, head, reader, length, undefined, probe.pending);
    }
    if (first.done) return await this.#finish(text, close, head, EMPTY);
    const chunk = first.value;
    const second = await probe.now(reader.read());
    if (second?.done) return await this.#finish(text, close, head, chunk);
    return await this.#stream(text, close, head, reader, length, chunk, probe.pending);
  }

  /**
   * Writes a head and the whole body (with its Content-Length; undefined: no
   * body and no length), in one write when they fit a pooled buffer; then
   * keep-alive or close.
   */
  async #finish(
    text: string,
    close: boolean,
    head: RequestHead,
    body: Uint8Array | undefined,
  ): Promise<boolean> {
    this.#responseStarted = true;
    if (body !== undefined) text += "content-length: " + body.length + CRLF;
    text += close
      ? "connection: close\r\n\r\n"
      : head.minor === 0
      ? "connection: keep-alive\r\n\r\n"
      : CRLF;
    const pool = this.#ctx.pool;
    const out = pool.take();
    try {
      const n = writeLatin1(text, out, 0);
      if (n >= 0 && (body === undefined || n + body.length <= out.length)) {
        if (body !== undefined) out.set(body, n);
        const bytes = out.subarray(0, body === undefined ? n : n + body.length);
        if (this.#sideWrite !== undefined) await this.#sideWrite;
        const wrote = await this.#conn.write(bytes);
        if (wrote < bytes.length) await this.#writeAll(bytes.subarray(wrote));
      } else {
        await this.#writeAll(n >= 0 ? out.subarray(0, n) : latin1Bytes(text));
        if (body !== undefined && body.length > 0) await this.#writeAll(body);
      }
    } catch {
      pool.give(out);
      this.#destroy();
      return false;
    }
    pool.give(out);
    return this.#afterResponse(close);
  }

  /** Streams a body that is not all there, with backpressure. */
  async #stream(
    text: string,
    close: boolean,
    head: RequestHead,
    reader: ReadableStreamDefaultReader<Uint8Array>,
    length: number,
    first: Uint8Array | undefined,
    next: Promise<ReadResult>,
  ): Promise<boolean> {
    this.#responseStarted = true;
    // The app's Content-Length, else chunked; HTTP/1.0 has no chunked: until the close.
    const mode = length >= 0 ? "length" : head.minor === 1 ? "chunked" : "close";
    if (mode === "length") text += "content-length: " + length + CRLF;
    else if (mode === "chunked") text += "transfer-encoding: chunked\r\n";
    else close = true;
    text += close
      ? "connection: close\r\n\r\n"
      : head.minor === 0
      ? "connection: keep-alive\r\n\r\n"
      : CRLF;
    let sent = 0;
    const send = async (chunk: Uint8Array): Promise<void> => {
      if (chunk.length === 0) return;
      if (mode === "length") {
        const room = length - sent;
        if (chunk.length > room) {
          close = true;
          chunk = chunk.subarray(0, room);
        }
        sent += chunk.length;
        if (chunk.length > 0) await this.#writeAll(chunk);
      } else if (mode === "chunked") {
        await this.#writeAll(chunkFrame(chunk));
      } else {
        await this.#writeAll(chunk);
      }
    };
    try {
      await this.#writeAll(latin1Bytes(text));
      if (first !== undefined) await send(first);
      let pending = next;
      for (;;) {
        const r = await pending;
        if (r.done) break;
        await send(r.value);
        if (this.#state !== RUNNING) throw new Error("the connection closed");
        pending = reader.read();
      }
      if (mode === "chunked") await this.#writeAll(LAST_CHUNK);
      if (mode === "length" && sent !== length) close = true;
    } catch (err) {
      reader.cancel(err).catch(() => {});
      this.#destroy();
      return false;
    }
    return this.#afterResponse(close);
  }

  #afterResponse(close: boolean): boolean {
    this.#req = undefined;
    this.#ac = undefined;
    if (this.#state !== RUNNING) return false;
    if (close || this.#eof) {
      this.#linger();
      return false;
    }
    return true;
  }

  // ------------------------------------------------------------------ upgrades

  async #upgrade(req: Request, ws: ServerWebSocket): Promise<boolean> {
    const ctx = this.#ctx;
    this.#responseStarted = true;
    if (this.#eof) {
      ws.terminate();
      this.#destroy();
      return false;
    }
    const accept = await websocketAccept(req.headers.get("sec-websocket-key") ?? "");
    if (this.#state !== RUNNING) {
      ws.terminate();
      return false;
    }
    if (this.#reading !== undefined) {
      // No read is started for a request that may be upgraded; a body pulled anyway
      // leaves one in flight that the WebSocket cannot take over.
      ws.terminate();
      this.#destroy();
      return false;
    }
    this.#state = UPGRADED;
    ctx.timeouts.disarm(this.#timeout);
    this.#req = undefined;
    this.#ac = undefined;
    let text = "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n" +
      "sec-websocket-accept: " + accept + CRLF;
    if (ws.protocol) text += "sec-websocket-protocol: " + ws.protocol + CRLF;
    // What the client sent after its head belongs to the WebSocket.
    const initial = this.#buf.slice(this.#start, this.#end);
    this.#buf = EMPTY;
    this.#start = this.#end = 0;
    try {
      await this.#writeAll(latin1Bytes(text + CRLF));
    } catch {
      ws.terminate();
      this.#closeTransport();
      return false;
    }
    ctx.websockets.add(ws);
    ws.addEventListener("close", () => ctx.websockets.delete(ws));
    ws.start(this.#conn, initial, () => this.#closeTransport());
    return false;
  }

  // ------------------------------------------------------------------ reading

  /** Waits for the read in flight, or starts one into the buffer's free tail. */
  #fill(): Promise<void> {
    if (this.#reading === undefined) {
      const buf = this.#buf;
      const at = this.#end;
      this.#readBuf = buf;
      this.#readAt = at;
      this.#reading = this.#conn.read(at === 0 ? buf : buf.subarray(at)).then(
        this.#onRead,
        this.#onReadError,
      );
    }
    return this.#reading;
  }

  /** A read completed (one in flight at a time: into `#readBuf` at `#readAt`). */
  readonly #onRead = (n: number | null): void => {
    this.#reading = undefined;
    if (this.#readBuf !== this.#buf) return; // closed meanwhile
    if (n === null) {
      this.#eof = true;
      this.#peerGone();
    } else {
      this.#end = this.#readAt + n;
      this.#filled = this.#end === this.#buf.length;
    }
  };

  readonly #onReadError = (): void => {
    // Reset by the peer, or closed here.
    this.#reading = undefined;
    this.#eof = true;
    this.#peerGone();
  };

  /** A read is kept pending while the app works, so that a client that leaves is noticed. */
  #watch(): void {
    if (this.#reading !== undefined || this.#eof || this.#state !== RUNNING) return;
    this.#makeRoom(this.#ctx.headLimits.maxHeadBytes);
    if (this.#end < this.#buf.length) void this.#fill();
  }

  /** Room for a read (no read in flight): compacts, or grows while reads fill the buffer. */
  #makeRoom(max: number): void {
    const buf = this.#buf;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    const used = this.#end - this.#start;
    if ((this.#filled || used === buf.length) && buf.length < max) {
      const next = new Uint8Array(Math.min(max, buf.length * 4));
      next.set(buf.subarray(this.#start, this.#end));
      this.#buf = next;
      this.#start = 0;
      this.#end = used;
    } else if (this.#end === buf.length && this.#start > 0) {
      buf.copyWithin(0, this.#start, this.#end);
      this.#start = 0;
      this.#end = used;
    }
    this.#filled = false;
  }

  /** A connection at rest gives up a grown buffer. */
  #shrink(): void {
    if (
      this.#buf.length > IDLE_BUFFER_BYTES && this.#reading === undefined &&
      this.#start === this.#end
    ) {
      this.#buf = new Uint8Array(IDLE_BUFFER_BYTES);
      this.#start = this.#end = 0;
    }
  }

  #peerGone(): void {
    this.#abortRequest();
  }

  // ------------------------------------------------------------------ writing

  async #writeAll(p: Uint8Array): Promise<void> {
    if (this.#sideWrite !== undefined && p !== CONTINUE_100) await this.#sideWrite;
    let off = 0;
    while (off < p.length) off += await this.#conn.write(off === 0 ? p : p.subarray(off));
  }

  // ------------------------------------------------------------------ closing

  #onTimeout(kind: number): void {
    if (kind === TIMEOUT_LINGER || this.#state !== RUNNING) {
      this.#destroy();
      return;
    }
    if (kind === TIMEOUT_IDLE || (kind === TIMEOUT_HEAD && this.#start === this.#end)) {
      this.#destroy(); // nothing started: closed without a word
      return;
    }
    if (kind === TIMEOUT_HEAD) {
      void this.#refuse(408, `the request head did not arrive within ${this.#duration(kind)} ms`);
      return;
    }
    // The body did not arrive within requestTimeoutMs.
    this.#bodyError = undefined;
    const c = this.#bodyController;
    this.#bodyController = undefined;
    this.#bodyOpen = false;
    try {
      c?.error(new TypeError("the request body did not arrive in time"));
    } catch {
      // Closed already.
    }
    if (this.#responseStarted) this.#destroy();
    else {
      void this.#refuse(
        408,
        `the request body did not arrive within ${this.#duration(kind)} ms of its head`,
      );
    }
  }

  #duration(kind: number): number {
    return this.#ctx.timeouts.durations[kind];
  }

  /** Answers `status` with a problem body and `Connection: close`, then lingers. */
  async #refuse(status: number, reason: string): Promise<void> {
    if (this.#state !== RUNNING) return;
    this.#state = LINGERING;
    this.#responseStarted = true;
    this.#ctx.timeouts.arm(this.#timeout, TIMEOUT_LINGER);
    this.#abortRequest();
    try {
      await this.#writeAll(refusalResponse(status, reason, this.#ctx.date()));
    } catch {
      this.#destroy();
      return;
    }
    await this.#drain();
  }

  /** Closes after the response: FIN, then read and drop what the client still sends. */
  #linger(): void {
    if (this.#state !== RUNNING) return;
    this.#state = LINGERING;
    this.#ctx.timeouts.arm(this.#timeout, TIMEOUT_LINGER);
    void this.#drain();
  }

  async #drain(): Promise<void> {
    try {
      await this.#conn.closeWrite?.();
    } catch {
      this.#destroy();
      return;
    }
    let dropped = 0;
    while (this.#state === LINGERING && !this.#eof) {
      dropped += this.#end - this.#start;
      this.#start = this.#end;
      // Enough dropped: the linger timer closes the connection; nothing more is read.
      if (dropped >= LINGER_BYTES) return;
      if (this.#reading === undefined) this.#makeRoom(LINGER_BUFFER_BYTES);
      await this.#fill();
    }
    this.#destroy();
  }

  /** Closes the connection now; idempotent. */
  #destroy(): void {
    if (this.#state === CLOSED) return;
    const upgraded = this.#state === UPGRADED;
    this.#state = CLOSED;
    this.#ctx.timeouts.disarm(this.#timeout);
    this.#abortRequest();
    const c = this.#bodyController;
    this.#bodyController = undefined;
    this.#bodyOpen = false;
    try {
      c?.error(new TypeError("the connection closed"));
    } catch {
      // Closed already.
    }
    this.#buf = EMPTY;
    this.#start = this.#end = 0;
    if (!upgraded) this.#closeTransport();
  }

  /** Closes the transport and tells the engine, once. */
  #closeTransport(): void {
    try {
      this.#conn.close();
    } catch {
      // Closed already.
    }
    if (this.#ended) return;
    this.#ended = true;
    this.#ctx.ended(this);
    const onClose = this.#onClose;
    this.#onClose = undefined;
    onClose?.();
  }
}

/**
 * Tells whether a read settles at once (within a few microtasks: a `Response`
 * made from a string or bytes has its chunk queued) without a closure per
 * read; a read that does not stays in `pending`, so that a stream that
 * produces later gets its head out now. One per connection: reads probed
 * one at a time.
 */
class ReadProbe {
  /** The last probed read. */
  pending: Promise<ReadResult> = Promise.resolve({ done: true, value: undefined });
  #settled = false;
  #result: ReadResult | undefined;
  readonly #ok = (r: ReadResult): void => {
    this.#settled = true;
    this.#result = r;
  };
  readonly #failed = (): void => {
    this.#settled = true;
  };

  /** The read's result if it settles within 3 microtasks (undefined: not yet, or it failed). */
  async now(read: Promise<ReadResult>): Promise<ReadResult | undefined> {
    this.pending = read;
    this.#settled = false;
    this.#result = undefined;
    read.then(this.#ok, this.#failed);
    for (let i = 0; i < 3 && !this.#settled; i++) await null;
    return this.#settled ? this.#result : undefined;
  }
}

function cancelBody(res: Response): void {
  if (res.body !== null && !res.bodyUsed) res.body.cancel().catch(() => {});
}

/** One chunk of the chunked coding: size in hex, CRLF, the data, CRLF (RFC 9112 §7.1). */
function chunkFrame(data: Uint8Array): Uint8Array {
  const size = data.length.toString(16);
  const out = new Uint8Array(size.length + 4 + data.length);
  for (let i = 0; i < size.length; i++) out[i] = size.charCodeAt(i);
  out[size.length] = 13;
  out[size.length + 1] = 10;
  out.set(data, size.length + 2);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

function latin1Bytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  writeLatin1(text, out, 0);
  return out;
}
