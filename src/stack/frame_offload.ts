/**
 * Offload metadata of frames in the core, and the software fallback for a
 * frame that carries some but goes where no offload is.
 *
 * A link that takes large TCP segments and partial checksums (a tunnel with
 * segmentation offload) lets the stack send TCP segments of up to 64 KiB,
 * with the segment size to cut them into, and leave their checksums to the
 * far end; a frame from such a link may be one large segment, or carry a
 * checksum the link vouched for. `Stack.setLinkOffload` says what the link
 * takes; `Stack.input` takes what it says of a received frame.
 *
 * @module
 */

import {
  completeChecksum,
  segmentTcpGso,
  tcpv4HeaderOffset,
  tcpv6HeaderOffset,
} from "../wire/mod.ts";

/**
 * Offload metadata of a frame, one number: a TCP GSO packet's segment size
 * in the low 16 bits, and flags. What virtio-net's header says
 * (`vnet_header.ts`), in the form the core passes around; 0 means none (a
 * finished frame).
 *
 * @example
 * ```ts
 * const meta = FrameOffload.GSO_TCPV4 | FrameOffload.CSUM_PARTIAL | 1448;
 * meta & FrameOffload.GSO_SIZE; // 1448
 * ```
 */
export const FrameOffload = {
  /** Mask of the segment size of a GSO packet. */
  GSO_SIZE: 0xffff,
  /** A TCP/IPv4 segment of up to 64 KiB standing for segments of `GSO_SIZE` payload bytes. */
  GSO_TCPV4: 0x10000,
  /** A TCP/IPv6 segment (no extension headers) of up to 64 KiB, as `GSO_TCPV4`. */
  GSO_TCPV6: 0x80000,
  /** Mask of both GSO flags: a large segment, over either family. */
  GSO_TCP_ANY: 0x90000,
  /** Emitted: the TCP checksum field holds the pseudo-header sum; the link finishes it. */
  CSUM_PARTIAL: 0x20000,
  /** Received: the TCP checksum needs no verification (the link vouched for the frame). */
  CSUM_VALID: 0x40000,
} as const;

/**
 * What a link takes (`Stack.setLinkOffload`), as bits: TCP GSO packets over
 * IPv4 and IPv6 (`TSO`, with `CSUM`: TSO implies partial checksums) and
 * partial checksums.
 *
 * @example
 * ```ts
 * stack.setLinkOffload(LinkOffload.TSO | LinkOffload.CSUM);
 * ```
 */
export const LinkOffload = {
  /** The link takes TCP GSO packets of up to 64 KiB and cuts them (TCP segmentation offload). */
  TSO: 1,
  /** The link takes TCP segments with partial checksums and finishes them. */
  CSUM: 2,
} as const;

/**
 * The frames a frame with offload metadata stands for, finished: a GSO
 * packet cut into its segments, a partial checksum completed. A frame
 * without metadata is returned as it is.
 *
 * @example
 * ```ts
 * for (const f of finishOffloadedFrame(frame, offload)) tunnel.send([f]);
 * ```
 */
export function finishOffloadedFrame(frame: Uint8Array, offload: number): Uint8Array[] {
  if ((offload & FrameOffload.GSO_TCP_ANY) !== 0) {
    return segmentTcpGso(frame, offload & FrameOffload.GSO_SIZE) ?? [frame];
  }
  if ((offload & FrameOffload.CSUM_PARTIAL) !== 0) {
    const tcp = tcpHeaderOffset(frame);
    if (tcp >= 0) completeChecksum(frame, tcp, 16);
  }
  return [frame];
}

/**
 * Finishes every frame of a batch whose metadata says so (see
 * {@linkcode finishOffloadedFrame}), for a link without offload: the
 * frames it can send, in order.
 *
 * @example
 * ```ts
 * const { frames, offload } = link.drainWithOffload();
 * tunnel.send(offload ? finishOffloadedFrames(frames, offload) : frames);
 * ```
 */
export function finishOffloadedFrames(frames: Uint8Array[], offload: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < frames.length; i++) {
    const o = offload[i];
    if (o === 0) out.push(frames[i]);
    else for (const f of finishOffloadedFrame(frames[i], o)) out.push(f);
  }
  return out;
}

/**
 * The offset of the TCP header of a TCP segment over IPv4 or IPv6 (without
 * extension headers) in an Ethernet frame, or -1 for any other frame.
 *
 * @example
 * ```ts
 * const tcp = tcpHeaderOffset(frame); // 34 over IPv4, 54 over IPv6
 * ```
 */
export function tcpHeaderOffset(frame: Uint8Array): number {
  const v4 = tcpv4HeaderOffset(frame);
  return v4 >= 0 ? v4 : tcpv6HeaderOffset(frame);
}
