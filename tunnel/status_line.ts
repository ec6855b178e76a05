/**
 * The tunnel CLI's status display: pure formatting of rates and of the one
 * live status line a terminal shows, plus a small reporter that samples the
 * client's counters (a live line on a TTY; plain periodic summaries
 * elsewhere).
 *
 * @module
 */

import type { TunnelClientState, TunnelClientStats } from "./client.ts";

/** Frames and bytes per second, each way. */
export interface TunnelRates {
  framesUpPerS: number;
  bytesUpPerS: number;
  framesDownPerS: number;
  bytesDownPerS: number;
}

/** Counters taken at an instant (milliseconds on any monotonic clock). */
export interface StatsSample {
  atMs: number;
  stats: Pick<TunnelClientStats, "framesUp" | "bytesUp" | "framesDown" | "bytesDown">;
}

/** What the status line shows. */
export interface StatusLineInput {
  state: TunnelClientState;
  rates: TunnelRates;
  /** Reconnects so far (opens after the first). */
  reconnects: number;
  /** Frames dropped so far (no WebSocket open, or its buffer full). */
  dropped: number;
  /** `"frame"` or `"qemu-stream"`. */
  framing: string;
}

/** The user-facing name of a client state: connecting, up, reconnecting or closed. */
export function displayState(state: TunnelClientState): string {
  switch (state) {
    case "open":
      return "up";
    case "waiting":
      return "reconnecting";
    default:
      return state;
  }
}

/** Rates between two samples; zero when no time passed. */
export function computeRates(prev: StatsSample, cur: StatsSample): TunnelRates {
  const s = (cur.atMs - prev.atMs) / 1000;
  const per = (a: number, b: number) => (s > 0 ? Math.max(0, b - a) / s : 0);
  return {
    framesUpPerS: per(prev.stats.framesUp, cur.stats.framesUp),
    bytesUpPerS: per(prev.stats.bytesUp, cur.stats.bytesUp),
    framesDownPerS: per(prev.stats.framesDown, cur.stats.framesDown),
    bytesDownPerS: per(prev.stats.bytesDown, cur.stats.bytesDown),
  };
}

/**
 * Formats a byte rate with a decimal unit: `0 B/s`, `950 B/s`, `1.5 kB/s`, `12.3 MB/s`.
 *
 * @example
 * ```ts
 * formatByteRate(1_500_000); // "1.5 MB/s"
 * ```
 */
export function formatByteRate(bytesPerS: number): string {
  const units = ["B/s", "kB/s", "MB/s", "GB/s"];
  let v = Math.max(0, bytesPerS);
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${Math.round(v)} B/s` : `${v.toFixed(1)} ${units[i]}`;
}

/** Formats a count per second: `0`, `950`, `12.3k`. */
export function formatCountRate(perS: number): string {
  const v = Math.max(0, perS);
  return v >= 10_000 ? `${(v / 1000).toFixed(1)}k` : `${Math.round(v)}`;
}

/**
 * The one-line status: state, frames/s and bytes/s each way, reconnects and drops.
 *
 * @example
 * ```ts
 * formatStatusLine({ state: "open", framing: "frame", reconnects: 0, dropped: 0, rates });
 * // "tunnel up [frame] | up 120 fr/s 180.0 kB/s | down 80 fr/s 9.6 kB/s | reconnects 0 | dropped 0"
 * ```
 */
export function formatStatusLine(input: StatusLineInput): string {
  const r = input.rates;
  return `tunnel ${displayState(input.state)} [${input.framing}]` +
    ` | up ${formatCountRate(r.framesUpPerS)} fr/s ${formatByteRate(r.bytesUpPerS)}` +
    ` | down ${formatCountRate(r.framesDownPerS)} fr/s ${formatByteRate(r.bytesDownPerS)}` +
    ` | reconnects ${input.reconnects} | dropped ${input.dropped}`;
}

/** What a {@linkcode StatusReporter} watches and where it writes. */
export interface StatusReporterOptions {
  /** The client's live state and counters. */
  source: () => { state: TunnelClientState; stats: TunnelClientStats; framing: string };
  /** True: one live line redrawn in place (a terminal). False: plain log lines. */
  tty: boolean;
  /** Writes raw text (TTY mode). */
  write: (text: string) => void;
  /** Logs one line (plain mode, and state changes in TTY mode). */
  log: (line: string) => void;
  /** Milliseconds between redraws of the live line. Default 1000. */
  refreshMs?: number;
  /** Milliseconds between plain summaries. Default 30000. */
  summaryMs?: number;
  /** A monotonic clock in milliseconds. Default `performance.now`. */
  now?: () => number;
}

const CLEAR_LINE = "\r\x1b[2K";

/**
 * Shows the tunnel's status: on a TTY one line redrawn about once a second;
 * elsewhere a plain summary line every `summaryMs`. State changes are logged
 * as lines in both modes via {@linkcode StatusReporter.event}.
 */
export class StatusReporter {
  #o: StatusReporterOptions;
  #timer: ReturnType<typeof setInterval> | undefined;
  #prev: StatsSample;
  #now: () => number;

  /** Creates a reporter; call {@linkcode StatusReporter.start}. */
  constructor(options: StatusReporterOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => performance.now());
    this.#prev = { atMs: this.#now(), stats: { ...options.source().stats } };
  }

  /** Starts the periodic redraw or summary. */
  start(): void {
    const every = this.#o.tty ? (this.#o.refreshMs ?? 1000) : (this.#o.summaryMs ?? 30_000);
    this.#timer = setInterval(() => this.#o.tty ? this.#redraw() : this.#summary(), every);
    // A status display never keeps the process alive (Deno and Node timers both have unref).
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /** Logs a line (a state change) without garbling the live line. */
  event(line: string): void {
    if (this.#o.tty) {
      this.#o.write(CLEAR_LINE);
      this.#o.log(line);
      this.#redraw(false);
    } else {
      this.#o.log(line);
    }
  }

  /** Stops and clears the live line. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#o.tty) this.#o.write(CLEAR_LINE);
  }

  #sample(advance: boolean): StatusLineInput {
    const src = this.#o.source();
    const cur: StatsSample = { atMs: this.#now(), stats: { ...src.stats } };
    const rates = computeRates(this.#prev, cur);
    if (advance) this.#prev = cur;
    return {
      state: src.state,
      rates,
      reconnects: Math.max(0, src.stats.connects - 1),
      dropped: src.stats.framesDropped,
      framing: src.framing,
    };
  }

  #redraw(advance = true): void {
    this.#o.write(CLEAR_LINE + formatStatusLine(this.#sample(advance)));
  }

  #summary(): void {
    const s = this.#o.source().stats;
    this.#o.log(
      `${formatStatusLine(this.#sample(true))} | total up ${s.framesUp} frames ` +
        `${s.bytesUp} B in ${s.messagesUp} msgs, down ${s.framesDown} frames ${s.bytesDown} B ` +
        `in ${s.messagesDown} msgs`,
    );
  }
}
