/**
 * The tunnel client library: carries frames between a local {@linkcode FramePort}
 * (a TAP device, a QEMU socket) and a session's tunnel WebSocket, and
 * reconnects with backoff when the WebSocket drops. Runtime-neutral: it uses
 * the standard `WebSocket` (Deno, Bun, browsers) unless given another.
 *
 * Framing: one frame per message by default; with `framing: "qemu-stream"` it
 * offers the `netisle.qemu-stream.v1` subprotocol and sends every batch of
 * frames the port read in one poll as one message (up to `maxBatchBytes`).
 * With `framing: "vnet-stream"` (a port that passes virtio-net headers
 * through, a TAP with offloads) it offers `netisle.vnet-stream.v1` first and
 * QEMU stream after: on the first, the port's records (TSO packets whole,
 * partial checksums) cross the tunnel as they are, both ways; on the second
 * the port goes back to plain frames.
 * Keepalive: with a socket that can ping (the `ws` package), a ping every
 * `keepalive.intervalMs`; no pong within `keepalive.timeoutMs` terminates the
 * socket and reconnects.
 *
 * @module
 */

import type { FramePort } from "./ports/frame_port.ts";
import { isPingable, type KeepaliveOptions, startKeepalive } from "./keepalive.ts";
import {
  batchFrames,
  CLOSE_STREAM_FRAMING_ERROR,
  DEFAULT_MAX_BATCH_BYTES,
  DEFAULT_MAX_VNET_BATCH_BYTES,
  QEMU_STREAM_SUBPROTOCOL,
  type TunnelFraming,
  tunnelUrl,
  VNET_STREAM_SUBPROTOCOL,
} from "../src/wire/tunnel_protocol.ts";
import {
  encodeStreamFrames,
  StreamDeframer,
  streamFramesLength,
  writeStreamFrames,
} from "../src/wire/stream_framing.ts";
import { VNET_HDR_LEN } from "../src/wire/vnet_header.ts";

/** A WebSocket that builds a message in its own frame buffer (this CLI's `TunnelWebSocket`). */
interface FilledSender {
  sendFilled(length: number, fill: (payload: Uint8Array) => void): void;
}

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
  /**
   * `"frame"` (one frame per message, default), `"qemu-stream"` (the
   * subprotocol, batched) or `"vnet-stream"` (offered first, QEMU stream
   * after; needs a port with `setVnetPassthrough`).
   */
  framing?: TunnelFraming;
  /** With a stream framing: the largest message sent. Default 64 KiB (256 KiB for vnet). */
  maxBatchBytes?: number;
  /**
   * Ping timing, or `false` (the default) for none. Needs a WebSocket with
   * `ping()` (the `ws` package); ignored for one without.
   */
  keepalive?: KeepaliveOptions | false;
}

/** Counters of a tunnel client. */
export interface TunnelClientStats {
  framesUp: number;
  bytesUp: number;
  /** WebSocket messages sent (fewer than frames when batching). */
  messagesUp: number;
  framesDown: number;
  bytesDown: number;
  /** WebSocket messages received. */
  messagesDown: number;
  /** Frames read from the port while no WebSocket was open, or over the buffer limit. */
  framesDropped: number;
  /** Messages from the server that were not binary, or frames shorter than 14 bytes. */
  rejectedDown: number;
  /** Successful WebSocket opens (the first one and every reconnect). */
  connects: number;
  /** Sockets terminated because a pong did not arrive in time. */
  keepaliveTimeouts: number;
}

/** Close codes after which reconnecting cannot help. */
const FINAL_CLOSE_CODES: Record<number, string> = {
  4000: "another tunnel client attached to this session",
  4001: "the session was deleted or expired",
  [CLOSE_STREAM_FRAMING_ERROR]: "the server refused our stream framing",
  1003: "the server refused a message",
  4004: "the session's isolate died (ESESSIONDEAD)",
};

/** The `ws` package's extra: close the TCP connection at once, without a closing handshake. */
interface Terminable {
  terminate(): void;
}

