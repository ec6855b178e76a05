/**
 * A fault-injecting frame port: wraps another port and drops, duplicates,
 * delays and reorders frames in both directions. The kernel here has no
 * netem, so this is how tests put a bad network between Linux and the stack.
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
}

/** Counters of injected faults. */
export interface FaultStats {
  dropped: number;
  duplicated: number;
  reordered: number;
}

const NO_FAULTS: FaultSpec = { drop: 0, duplicate: 0, reorder: 0, reorderDelayMs: 5, delayMs: 0 };

/**
 * Parses `drop=1%,dup=0.5%,reorder=5%,reorder-delay=5ms,delay=2ms` (any subset).
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
    const m = /^([a-z-]+)=([\d.]+)(%|ms)?$/.exec(part);
    if (!m) {
      throw new TypeError(`fault spec: cannot parse "${part}" (expected name=N% or name=Nms)`);
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
      default:
        throw new TypeError(
          `fault spec: unknown fault "${name}" (drop, dup, reorder, reorder-delay, delay)`,
        );
    }
  }
  return spec;
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
