// Builds dist/netisle.js: mod.ts and its dependencies (hono, zod) bundled into
// one ES module for any runtime (platform "neutral": no Node built-ins), so
// Node, browsers and bundlers can use the library without a TypeScript loader.
//
//   npm run build            # dist/netisle.js + dist/netisle.js.map
//
// Fails when anything in the graph imports a runtime's own modules (node:*,
// bun:*, ws), which would break browsers.

import { build } from "esbuild";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const result = await build({
  entryPoints: [`${root}mod.ts`],
  outfile: `${root}dist/netisle.js`,
  bundle: true,
  format: "esm",
  platform: "neutral",
  // Packages without an "exports" map (@asteasolutions/zod-to-openapi, under
  // @hono/zod-openapi) are found through their ESM entry.
  mainFields: ["module", "main"],
  target: "es2022",
  sourcemap: true,
  metafile: true,
  logLevel: "warning",
});

const outputs = Object.values(result.metafile.outputs);
const js = outputs.find((o) => o.entryPoint !== undefined);
const runtimeOnly = Object.entries(result.metafile.inputs).flatMap(([file, input]) =>
  input.imports
    .filter((i) => i.external || /^(node|bun|deno):|^ws$/.test(i.path))
    .map((i) => `${file} imports ${i.path}`)
);
if (runtimeOnly.length > 0) {
  console.error(`build: runtime-specific imports in the library graph:\n${runtimeOnly.join("\n")}`);
  process.exit(1);
}
const inputs = Object.keys(result.metafile.inputs).length;
console.log(`dist/netisle.js: ${js.bytes} bytes from ${inputs} modules (ESM, platform neutral)`);
