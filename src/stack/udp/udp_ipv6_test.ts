import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { NetError } from "../../errors/net_error.ts";
import {
  IpProtocol,
  IPV6_ALL_NODES,
  type Ipv6Address,
  ipv6ToBytes,
  UdpPacket,
  UdpRepr,
} from "../../wire/mod.ts";
import { formatIpAddress } from "../../wire/ip_address.ts";
import {
  decodeUdp,
  fromHex,
  hex,
  internetChecksum,
  PEER_IP,
  STACK_IP,
  udpFrame,
} from "../_stack_test_util.ts";
import {
  decodeIcmpv6,
  decodeV6,
  drainNoRa,
  ipv6Harness,
  learnPeer,
  PEER6,
  PEER_LL,
  pseudoHeader6,
  STACK6,
  STACK_LL,
  udp6Bytes,
  v6,
  V6_PEER_MAC,
  V6_STACK_MAC,
  v6Frame,
  type V6FrameOptions,
} from "../_ipv6_test_util.ts";

type Harness = ReturnType<typeof ipv6Harness>;

/** A UDP-over-IPv6 frame from the peer (PEER6:40000 to fd00::2 unless `o` says otherwise). */
function udp6(
  dstPort: number,
  payload: Uint8Array,
  o: V6FrameOptions & { srcPort?: number; checksum?: number } = {},
): Uint8Array {
  const src = o.src ?? PEER6;
  const dst = o.dst ?? STACK6;
  return v6Frame(
    IpProtocol.UDP,
    udp6Bytes(src, dst, o.srcPort ?? 40000, dstPort, payload, o.checksum),
    o,
  );
}

/** The exact Ethernet/IPv6/UDP frame the stack should send, built by hand. */
function expectedFrame(
  src: Ipv6Address,
  dst: Ipv6Address,
  srcPort: number,
  dstPort: number,
  payload: Uint8Array,
): string {
  const u = udp6Bytes(src, dst, srcPort, dstPort, payload);
  return hex(V6_PEER_MAC) + hex(V6_STACK_MAC) + "86dd" + "60000000" +
    u.length.toString(16).padStart(4, "0") + "11" + "40" + hex(ipv6ToBytes(src)) +
    hex(ipv6ToBytes(dst)) + hex(u);
}

const text = (s: string) => new TextEncoder().encode(s);

