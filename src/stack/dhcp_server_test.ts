import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  BROADCAST_MAC,
  DhcpMessageType,
  DhcpOp,
  DhcpRepr,
  IPV4_BROADCAST,
  parseIpv4Address,
  parseMacAddress,
} from "../wire/mod.ts";
import { describeLease } from "./dhcp_server.ts";
import { StackHarness } from "./_stack_test_util.ts";
import {
  bind,
  clientFrame,
  DAY_S,
  decode,
  exchange,
  expectedFrame,
  IP15,
  IP16,
  MAC_A,
  MAC_B,
  makeStack,
  msg,
  OPTIONS,
  STACK_IP,
} from "./_dhcp_test_util.ts";

describe("DhcpServer (RFC 2131)", () => {
  it("DISCOVER → OFFER → REQUEST → ACK, exact frames", () => {
    const h = makeStack();
    const discover = msg({ broadcast: true, parameterRequestList: [1, 3, 6, 26] });
    const [offer, ...rest] = exchange(h, discover, 1000);
    assert.equal(rest.length, 0);
    const offerRepr: DhcpRepr = {
      op: DhcpOp.REPLY,
      hops: 0,
      xid: 0xcafe0001,
      secs: 0,
      broadcast: true,
      ciaddr: 0,
      yiaddr: IP15,
      siaddr: 0,
      giaddr: 0,
      chaddr: MAC_A,
      messageType: DhcpMessageType.OFFER,
      serverId: STACK_IP,
      leaseTime: DAY_S,
      renewalTime: DAY_S / 2,
      rebindingTime: DAY_S * 7 / 8,
      ...OPTIONS,
    };
    assert.deepEqual(offer.dhcp, offerRepr);
    assert.deepEqual(offer.frame, expectedFrame(BROADCAST_MAC, IPV4_BROADCAST, offerRepr, 1));
    assert.equal(h.stack.dhcp?.leases()[0].state, "offered");

    // The client did not set the broadcast flag this time: unicast to yiaddr at chaddr, no ARP.
    const request = msg({
      messageType: DhcpMessageType.REQUEST,
      serverId: STACK_IP,
      requestedIp: IP15,
      hostname: "guest",
    });
    const [ack, ...more] = exchange(h, request, 1500);
    assert.equal(more.length, 0, "no ARP request before the ACK");
    const ackRepr: DhcpRepr = {
      ...offerRepr,
      broadcast: false,
      messageType: DhcpMessageType.ACK,
    };
    assert.deepEqual(ack.dhcp, ackRepr);
    assert.deepEqual(ack.frame, expectedFrame(MAC_A, IP15, ackRepr, 2));
    assert.deepEqual(
      h.stack.dhcp!.leases().map((l) => describeLease(l, 1500)),
      [{
        address: "10.0.2.15",
        mac: "52:54:00:12:34:56",
        state: "bound",
        expiresInMs: DAY_S * 1000,
        hostname: "guest",
      }],
    );
    assert.equal(h.stack.nextDeadline(), 1500 + DAY_S * 1000);
    const s = h.stack.dhcp!.stats;
    assert.deepEqual([s.discovers, s.offers, s.requests, s.acks, s.naks], [1, 1, 1, 1, 0]);
  });

  it("offers the same address again and a second client the next one", () => {
    const h = makeStack();
    assert.equal(exchange(h, msg({}), 0)[0].dhcp.yiaddr, IP15);
    assert.equal(exchange(h, msg({ xid: 2 }), 0)[0].dhcp.yiaddr, IP15);
    const b = exchange(h, msg({ chaddr: MAC_B }), 0)[0];
    assert.equal(b.dhcp.yiaddr, IP16);
    assert.equal(b.ethDst, "52:54:00:ab:cd:ef");
    assert.equal(b.ipDst, IP16);
  });

  it("honours a free requested address in DISCOVER and keys leases by client id", () => {
    const h = makeStack();
    const want = parseIpv4Address("10.0.2.20");
    const id = Uint8Array.of(0xff, 1, 2, 3);
    const [o] = exchange(h, msg({ requestedIp: want, clientId: id }), 0);
    assert.equal(o.dhcp.yiaddr, want);
    assert.deepEqual(o.dhcp.clientId, id);
    // Same client id, other MAC: the same client.
    const [o2] = exchange(h, msg({ chaddr: MAC_B, clientId: id }), 0);
    assert.equal(o2.dhcp.yiaddr, want);
    // An address outside the pool is not honoured.
    const [o3] = exchange(h, msg({ chaddr: MAC_B, requestedIp: parseIpv4Address("10.0.2.99") }), 0);
    assert.equal(o3.dhcp.yiaddr, IP15);
  });

  it("NAKs a wrong requested address, broadcast", () => {
    const h = makeStack();
    exchange(h, msg({}), 0);
    const [nak] = exchange(
      h,
      msg({ messageType: DhcpMessageType.REQUEST, serverId: STACK_IP, requestedIp: IP16 }),
      10,
    );
    assert.equal(nak.dhcp.messageType, DhcpMessageType.NAK);
    assert.equal(nak.ethDst, "ff:ff:ff:ff:ff:ff");
    assert.equal(nak.ipDst, IPV4_BROADCAST);
    assert.equal(nak.dhcp.yiaddr, 0);
    assert.equal(nak.dhcp.serverId, STACK_IP);
    assert.equal(nak.dhcp.leaseTime, undefined);
    assert.equal(nak.dhcp.routers, undefined);
    // INIT-REBOOT with an address of another subnet: NAK.
    const [nak2] = exchange(
      h,
      msg({ messageType: DhcpMessageType.REQUEST, requestedIp: parseIpv4Address("192.168.1.5") }),
      10,
    );
    assert.equal(nak2.dhcp.messageType, DhcpMessageType.NAK);
    assert.equal(h.stack.dhcp!.stats.naks, 2);
  });

  it("forgets its offer when the client selects another server", () => {
    const h = makeStack();
    exchange(h, msg({}), 0);
    const out = exchange(
      h,
      msg({
        messageType: DhcpMessageType.REQUEST,
        serverId: parseIpv4Address("10.0.2.3"),
        requestedIp: parseIpv4Address("10.0.2.100"),
      }),
      10,
    );
    assert.equal(out.length, 0);
    assert.equal(h.stack.dhcp!.leases().length, 0);
  });

  it("INIT-REBOOT and RENEWING get an ACK; renewal extends the lease, unicast to ciaddr", () => {
    const h = makeStack({ leaseMs: 60_000 });
    const [ack] = exchange(
      h,
      msg({ messageType: DhcpMessageType.REQUEST, requestedIp: IP16, broadcast: true }),
      0,
    );
    assert.equal(ack.dhcp.messageType, DhcpMessageType.ACK);
    assert.equal(ack.dhcp.yiaddr, IP16);
    assert.equal(ack.dhcp.leaseTime, 60);
    assert.equal(ack.ipDst, IPV4_BROADCAST);
    // RENEWING: unicast from the bound address; the reply goes to ciaddr (ARP known).
    h.stack.arp.update(IP16, MAC_A, 30_000);
    const [renew] = exchange(
      h,
      msg({ messageType: DhcpMessageType.REQUEST, ciaddr: IP16 }),
      30_000,
      { src: IP16, dst: STACK_IP },
    );
    assert.equal(renew.dhcp.messageType, DhcpMessageType.ACK);
    assert.equal(renew.dhcp.ciaddr, IP16);
    assert.equal(renew.ipDst, IP16);
    assert.equal(renew.ethDst, "52:54:00:12:34:56");
    assert.equal(h.stack.dhcp!.leases()[0].expiresAt, 90_000);
    // Another client renewing an address it does not hold: NAK.
    const [nak] = exchange(
      h,
      msg({ chaddr: MAC_B, messageType: DhcpMessageType.REQUEST, ciaddr: IP16 }),
      30_000,
      { src: IP16, dst: STACK_IP },
    );
    assert.equal(nak.dhcp.messageType, DhcpMessageType.NAK);
  });

  it("RELEASE frees the address without a reply", () => {
    const h = makeStack();
    exchange(h, msg({}), 0);
    exchange(
      h,
      msg({ messageType: DhcpMessageType.REQUEST, serverId: STACK_IP, requestedIp: IP15 }),
      0,
    );
    // Another client's RELEASE of that address is ignored.
    assert.equal(
      exchange(
        h,
        msg({
          chaddr: MAC_B,
          messageType: DhcpMessageType.RELEASE,
          ciaddr: IP15,
          serverId: STACK_IP,
        }),
        5,
        { src: IP15, dst: STACK_IP },
      ).length,
      0,
    );
    assert.equal(h.stack.dhcp!.leases().length, 1);
    const out = exchange(
      h,
      msg({ messageType: DhcpMessageType.RELEASE, ciaddr: IP15, serverId: STACK_IP }),
      10,
      { src: IP15, dst: STACK_IP },
    );
    assert.equal(out.length, 0);
    assert.equal(h.stack.dhcp!.leases().length, 0);
    assert.equal(h.stack.dhcp!.stats.releases, 2);
    assert.equal(exchange(h, msg({ chaddr: MAC_B }), 20)[0].dhcp.yiaddr, IP15);
  });

  it("DECLINE keeps the address out of the pool for a lease time", () => {
    const h = makeStack({ leaseMs: 10_000 });
    exchange(h, msg({}), 0);
    exchange(
      h,
      msg({ messageType: DhcpMessageType.REQUEST, serverId: STACK_IP, requestedIp: IP15 }),
      0,
    );
    exchange(
      h,
      msg({ messageType: DhcpMessageType.DECLINE, requestedIp: IP15, serverId: STACK_IP }),
      5,
    );
    assert.equal(h.stack.dhcp!.leases()[0].state, "declined");
    assert.equal(exchange(h, msg({ xid: 9 }), 6)[0].dhcp.yiaddr, IP16);
    h.stack.poll(10_005);
    assert.equal(exchange(h, msg({ chaddr: MAC_B }), 10_005)[0].dhcp.yiaddr, IP15);
  });

  it("INFORM gets an ACK with options and no lease, to ciaddr", () => {
    const h = makeStack({ dns: parseIpv4Address("10.0.2.3"), domain: "netisle.internal" });
    h.stack.arp.update(parseIpv4Address("10.0.2.50"), MAC_A, 0);
    const ciaddr = parseIpv4Address("10.0.2.50");
    const [ack] = exchange(
      h,
      msg({ messageType: DhcpMessageType.INFORM, ciaddr }),
      0,
      { src: ciaddr, dst: STACK_IP },
    );
    assert.deepEqual(ack.dhcp, {
      ...msg({ ciaddr }),
      op: DhcpOp.REPLY,
      messageType: DhcpMessageType.ACK,
      serverId: STACK_IP,
      ...OPTIONS,
      dnsServers: [parseIpv4Address("10.0.2.3")],
      domainName: "netisle.internal",
    });
    assert.equal(ack.ipDst, ciaddr);
    assert.equal(h.stack.dhcp!.leases().length, 0);
  });

  it("expires offers and leases at their deadline, driven by poll(now)", () => {
    const h = makeStack({ leaseMs: 5000 });
    exchange(h, msg({}), 0);
    assert.equal(h.stack.nextDeadline(), 10_000, "an offer is held 10 s");
    exchange(
      h,
      msg({ messageType: DhcpMessageType.REQUEST, serverId: STACK_IP, requestedIp: IP15 }),
      100,
    );
    assert.equal(h.stack.nextDeadline(), 5100);
    h.stack.poll(5099);
    assert.equal(h.stack.dhcp!.leases().length, 1);
    h.stack.poll(5100);
    assert.equal(h.stack.dhcp!.leases().length, 0);
    assert.equal(h.stack.dhcp!.stats.expired, 1);
    assert.equal(h.stack.nextDeadline(), undefined);
    // Renewing after expiry takes the address again while it is free; the
    // reply goes to ciaddr even with the broadcast flag (RFC 2131 §4.1).
    h.stack.arp.update(IP15, MAC_A, 6000);
    const [ack] = exchange(
      h,
      msg({ messageType: DhcpMessageType.REQUEST, ciaddr: IP15, broadcast: true }),
      6000,
      { src: IP15 },
    );
    assert.equal(ack.dhcp.messageType, DhcpMessageType.ACK);
    assert.equal(ack.ipDst, IP15);
  });

  it("makes no offer when every address is bound", () => {
    const h = makeStack({ poolSize: 2 });
    bind(h, msg({}), 0);
    bind(h, msg({ chaddr: MAC_B }), 0);
    const c = parseMacAddress("52:54:00:00:00:03");
    assert.equal(exchange(h, msg({ chaddr: c }), 0).length, 0);
    assert.equal(h.stack.dhcp!.stats.poolExhausted, 1);
    assert.equal(h.stack.dhcp!.leases().length, 2);
    // Once a lease is released, its address is free again.
    exchange(
      h,
      msg({ messageType: DhcpMessageType.RELEASE, ciaddr: IP15, serverId: STACK_IP }),
      1,
      { src: IP15, dst: STACK_IP },
    );
    assert.equal(exchange(h, msg({ chaddr: c }), 2)[0].dhcp.yiaddr, IP15);
  });

  it("counts hostile DHCP bytes and never throws", () => {
    const h = makeStack();
    const good = new Uint8Array(DhcpRepr.bufferLen(msg({})));
    DhcpRepr.emit(msg({}), good);
    const cookie = good.slice();
    cookie[236] = 0;
    const badOpt = good.slice();
    badOpt[241] = 200;
    const reply = good.slice();
    reply[0] = DhcpOp.REPLY;
    const relayed = good.slice();
    relayed[24] = 10;
    const noType = good.slice();
    noType[240] = 0xff;
    for (const payload of [good.subarray(0, 100), cookie, badOpt, reply, relayed, noType]) {
      assert.doesNotThrow(() => h.stack.input(clientFrame(msg({}), { payload }), 0));
    }
    let seed = 3;
    for (let i = 0; i < 500; i++) {
      const p = good.slice(0, 240 + (i % 80));
      for (let j = 0; j < p.length; j++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        if (j >= 240 || (seed >>> 28) === 0) p[j] = seed >>> 24;
      }
      assert.doesNotThrow(() => h.stack.input(clientFrame(msg({}), { payload: p }), 0));
    }
    const d = h.stack.dhcp!.stats.drops;
    assert.equal(d.dhcp_truncated, 1);
    assert.ok(d.dhcp_bad_cookie >= 1);
    assert.ok(d.dhcp_bad_option >= 1);
    assert.ok(d.dhcp_not_request >= 1);
    assert.ok(d.dhcp_relay_unsupported >= 1);
    assert.ok(d.dhcp_bad_message_type >= 1);
    assert.equal(h.stack.dhcp!.stats.rx, 506);
  });

  it("sends the link MTU and refuses a pool outside the subnet", () => {
    const h = makeStack({}, 1400);
    assert.equal(exchange(h, msg({}), 0)[0].dhcp.interfaceMtu, 1400);
    assert.throws(() => makeStack({ poolStart: parseIpv4Address("10.0.3.15") }), RangeError);
    assert.throws(
      () => makeStack({ poolStart: parseIpv4Address("10.0.2.250"), poolSize: 16 }),
      RangeError,
    );
    assert.throws(() => makeStack({ poolStart: parseIpv4Address("10.0.2.0") }), RangeError);
    assert.throws(() => makeStack({ poolSize: 0 }), RangeError);
    assert.throws(() => makeStack({ leaseMs: 1500 }), RangeError);
  });

  it("fits its default pool to small subnets and never hands out the stack's address", () => {
    const small = makeStack({}, 1500, {
      ipv4: { address: parseIpv4Address("192.168.7.1"), prefixLength: 28 },
    });
    assert.equal(small.stack.dhcp!.poolStart, parseIpv4Address("192.168.7.1"));
    assert.equal(small.stack.dhcp!.poolSize, 14);
    small.input(clientFrame(msg({})), 0);
    assert.equal(decode(small.drain()[0]).dhcp.yiaddr, parseIpv4Address("192.168.7.2"));
    const h = makeStack({ poolStart: parseIpv4Address("10.0.2.1"), poolSize: 2 });
    assert.equal(exchange(h, msg({}), 0)[0].dhcp.yiaddr, parseIpv4Address("10.0.2.1"));
    // 10.0.2.2 is the stack: the second client gets the first one's offer back, never .2.
    const [b] = exchange(h, msg({ chaddr: MAC_B }), 1);
    assert.equal(b.dhcp.yiaddr, parseIpv4Address("10.0.2.1"));
    assert.equal(h.stack.dhcp!.stats.reclaimed, 1);
  });

  it("holds UDP port 67 as a service: no socket can bind it, and it is no endpoint", () => {
    const h = makeStack();
    assert.throws(
      () => h.stack.udp.bind(67),
      /UDP port 67 is already in use by the DHCP server/,
    );
    assert.equal(h.stack.udp.endpoints.size, 0);
  });

  it("is off unless enabled: port 67 stays free", () => {
    const { stack } = new StackHarness();
    assert.equal(stack.dhcp, undefined);
    stack.udp.bind(67).close();
  });
});
