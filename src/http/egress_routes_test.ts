import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock, SessionRegistry } from "../session/mod.ts";
import { createApp } from "./app.ts";
import { egressMetricsCollector } from "./egress_metrics.ts";
import { EgressPolicy, EgressService, parseEgressRules } from "../apps/egress/mod.ts";
import { FakeDialer } from "../apps/egress/fake_dialer.ts";
import { ScriptedUpstream } from "../apps/egress/_egress_test_util.ts";

function setup(egress: boolean) {
  const service = new EgressService({
    dialer: new FakeDialer(),
    upstream: new ScriptedUpstream(),
    policy: new EgressPolicy({ allow: parseEgressRules("198.18.0.0/15") }),
  });
  const registry = new SessionRegistry({
    clock: new ManualClock(0),
    egress: egress ? service : undefined,
  });
  const app = createApp({
    registry,
    requestLog: false,
    metricsCollectors: egress ? [egressMetricsCollector(service)] : undefined,
  });
  const create = async (body: unknown = {}) => {
    const res = await app.request("/v1/sessions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { res, json: await res.json() };
  };
  const view = async (s: { id: string; token: string }) => {
    const res = await app.request(`/v1/sessions/${s.id}`, {
      headers: { authorization: `Bearer ${s.token}` },
    });
    assert.equal(res.status, 200);
    return await res.json();
  };
  return { app, registry, service, create, view };
}

describe("HTTP API: egress (issue 13)", () => {
  it("gives every session egress when the server has it; the view lists its section", async () => {
    const { create, view } = setup(true);
    const { res, json } = await create();
    assert.equal(res.status, 201);
    const v = await view(json);
    assert.equal(v.egress.dialer, "fake");
    assert.equal(v.egress.dnsUpstream, "scripted");
    assert.deepEqual(v.egress.flows, []);
    assert.equal(v.egress.denied.reserved_address, 0);
    assert.equal(v.egress.limits.maxTcpConnections, 256);
    assert.equal(v.egress.limits.maxUdpFlows, 256);
  });

  it('creates a session without egress on {"egress": false}', async () => {
    const { create, view, service } = setup(true);
    const { json } = await create({ egress: false });
    assert.equal((await view(json)).egress, null);
    assert.equal(service.gauges().sessions, 0);
  });

  it('refuses {"egress": true} on a server without egress (400 EINVAL)', async () => {
    const { create, registry } = setup(false);
    const { res, json } = await create({ egress: true });
    assert.equal(res.status, 400);
    assert.equal(json.code, "EINVAL");
    assert.match(json.detail, /egress is off on this server/);
    assert.equal(registry.size, 0);
    const plain = await create();
    assert.equal(plain.res.status, 201);
  });

  it("adds the netisle_egress_* families to /metrics, with bounded labels", async () => {
    const { app, create, registry } = setup(true);
    await create();
    await create({ egress: false });
    const text = await (await app.request("/metrics")).text();
    assert.match(text, /^netisle_egress_sessions 1$/m);
    assert.match(text, /^netisle_egress_flows\{protocol="tcp"\} 0$/m);
    assert.match(text, /^netisle_egress_denied_total\{reason="server_address"\} 0$/m);
    assert.match(text, /^netisle_egress_denied_total\{reason="limit_tcp_connections"\} 0$/m);
    assert.match(text, /^netisle_egress_bytes_total\{protocol="udp",direction="in"\} 0$/m);
    assert.match(text, /^netisle_egress_tcp_connects_total\{outcome="refused"\} 0$/m);
    assert.match(text, /^netisle_egress_dns_queries_total\{result="cache"\} 0$/m);
    // Deleting the session keeps its counters (they never go down) and drops the gauge.
    for (const s of registry.list()) registry.delete(s.id);
    const after = await (await app.request("/metrics")).text();
    assert.match(after, /^netisle_egress_sessions 0$/m);
  });
});
