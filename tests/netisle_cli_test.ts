/**
 * The `netisle` CLI without root (the e2e with ssh, scp, curl and dnsmasq is
 * tests/e2e/netisle_cli_test.ts): every way to run it from a checkout, each
 * subcommand's help, the forward specs, the session file and environment,
 * and `sessions`, `connect` and `forward` against tests/_sdk_server.ts (a
 * session whose far side is a second stack at 10.0.2.15 with an echo, a
 * dial-back service and a UDP echo).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect as tcpConnect, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import process from "node:process";
import { BUN, DENO, Proc, ROOT } from "./e2e/harness.ts";
import { startSdkServer } from "./_sdk_server.ts";
import {
  joinValues,
  readSessionFile,
  resolveTarget,
  writeSessionFile,
} from "../tunnel/cli_common.ts";
import { forwardLabel, parseForwardSpec } from "../tunnel/forward_spec.ts";
import { joinHostPort, splitHostPort } from "../src/client/mod.ts";
import { ForwardReporter, ForwardStats, forwardStatusLine } from "../tunnel/forward_stats.ts";

/** Runs the CLI (Deno) with `args`, `input` on stdin; resolves with status and output. */
function netisle(
  args: string[],
  o: { env?: Record<string, string>; input?: Uint8Array | string } = {},
): Promise<{ code: number; stdout: Uint8Array; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(DENO, ["run", "-A", "tunnel/cli.ts", ...args], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: "1", ...o.env },
    });
    const out: Uint8Array[] = [];
    let err = "";
    child.stdout.on("data", (d: Uint8Array) => out.push(d));
    child.stderr.on("data", (d) => err += d);
    child.on("close", (code) => {
      const stdout = new Uint8Array(Buffer.concat(out));
      resolve({ code: code ?? -1, stdout, out: new TextDecoder().decode(stdout), err });
    });
    child.stdin.end(o.input ?? "");
  });
}

function runCmd(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: ROOT, timeout: 60_000 }, (e, stdout, stderr) => {
      resolve({
        code: e ? (typeof e.code === "number" ? e.code : 1) : 0,
        out: `${stdout}${stderr}`,
      });
    });
  });
}

