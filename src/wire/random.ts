/**
 * A tiny seeded pseudo-random generator for tests and fuzzing: a Weyl
 * sequence (step 0x9e3779b9, the 32-bit golden ratio) passed through a 32-bit
 * avalanche mix. Fast, deterministic for a seed, and statistically good
 * enough for picking test inputs. Not for cryptography: use
 * `crypto.getRandomValues` for ISNs, MACs and tokens in production.
 *
 * @module
 */

/**
 * A seeded source of pseudo-random numbers.
 *
 * @example
 * ```ts
 * const rng: SeededRandom = seededRandom(42);
 * ```
 */
export interface SeededRandom {
  /** A float in [0, 1) with 32 random bits. */
  next(): number;
  /** An unsigned 32-bit integer. */
  u32(): number;
  /** Fills `buf` with random bytes. */
  fill(buf: Uint8Array): void;
}

/**
 * A generator whose output depends only on `seed` (taken modulo 2^32).
 *
 * @throws {RangeError} when `seed` is not a finite number.
 * @example
 * ```ts
 * const rng = seededRandom(0x5eed);
 * const len = Math.floor(rng.next() * 1500);
 * const buf = new Uint8Array(len);
 * rng.fill(buf);
 * ```
 */
export function seededRandom(seed: number): SeededRandom {
  if (!Number.isFinite(seed)) {
    throw new RangeError(`seededRandom: seed must be a finite number, got ${seed}`);
  }
  let state = Math.trunc(seed) | 0;
  function u32(): number {
    state = (state + 0x9e3779b9) | 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return (z ^ (z >>> 15)) >>> 0;
  }
  return {
    next(): number {
      return u32() / 0x100000000;
    },
    u32,
    fill(buf: Uint8Array): void {
      const n = buf.length;
      let i = 0;
      for (; i + 4 <= n; i += 4) {
        const r = u32();
        buf[i] = r;
        buf[i + 1] = r >>> 8;
        buf[i + 2] = r >>> 16;
        buf[i + 3] = r >>> 24;
      }
      if (i < n) {
        let r = u32();
        for (; i < n; i++, r >>>= 8) buf[i] = r;
      }
    },
  };
}
