/**
 * Bearer tokens (RFC 6750) compared in constant time.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * Compares two secrets in time that depends only on the length of `expected`,
 * never on where the first difference is.
 *
 * @example
 * ```ts
 * constantTimeEqual("abc", "abc"); // true
 * ```
 */
export function constantTimeEqual(given: string, expected: string): boolean {
  const a = encoder.encode(given);
  const b = encoder.encode(expected);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i % (a.length || 1)] ?? 0) ^ b[i];
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