describe("netisle: the ways to run it, and its help", () => {
  it("npm run netisle, deno task netisle, bun tunnel/cli.ts and the bin all run it", async () => {
    const ways: Array<[string, string, string[]]> = [
      ["npm run -s netisle", "npm", ["run", "-s", "netisle", "--", "--help"]],
      ["deno task netisle", DENO, ["task", "netisle", "--help"]],
      ["bun tunnel/cli.ts", BUN, ["tunnel/cli.ts", "--help"]],
      ["the package's bin", `${ROOT}/tunnel/netisle.mjs`, ["--help"]],
    ];
    for (const [name, cmd, args] of ways) {
      const r = await runCmd(cmd, args);
      assert.equal(r.code, 0, `${name}: ${r.out}`);
      for (const c of ["tunnel", "connect", "forward", "sessions"]) {
        assert.match(r.out, new RegExp(`^  ${c} `, "m"), `${name} lists ${c}`);
      }
    }
    const pkg = JSON.parse(readFileSync(`${ROOT}/package.json`, "utf8"));
    assert.deepEqual(pkg.bin, {
      netisle: "tunnel/netisle.mjs",
      "netisle-tunnel": "tunnel/netisle.mjs",
    });
  });

  it("each subcommand has --help naming its options; unknown commands and flags are usage errors", async () => {
    const flags: Record<string, string[]> = {
      tunnel: ["--tap", "--qemu-stream", "--create", "--session-file"],
      connect: ["HOST:PORT", "--udp", "--lines", "--timeout", "--session-file", "ProxyCommand"],
      forward: ["-L [BIND:]PORT:HOST:PORT", "-R PORT:HOST:PORT", "-U", "/udp", "--udp-idle"],
      sessions: ["create", "show", "sockets", "delete", "--session-file", "--json"],
    };
    for (const [command, names] of Object.entries(flags)) {
      const r = await netisle([command, "--help"]);
      assert.equal(r.code, 0, command);
      for (const f of names) assert.ok(r.out.includes(f), `${command} --help names ${f}`);
      for (const env of ["NETISLE_SERVER", "NETISLE_SESSION", "NETISLE_TOKEN"]) {
        assert.ok(r.out.includes(env), `${command} --help names ${env}`);
      }
    }
    const unknown = await netisle(["conect", "x"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /unknown command "conect"/);
    const bad = await netisle(["connect", "--nope", "10.0.2.15:22"]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /^netisle connect: .*--nope/m);
  });
});

describe("netisle forward specs and status", () => {
  it("parses ssh's -L/-R syntax, /udp, brackets and *", () => {
    const cases: Array<
      [string, Parameters<typeof parseForwardSpec>, Partial<ReturnType<typeof parseForwardSpec>>]
    > = [
      ["-L PORT:HOST:PORT", ["local", "8080:10.0.2.15:80"], {
        bindAddress: undefined,
        bindPort: 8080,
        host: "10.0.2.15",
        port: 80,
        protocol: "tcp",
      }],
      ["-L BIND:...", ["local", "0.0.0.0:8080:10.0.2.15:80"], {
        bindAddress: "0.0.0.0",
        bindPort: 8080,
      }],
      ["-L *:...", ["local", "*:0:10.0.2.15:80"], { bindAddress: "0.0.0.0", bindPort: 0 }],
      ["-L [::1]:...", ["local", "[::1]:8080:10.0.2.15:80"], {
        bindAddress: "::1",
        bindPort: 8080,
      }],
      ["-R .../udp", ["remote", "5353:127.0.0.1:53/udp"], {
        kind: "remote",
        protocol: "udp",
        port: 53,
      }],
      ["-U", ["local", "5353:10.0.2.15:53", "udp"], { protocol: "udp", bindPort: 5353 }],
      ["-R to a name", ["remote", "8000:localhost:8000"], { host: "localhost", bindPort: 8000 }],
      ["-L to an IPv6 address", ["local", "2222:[fd00::15]:22"], { host: "fd00::15", port: 22 }],
    ];
    for (const [name, args, want] of cases) {
      const got = parseForwardSpec(...args);
      for (const [k, v] of Object.entries(want)) {
        assert.deepEqual(got[k as keyof typeof got], v, `${name}: ${k}`);
      }
    }
    for (
      const bad of [
        "8080:10.0.2.15",
        "x:10.0.2.15:80",
        "8080:10.0.2.15:70000",
        "8080::80",
        "a:b:c:d:e",
      ]
    ) {
      assert.throws(() => parseForwardSpec("local", bad), RangeError, bad);
    }
    assert.throws(() => parseForwardSpec("remote", "0:127.0.0.1:80"), /1\.\.65535/);
    assert.equal(
      forwardLabel(parseForwardSpec("local", "8080:10.0.2.15:80")),
      "-L 127.0.0.1:8080 -> 10.0.2.15:80",
    );
    assert.equal(
      forwardLabel(parseForwardSpec("remote", "5353:127.0.0.1:53/udp")),
      "-R 10.0.2.2:5353 -> 127.0.0.1:53/udp",
    );
    assert.equal(
      forwardLabel(parseForwardSpec("local", "[::1]:2222:[fd00::15]:22")),
      "-L [::1]:2222 -> [fd00::15]:22",
    );
  });

  it("splits and joins HOST:PORT with IPv6 in brackets (RFC 3986 §3.2.2)", () => {
    assert.deepEqual(splitHostPort("10.0.2.15:22"), { address: "10.0.2.15", port: 22 });
    assert.deepEqual(splitHostPort("[fd00::15]:22"), { address: "fd00::15", port: 22 });
    assert.deepEqual(splitHostPort("host.internal:53"), { address: "host.internal", port: 53 });
    assert.throws(() => splitHostPort("fd00::15:22"), /IPv6 address goes in brackets/);
    for (const bad of ["10.0.2.15", "[fd00::15]", "[fd00::15]:70000", ":22", "a:b"]) {
      assert.throws(() => splitHostPort(bad), TypeError, bad);
    }
    assert.equal(joinHostPort("fd00::15", 22), "[fd00::15]:22");
    assert.equal(joinHostPort("10.0.2.15", 22), "10.0.2.15:22");
  });

  it("prints one status line on a terminal, lines above it, and only lines elsewhere", () => {
    const stats = new ForwardStats();
    Object.assign(stats, {
      open: 2,
      done: 15,
      failed: 1,
      bytesIn: 4_000_000,
      bytesOut: 1_100_000_000,
    });
    assert.equal(
      forwardStatusLine(stats, { inPerS: 1_200_000, outPerS: 30_100_000 }),
      "2 open, 15 done, 1 failed | in 1.2 MB/s, out 30.1 MB/s | total in 4.0 MB, out 1.1 GB",
    );
    let written = "";
    const tty = new ForwardReporter({
      stats,
      tty: true,
      write: (t) => written += t,
      describe: () => "-L x",
    });
    tty.start();
    tty.line("a connection ended");
    tty.stop();
    const clear = "\r\x1b[2K"; // back to the start of the line, erase it
    assert.ok(written.startsWith(`${clear}2 open, 15 done`), JSON.stringify(written));
    assert.ok(
      written.includes(`${clear}a connection ended\n${clear}2 open`),
      JSON.stringify(written),
    );
    written = "";
    const log = new ForwardReporter({
      stats,
      tty: false,
      write: (t) => written += t,
      describe: () => "-L x",
    });
    log.start();
    log.line("a connection ended");
    log.stop();
    assert.equal(written, "a connection ended\n");
  });

  it("joins option values that start with '-' (tokens may)", () => {
    assert.deepEqual(
      joinValues(
        ["--token", "-abc", "-L", "8080:10.0.2.15:80", "--udp"],
        new Set(["--token", "-L"]),
      ),
      ["--token=-abc", "-L8080:10.0.2.15:80", "--udp"],
    );
  });
});

describe("the session file and the environment", () => {
  it("flags win over the session file, which wins over NETISLE_*; the file is mode 600", () => {
    const dir = mkdtempSync(`${tmpdir()}/netisle-cli-`);
    try {
      const path = `${dir}/s.json`;
      writeSessionFile(path, { server: "http://file:1", id: "s_file", token: "t_file" });
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.deepEqual(readSessionFile(path), {
        server: "http://file:1",
        id: "s_file",
        token: "t_file",
      });
      const env = {
        NETISLE_SERVER: "http://env:2",
        NETISLE_SESSION: "s_env",
        NETISLE_TOKEN: "t_env",
      };
      assert.deepEqual(resolveTarget({}, env), {
        server: "http://env:2",
        id: "s_env",
        token: "t_env",
      });
      assert.deepEqual(resolveTarget({ "session-file": path }, env), {
        server: "http://file:1",
        id: "s_file",
        token: "t_file",
      });
      assert.deepEqual(
        resolveTarget({ "session-file": path, token: "t_flag" }, {
          ...env,
          NETISLE_SESSION_FILE: "/x",
        }),
        { server: "http://file:1", id: "s_file", token: "t_flag" },
      );
      assert.deepEqual(resolveTarget({}, { NETISLE_SESSION_FILE: path }).id, "s_file");
      assert.deepEqual(resolveTarget({}, {}).server, "http://127.0.0.1:8787");
      writeFileSync(`${dir}/bad.json`, "{}");
      assert.throws(() => readSessionFile(`${dir}/bad.json`), /needs "server", "id" and "token"/);
      assert.throws(() => readSessionFile(`${dir}/missing.json`), /cannot read the session file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("netisle sessions, connect and forward against a server", () => {
  let s: Awaited<ReturnType<typeof startSdkServer>>;
  let env: Record<string, string>;
  before(async () => {
    s = await startSdkServer();
    env = { NETISLE_SERVER: s.server, NETISLE_SESSION: s.id, NETISLE_TOKEN: s.token };
  });
  after(async () => {
    await s.proc.stop();
  });

  it("sessions create writes the session file; show, sockets and delete use it", async () => {
    const dir = mkdtempSync(`${tmpdir()}/netisle-cli-`);
    const file = `${dir}/session.json`;
    try {
      const created = await netisle([
        "sessions",
        "create",
        "--server",
        s.server,
        "--session-file",
        file,
      ]);
      assert.equal(created.code, 0, created.err);
      const [, id, token] = /^session (s_\S+) token (\S+)$/m.exec(created.out)!;
      assert.match(
        created.out,
        new RegExp(
          `^export NETISLE_SERVER=${s.server} NETISLE_SESSION=${id} NETISLE_TOKEN=${token}$`,
          "m",
        ),
      );
      assert.deepEqual(readSessionFile(file), { server: s.server, id, token });
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const show = await netisle(["sessions", "show", "--session-file", file]);
      assert.equal(show.code, 0, show.err);
      assert.match(show.out, new RegExp(`^session ${id} on `, "m"));
      assert.match(show.out, /stack\s+10\.0\.2\.2\/24/);
      const json = JSON.parse(
        (await netisle(["sessions", "show", "--json", "--session-file", file])).out,
      );
      assert.equal(json.id, id);
      const sockets = await netisle(["sessions", "sockets", "--session-file", file]);
      assert.match(sockets.out, /0 socket\(s\); control blocks:/);
      assert.equal((await netisle(["sessions", "delete", "--session-file", file])).code, 0);
      const gone = await netisle(["sessions", "show", "--session-file", file]);
      assert.equal(gone.code, 2);
      assert.equal(gone.err, `netisle sessions: no such session "${id}" on ${s.server}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("connect: standard input and output as one connection, byte-exact, FIN at the end of input", async () => {
    const data = new Uint8Array(4 * 1024 * 1024);
    crypto.getRandomValues(data.subarray(0, 65536));
    for (let i = 65536; i < data.length; i++) data[i] = data[i - 65536] ^ (i & 0xff);
    const r = await netisle(["connect", "10.0.2.15:7"], { env, input: data });
    assert.equal(r.code, 0, r.err);
    assert.equal(r.err, "");
    assert.equal(r.stdout.length, data.length);
    assert.ok(r.stdout.every((b, i) => b === data[i]), "byte-exact");
  });

  it("connect: refused, unreachable and a wrong token each give one line and their status", async () => {
    const refused = await netisle(["connect", "10.0.2.15:1"], { env });
    assert.deepEqual([refused.code, refused.err], [
      1,
      "netisle connect: 10.0.2.15:1: connection refused (ECONNREFUSED)\n",
    ]);
    const far = await netisle(["connect", "192.168.99.1:80"], { env });
    assert.deepEqual([far.code, far.err], [
      1,
      "netisle connect: 192.168.99.1:80: no route to host (EHOSTUNREACH)\n",
    ]);
    const token = await netisle(["connect", "10.0.2.15:7"], {
      env: { ...env, NETISLE_TOKEN: "wrong" },
    });
    assert.deepEqual([token.code, token.err], [
      2,
      `netisle connect: wrong token for session "${s.id}"\n`,
    ]);
    const none = await netisle(["connect", "10.0.2.15:7"], {
      env: { NETISLE_SERVER: "http://127.0.0.1:1" },
    });
    assert.equal(none.code, 2);
    assert.match(none.err, /^netisle connect: which session\?/);
  });

  it("connect --udp: one datagram per line with --lines, the answers on output", async () => {
    const r = await netisle(["connect", "--udp", "--lines", "--wait", "0.5", "10.0.2.15:7"], {
      env,
      input: "first\nsecond\r\nthird",
    });
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(r.out.split("\n").filter(Boolean).sort(), ["first", "second", "third"]);
    const refused = await netisle(["connect", "--udp", "10.0.2.15:5"], { env, input: "x" });
    assert.deepEqual([refused.code, refused.err], [
      1,
      "netisle connect: 10.0.2.15:5: connection refused (ECONNREFUSED)\n",
    ]);
  });

  it("forward: -L, -U and -R carry connections and datagrams, one log line per connection", async () => {
    // A local service for -R: it greets and ends. The session's dial-back service
    // (10.0.2.15:9) connects to the stack's port, says hello and echoes until our FIN.
    const local: Server = createServer((c) => {
      c.on("data", () => {});
      c.end("from the user's side\n");
    });
    await new Promise<void>((r) => local.listen(0, "127.0.0.1", () => r()));
    const localPort = (local.address() as { port: number }).port;
    const fwd = new Proc(DENO, [
      "run",
      "-A",
      "tunnel/cli.ts",
      "forward",
      "-L",
      "0:10.0.2.15:7",
      "-U",
      "0:10.0.2.15:7",
      "-R",
      `8100:127.0.0.1:${localPort}`,
    ], env);
    try {
      const l = await fwd.waitFor(/forwarding -L 127\.0\.0\.1:(\d+) -> 10\.0\.2\.15:7/);
      const u = await fwd.waitFor(/forwarding -U 127\.0\.0\.1:(\d+) -> 10\.0\.2\.15:7/);
      await fwd.waitFor(/forwarding -R 10\.0\.2\.2:8100 -> 127\.0\.0\.1:\d+/);
      // -L: a TCP echo through the session, half-closed by the client.
      const echoed = await new Promise<string>((resolve, reject) => {
        const c = tcpConnect(Number(l[1]), "127.0.0.1", () => c.end("through -L\n"));
        let got = "";
        c.on("data", (d) => got += d);
        c.on("end", () => resolve(got));
        c.on("error", reject);
      });
      assert.equal(echoed, "through -L\n");
      await fwd.waitFor(
        /-L 127\.0\.0\.1:\d+ -> 10\.0\.2\.15:7: 127\.0\.0\.1:\d+: closed after [\d.]+ s, 11 B into the session, 11 B out/,
      );
      // -U: a datagram and its answer.
      const sock = createSocket("udp4");
      const answer = await new Promise<string>((resolve) => {
        sock.on("message", (m) => resolve(String(m)));
        sock.send("through -U", Number(u[1]), "127.0.0.1");
      });
      sock.close();
      assert.equal(answer, "through -U");
      // -R: the tunnelled machine connects to the stack's 8100, which reaches the local echo.
      const dial = await netisle(["connect", "10.0.2.15:9"], { env, input: "8100\n" });
      assert.equal(dial.out, "dialed\n", dial.err);
      await fwd.waitFor(
        /-R 10\.0\.2\.2:8100 -> 127\.0\.0\.1:\d+: 10\.0\.2\.15:\d+: closed after [\d.]+ s, 21 B into the session, \d+ B out/,
      );
    } finally {
      await fwd.stop();
      local.close();
    }
    assert.match(fwd.output, /stopped: \d+ done, \d+ failed/);
  });
});
