/**
 * End to end, as root: `netisle connect` and `netisle forward` with the
 * programs people use them with. The testbed (tests/e2e/testbed.ts): a hub
 * namespace runs the server and the tunnel CLI on tap0, bridged to the
 * tunnelled machine, a peer namespace at 10.0.2.15. The hub is "the user's
 * side": ssh, scp, curl and the forwarder run there.
 *
 * - OpenSSH's sshd (Debian's openssh-server) in the peer namespace; ssh with
 *   `ProxyCommand='netisle connect %h:%p'` runs a command there; scp copies
 *   64 MiB each way byte-exact (sha256); a wrong port fails with one clear
 *   line and a non-zero exit.
 * - `netisle forward`, one process: curl through `-L` fetches 64 MiB from an
 *   HTTP server on the tunnelled side byte-exact; the tunnelled side's curl
 *   through `-R` reaches an HTTP server on the user's side; DNS queries go to
 *   a dnsmasq through `-U` (user → tunnelled side) and `-R …/udp` (the other
 *   way); after its WebSockets are killed (`ss -K`), the connection in flight
 *   fails (not a clean end) and new connections of every kind work.
 *
 * Namespaces are named `nisle-nicli-…` and deleted, with every process, also
 * on failure.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { commandExists, DENO, e2eSkipReason, Proc, ROOT } from "./harness.ts";
import { MiB, rate, sha256File, Testbed } from "./testbed.ts";

function skipReason(): string | undefined {
  const reason = e2eSkipReason();
  if (reason) return reason;
  const need = ["ssh", "scp", "ssh-keygen", "/usr/sbin/sshd", "/usr/sbin/dnsmasq", "curl", "ss"];
  const missing = need.filter((c) => !commandExists(c));
  if (missing.length === 0) return undefined;
  const why = `needs ${missing.join(", ")} (apt-get install openssh-server openssh-client dnsmasq)`;
  if (process.env.CI === "true") {
    throw new Error(`end-to-end tests must run in CI but cannot: ${why}`);
  }
  console.warn(`\n*** SKIPPING netisle CLI end-to-end tests: ${why} ***\n`);
  return why;
}

const skip = skipReason();
const BIN = `${ROOT}/tunnel/netisle.mjs`;

/** Runs a command to completion without blocking the event loop; resolves with its outcome. */
function run(
  cmd: string,
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number; input?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = execFile(cmd, args, {
      cwd: ROOT,
      env: { ...process.env, ...options.env },
      timeout: options.timeoutMs ?? 120_000,
      maxBuffer: 16 * MiB,
    }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr), ms: performance.now() - t0 });
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

/** A DNS A query for `name` over UDP to `server:port` (python3, an independent client). */
const DIG = `
import socket, struct, sys
name, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(q, (host, port))
r, _ = s.recvfrom(4096)
assert r[:2] == q[:2], "answer to another query"
ancount = struct.unpack(">H", r[6:8])[0]
assert ancount >= 1, "no answer record"
print(".".join(str(b) for b in r[-4:]))
`;

