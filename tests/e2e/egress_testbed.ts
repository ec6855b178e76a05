/**
 * The e2e testbed of egress (issue 13): three namespaces.
 *
 * - "internet": the outside world, reached from "server" over a veth, with
 *   addresses in 198.18.0.0/15 (198.18.0.2 its side of the veth, .10 an HTTP
 *   server and TCP/UDP echo, .53 a dnsmasq) and one private address,
 *   192.168.77.10, which the server routes to but the policy does not open.
 * - "server": netisle (examples/deno/server.ts or examples/bun/server.ts) on
 *   0.0.0.0:8787 with `NETISLE_EGRESS=on`,
 *   `NETISLE_EGRESS_ALLOW=198.18.0.0/15` and
 *   `NETISLE_DNS_UPSTREAM=udp:198.18.0.53:53`; its own addresses are
 *   198.18.0.1 (towards the internet) and 192.168.100.1 (towards guests).
 * - "guest": a Linux machine on the session's network. The tunnel CLI
 *   reaches the server over a veth (192.168.100.2); its TAP device is bridged
 *   (br0) to a veth pair whose other end carries 10.0.2.15/24 with the
 *   default route via 10.0.2.2, so losses can be injected on the bridge's
 *   forward hook (TESTING.md) and every packet to the world goes through the
 *   session. The guest sends large GSO packets (the tunnel CLI's offload
 *   cuts them), except while losses are injected. Its resolv.conf (/etc/netns/NAME/resolv.conf) names 10.0.2.2.
 *
 * With `ipv6` (issue 17): "internet" also has 2001:db8:1::10/64 on its
 * veth (an HTTP server on [2001:db8:1::10]:8080, TCP and UDP echo as on
 * 198.18.0.10), the server 2001:db8:1::1
 * (on-link: its route to the internet's /64), and the first guest takes
 * its address and default route from the session's router advertisement
 * alone (SLAAC on gv1; IPv6 off on the bridge, its ports and the TAP).
 *
 * Further guests (each its own namespace, session and tunnel) can be added
 * with {@linkcode EgressTestbed.addGuest}.
 *
 * @module
 */

import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { BUN, DENO, Netns, Proc, sh } from "./harness.ts";

/** The internet's HTTP, TCP echo and UDP echo host. */
export const WEB = "198.18.0.10";
/** The internet's DNS server (dnsmasq). */
export const DNS = "198.18.0.53";
/** The server's address towards the internet (its own address: always denied). */
export const SERVER_OUT = "198.18.0.1";
/** The server's address towards the guests (where the tunnel CLI connects). */
export const SERVER_IN = "192.168.100.1";
/** A private address on the internet side, routed but not opened by the allow rule. */
export const PRIVATE = "192.168.77.10";
/** The internet's IPv6 HTTP host (with `ipv6`). */
export const WEB6 = "2001:db8:1::10";
/** The server's IPv6 address towards the internet (its own address: always denied). */
export const SERVER_OUT6 = "2001:db8:1::1";
/** Ports of the internet's services. */
export const HTTP_PORT = 8080;
export const ECHO_PORT = 9000;
export const UDP_PORT = 7;

