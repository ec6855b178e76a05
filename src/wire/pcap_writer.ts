/**
 * The classic libpcap file format (what `tcpdump -w` writes and `tshark -r`,
 * Wireshark and every capture tool read): a 24-byte file header, then one
 * 16-byte record header plus the captured bytes per packet. Pure encoding, no
 * state and no I/O. Integers are written little-endian; readers learn the byte
 * order from the magic number.
 *
 * Reference: draft-ietf-opsawg-pcap (the libpcap file format).
 *
 * @example
 * ```ts
 * import { encodePcapHeader, encodePcapRecords } from "./pcap_writer.ts";
 *
 * const header = encodePcapHeader({ snaplen: 1514 });
 * const records = encodePcapRecords([{ timeMs: Date.now(), data: frame }], { snaplen: 1514 });
 * // header followed by records is a file `tshark -r` opens.
 * ```
 *
 * @module
 */

/** Magic number of a file whose record timestamps count microseconds. */
export const PCAP_MAGIC_MICROSECONDS = 0xa1b2c3d4;
/** Magic number of a file whose record timestamps count nanoseconds. */
export const PCAP_MAGIC_NANOSECONDS = 0xa1b23c4d;
/** Major version of the format written (2.4, the only one in use). */
export const PCAP_VERSION_MAJOR = 2;
/** Minor version of the format written. */
export const PCAP_VERSION_MINOR = 4;
/** LINKTYPE_ETHERNET: records hold Ethernet II frames, destination MAC first, no FCS. */
export const PCAP_LINKTYPE_ETHERNET = 1;
/** Length of the file header. */
export const PCAP_FILE_HEADER_LEN = 24;
/** Length of the header before each record's bytes. */
export const PCAP_RECORD_HEADER_LEN = 16;
/** Largest snapshot length the format allows (a signed 32-bit field in many readers). */
export const PCAP_MAX_SNAPLEN = 0x7fffffff;

/** Resolution of record timestamps: microseconds (`us`) or nanoseconds (`ns`). */
export type PcapPrecision = "us" | "ns";

/** Parameters of a capture file. */
export interface PcapFileOptions {
  /** Most bytes kept of each packet; longer packets are truncated (their original length is kept). */
  snaplen: number;
  /** Timestamp resolution; default `us`. */
  precision?: PcapPrecision;
  /** Link-layer type of every record; default {@linkcode PCAP_LINKTYPE_ETHERNET}. */
  linktype?: number;
}

/** One packet to write. */
export interface PcapRecord {
  /** Wall-clock time of the packet in milliseconds since the Unix epoch (fractions allowed). */
  timeMs: number;
  /** The packet's bytes (an Ethernet frame for {@linkcode PCAP_LINKTYPE_ETHERNET}). */
  data: Uint8Array;
}

function checkSnaplen(snaplen: number): void {
  if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > PCAP_MAX_SNAPLEN) {
    throw new RangeError(
      `pcap: snaplen must be an integer in 1..${PCAP_MAX_SNAPLEN}, got ${snaplen}`,
    );
  }
}

/**
 * Encodes the 24-byte file header. Throws RangeError for a snaplen outside
 * 1..2^31-1 or a linktype outside 0..65535.
 *
 * @example
 * ```ts
 * encodePcapHeader({ snaplen: 1514 }); // d4 c3 b2 a1 02 00 04 00 … ea 05 00 00 01 00 00 00
 * ```
 */
export function encodePcapHeader(options: PcapFileOptions): Uint8Array {
  checkSnaplen(options.snaplen);
  const linktype = options.linktype ?? PCAP_LINKTYPE_ETHERNET;
  if (!Number.isInteger(linktype) || linktype < 0 || linktype > 0xffff) {
    throw new RangeError(`pcap: linktype must be an integer in 0..65535, got ${linktype}`);
  }
  const out = new Uint8Array(PCAP_FILE_HEADER_LEN);
  const v = new DataView(out.buffer);
  const magic = (options.precision ?? "us") === "ns"
    ? PCAP_MAGIC_NANOSECONDS
    : PCAP_MAGIC_MICROSECONDS;
  v.setUint32(0, magic, true);
  v.setUint16(4, PCAP_VERSION_MAJOR, true);
  v.setUint16(6, PCAP_VERSION_MINOR, true);
  v.setInt32(8, 0, true); // thiszone: timestamps are UTC
  v.setUint32(12, 0, true); // sigfigs: always 0
  v.setUint32(16, options.snaplen, true);
  v.setUint32(20, linktype, true);
  return out;
}

/** Bytes one record of a `frameLen`-byte packet takes in a file with `snaplen`. */
export function pcapRecordLen(frameLen: number, snaplen: number): number {
  return PCAP_RECORD_HEADER_LEN + Math.min(frameLen, snaplen);
}

/**
 * Writes one record (header and up to `snaplen` bytes of `record.data`) into
 * `out` at `offset` and returns the bytes written. `out` must have room for
 * {@linkcode pcapRecordLen}; throws RangeError when it has not, or when the
 * time is negative or beyond 2106 (the u32 seconds field).
 *
 * @example
 * ```ts
 * const out = new Uint8Array(pcapRecordLen(frame.length, 1514));
 * writePcapRecord(out, 0, { timeMs: 1_700_000_000_000, data: frame }, { snaplen: 1514 });
 * ```
 */
export function writePcapRecord(
  out: Uint8Array,
  offset: number,
  record: PcapRecord,
  options: PcapFileOptions,
): number {
  const { timeMs, data } = record;
  const inclLen = Math.min(data.length, options.snaplen);
  const total = PCAP_RECORD_HEADER_LEN + inclLen;
  if (!Number.isInteger(offset) || offset < 0 || offset + total > out.length) {
    throw new RangeError(
      `pcap: a ${total}-byte record does not fit at offset ${offset} of a ${out.length}-byte buffer`,
    );
  }
  if (!(timeMs >= 0) || timeMs >= 2 ** 32 * 1000) {
    throw new RangeError(`pcap: timeMs must be in 0..2^32 seconds since the epoch, got ${timeMs}`);
  }
  let seconds = Math.floor(timeMs / 1000);
  const ns = (options.precision ?? "us") === "ns";
  const perSecond = ns ? 1e9 : 1e6;
  let fraction = Math.floor((timeMs - seconds * 1000) * (perSecond / 1000));
  if (fraction >= perSecond) { // rounding at the top of a second
    seconds++;
    fraction -= perSecond;
  }
  const v = new DataView(out.buffer, out.byteOffset + offset, PCAP_RECORD_HEADER_LEN);
  v.setUint32(0, seconds, true);
  v.setUint32(4, fraction, true);
  v.setUint32(8, inclLen, true);
  v.setUint32(12, data.length, true);
  out.set(inclLen === data.length ? data : data.subarray(0, inclLen), offset + 16);
  return total;
}

/**
 * Encodes `records` back to back in one buffer (one allocation for a batch).
 * Throws RangeError as {@linkcode writePcapRecord} does.
 *
 * @example
 * ```ts
 * const chunk = encodePcapRecords([{ timeMs: 0, data: new Uint8Array(60) }], { snaplen: 1514 });
 * chunk.length; // 76
 * ```
 */
export function encodePcapRecords(
  records: readonly PcapRecord[],
  options: PcapFileOptions,
): Uint8Array {
  checkSnaplen(options.snaplen);
  let len = 0;
  for (const r of records) len += pcapRecordLen(r.data.length, options.snaplen);
  const out = new Uint8Array(len);
  let off = 0;
  for (const r of records) off += writePcapRecord(out, off, r, options);
  return out;
}
