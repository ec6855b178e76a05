/**
 * Helpers for end-to-end tests: root checks that skip loudly (or fail under
 * CI), network namespaces that are always deleted, and child processes whose
 * output a test can wait on.
 *
 * @module
 */

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import process from "node:process";

/** The repository root. */
export const ROOT: string = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
/** The Deno binary the npm package installed. */
export const DENO: string = `${ROOT}/node_modules/deno/deno`;
/** The Bun binary the npm package installed. */
export const BUN: string = `${ROOT}/node_modules/.bin/bun`;

/**
 * Why end-to-end tests cannot run here, or undefined when they can. Under
 * `CI=true` a reason is fatal: the tests must run in CI.
 */
export function e2eSkipReason(): string | undefined {
  let reason: string | undefined;
  if (process.getuid?.() !== 0) reason = "needs root (network namespaces and TAP devices)";
  else if (!existsSync("/dev/net/tun")) reason = "needs /dev/net/tun";
  else if (!commandExists("ip")) reason = "needs iproute2 (`ip`)";
  if (reason && process.env.CI === "true") {
    throw new Error(`end-to-end tests must run in CI but cannot: ${reason}`);
  }
  if (reason) console.warn(`\n*** SKIPPING end-to-end tests: ${reason} ***\n`);
  return reason;
}

