/**
 * End to end, IPv6 (issue 17, part 1): Linux behind a TAP device tunnelled
 * into a session configures an address in fd00::/64 from the session's
 * router advertisement alone (SLAAC, RFC 4862: accept_ra and autoconf on,
 * nothing else configured), resolves fd00::2 with neighbour discovery and
 * pings it 3 of 3 times; a TCP connection over IPv6 is refused at once (no
 * TCP over IPv6 yet). The session's view shows the guest as a neighbour.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DENO, e2eSkipReason, Netns, type Proc } from "./harness.ts";

const skip = e2eSkipReason();

/** Polls `probe` every 100 ms until it returns a value; throws `what` after `timeoutMs`. */
async function waitUntil<T>(
  what: string,
  probe: () => T | undefined,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Fetches JSON from inside the namespace (the server listens on the namespace's loopback). */
function fetchInNs(ns: Netns, url: string, token: string): unknown {
  const script = `fetch(${JSON.stringify(url)}, { headers: { authorization: "Bearer " + ${
    JSON.stringify(token)
  } } }).then((r) => r.text()).then((t) => process.stdout.write(t))`;
  return JSON.parse(ns.exec("node", ["-e", script]));
}

describe("e2e: IPv6 from a Linux TAP device (RFC 4861, RFC 4862)", { skip }, () => {
  it("Linux gets a SLAAC address in fd00::/64 from the router advertisement and pings fd00::2", async () => {
    const ns = new Netns("ipv6");
    const procs: Proc[] = [];
    try {
      // IPv6 on, router advertisements accepted, SLAAC on: for tap0 before it exists.
      for (const conf of ["all", "default"]) {
        ns.exec("sysctl", ["-q", "-w", `net.ipv6.conf.${conf}.disable_ipv6=0`]);
      }
      ns.exec("sysctl", ["-q", "-w", "net.ipv6.conf.default.accept_ra=2"]);
      ns.exec("sysctl", ["-q", "-w", "net.ipv6.conf.default.autoconf=1"]);
      const server = ns.spawn(DENO, ["run", "-A", "examples/deno/server.ts"], { PORT: "8787" });
      procs.push(server);
      await server.waitFor(/listening on http:\/\/127\.0\.0\.1:8787/);
      const tunnel = ns.spawn(DENO, [
        "run",
        "-A",
        "tunnel/cli.ts",
        "--server",
        "http://127.0.0.1:8787",
        "--create",
        "--tap",
        "tap0",
      ]);
      procs.push(tunnel);
      const [, id, token] = await tunnel.waitFor(/session (s_\S+) token (\S+)/);
      const mac = (await tunnel.waitFor(/mac ([0-9a-f:]{17})/))[1];
      await tunnel.waitFor(/tunnel open/);
      ns.exec("sysctl", ["-q", "-w", "net.ipv6.conf.tap0.accept_ra=2"]);
      ns.exec("sysctl", ["-q", "-w", "net.ipv6.conf.tap0.autoconf=1"]);
      ns.exec("ip", ["link", "set", "tap0", "up"]);

      // No address is configured by hand: the router advertisement alone gives one.
      const started = Date.now();
      const address = await waitUntil("a SLAAC address in fd00::/64 on tap0", () => {
        const out = ns.exec("ip", ["-6", "-o", "addr", "show", "dev", "tap0", "scope", "global"]);
        const m = /inet6 (fd00::[0-9a-f:]+)\/64 .*dynamic/.exec(out);
        return m && !/tentative/.test(out) ? m[1] : undefined;
      });
      console.log(`SLAAC address ${address} after ${Date.now() - started} ms`);

      const out = ns.exec("ping", ["-6", "-c", "3", "-i", "0.2", "-W", "2", "fd00::2"], {
        timeoutMs: 30_000,
      });
      assert.equal(Number(/(\d+) received/.exec(out)?.[1]), 3, `ping -6 output:\n${out}`);
      const neigh = ns.exec("ip", ["-6", "neigh", "show", "fd00::2", "dev", "tap0"]);
      assert.match(neigh, new RegExp(`lladdr ${mac}`), `ip -6 neigh: ${neigh}`);
      const route = ns.exec("ip", ["-6", "route", "show", "dev", "tap0"]);
      assert.match(route, /fd00::\/64 proto (kernel|ra)/, `ip -6 route: ${route}`);
      assert.doesNotMatch(route, /default/, "router lifetime 0: no default route");

      // No TCP over IPv6 yet: every port is closed, and says so at once (RFC 9293 §3.10.7.1).
      const refused = (() => {
        try {
          ns.exec("socat", ["-u", "/dev/null", "TCP6:[fd00::2]:22,connect-timeout=5"], {
            timeoutMs: 10_000,
          });
          return "connected";
        } catch (err) {
          return String((err as Error).message);
        }
      })();
      assert.match(refused, /Connection refused/, refused);

      const view = fetchInNs(ns, `http://127.0.0.1:8787/v1/sessions/${id}`, token) as {
        ipv6: {
          address: string;
          neighbors: Array<{ address: string; state: string }>;
          routerAdvertisements: { sent: number; solicited: number };
        };
        counters: { drops: Record<string, number> };
      };
      assert.equal(view.ipv6.address, "fd00::2");
      assert.ok(view.ipv6.routerAdvertisements.sent >= 1, JSON.stringify(view.ipv6));
      assert.ok(view.ipv6.neighbors.some((n) => n.address === address), JSON.stringify(view.ipv6));
      const drops = Object.entries(view.counters.drops).filter(([r, n]) =>
        n > 0 && /^(ipv6|icmpv6|ndp|mld)_|_bad_checksum$/.test(r)
      );
      assert.deepEqual(
        drops,
        [],
        "Linux's IPv6 traffic is all handled (MLD accepted, not dropped)",
      );
    } finally {
      for (const p of procs.reverse()) await p.stop();
      ns.delete();
    }
  });
});
