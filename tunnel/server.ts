/**
 * The server side of a tunnel: attaches a WebSocket to a session, turning
 * each binary message into one Ethernet frame for the stack and each frame the
 * stack emits into one message (v86 "wsproxy" compatible framing).
 *
 * @module
 */

import { CLOSE_SESSION_ENDED, type Session, type TunnelEndpoint } from "../src/session/mod.ts";
import { MIN_FRAME_LEN } from "./protocol.ts";

/**
 * The part of the standard `WebSocket` interface the tunnel uses, so that
 * Deno's, Bun's, workerd's and the `ws` package's sockets all fit.
 */
export interface TunnelSocket {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: Uint8Array | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open" | "close" | "error", listener: () => void): void;
  addEventListener(type: "message", listener: (ev: { data: unknown }) => void): void;
}

/** Options of {@linkcode attachWebSocketTunnel}. */
export interface TunnelServerOptions {
  /**
   * When more than this many bytes wait in the socket's send buffer, further
   * frames are dropped (and counted) instead of queued without bound; TCP
   * retransmits what matters.
   */
  maxBufferedBytes?: number;
}

/** WebSocket close code for a text message (RFC 6455 §7.4.1: unsupported data). */
export const CLOSE_UNSUPPORTED_DATA = 1003;
/** WebSocket close code for a going-away server. */
export const CLOSE_GOING_AWAY = 1001;

const OPEN = 1;

/**
 * Attaches `socket` to `session` as its tunnel, replacing any earlier tunnel.
 * The session outlives the socket: when the socket closes, the session keeps
 * its stack and a later tunnel reattaches to it.
 *
 * Messages are validated before they reach the core: a binary message must be
 * one frame between 14 bytes and the session's largest frame, otherwise it is
 * dropped and counted in `tunnelStats.rejectedMessages`; a text message closes
 * the socket with 1003.
 */
export function attachWebSocketTunnel(
  session: Session,
  socket: TunnelSocket,
  options: TunnelServerOptions = {},
): void {
  const maxBuffered = options.maxBufferedBytes ?? 4 * 1024 * 1024;
  const maxFrame = session.stack.maxFrameLen;
  socket.binaryType = "arraybuffer";
  let attached = false;
  const endpoint: TunnelEndpoint = {
    description: "websocket frame-per-message",
    send(frames) {
      if (socket.readyState !== OPEN) {
        session.tunnelStats.framesWithoutTunnel += frames.length;
        return;
      }
      for (const f of frames) {
        if (socket.bufferedAmount > maxBuffered) {
          session.tunnelStats.backpressureDrops++;
          continue;
        }
        try {
          socket.send(f);
        } catch {
          session.tunnelStats.framesWithoutTunnel++;
        }
      }
    },
    close(code, reason) {
      try {
        socket.close(code, reason);
      } catch {
        // Already closing: nothing to do.
      }
    },
  };
  const attach = () => {
    if (attached) return;
    attached = true;
    session.attachTunnel(endpoint);
  };
  socket.addEventListener("open", attach);
  socket.addEventListener("message", (ev) => {
    const data = ev.data;
    let frame: Uint8Array;
    if (data instanceof ArrayBuffer) frame = new Uint8Array(data);
    else if (data instanceof Uint8Array) frame = data;
    else if (typeof data === "string") {
      session.tunnelStats.rejectedMessages++;
      endpoint.close(CLOSE_UNSUPPORTED_DATA, "this tunnel carries binary Ethernet frames only");
      return;
    } else {
      session.tunnelStats.rejectedMessages++;
      return;
    }
    if (frame.length < MIN_FRAME_LEN || frame.length > maxFrame) {
      session.tunnelStats.rejectedMessages++;
      return;
    }
    session.input([frame]);
  });
  const detach = () => session.detachTunnel(endpoint);
  socket.addEventListener("close", detach);
  socket.addEventListener("error", detach);
  if (socket.readyState === OPEN) attach();
  if (session.closed) endpoint.close(CLOSE_SESSION_ENDED, "session ended");
}
