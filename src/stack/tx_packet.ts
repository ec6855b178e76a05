/**
 * Building a packet in place: the network layer allocates the frame and
 * writes the link and network headers, the transport writes its own header
 * and payload behind them, and the network layer sends the frame. The
 * transport never sees the network header's size (20 bytes for IPv4, 40 for
 * IPv6), only where its own header starts and the pseudo-header's checksum.
 *
 * @module
 */

/**
 * The packet a transport is building in place: the frame (link and network
 * headers already written), where the transport's header starts in it, and
 * the partial checksum of the pseudo-header. One object per output path,
 * reused for every packet, so that sending allocates nothing but the frame.
 *
 * @example
 * ```ts
 * const tx = out.begin(peer, IpProtocol.TCP, 20 + payload.length, true);
 * if (tx) {
 *   writeTcpHeader(tx.frame, tx.l4, 80, 40000, seq, ack, 20, TcpFlags.ACK, 512);
 *   tx.frame.set(payload, tx.l4 + 20);
 *   writeTcpChecksum(tx.frame, tx.l4, 20 + payload.length, tx.pseudoSum);
 *   out.commit(now);
 * }
 * ```
 */
export class TxPacket {
  /** The frame being built (Ethernet header first). */
  frame: Uint8Array = new Uint8Array(0);
  /** Offset of the transport header in {@linkcode TxPacket.frame}. */
  l4 = 0;
  /** Partial sum (RFC 1071) of the pseudo-header, transport length included. */
  pseudoSum = 0;
  /** Offload metadata the transport sets before committing (`FrameOffload`), 0 by default. */
  offload = 0;
}

/**
 * A network layer's output as a transport uses it: begin a packet, write
 * the transport's bytes into it, commit it. Nothing else may be sent between
 * `begin` and `commit`. `A` is the family's address type: IPv4 output takes
 * numbers, IPv6 output 8-unit strings (`IpAddress` in src/wire).
 *
 * @example
 * ```ts
 * const tx = out.begin(dst, IpProtocol.TCP, len, true);
 * if (tx) { fillSegment(tx.frame, tx.l4); out.commit(now); }
 * ```
 */
export interface PacketOutput<A extends number | string = number> {
  /**
   * Begins a packet of `payloadLen` transport bytes to `dst` (from `src`
   * when given, else the stack's address); undefined when it cannot be sent
   * (the drop is counted). With `gso` the packet may exceed the MTU, up to
   * a whole IPv4 packet: a segmentation-offload packet for a link that
   * takes them (IPv4 only). `dontFragment` and `ttl` mean the DF bit and
   * the TTL for IPv4; IPv6 never fragments what it sends and takes `ttl`
   * as the hop limit.
   */
  begin(
    dst: A,
    protocol: number,
    payloadLen: number,
    dontFragment: boolean,
    ttl?: number,
    src?: A,
    gso?: boolean,
  ): TxPacket | undefined;
  /** Sends the packet begun; false when it was dropped (counted). */
  commit(now: number): boolean;
}
