import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DhcpMessageType, type DhcpRepr, type MacAddress, parseIpv4Address } from "../wire/mod.ts";
import { DHCP_OFFER_HOLD_MS } from "./dhcp_leases.ts";
import {
  bind,
  exchange,
  IP15,
  IP16,
  MAC_A,
  MAC_B,
  makeStack,
  msg,
  replyTo,
  STACK_IP,
} from "./_dhcp_test_util.ts";

const IP17 = parseIpv4Address("10.0.2.17");
const { REQUEST, OFFER, ACK, NAK, DECLINE } = DhcpMessageType;

/** A fresh locally administered MAC per `n` (the attacker's supply). */
function mac(n: number): MacAddress {
  return Uint8Array.of(0x02, 0xba, 0xd0, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
}

/** The REQUEST (SELECTING) a client sends for `address` after our OFFER. */
function selecting(m: Partial<DhcpRepr>, address: number): DhcpRepr {
  return msg({ ...m, messageType: REQUEST, serverId: STACK_IP, requestedIp: address });
}

/** What the table holds: [address, state, chaddr's last byte] by address. */
function table(h: ReturnType<typeof makeStack>): Array<[number, string, number]> {
  return h.stack.dhcp!.leases().map((l) => [l.address, l.state, l.mac[5]]);
}

describe("DHCP leases: unrequested offers expire quickly (RFC 2131 §4.3.1)", () => {
  it("holds an offer 10 s, then frees its address", () => {
    const h = makeStack();
    const discover = msg({});
    const [offer] = exchange(h, discover, 0);
    assert.deepEqual(offer.dhcp, replyTo(discover, OFFER, IP15));
    assert.equal(DHCP_OFFER_HOLD_MS, 10_000);
    assert.equal(h.stack.nextDeadline(), 10_000);
    h.stack.poll(9_999);
    assert.deepEqual(table(h), [[IP15, "offered", 0x56]]);
    h.stack.poll(10_000);
    assert.deepEqual(table(h), []);
    assert.equal(h.stack.dhcp!.stats.expired, 1);
  });

  it("still ACKs a client that selects its address after the offer expired, while it is free", () => {
    const h = makeStack();
    exchange(h, msg({}), 0);
    h.stack.poll(DHCP_OFFER_HOLD_MS);
    const request = selecting({}, IP15);
    const [ack] = exchange(h, request, DHCP_OFFER_HOLD_MS + 500);
    assert.deepEqual(ack.dhcp, replyTo(request, ACK, IP15));
    assert.deepEqual(table(h), [[IP15, "bound", 0x56]]);
  });
});

describe("DHCP leases: a full pool gives back unconfirmed addresses first", () => {
  it("takes back the oldest offer for a new client", () => {
    const h = makeStack({ poolSize: 2 });
    exchange(h, msg({ chaddr: MAC_A }), 0); // .15
    exchange(h, msg({ chaddr: MAC_B }), 1); // .16
    const c = msg({ chaddr: mac(3), xid: 3 });
    const [offer] = exchange(h, c, 2);
    assert.deepEqual(offer.dhcp, replyTo(c, OFFER, IP15));
    assert.deepEqual(table(h), [[IP15, "offered", 3], [IP16, "offered", 0xef]]);
    assert.equal(h.stack.dhcp!.stats.reclaimed, 1);
    assert.equal(h.stack.dhcp!.stats.poolExhausted, 0);
  });

  it("takes back an offer before an (older) declined address, and a declined one before nothing", () => {
    const h = makeStack({ poolSize: 2, leaseMs: 3_600_000 });
    bind(h, msg({ chaddr: MAC_B }), 0); // .15
    // MAC_B's address proves to be in use: declined, out of the pool for a lease time.
    exchange(
      h,
      msg({ chaddr: MAC_B, messageType: DECLINE, requestedIp: IP15, serverId: STACK_IP }),
      1,
    );
    exchange(h, msg({ chaddr: MAC_A }), 2); // offered .16
    assert.deepEqual(table(h), [[IP15, "declined", 0xef], [IP16, "offered", 0x56]]);
    const c = msg({ chaddr: mac(3) });
    assert.deepEqual(exchange(h, c, 3)[0].dhcp, replyTo(c, OFFER, IP16, 3600));
    const d = msg({ chaddr: mac(4) });
    // Now .16 is C's offer (newer than the declined .15): the offer still goes first.
    assert.deepEqual(exchange(h, d, 4)[0].dhcp, replyTo(d, OFFER, IP16, 3600));
    // Bind .16 for D; then E can only get the declined .15.
    assert.equal(exchange(h, selecting({ chaddr: mac(4) }, IP16), 5)[0].dhcp.messageType, ACK);
    const e = msg({ chaddr: mac(5), clientId: Uint8Array.of(1, 5) });
    assert.deepEqual(exchange(h, e, 6)[0].dhcp, replyTo(e, OFFER, IP15, 3600));
    assert.equal(h.stack.dhcp!.stats.reclaimed, 3);
  });

  it("never takes back a bound lease before it expires", () => {
    const h = makeStack({ poolSize: 2 });
    bind(h, msg({ chaddr: MAC_A }), 0);
    bind(h, msg({ chaddr: MAC_B }), 0);
    for (let i = 0; i < 10; i++) assert.deepEqual(exchange(h, msg({ chaddr: mac(i) }), 1), []);
    assert.equal(h.stack.dhcp!.stats.poolExhausted, 10);
    assert.deepEqual(table(h), [[IP15, "bound", 0x56], [IP16, "bound", 0xef]]);
  });

  it("a REQUEST takes an address only another client's offer holds; a bound one is NAKed", () => {
    const h = makeStack();
    exchange(h, msg({ chaddr: MAC_A }), 0); // A is offered .15
    const b = selecting({ chaddr: MAC_B, xid: 0xb }, IP15); // B has no offer and selects .15
    assert.deepEqual(exchange(h, b, 1)[0].dhcp, replyTo(b, ACK, IP15));
    assert.deepEqual(table(h), [[IP15, "bound", 0xef]]);
    assert.equal(h.stack.dhcp!.stats.reclaimed, 1);
    const a = selecting({ chaddr: MAC_A, xid: 0xa }, IP15); // A's offer is gone; .15 is bound
    assert.deepEqual(exchange(h, a, 2)[0].dhcp, replyTo(a, NAK, 0));
  });
});

describe("DHCP leases: a bound per client (MAC and client identifier)", () => {
  it("one client identifier holds one entry, whatever MAC it comes from", () => {
    const h = makeStack();
    const id = Uint8Array.of(0xff, 9);
    bind(h, msg({ chaddr: MAC_A, clientId: id }), 0);
    const again = msg({ chaddr: MAC_B, clientId: id });
    assert.deepEqual(exchange(h, again, 1)[0].dhcp, replyTo(again, OFFER, IP15));
    assert.deepEqual(table(h), [[IP15, "bound", 0x56]]);
  });

  it("a MAC holds one offer: a new client identifier on it replaces the old offer", () => {
    const h = makeStack();
    exchange(h, msg({ clientId: Uint8Array.of(0xff, 1) }), 0);
    const y = msg({ clientId: Uint8Array.of(0xff, 2) });
    assert.deepEqual(exchange(h, y, 1)[0].dhcp, replyTo(y, OFFER, IP15));
    for (let i = 3; i < 40; i++) exchange(h, msg({ clientId: Uint8Array.of(0xff, i) }), 2);
    assert.deepEqual(
      table(h),
      [[IP15, "offered", 0x56]],
      "one MAC never holds more than one offer",
    );
    assert.equal(h.stack.dhcp!.stats.perMacReleased, 38);
  });

  it("a MAC holds one binding: binding under a new client identifier gives back the old one", () => {
    const h = makeStack();
    bind(h, msg({ clientId: Uint8Array.of(0xff, 1) }), 0); // .15, e.g. the boot ROM
    // The installed system, same NIC, another client identifier: its DISCOVER leaves .15 bound...
    const y = { clientId: Uint8Array.of(0xff, 2), xid: 2 };
    assert.deepEqual(exchange(h, msg(y), 1)[0].dhcp, replyTo(msg(y), OFFER, IP16));
    assert.deepEqual(table(h), [[IP15, "bound", 0x56], [IP16, "offered", 0x56]]);
    // ...and its REQUEST gives it back.
    const r = selecting(y, IP16);
    assert.deepEqual(exchange(h, r, 2)[0].dhcp, replyTo(r, ACK, IP16));
    assert.deepEqual(table(h), [[IP16, "bound", 0x56]]);
    assert.equal(h.stack.dhcp!.stats.perMacReleased, 1);
  });

  it("leasesPerMac: 2 lets one MAC hold two bindings; a third gives back the oldest", () => {
    const h = makeStack({ leasesPerMac: 2 });
    bind(h, msg({ clientId: Uint8Array.of(0xff, 1), xid: 1 }), 1);
    bind(h, msg({ clientId: Uint8Array.of(0xff, 2), xid: 2 }), 2);
    assert.deepEqual(table(h), [[IP15, "bound", 0x56], [IP16, "bound", 0x56]]);
    assert.equal(bind(h, msg({ clientId: Uint8Array.of(0xff, 3), xid: 3 }), 3), IP17);
    assert.deepEqual(table(h), [[IP16, "bound", 0x56], [IP17, "bound", 0x56]]);
    assert.deepEqual(h.stack.dhcp!.leases().map((l) => l.clientKey), ["id:ff02", "id:ff03"]);
    assert.equal(h.stack.dhcp!.stats.perMacReleased, 1);
  });

  it("rejects a pool size or leasesPerMac out of range with a RangeError quoting it", () => {
    const cases: Array<[Parameters<typeof makeStack>[0], RegExp]> = [
      [{ poolSize: 0 }, /poolSize must be an integer in 1\.\.4096, got 0/],
      [{ poolSize: 4097 }, /poolSize must be an integer in 1\.\.4096, got 4097/],
      [{ poolSize: 2.5 }, /poolSize must be an integer in 1\.\.4096, got 2\.5/],
      [{ poolSize: 300 }, /pool 10\.0\.2\.15 \+ 300 must lie in 10\.0\.2\.0\/24/],
      [{ leasesPerMac: 0 }, /leasesPerMac must be an integer in 1\.\.4096, got 0/],
    ];
    for (const [config, message] of cases) {
      assert.throws(
        () => makeStack(config),
        (e) => e instanceof RangeError && message.test(e.message),
      );
    }
    assert.equal(makeStack({ poolSize: 100 }).stack.dhcp!.poolSize, 100);
  });
});

describe("DHCP leases: one tunnel peer cannot take the pool with DISCOVERs", () => {
  it("fresh MACs flood DISCOVER before, between and after a real client's DISCOVER and REQUEST; the client gets and keeps its address", () => {
    const h = makeStack(); // 16 addresses: .15 to .30
    let n = 0;
    const flood = (count: number, now: number) => {
      for (let i = 0; i < count; i++) {
        const m = msg({ chaddr: mac(++n), xid: n });
        const [offer] = exchange(h, m, now);
        assert.equal(offer.dhcp.messageType, OFFER, "every attacker DISCOVER gets an offer");
      }
    };
    flood(100, 0);
    assert.equal(h.stack.dhcp!.leases().length, 16);
    // The real client.
    const discover = msg({ chaddr: MAC_A, xid: 0x7ea1, hostname: "guest" });
    const [offer] = exchange(h, discover, 100);
    assert.equal(offer.dhcp.messageType, OFFER);
    const address = offer.dhcp.yiaddr;
    // The attacker keeps going while the client's REQUEST is on its way: its
    // offer is taken back and re-offered to an attacker MAC.
    flood(50, 150);
    assert.notEqual(
      h.stack.dhcp!.leases().find((l) => l.address === address)?.mac[5],
      MAC_A[5],
      "the client's offer was taken back",
    );
    const request = selecting({ chaddr: MAC_A, xid: 0x7ea1, hostname: "guest" }, address);
    const [ack] = exchange(h, request, 200);
    assert.deepEqual(ack.dhcp, replyTo(request, ACK, address));
    flood(100, 300);
    const lease = h.stack.dhcp!.leases().find((l) => l.address === address)!;
    assert.deepEqual([lease.state, lease.mac[5], lease.hostname], ["bound", MAC_A[5], "guest"]);
    // Renewal works under the flood too.
    h.stack.arp.update(address, MAC_A, 400);
    const renew = msg({ chaddr: MAC_A, xid: 0x7ea2, messageType: REQUEST, ciaddr: address });
    const [renewed] = exchange(h, renew, 400, { src: address, dst: STACK_IP });
    assert.deepEqual(renewed.dhcp, replyTo(renew, ACK, address));
    const s = h.stack.dhcp!.stats;
    assert.equal(s.poolExhausted, 0);
    assert.equal(s.offers, 251);
    // 84 + 1 (the client's DISCOVER) + 50 + 1 (its REQUEST) + 100: every DISCOVER past the
    // first 16 took back the oldest offer.
    assert.equal(s.reclaimed, 236);
    assert.equal(h.stack.dhcp!.leases().length, 16, "the table never grows past the pool");
  });
});
