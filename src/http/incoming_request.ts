/**
 * The `Request` the HTTP/1.1 engine hands the app: a web-standard `Request`
 * to its users (`instanceof Request`, the same getters and body methods,
 * usable as `new Request(req, init)` and `fetch(req)`), made at the cost of
 * one small object per request.
 *
 * Why: a `new Request(url, { headers, signal })` costs about 10 µs on Deno,
 * mostly in the dependent `AbortSignal` (weak references) and in copying the
 * headers, more than all the rest of the engine's work for a small request.
 * Most requests are read through `method`, `url`, `headers` and `body`
 * only, so those are plain fields here; `headers` is made on first use,
 * the body stream too (an {@linkcode IncomingBody}: a small body of a
 * declared length is read by `arrayBuffer()`, `bytes()`, `text()` and
 * `json()` into one buffer of its size, without a stream),
 * `signal` too (an `AbortController` of its own, aborted by the engine when
 * the client goes away, also before anyone asked for it). Anything else —
 * the rarely used getters, `clone()`, and the runtime's own access to a
 * request's internal slots when it is passed to `new Request` or `fetch` —
 * goes to a real `Request` made from these fields on first need
 * (`materialize`), which from then on is the one source of truth.
 *
 * The internal slots are reached by forwarding every symbol-keyed property
 * a real `Request` has (on the instance and its prototype) to the
 * materialized one. {@linkcode lazyRequestsWork} checks once that this holds
 * for the runtime at hand; where it does not, the engine makes real
 * `Request`s instead.
 *
 * Runtime-neutral (web standards only).
 *
 * @module
 */

const MATERIALIZE = Symbol("netisle.materialize");
const ABORT = Symbol("netisle.abort");
const BODY_USED = Symbol("netisle.bodyUsed");
const BUFFERED = Symbol("netisle.buffered");
const HEADER = Symbol("netisle.header");
const HAS_BODY = Symbol("netisle.hasBody");
const NOTES = Symbol("netisle.notes");

/**
 * A request body the engine makes on demand: a stream, or the whole of it
 * in one buffer when it can (a small body of a declared length).
 */
export interface IncomingBody {
  /** The body as a stream (called at most once). */
  stream(): ReadableStream<Uint8Array>;
  /**
   * The whole body in a new buffer of exactly its size, or undefined (and
   * nothing read) when it cannot be read that way; called at most once,
   * before `stream`.
   */
  whole(): Promise<Uint8Array> | undefined;
  /**
   * The whole body in a new buffer of exactly its size when all of it has
   * arrived already (nothing to wait for), else undefined and nothing read;
   * called at most once, before `stream` and `whole`.
   */
  buffered?(): Uint8Array | undefined;
}

const decoder = new TextDecoder();

/**
 * A request made by the engine from a parsed head and a body stream.
 *
 * @example
 * ```ts
 * const req = new IncomingRequest("GET", "http://a/healthz", ["host", "a"], null);
 * req.headers.get("host"); // "a"
 * req instanceof Request;  // true
 * incomingAbort(req);      // the client went away: req.signal aborts
 * ```
 */
export class IncomingRequest {
  #method: string;
  #url: string;
  #fields: string[] | undefined;
  #headers: Headers | undefined;
  #body: ReadableStream<Uint8Array> | null;
  /** The body not made into a stream yet. */
  #source: IncomingBody | undefined;
  #used = false;
  #ac: AbortController | undefined;
  #aborted = false;
  #real: Request | undefined;
  /** Materialized after the body was read: the real request has none, the body stays here. */
  #detached = false;
  /** What the engine and the guard noted ({@linkcode noteIncoming}). */
  #exact = false;
  #peer: string | undefined;

  /**
   * A request of `method` for `url` with header `fields` (flat: name, value,
   * name, value, …) and `body` (null: none).
   */
  constructor(
    method: string,
    url: string,
    fields: string[],
    body: ReadableStream<Uint8Array> | IncomingBody | null,
  ) {
    this.#method = method;
    this.#url = url;
    this.#fields = fields;
    if (body === null || body instanceof ReadableStream) this.#body = body;
    else {
      this.#body = null;
      this.#source = body;
    }
  }

  /** The method, as sent. */
  get method(): string {
    return this.#method;
  }

  /** The absolute URL. */
  get url(): string {
    return this.#url;
  }

