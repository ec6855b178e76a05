// Builds dist/netisle.js: mod.ts and its dependencies (hono, zod) bundled into
// one ES module for any runtime (platform "neutral": no Node built-ins), so
// Node, browsers and bundlers can use the library without a TypeScript loader.
// And dist/netisle-client.js: the client SDK (src/client/mod.ts) alone, which
// must not pull in server code (Hono, the stack): only fetch and WebSocket.
//
//   npm run build            # dist/netisle.js, dist/netisle-client.js (+ .map)
//
// Fails when anything in either graph imports a runtime's own modules (node:*,
// bun:*, ws), which would break browsers, or when the client pulls in Hono or
// the stack.

import { build } from "esbuild";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
async function bundle(entry, outfile) {
  const result = await build({
    entryPoints: [`${root}${entry}`],
    outfile: `${root}${outfile}`,
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
    console.error(
      `build: runtime-specific imports in the graph of ${entry}:\n${runtimeOnly.join("\n")}`,
    );
    process.exit(1);
  }
  const inputs = Object.keys(result.metafile.inputs);
  console.log(
    `${outfile}: ${js.bytes} bytes from ${inputs.length} modules (ESM, platform neutral)`,
  );
  return inputs;
}

await bundle("mod.ts", "dist/netisle.js");
const clientInputs = await bundle("src/client/mod.ts", "dist/netisle-client.js");
const server = clientInputs.filter((f) =>
  /node_modules\/(hono|zod)\/|src\/(stack|socket|session|apps)\/|src\/http\/(?!socket_stream_protocol\.ts)/
    .test(f)
);
if (server.length > 0) {
  console.error(`build: the client SDK pulls in server code:\n${server.join("\n")}`);
  process.exit(1);
}
