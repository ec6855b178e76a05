/**
 * What the `netisle` subcommands share: option parsing (values may start
 * with "-"), the session a command works on (flags, a `--session-file`
 * written by `netisle sessions create`, or `NETISLE_SERVER`,
 * `NETISLE_SESSION`, `NETISLE_TOKEN`), the SDK client for it with the `ws`
 * WebSocket, and errors that exit with a status.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { NetisleClient, NetisleError, type NetisleSession } from "../src/client/mod.ts";
import type { WebSocketConstructor } from "../src/client/mod.ts";
import { TunnelWebSocket } from "./ws_client.ts";

/** The server when nothing names one. */
export const DEFAULT_SERVER = "http://127.0.0.1:8787";

/**
 * A usage or setup error: printed as one line, exits with `status` (2 by default).
 *
 * @example
 * ```ts
 * throw new CliError(`--mtu must be an integer, got "${text}"`);
 * ```
 */
export class CliError extends Error {
  /** The exit status. */
  readonly status: number;
  /** Creates an error whose message is the line printed after the command's name. */
  constructor(message: string, status = 2) {
    super(message);
    this.status = status;
  }
}

/** The options every session-bound subcommand takes. */
export const SESSION_OPTIONS = {
  server: { type: "string" },
  session: { type: "string" },
  token: { type: "string" },
  "session-file": { type: "string" },
  "admin-token": { type: "string" },
  help: { type: "boolean", short: "h", default: false },
} as const;

/** Help text of the session options. */
export const SESSION_HELP =
  `Session options (flags win over --session-file, which wins over the environment):
  --server URL          the netisle server (default $NETISLE_SERVER, else ${DEFAULT_SERVER})
  --session ID          the session (default $NETISLE_SESSION)
  --token TOKEN         its token (default $NETISLE_TOKEN)
  --session-file PATH   read server, session and token from PATH, as written by
                        \`netisle sessions create --session-file PATH\`
                        (default $NETISLE_SESSION_FILE)
  -h, --help            show this help`;

/**
 * Rewrites `--name VALUE` as `--name=VALUE` for options that take a value,
 * so that a value starting with "-" (a base64url token may) is not mistaken
 * for an option. Short options (`-L VALUE`) too.
 *
 * @example
 * ```ts
 * joinValues(["--token", "-abc", "-L", "8080:10.0.2.15:80"], new Set(["--token", "-L"]));
 * // ["--token=-abc", "-L8080:10.0.2.15:80"]
 * ```
 */
