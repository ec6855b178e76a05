/**
 * Bearer tokens (RFC 6750) compared in constant time.
 *
 * @module
 */

/**
 * Compares two secrets in time that depends only on the length of `expected`,
 * never on where the first difference is. Compares UTF-16 code units (no
 * encoding per call: every session request compares its token).
 *
 * @example
 * ```ts
 * constantTimeEqual("abc", "abc"); // true
 * ```
 */
export function constantTimeEqual(given: string, expected: string): boolean {
  const n = given.length;
  let diff = n ^ expected.length;
  for (let i = 0; i < expected.length; i++) {
    diff |= (n === 0 ? 0 : given.charCodeAt(i % n)) ^ expected.charCodeAt(i);
  }
  return diff === 0;
}

/**
 * The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1), or
 * undefined when the header is missing or of another scheme.
 */
export function bearerToken(header: string | null | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}
