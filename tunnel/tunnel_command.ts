/**
 * `netisle tunnel` (and `netisle-tunnel`, the same command without a
 * subcommand): attaches a local frame port (a Linux TAP device, or a socket
 * that QEMU `-netdev stream` / `-netdev dgram` connects to) to a netisle
 * session over a WebSocket.
 *
 *   deno task netisle tunnel --server http://127.0.0.1:8787 --create --tap tap0
 *   deno task tunnel -- --server http://127.0.0.1:8787 --session ID --token TOKEN --tap tap0
 *
 * @module
 */

import { parseArgs } from "node:util";
import process from "node:process";
import { CliError as CommonCliError, DEFAULT_SERVER, readSessionFile } from "./cli_common.ts";
import { TunnelClient, type WebSocketConstructor } from "./client.ts";
import { TunnelWebSocket } from "./ws_client.ts";
import { checkTapPrerequisites, openTap } from "./ports/tap.ts";
import type { FramePort } from "./ports/frame_port.ts";
import { FaultPort, parseFaultSpec, startDisconnects } from "./ports/fault_port.ts";
import { StatusReporter } from "./status_line.ts";
import { listenQemuStream, parseQemuStreamAddress } from "./ports/qemu_stream_port.ts";
import { bindQemuDgram, parseQemuDgramAddress, parseUdpPeer } from "./ports/qemu_dgram_port.ts";

/** The help of `netisle tunnel`. */
export const TUNNEL_HELP = `netisle tunnel: tunnel a local network device into a netisle session

Usage:
  netisle tunnel --server URL (--create | --session ID --token TOKEN) PORT [options]
  where PORT is one of --tap NAME, --qemu-stream ADDRESS, --qemu-dgram udp:HOST:PORT
  (netisle-tunnel, or netisle without a subcommand, is the same command)

Options:
  --server URL          netisle server base URL (default $NETISLE_SERVER, else
                        http://127.0.0.1:8787)
  --create              create a new session and print its id and token
  --admin-token TOKEN   admin token for --create, when the server requires one
                        (default: $NETISLE_ADMIN_TOKEN)
  --session ID          attach to an existing session (default: $NETISLE_SESSION)
  --token TOKEN         the session's token (default: $NETISLE_TOKEN)
  --session-file PATH   server, session and token from PATH, as written by
                        "netisle sessions create --session-file PATH"
  --tap NAME            Linux TAP device to attach (created when missing; needs root)
  --mtu N               MTU of the TAP device or QEMU link (default: the session's MTU)
  --qemu-stream ADDR    listen at ADDR (unix:PATH or tcp:HOST:PORT) for QEMU
                        -netdev stream,server=off,addr.type=unix,addr.path=PATH
                        (or addr.type=inet,addr.host=HOST,addr.port=PORT). One QEMU at
                        a time: a new connection replaces the current one. When QEMU
                        disconnects the CLI keeps listening and the session stays up.
  --qemu-dgram udp:HOST:PORT
                        bind UDP HOST:PORT for QEMU -netdev dgram, one frame per
                        datagram; this is QEMU's remote.host/remote.port
  --qemu-dgram-peer HOST:PORT
                        QEMU's local.host/local.port, where frames for QEMU go;
                        without it, the source of the most recent datagram from QEMU
  --no-reconnect        exit when the WebSocket drops instead of reconnecting
  --no-offload          with --tap: one write() per frame, without IFF_VNET_HDR; by
                        default the TAP takes and hands over TCP segments of up to
                        64 KiB (segmentation offload) and, with the stream framing,
                        they cross the tunnel whole
  --framing stream|frame
                        stream (default): subprotocol netisle.vnet-stream.v1 (with
                        --tap and offload: frames with their virtio-net offload header,
                        TCP segments of up to 64 KiB whole both ways), else or when
                        the server does not speak it netisle.qemu-stream.v1 (QEMU
                        stream framing); the frames of one port read batched in one
                        message. frame: one Ethernet frame per WebSocket message, for
                        relays that speak only that (v86 style)
  --keepalive SECONDS   ping the server every SECONDS; 0 turns keepalives off (default 15)
  --keepalive-timeout SECONDS
                        no pong within SECONDS: drop the WebSocket and reconnect
                        (default 10)
  --faults SPEC         inject faults between the device and the tunnel, both ways,
                        for testing: drop=N%,dup=N%,reorder=N%,reorder-delay=Nms,delay=Nms,
                        disconnect=Ns (kill our own WebSocket every N s, then reconnect),
                        disconnect-jitter=Ns
  -h, --help            show this help

Exit status: 0 on a clean stop (SIGINT/SIGTERM), 1 when the tunnel ends,
2 for a usage or setup error (bad flags, not root, no /dev/net/tun, no such
session, wrong token, server unreachable).`;

