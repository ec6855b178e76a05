/**
 * The socket stream protocol `netisle.stream.v1`: what the WebSocket of
 * `GET /v1/sessions/:sid/sockets/:id/stream` carries when the client offers
 * that subprotocol. Pure encoders and a decoder, shared by the server
 * (socket_stream_v1.ts, udp_stream.ts) and the client SDK (src/client), so
 * both ends read the same definition.
 *
 * Without the subprotocol the stream is the original one: binary messages
 * are the TCP byte stream, closing the WebSocket sends FIN, the peer's FIN
 * closes it. That cannot express a half-close the other way, bound what the
 * client sends, or carry datagrams; v1 adds those.
 *
 * Every v1 message is binary; its first byte is the type:
 *
 * | type | name  | body                                                                 |
 * | ---- | ----- | -------------------------------------------------------------------- |
 * | 0    | DATA  | TCP: bytes of the stream. UDP: IPv4 (4 bytes), port (u16 BE), payload |
 * | 1    | ACK   | u32 BE: DATA body bytes consumed; grants that much credit back        |
 * | 2    | FIN   | empty: no more DATA in this direction (TCP half-close)               |
 * | 3    | OPEN  | server → client, UTF-8 JSON `{local, remote}`: the stream is ready   |
 * | 4    | ERROR | server → client, UTF-8 JSON `{code, message}`: one datagram failed   |
 *
 * **Credit.** Each direction starts with {@linkcode STREAM_WINDOW_BYTES} of
 * credit: a sender may have that many DATA body bytes sent and not yet
 * acknowledged. The receiver sends ACK as it consumes (the server: once the
 * bytes are in the TCP send buffer or a datagram left; the client: once its
 * reader took them), and may grant more at any time with an ACK for bytes it
 * never received. So a slow peer closes the TCP window and a slow reader
 * stops the peer, end to end, in both directions. A client that sends past
 * its credit is closed with 1009.
 *
 * **TCP life.** The server sends OPEN first. The peer's FIN becomes a FIN
 * message after all DATA before it; the client's FIN becomes a TCP FIN after
 * all DATA before it. Once both directions ended the client closes the
 * WebSocket (1000); the server does it after 10 s if the client does not, and
 * a client sends nothing after the server's FIN (no ACK is needed then). A
 * server that closed first would race the client's last messages, and closing
 * a TCP connection with unread bytes in it resets it, which can discard data
 * the client had not read yet. A reset or timeout closes it with 1011 and the error
 * code (`ECONNRESET`, `ETIMEDOUT`) as the reason. The stream owns its socket:
 * when the WebSocket ends the socket is deleted, gracefully (RFC 9293 close)
 * when the client had sent FIN, and with a RST otherwise: a WebSocket that
 * drops must not look like a clean end to the peer. So a client closes with
 * FIN, then closes the WebSocket once it has read what it wants.
 *
 * **UDP.** Each DATA message is one datagram. From the server it carries the
 * sender; from the client the destination, where 0.0.0.0 port 0 means the
 * connected peer. A datagram that cannot be sent (EMSGSIZE, EHOSTUNREACH) or
 * an ICMP error for a connected socket (ECONNREFUSED) is an ERROR message;
 * the stream goes on.
 *
 * @module
 */

/** The WebSocket subprotocol of the v1 socket stream. */
export const STREAM_SUBPROTOCOL = "netisle.stream.v1";

/** The credit each direction starts with, in DATA body bytes (1 MiB). */
export const STREAM_WINDOW_BYTES = 1024 * 1024;

/** Message types of `netisle.stream.v1` (the first byte of every message). */
export const StreamMessageType = {
  DATA: 0,
  ACK: 1,
  FIN: 2,
  OPEN: 3,
  ERROR: 4,
} as const;

/** Bytes before the payload of a UDP DATA message: type, IPv4 address, port. */
export const UDP_DATA_HEADER_BYTES = 7;

