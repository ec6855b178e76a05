import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  buildDnsMessage,
  DnsRecordType,
  encodeDnsName,
  negativeTtl,
  parseDnsMessage,
  systemRecordToDns,
} from "./dns_message.ts";

function fromHex(s: string): Uint8Array {
  return Uint8Array.from((s.replace(/\s+/g, "").match(/../g) ?? []).map((b) => parseInt(b, 16)));
}
function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

describe("parseDnsMessage (RFC 1035 §4)", () => {
  // A response for www.example.com A: a CNAME to example.com (compressed), then an A.
  const response = fromHex(
    "abcd 8180 0001 0002 0000 0000" +
      "03777777076578616d706c6503636f6d00 0001 0001" + // www.example.com A IN
      "c00c 0005 0001 0000012c 0002 c010" + // CNAME -> pointer to example.com
      "c02d 0001 0001 00000e10 0004 5db8d822", // example.com (pointer into the CNAME data) A
  );
  it("reads every section and expands names inside record data (RFC 1035 §4.1.4)", () => {
    const m = parseDnsMessage(response);
    assert.ok(m.ok, !m.ok ? m.reason : "");
    const v = m.value;
    assert.equal(v.id, 0xabcd);
    assert.ok(v.qr && v.rd && v.ra && !v.tc && !v.aa);
    assert.deepEqual(v.questions, [{ name: "www.example.com", type: 1, class: 1 }]);
    assert.equal(v.answers.length, 2);
    assert.deepEqual(
      [v.answers[0].name, v.answers[0].type, v.answers[0].ttl, hex(v.answers[0].data)],
      ["www.example.com", 5, 300, "076578616d706c6503636f6d00"],
    );
    assert.deepEqual(
      [v.answers[1].name, v.answers[1].type, v.answers[1].ttl, hex(v.answers[1].data)],
      ["example.com", 1, 3600, "5db8d822"],
    );
  });

  it("never throws on hostile bytes: truncations and bit flips give a reason or a message", () => {
    for (let cut = 0; cut < response.length; cut++) {
      const r = parseDnsMessage(response.subarray(0, cut));
      assert.ok(!r.ok, `truncated at ${cut} parsed`);
    }
    for (let i = 0; i < response.length * 8; i++) {
      const b = response.slice();
      b[i >> 3] ^= 1 << (i & 7);
      parseDnsMessage(b);
    }
  });

  const bad: Array<[string, string, string]> = [
    ["a pointer loop", "0000 8180 0001 0000 0000 0000 c00c 0001 0001", "dns_bad_pointer"],
    ["trailing bytes", "0000 8180 0000 0000 0000 0000 00", "dns_trailing_bytes"],
    [
      "an A record of 5 bytes",
      "0000 8180 0000 0001 0000 0000 00 0001 0001 00000001 0005 0102030405",
      "dns_bad_rdata",
    ],
    [
      "record data past the end",
      "0000 8180 0000 0001 0000 0000 00 0010 0001 00000001 0009 01",
      "dns_truncated",
    ],
    ["too many records", "0000 8180 ffff 0000 0000 0000", "dns_too_many_records"],
  ];
  for (const [what, h, reason] of bad) {
    it(`refuses ${what} (${reason})`, () => {
      const r = parseDnsMessage(fromHex(h));
      assert.equal(r.ok ? "parsed" : r.reason, reason);
    });
  }
});

