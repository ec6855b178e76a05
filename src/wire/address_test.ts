import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  BROADCAST_MAC,
  formatIpv4Address,
  formatMacAddress,
  IPV4_BROADCAST,
  ipv4InSubnet,
  ipv4Netmask,
  ipv4SubnetBroadcast,
  isBroadcastMac,
  isIpv4MartianSource,
  isIpv4Multicast,
  isIpv4Unicast,
  isMulticastMac,
  macEquals,
  parseIpv4Address,
  parseMacAddress,
  randomLocalMac,
  readIpv4,
  writeIpv4,
} from "./address.ts";
import { seededRandom } from "./random.ts";

describe("parseIpv4Address / formatIpv4Address", () => {
  it("parses strict dotted quads", () => {
    assert.equal(parseIpv4Address("10.0.2.2"), 0x0a000202);
    assert.equal(parseIpv4Address("0.0.0.0"), 0);
    assert.equal(parseIpv4Address("255.255.255.255"), 0xffffffff);
    assert.equal(parseIpv4Address("192.168.100.200"), 0xc0a864c8);
    assert.equal(parseIpv4Address("1.20.199.0"), 0x0114c700);
  });

  it("returns unsigned numbers", () => {
    assert.ok(parseIpv4Address("200.1.1.1") > 0);
    assert.equal(parseIpv4Address("128.0.0.0"), 0x80000000);
  });

  it("rejects anything else with a TypeError quoting the text", () => {
    const bad = [
      "",
      "10.0.2",
      "10.0.2.2.",
      ".10.0.2.2",
      "10.0.2.2.1",
      "10..2.2",
      "256.0.0.1",
      "1.2.3.300",
      "01.2.3.4",
      "1.2.3.00",
      "1.2.3.4 ",
      " 1.2.3.4",
      "1.2.3.-4",
      "1.2.3.+4",
      "1.2.3.4x",
      "0x1.2.3.4",
      "1.2.3.1000",
      "a.b.c.d",
      "1,2,3,4",
      "１.2.3.4",
    ];
    for (const text of bad) {
      assert.throws(() => parseIpv4Address(text), TypeError, `"${text}" must be rejected`);
    }
    assert.throws(() => parseIpv4Address("10.0.2"), {
      name: "TypeError",
      message: 'parseIpv4Address: invalid IPv4 address "10.0.2"',
    });
    assert.throws(() => parseIpv4Address(42 as unknown as string), TypeError);
  });

  it("formats and round-trips", () => {
    assert.equal(formatIpv4Address(0x0a000202), "10.0.2.2");
    assert.equal(formatIpv4Address(IPV4_BROADCAST), "255.255.255.255");
    assert.equal(formatIpv4Address(0), "0.0.0.0");
    const rng = seededRandom(4);
    for (let i = 0; i < 1000; i++) {
      const addr = rng.u32();
      assert.equal(parseIpv4Address(formatIpv4Address(addr)), addr);
    }
  });

  it("refuses to format a value that is not a u32", () => {
    assert.throws(() => formatIpv4Address(-1), { name: "RangeError", message: /got -1/ });
    assert.throws(() => formatIpv4Address(2 ** 32), RangeError);
    assert.throws(() => formatIpv4Address(1.5), RangeError);
    assert.throws(() => formatIpv4Address(NaN), RangeError);
  });
});

