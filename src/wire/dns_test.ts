import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  DnsRcode,
  DnsType,
  emitDnsResponse,
  parseDnsHeader,
  parseDnsName,
  parseDnsQuery,
} from "./dns.ts";

function fromHex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, "");
  return Uint8Array.from(clean.match(/../g)!.map((b) => parseInt(b, 16)));
}

function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

const HEADER = "abcd 0100 0001 0000 0000 0000";

describe("DNS codec", () => {
  it("parses a header", () => {
    const h = parseDnsHeader(fromHex("abcd 8583 0001 0002 0003 0004"));
    assert.ok(h.ok);
    assert.deepEqual(h.value, {
      id: 0xabcd,
      qr: true,
      opcode: 0,
      aa: true,
      tc: false,
      rd: true,
      ra: true,
      rcode: 3,
      qdcount: 1,
      ancount: 2,
      nscount: 3,
      arcount: 4,
    });
    assert.deepEqual(parseDnsHeader(new Uint8Array(11)), { ok: false, reason: "dns_truncated" });
  });

  it("parses a query's question", () => {
    const q = parseDnsQuery(fromHex(HEADER + "076e657469736c6508696e7465726e616c00 0001 0001"));
    assert.ok(q.ok);
    assert.deepEqual(q.value.question, { name: "netisle.internal", type: 1, class: 1 });
  });

  it("follows a backward compression pointer and reports where the name ended", () => {
    // At 12: "internal"; at 22: "netisle" then a pointer to 12.
    const msg = fromHex(HEADER + "08696e7465726e616c00" + "076e657469736c65c00c");
    assert.deepEqual(parseDnsName(msg, 22), {
      ok: true,
      value: { name: "netisle.internal", end: 32 },
    });
  });

  it("rejects pointer loops, forward pointers, long chains and bad labels", () => {
    // A pointer to itself.
    assert.deepEqual(parseDnsName(fromHex(HEADER + "c00c"), 12), {
      ok: false,
      reason: "dns_bad_pointer",
    });
    // Two pointers pointing at each other: the forward one is refused.
    assert.deepEqual(parseDnsName(fromHex(HEADER + "c00e c00c"), 12).ok, false);
    assert.deepEqual(parseDnsName(fromHex(HEADER + "c00e c00c"), 14), {
      ok: false,
      reason: "dns_bad_pointer",
    });
    // A chain of 17 backward pointers is too long even without a loop.
    let chain = "00";
    for (let i = 0; i < 17; i++) {
      chain += "c0" + (12 + (i === 0 ? 0 : 1 + (i - 1) * 2)).toString(16).padStart(2, "0");
    }
    const msg = fromHex(HEADER + chain);
    assert.deepEqual(parseDnsName(msg, msg.length - 2), { ok: false, reason: "dns_bad_pointer" });
    assert.deepEqual(parseDnsName(msg, msg.length - 4).ok, true);
    assert.deepEqual(parseDnsName(fromHex(HEADER + "4100"), 12), {
      ok: false,
      reason: "dns_bad_label",
    });
    assert.deepEqual(parseDnsName(fromHex(HEADER + "03612e6200"), 12), {
      ok: false,
      reason: "dns_bad_label",
    });
    assert.deepEqual(parseDnsName(fromHex(HEADER + "0561"), 12), {
      ok: false,
      reason: "dns_truncated",
    });
    assert.deepEqual(parseDnsName(fromHex(HEADER + "c0"), 12), {
      ok: false,
      reason: "dns_truncated",
    });
    let long = "";
    for (let i = 0; i < 5; i++) long += "3f" + "61".repeat(63);
    assert.deepEqual(parseDnsName(fromHex(HEADER + long + "00"), 12), {
      ok: false,
      reason: "dns_name_too_long",
    });
  });

  it("refuses a query without exactly one question", () => {
    assert.deepEqual(parseDnsQuery(fromHex("abcd 0100 0000 0000 0000 0000")), {
      ok: false,
      reason: "dns_bad_question_count",
    });
    assert.deepEqual(parseDnsQuery(fromHex(HEADER + "0161 00 0001")), {
      ok: false,
      reason: "dns_truncated",
    });
  });

  it("emits a response whose answer points at the question name", () => {
    const msg = emitDnsResponse({
      id: 0x1234,
      opcode: 0,
      aa: true,
      rd: true,
      rcode: DnsRcode.NOERROR,
      question: { name: "a.b", type: DnsType.A, class: 1 },
      answers: [{ type: DnsType.A, class: 1, ttl: 60, rdata: Uint8Array.of(10, 0, 2, 2) }],
    });
    assert.equal(
      hex(msg),
      "1234" + "8500" + "0001" + "0001" + "0000" + "0000" + "01610162" + "00" + "0001" + "0001" +
        "c00c" + "0001" + "0001" + "0000003c" + "0004" + "0a000202",
    );
    // A header-only answer (FORMERR) keeps the id, opcode and RD.
    assert.equal(
      hex(emitDnsResponse({ id: 1, opcode: 0, aa: false, rd: true, rcode: DnsRcode.FORMERR })),
      "0001" + "8101" + "0000" + "0000" + "0000" + "0000",
    );
    assert.throws(
      () =>
        emitDnsResponse({
          id: 1,
          opcode: 0,
          aa: false,
          rd: false,
          rcode: 0,
          answers: [
            { type: 1, class: 1, ttl: 1, rdata: new Uint8Array(4) },
          ],
        }),
      RangeError,
    );
  });
});
