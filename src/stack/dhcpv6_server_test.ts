import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  DHCPV6_ALL_RELAY_AGENTS_AND_SERVERS,
  Dhcpv6Packet,
  Dhcpv6Repr,
  IpProtocol,
} from "../wire/mod.ts";
import { INFO_REPLY_HEX, INFO_REQUEST_HEX } from "../wire/_dhcpv6_test_util.ts";
import { decodeIcmp, fromHex, hex, udpFrame } from "./_stack_test_util.ts";
import {
  decodeNdp,
  decodeV6,
  drainNoRa,
  GOLDEN_RS,
  ipv6Harness,
  learnPeer,
  PEER_LL,
  STACK6,
  STACK_LL,
  udp6Bytes,
  V6_STACK_MAC,
  v6Frame,
  type V6FrameOptions,
} from "./_ipv6_test_util.ts";
import { Dhcpv6Server } from "./dhcpv6_server.ts";

type Harness = ReturnType<typeof ipv6Harness>;

/** A stack with the DHCPv6 server on, knowing the peer's link-local address. */
function harness(options: Parameters<typeof ipv6Harness>[0] = { dhcpv6: { enabled: true } }) {
  const h = ipv6Harness(options);
  learnPeer(h, PEER_LL);
  return h;
}

/** A DHCPv6 client message from fe80::5054:ff:fe12:3456 port 546 to ff02::1:2 port 547 (unless `o` says otherwise). */
function clientFrame(msgHex: string, o: V6FrameOptions = {}): Uint8Array {
  const src = o.src ?? PEER_LL;
  const dst = o.dst ?? DHCPV6_ALL_RELAY_AGENTS_AND_SERVERS;
  const u = udp6Bytes(src, dst, 546, 547, fromHex(msgHex));
  return v6Frame(IpProtocol.UDP, u, { ...o, src, dst });
}

/**
 * The stack's Reply to INFO_REQUEST_HEX as a frame: fe80::ff:fe00:1 port 547
 * to fe80::5054:ff:fe12:3456 port 546, hop limit 64, UDP checksum 0xf4c7.
 * Checked with `text2pcap` + `tshark -V`: "DHCPv6 Reply", checksum
 * [correct], Client Identifier DUID-LLT, Server Identifier DUID-LL
 * 02:00:00:00:00:01, DNS recursive name server fd00::2, Information
 * Refresh Time 86400.
 */
const GOLDEN_REPLY_FRAME = "525400123456" + "020000000001" + "86dd" +
  "60000000" + "0048" + "11" + "40" +
  "fe80000000000000000000fffe000001" + "fe800000000000005054" + "00fffe123456" +
  "0223" + "0222" + "0048" + "f4c7" + INFO_REPLY_HEX;

