/**
 * The worker side of an isolated session: answers the front door's
 * messages (see `protocol.ts`) with an app built once the `init` message
 * arrived. Runtime-neutral: it needs only `postMessage`, message events,
 * `Request`/`Response` and `MessagePort`, which Deno and Bun workers share.
 *
 * @module
 */

import { PortSocket } from "./port_socket.ts";
import {
  type FromWorkerMessage,
  ownedBuffer,
  RESPONSE_CREDIT_BYTES,
  type ToWorkerMessage,
  UPGRADE_ACCEPTED_HEADER,
  type WorkerInit,
  type WorkerRequestMessage,
} from "./protocol.ts";

/** The global scope of a worker, as far as this module uses it. */
export interface WorkerScope {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  addEventListener(type: "message", listener: (ev: MessageEvent) => void): void;
}

/** What the worker serves: one app over a registry that holds (at most) one session. */
export interface WorkerApp {
  /** Answers a forwarded request. */
  fetch(req: Request): Response | Promise<Response>;
  /** Live sessions in this worker (0 once its session was deleted or expired). */
  sessions(): number;
  /** Expires idle sessions; returns how many it deleted. */
  sweep(): number;
  /** The worker's Prometheus document. */
  metrics(): string | Promise<string>;
}

/**
 * Upgrades a forwarded request to a {@linkcode PortSocket}: the stand-in
 * response (status 200 with {@linkcode UPGRADE_ACCEPTED_HEADER}) tells the
 * front door to accept the real upgrade and relay it.
 */
export type PortUpgrader = (req: Request) => { socket: PortSocket; response: Response };

/**
 * Serves the front door's messages on `scope`. `build` makes the app from
 * the init message; `upgrade` hands the app a WebSocket over the request's
 * relay port.
 *
 * @example
 * ```ts
 * serveSessionWorker(self, (init, upgrade) => myWorkerApp(init, upgrade));
 * ```
 */
export function serveSessionWorker(
  scope: WorkerScope,
  build: (init: WorkerInit, upgrade: PortUpgrader) => WorkerApp,
): void {
  const ports = new WeakMap<Request, MessagePort>();
  const upgrade: PortUpgrader = (req) => {
    const port = ports.get(req);
    if (!port) throw new TypeError("this request has no relay port: it is not a WebSocket upgrade");
    ports.delete(req);
    return {
      socket: new PortSocket(port),
      response: new Response(null, { status: 200, headers: { [UPGRADE_ACCEPTED_HEADER]: "1" } }),
    };
  };
  interface InFlight {
    ac: AbortController;
    credit: number;
    wake?: () => void;
    reader?: ReadableStreamDefaultReader<Uint8Array>;
    cancelled: boolean;
  }
  const inFlight = new Map<number, InFlight>();
  let app: WorkerApp | undefined;
  let init: WorkerInit | undefined;
  let hadSession = false;
  let ended = false;
  const post = (m: FromWorkerMessage, transfer: Transferable[] = []) =>
    scope.postMessage(m, transfer);

  const checkEnded = async (reason: "deleted" | "expired") => {
    if (!app || ended) return;
    if (app.sessions() > 0) {
      hadSession = true;
      return;
    }
    if (!hadSession) return;
    ended = true;
    post({ t: "ended", reason, metrics: await app.metrics() });
  };

  const cancel = (f: InFlight | undefined) => {
    if (!f) return;
    f.cancelled = true;
    f.ac.abort();
    f.reader?.cancel().catch(() => {});
    f.wake?.();
  };

  const handle = async (m: WorkerRequestMessage) => {
    const f: InFlight = {
      ac: new AbortController(),
      credit: RESPONSE_CREDIT_BYTES,
      cancelled: false,
    };
    inFlight.set(m.id, f);
    let res: Response;
    try {
      const hasBody = m.body !== null && m.method !== "GET" && m.method !== "HEAD";
      const req = new Request(m.url, {
        method: m.method,
        headers: m.headers,
        body: hasBody ? m.body : undefined,
        signal: f.ac.signal,
      });
      if (m.port) ports.set(req, m.port);
      res = await app!.fetch(req);
    } catch (err) {
      res = new Response(
        JSON.stringify({
          type: "about:blank",
          title: "Internal Server Error",
          status: 500,
          code: "EINTERNAL",
          detail: `the session worker failed to answer: ${(err as Error).message}`,
        }),
        { status: 500, headers: { "content-type": "application/problem+json" } },
      );
    }
    const upgraded = res.headers.has(UPGRADE_ACCEPTED_HEADER);
    if (m.port && !upgraded) m.port.close();
    const headers: [string, string][] = [];
    res.headers.forEach((v, k) => {
      if (k !== UPGRADE_ACCEPTED_HEADER) headers.push([k, v]);
    });
    const body = upgraded ? null : res.body;
    post({ t: "res", id: m.id, status: res.status, headers, upgrade: upgraded, hasBody: !!body });
    if (body) {
      const reader = body.getReader();
      f.reader = reader;
      try {
        for (;;) {
          while (f.credit <= 0 && !f.cancelled) await new Promise<void>((r) => f.wake = r);
          if (f.cancelled) break;
          const { done, value } = await reader.read();
          if (done || f.cancelled) break;
          if (!value || value.byteLength === 0) continue;
          const buf = ownedBuffer(value);
          f.credit -= buf.byteLength;
          post({ t: "chunk", id: m.id, data: buf }, [buf]);
        }
        post({ t: "end", id: m.id });
      } catch (err) {
        post({ t: "error", id: m.id, message: (err as Error).message });
      }
    }
    inFlight.delete(m.id);
    await checkEnded("deleted");
  };

  scope.addEventListener("message", (ev: MessageEvent) => {
    const m = ev.data as ToWorkerMessage;
    switch (m.t) {
      case "init": {
        if (app) return;
        init = m;
        app = build(m, upgrade);
        const sweepMs = m.sweepIntervalMs ?? 60_000;
        const sweeper = setInterval(() => {
          if (ended) clearInterval(sweeper);
          else if (app!.sweep() > 0) void checkEnded("expired");
        }, sweepMs);
        post({ t: "ready" });
        return;
      }
      case "req":
        if (!app) return;
        void handle(m);
        return;
      case "abort":
      case "cancel":
        cancel(inFlight.get(m.id));
        return;
      case "credit": {
        const f = inFlight.get(m.id);
        if (!f) return;
        f.credit += m.bytes;
        const wake = f.wake;
        f.wake = undefined;
        wake?.();
        return;
      }
      case "ping":
        post({ t: "pong", seq: m.seq });
        return;
      case "metrics":
        if (!app) return;
        void Promise.resolve(app.metrics()).then((text) =>
          post({ t: "metrics", seq: m.seq, text })
        );
        return;
      case "test":
        // Test-only (NETISLE_TEST_HOOKS=1): ignored unless the front door enabled them.
        if (!init?.testHooks) return;
        if (m.action === "spin") {
          for (;;) {
            // Busy loop until the front door terminates this worker.
          }
        }
        if (m.action === "crash") {
          setTimeout(() => {
            throw new Error("netisle test hook: this session worker crashes on purpose");
          }, 0);
        }
        return;
    }
  });
}
