/**
 * The Internet checksum (RFC 1071): the 16-bit one's complement of the one's
 * complement sum of the data taken as big-endian 16-bit words.
 *
 * The sum is computed 32 bits at a time. A one's complement sum is
 * independent of word size and byte order up to a final fold and byte swap
 * (RFC 1071 §2 (A), (B), (C)), so the bulk of a buffer is read through an
 * `Int32Array` view in host byte order, each word split into its two 16-bit
 * halves summed apart (so that every sum stays a small integer), and the
 * result folded and swapped once.
 *
 * @example
 * ```ts
 * // Verify a received IPv4 header: the sum over the header including its
 * // checksum field folds to 0xffff, so the finished value is 0.
 * const header = new Uint8Array(20);
 * const valid = checksumFinish(checksumAdd(0, header)) === 0;
 * ```
 *
 * @module
 */

import type { Ipv4Address } from "./address.ts";

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Below this many bytes the shift loop beats creating a Uint32Array view. */
const VIEW_MIN_BYTES = 64;

/**
 * Words per inner run: each word adds at most 2^16 - 1 to each of two int32
 * accumulators, so 2^15 of them cannot overflow int32 (V8 keeps them small
 * integers, which is what makes the loop fast).
 */
const WORDS_PER_RUN = 0x4000;

/** Folds a non-negative integer below 2^53 to 16 bits with end-around carry. */
function fold16(sum: number): number {
  while (sum > 0xffffffff) {
    sum = (sum % 0x100000000) + Math.floor(sum / 0x100000000);
  }
  while (sum > 0xffff) {
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return sum;
}

function swap16(value: number): number {
  return ((value & 0xff) << 8) | (value >>> 8);
}

/**
 * Sums big-endian 16-bit words of `bytes[i..end)`, padding an odd last byte
 * with zero. Requires `bytes.byteOffset + i` to be even.
 */
function sumEvenAddress(bytes: Uint8Array, i: number, end: number): number {
  let sum = 0;
  if (end - i >= VIEW_MIN_BYTES) {
    if (((bytes.byteOffset + i) & 2) !== 0) {
      sum += (bytes[i] << 8) | bytes[i + 1];
      i += 2;
    }
    const words = (end - i) >>> 2;
    // An Int32Array split into 16-bit halves keeps every sum an int32 (a Uint32Array's
    // words above 2^31 would make each addition a double); four words per iteration.
    const view = new Int32Array(bytes.buffer, bytes.byteOffset + i, words);
    let viewSum = 0;
    for (let w = 0; w < words;) {
      const stop = Math.min(words, w + WORDS_PER_RUN);
      let lo = 0;
      let hi = 0;
      for (; w + 4 <= stop; w += 4) {
        const a = view[w];
        const b = view[w + 1];
        const c = view[w + 2];
        const d = view[w + 3];
        lo += (a & 0xffff) + (b & 0xffff) + (c & 0xffff) + (d & 0xffff);
        hi += (a >>> 16) + (b >>> 16) + (c >>> 16) + (d >>> 16);
      }
      for (; w < stop; w++) {
        const a = view[w];
        lo += a & 0xffff;
        hi += a >>> 16;
      }
      viewSum += lo + hi;
    }
    viewSum = fold16(viewSum);
    sum += LITTLE_ENDIAN ? swap16(viewSum) : viewSum;
    i += words * 4;
  }
  const end4 = end - 3;
  for (; i < end4; i += 4) {
    sum += ((bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3]) >>>
      0;
  }
  if (i + 1 < end) {
    sum += (bytes[i] << 8) | bytes[i + 1];
    i += 2;
  }
  if (i < end) sum += bytes[i] << 8;
  return sum;
}

/**
 * Adds the big-endian 16-bit words of `bytes[start..end)` to the partial sum
 * `sum` and returns the new partial sum, not yet folded or complemented
 * (RFC 1071 §4.1). An odd trailing byte is padded with a zero byte.
 *
 * Partial sums compose: checksum a region in pieces by chaining calls, but
 * every piece except the last must have an even length so that the word
 * boundaries stay aligned with the start of the checksummed region. The byte
 * offset of `bytes` in its buffer does not matter.
 *
 * @param sum a previous partial sum (0 to start), e.g. from
 *   {@link ipv4PseudoHeaderSum}. Keep it below 2^52.
 * @param start first byte, default 0
 * @param end one past the last byte, default `bytes.length`
 * @throws {RangeError} when `start..end` is not a range inside `bytes`.
 * @example
 * ```ts
 * const sum = checksumAdd(0, new Uint8Array([0x00, 0x01, 0xf2, 0x03])); // 0xf204
 * ```
 */
export function checksumAdd(
  sum: number,
  bytes: Uint8Array,
  start: number = 0,
  end: number = bytes.length,
): number {
  if (!(start >= 0 && start <= end && end <= bytes.length)) {
    throw new RangeError(
      `checksumAdd: range ${start}..${end} is outside a ${bytes.length}-byte buffer`,
    );
  }
  if (start === end) return sum;
  if (((bytes.byteOffset + start) & 1) === 0) {
    return sum + fold16(sumEvenAddress(bytes, start, end));
  }
  // Odd address: take the first byte as a high byte, then sum the rest from
  // an even address. The rest is paired one byte off (its high bytes are our
  // low bytes), so its folded sum is byte-swapped (RFC 1071 §2 (B)).
  return sum + (bytes[start] << 8) + swap16(fold16(sumEvenAddress(bytes, start + 1, end)));
}

/**
 * Folds a partial sum to 16 bits and takes its one's complement: the value to
 * store in a checksum field (RFC 1071 §1). When the sum covered a received
 * packet including its checksum field, the result is 0 for a valid packet.
 *
 * @example
 * ```ts
 * checksumFinish(0xddf2); // 0x220d
 * ```
 */
export function checksumFinish(sum: number): number {
  return ~fold16(sum) & 0xffff;
}

/**
 * The Internet checksum of `bytes`: `checksumFinish(checksumAdd(0, bytes))`.
 *
 * @example
 * ```ts
 * // RFC 1071 §3 example
 * internetChecksum(new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])); // 0x220d
 * ```
 */
export function internetChecksum(bytes: Uint8Array): number {
  return checksumFinish(checksumAdd(0, bytes));
}

/**
 * The partial sum of the IPv4 pseudo-header used by UDP (RFC 768) and TCP
 * (RFC 9293 §3.1): source address, destination address, zero, protocol and
 * the UDP/TCP length (header plus data).
 *
 * @example
 * ```ts
 * const sum = ipv4PseudoHeaderSum(0x0a00020f, 0x0a000202, 6, 40);
 * ```
 */
export function ipv4PseudoHeaderSum(
  src: Ipv4Address,
  dst: Ipv4Address,
  protocol: number,
  length: number,
): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}
