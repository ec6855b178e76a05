import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../../session/clock.ts";
import { FakeDialer } from "../fake_dialer.ts";
import { settle } from "../_egress_test_util.ts";
import { buildDnsMessage, DnsRecordType, parseDnsMessage } from "./dns_message.ts";
import { parseDnsUpstreamSpec } from "./dns_upstream.ts";
import { DNS_MESSAGE_TYPE, DohUpstream } from "./doh_upstream.ts";
import { SystemDnsUpstream } from "./system_upstream.ts";
import { UdpDnsUpstream } from "./udp_upstream.ts";

const Q = { name: "host.test", type: 1, class: 1 };

/** The response a server sends to `query`: its id and question, one A record. */
function answer(query: Uint8Array, opts: { id?: number; tc?: boolean; name?: string } = {}) {
  const m = parseDnsMessage(query);
  assert.ok(m.ok);
  const q = m.value.questions[0];
  const msg = buildDnsMessage({
    id: opts.id ?? m.value.id,
    response: true,
    rd: true,
    ra: true,
    question: { ...q, name: opts.name ?? q.name },
    answers: [{ name: q.name, type: 1, class: 1, ttl: 77, data: new Uint8Array([198, 18, 0, 9]) }],
  });
  if (opts.tc) msg[2] |= 0x02;
  return msg;
}

describe("parseDnsUpstreamSpec (NETISLE_DNS_UPSTREAM)", () => {
  const good: Array<[string, unknown]> = [
    ["system", { kind: "system" }],
    ["https://dns.example/dns-query", { kind: "https", url: "https://dns.example/dns-query" }],
    ["udp:198.18.0.53:5353", { kind: "udp", address: "198.18.0.53", port: 5353 }],
    ["udp:198.18.0.53", { kind: "udp", address: "198.18.0.53", port: 53 }],
    ["udp:[2001:db8::53]:53", { kind: "udp", address: "2001:db8::53", port: 53 }],
  ];
  for (const [text, spec] of good) {
    it(`reads ${text}`, () => assert.deepEqual(parseDnsUpstreamSpec(text), spec));
  }
  for (const text of ["", "udp:dns.example:53", "udp:1.2.3.4:0", "http://x/", "tcp:1.2.3.4:53"]) {
    it(`refuses ${JSON.stringify(text)}, quoting it`, () => {
      assert.throws(
        () => parseDnsUpstreamSpec(text),
        (e: Error) => e instanceof TypeError && e.message.includes(`"${text}"`),
      );
    });
  }
});

describe("UdpDnsUpstream (RFC 1035 §4.2, RFC 5452)", () => {
  const clock = () => new ManualClock(0);
  it("asks with a random id from a fresh socket and takes the matching answer", async () => {
    const dialer = new FakeDialer();
    const seen: Uint8Array[] = [];
    dialer.udp("198.18.0.53", 53, (q, reply) => {
      seen.push(q);
      reply(answer(q, { id: 0x1111 })); // another id: ignored
      reply(answer(q, { name: "other.test" })); // another question: rejected below
    });
    const up = new UdpDnsUpstream(dialer, "198.18.0.53", 53, {
      random: (b) => b.set([0xab, 0xcd]),
    });
    const p = up.resolve(Q, { signal: new AbortController().signal, clock: clock() });
    await assert.rejects(p, /another question/);
    assert.equal(seen.length, 1);
    assert.deepEqual([seen[0][0], seen[0][1]], [0xab, 0xcd]);
    const m = parseDnsMessage(seen[0]);
    assert.ok(m.ok && m.value.rd && !m.value.qr);
    assert.deepEqual(m.value.additional.map((r) => [r.type, r.class]), [[41, 1232]]);
    assert.equal(dialer.openUdpSockets, 0, "the socket is closed after the answer");
  });

  it("returns the answer set and ignores datagrams from other sources", async () => {
    const dialer = new FakeDialer();
    dialer.udp("198.18.0.53", 53, (q, reply) => reply(answer(q)));
    const up = new UdpDnsUpstream(dialer, "198.18.0.53", 53);
    const set = await up.resolve(Q, { signal: new AbortController().signal, clock: clock() });
    assert.deepEqual(set.answers.map((a) => [a.ttl, [...a.data].join(".")]), [[77, "198.18.0.9"]]);
    assert.equal(set.rcode, 0);
  });

  it("sends the query again after the retry interval", async () => {
    const dialer = new FakeDialer();
    let n = 0;
    dialer.udp("198.18.0.53", 53, (q, reply) => {
      if (++n === 2) reply(answer(q));
    });
    const c = clock();
    const up = new UdpDnsUpstream(dialer, "198.18.0.53", 53, { retryMs: 1000 });
    const p = up.resolve(Q, { signal: new AbortController().signal, clock: c });
    await settle();
    assert.equal(n, 1);
    c.advance(1000);
    const set = await p;
    assert.equal(n, 2);
    assert.equal(set.answers.length, 1);
    assert.equal(c.pendingTimers, 0);
  });

  it("asks again over TCP when the answer is truncated (RFC 1035 §4.2.2)", async () => {
    const dialer = new FakeDialer();
    dialer.udp("198.18.0.53", 53, (q, reply) => reply(answer(q, { tc: true })));
    dialer.serve("198.18.0.53", 53, (conn) => {
      void (async () => {
        const head = (await conn.fromClient.read(2))!;
        const len = (head[0] << 8) | head[1];
        const q = (await conn.fromClient.read(len))!;
        const a = answer(q);
        await conn.toClient.write(new Uint8Array([a.length >> 8, a.length & 0xff]));
        await conn.toClient.write(a);
      })();
    });
    const up = new UdpDnsUpstream(dialer, "198.18.0.53", 53);
    const set = await up.resolve(Q, { signal: new AbortController().signal, clock: clock() });
    assert.equal(set.answers.length, 1);
    assert.deepEqual(dialer.dials, ["198.18.0.53:53"]);
    assert.equal(dialer.openConnections, 0);
  });

  it("stops at once when aborted and leaves nothing open", async () => {
    const dialer = new FakeDialer();
    dialer.udp("198.18.0.53", 53, () => {});
    const c = clock();
    const ac = new AbortController();
    const up = new UdpDnsUpstream(dialer, "198.18.0.53", 53);
    const p = up.resolve(Q, { signal: ac.signal, clock: c });
    await settle();
    ac.abort(new Error("stop"));
    await assert.rejects(p, /stop/);
    assert.equal(dialer.openUdpSockets, 0);
    assert.equal(c.pendingTimers, 0);
  });
});

