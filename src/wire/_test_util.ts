/**
 * Test helpers and golden frames shared by the `src/wire` tests. Not
 * re-exported by `mod.ts`.
 *
 * The golden frames were built by hand to match what Linux sends and
 * cross-checked with tcpdump (`-vvv` reports the TCP, UDP and ICMP checksums
 * correct).
 *
 * @module
 */

/** Decodes hex, ignoring whitespace. Throws on malformed input. */
export function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) {
    throw new TypeError(`hex: malformed hex string "${text}"`);
  }
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Encodes bytes as lowercase hex. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/**
 * Copies `bytes` into a fresh buffer at byte offset `offset`, so tests can
 * exercise unaligned views.
 */
export function atOffset(bytes: Uint8Array, offset: number): Uint8Array {
  const backing = new Uint8Array(bytes.length + offset + 3);
  backing.set(bytes, offset);
  return backing.subarray(offset, offset + bytes.length);
}

/** 10.0.2.15, the Linux side of the tests. */
export const LINUX_IP = 0x0a00020f;
/** 10.0.2.2, the netisle side. */
export const STACK_IP = 0x0a000202;
/** 52:54:00:12:34:56, the Linux side (QEMU's default MAC). */
export const LINUX_MAC: Uint8Array = hex("525400123456");
/** 02:00:00:00:00:01, the netisle side. */
export const STACK_MAC: Uint8Array = hex("020000000001");

/** Linux: "who-has 10.0.2.2 tell 10.0.2.15", broadcast, 42 bytes (unpadded, as read from a TAP). */
export const GOLDEN_ARP_REQUEST = hex(
  "ffffffffffff 525400123456 0806" +
    "0001 0800 06 04 0001 525400123456 0a00020f 000000000000 0a000202",
);

/** "10.0.2.2 is-at 02:00:00:00:00:01" to Linux. */
export const GOLDEN_ARP_REPLY = hex(
  "525400123456 020000000001 0806" +
    "0001 0800 06 04 0002 020000000001 0a000202 525400123456 0a00020f",
);

/**
 * Linux `ping 10.0.2.2`: IPv4 id 0x3a5c, DF, TTL 64, IP checksum 0xe83c;
 * ICMP echo request id 0x0a1b, seq 1, checksum 0xe257, 56 data bytes (a
 * 16-byte timeval then 0x10..0x37).
 */
export const GOLDEN_PING = hex(
  "020000000001 525400123456 0800" +
    "4500 0054 3a5c 4000 4001 e83c 0a00020f 0a000202" +
    "0800 e257 0a1b 0001" +
    "6f8e2d6700000000 a4c30b0000000000" +
    "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637",
);

/**
 * A Linux SYN 10.0.2.15:45678 -> 10.0.2.2:80, seq 0x12345678, window 64240,
 * options in Linux's order: MSS 1460, SACK-permitted + timestamps
 * (TSval 0x0a1b2c3d, TSecr 0), NOP, window scale 7. TCP checksum 0xe33b.
 */
export const GOLDEN_SYN = hex(
  "020000000001 525400123456 0800" +
    "4500 003c d431 4000 4006 4e7a 0a00020f 0a000202" +
    "b26e 0050 12345678 00000000 a0 02 faf0 e33b 0000" +
    "020405b4 0402080a 0a1b2c3d 00000000 01030307",
);

/**
 * A DNS query for example.com A, 10.0.2.15:54321 -> 10.0.2.2:53, 29-byte
 * (odd) payload, UDP checksum 0x97f1, no DF.
 */
export const GOLDEN_UDP = hex(
  "020000000001 525400123456 0800" +
    "4500 0039 1234 0000 4011 5070 0a00020f 0a000202" +
    "d431 0035 0025 97f1" +
    "abcd01000001000000000000076578616d706c6503636f6d0000010001",
);

/** Every golden frame, for fuzzing seeds. */
export const GOLDEN_FRAMES: readonly Uint8Array[] = [
  GOLDEN_ARP_REQUEST,
  GOLDEN_ARP_REPLY,
  GOLDEN_PING,
  GOLDEN_SYN,
  GOLDEN_UDP,
];
