/**
 * Deadlines of the core's timers: absolute clock times in milliseconds, or
 * undefined when a timer is stopped.
 *
 * @module
 */

/**
 * The earlier of two optional deadlines (undefined means "no deadline").
 *
 * @example
 * ```ts
 * earlier(undefined, 5); // 5
 * earlier(3, 5); // 3
 * ```
 */
export function earlier(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a < b ? a : b;
}

/**
 * The earliest deadline among `entries` (each with a `deadline`), or
 * undefined when there are none: what a cache's `nextDeadline` reports.
 *
 * @example
 * ```ts
 * earliestDeadline([{ deadline: 7 }, { deadline: 3 }]); // 3
 * earliestDeadline([]); // undefined
 * ```
 */
export function earliestDeadline(entries: Iterable<{ deadline: number }>): number | undefined {
  let next: number | undefined;
  for (const e of entries) {
    if (next === undefined || e.deadline < next) next = e.deadline;
  }
  return next;
}
