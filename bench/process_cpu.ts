/**
 * CPU time of other processes, read from /proc (Linux): the benches report
 * CPU seconds per GB or per request of the servers and clients they start,
 * a figure a loaded machine distorts less than a rate.
 *
 * @module
 */

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`, 100 when unknown). */
export function clockTicks(): number {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
}

/**
 * CPU seconds (user + system) process `pid` used so far; 0 for no pid or a
 * process that is gone.
 *
 * @example
 * ```ts ignore
 * const tick = clockTicks();
 * const before = cpuSeconds(child.pid, tick);
 * // ... the work ...
 * const used = cpuSeconds(child.pid, tick) - before;
 * ```
 */
export function cpuSeconds(pid: number | undefined, tick: number): number {
  if (pid === undefined || !existsSync(`/proc/${pid}/stat`)) return 0;
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / tick;
}
