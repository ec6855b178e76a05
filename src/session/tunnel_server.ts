/**
 * The server side of a tunnel: attaches a WebSocket to a session. With no
 * subprotocol each binary message is one Ethernet frame, both ways (v86
 * "wsproxy" compatible). With the QEMU stream subprotocol
 * (`netisle.qemu-stream.v1`, or container2wasm's `binary`) the messages carry
 * QEMU stream framing: incoming messages are deframed across message
 * boundaries, and the frames the stack emits in one core entry go out in as
 * few messages as the batch limit allows.
 *
 * @module
 */

import { CLOSE_SESSION_ENDED, type Session, type TunnelEndpoint } from "./session.ts";
import {
  batchFrames,
  CLOSE_STREAM_FRAMING_ERROR,
  DEFAULT_MAX_BATCH_BYTES,
  describeFraming,
  MIN_FRAME_LEN,
  type TunnelFraming,
} from "../wire/tunnel_protocol.ts";
import { encodeStreamFrames, StreamDeframer } from "../wire/stream_framing.ts";

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
  /**
   * How messages carry frames: `"frame"` (one frame per message, the
   * default) or `"qemu-stream"` (the negotiated subprotocol; see
   * `selectTunnelSubprotocol` in protocol.ts).
   */
  framing?: TunnelFraming;
  /** The negotiated subprotocol name, for the session view. */
  protocol?: string;
  /** With `"qemu-stream"`: the largest message sent (a longer frame goes alone). Default 64 KiB. */
  maxBatchBytes?: number;
  /**
   * The largest message accepted from the client, whatever the framing
   * (default {@linkcode DEFAULT_MAX_MESSAGE_BYTES}); a longer one closes the
   * socket with {@linkcode CLOSE_MESSAGE_TOO_BIG} (the session stays).
   */
  maxMessageBytes?: number;
}

/** Default of {@linkcode TunnelServerOptions.maxMessageBytes}: 1 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
/** WebSocket close code for a message over the limit (RFC 6455 §7.4.1: message too big). */
export const CLOSE_MESSAGE_TOO_BIG = 1009;

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
 * Messages are validated before they reach the core. Frame per message: a
 * binary message must be one frame between 14 bytes and the session's largest
 * frame, otherwise it is dropped and counted in `tunnelStats.rejectedMessages`.
 * QEMU stream: a frame shorter than 14 bytes is dropped and counted the same
 * way; a length prefix over the session's largest frame counts one rejected
 * message and closes the socket with {@linkcode CLOSE_STREAM_FRAMING_ERROR}
 * (the stream cannot be resynchronised; the session stays). Either way a text
 * message closes the socket with 1003, and a message over `maxMessageBytes`
 * (1 MiB) with 1009.
 */
export function attachWebSocketTunnel(
  session: Session,
  socket: TunnelSocket,
  options: TunnelServerOptions = {},
): void {
  const maxBuffered = options.maxBufferedBytes ?? 4 * 1024 * 1024;
  const maxBatch = options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
  const framing = options.framing ?? "frame";
  const maxFrame = session.stack.maxFrameLen;
  const maxMessage = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  socket.binaryType = "arraybuffer";
  let attached = false;
  const sendOne = (data: Uint8Array, frames: number): void => {
    if (socket.bufferedAmount > maxBuffered) {
      session.tunnelStats.backpressureDrops += frames;
      return;
    }
    try {
      socket.send(data);
    } catch {
      session.tunnelStats.framesWithoutTunnel += frames;
    }
  };
  const endpoint: TunnelEndpoint = {
    description: describeFraming(framing, options.protocol),
    send(frames) {
      if (socket.readyState !== OPEN) {
        session.tunnelStats.framesWithoutTunnel += frames.length;
        return;
      }
      if (framing === "frame") {
        for (const f of frames) sendOne(f, 1);
        return;
      }
      for (const group of batchFrames(frames, maxBatch)) {
        sendOne(encodeStreamFrames(group), group.length);
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
  let batch: Uint8Array[] = [];
  const deframer = framing === "qemu-stream"
    ? new StreamDeframer(maxFrame, (frame) => {
      if (frame.length < MIN_FRAME_LEN) session.tunnelStats.rejectedMessages++;
      else batch.push(frame);
    })
    : undefined;
  let failed = false;
  socket.addEventListener("open", attach);
  socket.addEventListener("message", (ev) => {
    if (failed) return;
    const data = ev.data;
    let bytes: Uint8Array;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (data instanceof Uint8Array) bytes = data;
    else if (typeof data === "string") {
      session.tunnelStats.rejectedMessages++;
      endpoint.close(CLOSE_UNSUPPORTED_DATA, "this tunnel carries binary Ethernet frames only");
      return;
    } else {
      session.tunnelStats.rejectedMessages++;
      return;
    }
    if (bytes.length > maxMessage) {
      failed = true;
      session.tunnelStats.rejectedMessages++;
      endpoint.close(
        CLOSE_MESSAGE_TOO_BIG,
        `message of ${bytes.length} bytes exceeds the limit of ${maxMessage}`,
      );
      return;
    }
    if (deframer) {
      const err = deframer.push(bytes);
      const frames = batch;
      batch = [];
      // Frames before the bad prefix were whole and valid: deliver them.
      if (frames.length > 0) session.input(frames);
      if (err) {
        failed = true;
        session.tunnelStats.rejectedMessages++;
        endpoint.close(
          CLOSE_STREAM_FRAMING_ERROR,
          `qemu-stream framing error: length ${err.length} exceeds ${err.limit}`,
        );
      }
      return;
    }
    if (bytes.length < MIN_FRAME_LEN || bytes.length > maxFrame) {
      session.tunnelStats.rejectedMessages++;
      return;
    }
    session.input([bytes]);
  });
  const detach = () => session.detachTunnel(endpoint);
  socket.addEventListener("close", detach);
  socket.addEventListener("error", detach);
  if (socket.readyState === OPEN) attach();
  if (session.closed) endpoint.close(CLOSE_SESSION_ENDED, "session ended");
}