/**
 * A tunnel from a local frame port to a session.
 *
 * @example
 * ```ts ignore
 * const client = new TunnelClient({ server, sessionId, token, port: await openTap({ name: "tap0" }) });
 * client.start();
 * ```
 */
export class TunnelClient {
  readonly stats: TunnelClientStats = {
    framesUp: 0,
    bytesUp: 0,
    messagesUp: 0,
    framesDown: 0,
    bytesDown: 0,
    messagesDown: 0,
    framesDropped: 0,
    rejectedDown: 0,
    connects: 0,
    keepaliveTimeouts: 0,
  };
  #options: TunnelClientOptions;
  #ws: WebSocket | undefined;
  #state: TunnelClientState = "closed";
  #delay: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  #closedPromise: Promise<string>;
  #resolveClosed!: (reason: string) => void;
  #interruptReason: string | undefined;
  /** The open WebSocket carries vnet records (the port passes them through). */
  #vnet = false;

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

  /** The framing asked for. */
  get framing(): TunnelFraming {
    return this.#options.framing ?? "frame";
  }

  /** The framing of the open WebSocket (vnet-stream may have fallen back to qemu-stream). */
  get activeFraming(): TunnelFraming {
    const f = this.framing;
    return f === "vnet-stream" && !this.#vnet ? "qemu-stream" : f;
  }

  /** Resolves with the reason once the client has stopped for good. */
  get closed(): Promise<string> {
    return this.#closedPromise;
  }

