/**
 * The core lock under load.
 *
 * The CoreLock (src/session/core_lock.ts) is synchronous: a critical section
 * never awaits, so within one isolate no caller ever finds it held and there
 * is no queue to wait in. What load does cause is the delay between work
 * arriving and the core processing it: a frame or an API call sits in the
 * event loop behind every other session's work, and timers fire late. This
 * section measures those delays.
 *
 * Setup: sessions in pairs in one process, each pair's tunnels joined by a
 * "network" that delivers every batch of frames as its own macrotask (a
 * MessageChannel message, as a WebSocket message would arrive), stamped when
 * sent. On each pair a client streams 16 KiB writes to an echo server through
 * the socket API (`session.sockets`); a second loop per session makes a
 * cheap API call (a 64-byte send on a second connection, echoed) every 50 ms,
 * also arriving as a stamped macrotask; each reply's delayed ACK (40 ms)
 * fires a timer. Measured, as p50/p99/max:
 *
 * - frame arrival → core: from the stamp to `session.input` running (event-loop delay);
 * - in-core wait: the session's own histogram (`coreDelay.frames`, also in
 *   `GET /v1/sessions/:sid` as `coreLock.frameWait`): from `input` to the
 *   core processing the frame — the lock's queue, expected 0;
 * - timer lateness: the sessions' `coreDelay.timers` (`coreLock.timerLateness`);
 * - API call arrival → core.
 *
 * The baseline is the same run with one pair and no streaming. Quantiles come
 * from power-of-two histogram buckets (reported as the bucket's upper bound,
 * capped at the maximum): ratios between them are coarse.
 *
 * @module
 */

import process from "node:process";
import { DelayHistogram, type Session, SessionRegistry, SystemClock } from "../src/session/mod.ts";
import { parseIpv4Address } from "../src/wire/mod.ts";
import type { BenchRow, Reporter } from "./report.ts";
import { directCallNs, lockRunNs } from "./core_bench.ts";

const SECTION = "lock";
const RUN_MS = Number(process.env.NETISLE_BENCH_LOCK_SECONDS ?? 5) * 1000;
const SERVER_IP = "10.0.2.2";
const CLIENT_IP = parseIpv4Address("10.0.2.15");
const BULK_PORT = 5001;
const API_PORT = 7;

/** Delivers frame batches between sessions as stamped macrotasks. */
class Network {
  readonly arrival = new DelayHistogram();
  #channel = new MessageChannel();
  #pending = new Map<number, () => void>();
  #next = 0;

  constructor() {
    this.#channel.port2.onmessage = (ev: MessageEvent<{ id: number; t: number }>) => {
      const run = this.#pending.get(ev.data.id);
      if (!run) return;
      this.#pending.delete(ev.data.id);
      run();
    };
  }

  /** Joins two sessions' tunnels through this network. */
  join(a: Session, b: Session): void {
    for (const [from, to] of [[a, b], [b, a]]) {
      from.attachTunnel({
        description: "bench network",
        send: (frames) => this.post(this.arrival, () => to.input(frames)),
        close: () => {},
      });
    }
  }

  /** Posts `fn` as a stamped macrotask; records its delay in `h` before running it. */
  post(h: DelayHistogram, fn: () => void): void {
    const id = this.#next++;
    const t = performance.now();
    this.#pending.set(id, () => {
      h.record(performance.now() - t);
      fn();
    });
    this.#channel.port1.postMessage({ id, t });
  }

  close(): void {
    this.#channel.port1.close();
    this.#channel.port2.close();
  }
}

/** An echo service on `port` of `server`, until `stop` is set. */
function echo(server: Session, port: number, stop: { done: boolean }): void {
  const t = server.sockets;
  const l = t.create("tcp");
  t.bind(l, { port });
  t.listen(l, { backlog: 8 });
  (async () => {
    try {
      while (!stop.done) {
        const e = await t.accept(l, { timeoutMs: 1000 });
        if (!e) continue;
        (async () => {
          try {
            while (!stop.done) {
              const r = await t.receive(e, { maxBytes: 65536, timeoutMs: 1000 });
              if (!r) continue;
              if (r.eof) break;
              await t.send(e, r.data, { timeoutMs: 5000 });
            }
          } catch {
            // The session closed.
          }
        })();
      }
    } catch {
      // The session closed.
    }
  })();
}

async function connect(client: Session, port: number): Promise<string> {
  const e = client.sockets.create("tcp");
  await client.sockets.connect(e, { address: SERVER_IP, port, timeoutMs: 10_000 });
  return e.id;
}

interface Figures {
  arrival: DelayHistogram;
  api: DelayHistogram;
  inCore: DelayHistogram;
  timers: DelayHistogram;
  bulkBytes: number;
  apiCalls: number;
}

