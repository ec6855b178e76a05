/**
 * Sessions benchmark: what one session costs.
 *
 * - Memory per idle session at 1,000 and 10,000 sessions, created through the
 *   registry exactly as `POST /v1/sessions` does (`registry.create` then
 *   `sessionView()`), measured with `process.memoryUsage()` (heap used plus
 *   external memory) after forced GC. Target: at most 64 KiB per session.
 * - Memory per established TCP connection: the sessions are paired (one
 *   listens, the other connects through the socket API, `session.sockets`),
 *   their tunnels joined in process; measured after the handshake and again
 *   after a 64-byte request and a 64-byte reply on every connection.
 * - Time to create a session (median and p99 of single creations).
 *
 * (Before the TCP send buffer grew by doubling from 4 KiB, the first write
 * allocated the whole 512 KiB buffer: about 537 KiB per session with one used
 * connection, measured with this file at 200 sessions.)
 *
 * Needs `globalThis.gc` (`--v8-flags=--expose-gc`, set in the `bench` task);
 * without it the memory figures are skipped, loudly.
 *
 * @module
 */

import process from "node:process";
import {
  type Session,
  SessionRegistry,
  SystemClock,
  type TunnelEndpoint,
} from "../src/session/mod.ts";
import { parseIpv4Address } from "../src/wire/mod.ts";
import { median, quantile, type Reporter } from "./report.ts";
import { sessionView } from "../src/http/session_view.ts";

const SECTION = "sessions";
const KIB = 1024;
/** The per-session memory target of the brief. */
const TARGET_BYTES = 64 * KIB;

type Gc = () => void;

