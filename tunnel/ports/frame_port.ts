/**
 * A frame port is the local end of a tunnel: a place Ethernet frames come
 * from and go to (a Linux TAP device, a QEMU stream or dgram socket).
 *
 * The tunnel client reads frames from a port and sends them to the server,
 * and writes frames from the server into the port.
 *
 * @module
 */

/**
 * Receives every batch of frames a port reads. The frames are the receiver's
 * to keep, unless it started the port with `borrowed` (see
 * {@linkcode FrameSinkOptions}).
 */
export type FrameSink = (frames: Uint8Array[]) => void;

/** How a {@linkcode FrameSink} takes its frames. */
export interface FrameSinkOptions {
  /**
   * The sink is done with a batch's frames when it returns (it copies what
   * it keeps), so the port may hand out views of its own read buffer and
   * overwrite them with the next batch: a TAP then reads each record
   * straight where the sink will find it, without a buffer of its own per
   * large frame. Ports that own nothing to reuse ignore it. Default false.
   */
  borrowed?: boolean;
}

/** The local end of a tunnel: a device or socket that carries Ethernet frames. */
export interface FramePort {
  /** A human-readable name, e.g. `tap:tap0`. */
  readonly name: string;
  /** The largest frame the port carries, Ethernet header included, FCS excluded. */
  readonly maxFrameLen: number;
  /**
   * Starts reading; `sink` is called with every batch of frames read. Frames
   * read together (one poll wakeup) arrive in one batch.
   */
  start(sink: FrameSink, options?: FrameSinkOptions): void;
  /**
   * Writes one frame to the port. Never throws for a frame the device refuses; counts it.
   * The port may keep `frame` until the current turn of the event loop ends (ports batch
   * the frames sent together into fewer writes), so the caller must not change it.
   */
  send(frame: Uint8Array): void;
  /** Stops reading and releases the device. Idempotent. */
  close(): Promise<void>;
  /**
   * Ports that read and write virtio-net headers (a TAP with `IFF_VNET_HDR`)
   * can pass them through: while on, the sink gets records (the 10-byte
   * header as the device wrote it, then the frame: a TSO packet of up to
   * 64 KiB stays whole) and `send` takes records, written as they are. Off
   * (the default), plain frames both ways. Returns whether passthrough is
   * on; absent on ports that cannot.
   */
  setVnetPassthrough?(on: boolean): boolean;
  /** Counters: frames and bytes each way, and frames the device refused. */
  readonly stats: FramePortStats;
}

/** Counters every frame port keeps. */
export interface FramePortStats {
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
  txBytes: number;
  txErrors: number;
}
