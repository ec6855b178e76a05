/**
 * The runtime-neutral body of the Linux TAP frame port: attaching to the
 * device, the read loop and writes, written against a tiny set of libc calls
 * ({@linkcode TapSys}) that each runtime's FFI adapter provides, plus a way to
 * wait until the device is readable ({@linkcode TapWaiter}).
 *
 * @module
 */

import type { FramePort, FrameSink, FrameSinkOptions } from "./frame_port.ts";
import {
  AF_INET,
  cString,
  EAGAIN,
  EFD_FLAGS,
  EINTR,
  ETH_HEADER_LEN,
  IFF_NO_PI,
  IFF_TAP,
  IFF_UP,
  IFF_VNET_HDR,
  IFREQ_UNION,
  makeIfreq,
  MAX_BATCH,
  newStats,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  openError,
  READ_BUFFER_LEN,
  type ResolvedTapOptions,
  SIOCGIFFLAGS,
  SIOCGIFINDEX,
  SIOCGIFMTU,
  SIOCSIFFLAGS,
  SIOCSIFMTU,
  SOCK_DGRAM,
  strerror,
  type TapPortStats,
  TUN_PATH,
  TUNSETIFF,
  tunsetiffError,
} from "./tap_common.ts";
import {
  acceptTapRead,
  encodeTapWrite,
  MAX_OFFLOAD_WRITE,
  splitTapGso,
  tcpRunEnd,
  TUN_F_CSUM,
  TUN_F_TSO4,
  TUNSETOFFLOAD,
  VNET_HDR_LEN,
} from "./tap_offload.ts";

/**
 * The libc calls the port needs, as a runtime's FFI binds them. Every call
 * returns what the C function returns (`-1` on failure) and `errno()` reads
 * the calling thread's errno right after a failed call.
 */
export interface TapSys {
  open(path: Uint8Array, flags: number): number;
  close(fd: number): number;
  read(fd: number, buf: Uint8Array, len: number): number;
  write(fd: number, buf: Uint8Array, len: number): number;
  ioctl(fd: number, request: number, arg: Uint8Array): number;
  /** `ioctl(fd, request, value)` for requests that take an integer, not a pointer. */
  ioctlValue(fd: number, request: number, value: number): number;
  socket(domain: number, type: number, protocol: number): number;
  eventfd(initval: number, flags: number): number;
  errno(): number;
}

/**
 * Waits until the TAP fd or the wake-up eventfd is readable, or a timeout
 * passes. `dispose()` is called once the read loop has ended.
 */
export interface TapWaiter {
  wait(timeoutMs: number): Promise<void>;
  dispose(): Promise<void> | void;
}

/** Makes the waiter for a port's pair of fds (the TAP device, the wake-up eventfd). */
export type TapWaiterFactory = (tapFd: number, wakeFd: number) => TapWaiter;

/** A TAP frame port: a {@linkcode FramePort} with the interface name and extra counters. */
export interface TapPort extends FramePort {
  /** The kernel's name of the interface (differs from the option for patterns like `tap%d`). */
  readonly ifname: string;
  /** The counters, plus `rxErrors`. */
  readonly stats: TapPortStats;
}

/** Size of the chunks received frames are copied into. */
const CHUNK_LEN = 65536;
/** Frames longer than this get an ArrayBuffer of their own. */
const MAX_CHUNKED_FRAME = 16384;
/** A batch ends after this many bytes read (TSO packets are up to 64 KiB each). */
const MAX_BATCH_READ_BYTES = 1024 * 1024;
/**
 * With a borrowing sink, records are read one after the other into one
 * buffer of this size: a batch's bytes and room for one more read.
 */
const BORROWED_BATCH_LEN = MAX_BATCH_READ_BYTES + READ_BUFFER_LEN;

/** How long one wait may last; a close wakes the loop through the eventfd much sooner. */
const WAIT_TIMEOUT_MS = 200;

/**
 * Attaches to (or creates) the TAP interface and returns the port, not yet
 * reading. Throws an `Error` that names the failing step and the errno.
 */
