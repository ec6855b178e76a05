import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  EtherType,
  formatIpv6Address,
  type Icmpv6Repr,
  IpProtocol,
  IPV6_ALL_NODES,
  IPV6_ALL_ROUTERS,
  ipv6MulticastMac,
  ipv6SolicitedNode,
  parseMacAddress,
} from "../wire/mod.ts";
import { echoRequest, ethFrame, fromHex, hex, ipFrame, STACK_IP } from "./_stack_test_util.ts";
import {
  decodeIcmpv6,
  decodeNdp,
  GOLDEN_ECHO,
  GOLDEN_NS,
  GOLDEN_RS,
  icmpv6Frame,
  ipv6Harness,
  learnPeer,
  ndpFrame,
  PEER6,
  STACK6,
  v6,
  V6_PEER_MAC,
  V6_STACK_MAC,
  v6Frame,
} from "./_ipv6_test_util.ts";
import { ChannelLink } from "./channel_link.ts";
import { DEFAULT_IPV6, Stack } from "./stack.ts";

const ECHO: Icmpv6Repr = { type: "echo_request", ident: 9, seqNo: 1, data: fromHex("0102") };

describe("Ethernet demux of IPv6 (RFC 2464 §7)", () => {
  it("listens to the MACs of the groups the stack joined, for IPv6 only", () => {
    const h = ipv6Harness();
    assert.deepEqual(
      h.stack.ipv6 &&
        [ipv6SolicitedNode(STACK6), IPV6_ALL_NODES, IPV6_ALL_ROUTERS].map((g) =>
          hex(ipv6MulticastMac(g))
        ),
      ["3333ff000002", "333300000001", "333300000002"],
    );
    h.input(GOLDEN_NS); // to 33:33:ff:00:00:02
    h.input(GOLDEN_RS); // to 33:33:00:00:00:02
    h.input(icmpv6Frame(ECHO, { dst: IPV6_ALL_NODES })); // to 33:33:00:00:00:01
    assert.equal(h.stack.counters.totalDrops(), 0);
    // Another solicited-node group; IPv4 to an IPv6 group MAC.
    h.input(
      ndpFrame({ type: "neighbor_solicit", target: v6("fd00::3"), options: {} }, {
        dst: ipv6SolicitedNode(v6("fd00::3")),
      }),
    );
    h.input(
      ipFrame(IpProtocol.ICMP, echoRequest(1, 1, new Uint8Array(0)), {
        dst: STACK_IP,
        dstMac: fromHex("333300000001"),
      }),
    );
    assert.equal(h.drops.ethernet_not_for_us, 2);
    assert.ok(h.balanced);
  });

  it("with ipv6: false the stack has no IPv6: unsupported EtherType, no group MACs", () => {
    const h = ipv6Harness({ ipv6: false });
    assert.equal(h.stack.ipv6, undefined);
    h.input(GOLDEN_ECHO);
    h.input(GOLDEN_NS);
    assert.deepEqual([h.drops.ethernet_unsupported_ethertype, h.drops.ethernet_not_for_us], [1, 1]);
    h.stack.announce();
    assert.equal(h.drain().length, 1); // the gratuitous ARP only
  });
});