/** Whether `name` is an executable on PATH. */
export function commandExists(name: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Runs a command to completion and returns its stdout; throws with stderr on failure. */
export function sh(
  cmd: string,
  args: string[],
  options: { timeoutMs?: number; input?: string } = {},
): string {
  try {
    return execFileSync(cmd, args, {
      encoding: "utf8",
      timeout: options.timeoutMs ?? 30_000,
      input: options.input,
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(
      `command failed: ${cmd} ${args.join(" ")}\n${e.stdout ?? ""}${e.stderr ?? ""}${e.message}`,
    );
  }
}

/** A network namespace made for one test, deleted by {@linkcode Netns.delete}. */
export class Netns {
  readonly name: string;

  /** Creates `nisle-<prefix>-<random>` with loopback up. */
  constructor(prefix: string) {
    this.name = `nisle-${prefix}-${Math.random().toString(36).slice(2, 8)}`;
    sh("ip", ["netns", "add", this.name]);
    this.exec("ip", ["link", "set", "lo", "up"]);
  }

  /** Runs a command inside the namespace and returns its stdout. */
  exec(cmd: string, args: string[], options: { timeoutMs?: number; input?: string } = {}): string {
    return sh("ip", ["netns", "exec", this.name, cmd, ...args], options);
  }

  /** Starts a long-running command inside the namespace. */
  spawn(cmd: string, args: string[], env: Record<string, string> = {}): Proc {
    return new Proc("ip", ["netns", "exec", this.name, cmd, ...args], env);
  }

  /**
   * Waits until a socket listens on `port` inside the namespace (TCP, or UDP
   * with `udp`), polling `ss`; throws after `timeoutMs`.
   */
  async waitListening(port: number, udp = false, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.exec("ss", [udp ? "-lunH" : "-ltnH", `sport = :${port}`]).trim() === "") {
      if (Date.now() > deadline) {
        throw new Error(`nothing listens on ${udp ? "UDP" : "TCP"} port ${port} in ${this.name}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Deletes the namespace (idempotent; processes in it should be stopped first). */
  delete(): void {
    try {
      execFileSync("ip", ["netns", "del", this.name], { stdio: "ignore" });
    } catch {
      // Already gone.
    }
  }
}

/** A child process whose stdout and stderr lines a test can wait for. */
export class Proc {
  readonly child: ChildProcess;
  output = "";
  #waiters: Array<() => void> = [];
  #exited = false;

  /** Spawns `cmd` with `args`; output is collected and echoed on failure only. */
  constructor(cmd: string, args: string[], env: Record<string, string> = {}) {
    this.child = spawn(cmd, args, {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: "1", ...env },
      stdio: ["pipe", "pipe", "pipe"],
      // Its own process group, so that stop() also ends what it started
      // (Chromium's renderers, a shell's children).
      detached: true,
    });
    const onData = (chunk: Uint8Array) => {
      this.output += new TextDecoder().decode(chunk);
      for (const w of this.#waiters.splice(0)) w();
    };
    this.child.stdout!.on("data", onData);
    this.child.stderr!.on("data", onData);
    this.child.on("exit", () => {
      this.#exited = true;
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** The current length of the output, to wait only for what comes after it. */
  mark(): number {
    return this.output.length;
  }

  /**
   * Resolves with the first match of `pattern` in the output after offset
   * `from` (see {@linkcode Proc.mark}); rejects on exit or timeout. Only
   * complete lines are searched while the process runs, so a pattern ending
   * in `\S+` never matches half a word that a pipe delivered in two chunks.
   */
  async waitFor(pattern: RegExp, timeoutMs = 30_000, from = 0): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.#exited ? this.output.length : this.output.lastIndexOf("\n") + 1;
      const m = end > from ? this.output.slice(from, end).match(pattern) : null;
      if (m) return m;
      if (this.#exited) {
        throw new Error(`process exited before printing ${pattern}:\n${this.output}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`timed out waiting for ${pattern}; output so far:\n${this.output}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 500));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Writes a line to the process's standard input. */
  send(line: string): void {
    this.child.stdin!.write(line.endsWith("\n") ? line : line + "\n");
  }

  /**
   * Sends SIGTERM to the process's group, then SIGKILL after `graceMs`;
   * resolves when the process and everything it started are gone (bounded:
   * 5 s after the process itself exited).
   */
  async stop(graceMs = 3000): Promise<void> {
    const pid = this.child.pid;
    if (pid === undefined) return;
    if (!this.#exited) {
      const gone = new Promise<void>((r) => this.child.once("exit", () => r()));
      signalGroup(pid, "SIGTERM");
      const t = setTimeout(() => signalGroup(pid, "SIGKILL"), graceMs);
      await gone;
      clearTimeout(t);
    }
    const deadline = Date.now() + 5000;
    while (signalGroup(pid, "SIGKILL") && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Sends `signal` to process group `pgid`; false when no process is left in it. */
function signalGroup(pgid: number, signal: "SIGTERM" | "SIGKILL"): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** A parsed HTTP response printed by `curl -i` (or `curl -D -`). */
export interface HttpResult {
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: string;
}

/** Splits what `curl -i` printed into status, headers and body. */
export function parseCurlOutput(out: string): HttpResult {
  const cut = out.indexOf("\r\n\r\n");
  const head = cut < 0 ? out : out.slice(0, cut);
  const [statusLine, ...lines] = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return {
    status: Number(statusLine.split(" ")[1]),
    headers,
    body: cut < 0 ? "" : out.slice(cut + 4),
  };
}

/**
 * Deno arguments that run the tunnel CLI (tunnel/cli.ts) for `session` on TAP
 * device tap0 against `server`, with `extra` flags appended.
 */
export function tunnelCliArgs(
  session: { id: string; token: string },
  server = "http://127.0.0.1:8787",
  extra: string[] = [],
): string[] {
  return [
    "run",
    "-A",
    "tunnel/cli.ts",
    "--server",
    server,
    "--session",
    session.id,
    "--token",
    session.token,
    "--tap",
    "tap0",
    ...extra,
  ];
}

/**
 * Starts the README's server (examples/deno/server.ts on 127.0.0.1:8787) in
 * `ns` and the tunnel CLI with `--create` on tap0, waits for the tunnel, and
 * gives the kernel side 10.0.2.15/24. Both processes are pushed on `procs`
 * (stop them in reverse). Returns the CLI's process and the session it made.
 */
export async function startServerAndTunnel(
  ns: Netns,
  procs: Proc[],
): Promise<{ server: Proc; tunnel: Proc; id: string; token: string; mac: string }> {
  const server = ns.spawn(DENO, ["run", "-A", "examples/deno/server.ts"], { PORT: "8787" });
  procs.push(server);
  await server.waitFor(/listening on http:\/\/127\.0\.0\.1:8787/);
  const tunnel = ns.spawn(DENO, [
    "run",
    "-A",
    "tunnel/cli.ts",
    "--server",
    "http://127.0.0.1:8787",
    "--create",
    "--tap",
    "tap0",
  ]);
  procs.push(tunnel);
  const [, id, token] = await tunnel.waitFor(/session (s_\S+) token (\S+)/);
  const mac = (await tunnel.waitFor(/mac ([0-9a-f:]{17})/))[1];
  await tunnel.waitFor(/tunnel open/);
  ns.exec("ip", ["addr", "add", "10.0.2.15/24", "dev", "tap0"]);
  ns.exec("ip", ["link", "set", "tap0", "up"]);
  return { server, tunnel, id, token, mac };
}
