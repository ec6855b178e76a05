/**
 * One end-to-end scenario, run the same way against every runtime that can
 * serve netisle (Deno, Bun, workerd): given the command that starts a server,
 * it checks, in a fresh network namespace, that the server's HTTP API and
 * WebSocket tunnel carry real traffic between a session's stack and the
 * Linux kernel.
 *
 * Inside the namespace: the server listens on 127.0.0.1; a session is
 * created over HTTP (curl); the tunnel CLI (tunnel/cli.ts under Deno) attaches
 * it to tap0, where Linux has the stack's subnet's `.15`. Then:
 *
 * 1. Linux pings the stack (ICMP echo through the tunnel).
 * 2. TCP, stack → Linux: the stack connects (HTTP socket API) to a socat
 *    listener, sends random bytes, which socat stores, and reads socat's own
 *    random bytes to the end of the stream; both byte-exact.
 * 3. TCP, Linux → stack: the stack listens; socat connects and sends random
 *    bytes, which the stack reads to the end; the stack answers with its own
 *    bytes and shuts down; both byte-exact.
 * 4. A TCP socket's WebSocket stream (`.../sockets/:id/stream`) carries bytes
 *    to a Linux echo and back; the client close sends FIN. A second stream
 *    carries 1 MiB of random bytes to the echo and back, byte-exact.
 * 5. UDP both ways: a datagram to a Linux echo and back (connected socket),
 *    and a datagram from Linux to a bound socket, with its sender.
 * 6. IPv6 (the session's fd00::/64; Linux has fd00::15 on tap0, static and
 *    without duplicate-address detection, with router advertisements and
 *    SLAAC off so that it is the only global address): Linux pings fd00::2;
 *    steps 2 and 3 again over IPv6 (the stack connects to a socat
 *    `TCP6-LISTEN`; socat connects to a socket the API bound to `::`), and a
 *    UDP datagram each way, all byte-exact.
 *
 * Used by tests/e2e/runtimes_test.ts (Deno, Bun) and by the workerd test.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { DENO, type HttpResult, Netns, parseCurlOutput, type Proc } from "./harness.ts";

/** Options of {@linkcode runRuntimeScenario}. */
export interface RuntimeScenarioOptions {
  /** The runtime's name, for messages and the namespace name (e.g. `"deno"`, `"bun"`, `"workerd"`). */
  name: string;
  /**
   * The server's command line, run inside the namespace with the repository
   * root as working directory, e.g. `[BUN, "run", "examples/bun/server.ts"]`.
   */
  serverCommand: string[];
  /**
   * Extra environment of the server. `PORT` (from `url`), `HOSTNAME`
   * (`127.0.0.1`) and `NETISLE_LOG=0` are set unless given here.
   */
  env?: Record<string, string>;
  /** The server's base URL inside the namespace. Default `http://127.0.0.1:8787`. */
  url?: string;
  /**
   * The namespace's name prefix (a random suffix is added). Default
   * `bunrt-<name>`; callers from other test files pass their own.
   */
  nsPrefix?: string;
  /** How long the server may take until `GET /healthz` answers 200 (ms). Default 60 000. */
  startTimeoutMs?: number;
  /** Bytes of each TCP transfer, each way. Default 200 000. */
  tcpBytes?: number;
  /** Receives a line per step as it passes (default: none). */
  log?: (line: string) => void;
}

/** What {@linkcode runRuntimeScenario} observed, for the test log. */
export interface RuntimeScenarioReport {
  /** The runtime's name. */
  name: string;
  /** The session's id and its stack's address. */
  session: { id: string; stack: string; linux: string };
  /** One line per passed step, e.g. `"ping: 3/3 replies"`. */
  steps: string[];
}

/**
 * A server, a session and its tunnel to tap0 in a fresh namespace, with curl
 * helpers for the HTTP API. Reusable by other e2e tests that need a session
 * on a TAP device behind an arbitrary server command.
 */
