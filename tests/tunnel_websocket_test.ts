/**
 * Cross-layer: a real server (Deno.serve on loopback) and the tunnel client
 * library carrying frames from an in-memory port; it reattaches to the same
 * session after its WebSocket drops, and stops when the session is deleted.
 * (The v86-style raw client is in tunnel_v86_test.ts, the QEMU stream
 * subprotocol in tunnel_stream_test.ts, keepalives in tunnel_keepalive_test.ts.)
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseMacAddress } from "../src/wire/mod.ts";
import { TunnelClient } from "../tunnel/client.ts";
import {
  arpRequest,
  createSession,
  echoRequest,
  isArpReply,
  isEchoReply,
  MemoryPort,
  withServer,
} from "./_tunnel_test_util.ts";

describe("tunnel over a real WebSocket", () => {
  it("the client library reconnects after the WebSocket drops and resumes the same session", async () => {
    await withServer(async (base, registry) => {
      const s = await createSession(base);
      const port = new MemoryPort();
      const states: string[] = [];
      const client = new TunnelClient({
        server: base,
        sessionId: s.id,
        token: s.token,
        port,
        reconnect: { minDelayMs: 50, maxDelayMs: 200 },
        onState: (st) => states.push(st),
      });
      client.start();
      const session = registry.get(s.id)!;
      for (let i = 0; i < 100 && !session.tunnelAttached; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(session.tunnelAttached, true);
      port.sink!([arpRequest()]);
      await port.waitFor(isArpReply);
      port.sink!([echoRequest(parseMacAddress(s.mac), 1)]);
      await port.waitFor(isEchoReply(1));

      // Drop the WebSocket from the server side, as a network fault would.
      const attachesBefore = session.tunnelStats.attaches;
      session.closeTunnel(1011, "test: simulated network fault");
      for (let i = 0; i < 200 && session.tunnelStats.attaches === attachesBefore; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(session.tunnelStats.attaches, attachesBefore + 1, `states: ${states.join(",")}`);
      assert.ok(states.includes("waiting"));
      port.sink!([echoRequest(parseMacAddress(s.mac), 2)]);
      await port.waitFor(isEchoReply(2));
      assert.equal(registry.get(s.id), session, "the same session and stack");
      await client.close();
      assert.equal(client.state, "closed");
    });
  });

  it("a client whose session is deleted stops with a clear reason", async () => {
    await withServer(async (base) => {
      const s = await createSession(base);
      const port = new MemoryPort();
      const client = new TunnelClient({
        server: base,
        sessionId: s.id,
        token: s.token,
        port,
        reconnect: { minDelayMs: 50, maxDelayMs: 200 },
      });
      client.start();
      await new Promise((r) => setTimeout(r, 200));
      const del = await fetch(`${base}/v1/sessions/${s.id}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${s.token}` },
      });
      assert.equal(del.status, 204);
      const reason = await client.closed;
      assert.match(reason, /session was deleted or expired/);
      await client.close();
    });
  });
});
