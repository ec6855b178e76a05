import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { MemoryQuota } from "../../../stack/session_quota.ts";
import { DnsCache } from "./dns_cache.ts";
import type { DnsAnswerSet } from "./dns_upstream.ts";

const q = (name: string, type = 1) => ({ name, type, class: 1 });
const a = (ttl: number): DnsAnswerSet => ({
  rcode: 0,
  answers: [{ name: "n", type: 1, class: 1, ttl, data: new Uint8Array(4) }],
  authority: [],
});

describe("DnsCache", () => {
  it("keeps an answer for its smallest TTL, names case-insensitively", () => {
    const c = new DnsCache();
    const set = a(10);
    set.answers.push({ ...set.answers[0], ttl: 5 });
    c.put(q("Host.Test."), set, 0);
    assert.equal(c.get(q("host.test"), 4999)?.answers[0].ttl, 10 - 4);
    assert.equal(c.get(q("host.test"), 5000), undefined);
    assert.equal(c.size, 0);
  });
  it("keeps types apart and caches negative answers for 30 s without an SOA (RFC 2308)", () => {
    const c = new DnsCache();
    c.put(q("n", 1), { rcode: 3, answers: [], authority: [] }, 0);
    assert.equal(c.get(q("n", 28), 1), undefined);
    assert.equal(c.get(q("n", 1), 29_999)?.rcode, 3);
    assert.equal(c.get(q("n", 1), 30_000), undefined);
  });
  it("never caches failures or a TTL of 0", () => {
    const c = new DnsCache();
    c.put(q("f"), { rcode: 2, answers: [], authority: [] }, 0);
    c.put(q("z"), a(0), 0);
    assert.equal(c.size, 0);
  });
  it("caps TTLs at an hour", () => {
    const c = new DnsCache();
    c.put(q("long"), a(86400), 0);
    assert.ok(c.get(q("long"), 3_599_000));
    assert.equal(c.get(q("long"), 3_600_000), undefined);
  });
  it("evicts the least recently used beyond its entries, and charges the quota for what it keeps", () => {
    const memory = new MemoryQuota(1 << 20);
    const c = new DnsCache({ maxEntries: 2 }, memory);
    c.put(q("one"), a(60), 0);
    c.put(q("two"), a(60), 0);
    c.get(q("one"), 1);
    c.put(q("three"), a(60), 2);
    assert.ok(c.get(q("one"), 3));
    assert.equal(c.get(q("two"), 3), undefined);
    assert.equal(c.stats.evictions, 1);
    assert.ok(memory.used > 0);
    c.clear();
    assert.equal(memory.used, 0);
    assert.equal(c.bytes, 0);
  });
  it("keeps nothing the quota refuses", () => {
    const c = new DnsCache({}, new MemoryQuota(10));
    c.put(q("x"), a(60), 0);
    assert.equal(c.size, 0);
  });
});
