import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseIpv4Address } from "../wire/mod.ts";
import type { StackConfig } from "./stack.ts";
import {
  decodeIcmp,
  decodeUdp,
  fromHex,
  hex,
  PEER_IP,
  STACK_IP,
  StackHarness,
  udpFrame,
} from "./_stack_test_util.ts";

/** Wire form of a dotted name. */
function nameHex(name: string): string {
  let out = "";
  for (const l of name.split(".")) {
    out += l.length.toString(16).padStart(2, "0");
    for (const c of l) out += c.charCodeAt(0).toString(16).padStart(2, "0");
  }
  return out + "00";
}

/** A standard query (RD set) with one question. */
function query(id: string, name: string, type: string, cls = "0001"): string {
  return id + "0100" + "0001" + "0000" + "0000" + "0000" + nameHex(name) + type + cls;
}

function makeStack(dns?: StackConfig["dns"], ipv6?: StackConfig["ipv6"]) {
  const { stack, link } = new StackHarness({ dns, seed: 3, ipv6 });
  /** Sends `payloadHex` to port 53 and returns the DNS payload of the reply (hex), if any. */
  const ask = (payloadHex: string, dst = STACK_IP): string | undefined => {
    stack.input(udpFrame({ dstPort: 53, srcPort: 5555, dst, payload: fromHex(payloadHex) }), 1);
    const frames = link.drain();
    if (frames.length === 0) return undefined;
    assert.equal(frames.length, 1);
    const d = decodeUdp(frames[0]);
    assert.equal(d.udp.srcPort, 53);
    assert.equal(d.udp.dstPort, 5555);
    assert.equal(d.ip.dst, PEER_IP);
    return hex(d.udp.payload);
  };
  return { stack, link, ask };
}

const Q_NETISLE = nameHex("netisle.internal");

describe("DNS responder", () => {
  it("answers A for netisle.internal with the stack's address, TTL 60", () => {
    const { stack, ask } = makeStack();
    assert.equal(
      ask(query("beef", "netisle.internal", "0001")),
      "beef" + "8500" + "0001" + "0001" + "0000" + "0000" + Q_NETISLE + "0001" + "0001" +
        "c00c" + "0001" + "0001" + "0000003c" + "0004" + "0a000202",
    );
    // Case-insensitive, with a trailing-dot-free name; the question is echoed as asked.
    assert.equal(
      ask(query("0001", "NetIsle.Internal", "0001"))?.slice(-8),
      "0a000202",
    );
    assert.equal(stack.counters.rxHandled, 2);
    assert.equal(stack.dns?.stats.answered, 2);
  });

  it("answers AAAA for its name with NOERROR and no answers (NODATA) when the session has no IPv6 (RFC 2308 §2.2)", () => {
    const { ask } = makeStack(undefined, false);
    assert.equal(
      ask(query("0002", "netisle.internal", "001c")),
      "0002" + "8500" + "0001" + "0000" + "0000" + "0000" + Q_NETISLE + "001c" + "0001",
    );
  });

  it("answers AAAA for its name with the stack's IPv6 address over IPv4 when the session has IPv6 (RFC 3596 §2.2)", () => {
    const { ask } = makeStack();
    assert.equal(
      ask(query("0002", "netisle.internal", "001c")),
      "0002" + "8500" + "0001" + "0001" + "0000" + "0000" + Q_NETISLE + "001c" + "0001" +
        "c00c" + "001c" + "0001" + "0000003c" + "0010" + "fd000000000000000000000000000002",
    );
  });

  it("answers NXDOMAIN under .internal and REFUSED elsewhere, never silence", () => {
    const { ask } = makeStack();
    assert.equal(
      ask(query("0003", "other.internal", "0001")),
      "0003" + "8503" + "0001" + "0000" + "0000" + "0000" + nameHex("other.internal") + "0001" +
        "0001",
    );
    assert.equal(
      ask(query("0004", "example.com", "0001")),
      "0004" + "8105" + "0001" + "0000" + "0000" + "0000" + nameHex("example.com") + "0001" +
        "0001",
    );
    // A class other than IN is refused too.
    assert.equal(ask(query("0005", "netisle.internal", "0001", "0003"))?.slice(0, 8), "00058105");
  });

  it("answers FORMERR for malformed questions, including compression-pointer loops", () => {
    const { stack, ask } = makeStack();
    const formerr = (id: string) => id + "8101" + "0000" + "0000" + "0000" + "0000";
    assert.equal(ask("0006" + "0100" + "0000" + "0000" + "0000" + "0000"), formerr("0006"));
    assert.equal(
      ask("0007" + "0100" + "0001" + "0000" + "0000" + "0000" + "c00c0001"),
      formerr("0007"),
    );
    assert.equal(
      ask("0008" + "0100" + "0001" + "0000" + "0000" + "0000" + "c00e" + "c00c" + "00010001"),
      formerr("0008"),
    );
    assert.equal(
      ask("0009" + "0100" + "0001" + "0000" + "0000" + "0000" + "0161"),
      formerr("0009"),
    );
    // Another opcode (here STATUS, 2) is not implemented.
    assert.equal(
      ask("000a" + "1100" + "0000" + "0000" + "0000" + "0000"),
      "000a" + "9104" + "0000".repeat(4),
    );
    assert.equal(stack.counters.rxFrames, stack.counters.rxHandled);
  });

  it("drops what has no parseable header, and responses, counting them", () => {
    const { stack, ask } = makeStack();
    assert.equal(ask("0001020304"), undefined);
    assert.equal(ask("0001" + "8180" + "0000" + "0000" + "0000" + "0000"), undefined);
    assert.equal(stack.counters.drops.dns_truncated, 1);
    assert.equal(stack.counters.drops.dns_not_query, 1);
    assert.equal(stack.dns?.stats.dropped, 2);
  });

  it("serves configured names and leaves port 53 to a bound socket", () => {
    const { stack, ask } = makeStack({ names: { "GW.internal.": parseIpv4Address("10.0.2.1") } });
    assert.equal(ask(query("0010", "gw.internal", "0001"))?.slice(-8), "0a000201");
    assert.equal(ask(query("0011", "netisle.internal", "0001"))?.slice(-8), "0a000202");
    const ep = stack.udp.bind(53);
    assert.equal(ask(query("0012", "netisle.internal", "0001")), undefined);
    assert.ok(ep.receive());
  });

  it("stays out of the way when disabled, and for broadcast queries", () => {
    const { stack, link } = makeStack({ enabled: false });
    assert.equal(stack.dns, undefined);
    stack.input(
      udpFrame({ dstPort: 53, payload: fromHex(query("0001", "netisle.internal", "0001")) }),
      1,
    );
    const [f] = link.drain();
    assert.equal(decodeIcmp(f).icmp.type, "dest_unreachable");
    const on = makeStack();
    assert.equal(
      on.ask(query("0002", "netisle.internal", "0001"), parseIpv4Address("10.0.2.255")),
      undefined,
    );
    assert.equal(on.stack.counters.drops.udp_port_closed, 1);
  });
});
