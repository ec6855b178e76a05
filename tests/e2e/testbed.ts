/**
 * The e2e testbed shared by the TCP, UDP and HTTP API tests: a hub namespace
 * running a netisle server and the tunnel CLI on tap0, bridged to a veth whose
 * other end is the Linux peer at 10.0.2.15 in its own namespace.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { BUN, DENO, Netns, type Proc } from "./harness.ts";

/** One mebibyte. */
export const MiB = 1024 * 1024;

/** The sha256 of a file, hex. */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(path).on("data", (d) => h.update(d)).on("end", () => resolve(h.digest("hex")))
      .on("error", reject);
  });
}

/**
 * Two namespaces: the hub runs the fixture server and the tunnel CLI on tap0,
 * bridged (br0) to a veth whose other end is the Linux peer at 10.0.2.15 in
 * its own namespace. Loss is injected on the bridge, where a dropped frame is
 * a real loss for both TCPs (a drop in the peer's own output path would only
 * make its kernel retry the send locally).
 */
export class Testbed {
  hub!: Netns;
  peer!: Netns;
  server!: Proc;
  tunnel!: Proc;
  session = { id: "", token: "" };
  #procs: Proc[] = [];
  #nextPort = 5000;

  /**
   * Starts the namespaces, the server and the tunnel. `server: "fixture"` runs
   * tests/e2e/fixtures/stack_server.ts (test services on the stack);
   * `"plain"` runs the README's server and creates the session over HTTP.
   */
  async start(
    prefix: string,
    options: {
      faults?: string;
      server?: "fixture" | "plain";
      /** Extra flags of the tunnel CLI. */
      tunnelArgs?: string[];
      /** The runtime of the tunnel CLI (default Deno; Bun runs `bun tunnel/cli.ts`). */
      tunnelRuntime?: "deno" | "bun";
      /** Extra environment of the server. */
      serverEnv?: Record<string, string>;
      /**
       * Gives the peer fd00::15/64 as well (no duplicate address detection)
       * and IPv6 on every link: TCP and UDP over IPv6 to the stack's fd00::2.
       */
      ipv6?: boolean;
    } = {},
  ): Promise<void> {
    const { faults, server = "fixture" } = options;
    this.hub = new Netns(`${prefix}-hub`);
    this.peer = new Netns(`${prefix}-peer`);
    const script = server === "fixture"
      ? "tests/e2e/fixtures/stack_server.ts"
      : "examples/deno/server.ts";
    this.server = this.hub.spawn(DENO, ["run", "-A", script], {
      PORT: "8787",
      ...options.serverEnv,
    });
    this.#procs.push(this.server);
    if (server === "fixture") {
      const m = await this.server.waitFor(/SESSION (\S+) (\S+)/);
      this.session = { id: m[1], token: m[2] };
    } else {
      await this.server.waitFor(/listening on/);
      const created = JSON.parse(
        this.hub.exec("curl", ["-s", "-X", "POST", "http://127.0.0.1:8787/v1/sessions"]),
      );
      this.session = { id: created.id, token: created.token };
    }
    const args = [
      "run",
      "-A",
      "tunnel/cli.ts",
      "--server",
      "http://127.0.0.1:8787",
      "--session",
      this.session.id,
      "--token",
      this.session.token,
      "--tap",
      "tap0",
    ];
    if (faults) args.push("--faults", faults);
    if (options.tunnelArgs) args.push(...options.tunnelArgs);
    this.tunnel = options.tunnelRuntime === "bun"
      ? this.hub.spawn(BUN, args.slice(2))
      : this.hub.spawn(DENO, args);
    this.#procs.push(this.tunnel);
    await this.tunnel.waitFor(/tunnel open/);
    const h = (...a: string[]) => this.hub.exec(a[0], a.slice(1));
    if (options.ipv6) {
      for (const ns of [this.hub, this.peer]) {
        for (const conf of ["all", "default"]) {
          ns.exec("sysctl", ["-q", "-w", `net.ipv6.conf.${conf}.disable_ipv6=0`]);
        }
      }
    }
    h("ip", "link", "add", "br0", "type", "bridge");
    h("ip", "link", "add", "veth-hub", "type", "veth", "peer", "name", "veth-peer");
    h("ip", "link", "set", "veth-peer", "netns", this.peer.name);
    h("ip", "link", "set", "tap0", "master", "br0");
    h("ip", "link", "set", "veth-hub", "master", "br0");
    h("ip", "link", "set", "br0", "up");
    h("ip", "link", "set", "veth-hub", "up");
    const p = (...a: string[]) => this.peer.exec(a[0], a.slice(1));
    // One segment per packet, so that a dropped packet is one lost segment.
    p("ip", "link", "set", "veth-peer", "gso_max_segs", "1");
    p("ip", "addr", "add", "10.0.2.15/24", "dev", "veth-peer");
    if (options.ipv6) {
      // Only fd00::15: no SLAAC address from the session's router advertisements, so that
      // the peer's source address (and what the stack sees) is always the same.
      p("sysctl", "-q", "-w", "net.ipv6.conf.veth-peer.accept_ra=0");
      p("sysctl", "-q", "-w", "net.ipv6.conf.veth-peer.autoconf=0");
      p("ip", "-6", "addr", "add", "fd00::15/64", "dev", "veth-peer", "nodad");
    }
    p("ip", "link", "set", "veth-peer", "up");
    p("ping", "-c", "1", "-W", "5", "10.0.2.2");
    if (options.ipv6) p("ping", "-6", "-c", "1", "-W", "5", "fd00::2");
  }

