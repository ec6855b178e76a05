/**
 * The client SDK in headless Chromium, across origins: tests/_sdk_server.ts
 * runs with NETISLE_CORS_ORIGINS naming one page origin. A page served from
 * that origin runs the SDK scenario (tests/_sdk_scenario.mjs on the bundle
 * dist/netisle-client.js: connect + 1 MiB echo, listen/accept, UDP, errors);
 * a page on another origin is refused by the browser (no CORS headers for
 * it) and by the server (its WebSocket upgrades answer 403). Each page posts
 * its outcome back to the loopback server that served it.
 *
 * Without Chromium this skips loudly, and fails under CI=true (.ci/run
 * installs Debian's chromium).
 */

import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import process from "node:process";
import { ROOT } from "./e2e/harness.ts";
import { startSdkServer } from "./_sdk_server.ts";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
const skip = CHROMIUM
  ? undefined
  : process.env.CI === "true"
  ? undefined
  : "needs Debian's chromium (apt-get install chromium)";
if (skip) console.warn(`\n*** SKIPPING tests/client_browser_test.ts: ${skip} ***\n`);

/** What a page reports. */
interface PageResult {
  ok: boolean;
  lines: string[];
  error?: string;
  refused?: Record<string, string>;
}

const PAGE = (script: string) =>
  `<!doctype html><meta charset="utf-8"><title>netisle SDK</title>
<script type="module">
const q = new URLSearchParams(location.search);
const o = { server: q.get("server"), id: q.get("id"), token: q.get("token"), udp: q.get("udp") };
const report = (r) => fetch("/result", { method: "POST", body: JSON.stringify(r) });
const lines = [];
try {
  const sdk = await import("/dist/netisle-client.js");
${script}
} catch (e) {
  await report({ ok: false, lines, error: String(e && e.stack || e) });
}
</script>`;

const ALLOWED_PAGE = PAGE(`
  const { runScenario } = await import("/tests/_sdk_scenario.mjs");
  await runScenario(sdk, { ...o, log: (l) => lines.push(l) });
  await report({ ok: true, lines });`);

const REFUSED_PAGE = PAGE(`
  const refused = {};
  const client = new sdk.NetisleClient({ server: o.server });
  refused.fetch = await client.getSession(o.id, o.token).then(
    () => "allowed", (e) => e.code + ": " + e.message);
  const ws = (path) => new Promise((resolve) => {
    const url = o.server.replace(/^http/, "ws") + path;
    const s = new WebSocket(url, path.endsWith("/stream?token=" + o.token) ? ["netisle.stream.v1"] : []);
    s.onopen = () => { s.close(); resolve("opened"); };
    s.onclose = (ev) => resolve("closed " + ev.code);
  });
  refused.tunnel = await ws("/v1/sessions/" + o.id + "/tunnel?token=" + o.token);
  refused.stream = await ws("/v1/sessions/" + o.id + "/sockets/" + o.udp + "/stream?token=" + o.token);
  await report({ ok: true, lines, refused });`);