export class RuntimeBed {
  /** The namespace (created by {@linkcode RuntimeBed.start}). */
  ns!: Netns;
  /** The server's base URL. */
  readonly url: string;
  /** The session's id and token. */
  sid = "";
  token = "";
  /** The stack's and Linux's addresses on tap0. */
  stack = "";
  linux = "";
  /** The stack's and Linux's global IPv6 addresses on tap0 ("" when the session has no IPv6). */
  stack6 = "";
  linux6 = "";
  /** A scratch directory, deleted by {@linkcode RuntimeBed.stop}. */
  readonly dir: string = mkdtempSync(`${tmpdir()}/netisle-rt-`);
  /** The server process. */
  server!: Proc;
  #procs: Proc[] = [];

  /** Remembers the options; nothing runs until {@linkcode RuntimeBed.start}. */
  constructor(readonly options: RuntimeScenarioOptions) {
    this.url = (options.url ?? "http://127.0.0.1:8787").replace(/\/$/, "");
  }

  /** Starts the namespace, the server, a session and the tunnel; pings once. */
  async start(): Promise<void> {
    const o = this.options;
    assert.ok(o.serverCommand.length > 0, `serverCommand is empty for "${o.name}"`);
    const port = new URL(this.url).port || "80";
    this.ns = new Netns(o.nsPrefix ?? `bunrt-${o.name}`);
    const [cmd, ...args] = o.serverCommand;
    this.server = this.spawn(cmd, args, {
      PORT: port,
      HOSTNAME: "127.0.0.1",
      NETISLE_LOG: "0",
      ...o.env,
    });
    await this.#waitHealthy(o.startTimeoutMs ?? 60_000);

    const created = this.curl("POST", "/v1/sessions", { json: {}, token: false });
    assert.equal(created.status, 201, `create session on ${o.name}: ${created.body}`);
    const s = JSON.parse(created.body);
    this.sid = s.id;
    this.token = s.token;
    this.stack = s.ipv4.address;
    const octets = this.stack.split(".");
    octets[3] = octets[3] === "15" ? "16" : "15";
    this.linux = octets.join(".");

    // Interfaces created from now on in this namespace take no router advertisements and form
    // no SLAAC address (the CLI brings tap0 up itself, and Linux solicits a router at once).
    this.ns.exec("sysctl", [
      "-qw",
      "net.ipv6.conf.default.accept_ra=0",
      "net.ipv6.conf.default.autoconf=0",
    ]);
    const tunnel = this.spawn(DENO, [
      "run",
      "-A",
      "tunnel/cli.ts",
      "--server",
      this.url,
      "--session",
      this.sid,
      "--token",
      this.token,
      "--tap",
      "tap0",
    ]);
    await tunnel.waitFor(/tunnel open/, 30_000);
    this.ns.exec("ip", ["addr", "add", `${this.linux}/${s.ipv4.prefixLength}`, "dev", "tap0"]);
    if (s.ipv6) {
      // Linux's IPv6 address is `::15` in the session's /64, static and usable at once
      // (nodad); tap0 took no router advertisement (see above), so it is the only global
      // address Linux has there and the one it sends from.
      this.stack6 = s.ipv6.address;
      this.linux6 = `${String(s.ipv6.prefix).replace(/::\/64$/, "")}::15`;
      assert.match(this.linux6, /^[0-9a-f:]+::15$/, `session prefix ${s.ipv6.prefix}`);
      this.ns.exec("ip", ["-6", "addr", "add", `${this.linux6}/64`, "dev", "tap0", "nodad"]);
    }
    this.ns.exec("ip", ["link", "set", "tap0", "up"]);
  }

