// A real Wisp client (@mercuryworkshop/wisp-js from npm, on Node) driven by
// tests/wisp_client_test.ts against tests/_sdk_server.ts: a session whose
// tunnelled side (10.0.2.15) runs TCP echo on 7, chargen on 19, UDP echo on 7.
//
//   node tests/_wisp_client.mjs SERVER SESSION TOKEN SCENARIO VERSION
//
// Prints one `WISP <name> {json}` line per result; `flow` also waits for a
// `resume` line on standard input.

import { createHash, randomFillSync } from "node:crypto";
import { createInterface } from "node:readline";
import { client, extensions } from "@mercuryworkshop/wisp-js/client";

const [server, sid, token, scenario, versionArg] = process.argv.slice(2);
const version = Number(versionArg ?? 2);
const base = server.replace(/^http/, "ws") + `/v1/sessions/${sid}/wisp/`;
const enc = (s) => new TextEncoder().encode(s);
const report = (name, value) => console.log(`WISP ${name} ${JSON.stringify(value)}`);

function connect(url = base + token + "/", options = {}) {
  return new Promise((resolve, reject) => {
    const conn = new client.ClientConnection(url, { wisp_version: version, ...options });
    conn.onopen = () => resolve(conn);
    conn.onclose = () => reject(new Error("the Wisp connection closed before it opened"));
    conn.onerror = () => reject(new Error("the Wisp connection failed"));
  });
}

/** Opens a stream and resolves with its close reason. */
function closeReason(conn, host, port, type = "tcp") {
  return new Promise((resolve) => {
    const s = conn.create_stream(host, port, type);
    s.onclose = (reason) => resolve(reason);
  });
}

/** Sends `total` random bytes through an echo stream; resolves with both digests. */
function echo(conn, total, chunk = 64 * 1024) {
  return new Promise((resolve, reject) => {
    const sent = createHash("sha256");
    const got = createHash("sha256");
    let received = 0;
    const start = performance.now();
    const s = conn.create_stream("10.0.2.15", 7);
    s.onmessage = (data) => {
      got.update(data);
      received += data.length;
      if (received === total) {
        s.close(0x02);
        resolve({
          bytes: total,
          sent: sent.digest("hex"),
          got: got.digest("hex"),
          ms: Math.round(performance.now() - start),
          version: conn.wisp_version,
        });
      }
    };
    s.onclose = (reason) => reject(new Error(`echo stream closed with 0x${reason.toString(16)}`));
    for (let off = 0; off < total; off += chunk) {
      const b = new Uint8Array(Math.min(chunk, total - off));
      randomFillSync(b);
      sent.update(b);
      s.send(b);
    }
  });
}

