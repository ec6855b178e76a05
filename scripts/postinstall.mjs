#!/usr/bin/env node
// Makes sure the native Deno and Bun binaries that the npm packages `deno` and
// `bun` carry are in place (npm may skip their own install scripts), so that
// the tasks can call node_modules/deno/deno and node_modules/.bin/bun directly.

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const modules = join(root, "node_modules");

const deno = join(modules, "deno", "deno");
if (existsSync(join(modules, "deno")) && !existsSync(deno)) {
  const require = createRequire(import.meta.url);
  require(join(modules, "deno", "install_api.cjs")).runInstall();
  console.log(`postinstall: placed the Deno binary at ${deno}`);
}

const bun = join(modules, ".bin", "bun");
if (
  existsSync(join(modules, "bun")) &&
  spawnSync(bun, ["--version"], { stdio: "ignore" }).status !== 0
) {
  const r = spawnSync(process.execPath, ["install.js"], {
    cwd: join(modules, "bun"),
    stdio: "inherit",
  });
  if (r.status !== 0) console.error("postinstall: the Bun binary could not be installed");
}
