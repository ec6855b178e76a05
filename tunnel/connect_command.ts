/**
 * `netisle connect HOST:PORT`: standard input and output become one TCP
 * connection from the session's stack to HOST:PORT on its network, over the
 * socket stream WebSocket (the client SDK, `netisle.stream.v1`). What ssh
 * wants from a ProxyCommand:
 *
 *   ssh -o ProxyCommand='netisle connect %h:%p' root@10.0.2.15
 *
 * End of input sends FIN (the peer can still answer); the peer's FIN ends
 * output; the command exits once both directions ended (at the peer's FIN
 * when input is a terminal). Refused, reset, timed out: one line on stderr
 * and exit status 1. `--udp` carries datagrams instead: one per read of
 * input (or per line with `--lines`), answers to output.
 *
 * @module
 */

import process from "node:process";
import {
  joinHostPort,
  NetisleError,
  type NetisleSession,
  splitHostPort,
} from "../src/client/mod.ts";
import {
  CliError,
  describeCode,
  openTargetSession,
  parseCommand,
  resolveTarget,
  SESSION_HELP,
  SESSION_OPTIONS,
} from "./cli_common.ts";
import { stdinChunks } from "./stdin_chunks.ts";

/** The help of `netisle connect`. */
export const CONNECT_HELP =
  `netisle connect: standard input and output as one connection inside a session

Usage:
  netisle connect [options] HOST:PORT

  ssh -o ProxyCommand='netisle connect %h:%p' root@10.0.2.15
  scp -o ProxyCommand='netisle connect %h:%p' file root@10.0.2.15:/tmp/
  printf 'GET / HTTP/1.0\\r\\n\\r\\n' | netisle connect 10.0.2.15:80

HOST is an IPv4 address on the session's network (the tunnelled machine, e.g.
10.0.2.15). End of input sends FIN and the peer may still answer; the peer's
FIN ends output; netisle exits when both directions have ended (at the peer's
FIN when input is a terminal). A refused, reset or timed-out connection prints
one line on stderr and exits with status 1; a setup error (no such session,
wrong token, server unreachable) exits with 2.

Options:
  --timeout SECONDS     how long the TCP handshake may take (default 30, at most 60)
  --udp                 a UDP flow instead: each read of input is one datagram,
                        each datagram that comes back is written to output
  --lines               with --udp: one datagram per line of input (without the newline),
                        and a newline after each datagram written out
  --wait SECONDS        with --udp: after the end of input, wait this long for answers
                        (default 2)
${SESSION_HELP}`;

const OPTIONS = {
  ...SESSION_OPTIONS,
  timeout: { type: "string" },
  udp: { type: "boolean", default: false },
  lines: { type: "boolean", default: false },
  wait: { type: "string" },
} as const;

/**
 * Runs `netisle connect` with `argv`; resolves to the exit status.
 *
 * @example
 * ```ts
 * process.exit(await connectCommand(["10.0.2.15:22"]));
 * ```
 */