describe("UDP over IPv6 (RFC 768, RFC 8200 §8.1)", () => {
  it("echoes through an endpoint both ways: the datagram is queued with its IPv6 source, the answer is the exact frame", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const ep = h.stack.udp.bind(7);
    h.input(udp6(7, text("ping6")));
    assert.deepEqual(h.drain(), []);
    const d = ep.receive()!;
    assert.equal(formatIpAddress(d.src), "fd00::5054:ff:fe12:3456");
    assert.deepEqual([d.srcPort, new TextDecoder().decode(d.payload)], [40000, "ping6"]);
    assert.equal(ep.send(d.payload, h.now, { address: d.src, port: d.srcPort }), true);
    assert.deepEqual(
      h.drain().map(hex),
      [expectedFrame(STACK6, PEER6, 7, 40000, text("ping6"))],
    );
    assert.deepEqual([ep.stats.rxDatagrams, ep.stats.txDatagrams], [1, 1]);
    assert.equal(h.stack.udp.stats.txDatagrams, 1);
    assert.ok(h.balanced);
  });

  it("answers a datagram to its link-local address from that address (RFC 6724 §5 rule 2)", () => {
    const h = ipv6Harness();
    learnPeer(h, PEER_LL);
    const ep = h.stack.udp.bind(7);
    h.input(udp6(7, text("ll"), { src: PEER_LL, dst: STACK_LL }));
    const d = ep.receive()!;
    assert.equal(d.src, PEER_LL);
    ep.send(d.payload, h.now, { address: d.src, port: d.srcPort });
    assert.deepEqual(h.drain().map(hex), [expectedFrame(STACK_LL, PEER_LL, 7, 40000, text("ll"))]);
  });

  it("sends a computed checksum of 0 as 0xffff (RFC 768, RFC 8200 §8.1)", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const ep = h.stack.udp.bind(7);
    // Find the two payload bytes that make the checksum compute to 0.
    const payload = new Uint8Array(2);
    const buf = new Uint8Array(10);
    let found = false;
    for (let x = 0; x < 0x10000 && !found; x++) {
      payload[0] = x >>> 8;
      payload[1] = x & 0xff;
      UdpRepr.emit({ srcPort: 7, dstPort: 40000, payload }, buf, STACK6, PEER6);
      found = buf[6] === 0xff && buf[7] === 0xff;
    }
    assert.ok(found);
    ep.send(payload, h.now, { address: PEER6, port: 40000 });
    const [frame] = h.drain();
    const udp = decodeV6(frame).payload;
    assert.equal(hex(udp.subarray(6, 8)), "ffff");
    // Still valid: 0xffff is the other zero of one's complement.
    assert.equal(internetChecksum(pseudoHeader6(STACK6, PEER6, udp.length), udp), 0);
    assert.ok(UdpPacket.parse(udp).ok);
  });

  it("drops a zero checksum as udp6_zero_checksum, and a bad one as udp_bad_checksum, answering neither", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const ep = h.stack.udp.bind(7);
    h.input(udp6(7, text("no sum"), { checksum: 0 }));
    h.input(udp6(7, text("bad sum"), { checksum: 0x1234 }));
    h.input(udp6(9, text("closed, no sum"), { checksum: 0 }));
    assert.deepEqual([h.drops.udp6_zero_checksum, h.drops.udp_bad_checksum], [2, 1]);
    assert.equal(ep.queuedDatagrams, 0);
    assert.deepEqual(h.drain(), []);
    assert.ok(h.balanced);
  });

  it("still answers a closed port with an ICMPv6 port unreachable quoting the datagram (RFC 4443 §3.1)", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const frame = udp6(9, text("anyone?"));
    h.input(frame);
    const [err] = h.drain();
    const d = decodeIcmpv6(err);
    assert.deepEqual([d.ip.src, d.ip.dst], [STACK6, PEER6]);
    assert.deepEqual(d.icmp, { type: "dest_unreachable", code: 4, data: frame.subarray(14) });
    assert.equal(h.drops.udp_port_closed, 1);
    // Not to a group (RFC 4443 §2.4 (e.3)).
    h.input(udp6(9, text("all?"), { dst: IPV6_ALL_NODES }));
    assert.deepEqual(h.drain(), []);
    assert.equal(h.drops.udp_port_closed, 2);
  });

  it("answers a datagram from a peer other than the connected one with port unreachable (as Linux)", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const ep = h.stack.udp.bind(7000);
    ep.connect(v6("fd00::99"), 53);
    h.input(udp6(7000, text("stranger")));
    assert.equal(h.drops.udp_peer_mismatch, 1);
    assert.equal(decodeIcmpv6(h.drain()[0]).icmp.type, "dest_unreachable");
    assert.equal(ep.queuedDatagrams, 0);
  });

  it("serves both families on one port, like a dual-stack socket with IPV6_V6ONLY off", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const ep = h.stack.udp.bind(5000);
    h.input(udpFrame({ dstPort: 5000, srcPort: 1111, payload: text("v4"), dstMac: V6_STACK_MAC }));
    h.input(udp6(5000, text("v6"), { srcPort: 2222 }));
    const a = ep.receive()!;
    const b = ep.receive()!;
    assert.deepEqual([a.src, a.srcPort, b.src, b.srcPort], [PEER_IP, 1111, PEER6, 2222]);
    ep.send(text("to v4"), h.now, { address: a.src, port: a.srcPort });
    ep.send(text("to v6"), h.now, { address: b.src, port: b.srcPort });
    const [f4, f6] = h.drain();
    const d4 = decodeUdp(f4);
    assert.deepEqual([d4.ip.src, d4.ip.dst, d4.udp.srcPort, d4.udp.dstPort], [
      STACK_IP,
      PEER_IP,
      5000,
      1111,
    ]);
    assert.equal(hex(f6), expectedFrame(STACK6, PEER6, 5000, 2222, text("to v6")));
    // The port is taken for both families.
    assert.throws(() => h.stack.udp.bind(5000), (e) => e instanceof NetError);
  });

  it("keeps a service to its family: DHCPv4's port 67 is closed over IPv6, a service for both hears both", () => {
    const h = ipv6Harness({ dhcp: { enabled: true } });
    learnPeer(h);
    h.input(udp6(67, new Uint8Array(300), { srcPort: 68 }));
    assert.equal(decodeIcmpv6(drainNoRa(h)[0]).icmp.type, "dest_unreachable");
    assert.equal(h.drops.udp_port_closed, 1);
    assert.equal(h.stack.dhcp!.stats.rx, 0);
    const got: string[] = [];
    h.stack.udp.serve(9999, {
      receive(d) {
        got.push(formatIpAddress(d.src) + ">" + formatIpAddress(d.dst));
        return undefined;
      },
    });
    h.input(udp6(9999, text("6")));
    h.input(udpFrame({ dstPort: 9999, payload: text("4"), dstMac: V6_STACK_MAC }));
    assert.deepEqual(got, ["fd00::5054:ff:fe12:3456>fd00::2", "10.0.2.15>10.0.2.2"]);
  });

  it("tells a connected endpoint of an ICMPv6 port unreachable about its datagram: ECONNREFUSED (RFC 1122 §4.1.3.3)", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const ep = h.stack.udp.bind(6000);
    ep.connect(PEER6, 53);
    ep.send(text("q"), h.now);
    const [sent] = h.drain();
    const quoted = sent.subarray(14);
    // The peer's port unreachable, quoting our datagram.
    const icmp = new Uint8Array(8 + quoted.length);
    icmp[0] = 1;
    icmp[1] = 4;
    icmp.set(quoted, 8);
    const sum = internetChecksum(
      pseudoHeader6(PEER6, STACK6, icmp.length, IpProtocol.ICMPV6),
      icmp,
    );
    icmp[2] = sum >>> 8;
    icmp[3] = sum & 0xff;
    h.input(v6Frame(IpProtocol.ICMPV6, icmp));
    assert.ok(h.balanced);
    assert.equal(h.stack.counters.totalDrops(), 0);
    assert.equal(ep.stats.icmpErrors, 1);
    assert.throws(
      () => ep.receive(),
      (e) => e instanceof NetError && e.code === "ECONNREFUSED" && /\[fd00::5054/.test(e.message),
    );
    // An error about another peer's datagram is counted, not delivered.
    const other = quoted.slice();
    other.set(ipv6ToBytes(v6("fd00::77")), 24);
    const icmp2 = new Uint8Array(8 + other.length);
    icmp2[0] = 1;
    icmp2[1] = 4;
    icmp2.set(other, 8);
    const s2 = internetChecksum(
      pseudoHeader6(PEER6, STACK6, icmp2.length, IpProtocol.ICMPV6),
      icmp2,
    );
    icmp2[2] = s2 >>> 8;
    icmp2[3] = s2 & 0xff;
    h.input(v6Frame(IpProtocol.ICMPV6, icmp2));
    assert.equal(h.drops.icmp_udp_unmatched, 1);
  });

  it("has no route to an off-link IPv6 address, nor to any without IPv6: EHOSTUNREACH", () => {
    const h = ipv6Harness();
    const ep = h.stack.udp.bind(0);
    assert.throws(
      () => ep.send(text("x"), h.now, { address: v6("2001:db8::1"), port: 53 }),
      (e) => e instanceof NetError && e.code === "EHOSTUNREACH" && /2001:db8::1/.test(e.message),
    );
    const off = ipv6Harness({ ipv6: false });
    const ep4 = off.stack.udp.bind(0);
    assert.throws(
      () => ep4.send(text("x"), off.now, { address: PEER6, port: 53 }),
      (e) => e instanceof NetError && e.code === "EHOSTUNREACH",
    );
    assert.deepEqual(off.drain(), []);
  });

  it("limits a payload over IPv6 to the MTU less 48 bytes and refuses :: as a destination", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const ep = h.stack.udp.bind(0);
    assert.equal(h.stack.udp.maxPayloadFor(PEER6), 1452);
    assert.equal(h.stack.udp.maxPayloadFor(PEER_IP), 1472);
    assert.throws(
      () => ep.send(new Uint8Array(1453), h.now, { address: PEER6, port: 9 }),
      RangeError,
    );
    assert.equal(ep.send(new Uint8Array(1452), h.now, { address: PEER6, port: 9 }), true);
    assert.equal(h.drain()[0].length, 14 + 1500);
    assert.throws(() => ep.connect(v6("::"), 9), RangeError);
  });

  it("changes nothing over IPv4 when IPv6 is off: the same echo frames", () => {
    const run = (ipv6: false | undefined) => {
      const h = ipv6Harness({ ipv6 });
      const ep = h.stack.udp.bind(7);
      h.input(udpFrame({ dstPort: 7, srcPort: 1234, payload: text("same"), dstMac: V6_STACK_MAC }));
      const d = ep.receive()!;
      ep.send(d.payload, h.now, { address: d.src, port: d.srcPort });
      return drainNoRa(h).map(hex);
    };
    const off = run(false);
    assert.equal(off.length, 1);
    assert.deepEqual(off, run(undefined));
  });
});

