import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Icmpv4DestUnreachableCode, parseIpv4Address } from "../wire/mod.ts";
import { StackCounters } from "./counters.ts";
import { IcmpLayer } from "./icmp_layer.ts";
import type { Ipv4Output } from "./ipv4_output.ts";

/** An ICMP layer whose IPv4 output only records the destinations it is asked to send to. */
function makeIcmp(errorsPerSecond = 100) {
  const sentTo: number[] = [];
  const out = {
    send: (dst: number) => {
      sentTo.push(dst);
      return true;
    },
  } as unknown as Ipv4Output;
  const counters = new StackCounters();
  const icmp = new IcmpLayer({
    address: parseIpv4Address("10.0.2.2"),
    mtu: 1500,
    errorsPerSecond,
    out,
    sinks: { tcp: { fragmentationNeeded: () => undefined }, udp: { icmpError: () => undefined } },
    counters,
  });
  return { icmp, sentTo, counters };
}

describe("IcmpLayer.sendError (RFC 1122 §3.2.2, RFC 1812 §4.3.2.8)", () => {
  it("never sends an error to a source that does not name one host, even if a caller asks", () => {
    const { icmp, sentTo } = makeIcmp();
    const original = new Uint8Array(28);
    for (const src of ["0.0.0.0", "127.0.0.1", "224.0.0.1", "240.0.0.1", "255.255.255.255"]) {
      icmp.sendError(original, parseIpv4Address(src), Icmpv4DestUnreachableCode.PORT, 0);
    }
    assert.deepEqual(sentTo, []);
    assert.deepEqual(icmp.errorStats, { sent: 0, rateLimited: 0 });
    icmp.sendError(original, parseIpv4Address("10.0.2.15"), Icmpv4DestUnreachableCode.PORT, 0);
    assert.deepEqual(sentTo, [parseIpv4Address("10.0.2.15")]);
    assert.equal(icmp.errorStats.sent, 1);
  });

  it("counts errors the token bucket suppresses", () => {
    const { icmp, sentTo, counters } = makeIcmp(1);
    const peer = parseIpv4Address("10.0.2.15");
    icmp.sendError(new Uint8Array(28), peer, Icmpv4DestUnreachableCode.PORT, 0);
    icmp.sendError(new Uint8Array(28), peer, Icmpv4DestUnreachableCode.PORT, 0);
    assert.equal(sentTo.length, 1);
    assert.deepEqual(icmp.errorStats, { sent: 1, rateLimited: 1 });
    assert.equal(counters.txDrops.icmp_error_rate_limited, 1);
  });
});
