/**
 * The server the SDK tests talk to, as a script (so that Node, Bun, Deno and
 * Chromium clients can all reach it): the netisle app on 127.0.0.1 (an
 * ephemeral port), one session whose tunnel is wired to a second stack at
 * 10.0.2.15 — the "tunnelled machine" — running small services:
 *
 * - TCP 7: echo until the client's FIN, then FIN (RFC 862);
 * - TCP 9: dial-back: reads a port number and a newline, connects to the
 *   stack (10.0.2.2) on that port, says `hello from 10.0.2.15\n`, echoes
 *   what comes back until FIN; answers the first client `dialed\n`;
 * - TCP 19: chargen, bytes without end (RFC 864), for backpressure;
 * - UDP 7: echo.
 *
 * Prints `SDKSERVER {"server":…,"id":…,"token":…}` once ready.
 * `NETISLE_CORS_ORIGINS` works as for the real servers.
 *
 *   node_modules/deno/deno run -A tests/_sdk_server.ts
 *
 * @module
 */

import process from "node:process";
import { serveDeno } from "../src/http/serve_deno.ts";
import { parseCorsOrigins } from "../src/http/cors.ts";
import { Session, SessionRegistry, SystemClock } from "../src/session/mod.ts";
import { TcpServer, TcpSocket, UdpSocket } from "../src/socket/mod.ts";
import { parseIpv4Address, parseMacAddress } from "../src/wire/mod.ts";
import { wireTo } from "./_abuse_server.ts";
import { DENO, Proc } from "./e2e/harness.ts";

/** Starts this script in a child process; resolves with its server URL and session. */
export async function startSdkServer(
  env: Record<string, string> = {},
): Promise<{ proc: Proc; server: string; id: string; token: string }> {
  const proc = new Proc(DENO, ["run", "-A", "tests/_sdk_server.ts"], env);
  const m = await proc.waitFor(/SDKSERVER (\{.*\})/);
  return { proc, ...JSON.parse(m[1]) };
}

/** Runs the peer's services on `peer` (a stack at 10.0.2.15). */
export function startPeerServices(peer: Session): void {
  TcpServer.listen(peer, { port: 7 }).serve(async (s) => {
    try {
      for (;;) {
        const c = await s.receive(65536);
        if (c === null) break;
        await s.write(c);
      }
      s.shutdown("write");
    } catch {
      // reset: nothing to answer
    }
  });

  TcpServer.listen(peer, { port: 9 }).serve(async (s) => {
    try {
      let line = "";
      while (!line.includes("\n")) {
        const c = await s.receive(100);
        if (c === null) return;
        line += new TextDecoder().decode(c);
      }
      const port = Number(line.trim());
      const back = await TcpSocket.connect(peer, { address: "10.0.2.2", port, timeoutMs: 10_000 });
      await back.write(new TextEncoder().encode("hello from 10.0.2.15\n"));
      await s.write(new TextEncoder().encode("dialed\n"));
      s.shutdown("write");
      for (;;) {
        const c = await back.receive(65536);
        if (c === null) break;
        await back.write(c);
      }
      back.shutdown("write");
    } catch {
      s.abort(); // the dial-back failed: tell the client
    }
  });

  TcpServer.listen(peer, { port: 19 }).serve(async (s) => {
    const chunk = new Uint8Array(16384).fill(0x43);
    try {
      for (;;) await s.write(chunk);
    } catch {
      // the client went away
    }
  });

  const udp = UdpSocket.bind(peer, { port: 7 });
  (async () => {
    for (;;) {
      const d = await udp.receive();
      udp.send(d.data, { address: d.address, port: d.port });
    }
  })().catch(() => {});
}

/** Starts the app, creates a session wired to a peer at 10.0.2.15, and prints them. */
async function main(): Promise<void> {
  const cors = process.env.NETISLE_CORS_ORIGINS;
  const corsOrigins = cors ? parseCorsOrigins(cors) : undefined;
  if (typeof corsOrigins === "string") throw new Error(corsOrigins);
  const registry = new SessionRegistry({ clock: new SystemClock() });
  const base = await new Promise<string>((resolve) => {
    serveDeno({
      registry,
      hostname: "127.0.0.1",
      port: Number(process.env.PORT ?? 0),
      requestLog: false,
      corsOrigins,
      onListen: resolve,
    });
  });
  const session = registry.create({});
  const peer = new Session({
    id: "peer",
    token: "peer",
    clock: new SystemClock(),
    stack: {
      mac: parseMacAddress("52:54:00:12:34:56"),
      ipv4: { address: parseIpv4Address("10.0.2.15"), prefixLength: 24 },
      mtu: 1500,
    },
  });
  session.attachTunnel(wireTo(peer));
  peer.attachTunnel(wireTo(session));
  startPeerServices(peer);
  console.log(
    `SDKSERVER ${JSON.stringify({ server: base, id: session.id, token: session.token })}`,
  );
}

if (import.meta.main) await main();
