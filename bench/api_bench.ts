/**
 * HTTP socket API benchmark: what the REST socket calls cost over real HTTP.
 *
 * The server is a child process (this module run with `--serve`) serving the
 * real app with the Deno adapter (`serveDeno`, request log off) on loopback,
 * so the clients' work (in this process) does not share an event loop with
 * it. The child creates, through the registry, pairs of sessions whose tunnels
 * are joined in process: the first of a pair is the one the clients drive over
 * HTTP, the second is the peer, which runs a TCP echo service on port 7 (an
 * accept loop on its own socket table). Clients use `fetch` (keep-alive
 * connection pool) with 1 and 64 concurrent clients and measure:
 *
 * - the engine against `Deno.serve`: `GET /healthz` on a second child server
 *   started with `engine: "deno-serve"` (`NETISLE_ENGINE=deno-serve`), and
 *   the socket API's round trips there too, in the same run;
 * - the baseline: `GET /healthz` requests per second on the same server;
 * - round trips per second of `POST .../send` (64 bytes) then `POST .../recv`
 *   until the 64 bytes are back, on one connected socket per client;
 * - connect-then-close per second: `POST .../sockets`, `POST .../connect`,
 *   `DELETE .../sockets/:id` (a graceful close);
 * - the CPU per request of the server and of this process (the clients);
 * - the ceiling: `/healthz` and the round trips against
 *   `canned_http_server.ts`, which writes the same answers and does nothing
 *   else, so their ratio is what the clients alone let any server show.
 *
 * @module
 */

import process from "node:process";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { type Session, SessionRegistry, SystemClock } from "../src/session/mod.ts";
import { serveDeno } from "../src/http/serve_deno.ts";
import { createApp } from "../src/http/app.ts";
import { parseIpv4Address } from "../src/wire/mod.ts";
import { type BenchRow, median, quantile, type Reporter } from "./report.ts";
import { clockTicks, cpuSeconds } from "./process_cpu.ts";

const SECTION = "api";
const ECHO_PORT = 7;
const PEER_IP = "10.0.2.3";
/** Seconds each measurement runs. */
const RUN_SECONDS = Number(process.env.NETISLE_BENCH_API_SECONDS ?? 3);
/** Seconds each measurement first runs unmeasured. */
const WARMUP_SECONDS = Number(process.env.NETISLE_BENCH_API_WARMUP_SECONDS ?? 1);
const CONCURRENCY = [1, 64];
/** Connect-then-close stops here: each close leaves a TIME-WAIT entry on the client stack. */
const MAX_CONNECTS_PER_RUN = 3000;

/** What the child server prints once it listens. */
interface ServerInfo {
  url: string;
  /** Sessions the clients drive, each joined to an echo peer: echo, then one per connect run. */
  sessions: { id: string; token: string }[];
}

// ------------------------------------------------------------------ server

/** Joins two sessions' tunnels: frames one emits reach the other on a later microtask. */
function join(a: Session, b: Session): void {
  for (const [from, to] of [[a, b], [b, a]]) {
    from.attachTunnel({
      description: "in-process bench link",
      send: (frames) => queueMicrotask(() => to.input(frames)),
      close: () => {},
    });
  }
}

/** The echo service on the peer: accept forever, echo each connection until EOF. */
function echoService(peer: Session): void {
  const t = peer.sockets;
  const l = t.create("tcp");
  t.bind(l, { port: ECHO_PORT });
  t.listen(l, { backlog: 256 });
  const serve = async (id: string) => {
    const e = t.get(id)!;
    try {
      for (;;) {
        const r = await t.receive(e, { maxBytes: 65536, timeoutMs: 60_000 });
        if (!r) continue;
        if (r.eof) break;
        await t.send(e, r.data);
      }
    } catch {
      // A reset or timeout ends this connection only.
    } finally {
      t.delete(id);
    }
  };
  (async () => {
    try {
      for (;;) {
        const e = await t.accept(l, { timeoutMs: 60_000 });
        if (e) serve(e.id);
      }
    } catch {
      // The session closed.
    }
  })();
}

/** Makes a registry with `pairs` client sessions, each joined to an echo peer. */
export function echoRegistry(pairs: number): {
  registry: SessionRegistry;
  sessions: { id: string; token: string }[];
} {
  const registry = new SessionRegistry({
    clock: new SystemClock(),
    sessionLimits: { maxSockets: 1024 },
  });
  const sessions: { id: string; token: string }[] = [];
  for (let i = 0; i < pairs; i++) {
    const client = registry.create({ dhcp: false });
    const peer = registry.create({
      ipv4: { address: parseIpv4Address(PEER_IP), prefixLength: 24 },
      dhcp: false,
    });
    join(client, peer);
    echoService(peer);
    sessions.push({ id: client.id, token: client.token });
  }
  return { registry, sessions };
}

