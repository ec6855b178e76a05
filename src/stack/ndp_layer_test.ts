import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  formatIpv6Address,
  IpProtocol,
  IPV6_ALL_NODES,
  IPV6_UNSPECIFIED,
  ipv6MulticastMac,
  ipv6SolicitedNode,
  type NdpRepr,
  parseMacAddress,
} from "../wire/mod.ts";
import { hex } from "./_stack_test_util.ts";
import {
  decodeIcmpv6,
  decodeNdp,
  drainNoRa,
  GOLDEN_NA,
  GOLDEN_NS,
  icmpv6Frame,
  ipv6Harness,
  ndpFrame,
  PEER6,
  PEER_LL,
  STACK6,
  STACK_LL,
  v6,
  V6_PEER_MAC,
  V6_STACK_MAC,
} from "./_ipv6_test_util.ts";

const NS_OURS: NdpRepr = {
  type: "neighbor_solicit",
  target: STACK6,
  options: { sourceLinkAddr: V6_PEER_MAC },
};
const SN_STACK = ipv6SolicitedNode(STACK6);
const OTHER_MAC = parseMacAddress("52:54:00:aa:bb:cc");

/** A solicited advertisement from the peer for `target` with `mac`. */
function advert(
  target = PEER6,
  flags: Partial<{ solicited: boolean; override: boolean }> = {},
  mac = V6_PEER_MAC,
): NdpRepr {
  return {
    type: "neighbor_advert",
    router: false,
    solicited: flags.solicited ?? true,
    override: flags.override ?? true,
    target,
    options: { targetLinkAddr: mac },
  };
}

/** Sends an echo request from the stack's side: the stack's echo reply to `dst` needs `dst` resolved. */
function pingFrom(src: typeof PEER6, seq = 1) {
  return icmpv6Frame({ type: "echo_request", ident: 7, seqNo: seq, data: new Uint8Array(4) }, {
    src,
  });
}

