/**
 * In-process micro-benchmark of what the socket API costs the server per
 * request: the real HTTP/1.1 engine (`Http1Engine`, behind the adapters'
 * guard) and app on an in-memory connection (no kernel sockets, no client
 * in the way), the session joined to an echo peer in the same process as in
 * `api_bench.ts`. Prints µs per `GET /healthz`, per echo round trip (a
 * 64-byte `send`, then `recv` until the bytes are back), per `send`, per
 * `recv` of bytes already queued, per create / connect / delete of a socket,
 * the round trip on the socket table alone (the core's and the echo peer's
 * share), and `healthz`, `send`, `recv` through `app.fetch` with real
 * `Request`s (no engine).
 *
 * ```sh
 * node_modules/deno/deno run --allow-all bench/api_micro.ts [iterations] [--no-fast]
 * node_modules/deno/deno run --allow-all --inspect=127.0.0.1:9229 bench/api_micro.ts 1 --loop
 * ```
 *
 * `--no-fast` turns the lean socket path off (every request through Hono);
 * `--loop` runs round trips for 8 s and `--loop-connect` 2,900 create /
 * connect / delete cycles after 2 s, for a profiler to attach.
 *
 * @module
 */

import process from "node:process";
import { createApp } from "../src/http/app.ts";
import { Http1Engine } from "../src/http/http1_engine.ts";
import type { Http1Transport } from "../src/http/http1_connection.ts";
import { guardHandler } from "../src/http/serve_guard.ts";
import { echoRegistry } from "./api_bench.ts";

const N = Number(process.argv[2] ?? 20000);
const enc = new TextEncoder();
const latin1 = new TextDecoder("latin1");

/** One in-memory connection: the bench writes a request and awaits its response. */
class LoopConn implements Http1Transport {
  #inbox: Uint8Array | undefined;
  #parked: { p: Uint8Array; resolve: (n: number | null) => void } | undefined;
  #out = "";
  #waiting: ((text: string) => void) | undefined;

  /** Sends `request`; resolves with the response's text once `isDone` says it is complete. */
  request(request: Uint8Array, isDone: (text: string) => boolean): Promise<string> {
    this.#out = "";
    this.#inbox = request;
    this.#deliver();
    return new Promise((resolve) => {
      this.#waiting = (t) => {
        if (isDone(t)) {
          this.#waiting = undefined;
          resolve(t);
        }
      };
    });
  }

  read(p: Uint8Array): Promise<number | null> {
    return new Promise((resolve) => {
      this.#parked = { p, resolve };
      this.#deliver();
    });
  }

  write(p: Uint8Array): Promise<number> {
    this.#out += latin1.decode(p);
    this.#waiting?.(this.#out);
    return Promise.resolve(p.length);
  }

  close(): void {}

  closeWrite(): Promise<void> {
    return Promise.resolve();
  }

  #deliver(): void {
    const parked = this.#parked;
    const data = this.#inbox;
    if (!parked || !data) return;
    const n = Math.min(data.length, parked.p.length);
    parked.p.set(data.subarray(0, n));
    this.#inbox = n === data.length ? undefined : data.subarray(n);
    this.#parked = undefined;
    parked.resolve(n);
  }
}

/** A response is complete: its head is in and as many body bytes as Content-Length says. */
function complete(text: string): boolean {
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return false;
  const m = /content-length: (\d+)/i.exec(text.slice(0, end));
  return text.length >= end + 4 + (m ? Number(m[1]) : 0);
}

function bodyOf(text: string): string {
  return text.slice(text.indexOf("\r\n\r\n") + 4);
}

function print(label: string, us: number): void {
  console.log(`${label.padEnd(58)} ${us.toFixed(1).padStart(7)} µs`);
}

async function time(label: string, n: number, op: () => Promise<void>): Promise<void> {
  for (let i = 0; i < Math.min(2000, n); i++) await op();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await op();
  print(label, (performance.now() - t0) * 1000 / n);
}

const { registry, sessions } = echoRegistry(1);
const s = sessions[0];
const app = createApp({
  registry,
  requestLog: false,
  socketFastPath: !process.argv.includes("--no-fast"),
});
const engine = new Http1Engine({}, () => app.fetch, (h) => guardHandler(h, {}));
const conn = new LoopConn();
engine.serve(conn, "127.0.0.1");

const base = `/v1/sessions/${s.id}`;
const auth = `authorization: Bearer ${s.token}\r\n`;
/** The header fields Deno's fetch sends. */
const common = "host: 127.0.0.1:8000\r\naccept: */*\r\naccept-language: *\r\n" +
  "user-agent: Deno/2\r\naccept-encoding: gzip,br\r\n";

async function http(raw: string | Uint8Array): Promise<string> {
  return await conn.request(typeof raw === "string" ? enc.encode(raw) : raw, complete);
}

const createReq = enc.encode(
  `POST ${base}/sockets HTTP/1.1\r\n${common}${auth}content-type: application/json\r\n` +
    `content-length: 18\r\n\r\n{"protocol":"tcp"}`,
);
const connectBody = JSON.stringify({ address: "10.0.2.3", port: 7, timeoutMs: 10_000 });
const connectReq = (id: string) =>
  `POST ${base}/sockets/${id}/connect HTTP/1.1\r\n${common}${auth}` +
  `content-type: application/json\r\ncontent-length: ${connectBody.length}\r\n\r\n${connectBody}`;
