/**
 * One HTTP/1.1 connection of the engine (`http1_engine.ts`): reads request
 * heads, hands each request to the app as a web-standard `Request`, writes
 * the `Response`, keeps the connection alive or closes it, and hands an
 * upgraded connection to the WebSocket engine.
 *
 * - **Reading** (`read_buffer.ts`): one buffer per connection, 1 KiB at
 *   rest, grown (×4, up to the head limit for heads and 64 KiB for bodies)
 *   only while reads fill it, given up for a fresh 1 KiB one when the
 *   connection goes idle; at most one read in flight. While a slow handler
 *   (one that did not answer within a few microtasks: a long-poll) works
 *   and its body is in, a read stays pending so that a client that goes
 *   away aborts `request.signal` at once (bytes of a pipelined next request
 *   wait in the buffer, in order). A quick handler's connection reads again
 *   after the response: nothing on its critical path.
 * - **Request bodies** (`http1_request_body.ts`) are read from the
 *   connection only when the app pulls: a body refused by the body budget or
 *   a quota check is never read. The stream is made on first use; a body of
 *   a declared length up to 64 KiB read with `arrayBuffer()`, `text()` or
 *   `json()` goes into one buffer of its size without one. A framing error
 *   answers 400 in place of the app's response.
 * - **Responses** (`http1_response.ts`). A body that is all there at once
 *   (Hono's `c.json`, `c.text`; a `fixedResponse`'s bytes, without reading
 *   its stream) is written with its `Content-Length` in the same write as
 *   the head, built in a pooled buffer; any other body is
 *   streamed with backpressure: `chunked`, the app's `Content-Length` when it
 *   set one, or until the close for HTTP/1.0. HEAD, 204, 304 and 1xx carry
 *   no body (RFC 9112 §6.3).
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
import { type ConnectionTimeouts, TimeoutEntry } from "./connection_timeouts.ts";
import { headersOf, incomingAbort, incomingBodyUsed, IncomingRequest } from "./incoming_request.ts";
import type { BufferPool } from "./buffer_pool.ts";
import { refusalResponse, statusLine, writeLatin1 } from "./http1_response_head.ts";
import { ReadBuffer } from "./read_buffer.ts";
import { markExactBody } from "./request_body.ts";
import { fixedBody } from "./fixed_response.ts";
import { type BodyHost, RequestBody } from "./http1_request_body.ts";
import {
  cancelBody,
  CONTINUE_100,
  headEnd,
  latin1Bytes,
  ReadProbe,
  responseHead,
  streamBody,
} from "./http1_response.ts";

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
const CRLF = "\r\n";

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
  readonly #ctx: Http1Context;
  readonly #conn: Http1Transport;
  #onClose: (() => void) | undefined;
  readonly #in: ReadBuffer;
  #state = RUNNING;
  #ended = false;
  readonly #parser: RequestHeadParser;
  readonly #timeout: TimeoutEntry;
  readonly #body: RequestBody;
  readonly #probe = new ReadProbe();
  // The request in progress.
  #req: Request | undefined;
  #ac: AbortController | undefined;
  #mayUpgrade = false;
  /** The handler did not answer within {@linkcode SLOW_TURNS} microtasks. */
  #slow = false;
  #responseStarted = false;
  #sideWrite: Promise<void> | undefined;

  /** A connection on `conn` from `peer`; `onClose` runs once when it is gone. */
  constructor(ctx: Http1Context, conn: Http1Transport, peer: string, onClose?: () => void) {
    this.#ctx = ctx;
    this.#conn = conn;
    this.peer = peer;
    this.#onClose = onClose;
    this.#in = new ReadBuffer(conn, IDLE_BUFFER_BYTES, () => this.#abortRequest());
    this.#parser = new RequestHeadParser(ctx.headLimits);
    this.#timeout = new TimeoutEntry((kind) => this.#onTimeout(kind));
    const host: BodyHost = {
      input: this.#in,
      maxBufferBytes: BODY_BUFFER_BYTES,
      serving: () => this.#state === RUNNING,
      sendContinue: async () => {
        this.#sideWrite = this.#writeAll(CONTINUE_100).catch(() => {});
        await this.#sideWrite;
        this.#sideWrite = undefined;
      },
      pulled: () => {
        if (this.#req !== undefined) incomingBodyUsed(this.#req);
      },
      ended: () => {
        if (this.#timeout.kind === TIMEOUT_BODY) this.#ctx.timeouts.disarm(this.#timeout);
        // The body is in: under a slow handler a read watches for the client's leaving.
        if (this.#slow && !this.#mayUpgrade) this.#watch();
      },
    };
    this.#body = new RequestBody(host);
  }

  /** Bytes of read buffer this connection holds now. */
  get bufferBytes(): number {
    return this.#in.buf.length;
  }

  /** Serves requests until the connection closes or is upgraded. */
  async run(): Promise<void> {
    const ctx = this.#ctx;
    const timeouts = ctx.timeouts;
    const parser = this.#parser;
    const input = this.#in;
    const maxHead = ctx.headLimits.maxHeadBytes;
    timeouts.arm(this.#timeout, TIMEOUT_HEAD);
    let fresh = true;
    try {
      while (this.#state === RUNNING) {
        // The next head: from the buffer (pipelined) or from reads.
        parser.reset();
        if (!fresh) {
          if (input.start < input.end) timeouts.arm(this.#timeout, TIMEOUT_HEAD);
          else {
            timeouts.arm(this.#timeout, TIMEOUT_IDLE);
            input.shrink();
          }
        }
        fresh = false;
        let n = input.start < input.end ? parser.feed(input.buf, input.start, input.end) : 0;
        while (n === 0) {
          if (input.eof) return;
          const had = input.end - input.start;
          if (!input.reading) input.makeRoom(maxHead);
          await input.fill();
          if (this.#state !== RUNNING) return;
          if (had === 0 && input.end > input.start && this.#timeout.kind === TIMEOUT_IDLE) {
            // The first byte of the next request: its head has headersTimeoutMs from now.
            timeouts.arm(this.#timeout, TIMEOUT_HEAD);
          }
          if (input.start < input.end) n = parser.feed(input.buf, input.start, input.end);
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
    const parsed = this.#parser.parse(this.#in.buf, this.#in.start);
    this.#in.start += headBytes;
    if (!("method" in parsed)) {
      await this.#refuse(parsed.status, parsed.reason);
      return false;
    }
    const head = parsed;
    const method = head.method;
    const hasBody = this.#body.begin(head);
    this.#mayUpgrade = head.upgrade;
    this.#responseStarted = false;
    this.#slow = false;
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
      req = this.#request(head, takesBody);
    } catch (err) {
      await this.#refuse(400, `the request cannot be represented: ${(err as Error).message}`);
      return false;
    }
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
          if (!this.#body.open && !head.upgrade) this.#watch();
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
    if (this.#body.error !== undefined) {
      cancelBody(res);
      await this.#refuse(400, this.#body.error);
      return false;
    }
    return await this.#respond(head, res);
  }

  /** The app's `Request` (see `incoming_request.ts`); throws what `new Request` throws. */
  #request(head: RequestHead, hasBody: boolean): Request {
    let req: Request;
    if (this.#ctx.lazyRequests) {
      // The header fields passed the parser's checks; Headers checks them again when made.
      // The body's stream is made on first use (a small one may be read whole instead).
      const body = hasBody ? this.#body : null;
      req = new IncomingRequest(head.method, head.url, head.fields, body) as unknown as Request;
      if (this.#in.eof) incomingAbort(req);
    } else {
      const ac = new AbortController();
      this.#ac = ac;
      const body = hasBody ? this.#body.stream() : null;
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
    // The body is exactly the declared length (the framing enforces it): routes may read a
    // small one whole (`request_body.ts`), and know a request without a length or chunks
    // has none.
    if (head.method !== "GET" && head.method !== "HEAD") markExactBody(req);
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

  // ------------------------------------------------------------------ responses

  /** Writes the app's response; true to keep the connection. */
  async #respond(head: RequestHead, res: Response): Promise<boolean> {
    const status = res.status;
    const h = responseHead(res, this.#ctx.date);
    let close = h.close || !head.keepAlive || head.upgrade || this.#in.eof || this.#ctx.stopping;
    // The rest of a body the app did not read: dropped if it is all here, else the connection goes.
    if (this.#body.open && (close || !this.#body.skip())) close = true;
    const method = head.method;
    if (method === "HEAD" || status === 204 || status === 304 || status < 200) {
      const text = h.length >= 0 && status !== 204 && status >= 200
        ? h.text + "content-length: " + h.length + CRLF
        : h.text;
      cancelBody(res);
      return await this.#finish(text, close, head, undefined);
    }
    // Bytes known when the response was made: written after the head, no stream read.
    const fixed = fixedBody(res);
    if (fixed !== undefined) return await this.#finish(h.text, close, head, fixed);
    const body = res.body;
    if (body === null) return await this.#finish(h.text, close, head, EMPTY);
    // A body that is all there at once (a Response made from a string or bytes) goes out
    // with its length; any other is streamed, its head written now.
    const reader = body.getReader();
    const probe = this.#probe;
    const first = await probe.now(reader.read());
    if (first === undefined) {
      return await this.#stream(h.text, close, head, reader, h.length, undefined, probe.pending);
    }
    if (first.done) return await this.#finish(h.text, close, head, EMPTY);
    const chunk = first.value;
    const second = await probe.now(reader.read());
    if (second?.done) return await this.#finish(h.text, close, head, chunk);
    return await this.#stream(h.text, close, head, reader, h.length, chunk, probe.pending);
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
    text += headEnd(close, head.minor);
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
    next: Promise<ReadableStreamReadResult<Uint8Array>>,
  ): Promise<boolean> {
    this.#responseStarted = true;
    // The app's Content-Length, else chunked; HTTP/1.0 has no chunked: until the close.
    const framing = length >= 0 ? "length" : head.minor === 1 ? "chunked" : "close";
    if (framing === "length") text += "content-length: " + length + CRLF;
    else if (framing === "chunked") text += "transfer-encoding: chunked\r\n";
    else close = true;
    try {
      await this.#writeAll(latin1Bytes(text + headEnd(close, head.minor)));
      const write = (p: Uint8Array) => this.#writeAll(p);
      const open = () => this.#state === RUNNING;
      if (!(await streamBody(write, reader, framing, length, first, next, open))) close = true;
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
    if (close || this.#in.eof) {
      this.#linger();
      return false;
    }
    return true;
  }

  // ------------------------------------------------------------------ upgrades

  async #upgrade(req: Request, ws: ServerWebSocket): Promise<boolean> {
    const ctx = this.#ctx;
    this.#responseStarted = true;
    if (this.#in.eof) {
      ws.terminate();
      this.#destroy();
      return false;
    }
    const accept = await websocketAccept(req.headers.get("sec-websocket-key") ?? "");
    if (this.#state !== RUNNING) {
      ws.terminate();
      return false;
    }
    if (this.#in.reading) {
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
    const initial = this.#in.release();
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

  // ------------------------------------------------------------------ reading and writing

  /** A read is kept pending while the app works, so that a client that leaves is noticed. */
  #watch(): void {
    const input = this.#in;
    if (input.reading || input.eof || this.#state !== RUNNING) return;
    input.makeRoom(this.#ctx.headLimits.maxHeadBytes);
    if (input.end < input.buf.length) void input.fill();
  }

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
    if (kind === TIMEOUT_IDLE || (kind === TIMEOUT_HEAD && this.#in.start === this.#in.end)) {
      this.#destroy(); // nothing started: closed without a word
      return;
    }
    const ms = this.#ctx.timeouts.durations[kind];
    if (kind === TIMEOUT_HEAD) {
      void this.#refuse(408, `the request head did not arrive within ${ms} ms`);
      return;
    }
    // The body did not arrive within requestTimeoutMs.
    this.#body.fail("the request body did not arrive in time");
    if (this.#responseStarted) this.#destroy();
    else void this.#refuse(408, `the request body did not arrive within ${ms} ms of its head`);
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
    // What the client still sends is dropped: a read of the body still waiting fails now.
    this.#body.fail("the response was sent and the connection is closing");
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
    const input = this.#in;
    let dropped = 0;
    while (this.#state === LINGERING && !input.eof) {
      dropped += input.drop();
      // Enough dropped: the linger timer closes the connection; nothing more is read.
      if (dropped >= LINGER_BYTES) return;
      if (!input.reading) input.makeRoom(LINGER_BUFFER_BYTES);
      await input.fill();
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
    this.#body.fail("the connection closed");
    this.#in.discard();
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