/** Serves the repository's files and one page on a loopback port; collects the page's report. */
async function servePage(html: string): Promise<{
  origin: string;
  result: Promise<PageResult>;
  server: Server;
}> {
  let deliver!: (r: PageResult) => void;
  const result = new Promise<PageResult>((r) => deliver = r);
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
    if (req.method === "POST" && path === "/result") {
      let body = "";
      req.on("data", (c) => body += c);
      req.on("end", () => {
        res.writeHead(204).end();
        deliver(JSON.parse(body));
      });
      return;
    }
    if (path === "/page.html") {
      res.writeHead(200, { "content-type": "text/html" }).end(html);
      return;
    }
    const file = join(ROOT, path);
    if (!file.startsWith(ROOT + "/") || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    const type = [".js", ".mjs"].includes(extname(file)) ? "text/javascript" : "text/plain";
    res.writeHead(200, { "content-type": type }).end(readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return { origin: `http://127.0.0.1:${port}`, result, server };
}

/** Opens `url` in headless Chromium until `done` settles (then kills it), at most 120 s. */
async function browse<T>(url: string, done: Promise<T>): Promise<T> {
  const profile = mkdtempSync(`${tmpdir()}/netisle-chromium-`);
  let browser: ChildProcess | undefined;
  let stderr = "";
  try {
    browser = spawn(CHROMIUM!, [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${profile}`,
      url,
    ], { detached: true, stdio: ["ignore", "ignore", "pipe"] });
    browser.stderr!.on("data", (d) => stderr += d);
    const exited = new Promise<never>((_, reject) =>
      browser!.once("exit", (code) => reject(new Error(`chromium exited (${code}):\n${stderr}`)))
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no report from the page:\n${stderr}`)), 120_000);
    });
    try {
      return await Promise.race([done, exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  } finally {
    if (browser?.pid !== undefined && browser.exitCode === null) {
      const gone = new Promise((r) => browser!.once("exit", r));
      process.kill(-browser.pid, "SIGKILL");
      await gone;
    }
    rmSync(profile, { recursive: true, force: true });
  }
}

describe("the client SDK in headless Chromium, across origins (CORS)", { skip }, () => {
  before(() => {
    execFileSync("node", ["scripts/build.mjs"], { cwd: ROOT, stdio: "pipe" });
  });

  it("a page on an allowed origin runs the scenario; a page on another origin is refused", async () => {
    const allowed = await servePage(ALLOWED_PAGE);
    const other = await servePage(REFUSED_PAGE);
    const s = await startSdkServer({ NETISLE_CORS_ORIGINS: allowed.origin });
    try {
      const q = new URLSearchParams({ server: s.server, id: s.id, token: s.token });
      const good = await browse(`${allowed.origin}/page.html?${q}`, allowed.result);
      assert.ok(good.ok, `the page failed: ${good.error}\n${good.lines.join("\n")}`);
      for (const step of ["session", "echo", "listen/accept", "udp", "errors", "done"]) {
        assert.ok(good.lines.some((l) => l.startsWith(`ok ${step}:`)), `step ${step}`);
      }
      assert.ok(good.lines.some((l) => l.startsWith("ok echo: 1048576 bytes byte-exact")));
      console.log(`chromium (${allowed.origin}): ${good.lines.join(" | ")}`);

      // A UDP socket the refused page tries to stream (v1 streams take UDP sockets unconnected).
      const udp = await (await fetch(`${s.server}/v1/sessions/${s.id}/sockets`, {
        method: "POST",
        headers: { authorization: `Bearer ${s.token}`, "content-type": "application/json" },
        body: JSON.stringify({ protocol: "udp" }),
      })).json();
      q.set("udp", udp.id);
      const bad = await browse(`${other.origin}/page.html?${q}`, other.result);
      assert.ok(bad.ok, `the page failed: ${bad.error}`);
      assert.match(bad.refused!.fetch, /^EUNREACHABLE: /, "the browser hid the answer (CORS)");
      assert.match(bad.refused!.tunnel, /^closed 1006$/, "the tunnel upgrade was refused");
      assert.match(bad.refused!.stream, /^closed 1006$/, "the stream upgrade was refused");
      const view = await (await fetch(`${s.server}/v1/sessions/${s.id}/sockets/${udp.id}`, {
        headers: { authorization: `Bearer ${s.token}` },
      })).json();
      assert.equal(view.streaming, false, "no stream attached from the refused origin");
      const session = await (await fetch(`${s.server}/v1/sessions/${s.id}`, {
        headers: { authorization: `Bearer ${s.token}` },
      })).json();
      assert.equal(session.tunnel.attaches, 1, "only the test's own wire ever attached");
      console.log(`chromium (${other.origin}): ${JSON.stringify(bad.refused)}`);
    } finally {
      allowed.server.close();
      other.server.close();
      await s.proc.stop();
    }
  });
});
