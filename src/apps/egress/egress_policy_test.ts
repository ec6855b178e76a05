import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  EgressPolicy,
  type EgressProtocol,
  parseEgressRule,
  parseEgressRules,
} from "./egress_policy.ts";
import { parseIpAddress } from "./ip_address.ts";

describe("parseEgressRule: [tcp:|udp:]CIDR[:PORT[-PORT]]", () => {
  const cases: Array<[string, string, string, [number, number] | undefined]> = [
    ["198.18.0.0/15", "198.18.0.0/15", "any", undefined],
    ["tcp:198.18.0.0/15:80", "tcp:198.18.0.0/15:80", "tcp", [80, 80]],
    ["UDP:192.0.2.53:53", "udp:192.0.2.53/32:53", "udp", [53, 53]],
    ["10.1.2.3:1000-2000", "10.1.2.3/32:1000-2000", "any", [1000, 2000]],
    ["[2001:db8::/32]:443", "[2001:db8::/32]:443", "any", [443, 443]],
    ["2001:db8::/32:443", "[2001:db8::/32]:443", "any", [443, 443]],
    ["2001:db8::1", "2001:db8::1/128", "any", undefined],
    ["tcp:[::1]", "tcp:::1/128", "tcp", undefined],
  ];
  for (const [text, canonical, protocol, ports] of cases) {
    it(`reads ${text}`, () => {
      const r = parseEgressRule(text);
      assert.equal(r.text, canonical);
      assert.equal(r.protocol, protocol);
      assert.deepEqual(r.ports, ports);
    });
  }
  const bad: Array<[string, RegExp]> = [
    ["10.0.0.0/8:0", /ports/],
    ["10.0.0.0/8:70000", /ports/],
    ["10.0.0.0/8:90-80", /ports/],
    ["10.0.0.0/8:http", /ports/],
    ["sctp:10.0.0.0/8", /not an IPv4 or IPv6/],
    ["10.0.0.0/40", /not an IPv4 or IPv6/],
    ["[2001:db8::/32", /without "\]"/],
    ["[2001:db8::/32]443", /expected ":PORT"/],
  ];
  for (const [text, message] of bad) {
    it(`refuses ${text}, quoting it`, () => {
      assert.throws(() => parseEgressRule(text), (e: Error) => {
        assert.ok(e instanceof TypeError);
        assert.match(e.message, message);
        assert.ok(e.message.includes(text), e.message);
        return true;
      });
    });
  }
  it("splits a comma-separated list and skips empty entries", () => {
    assert.deepEqual(
      parseEgressRules(" 198.18.0.0/15 ,, tcp:1.2.3.4:22 ,").map((r) => r.text),
      ["198.18.0.0/15", "tcp:1.2.3.4/32:22"],
    );
    assert.deepEqual(parseEgressRules(undefined), []);
    assert.deepEqual(parseEgressRules(""), []);
  });
});

function check(
  p: EgressPolicy,
  proto: EgressProtocol,
  addr: string,
  port: number,
): string | undefined {
  const ip = parseIpAddress(addr);
  assert.ok(ip, addr);
  return p.check(proto, ip, port);
}

describe("EgressPolicy.check: the default deny list (issue 13)", () => {
  const p = new EgressPolicy();
  const denied = [
    "0.0.0.0",
    "0.1.2.3",
    "10.0.2.2",
    "10.255.255.255",
    "100.64.0.1",
    "100.127.255.255",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.169.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "198.18.0.1",
    "198.19.255.255",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "::127.0.0.1",
    "64:ff9b::a9fe:a9fe",
  ];
  for (const a of denied) {
    it(`denies ${a} as reserved_address`, () => {
      assert.equal(check(p, "tcp", a, 80), "reserved_address");
      assert.equal(check(p, "udp", a, 53), "reserved_address");
    });
  }
  const allowed = [
    "1.1.1.1",
    "8.8.8.8",
    "100.63.255.255",
    "100.128.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.167.255.255",
    "192.169.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.255",
    "169.253.255.255",
    "11.0.0.0",
    "2001:db8::1",
    "2606:4700::1111",
    "::ffff:8.8.8.8",
  ];
  for (const a of allowed) {
    it(`allows ${a}`, () => assert.equal(check(p, "tcp", a, 443), undefined));
  }
  it("denies port 25 on any public address, both protocols", () => {
    assert.equal(check(p, "tcp", "8.8.8.8", 25), "smtp_port");
    assert.equal(check(p, "udp", "8.8.8.8", 25), "smtp_port");
    assert.equal(check(p, "tcp", "8.8.8.8", 24), undefined);
    assert.equal(check(p, "tcp", "8.8.8.8", 26), undefined);
    assert.equal(check(p, "tcp", "8.8.8.8", 587), undefined);
  });
});

