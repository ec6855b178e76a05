/**
 * The library outside Deno: `npm run build` bundles mod.ts into
 * dist/netisle.js (ESM, platform neutral), and examples/node/embed.mjs (two
 * in-memory sessions, a TCP echo between them) runs on that bundle under
 * Node, Bun and Deno, and in headless Chromium (examples/browser/index.html,
 * served over loopback). The bundle imports nothing (no Node, Bun or Deno
 * modules). Without Chromium the browser case skips loudly, and fails under
 * CI=true (.ci/run installs Debian's chromium).
 */

import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import process from "node:process";
import { BUN, DENO, ROOT } from "./e2e/harness.ts";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
const browserSkip = CHROMIUM ? undefined : process.env.CI === "true"
  ? undefined // under CI a missing browser is a failure, not a skip
  : "needs Debian's chromium (apt-get install chromium)";
if (browserSkip) {
  console.warn(`\n*** SKIPPING the browser case of tests/embed_test.ts: ${browserSkip} ***\n`);
}

/** Serves the repository's files on a loopback port (module scripts need http, not file:). */
function serveRepo(): Promise<{ url: string; close: () => void }> {
  const types: Record<string, string> = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
  };
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
    const file = join(ROOT, path);
    if (!file.startsWith(ROOT + "/") || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      resolve({ url: `http://127.0.0.1:${port}`, close: () => server.close() });
    });
  });
}

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
      ["deno", [DENO, "run", "--allow-read", "examples/node/embed.mjs"]],
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

  it("chromium: the page runs the same example on the bundle", { skip: browserSkip }, async () => {
    assert.ok(CHROMIUM, "Chromium is installed (CI=true: .ci/run installs it)");
    const { url, close } = await serveRepo();
    const profile = mkdtempSync(`${tmpdir()}/netisle-chromium-`);
    try {
      // Flags as this machine's notes advise: no sandbox as root, no background networking.
      const dom = await new Promise<string>((resolve, reject) => {
        execFile(
          CHROMIUM!,
          [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            `--user-data-dir=${profile}`,
            "--virtual-time-budget=30000",
            "--dump-dom",
            `${url}/examples/browser/index.html`,
          ],
          { timeout: 90_000, maxBuffer: 16 << 20 },
          (err, stdout, stderr) => {
            if (err) reject(new Error(`chromium failed: ${err.message}\n${stderr}`));
            else resolve(stdout);
          },
        );
      });
      const out = /<pre id="out">([\s\S]*?)<\/pre>/.exec(dom)?.[1] ?? "";
      const text = out.replaceAll("&quot;", '"').replaceAll("&gt;", ">").replaceAll("&lt;", "<")
        .replaceAll("&amp;", "&");
      for (const line of EXPECTED) assert.ok(text.includes(line), `missing "${line}" in:\n${text}`);
      console.log(`chromium: ${text.trim().split("\n").join(" | ")}`);
    } finally {
      close();
      rmSync(profile, { recursive: true, force: true });
    }
  });

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
