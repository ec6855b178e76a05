import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock, SessionRegistry } from "../session/mod.ts";
import {
  ArpOperation,
  ArpRepr,
  ETHERNET_HEADER_LEN,
  EthernetRepr,
  EtherType,
  Ipv4Repr,
  Ipv6Repr,
  parseIpv4Address,
  parseIpv6Address,
  parseMacAddress,
} from "../wire/mod.ts";
import { type AppOptions, createApp } from "./app.ts";
import { MetricsWriter, PROMETHEUS_CONTENT_TYPE, renderMetrics } from "./metrics.ts";

function arpRequest(): Uint8Array {
  const f = new Uint8Array(42);
  const mac = parseMacAddress("52:54:00:12:34:56");
  EthernetRepr.emit({
    dst: parseMacAddress("ff:ff:ff:ff:ff:ff"),
    src: mac,
    etherType: EtherType.ARP,
  }, f);
  ArpRepr.emit({
    operation: ArpOperation.REQUEST,
    senderMac: mac,
    senderIp: parseIpv4Address("10.0.2.15"),
    targetMac: new Uint8Array(6),
    targetIp: parseIpv4Address("10.0.2.2"),
  }, f.subarray(ETHERNET_HEADER_LEN));
  return f;
}

function setup(options: Partial<AppOptions> = {}) {
  const clock = new ManualClock(0);
  const registry = new SessionRegistry({ clock, limits: { idleTimeoutMs: 1000 } });
  const app = createApp({ registry, requestLog: false, ...options });
  return { clock, registry, app };
}

/**
 * Parses a text-format document strictly enough to catch format mistakes:
 * every sample belongs to a family announced by `# HELP` and `# TYPE` lines
 * before it, families appear once, and values are numbers.
 */
function parseExposition(text: string): Map<string, number> {
  assert.ok(text.endsWith("\n"), "the document ends with a newline");
  const samples = new Map<string, number>();
  const help = new Set<string>();
  const types = new Map<string, string>();
  let current = "";
  for (const line of text.slice(0, -1).split("\n")) {
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$/.exec(line);
    if (m) {
      assert.ok(!help.has(m[1]), `family ${m[1]} announced twice`);
      help.add(m[1]);
      current = m[1];
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$/.exec(line);
    if (m) {
      assert.equal(m[1], current, `TYPE follows its HELP: ${line}`);
      types.set(m[1], m[2]);
      continue;
    }
    m =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*\})? (\S+)$/
        .exec(line);
    assert.ok(m, `not a valid sample line: ${JSON.stringify(line)}`);
    assert.equal(m[1], current, `sample ${m[1]} sits in its own family`);
    assert.ok(types.has(m[1]), `sample ${m[1]} has a # TYPE`);
    const value = Number(m[3]);
    assert.ok(!Number.isNaN(value), `numeric value in ${line}`);
    if (types.get(m[1]) === "counter") assert.match(m[1], /_total$/, "counters end in _total");
    samples.set(m[1] + (m[2] ?? ""), value);
  }
  return samples;
}

async function metrics(app: ReturnType<typeof setup>["app"], headers: Record<string, string> = {}) {
  const res = await app.request("/metrics", { headers });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), PROMETHEUS_CONTENT_TYPE);
  const text = await res.text();
  return { text, samples: parseExposition(text) };
}

