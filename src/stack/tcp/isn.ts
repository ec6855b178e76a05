/**
 * Initial sequence numbers (RFC 6528) and SYN cookies (RFC 4987 §3.6), both
 * built on SipHash-2-4, a keyed 64-bit pseudo-random function (Aumasson and
 * Bernstein, "SipHash: a fast short-input PRF", 2012).
 *
 * SipHash works on 64-bit words; this implementation keeps each word as two
 * unsigned 32-bit halves so the hot path needs neither BigInt nor
 * allocation.
 *
 * @module
 */

import { type IpAddress, isIpv6Address, writeIpv6 } from "../../wire/mod.ts";
import { seqAdd } from "./seq.ts";

/** Fills a buffer with unpredictable bytes, e.g. `crypto.getRandomValues`. */
export type RandomSource = (buf: Uint8Array) => void;

// The SipHash state v0..v3 as (high, low) unsigned 32-bit halves. Module
// state instead of locals so one round function serves every caller without
// allocating; the core is synchronous and never re-entered.
let v0h = 0, v0l = 0, v1h = 0, v1l = 0, v2h = 0, v2l = 0, v3h = 0, v3l = 0;
/** High half of the last result of {@linkcode sipCore}. */
let outHi = 0;

/** One SipRound (paper §2, "SipRound"): ARX on the four state words. */
function sipRound(): void {
  let lo: number, h: number;
  // v0 += v1; v1 <<<= 13; v1 ^= v0; v0 <<<= 32
  lo = (v0l + v1l) >>> 0;
  v0h = (v0h + v1h + (lo < v0l ? 1 : 0)) >>> 0;
  v0l = lo;
  h = v1h;
  v1h = ((h << 13) | (v1l >>> 19)) >>> 0;
  v1l = ((v1l << 13) | (h >>> 19)) >>> 0;
  v1h = (v1h ^ v0h) >>> 0;
  v1l = (v1l ^ v0l) >>> 0;
  h = v0h;
  v0h = v0l;
  v0l = h;
  // v2 += v3; v3 <<<= 16; v3 ^= v2
  lo = (v2l + v3l) >>> 0;
  v2h = (v2h + v3h + (lo < v2l ? 1 : 0)) >>> 0;
  v2l = lo;
  h = v3h;
  v3h = ((h << 16) | (v3l >>> 16)) >>> 0;
  v3l = ((v3l << 16) | (h >>> 16)) >>> 0;
  v3h = (v3h ^ v2h) >>> 0;
  v3l = (v3l ^ v2l) >>> 0;
  // v0 += v3; v3 <<<= 21; v3 ^= v0
  lo = (v0l + v3l) >>> 0;
  v0h = (v0h + v3h + (lo < v0l ? 1 : 0)) >>> 0;
  v0l = lo;
  h = v3h;
  v3h = ((h << 21) | (v3l >>> 11)) >>> 0;
  v3l = ((v3l << 21) | (h >>> 11)) >>> 0;
  v3h = (v3h ^ v0h) >>> 0;
  v3l = (v3l ^ v0l) >>> 0;
  // v2 += v1; v1 <<<= 17; v1 ^= v2; v2 <<<= 32
  lo = (v2l + v1l) >>> 0;
  v2h = (v2h + v1h + (lo < v2l ? 1 : 0)) >>> 0;
  v2l = lo;
  h = v1h;
  v1h = ((h << 17) | (v1l >>> 15)) >>> 0;
  v1l = ((v1l << 17) | (h >>> 15)) >>> 0;
  v1h = (v1h ^ v2h) >>> 0;
  v1l = (v1l ^ v2l) >>> 0;
  h = v2h;
  v2h = v2l;
  v2l = h;
}