describe("NDP: answering solicitations (RFC 4861 §7.2.3, §7.2.4)", () => {
  it("answers Linux's solicitation for fd00::2 with the exact solicited advertisement", () => {
    const h = ipv6Harness();
    h.input(GOLDEN_NS);
    assert.deepEqual(drainNoRa(h).map(hex), [hex(GOLDEN_NA)]);
    assert.equal(h.stack.counters.rxHandled, 1);
    // §7.2.3: the solicitation's source link-layer address is learned, STALE; the
    // advertisement sent to it starts the DELAY timer (§7.3.3).
    assert.equal(h.stack.neighbors!.state(PEER_LL), "delay");
    assert.ok(h.balanced);
  });

  it("answers for the link-local address too, from it, to the solicitation's source", () => {
    const h = ipv6Harness();
    h.input(
      ndpFrame({ ...NS_OURS, target: STACK_LL }, {
        src: PEER_LL,
        dst: ipv6SolicitedNode(STACK_LL),
      }),
    );
    const [na] = drainNoRa(h);
    const d = decodeNdp(na);
    assert.deepEqual([formatIpv6Address(d.ip.src), formatIpv6Address(d.ip.dst), d.ip.hopLimit], [
      "fe80::ff:fe00:1",
      "fe80::5054:ff:fe12:3456",
      255,
    ]);
    assert.equal(hex(d.dstMac), hex(V6_PEER_MAC));
    assert.deepEqual(d.ndp, {
      type: "neighbor_advert",
      router: true,
      solicited: true,
      override: true,
      target: STACK_LL,
      options: { targetLinkAddr: V6_STACK_MAC },
    });
  });

  it("never answers a DAD probe for a guest's tentative address (RFC 4862 §5.4.3)", () => {
    const h = ipv6Harness();
    const tentative = v6("fd00::5054:ff:fe12:3456");
    const probe: NdpRepr = { type: "neighbor_solicit", target: tentative, options: {} };
    // To its own solicited-node group: not a group the stack listens to.
    h.input(ndpFrame(probe, { src: IPV6_UNSPECIFIED, dst: ipv6SolicitedNode(tentative) }));
    // Even when it reaches the stack (a tentative address sharing our low 24 bits).
    const twin = v6("fd00::1:0:2");
    h.input(ndpFrame({ ...probe, target: twin }, { src: IPV6_UNSPECIFIED, dst: SN_STACK }));
    assert.equal(drainNoRa(h).length, 0);
    assert.equal(h.drops.ethernet_not_for_us, 1);
    assert.equal(h.drops.ndp_not_for_us, 1);
    assert.equal(h.stack.neighbors!.size, 0);
    assert.ok(h.balanced);
  });

  it("defends its own address against a DAD probe: an advertisement to all nodes, S clear (§7.2.4)", () => {
    const h = ipv6Harness();
    h.input(
      ndpFrame({ type: "neighbor_solicit", target: STACK6, options: {} }, {
        src: IPV6_UNSPECIFIED,
        dst: SN_STACK,
      }),
    );
    const [na] = drainNoRa(h);
    const d = decodeNdp(na);
    assert.equal(hex(d.dstMac), "333300000001");
    assert.equal(d.ip.dst, IPV6_ALL_NODES);
    assert.equal(d.ip.src, STACK6);
    assert.deepEqual(d.ndp, {
      ...advert(STACK6, { solicited: false }, V6_STACK_MAC),
      router: true,
    });
    assert.equal(h.stack.neighbors!.size, 0);
  });

  it("drops what §7.1.1 and §7.1.2 call invalid, each by reason, answering nothing", () => {
    const h = ipv6Harness();
    const cases: Array<[Uint8Array, string]> = [
      [ndpFrame(NS_OURS, { src: PEER_LL, dst: SN_STACK, hopLimit: 254 }), "ndp_bad_hop_limit"],
      [ndpFrame(NS_OURS, { src: IPV6_UNSPECIFIED, dst: SN_STACK }), "ndp_bad_source"],
      [
        ndpFrame({ ...NS_OURS, options: {} }, { src: IPV6_UNSPECIFIED, dst: STACK6 }),
        "ndp_bad_source",
      ],
      [
        ndpFrame({ ...NS_OURS, target: v6("fd00::3") }, { src: PEER_LL, dst: SN_STACK }),
        "ndp_not_for_us",
      ],
      [ndpFrame(advert(PEER6), { src: PEER6, dst: IPV6_ALL_NODES }), "ndp_bad_advert"],
      [ndpFrame(advert(STACK6), { src: PEER6 }), "ndp_address_conflict"],
      [ndpFrame(advert(PEER6), { src: PEER6 }), "ndp_advert_unknown_neighbor"],
      [
        ndpFrame({ type: "redirect", target: PEER_LL, destination: v6("fd00::9"), options: {} }, {
          src: PEER_LL,
        }),
        "ndp_redirect_ignored",
      ],
    ];
    for (const [frame, reason] of cases) {
      const before = h.drops[reason] ?? 0;
      h.input(frame);
      assert.equal(h.drops[reason], before + 1, reason);
    }
    assert.equal(drainNoRa(h).length, 0);
    assert.equal(h.stack.counters.totalDrops(), cases.length);
    assert.ok(h.balanced);
  });

  it("answers a unicast solicitation without a link-layer option after resolving the asker", () => {
    const h = ipv6Harness();
    h.input(ndpFrame({ ...NS_OURS, options: {} }, { src: PEER6 }));
    const [ns] = drainNoRa(h);
    const d = decodeNdp(ns);
    assert.equal(hex(d.dstMac), "3333ff123456");
    assert.deepEqual(d.ndp, {
      type: "neighbor_solicit",
      target: PEER6,
      options: { sourceLinkAddr: V6_STACK_MAC },
    });
    h.input(ndpFrame(advert(), { src: PEER6 }));
    const [na] = drainNoRa(h);
    assert.equal(decodeNdp(na).ndp.type, "neighbor_advert");
    assert.equal(hex(decodeNdp(na).dstMac), hex(V6_PEER_MAC));
  });
});

