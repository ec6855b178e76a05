/**
 * `netisle forward`: port forwards into and out of a session, any number at
 * once, in ssh's syntax.
 *
 *   netisle forward -L 8080:10.0.2.15:80 -R 8000:127.0.0.1:8000 -U 5353:10.0.2.15:53
 *
 * @module
 */

import process from "node:process";
import {
  CliError,
  openTargetSession,
  parseCommand,
  resolveTarget,
  SESSION_HELP,
  SESSION_OPTIONS,
} from "./cli_common.ts";
import { type ForwardSpec, parseForwardSpec } from "./forward_spec.ts";
import { ForwardReporter, ForwardStats } from "./forward_stats.ts";
import { type RunningForward, startLocalTcp, startRemoteTcp } from "./tcp_forward.ts";
import { startLocalUdp, startRemoteUdp } from "./udp_forward.ts";

/** The help of `netisle forward`. */
export const FORWARD_HELP =
  `netisle forward: port forwards into and out of a session, like ssh -L/-R

Usage:
  netisle forward [-L SPEC]... [-R SPEC]... [-U SPEC]... [options]

  -L [BIND:]PORT:HOST:PORT   listen on BIND:PORT here (default 127.0.0.1; * for all
                             addresses; PORT 0 picks one); each connection becomes a
                             connection from the session's stack to HOST:PORT, an
                             address on the session's network (e.g. 10.0.2.15:80)
  -R PORT:HOST:PORT          listen on the stack's PORT (the tunnelled machine
                             connects to 10.0.2.2:PORT); each connection is carried to
                             HOST:PORT from this machine (e.g. 127.0.0.1:8000)
  -U [BIND:]PORT:HOST:PORT   -L for UDP: datagrams from each local client go to
                             HOST:PORT in the session, the answers come back
  SPEC/udp                   UDP for -L and -R: -R 5353:127.0.0.1:53/udp

  netisle forward -L 8080:10.0.2.15:80          # curl http://127.0.0.1:8080/
  netisle forward -R 8000:127.0.0.1:8000        # the tunnelled machine: curl 10.0.2.2:8000
  netisle forward -U 5353:10.0.2.15:53          # dig -p 5353 @127.0.0.1 example.test

Each connection has its own WebSocket to the server: when one drops, its
connection is reset on both sides and new connections work as before; the
remote listeners retry with backoff while the server is unreachable. On a
terminal one status line shows connections open and bytes each way; elsewhere
each connection ends with one log line. Stops on SIGINT or SIGTERM (exit 0).

Options:
  --udp-idle SECONDS    a UDP flow without traffic this long ends (default 60)
${SESSION_HELP}`;

const OPTIONS = {
  ...SESSION_OPTIONS,
  local: { type: "string", short: "L", multiple: true },
  remote: { type: "string", short: "R", multiple: true },
  udp: { type: "string", short: "U", multiple: true },
  "udp-idle": { type: "string" },
} as const;

/**
 * Runs `netisle forward` with `argv`; resolves to the exit status.
 *
 * @example
 * ```ts
 * process.exit(await forwardCommand(["-L", "8080:10.0.2.15:80"]));
 * ```
 */
export async function forwardCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, OPTIONS, false);
  if (values.help) {
    console.log(FORWARD_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new CliError(`unexpected "${positionals.join(" ")}"`);
  const specs: ForwardSpec[] = [];
  try {
    for (const s of values.local ?? []) specs.push(parseForwardSpec("local", s));
    for (const s of values.remote ?? []) specs.push(parseForwardSpec("remote", s));
    for (const s of values.udp ?? []) specs.push(parseForwardSpec("local", s, "udp"));
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  if (specs.length === 0) {
    throw new CliError("no forward: give -L, -R or -U (netisle forward --help)");
  }
  let idleMs = 60_000;
  if (values["udp-idle"] !== undefined) {
    const v = Number(values["udp-idle"]);
    if (!(v > 0 && v <= 86400)) {
      throw new CliError(`--udp-idle must be seconds in (0, 86400], got "${values["udp-idle"]}"`);
    }
    idleMs = v * 1000;
  }
  const session = await openTargetSession(resolveTarget(values));
  const stats = new ForwardStats();
  const running: RunningForward[] = [];
  const reporter = new ForwardReporter({
    stats,
    tty: process.stdout.isTTY === true,
    write: (text) => process.stdout.write(text),
    describe: () => running.map((r) => r.label).join(", "),
  });
  const ctx = { session, stats, log: reporter };
  try {
    for (const spec of specs) {
      const start = spec.protocol === "tcp"
        ? (spec.kind === "local" ? startLocalTcp : startRemoteTcp)
        : (spec.kind === "local" ? startLocalUdp : startRemoteUdp);
      const r = await start(ctx, spec, { idleMs });
      running.push(r);
      reporter.line(`forwarding ${r.label} (session ${session.id})`);
    }
  } catch (err) {
    for (const r of running) await r.close().catch(() => {});
    throw err;
  }
  reporter.start();
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  reporter.stop();
  for (const r of running) await r.close().catch(() => {});
  reporter.line(
    `stopped: ${stats.done} done, ${stats.failed} failed, ${stats.bytesIn} bytes into the session, ` +
      `${stats.bytesOut} out`,
  );
  return 0;
}