/** The child: serves the app on an ephemeral loopback port and prints {@linkcode ServerInfo}. */
function serve(pairs: number, engine: "netisle" | "deno-serve"): void {
  const { registry, sessions } = echoRegistry(pairs);
  serveDeno({
    registry,
    requestLog: false,
    hostname: "127.0.0.1",
    port: 0,
    engine,
    onListen: (url) => console.log(JSON.stringify({ url, sessions } satisfies ServerInfo)),
  });
}

// ------------------------------------------------------------------ clients

/** What {@linkcode measure} takes besides the clients and their operation. */
export interface MeasureOptions<T> {
  /** Stop after this many operations (default: no limit). */
  maxOps?: number;
  /** Seconds of the same loops before the measured ones, not counted (default WARMUP_SECONDS). */
  warmupSeconds?: number;
  /** Called as the measured loops start; what it returns is called as they end. */
  sample?: () => () => T;
}

/**
 * Runs `clients` loops of `op` for WARMUP_SECONDS unmeasured (so the JIT has compiled the paths
 * both ends take: the first seconds of a new kind of request cost a server several times more),
 * then for RUN_SECONDS (or until `maxOps`); returns ops per second.
 */
export async function measure<T = undefined>(
  clients: number,
  op: (client: number) => Promise<void>,
  options: MeasureOptions<T> = {},
): Promise<{ perSec: number; ops: number; latency: string; sampled: T | undefined }> {
  const loops = async (seconds: number, maxOps: number) => {
    let ops = 0;
    const lat: number[] = [];
    const end = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: clients }, async (_, i) => {
        while (performance.now() < end && ops < maxOps) {
          const s = performance.now();
          await op(i);
          lat.push(performance.now() - s);
          ops++;
        }
      }),
    );
    return { ops, lat };
  };
  const warmup = options.warmupSeconds ?? WARMUP_SECONDS;
  if (warmup > 0) await loops(warmup, Infinity);
  const done = options.sample?.();
  const t0 = performance.now();
  const { ops, lat } = await loops(RUN_SECONDS, options.maxOps ?? Infinity);
  const elapsed = (performance.now() - t0) / 1000;
  const sampled = done?.();
  const latency = `latency median ${median(lat).toFixed(2)} ms, p99 ${
    quantile(lat, 0.99).toFixed(2)
  } ms`;
  return { perSec: ops / elapsed, ops, latency, sampled };
}

async function expectOk(res: Response, what: string): Promise<Response> {
  if (!res.ok) {
    throw new Error(`api bench: ${what} answered ${res.status}: ${await res.text()}`);
  }
  return res;
}

type Fetch = (url: string, init?: RequestInit) => Promise<Response>;

/** An HTTP client of one session (`fetch` over the network, or an app's `request`). */
export function sessionClient(
  url: string,
  s: { id: string; token: string },
  fetch: Fetch = globalThis.fetch,
) {
  const base = `${url}/v1/sessions/${s.id}`;
  const auth = { authorization: `Bearer ${s.token}` };
  const json = { ...auth, "content-type": "application/json" };
  return {
    async create(): Promise<string> {
      const res = await expectOk(
        await fetch(`${base}/sockets`, {
          method: "POST",
          headers: json,
          body: '{"protocol":"tcp"}',
        }),
        "create socket",
      );
      return (await res.json()).id;
    },
    async connect(id: string): Promise<void> {
      const res = await fetch(`${base}/sockets/${id}/connect`, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ address: PEER_IP, port: ECHO_PORT, timeoutMs: 10_000 }),
      });
      await (await expectOk(res, "connect")).body?.cancel();
    },
    async send(id: string, data: Uint8Array<ArrayBuffer>): Promise<void> {
      const res = await fetch(`${base}/sockets/${id}/send`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/octet-stream" },
        body: data,
      });
      await (await expectOk(res, "send")).body?.cancel();
    },
    async recv(id: string, maxBytes: number): Promise<number> {
      const res = await fetch(
        `${base}/sockets/${id}/recv?maxBytes=${maxBytes}&timeoutMs=10000`,
        { method: "POST", headers: auth },
      );
      if (res.status === 204) throw new Error("api bench: recv timed out (204)");
      return (await (await expectOk(res, "recv")).arrayBuffer()).byteLength;
    },
    async close(id: string): Promise<void> {
      const res = await fetch(`${base}/sockets/${id}`, { method: "DELETE", headers: auth });
      await (await expectOk(res, "delete socket")).body?.cancel();
    },
  };
}

