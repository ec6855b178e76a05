/**
 * The server side of a tunnel: attaches a WebSocket to a session. With no
 * subprotocol each binary message is one Ethernet frame, both ways (v86
 * "wsproxy" compatible). With the QEMU stream subprotocol
 * (`netisle.qemu-stream.v1`, or container2wasm's `binary`) the messages carry
 * QEMU stream framing: incoming messages are deframed across message
 * boundaries, and the frames the stack emits in one core entry go out in as
 * few messages as the batch limit allows. With the vnet stream
 * (`netisle.vnet-stream.v1`) each record is a virtio-net header and a frame:
 * the tunnel takes TCP segments of up to 64 KiB and partial checksums both
 * ways (segmentation offload), and the stack is told so while it is attached.
 *
 * @module
 */

import { CLOSE_SESSION_ENDED, type Session, type TunnelEndpoint } from "./session.ts";
import {
  batchFrames,
  CLOSE_STREAM_FRAMING_ERROR,
  DEFAULT_MAX_BATCH_BYTES,
  DEFAULT_MAX_VNET_BATCH_BYTES,
  describeFraming,
  MIN_FRAME_LEN,
  type TunnelFraming,
} from "../wire/tunnel_protocol.ts";
import { encodeStreamFrames, StreamDeframer } from "../wire/stream_framing.ts";
import { FrameOffload, LinkOffload, tcpHeaderOffset } from "../stack/frame_offload.ts";
import { largeFrameHeadroom } from "../stack/frame_arena.ts";
import { recycleLargeBuffer } from "../stack/large_buffer_pool.ts";
import {
  completeChecksum,
  tcpv4HeaderOffset,
  VNET_F_DATA_VALID,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_ECN,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  VNET_HDR_LEN,
  writeVnetHeader,
} from "../wire/vnet_header.ts";

/**
 * The part of the standard `WebSocket` interface the tunnel uses, so that
 * Deno's, Bun's, workerd's and the `ws` package's sockets all fit.
 */
