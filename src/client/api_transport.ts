/**
 * How the SDK talks to a netisle server: `fetch` for the HTTP API (errors
 * become {@linkcode NetisleError}s with the problem's code) and a
 * `WebSocket` constructor for socket streams. Both default to the runtime's
 * globals and can be given (the `ws` package on Node 20, a test double).
 *
 * @module
 */

import { errorFromResponse, NetisleError } from "./netisle_error.ts";
import type { WebSocketConstructor } from "./stream_channel.ts";

/** Options of the SDK's transport (and of `NetisleClient`). */
export interface TransportOptions {
  /** Default: `globalThis.fetch`. */
  fetch?: typeof fetch;
  /**
   * Default: `globalThis.WebSocket` (browsers, Deno, Bun, Node 22+). On Node
   * 20 pass `WebSocket` from the `ws` package.
   */
  WebSocket?: WebSocketConstructor;
}

/** One request to the API. */
export interface ApiRequest {
  /** A session token (`Authorization: Bearer`), or another bearer token. */
  token?: string;
  /** A JSON body. */
  json?: unknown;
  /** Query parameters. */
  query?: Record<string, string>;
  /** Aborts the request. */
  signal?: AbortSignal;
  /** What the call does, for error messages ("connect to 10.0.2.15:22"). */
  what: string;
}

/**
 * The server's base URL with fetch and WebSocket.
 *
 * @example
 * ```ts
 * const t = new ApiTransport("http://127.0.0.1:8787");
 * const res = await t.request("GET", "/healthz", { what: "health check" });
 * ```
 */
export class ApiTransport {
  /** The server's base URL (`http:` or `https:`). */
  readonly server: URL;
  #fetch: typeof fetch;
  #WebSocket: WebSocketConstructor | undefined;

  /** Checks the URL (TypeError when it is not http(s) or ws(s)). */
  constructor(server: string | URL, options: TransportOptions = {}) {
    let url: URL;
    try {
      url = new URL(String(server));
    } catch {
      throw new TypeError(`the netisle server URL is not a URL: "${server}"`);
    }
    if (url.protocol === "ws:") url.protocol = "http:";
    if (url.protocol === "wss:") url.protocol = "https:";
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new TypeError(`the netisle server URL must be http(s): "${server}"`);
    }
    this.server = url;
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== "function") throw new TypeError("this runtime has no fetch: pass { fetch }");
    this.#fetch = f.bind(globalThis);
    this.#WebSocket = options.WebSocket ??
      (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  }

  /** The WebSocket constructor (TypeError when the runtime has none and none was given). */
  get WebSocket(): WebSocketConstructor {
    if (!this.#WebSocket) {
      throw new TypeError(
        "this runtime has no WebSocket (Node 20): pass { WebSocket } from the ws package",
      );
    }
    return this.#WebSocket;
  }

  /** The absolute URL of `path` (with `query`), on the server. */
  url(path: string, query?: Record<string, string>): URL {
    const u = new URL(path.replace(/^\//, ""), this.server.href.replace(/\/?$/, "/"));
    for (const [k, v] of Object.entries(query ?? {})) u.searchParams.set(k, v);
    return u;
  }

  /** The `ws:`/`wss:` URL of a socket's stream, with the token in the query. */
  streamUrl(sessionId: string, socketId: string, token: string): string {
    const u = this.url(
      `/v1/sessions/${encodeURIComponent(sessionId)}/sockets/${
        encodeURIComponent(socketId)
      }/stream`,
      { token },
    );
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    return u.href;
  }

  /**
   * Sends a request and returns a 2xx response; anything else becomes a
   * NetisleError (the server's code, EUNREACHABLE when it did not answer,
   * ECANCELED when `signal` aborted).
   */
  async request(method: string, path: string, r: ApiRequest): Promise<Response> {
    const headers: Record<string, string> = {};
    if (r.token !== undefined) headers.authorization = `Bearer ${r.token}`;
    let body: string | undefined;
    if (r.json !== undefined) {
      body = JSON.stringify(r.json);
      headers["content-type"] = "application/json";
    }
    let res: Response;
    const url = this.url(path, r.query);
    try {
      res = await this.#fetch(url, { method, headers, body, signal: r.signal });
    } catch (err) {
      if (r.signal?.aborted) {
        throw new NetisleError("ECANCELED", `${r.what}: cancelled`, { cause: err });
      }
      // In a page a CORS refusal looks the same as a network failure: say so.
      const page = "document" in globalThis
        ? "; or the server does not allow this page's origin (NETISLE_CORS_ORIGINS)"
        : "";
      throw new NetisleError(
        "EUNREACHABLE",
        `${r.what}: the netisle server at ${this.server.origin} did not answer (${
          (err as Error)?.message ?? err
        }${page})`,
        { cause: err },
      );
    }
    if (res.status >= 200 && res.status < 300) return res;
    throw await errorFromResponse(res, r.what);
  }

  /** {@linkcode ApiTransport.request} and the JSON of the answer. */
  async json<T>(method: string, path: string, r: ApiRequest): Promise<T> {
    const res = await this.request(method, path, r);
    try {
      return await res.json() as T;
    } catch (err) {
      throw new NetisleError("EPROTO", `${r.what}: the answer is not JSON`, { cause: err });
    }
  }
}
