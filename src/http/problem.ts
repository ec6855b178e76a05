/**
 * Problem details (RFC 9457) and the one place where error codes become HTTP
 * statuses: {@linkcode problemOnError} is the `onError` of the app and of the
 * isolation front door alike.
 *
 * @module
 */

import type { Context, ErrorHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { NetError, type NetErrorCode } from "../errors/mod.ts";

/** Codes the HTTP layer adds to the errno-style ones of {@linkcode NetErrorCode}. */
export type HttpErrorCode =
  | NetErrorCode
  | "EUNAUTHORIZED"
  | "ENOTFOUND"
  | "ETOOLARGE"
  | "EBODYTIMEOUT"
  | "EUPGRADE"
  | "ERATELIMIT"
  | "ENOTSUP"
  | "EINTERNAL";

/** HTTP status for each error code (DESIGN.md "HTTP API contract"). */
export const STATUS_BY_CODE: Record<HttpErrorCode, number> = {
  EINVAL: 400,
  EUNAUTHORIZED: 401,
  EACCES: 403,
  ENOENT: 404,
  ENOTFOUND: 404,
  EADDRINUSE: 409,
  EISCONN: 409,
  ENOTCONN: 409,
  EPIPE: 409,
  ESHUTDOWN: 409,
  EALREADY: 409,
  EBUSY: 409,
  EOPNOTSUPP: 400,
  EMSGSIZE: 413,
  ECANCELED: 499,
  ETOOLARGE: 413,
  EBODYTIMEOUT: 408,
  EUPGRADE: 426,
  ENFILE: 429,
  EMFILE: 429,
  ENOBUFS: 429,
  ERATELIMIT: 429,
  EINTERNAL: 500,
  ENOTSUP: 501,
  ECONNREFUSED: 502,
  ECONNRESET: 502,
  EHOSTUNREACH: 502,
  ETIMEDOUT: 504,
};

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  408: "Request Timeout",
  409: "Conflict",
  413: "Content Too Large",
  426: "Upgrade Required",
  429: "Too Many Requests",
  499: "Client Closed Request",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  504: "Gateway Timeout",
};

/** The JSON body of an error response (RFC 9457 §3). */
export interface Problem {
  type: "about:blank";
  title: string;
  status: number;
  code: HttpErrorCode;
  detail: string;
  issues?: unknown[];
}

/**
 * An error the HTTP layer turns into a problem+json response.
 *
 * @example
 * ```ts
 * throw new HttpProblem("ENOTFOUND", "no session with id \"s_x\"");
 * ```
 */
export class HttpProblem extends Error {
  readonly code: HttpErrorCode;
  readonly issues: unknown[] | undefined;
  readonly headers: Record<string, string>;

  /** Creates a problem; `detail` says what failed and quotes the value. */
  constructor(
    code: HttpErrorCode,
    detail: string,
    extra: { issues?: unknown[]; headers?: Record<string, string> } = {},
  ) {
    super(detail);
    this.name = "HttpProblem";
    this.code = code;
    this.issues = extra.issues;
    this.headers = extra.headers ?? {};
  }
}

/** Builds an `application/problem+json` response for `code`. */
export function problemResponse(
  code: HttpErrorCode,
  detail: string,
  extra: { issues?: unknown[]; headers?: Record<string, string> } = {},
): Response {
  const status = STATUS_BY_CODE[code];
  const body: Problem = {
    type: "about:blank",
    title: TITLES[status] ?? "Error",
    status,
    code,
    detail,
  };
  if (extra.issues) body.issues = extra.issues;
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/problem+json", ...extra.headers },
  });
}

/** The HTTP error code of a `HTTPException` thrown by Hono or one of its middlewares. */
function codeOfHttpException(status: number): HttpErrorCode | undefined {
  if (status === 400 || status === 415) return "EINVAL";
  if (status === 401) return "EUNAUTHORIZED";
  if (status === 404) return "ENOTFOUND";
  if (status === 408) return "EBODYTIMEOUT";
  if (status === 413) return "ETOOLARGE";
  return undefined;
}

/**
 * The `onError` of every Hono app of netisle: an {@linkcode HttpProblem} or a
 * `NetError` becomes its problem+json response; a Hono `HTTPException` (a
 * 400 from a validator, say) the problem of its status; anything else is
 * logged (naming `where`) and answers 500 `EINTERNAL` without details.
 *
 * @example
 * ```ts
 * const app = new Hono();
 * app.onError(problemOnError("request"));
 * app.notFound(problemNotFound);
 * ```
 */
export function problemOnError(where: string): ErrorHandler {
  return (err) => problemOfError(err, where);
}

/**
 * The response {@linkcode problemOnError} answers `err` with (for code that
 * answers outside Hono's `onError`, such as the lean socket path).
 *
 * @example
 * ```ts
 * problemOfError(new NetError("ENOTCONN", "socket k_x is closed"), "request").status; // 409
 * ```
 */
export function problemOfError(err: unknown, where: string): Response {
  if (err instanceof HttpProblem) {
    return problemResponse(err.code, err.message, { issues: err.issues, headers: err.headers });
  }
  if (err instanceof NetError) return problemResponse(err.code, err.message);
  if (err instanceof HTTPException) {
    const code = codeOfHttpException(err.status);
    if (code) return problemResponse(code, err.message);
  }
  console.error(`netisle: unhandled error in ${where}:`, err);
  return problemResponse("EINTERNAL", "internal error; see the server log");
}

/**
 * The `notFound` handler of every Hono app of netisle: 404 `ENOTFOUND` naming
 * the method and path.
 *
 * @example
 * ```ts
 * app.notFound(problemNotFound);
 * ```
 */
export function problemNotFound(c: Context): Response {
  return problemResponse("ENOTFOUND", `no route for ${c.req.method} ${c.req.path}`);
}