/** A child process that prints one JSON line once it listens: its info, its pid, a stop function. */
interface Child<T> {
  info: T;
  pid: number | undefined;
  stop: () => void;
}

/** Runs `module` with `args` in a child Deno and resolves once it printed its info line. */
async function startChild<T>(module: URL, args: string[]): Promise<Child<T>> {
  const child = spawn(
    process.execPath,
    ["run", "--allow-all", module.pathname, ...args],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout! });
  const info = await new Promise<T>((resolve, reject) => {
    child.once(
      "exit",
      (code) => reject(new Error(`api bench: ${module.pathname} exited with ${code}`)),
    );
    lines.once("line", (l) => resolve(JSON.parse(l)));
  });
  return {
    info,
    pid: child.pid,
    stop: () => {
      lines.close();
      child.kill("SIGTERM");
    },
  };
}

/** Starts the child server (see the module). */
function startServer(
  pairs: number,
  engine: "netisle" | "deno-serve" = "netisle",
): Promise<Child<ServerInfo>> {
  return startChild(new URL(import.meta.url), ["--serve", String(pairs), engine]);
}

/** The echo round trip of one client through `app.request`, in this process: no HTTP transport. */
async function inProcess(r: Reporter): Promise<void> {
  const { registry, sessions } = echoRegistry(1);
  const app = createApp({ registry, requestLog: false });
  const request: Fetch = async (url, init) => await app.request(url, init);
  const base = await measure(1, async () => {
    await (await expectOk(await request("http://bench/healthz"), "healthz")).body?.cancel();
  });
  const baseline = r.report(
    SECTION,
    "GET /healthz via app.request (no HTTP), 1 client",
    base.perSec,
    "req/s",
  );
  const echo = sessionClient("http://bench", sessions[0], request);
  const id = await echo.create();
  await echo.connect(id);
  const payload = new Uint8Array(64).fill(0x78);
  const rt = await measure(1, async () => {
    await echo.send(id, payload);
    let got = 0;
    while (got < payload.length) got += await echo.recv(id, payload.length - got);
  });
  r.report(
    SECTION,
    "send 64 B + recv 64 B via app.request (no HTTP), 1 client",
    rt.perSec,
    "round trips/s",
    {
      baseline,
      note: `the handlers' own cost; ${rt.latency}`,
    },
  );
  registry.close();
}

/** Echo round trips of `payload` on sockets `ids` of `client`, one loop per client. */
function echoLoop(
  client: ReturnType<typeof sessionClient>,
  ids: string[],
  payload: Uint8Array<ArrayBuffer>,
): (i: number) => Promise<void> {
  return async (i) => {
    await client.send(ids[i], payload);
    let got = 0;
    while (got < payload.length) got += await client.recv(ids[i], payload.length - got);
  };
}

