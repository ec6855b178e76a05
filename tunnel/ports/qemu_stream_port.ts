/**
 * The QEMU stream frame port: listens on a Unix or TCP socket that QEMU
 * `-netdev stream,server=off` connects to, and carries Ethernet frames in
 * QEMU's stream framing (a u32 big-endian length, then the frame, repeated;
 * see `../stream_framing.ts`). Built on `node:net`, so it runs unchanged on
 * Deno, Bun and Node.
 *
 *   qemu-system-x86_64 ... -netdev stream,id=n0,server=off,addr.type=unix,addr.path=/tmp/q.sock \
 *     -device e1000,netdev=n0
 *
 * One QEMU connection at a time: a new connection replaces the current one
 * (a restarted QEMU reconnects before the old socket is noticed as dead). When
 * QEMU disconnects the port keeps listening, so the tunnel and the session
 * stay up and the next QEMU picks up where the last one left off.
 *
 * @module
 */

import { connect, createServer, type Server, type Socket } from "node:net";
import { lstatSync, unlinkSync } from "node:fs";
import { encodeStreamFrames, StreamDeframer } from "../../src/wire/stream_framing.ts";
import type { FramePort, FramePortStats, FrameSink } from "./frame_port.ts";

/** Where the port listens: a Unix socket path or a TCP host and port. */
export type QemuStreamAddress =
  | { type: "unix"; path: string }
  | { type: "tcp"; host: string; port: number };

/**
 * Parses `unix:PATH` or `tcp:HOST:PORT` (`HOST` may be a bracketed IPv6
 * address, `tcp:[::1]:5555`). Throws a TypeError that quotes the value.
 *
 * @example
 * ```ts
 * parseQemuStreamAddress("unix:/tmp/q.sock"); // { type: "unix", path: "/tmp/q.sock" }
 * parseQemuStreamAddress("tcp:127.0.0.1:5555"); // { type: "tcp", host: "127.0.0.1", port: 5555 }
 * ```
 */
export function parseQemuStreamAddress(text: string): QemuStreamAddress {
  if (text.startsWith("unix:")) {
    const path = text.slice(5);
    if (path === "") throw new TypeError(`QEMU stream address "${text}" has an empty path`);
    return { type: "unix", path };
  }
  if (text.startsWith("tcp:")) {
    const hp = parseHostPort(text.slice(4));
    if (!hp) {
      throw new TypeError(
        `QEMU stream address "${text}" is not tcp:HOST:PORT with a port in 0..65535`,
      );
    }
    return { type: "tcp", ...hp };
  }
  throw new TypeError(`QEMU stream address "${text}" must be unix:PATH or tcp:HOST:PORT`);
}

/**
 * Parses `HOST:PORT` or `[IPV6]:PORT`; undefined when it is neither or the
 * port is not an integer in 0..65535.
 *
 * @example
 * ```ts
 * parseHostPort("[::1]:7"); // { host: "::1", port: 7 }
 * ```
 */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? m[2], port };
}

/** Formats an address as the user writes it (`unix:PATH`, `tcp:HOST:PORT`). */
export function formatQemuStreamAddress(a: QemuStreamAddress): string {
  if (a.type === "unix") return `unix:${a.path}`;
  return `tcp:${a.host.includes(":") ? `[${a.host}]` : a.host}:${a.port}`;
}

/** Options of {@linkcode listenQemuStream}. */
export interface QemuStreamPortOptions {
  /** Where to listen. */
  address: QemuStreamAddress;
  /**
   * The largest frame passed on, Ethernet header included (the session's MTU
   * + 14). A longer frame is dropped and counted in `rxOversize`. Default 1514.
   */
  maxFrameLen?: number;
  /**
   * A length prefix over this closes the QEMU connection: the stream cannot
   * be resynchronised. Default 65550 (a 64 KiB packet and an Ethernet header),
   * and never less than `maxFrameLen`.
   */
  maxStreamFrameLen?: number;
  /**
   * Bytes that may wait to be written to QEMU; a frame that would go over is
   * dropped and counted in `txOverflow`. Default 1 MiB.
   */
  maxQueuedBytes?: number;
  /** Receives one line per connection event and error. Default: `console.error`. */
  log?: (line: string) => void;
}

