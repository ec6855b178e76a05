/**
 * The tunnel client library: carries frames between a local {@linkcode FramePort}
 * (a TAP device, a QEMU socket) and a session's tunnel WebSocket, and
 * reconnects with backoff when the WebSocket drops. Runtime-neutral: it uses
 * the standard `WebSocket` (Deno, Bun, browsers) unless given another.
 *
 * @module
 */

import type { FramePort } from "./ports/frame_port.ts";
import { tunnelUrl } from "./protocol.ts";

/** The states a client goes through. */
export type TunnelClientState = "connecting" | "open" | "waiting" | "closed";

/** A `WebSocket` constructor compatible with the standard one. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocket;

/** Options of {@linkcode TunnelClient}. */
export interface TunnelClientOptions {
  /** Base URL of the netisle server, e.g. `http://127.0.0.1:8787`. */
  server: string;
  sessionId: string;
  token: string;
  port: FramePort;
  /** Defaults to `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** Backoff between reconnects, doubling from `minDelayMs` to `maxDelayMs`. */
  reconnect?: { minDelayMs: number; maxDelayMs: number } | false;
  /** Called on every state change, with a reason when there is one. */
  onState?: (state: TunnelClientState, reason?: string) => void;
  /** Frames waiting while the WebSocket send buffer is above this many bytes are dropped. */
  maxBufferedBytes?: number;
}

/** Counters of a tunnel client. */
export interface TunnelClientStats {
  framesUp: number;
  bytesUp: number;
  framesDown: number;
  bytesDown: number;
  /** Frames read from the port while no WebSocket was open, or over the buffer limit. */
  framesDropped: number;
  connects: number;
}

/** Close codes after which reconnecting cannot help. */
const FINAL_CLOSE_CODES: Record<number, string> = {
  4000: "another tunnel client attached to this session",
  4001: "the session was deleted or expired",
  1003: "the server refused a message",
};

/**
 * A tunnel from a local frame port to a session.
 *
 * @example
 * ```ts
 * const client = new TunnelClient({ server, sessionId, token, port: await openTap({ name: "tap0" }) });
 * client.start();
 * ```
 */
export class TunnelClient {
  readonly stats: TunnelClientStats = {
    framesUp: 0,
    bytesUp: 0,
    framesDown: 0,
    bytesDown: 0,
    framesDropped: 0,
    connects: 0,
  };
  #options: TunnelClientOptions;
  #ws: WebSocket | undefined;
  #state: TunnelClientState = "closed";
  #delay: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  #closedPromise: Promise<string>;
  #resolveClosed!: (reason: string) => void;

  /** Creates a client; nothing happens until {@linkcode TunnelClient.start}. */
  constructor(options: TunnelClientOptions) {
    this.#options = options;
    this.#delay = options.reconnect ? options.reconnect.minDelayMs : 0;
    this.#closedPromise = new Promise((r) => this.#resolveClosed = r);
  }

  /** The current state. */
  get state(): TunnelClientState {
    return this.#state;
  }

  /** Resolves with the reason once the client has stopped for good. */
  get closed(): Promise<string> {
    return this.#closedPromise;
  }

  /** Starts reading the port and connects. */
  start(): void {
    const maxBuffered = this.#options.maxBufferedBytes ?? 4 * 1024 * 1024;
    this.#options.port.start((frames) => {
      const ws = this.#ws;
      for (const f of frames) {
        if (!ws || ws.readyState !== 1 || ws.bufferedAmount > maxBuffered) {
          this.stats.framesDropped++;
          continue;
        }
        ws.send(f);
        this.stats.framesUp++;
        this.stats.bytesUp += f.length;
      }
    });
    this.#connect();
  }

  /** Closes the WebSocket and the port, and stops reconnecting. */
  async close(reason = "closed by the user"): Promise<void> {
    this.#stop(reason);
    await this.#options.port.close();
  }

  #setState(state: TunnelClientState, reason?: string): void {
    this.#state = state;
    this.#options.onState?.(state, reason);
  }

  #connect(): void {
    if (this.#stopped) return;
    const o = this.#options;
    const WS = o.WebSocket ?? globalThis.WebSocket;
    this.#setState("connecting");
    let ws: WebSocket;
    try {
      ws = new WS(tunnelUrl(o.server, o.sessionId, o.token));
    } catch (err) {
      this.#stop(`cannot open a WebSocket to ${o.server}: ${(err as Error).message}`);
      return;
    }
    ws.binaryType = "arraybuffer";
    this.#ws = ws;
    ws.onopen = () => {
      this.stats.connects++;
      if (o.reconnect) this.#delay = o.reconnect.minDelayMs;
      this.#setState("open");
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (!(ev.data instanceof ArrayBuffer)) return;
      const frame = new Uint8Array(ev.data);
      this.stats.framesDown++;
      this.stats.bytesDown += frame.length;
      o.port.send(frame);
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      const final = FINAL_CLOSE_CODES[ev.code];
      if (final) {
        this.#stop(`${final} (close code ${ev.code}${ev.reason ? `: ${ev.reason}` : ""})`);
        return;
      }
      const why = `WebSocket closed (code ${ev.code}${ev.reason ? `: ${ev.reason}` : ""})`;
      if (!o.reconnect || this.#stopped) {
        this.#stop(why);
        return;
      }
      this.#setState("waiting", `${why}; reconnecting in ${Math.round(this.#delay)} ms`);
      this.#timer = setTimeout(() => this.#connect(), this.#delay);
      this.#delay = Math.min(o.reconnect.maxDelayMs, this.#delay * 2);
    };
    ws.onerror = () => {
      // onclose follows and decides what to do.
    };
  }

  #stop(reason: string): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const ws = this.#ws;
    this.#ws = undefined;
    try {
      ws?.close(1000, "client closing");
    } catch {
      // Already closed.
    }
    this.#setState("closed", reason);
    this.#resolveClosed(reason);
  }
}
