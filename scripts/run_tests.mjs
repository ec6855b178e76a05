#!/usr/bin/env node
// Runs the whole netisle test suite and prints one closing line
// "tests: N passed, N failed, N skipped".
//
//   1. static checks: deno check, deno fmt --check, deno lint
//   2. every test under Deno (unit, cross-layer and end-to-end; e2e needs root)
//   3. the wire and core tests again under Bun
//
// Plain Node, no dependencies, so `npm test` works on a fresh machine.
// Environment: NETISLE_TEST_FILTER=<path prefix> limits the Deno run to matching files.

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const totals = { passed: 0, failed: 0, skipped: 0 };
const failures = [];

function run(cmd, args, opts = {}) {
  console.log(`\n$ ${[cmd, ...args].join(" ")}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: opts.capture ? "pipe" : "inherit", ...opts });
  if (opts.capture) {
    process.stdout.write(r.stdout ?? "");
    process.stderr.write(r.stderr ?? "");
  }
  return r;
}

function ensureTools() {
  if (!existsSync(bin("deno")) || !existsSync(bin("bun"))) {
    const r = run("npm", ["install", "--no-audit", "--no-fund"]);
    if (r.status !== 0) throw new Error("npm install failed");
  }
  // npm may skip the bun package's postinstall (install-scripts policy); run it then.
  if (spawnSync(bin("bun"), ["--version"], { stdio: "ignore" }).status !== 0) {
    run("node", [join(root, "node_modules", "bun", "install.js")], {
      cwd: join(root, "node_modules", "bun"),
    });
  }
}

function staticChecks() {
  const steps = [
    ["deno check", ["check", "mod.ts", "src", "tunnel", "examples", "tests", "scripts", "bench"]],
    ["deno fmt", ["fmt", "--check"]],
    ["deno lint", ["lint"]],
  ];
  for (const [name, args] of steps) {
    const r = run(bin("deno"), args);
    if (r.status === 0) totals.passed++;
    else {
      totals.failed++;
      failures.push(name);
    }
  }
}

function decode(s) {
  return s.replace(/&gt;/g, ">").replace(/&lt;/g, "<").replace(/&quot;/g, '"').replace(
    /&amp;/g,
    "&",
  );
}

/** Counts leaf test cases of a Deno JUnit report (describe blocks are not counted). */
function countJunit(xml) {
  const cases = [];
  const re = /<testcase name="([^"]*)"[^>]*>([\s\S]*?)<\/testcase>/g;
  let m;
  while ((m = re.exec(xml))) {
    cases.push({
      name: decode(m[1]),
      failed: /<failure|<error/.test(m[2]),
      skipped: /<skipped/.test(m[2]),
    });
  }
  const names = new Set(cases.map((c) => c.name));
  const seen = new Set();
  const counts = { passed: 0, failed: 0, skipped: 0, failedNames: [] };
  for (const c of cases) {
    const isParent = [...names].some((n) => n.startsWith(c.name + " > "));
    if (isParent || seen.has(c.name)) continue;
    seen.add(c.name);
    if (c.failed) {
      counts.failed++;
      counts.failedNames.push(c.name);
    } else if (c.skipped) counts.skipped++;
    else counts.passed++;
  }
  return counts;
}

function denoTests() {
  const dir = mkdtempSync(join(tmpdir(), "netisle-junit-"));
  const junit = join(dir, "deno.xml");
  const filter = process.env.NETISLE_TEST_FILTER;
  const args = ["test", "--allow-all", `--junit-path=${junit}`];
  if (filter) args.push(filter);
  const r = run(bin("deno"), args);
  const counts = existsSync(junit) ? countJunit(readFileSync(junit, "utf8")) : undefined;
  rmSync(dir, { recursive: true, force: true });
  if (!counts) {
    totals.failed++;
    failures.push("deno test produced no report");
    return;
  }
  totals.passed += counts.passed;
  totals.skipped += counts.skipped;
  totals.failed += counts.failed;
  failures.push(...counts.failedNames.map((n) => `deno: ${n}`));
  if (r.status !== 0 && counts.failed === 0) {
    totals.failed++;
    failures.push(`deno test exited with status ${r.status} (a module failed to load?)`);
  }
}

function bunTests() {
  // The wire and core layers must run unchanged on Bun; so must egress (and its Bun dialer).
  const r = run(bin("bun"), ["test", "src/wire", "src/stack", "src/session", "src/apps/egress"], {
    capture: true,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  const num = (re) => Number(re.exec(out)?.[1] ?? 0);
  const passed = num(/^\s*(\d+) pass/m);
  const failed = num(/^\s*(\d+) fail/m);
  const skipped = num(/^\s*(\d+) skip/m);
  totals.passed += passed;
  totals.failed += failed;
  totals.skipped += skipped;
  if (failed > 0) failures.push(`bun: ${failed} failed`);
  if (r.status !== 0 && failed === 0) {
    totals.failed++;
    failures.push(`bun test exited with status ${r.status}`);
  }
}

ensureTools();
staticChecks();
denoTests();
bunTests();
console.log("");
if (failures.length > 0) console.log(`failed: ${failures.join("; ")}`);
console.log(`tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(totals.failed === 0 ? 0 : 1);