/** A setup error with a message for the user; exits with status 2. */
class CliError extends Error {}

const HELP = TUNNEL_HELP;

interface SessionInfo {
  id: string;
  token: string;
  mac: string;
  ipv4: { address: string; prefixLength: number };
  mtu: number;
}

async function request(server: string, path: string, init: RequestInit): Promise<Response> {
  let url: URL;
  try {
    url = new URL(path, server);
  } catch {
    throw new CliError(`--server is not a valid URL: "${server}"`);
  }
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new CliError(`server unreachable at ${url.origin}: ${(err as Error).message}`);
  }
}

async function problemDetail(res: Response): Promise<string> {
  try {
    const body = await res.json();
    return typeof body?.detail === "string" ? body.detail : `HTTP ${res.status}`;
  } catch {
    return `HTTP ${res.status}`;
  }
}

async function createSession(server: string, adminToken: string | undefined): Promise<SessionInfo> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (adminToken) headers.authorization = `Bearer ${adminToken}`;
  const res = await request(server, "/v1/sessions", { method: "POST", headers, body: "{}" });
  if (res.status === 401) {
    throw new CliError(
      `the server needs an admin token to create sessions: ${await problemDetail(res)}`,
    );
  }
  if (res.status !== 201) {
    throw new CliError(`cannot create a session: ${await problemDetail(res)}`);
  }
  return await res.json();
}

