/**
 * Linux TAP frame port for Deno, through FFI on libc (`--allow-ffi`, root or
 * `CAP_NET_ADMIN`).
 *
 * The device is opened non-blocking. The read loop drains it with `read()`
 * until `EAGAIN`, hands the batch to the sink, then waits for readability
 * with `poll()` declared `nonblocking: true`: Deno runs that call on a
 * blocking-pool thread and resolves a Promise, so the JS thread is never
 * blocked and a frame wakes the loop within tens of microseconds. The poll
 * also watches an eventfd that `close()` writes to, so closing is prompt.
 *
 * @module
 */

import type { FramePort } from "./frame_port.ts";
import { checkTapPrerequisites, POLLIN, resolveTapOptions, type TapOptions } from "./tap_common.ts";
import { openTapWith, type TapPort, type TapSys, type TapWaiter } from "./tap_core.ts";

export { checkTapPrerequisites };
export type { FramePort, TapOptions, TapPort };

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  // ssize_t results are declared i32: frames are far below 2^31 and -1 keeps
  // its value in the low 32 bits, which avoids a BigInt per call.
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  ioctl: { parameters: ["i32", "usize", "buffer"], result: "i32" },
  // The same ioctl(2) with an integer third argument (TUNSETOFFLOAD takes the flags by value).
  ioctl_value: { name: "ioctl", parameters: ["i32", "usize", "usize"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  poll: { name: "poll", parameters: ["buffer", "usize", "i32"], result: "i32", nonblocking: true },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let libc: Libc | undefined;
let sys: TapSys | undefined;

const bigLens: bigint[] = [];

/** `BigInt(len)`, cached for lengths up to 64 KiB. */
function bigLen(len: number): bigint {
  if (len > 65536) return BigInt(len);
  return bigLens[len] ??= BigInt(len);
}

function loadSys(): TapSys {
  if (sys) return sys;
  const lib = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  libc = lib;
  const errnoPtr = lib.__errno_location();
  if (errnoPtr === null) throw new Error("__errno_location returned NULL");
  // errno is thread-local; synchronous FFI calls run on this (the JS) thread,
  // so this thread's errno address stays valid for the life of the isolate.
  const errnoView = new Deno.UnsafePointerView(errnoPtr);
  sys = {
    open: (path, flags) => lib.open(path as Uint8Array<ArrayBuffer>, flags, 0),
    close: (fd) => lib.close(fd),
    // size_t / unsigned long parameters take a BigInt; converting costs
    // ~0.25 µs per call, so the lengths are converted once and cached.
    read: (fd, buf, len) => lib.read(fd, buf as Uint8Array<ArrayBuffer>, bigLen(len)),
    write: (fd, buf, len) => lib.write(fd, buf as Uint8Array<ArrayBuffer>, bigLen(len)),
    ioctl: (fd, request, arg) => lib.ioctl(fd, BigInt(request), arg as Uint8Array<ArrayBuffer>),
    ioctlValue: (fd, request, value) => lib.ioctl_value(fd, BigInt(request), BigInt(value)),
    socket: (domain, type, protocol) => lib.socket(domain, type, protocol),
    eventfd: (initval, flags) => lib.eventfd(initval, flags),
    errno: () => errnoView.getInt32(0),
  };
  return sys;
}

/** Polls the TAP fd and the wake-up eventfd on a Deno blocking-pool thread. */
function denoWaiter(tapFd: number, wakeFd: number): TapWaiter {
  // struct pollfd[2] { int fd; short events; short revents; }
  const fds = new Uint8Array(16);
  const view = new DataView(fds.buffer);
  view.setInt32(0, tapFd, true);
  view.setInt16(4, POLLIN, true);
  view.setInt32(8, wakeFd, true);
  view.setInt16(12, POLLIN, true);
  const lib = libc!;
  return {
    async wait(timeoutMs) {
      // The result does not matter: the loop drains after every wakeup, and
      // a failed poll (EINTR) just means one more drain that finds nothing.
      await lib.poll(fds, 2n, timeoutMs);
    },
    dispose() {},
  };
}

/**
 * Opens the Linux TAP interface `name` (creating it unless `create: false`),
 * sets its MTU when `mtu` is given, brings the link up and returns a
 * {@linkcode FramePort} carrying Ethernet frames without packet info.
 * `maxFrameLen` is the MTU + 14 (as of opening). The interface is not persistent: one the port
 * created disappears when the port closes.
 *
 * Throws an `Error` naming the failed step and errno, e.g.
 * `cannot open /dev/net/tun: permission denied (run as root ...)` or
 * `TUNSETIFF on tap0 failed: EBUSY (device or resource busy) ...`.
 *
 * @example
 * ```ts ignore
 * import { openTapDeno } from "./tap_deno.ts";
 * const port = await openTapDeno({ name: "tap0", mtu: 1500 });
 * port.start((frames) => console.log(`${frames.length} frames`));
 * // ... then: ip addr add 10.0.2.15/24 dev tap0
 * await port.close();
 * ```
 */
export function openTapDeno(options: TapOptions): Promise<TapPort> {
  try {
    const opts = resolveTapOptions(options);
    return Promise.resolve(openTapWith(loadSys(), opts, denoWaiter));
  } catch (error) {
    return Promise.reject(error);
  }
}