describe("GET /metrics", () => {
  it("answers valid Prometheus text with the session, frame and lock totals", async () => {
    const { app, registry } = setup();
    const created = await (await app.request("/v1/sessions", { method: "POST" })).json();
    await app.request("/v1/sessions", { method: "POST" });
    const session = registry.get(created.id)!;
    session.input([arpRequest()]); // answered; no tunnel, so the reply is dropped as no_tunnel
    session.input([new Uint8Array(10)]); // dropped by the stack
    session.withCore((stack) => stack.tcp.listen(8080, 16));

    const { text, samples } = await metrics(app);
    assert.equal(samples.get("netisle_sessions"), 2);
    assert.equal(samples.get("netisle_sessions_created_total"), 2);
    assert.equal(samples.get("netisle_sessions_expired_total"), 0);
    assert.equal(samples.get("netisle_tunnels_attached"), 0);
    assert.equal(samples.get('netisle_frames_total{direction="rx"}'), 2);
    assert.equal(samples.get('netisle_frames_total{direction="tx"}'), 1);
    assert.equal(samples.get('netisle_frame_bytes_total{direction="rx"}'), 52);
    assert.equal(samples.get('netisle_frame_bytes_total{direction="tx"}'), 60);
    assert.equal(samples.get('netisle_frame_drops_total{direction="tx",reason="no_tunnel"}'), 1);
    assert.equal(
      samples.get('netisle_frame_drops_total{direction="rx",reason="input_queue_full"}'),
      0,
    );
    const rxDrops = [...samples].filter(([k]) =>
      k.startsWith('netisle_frame_drops_total{direction="rx"')
    ).reduce((n, [, v]) => n + v, 0);
    assert.equal(rxDrops, 1, "the runt frame, under its reason");
    assert.equal(samples.get('netisle_tcp_pcbs{list="listen"}'), 1);
    assert.equal(samples.get('netisle_tcp_pcbs{list="active"}'), 0);
    assert.equal(samples.get('netisle_tcp_pcbs{list="time-wait"}'), 0);
    assert.equal(samples.get('netisle_tcp_pcbs{list="bound"}'), 0);
    assert.ok(samples.get("netisle_core_lock_acquisitions_total")! >= 3, "two inputs and a listen");
    assert.ok(samples.has("netisle_core_lock_held_seconds_total"));
    assert.ok(samples.has("netisle_core_lock_max_held_seconds"));
    assert.equal(
      samples.get("netisle_core_timer_max_lateness_seconds"),
      0,
      "manual clock: on time",
    );
    assert.equal(samples.get("netisle_pcap_captures"), 0);
    assert.ok(!text.includes(created.token), "no token in the metrics");
    assert.ok(!text.includes(created.id), "no per-session series");
  });

  it("reports IPv4 reassembly outcomes, in /metrics and in the session view", async () => {
    const { app, registry, clock } = setup();
    const created = await (await app.request("/v1/sessions", { method: "POST" })).json();
    const session = registry.get(created.id)!;
    /** One fragment of datagram `ident` from 10.0.2.15: 8 bytes at `offset` (in 8-byte units). */
    const fragment = (ident: number, offset: number, more: boolean) => {
      const f = new Uint8Array(ETHERNET_HEADER_LEN + 20 + 8);
      EthernetRepr.emit({
        dst: parseMacAddress(created.mac),
        src: parseMacAddress("52:54:00:12:34:56"),
        etherType: EtherType.IPV4,
      }, f);
      Ipv4Repr.emit({
        src: parseIpv4Address("10.0.2.15"),
        dst: parseIpv4Address("10.0.2.2"),
        protocol: 17,
        payloadLen: 8,
        ttl: 64,
        ident,
        moreFragments: more,
        fragmentOffset: offset * 8,
      }, f.subarray(ETHERNET_HEADER_LEN));
      return f;
    };
    // Datagram 1 completes (a UDP header of 16 bytes' length, then 8 bytes); datagram 2 never does.
    const first = fragment(1, 0, true);
    first.set([0x30, 0x39, 0x30, 0x39, 0, 16, 0, 0], ETHERNET_HEADER_LEN + 20);
    session.input([first, fragment(1, 1, false), fragment(2, 0, true)]);
    clock.advance(31_000);
    const { samples } = await metrics(app);
    assert.equal(samples.get('netisle_ipv4_reassembly_total{outcome="completed"}'), 1);
    assert.equal(samples.get('netisle_ipv4_reassembly_total{outcome="timed_out"}'), 1);
    assert.equal(samples.get('netisle_ipv4_reassembly_total{outcome="discarded"}'), 0);
    const view = await (await app.request(`/v1/sessions/${created.id}`, {
      headers: { authorization: `Bearer ${created.token}` },
    })).json();
    assert.deepEqual(view.reassembly, { completed: 1, timedOut: 1, discarded: 0 });

    // IPv6 (RFC 8200 §4.5): one packet in two fragments completes (a UDP datagram to a closed
    // port, answered with a port unreachable once whole).
    const fragment6 = (offset: number, more: boolean, data: Uint8Array) => {
      const f = new Uint8Array(ETHERNET_HEADER_LEN + 40 + 8 + data.length);
      EthernetRepr.emit({
        dst: parseMacAddress(created.mac),
        src: parseMacAddress("52:54:00:12:34:56"),
        etherType: EtherType.IPV6,
      }, f);
      Ipv6Repr.emit({
        src: parseIpv6Address("fd00::15"),
        dst: parseIpv6Address("fd00::2"),
        nextHeader: 44,
        payloadLen: 8 + data.length,
        hopLimit: 64,
      }, f.subarray(ETHERNET_HEADER_LEN));
      const o = ETHERNET_HEADER_LEN + 40;
      f.set([17, 0, (offset * 8) >>> 8, ((offset * 8) & 0xf8) | (more ? 1 : 0), 0, 0, 0, 7], o);
      f.set(data, o + 8);
      return f;
    };
    const udp = new Uint8Array(16);
    udp.set([0x30, 0x39, 0x30, 0x39, 0, 16, 0, 0]);
    session.input([fragment6(0, true, udp.subarray(0, 8)), fragment6(1, false, udp.subarray(8))]);
    const after = await metrics(app);
    assert.equal(after.samples.get('netisle_ipv6_reassembly_total{outcome="completed"}'), 1);
    assert.equal(after.samples.get('netisle_ipv6_reassembly_total{outcome="timed_out"}'), 0);
    const view6 = await (await app.request(`/v1/sessions/${created.id}`, {
      headers: { authorization: `Bearer ${created.token}` },
    })).json();
    assert.deepEqual(view6.ipv6.reassembly, { completed: 1, timedOut: 0, discarded: 0 });
  });

  it("reports the API's sockets by protocol and the bound UDP endpoints", async () => {
    const { registry, app } = setup();
    const session = registry.create();
    session.sockets.create("tcp");
    session.sockets.create("tcp");
    session.sockets.create("udp");
    session.withCore((stack) => stack.udp.bind(5353));
    const text = await (await app.request("/metrics")).text();
    assert.match(text, /^netisle_sockets\{protocol="tcp"\} 2$/m);
    assert.match(text, /^netisle_sockets\{protocol="udp"\} 1$/m);
    // 5353 only: the DHCP server's port 67 is a service, not an endpoint.
    assert.match(text, /^netisle_udp_endpoints 1$/m);
  });

  it("counts HTTP requests by method, route pattern and status", async () => {
    const { app } = setup();
    const { id, token } = await (await app.request("/v1/sessions", { method: "POST" })).json();
    await app.request(`/v1/sessions/${id}`, { headers: { authorization: `Bearer ${token}` } });
    await app.request(`/v1/sessions/${id}`, { headers: { authorization: "Bearer nope" } });
    await app.request(`/v1/sessions/${id}/tunnel?token=${token}`);
    await app.request("/no/such/route/abc");
    await app.request("/healthz", { method: "BREW" });
    const { text, samples } = await metrics(app);
    const n = (method: string, route: string, status: number) =>
      samples.get(
        `netisle_http_requests_total{method="${method}",route="${route}",status="${status}"}`,
      );
    assert.equal(n("POST", "/v1/sessions", 201), 1);
    assert.equal(n("GET", "/v1/sessions/:sid", 200), 1);
    assert.equal(n("GET", "/v1/sessions/:sid", 401), 1);
    assert.equal(n("GET", "/v1/sessions/:sid/tunnel", 426), 1);
    assert.equal(n("GET", "(unmatched)", 404), 1);
    assert.equal(n("OTHER", "(unmatched)", 404), 1);
    assert.ok(!text.includes(token) && !text.includes(id) && !text.includes("abc"));
  });

  it("keeps counters after sessions are deleted or expire", async () => {
    const { app, registry, clock } = setup();
    const a = registry.create();
    registry.create();
    a.input([arpRequest()]);
    registry.delete(a.id);
    clock.advance(2000);
    registry.sweep();
    const { samples } = await metrics(app);
    assert.equal(samples.get("netisle_sessions"), 0);
    assert.equal(samples.get("netisle_sessions_created_total"), 2);
    assert.equal(samples.get("netisle_sessions_expired_total"), 1);
    assert.equal(samples.get('netisle_frames_total{direction="rx"}'), 1);
    assert.equal(samples.get('netisle_frames_total{direction="tx"}'), 1);
  });

  it("honours a metrics token when one is configured", async () => {
    const { app } = setup({ metricsToken: "scrape-me" });
    const none = await app.request("/metrics");
    assert.equal(none.status, 401);
    assert.equal((await none.json()).code, "EUNAUTHORIZED");
    assert.equal(
      (await app.request("/metrics", { headers: { authorization: "Bearer wrong" } })).status,
      401,
    );
    await metrics(app, { authorization: "Bearer scrape-me" });
  });

  it("includes extra collectors and process memory where available", async () => {
    const { app } = setup({
      metricsCollectors: [(w) => w.family("netisle_test_things", "gauge", "Things.").sample(7)],
    });
    const { samples } = await metrics(app);
    assert.equal(samples.get("netisle_test_things"), 7);
    const proc = (globalThis as { process?: { memoryUsage?: unknown } }).process;
    if (typeof proc?.memoryUsage === "function") {
      assert.ok(samples.get('netisle_process_memory_bytes{kind="rss"}')! > 0);
    }
  });
});