export function openTapWith(
  sys: TapSys,
  opts: ResolvedTapOptions,
  makeWaiter: TapWaiterFactory,
): TapPort {
  const fds: number[] = [];
  const closeAll = () => {
    for (const fd of fds) sys.close(fd);
  };
  try {
    const ctl = sys.socket(AF_INET, SOCK_DGRAM, 0);
    if (ctl < 0) throw new Error(`cannot create the ioctl socket: ${strerror(sys.errno())}`);
    fds.push(ctl);

    if (!opts.create) {
      const ifr = makeIfreq(opts.name);
      if (sys.ioctl(ctl, SIOCGIFINDEX, ifr) < 0) {
        const errno = sys.errno();
        throw new Error(
          errno === 19
            ? `TAP interface ${opts.name} does not exist (create it with ` +
              `"ip tuntap add dev ${opts.name} mode tap", or open with create: true)`
            : `cannot look up interface ${opts.name}: ${strerror(errno)}`,
        );
      }
    }

    const fd = sys.open(cString(TUN_PATH), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) throw openError(sys.errno());
    fds.push(fd);

    const ifr = makeIfreq(opts.name);
    const ifFlags = IFF_TAP | IFF_NO_PI | (opts.offload ? IFF_VNET_HDR : 0);
    new DataView(ifr.buffer).setUint16(IFREQ_UNION, ifFlags, true);
    if (sys.ioctl(fd, TUNSETIFF, ifr) < 0) throw tunsetiffError(opts.name, sys.errno());
    if (opts.offload && sys.ioctlValue(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4) < 0) {
      throw new Error(`TUNSETOFFLOAD on ${opts.name} failed: ${strerror(sys.errno())}`);
    }
    const nul = ifr.indexOf(0);
    const ifname = new TextDecoder().decode(ifr.subarray(0, nul < 0 ? 16 : Math.min(nul, 16)));

    let mtu = opts.mtu;
    const mtuReq = makeIfreq(ifname);
    const mtuView = new DataView(mtuReq.buffer);
    if (opts.setMtu) {
      mtuView.setInt32(IFREQ_UNION, opts.mtu, true);
      if (sys.ioctl(ctl, SIOCSIFMTU, mtuReq) < 0) {
        throw new Error(`cannot set the MTU of ${ifname} to ${opts.mtu}: ${strerror(sys.errno())}`);
      }
    } else if (sys.ioctl(ctl, SIOCGIFMTU, mtuReq) < 0) {
      throw new Error(`cannot read the MTU of ${ifname}: ${strerror(sys.errno())}`);
    } else {
      mtu = mtuView.getInt32(IFREQ_UNION, true);
    }
    if (opts.up) {
      const req = makeIfreq(ifname);
      if (sys.ioctl(ctl, SIOCGIFFLAGS, req) < 0) {
        throw new Error(`cannot read the flags of ${ifname}: ${strerror(sys.errno())}`);
      }
      const view = new DataView(req.buffer);
      const flags = view.getUint16(IFREQ_UNION, true);
      if ((flags & IFF_UP) === 0) {
        view.setUint16(IFREQ_UNION, flags | IFF_UP, true);
        if (sys.ioctl(ctl, SIOCSIFFLAGS, req) < 0) {
          throw new Error(`cannot bring ${ifname} up: ${strerror(sys.errno())}`);
        }
      }
    }

    const wakeFd = sys.eventfd(0, EFD_FLAGS);
    if (wakeFd < 0) throw new Error(`cannot create an eventfd: ${strerror(sys.errno())}`);
    fds.push(wakeFd);

    sys.close(ctl);
    fds.shift();
    return new TapPortImpl(sys, opts, ifname, mtu + ETH_HEADER_LEN, fd, wakeFd, makeWaiter);
  } catch (error) {
    closeAll();
    throw error;
  }
}

class TapPortImpl implements TapPort {
  readonly name: string;
  readonly ifname: string;
  readonly maxFrameLen: number;
  readonly stats: TapPortStats = newStats();

  #sys: TapSys;
  #fd: number;
  #wakeFd: number;
  #makeWaiter: TapWaiterFactory;
  #onError: (error: Error) => void;
  #readBuf = new Uint8Array(READ_BUFFER_LEN);
  /** With offload: every read and write starts with a virtio header. */
  #offload: boolean;
  /** With offload: records (virtio header and frame) pass through as they are, both ways. */
  #passthrough = false;
  /** With offload: frames sent in this turn of the event loop, written together. */
  #pending: Uint8Array[] = [];
  #flushQueued = false;
  #writeBuf: Uint8Array | undefined;
  #chunk = new Uint8Array(0);
  #chunkOff = CHUNK_LEN;
  /** The sink copies what it keeps (FrameSinkOptions.borrowed): frames may be views of #batchBuf. */
  #borrowed = false;
  #batchBuf: Uint8Array | undefined;
  #closing = false;
  #started = false;
  #loop: Promise<void> | undefined;
  #closed: Promise<void> | undefined;