describe("buildDnsMessage", () => {
  it("writes the exact bytes of a response, owners pointing at the question", () => {
    const out = buildDnsMessage({
      id: 0x1234,
      response: true,
      rd: true,
      ra: true,
      rcode: 0,
      question: { name: "A.example", type: 1, class: 1 },
      answers: [{ name: "a.example", type: 1, class: 1, ttl: 60, data: fromHex("c6120001") }],
    });
    assert.equal(
      hex(out),
      "1234" + "8180" + "0001" + "0001" + "0000" + "0000" +
        "0141076578616d706c6500" + "0001" + "0001" +
        "c00c" + "0001" + "0001" + "0000003c" + "0004" + "c6120001",
    );
  });

  it("round-trips through the parser", () => {
    const records = [
      systemRecordToDns("x.test", { type: "MX", preference: 10, exchange: "mail.x.test" }, 30)!,
      systemRecordToDns("x.test", { type: "TXT", strings: ["a".repeat(300), ""] }, 30)!,
      systemRecordToDns("x.test", {
        type: "SRV",
        priority: 1,
        weight: 2,
        port: 443,
        target: "s.x.test",
      }, 30)!,
      systemRecordToDns("x.test", { type: "AAAA", value: "2001:db8::1" }, 30)!,
    ];
    const msg = buildDnsMessage({
      id: 7,
      response: true,
      question: { name: "x.test", type: 255, class: 1 },
      answers: records,
    });
    const m = parseDnsMessage(msg);
    assert.ok(m.ok);
    assert.deepEqual(m.value.answers, records);
    // TXT over 255 bytes is split into character-strings of at most 255 (RFC 1035 §3.3.14).
    assert.deepEqual([...records[1].data.subarray(0, 1)], [255]);
    assert.equal(records[1].data[256], 45);
    assert.equal(records[1].data.length, 1 + 255 + 1 + 45 + 1);
  });

  it("drops records from the end and sets TC when over maxSize, keeping the OPT (RFC 6891 §7)", () => {
    const a = (i: number) => ({
      name: "big.test",
      type: 1,
      class: 1,
      ttl: 5,
      data: new Uint8Array([10, 0, 0, i]),
    });
    const opt = { name: "", type: DnsRecordType.OPT, class: 1232, ttl: 0, data: new Uint8Array(0) };
    const msg = buildDnsMessage({
      id: 1,
      response: true,
      question: { name: "big.test", type: 1, class: 1 },
      answers: Array.from({ length: 100 }, (_, i) => a(i)),
      additional: [opt],
      maxSize: 512,
    });
    assert.ok(msg.length <= 512);
    const m = parseDnsMessage(msg);
    assert.ok(m.ok);
    assert.ok(m.value.tc);
    assert.ok(m.value.answers.length > 20 && m.value.answers.length < 100);
    assert.deepEqual(m.value.additional.map((r) => r.type), [41]);
  });

  it("encodes names and refuses labels over 63 bytes and names over 255", () => {
    assert.equal(hex(encodeDnsName("a.bc")), "0161026263" + "00");
    assert.equal(hex(encodeDnsName("")), "00");
    assert.throws(() => encodeDnsName("x".repeat(64)), RangeError);
    assert.throws(() => encodeDnsName(Array(130).fill("ab").join(".")), RangeError);
    assert.throws(() => encodeDnsName("a..b"), RangeError);
  });
});

describe("record data and negative TTLs", () => {
  it("encodes what system resolvers report, and refuses what does not fit", () => {
    assert.equal(hex(systemRecordToDns("n", { type: "A", value: "1.2.3.4" }, 9)!.data), "01020304");
    assert.equal(systemRecordToDns("n", { type: "A", value: "::1" }, 9), undefined);
    assert.equal(systemRecordToDns("n", { type: "AAAA", value: "1.2.3.4" }, 9), undefined);
    assert.equal(systemRecordToDns("n", { type: "CNAME", value: "x".repeat(64) }, 9), undefined);
    assert.equal(systemRecordToDns("n", { type: "A", value: "1.2.3.4", ttl: 120 }, 9)!.ttl, 120);
  });
  it("takes min(SOA TTL, MINIMUM) as the negative TTL (RFC 2308 §5)", () => {
    const soa = systemRecordToDns("test", {
      type: "SOA",
      mname: "ns.test",
      rname: "h.test",
      serial: 1,
      refresh: 2,
      retry: 3,
      expire: 4,
      minimum: 300,
      ttl: 900,
    }, 0)!;
    assert.equal(negativeTtl([soa]), 300);
    assert.equal(negativeTtl([{ ...soa, ttl: 100 }]), 100);
    assert.equal(negativeTtl([]), undefined);
  });
});
