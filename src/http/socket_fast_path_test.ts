import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { SessionPeer, settle } from "../socket/_session_peer_test_util.ts";
import { TcpFlags } from "../wire/mod.ts";
import { createApp } from "./app.ts";
import { HttpMetrics } from "./metrics.ts";
import type { RequestLogEntry } from "./request_log.ts";
import { RequestRecorder } from "./request_log.ts";
import { assertProblem, socketApi } from "./_socket_api_test_util.ts";
import { shareHostMatcher } from "./share/share_routes.ts";
import { fastTarget, RECV_ROUTE, SEND_ROUTE, socketFastPath } from "./socket_fast_path.ts";
import { RecvQuerySchema, SendQuerySchema, SocketParamsSchema } from "./socket_schemas.ts";

const SID = "s_AAAAAAAAAAAAAAAAAAAAAA";
const ID = "k_BBBBBBBBBBBBBBBB";
const enc = (s: string) => new TextEncoder().encode(s) as Uint8Array<ArrayBuffer>;

/** Queries the lean path takes, and what zod makes of them (the same, or the path leaves them). */
const TAKEN: Array<[string, "send" | "recv", string]> = [
  ["send", "send", ""],
  ["send", "send", "?"],
  ["send", "send", "?timeoutMs=0"],
  ["send", "send", "?timeoutMs=60000"],
  ["recv", "recv", "?maxBytes=64&timeoutMs=10000"],
  ["recv", "recv", "?timeoutMs=10000&maxBytes=64"],
  ["recv", "recv", "?maxBytes=1"],
  ["recv", "recv", "?maxBytes=1048576"],
  ["recv", "recv", "?maxBytes=0064"],
];

/** Targets the lean path leaves to Hono (which answers them as before: 400, 404, ...). */
const LEFT: string[] = [
  `/v1/sessions/${SID}/sockets/${ID}/send/`,
  `/v1/sessions/${SID}/sockets/${ID}/sendx`,
  `/v1/sessions/${SID}/sockets/${ID}/shutdown`,
  `/v1/sessions/${SID}/sockets/${ID}`,
  `/v1/sessions/${SID}/sockets/k_BBBBBBBBBBBBBBB/send`,
  `/v1/sessions/${SID}/sockets/k_BBBBBBBBBBBBBBB!/send`,
  `/v1/sessions/${SID}/sockets/k_BBBBBBBB%42BBBBBB/send`,
  `/v1/sessions/s_AAAAAAAAAAAAAAAAAAAAA!/sockets/${ID}/send`,
  `/v1/sessions/${SID}/sockets/${ID}/recv?maxBytes=0`,
  `/v1/sessions/${SID}/sockets/${ID}/recv?maxBytes=1048577`,
  `/v1/sessions/${SID}/sockets/${ID}/recv?maxBytes=0x40`,
  `/v1/sessions/${SID}/sockets/${ID}/recv?maxBytes=6.4e1`,
  `/v1/sessions/${SID}/sockets/${ID}/recv?maxBytes=+64`,
  `/v1/sessions/${SID}/sockets/${ID}/recv?maxBytes=%36%34`,
  `/v1/sessions/${SID}/sockets/${ID}/recv?maxBytes=`,
  `/v1/sessions/${SID}/sockets/${ID}/recv?maxBytes`,
  `/v1/sessions/${SID}/sockets/${ID}/recv?maxBytes=64&maxBytes=64`,
  `/v1/sessions/${SID}/sockets/${ID}/recv?maxBytes=64&`,
  `/v1/sessions/${SID}/sockets/${ID}/recv?timeoutMs=60001`,
  `/v1/sessions/${SID}/sockets/${ID}/recv?timeout=5`,
  `/v1/sessions/${SID}/sockets/${ID}/send?maxBytes=64`,
  `/v1/sessions/${SID}/sockets/${ID}/send?address=10.0.2.15&port=53`,
  `/v2/sessions/${SID}/sockets/${ID}/send`,
];

describe("the lean socket path: what it takes", () => {
  for (const [op, want, query] of TAKEN) {
    it(`takes ${op}${query} with the values zod reads`, () => {
      const t = fastTarget(`http://h:8/v1/sessions/${SID}/sockets/${ID}/${op}${query}`);
      assert.ok(t, "taken");
      assert.equal(t.op, want);
      assert.deepEqual(SocketParamsSchema.parse({ sid: t.sid, id: t.id }), { sid: SID, id: ID });
      const params = Object.fromEntries(new URLSearchParams(query));
      const schema = op === "recv" ? RecvQuerySchema : SendQuerySchema;
      assert.deepEqual(t.query, schema.parse(params));
    });
  }

  for (const path of LEFT) {
    it(`leaves ${path} to Hono`, () => {
      assert.equal(fastTarget(`http://h${path}`), undefined);
    });
  }

  it("leaves other methods, unknown sessions, missing or wrong tokens and share hosts to Hono", async () => {
    const api = socketApi();
    const fast = socketFastPath({
      registry: api.registry,
      bodyTimeoutMs: 1000,
      clock: api.clock,
      recorder: new RequestRecorder({}),
      mayBeShare: shareHostMatcher("share.example"),
    });
    const url = (sid: string, op = "recv") =>
      `http://api.example/v1/sessions/${sid}/sockets/${ID}/${op}`;
    const auth = { authorization: `Bearer ${api.session.token}` };
    const taken = (req: Request) => fast(req) !== undefined;
    assert.equal(taken(new Request(url(api.session.id), { headers: auth })), false, "GET");
    assert.equal(taken(new Request(url(SID), { method: "POST", headers: auth })), false);
    assert.equal(taken(new Request(url(api.session.id), { method: "POST" })), false);
    assert.equal(
      taken(
        new Request(url(api.session.id), {
          method: "POST",
          headers: { authorization: `Bearer ${api.session.token}x` },
        }),
      ),
      false,
    );
    assert.equal(
      taken(
        new Request(url(api.session.id), {
          method: "POST",
          headers: { ...auth, host: "k1.share.example:8000" },
        }),
      ),
      false,
    );
    // Taken: an unknown socket of a session whose token matches answers the route's 404.
    for (const op of ["send", "recv"]) {
      const answer = fast(new Request(url(api.session.id, op), { method: "POST", headers: auth }));
      assert.ok(answer instanceof Promise, `${op} taken`);
      await assertProblem(await answer, 404, "ENOTFOUND");
    }
  });
});

