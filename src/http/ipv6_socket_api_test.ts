/**
 * TCP over IPv6 through the socket API (issue 17): a session made by the
 * API talks to a second stack on its link at fd00::15, both ways, over real
 * TCP in one process.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Session, SessionRegistry, SystemClock } from "../session/mod.ts";
import { TcpServer, TcpSocket } from "../socket/mod.ts";
import { parseIpv4Address, parseIpv6Address, parseMacAddress } from "../wire/mod.ts";
import { createApp } from "./app.ts";

/** An API session (fd00::2) and a peer stack at fd00::15 whose tunnels deliver to each other. */
function setup(ipv6: boolean | undefined = undefined) {
  const registry = new SessionRegistry({ clock: new SystemClock() });
  const app = createApp({ registry, requestLog: false });
  const session = registry.create({
    mac: parseMacAddress("02:00:00:00:00:02"),
    ...(ipv6 === false ? { ipv6: false } : {}),
  });
  const peer = new Session({
    id: "s_peer",
    token: "peer",
    clock: new SystemClock(),
    stack: {
      mac: parseMacAddress("02:00:00:00:00:0f"),
      ipv4: { address: parseIpv4Address("10.0.2.15"), prefixLength: 24 },
      mtu: 1500,
      ipv6: { prefix: parseIpv6Address("fd00::"), address: parseIpv6Address("fd00::15") },
    },
  });
  const wire = (from: Session, to: Session) =>
    from.attachTunnel({
      description: `to ${to.id}`,
      send: (frames) => {
        const copies = frames.map((f) => f.slice());
        setTimeout(() => to.input(copies), 0);
      },
      close: () => {},
    });
  wire(session, peer);
  wire(peer, session);
  const call = (
    method: string,
    path: string,
    json?: unknown,
    query?: Record<string, string>,
    body?: Uint8Array<ArrayBuffer>,
  ) =>
    app.request(
      new Request(
        `http://localhost/v1/sessions/${session.id}${path}${
          query ? "?" + new URLSearchParams(query) : ""
        }`,
        {
          method,
          headers: {
            authorization: `Bearer ${session.token}`,
            ...(json !== undefined ? { "content-type": "application/json" } : {}),
          },
          body: json !== undefined ? JSON.stringify(json) : body,
        },
      ),
    );
  const create = async () => {
    const res = await call("POST", "/sockets", { protocol: "tcp" });
    assert.equal(res.status, 201);
    return (await res.json()).id as string;
  };
  const close = () => {
    registry.delete(session.id);
    peer.close();
  };
  return { registry, session, peer, call, create, close };
}

describe("TCP over IPv6 through the socket API (issue 17)", () => {
  it("connects to [fd00::15]:7, echoes bytes, and shows both IPv6 endpoints", async () => {
    const { peer, call, create, close } = setup();
    const server = TcpServer.listen(peer, { port: 7, backlog: 4 });
    try {
      (async () => {
        const c = await server.accept();
        await c.readable.pipeTo(c.writable);
      })();
      const id = await create();
      const res = await call("POST", `/sockets/${id}/connect`, { address: "fd00::15", port: 7 });
      assert.equal(res.status, 200);
      const opened = await res.json();
      assert.deepEqual(opened, {
        local: { address: "fd00::2", port: opened.local.port },
        remote: { address: "fd00::15", port: 7 },
      });
      const payload = new Uint8Array(200_000).map((_, i) => (i * 7) & 0xff);
      const sent = await call("POST", `/sockets/${id}/send`, undefined, undefined, payload);
      assert.equal(sent.status, 200);
      const got: number[] = [];
      while (got.length < payload.length) {
        const r = await call("POST", `/sockets/${id}/recv`, undefined, { maxBytes: "65536" });
        assert.equal(r.status, 200);
        got.push(...new Uint8Array(await r.arrayBuffer()));
      }
      assert.deepEqual(new Uint8Array(got), payload);
      const view = await (await call("GET", `/sockets/${id}`)).json();
      assert.equal(view.local.address, "fd00::2");
      assert.equal(view.remote.address, "fd00::15");
    } finally {
      server.close();
      close();
    }
  });

  it("accepts a connection from fd00::15 on a port bound to ::", async () => {
    const { peer, call, create, close } = setup();
    try {
      const id = await create();
      const bound = await call("POST", `/sockets/${id}/bind`, { address: "::", port: 8080 });
      assert.equal(bound.status, 200);
      assert.deepEqual(await bound.json(), { local: { address: "fd00::2", port: 8080 } });
      assert.equal((await call("POST", `/sockets/${id}/listen`, {})).status, 200);
      const client = TcpSocket.open(peer, { address: "fd00::2", port: 8080 });
      await client.established({ timeoutMs: 5000 });
      const acc = await call("POST", `/sockets/${id}/accept`, { timeoutMs: 5000 });
      assert.equal(acc.status, 200);
      const child = await acc.json();
      assert.deepEqual(child.remote, { address: "fd00::15", port: client.conn.localPort });
      assert.deepEqual(child.local, { address: "fd00::2", port: 8080 });
      client.close();
    } finally {
      close();
    }
  });

  it("says why it cannot reach an IPv6 address: off the link, its own, or no IPv6", async () => {
    const { call, create, close } = setup();
    const off = setup(false);
    try {
      const cases: Array<[string, RegExp]> = [
        ["2001:db8::1", /no route to 2001:db8::1: only hosts on the session's link/],
        ["fd00::2", /fd00::2 is the session's own address/],
      ];
      for (const [address, detail] of cases) {
        const id = await create();
        const res = await call("POST", `/sockets/${id}/connect`, { address, port: 22 });
        const body = await res.json();
        assert.equal(body.code, "EHOSTUNREACH", address);
        assert.match(body.detail, detail);
      }
      const id = await off.create();
      const res = await off.call("POST", `/sockets/${id}/connect`, {
        address: "fd00::15",
        port: 22,
      });
      const body = await res.json();
      assert.equal(body.code, "EHOSTUNREACH");
      assert.match(body.detail, /the session has no IPv6/);
      const bad = await call("POST", `/sockets/${await create()}/connect`, {
        address: "fd00::zz",
        port: 22,
      });
      assert.equal(bad.status, 400);
      assert.match(
        JSON.stringify(await bad.json()),
        /an IPv4 address \(e\.g\. 10\.0\.2\.15\) or an IPv6 address/,
      );
      const bind = await call("POST", `/sockets/${await create()}/bind`, { address: "fd00::9" });
      assert.equal(bind.status, 400);
      assert.match((await bind.json()).detail, /cannot bind to fd00::9/);
    } finally {
      close();
      off.close();
    }
  });
});
