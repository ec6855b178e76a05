/**
 * Runtime-neutral pieces of the Linux TAP frame port: the constants and
 * struct layouts of `/dev/net/tun` and interface ioctls, errno names, option
 * validation and the prerequisite check. The FFI adapters for Deno
 * (`tap_deno.ts`) and Bun (`tap_bun.ts`) share them.
 *
 * @module
 */

import { existsSync, readFileSync } from "node:fs";
import process from "node:process";
import type { FramePortStats } from "./frame_port.ts";

/** Options for opening a TAP frame port. */
export interface TapOptions {
  /** Interface name, at most 15 bytes, e.g. `tap0`. */
  name: string;
  /**
   * Link MTU (IP packet size). When given, the interface MTU is set to it;
   * otherwise the interface keeps its MTU (1500 for a new one). Either way
   * `maxFrameLen` is the MTU + 14.
   */
  mtu?: number;
  /**
   * When `true` (the default) a missing interface is created; it is not
   * persistent and vanishes when the port closes. When `false` the interface
   * must already exist (e.g. `ip tuntap add dev tap0 mode tap`), otherwise
   * opening fails with `ENODEV`.
   */
  create?: boolean;
  /** Bring the link up (`IFF_UP`) after attaching. Default `true`. */
  up?: boolean;
  /**
   * Open with `IFF_VNET_HDR` and write runs of consecutive TCP segments of
   * one flow as one GSO frame (tap_offload.ts): far fewer system calls and
   * less kernel work per byte. Default `false`.
   */
  offload?: boolean;
  /**
   * Called when reading fails for good (e.g. the interface was deleted, `EBADFD`)
   * or the sink throws. Default: `console.error`.
   */
  onError?: (error: Error) => void;
}

/** Result of {@linkcode checkTapPrerequisites}. */
export type TapPrerequisites = { ok: true } | { ok: false; reason: string };

/** Path of the TUN/TAP clone device. */
export const TUN_PATH = "/dev/net/tun";

/** `open()` flags (Linux, x86_64 and aarch64 share these values). */
export const O_RDWR = 0o2;
/** Non-blocking I/O. */
export const O_NONBLOCK = 0o4000;
/** Close on exec. */
export const O_CLOEXEC = 0o2000000;

/** `_IOW('T', 202, int)`: attach to (or create) a TUN/TAP interface. */
export const TUNSETIFF = 0x400454ca;
/** Every frame read or written starts with a `struct virtio_net_hdr` (offloads). */
export const IFF_VNET_HDR = 0x4000;
/** TAP (Ethernet) rather than TUN (IP) mode. */
export const IFF_TAP = 0x0002;
/** No 4-byte packet-information header before each frame. */
export const IFF_NO_PI = 0x1000;

/** Get interface flags. */
export const SIOCGIFFLAGS = 0x8913;
/** Set interface flags. */
export const SIOCSIFFLAGS = 0x8914;
/** Get interface MTU. */
export const SIOCGIFMTU = 0x8921;
/** Set interface MTU. */
export const SIOCSIFMTU = 0x8922;
/** Get interface index (used to test whether an interface exists). */
export const SIOCGIFINDEX = 0x8933;
/** Interface is administratively up. */
export const IFF_UP = 0x1;

/** `socket(AF_INET, SOCK_DGRAM, 0)` arguments for the ioctl socket. */
export const AF_INET = 2;
/** Datagram socket type. */
export const SOCK_DGRAM = 2;

/** `struct pollfd.events`: readable. */
export const POLLIN = 0x1;
/** `eventfd()` flags: non-blocking, close on exec. */
export const EFD_FLAGS = O_NONBLOCK | O_CLOEXEC;
/** Size of `struct ifreq` on 64-bit Linux (16-byte name + 24-byte union). */
export const IFREQ_SIZE = 40;
/** Byte offset of the union (`ifr_flags`, `ifr_mtu`, `ifr_ifindex`) in `struct ifreq`. */
export const IFREQ_UNION = 16;
/** Longest interface name (IFNAMSIZ - 1 for the terminating NUL). */
export const IFNAMSIZ_MAX = 15;

