/**
 * The browser VM page in headless Chromium: examples/browser/v86_server.ts
 * serves the API and the page on one origin; the page boots v86 (the npm
 * package) with the guest of scripts/build_v86_guest.sh (Debian's i386
 * kernel and busybox), attaches v86's NE2000 to the session's tunnel, and the
 * guest asks the session's DHCP server for an address. Checked: the lease in
 * `GET /v1/sessions/:sid` and on the page, an API connect to the guest's echo
 * server (TCP 7) from the test and from the page, and a share link to the
 * guest's web server. Prints how long the boot took.
 *
 * Needs Chromium and the guest image (NETISLE_V86_DIR, default
 * /var/cache/netisle-v86, which .ci/run builds); skips loudly without them,
 * fails under CI=true.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import process from "node:process";
import { DENO, Proc } from "./e2e/harness.ts";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
const GUEST = process.env.NETISLE_V86_DIR || "/var/cache/netisle-v86";
const missing = !CHROMIUM
  ? "needs Debian's chromium"
  : !existsSync(`${GUEST}/bzImage`)
  ? `needs the guest image in ${GUEST} (scripts/build_v86_guest.sh)`
  : undefined;
const skip = missing && process.env.CI !== "true" ? missing : undefined;
if (skip) console.warn(`\n*** SKIPPING tests/v86_page_test.ts: ${skip} ***\n`);

describe("the browser VM page (v86) in headless Chromium", { skip }, () => {
  it("boots the guest, which gets a lease; the API reaches its echo server; a share link its web server", async () => {
    assert.ok(!missing, missing);
    const server = new Proc(DENO, ["run", "-A", "examples/browser/v86_server.ts"], {
      PORT: "0",
      NETISLE_V86_DIR: GUEST,
      NETISLE_LOG: "0",
    });
    let reported!: (body: string) => void;
    const report = new Promise<string>((r) => reported = r);
    const collector = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => body += c);
      req.on("end", () => {
        res.writeHead(204).end();
        reported(body);
      });
    });
    await new Promise<void>((r) => collector.listen(0, "127.0.0.1", r));
    const profile = mkdtempSync(`${tmpdir()}/netisle-v86-chromium-`);
    let browser: ChildProcess | undefined;
    try {
      const base = (await server.waitFor(/listening on (http:\/\/\S+)/))[1];
      const created = await (await fetch(`${base}/v1/sessions`, { method: "POST" })).json();
      const auth = { authorization: `Bearer ${created.token}` };
      const reportUrl = `http://127.0.0.1:${(collector.address() as { port: number }).port}/`;
      const fragment = new URLSearchParams({
        session: created.id,
        token: created.token,
        report: reportUrl,
      });
      const started = Date.now();
      browser = spawn(CHROMIUM!, [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        `--user-data-dir=${profile}`,
        `${base}/v86/#${fragment}`,
      ], { detached: true, stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      browser.stderr!.on("data", (d) => stderr += d);
      const timeout = setTimeout(() => reported("{}"), 240_000);
      const page = JSON.parse(await report);
      clearTimeout(timeout);
      assert.ok(page.bootMs, `the page reported no boot: ${JSON.stringify(page)}\n${stderr}`);
      const seconds = (Date.now() - started) / 1000;
      console.log(
        `v86: ${page.bootMs} ms from the emulator's start to the guest's lease ` +
          `(${seconds.toFixed(1)} s from launching Chromium to the page's report)`,
      );
      assert.equal(page.sessionId, created.id);
      assert.match(page.lease, /^10\.0\.2\.\d+$/);
      assert.ok(page.leaseShown.startsWith(page.lease), `the page shows ${page.leaseShown}`);
      assert.equal(page.echo, "hello from the page", "the page's API connect echoed");

      // The lease in the API, and the test's own connect to the guest's echo server.
      const view = await (await fetch(`${base}/v1/sessions/${created.id}`, { headers: auth }))
        .json();
      const lease = view.dhcp.leases.find((l: { state: string }) => l.state === "bound");
      assert.equal(lease.address, page.lease);
      assert.equal(lease.hostname, "v86-guest");
      assert.equal(view.tunnel.attached, true);
      const sockets = `${base}/v1/sessions/${created.id}/sockets`;
      const post = (path: string, body: unknown) =>
        fetch(`${sockets}${path}`, {
          method: "POST",
          headers: { ...auth, "content-type": "application/json" },
          body: JSON.stringify(body),
        });
      const { id } = await (await post("", { protocol: "tcp" })).json();
      const c = await post(`/${id}/connect`, { address: lease.address, port: 7, timeoutMs: 10000 });
      assert.equal(c.status, 200, await c.text());
      const payload = "bytes through the browser's VM ".repeat(1000);
      const sent = await fetch(`${sockets}/${id}/send`, {
        method: "POST",
        headers: auth,
        body: payload,
      });
      assert.equal(sent.status, 200);
      let got = "";
      while (got.length < payload.length) {
        const r = await fetch(`${sockets}/${id}/recv?timeoutMs=10000`, {
          method: "POST",
          headers: auth,
        });
        assert.equal(r.status, 200);
        got += await r.text();
      }
      assert.equal(got, payload);

      // A share link to the guest's web server (busybox httpd).
      const share = await (await fetch(`${base}/v1/sessions/${created.id}/shares`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({ address: lease.address, port: 80 }),
      })).json();
      const html = await (await fetch(share.url)).text();
      assert.match(html, /Hello from a VM running in a browser/);
    } finally {
      if (browser?.pid !== undefined && browser.exitCode === null) {
        const gone = new Promise((r) => browser!.once("exit", r));
        process.kill(-browser.pid, "SIGKILL");
        await gone;
      }
      rmSync(profile, { recursive: true, force: true });
      collector.close();
      await server.stop();
    }
  });
});