function readLe32(b: Uint8Array, i: number): number {
  return (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
}

/**
 * SipHash-2-4 of `data[0..len)` under the key (k0, k1), each given as
 * little-endian (low, high) 32-bit halves. Returns the low 32 bits of the
 * 64-bit result and leaves the high 32 bits in `outHi`.
 */
function sipCore(
  k0l: number,
  k0h: number,
  k1l: number,
  k1h: number,
  data: Uint8Array,
  len: number,
): number {
  // Initialisation: "somepseudorandomlygeneratedbytes" XOR the key.
  v0h = (0x736f6d65 ^ k0h) >>> 0;
  v0l = (0x70736575 ^ k0l) >>> 0;
  v1h = (0x646f7261 ^ k1h) >>> 0;
  v1l = (0x6e646f6d ^ k1l) >>> 0;
  v2h = (0x6c796765 ^ k0h) >>> 0;
  v2l = (0x6e657261 ^ k0l) >>> 0;
  v3h = (0x74656462 ^ k1h) >>> 0;
  v3l = (0x79746573 ^ k1l) >>> 0;
  // Compression: each full 8-byte little-endian word, c = 2 rounds.
  const end = len - (len & 7);
  for (let i = 0; i < end; i += 8) {
    const ml = readLe32(data, i);
    const mh = readLe32(data, i + 4);
    v3l = (v3l ^ ml) >>> 0;
    v3h = (v3h ^ mh) >>> 0;
    sipRound();
    sipRound();
    v0l = (v0l ^ ml) >>> 0;
    v0h = (v0h ^ mh) >>> 0;
  }
  // The last word: the remaining 0..7 bytes, and len mod 256 in the top byte.
  let bl = 0;
  let bh = (len & 0xff) << 24;
  const left = len & 7;
  for (let j = 0; j < left; j++) {
    const byte = data[end + j];
    if (j < 4) bl |= byte << (8 * j);
    else bh |= byte << (8 * (j - 4));
  }
  bl >>>= 0;
  bh >>>= 0;
  v3l = (v3l ^ bl) >>> 0;
  v3h = (v3h ^ bh) >>> 0;
  sipRound();
  sipRound();
  v0l = (v0l ^ bl) >>> 0;
  v0h = (v0h ^ bh) >>> 0;
  // Finalisation: v2 ^= 0xff, d = 4 rounds, v0 ^ v1 ^ v2 ^ v3.
  v2l = (v2l ^ 0xff) >>> 0;
  sipRound();
  sipRound();
  sipRound();
  sipRound();
  outHi = (v0h ^ v1h ^ v2h ^ v3h) >>> 0;
  return (v0l ^ v1l ^ v2l ^ v3l) >>> 0;
}

/**
 * SipHash-2-4 of `data` under a 128-bit key, as the paper specifies it: key
 * and message read little-endian, the 64-bit result returned as unsigned
 * 32-bit halves (`hi` is bits 63..32).
 *
 * @throws {RangeError} when `key` is not 16 bytes.
 * @example
 * ```ts
 * const key = Uint8Array.from({ length: 16 }, (_, i) => i);
 * const { hi, lo } = sipHash24(key, new Uint8Array(0));
 * // hi = 0x726fdb47, lo = 0xdd0e0e31: the paper's first test vector
 * ```
 */
export function sipHash24(key: Uint8Array, data: Uint8Array): { hi: number; lo: number } {
  if (key.length !== 16) {
    throw new RangeError(`sipHash24: key must be 16 bytes, got ${key.length}`);
  }
  const lo = sipCore(
    readLe32(key, 0),
    readLe32(key, 4),
    readLe32(key, 8),
    readLe32(key, 12),
    data,
    data.length,
  );
  return { hi: outHi, lo };
}

/** A 128-bit SipHash key as its four little-endian 32-bit words. */
class SipKey {
  readonly k0l: number;
  readonly k0h: number;
  readonly k1l: number;
  readonly k1h: number;

  constructor(random: RandomSource) {
    const key = new Uint8Array(16);
    random(key);
    this.k0l = readLe32(key, 0);
    this.k0h = readLe32(key, 4);
    this.k1l = readLe32(key, 8);
    this.k1h = readLe32(key, 12);
    key.fill(0);
  }

  /** Low 32 bits of SipHash-2-4 over `data[0..len)`. */
  hash32(data: Uint8Array, len: number): number {
    return sipCore(this.k0l, this.k0h, this.k1l, this.k1h, data, len);
  }
}

function checkRandom(random: unknown, who: string): void {
  if (typeof random !== "function") {
    throw new TypeError(`${who}: random must be a function filling a Uint8Array, got ${random}`);
  }
}

function checkTuple(
  who: string,
  localAddr: IpAddress,
  localPort: number,
  remoteAddr: IpAddress,
  remotePort: number,
  now: number,
): void {
  checkAddress(who, "localAddr", localAddr);
  checkAddress(who, "remoteAddr", remoteAddr);
  if (typeof localAddr !== typeof remoteAddr) {
    throw new RangeError(`${who}: localAddr and remoteAddr must be of one IP family`);
  }
  if (!(localPort >= 0 && localPort <= 0xffff && Number.isInteger(localPort))) {
    throw new RangeError(`${who}: localPort must be 0..65535, got ${localPort}`);
  }
  if (!(remotePort >= 0 && remotePort <= 0xffff && Number.isInteger(remotePort))) {
    throw new RangeError(`${who}: remotePort must be 0..65535, got ${remotePort}`);
  }
  if (!Number.isFinite(now)) {
    throw new RangeError(`${who}: now must be a finite number of ms, got ${now}`);
  }
}

function checkAddress(who: string, name: string, addr: IpAddress): void {
  if (
    typeof addr === "string"
      ? !isIpv6Address(addr)
      : !(addr >= 0 && addr <= 0xffffffff && Number.isInteger(addr))
  ) {
    throw new RangeError(`${who}: ${name} must be a u32 or an Ipv6Address, got ${addr}`);
  }
}

function writeBe32(b: Uint8Array, i: number, v: number): void {
  b[i] = v >>> 24;
  b[i + 1] = v >>> 16;
  b[i + 2] = v >>> 8;
  b[i + 3] = v;
}

/** The longest connection id {@linkcode writeTuple} writes (IPv6). */
const TUPLE_MAX_LEN = 36;

/**
 * Writes the connection id: local address, local port, remote address,
 * remote port (12 bytes for IPv4, 36 for IPv6); returns its length.
 */
function writeTuple(
  b: Uint8Array,
  localAddr: IpAddress,
  localPort: number,
  remoteAddr: IpAddress,
  remotePort: number,
): number {
  const a = typeof localAddr === "string" ? 16 : 4;
  writeAddress(b, 0, localAddr);
  b[a] = localPort >>> 8;
  b[a + 1] = localPort;
  writeAddress(b, a + 2, remoteAddr);
  b[2 * a + 2] = remotePort >>> 8;
  b[2 * a + 3] = remotePort;
  return 2 * a + 4;
}

function writeAddress(b: Uint8Array, i: number, addr: IpAddress): void {
  if (typeof addr === "string") writeIpv6(b, i, addr);
  else writeBe32(b, i, addr);
}

/**
 * Initial sequence numbers per RFC 6528 §3:
 * ISN = M + F(localip, localport, remoteip, remoteport, secretkey), where M
 * is a timer ticking every 4 µs (250 per ms) and F is SipHash-2-4 under a
 * 128-bit secret drawn once from `random`, truncated to 32 bits. Connections
 * with the same 4-tuple get increasing ISNs (so old duplicates and TIME_WAIT
 * reuse behave, RFC 6528 §3); different tuples get unrelated ones.
 *
 * @example
 * ```ts
 * const isn = new IsnGenerator((buf) => crypto.getRandomValues(buf));
 * const iss = isn.next(0x0a000202, 80, 0x0a00020f, 40000, 12_345);
 * ```
 */
export class IsnGenerator {
  readonly #key: SipKey;
  readonly #buf = new Uint8Array(TUPLE_MAX_LEN);

  /**
   * Draws the 128-bit secret key from `random` once (RFC 6528 §3).
   *
   * @throws {TypeError} when `random` is not a function.
   */
  constructor(random: RandomSource) {
    checkRandom(random, "IsnGenerator");
    this.#key = new SipKey(random);
  }

  /**
   * The ISN for a new connection on this 4-tuple at time `now` (ms), as an
   * unsigned 32-bit number. M = floor(now * 250) mod 2^32 (RFC 6528 §3).
   *
   * @throws {RangeError} when an address is not a u32, a port not 0..65535,
   * or `now` not finite.
   */
  next(
    localAddr: IpAddress,
    localPort: number,
    remoteAddr: IpAddress,
    remotePort: number,
    now: number,
  ): number {
    checkTuple("IsnGenerator.next", localAddr, localPort, remoteAddr, remotePort, now);
    const len = writeTuple(this.#buf, localAddr, localPort, remoteAddr, remotePort);
    const f = this.#key.hash32(this.#buf, len);
    // ToUint32 reduces any integer-valued double modulo 2^32 exactly.
    return seqAdd(Math.floor(now * 250) % 0x100000000, f);
  }
}

/**
 * MSS values a SYN cookie can carry, indexed by the 3-bit field (RFC 4987
 * §3.6). The same choices as Linux's IPv4 table: 536 (the RFC 1122 default),
 * 1300 (tunnels and VPNs), 1440 and 1460 (Ethernet with and without
 * options). The server picks the largest entry not above the peer's MSS.
 */
export const SYN_COOKIE_MSS_TABLE: readonly number[] = Object.freeze([536, 1300, 1440, 1460]);

/** Length of one SYN cookie period in ms: the 5-bit counter ticks every 64 s. */
export const SYN_COOKIE_PERIOD_MS = 64_000;

/**
 * The index into {@linkcode SYN_COOKIE_MSS_TABLE} for a peer that announced
 * `peerMss`: the largest entry not above it, or 0 when all are.
 *
 * @example
 * ```ts
 * synCookieMssIndex(1460); // 3
 * synCookieMssIndex(1400); // 1 (1300)
 * ```
 */
export function synCookieMssIndex(peerMss: number): number {
  let index = 0;
  for (let i = 1; i < SYN_COOKIE_MSS_TABLE.length; i++) {
    if (SYN_COOKIE_MSS_TABLE[i] <= peerMss) index = i;
  }
  return index;
}

/**
 * SYN cookies (RFC 4987 §3.6): under a SYN flood a listener answers with a
 * SYN-ACK whose ISN encodes everything it needs, keeps no state, and
 * rebuilds the connection when the handshake's ACK (acknowledging
 * cookie + 1) comes back.
 *
 * Layout before whitening, most significant bit first:
 * - 5 bits: t mod 32, t = floor(now / 64 s), the time counter;
 * - 3 bits: the MSS table index;
 * - 24 bits: a MAC, SipHash-2-4 over (4-tuple, peer ISN, t, index).
 *
 * The whole word is then offset by a second keyed hash of (4-tuple, peer
 * ISN), so the counter and index are not visible on the wire and ISNs of
 * different connections look unrelated. A cookie is accepted while its
 * counter is the current or the previous one, i.e. for 64 to 128 s.
 *
 * Cookies carry no window scale, SACK-permitted or timestamp options; a
 * connection rebuilt from one runs without them.
 *
 * @example
 * ```ts
 * const codec = new SynCookieCodec((buf) => crypto.getRandomValues(buf));
 * const iss = codec.encode(0x0a000202, 80, 0x0a00020f, 40000, 1000, 3, 0);
 * // ... the ACK arrives with seq = 1001 and ack = iss + 1
 * codec.decode(0x0a000202, 80, 0x0a00020f, 40000, 1000, iss, 5_000); // { mssIndex: 3 }
 * ```
 */
export class SynCookieCodec {
  readonly #macKey: SipKey;
  readonly #offsetKey: SipKey;
  readonly #buf = new Uint8Array(TUPLE_MAX_LEN + 9);
  /** Length of the tuple and peer ISN in the buffer (the MAC's input continues after). */
  #at = 16;

  /**
   * Draws two 128-bit secret keys from `random`: one for the MAC, one for
   * the whitening offset.
   *
   * @throws {TypeError} when `random` is not a function.
   */
  constructor(random: RandomSource) {
    checkRandom(random, "SynCookieCodec");
    this.#macKey = new SipKey(random);
    this.#offsetKey = new SipKey(random);
  }

  /** Fills the tuple and peer ISN and returns the whitening offset. */
  #offset(
    localAddr: IpAddress,
    localPort: number,
    remoteAddr: IpAddress,
    remotePort: number,
    peerIsn: number,
  ): number {
    const b = this.#buf;
    const len = writeTuple(b, localAddr, localPort, remoteAddr, remotePort);
    writeBe32(b, len, peerIsn);
    this.#at = len + 4;
    return this.#offsetKey.hash32(b, this.#at);
  }

  /** The 24-bit MAC; the tuple and peer ISN must already be in the buffer. */
  #mac(counter: number, mssIndex: number): number {
    const b = this.#buf;
    const at = this.#at;
    writeBe32(b, at, counter >>> 0);
    b[at + 4] = mssIndex;
    return this.#macKey.hash32(b, at + 5) & 0xffffff;
  }

  /**
   * Our ISN for a SYN-ACK sent as a cookie. `peerIsn` is the SYN's sequence
   * number; `mssIndex` indexes {@linkcode SYN_COOKIE_MSS_TABLE}
   * (see {@linkcode synCookieMssIndex}); `now` is in ms.
   *
   * @throws {RangeError} on a bad tuple, a `peerIsn` that is not a u32, or
   * an `mssIndex` outside the table.
   */
  encode(
    localAddr: IpAddress,
    localPort: number,
    remoteAddr: IpAddress,
    remotePort: number,
    peerIsn: number,
    mssIndex: number,
    now: number,
  ): number {
    checkTuple("SynCookieCodec.encode", localAddr, localPort, remoteAddr, remotePort, now);
    if (!(peerIsn >= 0 && peerIsn <= 0xffffffff && Number.isInteger(peerIsn))) {
      throw new RangeError(`SynCookieCodec.encode: peerIsn must be a u32, got ${peerIsn}`);
    }
    if (!(Number.isInteger(mssIndex) && mssIndex >= 0 && mssIndex < SYN_COOKIE_MSS_TABLE.length)) {
      throw new RangeError(
        `SynCookieCodec.encode: mssIndex must be 0..${
          SYN_COOKIE_MSS_TABLE.length - 1
        }, got ${mssIndex}`,
      );
    }
    const offset = this.#offset(localAddr, localPort, remoteAddr, remotePort, peerIsn);
    const counter = Math.floor(now / SYN_COOKIE_PERIOD_MS);
    const word = ((counter & 31) << 27) | (mssIndex << 24) | this.#mac(counter, mssIndex);
    return seqAdd(word, offset);
  }

  /**
   * Checks a returning cookie: `cookie` is the ACK's acknowledgment number
   * minus 1, `peerIsn` its sequence number minus 1. Returns the MSS index
   * when the MAC matches and the counter is the current or the previous
   * period, otherwise `undefined` (a forged, tampered or expired cookie, or
   * one for another connection). Never throws on hostile values.
   */
  decode(
    localAddr: IpAddress,
    localPort: number,
    remoteAddr: IpAddress,
    remotePort: number,
    peerIsn: number,
    cookie: number,
    now: number,
  ): { mssIndex: number } | undefined {
    checkTuple("SynCookieCodec.decode", localAddr, localPort, remoteAddr, remotePort, now);
    const offset = this.#offset(localAddr, localPort, remoteAddr, remotePort, peerIsn >>> 0);
    const word = seqAdd(cookie, -offset);
    const low5 = word >>> 27;
    const mssIndex = (word >>> 24) & 7;
    if (mssIndex >= SYN_COOKIE_MSS_TABLE.length) return undefined;
    const current = Math.floor(now / SYN_COOKIE_PERIOD_MS);
    for (let age = 0; age < 2; age++) {
      const counter = current - age;
      if ((counter & 31) !== low5) continue;
      if (this.#mac(counter, mssIndex) === (word & 0xffffff)) return { mssIndex };
    }
    return undefined;
  }
}
