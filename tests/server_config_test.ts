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
    });
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
