/**
 * The JSON the API returns for a session and its sockets, byte for byte
 * (README "HTTP API"): key order, formatting of addresses and every value the
 * view layer builds. Maps the core fills (drop reasons, `TcpInfo`, DHCP
 * counters) are checked to be passed through unchanged, so that new core
 * counters do not break this test while a reshaped view does.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { SessionPeer, settle } from "../socket/_session_peer_test_util.ts";
import type { TcpSocketEntry } from "../socket/socket_entry.ts";
import { udpFrame } from "../stack/udp/_udp_test_util.ts";
import { socketApi } from "./_socket_api_test_util.ts";

const enc = (s: string) => new TextEncoder().encode(s);

/** A session with a listener, an accepted connection holding 5 unread bytes, a bound UDP socket with one datagram, and a created TCP socket. */
async function populated() {
  const api = socketApi();
  const lid = await api.create("tcp");
  await api.call("POST", `/sockets/${lid}/bind`, { json: { port: 80 } });
  await api.call("POST", `/sockets/${lid}/listen`, { json: { backlog: 4 } });
  const peer = new SessionPeer(api.session, api.tunnel, 80);
  const pending = api.call("POST", `/sockets/${lid}/accept`, { json: {} });
  await settle();
  peer.connect();
  const cid = (await (await pending).json()).id as string;
  peer.send(enc("hello"));
  const uid = await api.create("udp");
  await api.call("POST", `/sockets/${uid}/bind`, { json: { port: 5353 } });
  api.session.input([udpFrame({ srcPort: 4000, dstPort: 5353, payload: enc("q") })]);
  const tid = await api.create("tcp");
  const ids: Record<string, string> = { [lid]: "LID", [cid]: "CID", [uid]: "UID", [tid]: "TID" };
  /** GET `path` and its body as text, socket and session ids replaced by names. */
  const text = async (path: string) => {
    const res = await api.call("GET", path);
    assert.equal(res.status, 200);
    let t = await res.text();
    for (const [id, name] of Object.entries(ids)) t = t.replaceAll(id, name);
    return t.replaceAll(api.session.id, "SID");
  };
  return { ...api, lid, cid, uid, tid, text };
}

/** Replaces `obj[key]` by a marker after checking it equals `expected`. */
function passThrough(obj: Record<string, unknown>, key: string, expected: unknown): void {
  assert.deepEqual(obj[key], JSON.parse(JSON.stringify(expected)), `${key} is the core's own`);
  obj[key] = "<core>";
}

