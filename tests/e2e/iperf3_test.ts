/**
 * End to end: the real iperf3 against the stack's iperf3 (src/apps), through a
 * TAP device and the WebSocket tunnel (tests/e2e/testbed.ts).
 *
 * - Linux `iperf3 -c 10.0.2.2 -t 2 -J` and `-R` against the stack's server on
 *   port 5201: iperf3 exits 0, its JSON parses, and the receiver's byte count
 *   it prints is the count the stack reported.
 * - The stack's client against Linux `iperf3 -s -1 -J`, both directions: the
 *   Linux server's JSON report matches what the stack's client counted.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { commandExists, e2eSkipReason } from "./harness.ts";
import { Testbed } from "./testbed.ts";

const skip = e2eSkipReason() ??
  (commandExists("iperf3") ? undefined : "needs iperf3 (apt-get install iperf3)");

interface ServerReport {
  reverse: boolean;
  bytes: number;
  streams: { id: number; bytes: number }[];
  seconds: number;
  error?: string;
  clientResults?: { streams: { id: number; bytes: number }[] };
}

interface IperfJson {
  start: { test_start: { reverse: number; num_streams: number } };
  end: {
    sum_sent: { bytes: number; seconds: number };
    sum_received: { bytes: number; seconds: number; bits_per_second: number };
  };
}

function mbits(bps: number): string {
  return `${(bps / 1e6).toFixed(0)} Mbit/s`;
}

describe("e2e: iperf3 against the stack's iperf3", { skip }, () => {
  const bed = new Testbed();

  before(async () => {
    await bed.start("iperf");
  });
  after(async () => {
    await bed.stop();
  });

  for (const reverse of [false, true]) {
    it(`Linux iperf3 -c ${reverse ? "-R " : ""}completes against the stack's server`, async () => {
      const mark = bed.server.mark();
      const args = ["-c", "10.0.2.2", "-t", "2", "-J", ...(reverse ? ["-R"] : [])];
      const out = bed.peer.exec("iperf3", args, { timeoutMs: 30_000 }); // throws on a non-zero exit
      const json = JSON.parse(out) as IperfJson;
      const m = await bed.server.waitFor(/IPERF3 (\{.*\})/, 10_000, mark);
      const report = JSON.parse(m[1]) as ServerReport;
      assert.equal(report.error, undefined);
      assert.equal(report.reverse, reverse);
      assert.equal(json.start.test_start.reverse, reverse ? 1 : 0);
      assert.ok(report.bytes > 0, `the stack counted ${report.bytes} bytes`);
      if (reverse) {
        // The stack sent; iperf3 reports the stack's count as sum_sent.
        assert.equal(json.end.sum_sent.bytes, report.bytes);
        assert.ok(json.end.sum_received.bytes > 0);
      } else {
        // The stack received; iperf3 reports the stack's count as sum_received.
        assert.equal(json.end.sum_received.bytes, report.bytes);
        assert.equal(report.clientResults?.streams[0].bytes, json.end.sum_sent.bytes);
        assert.ok(report.bytes <= json.end.sum_sent.bytes);
      }
      console.log(
        `Linux iperf3 -c${reverse ? " -R" : ""}: ${mbits(json.end.sum_received.bits_per_second)}` +
          ` (stack ${reverse ? "sent" : "received"} ${report.bytes} bytes)`,
      );
    });
  }

  it("Linux iperf3 -c -P 3 -n 4M (three streams, a byte bound) completes", async () => {
    const mark = bed.server.mark();
    const out = bed.peer.exec("iperf3", ["-c", "10.0.2.2", "-P", "3", "-n", "4M", "-J"], {
      timeoutMs: 60_000,
    });
    const json = JSON.parse(out) as IperfJson;
    const m = await bed.server.waitFor(/IPERF3 (\{.*\})/, 10_000, mark);
    const report = JSON.parse(m[1]) as ServerReport;
    assert.equal(report.error, undefined);
    assert.equal(json.start.test_start.num_streams, 3);
    assert.deepEqual(report.streams.map((s) => s.id), [1, 3, 4]);
    assert.equal(json.end.sum_received.bytes, report.bytes);
    assert.ok(json.end.sum_sent.bytes >= 4 * 1024 * 1024, `sent ${json.end.sum_sent.bytes}`);
  });

  for (const reverse of [false, true]) {
    it(`the stack's iperf3 client${reverse ? " -R" : ""} completes against Linux iperf3 -s`, async () => {
      const server = bed.peer.spawn("iperf3", ["-s", "-1", "-J", "-B", "10.0.2.15"]);
      try {
        await new Promise((r) => setTimeout(r, 300)); // iperf3 -J prints nothing until the end
        const mark = bed.server.mark();
        bed.server.send(`iperf3 10.0.2.15 2${reverse ? " R" : ""}`);
        const m = await bed.server.waitFor(/IPERF3CLIENT(-ERROR)? (.*)/, 30_000, mark);
        assert.equal(m[1], undefined, `the stack's client failed: ${m[2]}`);
        const result = JSON.parse(m[2]) as { bytes: number; serverBytes: number; seconds: number };
        await new Promise<void>((resolve) => {
          if (server.child.exitCode !== null) resolve();
          else server.child.once("exit", () => resolve());
        });
        assert.equal(server.child.exitCode, 0, server.output);
        const json = JSON.parse(server.output) as IperfJson;
        assert.ok(result.bytes > 0);
        if (reverse) {
          // Linux sent: its sum_sent is its own count, which it also gave the stack.
          assert.equal(json.end.sum_sent.bytes, result.serverBytes);
          assert.ok(result.bytes > 0 && result.bytes <= json.end.sum_sent.bytes);
        } else {
          // Linux received: its count is what it reported to the stack.
          assert.equal(json.end.sum_received.bytes, result.serverBytes);
          assert.ok(json.end.sum_received.bytes <= result.bytes);
          assert.ok(json.end.sum_received.bytes > 0);
        }
        const linux = reverse ? json.end.sum_sent : json.end.sum_received;
        console.log(
          `stack iperf3 client${reverse ? " -R" : ""}: ${mbits(linux.bytes * 8 / linux.seconds)}` +
            ` (Linux ${reverse ? "sent" : "received"} ${linux.bytes} bytes)`,
        );
      } finally {
        await server.stop();
      }
    });
  }
});
