import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { advance, endsAt, SessionPeer, settle } from "../socket/_session_peer_test_util.ts";
import type { TcpSocketEntry } from "../socket/socket_entry.ts";
import { decodeTcpFrame } from "../stack/tcp/tcp_harness.ts";
import { decodeUdp, udpFrame } from "../stack/udp/_udp_test_util.ts";
import { TcpFlags } from "../wire/mod.ts";
import { assertProblem, jsonAs, socketApi } from "./_socket_api_test_util.ts";
import {
  AcceptResultSchema,
  BindResultSchema,
  ConnectResultSchema,
  CreatedSocketSchema,
  ListenResultSchema,
  SendResultSchema,
  SocketDetailsSchema,
  SocketListSchema,
  SocketViewSchema,
} from "./socket_schemas.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const UNKNOWN_ID = "k_AAAAAAAAAAAAAAAA";

/** Every route that names a socket: method, path suffix, a valid body. */
const SOCKET_ROUTES: Array<[string, string, unknown?]> = [
  ["GET", ""],
  ["POST", "/bind", {}],
  ["POST", "/listen", {}],
  ["POST", "/accept", { timeoutMs: 1 }],
  ["POST", "/connect", { address: "10.0.2.15", port: 80 }],
  ["POST", "/send"],
  ["POST", "/recv"],
  ["POST", "/shutdown", { how: "write" }],
  ["DELETE", ""],
  ["GET", "/stream"],
];

/** An API with a listener on :80 and one connection accepted over HTTP from a scripted peer. */
async function acceptedOverHttp() {
  const api = socketApi();
  const lid = await api.create("tcp");
  assert.equal(
    (await api.call("POST", `/sockets/${lid}/bind`, { json: { port: 80 } })).status,
    200,
  );
  assert.equal((await api.call("POST", `/sockets/${lid}/listen`, { json: {} })).status, 200);
  const peer = new SessionPeer(api.session, api.tunnel, 80);
  const pending = api.call("POST", `/sockets/${lid}/accept`, { json: { timeoutMs: 5000 } });
  await settle();
  peer.connect();
  const res = await pending;
  assert.equal(res.status, 200);
  const accepted = await jsonAs(res, AcceptResultSchema);
  return { ...api, lid, id: accepted.id, accepted, peer };
}

