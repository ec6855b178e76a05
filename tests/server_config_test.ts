import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { listeningLine, readServerConfig } from "../examples/server_config.ts";

describe("the example servers' environment (examples/server_config.ts)", () => {
  it("defaults to 127.0.0.1:8787, no tokens, the request log on, sessions in process", () => {
    assert.deepEqual(readServerConfig({}), {
      port: 8787,
      hostname: "127.0.0.1",
      adminToken: undefined,
      metricsToken: undefined,
      requestLog: undefined,
      limits: {
        maxConnections: undefined,
        maxConnectionsPerAddress: 256,
        headersTimeoutMs: 10_000,
        sessionsPerMinute: 30,
        trustProxy: 0,
        bodyBudgetBytes: 64 * 1024 * 1024,
        engine: "netisle",
      },
      isolation: undefined,
      egress: undefined,
    });
  });

  it("reads egress: on with its rules and upstream, off by default (issue 13)", () => {
    const c = readServerConfig({
      NETISLE_EGRESS: "on",
      NETISLE_EGRESS_ALLOW: "198.18.0.0/15, tcp:10.9.0.0/16:8000-8999",
      NETISLE_EGRESS_DENY: "198.18.5.0/24",
      NETISLE_DNS_UPSTREAM: "udp:198.18.0.53:53",
    });
    assert.ok(typeof c !== "string");
    assert.deepEqual(c.egress?.allow.map((r) => r.text), [
      "198.18.0.0/15",
      "tcp:10.9.0.0/16:8000-8999",
    ]);
    assert.deepEqual(c.egress?.deny.map((r) => r.text), ["198.18.5.0/24"]);
    assert.deepEqual(c.egress?.upstream, { kind: "udp", address: "198.18.0.53", port: 53 });
    assert.equal(
      listeningLine("http://127.0.0.1:8787", "Deno", c),
      "netisle listening on http://127.0.0.1:8787 (Deno, in memory, egress on)",
    );
    const system = readServerConfig({ NETISLE_EGRESS: "on" });
    assert.ok(typeof system !== "string");
    assert.deepEqual(system.egress?.upstream, { kind: "system" });
    const off = readServerConfig({ NETISLE_EGRESS: "off", NETISLE_EGRESS_ALLOW: "junk" });
    assert.ok(typeof off !== "string" && off.egress === undefined, "rules are ignored when off");
  });

  it("names the egress variable and quotes the value it refuses", () => {
    assert.equal(
      readServerConfig({ NETISLE_EGRESS: "yes" }),
      'NETISLE_EGRESS must be "on" or "off", got "yes"',
    );
    assert.match(
      readServerConfig({ NETISLE_EGRESS: "on", NETISLE_EGRESS_ALLOW: "10.0.0.0/8:http" }) as string,
      /^NETISLE_EGRESS_\*: egress rule "10\.0\.0\.0\/8:http"/,
    );
    assert.match(
      readServerConfig({ NETISLE_EGRESS: "on", NETISLE_DNS_UPSTREAM: "8.8.8.8" }) as string,
      /^NETISLE_DNS_UPSTREAM must be "system", an https:\/\/ URL or udp:IP:PORT, got "8\.8\.8\.8"/,
    );
  });

  it("reads every variable, and worker isolation with its defaults", () => {
    const c = readServerConfig({
      PORT: "0",
      HOSTNAME: "0.0.0.0",
      NETISLE_ADMIN_TOKEN: "a",
      NETISLE_METRICS_TOKEN: "",
      NETISLE_LOG: "0",
      NETISLE_ISOLATION: "worker",
      NETISLE_WORKER_TIMEOUT_MS: "2000",
    });
    assert.ok(typeof c !== "string");
    assert.equal(c.port, 0);
    assert.equal(c.hostname, "0.0.0.0");
    assert.equal(c.adminToken, "a");
    assert.equal(c.metricsToken, undefined, "an empty token means none");
    assert.equal(c.requestLog, false);
    assert.deepEqual(c.isolation, {
      maxSessions: 100,
      heartbeatTimeoutMs: 2000,
      heartbeatIntervalMs: 500,
      testHooks: false,
    });
    assert.equal(
      listeningLine("http://0.0.0.0:0", "Bun", c),
      "netisle listening on http://0.0.0.0:0 (Bun, in memory, one worker per session, admin token required)",
    );
  });

  it("names the variable and quotes the value it refuses", () => {
    assert.equal(
      readServerConfig({ PORT: "http" }),
      'PORT must be an integer in 0..65535, got "http"',
    );
    assert.equal(
      readServerConfig({ PORT: "70000" }),
      'PORT must be an integer in 0..65535, got "70000"',
    );
    assert.equal(
      readServerConfig({ NETISLE_ISOLATION: "thread" }),
      'NETISLE_ISOLATION must be "worker" or "off", got "thread"',
    );
    assert.match(
      readServerConfig({ NETISLE_ISOLATION: "worker", NETISLE_WORKER_TIMEOUT_MS: "5" }) as string,
      /NETISLE_WORKER_TIMEOUT_MS must be an integer >= 100, got "5"/,
    );
    assert.match(
      readServerConfig({ NETISLE_ISOLATION: "worker", NETISLE_MAX_SESSIONS: "0" }) as string,
      /NETISLE_MAX_SESSIONS must be an integer >= 1, got "0"/,
    );
  });
});
