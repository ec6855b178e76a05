import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DhcpMessageType, DhcpOp, DhcpRepr, IpProtocol, parseIpv4Address } from "../wire/mod.ts";
import {
  BROADCAST_MAC,
  decodeIp,
  echoRequest,
  ipFrame,
  PEER_MAC,
  type PeerFrameOptions,
  STACK_MAC,
  StackHarness,
  synFrame,
  udpFrame,
} from "./_stack_test_util.ts";

const ip = parseIpv4Address;

/** Sources that name no host here (RFC 1122 §3.2.1.3, RFC 1812 §5.3.7), and why. */
const MARTIANS: Array<[string, string]> = [
  ["0.0.0.0", "unspecified"],
  ["0.1.2.3", "this network, 0/8"],
  ["127.0.0.1", "loopback"],
  ["224.0.0.1", "multicast"],
  ["239.255.255.250", "multicast"],
  ["240.0.0.1", "class E"],
  ["255.255.255.255", "limited broadcast"],
  ["10.0.2.0", "the subnet's network address"],
  ["10.0.2.255", "the subnet's broadcast address"],
  ["10.0.2.2", "the stack's own address"],
];
/** Unicast sources outside 10.0.2.0/24: no route leads back to them. */
const OFF_LINK = ["10.0.3.7", "8.8.8.8"];
/** Neighbours. */
const ON_LINK = ["10.0.2.15", "10.0.2.254"];

/**
 * One transport: the frame a source sends to the stack, and what shows that
 * the stack took it (a reply or an ARP request for the sender, a queued
 * datagram, a stored fragment).
 */
interface Probe {
  name: string;
  setup?(h: StackHarness): void;
  frame(o: PeerFrameOptions): Uint8Array;
  taken(h: StackHarness): boolean;
}

const PROBES: Probe[] = [
  {
    name: "ICMP echo request",
    frame: (o) => ipFrame(IpProtocol.ICMP, echoRequest(1, 1, new Uint8Array(8)), o),
    taken: (h) => h.link.length > 0,
  },
  {
    name: "TCP SYN to a listener",
    setup: (h) => h.stack.tcp.listen(80, 8),
    frame: (o) => synFrame(80, o),
    taken: (h) => h.link.length > 0,
  },
  {
    name: "UDP datagram to a bound port",
    setup: (h) => h.stack.udp.bind(5000),
    frame: (o) => udpFrame({ ...o, dstPort: 5000, payload: new Uint8Array(4) }),
    taken: (h) => h.stack.udp.endpoints.get(5000)!.queuedDatagrams === 1,
  },
  {
    name: "IPv4 fragment",
    frame: (o) => ipFrame(IpProtocol.UDP, new Uint8Array(16), { ...o, moreFragments: true }),
    taken: (h) => h.stack.reassembler.datagrams === 1,
  },
];

describe("IPv4 input refuses martian and off-link sources (RFC 1122 §3.2.1.3, RFC 1812 §5.3.7, RFC 3704 §2.2)", () => {
  const table: Array<[string, string, string | undefined]> = [
    ...MARTIANS.map(([src, why]): [string, string, string] => [src, why, "ipv4_martian_source"]),
    ...OFF_LINK.map((
      src,
    ): [string, string, string] => [src, "off the link", "ipv4_off_link_source"]),
    ...ON_LINK.map((src): [string, string, undefined] => [src, "a neighbour", undefined]),
  ];
  for (const probe of PROBES) {
    for (const [src, why, reason] of table) {
      const verdict = reason ? `dropped as ${reason}, nothing sent` : "taken";
      it(`${probe.name} from ${src} (${why}): ${verdict}`, () => {
        const h = new StackHarness();
        probe.setup?.(h);
        h.input(probe.frame({ src: ip(src) }));
        if (reason) {
          assert.equal(h.drops[reason], 1);
          assert.equal(h.stack.counters.totalDrops(), 1);
          assert.equal(probe.taken(h), false);
          assert.equal(h.link.length, 0);
          assert.equal(h.stack.tcp.connectionCount, 0);
        } else {
          assert.equal(h.stack.counters.totalDrops(), 0);
          assert.equal(h.stack.counters.rxHandled, 1);
          assert.equal(probe.taken(h), true);
        }
        assert.ok(h.balanced);
      });
    }
  }

  it("refuses martians in a link-layer broadcast and to a broadcast address too", () => {
    const h = new StackHarness();
    h.stack.udp.bind(5000);
    for (const src of ["127.0.0.1", "10.0.2.255", "0.0.0.0"]) {
      for (const dst of [ip("255.255.255.255"), ip("10.0.2.255")]) {
        h.input(udpFrame({ src: ip(src), dst, dstMac: BROADCAST_MAC, dstPort: 5000 }));
      }
    }
    assert.equal(h.drops.ipv4_martian_source, 6);
    assert.equal(h.stack.udp.endpoints.get(5000)!.queuedDatagrams, 0);
  });
});

