import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ArpOperation, IpProtocol, parseIpv4Address, parseMacAddress } from "../wire/mod.ts";
import {
  arpFrame,
  BROADCAST_MAC,
  hex,
  PEER_IP,
  PEER_MAC,
  STACK_IP,
  STACK_MAC,
  StackHarness,
} from "./_stack_test_util.ts";

/** A stack that knows nobody yet (ARP tests start from an empty cache). */
function makeStack() {
  return new StackHarness({ knowPeer: false });
}

describe("Stack: ARP (RFC 826)", () => {
  it("answers a request for its address with the exact reply frame", () => {
    const h = makeStack();
    h.input(arpFrame(), 0);
    const out = h.drain();
    assert.equal(out.length, 1);
    // dst peer, src stack, ARP; htype 1 ptype 0800 hlen 6 plen 4 op 2; sender stack; target peer; pad to 60.
    assert.equal(
      hex(out[0]),
      "525400123456" + "020000000002" + "0806" + "0001" + "0800" + "06" + "04" + "0002" +
        "020000000002" + "0a000202" + "525400123456" + "0a00020f" + "00".repeat(18),
    );
    assert.equal(h.stack.counters.rxHandled, 1);
  });

  it("learns the sender of a request addressed to it (merge rule)", () => {
    const h = makeStack();
    h.input(arpFrame(), 5);
    assert.deepEqual(h.stack.arp.lookup(PEER_IP, 10), PEER_MAC);
  });

  it("does not create an entry from a request for another address, and counts it", () => {
    const h = makeStack();
    h.input(arpFrame({ targetIp: parseIpv4Address("10.0.2.3") }), 0);
    assert.equal(h.link.length, 0);
    assert.equal(h.stack.arp.lookup(PEER_IP, 0), undefined);
    assert.equal(h.drops.arp_not_for_us, 1);
  });

  it("refreshes an existing entry from a gratuitous ARP not addressed to it", () => {
    const h = makeStack();
    h.input(arpFrame(), 0);
    const newMac = parseMacAddress("52:54:00:aa:bb:cc");
    h.input(arpFrame({ senderMac: newMac, targetIp: PEER_IP }), 100);
    assert.deepEqual(h.stack.arp.lookup(PEER_IP, 100), newMac);
  });

  it("ignores an ARP whose sender claims the stack's own address", () => {
    const h = makeStack();
    h.input(arpFrame({ senderIp: STACK_IP, targetIp: STACK_IP }), 0);
    assert.equal(h.link.length, 0);
    assert.equal(h.drops.arp_address_conflict, 1);
  });

  it("answers an ARP probe (sender 0.0.0.0) without learning from it (RFC 5227 §2.1.1)", () => {
    const h = makeStack();
    h.input(arpFrame({ senderIp: 0 }), 0);
    assert.equal(h.drain().length, 1);
    assert.equal(h.stack.arp.size, 0);
  });

  it("announces itself with a gratuitous ARP request", () => {
    const h = makeStack();
    h.stack.announce();
    const [f] = h.drain();
    assert.equal(
      hex(f.subarray(0, 42)),
      "ffffffffffff" + "020000000002" + "0806" + "000108000604" + "0001" + "020000000002" +
        "0a000202" + "000000000000" + "0a000202",
    );
  });

  it("queues a packet while resolving, retries the request each second, gives up after 3", () => {
    const { stack, link } = makeStack();
    assert.equal(stack.sendIpv4(PEER_IP, IpProtocol.UDP, new Uint8Array(8), 0), true);
    let out = link.drain();
    assert.equal(out.length, 1, "one ARP request");
    assert.equal(hex(out[0].subarray(12, 14)), "0806");
    assert.equal(stack.nextDeadline(), 1000);
    stack.poll(999);
    assert.equal(link.length, 0);
    stack.poll(1000);
    stack.poll(2000);
    out = link.drain();
    assert.equal(out.length, 2, "two retries");
    stack.poll(3000);
    assert.equal(link.length, 0);
    assert.equal(stack.counters.txDrops.arp_unresolved, 1);
    assert.equal(stack.arp.size, 0);
    assert.equal(stack.nextDeadline(), undefined);
  });

  it("sends the queued packet once the reply arrives", () => {
    const h = makeStack();
    h.stack.sendIpv4(PEER_IP, IpProtocol.UDP, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), 0);
    h.drain();
    h.input(arpFrame({ operation: ArpOperation.REPLY, dstMac: STACK_MAC }), 10);
    const out = h.drain();
    assert.equal(out.length, 1);
    assert.equal(hex(out[0].subarray(0, 14)), "525400123456020000000002" + "0800");
    assert.equal(hex(out[0].subarray(34)), "0102030405060708");
  });

  it("bounds the frames queued per unresolved neighbour", () => {
    const { stack, link } = makeStack();
    let accepted = 0;
    for (let i = 0; i < 40; i++) {
      if (stack.sendIpv4(PEER_IP, IpProtocol.UDP, new Uint8Array(8), 0)) accepted++;
    }
    assert.equal(accepted, 16);
    assert.equal(stack.counters.txDrops.arp_queue_full, 24);
    assert.equal(link.drain().length, 1);
  });
});

