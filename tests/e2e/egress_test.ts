/**
 * End to end, egress (issue 13): a Linux guest behind a session reaches an
 * "internet" namespace through netisle's egress gateway
 * (tests/e2e/egress_testbed.ts has the layout): DNS through 10.0.2.2 from a
 * dnsmasq upstream plus the session's own names, UDP both ways, and denied
 * destinations answered at once and counted.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { commandExists, DENO, e2eSkipReason } from "./harness.ts";
import { buildGuestInitramfs, guestQemuArgs, QEMU, qemuGuestSkipReason } from "./qemu_guest.ts";
import {
  ECHO_PORT,
  EgressTestbed,
  HTTP_PORT,
  PRIVATE,
  SERVER_OUT,
  SERVER_OUT6,
  UDP_PORT,
  WEB,
  WEB6,
} from "./egress_testbed.ts";
import { rate, sha256File } from "./testbed.ts";

const skip = e2eSkipReason() ??
  (["dnsmasq", "python3", "curl", "nft"].some((c) => !commandExists(c))
    ? "needs dnsmasq, python3, curl and nft (.ci/run installs them)"
    : undefined);

describe("e2e: egress through a session (Deno server)", { skip }, () => {
  const bed = new EgressTestbed();
  before(async () => await bed.start("egr"));
  after(async () => await bed.stop());

  it("resolves names through 10.0.2.2 from the upstream (A, AAAA, CNAME, MX, TXT, SRV) and the session's own", () => {
    const g = bed.guest;
    assert.match(
      g.exec("getent", ["hosts", "www.egress.test"]),
      new RegExp(`^${WEB}\\s+www\\.egress\\.test`),
    );
    // The guest is dual-stack (the session's router advertisement gives it a default route now
    // that egress carries IPv6): ask for each family, as `getent hosts` prefers fd00::2.
    assert.match(
      g.exec("getent", ["ahostsv4", "netisle.internal"]),
      /^10\.0\.2\.2\s+STREAM netisle\.internal/,
    );
    assert.match(
      g.exec("getent", ["ahostsv6", "netisle.internal"]),
      /^fd00::2\s+STREAM netisle\.internal/,
    );
    const ns = (type: string, name: string) =>
      g.exec("busybox", ["nslookup", `-type=${type}`, name, "10.0.2.2"]);
    assert.match(ns("aaaa", "v6.egress.test"), /2001:db8::10/);
    assert.match(ns("cname", "alias.egress.test"), /canonical name = www\.egress\.test/);
    assert.match(ns("mx", "egress.test"), /mail exchanger = 10 mail\.egress\.test/);
    assert.match(ns("txt", "txt.egress.test"), /text = "hello from the internet"/);
    assert.match(ns("srv", "_http._tcp.egress.test"), /1 2 8080 www\.egress\.test/);
    const v = bed.view();
    assert.ok(v.egress.counters.dns.upstreamQueries >= 6, JSON.stringify(v.egress.counters.dns));
    assert.equal(v.egress.dnsUpstream, "udp:198.18.0.53:53");
  });

  it("refuses names that resolve to addresses the policy denies (127.0.0.1, cloud metadata), counted", () => {
    const g = bed.guest;
    const filtered = () =>
      Object.values(bed.view().egress.counters.dnsFiltered as Record<string, number>)
        .reduce((a, b) => a + b, 0);
    const before = filtered();
    const t0 = performance.now();
    assert.equal(g.try("getent", ["hosts", "rebind.egress.test"]).ok, false);
    assert.equal(g.try("getent", ["hosts", "metadata.egress.test"]).ok, false);
    assert.ok(performance.now() - t0 < 5000, "answered at once, not after a timeout");
    // 127.0.0.1 is also one of the server's own addresses (its loopback), which is checked first.
    const after = filtered();
    assert.ok(after >= before + 2, `filtered DNS records ${before} -> ${after}`);
    assert.match(
      bed.metrics(),
      /netisle_egress_dns_filtered_records_total\{reason="reserved_address"\} [1-9]/,
    );
  });

  it("carries UDP both ways to an echo server in the internet", () => {
    const out = bed.guest.exec("python3", [
      "tests/e2e/fixtures/egress_guest.py",
      "udp",
      WEB,
      String(UDP_PORT),
      "hello over egress",
    ]);
    assert.equal(out.trim(), "REPLY echo:hello over egress");
    const flows = bed.view().egress.flows.filter((f: { protocol: string }) => f.protocol === "udp");
    assert.ok(
      flows.some((f: { destination: string; bytesIn: number }) =>
        f.destination === `${WEB}:${UDP_PORT}` && f.bytesIn === 22
      ),
      JSON.stringify(flows),
    );
  });

  it("answers UDP to denied destinations at once with ICMP prohibited, counted by reason", () => {
    const v0 = bed.view().egress.denied;
    const cases: Array<[string, string]> = [
      [SERVER_OUT, "server_address"],
      ["169.254.169.254", "reserved_address"],
      [PRIVATE, "reserved_address"],
    ];
    for (const [dst] of cases) {
      const t0 = performance.now();
      const out = bed.guest.exec("python3", [
        "tests/e2e/fixtures/egress_guest.py",
        "udp",
        dst,
        "7",
        "x",
      ]);
      assert.equal(out.trim(), "ERROR EHOSTUNREACH", `${dst}: ${out}`);
      assert.ok(performance.now() - t0 < 1500, `${dst} answered at once`);
    }
    const v1 = bed.view().egress.denied;
    assert.equal(v1.server_address - v0.server_address, 1);
    assert.equal(v1.reserved_address - v0.reserved_address, 2);
    // The private address is reachable from the server's namespace itself: the policy refused it.
    assert.match(bed.server.exec("ping", ["-c", "1", "-W", "2", PRIVATE]), /1 received/);
  });

  it("lets the QEMU guest (-netdev stream) fetch a file from the internet and resolve names", {
    skip: qemuGuestSkipReason("the QEMU egress test"),
  }, async () => {
    const file = bed.makeFile("small", 1);
    const sha = await sha256File(file);
    const sock = `${bed.dir}/qemu.sock`;
    const cli = bed.guest.ns.spawn(DENO, [
      "run",
      "-A",
      "tunnel/cli.ts",
      "--server",
      "http://192.168.100.1:8787",
      "--create",
      "--qemu-stream",
      `unix:${sock}`,
    ], { DENO_NO_UPDATE_CHECK: "1" });
    bed.procs.push(cli);
    const [, id, token] = await cli.waitFor(/session (s_\S+) token (\S+)/, 60_000);
    await cli.waitFor(/listening for QEMU -netdev stream/, 60_000);
    const vm = bed.guest.ns.spawn(
      QEMU,
      guestQemuArgs(
        buildGuestInitramfs(bed.dir),
        `stream,id=n0,server=off,addr.type=unix,addr.path=${sock}`,
      ),
    );
    bed.procs.push(vm);
    await vm.waitFor(/NETISLE-GUEST dhcp-ok/, 180_000);
    let mark = vm.mark();
    vm.send(`fetch ${WEB} ${HTTP_PORT} /small`);
    const got = await vm.waitFor(
      /NETISLE-GUEST fetch-(done|failed) (\S+)(?: (\d+))?/,
      120_000,
      mark,
    );
    assert.deepEqual(got.slice(1, 4), ["done", sha, String(1024 * 1024)], vm.output.slice(mark));
    mark = vm.mark();
    vm.send("resolve www.egress.test");
    const res = await vm.waitFor(/NETISLE-GUEST resolved (.*)/, 60_000, mark);
    assert.match(res[1], new RegExp(`Address: ${WEB.replaceAll(".", "\\.")}`));
    const view = bed.api("GET", `/v1/sessions/${id}`, token);
    assert.ok(
      view.egress.counters.tcp.bytesIn >= 1024 * 1024,
      JSON.stringify(view.egress.counters),
    );
    vm.send("poweroff");
    await vm.waitFor(/NETISLE-GUEST bye/, 30_000);
  });
});

const MiB = 1024 * 1024;

describe("e2e: egress over IPv6 (Deno server, issue 17)", { skip }, () => {
  const bed = new EgressTestbed();
  const MIB16 = 16 * MiB;
  let file = "";
  let sha = "";
  before(async () => {
    await bed.start("eg6", {
      ipv6: true,
      env: { NETISLE_EGRESS_ALLOW: "198.18.0.0/15,2001:db8:1::/64" },
    });
    file = bed.makeFile("v6", 16);
    sha = await sha256File(file);
  });
  after(async () => await bed.stop());

  it("configures the guest from the router advertisement alone: SLAAC address, default route via the stack", () => {
    const route = bed.guest.exec("ip", ["-6", "route", "show", "default"]);
    assert.match(route, /default via fe80::\S+ dev gv1 proto ra/);
    const v = bed.view();
    assert.ok(v.ipv6.routerAdvertisements.sent >= 1, JSON.stringify(v.ipv6));
  });

  it("downloads and uploads 16 MiB byte-exact with curl -g from [2001:db8:1::10]:8080", async () => {
    const out = `${bed.dir}/down-v6`;
    const t0 = performance.now();
    bed.guest.exec("curl", ["-sS", "--fail", "-g", "-o", out, `http://[${WEB6}]:${HTTP_PORT}/v6`]);
    const ms = performance.now() - t0;
    assert.equal(await sha256File(out), sha, "the download is byte-exact");
    rmSync(out);
    console.log(`egress over IPv6, download: ${rate(MIB16, ms)}`);
    const up = bed.guest.exec("curl", [
      "-sS",
      "--fail",
      "-g",
      "-T",
      file,
      `http://[${WEB6}]:${HTTP_PORT}/upload`,
    ]);
    assert.equal(up.trim(), `${MIB16} ${sha}`, "the upload is byte-exact");
    const v = bed.view();
    assert.ok(v.egress.counters.tcp.bytesIn >= MIB16);
    assert.ok(v.egress.counters.tcp.bytesOut >= MIB16);
  });

  it("carries UDP both ways to an echo server at 2001:db8:1::10", () => {
    const out = bed.guest.exec("python3", [
      "tests/e2e/fixtures/egress_guest.py",
      "udp",
      WEB6,
      String(UDP_PORT),
      "hello over v6",
    ]);
    assert.equal(out.trim(), "REPLY echo:hello over v6");
    const flows = bed.view().egress.flows.filter((f: { protocol: string }) => f.protocol === "udp");
    assert.ok(
      flows.some((f: { destination: string }) => f.destination === `[${WEB6}]:${UDP_PORT}`),
      JSON.stringify(flows),
    );
  });

  it("answers the server's own IPv6 address at once: RST for TCP, ICMPv6 prohibited for UDP", () => {
    const v0 = bed.view().egress.denied;
    const tcp = bed.guest.exec("python3", [
      "tests/e2e/fixtures/egress_guest.py",
      "connect",
      SERVER_OUT6,
      "8787",
    ]).trim();
    const m = /^ERROR ECONNREFUSED (\d+)$/.exec(tcp);
    assert.ok(m, tcp);
    assert.ok(Number(m[1]) < 1000, `answered at once (${m[1]} ms)`);
    const udp = bed.guest.exec("python3", [
      "tests/e2e/fixtures/egress_guest.py",
      "udp",
      SERVER_OUT6,
      "7",
      "x",
    ]);
    // Linux reports ICMPv6 administratively prohibited on a connected socket as EACCES.
    assert.equal(udp.trim(), "ERROR EACCES");
    const v1 = bed.view().egress.denied;
    assert.equal(v1.server_address - v0.server_address, 2);
  });

  it("answers TTL 1 with an ICMP time exceeded from 10.0.2.2 (RFC 1812 §5.3.1): traceroute's first hop", () => {
    // ping exits 1 without a reply: its output is what counts.
    const out = bed.guest.exec("sh", ["-c", `ping -c 1 -t 1 -W 2 ${WEB} 2>&1; true`], 10_000);
    assert.match(out, /From 10\.0\.2\.2 .*Time to live exceeded/i);
  });

  it("answers hop limit 1 with an ICMPv6 time exceeded from the stack (RFC 8200 §3)", () => {
    // ping exits 1 without a reply: its output is what counts.
    const out = bed.guest.exec("sh", ["-c", `ping -6 -c 1 -t 1 -W 2 ${WEB6} 2>&1; true`], 10_000);
    assert.match(out, /Time exceeded: Hop limit/i);
  });
});

describe("e2e: TCP egress through a session (Deno server)", { skip }, () => {
  const bed = new EgressTestbed();
  let big = "";
  let bigSha = "";
  before(async () => {
    await bed.start("egt");
    big = bed.makeFile("big", 256);
    bigSha = await sha256File(big);
  });
  after(async () => await bed.stop());

  /** curl in the guest: downloads `name` through egress and checks its sha256. */
  async function download(label: string): Promise<void> {
    const out = `${bed.dir}/down-${label}`;
    const t0 = performance.now();
    bed.guest.exec("curl", [
      "-sS",
      "--fail",
      "-o",
      out,
      `http://www.egress.test:${HTTP_PORT}/big`,
    ], 600_000);
    const ms = performance.now() - t0;
    assert.equal(await sha256File(out), bigSha, `${label}: the download is byte-exact`);
    rmSync(out);
    console.log(`egress download (${label}): ${rate(256 * MiB, ms)}`);
  }

  /** curl in the guest: uploads the file; the server answers its byte count and sha256. */
  function upload(label: string): void {
    const t0 = performance.now();
    const out = bed.guest.exec("curl", [
      "-sS",
      "--fail",
      "-T",
      big,
      `http://${WEB}:${HTTP_PORT}/upload`,
    ], 600_000);
    const ms = performance.now() - t0;
    assert.equal(out.trim(), `${256 * MiB} ${bigSha}`, `${label}: the upload is byte-exact`);
    console.log(`egress upload (${label}): ${rate(256 * MiB, ms)}`);
  }

  it("downloads and uploads 256 MiB byte-exact with curl, clean", async () => {
    await download("clean");
    upload("clean");
    const v = bed.view();
    assert.ok(v.egress.counters.tcp.bytesIn >= 256 * MiB);
    assert.ok(v.egress.counters.tcp.bytesOut >= 256 * MiB);
    assert.match(
      bed.metrics(),
      /netisle_egress_bytes_total\{protocol="tcp",direction="in"\} \d{9,}/,
    );
  });

  it("downloads and uploads 256 MiB byte-exact with 2% loss on the guest's link", async () => {
    bed.lossy(bed.guest, 2);
    try {
      await download("2% loss");
      upload("2% loss");
      const dropped = bed.dropped(bed.guest);
      assert.ok(dropped > 1000, `the bridge dropped ${dropped} frames`);
      console.log(`egress with loss: the guest's bridge dropped ${dropped} frames`);
    } finally {
      bed.clean(bed.guest);
    }
  });

  it("answers denied destinations at once (RST) and counts them by reason", () => {
    const v0 = bed.view().egress.denied;
    const cases: Array<[string, number]> = [
      [SERVER_OUT, 8787], // the server namespace's own address (its API port)
      ["169.254.169.254", 80], // cloud metadata
      [PRIVATE, HTTP_PORT], // routed, but outside the allow rule
      [WEB, 25], // port 25
    ];
    for (const [dst, port] of cases) {
      const out = bed.guest.exec("python3", [
        "tests/e2e/fixtures/egress_guest.py",
        "connect",
        dst,
        String(port),
      ]).trim();
      const m = /^ERROR ECONNREFUSED (\d+)$/.exec(out);
      assert.ok(m, `${dst}:${port}: ${out}`);
      assert.ok(Number(m[1]) < 1000, `${dst}:${port} answered at once (${m[1]} ms)`);
    }
    // A name resolving to 127.0.0.1: no address, at once.
    const t0 = performance.now();
    const r = bed.guest.try("curl", ["-sS", "-m", "10", "http://rebind.egress.test/"]);
    assert.equal(r.ok, false);
    assert.match(r.out, /Could not resolve host/);
    assert.ok(performance.now() - t0 < 5000);
    const v1 = bed.view().egress.denied;
    assert.equal(v1.server_address - v0.server_address, 1);
    assert.equal(v1.reserved_address - v0.reserved_address, 2);
    assert.equal(v1.smtp_port - v0.smtp_port, 1);
    // From the server's namespace the private address answers: the policy refused it.
    assert.match(
      bed.server.exec("curl", [
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        `http://${PRIVATE}:${HTTP_PORT}/x`,
      ]),
      /404/,
    );
  });

  it("takes 256 concurrent connections and resets the rest; another session's transfer completes meanwhile", async () => {
    const other = await bed.addGuest("egt-g2");
    bed.makeFile("mid", 32);
    const midSha = await sha256File(`${bed.dir}/mid`);
    const many = bed.guest.ns.spawn("python3", [
      "tests/e2e/fixtures/egress_guest.py",
      "many",
      WEB,
      String(ECHO_PORT),
      "300",
      "40", // 40 new connections per second: under the rate limit (50/s, burst 100)
    ]);
    bed.procs.push(many);
    const m = await many.waitFor(/RESULT (\{.*\})/, 120_000);
    const result = JSON.parse(m[1]);
    assert.equal(result.established, 256, JSON.stringify(result));
    assert.equal(result.echoed, 256, JSON.stringify(result));
    assert.deepEqual(result.errors, { ECONNREFUSED: 44 });
    assert.equal(result.firstError, 256, "the first 256 work, the rest are reset");
    const v = bed.view();
    assert.equal(v.egress.denied.limit_tcp_connections, 44);
    assert.equal(
      v.egress.flows.filter((f: { protocol: string }) => f.protocol === "tcp").length,
      256,
    );
    assert.match(bed.metrics(), /netisle_egress_denied_total\{reason="limit_tcp_connections"\} 44/);
    // Another session downloads while this one holds its 256 connections at the limit.
    const out = `${bed.dir}/down-other`;
    const t0 = performance.now();
    other.exec("curl", ["-sS", "--fail", "-o", out, `http://${WEB}:${HTTP_PORT}/mid`], 300_000);
    const ms = performance.now() - t0;
    assert.equal(await sha256File(out), midSha, "the other session's transfer is byte-exact");
    console.log(`another session's download during the 256 connections: ${rate(32 * MiB, ms)}`);
    many.send("go");
    await many.waitFor(/CLOSED/, 30_000);
    const deadline = Date.now() + 30_000;
    while (bed.view().egress.flows.some((f: { protocol: string }) => f.protocol === "tcp")) {
      assert.ok(Date.now() < deadline, "the flows went away after the guest closed them");
      await new Promise((r) => setTimeout(r, 100));
    }
  });
});