export interface TunnelSocket {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: Uint8Array | ArrayBuffer): void;
  /**
   * Sends `data` as one binary message without copying it, writing the
   * socket's own frame header into the `headroom` bytes before it (which
   * the caller hands over); calls `written` once done with the buffer, so
   * that a large frame's buffer goes back to the stack's pool. Optional:
   * our HTTP engine's sockets have it.
   */
  sendInPlace?(data: Uint8Array, headroom: number, written?: (data: Uint8Array) => void): void;
  /**
   * Sends one binary message of the byte `first` and then `rest`, copying
   * `rest` once. Optional: our HTTP engine's sockets have it.
   */
  sendWithFirstByte?(first: number, rest: Uint8Array): void;
  /**
   * Lends binary messages from now on: the caller promises that every
   * `message` listener is done with a binary message's bytes when it
   * returns, and the socket may then deliver a large one as a `Uint8Array`
   * in a buffer it reuses for later messages. Optional: our HTTP engine's
   * sockets have it.
   */
  lendBinaryMessages?(): void;
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
  /**
   * With a stream framing: the largest message sent (a longer frame goes
   * alone). Default 64 KiB, 256 KiB for the vnet stream.
   */
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
  const framing = options.framing ?? "frame";
  const vnet = framing === "vnet-stream";
  const maxBatch = options.maxBatchBytes ??
    (vnet ? DEFAULT_MAX_VNET_BATCH_BYTES : DEFAULT_MAX_BATCH_BYTES);
  const maxFrame = session.stack.maxFrameLen;
  const maxMessage = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  socket.binaryType = "arraybuffer";
  // Every message is consumed before the listener returns: the deframers copy the partial
  // frame they keep, the core copies what it keeps of a frame, and the session copies frames
  // that must wait for the core lock (input's `borrowed`). So a socket that can may lend its
  // buffers (a large upload message then costs no fresh buffer).
  const lending = socket.lendBinaryMessages !== undefined;
  socket.lendBinaryMessages?.();
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
    offload: vnet ? LinkOffload.TSO | LinkOffload.CSUM : 0,
    send(frames, offload) {
      if (socket.readyState !== OPEN) {
        session.tunnelStats.framesWithoutTunnel += frames.length;
        return;
      }
      if (framing === "frame") {
        for (const f of frames) sendOne(f, 1);
        return;
      }
      if (vnet) {
        for (let i = 0; i < frames.length;) {
          // A large frame (a segmentation-offload packet) goes out in place: its record
          // header and the socket's frame header are written into the frame's headroom.
          const room = socket.sendInPlace ? largeFrameHeadroom(frames[i]) : 0;
          if (room >= VNET_RECORD_HEADER_LEN + 10) {
            const record = vnetRecordInPlace(frames[i], offload === undefined ? 0 : offload[i]);
            if (socket.bufferedAmount > maxBuffered) {
              session.tunnelStats.backpressureDrops++;
              recycleLargeBuffer(frames[i]);
            } else {
              try {
                socket.sendInPlace!(record, room - VNET_RECORD_HEADER_LEN, recycleLargeBuffer);
              } catch {
                session.tunnelStats.framesWithoutTunnel++;
                recycleLargeBuffer(frames[i]);
              }
            }
            i++;
            continue;
          }
          const end = vnetBatchEnd(frames, i, maxBatch);
          sendOne(encodeVnetRecords(frames, offload, i, end), end - i);
          // Copied into the message: a large frame's buffer can serve the next one (a socket
          // without an in-place send, such as Bun's).
          for (; i < end; i++) recycleLargeBuffer(frames[i]);
        }
        return;
      }
      for (const group of batchFrames(frames, maxBatch)) {
        sendOne(encodeStreamFrames(group), group.length);
        for (const f of group) recycleLargeBuffer(f); // copied into the message
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
  let batchOffload: number[] = [];
  const deframer = framing === "qemu-stream"
    ? new StreamDeframer(maxFrame, (frame) => {
      if (frame.length < MIN_FRAME_LEN) session.tunnelStats.rejectedMessages++;
      else batch.push(frame);
    })
    : vnet
    ? new StreamDeframer(VNET_HDR_LEN + MAX_GSO_FRAME, (record) => {
      const meta = acceptVnetRecord(record, maxFrame);
      if (meta < 0) {
        session.tunnelStats.rejectedMessages++;
        return;
      }
      batch.push(record.subarray(VNET_HDR_LEN));
      batchOffload.push(meta);
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
      const offload = vnet ? batchOffload : undefined;
      if (vnet) batchOffload = [];
      // Frames before the bad prefix were whole and valid: deliver them.
      if (frames.length > 0) session.input(frames, offload, lending);
      if (err) {
        failed = true;
        session.tunnelStats.rejectedMessages++;
        endpoint.close(
          CLOSE_STREAM_FRAMING_ERROR,
          `${framing} framing error: length ${err.length} exceeds ${err.limit}`,
        );
      }
      return;
    }
    if (bytes.length < MIN_FRAME_LEN || bytes.length > maxFrame) {
      session.tunnelStats.rejectedMessages++;
      return;
    }
    session.input([bytes], undefined, lending);
  });
  const detach = () => session.detachTunnel(endpoint);
  socket.addEventListener("close", detach);
  socket.addEventListener("error", detach);
  if (socket.readyState === OPEN) attach();
  if (session.closed) endpoint.close(CLOSE_SESSION_ENDED, "session ended");
}

/** The largest frame a vnet record carries: an Ethernet header and a 64 KiB IPv4 packet. */
const MAX_GSO_FRAME = 14 + 0xffff;

/**
 * Checks a vnet record from the client (a virtio-net header, then the frame)
 * and returns the frame's `FrameOffload` metadata, or -1 when it must be
 * dropped. A TCPv4 GSO packet (up to 64 KiB, a segment size) is passed whole
 * with its checksum vouched for; a frame with a partial TCP/IPv4 checksum is
 * vouched for too (it comes from the client's own kernel), any other partial
 * checksum is completed in place; other GSO types are refused (TCPv6 among
 * them: the CLI does not ask its TAP for those yet).
 */