describe("IPv4 input hears DHCP clients that have no address yet (RFC 2131 §4.1)", () => {
  /** A DHCPDISCOVER's UDP payload. */
  function discover(): Uint8Array {
    const m: DhcpRepr = {
      op: DhcpOp.REQUEST,
      hops: 0,
      xid: 1,
      secs: 0,
      broadcast: true,
      ciaddr: 0,
      yiaddr: 0,
      siaddr: 0,
      giaddr: 0,
      chaddr: PEER_MAC,
      messageType: DhcpMessageType.DISCOVER,
    };
    const payload = new Uint8Array(DhcpRepr.bufferLen(m));
    DhcpRepr.emit(m, payload);
    return payload;
  }

  const cases: Array<{ what: string; src: string; srcPort: number; dst: string; reason?: string }> =
    [
      {
        what: "0.0.0.0:68 to the limited broadcast",
        src: "0.0.0.0",
        srcPort: 68,
        dst: "255.255.255.255",
      },
      {
        what: "0.0.0.0:68 to the subnet broadcast",
        src: "0.0.0.0",
        srcPort: 68,
        dst: "10.0.2.255",
      },
      { what: "0.0.0.0:68 to the stack", src: "0.0.0.0", srcPort: 68, dst: "10.0.2.2" },
      {
        what: "0.0.0.0 from another port",
        src: "0.0.0.0",
        srcPort: 1068,
        dst: "255.255.255.255",
        reason: "ipv4_martian_source",
      },
      {
        what: "loopback from port 68",
        src: "127.0.0.1",
        srcPort: 68,
        dst: "255.255.255.255",
        reason: "ipv4_martian_source",
      },
      {
        what: "0.1.2.3 (0/8 but not 0.0.0.0) from port 68",
        src: "0.1.2.3",
        srcPort: 68,
        dst: "255.255.255.255",
        reason: "ipv4_martian_source",
      },
    ];
  for (const c of cases) {
    it(`a DISCOVER from ${c.what}: ${c.reason ? `dropped as ${c.reason}` : "answered with an OFFER"}`, () => {
      const h = new StackHarness({ dhcp: { enabled: true }, knowPeer: false });
      const dst = ip(c.dst);
      h.input(udpFrame({
        src: ip(c.src),
        dst,
        dstMac: dst === ip("10.0.2.2") ? STACK_MAC : BROADCAST_MAC,
        srcPort: c.srcPort,
        dstPort: 67,
        payload: discover(),
      }));
      const out = h.drain();
      if (c.reason) {
        assert.equal(h.drops[c.reason], 1);
        assert.equal(out.length, 0);
        assert.equal(h.stack.dhcp!.stats.rx, 0);
      } else {
        assert.equal(h.stack.counters.totalDrops(), 0);
        assert.equal(h.stack.dhcp!.stats.offers, 1);
        assert.equal(out.length, 1);
        assert.equal(decodeIp(out[0]).ip.dst, ip("255.255.255.255"), "broadcast flag set");
      }
    });
  }

  it("a fragment from 0.0.0.0 is refused even with DHCP's ports (reassembly never holds it)", () => {
    const h = new StackHarness({ dhcp: { enabled: true } });
    const udp = new Uint8Array(16);
    udp.set([0, 68, 0, 67]);
    h.input(
      ipFrame(IpProtocol.UDP, udp, { src: 0, dst: ip("255.255.255.255"), moreFragments: true }),
    );
    assert.equal(h.drops.ipv4_martian_source, 1);
    assert.equal(h.stack.reassembler.datagrams, 0);
  });

  it("a TCP segment from 0.0.0.0 with ports 68 → 67 is refused", () => {
    const h = new StackHarness();
    h.stack.tcp.listen(67, 8);
    const f = synFrame(67, { src: 0 });
    f[14 + 20] = 0; // source port 68 (the checksum no longer matters: it is dropped first)
    f[14 + 21] = 68;
    h.input(f);
    assert.equal(h.drops.ipv4_martian_source, 1);
    assert.equal(h.link.length, 0);
  });
});
