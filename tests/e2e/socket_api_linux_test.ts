/**
 * End to end: the HTTP socket API driven with curl against Linux peers
 * through a TAP device and the WebSocket tunnel, in a fresh network
 * namespace (the server, the tunnel CLI and the Linux tools share it; the
 * kernel is 10.0.2.15 on tap0, the session's stack 10.0.2.2). One test per
 * bullet of issue 4:
 *
 * - TCP client: connect to socat, send, receive the echo, shut down writing,
 *   read to the end of the stream, close.
 * - TCP server: bind and listen, Linux curl connects, accept, read the
 *   request, answer it; curl prints the answer.
 * - UDP with socat, unconnected and connected.
 * - A TCP socket upgraded to a WebSocket carries a whole protocol (HTTP to a
 *   Linux server) both ways; a client close sends FIN.
 * - The socket listing and one socket's TCP details.
 * - A pcap of the session's frames that tshark reads.
 * - /openapi.json and /docs.
 * - DELETE of the session resets the Linux side's connection.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import {
  commandExists,
  DENO,
  e2eSkipReason,
  type HttpResult,
  Netns,
  parseCurlOutput,
  type Proc,
} from "./harness.ts";

function skipReason(): string | undefined {
  const reason = e2eSkipReason();
  if (reason) return reason;
  const missing = ["socat", "curl", "tshark", "python3"].filter((c) => !commandExists(c));
  if (missing.length === 0) return undefined;
  const why = `needs ${missing.join(", ")}`;
  if (process.env.CI === "true") {
    throw new Error(`end-to-end tests must run in CI but cannot: ${why}`);
  }
  console.warn(`\n*** SKIPPING socket API end-to-end tests: ${why} ***\n`);
  return why;
}

const skip = skipReason();

const API = "http://127.0.0.1:8787";

class Bed {
  ns!: Netns;
  procs: Proc[] = [];
  sid = "";
  token = "";

  async start(): Promise<void> {
    this.ns = new Netns("sockapi");
    const server = this.spawn(DENO, ["run", "-A", "examples/deno/server.ts"], { PORT: "8787" });
    await server.waitFor(/listening on http:\/\/127\.0\.0\.1:8787/);
    const tunnel = this.spawn(DENO, [
      "run",
      "-A",
      "tunnel/cli.ts",
      "--server",
      API,
      "--create",
      "--tap",
      "tap0",
    ]);
    const [, id, token] = await tunnel.waitFor(/session (s_\S+) token (\S+)/);
    await tunnel.waitFor(/tunnel open/);
    this.sid = id;
    this.token = token;
    this.ns.exec("ip", ["addr", "add", "10.0.2.15/24", "dev", "tap0"]);
    this.ns.exec("ip", ["link", "set", "tap0", "up"]);
    this.ns.exec("ping", ["-c", "1", "-W", "5", "10.0.2.2"]);
  }

  spawn(cmd: string, args: string[], env: Record<string, string> = {}): Proc {
    const p = this.ns.spawn(cmd, args, env);
    this.procs.push(p);
    return p;
  }

  /** curl inside the namespace; `path` is relative to the session unless it starts with `/`. */
  curl(
    method: string,
    path: string,
    o: { json?: unknown; data?: string; token?: boolean; timeoutMs?: number } = {},
  ): HttpResult {
    const url = path.startsWith("/") ? `${API}${path}` : `${API}/v1/sessions/${this.sid}/${path}`;
    const args = ["-s", "-i", "-X", method];
    if (o.token !== false) args.push("-H", `Authorization: Bearer ${this.token}`);
    // Plain `curl -d`, as a user types it: the server reads the body as JSON anyway.
    if (o.json !== undefined) args.push("-d", JSON.stringify(o.json));
    if (o.data !== undefined) args.push("--data-binary", "@-");
    args.push(url);
    return parseCurlOutput(
      this.ns.exec("curl", args, { input: o.data, timeoutMs: o.timeoutMs ?? 90_000 }),
    );
  }

  json(method: string, path: string, o: Parameters<Bed["curl"]>[2] = {}, status = 200) {
    const r = this.curl(method, path, o);
    assert.equal(r.status, status, `${method} ${path}: ${r.status} ${r.body}`);
    return JSON.parse(r.body);
  }

  socket(protocol: "tcp" | "udp"): string {
    return this.json("POST", "sockets", { json: { protocol } }, 201).id;
  }

  /** Reads a TCP socket to the end of the stream. */
  readToEnd(id: string): string {
    let text = "";
    for (let i = 0; i < 100; i++) {
      const r = this.curl("POST", `sockets/${id}/recv?timeoutMs=10000`);
      assert.ok(r.status === 200 || r.status === 204, `recv: ${r.status} ${r.body}`);
      if (r.headers["netisle-eof"] === "1") return text;
      text += r.body;
    }
    throw new Error(`no end of stream; read so far: ${JSON.stringify(text)}`);
  }

  async stop(): Promise<void> {
    for (const p of this.procs.reverse()) await p.stop();
    this.ns?.delete();
  }
}