describe(
  "netisle connect and forward with real clients (ssh, scp, curl, dnsmasq)",
  { skip },
  () => {
    const bed = new Testbed();
    const procs: Proc[] = [];
    let dir = "";
    let env: Record<string, string> = {};
    let ssh: (args: string[], port?: number) => string[];

    before(async () => {
      dir = mkdtempSync(`${tmpdir()}/netisle-cli-e2e-`);
      chmodSync(dir, 0o755);
      await bed.start("nicli", { server: "plain" });
      env = {
        NETISLE_SERVER: "http://127.0.0.1:8787",
        NETISLE_SESSION: bed.session.id,
        NETISLE_TOKEN: bed.session.token,
      };
      // sshd in the tunnelled machine's namespace, with keys of its own.
      mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
      await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", `${dir}/host_key`]);
      await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", `${dir}/id`]);
      await run("cp", [`${dir}/id.pub`, `${dir}/authorized_keys`]);
      writeFileSync(
        `${dir}/sshd_config`,
        [
          "Port 22",
          "ListenAddress 10.0.2.15",
          `HostKey ${dir}/host_key`,
          `PidFile ${dir}/sshd.pid`,
          `AuthorizedKeysFile ${dir}/authorized_keys`,
          "PermitRootLogin prohibit-password",
          "PasswordAuthentication no",
          "KbdInteractiveAuthentication no",
          "UsePAM no",
          "StrictModes no",
          "Subsystem sftp /usr/lib/openssh/sftp-server",
          "",
        ].join("\n"),
      );
      const sshd = bed.peer.spawn("/usr/sbin/sshd", ["-D", "-e", "-f", `${dir}/sshd_config`]);
      procs.push(sshd);
      await sshd.waitFor(/Server listening on 10\.0\.2\.15 port 22/);
      ssh = (args, port = 22) => [
        "-F",
        "/dev/null",
        "-i",
        `${dir}/id`,
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "BatchMode=yes",
        "-o",
        "LogLevel=ERROR",
        "-o",
        `ProxyCommand=${BIN} connect %h:%p`,
        ...(port !== 22 ? ["-o", `Port=${port}`] : []),
        ...args,
      ];
    });

    after(async () => {
      for (const p of procs.reverse()) await p.stop();
      await bed.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    /** A command in the hub (the user's side), without blocking the event loop. */
    const hub = (cmd: string, args: string[], o: { input?: string; timeoutMs?: number } = {}) =>
      run("ip", ["netns", "exec", bed.hub.name, cmd, ...args], { env, ...o });
    /** A command in the tunnelled machine's namespace. */
    const peer = (cmd: string, args: string[], o: { timeoutMs?: number } = {}) =>
      run("ip", ["netns", "exec", bed.peer.name, cmd, ...args], o);

    it("ssh runs a command through ProxyCommand='netisle connect %h:%p'", async () => {
      const r = await hub(
        "ssh",
        ssh(["root@10.0.2.15", "echo hello from sshd; cat /proc/sys/kernel/ostype"]),
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "hello from sshd\nLinux\n");
      // The same with a session file instead of the environment.
      await hub(DENO, ["run", "-A", "tunnel/cli.ts", "sessions", "show"]).then((s) =>
        assert.match(s.stdout, /tunnel\s+attached/)
      );
      writeFileSync(
        `${dir}/session.json`,
        JSON.stringify({
          server: env.NETISLE_SERVER,
          id: env.NETISLE_SESSION,
          token: env.NETISLE_TOKEN,
        }),
      );
      const viaFile = await run("ip", [
        "netns",
        "exec",
        bed.hub.name,
        "ssh",
        ...ssh(["root@10.0.2.15", "echo via the session file"]).map((a) =>
          a.startsWith("ProxyCommand=") ? `${a} --session-file ${dir}/session.json` : a
        ),
      ]);
      assert.equal(viaFile.code, 0, viaFile.stderr);
      assert.equal(viaFile.stdout, "via the session file\n");
    });

    it("scp copies 64 MiB each way byte-exact", async () => {
      await run("sh", ["-c", `head -c ${64 * MiB} /dev/urandom > ${dir}/up.bin`]);
      await run("sh", ["-c", `head -c ${64 * MiB} /dev/urandom > ${dir}/remote.bin`]);
      const up = await hub("scp", ssh([`${dir}/up.bin`, `root@10.0.2.15:${dir}/up.copy`]), {
        timeoutMs: 300_000,
      });
      assert.equal(up.code, 0, up.stderr);
      assert.equal(await sha256File(`${dir}/up.copy`), await sha256File(`${dir}/up.bin`));
      const down = await hub("scp", ssh([`root@10.0.2.15:${dir}/remote.bin`, `${dir}/down.copy`]), {
        timeoutMs: 300_000,
      });
      assert.equal(down.code, 0, down.stderr);
      assert.equal(await sha256File(`${dir}/down.copy`), await sha256File(`${dir}/remote.bin`));
      console.log(`scp up: ${rate(64 * MiB, up.ms)}; scp down: ${rate(64 * MiB, down.ms)}`);
    });

    it("a wrong port: one clear line on stderr and a non-zero exit", async () => {
      const direct = await hub(BIN, ["connect", "10.0.2.15:2222"], { input: "" });
      assert.equal(direct.code, 1);
      assert.equal(
        direct.stderr,
        "netisle connect: 10.0.2.15:2222: connection refused (ECONNREFUSED)\n",
      );
      const viaSsh = await hub("ssh", ssh(["root@10.0.2.15", "true"], 2222));
      assert.notEqual(viaSsh.code, 0);
      assert.match(viaSsh.stderr, /netisle connect: 10\.0\.2\.15:2222: connection refused/);
    });

    it("forward: -L 64 MiB byte-exact, -R both ways, DNS over -U and -R/udp; new connections after its WebSockets die", async () => {
      // The tunnelled side: an HTTP server with 64 MiB and a dnsmasq.
      mkdirSync(`${dir}/www-peer`);
      await run("sh", ["-c", `head -c ${64 * MiB} /dev/urandom > ${dir}/www-peer/big.bin`]);
      procs.push(
        bed.peer.spawn("python3", [
          "-m",
          "http.server",
          "8080",
          "--bind",
          "10.0.2.15",
          "-d",
          `${dir}/www-peer`,
        ]),
      );
      const dnsmasq = (ns: typeof bed.peer, address: string, port: number, answer: string) =>
        ns.spawn("/usr/sbin/dnsmasq", [
          "--no-daemon",
          "--conf-file=/dev/null",
          "--no-resolv",
          "--no-hosts",
          "--bind-interfaces",
          `--listen-address=${address}`,
          `--port=${port}`,
          "--user=root",
          `--pid-file=${dir}/dnsmasq-${port}.pid`,
          `--address=/netisle.test/${answer}`,
          "--log-facility=-",
        ]);
      const peerDns = dnsmasq(bed.peer, "10.0.2.15", 53, "10.9.8.7");
      procs.push(peerDns);
      // The user's side: an HTTP server and a dnsmasq of its own.
      mkdirSync(`${dir}/www-user`);
      writeFileSync(`${dir}/www-user/hello.txt`, "hello from the user's side\n");
      procs.push(
        bed.hub.spawn("python3", [
          "-m",
          "http.server",
          "18000",
          "--bind",
          "127.0.0.1",
          "-d",
          `${dir}/www-user`,
        ]),
      );
      const userDns = dnsmasq(bed.hub, "127.0.0.1", 15354, "10.1.2.3");
      procs.push(userDns);
      await peerDns.waitFor(/started, version/);
      await userDns.waitFor(/started, version/);

      const fwd = bed.hub.spawn(BIN, [
        "forward",
        "-L",
        "18080:10.0.2.15:8080",
        "-R",
        "8000:127.0.0.1:18000",
        "-U",
        "15353:10.0.2.15:53",
        "-R",
        "5353:127.0.0.1:15354/udp",
      ], env);
      procs.push(fwd);
      await fwd.waitFor(/forwarding -R 10\.0\.2\.2:5353 -> 127\.0\.0\.1:15354\/udp/);
      // The peer's HTTP server is up once it answers through the forward.
      const ready = Date.now() + 20_000;
      while (
        (await hub("curl", ["-sf", "-o", "/dev/null", "http://127.0.0.1:18080/"])).code !== 0
      ) {
        assert.ok(Date.now() < ready, `the forward never reached the HTTP server:\n${fwd.output}`);
        await new Promise((r) => setTimeout(r, 200));
      }

      const big = await hub("curl", [
        "-sS",
        "-o",
        `${dir}/big.copy`,
        "http://127.0.0.1:18080/big.bin",
      ], {
        timeoutMs: 300_000,
      });
      assert.equal(big.code, 0, big.stderr);
      assert.equal(
        await sha256File(`${dir}/big.copy`),
        await sha256File(`${dir}/www-peer/big.bin`),
      );
      console.log(`curl through -L: ${rate(64 * MiB, big.ms)}`);

      const back = await peer("curl", ["-sS", "http://10.0.2.2:8000/hello.txt"]);
      assert.equal(back.code, 0, back.stderr);
      assert.equal(back.stdout, "hello from the user's side\n");

      const dig = (ns: "hub" | "peer", host: string, port: number) =>
        (ns === "hub" ? hub : peer)("python3", [
          "-c",
          DIG,
          "host.netisle.test",
          host,
          String(port),
        ]);
      const q1 = await dig("hub", "127.0.0.1", 15353);
      assert.equal(q1.stdout.trim(), "10.9.8.7", `-U: ${q1.stderr}`);
      const q2 = await dig("peer", "10.0.2.2", 5353);
      assert.equal(q2.stdout.trim(), "10.1.2.3", `-R/udp: ${q2.stderr}`);

      // A slow download in flight, then every WebSocket and long-poll of the forwarder dies.
      const slow = hub("curl", [
        "-sS",
        "--limit-rate",
        "2M",
        "-o",
        `${dir}/slow.part`,
        "http://127.0.0.1:18080/big.bin",
      ], { timeoutMs: 120_000 });
      const flowing = Date.now() + 20_000;
      while (!existsSync(`${dir}/slow.part`) || statSync(`${dir}/slow.part`).size < 2 * MiB) {
        assert.ok(Date.now() < flowing, "the slow download started");
        await new Promise((r) => setTimeout(r, 100));
      }
      const waitConn = Date.now() + 10_000;
      let killed = 0;
      while (killed < 2 && Date.now() < waitConn) {
        const list = await hub("ss", ["-tnpH", "state", "established", "dport", "= :8787"]);
        const ports = list.stdout.split("\n")
          // Every client of the server but the tunnel CLI is the forwarder (its bin runs Deno).
          .filter((l) => l.includes("users:((") && !l.includes(`pid=${bed.tunnel.child.pid},`))
          .map((l) => /127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:8787/.exec(l)?.[1])
          .filter((p): p is string => p !== undefined);
        for (const p of ports) {
          await hub("ss", ["-K", "state", "established", "sport", `= :${p}`, "dport", "= :8787"]);
          killed++;
        }
        if (killed < 2) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(killed >= 2, `killed ${killed} connection(s) of the forwarder to the server`);
      const cut = await slow;
      assert.notEqual(cut.code, 0, "the download in flight failed instead of ending cleanly");
      await fwd.waitFor(/ECONNABORTED|ECONNRESET/);

      // New connections of every kind work (the -R listener's long-poll retries).
      const again = await hub("curl", [
        "-sS",
        "-o",
        `${dir}/again.copy`,
        "http://127.0.0.1:18080/big.bin",
      ], {
        timeoutMs: 300_000,
      });
      assert.equal(again.code, 0, again.stderr);
      assert.equal(
        await sha256File(`${dir}/again.copy`),
        await sha256File(`${dir}/www-peer/big.bin`),
      );
      const deadline = Date.now() + 30_000;
      let back2 = await peer("curl", ["-sS", "-m", "5", "http://10.0.2.2:8000/hello.txt"]);
      while (back2.code !== 0 && Date.now() < deadline) {
        back2 = await peer("curl", ["-sS", "-m", "5", "http://10.0.2.2:8000/hello.txt"]);
      }
      assert.equal(back2.stdout, "hello from the user's side\n", back2.stderr);
      assert.equal((await dig("hub", "127.0.0.1", 15353)).stdout.trim(), "10.9.8.7");
      let q4 = await dig("peer", "10.0.2.2", 5353);
      while (q4.code !== 0 && Date.now() < deadline) q4 = await dig("peer", "10.0.2.2", 5353);
      assert.equal(q4.stdout.trim(), "10.1.2.3", q4.stderr);
      const lines = fwd.output.split("\n").filter((l) => / after [\d.]+ s, /.test(l));
      assert.ok(lines.length >= 5, `one log line per connection:\n${fwd.output}`);
      console.log(fwd.output.split("\n").slice(-8).join("\n"));
    });
  },
);
