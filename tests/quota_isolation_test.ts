/**
 * Quota isolation on a real server (Deno.serve on loopback): one session
 * opens sockets until 429 EMFILE and buffers data its peer never reads until
 * 429 ENOBUFS, while another session's TCP transfer through the HTTP API
 * keeps going. Prints the victim's throughput before and during the abuse
 * (figures only; no timing is asserted beyond "bytes kept moving").
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TcpServer, type TcpSocket } from "../src/socket/mod.ts";
import { heapMiB, openSession, startServer, type TestSession } from "./_abuse_server.ts";

const MAX_SOCKETS = 32;
const MAX_BUFFERED = 2 * 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Creates a TCP socket in `s` connected to the peer's port `port`; returns its id. */
async function connectedSocket(s: TestSession, port: number): Promise<string> {
  const res = await s.api("POST", "/sockets", { json: { protocol: "tcp" } });
  assert.equal(res.status, 201);
  const id = (await res.json()).id;
  const c = await s.api("POST", `/sockets/${id}/connect`, {
    json: { address: "10.0.2.15", port, timeoutMs: 5000 },
  });
  assert.equal(c.status, 200, `connect: ${await c.text()}`);
  return id;
}

/** Reads everything a connection delivers, counting bytes. */
async function drain(sock: TcpSocket, count: { bytes: number }): Promise<void> {
  for await (const chunk of sock.readable) count.bytes += chunk.length;
}

describe("quota isolation between sessions", () => {
  it("a session hitting EMFILE and ENOBUFS gets 429s while another session's transfer goes on", async () => {
    const server = await startServer({
      sessionLimits: { maxSockets: MAX_SOCKETS, maxBufferedBytes: MAX_BUFFERED },
    });
    const victim = await openSession(server);
    const abuser = await openSession(server);
    const victimPeer = TcpServer.listen(victim.peer, { port: 9000, backlog: 8 });
    // The abuser's peer accepts but never reads: everything sent stays buffered.
    const abuserPeer = TcpServer.listen(abuser.peer, { port: 9000, backlog: 64 });
    const received = { bytes: 0 };
    const drains: Promise<void>[] = [];
    try {
      const vid = await connectedSocket(victim, 9000);
      const accepted = await victimPeer.accept({ timeoutMs: 5000 });
      drains.push(drain(accepted, received));

      const chunk = new Uint8Array(64 * 1024).fill(7);
      let sent = 0;
      let failures = 0;
      const transfer = async (ms: number) => {
        const end = performance.now() + ms;
        const t0 = performance.now();
        let bytes = 0;
        while (performance.now() < end) {
          const r = await victim.api("POST", `/sockets/${vid}/send`, { body: chunk });
          if (r.status === 200) bytes += (await r.json()).bytes;
          else {
            failures++;
            console.log(`victim send failed: ${r.status} ${await r.text()}`);
          }
        }
        sent += bytes;
        return (bytes / ((performance.now() - t0) / 1000)) / 2 ** 20;
      };

      const before = await transfer(1500);
      console.log(`victim throughput before the abuse: ${before.toFixed(1)} MiB/s`);

      // The abuse, concurrently with the victim's transfer.
      const abuse = (async () => {
        const statuses: Record<string, number> = {};
        const note = (k: string) => (statuses[k] = (statuses[k] ?? 0) + 1);
        // 1. Sockets until EMFILE.
        let open = 0;
        for (let i = 0; i < MAX_SOCKETS + 10; i++) {
          const r = await abuser.api("POST", "/sockets", { json: { protocol: "tcp" } });
          const body = await r.json();
          note(`create ${r.status}${r.status === 201 ? "" : " " + body.code}`);
          if (r.status === 201) open++;
          else {
            assert.equal(r.status, 429);
            assert.equal(body.code, "EMFILE");
          }
        }
        assert.equal(open, MAX_SOCKETS, "exactly the quota of sockets opened");
        const list = (await (await abuser.api("GET", "/sockets")).json()).sockets as Array<
          { id: string }
        >;
        // Free a few for the buffering part.
        for (const s of list.slice(0, 8)) {
          assert.equal((await abuser.api("DELETE", `/sockets/${s.id}`)).status, 204);
        }
        // 2. Buffers until ENOBUFS: connections to a peer that never reads.
        const ids: string[] = [];
        for (let i = 0; i < 8; i++) ids.push(await connectedSocket(abuser, 9000));
        const big = new Uint8Array(256 * 1024).fill(1);
        let buffered = 0;
        let enobufs = 0;
        for (let round = 0; round < 40 && enobufs < 8; round++) {
          for (const id of ids) {
            const r = await abuser.api("POST", `/sockets/${id}/send`, {
              body: big,
              query: "timeoutMs=200",
            });
            const body = r.status === 200 ? await r.json() : await r.json().catch(() => ({}));
            note(`send ${r.status}${body.code ? " " + body.code : ""}`);
            if (r.status === 200) buffered += body.bytes;
            if (r.status === 429) {
              assert.equal(body.code, "ENOBUFS");
              enobufs++;
            }
          }
        }
        const view = abuser.session.sockets.bufferedBytes();
        return { statuses, buffered, enobufs, view };
      })();

      const during = await transfer(3000);
      const result = await abuse;
      console.log(`victim throughput during the abuse: ${during.toFixed(1)} MiB/s`);
      console.log(
        `abuser: ${JSON.stringify(result.statuses)}; accepted ${result.buffered} bytes, ` +
          `${result.view} buffered now (quota ${MAX_BUFFERED}), heap ${heapMiB()} MiB`,
      );
      assert.ok(result.enobufs > 0, "the abuser hit ENOBUFS");
      assert.ok(result.view <= MAX_BUFFERED, "the abuser's buffers stay within its quota");
      assert.equal(failures, 0, "every victim send succeeded");
      assert.ok(during > 0, "the victim's bytes kept moving");

      // The victim still creates sockets, and every byte it sent arrives.
      const extra = await victim.api("POST", "/sockets", { json: { protocol: "udp" } });
      assert.equal(extra.status, 201, "the victim's socket quota is its own");
      for (let t = 0; t < 200 && received.bytes < sent; t++) await sleep(25);
      console.log(`victim: sent ${sent} bytes, the peer received ${received.bytes}`);
      assert.equal(received.bytes, sent);

      // The abuser recovers once it lets go: its quota frees with its sockets.
      const left = (await (await abuser.api("GET", "/sockets")).json()).sockets as Array<
        { id: string }
      >;
      for (const s of left) {
        assert.equal(
          (await abuser.api("DELETE", `/sockets/${s.id}`, { query: "abort=true" })).status,
          204,
        );
      }
      assert.equal(abuser.session.sockets.bufferedBytes(), 0, "nothing stays buffered");
      const again = await abuser.api("POST", "/sockets", { json: { protocol: "tcp" } });
      console.log(`abuser after deleting its ${left.length} sockets: create ${again.status}`);
      assert.equal(again.status, 201);
    } finally {
      abuserPeer.close();
      victimPeer.close();
      victim.close();
      abuser.close();
      await server.close();
      await Promise.allSettled(drains);
    }
  });
});
