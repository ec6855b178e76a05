import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { egressBed, GUEST_IP, OUTSIDE, settle, STACK_IP, udpFrame } from "../_egress_test_util.ts";
import { decodeUdp } from "../_egress_test_util.ts";
import { buildDnsMessage, type DnsRecord, DnsRecordType, parseDnsMessage } from "./dns_message.ts";
import type { DnsAnswerSet } from "./dns_upstream.ts";
import { EgressPolicy, parseEgressRules } from "../egress_policy.ts";
import { IpProtocol, parseMacAddress, UdpRepr } from "../../../wire/mod.ts";
import {
  decodeV6,
  ndpFrame,
  PEER6,
  STACK6,
  V6_PEER_MAC,
  v6Frame,
} from "../../../stack/_ipv6_test_util.ts";

const A = (name: string, addr: string, ttl = 300): DnsRecord => ({
  name,
  type: DnsRecordType.A,
  class: 1,
  ttl,
  data: Uint8Array.from(addr.split(".").map(Number)),
});

function query(id: number, name: string, type = 1, edns?: number): Uint8Array {
  return buildDnsMessage({
    id,
    response: false,
    rd: true,
    question: { name, type, class: 1 },
    additional: edns === undefined
      ? []
      : [{ name: "", type: 41, class: edns, ttl: 0, data: new Uint8Array(0) }],
  });
}

/** Sends a query from the guest's port 5353 and returns the parsed answers it got. */
async function ask(bed: ReturnType<typeof egressBed>, q: Uint8Array) {
  bed.input(udpFrame({ dstPort: 53, srcPort: 5353, payload: q }));
  await settle();
  return bed.sent.splice(0).map((f) => {
    const d = decodeUdp(f);
    assert.equal(d.ip.src, STACK_IP);
    assert.equal(d.ip.dst, GUEST_IP);
    assert.equal(d.udp.srcPort, 53);
    assert.equal(d.udp.dstPort, 5353);
    const m = parseDnsMessage(d.udp.payload);
    assert.ok(m.ok);
    return { m: m.value, bytes: d.udp.payload };
  });
}

const okSet = (...answers: DnsRecord[]): DnsAnswerSet => ({ rcode: 0, answers, authority: [] });

