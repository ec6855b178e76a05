import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseMacAddress } from "./address.ts";
import {
  formatIpv6Address,
  ipv4ToIpv6Mapped,
  ipv6ToIpv4Mapped,
  isIpv6Ipv4Mapped,
  parseIpv6Address,
} from "./ipv6_address.ts";
import {
  IPV6_ALL_NODES,
  IPV6_ALL_ROUTERS,
  IPV6_LOOPBACK,
  IPV6_UNSPECIFIED,
  ipv6InPrefix,
  ipv6LinkLocalFromMac,
  ipv6MulticastMac,
  ipv6MulticastScope,
  ipv6Prefix,
  ipv6SolicitedNode,
  isIpv6Ipv4Compatible,
  isIpv6LinkLocal,
  isIpv6Loopback,
  isIpv6MartianSource,
  isIpv6Multicast,
  isIpv6SolicitedNode,
  isIpv6Unicast,
  isIpv6UniqueLocal,
  isIpv6Unspecified,
} from "./ipv6_address_kinds.ts";

import { hex, toHex } from "./_test_util.ts";

const p = parseIpv6Address;

describe("IPv6 address classes (RFC 4291 §2.4, §2.5, §2.7; RFC 4193)", () => {
  it("classifies each kind of address", () => {
    const table: Array<[string, string[]]> = [
      ["::", ["unspecified"]],
      ["::1", ["loopback"]],
      ["fe80::1", ["linkLocal", "unicast"]],
      ["febf:ffff::1", ["linkLocal", "unicast"]],
      ["fec0::1", ["unicast"]],
      ["fd00::2", ["ula", "unicast"]],
      ["fc00::1", ["ula", "unicast"]],
      ["fe00::1", ["unicast"]],
      ["2001:db8::1", ["unicast"]],
      ["ff02::1", ["multicast"]],
      ["ff02::1:ff00:2", ["multicast", "solicitedNode"]],
      ["ff02::1:fe00:2", ["multicast"]],
      ["::ffff:10.0.2.15", ["mapped"]],
      ["::10.0.2.15", ["compatible"]],
    ];
    for (const [text, kinds] of table) {
      const a = p(text);
      const got: string[] = [];
      if (isIpv6Unspecified(a)) got.push("unspecified");
      if (isIpv6Loopback(a)) got.push("loopback");
      if (isIpv6LinkLocal(a)) got.push("linkLocal");
      if (isIpv6UniqueLocal(a)) got.push("ula");
      if (isIpv6Unicast(a)) got.push("unicast");
      if (isIpv6Multicast(a)) got.push("multicast");
      if (isIpv6SolicitedNode(a)) got.push("solicitedNode");
      if (isIpv6Ipv4Mapped(a)) got.push("mapped");
      if (isIpv6Ipv4Compatible(a)) got.push("compatible");
      assert.deepEqual(got, kinds, text);
    }
    assert.equal(a(IPV6_UNSPECIFIED), "::");
    assert.equal(a(IPV6_LOOPBACK), "::1");
    assert.equal(a(IPV6_ALL_NODES), "ff02::1");
    assert.equal(a(IPV6_ALL_ROUTERS), "ff02::2");
    assert.equal(ipv6MulticastScope(IPV6_ALL_NODES), 2);
    assert.equal(ipv6MulticastScope(p("ff05::1:3")), 5);
  });

  it("maps IPv4 to IPv4-mapped and back (RFC 4291 §2.5.5.2)", () => {
    assert.equal(a(ipv4ToIpv6Mapped(0x0a00020f)), "::ffff:10.0.2.15");
    assert.equal(ipv6ToIpv4Mapped(p("::ffff:192.0.2.1")), 0xc0000201);
    assert.equal(ipv6ToIpv4Mapped(p("fd00::2")), undefined);
  });

  it("derives the solicited-node group from the low 24 bits (RFC 4291 §2.7.1)", () => {
    assert.equal(a(ipv6SolicitedNode(p("fd00::2"))), "ff02::1:ff00:2");
    assert.equal(a(ipv6SolicitedNode(p("fe80::5054:ff:fe12:3456"))), "ff02::1:ff12:3456");
    assert.equal(a(ipv6SolicitedNode(p("4037::01:800:200e:8c6c"))), "ff02::1:ff0e:8c6c");
  });

  it("maps multicast to 33:33 and the low 32 bits (RFC 2464 §7)", () => {
    assert.equal(toHex(ipv6MulticastMac(IPV6_ALL_NODES)), "333300000001");
    assert.equal(toHex(ipv6MulticastMac(p("ff02::1:ff12:3456"))), "3333ff123456");
  });

  it("forms the modified EUI-64 link-local address of a MAC (RFC 4291 App. A, RFC 2464 §5)", () => {
    assert.equal(
      a(ipv6LinkLocalFromMac(parseMacAddress("52:54:00:12:34:56"))),
      "fe80::5054:ff:fe12:3456",
    );
    assert.equal(a(ipv6LinkLocalFromMac(hex("020000000001"))), "fe80::ff:fe00:1");
    assert.throws(() => ipv6LinkLocalFromMac(new Uint8Array(5)), TypeError);
  });

  it("matches prefixes of any length and clears host bits", () => {
    assert.equal(ipv6InPrefix(p("fd00::15"), p("fd00::"), 64), true);
    assert.equal(ipv6InPrefix(p("fd00:0:0:1::15"), p("fd00::"), 64), false);
    assert.equal(ipv6InPrefix(p("fe80::1"), p("fe80::"), 10), true);
    assert.equal(ipv6InPrefix(p("febf::1"), p("fe80::"), 10), true);
    assert.equal(ipv6InPrefix(p("fec0::1"), p("fe80::"), 10), false);
    assert.equal(ipv6InPrefix(p("2001:db8::1"), p("::"), 0), true);
    assert.equal(ipv6InPrefix(p("fd00::1"), p("fd00::1"), 128), true);
    assert.equal(ipv6InPrefix(p("fd00::2"), p("fd00::1"), 128), false);
    assert.equal(a(ipv6Prefix(p("fd00::2"), 64)), "fd00::");
    assert.equal(a(ipv6Prefix(p("fd00:1234:5678:9abc::2"), 52)), "fd00:1234:5678:9000::");
    assert.throws(() => ipv6Prefix(p("fd00::2"), 129), RangeError);
    assert.throws(() => ipv6InPrefix(p("fd00::2"), p("fd00::"), 6.5), RangeError);
  });

  it("calls martian every source that names no sender, but not :: (RFC 4291, RFC 4861 §4.3)", () => {
    const own = [p("fd00::2"), p("fe80::ff:fe00:1")];
    for (
      const text of [
        "ff02::1",
        "::1",
        "::ffff:10.0.2.15",
        "::10.0.2.15",
        "fd00::2",
        "fe80::ff:fe00:1",
      ]
    ) {
      assert.equal(isIpv6MartianSource(p(text), own), true, text);
    }
    for (const text of ["::", "fd00::15", "fe80::5054:ff:fe12:3456", "2001:db8::1"]) {
      assert.equal(isIpv6MartianSource(p(text), own), false, text);
    }
  });
});

function a(addr: Parameters<typeof formatIpv6Address>[0]): string {
  return formatIpv6Address(addr);
}
