/**
 * The server's checks of a WebSocket opening handshake (RFC 6455 §4.2.1)
 * and its answer (§4.2.2), shared by the adapters so that a malformed
 * upgrade answers the same everywhere: 400 `EINVAL` (a missing or malformed
 * `Sec-WebSocket-Key`, a method other than GET, no `Connection: upgrade`),
 * 426 `EUPGRADE` with `Sec-WebSocket-Version: 13` for another version (§4.4),
 * never a 500 and a stack trace.
 *
 * @module
 */

import { HttpProblem, problemResponse } from "./problem.ts";
import { requestHeader } from "./incoming_request.ts";

/** The GUID of RFC 6455 §1.3, appended to the key before hashing. */
export const WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** Whether `req` asks for a WebSocket (`Upgrade: websocket`, any case, among other tokens). */
export function wantsWebSocket(req: Request): boolean {
  const upgrade = requestHeader(req, "upgrade");
  return upgrade !== null && /(^|,)\s*websocket\s*(,|$)/i.test(upgrade);
}

/**
 * Checks the client's handshake (RFC 6455 §4.2.1). Returns undefined when it
 * is acceptable, else the problem to answer (`requireConnectionUpgrade:
 * false` skips the hop-by-hop `Connection` header, which a platform's front
 * end may have consumed): `EINVAL` (400) for a malformed
 * one, `EUPGRADE` (426, with `Sec-WebSocket-Version: 13`) for another
 * version (§4.4).
 *
 * @example
 * ```ts
 * const problem = handshakeProblem(req);
 * if (problem) throw problem; // the app's onError answers it
 * ```
 */
export function handshakeProblem(
  req: Request,
  options: { requireConnectionUpgrade?: boolean } = {},
): HttpProblem | undefined {
  const bad = (detail: string) =>
    new HttpProblem("EINVAL", `malformed WebSocket handshake: ${detail}`, {
      headers: { connection: "close" },
    });
  if (req.method !== "GET") return bad(`the method must be GET, got "${req.method}"`);
  const connection = req.headers.get("connection") ?? "";
  if (
    options.requireConnectionUpgrade !== false && !/(^|,)\s*upgrade\s*(,|$)/i.test(connection)
  ) {
    return bad(`Connection must include "upgrade", got "${connection}"`);
  }
  const key = req.headers.get("sec-websocket-key");
  if (key === null) return bad("Sec-WebSocket-Key is missing");
  if (!isValidKey(key.trim())) {
    return bad(`Sec-WebSocket-Key must be 16 bytes in base64, got "${key.slice(0, 64)}"`);
  }
  const version = req.headers.get("sec-websocket-version");
  if (version?.trim() !== "13") {
    return new HttpProblem(
      "EUPGRADE",
      `unsupported Sec-WebSocket-Version "${version ?? ""}": this server speaks 13`,
      { headers: { "sec-websocket-version": "13", connection: "close" } },
    );
  }
  return undefined;
}

/**
 * {@linkcode handshakeProblem} as a response: undefined when the handshake
 * is acceptable, else the problem+json response to send.
 *
 * @example
 * ```ts
 * const refusal = checkWebSocketHandshake(req);
 * if (refusal) return refusal; // 400 EINVAL or 426 EUPGRADE
 * ```
 */
export function checkWebSocketHandshake(req: Request): Response | undefined {
  const p = handshakeProblem(req);
  return p ? problemResponse(p.code, p.message, { headers: p.headers }) : undefined;
}

/** A base64 encoding of 16 bytes (§4.2.1 item 5): 22 characters and "==". */
function isValidKey(key: string): boolean {
  return /^[A-Za-z0-9+/]{22}==$/.test(key);
}

/**
 * `Sec-WebSocket-Accept` for `key` (RFC 6455 §4.2.2 item 5.4): base64 of the
 * SHA-1 of the key and the GUID.
 *
 * @example
 * ```ts
 * await websocketAccept("dGhlIHNhbXBsZSBub25jZQ=="); // "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
 * ```
 */
export async function websocketAccept(key: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    new TextEncoder().encode(key.trim() + WEBSOCKET_GUID),
  );
  let bin = "";
  for (const b of new Uint8Array(digest)) bin += String.fromCharCode(b);
  return btoa(bin);
}