describe("IPv4 subnets (RFC 4632)", () => {
  it("computes netmasks for 0..32 and rejects others", () => {
    assert.equal(ipv4Netmask(0), 0);
    assert.equal(ipv4Netmask(1), 0x80000000);
    assert.equal(ipv4Netmask(8), 0xff000000);
    assert.equal(ipv4Netmask(24), 0xffffff00);
    assert.equal(ipv4Netmask(31), 0xfffffffe);
    assert.equal(ipv4Netmask(32), 0xffffffff);
    assert.throws(() => ipv4Netmask(33), { name: "RangeError", message: /got 33/ });
    assert.throws(() => ipv4Netmask(-1), RangeError);
    assert.throws(() => ipv4Netmask(24.5), RangeError);
  });

  it("tests membership", () => {
    const net = parseIpv4Address("10.0.2.0");
    assert.equal(ipv4InSubnet(parseIpv4Address("10.0.2.15"), net, 24), true);
    assert.equal(ipv4InSubnet(parseIpv4Address("10.0.3.15"), net, 24), false);
    assert.equal(ipv4InSubnet(parseIpv4Address("10.0.3.15"), net, 16), true);
    assert.equal(ipv4InSubnet(parseIpv4Address("8.8.8.8"), net, 0), true);
    assert.equal(
      ipv4InSubnet(parseIpv4Address("10.0.2.15"), parseIpv4Address("10.0.2.9"), 24),
      true,
    );
    assert.equal(
      ipv4InSubnet(parseIpv4Address("255.0.2.1"), parseIpv4Address("255.0.2.0"), 24),
      true,
    );
    assert.equal(ipv4InSubnet(net, net, 32), true);
    assert.equal(ipv4InSubnet(net + 1, net, 32), false);
  });

  it("computes the directed broadcast address", () => {
    const addr = parseIpv4Address("10.0.2.2");
    assert.equal(formatIpv4Address(ipv4SubnetBroadcast(addr, 24)), "10.0.2.255");
    assert.equal(formatIpv4Address(ipv4SubnetBroadcast(addr, 8)), "10.255.255.255");
    assert.equal(ipv4SubnetBroadcast(addr, 32), addr);
    assert.equal(ipv4SubnetBroadcast(addr, 0), IPV4_BROADCAST);
  });

  it("recognises multicast 224.0.0.0/4", () => {
    assert.equal(isIpv4Multicast(parseIpv4Address("224.0.0.1")), true);
    assert.equal(isIpv4Multicast(parseIpv4Address("239.255.255.250")), true);
    assert.equal(isIpv4Multicast(parseIpv4Address("223.255.255.255")), false);
    assert.equal(isIpv4Multicast(parseIpv4Address("240.0.0.0")), false);
    assert.equal(isIpv4Multicast(IPV4_BROADCAST), false);
  });

  it("tells unicast host addresses from 0/8, 127/8, 224/4 and 240/4 (RFC 1122 §3.2.1.3)", () => {
    const cases: Array<[string, boolean]> = [
      ["10.0.2.15", true],
      ["1.0.0.0", true],
      ["223.255.255.254", true],
      ["0.0.0.0", false],
      ["0.1.2.3", false],
      ["127.0.0.1", false],
      ["224.0.0.1", false],
      ["239.255.255.250", false],
      ["240.0.0.1", false],
      ["255.255.255.255", false],
    ];
    for (const [text, unicast] of cases) {
      assert.equal(isIpv4Unicast(parseIpv4Address(text)), unicast, text);
    }
  });

  it("names martian sources for a host on its subnet (RFC 1812 §5.3.7)", () => {
    const own = parseIpv4Address("10.0.2.2");
    const cases: Array<[string, number, boolean]> = [
      ["10.0.2.15", 24, false],
      ["192.0.2.7", 24, false], // off-link unicast is not martian (routing decides)
      ["10.0.2.2", 24, true], // our own address
      ["10.0.2.0", 24, true], // the subnet's network address
      ["10.0.2.255", 24, true], // the subnet's broadcast address
      ["255.255.255.255", 24, true],
      ["224.0.0.1", 24, true],
      ["127.0.0.1", 24, true],
      ["0.0.0.0", 24, true],
      ["10.0.2.3", 31, false], // RFC 3021: no network or broadcast address on a /31
    ];
    for (const [text, prefix, martian] of cases) {
      assert.equal(isIpv4MartianSource(parseIpv4Address(text), own, prefix), martian, text);
    }
  });
});

