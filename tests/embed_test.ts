/**
 * The library outside Deno: `npm run build` bundles mod.ts into
 * dist/netisle.js (ESM, platform neutral), and examples/node/embed.mjs (two
 * in-memory sessions, a TCP echo between them) runs on that bundle under
 * Node, Bun and Deno. Browsers load the same bundle
 * (examples/browser/index.html); with no browser installed here, the test
 * checks that the bundle imports nothing (no Node, Bun or Deno modules).
 */

import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { BUN, DENO, ROOT } from "./e2e/harness.ts";

const EXPECTED = [
  "connected 10.0.2.2 -> 10.0.2.3:7",
  'first line back: "hello from netisle in Node\\n"',
  "echo OK: sent 200027 bytes, got 200027 back",
];

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
}

describe("the library bundle (dist/netisle.js)", () => {
  let buildOutput = "";
  before(() => {
    buildOutput = run("node", ["scripts/build.mjs"]);
  });

  it("builds one ES module from mod.ts with no imports left (nothing runtime-specific)", () => {
    assert.match(buildOutput, /dist\/netisle\.js: \d+ bytes from \d+ modules/);
    const js = readFileSync(`${ROOT}/dist/netisle.js`, "utf8");
    const imports = [
      ...js.matchAll(/^\s*(?:import|export)\s[^;]*?\bfrom\s*["']([^"']+)["']/gm),
      ...js.matchAll(/^\s*import\s*["']([^"']+)["']/gm),
      ...js.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
      ...js.matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g),
    ].map((m) => m[1]);
    assert.deepEqual(imports, [], `the bundle imports ${imports.join(", ")}`);
    assert.doesNotMatch(js, /\bDeno\.|\bBun\./, "the bundle uses a runtime's own API");
    assert.match(js, /^export \{/m, "the bundle is an ES module with exports");
    for (
      const name of ["Session", "TcpSocket", "TcpServer", "createApp", "attachWebSocketTunnel"]
    ) {
      assert.match(js, new RegExp(`\\b${name}\\b`), `${name} is exported`);
    }
  });

  for (
    const [runtime, argv] of [
      ["node", ["node", "examples/node/embed.mjs"]],
      ["bun", [BUN, "examples/node/embed.mjs"]],
      ["deno", [DENO, "run", "examples/node/embed.mjs"]],
    ] as const
  ) {
    it(`${runtime}: two sessions joined in memory exchange a 200 kB TCP echo, byte-exact`, () => {
      const out = run(argv[0], [...argv.slice(1)]);
      for (const line of EXPECTED) assert.ok(out.includes(line), `missing "${line}" in:\n${out}`);
      const frames = Number(/frames on the wire: (\d+)/.exec(out)?.[1]);
      assert.ok(frames > 100, `only ${frames} frames for 200 kB each way:\n${out}`);
      console.log(`${runtime}: ${out.trim().split("\n").join(" | ")}`);
    });
  }

  it("the browser page loads the Node example and the bundle by paths that exist", () => {
    const html = readFileSync(`${ROOT}/examples/browser/index.html`, "utf8");
    const page = new URL("examples/browser/index.html", `file://${ROOT}/`);
    const target = /import\("([^"]+)"\)/.exec(html)?.[1];
    assert.ok(target, "the page imports the example");
    const example = new URL(target, page);
    const src = readFileSync(example, "utf8");
    const bundle = /"([^"]+netisle\.js)"/.exec(src)?.[1];
    assert.ok(bundle, "the example imports the bundle");
    readFileSync(new URL(bundle, example)); // throws when missing
  });
});
