// Bundles the Cloudflare Worker (examples/cloudflare/worker.ts, with its
// Durable Object class) into examples/cloudflare/dist/worker.js: one ES module
// for workerd (`npm run start:workerd`, tests/workerd_test.ts). `wrangler
// deploy` bundles the same entry point itself.
//
//   node scripts/build_workerd.mjs [--outfile path] [--quiet]
//   node scripts/build_workerd.mjs --serve     # build, then run workerd with
//       examples/cloudflare/workerd.capnp on $HOSTNAME:$PORT (127.0.0.1:8787), with
//       NETISLE_SERVER_ADDRESSES (what egress never dials) set to the addresses it listens on;
//       SIGINT/SIGTERM stop workerd. `npm run start:workerd` is this command.
//       Durable Object storage goes to $NETISLE_STORAGE_DIR (default
//       examples/cloudflare/dist/storage).

import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { dirname, join, relative, resolve } from "node:path";
import { mkdirSync, statSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { spawn } from "node:child_process";
import process from "node:process";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    outfile: { type: "string", default: join(root, "examples/cloudflare/dist/worker.js") },
    quiet: { type: "boolean", default: false },
    serve: { type: "boolean", default: false },
  },
});

await build({
  entryPoints: [join(root, "examples/cloudflare/worker.ts")],
  outfile: values.outfile,
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  conditions: ["workerd", "worker", "browser"],
  // The runtime's own modules (egress dials with cloudflare:sockets).
  external: ["cloudflare:*"],
  mainFields: ["module", "main"],
  minify: false,
  sourcemap: false,
  legalComments: "none",
  logLevel: "warning",
});
if (!values.quiet) {
  const size = statSync(values.outfile).size;
  console.log(`built ${relative(root, values.outfile)} (${(size / 1024).toFixed(0)} KiB)`);
}

if (values.serve) {
  const port = Number(process.env.PORT ?? "8787");
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`netisle: PORT must be an integer in 0..65535, got "${process.env.PORT}"`);
    process.exit(2);
  }
  const host = process.env.HOSTNAME || "127.0.0.1";
  const addr = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  const storage = resolve(
    process.env.NETISLE_STORAGE_DIR || join(root, "examples/cloudflare/dist/storage"),
  );
  mkdirSync(storage, { recursive: true });
  // The server's own addresses, which egress never dials (a Worker cannot list interfaces).
  const wildcard = host === "0.0.0.0" || host === "::";
  const own = wildcard
    ? Object.values(networkInterfaces()).flat().map((a) => a.address.replace(/%.*$/, ""))
    : [host === "localhost" ? "127.0.0.1" : host];
  const workerd = spawn(
    join(root, "node_modules/.bin/workerd"),
    [
      "serve",
      join(root, "examples/cloudflare/workerd.capnp"),
      "--socket-addr",
      `http=${addr}`,
      "--directory-path",
      `storage=${storage}`,
    ],
    { stdio: "inherit", env: { ...process.env, NETISLE_SERVER_ADDRESSES: own.join(",") } },
  );
  console.log(`netisle (workerd) starting on http://${addr}, Durable Object storage in ${storage}`);
  const stop = (signal) => workerd.kill(signal);
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  workerd.on("exit", (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
}
