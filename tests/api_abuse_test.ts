/**
 * Abuse of the HTTP API on a real server (Deno.serve on loopback): oversized
 * bodies with and without Content-Length (cut off at the limit, not
 * buffered), malformed JSON, wrong tokens and unknown sessions, slow clients
 * trickling headers or bodies, and thousands of concurrent long-polls that
 * time out or are abandoned. Each case prints what it sent and what survived.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { heapMiB, openSession, startServer } from "./_abuse_server.ts";

/** A request body that produces `chunk`-byte pieces forever (or up to `max`), counting what was pulled. */
function endlessBody(chunk: number, max = Infinity) {
  const piece = new Uint8Array(chunk).fill(0x20);
  const stats = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (stats.pulled >= max) return c.close();
      stats.pulled += piece.length;
      c.enqueue(piece.slice());
    },
    cancel() {
      stats.cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { stream, stats };
}

async function problem(res: Response): Promise<{ code: string; detail: string; issues?: unknown }> {
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  return await res.json();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("API abuse on a real server", () => {
  it("oversized bodies get 413 ETOOLARGE and are cut off at the limit, chunked or not", async () => {
    const server = await startServer();
    const s = await openSession(server);
    try {
      // JSON over 16 KiB with a Content-Length.
      const big = JSON.stringify({ protocol: "tcp", pad: "x".repeat(20_000) });
      let res = await s.api("POST", "/sockets", { body: big });
      assert.equal(res.status, 413);
      assert.equal((await problem(res)).code, "ETOOLARGE");
      console.log(`JSON ${big.length} bytes with Content-Length: ${res.status}`);

      // The same without a Content-Length (chunked), and an endless chunked body.
      for (const max of [20_000, Infinity]) {
        const body = endlessBody(1024, max);
        res = await fetch(`${server.base}/v1/sessions/${s.id}/sockets`, {
          method: "POST",
          headers: { authorization: `Bearer ${s.token}`, "content-type": "application/json" },
          body: body.stream,
          duplex: "half",
        } as RequestInit);
        assert.equal(res.status, 413);
        assert.equal((await problem(res)).code, "ETOOLARGE");
        const atResponse = body.stats.pulled;
        await sleep(300);
        const later = body.stats.pulled;
        await sleep(300);
        console.log(
          `chunked JSON (${max === Infinity ? "endless" : max + " bytes"}): ${res.status} ` +
            `(connection: ${res.headers.get("connection")}) after the client produced ` +
            `${atResponse} bytes; ${later} after 300 ms, ${body.stats.pulled} after 600 ms`,
        );
        // What the client produced beyond the limit sits in loopback socket buffers:
        // the server stopped reading, so the client's body stops moving.
        assert.equal(body.stats.pulled, later, "the server stopped reading the body");
        assert.ok(body.stats.pulled < 16 * 2 ** 20);
      }

      // send: over 1 MiB with a Content-Length, and endless chunked.
      const id = (await (await s.api("POST", "/sockets", { json: { protocol: "udp" } })).json()).id;
      res = await s.api("POST", `/sockets/${id}/send`, {
        body: new Uint8Array(2 ** 20 + 1),
        query: "address=10.0.2.15&port=9",
      });
      assert.equal(res.status, 413);
      assert.equal((await problem(res)).code, "ETOOLARGE");
      console.log(`send of ${2 ** 20 + 1} bytes with Content-Length: ${res.status}`);
      const body = endlessBody(64 * 1024);
      res = await fetch(
        `${server.base}/v1/sessions/${s.id}/sockets/${id}/send?address=10.0.2.15&port=9`,
        {
          method: "POST",
          headers: { authorization: `Bearer ${s.token}` },
          body: body.stream,
          duplex: "half",
        } as RequestInit,
      );
      assert.equal(res.status, 413);
      assert.equal((await problem(res)).code, "ETOOLARGE");
      await sleep(300);
      const later = body.stats.pulled;
      await sleep(300);
      console.log(
        `endless chunked send: ${res.status} (connection: ${res.headers.get("connection")}); ` +
          `the client produced ${later} bytes after 300 ms, ${body.stats.pulled} after 600 ms`,
      );
      assert.equal(body.stats.pulled, later, "the server stopped reading the body");
      assert.ok(body.stats.pulled < 16 * 2 ** 20);
      // The session still works.
      res = await s.api("GET", "/sockets");
      assert.equal(res.status, 200);
    } finally {
      s.close();
      await server.close();
    }
  });

  it("malformed JSON, wrong tokens and unknown sessions get 400, 401 and 404", async () => {
    const server = await startServer();
    const a = await openSession(server);
    const b = await openSession(server);
    try {
      const cases: Array<[string, () => Promise<Response>, number, string]> = [
        [
          "malformed JSON",
          () => a.api("POST", "/sockets", { body: '{"protocol": "tcp"' }),
          400,
          "EINVAL",
        ],
        ["JSON array", () => a.api("POST", "/sockets", { body: "[1,2]" }), 400, "EINVAL"],
        ["wrong type", () => a.api("POST", "/sockets", { json: { protocol: 6 } }), 400, "EINVAL"],
        [
          "unknown field",
          () => a.api("POST", "/sockets", { json: { protocol: "tcp", x: 1 } }),
          400,
          "EINVAL",
        ],
        [
          "binary garbage as JSON",
          () => a.api("POST", "/sockets", { body: new Uint8Array([0xff, 0xfe, 0, 1]) }),
          400,
          "EINVAL",
        ],
        [
          "no token",
          () => fetch(`${server.base}/v1/sessions/${a.id}/sockets`),
          401,
          "EUNAUTHORIZED",
        ],
        [
          "wrong token",
          () =>
            fetch(`${server.base}/v1/sessions/${a.id}/sockets`, {
              headers: { authorization: `Bearer ${a.token.slice(0, -1)}x` },
            }),
          401,
          "EUNAUTHORIZED",
        ],
        [
          "another session's token",
          () =>
            fetch(`${server.base}/v1/sessions/${a.id}/sockets`, {
              headers: { authorization: `Bearer ${b.token}` },
            }),
          401,
          "EUNAUTHORIZED",
        ],
        [
          "a 10 KiB token",
          () =>
            fetch(`${server.base}/v1/sessions/${a.id}/sockets`, {
              headers: { authorization: `Bearer ${"t".repeat(10_240)}` },
            }),
          401,
          "EUNAUTHORIZED",
        ],
        [
          "unknown session",
          () =>
            fetch(`${server.base}/v1/sessions/s_${"A".repeat(22)}/sockets`, {
              headers: { authorization: `Bearer ${a.token}` },
            }),
          404,
          "ENOTFOUND",
        ],
        ["malformed socket id", () => a.api("POST", "/sockets/zzz/recv"), 400, "EINVAL"],
        [
          "unknown socket",
          () => a.api("POST", `/sockets/k_${"A".repeat(16)}/recv`),
          404,
          "ENOTFOUND",
        ],
      ];
      for (const [name, send, status, code] of cases) {
        const res = await send();
        const p = await problem(res);
        console.log(`${name}: ${res.status} ${p.code}`);
        assert.equal(res.status, status, name);
        assert.equal(p.code, code, name);
      }
      assert.equal((await a.api("GET", "/sockets")).status, 200, "the session still answers");
    } finally {
      a.close();
      b.close();
      await server.close();
    }
  });

  it("slow clients: a trickled body gets 408 EBODYTIMEOUT, trickled headers hold up no one", async () => {
    const server = await startServer({ bodyTimeoutMs: 1000 });
    const s = await openSession(server);
    const { hostname, port } = new URL(server.base);
    const conns: Deno.TcpConn[] = [];
    let stop = false;
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    try {
      // 100 connections trickle a header byte every 100 ms; 50 trickle a body, half of them
      // with a Content-Length, half chunked.
      const head = enc.encode(
        `GET /v1/sessions/${s.id}/sockets HTTP/1.1\r\nHost: x\r\nX-Pad: ${"a".repeat(200)}`,
      );
      const post = (chunked: boolean) =>
        enc.encode(
          `POST /v1/sessions/${s.id}/sockets HTTP/1.1\r\nHost: x\r\n` +
            `Authorization: Bearer ${s.token}\r\nContent-Type: application/json\r\n` +
            (chunked ? "Transfer-Encoding: chunked\r\n\r\n" : "Content-Length: 4000\r\n\r\n"),
        );
      const answers: string[] = [];
      let closedAfterAnswer = 0;
      const trickle = async (conn: Deno.TcpConn, start: Uint8Array, piece: Uint8Array) => {
        try {
          await conn.write(start);
          while (!stop) {
            await conn.write(piece);
            await sleep(100);
          }
        } catch {
          // The server closed the connection.
        }
      };
      const readAnswer = async (conn: Deno.TcpConn) => {
        const buf = new Uint8Array(4096);
        try {
          const n = await conn.read(buf);
          if (n) answers.push(dec.decode(buf.subarray(0, n)).split("\r\n")[0]);
          // Then the server closes the connection (it says Connection: close).
          while (await conn.read(buf) !== null);
          closedAfterAnswer++;
        } catch {
          // closed by the server (reset) or by the test
          if (answers.length > 0) closedAfterAnswer++;
        }
      };
      const jobs: Promise<void>[] = [];
      for (let i = 0; i < 150; i++) {
        const conn = await Deno.connect({ hostname, port: Number(port) });
        conns.push(conn);
        if (i < 100) jobs.push(trickle(conn, head, enc.encode("a")));
        else {
          const chunked = i % 2 === 0;
          jobs.push(trickle(conn, post(chunked), enc.encode(chunked ? "1\r\n \r\n" : " ")));
          jobs.push(readAnswer(conn));
        }
      }
      // Meanwhile, ordinary requests are served.
      const t0 = performance.now();
      let ok = 0;
      for (let i = 0; i < 50; i++) {
        const res = await s.api("GET", "/sockets");
        await res.body?.cancel();
        if (res.status === 200) ok++;
      }
      const ms = performance.now() - t0;
      console.log(
        `with 100 header tricklers and 50 body tricklers open: ${ok}/50 ordinary requests ` +
          `answered in ${ms.toFixed(0)} ms`,
      );
      assert.equal(ok, 50);
      for (let t = 0; t < 100 && answers.length < 50; t++) await sleep(50);
      const tally: Record<string, number> = {};
      for (const a of answers) tally[a] = (tally[a] ?? 0) + 1;
      console.log(
        `body tricklers after the 1 s body timeout: ${JSON.stringify(tally)}; header tricklers ` +
          `are not timed out by Deno.serve (it has no header timeout)`,
      );
      assert.equal(tally["HTTP/1.1 408 Request Timeout"], 50, "every trickled body got 408");
      for (let t = 0; t < 100 && closedAfterAnswer < 50; t++) await sleep(50);
      console.log(`connections the server closed after their 408: ${closedAfterAnswer}/50`);
      assert.equal(closedAfterAnswer, 50, "the server closed every connection after its 408");
      stop = true;
      for (const c of conns) c.close();
      await Promise.all(jobs);
      assert.equal((await s.api("GET", "/sockets")).status, 200);
    } finally {
      stop = true;
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      s.close();
      await server.close();
    }
  });

  it("2,000 concurrent recv long-polls all end (timeout or abort) and leave no waiter behind", async () => {
    const server = await startServer();
    const s = await openSession(server);
    try {
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) {
        const id =
          (await (await s.api("POST", "/sockets", { json: { protocol: "udp" } })).json()).id;
        assert.equal(
          (await s.api("POST", `/sockets/${id}/bind`, { json: { port: 7000 + i } })).status,
          200,
        );
        ids.push(id);
      }
      const waiters = () => {
        let n = 0;
        for (const e of s.session.sockets.entries()) {
          n += (e.socket as { waiterCount?: number } | undefined)?.waiterCount ?? 0;
        }
        return n;
      };
      const heap0 = heapMiB();
      const N = 2000;
      const aborters: AbortController[] = [];
      const polls: Promise<number | string>[] = [];
      for (let i = 0; i < N; i++) {
        const ac = new AbortController();
        const abortable = i % 2 === 1;
        if (abortable) aborters.push(ac);
        polls.push(
          s.api("POST", `/sockets/${ids[i % ids.length]}/recv`, {
            query: `timeoutMs=${abortable ? 60_000 : 8_000}`,
            signal: ac.signal,
          }).then(async (r) => {
            await r.body?.cancel();
            return r.status;
          }, (e) => (e as Error).name),
        );
      }
      let most = 0;
      for (let t = 0; t < 200 && most < N; t++) {
        await sleep(50);
        most = Math.max(most, waiters());
      }
      const heap1 = heapMiB();
      console.log(
        `${N} long-polls in flight: ${most} waiters at most, heap ${heap0} -> ${heap1} MiB`,
      );
      assert.equal(most, N, "every long-poll waits on its socket");
      for (const ac of aborters) ac.abort();
      let left = waiters();
      for (let t = 0; t < 200 && left > N / 2; t++) {
        await sleep(50);
        left = waiters();
      }
      console.log(`after the clients of ${aborters.length} polls went away: ${left} waiters`);
      assert.equal(left, N / 2, "abandoned long-polls released their waiters");
      const results = await Promise.all(polls);
      const tally: Record<string, number> = {};
      for (const r of results) tally[r] = (tally[r] ?? 0) + 1;
      console.log(
        `outcomes: ${JSON.stringify(tally)}; waiters left ${waiters()}, heap ${heapMiB()} MiB`,
      );
      assert.equal(tally["204"], N / 2, "the others timed out with 204");
      assert.equal(tally["AbortError"], N / 2);
      assert.equal(waiters(), 0);
    } finally {
      s.close();
      await server.close();
    }
  });
});