export function joinValues(argv: string[], takesValue: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      out.push(...argv.slice(i));
      break;
    }
    if (takesValue.has(a) && i + 1 < argv.length) {
      out.push(a.startsWith("--") ? `${a}=${argv[i + 1]}` : `${a}${argv[i + 1]}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/**
 * The flags of `options` that take a value, as they appear on the command line.
 *
 * @example
 * ```ts
 * valueFlags({ token: { type: "string" }, udp: { type: "boolean" } }); // Set {"--token"}
 * ```
 */
export function valueFlags(options: NonNullable<ParseArgsConfig["options"]>): Set<string> {
  const s = new Set<string>();
  for (const [name, o] of Object.entries(options)) {
    if (o.type !== "string") continue;
    s.add(`--${name}`);
    if (o.short) s.add(`-${o.short}`);
  }
  return s;
}

/**
 * Parses `argv` with `options` (strict), or throws a CliError naming the problem.
 *
 * @example
 * ```ts
 * const { values, positionals } = parseCommand(argv, { udp: { type: "boolean" } }, true);
 * ```
 */
export function parseCommand<O extends NonNullable<ParseArgsConfig["options"]>>(
  argv: string[],
  options: O,
  allowPositionals: boolean,
): {
  values: ReturnType<typeof parseArgs<{ options: O; strict: true }>>["values"];
  positionals: string[];
} {
  try {
    const r = parseArgs({
      args: joinValues(argv, valueFlags(options)),
      options,
      strict: true,
      allowPositionals,
    });
    return { values: r.values, positionals: r.positionals };
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

/** What a session-bound command works on. */
export interface SessionTarget {
  /** The server's base URL. */
  server: string;
  /** The session id, when one was named. */
  id: string | undefined;
  /** Its token, when one was given. */
  token: string | undefined;
}

/** The contents of a session file. */
export interface SessionFile {
  server: string;
  id: string;
  token: string;
}

/**
 * Resolves server, session and token: flags, then the session file
 * (`--session-file` or `$NETISLE_SESSION_FILE`), then `$NETISLE_SERVER`,
 * `$NETISLE_SESSION`, `$NETISLE_TOKEN`.
 *
 * @example
 * ```ts
 * resolveTarget({ token: "t" }, { NETISLE_SESSION: "s_…" }); // { server: "http://127.0.0.1:8787", id: "s_…", token: "t" }
 * ```
 */
export function resolveTarget(
  values: { server?: string; session?: string; token?: string; "session-file"?: string },
  env: Record<string, string | undefined> = process.env,
): SessionTarget {
  const path = values["session-file"] ?? env.NETISLE_SESSION_FILE;
  const file = path ? readSessionFile(path) : undefined;
  return {
    server: values.server ?? file?.server ?? env.NETISLE_SERVER ?? DEFAULT_SERVER,
    id: values.session ?? file?.id ?? env.NETISLE_SESSION,
    token: values.token ?? file?.token ?? env.NETISLE_TOKEN,
  };
}

/**
 * Reads a session file (CliError naming the path when it is missing or malformed).
 *
 * @example
 * ```ts
 * const { server, id, token } = readSessionFile(".netisle.json");
 * ```
 */
export function readSessionFile(path: string): SessionFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new CliError(`cannot read the session file "${path}": ${(err as Error).message}`);
  }
  let v: Partial<SessionFile>;
  try {
    v = JSON.parse(text);
  } catch {
    throw new CliError(`the session file "${path}" is not JSON`);
  }
  if (typeof v?.server !== "string" || typeof v.id !== "string" || typeof v.token !== "string") {
    throw new CliError(`the session file "${path}" needs "server", "id" and "token"`);
  }
  return { server: v.server, id: v.id, token: v.token };
}

/**
 * Writes a session file readable by its owner only (it holds the token).
 *
 * @example
 * ```ts
 * writeSessionFile(".netisle.json", { server, id: session.id, token: session.token });
 * ```
 */
export function writeSessionFile(path: string, s: SessionFile): void {
  try {
    writeFileSync(path, JSON.stringify(s, null, 2) + "\n", { mode: 0o600 });
    chmodSync(path, 0o600);
  } catch (err) {
    throw new CliError(`cannot write the session file "${path}": ${(err as Error).message}`);
  }
}

/**
 * An SDK client for `server` with the CLI's own WebSocket client (ws_client.ts: TCP_NODELAY,
 * where Deno's built-in one stalls on Nagle; masking 32 bits at a time; on Deno, Deno's sockets).
 *
 * @example
 * ```ts
 * const session = clientFor("http://127.0.0.1:8787").session(id, token);
 * ```
 */
export function clientFor(server: string, adminToken?: string): NetisleClient {
  try {
    return new NetisleClient({
      server,
      adminToken,
      WebSocket: TunnelWebSocket as unknown as WebSocketConstructor,
    });
  } catch (err) {
    throw new CliError(`--server: ${(err as Error).message}`);
  }
}

/**
 * The session of `target`, checked with the server: a CliError that names
 * the cause when none is named, it does not exist, the token is wrong, or the
 * server does not answer.
 *
 * @example
 * ```ts
 * const session = await openTargetSession(resolveTarget(values));
 * ```
 */
export async function openTargetSession(target: SessionTarget): Promise<NetisleSession> {
  if (!target.id || !target.token) {
    throw new CliError(
      "which session? give --session ID and --token TOKEN, --session-file PATH, or set " +
        "NETISLE_SESSION and NETISLE_TOKEN (netisle sessions create prints them)",
    );
  }
  try {
    return await clientFor(target.server).getSession(target.id, target.token);
  } catch (err) {
    throw sessionError(err, target);
  }
}

/**
 * A CliError for a failure to reach or authenticate a session.
 *
 * @example
 * ```ts
 * await session.info().catch((err) => { throw sessionError(err, target); });
 * ```
 */
export function sessionError(err: unknown, target: SessionTarget): CliError {
  if (!(err instanceof NetisleError)) return new CliError(String((err as Error)?.message ?? err));
  switch (err.code) {
    case "ENOTFOUND":
    case "EINVAL":
      return new CliError(`no such session "${target.id}" on ${target.server}`);
    case "EUNAUTHORIZED":
      return new CliError(`wrong token for session "${target.id}"`);
    case "EUNREACHABLE":
      return new CliError(`server unreachable at ${target.server}: ${err.message}`);
    default:
      return new CliError(`${err.message} (${err.code})`);
  }
}

/**
 * Words for a connection error code, for one-line messages.
 *
 * @example
 * ```ts
 * describeCode("ECONNREFUSED"); // "connection refused"
 * ```
 */
export function describeCode(code: string): string {
  const words: Record<string, string> = {
    ECONNREFUSED: "connection refused",
    ECONNRESET: "connection reset by peer",
    ETIMEDOUT: "connection timed out",
    EHOSTUNREACH: "no route to host",
    ECONNABORTED: "the stream to the server dropped",
    EUNREACHABLE: "the netisle server is unreachable",
    EPIPE: "the connection is closed",
  };
  return words[code] ?? code;
}

/**
 * Formats a byte count: `512 B`, `1.5 kB`, `64.0 MB`.
 *
 * @example
 * ```ts
 * formatBytes(67_108_864); // "67.1 MB"
 * ```
 */
export function formatBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}
