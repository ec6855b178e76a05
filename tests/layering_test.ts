/**
 * DESIGN.md: data flows one way and each folder imports only the ones below
 * it: errors ← wire ← stack ← socket ← session ← apps ← http ← client (the
 * SDK, which shares the http layer's schemas), with the tunnel client and the
 * CLI and the examples above them all. This test reads every
 * non-test source file and fails on any relative import (static, dynamic,
 * `import type` and re-exports alike) that points up.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { ROOT } from "./e2e/harness.ts";

/** The layers, lowest first. A file may import its own layer and the ones before it. */
export const LAYERS: readonly string[] = [
  "src/errors",
  "src/wire",
  "src/stack",
  "src/socket",
  "src/session",
  "src/apps",
  "src/http",
  "src/client",
  "tunnel",
  "examples",
];

/** The layer index of a path relative to the root, or -1 outside every layer. */
export function layerOf(rel: string): number {
  const path = rel.split("\\").join("/");
  for (let i = LAYERS.length - 1; i >= 0; i--) {
    if (path.startsWith(`${LAYERS[i]}/`)) return i;
  }
  return -1;
}

/** Relative module specifiers a file imports or re-exports (comments stripped). */
export function importSpecifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:])\/\/.*$/gm, "$1");
  const specs: string[] = [];
  const patterns = [
    /\b(?:import|export)\b[^;"'`]*?\bfrom\s*["']([^"']+)["']/g,
    /\bimport\s*["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
    /new\s+URL\(\s*["']([^"']+\.ts)["']\s*,\s*import\.meta\.url\s*\)/g,
  ];
  for (const re of patterns) {
    for (const m of code.matchAll(re)) if (m[1].startsWith(".")) specs.push(m[1]);
  }
  return specs;
}

/** Every import of `rel` (a file relative to the root) that points to a higher layer. */
export function upwardImports(rel: string, text: string): string[] {
  const from = layerOf(rel);
  const out: string[] = [];
  for (const spec of importSpecifiers(text)) {
    const target = relative(ROOT, resolve(ROOT, dirname(rel), spec)).split("\\").join("/");
    const to = layerOf(target);
    if (to > from) out.push(`${rel} imports ${target} (${LAYERS[from]} → ${LAYERS[to]})`);
  }
  return out;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (name.endsWith(".ts") && !name.endsWith("_test.ts") && !name.startsWith("_")) {
      out.push(path);
    }
  }
  return out;
}

describe("import direction (DESIGN.md layers)", () => {
  it("no source file imports a layer above its own", () => {
    const files = [...sources(join(ROOT, "src")), ...sources(join(ROOT, "tunnel"))];
    assert.ok(files.length > 100, `found ${files.length} source files`);
    const offenders: string[] = [];
    for (const f of files) {
      const rel = relative(ROOT, f).split("\\").join("/");
      assert.notEqual(layerOf(rel), -1, `${rel} is in no layer of DESIGN.md`);
      offenders.push(...upwardImports(rel, readFileSync(f, "utf8")));
    }
    assert.deepEqual(offenders, [], `imports that point up:\n${offenders.join("\n")}`);
  });

  it("would catch an upward import of every form (the check itself works)", () => {
    const forbidden = [
      `import { NetError } from "../socket/mod.ts";`,
      `import type { Session } from "../session/session.ts";`,
      `export { x } from "../http/app.ts";`,
      `const m = await import("../../tunnel/cli.ts");`,
      `import {\n  a,\n  b,\n} from "../socket/socket_table.ts";`,
    ];
    for (const line of forbidden) {
      assert.equal(upwardImports("src/stack/some_file.ts", line).length, 1, line);
    }
    assert.deepEqual(
      upwardImports("src/stack/some_file.ts", `import { Ipv4Packet } from "../wire/mod.ts";`),
      [],
    );
    assert.deepEqual(
      upwardImports(
        "src/stack/some_file.ts",
        `/** see "../socket/mod.ts" */\n// import { x } from "../http/app.ts";`,
      ),
      [],
    );
  });
});