describe("e2e: egress through a session (Bun server)", { skip }, () => {
  const bed = new EgressTestbed();
  let sha = "";
  before(async () => {
    await bed.start("egb", { runtime: "bun" });
    sha = await sha256File(bed.makeFile("bun", 64));
  });
  after(async () => await bed.stop());

  it("moves 64 MiB down and up byte-exact (Bun.connect), resolves names, and resets denied destinations", async () => {
    const out = `${bed.dir}/down-bun`;
    const t0 = performance.now();
    bed.guest.exec("curl", ["-sS", "--fail", "-o", out, `http://www.egress.test:${HTTP_PORT}/bun`]);
    console.log(`egress download on Bun: ${rate(64 * MiB, performance.now() - t0)}`);
    assert.equal(await sha256File(out), sha);
    const t1 = performance.now();
    const up = bed.guest.exec("curl", [
      "-sS",
      "--fail",
      "-T",
      out,
      `http://${WEB}:${HTTP_PORT}/upload`,
    ]);
    console.log(`egress upload on Bun: ${rate(64 * MiB, performance.now() - t1)}`);
    assert.equal(up.trim(), `${64 * MiB} ${sha}`);
    for (const [dst, port] of [[SERVER_OUT, 8787], [WEB, 25]] as const) {
      const r = bed.guest.exec("python3", [
        "tests/e2e/fixtures/egress_guest.py",
        "connect",
        dst,
        String(port),
      ]);
      assert.match(r, /^ERROR ECONNREFUSED/, `${dst}:${port}`);
    }
    const v = bed.view();
    assert.equal(v.egress.dialer, "bun");
    assert.equal(v.egress.denied.server_address, 1);
    assert.equal(v.egress.denied.smtp_port, 1);
  });

  it("carries UDP both ways and reports the runtime's port unreachable as ICMP (Bun passes ECONNREFUSED on)", () => {
    const echo = bed.guest.exec("python3", [
      "tests/e2e/fixtures/egress_guest.py",
      "udp",
      WEB,
      String(UDP_PORT),
      "hi from bun",
    ]);
    assert.equal(echo.trim(), "REPLY echo:hi from bun");
    // Nothing listens on port 9 of the internet host: its kernel answers port unreachable.
    const closed = bed.guest.exec("python3", [
      "tests/e2e/fixtures/egress_guest.py",
      "udp",
      WEB,
      "9",
      "anyone?",
    ]);
    assert.equal(closed.trim(), "ERROR ECONNREFUSED");
    assert.equal(bed.view().egress.counters.udp.portUnreachable, 1);
  });
});

