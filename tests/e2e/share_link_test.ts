/**
 * Share links end to end (root): the README's server with
 * NETISLE_SHARE_DOMAIN (host-based links), the tunnel CLI on a TAP device, and
 * a web site on the tunnelled side (tests/e2e/fixtures/share_site.ts at
 * 10.0.2.15:8080 in the peer namespace: a page with a stylesheet, a script
 * and a WebSocket, and a 64 MiB file).
 *
 * - curl fetches the 64 MiB through a share link byte-exact (sha256);
 * - headless Chromium, resolving the share domain to 127.0.0.1
 *   (--host-resolver-rules), loads the page through a host-based link: the
 *   stylesheet and the script at absolute paths load, the script's WebSocket
 *   echoes through the link;
 * - a revoked link and an expired one answer 404;
 * - neither the session's token nor the link's key is in any request-log line.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { DENO, e2eSkipReason, type Proc } from "./harness.ts";
import { MiB, rate, sha256File, Testbed } from "./testbed.ts";

const skip = e2eSkipReason() ??
  (existsSync("/usr/bin/chromium") ? undefined : "needs Debian's chromium");
const DOMAIN = "share.test";

describe("share links with curl and Chromium, through a TAP device", { skip }, () => {
  const bed = new Testbed();
  const procs: Proc[] = [];
  let dir = "";
  let site: Proc;
  const api = (method: string, path: string, body?: unknown) =>
    JSON.parse(
      bed.hub.exec("curl", [
        "-s",
        "-X",
        method,
        "-H",
        `authorization: Bearer ${bed.session.token}`,
        ...(body ? ["-H", "content-type: application/json", "-d", JSON.stringify(body)] : []),
        `http://127.0.0.1:8787/v1/sessions/${bed.session.id}${path}`,
      ]) || "null",
    );
  const status = (url: string) =>
    bed.hub.exec("curl", [
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "--resolve",
      `${new URL(url).hostname}:8787:127.0.0.1`,
      url,
    ]);

  before(async () => {
    dir = mkdtempSync(`${tmpdir()}/netisle-share-e2e-`);
    await bed.start("share", {
      server: "plain",
      serverEnv: { NETISLE_SHARE_DOMAIN: `http://${DOMAIN}:8787` },
    });
    bed.peer.exec("sh", ["-c", `head -c ${64 * MiB} /dev/urandom > ${dir}/big.bin`]);
    site = bed.peer.spawn(DENO, [
      "run",
      "-A",
      "tests/e2e/fixtures/share_site.ts",
      "10.0.2.15",
      "8080",
      dir,
    ]);
    procs.push(site);
    await site.waitFor(/SITE ready/);
  });
  after(async () => {
    for (const p of procs) await p.stop();
    await bed.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("curl fetches 64 MiB byte-exact through a share link", () => {
    const s = api("POST", "/shares", { address: "10.0.2.15", port: 8080, name: "site" });
    const u = new URL(s.url);
    assert.equal(u.hostname.endsWith(`.${DOMAIN}`), true, s.url);
    assert.ok(!s.url.includes(bed.session.token));
    const t0 = performance.now();
    bed.hub.exec("curl", [
      "-sf",
      "--resolve",
      `${u.hostname}:8787:127.0.0.1`,
      "-o",
      `${dir}/got.bin`,
      `${s.url}big.bin`,
    ], { timeoutMs: 300_000 });
    const ms = performance.now() - t0;
    return Promise.all([sha256File(`${dir}/big.bin`), sha256File(`${dir}/got.bin`)]).then(
      ([want, got]) => {
        assert.equal(got, want, "sha256 of the download equals the file's");
        console.log(`share link, curl: ${rate(64 * MiB, ms)}`);
      },
    );
  });

  it("headless Chromium loads a page, its stylesheet, its script and its WebSocket through a host-based link", async () => {
    const s = api("POST", "/shares", { address: "10.0.2.15", port: 8080 });
    const profile = mkdtempSync(`${tmpdir()}/netisle-share-chromium-`);
    const mark = site.mark();
    const browser = bed.hub.spawn("/usr/bin/chromium", [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--host-resolver-rules=MAP *.${DOMAIN} 127.0.0.1`,
      `--user-data-dir=${profile}`,
      s.url,
    ]);
    try {
      const done = JSON.parse((await site.waitFor(/DONE (\{.*\})/, 120_000, mark))[1]);
      assert.equal(done.script, true);
      assert.equal(done.style, "rgb(1, 2, 3)", "the stylesheet at /style.css applied");
      assert.equal(done.ws, "echo: ping through the share", "the WebSocket echoed");
      assert.equal(done.origin, new URL(s.url).origin, "the page has the link's own origin");
      console.log(`share link, Chromium: ${JSON.stringify(done)}`);
    } finally {
      await browser.stop(1000);
      rmSync(profile, { recursive: true, force: true });
    }
  });

  it("a revoked link and an expired one answer 404; no log line holds the token or a key", async () => {
    const revoked = api("POST", "/shares", { address: "10.0.2.15", port: 8080 });
    assert.equal(status(revoked.url), "200");
    api("DELETE", `/shares/${revoked.id}`);
    assert.equal(status(revoked.url), "404");
    const short = api("POST", "/shares", { address: "10.0.2.15", port: 8080, ttlSeconds: 1 });
    const deadline = Date.now() + 10_000;
    while (status(short.url) !== "404") {
      assert.ok(Date.now() < deadline, "the link still answers 10 s after its 1 s lifetime");
      await new Promise((r) => setTimeout(r, 200));
    }
    const keys = [revoked.url, short.url].map((u) => new URL(u).hostname.split(".")[0]);
    const log = bed.server.output;
    assert.match(log, /route=\(share host\)/);
    assert.ok(!log.includes(bed.session.token), "the token is in no log line");
    for (const k of keys) assert.ok(!log.includes(k), "no key is in a log line");
  });
});
