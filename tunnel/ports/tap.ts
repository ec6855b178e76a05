/**
 * The Linux TAP frame port, for whichever runtime is running: Deno (FFI,
 * `--allow-ffi`) or Bun (`bun:ffi`). The runtime-specific module is loaded
 * with a dynamic import, so importing this file loads no FFI code.
 *
 * @module
 */

import type { TapOptions, TapPrerequisites } from "./tap_common.ts";
import type { TapPort } from "./tap_core.ts";

export { checkTapPrerequisites } from "./tap_common.ts";
export type { TapOptions, TapPort, TapPrerequisites };
export type { TapPortStats } from "./tap_common.ts";
export type { FramePort, FramePortStats, FrameSink } from "./frame_port.ts";

/**
 * Opens the Linux TAP interface `options.name` with the current runtime's
 * FFI: creates it unless `create: false` (not persistent: it vanishes on
 * close), sets the MTU when `mtu` is given, brings the link up. Resolves to a
 * {@linkcode FramePort} (`maxFrameLen` = MTU + 14; a new interface has MTU 1500).
 * Needs root or `CAP_NET_ADMIN`; see `checkTapPrerequisites()` for a check
 * with a readable reason before trying.
 *
 * Reading: the port drains the device with non-blocking `read()` until
 * `EAGAIN` (at most 256 frames per batch), passes the batch to the sink, then
 * waits for readability with `poll()` on a helper thread (Deno: a
 * `nonblocking` FFI call; Bun: a small Worker). Received frames are copied
 * out of one reusable read buffer into right-sized views over 64 KiB chunks
 * that the port never writes again, so the sink owns them (keeping one frame
 * keeps its chunk alive). Writing: `send()` is one synchronous `write()`; a
 * refused frame (queue full, too long, port closed) is dropped and counted
 * in `stats.txErrors`. An open, started port keeps the process alive until
 * `close()`, which wakes the loop at once and resolves once the device is
 * released.
 *
 * @example
 * ```ts ignore
 * import { checkTapPrerequisites, openTap } from "./tap.ts";
 * const check = checkTapPrerequisites();
 * if (!check.ok) throw new Error(check.reason);
 * const port = await openTap({ name: "tap0", mtu: 1500 });
 * port.start((frames) => {
 *   for (const frame of frames) console.log(`frame of ${frame.length} bytes`);
 * });
 * await port.close();
 * ```
 */
export async function openTap(options: TapOptions): Promise<TapPort> {
  if ("Deno" in globalThis) {
    const { openTapDeno } = await import("./tap_deno.ts");
    return openTapDeno(options);
  }
  if ("Bun" in globalThis) {
    const { openTapBun } = await import("./tap_bun.ts");
    return openTapBun(options);
  }
  throw new Error("openTap: a TAP port needs Deno or Bun (FFI); this runtime has neither");
}