describe("e2e: egress through a session (the Cloudflare Worker in local workerd)", { skip }, () => {
  const bed = new EgressTestbed();
  let sha = "";
  before(async () => {
    await bed.start("egw", { runtime: "workerd" });
    sha = await sha256File(bed.makeFile("wd", 64));
    bed.makeFile("one", 1);
  });
  after(async () => await bed.stop());

  it("moves 64 MiB down and up byte-exact through connect() (cloudflare:sockets), names over DNS-on-TCP", async () => {
    const out = `${bed.dir}/down-wd`;
    const t0 = performance.now();
    bed.guest.exec("curl", ["-sS", "--fail", "-o", out, `http://www.egress.test:${HTTP_PORT}/wd`]);
    console.log(`egress download in workerd: ${rate(64 * MiB, performance.now() - t0)}`);
    assert.equal(await sha256File(out), sha);
    const t1 = performance.now();
    const up = bed.guest.exec("curl", [
      "-sS",
      "--fail",
      "-T",
      out,
      `http://${WEB}:${HTTP_PORT}/upload`,
    ]);
    console.log(`egress upload in workerd: ${rate(64 * MiB, performance.now() - t1)}`);
    assert.equal(up.trim(), `${64 * MiB} ${sha}`);
    const v = bed.view();
    assert.equal(v.egress.dialer, "workerd");
    // Workers have no outbound UDP: the udp: upstream is asked over TCP.
    assert.ok(v.egress.counters.dns.upstreamQueries >= 1);
    assert.equal(v.egress.counters.dns.upstreamFailures, 0);
  });

  it("queues dials beyond 6 open connections instead of failing them (Workers' per-context limit)", () => {
    const urls = Array.from({ length: 12 }, (_, i) => `http://${WEB}:${HTTP_PORT}/one?${i}`);
    const out = bed.guest.exec("sh", [
      "-c",
      `for u in ${
        urls.join(" ")
      }; do curl -sS --fail -o /dev/null -w '%{http_code}\\n' "$u" & done; wait`,
    ], 300_000);
    assert.deepEqual(out.trim().split("\n").sort(), Array(12).fill("200"));
  });

  it("resets the server's own address and answers UDP with ICMP prohibited (no outbound UDP)", () => {
    const r = bed.guest.exec("python3", [
      "tests/e2e/fixtures/egress_guest.py",
      "connect",
      SERVER_OUT,
      "8787",
    ]);
    assert.match(r, /^ERROR ECONNREFUSED/);
    const u = bed.guest.exec("python3", [
      "tests/e2e/fixtures/egress_guest.py",
      "udp",
      WEB,
      String(UDP_PORT),
      "x",
    ]);
    assert.equal(u.trim(), "ERROR EHOSTUNREACH");
    const v = bed.view();
    assert.equal(v.egress.denied.server_address, 1);
    assert.equal(v.egress.denied.udp_unsupported, 1);
    const metrics = bed.server.exec("curl", [
      "-s",
      "-H",
      `Authorization: Bearer ${bed.guest.session.token}`,
      `http://127.0.0.1:8787/v1/sessions/${bed.guest.session.id}/metrics`,
    ]);
    assert.match(metrics, /^netisle_egress_denied_total\{reason="udp_unsupported"\} 1$/m);
  });
});

