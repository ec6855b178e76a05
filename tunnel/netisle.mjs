#!/usr/bin/env node
// The package's `bin` (netisle, netisle-tunnel): runs tunnel/cli.ts with the
// Deno binary that `npm install` placed in node_modules, from any working
// directory (ssh runs a ProxyCommand in its own), with standard input and
// output handed straight to it. NETISLE_RUNTIME=bun runs it on Bun instead.
//
//   netisle connect 10.0.2.15:22        # after `npm link`, or ./tunnel/netisle.mjs …

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const cli = `${root}tunnel/cli.ts`;
const bun = process.env.NETISLE_RUNTIME === "bun";
const exe = bun ? `${root}node_modules/.bin/bun` : `${root}node_modules/deno/deno`;
if (!existsSync(exe)) {
  console.error(`netisle: ${exe} is missing: run npm install in ${root}`);
  process.exit(2);
}
const args = bun
  ? [cli, ...process.argv.slice(2)]
  : ["run", "--allow-all", "--quiet", `--config=${root}deno.json`, cli, ...process.argv.slice(2)];
const child = spawn(exe, args, { stdio: "inherit" });
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => child.kill(sig));
}
child.on("exit", (code, signal) => {
  if (signal) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
