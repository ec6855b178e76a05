/**
 * The front door's handle on one session worker: starts it, forwards
 * requests and streams their responses back under a credit window, pings
 * it, and terminates it when it crashes (an uncaught error) or stops
 * answering pings. After that every forwarded request rejects with
 * {@linkcode SessionDeadError}; the other workers are not affected.
 *
 * @module
 */

import {
  type FromWorkerMessage,
  RESPONSE_CREDIT_BYTES,
  type ToWorkerMessage,
  type WorkerInit,
} from "./protocol.ts";

/** The part of the standard `Worker` this module uses. */
export interface WorkerLike {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  terminate(): void;
  addEventListener(type: "message", listener: (ev: MessageEvent) => void): void;
  addEventListener(type: "error" | "messageerror", listener: (ev: Event) => void): void;
}

/** Thrown (rejected) for requests to a worker that crashed, hung or was stopped. */
export class SessionDeadError extends Error {
  /** Creates the error; `message` says why the worker died. */
  constructor(message: string) {
    super(message);
    this.name = "SessionDeadError";
  }
}

/** Options of {@linkcode SessionWorker}. */
export interface SessionWorkerOptions {
  /** The init message (test hooks, logging, idle expiry). */
  init: WorkerInit;
  /** Interval of pings (ms). Default 1000. */
  heartbeatIntervalMs?: number;
  /** A worker that answers no ping for this long is terminated (ms). Default 10000. */
  heartbeatTimeoutMs?: number;
  /** A worker not ready this long after its start is terminated (ms). Default 30000. */
  readyTimeoutMs?: number;
  /** Called once when the worker is terminated for a fault (crash or no heartbeat). */
  onDeath?: (reason: "crash" | "unresponsive", detail: string) => void;
  /** Called once when the worker's session was deleted or expired, with its last metrics. */
  onEnded?: (reason: "deleted" | "expired", metrics: string) => void;
}

/** A forwarded request. */
export interface ForwardRequest {
  method: string;
  url: string;
  headers: [string, string][];
  body: ArrayBuffer | null;
  /** The relay port of a WebSocket upgrade (transferred to the worker). */
  port?: MessagePort;
  /** Aborts the request in the worker (the client went away). */
  signal?: AbortSignal;
}

/** The worker's answer; `body` streams under the credit window. */
export interface ForwardedResponse {
  status: number;
  headers: [string, string][];
  /** The worker's app accepted a WebSocket upgrade on the request's port. */
  upgrade: boolean;
  body: ReadableStream<Uint8Array> | null;
}

interface Pending {
  resolve(res: ForwardedResponse): void;
  reject(err: Error): void;
  controller?: ReadableStreamDefaultController<Uint8Array>;
  unGranted: number;
  cleanup(): void;
}

/** The lifecycle of a worker. */
export type SessionWorkerState = "starting" | "live" | "dead" | "ended";

/**
 * One session worker.
 *
 * @example
 * ```ts
 * const w = new SessionWorker(new Worker(url, { type: "module" }), { init });
 * await w.ready;
 * const res = await w.request({ method: "GET", url, headers: [], body: null });
 * ```
 */
export class SessionWorker {
  #worker: WorkerLike;
  #options: SessionWorkerOptions;
  #state: SessionWorkerState = "starting";
  #deathDetail = "";
  #pending = new Map<number, Pending>();
  #metricsWaiters = new Map<number, (text: string | undefined) => void>();
  #relays = new Set<() => void>();
  #nextId = 1;
  #seq = 0;
  #lastSeen = Date.now();
  #timer: ReturnType<typeof setInterval> | undefined;
  #readyTimer: ReturnType<typeof setTimeout> | undefined;
  /** Resolves once the worker built its app; rejects if it dies first. */
  readonly ready: Promise<void>;
  #resolveReady!: () => void;
  #rejectReady!: (err: Error) => void;

