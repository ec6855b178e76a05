/**
 * The limits the runtime adapters add (issue 11), on a real Deno server on
 * loopback and, where the runtime matters, on the Bun server too: malformed
 * upgrades answer 400 without a stack trace, a connection that never sends
 * its request head is closed, the per-address and total connection caps
 * refuse at accept time, 408 closes the connection, session creation is
 * rate-limited per address (429 + Retry-After), the example servers refuse
 * tokens outside RFC 6750's syntax and warn when they listen beyond loopback
 * without an admin token. Plus the pure pieces (gate, address groups, rate
 * limit, X-Forwarded-For).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { spawnSync } from "node:child_process";
import { serveDeno } from "../src/http/serve_deno.ts";
import { SessionRegistry, SystemClock } from "../src/session/mod.ts";
import { addressGroup, ConnectionGate, RateLimitedLog } from "../src/http/connection_gate.ts";
import { clientAddress, SessionRateLimit } from "../src/http/session_rate_limit.ts";
import { readServerConfig, startupWarnings } from "../examples/server_config.ts";
import { BUN, DENO, Proc, ROOT } from "./e2e/harness.ts";

type Opts = Parameters<typeof serveDeno>[0];

async function withDeno(
  extra: Partial<Opts>,
  fn: (base: string, port: number, server: ReturnType<typeof serveDeno>) => Promise<void>,
): Promise<void> {
  const registry = new SessionRegistry({ clock: new SystemClock() });
  const ac = new AbortController();
  let base = "";
  const server = serveDeno({
    registry,
    hostname: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    requestLog: false,
    ...extra,
    onListen: (url) => base = url,
  });
  try {
    await fn(base, server.addr.port, server);
  } finally {
    registry.close();
    ac.abort();
    await server.finished;
  }
}

/** Sends raw bytes on a new connection; resolves with everything read until the peer closes. */
function rawExchange(
  port: number,
  request: string,
  opts: { localAddress?: string; timeoutMs?: number } = {},
): Promise<{ text: string; closedByPeer: boolean; ms: number }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const sock = net.connect({ host: "127.0.0.1", port, localAddress: opts.localAddress });
    let text = "";
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ text, closedByPeer: false, ms: Date.now() - t0 });
    }, opts.timeoutMs ?? 5000);
    sock.on("connect", () => {
      if (request) sock.write(request);
    });
    sock.on("data", (d) => text += new TextDecoder().decode(d));
    const done = () => {
      clearTimeout(timer);
      resolve({ text, closedByPeer: true, ms: Date.now() - t0 });
    };
    sock.on("end", done);
    sock.on("error", done);
  });
}

const UPGRADE_NO_KEY = "GET /v1/sessions/s_AAAAAAAAAAAAAAAAAAAAAA/tunnel HTTP/1.1\r\n" +
  "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";

