import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  DHCPV6_ALL_RELAY_AGENTS_AND_SERVERS,
  DHCPV6_DROP_REASONS,
  DHCPV6_MAX_OPTIONS,
  dhcpv6DuidLl,
  Dhcpv6MessageType,
  Dhcpv6Option,
  Dhcpv6Packet,
  Dhcpv6Repr,
} from "./dhcpv6.ts";
import { formatIpv6Address, parseIpv6Address } from "./ipv6_address.ts";
import { seededRandom } from "./random.ts";
import { hex, toHex } from "./_test_util.ts";
import { INFO_REPLY_HEX, INFO_REQUEST_HEX } from "./_dhcpv6_test_util.ts";

const CLIENT_DUID = hex("000100012d3e4f50525400123456");
const STACK_MAC = hex("020000000001");

function parse(bytes: Uint8Array) {
  const p = Dhcpv6Packet.parse(bytes);
  if (!p.ok) return p;
  return Dhcpv6Repr.parse(p.value);
}

describe("DHCPv6 messages (RFC 8415 §8, §21; RFC 3646 §3)", () => {
  it("parses an Information-request: header, Client Identifier, Option Request, Elapsed Time", () => {
    const p = Dhcpv6Packet.parse(hex(INFO_REQUEST_HEX));
    assert.ok(p.ok);
    assert.deepEqual([p.value.msgType, p.value.transactionId], [11, 0x1a2b3c]);
    assert.deepEqual([...p.value.eachOption()].map((o) => [o.code, o.data.length]), [
      [1, 14],
      [6, 4],
      [8, 2],
    ]);
    assert.deepEqual(Dhcpv6Repr.parse(p.value), {
      ok: true,
      value: {
        msgType: Dhcpv6MessageType.INFORMATION_REQUEST,
        transactionId: 0x1a2b3c,
        clientId: CLIENT_DUID,
        oro: [Dhcpv6Option.DNS_SERVERS, Dhcpv6Option.DOMAIN_LIST],
        elapsedTime: 0,
      },
    });
  });

  it("emits the exact Reply and parses it back", () => {
    const reply: Dhcpv6Repr = {
      msgType: Dhcpv6MessageType.REPLY,
      transactionId: 0x1a2b3c,
      clientId: CLIENT_DUID,
      serverId: dhcpv6DuidLl(STACK_MAC),
      dnsServers: [parseIpv6Address("fd00::2")],
      informationRefreshTime: 86400,
    };
    const buf = new Uint8Array(Dhcpv6Repr.bufferLen(reply));
    Dhcpv6Repr.emit(reply, buf);
    assert.equal(toHex(buf), INFO_REPLY_HEX);
    assert.deepEqual(parse(buf), { ok: true, value: reply });
  });

  it("builds a DUID-LL from a MAC (RFC 8415 §11.4) and names ff02::1:2 (§7.1)", () => {
    assert.equal(toHex(dhcpv6DuidLl(STACK_MAC)), "00030001020000000001");
    assert.equal(formatIpv6Address(DHCPV6_ALL_RELAY_AGENTS_AND_SERVERS), "ff02::1:2");
    assert.throws(() => dhcpv6DuidLl(new Uint8Array(5)), TypeError);
  });

  it("skips unknown options, keeps the first of a repeated one, and sees IA options", () => {
    const msg = "0b000001" + "00ff0003aabbcc" + "000800020005" + "000800020009" +
      "0003000c000000010000000000000000";
    assert.deepEqual(parse(hex(msg)), {
      ok: true,
      value: { msgType: 11, transactionId: 1, elapsedTime: 5, hasIa: true },
    });
  });

  it("rejects hostile layouts by reason: short, relay, options past the end, too many, bad lengths", () => {
    const cases: Array<[string, string]> = [
      ["0b00", "dhcpv6_truncated"],
      ["0c000000" + "00", "dhcpv6_relay_unsupported"],
      ["0b000001" + "0001", "dhcpv6_bad_option"],
      ["0b000001" + "00010010" + "0001", "dhcpv6_bad_option"],
      ["0b000001" + "00010001" + "aa", "dhcpv6_bad_option"], // a 1-byte DUID
      ["0b000001" + "00010083" + "00".repeat(131), "dhcpv6_bad_option"], // a 131-byte DUID
      ["0b000001" + "00060003" + "001700", "dhcpv6_bad_option"], // odd ORO
      ["0b000001" + "00080001" + "00", "dhcpv6_bad_option"],
      ["0b000001" + "00170004" + "fd000000", "dhcpv6_bad_option"],
      ["0b000001" + "00200002" + "0000", "dhcpv6_bad_option"],
      ["0b000001" + "00ff0000".repeat(DHCPV6_MAX_OPTIONS + 1), "dhcpv6_too_many_options"],
    ];
    for (const [msg, reason] of cases) {
      assert.deepEqual(parse(hex(msg)), { ok: false, reason }, msg);
      assert.ok(DHCPV6_DROP_REASONS.includes(reason));
    }
    // Exactly the limit is fine.
    assert.ok(Dhcpv6Packet.parse(hex("0b000001" + "00ff0000".repeat(DHCPV6_MAX_OPTIONS))).ok);
  });

  it("never throws on random and mutated messages, and round-trips what it accepts", () => {
    const rng = seededRandom(8415);
    const golden = [hex(INFO_REQUEST_HEX), hex(INFO_REPLY_HEX)];
    const codes = [1, 2, 3, 4, 6, 8, 23, 25, 32, 0, 0xffff];
    let accepted = 0;
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      let bytes: Uint8Array;
      if (i % 3 === 0) {
        // Random options with plausible codes and random lengths.
        bytes = new Uint8Array(4 + Math.floor(rng.next() * 120));
        rng.fill(bytes);
        bytes[0] = 1 + Math.floor(rng.next() * 13);
        for (let at = 4; at + 4 <= bytes.length;) {
          const c = codes[Math.floor(rng.next() * codes.length)];
          bytes[at] = c >>> 8;
          bytes[at + 1] = c & 0xff;
          const len = Math.floor(rng.next() * 40);
          bytes[at + 2] = 0;
          bytes[at + 3] = len;
          at += 4 + len;
        }
      } else {
        bytes = golden[i % 2].slice(0, 4 + Math.floor(rng.next() * 80));
        for (let n = 0; n < 3; n++) {
          bytes[Math.floor(rng.next() * bytes.length)] = rng.u32() & 0xff;
        }
      }
      const r = parse(bytes);
      if (!r.ok) {
        assert.ok(DHCPV6_DROP_REASONS.includes(r.reason), r.reason);
        seen.add(r.reason);
        continue;
      }
      accepted++;
      const buf = new Uint8Array(Dhcpv6Repr.bufferLen(r.value));
      Dhcpv6Repr.emit(r.value, buf);
      assert.deepEqual(parse(buf), r);
    }
    assert.ok(accepted > 100, `accepted ${accepted}`);
    for (const reason of ["dhcpv6_bad_option", "dhcpv6_relay_unsupported"]) {
      assert.ok(seen.has(reason), `never reached ${reason}`);
    }
  });

  it("refuses to emit fields out of range", () => {
    const base: Dhcpv6Repr = { msgType: 7, transactionId: 1 };
    const bad: Dhcpv6Repr[] = [
      { ...base, msgType: 256 },
      { ...base, transactionId: 0x1000000 },
      { ...base, clientId: new Uint8Array(1) },
      { ...base, serverId: new Uint8Array(131) },
      { ...base, oro: [0x10000] },
      { ...base, elapsedTime: -1 },
      { ...base, informationRefreshTime: 2 ** 32 },
      { ...base, dnsServers: ["fd00::2" as unknown as never] },
    ];
    for (const r of bad) {
      assert.throws(() => Dhcpv6Repr.emit(r, new Uint8Array(512)), RangeError);
    }
    assert.throws(() => Dhcpv6Repr.emit(base, new Uint8Array(3)), RangeError);
  });
});