describe("DNS forwarding through the session's responder (issue 13)", () => {
  it("resolves another name upstream and answers with the client's id and question", async () => {
    const bed = egressBed();
    bed.upstream.answers.set("www.example.test", okSet(A("www.example.test", "198.18.0.80")));
    const [r] = await ask(bed, query(0x4242, "WWW.Example.Test"));
    assert.equal(r.m.id, 0x4242);
    assert.ok(r.m.qr && r.m.rd && r.m.ra);
    assert.equal(r.m.rcode, 0);
    assert.deepEqual(r.m.questions, [{ name: "WWW.Example.Test", type: 1, class: 1 }]);
    assert.deepEqual(r.m.answers.map((a) => [...a.data].join(".")), ["198.18.0.80"]);
    assert.deepEqual(bed.upstream.asked.map((q) => q.name), ["WWW.Example.Test"]);
  });

  it("answers the session's own names itself, never upstream", async () => {
    const bed = egressBed();
    const [r] = await ask(bed, query(1, "netisle.internal"));
    assert.deepEqual([...r.m.answers[0].data], [10, 0, 2, 2]);
    assert.equal(bed.upstream.asked.length, 0);
  });

  it("answers from the cache with TTLs counted down (RFC 1035 §3.2.1)", async () => {
    const bed = egressBed();
    bed.upstream.answers.set("c.test", okSet(A("c.test", "198.18.0.81", 100)));
    await ask(bed, query(1, "c.test"));
    bed.clock.advance(40_500);
    const [r] = await ask(bed, query(2, "C.TEST"));
    assert.equal(r.m.id, 2);
    assert.equal(r.m.answers[0].ttl, 60);
    assert.equal(bed.upstream.asked.length, 1, "the second answer came from the cache");
    bed.clock.advance(60_000);
    await ask(bed, query(3, "c.test"));
    assert.equal(bed.upstream.asked.length, 2, "expired after its TTL");
    assert.equal(bed.service.totals().dns.cacheHits, 1);
  });

  it("answers SERVFAIL, not silence, when the upstream fails", async () => {
    const bed = egressBed();
    const [r] = await ask(bed, query(9, "broken.test"));
    assert.equal(r.m.rcode, 2);
    assert.equal(r.m.id, 9);
    assert.equal(bed.service.totals().dns.upstreamFailures, 1);
  });

  it("answers SERVFAIL when the upstream is still silent after 5 s", async () => {
    const bed = egressBed();
    let aborted = false;
    bed.upstream.answers.set("slow.test", (o) =>
      new Promise((_, reject) => {
        o.signal.addEventListener("abort", () => {
          aborted = true;
          reject(o.signal.reason);
        });
      }));
    assert.deepEqual(await ask(bed, query(5, "slow.test")), []);
    bed.clock.advance(4999);
    await settle();
    assert.equal(bed.sent.length, 0);
    bed.clock.advance(1);
    await settle();
    const d = parseDnsMessage(decodeUdp(bed.sent[0]).udp.payload);
    assert.ok(d.ok && d.value.rcode === 2);
    assert.ok(aborted, "the upstream's resolution was aborted");
  });

  it("shares one upstream resolution among identical questions in flight", async () => {
    const bed = egressBed();
    let release!: () => void;
    bed.upstream.answers.set("same.test", () =>
      new Promise((res) => {
        release = () => res(okSet(A("same.test", "198.18.0.82")));
      }));
    bed.input(udpFrame({ dstPort: 53, srcPort: 5000, payload: query(1, "same.test") }));
    bed.input(udpFrame({ dstPort: 53, srcPort: 5001, payload: query(2, "same.test") }));
    await settle();
    release();
    await settle();
    const got = bed.sent.map((f) => decodeUdp(f)).map((d) => [d.udp.dstPort, d.udp.payload[1]]);
    assert.deepEqual(got, [[5000, 1], [5001, 2]]);
    assert.equal(bed.upstream.asked.length, 1);
  });

  it("answers SERVFAIL at once beyond the questions in flight it allows", async () => {
    const bed = egressBed({ dns: { maxPending: 2 } });
    const never = () => new Promise<DnsAnswerSet>(() => {});
    for (const n of ["a.test", "b.test", "c.test"]) bed.upstream.answers.set(n, never);
    for (const [i, n] of ["a.test", "b.test", "c.test"].entries()) {
      bed.input(udpFrame({ dstPort: 53, srcPort: 5000 + i, payload: query(i, n) }));
    }
    await settle();
    assert.equal(bed.sent.length, 1);
    assert.equal(decodeUdp(bed.sent[0]).udp.dstPort, 5002);
    assert.equal(bed.service.totals().dns.overloaded, 1);
    bed.session.close();
  });

  it("leaves out addresses the policy denies on every port (DNS rebinding), counted", async () => {
    const bed = egressBed();
    bed.upstream.answers.set(
      "rebind.test",
      okSet(A("rebind.test", "127.0.0.1"), A("rebind.test", "169.254.169.254")),
    );
    bed.upstream.answers.set(
      "mixed.test",
      okSet(A("mixed.test", "10.1.1.1"), A("mixed.test", "1.1.1.1")),
    );
    const [r] = await ask(bed, query(1, "rebind.test"));
    assert.equal(r.m.rcode, 0);
    assert.deepEqual(r.m.answers, []);
    const [m] = await ask(bed, query(2, "mixed.test"));
    assert.deepEqual(m.m.answers.map((a) => [...a.data].join(".")), ["1.1.1.1"]);
    assert.equal(bed.service.totals().dnsFiltered.reserved_address, 3);
  });

  it("keeps addresses an allow rule opens, on any port", async () => {
    const bed = egressBed({
      policy: new EgressPolicy({ allow: parseEgressRules("tcp:10.9.0.0/16:8080") }),
    });
    bed.upstream.answers.set("app.test", okSet(A("app.test", "10.9.0.7")));
    const [r] = await ask(bed, query(1, "app.test"));
    assert.equal(r.m.answers.length, 1);
  });

  it("fits the answer in 512 bytes without EDNS (TC), in the client's EDNS size with it (RFC 6891 §6.2.3)", async () => {
    const bed = egressBed();
    const many = Array.from({ length: 60 }, (_, i) => A("many.test", `198.18.1.${i}`));
    bed.upstream.answers.set("many.test", okSet(...many));
    const [plain] = await ask(bed, query(1, "many.test"));
    assert.ok(plain.bytes.length <= 512);
    assert.ok(plain.m.tc);
    const [edns] = await ask(bed, query(2, "many.test", 1, 4096));
    assert.ok(!edns.m.tc);
    assert.equal(edns.m.answers.length, 60);
    assert.deepEqual(edns.m.additional.map((a) => [a.type, a.class]), [[41, 1472]]);
  });

  it("answers an IPv6 client from fd00::2 within the MTU less IPv6's 48 bytes of headers (RFC 8200 §3)", async () => {
    const bed = egressBed();
    const dstMac = parseMacAddress("02:00:00:00:00:02");
    // The guest's neighbour solicitation teaches the stack its MAC (RFC 4861 §7.2.3).
    bed.input(ndpFrame(
      { type: "neighbor_solicit", target: STACK6, options: { sourceLinkAddr: V6_PEER_MAC } },
      { dstMac },
    ));
    bed.sent.length = 0;
    const many = Array.from({ length: 100 }, (_, i) => A("many6.test", `198.18.2.${i}`));
    bed.upstream.answers.set("many6.test", okSet(...many));
    const q = query(7, "many6.test", 1, 4096);
    const u = new Uint8Array(8 + q.length);
    UdpRepr.emit({ srcPort: 5353, dstPort: 53, payload: q }, u, PEER6, STACK6);
    bed.input(v6Frame(IpProtocol.UDP, u, { dstMac }));
    await settle();
    const [f] = bed.sent.splice(0);
    const d = decodeV6(f);
    assert.deepEqual([d.ip.src, d.ip.dst], [STACK6, PEER6]);
    assert.ok(f.length > 1400 && f.length <= 14 + 1500, `frame of ${f.length} bytes`);
    const m = parseDnsMessage(d.payload.subarray(8));
    assert.ok(m.ok && m.value.tc && m.value.id === 7);
  });

  it("ends resolutions in flight with the session; no timer is left", async () => {
    const bed = egressBed();
    let aborted = 0;
    bed.upstream.answers.set(
      "hang.test",
      (o) =>
        new Promise((_, reject) =>
          o.signal.addEventListener("abort", () => {
            aborted++;
            reject(o.signal.reason);
          })
        ),
    );
    await ask(bed, query(1, "hang.test"));
    bed.session.close();
    await settle();
    assert.equal(aborted, 1);
    assert.equal(bed.clock.pendingTimers, 0);
    assert.equal(bed.sent.length, 0, "nothing answers after the session ended");
    assert.ok(OUTSIDE);
  });
});