describe("the API's JSON views, byte for byte", () => {
  it("GET /v1/sessions/:sid", async () => {
    const { text, session } = await populated();
    const view = JSON.parse(await text(""));
    const core = session.stack.counters.snapshot();
    passThrough(view.counters, "drops", { ...core.drops, input_queue_full: 0 });
    passThrough(view.dhcp, "stats", session.stack.dhcp!.stats);
    passThrough(view.quota, "memory", session.stack.quota.memory.stats());
    assert.equal(
      JSON.stringify(view),
      '{"id":"SID","mac":"02:00:00:00:00:02","ipv4":{"address":"10.0.2.2","prefixLength":24},' +
        '"ipv6":{"address":"fd00::2","prefix":"fd00::/64","linkLocal":"fe80::ff:fe00:2",' +
        '"neighbors":[],"pathMtu":[],"routerAdvertisements":{"sent":0,"solicited":0,' +
        '"coalesced":0},"reassembly":{"completed":0,"timedOut":0,"discarded":0},' +
        '"dhcpv6":{"replies":0,"dropped":0}},"mtu":1500,"ageMs":0,"idleMs":0,"tunnel":{"attached":true,"kind":"test",' +
        '"attachedForMs":0,"attaches":1,"rejectedMessages":0,"backpressureDrops":0},' +
        '"counters":{"rxFrames":4,"rxBytes":214,"rxHandled":4,"txFrames":2,"txBytes":118,' +
        '"drops":"<core>","txDrops":{"no_tunnel":0}},"arp":[{"address":"10.0.2.15",' +
        '"mac":"52:54:00:12:34:56","state":"reachable","queued":0}],"coreLock":{' +
        '"acquisitions":14,"heldMs":0,"maxHeldMs":0,"reentries":0,"frameWait":{"count":4,' +
        '"p50Ms":0,"p99Ms":0,"maxMs":0,"meanMs":0},"timerLateness":{"count":0,"p50Ms":0,' +
        '"p99Ms":0,"maxMs":0,"meanMs":0}},"reassembly":{"completed":0,"timedOut":0,' +
        '"discarded":0},"dhcp":{"leases":[],"stats":"<core>"},"quota":{"sockets":{"used":4,' +
        '"limit":256,"refused":0},"memory":"<core>"},"egress":null}',
    );
  });

  it("GET /v1/sessions/:sid/sockets", async () => {
    const { text, session } = await populated();
    const list = JSON.parse(await text("/sockets"));
    passThrough(list.quota, "memory", session.stack.quota.memory.stats());
    assert.equal(
      JSON.stringify(list),
      '{"sockets":[{"id":"LID","protocol":"tcp","state":"listening","tcpState":null,' +
        '"pcbList":"listen","local":{"address":"10.0.2.2","port":80},"remote":null,' +
        '"sendQueued":0,"recvQueued":0,"acceptedFrom":null,"streaming":false,"error":null,' +
        '"acceptQueue":0},{"id":"CID","protocol":"tcp","state":"connected","tcpState":"ESTABLISHED",' +
        '"pcbList":"active","local":{"address":"10.0.2.2","port":80},"remote":{' +
        '"address":"10.0.2.15","port":40000},"sendQueued":0,"recvQueued":5,' +
        '"acceptedFrom":"LID","streaming":false,"error":null,"acceptQueue":null},{"id":"UID",' +
        '"protocol":"udp",' +
        '"state":"bound","tcpState":null,"pcbList":"udp","local":{"address":"10.0.2.2",' +
        '"port":5353},"remote":null,"sendQueued":0,"recvQueued":1,"acceptedFrom":null,' +
        '"streaming":false,"error":null,"acceptQueue":null},{"id":"TID","protocol":"tcp",' +
        '"state":"created",' +
        '"tcpState":null,"pcbList":"none","local":null,"remote":null,"sendQueued":0,' +
        '"recvQueued":0,"acceptedFrom":null,"streaming":false,"error":null,"acceptQueue":null}],' +
        '"pcbs":{"bound":0,"listen":1,"active":1,"timeWait":0,"udp":1},"bufferedBytes":6,' +
        '"limits":{"maxSockets":256,"maxBufferedBytes":33554432},"quota":{"sockets":{' +
        '"used":4,"limit":256,"refused":0},"memory":"<core>"}}',
    );
  });

  it("GET /v1/sessions/:sid/sockets/:id of a listener, a connection and a UDP socket", async () => {
    const { text, session, lid, cid, uid } = await populated();
    assert.equal(
      await text(`/sockets/${lid}`),
      '{"id":"LID","protocol":"tcp","state":"listening","tcpState":null,"pcbList":"listen",' +
        '"local":{"address":"10.0.2.2","port":80},"remote":null,"sendQueued":0,' +
        '"recvQueued":0,"acceptedFrom":null,"streaming":false,"error":null,"acceptQueue":0,' +
        '"tcp":null,"listener":{"backlog":4,"synQueue":0,"acceptQueue":0,"cookiesSent":0,' +
        '"cookiesAccepted":0},"udp":null}',
    );
    const conn = JSON.parse(await text(`/sockets/${cid}`));
    passThrough(conn, "tcp", (session.sockets.get(cid) as TcpSocketEntry).socket!.info());
    assert.equal(
      JSON.stringify(conn),
      '{"id":"CID","protocol":"tcp","state":"connected","tcpState":"ESTABLISHED",' +
        '"pcbList":"active","local":{"address":"10.0.2.2","port":80},"remote":{' +
        '"address":"10.0.2.15","port":40000},"sendQueued":0,"recvQueued":5,' +
        '"acceptedFrom":"LID","streaming":false,"error":null,"acceptQueue":null,"tcp":"<core>",' +
        '"listener":null,"udp":null}',
    );
    assert.equal(
      await text(`/sockets/${uid}`),
      '{"id":"UID","protocol":"udp","state":"bound","tcpState":null,"pcbList":"udp",' +
        '"local":{"address":"10.0.2.2","port":5353},"remote":null,"sendQueued":0,' +
        '"recvQueued":1,"acceptedFrom":null,"streaming":false,"error":null,"acceptQueue":null,' +
        '"tcp":null,"listener":null,"udp":{"queuedDatagrams":1,"rxDatagrams":1,"rxBytes":1,' +
        '"rxQueueDrops":0,"txDatagrams":0,"txBytes":0,"txDrops":0}}',
    );
  });
});

describe("the views show connections waiting to be accepted", () => {
  it("a listener's row counts its accept queue; the quota counts each queued connection's unit", async () => {
    const api = socketApi();
    const lid = await api.create("tcp");
    await api.call("POST", `/sockets/${lid}/listen`, { json: { backlog: 4 } });
    const port = (api.session.sockets.get(lid) as TcpSocketEntry).local!.port;
    const units = api.session.stack.quota.sockets;
    for (const p of [40000, 40001]) {
      new SessionPeer(api.session, api.tunnel, port, { port: p }).connect();
    }
    assert.equal(units.used, 3, "the listener and a unit for each queued connection");
    const list = await (await api.call("GET", "/sockets")).json();
    assert.equal(list.sockets[0].acceptQueue, 2);
    assert.deepEqual(list.quota.sockets, { used: 3, limit: 256, refused: 0 });
    const view = await (await api.call("GET", "")).json();
    assert.deepEqual(view.quota.sockets, list.quota.sockets);
    assert.deepEqual(view.quota.memory, api.session.stack.quota.memory.stats());
  });
});