/** A response as bytes on the wire would show it: status, sorted header fields, body. */
async function wire(res: Response): Promise<unknown> {
  const headers = [...res.headers].sort((a, b) => a[0] < b[0] ? -1 : 1);
  return { status: res.status, headers, body: [...new Uint8Array(await res.arrayBuffer())] };
}

describe("the lean socket path answers as the Hono routes do", () => {
  it("data, timeouts, end of stream and errors: the same status, headers, body, log line and count", async () => {
    const logs: [RequestLogEntry[], RequestLogEntry[]] = [[], []];
    const metrics = [new HttpMetrics(), new HttpMetrics()];
    const api = socketApi({
      app: { requestLog: (e) => logs[0].push(e), httpMetrics: metrics[0] },
    });
    const hono = createApp({
      registry: api.registry,
      clock: api.clock,
      requestLog: (e) => logs[1].push(e),
      httpMetrics: metrics[1],
      socketFastPath: false,
    });
    const apps = [api.app, hono];
    const call = (
      i: number,
      op: string,
      init: { query?: string; body?: Uint8Array<ArrayBuffer> } = {},
    ) =>
      apps[i].request(
        `http://localhost/v1/sessions/${api.session.id}/sockets/${id}/${op}${init.query ?? ""}`,
        {
          method: "POST",
          headers: { authorization: `Bearer ${api.session.token}` },
          body: init.body,
        },
      );
    /** The same request on both apps, in the same state of the connection. */
    const both = async (
      before: () => void,
      op: string,
      init?: { query?: string; body?: Uint8Array<ArrayBuffer> },
    ) => {
      const out = [];
      for (const i of [0, 1]) {
        before();
        await settle();
        out.push(await wire(await call(i, op, init)));
      }
      assert.deepEqual(out[0], out[1]);
      return out[0] as { status: number };
    };

    const lid = await api.create("tcp");
    await api.call("POST", `/sockets/${lid}/bind`, { json: { port: 80 } });
    await api.call("POST", `/sockets/${lid}/listen`, { json: {} });
    const peer = new SessionPeer(api.session, api.tunnel, 80);
    const accepting = api.call("POST", `/sockets/${lid}/accept`, { json: { timeoutMs: 5000 } });
    await settle();
    peer.connect();
    let id = (await (await accepting).json()).id as string;

    const recv = await both(() => peer.send(enc("hello")), "recv", { query: "?maxBytes=5" });
    assert.equal(recv.status, 200);
    const sent = await both(() => {}, "send", { body: enc("a reply") });
    assert.equal(sent.status, 200);
    const none = await both(() => {}, "recv", { query: "?timeoutMs=0" });
    assert.equal(none.status, 204);
    const gone = id;
    id = "k_AAAAAAAAAAAAAAAA";
    assert.equal((await both(() => {}, "send", { body: enc("x") })).status, 404);
    id = gone;
    let fin = false;
    const eof = await both(() => {
      if (!fin) peer.inject({ flags: TcpFlags.ACK | TcpFlags.FIN });
      fin = true;
    }, "recv");
    assert.equal(eof.status, 200);
    await api.call("POST", `/sockets/${id}/shutdown`, { json: { how: "write" } });
    assert.equal((await both(() => {}, "send", { body: enc("late") })).status, 409);

    const strip = (l: RequestLogEntry[]) =>
      l.filter((e) => e.route === SEND_ROUTE || e.route === RECV_ROUTE).map((e) => ({
        ...e,
        durationMs: 0,
      }));
    assert.equal(strip(logs[0]).length, 6);
    assert.deepEqual(strip(logs[0]), strip(logs[1]));
    const counts = (m: HttpMetrics) =>
      m.entries().filter((e) => e.route === SEND_ROUTE || e.route === RECV_ROUTE);
    assert.equal(counts(metrics[0]).reduce((n, e) => n + e.count, 0), 6);
    assert.deepEqual(counts(metrics[0]), counts(metrics[1]));
  });

  it("with CORS origins every response still carries the CORS headers", async () => {
    const api = socketApi({ app: { corsOrigins: ["https://app.example"] } });
    const res = await api.call("POST", `/sockets/k_AAAAAAAAAAAAAAAA/recv`, {
      headers: { origin: "https://app.example" },
    });
    assert.equal(res.headers.get("access-control-allow-origin"), "https://app.example");
    await assertProblem(res, 404, "ENOTFOUND");
  });

  it("a request to a share host goes to the share link, not to the socket API", async () => {
    const api = socketApi({ app: { shares: { domain: "share.example" } } });
    const res = await api.call("POST", `/sockets/k_AAAAAAAAAAAAAAAA/recv`, {
      headers: { host: "k1.share.example" },
    });
    const p = await assertProblem(res, 404, "ENOTFOUND");
    assert.match(p.detail, /share link/);
  });
});