export async function connectCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, OPTIONS, true);
  if (values.help) {
    console.log(CONNECT_HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new CliError(
      positionals.length === 0
        ? "where to? give HOST:PORT (e.g. 10.0.2.15:22, [fd00::15]:22)"
        : `one HOST:PORT, not "${positionals.join(" ")}"`,
    );
  }
  let peer: { address: string; port: number };
  try {
    peer = splitHostPort(positionals[0]);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const seconds = (flag: string, text: string | undefined, dflt: number, max: number) => {
    if (text === undefined) return dflt;
    const v = Number(text);
    if (!(v > 0 && v <= max)) {
      throw new CliError(`${flag} must be seconds in (0, ${max}], got "${text}"`);
    }
    return v;
  };
  const timeout = seconds("--timeout", values.timeout, 30, 60);
  const wait = seconds("--wait", values.wait, 2, 3600);
  if (values.lines && !values.udp) throw new CliError("--lines goes with --udp");
  const session = await openTargetSession(resolveTarget(values));
  const where = joinHostPort(peer.address, peer.port);
  return values.udp
    ? await udpFlow(session, where, { lines: values.lines, waitMs: wait * 1000 })
    : await tcpFlow(session, where, timeout * 1000);
}

/** Prints the one line of a failed connection; returns its exit status (1). */
function fail(where: string, err: unknown): number {
  if (err instanceof NetisleError) {
    console.error(`netisle connect: ${where}: ${describeCode(err.code)} (${err.code})`);
  } else console.error(`netisle connect: ${where}: ${(err as Error)?.message ?? err}`);
  return 1;
}

/** Resolves (with the error) once standard output failed: its reader went away. */
const outputGone: Promise<unknown> = new Promise((resolve) => {
  process.stdout.once("error", resolve);
});
outputGone.catch(() => {});

/** Writes to standard output, waiting while its buffer is full (or until it fails). */
function writeOut(chunk: Uint8Array): Promise<unknown> | undefined {
  if (process.stdout.write(chunk)) return undefined;
  return Promise.race([
    new Promise<void>((resolve) => process.stdout.once("drain", () => resolve())),
    outputGone,
  ]);
}

/** An error of standard output itself (EPIPE: the reader left): exit quietly. */
function isOutputError(err: unknown): boolean {
  return (err as { code?: string })?.code === "EPIPE" && !(err instanceof NetisleError);
}

async function tcpFlow(session: NetisleSession, where: string, timeoutMs: number): Promise<number> {
  const socket = session.connect(where, { timeoutMs, allowHalfOpen: true });
  try {
    await socket.opened;
  } catch (err) {
    return fail(where, err);
  }
  let failed: unknown;
  const stop = (err: unknown) => {
    failed ??= err;
    void socket.reset();
  };
  outputGone.then(stop);
  // Input to the connection; its end is a FIN.
  const up = (async () => {
    const writer = socket.writable.getWriter();
    try {
      // A chunk is written (copied into its WebSocket message) before the next is read.
      for await (const chunk of stdinChunks()) await writer.write(chunk);
      await writer.close();
    } catch (err) {
      if (!(err instanceof NetisleError && err.code === "EPIPE")) stop(err);
    }
  })();
  // The connection to output, until the peer's FIN.
  const down = (async () => {
    try {
      for await (const chunk of socket.readable) {
        const w = writeOut(chunk);
        if (w) await w;
        if (failed !== undefined) break;
      }
    } catch (err) {
      stop(err);
    }
  })();
  await down;
  if (failed === undefined && !process.stdin.isTTY) {
    await Promise.race([up, socket.closed]).catch(() => {});
  }
  await socket.closed.catch((err) => {
    failed ??= err;
  });
  if (failed !== undefined && isOutputError(failed)) return 1;
  // Let the last write reach the pipe before the process ends.
  await Promise.race([
    new Promise<void>((r) => process.stdout.write(new Uint8Array(0), () => r())),
    outputGone,
  ]);
  if (failed !== undefined) return fail(where, failed);
  return 0;
}

async function udpFlow(
  session: NetisleSession,
  where: string,
  o: { lines: boolean; waitMs: number },
): Promise<number> {
  let failed: unknown;
  let wake = () => {};
  let udp;
  try {
    udp = await session.udp({
      remote: where,
      onError: (err) => {
        failed ??= err;
        wake();
      },
    });
  } catch (err) {
    return fail(where, err);
  }
  let last = Date.now();
  const newline = new Uint8Array([10]);
  const down = (async () => {
    for await (const d of udp) {
      last = Date.now();
      const w = writeOut(d.data);
      if (w) await w;
      if (o.lines && d.data[d.data.length - 1] !== 10) await writeOut(newline);
    }
  })();
  try {
    let pending = new Uint8Array(0);
    for await (const chunk of process.stdin) {
      if (failed !== undefined) break;
      const bytes = chunk as Uint8Array;
      if (!o.lines) {
        await udp.send(bytes);
        continue;
      }
      const all = new Uint8Array(pending.length + bytes.length);
      all.set(pending);
      all.set(bytes, pending.length);
      let start = 0;
      for (let i = 0; i < all.length; i++) {
        if (all[i] !== 10) continue;
        const end = i > start && all[i - 1] === 13 ? i - 1 : i;
        await udp.send(all.subarray(start, end));
        start = i + 1;
      }
      pending = all.slice(start);
    }
    if (o.lines && pending.length > 0 && failed === undefined) await udp.send(pending);
  } catch (err) {
    failed ??= err;
  }
  // The end of input: wait for answers until `waitMs` passes without one.
  while (failed === undefined) {
    const left = last + o.waitMs - Date.now();
    if (left <= 0) break;
    await new Promise<void>((r) => {
      const t = setTimeout(r, Math.min(left, 250));
      wake = () => {
        clearTimeout(t);
        r();
      };
    });
  }
  await udp.close().catch(() => {});
  await down.catch(() => {});
  await Promise.race([
    new Promise<void>((r) => process.stdout.write(new Uint8Array(0), () => r())),
    outputGone,
  ]);
  return failed === undefined ? 0 : fail(where, failed);
}