function acceptVnetRecord(record: Uint8Array, maxFrame: number): number {
  if (record.length < VNET_HDR_LEN + MIN_FRAME_LEN) return -1;
  const flags = record[0];
  const gsoType = record[1] & ~VNET_GSO_ECN;
  const frame = record.subarray(VNET_HDR_LEN);
  if (gsoType === VNET_GSO_TCPV4) {
    const gsoSize = record[4] | (record[5] << 8);
    if (gsoSize === 0 || tcpv4HeaderOffset(frame) < 0) return -1;
    return FrameOffload.GSO_TCPV4 | FrameOffload.CSUM_VALID | gsoSize;
  }
  if (gsoType !== VNET_GSO_NONE || frame.length > maxFrame) return -1;
  const tcp = tcpv4HeaderOffset(frame);
  if ((flags & VNET_F_NEEDS_CSUM) !== 0) {
    const start = record[6] | (record[7] << 8);
    const offset = record[8] | (record[9] << 8);
    if (tcp >= 0 && start === tcp && offset === 16) return FrameOffload.CSUM_VALID;
    return completeChecksum(frame, start, offset) ? 0 : -1;
  }
  return (flags & VNET_F_DATA_VALID) !== 0 && tcp >= 0 ? FrameOffload.CSUM_VALID : 0;
}

/** The end (exclusive) of the run of frames from `start` whose vnet records fit `maxBytes`. */
function vnetBatchEnd(frames: readonly Uint8Array[], start: number, maxBytes: number): number {
  let size = 4 + VNET_HDR_LEN + frames[start].length;
  let end = start + 1;
  while (end < frames.length) {
    const need = 4 + VNET_HDR_LEN + frames[end].length;
    if (size + need > maxBytes) break;
    size += need;
    end++;
  }
  return end;
}

/** A vnet record's header: the big-endian length, then the virtio-net header. */
const VNET_RECORD_HEADER_LEN = 4 + VNET_HDR_LEN;

/**
 * Writes the record header of `frame` (its length, and the virtio-net header
 * its `FrameOffload` metadata `o` says: partial checksum, TCP GSO over IPv4
 * or IPv6 with its segment size) at `out[at..at + 16]`.
 */
function writeVnetRecordHeader(out: Uint8Array, at: number, frame: Uint8Array, o: number): void {
  const len = VNET_HDR_LEN + frame.length;
  out[at] = len >>> 24;
  out[at + 1] = (len >>> 16) & 0xff;
  out[at + 2] = (len >>> 8) & 0xff;
  out[at + 3] = len & 0xff;
  if (o === 0) {
    out.fill(0, at + 4, at + VNET_RECORD_HEADER_LEN);
    return;
  }
  const tcp = tcpHeaderOffset(frame);
  const gso = (o & FrameOffload.GSO_TCP_ANY) !== 0 && tcp >= 0;
  const partial = (o & FrameOffload.CSUM_PARTIAL) !== 0 && tcp >= 0;
  writeVnetHeader(
    out,
    at + 4,
    partial ? VNET_F_NEEDS_CSUM : 0,
    gso ? ((o & FrameOffload.GSO_TCPV6) !== 0 ? VNET_GSO_TCPV6 : VNET_GSO_TCPV4) : VNET_GSO_NONE,
    gso ? tcp + (frame[tcp + 12] >> 4) * 4 : 0,
    gso ? o & FrameOffload.GSO_SIZE : 0,
    partial ? tcp : 0,
    partial ? 16 : 0,
  );
}

/**
 * `frame` as one vnet record in place: its header written into the
 * {@linkcode VNET_RECORD_HEADER_LEN} bytes before it (the frame's headroom,
 * see `largeFrameHeadroom`), returned as a view over header and frame.
 */
function vnetRecordInPlace(frame: Uint8Array, o: number): Uint8Array {
  const record = new Uint8Array(
    frame.buffer,
    frame.byteOffset - VNET_RECORD_HEADER_LEN,
    VNET_RECORD_HEADER_LEN + frame.length,
  );
  writeVnetRecordHeader(record, 0, frame, o);
  return record;
}

/** Encodes `frames[start..end)` as vnet records, copied into one buffer. */
function encodeVnetRecords(
  frames: readonly Uint8Array[],
  offload: readonly number[] | undefined,
  start: number,
  end: number,
): Uint8Array {
  let total = 0;
  for (let i = start; i < end; i++) total += VNET_RECORD_HEADER_LEN + frames[i].length;
  const out = new Uint8Array(total);
  let at = 0;
  for (let i = start; i < end; i++) {
    const f = frames[i];
    writeVnetRecordHeader(out, at, f, offload === undefined ? 0 : offload[i]);
    out.set(f, at + VNET_RECORD_HEADER_LEN);
    at += VNET_RECORD_HEADER_LEN + f.length;
  }
  return out;
}