/** An IPv4 endpoint as the API shows it. */
export interface StreamEndpoint {
  /** Dotted-quad IPv4 address. */
  address: string;
  /** Port, 0..65535. */
  port: number;
}

/** The body of an OPEN message. */
export interface StreamOpenInfo {
  /** The socket's local endpoint on the stack. */
  local: StreamEndpoint | null;
  /** The peer (TCP) or the connected peer (UDP), else null. */
  remote: StreamEndpoint | null;
  /** `tcp` or `udp`. */
  protocol: "tcp" | "udp";
}

/** The body of an ERROR message. */
export interface StreamErrorInfo {
  /** The API's stable errno-style code (`ECONNREFUSED`, `EMSGSIZE`, ...). */
  code: string;
  /** What failed, for people. */
  message: string;
}

/** A decoded v1 message. */
export type StreamMessage =
  | { type: "data"; data: Uint8Array }
  | { type: "ack"; bytes: number }
  | { type: "fin" }
  | { type: "open"; info: StreamOpenInfo }
  | { type: "error"; error: StreamErrorInfo };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A DATA message of a TCP stream: the type byte and a copy of `bytes`.
 *
 * @example
 * ```ts
 * encodeStreamData(new Uint8Array([104, 105])); // Uint8Array [0, 104, 105]
 * ```
 */
export function encodeStreamData(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const m = new Uint8Array(1 + bytes.length);
  m[0] = StreamMessageType.DATA;
  m.set(bytes, 1);
  return m;
}

/**
 * A UDP DATA message: the datagram's peer (its sender, or its destination;
 * 0.0.0.0 port 0 for the connected peer) and the payload.
 *
 * @example
 * ```ts
 * encodeUdpData({ address: "10.0.2.15", port: 53 }, query);
 * ```
 */
export function encodeUdpData(peer: StreamEndpoint, payload: Uint8Array): Uint8Array<ArrayBuffer> {
  const m = new Uint8Array(UDP_DATA_HEADER_BYTES + payload.length);
  m[0] = StreamMessageType.DATA;
  const parts = parseDottedQuad(peer.address);
  if (!parts) throw new TypeError(`encodeUdpData: not an IPv4 address: "${peer.address}"`);
  if (!Number.isInteger(peer.port) || peer.port < 0 || peer.port > 65535) {
    throw new RangeError(`encodeUdpData: port must be in 0..65535, got ${peer.port}`);
  }
  m.set(parts, 1);
  m[5] = peer.port >> 8;
  m[6] = peer.port & 0xff;
  m.set(payload, UDP_DATA_HEADER_BYTES);
  return m;
}

/**
 * Splits the body of a UDP DATA message (the message without its type byte)
 * into peer and payload (a view, not a copy); undefined when it is shorter
 * than the 6-byte address.
 *
 * @example
 * ```ts
 * decodeUdpData(encodeUdpData({ address: "10.0.2.15", port: 53 }, q).subarray(1))?.peer.port; // 53
 * ```
 */
export function decodeUdpData(
  body: Uint8Array,
): { peer: StreamEndpoint; payload: Uint8Array } | undefined {
  if (body.length < UDP_DATA_HEADER_BYTES - 1) return undefined;
  return {
    peer: {
      address: `${body[0]}.${body[1]}.${body[2]}.${body[3]}`,
      port: (body[4] << 8) | body[5],
    },
    payload: body.subarray(UDP_DATA_HEADER_BYTES - 1),
  };
}

/**
 * An ACK message granting `bytes` of credit back (1..2^32-1).
 *
 * @example
 * ```ts
 * ws.send(encodeStreamAck(128 * 1024)); // the reader took 128 KiB
 * ```
 */
