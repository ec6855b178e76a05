/**
 * The one error type of the client SDK: every failure the server reports
 * (RFC 9457 problem+json) and every failure of a stream, named by the API's
 * stable errno-style `code`.
 *
 * @module
 */

import type { HttpErrorCode } from "../http/problem.ts";

/**
 * Codes a {@linkcode NetisleError} carries: the server's (`ECONNREFUSED`,
 * `ETIMEDOUT`, `ENOTFOUND`, ...) plus the client's own:
 *
 * - `EUNREACHABLE`: the netisle server could not be reached (fetch or the
 *   WebSocket failed before an answer);
 * - `ECONNABORTED`: a stream's WebSocket ended abnormally (a network drop);
 * - `EPROTO`: the server answered something the SDK does not understand.
 */
export type NetisleErrorCode = HttpErrorCode | "EUNREACHABLE" | "ECONNABORTED" | "EPROTO";

/**
 * A failed call or stream: `code` is stable (switch on it), `message` says
 * what failed for people, `status` is the HTTP status when there was one.
 *
 * @example
 * ```ts
 * try {
 *   await session.connect({ hostname: "10.0.2.15", port: 22 }).opened;
 * } catch (err) {
 *   if (err instanceof NetisleError && err.code === "ECONNREFUSED") console.log("nothing listens");
 * }
 * ```
 */
export class NetisleError extends Error {
  /** The stable errno-style code. */
  readonly code: NetisleErrorCode;
  /** The HTTP status of the answer, or 0 when the failure was not an HTTP answer. */
  readonly status: number;
  /** zod's issues of a 400 `EINVAL`, as the server sent them. */
  readonly issues: unknown[] | undefined;

  /** Creates an error with `code` and a message that says what failed. */
  constructor(
    code: NetisleErrorCode,
    message: string,
    options: { status?: number; issues?: unknown[]; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "NetisleError";
    this.code = code;
    this.status = options.status ?? 0;
    this.issues = options.issues;
  }
}

/**
 * Turns a non-2xx response into a {@linkcode NetisleError}: the problem's
 * `code` and `detail` when the body is problem+json, else the status.
 *
 * @example
 * ```ts
 * if (!res.ok) throw await errorFromResponse(res, "create a session");
 * ```
 */
export async function errorFromResponse(res: Response, what: string): Promise<NetisleError> {
  let code: NetisleErrorCode = "EPROTO";
  let detail = `HTTP ${res.status}`;
  let issues: unknown[] | undefined;
  try {
    const body = await res.json();
    if (typeof body?.code === "string") code = body.code;
    if (typeof body?.detail === "string") detail = body.detail;
    if (Array.isArray(body?.issues)) issues = body.issues;
  } catch {
    // Not problem+json (a proxy's page): keep the status.
  }
  return new NetisleError(code, `${what}: ${detail}`, { status: res.status, issues });
}

/**
 * The code a stream's WebSocket close code and reason stand for.
 *
 * @example
 * ```ts
 * errorFromClose(1011, "ECONNRESET").code; // "ECONNRESET"
 * ```
 */
export function errorFromClose(code: number, reason: string): NetisleError {
  switch (code) {
    case 1011: {
      const c = /^E[A-Z]+$/.test(reason) ? reason as NetisleErrorCode : "ECONNRESET";
      return new NetisleError(c, `the connection failed (${reason || "no reason given"})`);
    }
    case 1001:
      return new NetisleError("ENOTCONN", `the socket was closed on the server (${reason})`);
    case 1009:
      return new NetisleError(
        reason.startsWith("ENOBUFS") ? "ENOBUFS" : "EPROTO",
        `the server closed the stream: ${reason || "message too big"}`,
      );
    case 1002:
      return new NetisleError("EPROTO", `the server closed the stream: ${reason}`);
    case 4004:
      return new NetisleError("EUNREACHABLE", `the session died on the server (${reason})`);
    default:
      return new NetisleError(
        "ECONNABORTED",
        `the stream's WebSocket closed abnormally (code ${code}${reason ? `: ${reason}` : ""})`,
      );
  }
}
