/**
 * The QEMU dgram frame port: one Ethernet frame per UDP datagram, as QEMU
 * `-netdev dgram` and socat's TAP bridge speak it. Built on `node:dgram`, so
 * it runs unchanged on Deno, Bun and Node.
 *
 * Addresses: the port binds `BIND_HOST:BIND_PORT` (ours, QEMU's `remote`).
 * Frames for QEMU go to the peer (QEMU's `local`), which is either fixed with
 * `peer` or learned: the source of the most recent datagram. Until a peer is
 * known, frames for QEMU are dropped and counted.
 *
 *   netisle-tunnel ... --qemu-dgram udp:127.0.0.1:5556 --qemu-dgram-peer 127.0.0.1:5557
 *   qemu-system-x86_64 ... -netdev dgram,id=n0,local.type=inet,local.host=127.0.0.1,\
 *     local.port=5557,remote.type=inet,remote.host=127.0.0.1,remote.port=5556
 *
 * @module
 */

import { createSocket, type Socket } from "node:dgram";
import { isIPv6 } from "node:net";
import type { FramePort, FramePortStats, FrameSink } from "./frame_port.ts";
import { parseHostPort } from "./qemu_stream_port.ts";

/** A UDP host and port. */
export interface UdpAddress {
  host: string;
  port: number;
}

/**
 * Parses the bind address `udp:HOST:PORT` (`HOST` may be `[IPV6]`). Throws a
 * TypeError that quotes the value.
 *
 * @example
 * ```ts
 * parseQemuDgramAddress("udp:127.0.0.1:5556"); // { host: "127.0.0.1", port: 5556 }
 * ```
 */
export function parseQemuDgramAddress(text: string): UdpAddress {
  const hp = text.startsWith("udp:") ? parseHostPort(text.slice(4)) : undefined;
  if (!hp) {
    throw new TypeError(
      `QEMU dgram address "${text}" must be udp:HOST:PORT with a port in 0..65535`,
    );
  }
  return hp;
}

/**
 * Parses a peer `HOST:PORT` (`HOST` may be `[IPV6]`, port 1..65535). Throws a
 * TypeError that quotes the value.
 *
 * @example
 * ```ts
 * parseUdpPeer("127.0.0.1:5557"); // { host: "127.0.0.1", port: 5557 }
 * ```
 */
export function parseUdpPeer(text: string): UdpAddress {
  const hp = parseHostPort(text);
  if (!hp || hp.port === 0) {
    throw new TypeError(`QEMU dgram peer "${text}" must be HOST:PORT with a port in 1..65535`);
  }
  return hp;
}

function formatUdp(a: UdpAddress): string {
  return `${isIPv6(a.host) ? `[${a.host}]` : a.host}:${a.port}`;
}

/** Options of {@linkcode bindQemuDgram}. */
export interface QemuDgramPortOptions {
  /** Where to bind (ours). Port 0 lets the kernel choose; see `QemuDgramPort.address`. */
  bind: UdpAddress;
  /** QEMU's address. Without it the peer is the source of the most recent datagram. */
  peer?: UdpAddress;
  /**
   * The largest frame passed on, Ethernet header included (the session's MTU
   * + 14). A longer datagram is dropped and counted in `rxOversize`. Default 1514.
   */
  maxFrameLen?: number;
  /**
   * Datagrams handed to the kernel but not yet sent; a frame that would go
   * over is dropped and counted in `txOverflow`. Default 256.
   */
  maxInFlight?: number;
  /** Receives one line per peer change and error. Default: `console.error`. */
  log?: (line: string) => void;
}

/** Counters of a {@linkcode QemuDgramPort}. */
export interface QemuDgramPortStats extends FramePortStats {
  /** Datagrams longer than `maxFrameLen`, dropped. */
  rxOversize: number;
  /** Datagrams shorter than an Ethernet header (14 bytes), dropped. */
  rxRunt: number;
  /** Datagrams from another address than a fixed `peer`, dropped. */
  rxForeign: number;
  /** Frames for QEMU dropped because no peer was known yet. */
  txNoPeer: number;
  /** Frames for QEMU dropped because `maxInFlight` sends were pending. */
  txOverflow: number;
  /** Sends the kernel refused (e.g. `ECONNREFUSED` while QEMU is not running). */
  txFailed: number;
  /** Times a learned peer changed (the first datagram counts). */
  peerChanges: number;
}

const ETHERNET_HEADER_LEN = 14;

/**
 * A bound QEMU dgram port. Create it with {@linkcode bindQemuDgram}.
 * `txErrors` counts every frame for QEMU that was dropped or refused.
 */
