/**
 * Request bodies, read under three bounds before a route sees them:
 *
 * - **size**: past the route's limit the body answers 413 `ETOOLARGE`; a
 *   declared `Content-Length` over the limit is refused before reading.
 * - **time**: a body that has not arrived `timeoutMs` after the route
 *   started reading answers 408 `EBODYTIMEOUT` (Deno.serve has no such
 *   timeout of its own), so a client that trickles a body cannot hold a
 *   request open.
 * - **the session's memory quota**: on a session route the storage the body
 *   will occupy is charged to the session's `MemoryQuota` *before* it is
 *   read — the declared `Content-Length` at once, a chunked body as its
 *   buffer grows — and a charge that does not fit answers 429 `ENOBUFS`
 *   without reading further. The charge is released when the request is
 *   done with the bytes (the handler returned).
 *
 * Every refusal that leaves part of the body unread (413, 408, 429) carries
 * `Connection: close`: the runtime adapters close the connection instead of
 * draining or parsing what the client still sends. The body stream is left
 * alone then, never cancelled: on Deno, cancelling a request body reads and
 * discards the rest of it (an endless body forever), while a body left
 * unread makes the server close the connection after the response.
 *
 * Chunks the runtime hands over are copied into one buffer this module owns
 * (and charges) and dropped at once: Deno hands out each chunk in a 64 KiB
 * buffer of its own, however few bytes it carries, so keeping chunks would
 * hold far more than the body.
 *
 * @module
 */

import type { MiddlewareHandler } from "hono";
import type { Clock } from "../session/mod.ts";
import { bufferCost, type MemoryQuota } from "../stack/session_quota.ts";
import type { AppEnv, BodyCharge } from "./app_env.ts";
import { HttpProblem } from "./problem.ts";
import {
  incomingBufferedBody,
  incomingNote,
  noteIncoming,
  requestHeader,
} from "./incoming_request.ts";

/** Default time a request body may take to arrive: 30 s (at least 35 KB/s for a 1 MiB send). */
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;

/** How a body is read. */
export interface BodyReadOptions {
  /** Largest body in bytes (413 beyond). */
  maxBytes: number;
  /** How long the body may take to arrive, from the start of reading (408 beyond). */
  timeoutMs: number;
  /** The clock of the deadline. */
  clock: Clock;
  /** The session's memory quota, charged for the body's storage before it is read. */
  quota?: MemoryQuota;
}

/** A body read into storage charged to a quota, until {@linkcode HeldBody.release}. */
export interface HeldBody extends BodyCharge {
  /** The body. */
  readonly bytes: Uint8Array;
  /** Bytes charged to the quota now (0 without a quota or after release). */
  readonly charged: number;
  /** Releases the charge; idempotent. */
  release(): void;
  /**
   * Hands the charge over to whoever keeps the bytes from now on (the socket
   * that queues them): returns it and forgets it, so that
   * {@linkcode HeldBody.release} no longer gives it back.
   */
  handOver(): number;
}

const CLOSE = { connection: "close" } as const;
/** The media types Hono's JSON validator parses (its own test, on the type before any `;`). */
const JSON_TYPE = /^application\/([\w.-]+\+)?json$/i;

/** A declared body up to this size is read whole (`arrayBuffer()`), not chunk by chunk. */
const WHOLE_BODY_BYTES = 64 * 1024;

/** Requests whose engine delivers exactly the declared body length (see below). */
const exactBodies = new WeakSet<Request>();

/**
 * Marks `req` as coming from an engine whose HTTP parser delivers exactly
 * the declared `Content-Length` of body (this project's HTTP/1.1 engine,
 * `http1_connection.ts`): a small declared body is then read whole in one
 * call (`arrayBuffer()`, which that engine's requests answer without a web
 * stream), and a request with neither a length nor chunks has none. Returns
 * `req`.
 *
 * @example
 * ```ts
 * handler(markExactBody(req));
 * ```
 */
export function markExactBody(req: Request): Request {
  if (!noteIncoming(req, "exact", true)) exactBodies.add(req);
  return req;
}

function tooLarge(max: number): HttpProblem {
  return new HttpProblem("ETOOLARGE", `request body exceeds the limit of ${max} bytes`, {
    headers: CLOSE,
  });
}

function overQuota(quota: MemoryQuota, bytes: number): HttpProblem {
  return new HttpProblem(
    "ENOBUFS",
    `the session's memory quota is full: ${quota.used} of ${quota.limit} bytes in use, the ` +
      `request body needs ${bytes} more`,
    { headers: CLOSE },
  );
}

/** The declared body length, or undefined for a chunked body (or a header we cannot read). */
function declaredLength(req: Request): number | undefined {
  const v = requestHeader(req, "content-length");
  if (v === null || !/^\d{1,15}$/.test(v.trim())) return undefined;
  return Number(v.trim());
}

/**
 * Storage for a body charged to a quota: a fixed buffer for a declared
 * length; for a chunked body one that doubles (so copying stays linear),
 * never past the route's limit, charging each new buffer before allocating
 * it (old and new are both held while copying). Tracks exactly what it
 * charged.
 */
