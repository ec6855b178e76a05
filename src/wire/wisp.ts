/**
 * The Wisp protocol (v1.2, and v2 draft 6): TCP and UDP streams multiplexed
 * over one WebSocket, as spoken by `@mercuryworkshop/wisp-js`, epoxy-tls,
 * libcurl.js and v86's `wisp://` backend. Pure encoders and a decoder that
 * never throws on hostile bytes.
 *
 * Every packet is one binary WebSocket message: `u8 type | u32 stream id |
 * payload`, little-endian.
 *
 * | type | name     | payload                                                        |
 * | ---- | -------- | -------------------------------------------------------------- |
 * | 0x01 | CONNECT  | u8 stream type (1 TCP, 2 UDP), u16 port, hostname (UTF-8)      |
 * | 0x02 | DATA     | the stream's bytes (UDP: one datagram)                         |
 * | 0x03 | CONTINUE | u32: packets the server can still buffer for the stream        |
 * | 0x04 | CLOSE    | u8 reason                                                      |
 * | 0x05 | INFO     | v2: u8 major, u8 minor, extensions (`u8 id, u32 length, data`) |
 *
 * Flow control counts packets, client to server only: the server's first
 * CONTINUE (stream 0) gives every new stream that many packets; the client
 * sends no more DATA on a TCP stream until a CONTINUE for it renews the
 * count. UDP streams are not counted.
 *
 * @module
 */

import { fail, ok, type ParseResult } from "./parse_result.ts";

/** Packet types (Wisp v1.2 "Packet Types"). */
export const WispPacketType = {
  CONNECT: 0x01,
  DATA: 0x02,
  CONTINUE: 0x03,
  CLOSE: 0x04,
  INFO: 0x05,
} as const;

/** Stream types of a CONNECT. */
export const WispStreamType = { TCP: 0x01, UDP: 0x02 } as const;

/**
 * Close reasons (Wisp v1.2 "0x04 - CLOSE", v2's extension reasons 0xc0-0xc2).
 *
 * @example
 * ```ts
 * encodeWispClose(7, WispCloseReason.REFUSED); // CLOSE stream 7, 0x44
 * ```
 */
export const WispCloseReason = {
  /** Unspecified. */
  UNKNOWN: 0x01,
  /** Voluntary closure (either side ended the stream). */
  VOLUNTARY: 0x02,
  /** The stream failed: a network error (a reset). */
  NETWORK_ERROR: 0x03,
  /** v2 handshake: incompatible extensions. */
  INCOMPATIBLE_EXTENSIONS: 0x04,
  /** Invalid CONNECT: a reserved address, port 0, an unknown stream type. */
  INVALID: 0x41,
  /** The destination is unreachable (a name that does not resolve, no answer to ARP). */
  UNREACHABLE: 0x42,
  /** The destination did not answer in time. */
  TIMEOUT: 0x43,
  /** The destination refused the connection. */
  REFUSED: 0x44,
  /** A data transfer timed out (retransmissions gave up). */
  TRANSFER_TIMEOUT: 0x47,
  /** The destination is blocked by the server's policy. */
  BLOCKED: 0x48,
  /** Throttled: a limit of the server was reached. */
  THROTTLED: 0x49,
  /** The client failed and cannot take more data. */
  CLIENT_ERROR: 0x81,
  /** v2 password authentication: wrong credentials. */
  AUTH_BAD_PASSWORD: 0xc0,
  /** v2 key authentication: bad signature. */
  AUTH_BAD_SIGNATURE: 0xc1,
  /** v2: authentication required, no credentials given. */
  AUTH_MISSING: 0xc2,
} as const;

/** Extension ids of Wisp v2 INFO packets. */
export const WispExtensionId = {
  UDP: 0x01,
  PASSWORD: 0x02,
  KEY: 0x03,
  MOTD: 0x04,
  STREAM_CONFIRMATION: 0x05,
} as const;

/** Bytes of the packet header: type and stream id. */
export const WISP_HEADER_BYTES = 5;

/** Longest hostname a CONNECT may carry (RFC 1035 §2.3.4: 255 octets). */
export const WISP_MAX_HOSTNAME_BYTES = 255;

/**
 * Every reason {@linkcode decodeWispPacket} can answer, for counters keyed by
 * reason.
 *
 * @example
 * ```ts
 * const drops = new Map(WISP_DROP_REASONS.map((r) => [r, 0]));
 * ```
 */