export function encodeStreamAck(bytes: number): Uint8Array<ArrayBuffer> {
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > 0xffffffff) {
    throw new RangeError(`encodeStreamAck: bytes must be in 1..4294967295, got ${bytes}`);
  }
  const m = new Uint8Array(5);
  m[0] = StreamMessageType.ACK;
  new DataView(m.buffer).setUint32(1, bytes);
  return m;
}

/**
 * A FIN message.
 *
 * @example
 * ```ts
 * ws.send(encodeStreamFin()); // a half-close
 * ```
 */
export function encodeStreamFin(): Uint8Array<ArrayBuffer> {
  return new Uint8Array([StreamMessageType.FIN]);
}

/**
 * An OPEN message (server → client).
 *
 * @example
 * ```ts
 * ws.send(encodeStreamOpen({ protocol: "tcp", local, remote }));
 * ```
 */
export function encodeStreamOpen(info: StreamOpenInfo): Uint8Array<ArrayBuffer> {
  return withJson(StreamMessageType.OPEN, info);
}

/**
 * An ERROR message (server → client).
 *
 * @example
 * ```ts
 * ws.send(encodeStreamError({ code: "EMSGSIZE", message: "a datagram of 9000 bytes" }));
 * ```
 */
export function encodeStreamError(error: StreamErrorInfo): Uint8Array<ArrayBuffer> {
  return withJson(StreamMessageType.ERROR, error);
}

/**
 * Decodes one v1 message, or returns a reason when it is malformed (an
 * unknown type, a short ACK, JSON that does not parse). DATA bodies are views
 * into `message`.
 *
 * @example
 * ```ts
 * decodeStreamMessage(encodeStreamAck(4096)); // { type: "ack", bytes: 4096 }
 * ```
 */
export function decodeStreamMessage(message: Uint8Array): StreamMessage | { invalid: string } {
  if (message.length === 0) return { invalid: "an empty message" };
  const body = message.subarray(1);
  switch (message[0]) {
    case StreamMessageType.DATA:
      return { type: "data", data: body };
    case StreamMessageType.ACK:
      if (body.length !== 4) return { invalid: `an ACK of ${body.length} bytes (4 expected)` };
      return {
        type: "ack",
        bytes: new DataView(body.buffer, body.byteOffset, 4).getUint32(0),
      };
    case StreamMessageType.FIN:
      return { type: "fin" };
    case StreamMessageType.OPEN: {
      const info = parseJson(body) as StreamOpenInfo | undefined;
      if (!info || typeof info !== "object") return { invalid: "an OPEN without a JSON body" };
      return { type: "open", info };
    }
    case StreamMessageType.ERROR: {
      const error = parseJson(body) as StreamErrorInfo | undefined;
      if (!error || typeof error.code !== "string") {
        return { invalid: "an ERROR without a JSON {code, message} body" };
      }
      return { type: "error", error };
    }
    default:
      return { invalid: `unknown message type ${message[0]}` };
  }
}

/**
 * The subprotocol a server answers for a socket stream's
 * `Sec-WebSocket-Protocol` header: {@linkcode STREAM_SUBPROTOCOL} when
 * offered, else none (the original stream).
 *
 * @example
 * ```ts
 * selectStreamSubprotocol("netisle.stream.v1"); // "netisle.stream.v1"
 * selectStreamSubprotocol(null); // undefined
 * ```
 */
export function selectStreamSubprotocol(header: string | null | undefined): string | undefined {
  if (!header) return undefined;
  return header.split(",").some((p) => p.trim() === STREAM_SUBPROTOCOL)
    ? STREAM_SUBPROTOCOL
    : undefined;
}

function withJson(type: number, value: unknown): Uint8Array<ArrayBuffer> {
  const json = encoder.encode(JSON.stringify(value));
  const m = new Uint8Array(1 + json.length);
  m[0] = type;
  m.set(json, 1);
  return m;
}

function parseJson(body: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(body));
  } catch {
    return undefined;
  }
}

function parseDottedQuad(s: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  return parts.every((p) => p <= 255) ? parts : undefined;
}
