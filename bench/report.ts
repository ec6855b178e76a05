/**
 * The benchmark reporter shared by every section of `deno task bench`: one
 * printed line per figure (with the ratio to its baseline when it has one) and
 * the same rows collected for bench/results.json.
 *
 * @module
 */

/** One figure. `baseline` names the row this one is compared with, measured in the same run. */
export interface BenchRow {
  section: string;
  name: string;
  value: number;
  unit: string;
  note?: string;
  /** Name of the baseline row and the ratio value / baseline. */
  baseline?: { name: string; value: number; ratio: number };
}

/** Collects and prints figures; a section passes itself as `section`. */
export class Reporter {
  /** Every row reported so far, in order. */
  readonly rows: BenchRow[] = [];
  /** Sections that did not run, with the reason (printed, and kept in the JSON). */
  readonly skipped: { section: string; reason: string }[] = [];

  /** Prints and records a figure; returns it so a later figure can use it as its baseline. */
  report(
    section: string,
    name: string,
    value: number,
    unit: string,
    opts: { note?: string; baseline?: BenchRow } = {},
  ): BenchRow {
    const row: BenchRow = { section, name, value, unit, note: opts.note };
    if (opts.baseline) {
      row.baseline = {
        name: opts.baseline.name,
        value: opts.baseline.value,
        ratio: value / opts.baseline.value,
      };
    }
    this.rows.push(row);
    const ratio = row.baseline ? `  ${row.baseline.ratio.toFixed(2)}× ${row.baseline.name}` : "";
    console.log(
      `${name.padEnd(60)} ${formatValue(value).padStart(12)} ${unit}${ratio}${
        opts.note ? `  (${opts.note})` : ""
      }`,
    );
    return row;
  }

  /** Records that a section could not run here, and why. */
  skip(section: string, reason: string): void {
    this.skipped.push({ section, reason });
    console.log(`SKIPPED ${section}: ${reason}`);
  }
}

function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 1000) return Math.round(v).toString();
  return v.toFixed(2);
}

/** The median of a non-empty list (upper median for even lengths). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError("median: empty list");
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The q-quantile (0..1) of a non-empty list, nearest rank. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) throw new RangeError("quantile: empty list");
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