async function fetchSession(server: string, id: string, token: string): Promise<SessionInfo> {
  const res = await request(server, `/v1/sessions/${encodeURIComponent(id)}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  if (res.status === 404 || res.status === 400) {
    throw new CliError(`no such session "${id}" on ${server}`);
  }
  if (res.status === 401) throw new CliError(`wrong token for session "${id}"`);
  if (res.status !== 200) {
    throw new CliError(`cannot read session "${id}": ${await problemDetail(res)}`);
  }
  return { ...(await res.json()), token };
}

const VALUE_OPTIONS = new Set([
  "--server",
  "--session-file",
  "--admin-token",
  "--session",
  "--token",
  "--tap",
  "--mtu",
  "--faults",
  "--framing",
  "--keepalive",
  "--keepalive-timeout",
  "--qemu-stream",
  "--qemu-dgram",
  "--qemu-dgram-peer",
]);

/**
 * Rewrites `--token VALUE` as `--token=VALUE` for options that take a value,
 * so that a value starting with "-" (a base64url token may) is not mistaken
 * for an option.
 */
export function joinOptionValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (VALUE_OPTIONS.has(argv[i]) && i + 1 < argv.length) {
      out.push(`${argv[i]}=${argv[i + 1]}`);
      i++;
    } else {
      out.push(argv[i]);
    }
  }
  return out;
}

/**
 * Checks the port flags (exactly one of --tap, --qemu-stream, --qemu-dgram)
 * and returns the function that opens the chosen port for a given MTU.
 */
function portOpener(values: {
  tap?: string;
  "no-offload"?: boolean;
  "qemu-stream"?: string;
  "qemu-dgram"?: string;
  "qemu-dgram-peer"?: string;
}): (mtu: number) => Promise<FramePort> {
  const chosen = (["tap", "qemu-stream", "qemu-dgram"] as const).filter((k) => values[k]);
  if (chosen.length !== 1) {
    throw new CliError(
      chosen.length === 0
        ? "a port is required: --tap NAME, --qemu-stream ADDRESS or --qemu-dgram udp:HOST:PORT"
        : `choose one port, not ${chosen.map((k) => `--${k}`).join(" and ")}`,
    );
  }
  if (values["qemu-dgram-peer"] !== undefined && !values["qemu-dgram"]) {
    throw new CliError("--qemu-dgram-peer needs --qemu-dgram");
  }
  const log = (line: string) => console.log(line);
  const attempt = <T>(what: string, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      throw new CliError(`${what}: ${(err as Error).message}`);
    }
  };
  if (values.tap) {
    const name = values.tap;
    return (mtu) =>
      openTap({ name, mtu, offload: !values["no-offload"] }).catch((err) => {
        throw new CliError(`cannot open TAP device "${name}": ${(err as Error).message}`);
      });
  }
  if (values["qemu-stream"]) {
    const address = attempt("--qemu-stream", () => parseQemuStreamAddress(values["qemu-stream"]!));
    return async (mtu) => {
      const port = await listenQemuStream({ address, maxFrameLen: mtu + 14, log }).catch(
        (err) => {
          throw new CliError(`--qemu-stream: ${(err as Error).message}`);
        },
      );
      console.log(`${port.name}: listening for QEMU -netdev stream`);
      return port;
    };
  }
  const bind = attempt("--qemu-dgram", () => parseQemuDgramAddress(values["qemu-dgram"]!));
  const peerText = values["qemu-dgram-peer"];
  const peer = peerText === undefined
    ? undefined
    : attempt("--qemu-dgram-peer", () => parseUdpPeer(peerText));
  return async (mtu) => {
    const port = await bindQemuDgram({ bind, peer, maxFrameLen: mtu + 14, log }).catch((err) => {
      throw new CliError(`--qemu-dgram: ${(err as Error).message}`);
    });
    console.log(
      `${port.name}: bound for QEMU -netdev dgram; peer ${
        peer ? `${peerText}` : "learned from the first datagram"
      }`,
    );
    return port;
  };
}

/** Runs `netisle tunnel` with `argv` (after the subcommand); resolves to the exit status. */
export async function tunnelCommand(argv: string[]): Promise<number> {
  argv = joinOptionValues(argv);
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        server: { type: "string" },
        "session-file": { type: "string" },
        create: { type: "boolean", default: false },
        "admin-token": { type: "string" },
        session: { type: "string" },
        token: { type: "string" },
        tap: { type: "string" },
        mtu: { type: "string" },
        "no-reconnect": { type: "boolean", default: false },
        "no-offload": { type: "boolean", default: false },
        faults: { type: "string" },
        framing: { type: "string", default: "stream" },
        keepalive: { type: "string", default: "15" },
        "keepalive-timeout": { type: "string", default: "10" },
        "qemu-stream": { type: "string" },
        "qemu-dgram": { type: "string" },
        "qemu-dgram-peer": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    console.error(`netisle tunnel: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  try {
    // Flags win over the session file, which wins over the environment.
    const path = values["session-file"] ?? process.env.NETISLE_SESSION_FILE;
    const file = path ? readSessionFile(path) : undefined;
    const server = values.server ?? file?.server ?? process.env.NETISLE_SERVER ?? DEFAULT_SERVER;
    const session = values.create
      ? values.session
      : values.session ?? file?.id ?? process.env.NETISLE_SESSION;
    const token = values.token ?? file?.token;
    return await run({ ...values, server, session, token });
  } catch (err) {
    if (err instanceof CliError || err instanceof CommonCliError) {
      console.error(`netisle tunnel: ${err.message}`);
      return 2;
    }
    throw err;
  }
}

async function run(values: {
  server: string;
  create: boolean;
  "admin-token"?: string;
  session?: string;
  token?: string;
  tap?: string;
  mtu?: string;
  "no-reconnect": boolean;
  "no-offload": boolean;
  faults?: string;
  framing: string;
  keepalive: string;
  "keepalive-timeout": string;
  "qemu-stream"?: string;
  "qemu-dgram"?: string;
  "qemu-dgram-peer"?: string;
}): Promise<number> {
  const openPort = portOpener(values);
  if (values.create && values.session) {
    throw new CliError("use either --create or --session, not both");
  }
  const token = values.token ?? process.env.NETISLE_TOKEN;
  if (!values.create && (!values.session || !token)) {
    throw new CliError("--session ID and --token TOKEN are required unless --create is given");
  }
  let mtu: number | undefined;
  if (values.mtu !== undefined) {
    mtu = Number(values.mtu);
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
      throw new CliError(`--mtu must be an integer in 68..65535, got "${values.mtu}"`);
    }
  }
  let faults;
  try {
    faults = values.faults === undefined ? undefined : parseFaultSpec(values.faults);
  } catch (err) {
    throw new CliError(`--faults: ${(err as Error).message}`);
  }
  if (values.framing !== "frame" && values.framing !== "stream") {
    throw new CliError(`--framing must be "frame" or "stream", got "${values.framing}"`);
  }
  // With a TAP that has offloads (and no fault port between), the stream framing offers the
  // vnet stream first.
  const framing = values.framing === "frame"
    ? "frame"
    : values.tap && !values["no-offload"] && values.faults === undefined
    ? "vnet-stream"
    : "qemu-stream";
  const seconds = (flag: string, text: string, min: number) => {
    const v = Number(text);
    if (!(v === 0 || (v >= min && v <= 3600))) {
      throw new CliError(`${flag} must be 0 or seconds in ${min}..3600, got "${text}"`);
    }
    return v;
  };
  const keepalive = seconds("--keepalive", values.keepalive, 0.1);
  const keepaliveTimeout = seconds("--keepalive-timeout", values["keepalive-timeout"], 0.1);
  if (values.tap) {
    const pre = checkTapPrerequisites();
    if (!pre.ok) throw new CliError(pre.reason);
  }

  const session = values.create
    ? await createSession(values.server, values["admin-token"] ?? process.env.NETISLE_ADMIN_TOKEN)
    : await fetchSession(values.server, values.session!, token!);
  if (values.create) {
    console.log(`session ${session.id} token ${session.token}`);
  }
  console.log(
    `session ${session.id}: stack at ${session.ipv4.address}/${session.ipv4.prefixLength}, ` +
      `mac ${session.mac}, mtu ${session.mtu}`,
  );

  let port: FramePort = await openPort(mtu ?? session.mtu);
  if (faults) port = new FaultPort(port, faults);
  const client = new TunnelClient({
    server: values.server,
    sessionId: session.id,
    token: session.token,
    port,
    // Our own client: TCP_NODELAY (Deno's built-in client stalls ~40 ms per full-size frame on
    // Nagle, DESIGN.md), and masking 32 bits at a time (the `ws` package masks byte by byte).
    WebSocket: TunnelWebSocket as unknown as WebSocketConstructor,
    reconnect: values["no-reconnect"] ? false : { minDelayMs: 250, maxDelayMs: 10_000 },
    framing,
    keepalive: keepalive > 0 && keepaliveTimeout > 0
      ? { intervalMs: keepalive * 1000, timeoutMs: keepaliveTimeout * 1000 }
      : false,
    onState: (state, reason) => {
      const active = client.activeFraming;
      const shown = active === "vnet-stream"
        ? "vnet-stream (offload)"
        : active === "qemu-stream"
        ? "stream"
        : values.framing;
      status.event(
        `tunnel ${state}${reason ? `: ${reason}` : ""} (${port.name} <-> ${session.id}, ` +
          `${shown} framing)`,
      );
    },
  });
  // A live status line on a terminal; elsewhere a plain summary every 30 s.
  const status = new StatusReporter({
    source: () => ({ state: client.state, stats: client.stats, framing: values.framing }),
    tty: process.stdout.isTTY === true,
    write: (text) => process.stdout.write(text),
    log: (line) => console.log(line),
  });
  const stopDisconnects = faults
    ? startDisconnects(faults, () => client.interrupt("fault injection: disconnect"))
    : () => {};
  let signalled = false;
  const stop = () => {
    signalled = true;
    void client.close("stopped by signal");
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  client.start();
  status.start();
  const reason = await client.closed;
  stopDisconnects();
  status.stop();
  await port.close();
  const s = client.stats;
  console.log(
    `tunnel ended: ${reason}; frames up ${s.framesUp} (${s.bytesUp} B, ${s.messagesUp} msgs), ` +
      `down ${s.framesDown} (${s.bytesDown} B, ${s.messagesDown} msgs), dropped ${s.framesDropped}, ` +
      `reconnects ${Math.max(0, s.connects - 1)}`,
  );
  return signalled ? 0 : 1;
}
