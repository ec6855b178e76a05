import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { IPV6_ALL_ROUTERS, IPV6_UNSPECIFIED, type NdpRepr } from "../wire/mod.ts";
import { hex } from "./_stack_test_util.ts";
import {
  decodeNdp,
  GOLDEN_NS,
  GOLDEN_RA,
  GOLDEN_RS,
  ipv6Harness,
  ndpFrame,
  PEER_LL,
  v6,
  V6_PEER_MAC,
} from "./_ipv6_test_util.ts";
import { RouterAdvertiser } from "./router_advertiser.ts";

const RS: NdpRepr = { type: "router_solicit", options: { sourceLinkAddr: V6_PEER_MAC } };
const RS_FROM = { src: PEER_LL, dst: IPV6_ALL_ROUTERS };

/** Polls every 10 ms from `from` to `to`, returning the instants at which an RA went out. */
function raTimes(h: ReturnType<typeof ipv6Harness>, from: number, to: number): number[] {
  const times: number[] = [];
  for (let t = from; t <= to; t += 10) {
    h.stack.poll(t);
    for (const f of h.drain()) if (decodeNdp(f).ndp.type === "router_advert") times.push(t);
  }
  return times;
}

describe("Router advertisements (RFC 4861 §6.2, RFC 4862, RFC 8106)", () => {
  it("starts advertising with the first IPv6 packet heard: Linux's solicitation gets the exact advertisement at once", () => {
    const h = ipv6Harness();
    assert.equal(h.stack.routerAdvertiser!.nextDeadline(), undefined);
    h.stack.announce(); // a tunnel attached: IPv4's gratuitous ARP, no advertisement yet
    h.drain();
    assert.equal(h.stack.routerAdvertiser!.nextDeadline(), undefined);
    h.input(GOLDEN_RS, 1000);
    assert.equal(h.drain().length, 0);
    assert.equal(h.stack.counters.rxHandled, 1);
    assert.equal(h.stack.nextDeadline(), 1000);
    h.stack.poll(1000);
    assert.deepEqual(h.drain().map(hex), [hex(GOLDEN_RA)]);
    // The solicitation's link-layer address was learned (§6.2.6), STALE.
    assert.equal(h.stack.neighbors!.state(PEER_LL), "stale");
    // Answered by that one: nothing more within MAX_RA_DELAY_TIME.
    assert.deepEqual(raTimes(h, 1010, 2000), []);
  });

  it("answers a later solicitation within MAX_RA_DELAY_TIME, at a random instant (§6.2.6)", () => {
    const h = ipv6Harness();
    h.input(GOLDEN_RS, 0);
    h.stack.poll(0);
    h.drain();
    h.input(GOLDEN_RS, 10_000);
    const due = h.stack.routerAdvertiser!.nextDeadline()!;
    assert.ok(due > 10_000 && due <= 10_500, `due at ${due}`);
    h.stack.poll(due - 1);
    assert.equal(h.drain().length, 0);
    h.stack.poll(due);
    assert.deepEqual(h.drain().map(hex), [hex(GOLDEN_RA)]);
  });

  it("says: prefix fd00::/64 on-link and autonomous (SLAAC), MTU, RDNSS fd00::2, router lifetime 0", () => {
    const h = ipv6Harness();
    h.input(GOLDEN_RS, 0);
    h.stack.poll(0);
    const [ra] = h.drain();
    const d = decodeNdp(ra);
    assert.equal(d.ip.hopLimit, 255);
    assert.equal(d.ip.src, h.stack.ipv6!.linkLocal);
    assert.equal(d.ndp.type, "router_advert");
    if (d.ndp.type !== "router_advert") return;
    assert.equal(d.ndp.routerLifetime, 0);
    assert.equal(d.ndp.options.mtu, 1500);
    assert.deepEqual(d.ndp.options.prefixes!.map((p) => [p.prefixLength, p.onLink, p.autonomous]), [
      [64, true, true],
    ]);
    assert.deepEqual(d.ndp.options.rdnss, [{ lifetime: 1200, servers: [h.stack.ipv6!.address] }]);
  });

  it("rate-limits answers: a burst of solicitations gets one advertisement, none within 3 s of the last", () => {
    const h = ipv6Harness();
    for (let i = 0; i < 20; i++) h.input(ndpFrame(RS, RS_FROM), 1000 + i);
    const first = raTimes(h, 1000, 1600);
    assert.equal(first.length, 1);
    h.input(ndpFrame(RS, RS_FROM), 2000);
    const second = raTimes(h, 1610, 8000);
    assert.equal(second.length, 1);
    assert.ok(second[0] >= first[0] + 3000, `${second[0]} vs ${first[0]}`);
    assert.deepEqual(
      [h.stack.routerAdvertiser!.stats.solicited, h.stack.routerAdvertiser!.stats.sent],
      [21, 2],
    );
  });

  it("sends unsolicited advertisements once the link speaks IPv6: at once, the first three ≤ 16 s apart, then 198–600 s", () => {
    const h = ipv6Harness();
    h.input(GOLDEN_NS, 5000);
    h.stack.poll(5000);
    const frames = h.drain();
    assert.equal(frames.length, 2); // the advertisement for fd00::2, then the router's
    assert.equal(hex(frames[1]), hex(GOLDEN_RA));
    const times = [5000];
    let t = 5000;
    for (let i = 0; i < 6; i++) {
      t = h.stack.routerAdvertiser!.nextDeadline()!;
      h.stack.poll(t);
      assert.equal(h.drain().filter((f) => decodeNdp(f).ndp.type === "router_advert").length, 1);
      times.push(t);
    }
    const gaps = times.slice(1).map((x, i) => x - times[i]);
    for (const g of gaps.slice(0, 3)) assert.ok(g <= 16_000, `initial gap ${g}`);
    for (const g of gaps.slice(3)) assert.ok(g >= 198_000 && g <= 600_000, `gap ${g}`);
  });

  it("a solicitation after the initial ones is answered without waiting for the periodic one", () => {
    const h = ipv6Harness();
    h.input(GOLDEN_NS, 0);
    h.stack.poll(0);
    h.drain();
    for (let i = 0; i < 3; i++) h.stack.poll(h.stack.routerAdvertiser!.nextDeadline()!);
    h.drain();
    const periodic = h.stack.routerAdvertiser!.nextDeadline()!;
    const at = periodic - 100_000;
    h.input(ndpFrame(RS, RS_FROM), at);
    const times = raTimes(h, at, at + 600);
    assert.equal(times.length, 1);
    assert.ok(h.stack.routerAdvertiser!.nextDeadline()! >= times[0] + 198_000); // the periodic timer restarted
  });

  it("drops invalid solicitations (§6.1.1): hop limit below 255, :: with a link-layer option", () => {
    const h = ipv6Harness();
    h.input(ndpFrame(RS, { ...RS_FROM, hopLimit: 1 }));
    h.input(ndpFrame(RS, { src: IPV6_UNSPECIFIED, dst: IPV6_ALL_ROUTERS }));
    assert.equal(h.drops.ndp_bad_hop_limit, 1);
    assert.equal(h.drops.ndp_bad_source, 1);
    h.stack.poll(h.now); // the link spoke IPv6: the first advertisement
    h.drain();
    // From :: without the option it is valid and answered.
    const at = h.now + 5000;
    const rs: NdpRepr = { type: "router_solicit", options: {} };
    h.input(ndpFrame(rs, { src: IPV6_UNSPECIFIED, dst: IPV6_ALL_ROUTERS }), at);
    assert.equal(raTimes(h, at, at + 500).length, 1);
    assert.equal(h.stack.neighbors!.size, 0);
    assert.ok(h.balanced);
  });

  it("ignores other routers' advertisements (ndp_router_advert_ignored)", () => {
    const h = ipv6Harness();
    const ra: NdpRepr = {
      type: "router_advert",
      curHopLimit: 64,
      managed: false,
      other: false,
      routerLifetime: 1800,
      reachableTime: 0,
      retransTimer: 0,
      options: {},
    };
    h.input(ndpFrame(ra, { src: PEER_LL, dst: IPV6_ALL_ROUTERS }));
    h.input(ndpFrame(ra, { src: PEER_LL, dst: IPV6_ALL_ROUTERS, hopLimit: 64 }));
    h.input(ndpFrame(ra, { src: v6("fd00::9"), dst: IPV6_ALL_ROUTERS })); // §6.1.2: not link-local
    assert.equal(h.drops.ndp_router_advert_ignored, 1);
    assert.equal(h.drops.ndp_bad_hop_limit, 1);
    assert.equal(h.drops.ndp_bad_source, 1);
    assert.equal(h.drain().length, 0);
  });

  it("refuses inconsistent timings with a RangeError quoting them", () => {
    assert.throws(
      () => new RouterAdvertiser({ minIntervalMs: 700_000 }, () => {}),
      /minIntervalMs <= maxIntervalMs.*700000 and 600000/,
    );
    assert.throws(() => new RouterAdvertiser({ validLifetime: -1 }, () => {}), RangeError);
  });
});
