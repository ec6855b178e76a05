/**
 * The netisle-tunnel CLI names the cause of every setup failure and exits 2:
 * bad flags, not root, server unreachable, no such session, wrong token.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { serveDeno } from "../src/http/serve_deno.ts";
import { SessionRegistry, SystemClock } from "../src/session/mod.ts";
import { DENO, ROOT } from "./e2e/harness.ts";
import { joinOptionValues } from "../tunnel/cli.ts";

function cli(args: string[], prefix: string[] = []): { status: number | null; out: string } {
  const cmd = prefix.length > 0 ? prefix[0] : DENO;
  const full = prefix.length > 0
    ? [...prefix.slice(1), DENO, "run", "-A", "tunnel/cli.ts", ...args]
    : ["run", "-A", "tunnel/cli.ts", ...args];
  const r = spawnSync(cmd, full, {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const isRoot = process.getuid?.() === 0;

describe("netisle-tunnel CLI errors", () => {
  it("--help documents every flag and exits 0", () => {
    const r = cli(["--help"]);
    assert.equal(r.status, 0);
    for (
      const flag of [
        "--server",
        "--create",
        "--admin-token",
        "--session",
        "--token",
        "--tap",
        "--mtu",
        "--no-reconnect",
        "--framing",
        "--keepalive",
        "--keepalive-timeout",
        "disconnect=",
      ]
    ) {
      assert.ok(r.out.includes(flag), flag);
    }
  });

  it("takes option values that start with '-' (base64url tokens may)", () => {
    assert.deepEqual(joinOptionValues(["--token", "-abc", "--tap", "tap0", "--create"]), [
      "--token=-abc",
      "--tap=tap0",
      "--create",
    ]);
    const r = cli(["--session", "s_x", "--token", "-starts-with-dash"]);
    assert.equal(r.status, 2);
    assert.doesNotMatch(r.out, /ambiguous/);
    assert.match(r.out, /a port is required: --tap NAME/);
  });

  it("bad --framing, --keepalive and --faults disconnect values are usage errors", () => {
    const base = ["--session", "s_x", "--token", "t", "--tap", "tap0"];
    const framing = cli([...base, "--framing", "batch"]);
    assert.equal(framing.status, 2);
    assert.match(framing.out, /--framing must be "frame" or "stream", got "batch"/);
    const keepalive = cli([...base, "--keepalive", "-1"]);
    assert.equal(keepalive.status, 2);
    assert.match(keepalive.out, /--keepalive must be 0 or seconds in 0.1..3600, got "-1"/);
    const faults = cli([...base, "--faults", "disconnect=5"]);
    assert.equal(faults.status, 2);
    assert.match(faults.out, /--faults: fault spec: "disconnect=5" needs a duration/);
  });

  it("an unknown flag is a usage error", () => {
    const r = cli(["--bogus"]);
    assert.equal(r.status, 2);
    assert.match(r.out, /Unknown option '--bogus'/);
  });

  it("missing --session/--token is a usage error", () => {
    const r = cli(["--tap", "tap0"]);
    assert.equal(r.status, 2);
    assert.match(r.out, /--session ID and --token TOKEN are required/);
  });

  it("not root: says so", {
    skip: isRoot && !process.env.NETISLE_NO_SETPRIV ? false : "needs root to drop privileges",
  }, () => {
    const r = cli(["--create", "--tap", "tap0"], [
      "setpriv",
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
    ]);
    assert.equal(r.status, 2);
    assert.match(r.out, /not running as root/);
  });

  it("server unreachable, no such session, wrong token: each named", {
    skip: isRoot ? false : "the CLI checks for root first",
  }, async () => {
    const unreachable = cli([
      "--server",
      "http://127.0.0.1:9",
      "--session",
      "s_x",
      "--token",
      "t",
      "--tap",
      "tapx",
    ]);
    assert.equal(unreachable.status, 2);
    assert.match(unreachable.out, /server unreachable at http:\/\/127\.0\.0\.1:9/);

    const registry = new SessionRegistry({ clock: new SystemClock() });
    const ac = new AbortController();
    const base = await new Promise<string>((resolve) =>
      serveDeno({ registry, hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: resolve })
    );
    try {
      const session = registry.create();
      // spawnSync would block the event loop that serves the requests: run the CLI asynchronously.
      const run = async (args: string[]) => {
        const { spawn } = await import("node:child_process");
        const child = spawn(DENO, ["run", "-A", "tunnel/cli.ts", ...args], {
          cwd: ROOT,
          env: { ...process.env, NO_COLOR: "1" },
        });
        let out = "";
        child.stdout.on("data", (d) => out += d);
        child.stderr.on("data", (d) => out += d);
        const status = await new Promise<number | null>((r) => child.on("exit", r));
        return { status, out };
      };
      const missing = await run([
        "--server",
        base,
        "--session",
        "s_AAAAAAAAAAAAAAAAAAAAAA",
        "--token",
        "t",
        "--tap",
        "tapx",
      ]);
      assert.equal(missing.status, 2);
      assert.match(missing.out, /no such session "s_AAAAAAAAAAAAAAAAAAAAAA"/);
      const wrong = await run([
        "--server",
        base,
        "--session",
        session.id,
        "--token",
        "nope",
        "--tap",
        "tapx",
      ]);
      assert.equal(wrong.status, 2);
      assert.match(wrong.out, /wrong token for session/);
    } finally {
      registry.close();
      ac.abort();
    }
  });
});
