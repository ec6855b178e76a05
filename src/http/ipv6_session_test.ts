import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock, SessionRegistry } from "../session/mod.ts";
import { formatIpv6Address } from "../wire/mod.ts";
import { GOLDEN_NS } from "../wire/_ipv6_test_util.ts";
import { createApp } from "./app.ts";

function setup() {
  const registry = new SessionRegistry({ clock: new ManualClock(0) });
  const app = createApp({ registry, requestLog: false });
  const create = (body: unknown) =>
    app.request("/v1/sessions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  return { registry, app, create };
}

describe("IPv6 of a session over HTTP (issue 17)", () => {
  it("gives a session fd00::2 in fd00::/64 by default, shown at creation and in its view", async () => {
    const { registry, app, create } = setup();
    const res = await create({ mac: "02:00:00:00:00:01" });
    assert.equal(res.status, 201);
    const created = await res.json();
    assert.deepEqual(created.ipv6, {
      address: "fd00::2",
      prefix: "fd00::/64",
      linkLocal: "fe80::ff:fe00:1",
    });
    // A neighbour learned from Linux's solicitation shows in the view.
    registry.get(created.id)!.input([GOLDEN_NS]);
    const view = await (await app.request(`/v1/sessions/${created.id}`, {
      headers: { authorization: `Bearer ${created.token}` },
    })).json();
    assert.deepEqual(view.ipv6.neighbors, [{
      address: "fe80::5054:ff:fe12:3456",
      mac: "52:54:00:12:34:56",
      state: "delay",
      queued: 0,
    }]);
    assert.equal(view.counters.drops.ethernet_not_for_us, 0);
    assert.equal(view.counters.rxHandled, 1);
  });

  it("takes another /64 and address, or false for none", async () => {
    const { registry, create } = setup();
    const a = await (await create({
      ipv6: { prefix: "fd12:3456:789a:1::/64", address: "fd12:3456:789a:1::1" },
    })).json();
    assert.equal(a.ipv6.address, "fd12:3456:789a:1::1");
    assert.equal(formatIpv6Address(registry.get(a.id)!.stack.ipv6!.prefix), "fd12:3456:789a:1::");
    const b = await (await create({ ipv6: false })).json();
    assert.equal(b.ipv6, null);
    assert.equal(registry.get(b.id)!.stack.ipv6, undefined);
  });

  it("refuses a prefix that is no unicast /64 and an address outside it, with 400", async () => {
    const { create } = setup();
    const cases: Array<[unknown, RegExp]> = [
      [{ prefix: "fd00::/48", address: "fd00::2" }, /"fd00::\/48" is not an IPv6 \/64 prefix/],
      [{ prefix: "fd00::1/64", address: "fd00::2" }, /host bits zero/],
      [{ prefix: "ff02::/64", address: "ff02::2" }, /unicast/],
      [{ prefix: "fd00::/64", address: "fd01::2" }, /not a host address in fd00::\/64/],
      [{ prefix: "fd00::/64", address: "nope" }, /"nope" is not an IPv6 address/],
      [true, /ipv6/],
    ];
    for (const [ipv6, message] of cases) {
      const res = await create({ ipv6 });
      assert.equal(res.status, 400, JSON.stringify(ipv6));
      assert.match((await res.json()).detail, message);
    }
    const small = await create({ mtu: 576, ipv6: { prefix: "fd00::/64", address: "fd00::2" } });
    assert.equal(small.status, 400);
    assert.match((await small.json()).detail, /at least 1280, got 576/);
    const smallDefault = await (await create({ mtu: 576 })).json();
    assert.equal(smallDefault.ipv6, null);
  });
});
