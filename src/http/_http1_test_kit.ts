/**
 * Test kit of the HTTP/1.1 engine: an in-memory connection that records the
 * exact bytes written, an engine on a manual clock with a fixed `Date`, and
 * a wait for conditions (turns of the event loop, never time).
 */

import assert from "node:assert/strict";
import type { WebSocketUpgrader } from "./app_env.ts";
import { Http1Engine, type Http1EngineOptions } from "./http1_engine.ts";
import type { Http1Transport } from "./http1_connection.ts";
import { ManualClock } from "../session/clock.ts";

/** A connection whose peer the test plays: bytes in with `push`, EOF with `end`, writes recorded. */
export class MemConn implements Http1Transport {
  /** Every write, in order (copies). */
  readonly writes: Uint8Array[] = [];
  /** Calls of `read`. */
  reads = 0;
  /** `close` was called. */
  closed = false;
  /** `closeWrite` (FIN) was called. */
  writeClosed = false;
  /** While true, writes complete only when `releaseWrites` is called. */
  holdWrites = false;
  #inbox: Uint8Array[] = [];
  #eof = false;
  #parked:
    | { p: Uint8Array; resolve: (n: number | null) => void; reject: (e: Error) => void }
    | undefined;
  #held: (() => void)[] = [];

  /** Bytes from the client (latin1 for a string). */
  push(data: string | Uint8Array): void {
    const bytes = typeof data === "string" ? latin1(data) : data;
    this.#inbox.push(bytes);
    this.#deliver();
  }

  /** The client's FIN. */
  end(): void {
    this.#eof = true;
    this.#deliver();
  }

  /** Everything written so far, as latin1 text. */
  get output(): string {
    return this.writes.map((w) => String.fromCharCode(...w)).join("");
  }

  /** Lets held writes complete. */
  releaseWrites(): void {
    const held = this.#held;
    this.#held = [];
    for (const r of held) r();
  }

  read(p: Uint8Array): Promise<number | null> {
    this.reads++;
    if (this.closed) return Promise.reject(new Error("closed"));
    return new Promise((resolve, reject) => {
      this.#parked = { p, resolve, reject };
      this.#deliver();
    });
  }

  write(p: Uint8Array): Promise<number> {
    if (this.closed) return Promise.reject(new Error("write on a closed connection"));
    this.writes.push(p.slice());
    if (!this.holdWrites) return Promise.resolve(p.length);
    return new Promise((r) => this.#held.push(() => r(p.length)));
  }

  close(): void {
    this.closed = true;
    const parked = this.#parked;
    this.#parked = undefined;
    parked?.reject(new Error("the connection was closed"));
  }

  closeWrite(): Promise<void> {
    this.writeClosed = true;
    return Promise.resolve();
  }

  #deliver(): void {
    const parked = this.#parked;
    if (!parked) return;
    const next = this.#inbox[0];
    if (next !== undefined) {
      const n = Math.min(next.length, parked.p.length);
      parked.p.set(next.subarray(0, n));
      if (n === next.length) this.#inbox.shift();
      else this.#inbox[0] = next.subarray(n);
      this.#parked = undefined;
      parked.resolve(n);
    } else if (this.#eof) {
      this.#parked = undefined;
      parked.resolve(null);
    }
  }
}

/** Bytes of `text`, one per code unit. */
export function latin1(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
  return out;
}

/** Waits (event-loop turns, no time) until `cond` holds. */
export async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 0));
    else await null;
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** Lets pending microtasks and a few event-loop turns run (to show that something did not happen). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    for (let j = 0; j < 50; j++) await null;
    await new Promise((r) => setTimeout(r, 0));
  }
}

/** An engine around `handler` on a manual clock, `Date: DATE`, log lines collected. */
export function testEngine(
  handler: (req: Request, upgrade: WebSocketUpgrader) => Response | Promise<Response>,
  options: Http1EngineOptions = {},
  env: { lazyRequests?: boolean } = {},
): { engine: Http1Engine; clock: ManualClock; log: string[]; connect(): MemConn } {
  const clock = new ManualClock(0);
  const log: string[] = [];
  const engine = new Http1Engine(
    options,
    (up) => (req) => handler(req, up),
    (h) => (req) => h(req),
    { clock, date: () => "DATE", print: (l) => log.push(l), ...env },
  );
  return {
    engine,
    clock,
    log,
    connect() {
      const c = new MemConn();
      engine.serve(c, "192.0.2.7");
      return c;
    },
  };
}