/** Ethernet header length: what `maxFrameLen` adds to the MTU. */
export const ETH_HEADER_LEN = 14;
/** Size of the reusable read buffer: any frame or GSO packet the kernel may hand us (an IPv4 packet of up to 65535 bytes and an Ethernet header), behind a virtio header (offload). */
export const READ_BUFFER_LEN = 65536 + 64;
/** At most this many frames are read per batch before the loop polls again. */
export const MAX_BATCH = 256;

/** Linux errno values used in messages: number → [name, description]. */
const ERRNO: Record<number, [string, string]> = {
  1: ["EPERM", "operation not permitted"],
  2: ["ENOENT", "no such file or directory"],
  4: ["EINTR", "interrupted system call"],
  5: ["EIO", "input/output error"],
  6: ["ENXIO", "no such device or address"],
  9: ["EBADF", "bad file descriptor"],
  11: ["EAGAIN", "resource temporarily unavailable"],
  12: ["ENOMEM", "cannot allocate memory"],
  13: ["EACCES", "permission denied"],
  14: ["EFAULT", "bad address"],
  16: ["EBUSY", "device or resource busy"],
  17: ["EEXIST", "file exists"],
  19: ["ENODEV", "no such device"],
  22: ["EINVAL", "invalid argument"],
  23: ["ENFILE", "too many open files in system"],
  24: ["EMFILE", "too many open files"],
  25: ["ENOTTY", "inappropriate ioctl for device"],
  28: ["ENOSPC", "no space left on device"],
  90: ["EMSGSIZE", "message too long"],
  77: ["EBADFD", "file descriptor in bad state"],
  95: ["EOPNOTSUPP", "operation not supported"],
  97: ["EAFNOSUPPORT", "address family not supported by protocol"],
  100: ["ENETDOWN", "network is down"],
  105: ["ENOBUFS", "no buffer space available"],
};

/** Errno numbers the port branches on. */
export const EINTR = 4;
/** Try again (no data / no room). */
export const EAGAIN = 11;

/** Name of an errno value, e.g. `EBUSY`; `errno 123` when unknown. */
export function errnoName(errno: number): string {
  return ERRNO[errno]?.[0] ?? `errno ${errno}`;
}

/** `EBUSY (device or resource busy)`-style text for an errno value. */
export function strerror(errno: number): string {
  const entry = ERRNO[errno];
  return entry ? `${entry[0]} (${entry[1]})` : `errno ${errno}`;
}

/** The error thrown when `open("/dev/net/tun")` fails, with a hint for the usual causes. */
export function openError(errno: number): Error {
  switch (errno) {
    case 1:
    case 13:
      return new Error(
        `cannot open ${TUN_PATH}: permission denied (run as root or with CAP_NET_ADMIN): ${
          strerror(errno)
        }`,
      );
    case 2:
      return new Error(`${TUN_PATH} does not exist (load the tun module: modprobe tun)`);
    case 6:
    case 19:
      return new Error(
        `cannot open ${TUN_PATH}: the tun driver is not available (load the tun module): ${
          strerror(errno)
        }`,
      );
    default:
      return new Error(`cannot open ${TUN_PATH}: ${strerror(errno)}`);
  }
}

/** The error thrown when `TUNSETIFF` fails, with a hint for the usual causes. */
export function tunsetiffError(name: string, errno: number): Error {
  let hint = "";
  if (errno === 1 || errno === 13) hint = " (needs root or CAP_NET_ADMIN)";
  else if (errno === 16) hint = " (another process has the device open)";
  else if (errno === 22) {
    hint = " (the interface exists but is not a TAP device without packet info)";
  }
  return new Error(`TUNSETIFF on ${name} failed: ${strerror(errno)}${hint}`);
}

/** Validated, defaulted options. */
export interface ResolvedTapOptions {
  name: string;
  mtu: number;
  setMtu: boolean;
  create: boolean;
  up: boolean;
  offload: boolean;
  onError: (error: Error) => void;
}

