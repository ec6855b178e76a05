/**
 * Worker half of the Bun TAP port (see `tap_bun.ts`): on each `wait` request
 * it calls a blocking `poll()` on the TAP fd and the close eventfd, on this
 * worker's own thread, and replies when it returns. It never reads the
 * device; the port drains it on the main thread.
 *
 * @module
 */

import type { PollerReply, PollerRequest } from "./tap_bun.ts";
import { loadBunFfi } from "./tap_bun.ts";
import { POLLIN } from "./tap_common.ts";

/** The worker global scope, as far as this file uses it. */
interface PollerScope {
  onmessage: ((event: MessageEvent<PollerRequest>) => void) | null;
  postMessage(message: PollerReply): void;
  close(): void;
}

const scope = globalThis as unknown as PollerScope;

// struct pollfd[2] { int fd; short events; short revents; }
const fds = new Uint8Array(16);
let poll: ((fds: Uint8Array, nfds: number, timeoutMs: number) => number) | undefined;

scope.onmessage = async (event) => {
  const message = event.data;
  try {
    switch (message.type) {
      case "init": {
        const ffi = await loadBunFfi();
        poll = ffi.dlopen("libc.so.6", {
          poll: { args: ["ptr", "u64", "i32"], returns: "i32" },
        }).symbols.poll as typeof poll;
        const view = new DataView(fds.buffer);
        view.setInt32(0, message.tapFd, true);
        view.setInt16(4, POLLIN, true);
        view.setInt32(8, message.wakeFd, true);
        view.setInt16(12, POLLIN, true);
        scope.postMessage({ type: "ready" });
        break;
      }
      case "wait": {
        if (!poll) throw new Error("wait before init");
        // Blocks this worker thread only; the result does not matter, the
        // port drains after every wakeup.
        const result = poll(fds, 2, message.timeoutMs);
        scope.postMessage({ type: "polled", result });
        break;
      }
      case "exit":
        scope.onmessage = null;
        scope.close();
        break;
    }
  } catch (error) {
    scope.postMessage({
      type: "error",
      message: error instanceof Error ? error.message : String(error),
    });
  }
};
