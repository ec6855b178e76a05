import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseMacAddress } from "./address.ts";
import {
  formatIpv6Address,
  ipv4ToIpv6Mapped,
  IPV6_ALL_NODES,
  IPV6_ALL_ROUTERS,
  IPV6_LOOPBACK,
  IPV6_UNSPECIFIED,
  ipv6FromGroups,
  ipv6Group,
  ipv6InPrefix,
  ipv6LinkLocalFromMac,
  ipv6MulticastMac,
  ipv6MulticastScope,
  ipv6Prefix,
  ipv6SolicitedNode,
  ipv6ToBytes,
  ipv6ToIpv4Mapped,
  isIpv6Address,
  isIpv6Ipv4Compatible,
  isIpv6Ipv4Mapped,
  isIpv6LinkLocal,
  isIpv6Loopback,
  isIpv6MartianSource,
  isIpv6Multicast,
  isIpv6SolicitedNode,
  isIpv6Unicast,
  isIpv6UniqueLocal,
  isIpv6Unspecified,
  parseIpv6Address,
  readIpv6,
  writeIpv6,
} from "./ipv6_address.ts";
import { formatIpAddress, isIpv6, parseIpAddress } from "./ip_address.ts";
import { hex, toHex } from "./_test_util.ts";

const p = parseIpv6Address;

describe("IPv6 address text (RFC 4291 §2.2, RFC 5952 §4)", () => {
  it("parses every text form of RFC 4291 §2.2 to the same groups", () => {
    const cases: Array<[string, number[]]> = [
      ["2001:DB8:0:0:8:800:200C:417A", [0x2001, 0xdb8, 0, 0, 8, 0x800, 0x200c, 0x417a]],
      ["2001:db8::8:800:200c:417a", [0x2001, 0xdb8, 0, 0, 8, 0x800, 0x200c, 0x417a]],
      ["ff01::101", [0xff01, 0, 0, 0, 0, 0, 0, 0x101]],
      ["::1", [0, 0, 0, 0, 0, 0, 0, 1]],
      ["::", [0, 0, 0, 0, 0, 0, 0, 0]],
      ["fd00::", [0xfd00, 0, 0, 0, 0, 0, 0, 0]],
      ["0:0:0:0:0:0:13.1.68.3", [0, 0, 0, 0, 0, 0, 0x0d01, 0x4403]],
      ["::FFFF:129.144.52.38", [0, 0, 0, 0, 0, 0xffff, 0x8190, 0x3426]],
      ["1:2:3:4:5:6:7::", [1, 2, 3, 4, 5, 6, 7, 0]],
      ["::2:3:4:5:6:7:8", [0, 2, 3, 4, 5, 6, 7, 8]],
      ["0001:0002:0003:0004:0005:0006:0007:0008", [1, 2, 3, 4, 5, 6, 7, 8]],
    ];
    for (const [text, groups] of cases) {
      const a = p(text);
      assert.equal(a, ipv6FromGroups(groups), text);
      assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => ipv6Group(a, i)), groups, text);
    }
  });

  it("formats canonically: lowercase, no leading zeros, longest zero run as :: (RFC 5952 §4)", () => {
    const cases: Array<[string, string]> = [
      ["2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // §4.2.3: the first of equal runs
      ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // §4.2.2: one 0 group is not ::
      ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"], // §4.2.3: the longest run
      ["fd00:0:0:0:0:0:0:2", "fd00::2"],
      ["0:0:0:0:0:0:0:0", "::"],
      ["0:0:0:0:0:0:0:1", "::1"],
      ["1:0:0:0:0:0:0:0", "1::"],
      ["::ffff:a00:20f", "::ffff:10.0.2.15"], // §5: IPv4-mapped ends in a dotted quad
      ["fe80::5054:00ff:fe12:3456", "fe80::5054:ff:fe12:3456"],
    ];
    for (const [text, canonical] of cases) assert.equal(formatIpv6Address(p(text)), canonical);
  });

  it("rejects malformed text with a TypeError quoting it", () => {
    const bad = [
      "",
      ":",
      ":::",
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      "12345::",
      "1:2:3:4:5:6:7:8::",
      "::1:2:3:4:5:6:7:8",
      "1:",
      ":1",
      "g::",
      "1.2.3.4",
      "::1.2.3",
      "::1.2.3.4:5",
      "::256.1.1.1",
      "1:2:3:4:5:6:7:1.2.3.4",
      "fe80::1%eth0",
      "[::1]",
      "fd00::/64",
      " ::1",
    ];
    for (const text of bad) {
      assert.throws(
        () => p(text),
        (e: Error) => e instanceof TypeError && e.message.includes(`"${text}"`),
        text,
      );
    }
    assert.throws(() => p(42 as unknown as string), TypeError);
  });

  it("reads and writes the 16 bytes in network order", () => {
    const a = p("2001:db8::8:800:200c:417a");
    assert.equal(toHex(ipv6ToBytes(a)), "20010db80000000000080800200c417a");
    const buf = new Uint8Array(20);
    writeIpv6(buf, 2, a);
    assert.equal(readIpv6(buf, 2), a);
    assert.throws(() => readIpv6(buf, 5), RangeError);
    assert.throws(() => writeIpv6(buf, -1, a), RangeError);
    assert.throws(() => writeIpv6(buf, 0, "fd00::2" as never), TypeError);
    assert.equal(isIpv6Address(a), true);
    assert.equal(isIpv6Address("fd00::2"), false);
    assert.equal(isIpv6Address(7), false);
  });

  it("parseIpAddress and formatIpAddress take both families", () => {
    const v6 = parseIpAddress("fd00::15");
    assert.equal(isIpv6(v6), true);
    assert.equal(formatIpAddress(v6), "fd00::15");
    const v4 = parseIpAddress("10.0.2.15");
    assert.equal(v4, 0x0a00020f);
    assert.equal(isIpv6(v4), false);
    assert.equal(formatIpAddress(v4), "10.0.2.15");
  });
});

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