describe("MAC addresses", () => {
  it("parses colon and dash forms in either case", () => {
    assert.deepEqual(parseMacAddress("02:00:00:00:00:01"), new Uint8Array([2, 0, 0, 0, 0, 1]));
    assert.deepEqual(
      parseMacAddress("52-54-00-AB-cd-Ef"),
      new Uint8Array([0x52, 0x54, 0, 0xab, 0xcd, 0xef]),
    );
  });

  it("rejects anything else with a TypeError quoting the text", () => {
    const bad = [
      "",
      "02:00:00:00:00",
      "02:00:00:00:00:01:02",
      "02:00:00:00:00:1",
      "2:00:00:00:00:01",
      "02:00-00:00:00:01",
      "02.00.00.00.00.01",
      "020000000001",
      "02:00:00:00:00:0g",
      "02:00:00:00:00:01 ",
      "0x:00:00:00:00:01",
    ];
    for (const text of bad) {
      assert.throws(() => parseMacAddress(text), TypeError, `"${text}" must be rejected`);
    }
    assert.throws(() => parseMacAddress("02:00"), {
      name: "TypeError",
      message: 'parseMacAddress: invalid MAC address "02:00"',
    });
  });

  it("formats lowercase with colons and round-trips", () => {
    assert.equal(
      formatMacAddress(new Uint8Array([0x52, 0x54, 0, 0xab, 0xcd, 0xef])),
      "52:54:00:ab:cd:ef",
    );
    assert.equal(formatMacAddress(BROADCAST_MAC), "ff:ff:ff:ff:ff:ff");
    assert.throws(() => formatMacAddress(new Uint8Array(5)), TypeError);
  });

  it("compares and classifies", () => {
    const a = parseMacAddress("02:00:00:00:00:01");
    assert.equal(macEquals(a, parseMacAddress("02-00-00-00-00-01")), true);
    assert.equal(macEquals(a, parseMacAddress("02:00:00:00:00:02")), false);
    assert.equal(macEquals(a, parseMacAddress("03:00:00:00:00:01")), false);
    assert.equal(isBroadcastMac(BROADCAST_MAC), true);
    assert.equal(isBroadcastMac(parseMacAddress("ff:ff:ff:ff:ff:fe")), false);
    assert.equal(isMulticastMac(BROADCAST_MAC), true);
    assert.equal(isMulticastMac(parseMacAddress("01:00:5e:00:00:fb")), true);
    assert.equal(isMulticastMac(a), false);
  });

  it("randomLocalMac is locally administered and unicast", () => {
    const rng = seededRandom(123);
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const mac = randomLocalMac(rng.fill);
      assert.equal(mac.length, 6);
      assert.equal(mac[0] & 0x02, 0x02);
      assert.equal(mac[0] & 0x01, 0);
      seen.add(formatMacAddress(mac));
    }
    assert.equal(seen.size, 500);
    assert.deepEqual(
      randomLocalMac((b) => b.fill(0xff)),
      new Uint8Array([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]),
    );
    assert.deepEqual(randomLocalMac((b) => b.fill(0)), new Uint8Array([2, 0, 0, 0, 0, 0]));
  });
});

describe("readIpv4 / writeIpv4", () => {
  it("reads and writes big-endian at any offset", () => {
    const buf = new Uint8Array(9);
    writeIpv4(buf, 5, 0xc0a80001);
    assert.deepEqual([...buf.subarray(5)], [192, 168, 0, 1]);
    assert.equal(readIpv4(buf, 5), 0xc0a80001);
    writeIpv4(buf, 0, 0xffffffff);
    assert.equal(readIpv4(buf, 0), 0xffffffff);
  });

  it("throws RangeError outside the buffer or for a non-u32", () => {
    const buf = new Uint8Array(8);
    assert.throws(() => readIpv4(buf, 5), { name: "RangeError", message: /offset 5/ });
    assert.throws(() => writeIpv4(buf, -1, 0), RangeError);
    assert.throws(() => writeIpv4(buf, 0, -1), RangeError);
    assert.throws(() => writeIpv4(buf, 0, 2 ** 32), RangeError);
  });
});
