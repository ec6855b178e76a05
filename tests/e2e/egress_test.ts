/**
 * End to end, egress (issue 13): a Linux guest behind a session reaches an
 * "internet" namespace through netisle's egress gateway
 * (tests/e2e/egress_testbed.ts has the layout): DNS through 10.0.2.2 from a
 * dnsmasq upstream plus the session's own names, UDP both ways, and denied
 * destinations answered at once and counted.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { commandExists, e2eSkipReason } from "./harness.ts";
import { EgressTestbed, PRIVATE, SERVER_OUT, UDP_PORT, WEB } from "./egress_testbed.ts";

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
    assert.match(
      g.exec("getent", ["hosts", "netisle.internal"]),
      /^10\.0\.2\.2\s+netisle\.internal/,
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
});