export class QemuDgramPort implements FramePort {
  readonly name: string;
  readonly maxFrameLen: number;
  readonly stats: QemuDgramPortStats = {
    rxFrames: 0,
    rxBytes: 0,
    txFrames: 0,
    txBytes: 0,
    txErrors: 0,
    rxOversize: 0,
    rxRunt: 0,
    rxForeign: 0,
    txNoPeer: 0,
    txOverflow: 0,
    txFailed: 0,
    peerChanges: 0,
  };
  #socket: Socket;
  #address: UdpAddress;
  #fixedPeer: boolean;
  #peer: UdpAddress | undefined;
  #maxInFlight: number;
  #inFlight = 0;
  #log: (line: string) => void;
  #sink: FrameSink | undefined;
  #closed: Promise<void> | undefined;

  /** Use {@linkcode bindQemuDgram}; the socket must already be bound. */
  constructor(socket: Socket, address: UdpAddress, options: QemuDgramPortOptions) {
    this.#socket = socket;
    this.#address = address;
    this.name = `qemu-dgram:udp:${formatUdp(address)}`;
    this.maxFrameLen = options.maxFrameLen ?? 1514;
    this.#fixedPeer = options.peer !== undefined;
    this.#peer = options.peer;
    this.#maxInFlight = options.maxInFlight ?? 256;
    this.#log = options.log ?? ((line) => console.error(line));
    socket.on("message", (msg, rinfo) => this.#receive(msg, rinfo.address, rinfo.port));
    socket.on("error", (err) => this.#log(`${this.name}: ${err.message}`));
  }

  /** The bound address (a port 0 becomes the port the kernel chose). */
  get address(): UdpAddress {
    return this.#address;
  }

  /** Where frames for QEMU go, once known. */
  get peer(): UdpAddress | undefined {
    return this.#peer;
  }

  start(sink: FrameSink): void {
    this.#sink = sink;
  }

  send(frame: Uint8Array): void {
    const peer = this.#peer;
    if (!peer || this.#closed) {
      this.stats.txNoPeer++;
      this.stats.txErrors++;
      return;
    }
    if (this.#inFlight >= this.#maxInFlight) {
      this.stats.txOverflow++;
      this.stats.txErrors++;
      return;
    }
    this.#inFlight++;
    this.stats.txFrames++;
    this.stats.txBytes += frame.length;
    this.#socket.send(frame, peer.port, peer.host, (err) => {
      this.#inFlight--;
      if (err) {
        this.stats.txFailed++;
        this.stats.txErrors++;
      }
    });
  }

  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      this.#sink = undefined;
      this.#socket.close(() => resolve());
    });
    return this.#closed;
  }

  #receive(msg: Uint8Array, host: string, port: number): void {
    const peer = this.#peer;
    const fromPeer = peer !== undefined && peer.port === port && sameHost(peer.host, host);
    if (this.#fixedPeer && !fromPeer) {
      this.stats.rxForeign++;
      return;
    }
    if (msg.length > this.maxFrameLen) {
      this.stats.rxOversize++;
      return;
    }
    if (msg.length < ETHERNET_HEADER_LEN) {
      this.stats.rxRunt++;
      return;
    }
    if (!fromPeer) {
      this.#peer = { host, port };
      this.stats.peerChanges++;
      this.#log(`${this.name}: QEMU peer is now ${formatUdp(this.#peer)} (learned)`);
    }
    this.stats.rxFrames++;
    this.stats.rxBytes += msg.length;
    // A plain view: node:dgram allocates a new buffer per datagram, so the sink may keep it.
    this.#sink?.([new Uint8Array(msg.buffer, msg.byteOffset, msg.length)]);
  }
}

function sameHost(a: string, b: string): boolean {
  if (a === b) return true;
  const strip = (h: string) => h.replace(/^::ffff:/i, "");
  return strip(a) === strip(b) || (a === "localhost" && (b === "127.0.0.1" || b === "::1"));
}

/**
 * Binds a UDP socket at `options.bind` for QEMU `-netdev dgram` and resolves
 * to the port. Rejects with the bind error (`EADDRINUSE`, ...) quoting the
 * address.
 *
 * @example
 * ```ts ignore
 * const port = await bindQemuDgram({ bind: { host: "127.0.0.1", port: 5556 } });
 * port.start((frames) => console.log(`${frames.length} frame from QEMU`));
 * ```
 */
export async function bindQemuDgram(options: QemuDgramPortOptions): Promise<QemuDgramPort> {
  const { bind } = options;
  const socket = createSocket({ type: isIPv6(bind.host) ? "udp6" : "udp4" });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      reject(new Error(`cannot bind udp:${formatUdp(bind)}: ${err.message}`, { cause: err }));
    };
    socket.once("error", onError);
    socket.bind(bind.port, bind.host, () => {
      socket.off("error", onError);
      resolve();
    });
  });
  const a = socket.address();
  return new QemuDgramPort(socket, { host: bind.host, port: a.port }, options);
}
