/**
 * The server end of one Wisp connection (src/wire/wisp.ts): a WebSocket
 * whose streams are TCP and UDP sockets in one session's table.
 *
 * - **v1** (no subprotocol offered): CONTINUE on stream 0 with the packet
 *   count every stream starts with, then streams.
 * - **v2** (a subprotocol offered, which the route answers): INFO first
 *   (extensions: UDP, stream-open confirmation, the MOTD when configured,
 *   and password authentication, required when the upgrade carried no token:
 *   the password is the session's token, compared in constant time); the
 *   client's INFO within the handshake timeout; then CONTINUE on stream 0.
 *   A wrong password is CLOSE 0xc0, a missing one 0xc2, on stream 0, then the
 *   WebSocket closes.
 * - **Limits.** Streams per connection (0x49 beyond), the session's socket
 *   quota (each stream is a socket: 0x49 when it is full), bytes queued per
 *   stream and the session's memory quota (0x49), the largest message
 *   (1009), and what waits in the WebSocket: reads from TCP stop while the
 *   streams' DATA the WebSocket has not sent reaches the high-water mark, and
 *   a client that leaves more than `maxControlBacklogBytes` of CLOSE and
 *   CONTINUE packets unread (a CONNECT flood it does not read the answers
 *   of) is closed with 1008.
 * - Hostile bytes never throw: malformed packets are counted and dropped (a
 *   CONNECT whose header parsed gets CLOSE 0x41).
 *
 * @module
 */

import type { Session } from "../../session/mod.ts";
import type { TunnelSocket } from "../../session/tunnel_server.ts";
import type { SocketTable } from "../../socket/socket_table.ts";
import { constantTimeEqual } from "../auth.ts";
import {
  decodeWispPacket,
  encodeWispClose,
  encodeWispContinue,
  encodeWispInfo,
  WispCloseReason,
  type WispExtension,
  WispExtensionId,
  WispPacketType,
  wispPasswordCandidates,
  WispStreamType,
} from "../../wire/mod.ts";
import { wispDestination } from "./wisp_destination.ts";
import {
  DEFAULT_WISP_OPTIONS,
  type ResolvedWispOptions,
  type WispLink,
  type WispOptions,
} from "./wisp_link.ts";
import { WispTcpStream } from "./wisp_tcp_stream.ts";
import { WispUdpStream } from "./wisp_udp_stream.ts";
import { WsSendLedger } from "./ws_send_ledger.ts";

/** WebSocket close code: a text message (RFC 6455 §7.4.1). */
export const WISP_CLOSE_UNSUPPORTED_DATA = 1003;
/** WebSocket close code: the client does not read its answers (policy violation). */
export const WISP_CLOSE_POLICY = 1008;
/** WebSocket close code: a message over the limit. */
export const WISP_CLOSE_TOO_BIG = 1009;
/** WebSocket close code: the session ended. */
export const WISP_CLOSE_SESSION_ENDED = 4001;

const CONNECTING = 0;
const OPEN = 1;

/** How the connection was authenticated at the upgrade. */
export interface WispConnectionInit {
  /** The session whose network the streams open connections in. */
  session: Session;
  /** The upgraded WebSocket. */
  socket: TunnelSocket;
  /** Whether the client offered a subprotocol (Wisp v2). */
  v2: boolean;
  /** Whether the upgrade carried the session's token; without it v2's password is required. */
  authenticated: boolean;
  /** Tuning and limits. */
  options?: WispOptions;
  /**
   * Called when a connection without a token authenticates (v2 password);
   * false refuses it (CLOSE 0x49 on stream 0: the session has its maximum of
   * connections).
   */
  onAuthenticated?: () => boolean;
  /** Called once when the connection ends, with whether it had authenticated. */
  onEnd?: (authenticated: boolean) => void;
}

type Stream = WispTcpStream | WispUdpStream;

/** Counters of the Wisp connections of each session (events by name). */
const SESSION_COUNTERS = new WeakMap<Session, Map<string, number>>();

/**
 * The Wisp counters of `session` (streams opened, refused by reason,
 * protocol errors), summed over its connections.
 *
 * @example
 * ```ts
 * wispCounters(session).get("refused_0x48"); // CONNECTs outside the session
 * ```
 */