  /** Starts reading the port and connects. */
  start(): void {
    const maxBuffered = this.#options.maxBufferedBytes ?? 4 * 1024 * 1024;
    const maxBatch = this.#options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
    const maxVnetBatch = this.#options.maxBatchBytes ?? DEFAULT_MAX_VNET_BATCH_BYTES;
    const stream = this.framing !== "frame";
    // The port may lend its read buffer: every frame is copied into a message before the sink
    // returns (our WebSocket client copies on send; another socket gets a copy of its own).
    this.#options.port.start((frames) => {
      const ws = this.#ws;
      if (!ws || ws.readyState !== 1) {
        this.stats.framesDropped += frames.length;
        return;
      }
      // vnet records are stream-framed like frames, with their header in front.
      const groups = stream
        ? batchFrames(frames, this.#vnet ? maxVnetBatch : maxBatch)
        : frames.map((f) => [f]);
      const filled = (ws as Partial<FilledSender>).sendFilled;
      for (const group of groups) {
        if (ws.bufferedAmount > maxBuffered) {
          this.stats.framesDropped += group.length;
          continue;
        }
        if (filled !== undefined) {
          // One copy, straight into the masked frame.
          if (stream) {
            filled.call(ws, streamFramesLength(group), (o) => writeStreamFrames(o, group));
          } else filled.call(ws, group[0].length, (o) => o.set(group[0]));
        } else {
          ws.send(stream ? encodeStreamFrames(group) : group[0].slice());
        }
        this.stats.messagesUp++;
        this.stats.framesUp += group.length;
        const header = this.#vnet ? VNET_HDR_LEN : 0;
        for (const f of group) this.stats.bytesUp += f.length - header;
      }
    }, { borrowed: true });
    this.#connect();
  }

  /**
   * Drops the current WebSocket as a network fault would (at once, without a
   * closing handshake where the socket allows it); the client then
   * reconnects with backoff like after any drop. For fault injection.
   */
  interrupt(reason = "interrupted"): void {
    const ws = this.#ws;
    if (!ws || this.#stopped) return;
    this.#interruptReason = reason;
    const t = ws as unknown as Partial<Terminable>;
    try {
      if (typeof t.terminate === "function") t.terminate();
      else ws.close(4003, reason.slice(0, 100));
    } catch {
      // Already closing.
    }
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
    const stream = this.framing !== "frame";
    const offerVnet = this.framing === "vnet-stream";
    this.#setState("connecting");
    let ws: WebSocket;
    try {
      const url = tunnelUrl(o.server, o.sessionId, o.token);
      // A client that offers subprotocols fails if the server picks none: the new framing
      // first, the older after (DESIGN.md, tunnel wire formats).
      ws = offerVnet
        ? new WS(url, [VNET_STREAM_SUBPROTOCOL, QEMU_STREAM_SUBPROTOCOL])
        : stream
        ? new WS(url, [QEMU_STREAM_SUBPROTOCOL])
        : new WS(url);
    } catch (err) {
      this.#stop(`cannot open a WebSocket to ${o.server}: ${(err as Error).message}`);
      return;
    }
    ws.binaryType = "arraybuffer";
    this.#ws = ws;
    this.#interruptReason = undefined;
    let stopKeepalive = () => {};
    // A new stream per connection: a partial frame cannot continue on another socket.
    let deframer = stream
      ? new StreamDeframer(o.port.maxFrameLen, (frame) => this.#deliver(frame))
      : undefined;
    ws.onopen = () => {
      const accepted = ws.protocol === QEMU_STREAM_SUBPROTOCOL ||
        (offerVnet && ws.protocol === VNET_STREAM_SUBPROTOCOL);
      if (stream && !accepted) {
        this.#stop(
          `the server did not accept subprotocol ${QEMU_STREAM_SUBPROTOCOL} ` +
            `(answered ${JSON.stringify(ws.protocol)}); try --framing frame`,
        );
        return;
      }
      if (offerVnet) {
        // vnet records (up to a 64 KiB segment behind a 10-byte header) pass through the port.
        this.#vnet = ws.protocol === VNET_STREAM_SUBPROTOCOL;
        if (o.port.setVnetPassthrough?.(this.#vnet) !== this.#vnet) {
          this.#stop(`${o.port.name} cannot pass virtio-net headers through for ${ws.protocol}`);
          return;
        }
        if (this.#vnet) {
          deframer = new StreamDeframer(VNET_HDR_LEN + 14 + 0xffff, (r) => this.#deliver(r));
        }
      }
      this.stats.connects++;
      if (o.reconnect) this.#delay = o.reconnect.minDelayMs;
      if (o.keepalive && isPingable(ws)) {
        stopKeepalive = startKeepalive(ws, o.keepalive, (why) => {
          this.stats.keepaliveTimeouts++;
          this.#interruptReason = `keepalive: ${why}`;
          const t = ws as unknown as Partial<Terminable>;
          if (typeof t.terminate === "function") t.terminate();
          else ws.close(4003, "keepalive timeout");
        });
      }
      this.#setState("open");
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (!(ev.data instanceof ArrayBuffer)) {
        this.stats.rejectedDown++;
        return;
      }
      this.stats.messagesDown++;
      const bytes = new Uint8Array(ev.data);
      if (!deframer) {
        this.#deliver(bytes);
        return;
      }
      const err = deframer.push(bytes);
      if (err) {
        this.stats.rejectedDown++;
        this.#interruptReason =
          `server sent a bad stream length ${err.length} (limit ${err.limit})`;
        ws.close(CLOSE_STREAM_FRAMING_ERROR, "qemu-stream framing error");
      }
    };
    ws.onclose = (ev: CloseEvent) => {
      stopKeepalive();
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      const final = FINAL_CLOSE_CODES[ev.code];
      if (final) {
        this.#stop(`${final} (close code ${ev.code}${ev.reason ? `: ${ev.reason}` : ""})`);
        return;
      }
      const why = this.#interruptReason ??
        `WebSocket closed (code ${ev.code}${ev.reason ? `: ${ev.reason}` : ""})`;
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

  #deliver(frame: Uint8Array): void {
    const header = this.#vnet ? VNET_HDR_LEN : 0;
    if (frame.length < header + 14) {
      this.stats.rejectedDown++;
      return;
    }
    this.stats.framesDown++;
    this.stats.bytesDown += frame.length - header;
    this.#options.port.send(frame);
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
