/**
 * `netisle`: the command line of netisle, one program with subcommands.
 *
 *   netisle tunnel   attach a TAP device or a QEMU VM to a session (also: no subcommand)
 *   netisle connect  standard input and output as one connection inside a session
 *   netisle forward  port forwards into (-L, -U) and out of (-R) a session
 *   netisle sessions create, show, delete sessions; list their sockets
 *
 * Runs from a checkout with `deno task netisle …`, `npm run netisle -- …`,
 * `bun tunnel/cli.ts …`, or the package's `bin` (tunnel/netisle.mjs).
 *
 * @module
 */

import process from "node:process";
import { CliError } from "./cli_common.ts";
import { connectCommand } from "./connect_command.ts";
import { forwardCommand } from "./forward_command.ts";
import { sessionsCommand } from "./sessions_command.ts";
import { joinOptionValues, TUNNEL_HELP, tunnelCommand } from "./tunnel_command.ts";

export { joinOptionValues };

const HELP = `netisle: a user-space network for edge runtimes, from the command line

Usage: netisle COMMAND [options]      (netisle COMMAND --help for each)

Commands:
  tunnel     attach a Linux TAP device or a QEMU VM to a session
  connect    standard input and output as one TCP (or UDP) flow inside a session:
               ssh -o ProxyCommand='netisle connect %h:%p' root@10.0.2.15
  forward    port forwards, any number at once, like ssh:
               -L [BIND:]PORT:HOST:PORT   a local port to HOST:PORT in the session
               -R PORT:HOST:PORT          the stack's PORT (10.0.2.2) to HOST:PORT here
               -U [BIND:]PORT:HOST:PORT   -L for UDP (and -R PORT:HOST:PORT/udp)
  sessions   create, show and delete sessions; list their sockets

The session comes from --session/--token, a --session-file written by
\`netisle sessions create\`, or NETISLE_SERVER, NETISLE_SESSION, NETISLE_TOKEN.

Without a command, netisle runs \`tunnel\` (the netisle-tunnel of earlier
releases), whose options follow.

${TUNNEL_HELP}`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  tunnel: tunnelCommand,
  connect: connectCommand,
  forward: forwardCommand,
  sessions: sessionsCommand,
};

/** Runs `netisle` with `argv` (without the runtime and script); resolves to the exit status. */
export async function main(argv: string[]): Promise<number> {
  // `deno task tunnel -- --flag` passes the separator through.
  if (argv[0] === "--") argv = argv.slice(1);
  const [first, ...rest] = argv;
  if (first === "help" || ((first === "--help" || first === "-h") && rest.length === 0)) {
    console.log(HELP);
    return 0;
  }
  const command = first !== undefined ? COMMANDS[first] : undefined;
  if (command === undefined && first !== undefined && !first.startsWith("-")) {
    console.error(`netisle: unknown command "${first}"; try netisle --help`);
    return 2;
  }
  try {
    return command ? await command(rest) : await tunnelCommand(argv);
  } catch (err) {
    if (err instanceof CliError) {
      console.error(`netisle ${command ? first : "tunnel"}: ${err.message}`);
      return err.status;
    }
    throw err;
  }
}

if (import.meta.main) {
  process.exit(await main(process.argv.slice(2)));
}