  constructor(
    sys: TapSys,
    opts: ResolvedTapOptions,
    ifname: string,
    maxFrameLen: number,
    fd: number,
    wakeFd: number,
    makeWaiter: TapWaiterFactory,
  ) {
    this.#sys = sys;
    this.#fd = fd;
    this.#wakeFd = wakeFd;
    this.#makeWaiter = makeWaiter;
    this.#onError = opts.onError;
    this.#offload = opts.offload;
    this.ifname = ifname;
    this.name = `tap:${ifname}`;
    this.maxFrameLen = maxFrameLen;
  }

  setVnetPassthrough(on: boolean): boolean {
    this.#passthrough = on && this.#offload;
    return this.#passthrough;
  }

  start(sink: FrameSink, options?: FrameSinkOptions): void {
    if (typeof sink !== "function") throw new TypeError("start: sink must be a function");
    if (this.#closing) throw new Error(`${this.name}: start after close`);
    if (this.#started) throw new Error(`${this.name}: already started`);
    this.#started = true;
    this.#borrowed = options?.borrowed === true;
    this.#loop = this.#run(sink);
  }

  send(frame: Uint8Array): void {
    const len = frame.byteLength;
    if (this.#passthrough) {
      // A record: the virtio header the server wrote, then the frame (a large segment, cut by
      // the kernel). One write, as it is.
      if (this.#closing || len < VNET_HDR_LEN + ETH_HEADER_LEN || len > MAX_OFFLOAD_WRITE) {
        this.stats.txErrors++;
        return;
      }
      const n = this.#sys.write(this.#fd, frame, len);
      this.stats.txWrites++;
      if (n === len) {
        this.stats.txFrames++;
        this.stats.txBytes += len - VNET_HDR_LEN;
      } else {
        this.stats.txErrors++;
      }
      return;
    }
    if (this.#closing || len > this.maxFrameLen) {
      this.stats.txErrors++;
      return;
    }
    if (this.#offload) {
      // Frames sent together (one tunnel message) are written together, after this turn,
      // so that runs of TCP segments can share one GSO write (FramePort.send lets a port
      // keep the frame until then).
      this.#pending.push(frame);
      if (this.#pending.length >= MAX_BATCH) this.#flush();
      else if (!this.#flushQueued) {
        this.#flushQueued = true;
        queueMicrotask(() => this.#flush());
      }
      return;
    }
    // One write() is one frame; the fd is non-blocking, so a full queue is
    // EAGAIN / ENOBUFS and the frame is dropped, as a NIC would drop it.
    const n = this.#sys.write(this.#fd, frame, len);
    this.stats.txWrites++;
    if (n === len) {
      this.stats.txFrames++;
      this.stats.txBytes += len;
    } else {
      this.stats.txErrors++;
    }
  }

  /** Writes the pending frames, runs of TCP segments as one GSO frame each. */
  #flush(): void {
    this.#flushQueued = false;
    const frames = this.#pending;
    if (frames.length === 0) return;
    this.#pending = [];
    if (this.#closing) {
      this.stats.txErrors += frames.length;
      return;
    }
    const buf = this.#writeBuf ??= new Uint8Array(MAX_OFFLOAD_WRITE);
    for (let i = 0; i < frames.length;) {
      const end = tcpRunEnd(frames, i);
      const len = encodeTapWrite(frames, i, end, buf);
      const n = this.#sys.write(this.#fd, buf, len);
      this.stats.txWrites++;
      if (n === len) {
        this.stats.txFrames += end - i;
        for (let j = i; j < end; j++) this.stats.txBytes += frames[j].length;
      } else {
        this.stats.txErrors += end - i;
      }
      i = end;
    }
  }

  close(): Promise<void> {
    if (this.#closed) return this.#closed;
    this.#closing = true;
    this.#closed = (async () => {
      if (this.#loop) {
        // Wake the waiter (its poll includes the eventfd), then wait for the
        // loop to end so no other thread still polls the fd we close.
        const one = new Uint8Array(8);
        one[0] = 1;
        this.#sys.write(this.#wakeFd, one, 8);
        await this.#loop;
      }
      this.#sys.close(this.#fd);
      this.#sys.close(this.#wakeFd);
    })();
    return this.#closed;
  }

  async #run(sink: FrameSink): Promise<void> {
    const waiter = this.#makeWaiter(this.#fd, this.#wakeFd);
    try {
      while (!this.#closing) {
        const { batch, fatal } = this.#drain();
        if (batch.length > 0) {
          try {
            sink(batch);
          } catch (error) {
            this.#report(wrap(`${this.name}: the frame sink threw`, error));
          }
        }
        if (fatal !== 0) {
          this.#report(
            new Error(`${this.name}: read failed, port stops reading: ${strerror(fatal)}`),
          );
          break;
        }
        if (this.#closing) break;
        // Level-triggered: returns at once if more frames are queued (a full batch).
        await waiter.wait(WAIT_TIMEOUT_MS);
      }
    } catch (error) {
      this.#report(wrap(`${this.name}: the read loop failed`, error));
    } finally {
      await waiter.dispose();
    }
  }

  /** Reads frames until the device is empty (or a batch is full). */
  #drain(): { batch: Uint8Array[]; fatal: number } {
    const sys = this.#sys;
    const fd = this.#fd;
    // A borrowing sink gets views of one batch buffer, each record read straight to its place
    // (no copy, no buffer per large frame). Records the port must cut up (GSO without
    // passthrough) take the read buffer and the copying path.
    const inPlace = this.#borrowed && (this.#passthrough || !this.#offload);
    const buf = inPlace ? (this.#batchBuf ??= new Uint8Array(BORROWED_BATCH_LEN)) : this.#readBuf;
    const batch: Uint8Array[] = [];
    let bytes = 0;
    while (batch.length < MAX_BATCH && bytes < MAX_BATCH_READ_BYTES) {
      const n = inPlace
        ? sys.read(fd, buf.subarray(bytes), READ_BUFFER_LEN)
        : sys.read(fd, buf, buf.byteLength);
      if (n > 0) {
        const at = bytes;
        bytes += n;
        if (this.#passthrough) {
          // The record as the device wrote it: the server takes TSO packets and partial checksums.
          if (n < VNET_HDR_LEN + ETH_HEADER_LEN) {
            this.stats.rxErrors++;
            continue;
          }
          batch.push(inPlace ? buf.subarray(at, bytes) : this.#copyOut(0, n));
          this.stats.rxFrames++;
          this.stats.rxBytes += n - VNET_HDR_LEN;
          continue;
        }
        if (inPlace) {
          // Plain frames (no offload): each read is one frame.
          batch.push(buf.subarray(at, bytes));
          this.stats.rxBytes += n;
          this.stats.rxFrames++;
          continue;
        }
        if (this.#offload) {
          const refused = acceptTapRead(buf, n);
          if (refused === "gso") {
            // One large TCP packet: cut back into the segments it stands for.
            const segments = splitTapGso(buf, n);
            if (typeof segments === "string") {
              this.stats.rxErrors++;
              continue;
            }
            for (const seg of segments) {
              batch.push(seg);
              this.stats.rxFrames++;
              this.stats.rxBytes += seg.length;
            }
            continue;
          }
          if (refused !== undefined) {
            this.stats.rxErrors++;
            continue;
          }
          batch.push(this.#copyOut(VNET_HDR_LEN, n));
          this.stats.rxBytes += n - VNET_HDR_LEN;
        } else {
          batch.push(this.#copyOut(0, n));
          this.stats.rxBytes += n;
        }
        this.stats.rxFrames++;
        continue;
      }
      if (n === 0) break;
      const errno = sys.errno();
      if (errno === EAGAIN) break;
      if (errno === EINTR) continue;
      this.stats.rxErrors++;
      return { batch, fatal: errno };
    }
    return { batch, fatal: 0 };
  }

  /**
   * Copies the frame just read out of the read buffer. Small frames go into
   * the current chunk (a right-sized view; the chunk is never written again
   * once the view is handed out) because allocating a small ArrayBuffer per
   * frame costs V8 1-3 µs, more than the read() itself.
   */
  #copyOut(start: number, end: number): Uint8Array {
    const src = this.#readBuf.subarray(start, end);
    const n = end - start;
    if (n > MAX_CHUNKED_FRAME) return src.slice();
    if (CHUNK_LEN - this.#chunkOff < n) {
      this.#chunk = new Uint8Array(CHUNK_LEN);
      this.#chunkOff = 0;
    }
    const frame = this.#chunk.subarray(this.#chunkOff, this.#chunkOff + n);
    frame.set(src);
    this.#chunkOff += n;
    return frame;
  }

  #report(error: Error): void {
    try {
      this.#onError(error);
    } catch {
      // an error handler that throws is ignored
    }
  }
}

function wrap(what: string, error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  return new Error(`${what}: ${message}`, { cause: error });
}
