/**
 * Test helper: a "worker" in the test's own isolate. The front door's side
 * is a `WorkerLike` over one end of a `MessageChannel` (plus `error` events
 * the test dispatches); {@linkcode ChannelWorker.scope} is the worker side's
 * global scope on the other end. The same messages as a real Worker, without
 * a thread.
 *
 * @module
 */

import type { WorkerLike } from "./session_worker.ts";
import type { WorkerScope } from "./worker_side.ts";

/** A worker whose two sides live in this isolate. */
export class ChannelWorker extends EventTarget implements WorkerLike {
  readonly channel = new MessageChannel();
  terminated = false;
  /** When true, messages to the worker are swallowed (a hung worker). */
  hung = false;
  constructor() {
    super();
    this.channel.port1.onmessage = (ev) =>
      this.dispatchEvent(new MessageEvent("message", { data: ev.data }));
  }
  postMessage(message: unknown, transfer: Transferable[] = []): void {
    if (this.terminated || this.hung) return;
    this.channel.port1.postMessage(message, transfer);
  }
  terminate(): void {
    this.terminated = true;
    this.channel.port1.close();
    this.channel.port2.close();
  }
  /** The worker side's global scope. */
  scope(): WorkerScope {
    const port = this.channel.port2;
    return {
      postMessage: (m, t) => port.postMessage(m, t ?? []),
      addEventListener: (_type, listener) => {
        port.addEventListener("message", listener);
        port.start();
      },
    };
  }
  // deno-lint-ignore no-explicit-any
  override addEventListener(type: string, listener: any): void {
    super.addEventListener(type, listener);
  }
}