export const WISP_DROP_REASONS: readonly string[] = Object.freeze([
  "wisp_truncated",
  "wisp_connect_truncated",
  "wisp_hostname_too_long",
  "wisp_hostname_not_utf8",
  "wisp_continue_truncated",
  "wisp_close_truncated",
  "wisp_info_truncated",
  "wisp_extension_truncated",
  "wisp_unknown_type",
]);

/** One extension entry of an INFO packet. */
export interface WispExtension {
  /** The extension's id ({@linkcode WispExtensionId}). */
  id: number;
  /** Its metadata (a view into the packet). */
  data: Uint8Array;
}

/** A decoded Wisp packet; payload bytes are views into the message. */
export type WispPacket =
  | {
    type: "connect";
    streamId: number;
    streamType: number;
    port: number;
    hostname: string;
  }
  | { type: "data"; streamId: number; payload: Uint8Array }
  | { type: "continue"; streamId: number; bufferRemaining: number }
  | { type: "close"; streamId: number; reason: number }
  | {
    type: "info";
    streamId: number;
    major: number;
    minor: number;
    extensions: WispExtension[];
  };

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

function u32le(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

function header(type: number, streamId: number, payloadLen: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(WISP_HEADER_BYTES + payloadLen);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, streamId >>> 0, true);
  return out;
}

/**
 * Decodes one message. Unknown packet types, short payloads, bad UTF-8 in a
 * hostname and malformed extension lists are reasons, never exceptions.
 *
 * @example
 * ```ts
 * const r = decodeWispPacket(new Uint8Array([0x04, 7, 0, 0, 0, 0x02]));
 * if (r.ok && r.value.type === "close") r.value.reason; // 0x02
 * ```
 */
export function decodeWispPacket(bytes: Uint8Array): ParseResult<WispPacket> {
  if (bytes.length < WISP_HEADER_BYTES) return fail("wisp_truncated");
  const type = bytes[0];
  const streamId = u32le(bytes, 1);
  const p = bytes.subarray(WISP_HEADER_BYTES);
  switch (type) {
    case WispPacketType.CONNECT: {
      if (p.length < 3) return fail("wisp_connect_truncated");
      if (p.length - 3 > WISP_MAX_HOSTNAME_BYTES) return fail("wisp_hostname_too_long");
      let hostname: string;
      try {
        hostname = utf8.decode(p.subarray(3));
      } catch {
        return fail("wisp_hostname_not_utf8");
      }
      return ok({
        type: "connect",
        streamId,
        streamType: p[0],
        port: p[1] | (p[2] << 8),
        hostname,
      });
    }
    case WispPacketType.DATA:
      return ok({ type: "data", streamId, payload: p });
    case WispPacketType.CONTINUE:
      if (p.length < 4) return fail("wisp_continue_truncated");
      return ok({ type: "continue", streamId, bufferRemaining: u32le(p, 0) });
    case WispPacketType.CLOSE:
      if (p.length < 1) return fail("wisp_close_truncated");
      return ok({ type: "close", streamId, reason: p[0] });
    case WispPacketType.INFO: {
      if (p.length < 2) return fail("wisp_info_truncated");
      const extensions: WispExtension[] = [];
      let o = 2;
      while (o < p.length) {
        if (p.length - o < 5) return fail("wisp_extension_truncated");
        const len = u32le(p, o + 1);
        if (len > p.length - o - 5) return fail("wisp_extension_truncated");
        extensions.push({ id: p[o], data: p.subarray(o + 5, o + 5 + len) });
        o += 5 + len;
      }
      return ok({ type: "info", streamId, major: p[0], minor: p[1], extensions });
    }
    default:
      return fail("wisp_unknown_type");
  }
}

/**
 * A CONNECT packet (client → server).
 *
 * @example
 * ```ts
 * encodeWispConnect(1, WispStreamType.TCP, 7, "10.0.2.15");
 * ```
 */