describe("DohUpstream (RFC 8484)", () => {
  it("POSTs a query with id 0 as application/dns-message and parses the answer", async () => {
    let seen: { url: string; method?: string; type?: string | null; body?: Uint8Array } = {
      url: "",
    };
    const fetchFn = ((url: string, init: RequestInit) => {
      const body = new Uint8Array(init.body as ArrayBuffer);
      seen = {
        url,
        method: init.method,
        type: new Headers(init.headers).get("content-type"),
        body,
      };
      return Promise.resolve(
        new Response(answer(body) as Uint8Array<ArrayBuffer>, {
          headers: { "content-type": DNS_MESSAGE_TYPE },
        }),
      );
    }) as unknown as typeof fetch;
    const up = new DohUpstream("https://dns.test/dns-query", fetchFn);
    const set = await up.resolve(Q, {
      signal: new AbortController().signal,
      clock: new ManualClock(0),
    });
    assert.equal(seen.url, "https://dns.test/dns-query");
    assert.equal(seen.method, "POST");
    assert.equal(seen.type, DNS_MESSAGE_TYPE);
    assert.deepEqual([seen.body![0], seen.body![1]], [0, 0]);
    assert.equal(set.answers.length, 1);
  });

  it("fails on an HTTP error or a body that is not an answer to the question", async () => {
    const status =
      (() => Promise.resolve(new Response("no", { status: 503 }))) as unknown as typeof fetch;
    const o = { signal: new AbortController().signal, clock: new ManualClock(0) };
    await assert.rejects(new DohUpstream("https://d/", status).resolve(Q, o), /HTTP 503/);
    const junk =
      (() => Promise.resolve(new Response(new Uint8Array(5)))) as unknown as typeof fetch;
    await assert.rejects(new DohUpstream("https://d/", junk).resolve(Q, o), /does not parse/);
  });
});

describe("SystemDnsUpstream", () => {
  const o = () => ({ signal: new AbortController().signal, clock: new ManualClock(0) });
  it("turns the runtime's records into answers, 60 s TTL where it gives none", async () => {
    const up = new SystemDnsUpstream({
      lookup: (name, type) => {
        assert.equal(name, "host.test");
        assert.equal(type, "MX");
        return Promise.resolve([{ type: "MX", preference: 5, exchange: "mx.test" }]);
      },
      isNotFound: () => false,
    });
    const set = await up.resolve({ name: "host.test", type: DnsRecordType.MX, class: 1 }, o());
    assert.equal(set.rcode, 0);
    assert.deepEqual(set.answers.map((a) => [a.type, a.ttl]), [[15, 60]]);
  });
  it("answers NOERROR without records for a name the runtime did not find", async () => {
    const up = new SystemDnsUpstream({
      lookup: () => Promise.reject(Object.assign(new Error("nx"), { code: "ENOTFOUND" })),
      isNotFound: (e) => (e as { code?: string }).code === "ENOTFOUND",
    });
    assert.deepEqual(await up.resolve(Q, o()), { rcode: 0, answers: [], authority: [] });
  });
  it("answers NOTIMP for a type the runtime cannot ask for, and fails on errors", async () => {
    const up = new SystemDnsUpstream({
      lookup: () => Promise.reject(new Error("resolver down")),
      isNotFound: () => false,
    });
    assert.equal((await up.resolve({ name: "x", type: 99, class: 1 }, o())).rcode, 4);
    await assert.rejects(up.resolve(Q, o()), /resolver down/);
  });
});