/** Checks options and fills in defaults; throws `TypeError` / `RangeError` on misuse. */
export function resolveTapOptions(options: TapOptions): ResolvedTapOptions {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("openTap: options must be an object with a name");
  }
  const { name } = options;
  if (typeof name !== "string" || name.length === 0) {
    throw new TypeError(`openTap: name must be a non-empty string, got ${JSON.stringify(name)}`);
  }
  const nameBytes = new TextEncoder().encode(name);
  if (
    nameBytes.length > IFNAMSIZ_MAX || name.includes("/") || name.includes("\0") ||
    /\s/.test(name) || name === "." || name === ".."
  ) {
    throw new RangeError(
      `openTap: invalid interface name ${
        JSON.stringify(name)
      } (1-15 bytes, no '/', whitespace or NUL)`,
    );
  }
  const mtu = options.mtu ?? 1500;
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65521) {
    throw new RangeError(`openTap: mtu must be an integer in 68..65521, got ${options.mtu}`);
  }
  return {
    name,
    mtu,
    setMtu: options.mtu !== undefined,
    create: options.create ?? true,
    up: options.up ?? true,
    offload: options.offload ?? false,
    onError: options.onError ?? ((error) => console.error(error)),
  };
}

/** A zeroed `struct ifreq` with `ifr_name` set to `name`. */
export function makeIfreq(name: string): Uint8Array {
  const ifr = new Uint8Array(IFREQ_SIZE);
  ifr.set(new TextEncoder().encode(name));
  return ifr;
}

/** A NUL-terminated C string. */
export function cString(s: string): Uint8Array {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/**
 * Reports whether this process can plausibly open a TAP device: it must be
 * root or hold `CAP_NET_ADMIN`, and `/dev/net/tun` must exist. Meant for a CLI
 * to print a clear message before trying; opening may still fail. Under Deno,
 * checks that its permissions forbid (`--allow-sys`, reading device files
 * needs `--allow-all`) are skipped, since FFI needs only `--allow-ffi`.
 *
 * @example
 * ```ts
 * import { checkTapPrerequisites } from "./tap_common.ts";
 * const check = checkTapPrerequisites();
 * if (!check.ok) console.error(`cannot use --tap: ${check.reason}`);
 * ```
 */
export function checkTapPrerequisites(): TapPrerequisites {
  if (process.platform !== "linux") {
    return { ok: false, reason: `TAP devices need Linux, this is ${process.platform}` };
  }
  // A check the runtime's permissions forbid (Deno without --allow-sys or
  // --allow-all) is skipped: FFI itself needs no more than --allow-ffi, and
  // opening the device reports the precise error anyway.
  let uid: number | undefined;
  try {
    uid = process.getuid?.();
  } catch (error) {
    if (!isRuntimePermissionError(error)) throw error;
  }
  if (uid !== undefined && uid !== 0) {
    const netAdmin = hasNetAdmin();
    if (netAdmin !== true) {
      const caps = netAdmin === false ? "no CAP_NET_ADMIN" : "CAP_NET_ADMIN could not be checked";
      return {
        ok: false,
        reason: `not running as root (uid ${uid}) and ${caps}: run as root to use a TAP device`,
      };
    }
  }
  let exists = true;
  try {
    exists = existsSync(TUN_PATH);
  } catch (error) {
    if (!isRuntimePermissionError(error)) {
      return { ok: false, reason: `cannot check ${TUN_PATH}: ${messageOf(error)}` };
    }
  }
  if (!exists) {
    return { ok: false, reason: `${TUN_PATH} does not exist (load the tun module: modprobe tun)` };
  }
  return { ok: true };
}

/**
 * Whether the effective capability set holds CAP_NET_ADMIN (bit 12), or
 * `undefined` when /proc/self/status cannot be read.
 */
function hasNetAdmin(): boolean | undefined {
  let status: string;
  try {
    status = readFileSync("/proc/self/status", "utf8");
  } catch {
    return undefined;
  }
  const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return match !== null && (BigInt(`0x${match[1]}`) & (1n << 12n)) !== 0n;
}

/** A refusal by the runtime's own permission system (Deno), not by the OS. */
function isRuntimePermissionError(error: unknown): boolean {
  return error instanceof Error &&
    (error.name === "NotCapable" || error.name === "PermissionDenied");
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Counters of a TAP port: the common ones plus failed reads. */
export interface TapPortStats extends FramePortStats {
  /** Reads that failed with something other than `EAGAIN` / `EINTR`, or frames refused. */
  rxErrors: number;
  /** TAP writes (with offload several frames may share one GSO write). */
  txWrites: number;
}

/** Fresh zeroed counters. */
export function newStats(): TapPortStats {
  return {
    rxFrames: 0,
    rxBytes: 0,
    txFrames: 0,
    txBytes: 0,
    txErrors: 0,
    rxErrors: 0,
    txWrites: 0,
  };
}
