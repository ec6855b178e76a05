/**
 * End to end: a Linux TAP device in a fresh network namespace is tunnelled by
 * the netisle-tunnel CLI into a session of a real server; the kernel resolves
 * the stack's MAC with ARP and gets 10 of 10 ping replies.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { e2eSkipReason, Netns, type Proc, startServerAndTunnel } from "./harness.ts";

const skip = e2eSkipReason();

/** Fetches JSON from inside the namespace (the server listens on the namespace's loopback). */
function fetchInNs(ns: Netns, url: string, token: string): unknown {
  const script = `fetch(${JSON.stringify(url)}, { headers: { authorization: "Bearer " + ${
    JSON.stringify(token)
  } } }).then((r) => r.text()).then((t) => process.stdout.write(t))`;
  return JSON.parse(ns.exec("node", ["-e", script]));
}

describe("e2e: ARP and ping through a WebSocket tunnel from a Linux TAP device", { skip }, () => {
  it("Linux pings the stack 10 of 10 times and its neighbour table holds the session's MAC", async () => {
    const ns = new Netns("ping");
    const procs: Proc[] = [];
    try {
      const { id, token, mac } = await startServerAndTunnel(ns, procs);

      const out = ns.exec("ping", ["-c", "10", "-i", "0.2", "-W", "2", "10.0.2.2"], {
        timeoutMs: 30_000,
      });
      const received = Number(/(\d+) received/.exec(out)?.[1]);
      assert.equal(received, 10, `ping output:\n${out}`);
      const rtts = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])).sort((a, b) =>
        a - b
      );
      const median = (rtts[4] + rtts[5]) / 2;
      console.log(`ping through the tunnel: 10/10 replies, median rtt ${median.toFixed(3)} ms`);

      const neigh = ns.exec("ip", ["neigh", "show", "10.0.2.2", "dev", "tap0"]);
      assert.match(neigh, new RegExp(`lladdr ${mac}`), `ip neigh: ${neigh}`);

      const view = fetchInNs(ns, `http://127.0.0.1:8787/v1/sessions/${id}`, token) as {
        tunnel: { attached: boolean };
        counters: { rxHandled: number; txFrames: number };
        arp: Array<{ address: string; state: string }>;
      };
      assert.equal(view.tunnel.attached, true);
      // 10 echo requests and at least one ARP request were consumed; 10 replies, an ARP reply
      // and the gratuitous ARP went out.
      assert.ok(view.counters.rxHandled >= 11, JSON.stringify(view.counters));
      assert.ok(view.counters.txFrames >= 12, JSON.stringify(view.counters));
      assert.ok(view.arp.some((e) => e.address === "10.0.2.15" && e.state === "reachable"));
    } finally {
      for (const p of procs.reverse()) await p.stop();
      ns.delete();
    }
  });
});