describe("EgressPolicy.check: operator rules and the server's own addresses", () => {
  const p = new EgressPolicy({
    allow: parseEgressRules("198.18.0.0/15, tcp:10.9.0.0/16:8000-8999, 192.168.7.0/24:25"),
    deny: parseEgressRules("198.18.5.0/24, udp:8.8.4.4:53, tcp:[2001:db8::/32]:22"),
    serverAddresses: [parseIpAddress("198.18.0.1")!, parseIpAddress("203.0.113.7")!],
  });
  const cases: Array<[EgressProtocol, string, number, string | undefined, string]> = [
    ["tcp", "198.18.1.1", 80, undefined, "an allow rule opens a default-denied range"],
    ["udp", "198.19.0.9", 7, undefined, "a rule without prefix holds for UDP too"],
    ["tcp", "198.18.5.9", 80, "deny_rule", "deny beats allow"],
    ["tcp", "198.18.0.1", 80, "server_address", "the server's address beats allow"],
    ["udp", "198.18.0.1", 53, "server_address", "every port of the server's address"],
    ["tcp", "203.0.113.7", 443, "server_address", "a public server address too"],
    ["tcp", "::ffff:198.18.0.1", 80, "server_address", "its IPv4-mapped spelling too"],
    ["tcp", "198.18.1.1", 25, "smtp_port", "an allow rule without ports keeps 25 closed"],
    ["tcp", "192.168.7.9", 25, undefined, "a rule naming port 25 opens it"],
    ["tcp", "192.168.7.9", 80, "reserved_address", "that rule covers port 25 only"],
    ["tcp", "10.9.1.1", 8080, undefined, "a port range opens"],
    ["tcp", "10.9.1.1", 9000, "reserved_address", "outside the port range"],
    ["udp", "10.9.1.1", 8080, "reserved_address", "a tcp: rule does not hold for UDP"],
    ["udp", "8.8.4.4", 53, "deny_rule", "deny a public address on one port"],
    ["tcp", "8.8.4.4", 53, undefined, "the udp: deny leaves TCP alone"],
    ["tcp", "2001:db8::5", 22, "deny_rule", "an IPv6 deny rule"],
    ["tcp", "2001:db8::5", 23, undefined, "next port"],
    ["tcp", "::ffff:198.18.1.1", 80, undefined, "allow holds for the mapped spelling"],
    ["tcp", "::ffff:198.18.5.1", 80, "deny_rule", "deny holds for the mapped spelling"],
    ["tcp", "10.0.0.1", 80, "reserved_address", "private ranges not opened stay closed"],
  ];
  for (const [proto, addr, port, want, why] of cases) {
    it(`${proto} ${addr}:${port} → ${want ?? "allowed"} (${why})`, () => {
      assert.equal(check(p, proto, addr, port), want);
    });
  }
  it("describes the operator's rules first, for the startup log", () => {
    const lines = p.describe();
    assert.match(lines[0], /deny rules.*198\.18\.5\.0\/24, udp:8\.8\.4\.4\/32:53/);
    assert.match(lines[1], /allow rules.*198\.18\.0\.0\/15, tcp:10\.9\.0\.0\/16:8000-8999/);
    assert.match(lines[2], /198\.18\.0\.1, 203\.0\.113\.7/);
    assert.match(lines[3], /169\.254\.0\.0\/16/);
    assert.match(new EgressPolicy().describe()[0], /\(none\)/);
  });
});

describe("EgressPolicy: server addresses from a function", () => {
  it("asks the function again once its list is older than refreshMs", () => {
    let list = [parseIpAddress("198.18.0.1")!];
    let asked = 0;
    let now = 1000;
    const p = new EgressPolicy({
      serverAddresses: () => {
        asked++;
        return list;
      },
      refreshMs: 20,
      now: () => now,
    });
    assert.equal(p.check("tcp", parseIpAddress("198.18.0.1")!, 80), "server_address");
    list = [parseIpAddress("203.0.113.5")!]; // a new interface came up
    assert.equal(p.check("tcp", parseIpAddress("203.0.113.5")!, 80), undefined, "cached");
    now += 20;
    assert.equal(p.check("tcp", parseIpAddress("203.0.113.5")!, 80), "server_address");
    assert.equal(asked, 2);
  });
});