describe("adapter limits (issue 11)", () => {
  it("a malformed upgrade answers 400 EINVAL problem+json, a wrong version 426, no stack trace (Deno)", async () => {
    await withDeno({}, async (_base, port) => {
      const errors: unknown[] = [];
      const orig = console.error;
      console.error = (...a: unknown[]) => errors.push(a);
      try {
        const r = await rawExchange(port, UPGRADE_NO_KEY);
        assert.match(r.text, /^HTTP\/1\.1 400 /);
        assert.match(r.text, /content-type: application\/problem\+json/i);
        assert.match(r.text, /"code":"EINVAL"/);
        assert.match(r.text, /Sec-WebSocket-Key is missing/);
        const v = await rawExchange(
          port,
          UPGRADE_NO_KEY.replace("Version: 13", "Version: 8").replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
          ),
        );
        assert.match(v.text, /^HTTP\/1\.1 426 /);
        assert.match(v.text, /sec-websocket-version: 13/i);
      } finally {
        console.error = orig;
      }
      assert.deepEqual(errors, [], "nothing printed to the error log");
    });
  });

  it("a connection that never sends its request head is closed after the header timeout", async () => {
    await withDeno({ headersTimeoutMs: 300 }, async (_base, port) => {
      const idle = await rawExchange(port, "", { timeoutMs: 5000 });
      assert.ok(idle.closedByPeer, "the server closed the idle connection");
      const half = await rawExchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n", {
        timeoutMs: 5000,
      });
      assert.ok(half.closedByPeer, "the server closed the half-sent head");
      console.log(`idle connection closed after ${idle.ms} ms, half head after ${half.ms} ms`);
    });
  });

  it("caps connections per address and in total at accept time; others still get in", async () => {
    await withDeno(
      { maxConnectionsPerAddress: 3, maxConnections: 5 },
      async (base, port, server) => {
        const held: net.Socket[] = [];
        const connect = (localAddress: string) =>
          new Promise<net.Socket>((resolve) => {
            const s = net.connect({ host: "127.0.0.1", port, localAddress }, () => resolve(s));
            s.on("error", () => {});
            held.push(s);
          });
        try {
          for (let i = 0; i < 3; i++) await connect("127.0.0.2");
          await waitFor(() => server.connections!.open() === 3, "3 open");
          const refused = await rawExchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", {
            localAddress: "127.0.0.2",
          });
          assert.equal(refused.text, "", "a 4th from the same address is closed unanswered");
          assert.ok(refused.closedByPeer);
          assert.equal(server.connections!.refused["per-address"], 1);
          const other = await fetch(`${base}/healthz`);
          assert.equal(other.status, 200, "another address still gets in");
          await other.body?.cancel();
          for (let i = 0; i < 2; i++) await connect("127.0.0.3");
          await waitFor(() => server.connections!.open() >= 5, "5 open");
          const full = await rawExchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", {
            localAddress: "127.0.0.4",
          });
          assert.equal(full.text, "", "over the total cap: closed unanswered");
          assert.ok(server.connections!.refused.total >= 1);
        } finally {
          for (const s of held) s.destroy();
        }
        // fetch's keep-alive connection may stay open; the held ones are released.
        await waitFor(() => server.connections!.open() <= 1, "the held connections released");
      },
    );
  });

  it("408 EBODYTIMEOUT closes the connection", async () => {
    await withDeno({ bodyTimeoutMs: 300 }, async (base, port) => {
      const s = await (await fetch(`${base}/v1/sessions`, { method: "POST" })).json();
      const sock = await (await fetch(`${base}/v1/sessions/${s.id}/sockets`, {
        method: "POST",
        headers: { authorization: `Bearer ${s.token}`, "content-type": "application/json" },
        body: JSON.stringify({ protocol: "udp" }),
      })).json();
      const r = await rawExchange(
        port,
        `POST /v1/sessions/${s.id}/sockets/${sock.id}/send?address=10.0.2.15&port=9 HTTP/1.1\r\n` +
          `Host: x\r\nAuthorization: Bearer ${s.token}\r\n` +
          "Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\nabc",
        { timeoutMs: 8000 },
      );
      assert.match(r.text, /^HTTP\/1\.1 408 /);
      assert.match(r.text, /EBODYTIMEOUT/);
      assert.ok(r.closedByPeer, "the server closed the connection after the 408");
      console.log(`408 then close after ${r.ms} ms`);
    });
  });

  it("request bodies in flight are budgeted before they are read: 429 ENOBUFS past the budget", async () => {
    // Budget 4 MiB: one address may hold a quarter, 1 MiB: one slow 1 MiB body, not two.
    await withDeno(
      { bodyBudgetBytes: 4 * 1024 * 1024, bodyTimeoutMs: 2000 },
      async (base, port, server) => {
        const s = await (await fetch(`${base}/v1/sessions`, { method: "POST" })).json();
        const sock = await (await fetch(`${base}/v1/sessions/${s.id}/sockets`, {
          method: "POST",
          headers: { authorization: `Bearer ${s.token}`, "content-type": "application/json" },
          body: JSON.stringify({ protocol: "udp" }),
        })).json();
        const head = `POST /v1/sessions/${s.id}/sockets/${sock.id}/send?address=10.0.2.15&port=9 ` +
          `HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.token}\r\n` +
          "Content-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\nabc";
        const first = rawExchange(port, head, { timeoutMs: 8000 });
        await waitFor(
          () => server.bodyBytesInFlight!() === 1024 * 1024,
          "the first body's reservation",
        );
        const second = await rawExchange(port, head, { timeoutMs: 8000 });
        assert.match(second.text, /^HTTP\/1\.1 429 /);
        assert.match(second.text, /"code":"ENOBUFS"/);
        assert.match(second.text, /retry-after: 1/i);
        const other = await rawExchange(port, head, { localAddress: "127.0.0.9", timeoutMs: 8000 });
        assert.match(other.text, /^HTTP\/1\.1 408 /, "another address has its own share");
        assert.match((await first).text, /^HTTP\/1\.1 408 /);
        const again = await fetch(
          `${base}/v1/sessions/${s.id}/sockets/${sock.id}/send?address=10.0.2.15&port=9`,
          {
            method: "POST",
            headers: {
              authorization: `Bearer ${s.token}`,
              "content-type": "application/octet-stream",
            },
            body: new Uint8Array(100),
          },
        );
        await again.body?.cancel();
        assert.equal(again.status, 200, "the budget is released after the 408");
      },
    );
  });

  it("session creation is rate-limited per address: 429 ERATELIMIT with Retry-After", async () => {
    await withDeno({ sessionsPerMinute: 3 }, async (base) => {
      const statuses: number[] = [];
      let last: Response | undefined;
      for (let i = 0; i < 5; i++) {
        last = await fetch(`${base}/v1/sessions`, { method: "POST" });
        statuses.push(last.status);
        if (i < 4) await last.body?.cancel();
      }
      assert.deepEqual(statuses, [201, 201, 201, 429, 429]);
      assert.equal(last!.headers.get("content-type"), "application/problem+json");
      const body = await last!.json();
      assert.equal(body.code, "ERATELIMIT");
      const retry = Number(last!.headers.get("retry-after"));
      assert.ok(retry >= 1 && retry <= 20, `Retry-After ${retry}`);
      console.log(`sessions: ${statuses.join(" ")}; Retry-After ${retry} s; ${body.detail}`);
    });
  });

  it("with a trusted proxy the limit counts X-Forwarded-For's entry, and ignores what clients add", async () => {
    await withDeno({ sessionsPerMinute: 1, trustProxy: 1 }, async (base) => {
      const post = async (xff: string) => {
        const r = await fetch(`${base}/v1/sessions`, {
          method: "POST",
          headers: { "x-forwarded-for": xff },
        });
        await r.body?.cancel();
        return r.status;
      };
      assert.equal(await post("198.51.100.1"), 201);
      assert.equal(await post("203.0.113.5, 198.51.100.1"), 429, "a forged left entry is ignored");
      assert.equal(await post("198.51.100.2"), 201, "another client behind the proxy");
    });
  });

  it("the pure pieces: gate, address groups, rate limit, X-Forwarded-For, rate-limited log", () => {
    const gate = new ConnectionGate({ maxConnections: 3, maxConnectionsPerAddress: 2 });
    const a = gate.admit("2001:db8::1");
    const b = gate.admit("2001:db8:0:0:ffff::2");
    assert.equal(typeof a, "function");
    assert.equal(typeof b, "function");
    assert.equal(gate.admit("2001:db8::3"), "per-address", "one /64 counts as one address");
    assert.equal(typeof gate.admit("192.0.2.1"), "function");
    assert.equal(gate.admit("192.0.2.2"), "total");
    (a as () => void)();
    (a as () => void)();
    assert.equal(gate.open, 2, "release is idempotent");
    assert.equal(addressGroup("::ffff:192.0.2.7"), "192.0.2.7");
    assert.equal(addressGroup("2001:db8::1"), "2001:db8:0:0::/64");
    assert.equal(addressGroup("[fe80::1%eth0]"), "fe80:0:0:0::/64");

    const limit = new SessionRateLimit({ perMinute: 2 });
    assert.equal(limit.check("192.0.2.1", 0), undefined);
    assert.equal(limit.check("192.0.2.1", 0), undefined);
    const refused = limit.check("192.0.2.1", 0);
    assert.equal(refused?.status, 429);
    assert.equal(refused?.headers.get("retry-after"), "30");
    assert.equal(limit.check("192.0.2.1", 30_000), undefined, "one token back after 30 s");
    assert.equal(limit.check("192.0.2.9", 0), undefined, "other addresses have their own bucket");

    const h = new Headers({ "x-forwarded-for": "203.0.113.9, 198.51.100.2 , 192.0.2.3" });
    assert.equal(clientAddress(h, "10.0.0.1", 0), "10.0.0.1");
    assert.equal(clientAddress(h, "10.0.0.1", 1), "192.0.2.3");
    assert.equal(clientAddress(h, "10.0.0.1", 2), "198.51.100.2");
    assert.equal(clientAddress(h, "10.0.0.1", 9), "203.0.113.9");
    assert.equal(clientAddress(new Headers(), "10.0.0.1", 1), "10.0.0.1");

    const lines: string[] = [];
    const log = new RateLimitedLog(5000, (l) => lines.push(l));
    for (let t = 0; t < 10_000; t += 1000) log.log("emfile", "accept failed", t);
    assert.deepEqual(lines, [
      "netisle: accept failed",
      "netisle: accept failed (4 more in the last 5 s)",
    ]);
  });

  it("tokens outside RFC 6750's b64token syntax are refused at startup; exit 2 with a clear message", () => {
    assert.match(
      readServerConfig({ NETISLE_ADMIN_TOKEN: "my secret" }) as string,
      /NETISLE_ADMIN_TOKEN must be an RFC 6750 token .* got "my secret"/,
    );
    assert.match(
      readServerConfig({ NETISLE_METRICS_TOKEN: "a=b" }) as string,
      /NETISLE_METRICS_TOKEN must be an RFC 6750 token/,
    );
    assert.equal(typeof readServerConfig({ NETISLE_ADMIN_TOKEN: "abc-._~+/123==" }), "object");
    const run = spawnSync(DENO, ["run", "-A", "examples/deno/server.ts"], {
      cwd: ROOT,
      env: { ...process.env, PORT: "0", NETISLE_ADMIN_TOKEN: "pass word", NO_COLOR: "1" },
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /netisle: NETISLE_ADMIN_TOKEN must be an RFC 6750 token/);
  });

  it("warns at startup when listening beyond loopback without an admin token (Deno and Bun servers)", async () => {
    const open = readServerConfig({ HOSTNAME: "0.0.0.0" });
    assert.ok(typeof open !== "string");
    assert.equal(startupWarnings(open).length, 1);
    assert.match(
      startupWarnings(open)[0],
      /WARNING: listening on 0\.0\.0\.0 .* without NETISLE_ADMIN_TOKEN/,
    );
    for (
      const env of [{ HOSTNAME: "127.0.0.1" }, { HOSTNAME: "::1" }, {
        HOSTNAME: "0.0.0.0",
        NETISLE_ADMIN_TOKEN: "t",
      }]
    ) {
      const c = readServerConfig(env);
      assert.ok(typeof c !== "string");
      assert.deepEqual(startupWarnings(c), [], JSON.stringify(env));
    }
    for (
      const [cmd, args] of [[DENO, ["run", "-A", "examples/deno/server.ts"]], [BUN, [
        "run",
        "examples/bun/server.ts",
      ]]] as const
    ) {
      const p = new Proc(cmd, [...args], { PORT: "0", HOSTNAME: "0.0.0.0", NETISLE_LOG: "0" });
      try {
        await p.waitFor(/netisle listening on/, 60_000);
        assert.match(
          p.output,
          /WARNING: listening on 0\.0\.0\.0 \(beyond loopback\) without NETISLE_ADMIN_TOKEN/,
        );
      } finally {
        p.child.kill("SIGKILL");
      }
    }
  });
});

async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
