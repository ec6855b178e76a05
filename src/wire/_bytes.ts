/**
 * Internal unchecked big-endian accessors for the codecs. Callers have
 * already checked the bounds. Not re-exported by `mod.ts`.
 *
 * @module
 */

/** Reads a big-endian u16 at `offset` (bounds already checked). */
export function readU16(buf: Uint8Array, offset: number): number {
  return (buf[offset] << 8) | buf[offset + 1];
}

/** Reads a big-endian u32 at `offset` (bounds already checked). */
export function readU32(buf: Uint8Array, offset: number): number {
  return ((buf[offset] << 24) | (buf[offset + 1] << 16) | (buf[offset + 2] << 8) |
    buf[offset + 3]) >>> 0;
}

/** Writes a big-endian u16 at `offset` (bounds already checked). */
export function writeU16(buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = value >>> 8;
  buf[offset + 1] = value;
}

/** Writes a big-endian u32 at `offset` (bounds already checked). */
export function writeU32(buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = value >>> 24;
  buf[offset + 1] = value >>> 16;
  buf[offset + 2] = value >>> 8;
  buf[offset + 3] = value;
}