export function encodeWispConnect(
  streamId: number,
  streamType: number,
  port: number,
  hostname: string,
): Uint8Array<ArrayBuffer> {
  const name = encoder.encode(hostname);
  if (name.length > WISP_MAX_HOSTNAME_BYTES) {
    throw new RangeError(`a Wisp hostname is at most 255 bytes; "${hostname}" has ${name.length}`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new RangeError(`a port is 0 to 65535, not ${port}`);
  }
  const out = header(WispPacketType.CONNECT, streamId, 3 + name.length);
  out[5] = streamType;
  out[6] = port & 0xff;
  out[7] = port >> 8;
  out.set(name, 8);
  return out;
}

/**
 * A DATA packet: the header, then a copy of `payload`.
 *
 * @example
 * ```ts
 * ws.send(encodeWispData(7, chunk));
 * ```
 */
export function encodeWispData(streamId: number, payload: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = header(WispPacketType.DATA, streamId, payload.length);
  out.set(payload, WISP_HEADER_BYTES);
  return out;
}

/**
 * A CONTINUE packet: `bufferRemaining` more packets may be sent on the stream
 * (stream 0: the count every new stream starts with).
 *
 * @example
 * ```ts
 * ws.send(encodeWispContinue(0, 128)); // the v1 handshake
 * ```
 */
export function encodeWispContinue(
  streamId: number,
  bufferRemaining: number,
): Uint8Array<ArrayBuffer> {
  const out = header(WispPacketType.CONTINUE, streamId, 4);
  new DataView(out.buffer).setUint32(5, bufferRemaining >>> 0, true);
  return out;
}

/**
 * A CLOSE packet with one of {@linkcode WispCloseReason}.
 *
 * @example
 * ```ts
 * ws.send(encodeWispClose(7, WispCloseReason.BLOCKED));
 * ```
 */
export function encodeWispClose(streamId: number, reason: number): Uint8Array<ArrayBuffer> {
  const out = header(WispPacketType.CLOSE, streamId, 1);
  out[5] = reason;
  return out;
}

/**
 * An INFO packet (v2) on stream 0: the version and the extensions.
 *
 * @example
 * ```ts
 * encodeWispInfo(2, 0, [{ id: WispExtensionId.UDP, data: new Uint8Array(0) }]);
 * ```
 */
export function encodeWispInfo(
  major: number,
  minor: number,
  extensions: readonly WispExtension[],
): Uint8Array<ArrayBuffer> {
  let len = 2;
  for (const e of extensions) len += 5 + e.data.length;
  const out = header(WispPacketType.INFO, 0, len);
  const view = new DataView(out.buffer);
  out[5] = major;
  out[6] = minor;
  let o = 7;
  for (const e of extensions) {
    out[o] = e.id;
    view.setUint32(o + 1, e.data.length, true);
    out.set(e.data, o + 5);
    o += 5 + e.data.length;
  }
  return out;
}

/**
 * The passwords a client's password-extension metadata may carry. Draft 6 of
 * v2 writes `u8 username length, username, password`; `wisp-js` 0.5 writes an
 * earlier draft's `u8 username length, u16 password length, username,
 * password`. Both readings that fit the bytes are returned (a server compares
 * each in constant time); malformed metadata gives none.
 *
 * @example
 * ```ts
 * const d = new Uint8Array([1, 0x75, 0x70, 0x77]); // "u", then "pw"
 * wispPasswordCandidates(d).map((c) => c.password); // ["pw"]
 * ```
 */
export function wispPasswordCandidates(
  data: Uint8Array,
): Array<{ username: string; password: string }> {
  const out: Array<{ username: string; password: string }> = [];
  const dec = (b: Uint8Array) => {
    try {
      return utf8.decode(b);
    } catch {
      return undefined;
    }
  };
  if (data.length < 1) return out;
  const ulen = data[0];
  // wisp-js: u8 ulen, u16 plen (LE), username, password, filling the metadata exactly.
  if (data.length >= 3) {
    const plen = data[1] | (data[2] << 8);
    if (3 + ulen + plen === data.length) {
      const u = dec(data.subarray(3, 3 + ulen));
      const p = dec(data.subarray(3 + ulen));
      if (u !== undefined && p !== undefined) out.push({ username: u, password: p });
    }
  }
  // Draft 6: u8 ulen, username, password (the rest).
  if (1 + ulen <= data.length) {
    const u = dec(data.subarray(1, 1 + ulen));
    const p = dec(data.subarray(1 + ulen));
    if (u !== undefined && p !== undefined) out.push({ username: u, password: p });
  }
  return out;
}

/**
 * The client metadata of the password extension, in draft 6's layout.
 *
 * @example
 * ```ts
 * encodeWispPassword("netisle", token);
 * ```
 */
export function encodeWispPassword(username: string, password: string): Uint8Array {
  const u = encoder.encode(username);
  const p = encoder.encode(password);
  if (u.length > 255) throw new RangeError(`a Wisp username is at most 255 bytes, not ${u.length}`);
  const out = new Uint8Array(1 + u.length + p.length);
  out[0] = u.length;
  out.set(u, 1);
  out.set(p, 1 + u.length);
  return out;
}