/** Runs the api section. */
export async function runApiBenchmarks(r: Reporter): Promise<void> {
  await inProcess(r);
  const { info, pid, stop } = await startServer(1 + CONCURRENCY.length);
  // CPU per request of the server (what it controls) and of this process (the clients, which
  // at 64 clients run near a full core themselves: then they, not the server, set the rate).
  const tick = clockTicks();
  const cpu = () => {
    const before = cpuSeconds(pid, tick);
    const client = process.cpuUsage();
    return () => {
      const used = process.cpuUsage(client);
      return { cpuUs: (cpuSeconds(pid, tick) - before) * 1e6, clientUs: used.user + used.system };
    };
  };
  /** Reports the server's and the clients' CPU per request of `run` (`requests` requests). */
  const cpuRows = (
    what: string,
    run: { cpuUs: number; clientUs: number },
    requests: number,
    baselines?: BenchRow[],
  ): BenchRow[] => [
    r.report(SECTION, `  server CPU per request${what}`, run.cpuUs / requests, "µs/req", {
      baseline: baselines?.[0],
      note: baselines
        ? "its inverse is the request rate the server alone could reach beside /healthz"
        : "user + system time of the server process (/proc)",
    }),
    r.report(SECTION, `  client CPU per request${what}`, run.clientUs / requests, "µs/req", {
      baseline: baselines?.[1],
      note: baselines ? undefined : "user + system time of this process, the clients",
    }),
  ];
  const denoServe = await startServer(1, "deno-serve");
  const canned = await startChild<{ url: string }>(
    new URL("./canned_http_server.ts", import.meta.url),
    [],
  );
  try {
    const echo = sessionClient(info.url, info.sessions[0]);
    const note = `${RUN_SECONDS} s, fetch keep-alive, server in a child process`;
    const payload = new Uint8Array(64).fill(0x78);
    for (const c of CONCURRENCY) {
      const healthz = <T>(url: string, sample?: () => () => T) =>
        measure(c, async () => {
          const res = await fetch(`${url}/healthz`);
          await (await expectOk(res, "healthz")).body?.cancel();
        }, { sample });
      const reference = await healthz(denoServe.info.url);
      const denoServeRow = r.report(
        SECTION,
        `GET /healthz, ${c} client(s), Deno.serve (NETISLE_ENGINE=deno-serve)`,
        reference.perSec,
        "req/s",
        { note: `the same app and guard on Deno.serve, same run; ${reference.latency}` },
      );
      const base = await healthz(info.url, cpu);
      const baseline = r.report(SECTION, `GET /healthz, ${c} client(s)`, base.perSec, "req/s", {
        baseline: denoServeRow,
        note: `${note}; ${base.latency}`,
      });
      const baseCpu = cpuRows(`, GET /healthz, ${c} client(s)`, base.sampled!, base.ops);

      const ids = await Promise.all(Array.from({ length: c }, async () => {
        const id = await echo.create();
        await echo.connect(id);
        return id;
      }));
      const rt = await measure(c, echoLoop(echo, ids, payload), { sample: cpu });
      await Promise.all(ids.map((id) => echo.close(id)));
      r.report(
        SECTION,
        `send 64 B + recv 64 B via echo peer, ${c} client(s)`,
        rt.perSec,
        "round trips/s",
        { baseline, note: `2+ HTTP requests per round trip; ${rt.latency}` },
      );
      r.report(
        SECTION,
        `  HTTP requests/s in those round trips, ${c} client(s)`,
        rt.perSec * 2,
        "req/s",
        { baseline },
      );
      cpuRows(` in those round trips, ${c} client(s)`, rt.sampled!, rt.ops * 2, baseCpu);

      // The ceiling: the same clients against a server that only writes the same answers.
      const cannedBase = await healthz(canned.info.url);
      const cannedRow = r.report(
        SECTION,
        `GET /healthz, ${c} client(s), canned answers`,
        cannedBase.perSec,
        "req/s",
        {
          note: "bench/canned_http_server.ts: the same bytes, no work behind them",
        },
      );
      const cannedClient = sessionClient(canned.info.url, info.sessions[0]);
      const cannedRt = await measure(c, echoLoop(cannedClient, ids, payload));
      r.report(
        SECTION,
        `  HTTP requests/s of send + recv, ${c} client(s), canned answers`,
        cannedRt.perSec * 2,
        "req/s",
        {
          baseline: cannedRow,
          note: "the most this client lets any server show against /healthz in this run",
        },
      );
      const deno = sessionClient(denoServe.info.url, denoServe.info.sessions[0]);
      const denoIds = await Promise.all(Array.from({ length: c }, async () => {
        const id = await deno.create();
        await deno.connect(id);
        return id;
      }));
      const drt = await measure(c, echoLoop(deno, denoIds, payload));
      await Promise.all(denoIds.map((id) => deno.close(id)));
      r.report(
        SECTION,
        `  HTTP requests/s in those round trips, ${c} client(s), Deno.serve`,
        drt.perSec * 2,
        "req/s",
        { baseline: denoServeRow, note: `the same on NETISLE_ENGINE=deno-serve; ${drt.latency}` },
      );

      const cc = sessionClient(info.url, info.sessions[1 + CONCURRENCY.indexOf(c)]);
      // No warm-up: each close leaves a TIME-WAIT entry on the client stack.
      const conn = await measure(c, async () => {
        const id = await cc.create();
        await cc.connect(id);
        await cc.close(id);
      }, { maxOps: MAX_CONNECTS_PER_RUN, warmupSeconds: 0 });
      r.report(
        SECTION,
        `create + connect + close a socket, ${c} client(s)`,
        conn.perSec,
        "conn/s",
        { baseline, note: `${conn.ops} connections, 3 HTTP requests each; ${conn.latency}` },
      );
    }
  } finally {
    stop();
    denoServe.stop();
    canned.stop();
  }
}

if (import.meta.main && process.argv.includes("--serve")) {
  const at = process.argv.indexOf("--serve");
  serve(
    Number(process.argv[at + 1]),
    process.argv[at + 2] === "deno-serve" ? "deno-serve" : "netisle",
  );
}