  async #waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      try {
        const r = this.curl("GET", "/healthz", { token: false, timeoutMs: 5_000 });
        if (r.status === 200) return;
        last = `HTTP ${r.status} ${r.body}`;
      } catch (err) {
        last = (err as Error).message.split("\n")[0];
      }
      if (this.server.child.exitCode !== null) break;
      await sleep(200);
    }
    throw new Error(
      `${this.options.name} server did not answer GET ${this.url}/healthz (last: ${last}); ` +
        `its output:\n${this.server.output}`,
    );
  }

  /** Starts a process inside the namespace; {@linkcode RuntimeBed.stop} stops it. */
  spawn(cmd: string, args: string[], env: Record<string, string> = {}): Proc {
    const p = this.ns.spawn(cmd, args, env);
    this.#procs.push(p);
    return p;
  }

  /**
   * curl inside the namespace; `path` is relative to the session unless it
   * starts with `/`. `dataFile` is sent as the binary body; `outFile`
   * receives the binary response body (then `body` is empty).
   */
  curl(
    method: string,
    path: string,
    o: {
      json?: unknown;
      dataFile?: string;
      outFile?: string;
      token?: boolean;
      timeoutMs?: number;
    } = {},
  ): HttpResult {
    const url = path.startsWith("/")
      ? `${this.url}${path}`
      : `${this.url}/v1/sessions/${this.sid}/${path}`;
    const args = ["-s", "-X", method, "-D", "-"];
    if (o.token !== false) args.push("-H", `Authorization: Bearer ${this.token}`);
    if (o.json !== undefined) {
      args.push("-H", "content-type: application/json", "-d", JSON.stringify(o.json));
    }
    if (o.dataFile !== undefined) {
      args.push("-H", "content-type: application/octet-stream", "--data-binary", `@${o.dataFile}`);
    }
    if (o.outFile !== undefined) args.push("-o", o.outFile);
    args.push(url);
    return parseCurlOutput(this.ns.exec("curl", args, { timeoutMs: o.timeoutMs ?? 90_000 }));
  }

  /** A JSON call that must answer `status`. */
  json(method: string, path: string, o: Parameters<RuntimeBed["curl"]>[2] = {}, status = 200) {
    const r = this.curl(method, path, o);
    assert.equal(
      r.status,
      status,
      `${this.options.name}: ${method} ${path}: ${r.status} ${r.body}`,
    );
    return JSON.parse(r.body);
  }

  /** Creates a socket in the session and returns its id. */
  socket(protocol: "tcp" | "udp"): string {
    return this.json("POST", "sockets", { json: { protocol } }, 201).id;
  }

  /** Writes `bytes` to a new file in the scratch directory and returns its path. */
  file(name: string, bytes?: Uint8Array): string {
    const path = `${this.dir}/${name}`;
    writeFileSync(path, bytes ?? new Uint8Array());
    return path;
  }

  /** Reads a TCP socket to the end of the stream through `recv`. */
  readToEnd(id: string, limitBytes: number): Uint8Array {
    const parts: Uint8Array[] = [];
    let total = 0;
    const part = `${this.dir}/recv.part`;
    for (let i = 0; i < 2000; i++) {
      const r = this.curl("POST", `sockets/${id}/recv?timeoutMs=10000&maxBytes=65536`, {
        outFile: part,
      });
      assert.ok(r.status === 200 || r.status === 204, `recv: HTTP ${r.status}`);
      if (r.headers["netisle-eof"] === "1") return concat(parts, total);
      if (r.status === 200) {
        const got = readFileSync(part);
        parts.push(got);
        total += got.length;
        assert.ok(total <= limitBytes, `read ${total} bytes, more than the ${limitBytes} sent`);
      }
    }
    throw new Error(`no end of stream on socket ${id} after ${total} bytes`);
  }

  /** Stops every process, deletes the namespace and the scratch directory. */
  async stop(): Promise<void> {
    for (const p of this.#procs.reverse()) await p.stop();
    this.ns?.delete();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Runs the scenario (see the module doc) against the server that
 * `options.serverCommand` starts; resolves with what passed, rejects with an
 * assertion error on the first failure. Always stops its processes and
 * deletes its namespace. Needs root, `/dev/net/tun`, iproute2, socat, curl
 * and ping (callers check with `e2eSkipReason` and `commandExists`).
 *
 * @example
 * ```ts
 * const report = await runRuntimeScenario({
 *   name: "bun",
 *   serverCommand: [BUN, "run", "examples/bun/server.ts"],
 * });
 * console.log(report.steps.join("\n"));
 * ```
 */
export async function runRuntimeScenario(
  options: RuntimeScenarioOptions,
): Promise<RuntimeScenarioReport> {
  const bed = new RuntimeBed(options);
  const steps: string[] = [];
  const pass = (line: string) => {
    steps.push(line);
    options.log?.(`${options.name}: ${line}`);
  };
  try {
    await bed.start();
    pass(`session ${bed.sid} (stack ${bed.stack}) attached to tap0 through the tunnel`);
    pingStep(bed, pass);
    pass(await tcpOutboundStep(bed, ipv4(bed), options.tcpBytes ?? 200_000));
    pass(await tcpInboundStep(bed, ipv4(bed), options.tcpBytes ?? 200_000));
    await streamStep(bed, pass);
    pass(await udpStep(bed, ipv4(bed)));
    await ipv6Step(bed, options.tcpBytes ?? 200_000, pass);
    return {
      name: options.name,
      session: { id: bed.sid, stack: bed.stack, linux: bed.linux },
      steps,
    };
  } catch (err) {
    const e = err as Error;
    e.message = `${options.name}: ${e.message}\nserver output:\n${bed.server?.output ?? ""}`;
    throw e;
  } finally {
    await bed.stop();
  }
}

/** The addresses and socat address types of one IP family in the scenario. */
interface Family {
  /** `""` for IPv4, `"6"` for IPv6 (socat's TCP6-LISTEN, UDP6-SENDTO, …). */
  v: "" | "6";
  /** The stack's and Linux's addresses. */
  stack: string;
  linux: string;
  /** What the stack's listening and bound sockets bind to (undefined: the default, IPv4). */
  bindAny?: string;
  /** Ports of this family's steps (distinct per family: no TIME_WAIT in the way). */
  ports: { out: number; in: number; udpEcho: number; udpIn: number };
}

/** An address as socat takes it in `ADDR:PORT` and `bind=ADDR`. */
function socatHost(f: Family, a: string): string {
  return f.v === "6" ? `[${a}]` : a;
}

function ipv4(bed: RuntimeBed): Family {
  return {
    v: "",
    stack: bed.stack,
    linux: bed.linux,
    ports: { out: 7100, in: 8080, udpEcho: 9998, udpIn: 5000 },
  };
}

function ipv6(bed: RuntimeBed): Family {
  return {
    v: "6",
    stack: bed.stack6,
    linux: bed.linux6,
    bindAny: "::",
    ports: { out: 7110, in: 8086, udpEcho: 9996, udpIn: 5006 },
  };
}

function pingStep(bed: RuntimeBed, pass: (l: string) => void): void {
  const out = bed.ns.exec("ping", ["-c", "3", "-i", "0.2", "-W", "5", bed.stack]);
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  assert.ok(m, `ping output: ${out}`);
  assert.equal(m[2], "3", `ping ${bed.stack}: ${out}`);
  pass("ping: 3/3 echo replies from the stack");
}

/** The stack connects to Linux, sends A, reads Linux's B to the end. */
async function tcpOutboundStep(
  bed: RuntimeBed,
  f: Family,
  n: number,
): Promise<string> {
  const a = randomBytes(n);
  const b = randomBytes(n + 17);
  const aFile = bed.file(`out${f.v}-a.bin`, a);
  const bFile = bed.file(`out${f.v}-b.bin`, b);
  const gotA = bed.file(`out${f.v}-a.got`);
  const port = f.ports.out;
  // Reads exactly A's length, stores it, answers B, exits: its close is our end of stream.
  const srv = bed.spawn("socat", [
    `TCP${f.v}-LISTEN:${port},bind=${socatHost(f, f.linux)},reuseaddr`,
    `SYSTEM:head -c ${n} > ${gotA}; cat ${bFile}`,
  ]);
  await waitListening(bed, port);
  const id = bed.socket("tcp");
  const c = bed.json("POST", `sockets/${id}/connect`, {
    json: { address: f.linux, port, timeoutMs: 10_000 },
  });
  assert.deepEqual(c.remote, { address: f.linux, port });
  assert.equal(c.local.address, f.stack);
  const sent = bed.json("POST", `sockets/${id}/send?timeoutMs=30000`, { dataFile: aFile });
  assert.deepEqual(sent, { bytes: n });
  const back = bed.readToEnd(id, b.length);
  assert.ok(
    Buffer.from(back).equals(b),
    `stack read ${back.length} bytes, not socat's ${b.length}`,
  );
  await waitExit(srv, 20_000);
  assert.ok(readFileSync(gotA).equals(a), "socat did not receive the stack's bytes exactly");
  assert.equal(bed.curl("DELETE", `sockets/${id}`).status, 204);
  return `tcp stack→linux: sent ${n} bytes, read ${b.length} bytes to EOF, both byte-exact`;
}

/** Linux connects to a listening stack socket, sends C; the stack answers D and shuts down. */
async function tcpInboundStep(
  bed: RuntimeBed,
  f: Family,
  n: number,
): Promise<string> {
  const cBytes = randomBytes(n + 3);
  const d = randomBytes(n + 29);
  const cFile = bed.file(`in${f.v}-c.bin`, cBytes);
  const dFile = bed.file(`in${f.v}-d.bin`, d);
  const gotD = bed.file(`in${f.v}-d.got`);
  const port = f.ports.in;
  const l = bed.socket("tcp");
  bed.json("POST", `sockets/${l}/bind`, {
    json: f.bindAny === undefined ? { port } : { address: f.bindAny, port },
  });
  assert.deepEqual(bed.json("POST", `sockets/${l}/listen`, { json: {} }).local, {
    address: f.stack,
    port,
  });
  const client = bed.spawn("sh", [
    "-c",
    `socat -t 30 - TCP${f.v}:${socatHost(f, f.stack)}:${port} < ${cFile} > ${gotD}; ` +
    "echo SOCAT-EXIT $?",
  ]);
  const acc = bed.json("POST", `sockets/${l}/accept`, { json: { timeoutMs: 10_000 } });
  assert.equal(acc.remote.address, f.linux);
  assert.equal(acc.local.address, f.stack);
  const got = bed.readToEnd(acc.id, cBytes.length);
  assert.ok(
    Buffer.from(got).equals(cBytes),
    `stack read ${got.length} bytes, not Linux's ${cBytes.length}`,
  );
  assert.deepEqual(
    bed.json("POST", `sockets/${acc.id}/send?timeoutMs=30000`, { dataFile: dFile }),
    {
      bytes: d.length,
    },
  );
  bed.json("POST", `sockets/${acc.id}/shutdown`, { json: { how: "write" } });
  await client.waitFor(/SOCAT-EXIT 0/, 30_000);
  assert.ok(readFileSync(gotD).equals(d), "Linux did not receive the stack's answer exactly");
  assert.equal(bed.curl("DELETE", `sockets/${acc.id}`).status, 204);
  assert.equal(bed.curl("DELETE", `sockets/${l}`).status, 204);
  return `tcp linux→stack: accepted, read ${cBytes.length} bytes to EOF, answered ${d.length}, ` +
    "both byte-exact";
}

/** A TCP socket's WebSocket stream to a Linux echo; the client's close is a FIN. */
async function streamStep(bed: RuntimeBed, pass: (l: string) => void) {
  const port = 7101;
  const echo = bed.spawn("socat", [
    "-d",
    "-d",
    `TCP-LISTEN:${port},bind=${bed.linux},reuseaddr`,
    "EXEC:cat",
  ]);
  await waitListening(bed, port);
  const id = bed.socket("tcp");
  bed.json("POST", `sockets/${id}/connect`, { json: { address: bed.linux, port } });
  const wsUrl = `${bed.url.replace(/^http/, "ws")}/v1/sessions/${bed.sid}/sockets/${id}/stream` +
    `?token=${bed.token}`;
  const text = "netisle over a socket stream\\r\\n";
  const ws = bed.spawn(DENO, [
    "run",
    "-A",
    "tests/e2e/fixtures/ws_client.ts",
    wsUrl,
    text,
    "close-after:30",
  ]);
  await ws.waitFor(/CLOSE \d+/, 20_000);
  const echoed = [...ws.output.matchAll(/RECV (".*")/g)].map((m) => JSON.parse(m[1])).join("");
  assert.equal(echoed, "netisle over a socket stream\r\n", `ws client output:\n${ws.output}`);
  await echo.waitFor(/exiting with status 0/, 10_000);
  assert.equal(bed.curl("DELETE", `sockets/${id}`).status, 204);

  // Bulk: random bytes through a second stream to a Linux echo and back, compared in the client.
  const bulkPort = 7102;
  const bulkEcho = bed.spawn("socat", [
    `TCP-LISTEN:${bulkPort},bind=${bed.linux},reuseaddr`,
    "EXEC:cat",
  ]);
  await waitListening(bed, bulkPort);
  const bulk = bed.socket("tcp");
  bed.json("POST", `sockets/${bulk}/connect`, { json: { address: bed.linux, port: bulkPort } });
  const client = bed.spawn(DENO, ["eval", STREAM_ECHO_CLIENT], {
    WS_URL: `${bed.url.replace(/^http/, "ws")}/v1/sessions/${bed.sid}/sockets/${bulk}/stream` +
      `?token=${bed.token}`,
    WS_BYTES: String(STREAM_BULK_BYTES),
  });
  const m = await client.waitFor(/ECHOED (\d+) (\w+)/, 60_000);
  assert.deepEqual([Number(m[1]), m[2]], [STREAM_BULK_BYTES, "same"], client.output);
  await client.waitFor(/CLOSE 1000/, 20_000);
  assert.equal(bed.curl("DELETE", `sockets/${bulk}`).status, 204);
  await bulkEcho.stop();
  pass(
    "tcp over WebSocket streams: 30 bytes echoed by Linux and the client close sent FIN; " +
      `${STREAM_BULK_BYTES} random bytes echoed byte-exact`,
  );
}

/** Bytes of the bulk echo through a socket stream. */
const STREAM_BULK_BYTES = 1024 * 1024;

/**
 * A WebSocket client (run with `deno eval`): sends $WS_BYTES random bytes in
 * 16 KiB messages, reads the echo, prints `ECHOED <n> same|different`, closes.
 */
const STREAM_ECHO_CLIENT = `
const n = Number(Deno.env.get("WS_BYTES"));
const data = new Uint8Array(n);
for (let i = 0; i < n; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
const got = new Uint8Array(n);
let len = 0;
const ws = new WebSocket(Deno.env.get("WS_URL"));
ws.binaryType = "arraybuffer";
ws.onopen = () => {
  for (let i = 0; i < n; i += 16384) ws.send(data.subarray(i, i + 16384));
};
ws.onmessage = (ev) => {
  const b = new Uint8Array(ev.data);
  if (len + b.length > n) { console.log("TOO MUCH " + (len + b.length)); Deno.exit(1); }
  got.set(b, len);
  len += b.length;
  if (len === n) {
    const same = got.every((v, i) => v === data[i]);
    console.log("ECHOED " + len + " " + (same ? "same" : "different"));
    ws.close(1000, "done");
  }
};
ws.onclose = (ev) => { console.log("CLOSE " + ev.code); Deno.exit(0); };
ws.onerror = () => console.log("ERROR");
`;

async function udpStep(bed: RuntimeBed, f: Family): Promise<string> {
  const port = f.ports.udpEcho;
  const echo = bed.spawn("socat", [
    `UDP${f.v}-LISTEN:${port},bind=${socatHost(f, f.linux)}`,
    "EXEC:cat",
  ]);
  await waitListening(bed, port, true);
  const c = bed.socket("udp");
  bed.json("POST", `sockets/${c}/connect`, { json: { address: f.linux, port } });
  const dgram = randomBytes(1000);
  bed.json("POST", `sockets/${c}/send`, { dataFile: bed.file(`udp${f.v}-out.bin`, dgram) });
  const outFile = bed.file(`udp${f.v}-out.got`);
  const back = bed.curl("POST", `sockets/${c}/recv?timeoutMs=5000`, { outFile });
  assert.equal(back.status, 200, "no UDP echo from Linux");
  assert.equal(back.headers["netisle-peer-address"], f.linux);
  assert.equal(back.headers["netisle-peer-port"], String(port));
  assert.ok(readFileSync(outFile).equals(dgram), "the UDP echo differs from what was sent");
  await echo.stop();

  const u = bed.socket("udp");
  const inPort = f.ports.udpIn;
  bed.json("POST", `sockets/${u}/bind`, {
    json: f.bindAny === undefined ? { port: inPort } : { address: f.bindAny, port: inPort },
  });
  const inbound = randomBytes(700);
  const inFile = bed.file(`udp${f.v}-in.bin`, inbound);
  bed.ns.exec("sh", [
    "-c",
    `socat -u - UDP${f.v}-SENDTO:${socatHost(f, f.stack)}:${inPort},sourceport=4444 < ${inFile}`,
  ]);
  const inGot = bed.file(`udp${f.v}-in.got`);
  const r = bed.curl("POST", `sockets/${u}/recv?timeoutMs=5000`, { outFile: inGot });
  assert.equal(r.status, 200, "the stack received no datagram from Linux");
  assert.equal(r.headers["netisle-peer-address"], f.linux);
  assert.equal(r.headers["netisle-peer-port"], "4444");
  assert.ok(readFileSync(inGot).equals(inbound), "the datagram from Linux differs");
  return "udp: 1000-byte datagram echoed by Linux, 700-byte datagram from Linux, byte-exact";
}

/**
 * IPv6: Linux pings the stack at its global address, then TCP both ways and
 * UDP both ways as over IPv4 (steps 2, 3 and 5), on fd00::/64.
 */
async function ipv6Step(bed: RuntimeBed, n: number, pass: (l: string) => void): Promise<void> {
  assert.ok(bed.stack6 && bed.linux6, `the session has no IPv6 (stack6 "${bed.stack6}")`);
  const out = bed.ns.exec("ping", ["-6", "-c", "3", "-i", "0.2", "-W", "5", bed.stack6]);
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  assert.ok(m, `ping -6 output: ${out}`);
  assert.equal(m[2], "3", `ping -6 ${bed.stack6}: ${out}`);
  // Linux's only global address on tap0 is the static one: no SLAAC address from the stack's
  // router advertisements, so every packet below is from fd00::15.
  const globals = bed.ns.exec("ip", ["-6", "-o", "addr", "show", "dev", "tap0", "scope", "global"]);
  assert.deepEqual(
    [...globals.matchAll(/inet6 (\S+)/g)].map((g) => g[1]),
    [`${bed.linux6}/64`],
    globals,
  );
  const f = ipv6(bed);
  const tcpOut = await tcpOutboundStep(bed, f, n);
  const tcpIn = await tcpInboundStep(bed, f, n);
  const udp = await udpStep(bed, f);
  pass(
    `ipv6 (${bed.linux6} ↔ ${bed.stack6}): ping -6 3/3; ${tcpOut}; ${tcpIn}; ${udp}`,
  );
}

/** Waits until `proc` exits. */
async function waitExit(proc: Proc, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (proc.child.exitCode === null && proc.child.signalCode === null) {
    if (Date.now() > deadline) throw new Error(`process still running:\n${proc.output}`);
    await sleep(100);
  }
}

/** Waits until Linux listens on `port` (TCP, or UDP) inside the namespace. */
function waitListening(bed: RuntimeBed, port: number, udp = false): Promise<void> {
  return bed.ns.waitListening(port, udp);
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
