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

/**
 * The import cycles among `files` (paths relative to the root → their text):
 * every strongly connected component of the relative-import graph with more
 * than one file, or a file that imports itself (Tarjan's algorithm).
 */
export function importCycles(files: ReadonlyMap<string, string>): string[][] {
  const edges = new Map<string, string[]>();
  for (const [rel, text] of files) {
    const targets = importSpecifiers(text)
      .map((spec) => relative(ROOT, resolve(ROOT, dirname(rel), spec)).split("\\").join("/"))
      .filter((t) => files.has(t));
    edges.set(rel, [...new Set(targets)]);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (edges.get(v) ?? []).includes(v)) cycles.push(component.sort());
    }
  };
  for (const v of [...files.keys()].sort()) if (!index.has(v)) visit(v);
  return cycles;
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

  it("no two files under src/http import each other, directly or through a cycle", () => {
    const files = new Map<string, string>();
    for (const f of sources(join(ROOT, "src/http"))) {
      files.set(relative(ROOT, f).split("\\").join("/"), readFileSync(f, "utf8"));
    }
    assert.ok(files.size > 20, `found ${files.size} files under src/http`);
    const cycles = importCycles(files);
    assert.deepEqual(
      cycles,
      [],
      `import cycles under src/http:\n${cycles.map((c) => c.join(" ⇄ ")).join("\n")}`,
    );
  });

  it("would catch an import cycle, direct or through other files (the check itself works)", () => {
    const direct = new Map([
      ["src/http/a.ts", `import { b } from "./b.ts";`],
      ["src/http/b.ts", `import type { A } from "./a.ts";`],
      ["src/http/c.ts", `import { a } from "./a.ts";`],
    ]);
    assert.deepEqual(importCycles(direct), [["src/http/a.ts", "src/http/b.ts"]]);
    const through = new Map([
      ["src/http/app.ts", `import { r } from "./routes.ts";`],
      ["src/http/routes.ts", `export * from "./isolation/x.ts";`],
      ["src/http/isolation/x.ts", `import type { U } from "../app.ts";`],
    ]);
    assert.deepEqual(importCycles(through), [[
      "src/http/app.ts",
      "src/http/isolation/x.ts",
      "src/http/routes.ts",
    ]]);
    assert.deepEqual(importCycles(new Map([["src/http/s.ts", `import "./s.ts";`]])), [[
      "src/http/s.ts",
    ]]);
    const acyclic = new Map([
      ["src/http/app.ts", `import { r } from "./routes.ts";\nimport type { E } from "./env.ts";`],
      ["src/http/routes.ts", `import type { E } from "./env.ts";`],
      ["src/http/env.ts", `import type { S } from "../session/mod.ts";`],
    ]);
    assert.deepEqual(importCycles(acyclic), []);
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
