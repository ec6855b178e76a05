/**
 * End to end with a real QEMU: the netisle-tunnel CLI's `--qemu-stream` and
 * `--qemu-dgram` ports, in a fresh network namespace with the server
 * (examples/deno/server.ts) on its loopback.
 *
 * 1. A Linux guest (Debian's kernel, a busybox initramfs built here by
 *    tests/e2e/fixtures/qemu/build_initramfs.sh) boots under TCG with
 *    `-netdev stream` pointed at the CLI, gets 10.0.2.15 from the session's
 *    DHCP server, pings the stack 10 times, and serves TCP echo on port 7,
 *    which the test reaches through the HTTP socket API. Its kernel also
 *    configures IPv6 from the stack's router advertisement alone (SLAAC:
 *    fd00::/64 and the modified EUI-64 of its MAC, on-link, no default
 *    route); the socket API reaches the same echo at that address over IPv6
 *    (the stack resolving it by neighbour discovery), and the guest pings
 *    fd00::2 5 times. The guest powers off; the CLI keeps listening and the
 *    tunnel stays attached.
 * 2. A second QEMU (`-machine none`, a hub joining `-netdev stream` to a TAP
 *    device) connects to the same listening CLI, and Linux pings the stack
 *    through QEMU's stream netdev.
 * 3. The same with `-netdev dgram` and `--qemu-dgram` on a second session.
 *
 * The kernel comes from `.ci/run`, which unpacks Debian's linux-image into
 * /var/cache/netisle-qemu (vmlinuz and e1000.ko); override with
 * NETISLE_QEMU_DIR. Without it test 1 skips loudly, and fails under CI=true.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { commandExists, DENO, e2eSkipReason, Netns, Proc } from "./harness.ts";
import {
  buildGuestInitramfs,
  guestQemuArgs,
  KERNEL_DIR,
  need,
  QEMU,
  qemuGuestSkipReason,
  VMLINUZ,
} from "./qemu_guest.ts";

const API = "http://127.0.0.1:8787";

const skip = e2eSkipReason() ??
  need(
    "QEMU end-to-end tests",
    [QEMU, "curl", "ping"].filter((c) => !commandExists(c)),
  );
const skipGuest = skip ?? qemuGuestSkipReason("the QEMU guest test");

/** The median of some numbers. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Resolves when `p` has exited; rejects after `ms`. */
function exited(p: Proc, ms: number): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no exit within ${ms} ms:\n${p.output}`)), ms);
    p.child.once("exit", () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** RTTs (ms) in ping output: iputils' "time=1.23 ms" and busybox's alike. */
function rtts(out: string): number[] {
  return [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

/**
 * The 32 hex digits of the SLAAC address a host with `mac` forms in the
 * session's default prefix fd00::/64, as /proc/net/if_inet6 prints it: the
 * prefix, then the modified EUI-64 interface identifier (RFC 4291 §2.5.1 and
 * appendix A: ff:fe in the middle, the universal/local bit flipped).
 */
function slaacHex(mac: string): string {
  const m = mac.split(":").map((b) => parseInt(b, 16));
  const iid = [m[0] ^ 2, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]];
  return "fd00000000000000" + iid.map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** 32 hex digits as an IPv6 address in its canonical text (RFC 5952, as URL hosts are). */
function hexToIpv6(hex: string): string {
  const groups = hex.match(/.{4}/g)!.join(":");
  return new URL(`http://[${groups}]/`).hostname.slice(1, -1);
}

class Bed {
  ns!: Netns;
  dir = "";
  procs: Proc[] = [];

