/**
 * A fault-injecting frame port: wraps another port and drops, duplicates,
 * delays and reorders frames in both directions. The kernel here has no
 * netem, so this is how tests put a bad network between Linux and the stack.
 * The same spec can ask for periodic disconnects of the tunnel's WebSocket
 * (`disconnect=5s`), which the CLI applies with {@linkcode startDisconnects}.
 *
 * @module
 */

import type { FramePort, FramePortStats, FrameSink } from "./frame_port.ts";

/** Fault rates (0..1) and delays (ms). */
export interface FaultSpec {
  /** Probability that a frame is dropped. */
  drop: number;
  /** Probability that a frame is delivered twice. */
  duplicate: number;
  /** Probability that a frame is held back by `reorderDelayMs`, letting later frames pass. */
  reorder: number;
  /** Extra delay of a reordered frame. */
  reorderDelayMs: number;
  /** Delay of every frame. */
  delayMs: number;
  /** Mean time between forced disconnects of the tunnel's WebSocket; 0 = never. */
  disconnectMs: number;
  /** Each disconnect interval varies uniformly by up to this much either way. */
  disconnectJitterMs: number;
}

/** Counters of injected faults. */
export interface FaultStats {
  dropped: number;
  duplicated: number;
  reordered: number;
}

const NO_FAULTS: FaultSpec = {
  drop: 0,
  duplicate: 0,
  reorder: 0,
  reorderDelayMs: 5,
  delayMs: 0,
  disconnectMs: 0,
  disconnectJitterMs: 0,
};

/**
 * Parses `drop=1%,dup=0.5%,reorder=5%,reorder-delay=5ms,delay=2ms,disconnect=5s,
 * disconnect-jitter=1s` (any subset; durations in `ms` or `s`).
 * Throws TypeError naming the bad part.
 *
 * @example
 * ```ts
 * parseFaultSpec("drop=1%,reorder=5%"); // { drop: 0.01, reorder: 0.05, ... }
 * ```
 */
export function parseFaultSpec(text: string): FaultSpec {
  const spec = { ...NO_FAULTS };
  for (const part of text.split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    const m = /^([a-z-]+)=([\d.]+)(%|ms|s)?$/.exec(part);
    if (!m) {
      throw new TypeError(
        `fault spec: cannot parse "${part}" (expected name=N%, name=Nms or name=Ns)`,
      );
    }
    const [, name, num, unit] = m;
    const v = Number(num);
    const rate = () => {
      if (unit !== "%" || !(v >= 0 && v <= 100)) {
        throw new TypeError(`fault spec: "${part}" needs a percentage in 0..100`);
      }
      return v / 100;
    };
    const ms = () => {
      if (unit !== "ms" || !(v >= 0 && v <= 10_000)) {
        throw new TypeError(`fault spec: "${part}" needs milliseconds in 0..10000`);
      }
      return v;
    };
    const interval = () => {
      const msv = unit === "s" ? v * 1000 : unit === "ms" ? v : NaN;
      if (!(msv >= 0 && msv <= 86_400_000)) {
        throw new TypeError(`fault spec: "${part}" needs a duration (ms or s) up to 24 h`);
      }
      return msv;
    };
    switch (name) {
      case "drop":
        spec.drop = rate();
        break;
      case "dup":
      case "duplicate":
        spec.duplicate = rate();
        break;
      case "reorder":
        spec.reorder = rate();
        break;
      case "reorder-delay":
        spec.reorderDelayMs = ms();
        break;
      case "delay":
        spec.delayMs = ms();
        break;
      case "disconnect":
        spec.disconnectMs = interval();
        if (spec.disconnectMs > 0 && spec.disconnectMs < 100) {
          throw new TypeError(`fault spec: "${part}" is too frequent (at least 100ms)`);
        }
        break;
      case "disconnect-jitter":
        spec.disconnectJitterMs = interval();
        break;
      default:
        throw new TypeError(
          `fault spec: unknown fault "${name}" (drop, dup, reorder, reorder-delay, delay, ` +
            `disconnect, disconnect-jitter)`,
        );
    }
  }
  if (spec.disconnectJitterMs > spec.disconnectMs) {
    throw new TypeError(
      `fault spec: disconnect-jitter (${spec.disconnectJitterMs} ms) must not exceed ` +
        `disconnect (${spec.disconnectMs} ms)`,
    );
  }
  return spec;
}