describe("NDP: resolving neighbours (RFC 4861 §7.2.2, §7.2.5, §7.3)", () => {
  it("solicits an unknown neighbour from the right source, queues, and sends once advertised (REACHABLE)", () => {
    const h = ipv6Harness();
    h.input(pingFrom(PEER6));
    const [ns] = drainNoRa(h);
    const d = decodeNdp(ns);
    assert.deepEqual(
      [hex(d.dstMac), formatIpv6Address(d.ip.src), formatIpv6Address(d.ip.dst), d.ip.hopLimit],
      ["3333ff123456", "fd00::2", "ff02::1:ff12:3456", 255],
    );
    assert.equal(h.stack.neighbors!.state(PEER6), "incomplete");
    h.input(ndpFrame(advert(), { src: PEER6 }));
    const [reply] = drainNoRa(h);
    const r = decodeIcmpv6(reply);
    assert.equal(r.icmp.type, "echo_reply");
    assert.equal(hex(r.dstMac), hex(V6_PEER_MAC));
    assert.equal(h.stack.neighbors!.state(PEER6), "reachable");
  });

  it("retransmits the solicitation each second, three in all, then drops the queue (ndp_unresolved)", () => {
    const h = ipv6Harness();
    h.input(pingFrom(PEER6, 1), 1000);
    h.input(pingFrom(PEER6, 2), 1000);
    assert.equal(drainNoRa(h).length, 1);
    h.stack.poll(1999);
    assert.equal(drainNoRa(h).length, 0);
    assert.equal(h.stack.nextDeadline(), 2000);
    h.stack.poll(2000);
    h.stack.poll(3000);
    assert.equal(
      drainNoRa(h).map((f) => decodeNdp(f).ndp.type).join(),
      "neighbor_solicit,neighbor_solicit",
    );
    h.stack.poll(4000);
    assert.equal(drainNoRa(h).length, 0);
    assert.equal(h.stack.counters.txDrops.ndp_unresolved, 2);
    assert.equal(h.stack.neighbors!.size, 0);
  });

  it("bounds the queue of a neighbour (ndp_queue_full)", () => {
    const h = ipv6Harness({ ndp: { maxQueuedPerEntry: 2 } });
    for (let i = 0; i < 5; i++) h.input(pingFrom(PEER6, i));
    assert.equal(h.stack.counters.txDrops.ndp_queue_full, 3);
    assert.equal(h.stack.neighbors!.queued, 2);
    h.input(ndpFrame(advert(), { src: PEER6 }));
    assert.equal(drainNoRa(h).length, 1 + 2); // the solicitation, then the two replies
    assert.equal(h.stack.neighbors!.queued, 0);
  });

  it("bounds the cache: the entry nearest its deadline makes room", () => {
    const h = ipv6Harness({ ndp: { maxEntries: 4 } });
    for (let i = 1; i <= 10; i++) {
      const src = v6(`fd00::1:${i.toString(16)}`);
      h.input(ndpFrame(NS_OURS, { src, dst: SN_STACK }), 1000 + i);
    }
    assert.equal(h.stack.neighbors!.size, 4);
    assert.equal(h.stack.neighbors!.evictions.entries, 6);
    assert.deepEqual(h.stack.neighbors!.entries().map((e) => formatIpv6Address(e.ip)), [
      "fd00::1:7",
      "fd00::1:8",
      "fd00::1:9",
      "fd00::1:a",
    ]);
    assert.deepEqual(h.stack.checkInvariants(), []);
  });

  it("REACHABLE turns STALE, use starts DELAY, then unicast probes; no answer deletes it", () => {
    const h = ipv6Harness();
    h.input(pingFrom(PEER6), 0);
    h.input(ndpFrame(advert(), { src: PEER6 }), 0);
    drainNoRa(h);
    const cache = h.stack.neighbors!;
    h.stack.poll(30_000);
    assert.equal(cache.state(PEER6), "stale");
    h.input(pingFrom(PEER6, 2), 31_000); // sent at once to the STALE address
    assert.equal(decodeIcmpv6(drainNoRa(h)[0]).icmp.type, "echo_reply");
    assert.equal(cache.state(PEER6), "delay");
    h.stack.poll(36_000);
    assert.equal(cache.state(PEER6), "probe");
    const [probe] = drainNoRa(h);
    const p = decodeNdp(probe);
    assert.deepEqual([hex(p.dstMac), p.ip.dst], [hex(V6_PEER_MAC), PEER6]);
    h.stack.poll(37_000);
    h.stack.poll(38_000);
    assert.equal(drainNoRa(h).length, 2);
    h.stack.poll(39_000);
    assert.equal(cache.state(PEER6), undefined);
  });

  it("a probe answered (solicited) makes the entry REACHABLE again", () => {
    const h = ipv6Harness();
    h.input(pingFrom(PEER6), 0);
    h.input(ndpFrame(advert(), { src: PEER6 }), 0);
    h.stack.poll(30_000);
    h.input(pingFrom(PEER6, 2), 31_000);
    h.stack.poll(36_000);
    h.input(ndpFrame(advert(), { src: PEER6 }), 36_100);
    assert.equal(h.stack.neighbors!.state(PEER6), "reachable");
  });

  it("applies the Override flag (§7.2.5): a different address without O only makes REACHABLE STALE", () => {
    const h = ipv6Harness();
    h.input(pingFrom(PEER6), 0);
    h.input(ndpFrame(advert(), { src: PEER6 }), 0);
    drainNoRa(h);
    h.input(ndpFrame(advert(PEER6, { override: false }, OTHER_MAC), { src: PEER6 }), 10);
    const cache = h.stack.neighbors!;
    assert.equal(cache.state(PEER6), "stale");
    assert.equal(hex(cache.entries()[0].mac!), hex(V6_PEER_MAC));
    h.input(
      ndpFrame(advert(PEER6, { override: true, solicited: false }, OTHER_MAC), { src: PEER6 }),
      20,
    );
    assert.equal(hex(cache.entries()[0].mac!), hex(OTHER_MAC));
    assert.equal(cache.state(PEER6), "stale");
    h.input(pingFrom(PEER6, 3), 30);
    assert.equal(hex(decodeIcmpv6(drainNoRa(h)[0]).dstMac), hex(OTHER_MAC));
  });

  it("a solicitation with a new link-layer address updates the entry (§7.2.3)", () => {
    const h = ipv6Harness();
    h.input(ndpFrame(NS_OURS, { src: PEER6, dst: SN_STACK }));
    h.input(
      ndpFrame({ ...NS_OURS, options: { sourceLinkAddr: OTHER_MAC } }, {
        src: PEER6,
        dst: SN_STACK,
        srcMac: OTHER_MAC,
      }),
    );
    const [first, second] = drainNoRa(h);
    assert.equal(hex(decodeNdp(first).dstMac), hex(V6_PEER_MAC));
    assert.equal(hex(decodeNdp(second).dstMac), hex(OTHER_MAC));
    assert.equal(h.stack.neighbors!.state(PEER6), "delay");
  });

  it("sends nothing off the link or beyond the MTU, counting why", () => {
    const h = ipv6Harness();
    h.input(
      icmpv6Frame({ type: "echo_request", ident: 1, seqNo: 1, data: new Uint8Array(0) }, {
        src: v6("2001:db8::1"),
      }),
    );
    assert.equal(h.drops.ipv6_off_link_source, 1);
    assert.equal(drainNoRa(h).length, 0);
    assert.equal(IpProtocol.ICMPV6, 58);
    assert.equal(hex(ipv6MulticastMac(SN_STACK)), "3333ff000002");
  });
});