/** Heap used plus external memory (ArrayBuffer backing stores), after a full GC. */
function settledBytes(gc: Gc): number {
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/** Delivers frames to another session on a later microtask (never from inside a core section). */
function joinTunnels(a: Session, b: Session): void {
  const endpoint = (peer: Session): TunnelEndpoint => ({
    description: "in-process bench link",
    send: (frames) => queueMicrotask(() => peer.input(frames)),
    close: () => {},
  });
  a.attachTunnel(endpoint(b));
  b.attachTunnel(endpoint(a));
}

interface Pair {
  client: Session;
  server: Session;
}

const CLIENT_IP = "10.0.2.15";
const SERVER_IP = "10.0.2.2";
const PORT = 7;

/** Opens one connection per pair through the socket API; returns the accepted and connected entries. */
async function connectPairs(pairs: Pair[]): Promise<
  { client: Session; server: Session; c: string; s: string }[]
> {
  const out: { client: Session; server: Session; c: string; s: string }[] = [];
  const batch = 200;
  for (let i = 0; i < pairs.length; i += batch) {
    const part = pairs.slice(i, i + batch);
    out.push(
      ...await Promise.all(part.map(async ({ client, server }) => {
        const l = server.sockets.create("tcp");
        server.sockets.bind(l, { port: PORT });
        server.sockets.listen(l, { backlog: 4 });
        const c = client.sockets.create("tcp");
        const accepted = server.sockets.accept(l, { timeoutMs: 10_000 });
        await client.sockets.connect(c, { address: SERVER_IP, port: PORT, timeoutMs: 10_000 });
        const s = await accepted;
        if (!s) throw new Error(`sessions bench: accept on ${server.id} timed out`);
        return { client, server, c: c.id, s: s.id };
      })),
    );
  }
  return out;
}

/** Sends 64 bytes each way on every connection and reads them. */
async function exchange64(
  conns: { client: Session; server: Session; c: string; s: string }[],
): Promise<void> {
  const payload = new Uint8Array(64).fill(0x61);
  const batch = 200;
  for (let i = 0; i < conns.length; i += batch) {
    await Promise.all(
      conns.slice(i, i + batch).map(async ({ client, server, c, s }) => {
        const ce = client.sockets.get(c)!;
        const se = server.sockets.get(s)!;
        await client.sockets.send(ce, payload);
        let got = 0;
        while (got < 64) {
          const r = await server.sockets.receive(se, { maxBytes: 4096, timeoutMs: 10_000 });
          if (!r || r.eof) throw new Error(`sessions bench: no request on ${server.id}`);
          got += r.data.length;
        }
        await server.sockets.send(se, payload);
        got = 0;
        while (got < 64) {
          const r = await client.sockets.receive(ce, { maxBytes: 4096, timeoutMs: 10_000 });
          if (!r || r.eof) throw new Error(`sessions bench: no reply on ${client.id}`);
          got += r.data.length;
        }
      }),
    );
  }
  // Let delayed ACKs and their timers run out.
  await new Promise((r) => setTimeout(r, 100));
}

/** One run at `n` sessions: memory per idle session, per connection, and creation times. */
async function atScale(r: Reporter, n: number, gc: Gc | undefined): Promise<void> {
  const clock = new SystemClock();
  const registry = new SessionRegistry({ clock, limits: { maxSessions: n } });
  const before = gc ? settledBytes(gc) : 0;
  const createMs: number[] = [];
  const sessions: Session[] = [];
  const client = { address: parseIpv4Address(CLIENT_IP), prefixLength: 24 };
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    // Even sessions are servers at the default address, odd ones clients (DHCP off on clients).
    const s = i % 2 === 0 ? registry.create({}) : registry.create({ ipv4: client, dhcp: false });
    sessionView(s);
    createMs.push(performance.now() - t0);
    sessions.push(s);
  }
  r.report(SECTION, `create a session, median (${n} created)`, median(createMs) * 1000, "µs");
  r.report(SECTION, `create a session, p99 (${n} created)`, quantile(createMs, 0.99) * 1000, "µs");
  let idle: number | undefined;
  if (gc) {
    idle = (settledBytes(gc) - before) / n;
    r.report(SECTION, `memory per idle session at ${n} sessions`, idle / KIB, "KiB", {
      note: `target ≤ ${TARGET_BYTES / KIB} KiB: ${idle <= TARGET_BYTES ? "met" : "NOT met"}`,
    });
  }

  const pairs: Pair[] = [];
  for (let i = 0; i + 1 < n; i += 2) pairs.push({ server: sessions[i], client: sessions[i + 1] });
  for (const p of pairs) joinTunnels(p.client, p.server);
  const joined = gc ? settledBytes(gc) : 0;
  const t0 = performance.now();
  const conns = await connectPairs(pairs);
  const connectSecs = (performance.now() - t0) / 1000;
  r.report(
    SECTION,
    `  connections opened through the socket API (${n} sessions)`,
    conns.length / connectSecs,
    "conn/s",
    {
      note: `${conns.length} connections, in batches of 200`,
    },
  );
  if (gc) {
    // Two connection endpoints per pair (plus the listener on the server side).
    const perConn = (settledBytes(gc) - joined) / (2 * conns.length);
    r.report(
      SECTION,
      `memory per established TCP connection endpoint (${n} sessions)`,
      perConn / KIB,
      "KiB",
      {
        note: "socket entry + TCB, handshake only; listener counted in",
      },
    );
    await exchange64(conns);
    const used = (settledBytes(gc) - joined) / (2 * conns.length);
    r.report(SECTION, `  after 64 bytes each way (${n} sessions)`, used / KIB, "KiB", {
      note: "send buffer and receive queue now allocated",
    });
    const total = (settledBytes(gc) - before) / n;
    r.report(
      SECTION,
      `memory per session with one used connection (${n} sessions)`,
      total / KIB,
      "KiB",
      {
        note: `target ≤ ${TARGET_BYTES / KIB} KiB: ${total <= TARGET_BYTES ? "met" : "NOT met"}`,
      },
    );
  }
  registry.close();
}

/** Runs the sessions section. Sizes: `NETISLE_BENCH_SESSIONS` (comma-separated), default 1000,10000. */
export async function runSessionsBenchmarks(r: Reporter): Promise<void> {
  const gc = (globalThis as { gc?: Gc }).gc;
  if (!gc) {
    r.skip(
      `${SECTION} (memory)`,
      "globalThis.gc is missing: run Deno with --v8-flags=--expose-gc (the bench task does)",
    );
  }
  const sizes = (process.env.NETISLE_BENCH_SESSIONS ?? "1000,10000").split(",").map(Number);
  for (const n of sizes) await atScale(r, n, gc);
}