/** Runs `pairs` session pairs for RUN_MS; streams bulk data unless `bulk` is false. */
async function scenario(pairs: number, bulk: boolean): Promise<Figures> {
  const registry = new SessionRegistry({ clock: new SystemClock() });
  const net = new Network();
  const stop = { done: false };
  const api = new DelayHistogram();
  const sessions: { client: Session; server: Session }[] = [];
  for (let i = 0; i < pairs; i++) {
    const server = registry.create({ dhcp: false });
    const client = registry.create({ ipv4: { address: CLIENT_IP, prefixLength: 24 }, dhcp: false });
    net.join(client, server);
    echo(server, BULK_PORT, stop);
    echo(server, API_PORT, stop);
    sessions.push({ client, server });
  }
  let bulkBytes = 0;
  let apiCalls = 0;
  const loops: Promise<void>[] = [];
  for (const { client } of sessions) {
    const t = client.sockets;
    const apiId = await connect(client, API_PORT);
    if (bulk) {
      const id = await connect(client, BULK_PORT);
      const chunk = new Uint8Array(16 * 1024);
      loops.push((async () => {
        const e = t.get(id)!;
        while (!stop.done) {
          await t.send(e, chunk, { timeoutMs: 5000 });
          let got = 0;
          while (got < chunk.length && !stop.done) {
            const r = await t.receive(e, { maxBytes: 65536, timeoutMs: 1000 });
            if (r) got += r.data.length;
          }
          bulkBytes += got;
        }
      })());
    }
    const small = new Uint8Array(64);
    loops.push((async () => {
      const e = t.get(apiId)!;
      while (!stop.done) {
        // Every 50 ms: long enough for the 40 ms delayed ACK to fire, so timers run too.
        await new Promise((r) => setTimeout(r, 50));
        // The call "arrives" now and runs when the event loop reaches it.
        await new Promise<void>((resolve) =>
          net.post(api, () => {
            apiCalls++;
            t.send(e, small, { timeoutMs: 5000 }).then(() => resolve(), () => resolve());
          })
        );
        const r = await t.receive(e, { maxBytes: 64, timeoutMs: 1000 });
        if (!r) continue;
      }
    })());
  }
  // Forget the setup; measure steady state.
  net.arrival.reset();
  for (const s of registry.list()) {
    s.coreDelay.frames.reset();
    s.coreDelay.timers.reset();
  }
  await new Promise((r) => setTimeout(r, RUN_MS));
  stop.done = true;
  const inCore = new DelayHistogram();
  const timers = new DelayHistogram();
  for (const s of registry.list()) {
    inCore.merge(s.coreDelay.frames);
    timers.merge(s.coreDelay.timers);
  }
  await Promise.all(loops);
  registry.close();
  net.close();
  return {
    arrival: net.arrival,
    api,
    inCore,
    timers,
    bulkBytes,
    apiCalls,
  };
}

function reportDelays(
  r: Reporter,
  label: string,
  h: DelayHistogram,
  base?: DelayHistogram,
  baseRows?: BenchRow[],
): BenchRow[] {
  const s = h.summary();
  const rows: BenchRow[] = [];
  const qs: Array<["p50" | "p99" | "max", number]> = [["p50", s.p50Ms], ["p99", s.p99Ms], [
    "max",
    s.maxMs,
  ]];
  qs.forEach(([q, v], i) => {
    rows.push(
      r.report(SECTION, `${label}, ${q}`, v, "ms", {
        baseline: base && baseRows && baseRows[i].value > 0 ? baseRows[i] : undefined,
        note: i === 0 ? `${s.count} samples` : undefined,
      }),
    );
  });
  return rows;
}

/** Runs the lock section. */
export async function runLockBenchmarks(r: Reporter): Promise<void> {
  const n = 2_000_000;
  const direct = r.report(
    SECTION,
    "empty section called directly (no lock)",
    directCallNs(n),
    "ns",
  );
  r.report(SECTION, "uncontended run() of an empty section", lockRunNs(n), "ns", {
    baseline: direct,
    note: "the lock never waits: sections are synchronous",
  });

  const pairs = Number(process.env.NETISLE_BENCH_LOCK_PAIRS ?? 8);
  const idle = await scenario(1, false);
  const load = await scenario(pairs, true);
  r.report(
    SECTION,
    `load: ${pairs} session pairs streaming 16 KiB echoes`,
    load.bulkBytes / (RUN_MS / 1000) / 1e6,
    "MB/s",
    {
      note: `echoed, summed; ${load.apiCalls} API calls`,
    },
  );
  const rows: Array<[string, keyof Figures]> = [
    ["frame arrival → core", "arrival"],
    ["in-core wait (lock queue)", "inCore"],
    ["timer lateness", "timers"],
    ["API call arrival → core", "api"],
  ];
  for (const [label, key] of rows) {
    const base = reportDelays(r, `${label}, 1 pair, no streaming`, idle[key] as DelayHistogram);
    reportDelays(
      r,
      `${label}, ${pairs} pairs under load`,
      load[key] as DelayHistogram,
      idle[key] as DelayHistogram,
      base,
    );
  }
}
