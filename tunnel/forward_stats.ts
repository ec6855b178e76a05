/**
 * Counters of `netisle forward` and how it reports them: one live status line
 * on a terminal (connections open, bytes each way, rates), one log line per
 * connection elsewhere.
 *
 * @module
 */

import { formatByteRate } from "./status_line.ts";
import { formatBytes } from "./cli_common.ts";

/**
 * What every forward counts, summed.
 *
 * @example
 * ```ts
 * const stats = new ForwardStats();
 * stats.open++;
 * ```
 */
export class ForwardStats {
  /** Connections (TCP) or flows (UDP) open now. */
  open = 0;
  /** Connections or flows that ended cleanly. */
  done = 0;
  /** Connections or flows that failed (refused, reset, dropped stream). */
  failed = 0;
  /** Bytes carried into the session. */
  bytesIn = 0;
  /** Bytes carried out of the session. */
  bytesOut = 0;
}

/** How a forward tells the user what happens. */
export interface ForwardLog {
  /** A line that stays: a connection's end, a failure, a retry. */
  line(text: string): void;
}

/** Options of {@linkcode ForwardReporter}. */
export interface ForwardReporterOptions {
  /** The counters. */
  stats: ForwardStats;
  /** Whether output is a terminal (a live line) or not (lines only). */
  tty: boolean;
  /** Writes text as is. */
  write(text: string): void;
  /** The forwards, for the status line. */
  describe(): string;
  /** Milliseconds on a monotonic clock (default `performance.now()`). */
  now?: () => number;
}

/**
 * The status line of `netisle forward`, e.g.
 * `2 open, 15 done, 1 failed | in 1.2 MB/s, out 30.1 MB/s | total in 4.0 MB, out 1.1 GB`.
 *
 * @example
 * ```ts
 * forwardStatusLine(stats, { inPerS: 0, outPerS: 1e6 }); // "0 open, … | in 0 B/s, out 1.0 MB/s | …"
 * ```
 */
export function forwardStatusLine(
  s: ForwardStats,
  rates: { inPerS: number; outPerS: number },
): string {
  return `${s.open} open, ${s.done} done, ${s.failed} failed | in ${
    formatByteRate(rates.inPerS)
  }, ` +
    `out ${formatByteRate(rates.outPerS)} | total in ${formatBytes(s.bytesIn)}, ` +
    `out ${formatBytes(s.bytesOut)}`;
}

/**
 * Reports: on a terminal, lines go above one status line redrawn every
 * second; elsewhere only the lines.
 *
 * @example
 * ```ts
 * const r = new ForwardReporter({ stats, tty: false, write: (t) => process.stdout.write(t), describe: () => "" });
 * r.line("forwarding -L 127.0.0.1:8080 -> 10.0.2.15:80");
 * ```
 */
export class ForwardReporter implements ForwardLog {
  #o: ForwardReporterOptions;
  #timer: ReturnType<typeof setInterval> | undefined;
  #last = { at: 0, bytesIn: 0, bytesOut: 0 };
  #rates = { inPerS: 0, outPerS: 0 };
  #now: () => number;

  /** Creates a reporter; {@linkcode ForwardReporter.start} starts the live line. */
  constructor(options: ForwardReporterOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Starts redrawing the status line (on a terminal). */
  start(): void {
    if (!this.#o.tty || this.#timer !== undefined) return;
    this.#last = {
      at: this.#now(),
      bytesIn: this.#o.stats.bytesIn,
      bytesOut: this.#o.stats.bytesOut,
    };
    this.#timer = setInterval(() => this.#tick(), 1000);
    this.#draw();
  }

  /** Stops the live line (leaves the last one on screen). */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#o.tty) this.#o.write("\n");
  }

  /** Prints a line that stays (above the live line on a terminal). */
  line(text: string): void {
    if (this.#o.tty && this.#timer !== undefined) {
      this.#o.write(`\r\x1b[2K${text}\n`);
      this.#draw();
    } else this.#o.write(`${text}\n`);
  }

  #tick(): void {
    const s = this.#o.stats;
    const now = this.#now();
    const dt = (now - this.#last.at) / 1000;
    if (dt > 0) {
      this.#rates = {
        inPerS: (s.bytesIn - this.#last.bytesIn) / dt,
        outPerS: (s.bytesOut - this.#last.bytesOut) / dt,
      };
    }
    this.#last = { at: now, bytesIn: s.bytesIn, bytesOut: s.bytesOut };
    this.#draw();
  }

  #draw(): void {
    this.#o.write(
      `\r\x1b[2K${forwardStatusLine(this.#o.stats, this.#rates)} | ${this.#o.describe()}`,
    );
  }
}
