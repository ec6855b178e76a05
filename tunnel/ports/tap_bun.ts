/**
 * Linux TAP frame port for Bun, through `bun:ffi` on libc (root or
 * `CAP_NET_ADMIN`).
 *
 * Bun's FFI has no threaded ("nonblocking") calls, so a blocking `poll()` on
 * the JS thread would freeze it. Instead a small poller Worker
 * (`tap_bun_poller.ts`) makes the blocking `poll()` on its own thread and
 * answers a message when the TAP fd (or the close eventfd) is readable; the
 * JS thread then drains the device with non-blocking `read()` until `EAGAIN`
 * and delivers the batch. Latency trade-off: a wakeup costs two cross-thread
 * messages (tens of microseconds) instead of a timer tick, and an idle port
 * costs no CPU (no busy polling). Writes are synchronous `write()` calls.
 *
 * `bun:ffi` is imported with a computed specifier, so this file also
 * type-checks under `deno check` (with the few FFI types it needs declared
 * here); it only runs on Bun.
 *
 * @module
 */

import type { FramePort } from "./frame_port.ts";
import { checkTapPrerequisites, resolveTapOptions, type TapOptions } from "./tap_common.ts";
import { openTapWith, type TapPort, type TapSys, type TapWaiter } from "./tap_core.ts";

export { checkTapPrerequisites };
export type { FramePort, TapOptions, TapPort };

/** The part of `bun:ffi` this port uses. */
export interface BunFfi {
  dlopen(
    path: string,
    symbols: Record<string, { args: readonly string[]; returns: string }>,
  ): { symbols: Record<string, (...args: unknown[]) => unknown>; close(): void };
  read: { i32(pointer: number, byteOffset?: number): number };
}

/** Module specifier kept in a variable so non-Bun type checkers do not resolve it. */
const BUN_FFI: string = "bun:ffi";

/** Loads `bun:ffi` (Bun only). */
export async function loadBunFfi(): Promise<BunFfi> {
  return (await import(BUN_FFI)) as BunFfi;
}

let sys: TapSys | undefined;

async function loadSys(): Promise<TapSys> {
  if (sys) return sys;
  const ffi = await loadBunFfi();
  const s = ffi.dlopen("libc.so.6", {
    open: { args: ["ptr", "i32", "i32"], returns: "i32" },
    close: { args: ["i32"], returns: "i32" },
    // ssize_t results declared i32: frames are far below 2^31 and -1 keeps
    // its value in the low 32 bits, which avoids a BigInt per call.
    read: { args: ["i32", "ptr", "u64"], returns: "i32" },
    write: { args: ["i32", "ptr", "u64"], returns: "i32" },
    ioctl: { args: ["i32", "u64", "ptr"], returns: "i32" },
    socket: { args: ["i32", "i32", "i32"], returns: "i32" },
    eventfd: { args: ["u32", "i32"], returns: "i32" },
    __errno_location: { args: [], returns: "ptr" },
  }).symbols as unknown as {
    open(path: Uint8Array, flags: number, mode: number): number;
    close(fd: number): number;
    read(fd: number, buf: Uint8Array, len: number): number;
    write(fd: number, buf: Uint8Array, len: number): number;
    // "ptr" takes a typed array (its address) or a plain number (passed as is).
    ioctl(fd: number, request: number, arg: Uint8Array | number): number;
    socket(domain: number, type: number, protocol: number): number;
    eventfd(initval: number, flags: number): number;
    __errno_location(): number;
  };
  // errno is thread-local; FFI calls run on this (the JS) thread.
  const errnoPtr = s.__errno_location();
  const readI32 = ffi.read.i32;
  sys = {
    open: (path, flags) => s.open(path, flags, 0),
    close: (fd) => s.close(fd),
    read: (fd, buf, len) => s.read(fd, buf, len),
    write: (fd, buf, len) => s.write(fd, buf, len),
    ioctl: (fd, request, arg) => s.ioctl(fd, request, arg),
    ioctlValue: (fd, request, value) => s.ioctl(fd, request, value),
    socket: (domain, type, protocol) => s.socket(domain, type, protocol),
    eventfd: (initval, flags) => s.eventfd(initval, flags),
    errno: () => readI32(errnoPtr, 0),
  };
  return sys;
}

/** Messages between the port and its poller Worker. */
export type PollerRequest =
  | { type: "init"; tapFd: number; wakeFd: number }
  | { type: "wait"; timeoutMs: number }
  | { type: "exit" };

/** Replies from the poller Worker. */
export type PollerReply = { type: "ready" } | { type: "polled"; result: number } | {
  type: "error";
  message: string;
};

/** Starts the poller Worker for a port and returns the waiter that talks to it. */
function workerWaiter(tapFd: number, wakeFd: number): TapWaiter {
  const worker = new Worker(new URL("./tap_bun_poller.ts", import.meta.url).href, {
    type: "module",
  });
  let pending: ((reply: PollerReply) => void) | undefined;
  let failure: Error | undefined;
  const settle = (reply: PollerReply) => {
    const resolve = pending;
    pending = undefined;
    resolve?.(reply);
  };
  worker.onmessage = (event: MessageEvent<PollerReply>) => {
    if (event.data.type === "error") failure = new Error(`TAP poller: ${event.data.message}`);
    settle(event.data);
  };
  worker.onerror = (event: ErrorEvent) => {
    event.preventDefault?.();
    failure = new Error(`TAP poller worker failed: ${event.message}`);
    settle({ type: "error", message: event.message });
  };
  const request = (message: PollerRequest): Promise<PollerReply> => {
    if (failure) return Promise.reject(failure);
    return new Promise((resolve) => {
      pending = resolve;
      worker.postMessage(message);
    });
  };
  const ready = request({ type: "init", tapFd, wakeFd });
  return {
    async wait(timeoutMs) {
      await ready;
      const reply = await request({ type: "wait", timeoutMs });
      if (reply.type === "error") throw failure ?? new Error(reply.message);
    },
    dispose() {
      // The poller is idle between waits (the loop has ended), so it exits
      // at once; terminate() is the backstop.
      worker.postMessage({ type: "exit" } satisfies PollerRequest);
      worker.terminate();
    },
  };
}

/**
 * Opens the Linux TAP interface `name` under Bun (creating it unless
 * `create: false`), sets its MTU when `mtu` is given, brings the link up and
 * returns a {@linkcode FramePort} carrying Ethernet frames without packet
 * info. `maxFrameLen` is the MTU + 14 (as of opening). The interface is not persistent: one the
 * port created disappears when the port closes.
 *
 * Throws an `Error` naming the failed step and errno, e.g.
 * `cannot open /dev/net/tun: permission denied (run as root ...)`.
 *
 * @example
 * ```ts ignore
 * import { openTapBun } from "./tap_bun.ts";
 * const port = await openTapBun({ name: "tap0", mtu: 1500 });
 * port.start((frames) => console.log(`${frames.length} frames`));
 * await port.close();
 * ```
 */
export async function openTapBun(options: TapOptions): Promise<TapPort> {
  const opts = resolveTapOptions(options);
  return openTapWith(await loadSys(), opts, workerWaiter);
}
