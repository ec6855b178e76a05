/**
 * Sequence-number arithmetic of the TCP core, modulo 2^32 (RFC 9293 §3.4):
 * every comparison, sum and distance of sequence numbers (and of TCP
 * timestamps, RFC 7323 §5.2) in src/stack/tcp goes through this module, so
 * the wrap is handled in one place. The comparisons and the plain sum and
 * difference are the wire's ({@linkcode tcpSeqLt} and friends); this module
 * names them for the core and adds what a TCB needs on top.
 *
 * All results are valid for numbers less than 2^31 apart, which TCP
 * guarantees: windows are at most 2^30 bytes (RFC 7323 §2.3).
 *
 * @example
 * ```ts
 * seqLt(0xfffffff0, 0x10); // true: 0x10 is 32 numbers later, across the wrap
 * seqAdd(0xffffffff, 2); // 1
 * seqSpan(0xfffffff0, 0x10); // 32
 * ```
 *
 * @module
 */

export {
  /** `a + n` modulo 2^32, unsigned. */
  tcpSeqAdd as seqAdd,
  /** The signed distance `a - b` modulo 2^32, in -2^31..2^31-1. */
  tcpSeqDiff as seqSub,
  /** `a >= b` modulo 2^32. */
  tcpSeqGe as seqGe,
  /** `a > b` modulo 2^32. */
  tcpSeqGt as seqGt,
  /** `a <= b` modulo 2^32. */
  tcpSeqLe as seqLe,
  /** `a < b` modulo 2^32. */
  tcpSeqLt as seqLt,
} from "../../wire/tcp.ts";

/**
 * How many sequence numbers lie from `from` up to (not including) `to`, or 0
 * when `to` is not after `from`: the room left in a window whose right edge
 * is `to`, the bytes between SND.NXT and the end of the data.
 *
 * @example
 * ```ts
 * seqSpan(0xfffffff0, 0x10); // 32
 * seqSpan(10, 5); // 0
 * ```
 */
export function seqSpan(from: number, to: number): number {
  const d = (to - from) | 0;
  return d > 0 ? d : 0;
}

/**
 * The later of two sequence numbers.
 *
 * @example
 * ```ts
 * seqMax(0xfffffff0, 0x10); // 0x10
 * ```
 */
export function seqMax(a: number, b: number): number {
  return ((a - b) | 0) >= 0 ? a : b;
}

/**
 * The earlier of two sequence numbers.
 *
 * @example
 * ```ts
 * seqMin(0xfffffff0, 0x10); // 0xfffffff0
 * ```
 */
export function seqMin(a: number, b: number): number {
  return ((a - b) | 0) <= 0 ? a : b;
}

/**
 * Whether `seq` lies in `[left, right)`, modulo 2^32.
 *
 * @example
 * ```ts
 * seqInRange(0, 0xfffffff0, 0x10); // true
 * seqInRange(0x10, 0xfffffff0, 0x10); // false
 * ```
 */
export function seqInRange(seq: number, left: number, right: number): boolean {
  return ((seq - left) | 0) >= 0 && ((seq - right) | 0) < 0;
}