describe("HTTP API: socket life cycle", () => {
  it("POST /sockets creates TCP and UDP sockets (201, Location), GET lists them", async () => {
    const api = socketApi();
    const res = await api.call("POST", "/sockets", { json: { protocol: "tcp" } });
    assert.equal(res.status, 201);
    const created = await jsonAs(res, CreatedSocketSchema);
    assert.match(created.id, /^k_[A-Za-z0-9_-]{16}$/);
    assert.deepEqual({ ...created, id: "" }, { id: "", protocol: "tcp", state: "created" });
    assert.equal(
      res.headers.get("location"),
      `/v1/sessions/${api.session.id}/sockets/${created.id}`,
    );
    await api.create("udp");
    const list = await jsonAs(await api.call("GET", "/sockets"), SocketListSchema);
    assert.deepEqual(list.sockets.map((s) => [s.protocol, s.state, s.pcbList]), [
      ["tcp", "created", "none"],
      ["udp", "created", "none"],
    ]);
    assert.deepEqual(list.limits, { maxSockets: 256, maxBufferedBytes: 32 * 1024 * 1024 });
    // udp: none; the DHCP server on port 67 is a service, not an endpoint.
    assert.deepEqual(list.pcbs, { bound: 0, listen: 0, active: 0, timeWait: 0, udp: 0 });
  });

  it("bind → listen → accept: the accepted socket shares the listener's local address", async () => {
    const api = socketApi();
    const lid = await api.create("tcp");
    const bound = await api.call("POST", `/sockets/${lid}/bind`, { json: { port: 80 } });
    assert.deepEqual(await jsonAs(bound, BindResultSchema), {
      local: { address: "10.0.2.2", port: 80 },
    });
    let list = await jsonAs(await api.call("GET", "/sockets"), SocketListSchema);
    assert.equal(list.sockets[0].pcbList, "bound");
    assert.equal(list.pcbs.bound, 1);
    const listening = await api.call("POST", `/sockets/${lid}/listen`, { json: { backlog: 8 } });
    assert.deepEqual(await jsonAs(listening, ListenResultSchema), {
      local: { address: "10.0.2.2", port: 80 },
      backlog: 8,
    });
    const peer = new SessionPeer(api.session, api.tunnel, 80);
    const pending = api.call("POST", `/sockets/${lid}/accept`, { json: {} });
    await settle();
    peer.connect();
    const res = await pending;
    assert.equal(res.status, 200);
    const acc = await jsonAs(res, AcceptResultSchema);
    assert.deepEqual(acc.local, { address: "10.0.2.2", port: 80 });
    assert.deepEqual(acc.remote, { address: "10.0.2.15", port: 40000 });
    list = await jsonAs(await api.call("GET", "/sockets"), SocketListSchema);
    assert.deepEqual(
      list.sockets.map((s) => [s.state, s.pcbList, s.acceptedFrom]),
      [["listening", "listen", null], ["connected", "active", lid]],
    );
    assert.deepEqual(list.pcbs, { bound: 0, listen: 1, active: 1, timeWait: 0, udp: 0 });
  });

  it("GET /sockets/:id gives TCP details: rtt, rto, cwnd, windows, retransmits", async () => {
    const { call, id, lid } = await acceptedOverHttp();
    const d = await jsonAs(await call("GET", `/sockets/${id}`), SocketDetailsSchema);
    assert.equal(d.state, "connected");
    assert.equal(d.tcpState, "ESTABLISHED");
    assert.ok(d.tcp);
    for (const k of ["rttMs", "rtoMs", "cwnd", "sendWindow", "recvWindow", "retransmits"]) {
      assert.ok(k in d.tcp, k);
    }
    assert.equal(d.listener, null);
    const l = await jsonAs(await call("GET", `/sockets/${lid}`), SocketDetailsSchema);
    assert.deepEqual(l.listener, {
      backlog: 128,
      synQueue: 0,
      acceptQueue: 0,
      cookiesSent: 0,
      cookiesAccepted: 0,
    });
  });

  it("recv returns the peer's bytes, send reaches the peer, EOF answers 200 with Netisle-Eof", async () => {
    const { call, id, peer } = await acceptedOverHttp();
    peer.send(enc("GET / HTTP/1.0\r\n\r\n"));
    const r = await call("POST", `/sockets/${id}/recv`, { query: { maxBytes: "5" } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("content-type"), "application/octet-stream");
    assert.equal(r.headers.get("netisle-eof"), null);
    assert.equal(dec(new Uint8Array(await r.arrayBuffer())), "GET /");
    const s = await call("POST", `/sockets/${id}/send`, {
      body: enc("HTTP/1.0 200 OK\r\n\r\nhi"),
      headers: { "content-type": "application/octet-stream" },
    });
    assert.deepEqual(await jsonAs(s, SendResultSchema), { bytes: 21 });
    const data = peer.drain().filter((seg) => seg.payload.length > 0);
    assert.equal(dec(data[0].payload), "HTTP/1.0 200 OK\r\n\r\nhi");
    peer.inject({ flags: TcpFlags.ACK | TcpFlags.FIN, ackNumber: (data[0].seqNumber + 21) >>> 0 });
    const rest = await call("POST", `/sockets/${id}/recv`);
    assert.equal(dec(new Uint8Array(await rest.arrayBuffer())), " HTTP/1.0\r\n\r\n");
    const eof = await call("POST", `/sockets/${id}/recv`);
    assert.equal(eof.status, 200);
    assert.equal(eof.headers.get("netisle-eof"), "1");
    assert.equal((await eof.arrayBuffer()).byteLength, 0);
  });

  it("connect long-polls until the handshake completes; shutdown write sends FIN", async () => {
    const api = socketApi();
    const id = await api.create("tcp");
    await api.call("POST", `/sockets/${id}/bind`, { json: { port: 5555 } });
    const peer = new SessionPeer(api.session, api.tunnel, 5555, { port: 7 });
    const pending = api.call("POST", `/sockets/${id}/connect`, {
      json: { address: "10.0.2.15", port: 7, timeoutMs: 5000 },
    });
    await settle();
    const view = await jsonAs(await api.call("GET", `/sockets/${id}`), SocketViewSchema);
    assert.equal(view.state, "connecting");
    assert.equal(view.tcpState, "SYN_SENT");
    const [syn] = peer.drain();
    assert.equal(syn.flags, TcpFlags.SYN);
    peer.acceptSyn(syn);
    const res = await pending;
    assert.deepEqual(await jsonAs(res, ConnectResultSchema), {
      local: { address: "10.0.2.2", port: 5555 },
      remote: { address: "10.0.2.15", port: 7 },
    });
    const sh = await api.call("POST", `/sockets/${id}/shutdown`, { json: { how: "write" } });
    const after = await jsonAs(sh, SocketViewSchema);
    assert.equal(after.tcpState, "FIN_WAIT_1");
    assert.ok(peer.drain().some((s) => s.flags & TcpFlags.FIN));
  });

  it("connect answers 502 ECONNREFUSED when the peer resets the SYN; the socket is closed", async () => {
    const api = socketApi();
    const id = await api.create("tcp");
    const pending = api.call("POST", `/sockets/${id}/connect`, {
      json: { address: "10.0.2.15", port: 7 },
    });
    await settle();
    const syn = decodeTcpFrame(api.tunnel.frames.pop()!);
    const peer = new SessionPeer(api.session, api.tunnel, syn.srcPort, { port: 7 });
    peer.inject({
      flags: TcpFlags.RST | TcpFlags.ACK,
      seqNumber: 0,
      ackNumber: (syn.seqNumber + 1) >>> 0,
    });
    await assertProblem(await pending, 502, "ECONNREFUSED");
    const v = await jsonAs(await api.call("GET", `/sockets/${id}`), SocketViewSchema);
    assert.deepEqual([v.state, v.error], ["closed", "ECONNREFUSED"]);
  });

  it("connect to a host off the link answers 502 EHOSTUNREACH", async () => {
    const api = socketApi();
    const id = await api.create("tcp");
    const res = await api.call("POST", `/sockets/${id}/connect`, {
      json: { address: "8.8.8.8", port: 53 },
    });
    await assertProblem(res, 502, "EHOSTUNREACH");
  });

  it("a reset connection answers recv with 502 ECONNRESET", async () => {
    const { call, id, peer } = await acceptedOverHttp();
    const pending = call("POST", `/sockets/${id}/recv`);
    await settle();
    peer.inject({ flags: TcpFlags.RST });
    await assertProblem(await pending, 502, "ECONNRESET");
  });

  it("DELETE closes gracefully (FIN) or with ?abort=true (RST), answers 204, then 404", async () => {
    const a = await acceptedOverHttp();
    const res = await a.call("DELETE", `/sockets/${a.id}`);
    assert.equal(res.status, 204);
    assert.ok(a.peer.drain().some((s) => s.flags & TcpFlags.FIN));
    await assertProblem(await a.call("GET", `/sockets/${a.id}`), 404, "ENOTFOUND");
    const b = await acceptedOverHttp();
    assert.equal(
      (await b.call("DELETE", `/sockets/${b.id}`, { query: { abort: "true" } })).status,
      204,
    );
    assert.ok(b.peer.drain().some((s) => s.flags & TcpFlags.RST));
    assert.equal(b.session.stack.tcp.active.size, 0);
  });

  it("UDP: bind, recv with the sender's headers, send with ?address=&port=, connect, send", async () => {
    const api = socketApi();
    const id = await api.create("udp");
    await api.call("POST", `/sockets/${id}/bind`, { json: { port: 5353 } });
    api.session.input([udpFrame({ srcPort: 4000, dstPort: 5353, payload: enc("hello there") })]);
    const r = await api.call("POST", `/sockets/${id}/recv`, { query: { maxBytes: "5" } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("netisle-peer-address"), "10.0.2.15");
    assert.equal(r.headers.get("netisle-peer-port"), "4000");
    assert.equal(r.headers.get("netisle-truncated"), "1");
    assert.equal(dec(new Uint8Array(await r.arrayBuffer())), "hello");
    const s = await api.call("POST", `/sockets/${id}/send`, {
      body: enc("reply"),
      query: { address: "10.0.2.15", port: "4000" },
    });
    assert.deepEqual(await jsonAs(s, SendResultSchema), { bytes: 5 });
    const out = decodeUdp(api.tunnel.frames.shift()!);
    assert.deepEqual([out.udp.srcPort, out.udp.dstPort, dec(out.udp.payload)], [
      5353,
      4000,
      "reply",
    ]);
    await assertProblem(
      await api.call("POST", `/sockets/${id}/send`, { body: enc("x") }),
      409,
      "ENOTCONN",
    );
    const c = await api.call("POST", `/sockets/${id}/connect`, {
      json: { address: "10.0.2.15", port: 4001 },
    });
    assert.deepEqual(await jsonAs(c, ConnectResultSchema), {
      local: { address: "10.0.2.2", port: 5353 },
      remote: { address: "10.0.2.15", port: 4001 },
    });
    await api.call("POST", `/sockets/${id}/send`, { body: enc("again") });
    assert.equal(decodeUdp(api.tunnel.frames.shift()!).udp.dstPort, 4001);
    const d = await jsonAs(await api.call("GET", `/sockets/${id}`), SocketDetailsSchema);
    assert.equal(d.state, "connected");
    assert.equal(d.udp?.txDatagrams, 2);
  });
});

describe("HTTP API: socket long-polls end and leave nothing behind", () => {
  it("accept answers 204 when the timeout passes, with no waiter left on the listener", async () => {
    const api = socketApi();
    const lid = await api.create("tcp");
    await api.call("POST", `/sockets/${lid}/listen`, { json: {} });
    const accept = api.call("POST", `/sockets/${lid}/accept`, { json: { timeoutMs: 5 } });
    assert.equal((await endsAt(api.clock, 5, accept)).status, 204);
    const entry = api.session.sockets.get(lid) as TcpSocketEntry;
    assert.equal(entry.server?.waiterCount, 0);
  });

  it("recv answers 204 when the timeout passes, with no waiter left on the socket", async () => {
    const { call, id, session, clock } = await acceptedOverHttp();
    const recv = call("POST", `/sockets/${id}/recv`, { query: { timeoutMs: "5" } });
    assert.equal((await endsAt(clock, 5, recv)).status, 204);
    assert.equal((session.sockets.get(id) as TcpSocketEntry).socket?.waiterCount, 0);
  });

  it("connect answers 504 ETIMEDOUT at its timeout and leaves no control block", async () => {
    const api = socketApi();
    const id = await api.create("tcp");
    const connect = api.call("POST", `/sockets/${id}/connect`, {
      json: { address: "10.0.2.15", port: 7, timeoutMs: 5 },
    });
    await assertProblem(await endsAt(api.clock, 5, connect), 504, "ETIMEDOUT");
    assert.equal(api.session.stack.tcp.active.size, 0);
    assert.equal((api.session.sockets.get(id) as TcpSocketEntry).socket?.waiterCount, 0);
  });

  it("a client that goes away ends recv and accept with no waiter left", async () => {
    const { call, id, lid, session } = await acceptedOverHttp();
    const ac = new AbortController();
    const r = call("POST", `/sockets/${id}/recv`, { signal: ac.signal });
    const a = call("POST", `/sockets/${lid}/accept`, { json: {}, signal: ac.signal });
    await settle();
    const conn = session.sockets.get(id) as TcpSocketEntry;
    const listener = session.sockets.get(lid) as TcpSocketEntry;
    assert.equal(conn.socket?.waiterCount, 1);
    assert.equal(listener.server?.waiterCount, 1);
    ac.abort();
    await assertProblem(await r, 499, "ECANCELED");
    await assertProblem(await a, 499, "ECANCELED");
    assert.equal(conn.socket?.waiterCount, 0);
    assert.equal(listener.server?.waiterCount, 0);
  });

  it("a client that goes away during connect aborts the attempt", async () => {
    const api = socketApi();
    const id = await api.create("tcp");
    const ac = new AbortController();
    const pending = api.call("POST", `/sockets/${id}/connect`, {
      json: { address: "10.0.2.15", port: 7 },
      signal: ac.signal,
    });
    await settle();
    assert.equal(api.session.stack.tcp.active.size, 1);
    ac.abort();
    await assertProblem(await pending, 499, "ECANCELED");
    assert.equal(api.session.stack.tcp.active.size, 0);
  });

  it("deleting the socket ends a waiting recv with 409 ENOTCONN", async () => {
    const { call, id } = await acceptedOverHttp();
    const pending = call("POST", `/sockets/${id}/recv`);
    await settle();
    assert.equal((await call("DELETE", `/sockets/${id}`)).status, 204);
    await assertProblem(await pending, 409, "ENOTCONN");
  });
});

describe("HTTP API: socket errors (409, 413, 429)", () => {
  it("answers wrong-state requests with 409 and the errno-style code", async () => {
    const api = socketApi();
    const a = await api.create("tcp");
    const b = await api.create("tcp");
    await api.call("POST", `/sockets/${a}/bind`, { json: { port: 9000 } });
    await assertProblem(
      await api.call("POST", `/sockets/${a}/bind`, { json: { port: 9001 } }),
      409,
      "EALREADY",
    );
    await assertProblem(
      await api.call("POST", `/sockets/${b}/bind`, { json: { port: 9000 } }),
      409,
      "EADDRINUSE",
    );
    for (
      const [path, init] of [
        ["/recv", {}],
        ["/send", { body: enc("x") }],
        ["/accept", { json: { timeoutMs: 1 } }],
        ["/shutdown", { json: { how: "both" } }],
      ] as const
    ) {
      await assertProblem(await api.call("POST", `/sockets/${b}${path}`, init), 409, "ENOTCONN");
    }
    await api.call("POST", `/sockets/${a}/listen`, { json: {} });
    await assertProblem(
      await api.call("POST", `/sockets/${a}/listen`, { json: {} }),
      409,
      "EALREADY",
    );
    await assertProblem(
      await api.call("POST", `/sockets/${a}/connect`, { json: { address: "10.0.2.15", port: 1 } }),
      409,
      "EISCONN",
    );
    const c = await api.create("tcp");
    const pending = api.call("POST", `/sockets/${c}/connect`, {
      json: { address: "10.0.2.15", port: 1, timeoutMs: 200 },
    });
    await settle();
    await assertProblem(
      await api.call("POST", `/sockets/${c}/connect`, { json: { address: "10.0.2.15", port: 1 } }),
      409,
      "EALREADY",
    );
    await advance(api.clock, 200);
    await assertProblem(await pending, 504, "ETIMEDOUT");
  });

  it("answers TCP-only operations on a UDP socket with 400 EOPNOTSUPP", async () => {
    const api = socketApi();
    const u = await api.create("udp");
    await assertProblem(
      await api.call("POST", `/sockets/${u}/listen`, { json: {} }),
      400,
      "EOPNOTSUPP",
    );
    await assertProblem(
      await api.call("POST", `/sockets/${u}/accept`, { json: {} }),
      400,
      "EOPNOTSUPP",
    );
    await assertProblem(
      await api.call("POST", `/sockets/${u}/shutdown`, { json: { how: "read" } }),
      400,
      "EOPNOTSUPP",
    );
  });

  it("answers a send body over 1 MiB with 413 ETOOLARGE and a datagram over the MTU with 413 EMSGSIZE", async () => {
    const api = socketApi();
    const u = await api.create("udp");
    await assertProblem(
      await api.call("POST", `/sockets/${u}/send`, { body: new Uint8Array(1024 * 1024 + 1) }),
      413,
      "ETOOLARGE",
    );
    await assertProblem(
      await api.call("POST", `/sockets/${u}/send`, {
        body: new Uint8Array(1473),
        query: { address: "10.0.2.15", port: "9" },
      }),
      413,
      "EMSGSIZE",
    );
  });

  it("answers 429 EMFILE when the session holds its maximum of sockets", async () => {
    const api = socketApi({ sessionLimits: { maxSockets: 2 } });
    await api.create("tcp");
    await api.create("udp");
    await assertProblem(
      await api.call("POST", "/sockets", { json: { protocol: "tcp" } }),
      429,
      "EMFILE",
    );
  });

  it("answers 429 ENOBUFS when a send would pass the session's buffer quota", async () => {
    const api = socketApi({ sessionLimits: { maxBufferedBytes: 4096 } });
    const lid = await api.create("tcp");
    await api.call("POST", `/sockets/${lid}/bind`, { json: { port: 80 } });
    await api.call("POST", `/sockets/${lid}/listen`, { json: {} });
    const peer = new SessionPeer(api.session, api.tunnel, 80);
    const pending = api.call("POST", `/sockets/${lid}/accept`, { json: {} });
    await settle();
    peer.connect();
    const { id } = await (await pending).json();
    await assertProblem(
      await api.call("POST", `/sockets/${id}/send`, { body: new Uint8Array(5000) }),
      429,
      "ENOBUFS",
    );
  });
});

describe("HTTP API: a send body is charged once", () => {
  it("a TCP send hands the body's charge to the socket, and a failed send gives it back", async () => {
    const { session, call, create, id } = await acceptedOverHttp();
    const memory = session.stack.quota.memory;
    const base = memory.used;
    // A send that fails before queueing (not connected): the body's charge comes back.
    const idle = await create("tcp");
    await assertProblem(
      await call("POST", `/sockets/${idle}/send`, { body: new Uint8Array(3000) }),
      409,
      "ENOTCONN",
    );
    assert.equal(memory.used, base, "nothing stays charged after a refused send");
    // A send that queues everything: the body is charged at most once while it is held,
    // and released when the core took it (what the core holds it charges itself).
    const peak = memory.stats().peak;
    const res = await call("POST", `/sockets/${id}/send`, { body: new Uint8Array(3000) });
    assert.equal(res.status, 200);
    assert.ok(
      memory.stats().peak - Math.max(peak, base) < 2 * 3000,
      `peak grew by ${memory.stats().peak - Math.max(peak, base)}: the body was charged twice`,
    );
  });
});

describe("HTTP API: socket input validation (400 names the field)", () => {
  const cases: Array<[string, string, { json?: unknown; query?: Record<string, string> }, string]> =
    [
      ["POST", "/bind", { json: { port: 70000 } }, "port"],
      ["POST", "/bind", { json: { address: "10.0.2" } }, "address"],
      ["POST", "/bind", { json: { port: "80" } }, "port"],
      ["POST", "/bind", { json: { prot: 1 } }, "(root)"],
      ["POST", "/listen", { json: { backlog: 0 } }, "backlog"],
      ["POST", "/listen", { json: { backlog: 1.5 } }, "backlog"],
      ["POST", "/accept", { json: { timeoutMs: -1 } }, "timeoutMs"],
      ["POST", "/accept", { json: { timeoutMs: 60001 } }, "timeoutMs"],
      ["POST", "/connect", { json: { port: 80 } }, "address"],
      ["POST", "/connect", { json: { address: "10.0.2.15" } }, "port"],
      ["POST", "/connect", { json: { address: "10.0.2.15", port: 0 } }, "port"],
      ["POST", "/connect", { json: { address: "x", port: 80 } }, "address"],
      [
        "POST",
        "/connect",
        { json: { address: "10.0.2.15", port: 1, timeoutMs: "a" } },
        "timeoutMs",
      ],
      ["POST", "/send", { query: { port: "abc", address: "10.0.2.15" } }, "port"],
      ["POST", "/send", { query: { address: "10.0.2.15" } }, "port"],
      ["POST", "/send", { query: { port: "53" } }, "address"],
      ["POST", "/send", { query: { timeoutMs: "-5" } }, "timeoutMs"],
      ["POST", "/send", { query: { adress: "10.0.2.15" } }, "(root)"],
      ["POST", "/recv", { query: { maxBytes: "0" } }, "maxBytes"],
      ["POST", "/recv", { query: { maxBytes: "2000000" } }, "maxBytes"],
      ["POST", "/recv", { query: { timeoutMs: "soon" } }, "timeoutMs"],
      ["POST", "/shutdown", { json: {} }, "how"],
      ["POST", "/shutdown", { json: { how: "sideways" } }, "how"],
      ["DELETE", "", { query: { abort: "maybe" } }, "abort"],
      ["GET", "/stream", { query: { token: "" } }, "token"],
    ];
  for (const [method, path, init, field] of cases) {
    it(`${method} .../sockets/:id${path} ${JSON.stringify(init)} → 400 naming ${field}`, async () => {
      const api = socketApi();
      const id = await api.create(path === "/send" ? "udp" : "tcp");
      const res = await api.call(method, `/sockets/${id}${path}`, init);
      if (field === "(root)") await assertProblem(res, 400, "EINVAL");
      else await assertProblem(res, 400, "EINVAL", field);
    });
  }

  it("reads a JSON body whatever type it is declared as (curl -d says form-urlencoded); empty is {}", async () => {
    const api = socketApi();
    const types = [
      "application/json",
      "application/json; charset=utf-8",
      "application/vnd.netisle+json",
      "application/x-www-form-urlencoded",
      "text/plain;charset=UTF-8",
    ];
    for (const type of types) {
      const res = await api.call("POST", "/sockets", {
        body: '{"protocol":"udp"}',
        headers: { "content-type": type },
      });
      assert.equal(res.status, 201, type);
      assert.equal((await res.json()).protocol, "udp", type);
    }
    const res = await api.call("POST", "/sockets", { body: " ", headers: {} });
    await assertProblem(res, 400, "EINVAL", "protocol");
    // An empty body is {} either way: the first listen answers, the second reaches the
    // handler too (409 EALREADY, not a 400 about its body).
    const id = await api.create("tcp");
    for (const type of ["application/json", "application/x-www-form-urlencoded"]) {
      const bound = await api.call("POST", `/sockets/${id}/listen`, {
        body: "",
        headers: { "content-type": type },
      });
      assert.equal(bound.status, type === "application/json" ? 200 : 409, type);
    }
  });

  it("POST /sockets refuses a missing, unknown or misspelt protocol", async () => {
    const api = socketApi();
    for (const json of [{}, { protocol: "sctp" }, { protocol: "TCP" }]) {
      await assertProblem(await api.call("POST", "/sockets", { json }), 400, "EINVAL", "protocol");
    }
    await assertProblem(
      await api.call("POST", "/sockets", {
        body: "{nope",
        headers: { "content-type": "application/json" },
      }),
      400,
      "EINVAL",
    );
  });

  for (const [method, path, json] of SOCKET_ROUTES) {
    it(`${method} .../sockets/:id${path} refuses a malformed socket id (400 naming id)`, async () => {
      const api = socketApi();
      await assertProblem(
        await api.call(method, `/sockets/not-an-id${path}`, { json }),
        400,
        "EINVAL",
        "id",
      );
    });
  }
});

describe("HTTP API: socket routes need the session's token", () => {
  for (
    const [method, path, json] of [["GET", "/sockets"], ["POST", "/sockets", {
      protocol: "tcp",
    }]] as const
  ) {
    it(`${method} ${path}: 401 without a token and with a wrong one`, async () => {
      const api = socketApi();
      const none = await api.call(method, path, { json, token: null });
      await assertProblem(none, 401, "EUNAUTHORIZED");
      assert.equal(none.headers.get("www-authenticate"), 'Bearer realm="netisle"');
      await assertProblem(
        await api.call(method, path, { json, token: "wrong" }),
        401,
        "EUNAUTHORIZED",
      );
      assert.equal(api.session.sockets.size, 0);
    });
  }

  for (const [method, path, json] of SOCKET_ROUTES) {
    it(`${method} .../sockets/:id${path}: 401 without or with a wrong token; 404 for an unknown id`, async () => {
      const api = socketApi();
      const id = await api.create("tcp");
      await assertProblem(
        await api.call(method, `/sockets/${id}${path}`, { json, token: null }),
        401,
        "EUNAUTHORIZED",
      );
      await assertProblem(
        await api.call(method, `/sockets/${id}${path}`, { json, token: "x" }),
        401,
        "EUNAUTHORIZED",
      );
      await assertProblem(
        await api.call(method, `/sockets/${UNKNOWN_ID}${path}`, { json }),
        404,
        "ENOTFOUND",
      );
      assert.equal(api.session.sockets.size, 1);
    });
  }

  it("one session's token cannot touch another session's sockets", async () => {
    const api = socketApi();
    const mine = await api.create("tcp");
    const other = api.registry.create({});
    const otherAuth = { authorization: `Bearer ${other.token}` };
    // Session B's token on session A's URLs: 401.
    for (const [method, path, json] of SOCKET_ROUTES) {
      await assertProblem(
        await api.call(method, `/sockets/${mine}${path}`, { json, token: other.token }),
        401,
        "EUNAUTHORIZED",
      );
    }
    // A's socket id under B's URL, with B's token: B has no such socket.
    const res = await api.app.request(`/v1/sessions/${other.id}/sockets/${mine}`, {
      headers: otherAuth,
    });
    await assertProblem(res, 404, "ENOTFOUND");
    const del = await api.app.request(`/v1/sessions/${other.id}/sockets/${mine}`, {
      method: "DELETE",
      headers: otherAuth,
    });
    await assertProblem(del, 404, "ENOTFOUND");
    assert.equal(api.session.sockets.size, 1);
    const list = await api.app.request(`/v1/sessions/${other.id}/sockets`, { headers: otherAuth });
    assert.deepEqual((await list.json()).sockets, []);
  });

  it("the stream route also takes the token as ?token=", async () => {
    const api = socketApi();
    const id = await api.create("tcp");
    // Authenticated (not 401), then refused because the socket is not connected... after the
    // upgrade check: a plain GET is 426.
    const res = await api.call("GET", `/sockets/${id}/stream`, {
      token: null,
      query: { token: api.session.token },
    });
    await assertProblem(res, 426, "EUPGRADE");
    await assertProblem(
      await api.call("GET", `/sockets/${id}/stream`, { token: null, query: { token: "nope" } }),
      401,
      "EUNAUTHORIZED",
    );
  });
});

describe("HTTP API: DELETE /v1/sessions/:sid leaves nothing behind", () => {
  it("closes every socket, empties every pcb list, wakes long-polls and clears the timer", async () => {
    const { call, id, lid, session, registry, clock, peer, app, tunnel } = await acceptedOverHttp();
    const b = (await (await call("POST", "/sockets", { json: { protocol: "tcp" } })).json()).id;
    await call("POST", `/sockets/${b}/bind`, { json: { port: 7000 } });
    const u = (await (await call("POST", "/sockets", { json: { protocol: "udp" } })).json()).id;
    await call("POST", `/sockets/${u}/bind`, { json: { port: 53 } });
    // An orphan: a second connection, deleted gracefully, still closing in the core.
    const peer2 = new SessionPeer(session, tunnel, 80, { port: 40001 });
    const p2 = call("POST", `/sockets/${lid}/accept`, { json: {} });
    await settle();
    peer2.connect();
    const orphan = (await (await p2).json()).id;
    await call("DELETE", `/sockets/${orphan}`);
    const waiting = call("POST", `/sockets/${id}/recv`);
    await settle();
    assert.ok(session.timerDeadline !== undefined, "a TCP timer is armed");
    peer.drain();
    const res = await app.request(`/v1/sessions/${session.id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${session.token}` },
    });
    assert.equal(res.status, 204);
    await assertProblem(await waiting, 409, "ENOTCONN");
    assert.equal(registry.size, 0);
    assert.equal(session.sockets.size, 0);
    const t = session.stack.tcp;
    assert.deepEqual(
      {
        bound: t.bound.size,
        listen: t.listeners.size,
        active: t.active.size,
        timeWait: t.timeWait.size,
      },
      { bound: 0, listen: 0, active: 0, timeWait: 0 },
    );
    assert.equal(session.stack.udp.endpoints.size, 0);
    assert.equal(session.timerDeadline, undefined);
    assert.equal(clock.pendingTimers, 0);
    assert.ok(peer.drain().some((s) => s.flags & TcpFlags.RST), "the peer got a RST");
    await assertProblem(await call("GET", "/sockets"), 404, "ENOTFOUND");
  });
});