const deleteReq = (id: string) => `DELETE ${base}/sockets/${id} HTTP/1.1\r\n${common}${auth}\r\n`;

const id = JSON.parse(bodyOf(await http(createReq))).id as string;
await http(connectReq(id));
const session = registry.get(s.id)!;
const entry = session.sockets.get(id)!;

const payload = "x".repeat(64);
const sendReq = enc.encode(
  `POST ${base}/sockets/${id}/send HTTP/1.1\r\n${common}${auth}` +
    `content-type: application/octet-stream\r\ncontent-length: 64\r\n\r\n${payload}`,
);
const recvReq = enc.encode(
  `POST ${base}/sockets/${id}/recv?maxBytes=64&timeoutMs=10000 HTTP/1.1\r\n${common}${auth}` +
    `content-length: 0\r\n\r\n`,
);
const healthReq = enc.encode(`GET /healthz HTTP/1.1\r\n${common}\r\n`);

async function roundTrip(): Promise<void> {
  await http(sendReq);
  let got = 0;
  while (got < 64) got += bodyOf(await http(recvReq)).length;
}

async function echoArrived(): Promise<void> {
  while (entry.queued().recv < 64) await new Promise((r) => setTimeout(r, 0));
}

if (process.argv.includes("--loop")) {
  const end = performance.now() + 8000;
  let n = 0;
  for (; performance.now() < end; n++) await roundTrip();
  console.log(`${(n / 8).toFixed(0)} round trips/s`);
  process.exit(0);
}
if (process.argv.includes("--loop-connect")) {
  await new Promise((r) => setTimeout(r, 2000));
  const start = performance.now();
  let n = 0;
  // Each close leaves a TIME-WAIT entry: as many as the ephemeral ports take comfortably.
  for (; n < 2900; n++) {
    const cid = JSON.parse(bodyOf(await http(createReq))).id;
    await http(connectReq(cid));
    await http(deleteReq(cid));
  }
  console.log(`${(n / ((performance.now() - start) / 1000)).toFixed(0)} connections/s`);
  process.exit(0);
}

console.log(`api micro-benchmark, ${N} iterations each (engine + app on an in-memory connection)`);
await time("GET /healthz (engine)", N, async () => {
  await http(healthReq);
});
await time("send 64 B + recv 64 B round trip (engine), per round trip", N, roundTrip);
let sendUs = 0;
let recvUs = 0;
for (let i = 0; i < N; i++) {
  const t0 = performance.now();
  await http(sendReq);
  sendUs += performance.now() - t0;
  await echoArrived();
  const t1 = performance.now();
  const r = await http(recvReq);
  recvUs += performance.now() - t1;
  if (bodyOf(r).length !== 64) throw new Error(`recv got ${bodyOf(r).length} bytes`);
}
print("send 64 B (engine)", sendUs * 1000 / N);
print("recv 64 B already queued (engine)", recvUs * 1000 / N);

const connects = Math.min(N, 2000);
const cycle = [0, 0, 0];
for (let i = 0; i < connects; i++) {
  const t0 = performance.now();
  const cid = JSON.parse(bodyOf(await http(createReq))).id;
  const t1 = performance.now();
  await http(connectReq(cid));
  const t2 = performance.now();
  await http(deleteReq(cid));
  const t3 = performance.now();
  cycle[0] += t1 - t0;
  cycle[1] += t2 - t1;
  cycle[2] += t3 - t2;
}
for (const [i, what] of ["create", "connect", "delete"].entries()) {
  print(`${what} a socket (engine)`, cycle[i] * 1000 / connects);
}

const table = session.sockets;
const payloadBytes = enc.encode(payload);
await time("send + receive round trip on the socket table (no HTTP)", N, async () => {
  await table.send(entry, payloadBytes, { timeoutMs: 10_000 });
  let got = 0;
  while (got < 64) {
    got += (await table.receive(entry, { maxBytes: 64 - got, timeoutMs: 10_000 }))!.data.length;
  }
});

const url = `http://127.0.0.1:8000${base}/sockets/${id}`;
const headers = { authorization: `Bearer ${s.token}` };
await time("GET /healthz (app.fetch)", N, async () => {
  await (await app.fetch(new Request("http://127.0.0.1:8000/healthz"))).arrayBuffer();
});
sendUs = 0;
recvUs = 0;
for (let i = 0; i < N; i++) {
  const t0 = performance.now();
  const sent = await app.fetch(
    new Request(`${url}/send`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/octet-stream" },
      body: payloadBytes,
    }),
  );
  await sent.arrayBuffer();
  sendUs += performance.now() - t0;
  await echoArrived();
  const t1 = performance.now();
  const got = await app.fetch(
    new Request(`${url}/recv?maxBytes=64&timeoutMs=10000`, { method: "POST", headers }),
  );
  const n = (await got.arrayBuffer()).byteLength;
  recvUs += performance.now() - t1;
  if (n !== 64) throw new Error(`recv got ${n} bytes`);
}
print("send 64 B (app.fetch)", sendUs * 1000 / N);
print("recv 64 B already queued (app.fetch)", recvUs * 1000 / N);
engine.close();
registry.close();
process.exit(0);
