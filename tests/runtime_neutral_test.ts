/**
 * DESIGN.md: runtime-specific code (`Deno.*`, `Bun.*`, `bun:` modules) lives
 * only in thin adapter files; everything else is written against web
 * standards. This test reads every non-test source file and fails on any use
 * outside the adapters listed here.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { ROOT } from "./e2e/harness.ts";

/** The adapters: the only files allowed to touch a runtime's own API. */
const ADAPTERS = new Set([
  "src/http/serve_deno.ts",
  "src/http/isolation/serve_isolated_deno.ts",
  "src/http/serve_bun.ts",
  "src/http/serve_workerd.ts",
  "tunnel/ports/tap_deno.ts",
  "tunnel/ports/tap_bun.ts",
  // The CLI WebSocket client's byte stream on Deno (tunnel/ws_transport.ts is the interface).
  "tunnel/ws_transport_deno.ts",
  // Standard input on Deno for `netisle connect` (tunnel/stdin_chunks.ts chooses it).
  "tunnel/stdin_deno.ts",
  // Egress dialers (src/apps/egress/dialer.ts is the interface they implement).
  "src/apps/egress/dial_deno.ts",
  "src/apps/egress/dial_bun.ts",
  "src/apps/egress/dial_workerd.ts",
  "src/apps/egress/node_net.ts",
]);

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

/** The code of a file without its comments (JSDoc may name runtime APIs). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:])\/\/.*$/gm, "$1");
}

describe("runtime-neutral core", () => {
  it("uses Deno.* and Bun.* only in the adapter files", () => {
    const files = [
      ...sources(join(ROOT, "src")),
      ...sources(join(ROOT, "tunnel")),
      join(ROOT, "mod.ts"),
    ];
    assert.ok(files.length > 50, `found ${files.length} source files`);
    const offenders: string[] = [];
    for (const f of files) {
      const rel = relative(ROOT, f);
      if (ADAPTERS.has(rel)) continue;
      const lines = code(readFileSync(f, "utf8")).split("\n");
      lines.forEach((line, i) => {
        if (/\bDeno\.|\bBun\.|["']bun:/.test(line)) {
          offenders.push(`${rel}:${i + 1}: ${line.trim()}`);
        }
      });
    }
    assert.deepEqual(
      offenders,
      [],
      `runtime-specific code outside the adapters:\n${offenders.join("\n")}`,
    );
  });

  it("would catch a use (the check itself works)", () => {
    assert.match(code("const x = Deno.env.get('A'); // Bun.serve"), /\bDeno\./);
    assert.doesNotMatch(code("/** Deno.upgradeWebSocket */ const y = 1;"), /\bDeno\./);
  });
});