  /** The header fields (made on first use). */
  get headers(): Headers {
    if (this.#real !== undefined) return this.#real.headers;
    if (this.#headers === undefined) {
      this.#headers = headersOf(this.#fields!);
      this.#fields = undefined;
    }
    return this.#headers;
  }

  /** Aborts when the client goes away (made on first use). */
  get signal(): AbortSignal {
    if (this.#real !== undefined) return this.#real.signal;
    return this.#controller().signal;
  }

  /** The body, or null. */
  get body(): ReadableStream<Uint8Array> | null {
    if (this.#real !== undefined && !this.#detached) return this.#real.body;
    return this.#stream();
  }

  /** Whether the body was read (or its reading started). */
  get bodyUsed(): boolean {
    return this.#real !== undefined && !this.#detached ? this.#real.bodyUsed : this.#used;
  }

  /** The body as bytes. */
  arrayBuffer(): Promise<ArrayBuffer> {
    const whole = this.#whole();
    if (whole !== undefined) return whole.then((b) => b.buffer as ArrayBuffer);
    return this.#read((r) => r.arrayBuffer());
  }

  /** The body as a Blob (of the request's content type). */
  blob(): Promise<Blob> {
    return this.#read((r) => r.blob());
  }

  /** The body as bytes. */
  bytes(): Promise<Uint8Array<ArrayBuffer>> {
    const whole = this.#whole();
    if (whole !== undefined) return whole as Promise<Uint8Array<ArrayBuffer>>;
    return this.#read((r) => r.bytes());
  }

  /** The body as form data. */
  formData(): Promise<FormData> {
    return this.#read((r) => r.formData());
  }

  /** The body as JSON. */
  json(): Promise<unknown> {
    const whole = this.#whole();
    if (whole !== undefined) return whole.then((b) => JSON.parse(decoder.decode(b)));
    return this.#read((r) => r.json());
  }

  /** The body as text (UTF-8). */
  text(): Promise<string> {
    const whole = this.#whole();
    if (whole !== undefined) return whole.then((b) => decoder.decode(b));
    return this.#read((r) => r.text());
  }

  /** A copy (through a real `Request`). */
  clone(): Request {
    return this[MATERIALIZE]().clone();
  }

  /** @internal Marks the body as read: the engine calls it at the first pull. */
  [BODY_USED](): void {
    this.#used = true;
  }

  /** @internal Notes a fact (`exact`: true, `peer`: the address), or reads it (`value` undefined). */
  [NOTES](key: "exact" | "peer", value?: string | true): string | boolean | undefined {
    if (key === "exact") {
      if (value !== undefined) this.#exact = true;
      return this.#exact;
    }
    if (value !== undefined) this.#peer = value as string;
    return this.#peer;
  }

  /** @internal Whether there is a body, without making its stream. */
  [HAS_BODY](): boolean {
    if (this.#real !== undefined && !this.#detached) return this.#real.body !== null;
    return this.#source !== undefined || this.#body !== null;
  }

  /** @internal One header field's value (`name` in lower case), without making `headers`. */
  [HEADER](name: string): string | null {
    const fields = this.#fields;
    if (fields === undefined) return this.headers.get(name);
    let value: string | null = null;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const f = fields[i];
      if (f.length !== name.length || f.toLowerCase() !== name) continue;
      value = value === null ? fields[i + 1] : `${value}, ${fields[i + 1]}`;
    }
    return value;
  }

  /** @internal The whole body if it has all arrived, read at once; else undefined. */
  [BUFFERED](): Uint8Array | undefined {
    const source = this.#source;
    if (source === undefined || this.#used || this.#real !== undefined) return undefined;
    const bytes = source.buffered?.();
    if (bytes !== undefined) this.#used = true;
    return bytes;
  }

  /** @internal Aborts `signal` (the client went away). */
  [ABORT](): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#ac?.abort();
  }

  /** @internal The real `Request` these fields make, made once. */
  [MATERIALIZE](): Request {
    if (this.#real === undefined) {
      const init: RequestInit & { duplex?: string } = {
        method: this.#method,
        headers: this.#headers ?? headersOf(this.#fields!),
        signal: this.#controller().signal,
      };
      const body = this.#used ? this.#body : this.#stream();
      if (body !== null && !this.#used && !body.locked) {
        init.body = body;
        init.duplex = "half";
      } else if (body !== null || this.#source !== undefined) {
        // A read body cannot go into a Request: the real one has none (so that
        // `new Request(req, { body })` works as with a used body), this one keeps it.
        this.#detached = true;
      }
      this.#real = new Request(this.#url, init);
      this.#headers = undefined;
      this.#fields = undefined;
    }
    return this.#real;
  }

  /** The body stream, made from the source on first need. */
  #stream(): ReadableStream<Uint8Array> | null {
    const source = this.#source;
    if (source !== undefined && !this.#used) {
      this.#source = undefined;
      this.#body = source.stream();
    }
    return this.#body;
  }

  /** The whole body at once, when the source offers it and nothing read it yet. */
  #whole(): Promise<Uint8Array> | undefined {
    const source = this.#source;
    if (source === undefined || this.#used || this.#real !== undefined) return undefined;
    const whole = source.whole();
    if (whole !== undefined) this.#used = true;
    return whole;
  }

  #controller(): AbortController {
    if (this.#ac === undefined) {
      this.#ac = new AbortController();
      if (this.#aborted) this.#ac.abort();
    }
    return this.#ac;
  }

  /** Reads the body through `f`: the real request's after materializing, else a Response over it. */
  #read<T>(f: (r: Request | Response) => Promise<T>): Promise<T> {
    if (this.#real !== undefined && !this.#detached) return f(this.#real);
    try {
      return f(this.#consume());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #consume(): Response {
    const body = this.#used ? this.#body : this.#stream();
    if (this.#used || body?.locked) {
      throw new TypeError("the request body was already read");
    }
    this.#used = true;
    const type = this.headers.get("content-type");
    return new Response(
      body,
      type === null ? undefined : { headers: { "content-type": type } },
    );
  }
}

// A Request to its users: `instanceof Request`, and the getters not defined above
// (cache, credentials, integrity, keepalive, mode, redirect, referrer, referrerPolicy,
// textStream, …) as those of the real request.
Object.setPrototypeOf(IncomingRequest.prototype, Request.prototype);
const own = new Set(Object.getOwnPropertyNames(IncomingRequest.prototype));
for (const name of Object.getOwnPropertyNames(Request.prototype)) {
  if (own.has(name)) continue;
  const d = Object.getOwnPropertyDescriptor(Request.prototype, name)!;
  if (d.get) {
    Object.defineProperty(IncomingRequest.prototype, name, {
      get(this: IncomingRequest) {
        return Reflect.get(Request.prototype, name, this[MATERIALIZE]());
      },
      configurable: true,
    });
  } else if (typeof d.value === "function") {
    Object.defineProperty(IncomingRequest.prototype, name, {
      value(this: IncomingRequest, ...args: unknown[]) {
        return (d.value as (...a: unknown[]) => unknown).apply(this[MATERIALIZE](), args);
      },
      configurable: true,
      writable: true,
    });
  }
}
// The runtime's internal slots (what `new Request(req)` and `fetch(req)` read): every
// symbol-keyed property of a real Request, forwarded to the materialized one.
const probe = new Request("http://localhost/");
const symbols = new Set<symbol>([
  ...Object.getOwnPropertySymbols(probe),
  ...Object.getOwnPropertySymbols(Request.prototype).filter((s) =>
    Object.getOwnPropertyDescriptor(Request.prototype, s)?.get !== undefined
  ),
]);
for (const sym of symbols) {
  if (sym === Symbol.toStringTag) continue;
  Object.defineProperty(IncomingRequest.prototype, sym, {
    get(this: IncomingRequest) {
      return (this[MATERIALIZE]() as unknown as Record<symbol, unknown>)[sym];
    },
    set(this: IncomingRequest, v: unknown) {
      (this[MATERIALIZE]() as unknown as Record<symbol, unknown>)[sym] = v;
    },
    configurable: true,
  });
}

/**
 * Aborts `req`'s signal if it is an {@linkcode IncomingRequest} (the engine
 * calls it when the client goes away).
 *
 * @example
 * ```ts
 * incomingAbort(req);
 * ```
 */
export function incomingAbort(req: Request | IncomingRequest): void {
  if (req instanceof IncomingRequest) req[ABORT]();
}

/**
 * Marks `req`'s body as used (`bodyUsed`): the engine calls it when the app
 * first pulls the body stream.
 *
 * @example
 * ```ts
 * incomingBodyUsed(req);
 * ```
 */
export function incomingBodyUsed(req: Request | IncomingRequest): void {
  if (req instanceof IncomingRequest) req[BODY_USED]();
}

/**
 * Notes a fact about `req` when it is an {@linkcode IncomingRequest}, as a
 * field of its own (what a `WeakMap` keyed by the request would hold,
 * without the cost of one per request): `exact`, its body is exactly its
 * declared length (`markExactBody`); `peer`, the address it came from
 * (`noteRequestPeer`). Returns false, noting nothing, for any other request.
 *
 * @example
 * ```ts
 * if (!noteIncoming(req, "peer", "192.0.2.7")) peers.set(req, "192.0.2.7");
 * ```
 */
export function noteIncoming(
  req: Request | IncomingRequest,
  key: "exact" | "peer",
  value: string | true,
): boolean {
  if (!(req instanceof IncomingRequest)) return false;
  req[NOTES](key, value);
  return true;
}

/**
 * What {@linkcode noteIncoming} noted of `req` (`exact`: a boolean; `peer`:
 * the address or undefined), or undefined for any other request.
 *
 * @example
 * ```ts
 * const peer = incomingNote(req, "peer") ?? peers.get(req);
 * ```
 */
export function incomingNote(
  req: Request | IncomingRequest,
  key: "exact" | "peer",
): string | boolean | undefined {
  return req instanceof IncomingRequest ? req[NOTES](key) : undefined;
}

/**
 * `req.body !== null`, without making the stream of an
 * {@linkcode IncomingRequest}'s body (which would rule out reading a small
 * one whole).
 *
 * @example
 * ```ts
 * if (requestHasBody(req)) reserve(req);
 * ```
 */
export function requestHasBody(req: Request | IncomingRequest): boolean {
  return req instanceof IncomingRequest ? req[HAS_BODY]() : req.body !== null;
}

/**
 * `req.headers.get(name)` for a `name` in lower case; for an
 * {@linkcode IncomingRequest} whose `headers` nobody asked for yet, read
 * from its fields without making them (the same value: fields of one name
 * joined by `, `).
 *
 * @example
 * ```ts
 * requestHeader(req, "authorization"); // "Bearer ..." or null
 * ```
 */
export function requestHeader(req: Request | IncomingRequest, name: string): string | null {
  return req instanceof IncomingRequest ? req[HEADER](name) : req.headers.get(name);
}

/**
 * The whole body of `req` when it is an {@linkcode IncomingRequest} whose
 * body has all arrived already (read now, into a buffer of its size; the
 * body counts as used), else undefined and nothing read: a small body
 * without a stream, a promise or a deadline.
 *
 * @example
 * ```ts
 * const bytes = incomingBufferedBody(req) ?? new Uint8Array(await req.arrayBuffer());
 * ```
 */
export function incomingBufferedBody(req: Request | IncomingRequest): Uint8Array | undefined {
  return req instanceof IncomingRequest ? req[BUFFERED]() : undefined;
}

/**
 * Headers from flat `fields` (name, value, …): appended one by one, which
 * costs half of `new Headers(pairs)`.
 *
 * @example
 * ```ts
 * headersOf(["Host", "a", "Accept", "text/plain"]).get("host"); // "a"
 * ```
 */
export function headersOf(fields: readonly string[]): Headers {
  const h = new Headers();
  for (let i = 0; i + 1 < fields.length; i += 2) h.append(fields[i], fields[i + 1]);
  return h;
}

let checked: boolean | undefined;

/**
 * Whether {@linkcode IncomingRequest} passes for a `Request` in this runtime:
 * `new Request(incoming, init)` keeps its method, URL and headers. Checked
 * once.
 *
 * @example
 * ```ts
 * const lazy = lazyRequestsWork(); // true on Deno 2
 * ```
 */
export function lazyRequestsWork(): boolean {
  if (checked === undefined) {
    try {
      const incoming = new IncomingRequest("PUT", "http://localhost/p?q", ["x-a", "1"], null);
      const copy = new Request(incoming as unknown as Request, { headers: { "x-b": "2" } });
      checked = incoming instanceof Request && copy.method === "PUT" &&
        copy.url === "http://localhost/p?q" && copy.headers.get("x-b") === "2" &&
        incoming.headers.get("x-a") === "1";
    } catch {
      checked = false;
    }
  }
  return checked;
}