/** Counters of a {@linkcode QemuStreamPort}. */
export interface QemuStreamPortStats extends FramePortStats {
  /** QEMU connections accepted. */
  connections: number;
  /** Connections closed because a newer one replaced them. */
  replaced: number;
  /** Connections closed because of a length prefix over the limit. */
  malformed: number;
  /** Frames from QEMU longer than `maxFrameLen`, dropped. */
  rxOversize: number;
  /** Frames from QEMU shorter than an Ethernet header (14 bytes), dropped. */
  rxRunt: number;
  /** Frames for QEMU dropped because no QEMU was connected. */
  txNoPeer: number;
  /** Frames for QEMU dropped because `maxQueuedBytes` were already waiting. */
  txOverflow: number;
}

const ETHERNET_HEADER_LEN = 14;

/**
 * A listening QEMU stream port. Create it with {@linkcode listenQemuStream}.
 * `txErrors` counts every frame for QEMU that was dropped (`txNoPeer` +
 * `txOverflow`).
 */
export class QemuStreamPort implements FramePort {
  readonly name: string;
  readonly maxFrameLen: number;
  readonly stats: QemuStreamPortStats = {
    rxFrames: 0,
    rxBytes: 0,
    txFrames: 0,
    txBytes: 0,
    txErrors: 0,
    connections: 0,
    replaced: 0,
    malformed: 0,
    rxOversize: 0,
    rxRunt: 0,
    txNoPeer: 0,
    txOverflow: 0,
  };
  #server: Server;
  #address: QemuStreamAddress;
  #maxStreamFrameLen: number;
  #maxQueuedBytes: number;
  #log: (line: string) => void;
  #sink: FrameSink | undefined;
  #conn: Socket | undefined;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #flushScheduled = false;
  #closed: Promise<void> | undefined;

  /** Use {@linkcode listenQemuStream}; the server must already be listening. */
  constructor(server: Server, address: QemuStreamAddress, options: QemuStreamPortOptions) {
    this.#server = server;
    this.#address = address;
    this.name = `qemu-stream:${formatQemuStreamAddress(address)}`;
    this.maxFrameLen = options.maxFrameLen ?? 1514;
    this.#maxStreamFrameLen = Math.max(options.maxStreamFrameLen ?? 65550, this.maxFrameLen);
    this.#maxQueuedBytes = options.maxQueuedBytes ?? 1024 * 1024;
    this.#log = options.log ?? ((line) => console.error(line));
    server.on("connection", (socket) => this.#accept(socket));
  }

  /** The address actually listened on (a TCP port 0 becomes the port the kernel chose). */
  get address(): QemuStreamAddress {
    return this.#address;
  }

  /** Whether a QEMU is connected now. */
  get connected(): boolean {
    return this.#conn !== undefined;
  }

  start(sink: FrameSink): void {
    this.#sink = sink;
    this.#conn?.resume();
  }

  send(frame: Uint8Array): void {
    const conn = this.#conn;
    if (!conn) {
      this.stats.txNoPeer++;
      this.stats.txErrors++;
      return;
    }
    const size = frame.length + 4;
    if (conn.writableLength + this.#pendingBytes + size > this.#maxQueuedBytes) {
      this.stats.txOverflow++;
      this.stats.txErrors++;
      return;
    }
    // Frames sent in one turn of the event loop go out in one write.
    this.#pending.push(frame);
    this.#pendingBytes += size;
    this.stats.txFrames++;
    this.stats.txBytes += frame.length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      this.#sink = undefined;
      this.#conn?.destroy();
      this.#conn = undefined;
      this.#server.close(() => resolve());
    }).then(() => {
      if (this.#address.type === "unix") removeStaleSocket(this.#address.path);
    });
    return this.#closed;
  }

  #flush(): void {
    this.#flushScheduled = false;
    const frames = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    if (frames.length === 0 || !this.#conn) return;
    this.#conn.write(encodeStreamFrames(frames));
  }

