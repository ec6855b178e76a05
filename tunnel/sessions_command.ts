/**
 * `netisle sessions`: create, show and delete sessions, and list their
 * sockets, through the client SDK.
 *
 *   netisle sessions create --session-file ~/.netisle.json   # then every command finds it
 *   netisle sessions show | sockets | delete
 *
 * @module
 */

import process from "node:process";
import { joinHostPort, NetisleError } from "../src/client/mod.ts";
import {
  clientFor,
  CliError,
  formatBytes,
  openTargetSession,
  parseCommand,
  resolveTarget,
  SESSION_HELP,
  SESSION_OPTIONS,
  sessionError,
  writeSessionFile,
} from "./cli_common.ts";

/** The help of `netisle sessions`. */
export const SESSIONS_HELP = `netisle sessions: create, show and delete sessions

Usage:
  netisle sessions create [--session-file PATH] [--mtu N] [--no-dhcp] [--json]
  netisle sessions show [--json]        addressing, tunnel, counters, DHCP leases
  netisle sessions sockets [--json]     the session's sockets and control blocks
  netisle sessions delete               the session, its sockets and its tunnel

create prints the session's id and token and the lines that export them
(NETISLE_SERVER, NETISLE_SESSION, NETISLE_TOKEN); with --session-file it also
writes them to PATH (mode 600) for --session-file or NETISLE_SESSION_FILE.

Options:
  --admin-token TOKEN   create: the server's admin token (default $NETISLE_ADMIN_TOKEN)
  --mtu N               create: the session's MTU (576..65535, default 1500)
  --no-dhcp             create: no DHCP server in the session
  --json                print the server's JSON answer
${SESSION_HELP}`;

const OPTIONS = {
  ...SESSION_OPTIONS,
  mtu: { type: "string" },
  "no-dhcp": { type: "boolean", default: false },
  json: { type: "boolean", default: false },
} as const;

/**
 * Runs `netisle sessions` with `argv`; resolves to the exit status.
 *
 * @example
 * ```ts
 * process.exit(await sessionsCommand(["create", "--session-file", ".netisle.json"]));
 * ```
 */
export async function sessionsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, OPTIONS, true);
  if (values.help || positionals.length === 0) {
    console.log(SESSIONS_HELP);
    return values.help ? 0 : 2;
  }
  if (positionals.length > 1) throw new CliError(`one action, not "${positionals.join(" ")}"`);
  const action = positionals[0];
  // create writes the session file: the server then comes from the flag or the environment.
  const target = resolveTarget(
    action === "create" ? { ...values, "session-file": undefined } : values,
    action === "create" ? { ...process.env, NETISLE_SESSION_FILE: undefined } : process.env,
  );
  const print = (v: unknown) => console.log(JSON.stringify(v, null, 2));
  switch (action) {
    case "create": {
      let mtu: number | undefined;
      if (values.mtu !== undefined) {
        mtu = Number(values.mtu);
        if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535) {
          throw new CliError(`--mtu must be an integer in 576..65535, got "${values.mtu}"`);
        }
      }
      const client = clientFor(
        target.server,
        values["admin-token"] ?? process.env.NETISLE_ADMIN_TOKEN,
      );
      let created;
      try {
        created = await client.createSession({
          mtu,
          ...(values["no-dhcp"] ? { dhcp: false } : {}),
        });
      } catch (err) {
        if (err instanceof NetisleError && err.code === "EUNAUTHORIZED") {
          throw new CliError(`the server needs an admin token (--admin-token): ${err.message}`);
        }
        throw sessionError(err, target);
      }
      const file = values["session-file"];
      if (file) {
        writeSessionFile(file, { server: target.server, id: created.id, token: created.token });
      }
      if (values.json) {
        print(created.created);
        return 0;
      }
      const c = created.created;
      console.log(`session ${c.id} token ${c.token}`);
      console.log(
        `stack at ${c.ipv4.address}/${c.ipv4.prefixLength}, mac ${c.mac}, mtu ${c.mtu}; ` +
          `tunnel ${c.tunnel.url}`,
      );
      if (file) console.log(`written to ${file}: use --session-file ${file}`);
      console.log(
        `export NETISLE_SERVER=${target.server} NETISLE_SESSION=${c.id} NETISLE_TOKEN=${c.token}`,
      );
      return 0;
    }
    case "show": {
      const session = await openTargetSession(target);
      const v = await session.info().catch((err) => {
        throw sessionError(err, target);
      });
      if (values.json) {
        print(v);
        return 0;
      }
      const t = v.tunnel;
      console.log(`session ${v.id} on ${target.server}`);
      console.log(
        `  stack     ${v.ipv4.address}/${v.ipv4.prefixLength}, mac ${v.mac}, mtu ${v.mtu}`,
      );
      console.log(
        `  tunnel    ${
          t.attached ? `attached (${t.kind})` : "not attached"
        }, ${t.attaches} attach(es)`,
      );
      const c = v.counters;
      console.log(
        `  frames    in ${c.rxFrames} (${formatBytes(c.rxBytes)}), out ${c.txFrames} ` +
          `(${formatBytes(c.txBytes)})`,
      );
      for (const l of v.dhcp?.leases ?? []) {
        console.log(
          `  lease     ${l.address} ${l.mac} ${l.state}${l.hostname ? ` ${l.hostname}` : ""}`,
        );
      }
      for (const a of v.arp) console.log(`  arp       ${a.address} ${a.mac ?? "?"} ${a.state}`);
      return 0;
    }
    case "sockets": {
      const session = await openTargetSession(target);
      const list = await session.sockets().catch((err) => {
        throw sessionError(err, target);
      });
      if (values.json) {
        print(list);
        return 0;
      }
      const ep = (e: { address: string; port: number } | null) =>
        e ? joinHostPort(e.address, e.port) : "-";
      console.log(
        "id                   proto state       local               remote              queued",
      );
      for (const s of list.sockets) {
        console.log(
          `${s.id.padEnd(20)} ${s.protocol.padEnd(5)} ${(s.tcpState ?? s.state).padEnd(11)} ` +
            `${ep(s.local).padEnd(19)} ${ep(s.remote).padEnd(19)} ` +
            `${s.sendQueued}/${s.recvQueued}${s.streaming ? " streaming" : ""}`,
        );
      }
      const p = list.pcbs;
      console.log(
        `${list.sockets.length} socket(s); control blocks: ${p.active} active, ${p.listen} listen, ` +
          `${p.timeWait} time-wait, ${p.bound} bound, ${p.udp} udp`,
      );
      return 0;
    }
    case "delete": {
      const session = await openTargetSession(target);
      await session.delete().catch((err) => {
        throw sessionError(err, target);
      });
      console.log(`session ${session.id} deleted`);
      return 0;
    }
    default:
      throw new CliError(`unknown action "${action}": create, show, sockets or delete`);
  }
}
