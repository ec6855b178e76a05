/**
 * Test helpers for the DHCP server (TESTING.md ring 1): client messages as
 * exact frames from a host without an address, the server's replies decoded,
 * and the exact replies the server should send.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  BROADCAST_MAC,
  DHCP_CLIENT_PORT,
  DHCP_SERVER_PORT,
  DhcpMessageType,
  DhcpOp,
  DhcpPacket,
  DhcpRepr,
  ETHERNET_HEADER_LEN,
  EthernetFrame,
  EthernetRepr,
  EtherType,
  IpProtocol,
  IPV4_BROADCAST,
  IPV4_HEADER_LEN,
  type Ipv4Address,
  Ipv4Packet,
  Ipv4Repr,
  type MacAddress,
  parseIpv4Address,
  parseMacAddress,
  UdpPacket,
  UdpRepr,
} from "../wire/mod.ts";
import type { DhcpServerConfig } from "./dhcp_server.ts";
import type { StackConfig } from "./stack.ts";
import { PEER_MAC, STACK_IP, STACK_MAC, StackHarness, udpFrame } from "./_stack_test_util.ts";

export { STACK_IP };

export const MAC_A = PEER_MAC;
export const MAC_B = parseMacAddress("52:54:00:ab:cd:ef");
export const IP15 = parseIpv4Address("10.0.2.15");
export const IP16 = parseIpv4Address("10.0.2.16");
export const DAY_S = 86400;

/** A stack with the DHCP server on (and `dhcp` settings), knowing no neighbour. */
export function makeStack(
  dhcp: Partial<DhcpServerConfig> = {},
  mtu = 1500,
  more: Partial<StackConfig> = {},
) {
  return new StackHarness({
    dhcp: { enabled: true, ...dhcp },
    mtu,
    knowPeer: false,
    seed: 1,
    ...more,
  });
}

/** A client message; fields not given get the defaults of a DISCOVER from MAC_A. */
export function msg(fields: Partial<DhcpRepr>): DhcpRepr {
  return {
    op: DhcpOp.REQUEST,
    hops: 0,
    xid: 0xcafe0001,
    secs: 0,
    broadcast: false,
    ciaddr: 0,
    yiaddr: 0,
    siaddr: 0,
    giaddr: 0,
    chaddr: MAC_A,
    messageType: DhcpMessageType.DISCOVER,
    ...fields,
  };
}

/** The frame a client sends: from `src` (0.0.0.0 unless bound) to `dst` (broadcast), 68 → 67. */
export function clientFrame(
  m: DhcpRepr,
  opts: { src?: Ipv4Address; dst?: Ipv4Address; payload?: Uint8Array } = {},
): Uint8Array {
  const dst = opts.dst ?? IPV4_BROADCAST;
  let payload = opts.payload;
  if (!payload) {
    payload = new Uint8Array(DhcpRepr.bufferLen(m));
    DhcpRepr.emit(m, payload);
  }
  return udpFrame({
    src: opts.src ?? 0,
    dst,
    srcMac: m.chaddr,
    dstMac: dst === IPV4_BROADCAST ? BROADCAST_MAC : STACK_MAC,
    srcPort: DHCP_CLIENT_PORT,
    dstPort: DHCP_SERVER_PORT,
    payload,
  });
}

export interface Reply {
  ethDst: string;
  ipSrc: Ipv4Address;
  ipDst: Ipv4Address;
  srcPort: number;
  dstPort: number;
  dhcp: DhcpRepr;
  frame: Uint8Array;
}

export function ok<T>(r: { ok: true; value: T } | { ok: false; reason: string }): T {
  if (!r.ok) throw new Error(`expected ok, got ${r.reason}`);
  return r.value;
}

