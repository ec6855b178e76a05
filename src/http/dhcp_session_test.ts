import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock, SessionRegistry } from "../session/mod.ts";
import {
  BROADCAST_MAC,
  DHCP_CLIENT_PORT,
  DHCP_SERVER_PORT,
  DhcpMessageType,
  DhcpOp,
  DhcpRepr,
  ETHERNET_HEADER_LEN,
  EthernetRepr,
  EtherType,
  IpProtocol,
  IPV4_BROADCAST,
  IPV4_HEADER_LEN,
  Ipv4Repr,
  parseIpv4Address,
  parseMacAddress,
  UdpRepr,
} from "../wire/mod.ts";
import { createApp } from "./app.ts";

const GUEST_MAC = parseMacAddress("52:54:00:12:34:56");

function dhcpFrame(fields: Partial<DhcpRepr>): Uint8Array {
  const m: DhcpRepr = {
    op: DhcpOp.REQUEST,
    hops: 0,
    xid: 7,
    secs: 0,
    broadcast: true,
    ciaddr: 0,
    yiaddr: 0,
    siaddr: 0,
    giaddr: 0,
    chaddr: GUEST_MAC,
    ...fields,
  };
  const payload = new Uint8Array(DhcpRepr.bufferLen(m));
  DhcpRepr.emit(m, payload);
  const udp: UdpRepr = { srcPort: DHCP_CLIENT_PORT, dstPort: DHCP_SERVER_PORT, payload };
  const len = UdpRepr.bufferLen(udp);
  const f = new Uint8Array(ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + len);
  EthernetRepr.emit({ dst: BROADCAST_MAC, src: GUEST_MAC, etherType: EtherType.IPV4 }, f);
  Ipv4Repr.emit(
    { src: 0, dst: IPV4_BROADCAST, protocol: IpProtocol.UDP, payloadLen: len, ttl: 64 },
    f.subarray(ETHERNET_HEADER_LEN),
  );
  UdpRepr.emit(udp, f.subarray(ETHERNET_HEADER_LEN + IPV4_HEADER_LEN), 0, IPV4_BROADCAST);
  return f;
}

function setup() {
  const registry = new SessionRegistry({ clock: new ManualClock(0) });
  const app = createApp({ registry, requestLog: false });
  return { registry, app };
}

async function createSession(app: ReturnType<typeof setup>["app"], body: unknown) {
  const res = await app.request("/v1/sessions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 201);
  return await res.json() as { id: string; token: string };
}

describe("HTTP API: the session's DHCP server", () => {
  it("runs by default; GET /v1/sessions/:sid shows the leases", async () => {
    const { app, registry } = setup();
    const { id, token } = await createSession(app, {});
    const session = registry.get(id)!;
    session.input([dhcpFrame({ messageType: DhcpMessageType.DISCOVER })]);
    session.input([
      dhcpFrame({
        messageType: DhcpMessageType.REQUEST,
        serverId: parseIpv4Address("10.0.2.2"),
        requestedIp: parseIpv4Address("10.0.2.15"),
        hostname: "vm",
      }),
    ]);
    const res = await app.request(`/v1/sessions/${id}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 200);
    const view = await res.json();
    assert.deepEqual(view.dhcp.leases, [{
      address: "10.0.2.15",
      mac: "52:54:00:12:34:56",
      state: "bound",
      expiresInMs: 86_400_000,
      hostname: "vm",
    }]);
    assert.equal(view.dhcp.stats.acks, 1);
    assert.equal(view.dhcp.stats.offers, 1);
  });

  it("is off with dhcp: false, and refuses a non-boolean", async () => {
    const { app, registry } = setup();
    const { id, token } = await createSession(app, { dhcp: false });
    assert.equal(registry.get(id)!.stack.dhcp, undefined);
    const view = await (await app.request(`/v1/sessions/${id}`, {
      headers: { authorization: `Bearer ${token}` },
    })).json();
    assert.equal(view.dhcp, null);
    const bad = await app.request("/v1/sessions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ dhcp: "yes" }),
    });
    assert.equal(bad.status, 400);
  });

  it("takes its pool size, leases per MAC and lease time at creation", async () => {
    const { app, registry } = setup();
    const { id } = await createSession(app, {
      dhcp: { poolSize: 4, leasesPerMac: 2, leaseSeconds: 3600 },
    });
    const dhcp = registry.get(id)!.stack.dhcp!;
    assert.equal(dhcp.poolSize, 4);
    assert.equal(dhcp.poolStart, parseIpv4Address("10.0.2.15"));
    assert.equal(dhcp.leaseMs, 3_600_000);
    // A pool that does not fit the subnet passes the schema but not the stack: 400, nothing made.
    const bad = await app.request("/v1/sessions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        ipv4: { address: "192.168.9.1", prefixLength: 29 },
        dhcp: { poolSize: 64 },
      }),
    });
    assert.equal(bad.status, 400);
    const p = await bad.json();
    assert.equal(p.code, "EINVAL");
    assert.match(p.detail, /pool 192\.168\.9\.1 \+ 64 must lie in 192\.168\.9\.0\/29/);
    assert.equal(registry.size, 1);
  });

  it("fits the pool to a small custom subnet", async () => {
    const { app, registry } = setup();
    const { id } = await createSession(app, { ipv4: { address: "192.168.9.1", prefixLength: 29 } });
    const dhcp = registry.get(id)!.stack.dhcp!;
    assert.equal(dhcp.poolStart, parseIpv4Address("192.168.9.1"));
    assert.equal(dhcp.poolSize, 6);
  });
});