  async start(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), "netisle-qemu-"));
    this.ns = new Netns("qemu");
    const server = this.spawn(DENO, ["run", "-A", "examples/deno/server.ts"], { PORT: "8787" });
    await server.waitFor(/listening on http:\/\/127\.0\.0\.1:8787/);
  }

  spawn(cmd: string, args: string[], env: Record<string, string> = {}): Proc {
    const p = this.ns.spawn(cmd, args, env);
    this.procs.push(p);
    return p;
  }

  /** Stops one process started with {@linkcode Bed.spawn}. */
  async stopProc(p: Proc): Promise<void> {
    await p.stop();
    this.procs = this.procs.filter((x) => x !== p);
  }

  /** curl inside the namespace; returns status and body. */
  curl(
    method: string,
    url: string,
    o: { token?: string; json?: unknown; data?: string; timeoutMs?: number } = {},
  ): { status: number; body: string } {
    const args = ["-s", "-X", method, "-w", "\n%{http_code}"];
    if (o.token) args.push("-H", `Authorization: Bearer ${o.token}`);
    if (o.json !== undefined) {
      args.push("-H", "content-type: application/json", "-d", JSON.stringify(o.json));
    }
    if (o.data !== undefined) {
      args.push("-H", "content-type: application/octet-stream", "--data-binary", "@-");
    }
    args.push(`${API}${url}`);
    const out = this.ns.exec("curl", args, { input: o.data, timeoutMs: o.timeoutMs ?? 30_000 });
    const cut = out.lastIndexOf("\n");
    return { status: Number(out.slice(cut + 1)), body: out.slice(0, cut) };
  }

  json(
    method: string,
    url: string,
    o: Parameters<Bed["curl"]>[2] = {},
    status = 200,
    // deno-lint-ignore no-explicit-any
  ): any {
    const r = this.curl(method, url, o);
    assert.equal(r.status, status, `${method} ${url}: ${r.status} ${r.body}`);
    return JSON.parse(r.body);
  }

  createSession(): { id: string; token: string } {
    const s = this.json("POST", "/v1/sessions", { json: {} }, 201);
    return { id: s.id, token: s.token };
  }

  /** Starts the tunnel CLI on `session` with the given port flags and waits until it is open. */
  async tunnel(session: { id: string; token: string }, portArgs: string[]): Promise<Proc> {
    const p = this.spawn(DENO, [
      "run",
      "-A",
      "tunnel/cli.ts",
      "--server",
      API,
      "--session",
      session.id,
      "--token",
      session.token,
      ...portArgs,
    ]);
    await p.waitFor(/tunnel open/);
    return p;
  }

  /**
   * Starts a QEMU with no machine whose hub joins `netdev` to a new TAP
   * device `tap`, and gives the kernel 10.0.2.15/24 on it.
   */
  async hub(netdev: string, tap: string): Promise<Proc> {
    const q = this.spawn(QEMU, [
      "-machine",
      "none",
      "-nographic",
      "-netdev",
      `${netdev},id=q0`,
      "-netdev",
      `tap,id=t0,ifname=${tap},script=no,downscript=no`,
      "-netdev",
      "hubport,id=h0,hubid=0,netdev=q0",
      "-netdev",
      "hubport,id=h1,hubid=0,netdev=t0",
    ]);
    for (let i = 0;; i++) {
      try {
        this.ns.exec("ip", ["link", "show", tap]);
        break;
      } catch (err) {
        if (i >= 100) throw new Error(`QEMU made no TAP ${tap}: ${err}\n${q.output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    this.ns.exec("ip", ["addr", "add", "10.0.2.15/24", "dev", tap]);
    this.ns.exec("ip", ["link", "set", tap, "up"]);
    return q;
  }

  async stop(): Promise<void> {
    for (const p of this.procs.reverse()) await p.stop();
    this.ns?.delete();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

describe("e2e: QEMU -netdev stream and dgram through the tunnel CLI", { skip }, () => {
  const bed = new Bed();
  let session = { id: "", token: "" };
  let cli!: Proc;
  let sock = "";
  before(async () => {
    await bed.start();
    session = bed.createSession();
    sock = join(bed.dir, "qemu.sock");
    cli = await bed.tunnel(session, ["--qemu-stream", `unix:${sock}`]);
    await cli.waitFor(/listening for QEMU -netdev stream/);
  });
  after(async () => await bed.stop());

  it(
    "a Linux guest on -netdev stream gets 10.0.2.15 by DHCP and fd00::/64 by SLAAC, pings the stack and serves TCP echo to the socket API over IPv4 and IPv6",
    {
      skip: skipGuest,
    },
    async () => {
      const initrd = buildGuestInitramfs(bed.dir);
      const t0 = performance.now();
      const vm = bed.spawn(
        QEMU,
        guestQemuArgs(initrd, `stream,id=n0,server=off,addr.type=unix,addr.path=${sock}`),
      );
      const mac = (await vm.waitFor(/NETISLE-GUEST link-up ([0-9a-f:]{17})/, 120_000))[1];
      const lease = await vm.waitFor(
        /NETISLE-GUEST lease ip=(\S+) mask=(\S+) router=(\S+) dns=(\S+)/,
        60_000,
      );
      assert.deepEqual(lease.slice(1, 5), ["10.0.2.15", "24", "10.0.2.2", "10.0.2.2"]);
      const dhcpAt = (await vm.waitFor(/NETISLE-GUEST dhcp-ok \S+ at ([\d.]+) s/, 30_000))[1];
      await vm.waitFor(/NETISLE-GUEST echo-listening/, 30_000);
      const bootMs = performance.now() - t0;
      const initAt = /NETISLE-GUEST booted at ([\d.]+) s/.exec(vm.output)?.[1];
      await cli.waitFor(/QEMU connected/);

      const mark = vm.mark();
      vm.send("ping 10");
      const done = await vm.waitFor(/NETISLE-GUEST ping-done (\d+)/, 60_000, mark);
      const pingOut = vm.output.slice(mark);
      assert.equal(done[1], "0", `guest ping failed:\n${pingOut}`);
      assert.match(pingOut, /10 packets transmitted, 10 packets received/);
      const guestRtts = rtts(pingOut);
      assert.equal(guestRtts.length, 10, pingOut);

      // The stack resolved the guest's MAC while answering.
      const view = bed.json("GET", `/v1/sessions/${session.id}`, { token: session.token });
      assert.equal(view.tunnel.attached, true);
      assert.ok(
        view.arp.some((e: { address: string; mac: string | null }) =>
          e.address === "10.0.2.15" && e.mac === mac
        ),
        `the stack's ARP cache has no 10.0.2.15 at ${mac}: ${JSON.stringify(view.arp)}`,
      );

      // TCP through the socket API to busybox `nc -ll -p 7 -e cat` in the guest.
      const base = `/v1/sessions/${session.id}/sockets`;
      const auth = { token: session.token };
      const id = bed.json("POST", base, { ...auth, json: { protocol: "tcp" } }, 201).id;
      const c = bed.json("POST", `${base}/${id}/connect`, {
        ...auth,
        json: { address: "10.0.2.15", port: 7, timeoutMs: 20_000 },
      });
      assert.deepEqual(c.remote, { address: "10.0.2.15", port: 7 });
      const msg = "hello from the socket API to a QEMU guest\n";
      assert.deepEqual(bed.json("POST", `${base}/${id}/send`, { ...auth, data: msg }), {
        bytes: msg.length,
      });
      let echo = "";
      for (let i = 0; i < 20 && echo.length < msg.length; i++) {
        echo += bed.curl("POST", `${base}/${id}/recv?timeoutMs=5000`, auth).body;
      }
      assert.equal(echo, msg);
      assert.equal(bed.curl("DELETE", `${base}/${id}`, auth).status, 204);

      // IPv6: the guest's kernel configured itself from the stack's router advertisement alone
      // (SLAAC, RFC 4862): fd00::/64 and the modified EUI-64 of its MAC, past duplicate-address
      // detection (RFC 4862 §5.4).
      assert.deepEqual([view.ipv6.address, view.ipv6.prefix], ["fd00::2", "fd00::/64"]);
      let mark6 = vm.mark();
      vm.send("ipv6");
      const v6 = await vm.waitFor(
        /NETISLE-GUEST ipv6-(?:addr (\S+) at ([\d.]+) s|none.*)/,
        30_000,
        mark6,
      );
      await vm.waitFor(/NETISLE-GUEST ipv6-end/, 10_000, mark6);
      const v6Out = vm.output.slice(mark6);
      assert.ok(v6[1], `the guest has no global IPv6 address:\n${v6Out}`);
      assert.equal(v6[1], `${slaacHex(mac)}/64`, v6Out);
      // The prefix is on-link; router lifetime 0 gave no default route (RFC 4861 §6.3.4).
      assert.match(v6Out, /^fd00::\/64 dev eth0/m, v6Out);
      assert.doesNotMatch(v6Out, /^default/m, v6Out);
      const guest6 = hexToIpv6(v6[1].split("/")[0]);

      // TCP over IPv6 through the socket API to the same `nc` echo: the stack resolves the
      // guest's address by neighbour solicitation (RFC 4861 §7.2) and connects.
      const id6 = bed.json("POST", base, { ...auth, json: { protocol: "tcp" } }, 201).id;
      const c6 = bed.json("POST", `${base}/${id6}/connect`, {
        ...auth,
        json: { address: guest6, port: 7, timeoutMs: 20_000 },
      });
      assert.deepEqual(c6.remote, { address: guest6, port: 7 });
      assert.deepEqual(c6.local.address, "fd00::2");
      const msg6 = `hello over IPv6 from the socket API to [${guest6}]:7\n`;
      assert.deepEqual(bed.json("POST", `${base}/${id6}/send`, { ...auth, data: msg6 }), {
        bytes: msg6.length,
      });
      let echo6 = "";
      for (let i = 0; i < 20 && echo6.length < msg6.length; i++) {
        echo6 += bed.curl("POST", `${base}/${id6}/recv?timeoutMs=5000`, auth).body;
      }
      assert.equal(echo6, msg6);
      assert.equal(bed.curl("DELETE", `${base}/${id6}`, auth).status, 204);
      const view6 = bed.json("GET", `/v1/sessions/${session.id}`, { token: session.token });
      assert.ok(
        view6.ipv6.neighbors.some((e: { address: string; mac: string | null }) =>
          e.address === guest6 && e.mac === mac
        ),
        `the stack's neighbour cache has no ${guest6} at ${mac}: ${
          JSON.stringify(view6.ipv6.neighbors)
        }`,
      );

      // The guest pings the stack over IPv6 (busybox ping -6).
      mark6 = vm.mark();
      vm.send("ping6 5");
      const done6 = await vm.waitFor(/NETISLE-GUEST ping6-done (\d+)/, 60_000, mark6);
      const ping6Out = vm.output.slice(mark6);
      assert.equal(done6[1], "0", `guest ping -6 failed:\n${ping6Out}`);
      assert.match(ping6Out, /5 packets transmitted, 5 packets received/);
      const guestRtts6 = rtts(ping6Out);
      assert.equal(guestRtts6.length, 5, ping6Out);

      // The guest goes away; the CLI keeps listening and the tunnel stays attached.
      const cliMark = cli.mark();
      vm.send("poweroff");
      await vm.waitFor(/NETISLE-GUEST bye/, 30_000);
      await exited(vm, 30_000);
      await cli.waitFor(/QEMU disconnected; still listening/, 10_000, cliMark);
      assert.equal(cli.child.exitCode, null, "the CLI is still running");
      const after = bed.json("GET", `/v1/sessions/${session.id}`, { token: session.token });
      assert.equal(after.tunnel.attached, true);
      await bed.stopProc(vm);
      const pkgFile = join(KERNEL_DIR, "package");
      const kernel = existsSync(pkgFile) ? readFileSync(pkgFile, "utf8").trim() : VMLINUZ;
      console.log(
        `QEMU guest (${kernel}, e1000, busybox initramfs, TCG): ` +
          `booted to DHCP lease and echo server in ${(bootMs / 1000).toFixed(1)} s of wall time ` +
          `(guest uptime: init at ${initAt} s, lease at ${dhcpAt} s); ` +
          `guest ping through -netdev stream: 10/10, median rtt ${
            median(guestRtts).toFixed(3)
          } ms; SLAAC address ${guest6} (up by guest uptime ${v6[2]} s); ping -6: 5/5, median rtt ${
            median(guestRtts6).toFixed(3)
          } ms`,
      );
    },
  );

  it("a second QEMU (a hub joining -netdev stream to a TAP) reconnects to the listening CLI; Linux pings the stack 10 of 10", async () => {
    const cliMark = cli.mark();
    const q = await bed.hub(`stream,server=off,addr.type=unix,addr.path=${sock}`, "qstream0");
    await cli.waitFor(/QEMU connected/, 10_000, cliMark);
    const out = bed.ns.exec("ping", ["-c", "10", "-i", "0.2", "-W", "2", "10.0.2.2"], {
      timeoutMs: 60_000,
    });
    assert.match(out, /10 packets transmitted, 10 received/, out);
    console.log(
      `Linux -> QEMU hub -> -netdev stream -> CLI -> stack: 10/10, median rtt ${
        median(rtts(out)).toFixed(3)
      } ms`,
    );
    await bed.stopProc(q);
    await cli.waitFor(/QEMU disconnected; still listening/, 10_000, cliMark);
  });

  it("-netdev dgram (a hub joining it to a TAP) with --qemu-dgram and a fixed peer: Linux pings the stack 10 of 10", async () => {
    const other = bed.createSession();
    const dgram = await bed.tunnel(other, [
      "--qemu-dgram",
      "udp:127.0.0.1:5556",
      "--qemu-dgram-peer",
      "127.0.0.1:5557",
    ]);
    await dgram.waitFor(/bound for QEMU -netdev dgram; peer 127\.0\.0\.1:5557/);
    const q = await bed.hub(
      "dgram,local.type=inet,local.host=127.0.0.1,local.port=5557," +
        "remote.type=inet,remote.host=127.0.0.1,remote.port=5556",
      "qdgram0",
    );
    const out = bed.ns.exec("ping", ["-c", "10", "-i", "0.2", "-W", "2", "10.0.2.2"], {
      timeoutMs: 60_000,
    });
    assert.match(out, /10 packets transmitted, 10 received/, out);
    const view = bed.json("GET", `/v1/sessions/${other.id}`, { token: other.token });
    assert.ok(view.counters.rxHandled >= 10, JSON.stringify(view.counters));
    console.log(
      `Linux -> QEMU hub -> -netdev dgram -> CLI -> stack: 10/10, median rtt ${
        median(rtts(out)).toFixed(3)
      } ms`,
    );
    await bed.stopProc(q);
    await bed.stopProc(dgram);
  });
});