/** The timer functions {@linkcode startDisconnects} uses; the runtime's by default. */
export interface DisconnectTimers {
  /** Calls `fn` after `ms` milliseconds; returns a handle for `clear`. */
  set(fn: () => void, ms: number): unknown;
  /** Cancels a pending call. */
  clear(handle: unknown): void;
}

const RUNTIME_TIMERS: DisconnectTimers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * Calls `disconnect` every `spec.disconnectMs` (± `spec.disconnectJitterMs`,
 * uniformly, never sooner than 100 ms) until the returned function is called;
 * does nothing when `disconnectMs` is 0. The tunnel CLI passes a function
 * that kills its own WebSocket, so that it must reconnect and resume the
 * session.
 *
 * @example
 * ```ts ignore
 * const stop = startDisconnects(parseFaultSpec("disconnect=5s"), () => client.interrupt("fault"));
 * ```
 */
export function startDisconnects(
  spec: FaultSpec,
  disconnect: () => void,
  random: () => number = Math.random,
  timers: DisconnectTimers = RUNTIME_TIMERS,
): () => void {
  if (spec.disconnectMs <= 0) return () => {};
  let timer: unknown;
  let stopped = false;
  const arm = () => {
    const jitter = (random() * 2 - 1) * spec.disconnectJitterMs;
    timer = timers.set(() => {
      if (stopped) return;
      disconnect();
      arm();
    }, Math.max(100, spec.disconnectMs + jitter));
  };
  arm();
  return () => {
    stopped = true;
    if (timer !== undefined) timers.clear(timer);
  };
}

/**
 * Wraps `inner`, applying `spec` to frames in both directions.
 *
 * @example
 * ```ts
 * const port = new FaultPort(await openTap({ name: "tap0" }), parseFaultSpec("drop=1%"));
 * ```
 */
export class FaultPort implements FramePort {
  readonly name: string;
  readonly maxFrameLen: number;
  /** Faults injected on frames read from the inner port (towards the tunnel). */
  readonly upFaults: FaultStats = { dropped: 0, duplicated: 0, reordered: 0 };
  /** Faults injected on frames written to the inner port (from the tunnel). */
  readonly downFaults: FaultStats = { dropped: 0, duplicated: 0, reordered: 0 };
  #inner: FramePort;
  #spec: FaultSpec;
  #random: () => number;
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #closed = false;

  /** @param random a source of uniform numbers in [0, 1); Math.random by default. */
  constructor(inner: FramePort, spec: FaultSpec, random: () => number = Math.random) {
    this.#inner = inner;
    this.#spec = spec;
    this.#random = random;
    this.name = `faulty:${inner.name}`;
    this.maxFrameLen = inner.maxFrameLen;
  }

  /** The inner port's counters. */
  get stats(): FramePortStats {
    return this.#inner.stats;
  }

  /** Starts the inner port, passing its frames through the faults. */
  start(sink: FrameSink): void {
    this.#inner.start((frames) => {
      const now: Uint8Array[] = [];
      for (const f of frames) this.#apply(f, this.upFaults, (g) => now.push(g), (g) => sink([g]));
      if (now.length > 0) sink(now);
    });
  }

  /** Sends a frame to the inner port through the faults. */
  send(frame: Uint8Array): void {
    this.#apply(frame, this.downFaults, (g) => this.#inner.send(g), (g) => this.#inner.send(g));
  }

  #apply(
    frame: Uint8Array,
    stats: FaultStats,
    immediate: (f: Uint8Array) => void,
    later: (f: Uint8Array) => void,
  ): void {
    const s = this.#spec;
    const r = this.#random;
    if (s.drop > 0 && r() < s.drop) {
      stats.dropped++;
      return;
    }
    const copies = s.duplicate > 0 && r() < s.duplicate ? 2 : 1;
    if (copies === 2) stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      let delay = s.delayMs;
      if (s.reorder > 0 && r() < s.reorder) {
        delay += s.reorderDelayMs;
        stats.reordered++;
      }
      if (delay <= 0) immediate(frame);
      else this.#defer(delay, () => later(frame));
    }
  }

  #defer(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (!this.#closed) fn();
    }, ms);
    this.#timers.add(t);
  }

  /** Cancels delayed frames and closes the inner port. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    await this.#inner.close();
  }
}
