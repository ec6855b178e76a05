/**
 * The QEMU guest of the e2e tests: Debian's kernel (unpacked by `.ci/run`
 * into /var/cache/netisle-qemu, or NETISLE_QEMU_DIR) with a busybox
 * initramfs built from tests/e2e/fixtures/qemu/ (init.sh is PID 1: DHCP from
 * the session, then commands on the serial console). Shared by
 * tests/e2e/qemu_test.ts and tests/e2e/egress_test.ts.
 *
 * @module
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { commandExists, ROOT, sh } from "./harness.ts";

/** The QEMU binary. */
export const QEMU = "qemu-system-x86_64";
/** Where the kernel and the e1000 module are. */
export const KERNEL_DIR: string = process.env.NETISLE_QEMU_DIR ?? "/var/cache/netisle-qemu";
/** The guest's kernel. */
export const VMLINUZ: string = join(KERNEL_DIR, "vmlinuz");
/** The e1000 driver module, loaded by init.sh. */
export const E1000: string = join(KERNEL_DIR, "e1000.ko");

/** Skips (or, under CI=true, fails) loudly when something the tests need is missing. */
export function need(what: string, missing: string[]): string | undefined {
  if (missing.length === 0) return undefined;
  const why = `needs ${missing.join(", ")}`;
  if (process.env.CI === "true") {
    throw new Error(`end-to-end tests must run in CI but cannot: ${why}`);
  }
  console.warn(`\n*** SKIPPING ${what}: ${why} ***\n`);
  return why;
}

/** Why the QEMU guest cannot boot here (QEMU, kernel, module or busybox missing), or undefined. */
export function qemuGuestSkipReason(what: string): string | undefined {
  const tools = [QEMU].filter((c) => !commandExists(c));
  const files = [VMLINUZ, E1000, "/usr/bin/busybox"].filter((f) => !existsSync(f)).map((f) =>
    `${f} (run .ci/run, or set NETISLE_QEMU_DIR)`
  );
  return need(what, [...tools, ...files]);
}

/** Builds the guest's initramfs in `dir` and returns its path. */
export function buildGuestInitramfs(dir: string): string {
  const initrd = join(dir, "initramfs.cpio.gz");
  sh("bash", [`${ROOT}/tests/e2e/fixtures/qemu/build_initramfs.sh`, initrd, E1000]);
  return initrd;
}

/**
 * The arguments of a QEMU that boots the guest under TCG with its e1000
 * on `netdev` (e.g. `stream,id=n0,server=off,addr.type=unix,addr.path=…`;
 * the id must be n0).
 */
export function guestQemuArgs(initrd: string, netdev: string): string[] {
  return [
    "-accel",
    "tcg",
    "-nographic",
    "-m",
    "256",
    "-no-reboot",
    "-kernel",
    VMLINUZ,
    "-initrd",
    initrd,
    "-append",
    "console=ttyS0 quiet panic=-1",
    "-netdev",
    netdev,
    "-device",
    "e1000,netdev=n0,romfile=",
  ];
}
