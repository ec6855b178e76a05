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

/**
 * Busy CPU seconds of the whole machine so far, all CPUs together: user, nice,
 * system, irq and softirq time from /proc/stat (not idle, iowait or steal);
 * 0 where there is no /proc/stat. The difference across a transfer is what
 * every process and the kernel spent on it (and on anything else running).
 *
 * @example
 * ```ts ignore
 * const tick = clockTicks();
 * const before = machineCpuSeconds(tick);
 * // ... the transfer ...
 * const perGB = (machineCpuSeconds(tick) - before) / gigabytes;
 * ```
 */
export function machineCpuSeconds(tick: number): number {
  if (!existsSync("/proc/stat")) return 0;
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0];
  const [user, nice, system, , , irq, softirq] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq) / tick;
}
