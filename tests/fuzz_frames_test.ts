/**
 * Feeds tens of thousands of random and mutated frames to a session through
 * its real entry point and checks, through the HTTP API, that every frame is
 * accounted for: handled, or counted under a drop reason. Nothing may throw,
 * and every frame the stack emits in answer must itself be well-formed.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { createApp } from "../src/http/mod.ts";
import { ManualClock, SessionRegistry, type TunnelEndpoint } from "../src/session/mod.ts";
import {
  ArpOperation,
  ArpPacket,
  ArpRepr,
  ETHERNET_HEADER_LEN,
  EthernetFrame,
  EthernetRepr,
  EtherType,
  Icmpv4Packet,
  Icmpv4Repr,
  IpProtocol,
  Ipv4Packet,
  Ipv4Repr,
  parseIpv4Address,
  parseMacAddress,
  seededRandom,
  TcpFlags,
  TcpRepr,
  UdpRepr,
} from "../src/wire/mod.ts";

const PEER_MAC = parseMacAddress("52:54:00:12:34:56");
const PEER_IP = parseIpv4Address("10.0.2.15");
const STACK_IP = parseIpv4Address("10.0.2.2");

function templates(stackMac: Uint8Array): Uint8Array[] {
  const eth = (etherType: number, payload: Uint8Array, dst = stackMac) => {
    const f = new Uint8Array(ETHERNET_HEADER_LEN + payload.length);
    EthernetRepr.emit({ dst, src: PEER_MAC, etherType }, f);
    f.set(payload, ETHERNET_HEADER_LEN);
    return f;
  };
  const ip = (protocol: number, payload: Uint8Array) => {
    const p = new Uint8Array(20 + payload.length);
    Ipv4Repr.emit(
      { src: PEER_IP, dst: STACK_IP, protocol, payloadLen: payload.length, ttl: 64 },
      p,
    );
    p.set(payload, 20);
    return eth(EtherType.IPV4, p);
  };
  const arp = new Uint8Array(28);
  ArpRepr.emit({
    operation: ArpOperation.REQUEST,
    senderMac: PEER_MAC,
    senderIp: PEER_IP,
    targetMac: new Uint8Array(6),
    targetIp: STACK_IP,
  }, arp);
  const echoRepr: Icmpv4Repr = {
    type: "echo_request",
    ident: 1,
    seqNo: 1,
    data: new Uint8Array(56),
  };
  const echo = new Uint8Array(Icmpv4Repr.bufferLen(echoRepr));
  Icmpv4Repr.emit(echoRepr, echo);
  const synRepr: TcpRepr = {
    srcPort: 40000,
    dstPort: 80,
    seqNumber: 12345,
    ackNumber: 0,
    flags: TcpFlags.SYN,
    windowLen: 64240,
    mss: 1460,
    sackPermitted: true,
    timestamp: { value: 1, echo: 0 },
    windowScale: 7,
    payload: new Uint8Array(0),
  };
  const syn = new Uint8Array(TcpRepr.bufferLen(synRepr));
  TcpRepr.emit(synRepr, syn, PEER_IP, STACK_IP);
  const udpRepr: UdpRepr = { srcPort: 5353, dstPort: 53, payload: new Uint8Array(30) };
  const udp = new Uint8Array(UdpRepr.bufferLen(udpRepr));
  UdpRepr.emit(udpRepr, udp, PEER_IP, STACK_IP);
  // The first fragment of a UDP datagram, and a DNS query for the stack's own name.
  const frag = new Uint8Array(20 + 64);
  Ipv4Repr.emit({
    src: PEER_IP,
    dst: STACK_IP,
    protocol: IpProtocol.UDP,
    payloadLen: 64,
    ttl: 64,
    ident: 7,
    moreFragments: true,
  }, frag);
  frag.set(udp.subarray(0, 38), 20);
  const dnsQuery = Uint8Array.of(
    0xbe,
    0xef,
    1,
    0,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
    0, // header: RD, one question
    7,
    ..."netisle".split("").map((c) => c.charCodeAt(0)),
    8,
    ..."internal".split("").map((c) => c.charCodeAt(0)),
    0,
    0,
    1,
    0,
    1, // A, IN
  );
  const dnsRepr: UdpRepr = { srcPort: 5353, dstPort: 53, payload: dnsQuery };
  const dns = new Uint8Array(UdpRepr.bufferLen(dnsRepr));
  UdpRepr.emit(dnsRepr, dns, PEER_IP, STACK_IP);
  return [
    eth(EtherType.IPV4, frag),
    ip(IpProtocol.UDP, dns),
    eth(EtherType.ARP, arp, parseMacAddress("ff:ff:ff:ff:ff:ff")),
    ip(IpProtocol.ICMP, echo),
    ip(IpProtocol.TCP, syn),
    ip(IpProtocol.UDP, udp),
  ];
}

/** Checks that a frame the stack emitted parses cleanly at every layer. */
function assertWellFormed(frame: Uint8Array): void {
  const eth = EthernetFrame.parse(frame);
  assert.ok(eth.ok, "emitted Ethernet frame parses");
  if (eth.value.etherType === EtherType.ARP) {
    const p = ArpPacket.parse(eth.value.payload);
    assert.ok(p.ok && ArpRepr.parse(p.value).ok, "emitted ARP parses");
    return;
  }
  assert.equal(eth.value.etherType, EtherType.IPV4);
  const ip = Ipv4Packet.parse(eth.value.payload);
  assert.ok(ip.ok && Ipv4Repr.parse(ip.value).ok, "emitted IPv4 parses with a valid checksum");
  if (ip.value.protocol === IpProtocol.ICMP) {
    const icmp = Icmpv4Packet.parse(ip.value.payload);
    assert.ok(icmp.ok && Icmpv4Repr.parse(icmp.value).ok, "emitted ICMP parses");
  }
}