describe("the DNS responder over IPv6", () => {
  /** Sends a DNS query over IPv6 and returns the reply frame's IPv6 fields and DNS payload (hex). */
  function ask(h: Harness, query: string, o: V6FrameOptions = {}) {
    h.input(udp6(53, fromHex(query), { srcPort: 5353, ...o }));
    const frames = drainNoRa(h);
    if (frames.length === 0) return undefined;
    const d = decodeV6(frames[0]);
    const udp = UdpPacket.parse(d.payload);
    assert.ok(udp.ok);
    assert.ok(udp.value.verifyChecksum(d.ip.src, d.ip.dst));
    return {
      src: d.ip.src,
      dst: d.ip.dst,
      ports: [udp.value.srcPort, udp.value.dstPort],
      dns: hex(udp.value.payload),
      frame: frames[0],
    };
  }
  const name = "076e657469736c6508696e7465726e616c00"; // netisle.internal
  const q = (id: string, type: string) =>
    id + "0100" + "0001" + "0000" + "0000" + "0000" + name + type + "0001";

  it("answers AAAA for netisle.internal with fd00::2 from the address asked (RFC 3596 §2.2): the exact frame", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const r = ask(h, q("6a6a", "001c"))!;
    const dns = "6a6a" + "8500" + "0001" + "0001" + "0000" + "0000" + name + "001c" + "0001" +
      "c00c" + "001c" + "0001" + "0000003c" + "0010" + "fd000000000000000000000000000002";
    assert.equal(r.dns, dns);
    assert.equal(hex(r.frame), expectedFrame(STACK6, PEER6, 53, 5353, fromHex(dns)));
  });

  it("answers A over IPv6 with the IPv4 address, and ANY with both", () => {
    const h = ipv6Harness();
    learnPeer(h);
    assert.equal(
      ask(h, q("0001", "0001"))!.dns,
      "0001" + "8500" + "0001" + "0001" + "0000" + "0000" + name + "0001" + "0001" +
        "c00c" + "0001" + "0001" + "0000003c" + "0004" + "0a000202",
    );
    assert.equal(
      ask(h, q("0002", "00ff"))!.dns,
      "0002" + "8500" + "0001" + "0002" + "0000" + "0000" + name + "00ff" + "0001" +
        "c00c" + "0001" + "0001" + "0000003c" + "0004" + "0a000202" +
        "c00c" + "001c" + "0001" + "0000003c" + "0010" + "fd000000000000000000000000000002",
    );
  });

  it("answers NODATA for AAAA of a name with only an IPv4 address, and NXDOMAIN under .internal", () => {
    const h = ipv6Harness({ dns: { names: { "v4only.internal": STACK_IP } } });
    learnPeer(h);
    const v4only = "0676346f6e6c7908696e7465726e616c00";
    assert.equal(
      ask(h, "0003" + "0100" + "0001" + "0000" + "0000" + "0000" + v4only + "001c" + "0001")!.dns,
      "0003" + "8500" + "0001" + "0000" + "0000" + "0000" + v4only + "001c" + "0001",
    );
    const other = "056f7468657208696e7465726e616c00";
    assert.equal(
      ask(h, "0004" + "0100" + "0001" + "0000" + "0000" + "0000" + other + "001c" + "0001")!
        .dns.slice(0, 8),
      "00048503",
    );
  });

  it("answers a query to its link-local address from the link-local address", () => {
    const h = ipv6Harness();
    learnPeer(h, PEER_LL);
    const r = ask(h, q("0005", "001c"), { src: PEER_LL, dst: STACK_LL })!;
    assert.deepEqual([r.src, r.dst, r.ports], [STACK_LL, PEER_LL, [53, 5353]]);
  });

  it("does not answer a query to a group: port unreachable is not sent either (RFC 4443 §2.4 (e.3))", () => {
    const h = ipv6Harness();
    learnPeer(h);
    assert.equal(ask(h, q("0006", "001c"), { dst: IPV6_ALL_NODES }), undefined);
    assert.equal(h.drops.udp_port_closed, 1);
  });

  it("steps aside for a socket bound on port 53, which then gets the IPv6 queries", () => {
    const h = ipv6Harness();
    learnPeer(h);
    const ep = h.stack.udp.bind(53);
    assert.equal(ask(h, q("0007", "001c")), undefined);
    assert.equal(ep.receive()!.src, PEER6);
  });

  it("forwards a query for another name from an IPv6 client to the egress, and answers it from fd00::2", () => {
    const h = ipv6Harness({ egress: { enabled: true } });
    learnPeer(h);
    const example = "076578616d706c6503636f6d00";
    const query = "0008" + "0100" + "0001" + "0000" + "0000" + "0000" + example + "001c" + "0001";
    assert.equal(ask(h, query), undefined);
    const [e] = h.stack.egress!.take();
    assert.equal(e.kind, "dns");
    if (e.kind !== "dns") return;
    assert.equal(e.client, PEER6);
    assert.equal(e.clientPort, 5353);
    assert.equal(h.stack.egress!.answerDns(e.client, e.clientPort, fromHex("0008"), h.now), true);
    const [frame] = drainNoRa(h);
    assert.equal(hex(frame), expectedFrame(STACK6, PEER6, 53, 5353, fromHex("0008")));
  });
});