describe("IPv6 input (RFC 8200, RFC 4291)", () => {
  it("drops what is not for the stack, and martian or off-link sources, by reason, silently", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const cases: Array<[string, Uint8Array]> = [
      ["ipv6_not_for_us", icmpv6Frame(ECHO, { dst: v6("fd00::3") })],
      ["ipv6_not_for_us", icmpv6Frame(ECHO, { dst: v6("ff05::1"), dstMac: V6_STACK_MAC })],
      ["ipv6_martian_source", icmpv6Frame(ECHO, { src: v6("ff02::1") })],
      ["ipv6_martian_source", icmpv6Frame(ECHO, { src: v6("::1") })],
      ["ipv6_martian_source", icmpv6Frame(ECHO, { src: v6("::ffff:10.0.2.15") })],
      ["ipv6_martian_source", icmpv6Frame(ECHO, { src: STACK6 })],
      ["ipv6_off_link_source", icmpv6Frame(ECHO, { src: v6("2001:db8::15") })],
      ["ipv6_off_link_source", icmpv6Frame(ECHO, { src: v6("fd00:0:0:1::15") })],
      [
        "ipv6_truncated",
        ethFrame(EtherType.IPV6, new Uint8Array(39), { srcMac: V6_PEER_MAC, dstMac: V6_STACK_MAC }),
      ],
      ["ipv6_no_next_header", v6Frame(59, new Uint8Array(0))],
    ];
    for (const [reason, frame] of cases) {
      const before = h.drops[reason] ?? 0;
      h.input(frame);
      assert.equal(h.drops[reason], before + 1, `${reason}: ${hex(frame.subarray(14, 54))}`);
    }
    assert.equal(h.drain().length, 0);
    assert.ok(h.balanced);
  });

  it("sends fragments to reassembly (ipv6_reassembler_test.ts) and answers an atomic fragment (RFC 6946)", () => {
    const h = ipv6Harness();
    learnPeer(h);
    // 10 bytes with M set: not a multiple of 8 (parameter problem); the last fragment is held.
    h.input(icmpv6Frame(ECHO, { ext: fromHex("3a00 0001 00000001"), firstHeader: 44 }));
    h.input(icmpv6Frame(ECHO, { ext: fromHex("3a00 0008 00000001"), firstHeader: 44 }));
    assert.equal(h.drops.ipv6_fragment_bad_length, 1);
    assert.equal(h.stack.ipv6Reassembler!.datagrams, 1);
    assert.equal(decodeIcmpv6(h.drain()[0]).icmp.type, "param_problem");
    h.input(icmpv6Frame(ECHO, { ext: fromHex("3a00 0000 00000001"), firstHeader: 44 }));
    assert.equal(decodeIcmpv6(h.drain()[0]).icmp.type, "echo_reply");
  });

  it("walks hostile chains within limits, answering a misplaced hop-by-hop with code 1", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const dest = "3c00 0104 00000000";
    h.input(
      icmpv6Frame(ECHO, { ext: fromHex(dest.repeat(8) + "3a00 0104 00000000"), firstHeader: 60 }),
    );
    h.input(
      icmpv6Frame(ECHO, { ext: fromHex(dest.repeat(3) + "3a00 0104 00000000"), firstHeader: 60 }),
    );
    assert.equal(h.drops.ipv6_ext_too_many, 1);
    assert.equal(decodeIcmpv6(h.drain()[0]).icmp.type, "echo_reply"); // 4 headers pass
    const frame = icmpv6Frame(ECHO, {
      ext: fromHex("0000 0104 00000000" + "3a00 0104 00000000"),
      firstHeader: 60,
    });
    h.input(frame);
    const [pp] = h.drain().map(decodeIcmpv6);
    assert.deepEqual(pp.icmp, {
      type: "param_problem",
      code: 1,
      pointer: 40,
      data: frame.subarray(14),
    });
    h.input(icmpv6Frame(ECHO, { ext: fromHex("3a00 0105 00000000"), firstHeader: 60 }));
    assert.equal(h.drops.ipv6_ext_bad_option, 1);
    assert.equal(h.drain().length, 0);
    assert.ok(h.balanced);
  });

  it("honours configured extension-header limits", () => {
    const h = ipv6Harness({ ipv6ExtLimits: { maxHeaders: 1, maxChainBytes: 1024 } });
    learnPeer(h);
    h.input(
      icmpv6Frame(ECHO, {
        ext: fromHex("3c00 0104 00000000" + "3a00 0104 00000000"),
        firstHeader: 60,
      }),
    );
    assert.equal(h.drops.ipv6_ext_too_many, 1);
  });
});

describe("Stack IPv6 configuration", () => {
  const base = { mac: V6_STACK_MAC, ipv4: { address: STACK_IP, prefixLength: 24 }, mtu: 1500 };

  it("defaults to fd00::2 in fd00::/64 with a link-local address from the MAC", () => {
    const s = new Stack(base, { link: new ChannelLink() });
    assert.deepEqual(
      [s.ipv6!.prefix, s.ipv6!.address, s.ipv6!.linkLocal].map(formatIpv6Address),
      ["fd00::", "fd00::2", "fe80::ff:fe00:1"],
    );
    assert.equal(DEFAULT_IPV6.address, STACK6);
  });

  it("takes another prefix and address, and advertises that prefix", () => {
    const link = new ChannelLink();
    const s = new Stack({
      ...base,
      ipv6: { prefix: v6("fd12:3456:789a:1::"), address: v6("fd12:3456:789a:1::1") },
    }, { link });
    s.input(GOLDEN_RS, 0);
    s.poll(0);
    const ra = decodeNdp(link.drain()[0]);
    assert.equal(ra.ndp.type, "router_advert");
    if (ra.ndp.type !== "router_advert") return;
    assert.equal(formatIpv6Address(ra.ndp.options.prefixes![0].prefix), "fd12:3456:789a:1::");
    assert.equal(formatIpv6Address(ra.ndp.options.rdnss![0].servers[0]), "fd12:3456:789a:1::1");
  });

  it("turns IPv6 off by default below an MTU of 1280, and refuses it explicitly there (RFC 8200 §5)", () => {
    assert.equal(new Stack({ ...base, mtu: 576 }, { link: new ChannelLink() }).ipv6, undefined);
    assert.throws(
      () => new Stack({ ...base, mtu: 576, ipv6: DEFAULT_IPV6 }, { link: new ChannelLink() }),
      /at least 1280, got 576/,
    );
  });

  it("refuses a prefix with host bits or an address outside it, quoting them", () => {
    const mk = (prefix: string, address: string) => () =>
      new Stack({ ...base, ipv6: { prefix: v6(prefix), address: v6(address) } }, {
        link: new ChannelLink(),
      });
    assert.throws(mk("fd00::1", "fd00::2"), /ipv6.prefix .* got "fd00::1"/);
    assert.throws(mk("ff02::", "ff02::2"), /ipv6.prefix/);
    assert.throws(mk("fd00::", "fd01::2"), /ipv6.address must be in fd00::\/64 .* got "fd01::2"/);
    assert.throws(mk("fd00::", "fd00::"), /ipv6.address/);
  });

  it("keeps IPv4 working beside it, and its invariants hold", () => {
    const h = ipv6Harness();
    h.input(
      ipFrame(IpProtocol.ICMP, echoRequest(1, 1, new Uint8Array(4)), { dstMac: V6_STACK_MAC }),
    );
    assert.equal(h.drain().length, 1);
    assert.deepEqual(h.stack.checkInvariants(), []);
    assert.equal(hex(parseMacAddress("02:00:00:00:00:01")), hex(V6_STACK_MAC));
    assert.equal(PEER6 !== STACK6, true);
  });
});