describe("renderMetrics and MetricsWriter", () => {
  it("uses an injected memory source, or omits memory", () => {
    const registry = new SessionRegistry({ clock: new ManualClock(0) });
    const text = renderMetrics({ registry, memoryUsage: () => ({ rss: 5, heapUsed: 3 }) });
    const s = parseExposition(text);
    assert.equal(s.get('netisle_process_memory_bytes{kind="rss"}'), 5);
    assert.equal(s.get('netisle_process_memory_bytes{kind="heap_used"}'), 3);
    const none = renderMetrics({ registry, memoryUsage: () => undefined });
    assert.ok(!none.includes("netisle_process_memory_bytes"));
    assert.ok(!none.includes("netisle_http_requests_total"), "no HTTP family without a source");
  });

  it("escapes label values and help text, and refuses bad or repeated names", () => {
    const w = new MetricsWriter();
    w.family("x_total", "counter", "a \\ b\nc").sample(1, { v: 'q"\\\n' }).sample(Infinity);
    assert.equal(
      w.toString(),
      '# HELP x_total a \\\\ b\\nc\n# TYPE x_total counter\nx_total{v="q\\"\\\\\\n"} 1\nx_total +Inf\n',
    );
    assert.throws(() => w.family("x_total", "counter", "again"), TypeError);
    assert.throws(() => w.family("bad-name", "gauge", "h"), TypeError);
    assert.throws(() => w.family("ok", "gauge", "h").sample(1, { "bad-label": "v" }), TypeError);
  });
});