describe("Stateless DHCPv6 server (RFC 8415 §6.1, §18.3.6)", () => {
  it("answers an Information-request to ff02::1:2 with the exact Reply: Client Identifier copied, our DUID-LL, DNS fd00::2 (RFC 3646)", () => {
    const h = harness();
    h.input(clientFrame(INFO_REQUEST_HEX));
    const frames = drainNoRa(h);
    assert.deepEqual(frames.map(hex), [GOLDEN_REPLY_FRAME]);
    // The same through the codec.
    const d = decodeV6(frames[0]);
    assert.deepEqual([d.ip.src, d.ip.dst, d.ip.hopLimit], [STACK_LL, PEER_LL, 64]);
    const p = Dhcpv6Packet.parse(d.payload.subarray(8));
    assert.ok(p.ok);
    const r = Dhcpv6Repr.parse(p.value);
    assert.ok(r.ok);
    assert.deepEqual(r.value.dnsServers, [STACK6]);
    assert.deepEqual(r.value.serverId, fromHex("00030001020000000001"));
    assert.equal(h.stack.dhcpv6!.stats.replies, 1);
    assert.ok(h.balanced);
    assert.equal(h.stack.counters.totalDrops(), 0);
  });

  it("answers a request without Client Identifier with none, and uses the configured refresh time", () => {
    const h = harness({ dhcpv6: { enabled: true, informationRefreshSeconds: 3600 } });
    h.input(clientFrame("0b000007" + "000800020000"));
    const [f] = drainNoRa(h);
    assert.equal(
      hex(decodeV6(f).payload.subarray(8)),
      "07000007" + "0002000a00030001020000000001" + "00170010fd000000000000000000000000000002" +
        "0020000400000e10",
    );
  });

  it("ignores and counts Solicit and the other stateful messages: it gives no addresses (SLAAC does)", () => {
    const h = harness();
    for (const type of ["01", "03", "04", "05", "06", "08", "09"]) {
      h.input(clientFrame(type + "000001" + "0001000e000100012d3e4f50525400123456"));
    }
    h.input(clientFrame("07000001")); // a Reply from someone
    assert.deepEqual(drainNoRa(h), []);
    assert.equal(h.drops.dhcpv6_stateful_ignored, 7);
    assert.equal(h.drops.dhcpv6_not_client_message, 1);
    assert.ok(h.balanced);
  });

  it("discards an Information-request naming another server, holding an IA (§16.12), or sent to a unicast address (§16)", () => {
    const h = harness();
    h.input(clientFrame("0b000001" + "0002000a00030001aabbccddeeff"));
    h.input(clientFrame("0b000001" + "0003000c000000010000000000000000"));
    h.input(clientFrame(INFO_REQUEST_HEX, { dst: STACK_LL }));
    // Naming us is fine.
    h.input(clientFrame("0b000002" + "0002000a00030001020000000001"));
    assert.equal(drainNoRa(h).length, 1);
    assert.deepEqual(
      [
        h.drops.dhcpv6_other_server,
        h.drops.dhcpv6_ia_in_information_request,
        h.drops.dhcpv6_unicast,
      ],
      [1, 1, 1],
    );
  });

  it("drops hostile messages by reason without answering or throwing", () => {
    const h = harness();
    h.input(clientFrame("0b00"));
    h.input(clientFrame("0b000001" + "0001ffff"));
    h.input(clientFrame("0d000000" + "00".repeat(30)));
    h.input(clientFrame("0b000001" + "00ff0000".repeat(100)));
    assert.deepEqual(drainNoRa(h), []);
    assert.deepEqual(
      [
        h.drops.dhcpv6_truncated,
        h.drops.dhcpv6_bad_option,
        h.drops.dhcpv6_relay_unsupported,
        h.drops.dhcpv6_too_many_options,
      ],
      [1, 1, 1, 1],
    );
    assert.ok(h.balanced);
  });

  it("closes port 547 over IPv4: a datagram to 10.0.2.2:547 gets a port unreachable", () => {
    const h = harness();
    h.input(
      udpFrame({
        dstPort: 547,
        srcPort: 546,
        payload: fromHex(INFO_REQUEST_HEX),
        dstMac: V6_STACK_MAC,
      }),
    );
    const [f] = h.drain();
    assert.equal(decodeIcmp(f).icmp.type, "dest_unreachable");
    assert.equal(h.drops.udp_port_closed, 1);
  });

  it("sets the O flag in router advertisements while it runs (RFC 4861 §4.2), and not otherwise", () => {
    const ra = (h: Harness) => {
      h.input(GOLDEN_RS, 1000);
      h.stack.poll(1000);
      const [f] = h.drain();
      const n = decodeNdp(f).ndp;
      assert.equal(n.type, "router_advert");
      return n.type === "router_advert" ? [n.managed, n.other] : [];
    };
    assert.deepEqual(ra(ipv6Harness({ dhcpv6: { enabled: true } })), [false, true]);
    assert.deepEqual(ra(ipv6Harness()), [false, false]);
  });

  it("runs by default when the DHCPv4 server does, and never without IPv6", () => {
    assert.ok(ipv6Harness({ dhcp: { enabled: true } }).stack.dhcpv6);
    assert.equal(ipv6Harness().stack.dhcpv6, undefined);
    assert.equal(
      ipv6Harness({ dhcp: { enabled: true }, dhcpv6: { enabled: false } }).stack.dhcpv6,
      undefined,
    );
    assert.equal(
      ipv6Harness({ ipv6: false, dhcpv6: { enabled: true } }).stack.dhcpv6,
      undefined,
    );
    assert.ok(ipv6Harness({ dhcpv6: { enabled: true } }).stack.udp.servicePorts.includes(547));
  });

  it("refuses an information refresh time under IRT_MINIMUM (RFC 8415 §7.6)", () => {
    const mac = V6_STACK_MAC;
    assert.throws(
      () => new Dhcpv6Server({ informationRefreshSeconds: 599 }, { mac, dnsServer: STACK6 }),
      RangeError,
    );
    assert.equal(new Dhcpv6Server({}, { mac, dnsServer: STACK6 }).refreshSeconds, 86400);
  });
});