describe("ARP learns only on-link neighbours (RFC 826, RFC 1122 §3.2.1.3, RFC 1812 §5.3.7)", () => {
  const ip = parseIpv4Address;
  const mac = parseMacAddress;
  /** Sender IP and MAC of a request for the stack's address, and what becomes of it. */
  const cases: Array<{ what: string; ip: string; mac?: Uint8Array; reason?: string }> = [
    { what: "a neighbour", ip: "10.0.2.15" },
    { what: "the last host of the subnet", ip: "10.0.2.254" },
    { what: "the subnet broadcast", ip: "10.0.2.255", reason: "arp_martian_sender" },
    { what: "the subnet's network address", ip: "10.0.2.0", reason: "arp_martian_sender" },
    { what: "the limited broadcast", ip: "255.255.255.255", reason: "arp_martian_sender" },
    { what: "a multicast group", ip: "224.0.0.1", reason: "arp_martian_sender" },
    { what: "loopback", ip: "127.0.0.1", reason: "arp_martian_sender" },
    { what: "class E", ip: "240.0.0.1", reason: "arp_martian_sender" },
    { what: "0.0.0.0/8 (not a probe)", ip: "0.1.2.3", reason: "arp_martian_sender" },
    { what: "an address off the subnet", ip: "10.0.3.7", reason: "arp_off_link_sender" },
    { what: "a public address", ip: "8.8.8.8", reason: "arp_off_link_sender" },
    { what: "the stack's own address", ip: "10.0.2.2", reason: "arp_address_conflict" },
    {
      what: "a multicast sender MAC",
      ip: "10.0.2.15",
      mac: mac("01:00:5e:00:00:01"),
      reason: "arp_bad_sender",
    },
    {
      what: "a broadcast sender MAC",
      ip: "10.0.2.15",
      mac: BROADCAST_MAC,
      reason: "arp_bad_sender",
    },
    {
      what: "the all-zero sender MAC",
      ip: "10.0.2.15",
      mac: mac("00:00:00:00:00:00"),
      reason: "arp_bad_sender",
    },
  ];
  for (const c of cases) {
    const verdict = c.reason ? `drops it as ${c.reason}: no entry, no reply` : "learns and answers";
    it(`a request from ${c.what} (${c.ip}): ${verdict}`, () => {
      const h = makeStack();
      const senderIp = ip(c.ip);
      const senderMac = c.mac ?? PEER_MAC;
      // The frame comes from the peer's MAC; only the ARP sender fields vary.
      h.input(arpFrame({ senderIp, senderMac, srcMac: PEER_MAC }), 0);
      const out = h.drain();
      if (c.reason) {
        assert.equal(h.drops[c.reason], 1);
        assert.equal(out.length, 0);
        assert.equal(h.stack.arp.size, 0);
        assert.equal(h.stack.counters.rxHandled, 0);
      } else {
        assert.equal(h.stack.counters.totalDrops(), 0);
        assert.equal(out.length, 1);
        assert.equal(hex(out[0].subarray(0, 6)), hex(senderMac));
        assert.deepEqual(h.stack.arp.lookup(senderIp, 0), senderMac);
      }
    });
  }

  it("a gratuitous ARP from a martian or off-link sender refreshes nothing and sends nothing", () => {
    const h = makeStack();
    for (const sender of ["10.0.2.255", "224.0.0.1", "127.0.0.1", "192.168.1.1"]) {
      h.input(arpFrame({ senderIp: ip(sender), targetIp: ip(sender) }), 0);
    }
    assert.equal(h.drops.arp_martian_sender, 3);
    assert.equal(h.drops.arp_off_link_sender, 1);
    assert.equal(h.stack.arp.size, 0);
    assert.equal(h.link.length, 0);
  });

  it("a reply from a martian sender does not resolve a queued packet", () => {
    const h = makeStack();
    h.stack.sendIpv4(PEER_IP, IpProtocol.UDP, new Uint8Array(8), 0);
    h.drain(); // the ARP request
    h.input(
      arpFrame({
        operation: ArpOperation.REPLY,
        senderIp: ip("10.0.2.255"),
        dstMac: STACK_MAC,
      }),
      1,
    );
    assert.equal(h.link.length, 0);
    assert.equal(h.stack.arp.lookup(ip("10.0.2.255"), 1), undefined);
    assert.equal(h.drops.arp_martian_sender, 1);
  });
});