/** Polls `cond` every 100 ms until it holds; throws naming `what` after `timeoutMs`. */
async function waitFor(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One guest: its namespace, tunnel CLI and session. */
export class EgressGuest {
  readonly ns: Netns;
  cli!: Proc;
  session = { id: "", token: "" };
  #resolv: string;

  /** Creates the namespace (the testbed wires it). */
  constructor(prefix: string) {
    this.ns = new Netns(prefix);
    this.#resolv = `/etc/netns/${this.ns.name}`;
  }

  /** Runs a command in the guest and returns its stdout. */
  exec(cmd: string, args: string[], timeoutMs = 60_000): string {
    return this.ns.exec(cmd, args, { timeoutMs });
  }

  /** Whether the command succeeds, and its stdout and stderr. */
  try(cmd: string, args: string[], timeoutMs = 60_000): { ok: boolean; out: string } {
    try {
      return { ok: true, out: this.exec(cmd, args, timeoutMs) };
    } catch (err) {
      return { ok: false, out: (err as Error).message };
    }
  }

  /** Writes the guest's resolv.conf (nameserver 10.0.2.2). */
  writeResolvConf(): void {
    mkdirSync(this.#resolv, { recursive: true });
    writeFileSync(`${this.#resolv}/resolv.conf`, "nameserver 10.0.2.2\noptions timeout:2\n");
  }

  /** Removes the namespace and its resolv.conf. */
  delete(): void {
    rmSync(this.#resolv, { recursive: true, force: true });
    this.ns.delete();
  }
}

/** Options of {@linkcode EgressTestbed.start}. */
export interface EgressTestbedOptions {
  /**
   * The server's runtime; Deno by default. `workerd` runs the Cloudflare
   * Worker (examples/cloudflare) in local workerd: TCP through `connect()`,
   * no outbound UDP.
   */
  runtime?: "deno" | "bun" | "workerd";
  /** Extra environment of the server. */
  env?: Record<string, string>;
  /**
   * Whether the guest's address sits behind a bridge (for loss injection, the
   * default) or on the TAP device itself (as slirp4netns's TAP: the bench).
   */
  bridge?: boolean;
  /** The tunnel CLI's runtime (default Deno; Bun runs `bun tunnel/cli.ts`). */
  cliRuntime?: "deno" | "bun";
  /** Extra flags of the Deno server (e.g. `--v8-flags=--perf-basic-prof` to profile it). */
  denoFlags?: string[];
  /** Files for the HTTP server to serve (name → bytes), written to a temporary directory. */
  files?: Record<string, Uint8Array>;
  /** IPv6 between the server and the internet, and SLAAC for the first guest (see the module). */
  ipv6?: boolean;
}

/** The three namespaces and everything running in them. */
export class EgressTestbed {
  internet!: Netns;
  server!: Netns;
  guest!: EgressGuest;
  serverProc!: Proc;
  readonly guests: EgressGuest[] = [];
  readonly procs: Proc[] = [];
  dir = "";
  #nextGuestNet = 100;

  /** Builds the namespaces, starts the internet's services, the server and the first guest. */
  async start(prefix: string, options: EgressTestbedOptions = {}): Promise<void> {
    this.dir = sh("mktemp", ["-d", "/tmp/netisle-egress-XXXXXX"]).trim();
    for (const [name, bytes] of Object.entries(options.files ?? {})) {
      writeFileSync(`${this.dir}/${name}`, bytes);
    }
    this.internet = new Netns(`${prefix}-net`);
    this.server = new Netns(`${prefix}-srv`);
    const srv = (...a: string[]) => this.server.exec(a[0], a.slice(1));
    const net = (...a: string[]) => this.internet.exec(a[0], a.slice(1));
    srv("ip", "link", "add", "sv-net", "type", "veth", "peer", "name", "net-sv");
    srv("ip", "link", "set", "net-sv", "netns", this.internet.name);
    srv("ip", "addr", "add", `${SERVER_OUT}/24`, "dev", "sv-net");
    srv("ip", "link", "set", "sv-net", "up");
    srv("ip", "route", "add", "192.168.77.0/24", "via", "198.18.0.2");
    for (const a of ["198.18.0.2/24", `${WEB}/24`, `${DNS}/24`, `${PRIVATE}/24`]) {
      net("ip", "addr", "add", a, "dev", "net-sv");
    }
    if (options.ipv6) {
      for (const ns of [this.server, this.internet]) {
        for (const conf of ["all", "default"]) {
          ns.exec("sysctl", ["-q", "-w", `net.ipv6.conf.${conf}.disable_ipv6=0`]);
        }
      }
      for (const [ns, dev, a] of [[srv, "sv-net", SERVER_OUT6], [net, "net-sv", WEB6]] as const) {
        ns("sysctl", "-q", "-w", `net.ipv6.conf.${dev}.disable_ipv6=0`);
        ns("ip", "-6", "addr", "add", `${a}/64`, "dev", dev, "nodad");
      }
    }
    net("ip", "link", "set", "net-sv", "up");

    // The internet's services.
    const http = this.internet.spawn("python3", [
      "tests/e2e/fixtures/egress_peer.py",
      "http",
      "0.0.0.0",
      String(HTTP_PORT),
      this.dir,
    ]);
    const echo = this.internet.spawn("python3", [
      "tests/e2e/fixtures/egress_peer.py",
      "echo",
      WEB,
      String(ECHO_PORT),
      String(UDP_PORT),
    ]);
    const dnsmasq = this.internet.spawn("dnsmasq", [
      "--no-daemon",
      "--no-resolv",
      "--no-hosts",
      "--bind-interfaces",
      `--listen-address=${DNS}`,
      "--port=53",
      "--user=root",
      "--pid-file=",
      `--host-record=www.egress.test,${WEB}`,
      `--host-record=v6.egress.test,2001:db8::10`,
      "--cname=alias.egress.test,www.egress.test",
      "--mx-host=egress.test,mail.egress.test,10",
      "--txt-record=txt.egress.test,hello from the internet",
      `--srv-host=_http._tcp.egress.test,www.egress.test,${HTTP_PORT},1,2`,
      "--address=/rebind.egress.test/127.0.0.1",
      "--address=/metadata.egress.test/169.254.169.254",
      `--host-record=private.egress.test,${PRIVATE}`,
    ]);
    this.procs.push(http, echo, dnsmasq);
    if (options.ipv6) {
      const http6 = this.internet.spawn("python3", [
        "tests/e2e/fixtures/egress_peer.py",
        "http",
        WEB6,
        String(HTTP_PORT),
        this.dir,
      ]);
      const echo6 = this.internet.spawn("python3", [
        "tests/e2e/fixtures/egress_peer.py",
        "echo",
        WEB6,
        String(ECHO_PORT),
        String(UDP_PORT),
      ]);
      this.procs.push(http6, echo6);
      await http6.waitFor(/READY/);
      await echo6.waitFor(/READY/);
    }
    await http.waitFor(/READY/);
    await echo.waitFor(/READY/);
    await this.internet.waitListening(53, true);

    // The server.
    const env = {
      PORT: "8787",
      HOSTNAME: "0.0.0.0",
      NETISLE_LOG: "0",
      NETISLE_EGRESS: "on",
      NETISLE_EGRESS_ALLOW: "198.18.0.0/15",
      NETISLE_DNS_UPSTREAM: `udp:${DNS}:53`,
      ...options.env,
    };
    if (options.runtime === "workerd") {
      mkdirSync(`${this.dir}/storage`);
      this.serverProc = this.server.spawn("node", ["scripts/build_workerd.mjs", "--serve"], {
        ...env,
        NETISLE_STORAGE_DIR: `${this.dir}/storage`,
      });
      this.procs.push(this.serverProc);
      await this.server.waitListening(8787, false, 60_000);
    } else {
      this.serverProc = options.runtime === "bun"
        ? this.server.spawn(BUN, ["run", "examples/bun/server.ts"], env)
        : this.server.spawn(
          DENO,
          ["run", "-A", ...(options.denoFlags ?? []), "examples/deno/server.ts"],
          env,
        );
      this.procs.push(this.serverProc);
      await this.serverProc.waitFor(/listening on http:\/\/0\.0\.0\.0:8787/, 60_000);
    }
    this.guest = await this.addGuest(
      `${prefix}-g`,
      [],
      options.bridge ?? true,
      options.cliRuntime,
      options.ipv6,
    );
  }

  /**
   * Adds a guest: its namespace, a veth to the server, the tunnel CLI with a
   * new session, the bridge and 10.0.2.15 behind it; with `ipv6` (bridge
   * only), gv1 also configures itself from the session's router
   * advertisement (SLAAC address and default route), waited for.
   */
  async addGuest(
    prefix: string,
    cliArgs: string[] = [],
    bridge = true,
    cliRuntime: "deno" | "bun" = "deno",
    ipv6 = false,
  ): Promise<EgressGuest> {
    const g = new EgressGuest(prefix);
    this.guests.push(g);
    const n = this.#nextGuestNet++;
    const inside = `192.168.${n}.2`;
    const outside = `192.168.${n}.1`;
    const sv = `sv-g${n}`;
    const srv = (...a: string[]) => this.server.exec(a[0], a.slice(1));
    const gx = (...a: string[]) => g.exec(a[0], a.slice(1));
    srv("ip", "link", "add", sv, "type", "veth", "peer", "name", "g-sv");
    srv("ip", "link", "set", "g-sv", "netns", g.ns.name);
    srv("ip", "addr", "add", `${outside}/24`, "dev", sv);
    srv("ip", "link", "set", sv, "up");
    gx("ip", "addr", "add", `${inside}/24`, "dev", "g-sv");
    gx("ip", "link", "set", "g-sv", "up");
    g.cli = g.ns.spawn(cliRuntime === "bun" ? BUN : DENO, [
      ...(cliRuntime === "bun" ? [] : ["run", "-A"]),
      "tunnel/cli.ts",
      "--server",
      `http://${outside}:8787`,
      "--create",
      "--tap",
      "tap0",
      ...cliArgs,
    ], {
      // The guest's default route is the session: Deno's update check would go out through
      // egress (and be counted).
      DENO_NO_UPDATE_CHECK: "1",
    });
    this.procs.push(g.cli);
    const [, id, token] = await g.cli.waitFor(/session (s_\S+) token (\S+)/, 60_000);
    g.session = { id, token };
    await g.cli.waitFor(/tunnel open/, 60_000);
    if (!bridge) {
      gx("ip", "addr", "add", "10.0.2.15/24", "dev", "tap0");
      gx("ip", "link", "set", "tap0", "up");
      gx("ip", "route", "add", "default", "via", "10.0.2.2", "dev", "tap0");
      gx("ping", "-c", "1", "-W", "5", "10.0.2.2");
      g.writeResolvConf();
      return g;
    }
    gx("ip", "link", "add", "br0", "type", "bridge");
    gx("ip", "link", "add", "gv0", "type", "veth", "peer", "name", "gv1");
    gx("ip", "link", "set", "tap0", "master", "br0");
    gx("ip", "link", "set", "gv0", "master", "br0");
    if (ipv6) {
      // Only gv1 speaks IPv6 (the bridge and its ports carry it): SLAAC from the session's RA.
      for (const d of ["br0", "gv0", "tap0"]) {
        gx("sysctl", "-q", "-w", `net.ipv6.conf.${d}.disable_ipv6=1`);
      }
      gx("sysctl", "-q", "-w", "net.ipv6.conf.gv1.disable_ipv6=0");
      gx("sysctl", "-q", "-w", "net.ipv6.conf.gv1.accept_ra=2");
      gx("sysctl", "-q", "-w", "net.ipv6.conf.gv1.autoconf=1");
    }
    for (const d of ["br0", "gv0", "tap0"]) gx("ip", "link", "set", d, "up");
    gx("ip", "addr", "add", "10.0.2.15/24", "dev", "gv1");
    gx("ip", "link", "set", "gv1", "up");
    gx("ip", "route", "add", "default", "via", "10.0.2.2", "dev", "gv1");
    gx("ping", "-c", "1", "-W", "5", "10.0.2.2");
    g.writeResolvConf();
    if (ipv6) {
      await waitFor(
        "a SLAAC address in fd00::/64 and a default route from the RA on gv1",
        () =>
          /inet6 fd00::[0-9a-f:]+\/64 .*dynamic/.test(
            gx("ip", "-6", "-o", "addr", "show", "dev", "gv1", "scope", "global"),
          ) && !/tentative/.test(gx("ip", "-6", "-o", "addr", "show", "dev", "gv1")) &&
          /default via fe80::/.test(gx("ip", "-6", "route", "show", "default")),
      );
    }
    return g;
  }

  /** Writes `mib` MiB of random bytes to the HTTP server's directory as `name`; returns its path. */
  makeFile(name: string, mib: number): string {
    const path = `${this.dir}/${name}`;
    sh("sh", ["-c", `head -c ${mib}M /dev/urandom > ${path}`], { timeoutMs: 120_000 });
    return path;
  }

  /**
   * Drops `percent` of the frames crossing `guest`'s bridge (its link to the
   * session), at random; the guest then sends one segment per packet
   * (`gso_max_segs 1`), so that a dropped packet is one lost segment.
   */
  lossy(guest: EgressGuest, percent: number): void {
    guest.exec("ip", ["link", "set", "gv1", "gso_max_segs", "1"]);
    const rules = `table bridge lossy {
      chain forward_loss { type filter hook forward priority 0; numgen random mod 100 < ${percent} counter drop; }
    }`;
    guest.ns.exec("nft", ["-f", "-"], { input: rules });
  }

  /** Removes the loss rule of `guest` (and lets it send large GSO packets again). */
  clean(guest: EgressGuest): void {
    guest.ns.exec("nft", ["delete", "table", "bridge", "lossy"]);
    guest.exec("ip", ["link", "set", "gv1", "gso_max_segs", "65535"]);
  }

  /** Frames the loss rule of `guest` dropped so far. */
  dropped(guest: EgressGuest): number {
    const out = guest.ns.exec("nft", ["list", "table", "bridge", "lossy"]);
    return Number(/counter packets (\d+)/.exec(out)?.[1] ?? 0);
  }

  /** A JSON API call from the server's namespace (127.0.0.1:8787). */
  // deno-lint-ignore no-explicit-any
  api(method: string, path: string, token?: string, body?: unknown): any {
    const args = ["-s", "-X", method];
    if (token) args.push("-H", `Authorization: Bearer ${token}`);
    if (body !== undefined) {
      args.push("-H", "content-type: application/json", "-d", JSON.stringify(body));
    }
    args.push(`http://127.0.0.1:8787${path}`);
    const out = this.server.exec("curl", args);
    return out.trim() === "" ? undefined : JSON.parse(out);
  }

  /** The session view of `guest`'s session. */
  // deno-lint-ignore no-explicit-any
  view(guest: EgressGuest = this.guest): any {
    return this.api("GET", `/v1/sessions/${guest.session.id}`, guest.session.token);
  }

  /** `GET /metrics` from the server. */
  metrics(): string {
    return this.server.exec("curl", ["-s", "http://127.0.0.1:8787/metrics"]);
  }

  /** Stops every process and deletes every namespace. */
  async stop(): Promise<void> {
    for (const p of this.procs.reverse()) await p.stop().catch(() => {});
    for (const g of this.guests) g.delete();
    this.server?.delete();
    this.internet?.delete();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
