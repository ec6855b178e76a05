/**
 * The Wisp routes through `app.request` with a recording upgrader: where the
 * token may come from, what answers without it, the per-session pools, and
 * the request log (never the token).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createApp } from "../app.ts";
import type { RequestLogEntry } from "../request_log.ts";
import { SessionRegistry, SystemClock } from "../../session/mod.ts";
import type { TunnelSocket } from "../../session/tunnel_server.ts";
import { MAX_PENDING_PER_SESSION } from "./wisp_routes.ts";

/** A WebSocket that stays open and records what the server sends. */
function fakeSocket(): TunnelSocket & { sent: Uint8Array[]; closeIt(): void } {
  const listeners: Record<string, Array<(ev: { data: unknown }) => void>> = {};
  const s = {
    binaryType: "arraybuffer",
    readyState: 1,
    bufferedAmount: 0,
    sent: [] as Uint8Array[],
    send(d: Uint8Array | ArrayBuffer) {
      s.sent.push(d instanceof ArrayBuffer ? new Uint8Array(d) : d);
    },
    close() {
      s.closeIt();
    },
    closeIt() {
      if (s.readyState === 3) return;
      s.readyState = 3;
      for (const f of listeners.close ?? []) f({ data: undefined });
    },
    addEventListener(t: string, f: (ev: { data: unknown }) => void) {
      (listeners[t] ??= []).push(f);
    },
  };
  return s as unknown as TunnelSocket & { sent: Uint8Array[]; closeIt(): void };
}

function setup() {
  const registry = new SessionRegistry({ clock: new SystemClock() });
  const log: RequestLogEntry[] = [];
  const sockets: Array<ReturnType<typeof fakeSocket>> = [];
  const protocols: Array<string | undefined> = [];
  const app = createApp({
    registry,
    requestLog: (e) => log.push(e),
    upgradeWebSocket: (_req, o) => {
      const socket = fakeSocket();
      sockets.push(socket);
      protocols.push(o?.protocol);
      return { socket, response: new Response(null, { status: 200 }) };
    },
  });
  const session = registry.create({});
  const get = (path: string, headers: Record<string, string> = {}) =>
    app.request(path, { headers: { upgrade: "websocket", ...headers } });
  return { registry, session, app, log, sockets, protocols, get };
}

describe("GET /v1/sessions/:sid/wisp/", () => {
  it("takes the token as the last path segment, a bearer header or ?token=, and logs none of them", async () => {
    const { session, get, log, sockets, registry } = setup();
    const base = `/v1/sessions/${session.id}/wisp/`;
    assert.equal((await get(`${base}${session.token}/`)).status, 200);
    assert.equal((await get(base, { authorization: `Bearer ${session.token}` })).status, 200);
    assert.equal((await get(`${base}?token=${session.token}`)).status, 200);
    assert.equal(sockets.length, 3);
    assert.equal((await get(`${base}${session.token.slice(1)}x/`)).status, 401);
    assert.equal((await get(base)).status, 401, "v1 without a token: nothing to authenticate with");
    assert.equal(
      (await get(`/v1/sessions/s_${"A".repeat(22)}/wisp/${session.token}/`)).status,
      404,
    );
    const text = JSON.stringify(log);
    assert.ok(!text.includes(session.token), "the token is in no log entry");
    assert.ok(log.some((e) => e.route === "/v1/sessions/:sid/wisp/:token/"));
    assert.equal(log.find((e) => e.status === 200)?.sessionId, session.id);
    registry.close();
  });

  it("v2 (a subprotocol offered) without a token upgrades for the password extension, echoing the subprotocol; at most 4 wait per session", async () => {
    const { session, get, sockets, protocols, registry } = setup();
    const base = `/v1/sessions/${session.id}/wisp/`;
    for (let i = 0; i < MAX_PENDING_PER_SESSION; i++) {
      assert.equal((await get(base, { "sec-websocket-protocol": "wisp-v2" })).status, 200);
    }
    const fifth = await get(base, { "sec-websocket-protocol": "wisp-v2" });
    assert.equal(fifth.status, 429);
    assert.equal((await fifth.json()).code, "EMFILE");
    assert.deepEqual(protocols, Array(MAX_PENDING_PER_SESSION).fill("wisp-v2"));
    // Token holders are not crowded out by handshakes waiting for a password.
    assert.equal((await get(`${base}${session.token}/`)).status, 200);
    // One waiting handshake goes away: room for another.
    sockets[0].closeIt();
    assert.equal((await get(base, { "sec-websocket-protocol": "wisp-v2" })).status, 200);
    registry.close();
  });

  it("answers 426 without Upgrade: websocket", async () => {
    const { session, app, registry } = setup();
    const r = await app.request(`/v1/sessions/${session.id}/wisp/${session.token}/`);
    assert.equal(r.status, 426);
    registry.close();
  });
});