  /** Drops `percent` of the frames crossing the bridge to and from the TAP, at random. */
  lossy(percent: number): void {
    const rules = `table bridge lossy {
      chain forward_loss { type filter hook forward priority 0; numgen random mod 100 < ${percent} counter drop; }
    }`;
    this.hub.exec("nft", ["-f", "-"], { input: rules });
  }

  /** Frames the bridge dropped so far. */
  dropped(): number {
    const out = this.hub.exec("nft", ["list", "table", "bridge", "lossy"]);
    return Number(/counter packets (\d+)/.exec(out)?.[1] ?? 0);
  }

  /**
   * Linux sends `file` to the stack's sink (port 9000, at `host`: 10.0.2.2
   * or, over IPv6, fd00::2), which answers with its count and sha256.
   */
  inbound(
    file: string,
    timeoutMs: number,
    host = "10.0.2.2",
  ): { bytes: number; sha: string; ms: number; retransmits: number } {
    const before = this.#kernelRetransmits();
    const t0 = performance.now();
    const to = host.includes(":") ? `TCP6:[${host}]:9000` : `TCP:${host}:9000`;
    const out = this.peer.exec("sh", ["-c", `socat -t 60 -T 120 - ${to} < ${file}`], {
      timeoutMs,
    });
    const ms = performance.now() - t0;
    const m = /^(\d+) ([0-9a-f]{64})/.exec(out.trim());
    assert.ok(m, `sink reply: ${JSON.stringify(out)}`);
    return { bytes: Number(m[1]), sha: m[2], ms, retransmits: this.#kernelRetransmits() - before };
  }

  /** Segments the namespace's kernel retransmitted so far (the Linux sender's count, both families). */
  #kernelRetransmits(): number {
    const out = this.peer.exec("nstat", ["-az", "TcpRetransSegs"]);
    return Number(/TcpRetransSegs\s+(\d+)/.exec(out)?.[1] ?? 0);
  }

  /**
   * The stack connects to a Linux receiver (tests/e2e/fixtures/tcp_receiver.py) at
   * `host` (10.0.2.15, or fd00::15 over IPv6) and sends `bytes`; returns both hashes
   * and what the kernel negotiated.
   */
  async outbound(
    bytes: number,
    timeoutMs: number,
    check?: (port: number) => void,
    host = "10.0.2.15",
  ) {
    const port = this.#nextPort++;
    const receiver = this.peer.spawn("python3", [
      "tests/e2e/fixtures/tcp_receiver.py",
      String(port),
      host,
    ]);
    this.#procs.push(receiver);
    await receiver.waitFor(/READY/);
    const mark = this.server.mark();
    const t0 = performance.now();
    this.server.send(`send ${host} ${port} ${bytes}`);
    const negotiated = JSON.parse((await receiver.waitFor(/NEGOTIATED (.*)/))[1]);
    check?.(port);
    const m = await this.server.waitFor(/SENT (\d+) ([0-9a-f]{64}) \d+ (.*)/, timeoutMs, mark);
    const ms = performance.now() - t0;
    const got = await receiver.waitFor(/RECEIVED (\d+) ([0-9a-f]{64})/, timeoutMs);
    return {
      sentSha: m[2],
      stats: m[3],
      receivedBytes: Number(got[1]),
      receivedSha: got[2],
      ms,
      negotiated,
    };
  }

  node(script: string, timeoutMs = 60_000): string {
    return this.peer.exec("node", ["-e", script], { timeoutMs });
  }

  async stop(): Promise<void> {
    for (const p of this.#procs.reverse()) await p.stop();
    this.peer?.delete();
    this.hub?.delete();
  }
}

/** A transfer's size, duration and rate, for the log. */
export function rate(bytes: number, ms: number): string {
  return `${(bytes / MiB).toFixed(0)} MiB in ${(ms / 1000).toFixed(1)} s = ${
    (bytes * 8 / ms / 1000).toFixed(0)
  } Mbit/s`;
}