class BodyStore {
  #quota: MemoryQuota | undefined;
  #buf: Uint8Array;
  #length = 0;
  #charged = 0;

  /**
   * Charges `capacity` and allocates it, or with `allocate` false only
   * charges it, for a body {@linkcode BodyStore.adopt} will hand over.
   */
  constructor(quota: MemoryQuota | undefined, capacity: number, allocate = true) {
    this.#quota = quota;
    this.#charge(capacity);
    this.#buf = new Uint8Array(allocate ? capacity : 0);
    this.#reserved = allocate ? 0 : capacity;
  }

  /** Capacity charged for a body to be adopted (0 otherwise). */
  #reserved: number;

  /**
   * Takes `buf` as the body (a buffer of the caller's, of exactly the body's
   * size) instead of copying it; the charge made for it follows its size.
   */
  adopt(buf: Uint8Array): void {
    const size = buf.buffer.byteLength;
    if (size !== this.#reserved) {
      this.#charge(size);
      this.#uncharge(this.#reserved);
    }
    this.#reserved = 0;
    this.#buf = buf;
    this.#length = buf.length;
  }

  get charged(): number {
    return this.#charged;
  }

  get length(): number {
    return this.#length;
  }

  /** Makes room for `n` more bytes: a buffer of at least twice the size, at most `max`. */
  reserve(n: number, max: number): void {
    const need = this.#length + n;
    if (need <= this.#buf.byteLength) return;
    const cap = Math.min(Math.max(need, this.#buf.byteLength * 2), max);
    this.#charge(cap);
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.#length));
    this.#uncharge(this.#buf.byteLength);
    this.#buf = next;
  }

  /** Copies `chunk` in (the runtime's chunk is dropped at once). */
  append(chunk: Uint8Array, max: number): void {
    this.reserve(chunk.byteLength, max);
    this.#buf.set(chunk, this.#length);
    this.#length += chunk.byteLength;
  }

  get bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#length);
  }

  release(): void {
    if (this.#charged > 0) this.#quota?.release(this.#charged);
    this.#charged = 0;
  }

  handOver(): number {
    const charged = this.#charged;
    this.#charged = 0;
    return charged;
  }

  #charge(capacity: number): void {
    if (!this.#quota || capacity === 0) return;
    const cost = bufferCost(capacity);
    if (!this.#quota.tryCharge(cost)) throw overQuota(this.#quota, cost);
    this.#charged += cost;
  }

  #uncharge(capacity: number): void {
    if (!this.#quota || capacity === 0) return;
    const cost = bufferCost(capacity);
    this.#quota.release(cost);
    this.#charged -= cost;
  }
}

/**
 * Reads `req`'s body under `options`' size, time and quota bounds (see the
 * module). Throws an {@linkcode HttpProblem}: 413 `ETOOLARGE`, 408
 * `EBODYTIMEOUT`, 429 `ENOBUFS` (each with `Connection: close`), 499
 * `ECANCELED` when the client goes away; nothing stays charged then.
 *
 * @example
 * ```ts
 * const body = await readRequestBody(c.req.raw, {
 *   maxBytes: 1 << 20, timeoutMs: 30_000, clock, quota: session.stack.quota.memory,
 * });
 * try {
 *   await use(body.bytes);
 * } finally {
 *   body.release();
 * }
 * ```
 */
export async function readRequestBody(req: Request, options: BodyReadOptions): Promise<HeldBody> {
  const { maxBytes, clock, quota } = options;
  const declared = declaredLength(req);
  if (declared !== undefined && declared > maxBytes) throw tooLarge(maxBytes);
  if (declared === 0) return held(new BodyStore(undefined, 0));
  // An exact-body engine's request with neither a length nor chunks has no body: known
  // without touching `body` (which makes the engine build a web stream).
  const exact = (incomingNote(req, "exact") as boolean | undefined) ?? exactBodies.has(req);
  if (exact && declared === undefined && requestHeader(req, "transfer-encoding") === null) {
    return held(new BodyStore(undefined, 0));
  }
  if (!exact && !req.body) return held(new BodyStore(undefined, 0));
  // A small body of a declared length from an engine whose parser delivers exactly that
  // (ours, whose requests also read it straight from the connection, without a web
  // stream) is read whole into a buffer of its own, charged (before it is read) as the
  // store's would be.
  const whole = declared !== undefined && declared <= WHOLE_BODY_BYTES && exact;
  const store = new BodyStore(quota, declared ?? 0, !whole);
  if (whole) {
    // All of it arrived with the head (the common small body): taken now, nothing to wait for.
    const ready = incomingBufferedBody(req);
    if (ready !== undefined) {
      store.adopt(ready);
      return held(store);
    }
  }
  let timer: number | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = clock.setTimer(clock.now() + options.timeoutMs, () => {
      timer = undefined;
      reject(
        new HttpProblem(
          "EBODYTIMEOUT",
          `the request body did not arrive within ${options.timeoutMs} ms`,
          { headers: CLOSE },
        ),
      );
    });
  });
  expired.catch(() => {});
  const next = async <T>(read: Promise<T>): Promise<T> => {
    try {
      return await Promise.race([read, expired]);
    } catch (err) {
      if (err instanceof HttpProblem) throw err;
      throw new HttpProblem(
        "ECANCELED",
        `the client went away while sending the request body (${(err as Error)?.name})`,
      );
    }
  };
  if (whole) {
    const reading = req.arrayBuffer();
    try {
      // A fresh buffer of the body's size (the engine copies it out): kept as it is.
      const buf = new Uint8Array(await next(reading));
      if (buf.byteLength > declared) throw longerThanDeclared(declared);
      store.adopt(buf);
    } catch (err) {
      reading.catch(() => {}); // left pending by a timeout: it ends with the connection
      store.release();
      throw err;
    } finally {
      if (timer !== undefined) clock.clearTimer(timer);
    }
    return held(store);
  }
  const stream = req.body;
  if (!stream) {
    if (timer !== undefined) clock.clearTimer(timer);
    return held(store);
  }
  // A BYOB reader (Deno offers one) would read in place, but Deno's allocates a buffer of
  // the view's size per read: measured, it doubled the RSS that 300 concurrent sends cost.
  const reader = stream.getReader();
  try {
    for (;;) {
      const r = await next(reader.read());
      if (r.done) break;
      const total = store.length + r.value.byteLength;
      if (total > maxBytes) throw tooLarge(maxBytes);
      if (declared !== undefined && total > declared) throw longerThanDeclared(declared);
      store.append(r.value, maxBytes);
    }
  } catch (err) {
    store.release();
    // Not cancel(): see the module. A pending read ends with the lock.
    try {
      reader.releaseLock();
    } catch {
      // Already released.
    }
    throw err;
  } finally {
    if (timer !== undefined) clock.clearTimer(timer);
  }
  return held(store);
}

function longerThanDeclared(declared: number): HttpProblem {
  return new HttpProblem(
    "EINVAL",
    `the request body is longer than its Content-Length of ${declared} bytes`,
    { headers: CLOSE },
  );
}

function held(store: BodyStore): HeldBody {
  return {
    bytes: store.bytes,
    get charged() {
      return store.charged;
    },
    release: () => store.release(),
    handOver: () => store.handOver(),
  };
}

/** What the body middlewares need from the app. */
export interface BodyLimits {
  /** How long a body may take to arrive. */
  timeoutMs: number;
  /** The clock of the deadline. */
  clock: Clock;
}

/**
 * Reads a JSON body before the route's validators run: at most `maxBytes`,
 * within the deadline, charged to the session's quota on a session route
 * (released when the handler returned). The body is JSON whatever its
 * declared type (`curl -d` says form-urlencoded) and an empty body is `{}`;
 * it reaches the library's JSON validator as `application/json`. Not JSON:
 * 400 `EINVAL`.
 *
 * @example
 * ```ts
 * app.post("/v1/sessions", jsonBody(16 * 1024, { timeoutMs: 30_000, clock }), zValidator(...), h);
 * ```
 */
export function jsonBody(maxBytes: number, limits: BodyLimits): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const body = await readRequestBody(c.req.raw, {
      maxBytes,
      ...limits,
      quota: c.get("session")?.stack.quota.memory,
    });
    try {
      const text = new TextDecoder().decode(body.bytes).trim();
      if (text !== "") {
        try {
          JSON.parse(text);
        } catch (err) {
          throw new HttpProblem(
            "EINVAL",
            `request body is not valid JSON: ${(err as Error).message}`,
          );
        }
      }
      const json = text === "" ? "{}" : text;
      const type = requestHeader(c.req.raw, "content-type");
      if (type !== null && JSON_TYPE.test(type.split(";")[0].trim())) {
        // Declared JSON: the validator reads the text from Hono's body cache (no copy of the
        // request). The cache holds the promises of the body's readers (its type says strings).
        (c.req.bodyCache as { text?: Promise<string> }).text = Promise.resolve(json);
      } else {
        const headers = new Headers(c.req.raw.headers);
        headers.set("content-type", "application/json");
        headers.delete("content-length");
        c.req.raw = new Request(c.req.raw, { body: json, headers });
      }
      await next();
    } finally {
      body.release();
    }
  };
}

/**
 * Reads an `application/octet-stream` body (any declared type) of at most
 * `maxBytes` into `c.var.bytes`: within the deadline, charged to the
 * session's quota before reading and released when the handler returned.
 *
 * @example
 * ```ts
 * app.post(SEND_PATH, sessionAuth(registry, false), binaryBody(1 << 20, limits), (c) =>
 *   c.json({ bytes: c.var.bytes.length }));
 * ```
 */
export function binaryBody(maxBytes: number, limits: BodyLimits): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const body = await readRequestBody(c.req.raw, {
      maxBytes,
      ...limits,
      quota: c.get("session")?.stack.quota.memory,
    });
    try {
      c.set("bytes", body.bytes);
      c.set("body", body);
      await next();
    } finally {
      body.release();
    }
  };
}
