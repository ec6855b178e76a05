import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  cidrContains,
  embeddedIpv4,
  formatIpAddress,
  formatIpCidr,
  parseIpAddress,
  parseIpCidr,
} from "./ip_address.ts";

describe("parseIpAddress / formatIpAddress (RFC 4291 §2.2, RFC 5952)", () => {
  const roundTrips: Array<[string, string]> = [
    ["10.0.2.15", "10.0.2.15"],
    ["0.0.0.0", "0.0.0.0"],
    ["255.255.255.255", "255.255.255.255"],
    ["::", "::"],
    ["::1", "::1"],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["fe80::1:2", "fe80::1:2"],
    ["::ffff:10.0.0.1", "::ffff:a00:1"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["1:0:3:4:5:6:7:8", "1:0:3:4:5:6:7:8"],
  ];
  for (const [text, out] of roundTrips) {
    it(`reads ${text} and writes ${out}`, () => {
      const ip = parseIpAddress(text);
      assert.ok(ip, text);
      assert.equal(formatIpAddress(ip), out);
    });
  }
  const bad = [
    "",
    "10.0.0",
    "10.0.0.256",
    "010.0.0.1",
    "1.2.3.4.5",
    "1::2::3",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7",
    "12345::",
    "g::1",
    "::1.2.3",
    "1.2.3.4::",
    "fe80::1%eth0",
    " 10.0.0.1",
  ];
  for (const text of bad) {
    it(`refuses ${JSON.stringify(text)}`, () => assert.equal(parseIpAddress(text), undefined));
  }
});

describe("embeddedIpv4 (RFC 4291 §2.5.5, RFC 6052 §2.1)", () => {
  const cases: Array<[string, number | undefined]> = [
    ["127.0.0.1", 0x7f000001],
    ["::ffff:127.0.0.1", 0x7f000001],
    ["::127.0.0.1", 0x7f000001],
    ["64:ff9b::10.0.0.1", 0x0a000001],
    ["::", undefined],
    ["::1", undefined],
    ["2001:db8::7f00:1", undefined],
  ];
  for (const [text, v4] of cases) {
    it(`${text} → ${v4}`, () => assert.equal(embeddedIpv4(parseIpAddress(text)!), v4));
  }
});

describe("parseIpCidr / cidrContains", () => {
  it("clears host bits and matches inside the prefix only", () => {
    const c = parseIpCidr("198.18.7.9/15")!;
    assert.equal(formatIpCidr(c), "198.18.0.0/15");
    assert.ok(cidrContains(c, parseIpAddress("198.19.255.255")!));
    assert.ok(!cidrContains(c, parseIpAddress("198.20.0.0")!));
    assert.ok(!cidrContains(c, parseIpAddress("198.17.255.255")!));
  });
  it("keeps the families apart (an IPv4 prefix does not match ::ffff:… by itself)", () => {
    const c = parseIpCidr("127.0.0.0/8")!;
    assert.ok(!cidrContains(c, parseIpAddress("::ffff:127.0.0.1")!));
    assert.ok(cidrContains(c, parseIpAddress("127.1.2.3")!));
  });
  it("handles /0, single addresses and IPv6 prefixes", () => {
    assert.ok(cidrContains(parseIpCidr("0.0.0.0/0")!, parseIpAddress("8.8.8.8")!));
    assert.ok(cidrContains(parseIpCidr("::/0")!, parseIpAddress("2001:db8::1")!));
    assert.ok(cidrContains(parseIpCidr("10.0.0.1")!, parseIpAddress("10.0.0.1")!));
    assert.ok(!cidrContains(parseIpCidr("10.0.0.1")!, parseIpAddress("10.0.0.2")!));
    assert.ok(cidrContains(parseIpCidr("fc00::/7")!, parseIpAddress("fdff::1")!));
    assert.ok(!cidrContains(parseIpCidr("fc00::/7")!, parseIpAddress("fe00::1")!));
    assert.equal(formatIpCidr(parseIpCidr("fe80::1/10")!), "fe80::/10");
  });
  it("refuses lengths out of range and garbage", () => {
    for (const t of ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "x/8", "10.0.0.0/8/8"]) {
      assert.equal(parseIpCidr(t), undefined, t);
    }
  });
});
