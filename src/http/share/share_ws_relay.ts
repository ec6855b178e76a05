/**
 * Relays a browser's WebSocket, upgraded by the share link, to the
 * WebSocket the target inside the session accepted over TCP: messages both
 * ways (masked frames towards the target, RFC 6455 §5.3), pings answered,
 * closes passed on.
 *
 * - Target → browser: TCP is read only while the browser's WebSocket has
 *   less than 1 MiB buffered, so a browser that stops reading closes the
 *   target's TCP window. The parser's partial frames are charged to the
 *   session's memory quota (1009 when it refuses, or a message is over the
 *   limit).
 * - Browser → target: each message is framed and written in order; what
 *   waits for the send buffer is held and charged; more than 4 MiB waiting
 *   closes with 1009 (a WebSocket cannot be paused).
 * - The share ending (revoked, expired), the session ending, either side
 *   closing: both close, the socket is deleted.
 *
 * @module
 */

import type { TunnelSocket } from "../../session/tunnel_server.ts";
import { sleepOn } from "../../socket/poll_deadline.ts";
import { bufferCost } from "../../stack/session_quota.ts";
import type { Share } from "./share_registry.ts";
import type { Upstream } from "./share_upstream.ts";
import {
  closePayload,
  encodeClientFrame,
  ServerFrameParser,
  WsOpcode,
} from "./websocket_frames.ts";

const HIGH_WATER = 1024 * 1024;
const MAX_QUEUED = 4 * 1024 * 1024;
const READ_BYTES = 64 * 1024;
const POLL_MS = 10;
const OPEN = 1;
const CONNECTING = 0;

/** What {@linkcode relayWebSocket} needs. */
export interface RelayInit {
  /** The share (its session's quota is charged). */
  share: Share;
  /** The target's connection, past its 101 response. */
  upstream: Upstream;
  /** The browser's upgraded WebSocket. */
  client: TunnelSocket;
  /** Bytes that came after the 101 response head. */
  rest: Uint8Array;
  /** Aborts when the share ends or the socket is deleted. */
  abort: AbortController;
  /** Largest message either way. */
  maxMessageBytes: number;
  /** Called once at the end: closes the socket (with a RST when `abort`). */
  done: (abort: boolean) => void;
}

/**
 * Starts relaying; returns at once.
 *
 * @example
 * ```ts
 * relayWebSocket({ share, upstream, client: socket, rest, abort: ac, maxMessageBytes: 1 << 20, done });
 * return response; // the 101
 * ```
 */
export function relayWebSocket(init: RelayInit): void {
  const { share, upstream: up, client: ws, abort } = init;
  const quota = share.session.stack.quota.memory;
  const parser = new ServerFrameParser(init.maxMessageBytes);
  let parserCharge = 0;
  let queued = 0;
  let writeChain: Promise<void> = Promise.resolve();
  let finished = false;
  const signal = abort.signal;

  const closeClient = (code: number, reason: string) => {
    if (ws.readyState !== CONNECTING && ws.readyState !== OPEN) return;
    try {
      ws.close(code, reason.slice(0, 120));
    } catch {
      // closing already
    }
  };
  const finish = (abortTcp: boolean) => {
    if (finished) return;
    finished = true;
    quota.release(parserCharge);
    parserCharge = 0;
    abort.abort();
    init.done(abortTcp);
  };
  const toTarget = (opcode: number, payload: Uint8Array) => {
    const frame = encodeClientFrame(opcode, payload);
    queued += frame.length;
    if (queued > MAX_QUEUED) {
      closeClient(1009, "the target is not reading");
      finish(true);
      return;
    }
    writeChain = writeChain.then(async () => {
      if (finished && opcode !== WsOpcode.CLOSE) return;
      try {
        await up.write(frame, signal);
      } finally {
        queued -= frame.length;
      }
    }).catch(() => {
      closeClient(1011, "the target's connection failed");
      finish(true);
    });
  };

  /** Hands target bytes to the parser; false when the relay ended. */
  const fromTarget = (bytes: Uint8Array): boolean => {
    const r = parser.push(bytes);
    if ("error" in r) {
      closeClient(r.code === 1009 ? 1009 : 1011, `the target: ${r.error}`);
      finish(true);
      return false;
    }
    const want = bufferCost(parser.bufferedBytes) - (parser.bufferedBytes ? 0 : bufferCost(0));
    if (want > parserCharge) {
      if (!quota.tryCharge(want - parserCharge)) {
        closeClient(1009, "ENOBUFS: the session's memory quota is full");
        finish(true);
        return false;
      }
    } else quota.release(parserCharge - want);
    parserCharge = want;
    for (const ev of r.events) {
      if (ev.type === "text") {
        (ws as unknown as { send(d: string): void }).send(new TextDecoder().decode(ev.data));
      } else if (ev.type === "binary") ws.send(ev.data);
      else if (ev.type === "ping") toTarget(WsOpcode.PONG, ev.data);
      else if (ev.type === "close") {
        toTarget(WsOpcode.CLOSE, closePayload(ev.code));
        const code = ev.code === undefined || ev.code === 1005 || ev.code === 1006 ||
            ev.code === 1015
          ? 1000
          : ev.code;
        closeClient(code, ev.reason);
        void writeChain.then(() => finish(false));
        return false;
      }
    }
    return true;
  };

  const pump = async () => {
    try {
      if (init.rest.length > 0 && !fromTarget(init.rest.slice())) return;
      for (;;) {
        while (ws.readyState === OPEN && ws.bufferedAmount > HIGH_WATER) {
          await sleepOn(up.clock, POLL_MS, signal);
        }
        const c = up.sock.read(READ_BYTES);
        if (c === undefined) {
          await up.sock.waitReadable(signal);
          continue;
        }
        if (c === null) {
          closeClient(1011, "the target closed its connection without a close frame");
          finish(false);
          return;
        }
        if (!fromTarget(c)) return;
      }
    } catch {
      if (finished) return;
      closeClient(1011, "the share link ended or the target's connection failed");
      finish(true);
    }
  };

  ws.binaryType = "arraybuffer";
  ws.addEventListener("message", (ev) => {
    if (finished) return;
    const d = ev.data;
    let payload: Uint8Array;
    let opcode: number;
    if (typeof d === "string") {
      payload = new TextEncoder().encode(d);
      opcode = WsOpcode.TEXT;
    } else if (d instanceof ArrayBuffer) {
      payload = new Uint8Array(d);
      opcode = WsOpcode.BINARY;
    } else if (d instanceof Uint8Array) {
      payload = d;
      opcode = WsOpcode.BINARY;
    } else return;
    if (payload.length > init.maxMessageBytes) {
      closeClient(1009, `a message over ${init.maxMessageBytes} bytes`);
      finish(true);
      return;
    }
    toTarget(opcode, payload);
  });
  const onClientGone = () => {
    if (finished) return;
    toTarget(WsOpcode.CLOSE, closePayload(1000));
    void writeChain.then(() => finish(false));
  };
  ws.addEventListener("close", onClientGone);
  ws.addEventListener("error", onClientGone);
  signal.addEventListener("abort", () => {
    closeClient(1001, "the share link ended");
    finish(true);
  }, { once: true });
  if (ws.readyState === CONNECTING) ws.addEventListener("open", () => void pump());
  else void pump();
}
