/**
 * Internal argument checks shared by the emitters. Not re-exported by
 * `mod.ts`: a failed check is a programming error and throws.
 *
 * @module
 */

/**
 * Throws a RangeError unless `value` is an integer in `0..max`.
 *
 * @param where the API that was misused, e.g. `"TcpRepr.emit"`
 * @param name the field or argument name
 */
export function checkUint(where: string, name: string, value: number, max: number): void {
  // `value >= 0 && value <= max` is false for NaN; the modulo check catches fractions.
  if (!(value >= 0 && value <= max && value % 1 === 0)) {
    throw new RangeError(`${where}: ${name} must be an integer in 0..${max}, got ${String(value)}`);
  }
}

/** Throws a RangeError unless `buf` holds at least `need` bytes. */
export function checkBuffer(where: string, buf: Uint8Array, need: number): void {
  if (buf.length < need) {
    throw new RangeError(
      `${where}: buffer of ${buf.length} bytes is too small, need ${need} bytes`,
    );
  }
}

/** Throws a TypeError unless `mac` is a 6-byte Uint8Array. */
export function checkMac(where: string, name: string, mac: Uint8Array): void {
  if (!(mac instanceof Uint8Array) || mac.length !== 6) {
    const got = mac instanceof Uint8Array ? `${mac.length} bytes` : String(mac);
    throw new TypeError(`${where}: ${name} must be a 6-byte Uint8Array, got ${got}`);
  }
}

/**
 * Copies `src` into `dst` at `offset`, skipping the copy when `src` already is
 * exactly that region (the caller built the payload in place).
 */
export function copyInto(dst: Uint8Array, offset: number, src: Uint8Array): void {
  if (
    src.length === 0 ||
    (src.buffer === dst.buffer && src.byteOffset === dst.byteOffset + offset)
  ) {
    return;
  }
  dst.set(src, offset);
}