async function main() {
  switch (scenario) {
    case "echo": {
      const conn = await connect();
      report("echo", await echo(conn, 16 * 1024 * 1024));
      conn.close();
      break;
    }
    case "udp": {
      const conn = await connect();
      const s = conn.create_stream("10.0.2.15", 7, "udp");
      const replies = [];
      for (let i = 0; i < 20; i++) {
        const text = `datagram ${i}`;
        // UDP may lose a datagram (the first one waits for ARP): send again until the echo
        // comes, at most 25 times, 200 ms apart.
        let resend;
        const reply = new Promise((resolve, reject) => {
          s.onmessage = (d) => {
            const got = new TextDecoder().decode(d);
            if (got === text) resolve(got); // a late echo of an earlier send is not this one's
          };
          let tries = 0;
          const again = () => {
            if (++tries > 25) return reject(new Error(`no echo of "${text}" after 25 sends`));
            s.send(enc(text));
            resend = setTimeout(again, 200);
          };
          again();
        });
        try {
          replies.push(await reply);
        } finally {
          clearTimeout(resend);
        }
      }
      const dns = conn.create_stream("10.0.2.2", 53, "udp");
      // A query for netisle.internal, type A: the session's own DNS responder answers.
      const q = new Uint8Array([
        0x12,
        0x34,
        1,
        0,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        0,
        7,
        ...enc("netisle"),
        8,
        ...enc("internal"),
        0,
        0,
        1,
        0,
        1,
      ]);
      const answer = await new Promise((resolve) => {
        dns.onmessage = (d) => resolve([...d]);
        dns.send(q);
      });
      report("udp", { replies, dnsAnswer: answer.slice(-4), udp: conn.udp_enabled });
      conn.close();
      break;
    }
    case "reasons": {
      const conn = await connect();
      const r = {
        outside: await closeReason(conn, "8.8.8.8", 80),
        outsideUdp: await closeReason(conn, "1.1.1.1", 53, "udp"),
        name: await closeReason(conn, "example.com", 443),
        loopback: await closeReason(conn, "127.0.0.1", 8787),
        refused: await closeReason(conn, "10.0.2.15", 4444),
        broadcast: await closeReason(conn, "10.0.2.255", 7),
        port0: await closeReason(conn, "10.0.2.15", 0),
      };
      report("reasons", Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v])));
      conn.close();
      break;
    }
    case "burst": {
      const conn = await connect();
      const n = 10_000;
      const reasons = {};
      const streams = [];
      let closed = 0;
      const start = performance.now();
      const allClosedOrOpen = new Promise((resolve) => {
        for (let i = 0; i < n; i++) {
          const s = conn.create_stream("10.0.2.15", 7);
          streams.push(s);
          s.onclose = (reason) => {
            reasons[reason] = (reasons[reason] ?? 0) + 1;
            s.closedByServer = true;
            if (++closed >= n - 128) resolve();
          };
        }
      });
      await allClosedOrOpen;
      const open = streams.filter((s) => !s.closedByServer);
      report("burst", {
        sent: n,
        reasons,
        open: open.length,
        ms: Math.round(performance.now() - start),
      });
      // The streams that stayed open work: an echo on the last one.
      const last = open[open.length - 1];
      const back = await new Promise((resolve) => {
        last.onmessage = (d) => resolve(new TextDecoder().decode(d));
        last.send(enc("still here"));
      });
      for (const s of open) s.close(0x02);
      report("burst-echo", { back });
      conn.close();
      // A new connection works as before.
      const again = await connect();
      report("after-burst", await echo(again, 1024 * 1024));
      again.close();
      break;
    }
    case "flow": {
      const conn = await connect();
      let received = 0;
      let paused = false;
      let target = 2 * 1024 * 1024;
      let onTarget;
      const s = conn.create_stream("10.0.2.15", 19);
      s.onmessage = (d) => {
        received += d.length;
        if (received >= target && onTarget) {
          const f = onTarget;
          onTarget = undefined;
          f();
        }
      };
      await new Promise((resolve) => onTarget = resolve);
      // Stop reading the WebSocket's TCP connection, as a client that stops reading does.
      conn.ws._socket.pause();
      paused = true;
      report("paused", { received });
      const lines = createInterface({ input: process.stdin });
      for await (const line of lines) if (line.trim() === "resume") break;
      lines.close();
      target = received + 4 * 1024 * 1024;
      const resumed = new Promise((resolve) => onTarget = resolve);
      conn.ws._socket.resume();
      paused = false;
      await resumed;
      report("resumed", { received, paused });
      s.close(0x02);
      conn.close();
      break;
    }
    case "password": {
      // No token in the URL: v2's password extension carries it.
      const good = await connect(base, {
        wisp_extensions: [
          new extensions.UDPExtension({ client_config: {} }),
          new extensions.PasswordAuthExtension({
            client_config: { username: "netisle", password: token },
          }),
        ],
      });
      report("password", await echo(good, 256 * 1024));
      good.close();
      let badOpened = false;
      try {
        const bad = await connect(base, {
          wisp_extensions: [
            new extensions.PasswordAuthExtension({
              client_config: { username: "x", password: "wrong" },
            }),
          ],
        });
        badOpened = true;
        bad.close();
      } catch {
        // refused, as it must be
      }
      report("bad-password", { opened: badOpened });
      break;
    }
    default:
      throw new Error(`unknown scenario ${scenario}`);
  }
}

main().then(() => process.exit(0), (err) => {
  console.log(`WISP error ${JSON.stringify(String(err?.stack ?? err))}`);
  process.exit(1);
});