  /** Starts talking to `worker` and sends it the init message. */
  constructor(worker: WorkerLike, options: SessionWorkerOptions) {
    this.#worker = worker;
    this.#options = options;
    this.ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.ready.catch(() => {});
    worker.addEventListener("message", (ev) => this.#onMessage(ev.data as FromWorkerMessage));
    worker.addEventListener("error", (ev) => {
      // Keep the error from propagating to (and killing) the front door's isolate.
      ev.preventDefault();
      const msg = (ev as ErrorEvent).message ?? String(ev);
      this.#die("crash", `the session worker crashed: ${msg}`);
    });
    worker.addEventListener("messageerror", (ev) => {
      ev.preventDefault();
      this.#die("crash", "the session worker sent a message that could not be decoded");
    });
    this.#readyTimer = setTimeout(() => {
      if (this.#state === "starting") {
        const ms = options.readyTimeoutMs ?? 30_000;
        this.#die("unresponsive", `the session worker was not ready within ${ms} ms`);
      }
    }, options.readyTimeoutMs ?? 30_000);
    this.#post(options.init);
  }

  /** `starting`, `live`, `dead` (crashed or hung) or `ended` (session deleted or expired). */
  get state(): SessionWorkerState {
    return this.#state;
  }

  /** Why the worker died (empty while it lives). */
  get deathDetail(): string {
    return this.#deathDetail;
  }

  /** Requests waiting for or streaming their answer. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Forwards a request; rejects with {@linkcode SessionDeadError} if the worker dies first. */
  request(req: ForwardRequest): Promise<ForwardedResponse> {
    if (this.#state === "dead" || this.#state === "ended") {
      return Promise.reject(new SessionDeadError(this.#deathDetail || "the session ended"));
    }
    const id = this.#nextId++;
    return new Promise<ForwardedResponse>((resolve, reject) => {
      const onAbort = () => this.#post({ t: "abort", id });
      req.signal?.addEventListener("abort", onAbort, { once: true });
      this.#pending.set(id, {
        resolve,
        reject,
        unGranted: 0,
        cleanup: () => req.signal?.removeEventListener("abort", onAbort),
      });
      const transfer: Transferable[] = [];
      if (req.body) transfer.push(req.body);
      if (req.port) transfer.push(req.port);
      this.#post({
        t: "req",
        id,
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: req.body,
        port: req.port,
      }, transfer);
    });
  }

  /** The worker's metrics document, or undefined when it does not answer within `timeoutMs`. */
  metrics(timeoutMs = 1000): Promise<string | undefined> {
    if (this.#state !== "live") return Promise.resolve(undefined);
    const seq = ++this.#seq;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#metricsWaiters.delete(seq);
        resolve(undefined);
      }, timeoutMs);
      this.#metricsWaiters.set(seq, (text) => {
        clearTimeout(timer);
        resolve(text);
      });
      this.#post({ t: "metrics", seq });
    });
  }

  /** Registers a relay to close if the worker dies; returns the unregister function. */
  trackRelay(kill: () => void): () => void {
    this.#relays.add(kill);
    return () => this.#relays.delete(kill);
  }

  /** Sends a test-hook message (honoured only by workers started with test hooks). */
  testHook(action: "spin" | "crash"): void {
    this.#post({ t: "test", action });
  }

  /** Terminates the worker (the session is gone); pending requests reject. */
  terminate(detail = "the session was deleted"): void {
    if (this.#state === "dead" || this.#state === "ended") return;
    this.#state = "ended";
    this.#deathDetail = detail;
    this.#shutdown(detail);
  }

  #post(m: ToWorkerMessage, transfer: Transferable[] = []): void {
    if (this.#state === "dead" || this.#state === "ended") return;
    this.#worker.postMessage(m, transfer);
  }

  #die(reason: "crash" | "unresponsive", detail: string): void {
    if (this.#state === "dead" || this.#state === "ended") return;
    this.#state = "dead";
    this.#deathDetail = detail;
    this.#shutdown(detail);
    this.#options.onDeath?.(reason, detail);
  }

  #shutdown(detail: string): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#readyTimer !== undefined) clearTimeout(this.#readyTimer);
    this.#timer = undefined;
    try {
      this.#worker.terminate();
    } catch {
      // Already gone.
    }
    const err = new SessionDeadError(detail);
    this.#rejectReady(err);
    for (const p of this.#pending.values()) {
      p.cleanup();
      if (p.controller) {
        try {
          p.controller.error(err);
        } catch {
          // The body was cancelled already.
        }
      } else p.reject(err);
    }
    this.#pending.clear();
    for (const w of this.#metricsWaiters.values()) w(undefined);
    this.#metricsWaiters.clear();
    for (const kill of [...this.#relays]) kill();
    this.#relays.clear();
  }

  #startHeartbeat(): void {
    const interval = this.#options.heartbeatIntervalMs ?? 1000;
    const timeout = this.#options.heartbeatTimeoutMs ?? 10_000;
    this.#lastSeen = Date.now();
    this.#timer = setInterval(() => {
      const silent = Date.now() - this.#lastSeen;
      if (silent > timeout) {
        this.#die(
          "unresponsive",
          `the session worker answered no heartbeat for ${silent} ms (limit ${timeout} ms)`,
        );
        return;
      }
      this.#post({ t: "ping", seq: ++this.#seq });
    }, interval);
  }

  #onMessage(m: FromWorkerMessage): void {
    if (this.#state === "dead" || this.#state === "ended") return;
    this.#lastSeen = Date.now();
    switch (m.t) {
      case "ready":
        if (this.#state !== "starting") return;
        this.#state = "live";
        if (this.#readyTimer !== undefined) clearTimeout(this.#readyTimer);
        this.#startHeartbeat();
        this.#resolveReady();
        return;
      case "pong":
        return;
      case "metrics": {
        const w = this.#metricsWaiters.get(m.seq);
        this.#metricsWaiters.delete(m.seq);
        w?.(m.text);
        return;
      }
      case "res": {
        const p = this.#pending.get(m.id);
        if (!p) return;
        if (!m.hasBody) {
          this.#pending.delete(m.id);
          p.cleanup();
          p.resolve({ status: m.status, headers: m.headers, upgrade: m.upgrade, body: null });
          return;
        }
        const id = m.id;
        const body = new ReadableStream<Uint8Array>({
          start: (controller) => {
            p.controller = controller;
          },
          pull: () => {
            // The queue is empty and the client wants more: everything sent so far was read.
            if (p.unGranted > 0 && this.#pending.has(id)) {
              this.#post({ t: "credit", id, bytes: p.unGranted });
              p.unGranted = 0;
            }
          },
          cancel: () => {
            if (this.#pending.delete(id)) {
              p.cleanup();
              this.#post({ t: "cancel", id });
            }
          },
        }, { highWaterMark: 0 });
        p.resolve({ status: m.status, headers: m.headers, upgrade: false, body });
        return;
      }
      case "chunk": {
        const p = this.#pending.get(m.id);
        if (!p?.controller) return;
        p.unGranted += m.data.byteLength;
        if (p.unGranted > RESPONSE_CREDIT_BYTES * 2) {
          // The worker ignored the window: a bug or a hostile worker; stop this body.
          this.#pending.delete(m.id);
          p.cleanup();
          p.controller.error(new Error("session worker overran the response credit window"));
          this.#post({ t: "cancel", id: m.id });
          return;
        }
        p.controller.enqueue(new Uint8Array(m.data));
        return;
      }
      case "end":
      case "error": {
        const p = this.#pending.get(m.id);
        if (!p) return;
        this.#pending.delete(m.id);
        p.cleanup();
        if (m.t === "end") p.controller?.close();
        else p.controller?.error(new Error(m.message));
        return;
      }
      case "ended":
        this.#state = "ended";
        this.#deathDetail = `the session was ${m.reason}`;
        this.#shutdown(this.#deathDetail);
        this.#options.onEnded?.(m.reason, m.metrics);
        return;
    }
  }
}