describe("e2e: the HTTP socket API with curl against Linux through a TAP tunnel", { skip }, () => {
  const bed = new Bed();
  before(async () => await bed.start());
  after(async () => await bed.stop());

  it("TCP client: connect to socat, send, receive the reply, shut down writing, read to EOF, close", async () => {
    const echo = bed.spawn("socat", ["TCP-LISTEN:7000,bind=10.0.2.15,reuseaddr", "EXEC:cat"]);
    await bed.ns.waitListening(7000);
    const id = bed.socket("tcp");
    const c = bed.json("POST", `sockets/${id}/connect`, {
      json: { address: "10.0.2.15", port: 7000, timeoutMs: 10000 },
    });
    assert.deepEqual(c.remote, { address: "10.0.2.15", port: 7000 });
    assert.deepEqual(bed.json("POST", `sockets/${id}/send`, { data: "hello linux\n" }), {
      bytes: 12,
    });
    let reply = "";
    for (let i = 0; i < 20 && reply.length < 12; i++) {
      reply += bed.curl("POST", `sockets/${id}/recv?timeoutMs=5000`).body;
    }
    assert.equal(reply, "hello linux\n");
    const sh = bed.json("POST", `sockets/${id}/shutdown`, { json: { how: "write" } });
    assert.equal(sh.tcpState, "FIN_WAIT_1");
    assert.equal(bed.readToEnd(id), "");
    assert.equal(bed.curl("DELETE", `sockets/${id}`).status, 204);
    await echo.stop();
  });

  it("TCP server: bind and listen, Linux curl connects, accept, read the request, answer", async () => {
    const l = bed.socket("tcp");
    bed.json("POST", `sockets/${l}/bind`, { json: { port: 8080 } });
    assert.deepEqual(bed.json("POST", `sockets/${l}/listen`, { json: {} }).local, {
      address: "10.0.2.2",
      port: 8080,
    });
    const client = bed.spawn("curl", ["-s", "--max-time", "30", "http://10.0.2.2:8080/hello"]);
    const acc = bed.json("POST", `sockets/${l}/accept`, { json: { timeoutMs: 10000 } });
    assert.equal(acc.remote.address, "10.0.2.15");
    let request = "";
    for (let i = 0; i < 20 && !request.includes("\r\n\r\n"); i++) {
      request += bed.curl("POST", `sockets/${acc.id}/recv?timeoutMs=5000`).body;
    }
    assert.match(request, /^GET \/hello HTTP\/1\.1\r\n/);
    const body = "hello from the stack\n";
    bed.json("POST", `sockets/${acc.id}/send`, {
      data: `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    });
    assert.equal(bed.curl("DELETE", `sockets/${acc.id}`).status, 204);
    await client.waitFor(/hello from the stack/, 10_000);
    assert.equal(bed.curl("DELETE", `sockets/${l}`).status, 204);
  });

  it("UDP with socat: unconnected send and recv with the sender's headers, then connected", async () => {
    const sink = bed.spawn("socat", ["-u", "UDP-RECV:9999,bind=10.0.2.15", "-"]);
    await bed.ns.waitListening(9999, true);
    const u = bed.socket("udp");
    bed.json("POST", `sockets/${u}/bind`, { json: { port: 5000 } });
    assert.deepEqual(
      bed.json("POST", `sockets/${u}/send?address=10.0.2.15&port=9999`, { data: "ping\n" }),
      { bytes: 5 },
    );
    await sink.waitFor(/ping/, 10_000);
    bed.ns.exec("sh", ["-c", "echo pong | socat - UDP-SENDTO:10.0.2.2:5000,sourceport=4444"]);
    const r = bed.curl("POST", `sockets/${u}/recv?timeoutMs=5000`);
    assert.equal(r.status, 200);
    assert.equal(r.body, "pong\n");
    assert.equal(r.headers["netisle-peer-address"], "10.0.2.15");
    assert.equal(r.headers["netisle-peer-port"], "4444");

    const echo = bed.spawn("socat", ["UDP-LISTEN:9998,bind=10.0.2.15", "EXEC:cat"]);
    await bed.ns.waitListening(9998, true);
    const c = bed.socket("udp");
    const conn = bed.json("POST", `sockets/${c}/connect`, {
      json: { address: "10.0.2.15", port: 9998 },
    });
    assert.ok(conn.local.port >= 49152);
    bed.json("POST", `sockets/${c}/send`, { data: "echo me\n" });
    const back = bed.curl("POST", `sockets/${c}/recv?timeoutMs=5000`);
    assert.equal(back.body, "echo me\n");
    assert.equal(back.headers["netisle-peer-port"], "9998");
    assert.equal(bed.json("GET", `sockets/${c}`).state, "connected");
    await sink.stop();
    await echo.stop();
  });

  it("a WebSocket stream carries HTTP to a Linux server both ways; the peer's FIN closes it", async () => {
    const dir = `${tmpdir()}/netisle-e2e-www-${process.pid}`;
    bed.ns.exec("sh", ["-c", `mkdir -p ${dir} && echo 'served by Linux' > ${dir}/index.html`]);
    const web = bed.spawn("python3", [
      "-m",
      "http.server",
      "8000",
      "--bind",
      "10.0.2.15",
      "--directory",
      dir,
    ]);
    await web.waitFor(/Serving HTTP/, 10_000);
    const id = bed.socket("tcp");
    bed.json("POST", `sockets/${id}/connect`, { json: { address: "10.0.2.15", port: 8000 } });
    const url =
      `ws://127.0.0.1:8787/v1/sessions/${bed.sid}/sockets/${id}/stream?token=${bed.token}`;
    const ws = bed.spawn(DENO, [
      "run",
      "-A",
      "tests/e2e/fixtures/ws_client.ts",
      url,
      "GET /index.html HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n",
      "wait",
    ]);
    await ws.waitFor(/CLOSE 1000/, 20_000);
    assert.match(ws.output, /HTTP\/1\.0 200 OK/);
    assert.match(ws.output, /served by Linux/);
    await web.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a WebSocket client close sends FIN to the Linux peer", async () => {
    const echo = bed.spawn("socat", [
      "-d",
      "-d",
      "TCP-LISTEN:7001,bind=10.0.2.15,reuseaddr",
      "EXEC:cat",
    ]);
    await bed.ns.waitListening(7001);
    const id = bed.socket("tcp");
    bed.json("POST", `sockets/${id}/connect`, { json: { address: "10.0.2.15", port: 7001 } });
    const url =
      `ws://127.0.0.1:8787/v1/sessions/${bed.sid}/sockets/${id}/stream?token=${bed.token}`;
    const ws = bed.spawn(DENO, [
      "run",
      "-A",
      "tests/e2e/fixtures/ws_client.ts",
      url,
      "SSH-2.0-netisle\\r\\n",
      "close-after:17",
    ]);
    await ws.waitFor(/CLOSE 1000/, 20_000);
    assert.match(ws.output, /RECV "SSH-2.0-netisle\\r\\n"/);
    // Our FIN ends cat; socat closes: the socket, still in the table, reads the end over HTTP.
    await echo.waitFor(/exiting with status 0/, 10_000);
    assert.equal(bed.readToEnd(id), "");
    await echo.stop();
  });

  it("the listing shows state, pcb list, endpoints and queues; details show rtt, cwnd, windows", async () => {
    const srv = bed.spawn("socat", ["TCP-LISTEN:7002,bind=10.0.2.15,reuseaddr", "EXEC:cat"]);
    await bed.ns.waitListening(7002);
    const id = bed.socket("tcp");
    bed.json("POST", `sockets/${id}/connect`, { json: { address: "10.0.2.15", port: 7002 } });
    bed.json("POST", `sockets/${id}/send`, { data: "x".repeat(1000) });
    let got = 0;
    for (let i = 0; i < 20 && got < 1000; i++) {
      got += bed.curl("POST", `sockets/${id}/recv?timeoutMs=5000`).body.length;
    }
    const list = bed.json("GET", "sockets");
    const row = list.sockets.find((s: { id: string }) => s.id === id);
    assert.equal(row.state, "connected");
    assert.equal(row.tcpState, "ESTABLISHED");
    assert.equal(row.pcbList, "active");
    assert.deepEqual(row.remote, { address: "10.0.2.15", port: 7002 });
    assert.equal(typeof row.sendQueued, "number");
    assert.ok(list.pcbs.active >= 1);
    const d = bed.json("GET", `sockets/${id}`);
    assert.ok(d.tcp.rttMs > 0, JSON.stringify(d.tcp));
    assert.ok(d.tcp.cwnd > 0 && d.tcp.sendWindow > 0 && d.tcp.recvWindow > 0);
    assert.equal(d.tcp.retransmits, 0);
    assert.equal(d.tcp.sack, true, "Linux offers SACK");
    bed.curl("DELETE", `sockets/${id}?abort=true`);
    await srv.stop();
  });

  it("streams a pcap of the session's frames that tshark reads", () => {
    const file = `${tmpdir()}/netisle-e2e-${process.pid}.pcap`;
    const cap = bed.ns.exec("sh", [
      "-c",
      `(sleep 0.5; ping -c 3 -i 0.2 10.0.2.2 >/dev/null) & curl -s -H "Authorization: Bearer ${bed.token}" ` +
      `"${API}/v1/sessions/${bed.sid}/pcap?seconds=2.5" -o ${file}; wait; tshark -r ${file} -Y icmp`,
    ], { timeoutMs: 30_000 });
    assert.ok((cap.match(/Echo \(ping\) request/g) ?? []).length >= 3, cap);
    assert.ok((cap.match(/Echo \(ping\) reply/g) ?? []).length >= 3, cap);
    rmSync(file, { force: true });
  });

  it("serves /openapi.json with every socket route, and /docs", () => {
    const doc = bed.json("GET", "/openapi.json", { token: false });
    assert.equal(doc.openapi, "3.1.0");
    for (const p of ["bind", "listen", "accept", "connect", "send", "recv", "shutdown", "stream"]) {
      assert.ok(doc.paths[`/v1/sessions/{sid}/sockets/{id}/${p}`], p);
    }
    const docs = bed.curl("GET", "/docs", { token: false });
    assert.equal(docs.status, 200);
    assert.match(docs.body, /openapi\.json/);
  });

  it("DELETE of the session resets the Linux side's connection and leaves nothing", async () => {
    const srv = bed.spawn("socat", [
      "-d",
      "-d",
      "TCP-LISTEN:7003,bind=10.0.2.15,reuseaddr",
      "EXEC:cat",
    ]);
    await bed.ns.waitListening(7003);
    const id = bed.socket("tcp");
    bed.json("POST", `sockets/${id}/connect`, { json: { address: "10.0.2.15", port: 7003 } });
    assert.match(
      bed.ns.exec("ss", ["-tn", "state", "established", "sport", "= :7003"]),
      /10\.0\.2\.2/,
    );
    assert.equal(bed.curl("DELETE", `/v1/sessions/${bed.sid}`).status, 204);
    await srv.waitFor(/reset|exiting/i, 10_000);
    assert.doesNotMatch(
      bed.ns.exec("ss", ["-tn", "state", "established", "sport", "= :7003"]),
      /10\.0\.2\.2/,
    );
    assert.equal(bed.curl("GET", "sockets").status, 404);
  });
});
