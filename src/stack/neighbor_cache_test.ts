import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseIpv6Address, parseMacAddress } from "../wire/mod.ts";
import { NeighborCache } from "./neighbor_cache.ts";
import { PathMtuCache } from "./path_mtu_cache.ts";

const A = parseIpv6Address("fd00::a");
const B = parseIpv6Address("fd00::b");
const MAC = parseMacAddress("52:54:00:12:34:56");
const MAC2 = parseMacAddress("52:54:00:aa:bb:cc");
const frame = () => new Uint8Array(60);

describe("NeighborCache (RFC 4861 §7.3)", () => {
  it("bounds queued frames per neighbour and over all neighbours", () => {
    const c = new NeighborCache({ maxQueuedPerEntry: 3, maxQueuedTotal: 4 });
    assert.deepEqual(
      [c.enqueue(A, frame(), 0), c.enqueue(A, frame(), 0), c.enqueue(A, frame(), 0)],
      [
        "solicit",
        "queued",
        "queued",
      ],
    );
    assert.equal(c.enqueue(A, frame(), 0), "full");
    assert.equal(c.enqueue(B, frame(), 0), "solicit");
    assert.equal(c.enqueue(B, frame(), 0), "full"); // 4 in all
    assert.equal(c.queued, 4);
    const released = c.advert(A, { solicited: true, override: false, mac: MAC }, 1);
    assert.ok(released && released.frames.length === 3);
    assert.equal(c.queued, 1);
    assert.equal(c.state(A), "reachable");
  });

  it("ignores an advertisement for a neighbour it is not resolving, and one without an address while INCOMPLETE", () => {
    const c = new NeighborCache();
    assert.equal(c.advert(A, { solicited: true, override: true, mac: MAC }, 0), false);
    c.enqueue(A, frame(), 0);
    assert.equal(c.advert(A, { solicited: true, override: true, mac: undefined }, 0), undefined);
    assert.equal(c.state(A), "incomplete");
  });

  it("learns from a solicitation without touching an identical entry, and releases what waited", () => {
    const c = new NeighborCache();
    c.enqueue(A, frame(), 0);
    const r = c.solicitation(A, MAC, 10);
    assert.ok(r && r.frames.length === 1 && r.mac[5] === 0x56);
    assert.equal(c.state(A), "stale");
    assert.equal(c.solicitation(A, MAC, 20), undefined);
    c.solicitation(A, MAC2, 30);
    assert.equal(c.entries()[0].mac![5], 0xcc);
  });

  it("a solicited advertisement with the cached address and no Override confirms it (§7.2.5)", () => {
    const c = new NeighborCache();
    c.solicitation(A, MAC, 0);
    c.advert(A, { solicited: true, override: false, mac: MAC }, 5);
    assert.equal(c.state(A), "reachable");
    assert.equal(c.nextDeadline(), 5 + 30_000);
  });

  it("collects a STALE entry nobody uses after staleMs", () => {
    const c = new NeighborCache({ staleMs: 1000 });
    c.solicitation(A, MAC, 0);
    c.poll(999);
    assert.equal(c.size, 1);
    c.poll(1000);
    assert.equal(c.size, 0);
    assert.equal(c.nextDeadline(), undefined);
  });

  it("refuses limits that are not positive integers, naming them", () => {
    assert.throws(
      () => new NeighborCache({ maxEntries: 0 }),
      /maxEntries must be a positive integer, got 0/,
    );
    assert.throws(() => new NeighborCache({ retransMs: 1.5 }), RangeError);
  });
});

describe("PathMtuCache (RFC 8201 §4, §5.3)", () => {
  it("keeps the newest estimates within its size, never below 1280, never raised, forgotten in time", () => {
    const p = new PathMtuCache(1500, { maxEntries: 2, expireMs: 1000 });
    assert.equal(p.record(A, 1400, 0), true);
    assert.equal(p.record(A, 1450, 0), false);
    assert.equal(p.record(A, 1000, 0), true);
    assert.equal(p.get(A, 0), 1280);
    assert.equal(p.record(B, 1300, 0), true);
    assert.equal(p.record(parseIpv6Address("fd00::c"), 1300, 0), true);
    assert.equal(p.size, 2);
    assert.equal(p.get(A, 0), 1500); // the oldest went first
    assert.equal(p.get(B, 999), 1300);
    assert.equal(p.get(B, 1000), 1500);
    assert.equal(p.record(B, 1600, 2000), false);
  });
});