describe("fuzz: random and mutated frames into a session", () => {
  it("every frame is handled or counted under a drop reason visible in GET /v1/sessions/:sid", async () => {
    const seed = Number(process.env.NETISLE_FUZZ_SEED ?? Date.now() % 2 ** 31);
    const count = Number(process.env.NETISLE_FUZZ_FRAMES ?? 60_000);
    console.log(`fuzz seed ${seed} (NETISLE_FUZZ_SEED=${seed} replays it), ${count} frames`);
    const rnd = seededRandom(seed);
    const clock = new ManualClock(0);
    const registry = new SessionRegistry({ clock, random: (b) => rnd.fill(b) });
    const app = createApp({ registry });
    const created = await (await app.request("/v1/sessions", { method: "POST" })).json();
    const session = registry.get(created.id)!;
    let emitted = 0;
    const tunnel: TunnelEndpoint = {
      description: "fuzz",
      send(frames) {
        for (const f of frames) {
          assertWellFormed(f);
          emitted++;
        }
      },
      close() {},
    };
    session.attachTunnel(tunnel);
    const bases = templates(session.stack.config.mac);

    for (let i = 0; i < count; i++) {
      let frame: Uint8Array;
      const kind = rnd.u32() % 4;
      if (kind === 0) {
        // Pure noise of any length up to a bit past the MTU.
        frame = new Uint8Array(rnd.u32() % 1600);
        rnd.fill(frame);
      } else {
        const base = bases[rnd.u32() % bases.length];
        frame = base.slice();
        if (kind === 1) {
          // Flip a few bytes.
          const flips = 1 + (rnd.u32() % 4);
          for (let k = 0; k < flips; k++) frame[rnd.u32() % frame.length] ^= 1 + (rnd.u32() % 255);
        } else if (kind === 2) {
          // Truncate or extend.
          const len = rnd.u32() % (base.length + 64);
          const f = new Uint8Array(len);
          f.set(base.subarray(0, Math.min(len, base.length)));
          frame = f;
        } else if (rnd.u32() % 8 !== 0) {
          // Mutate one header field past the Ethernet header, keeping the rest valid.
          const at = ETHERNET_HEADER_LEN +
            (rnd.u32() % Math.min(40, frame.length - ETHERNET_HEADER_LEN));
          frame[at] = rnd.u32() & 0xff;
        }
      }
      session.input([frame]);
      if (i % 1000 === 999) clock.advance(250);
    }

    const res = await app.request(`/v1/sessions/${created.id}`, {
      headers: { authorization: `Bearer ${created.token}` },
    });
    assert.equal(res.status, 200);
    const view = await res.json();
    const c = view.counters;
    const drops = Object.values(c.drops as Record<string, number>).reduce((a, b) => a + b, 0);
    assert.equal(c.rxFrames, count, "every frame was counted on arrival");
    assert.equal(c.rxHandled + drops, count, "every frame was handled or dropped for a reason");
    const reasons = Object.entries(c.drops as Record<string, number>).filter(([, n]) => n > 0);
    console.log(
      `handled ${c.rxHandled}, dropped ${drops} under ${reasons.length} reasons, emitted ${emitted}: ` +
        reasons.sort((a, b) => b[1] - a[1]).map(([r, n]) => `${r}=${n}`).join(" "),
    );
    assert.ok(c.rxHandled > 0, "some mutated frames were still valid and handled");
    assert.ok(reasons.length >= 10, "the mutations reach many different checks");
    assert.equal(emitted, c.txFrames);
    registry.close();
  });
});