export function wispCounters(session: Session): ReadonlyMap<string, number> {
  return SESSION_COUNTERS.get(session) ?? new Map();
}

/**
 * One Wisp connection.
 *
 * @example
 * ```ts
 * const { socket, response } = upgradeWebSocket(req);
 * new WispConnection({ session, socket, v2: false, authenticated: true }).start();
 * return response;
 * ```
 */
export class WispConnection implements WispLink {
  /** The session. */
  readonly session: Session;
  /** Its socket table. */
  readonly table: SocketTable;
  /** The options in force. */
  readonly options: ResolvedWispOptions;
  #ws: TunnelSocket;
  #v2: boolean;
  #authenticated: boolean;
  #ready = false;
  #ended = false;
  #onEnd: ((authenticated: boolean) => void) | undefined;
  #onAuthenticated: (() => boolean) | undefined;
  #confirmsOpen = false;
  #streams = new Map<number, Stream>();
  #counters: Map<string, number>;
  #ledger: WsSendLedger;
  #handshakeTimer: number | undefined;
  #sessionTimer: number | undefined;

  /** A connection over `init.socket`; call {@linkcode WispConnection.start}. */
  constructor(init: WispConnectionInit) {
    this.session = init.session;
    this.table = init.session.sockets;
    this.options = { ...DEFAULT_WISP_OPTIONS, ...init.options };
    this.#ws = init.socket;
    this.#v2 = init.v2;
    this.#authenticated = init.authenticated;
    this.#onEnd = init.onEnd;
    this.#onAuthenticated = init.onAuthenticated;
    let c = SESSION_COUNTERS.get(init.session);
    if (!c) SESSION_COUNTERS.set(init.session, c = new Map());
    this.#counters = c;
    this.#ledger = new WsSendLedger(
      init.socket,
      init.session.stack.quota.memory,
      init.session.clock,
      this.options.highWaterBytes,
      this.options.drainPollMs,
    );
  }

  /** Whether the client asked for v2's stream-open confirmation. */
  get confirmsOpen(): boolean {
    return this.#confirmsOpen;
  }

  /** Streams open now. */
  get streamCount(): number {
    return this.#streams.size;
  }

  /** Starts the handshake once the WebSocket is open. */
  start(): void {
    const ws = this.#ws;
    ws.binaryType = "arraybuffer";
    ws.addEventListener("message", (ev) => this.#onMessage(ev.data));
    ws.addEventListener("close", () => this.#end());
    ws.addEventListener("error", () => this.#end());
    if (ws.readyState === CONNECTING) ws.addEventListener("open", () => this.#opened());
    else if (ws.readyState === OPEN) this.#opened();
    else this.#end();
  }

  // ------------------------------------------------------------ WispLink

  /** Counts one event. */
  count(what: string): void {
    this.#counters.set(what, (this.#counters.get(what) ?? 0) + 1);
  }

  /** Sends a control packet now; closes with 1008 when the client leaves too many unread. */
  sendControl(message: Uint8Array<ArrayBuffer>): void {
    if (this.#ended || this.#ws.readyState !== OPEN) return;
    this.#ledger.sendNow(message);
    const limit = this.options.highWaterBytes + this.options.chunkBytes +
      this.options.maxControlBacklogBytes;
    if (this.#ws.bufferedAmount > limit) {
      this.count("closed_backlog");
      this.#close(WISP_CLOSE_POLICY, "the client does not read what the server sends");
      this.#end();
    }
  }

  /** Resolves once `bytes` fit the WebSocket budget and the memory quota. */
  reserve(bytes: number, signal: AbortSignal): Promise<void> {
    return this.#ledger.reserve(bytes, signal);
  }

  /** Sends a DATA packet against a reservation. */
  sendReserved(message: Uint8Array<ArrayBuffer>, reserved: number): void {
    this.#ledger.sendReserved(message, reserved);
  }

  /** Gives a reservation back unused. */
  cancelReservation(reserved: number): void {
    this.#ledger.cancelReservation(reserved);
  }

  /** Removes stream `id`. */
  forget(id: number): void {
    this.#streams.delete(id);
  }

  // ------------------------------------------------------------ handshake

  #opened(): void {
    if (this.#ended) return;
    const o = this.options;
    this.#sessionTimer = this.session.clock.setTimer(
      this.session.clock.now() + 1000,
      () => this.#checkSession(),
    );
    if (!this.#v2) {
      if (!this.#authenticated) {
        this.#close(WISP_CLOSE_POLICY, "EUNAUTHORIZED: the session's token is required");
        this.#end();
        return;
      }
      this.#becomeReady();
      return;
    }
    const exts: WispExtension[] = [
      { id: WispExtensionId.UDP, data: new Uint8Array(0) },
      { id: WispExtensionId.STREAM_CONFIRMATION, data: new Uint8Array(0) },
    ];
    if (!this.#authenticated) {
      exts.push({ id: WispExtensionId.PASSWORD, data: new Uint8Array([1]) });
    }
    if (o.motd) exts.push({ id: WispExtensionId.MOTD, data: new TextEncoder().encode(o.motd) });
    this.sendControl(encodeWispInfo(2, 0, exts));
    this.#handshakeTimer = this.session.clock.setTimer(
      this.session.clock.now() + o.handshakeTimeoutMs,
      () => this.#handshakeTimedOut(),
    );
  }

  #handshakeTimedOut(): void {
    this.#handshakeTimer = undefined;
    if (this.#ready || this.#ended) return;
    this.count("handshake_timeout");
    if (!this.#authenticated) {
      this.#reject(WispCloseReason.AUTH_MISSING, "no INFO with the session's token in time");
      return;
    }
    // An authenticated client that sends no INFO: proceed as v1 (draft 2's rule).
    this.#becomeReady();
  }

  #onClientInfo(extensions: WispExtension[]): void {
    if (this.#ready) return;
    if (!this.#authenticated) {
      const ext = extensions.find((e) => e.id === WispExtensionId.PASSWORD);
      if (!ext) {
        this.#reject(WispCloseReason.AUTH_MISSING, "the password extension is required");
        return;
      }
      let good = false;
      for (const c of wispPasswordCandidates(ext.data)) {
        // Every candidate is compared: the time does not say which one matched.
        if (constantTimeEqual(c.password, this.session.token)) good = true;
      }
      if (!good) {
        this.count("auth_failed");
        this.#reject(WispCloseReason.AUTH_BAD_PASSWORD, "wrong password");
        return;
      }
      if (this.#onAuthenticated && !this.#onAuthenticated()) {
        this.count("refused_connections_per_session");
        this.#reject(WispCloseReason.THROTTLED, "the session has its maximum of Wisp connections");
        return;
      }
      this.#authenticated = true;
    }
    this.#confirmsOpen = extensions.some((e) => e.id === WispExtensionId.STREAM_CONFIRMATION);
    this.#becomeReady();
  }

  #becomeReady(): void {
    if (this.#handshakeTimer !== undefined) this.session.clock.clearTimer(this.#handshakeTimer);
    this.#handshakeTimer = undefined;
    this.#ready = true;
    this.count(this.#v2 ? "connections_v2" : "connections_v1");
    this.sendControl(encodeWispContinue(0, this.options.bufferPackets));
  }

  #reject(reason: number, why: string): void {
    this.sendControl(encodeWispClose(0, reason));
    this.#close(WISP_CLOSE_POLICY, `wisp: ${why}`);
    this.#end();
  }

  #checkSession(): void {
    this.#sessionTimer = undefined;
    if (this.#ended) return;
    if (this.session.closed) {
      this.#close(WISP_CLOSE_SESSION_ENDED, "the session ended");
      this.#end();
      return;
    }
    this.#sessionTimer = this.session.clock.setTimer(
      this.session.clock.now() + 1000,
      () => this.#checkSession(),
    );
  }

  // ------------------------------------------------------------ packets

  #onMessage(data: unknown): void {
    if (this.#ended) return;
    let bytes: Uint8Array;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (data instanceof Uint8Array) bytes = data;
    else {
      this.count("closed_text");
      this.#close(WISP_CLOSE_UNSUPPORTED_DATA, "Wisp packets are binary messages");
      this.#end();
      return;
    }
    if (bytes.length > this.options.maxMessageBytes) {
      this.count("closed_too_big");
      this.#close(WISP_CLOSE_TOO_BIG, `a message over ${this.options.maxMessageBytes} bytes`);
      this.#end();
      return;
    }
    const r = decodeWispPacket(bytes);
    if (!r.ok) {
      this.count(r.reason);
      // A CONNECT whose header parsed is answered, so the client does not wait on it.
      if (this.#ready && bytes[0] === WispPacketType.CONNECT && bytes.length >= 5) {
        const id = new DataView(bytes.buffer, bytes.byteOffset).getUint32(1, true);
        if (id !== 0 && !this.#streams.has(id)) {
          this.sendControl(encodeWispClose(id, WispCloseReason.INVALID));
        }
      }
      return;
    }
    const p = r.value;
    if (!this.#ready) {
      if (p.type === "info" && p.streamId === 0) this.#onClientInfo(p.extensions);
      else if (p.type === "close" && p.streamId === 0) this.#closeByClient();
      else this.count("before_handshake");
      return;
    }
    switch (p.type) {
      case "connect":
        this.#onConnect(p.streamId, p.streamType, p.port, p.hostname);
        return;
      case "data": {
        const s = this.#streams.get(p.streamId);
        if (s) s.onData(p.payload);
        else this.count("data_unknown_stream");
        return;
      }
      case "close": {
        if (p.streamId === 0) {
          this.#closeByClient();
          return;
        }
        const s = this.#streams.get(p.streamId);
        if (s) {
          this.#streams.delete(p.streamId);
          s.onClientClose();
        }
        return;
      }
      default:
        this.count(`ignored_${p.type}`);
    }
  }

  #onConnect(id: number, streamType: number, port: number, hostname: string): void {
    if (id === 0) {
      this.count("connect_stream_0");
      return;
    }
    const old = this.#streams.get(id);
    if (old) {
      // The client reused a live id: both ends lost track of it.
      this.count("connect_duplicate_id");
      this.#streams.delete(id);
      old.onConnectionGone();
      this.sendControl(encodeWispClose(id, WispCloseReason.INVALID));
      return;
    }
    if (this.session.closed) {
      this.#close(WISP_CLOSE_SESSION_ENDED, "the session ended");
      this.#end();
      return;
    }
    const dest = wispDestination(this.session, streamType, hostname, port);
    if (dest.kind === "refused") {
      this.count(`refused_0x${dest.reason.toString(16)}`);
      this.sendControl(encodeWispClose(id, dest.reason));
      return;
    }
    if (this.#streams.size >= this.options.maxStreamsPerConnection) {
      this.count("refused_streams_per_connection");
      this.sendControl(encodeWispClose(id, WispCloseReason.THROTTLED));
      return;
    }
    const tcp = streamType === WispStreamType.TCP;
    let entry;
    try {
      entry = this.table.create(tcp ? "tcp" : "udp");
    } catch {
      // The session's socket quota is full (or the session is ending).
      this.count("refused_socket_quota");
      this.sendControl(encodeWispClose(id, WispCloseReason.THROTTLED));
      return;
    }
    const stream: Stream = tcp
      ? new WispTcpStream(this, id, entry)
      : new WispUdpStream(this, id, entry, dest.kind);
    this.#streams.set(id, stream);
    void stream.open(dest.address, dest.port);
  }

  #closeByClient(): void {
    this.#close(1000, "the client closed stream 0");
    this.#end();
  }

  // ------------------------------------------------------------ end

  #close(code: number, reason: string): void {
    const ws = this.#ws;
    if (ws.readyState !== CONNECTING && ws.readyState !== OPEN) return;
    try {
      ws.close(code, reason);
    } catch {
      // Already closing.
    }
  }

  /** The WebSocket is gone (or being closed): every stream is reset, every charge given back. */
  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    const clock = this.session.clock;
    for (const t of [this.#handshakeTimer, this.#sessionTimer]) {
      if (t !== undefined) clock.clearTimer(t);
    }
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    for (const s of streams) s.onConnectionGone();
    this.#ledger.close();
    this.#onEnd?.(this.#authenticated);
  }
}