  #accept(socket: Socket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    this.stats.connections++;
    const peer = socket.remoteAddress
      ? `${socket.remoteAddress}:${socket.remotePort}`
      : formatQemuStreamAddress(this.#address);
    const old = this.#conn;
    if (old) {
      this.stats.replaced++;
      this.#log(`${this.name}: a new QEMU connection from ${peer} replaces the current one`);
      this.#conn = undefined;
      old.destroy();
    }
    this.#conn = socket;
    this.#pending = [];
    this.#pendingBytes = 0;
    if (this.#address.type === "tcp") socket.setNoDelay(true);
    this.#log(`${this.name}: QEMU connected from ${peer}`);
    let batch: Uint8Array[] = [];
    const deframer = new StreamDeframer(this.#maxStreamFrameLen, (frame) => {
      if (frame.length > this.maxFrameLen) {
        this.stats.rxOversize++;
      } else if (frame.length < ETHERNET_HEADER_LEN) {
        this.stats.rxRunt++;
      } else {
        batch.push(frame);
      }
    });
    socket.on("data", (chunk: Uint8Array) => {
      if (this.#conn !== socket) return;
      // A plain view: Buffer chunks are never reused by node:net, so the sink may keep frames.
      const err = deframer.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
      const frames = batch;
      batch = [];
      for (const f of frames) {
        this.stats.rxFrames++;
        this.stats.rxBytes += f.length;
      }
      if (frames.length > 0) this.#sink?.(frames);
      if (err) {
        this.stats.malformed++;
        this.#log(
          `${this.name}: closing the QEMU connection from ${peer}: frame length ${err.length} ` +
            `is over the limit of ${err.limit} bytes (the stream framing is broken)`,
        );
        this.#conn = undefined;
        socket.destroy();
      }
    });
    socket.on("error", (err) => {
      if (this.#conn === socket) this.#log(`${this.name}: QEMU connection error: ${err.message}`);
    });
    socket.on("close", () => {
      if (this.#conn !== socket) return;
      this.#conn = undefined;
      this.#log(`${this.name}: QEMU disconnected; still listening`);
    });
    if (!this.#sink) socket.pause();
  }
}

/** Deletes `path` if it is a Unix socket (a leftover of an earlier run); throws if it is not. */
function removeStaleSocket(path: string): void {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // Nothing there.
  }
  if (!isSocket) {
    throw new Error(`"${path}" exists and is not a Unix socket; refusing to replace it`);
  }
  unlinkSync(path);
}

/** Whether something accepts connections on the Unix socket at `path`. */
function unixSocketInUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
}

/**
 * Starts listening for QEMU at `options.address` and resolves once the
 * socket is bound. A Unix socket file left at the path by an earlier run
 * (nothing accepts connections on it) is replaced, and removed again on
 * `close()`; a socket in use or any other file there is an error.
 * Rejects with the listen error (`EADDRINUSE`, `EACCES`, ...) quoting the
 * address.
 *
 * @example
 * ```ts ignore
 * const port = await listenQemuStream({ address: parseQemuStreamAddress("unix:/tmp/q.sock") });
 * port.start((frames) => console.log(`${frames.length} frames from QEMU`));
 * ```
 */
export async function listenQemuStream(options: QemuStreamPortOptions): Promise<QemuStreamPort> {
  const address = options.address;
  if (address.type === "unix") {
    if (await unixSocketInUse(address.path)) {
      throw new Error(
        `cannot listen on ${formatQemuStreamAddress(address)}: another process listens there`,
      );
    }
    removeStaleSocket(address.path);
  }
  const server = createServer({ pauseOnConnect: false });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      reject(
        new Error(
          `cannot listen on ${formatQemuStreamAddress(address)}: ${err.message}`,
          { cause: err },
        ),
      );
    };
    server.once("error", onError);
    const done = () => {
      server.off("error", onError);
      resolve();
    };
    if (address.type === "unix") server.listen(address.path, done);
    else server.listen(address.port, address.host, done);
  });
  let bound = address;
  const a = server.address();
  if (address.type === "tcp" && a && typeof a === "object") {
    bound = { type: "tcp", host: address.host, port: a.port };
  }
  server.on("error", (err) => (options.log ?? console.error)(`qemu-stream: ${err.message}`));
  return new QemuStreamPort(server, bound, options);
}