describe(
  "e2e: egress with sessions in their own isolates (NETISLE_ISOLATION=worker)",
  { skip },
  () => {
    const bed = new EgressTestbed();
    let sha = "";
    before(async () => {
      await bed.start("egi", { env: { NETISLE_ISOLATION: "worker" } });
      sha = await sha256File(bed.makeFile("iso", 16));
    });
    after(async () => await bed.stop());

    it("resolves, downloads byte-exact, carries UDP and resets denials from the session's worker", async () => {
      const out = `${bed.dir}/down-iso`;
      bed.guest.exec("curl", [
        "-sS",
        "--fail",
        "-o",
        out,
        `http://www.egress.test:${HTTP_PORT}/iso`,
      ]);
      assert.equal(await sha256File(out), sha);
      const u = bed.guest.exec("python3", [
        "tests/e2e/fixtures/egress_guest.py",
        "udp",
        WEB,
        String(UDP_PORT),
        "isolated",
      ]);
      assert.equal(u.trim(), "REPLY echo:isolated");
      const r = bed.guest.exec("python3", [
        "tests/e2e/fixtures/egress_guest.py",
        "connect",
        "169.254.169.254",
        "80",
      ]);
      assert.match(r, /^ERROR ECONNREFUSED/);
      const v = bed.view();
      assert.equal(v.egress.denied.reserved_address, 1);
      // The front door sums the workers' egress families.
      assert.match(
        bed.metrics(),
        /^netisle_egress_bytes_total\{protocol="tcp",direction="in"\} \d{8,}$/m,
      );
    });
  },
);
