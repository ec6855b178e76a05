/**
 * End-to-end test of the Linux TAP frame port (tunnel/ports/tap*.ts) under
 * Deno and Bun. Needs root (network namespaces, /dev/net/tun): without them
 * the test is skipped with a warning, except when CI=true, where it fails.
 *
 * For each runtime, a fresh network namespace gets a child process
 * (tests/e2e/fixtures/tap_child.ts) that opens `tap0` and plays a peer at
 * 10.0.2.2. The test gives the kernel side 10.0.2.15/24 and checks frames
 * both ways: the kernel's ARP request and ICMP echoes reach the child, the
 * child's replies make `ping` succeed, and the child's own ARP request gets
 * the kernel's ARP reply.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { checkTapPrerequisites } from "../../tunnel/ports/tap_common.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const FIXTURE = fileURLToPath(new URL("./fixtures/tap_child.ts", import.meta.url));
const DENO = `${ROOT}node_modules/.bin/deno`;
const BUN = `${ROOT}node_modules/.bin/bun`;
const PING = "/usr/bin/ping";
const IN_CI = process.env.CI === "true";

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion. */
function run(cmd: string, args: string[], timeoutMs = 20_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function mustRun(cmd: string, args: string[]): Promise<string> {
  const result = await run(cmd, args);
  if (result.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} exited ${result.code}: ${result.stderr.trim()}`);
  }
  return result.stdout;
}

/** Why this machine cannot run the test, or undefined when it can. */
async function missingPrerequisite(): Promise<string | undefined> {
  const tap = checkTapPrerequisites();
  if (!tap.ok) return tap.reason;
  if (!existsSync(PING)) return `${PING} is missing (install iputils-ping)`;
  try {
    const ip = await run("ip", ["-V"]);
    if (ip.code !== 0) return "`ip -V` failed (install iproute2)";
  } catch {
    return "the ip command is missing (install iproute2)";
  }
  return undefined;
}

type Event = Record<string, unknown> & { event: string };

/** The child script, with its JSON-line events. */
class Child {
  readonly proc: ChildProcess;
  readonly events: Event[] = [];
  stderr = "";
  #partial = "";
  #waiters: (() => void)[] = [];
  exited: Promise<number | null>;

  constructor(cmd: string, args: string[]) {
    this.proc = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.proc.stdout!.setEncoding("utf8").on("data", (data: string) => {
      const lines = (this.#partial + data).split("\n");
      this.#partial = lines.pop()!;
      for (const line of lines) {
        if (line.trim() === "") continue;
        try {
          this.events.push(JSON.parse(line));
        } catch {
          this.stderr += `[stdout] ${line}\n`;
        }
      }
      this.#wake();
    });
    this.proc.stderr!.setEncoding("utf8").on("data", (data: string) => (this.stderr += data));
    this.exited = new Promise((resolve) => {
      this.proc.on("close", (code) => {
        this.#wake();
        resolve(code);
      });
      this.proc.on("error", (error) => {
        this.stderr += `spawn failed: ${error.message}\n`;
        this.#wake();
        resolve(null);
      });
    });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  command(line: string): void {
    this.proc.stdin!.write(`${line}\n`);
  }

  /** Waits for the first event matching `match`, looking only at events from index `since` on. */
  async waitFor(
    what: string,
    match: (e: Event) => boolean,
    { timeoutMs = 10_000, since = 0 } = {},
  ): Promise<Event> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const found = this.events.slice(since).find(match);
      if (found) return found;
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
        throw new Error(`child exited before ${what}; stderr:\n${this.stderr}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `timed out waiting for ${what}; events: ${
            JSON.stringify(this.events)
          }; stderr:\n${this.stderr}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async kill(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill("SIGKILL");
    }
    await this.exited;
  }
}

/**
 * The full exchange in a fresh namespace, with the child run by `runtime`;
 * `borrowed`: the child's sink borrows the port's read buffer, and a burst of
 * echoes checks that the frames of one batch (read one after the other into
 * that buffer) each keep their own bytes.
 */
async function exerciseTap(runtimeCmd: string[], borrowed = false): Promise<void> {
  const ns = `nisle-tap-${Math.random().toString(16).slice(2, 10)}`;
  await mustRun("ip", ["netns", "add", ns]);
  let child: Child | undefined;
  try {
    const mode = borrowed ? ["borrowed"] : [];
    child = new Child("ip", ["netns", "exec", ns, ...runtimeCmd, FIXTURE, "tap0", ...mode]);
    const ready = await child.waitFor("ready", (e) => e.event === "ready", {
      timeoutMs: 30_000,
    });
    assert.equal(ready.name, "tap:tap0");
    assert.equal(ready.maxFrameLen, 1514);

    // The port brought the link up with MTU 1500; give the kernel side an address.
    await mustRun("ip", ["-n", ns, "addr", "add", "10.0.2.15/24", "dev", "tap0"]);
    const [link] = JSON.parse(await mustRun("ip", ["-n", ns, "-j", "link", "show", "tap0"]));
    assert.ok(link.flags.includes("UP"), `tap0 is not up: ${JSON.stringify(link.flags)}`);
    assert.equal(link.mtu, 1500);
    const kernelMac: string = link.address;

    // Kernel -> port: ping makes the kernel ARP for 10.0.2.2, then send echoes;
    // port -> kernel: the child's ARP and echo replies make ping succeed.
    const ping = await run("ip", [
      "netns",
      "exec",
      ns,
      PING,
      "-n",
      "-c",
      "3",
      "-i",
      "0.2",
      "-W",
      "2",
      "10.0.2.2",
    ]);
    assert.equal(ping.code, 0, `ping failed:\n${ping.stdout}${ping.stderr}\n${child.stderr}`);
    assert.match(ping.stdout, /3 packets transmitted, 3 received/);
    const arpRequest = await child.waitFor(
      "the kernel's ARP request",
      (e) => e.event === "arp-request",
    );
    assert.equal(arpRequest.senderIp, "10.0.2.15");
    assert.equal(arpRequest.targetIp, "10.0.2.2");
    assert.equal(arpRequest.senderMac, kernelMac);
    await child.waitFor("an ICMP echo", (e) => e.event === "icmp-echo" && e.from === "10.0.2.15");

    if (borrowed) {
      // 50 echoes of 1000 bytes sent back to back (preload): the port reads several per
      // batch, each into its own place of the buffer. ping checks every reply's sequence
      // number and data, so a frame that showed another's bytes fails it.
      const burst = await run("ip", [
        ...["netns", "exec", ns, PING, "-n", "-q", "-l", "50", "-c", "50", "-s", "1000"],
        ...["-W", "5", "10.0.2.2"],
      ]);
      assert.equal(burst.code, 0, `ping burst failed:\n${burst.stdout}${burst.stderr}`);
      assert.match(burst.stdout, /50 packets transmitted, 50 received, 0% packet loss/);
      assert.doesNotMatch(burst.stdout + burst.stderr, /duplicates|wrong data/);
      const mark = child.events.length;
      child.command("stats");
      const stats = await child.waitFor("stats", (e) => e.event === "stats", { since: mark });
      assert.ok(
        (stats.largestBatch as number) > 1,
        `no batch held two frames (largest ${stats.largestBatch}): the burst tested nothing`,
      );
    }

    // Port -> kernel -> port: "who has 10.0.2.15, tell 10.0.2.2" gets a reply.
    const mark = child.events.length;
    child.command("arp");
    const arpReply = await child.waitFor("the kernel's ARP reply", (e) => e.event === "arp-reply", {
      since: mark,
    });
    assert.equal(arpReply.senderIp, "10.0.2.15");
    assert.equal(arpReply.senderMac, kernelMac);
    assert.equal(arpReply.targetIp, "10.0.2.2");

    // Errors: a second open of tap0 is refused, a missing device with create: false too.
    child.command("errors");
    const errors = await child.waitFor("error probes", (e) => e.event === "errors");
    assert.match(String(errors.busy), /^TUNSETIFF on tap0 failed: EBUSY/);
    assert.match(String(errors.missing), /TAP interface nisle-none does not exist/);
    assert.match(String(errors.invalid), /invalid interface name/);

    child.command("close");
    const closed = await child.waitFor("close", (e) => e.event === "closed");
    const stats = closed.stats as Record<string, number>;
    assert.ok(stats.rxFrames >= 5, `rxFrames ${stats.rxFrames}`);
    assert.ok(stats.txFrames >= 5, `txFrames ${stats.txFrames}`);
    assert.equal(stats.txErrors, 0);
    assert.equal(stats.rxErrors, 0);
    assert.equal(await child.exited, 0, `child exit status; stderr:\n${child.stderr}`);

    // Not persistent: the interface is gone with the port.
    const after = await run("ip", ["-n", ns, "link", "show", "tap0"]);
    assert.notEqual(after.code, 0, "tap0 still exists after close");
  } finally {
    await child?.kill();
    await run("ip", ["netns", "del", ns]);
  }
}

const missing = await missingPrerequisite();
if (missing && !IN_CI) {
  console.warn(
    `\n*** SKIPPING tests/e2e/tap_port_test.ts: ${missing}. ` +
      `It needs root, /dev/net/tun, ip and ping. Set CI=true to make this a failure. ***\n`,
  );
}

describe("TAP frame port (e2e, network namespace)", () => {
  if (missing && IN_CI) {
    it("has its prerequisites", () => {
      assert.fail(`CI=true but the TAP e2e test cannot run: ${missing}`);
    });
    return;
  }

  it("moves frames both ways under Deno", { skip: missing }, async () => {
    await exerciseTap([DENO, "run", "-A", "--quiet"]);
  });

  it("moves frames both ways under Deno, the sink borrowing the read buffer", {
    skip: missing,
  }, async () => {
    await exerciseTap([DENO, "run", "-A", "--quiet"], true);
  });

  const bunMissing = existsSync(BUN) ? undefined : `${BUN} is missing (npm install)`;
  if (bunMissing && !missing && !IN_CI) {
    console.warn(`*** SKIPPING the Bun TAP test: ${bunMissing}`);
  }
  it(
    "moves frames both ways under Bun",
    { skip: missing ?? (IN_CI ? undefined : bunMissing) },
    async () => {
      await exerciseTap([BUN]);
    },
  );
  it(
    "moves frames both ways under Bun, the sink borrowing the read buffer",
    { skip: missing ?? (IN_CI ? undefined : bunMissing) },
    async () => {
      await exerciseTap([BUN], true);
    },
  );
});
