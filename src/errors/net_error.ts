/**
 * Errors with errno-style codes, shared by every layer above the core. The
 * HTTP layer maps each code to a status in one place.
 *
 * @module
 */

/** The errno-style codes netisle uses. */
export type NetErrorCode =
  | "EINVAL"
  | "ENOENT"
  | "EACCES"
  | "ENFILE"
  | "EMFILE"
  | "ENOBUFS"
  | "EADDRINUSE"
  | "EISCONN"
  | "ENOTCONN"
  | "ECONNREFUSED"
  | "ECONNRESET"
  | "EHOSTUNREACH"
  | "ETIMEDOUT"
  | "EPIPE"
  | "ESHUTDOWN"
  | "EALREADY"
  | "EOPNOTSUPP"
  | "EBUSY"
  | "EMSGSIZE"
  | "ECANCELED";

/**
 * A failure of a network operation, named by an errno-style `code`.
 *
 * @example
 * ```ts
 * throw new NetError("ENFILE", "the server holds its maximum of 1000 sessions");
 * ```
 */
export class NetError extends Error {
  /** The errno-style code, stable across releases. */
  readonly code: NetErrorCode;

  /** Creates an error; `message` says what failed and quotes the values involved. */
  constructor(code: NetErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NetError";
    this.code = code;
  }
}
