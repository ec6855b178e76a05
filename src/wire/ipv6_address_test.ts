import { describe, it } from "node:test";
import assert from "node:assert/strict";

import {
  formatIpv6Address,
  ipv6FromGroups,
  ipv6Group,
  ipv6ToBytes,
  isIpv6Address,
  parseIpv6Address,
  readIpv6,
  writeIpv6,
} from "./ipv6_address.ts";

import { formatIpAddress, isIpv6, parseIpAddress } from "./ip_address.ts";
import { toHex } from "./_test_util.ts";

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