export function decode(frame: Uint8Array): Reply {
  const eth = ok(EthernetFrame.parse(frame));
  assert.equal(eth.etherType, EtherType.IPV4);
  const ipPkt = ok(Ipv4Packet.parse(eth.payload));
  const ip = ok(Ipv4Repr.parse(ipPkt));
  assert.equal(ip.protocol, IpProtocol.UDP);
  const udp = ok(UdpRepr.parse(ok(UdpPacket.parse(ipPkt.payload)), ip.src, ip.dst));
  const dhcp = ok(DhcpRepr.parse(ok(DhcpPacket.parse(udp.payload))));
  return {
    ethDst: Array.from(eth.dst, (b) => b.toString(16).padStart(2, "0")).join(":"),
    ipSrc: ip.src,
    ipDst: ip.dst,
    srcPort: udp.srcPort,
    dstPort: udp.dstPort,
    dhcp,
    frame,
  };
}

/** The exact frame the server should send: built with the codecs, IP ident `ident`. */
export function expectedFrame(
  dstMac: MacAddress,
  dst: Ipv4Address,
  reply: DhcpRepr,
  ident: number,
): Uint8Array {
  const payload = new Uint8Array(DhcpRepr.bufferLen(reply));
  DhcpRepr.emit(reply, payload);
  const udp: UdpRepr = { srcPort: 67, dstPort: 68, payload };
  const udpLen = UdpRepr.bufferLen(udp);
  const f = new Uint8Array(ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + udpLen);
  EthernetRepr.emit({ dst: dstMac, src: STACK_MAC, etherType: EtherType.IPV4 }, f);
  Ipv4Repr.emit({
    src: STACK_IP,
    dst,
    protocol: IpProtocol.UDP,
    payloadLen: udpLen,
    ttl: 64,
    ident,
    dontFragment: false,
  }, f.subarray(ETHERNET_HEADER_LEN));
  UdpRepr.emit(udp, f.subarray(ETHERNET_HEADER_LEN + IPV4_HEADER_LEN), STACK_IP, dst);
  return f;
}

export function exchange(
  h: StackHarness,
  m: DhcpRepr,
  now: number,
  opts?: { src?: Ipv4Address; dst?: Ipv4Address },
): Reply[] {
  h.stack.input(clientFrame(m, opts), now);
  return h.link.drain().map(decode);
}

/** DISCOVER then REQUEST (SELECTING) for what was offered; returns the ACK's address. */
export function bind(h: StackHarness, m: DhcpRepr, now: number): Ipv4Address {
  const [offer] = exchange(h, { ...m, messageType: DhcpMessageType.DISCOVER }, now);
  const request = {
    ...m,
    messageType: DhcpMessageType.REQUEST,
    serverId: STACK_IP,
    requestedIp: offer.dhcp.yiaddr,
  };
  const [ack] = exchange(h, request, now);
  assert.equal(ack.dhcp.messageType, DhcpMessageType.ACK);
  return ack.dhcp.yiaddr;
}

export const OPTIONS = {
  subnetMask: 0xffffff00,
  routers: [STACK_IP],
  dnsServers: [STACK_IP],
  interfaceMtu: 1500,
};

/** The server's exact reply to `m`: `type` on `yiaddr`, with the options of a `leaseS` lease. */
export function replyTo(m: DhcpRepr, type: number, yiaddr: Ipv4Address, leaseS = DAY_S): DhcpRepr {
  const r: DhcpRepr = {
    op: DhcpOp.REPLY,
    hops: 0,
    xid: m.xid,
    secs: 0,
    broadcast: m.broadcast,
    ciaddr: type === DhcpMessageType.ACK ? m.ciaddr : 0,
    yiaddr,
    siaddr: 0,
    giaddr: 0,
    chaddr: m.chaddr,
    messageType: type,
    serverId: STACK_IP,
  };
  if (m.clientId) r.clientId = m.clientId;
  if (type === DhcpMessageType.NAK) return r;
  return {
    ...r,
    leaseTime: leaseS,
    renewalTime: Math.floor(leaseS / 2),
    rebindingTime: Math.floor(leaseS * 7 / 8),
    ...OPTIONS,
  };
}
