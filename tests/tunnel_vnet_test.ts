/**
 * The vnet-stream tunnel subprotocol (segmentation and checksum offload
 * across the tunnel, DESIGN.md "Tunnel wire formats"): negotiation before
 * QEMU stream, records of a virtio-net header and a frame both ways, a TSO
 * packet from the client taken whole, the stack's large segments to the
 * client with their segment size, partial checksums, the session view, and
 * the client library with a port that passes records through (and its
 * fallback to QEMU stream).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import WsWebSocket from "ws";
import {
  EthernetRepr,
  EtherType,
  IpProtocol,
  ipv4PseudoHeaderSum,
  Ipv4Repr,
  parseMacAddress,
  readVnetHeader,
  TcpFlags,
  TcpRepr,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_TCPV4,
  VNET_HDR_LEN,
  writePartialTcpChecksum,
  writeVnetHeader,
} from "../src/wire/mod.ts";
import {
  framingForSubprotocol,
  QEMU_STREAM_SUBPROTOCOL,
  selectTunnelSubprotocol,
  VNET_STREAM_SUBPROTOCOL,
} from "../src/wire/tunnel_protocol.ts";
import { encodeStreamFrames, StreamDeframer } from "../src/wire/stream_framing.ts";
import { TunnelClient, type WebSocketConstructor } from "../tunnel/client.ts";
import { LinkOffload } from "../src/stack/frame_offload.ts";
import type { TcpConnection, TcpListener } from "../src/stack/mod.ts";
import type { Session } from "../src/session/mod.ts";
import {
  arpRequest,
  createSession,
  echoRequest,
  eventually,
  isArpReply,
  isEchoReply,
  MemoryPort,
  PEER_IP,
  PEER_MAC,
  STACK_IP,
  withServer,
} from "./_tunnel_test_util.ts";

/** A record: a virtio-net header (all zero unless given) and the frame. */
function record(frame: Uint8Array, header?: (b: Uint8Array) => void): Uint8Array {
  const r = new Uint8Array(VNET_HDR_LEN + frame.length);
  header?.(r);
  r.set(frame, VNET_HDR_LEN);
  return r;
}

/** A TCP segment from the peer (10.0.2.15:40000) to the stack's `port`. */
function tcpFrame(stackMac: Uint8Array, port: number, s: Partial<TcpRepr>): Uint8Array {
  const tcp: TcpRepr = {
    srcPort: 40000,
    dstPort: port,
    seqNumber: 0,
    ackNumber: 0,
    flags: TcpFlags.ACK,
    windowLen: 65535,
    payload: new Uint8Array(0),
    ...s,
  };
  const len = TcpRepr.bufferLen(tcp);
  const f = new Uint8Array(14 + 20 + len);
  EthernetRepr.emit({ dst: stackMac, src: PEER_MAC, etherType: EtherType.IPV4 }, f);
  Ipv4Repr.emit(
    { src: PEER_IP, dst: STACK_IP, protocol: IpProtocol.TCP, payloadLen: len, ttl: 64 },
    f.subarray(14),
  );
  TcpRepr.emit(tcp, f.subarray(34), PEER_IP, STACK_IP);
  return f;
}

/** A raw vnet-stream client: every record the server sent, deframed. */
async function openVnetClient(url: string) {
  const ws = new WebSocket(url, [VNET_STREAM_SUBPROTOCOL, QEMU_STREAM_SUBPROTOCOL]);
  ws.binaryType = "arraybuffer";
  const records: Uint8Array[] = [];
  const deframer = new StreamDeframer(VNET_HDR_LEN + 14 + 65535, (r) => records.push(r.slice()));
  ws.onmessage = (ev) =>
    assert.equal(deframer.push(new Uint8Array(ev.data as ArrayBuffer)), undefined);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`WebSocket to ${url} failed`));
  });
  const send = (...recs: Uint8Array[]) => ws.send(encodeStreamFrames(recs));
  return { ws, records, send };
}

describe("vnet-stream negotiation (pure)", () => {
  it("prefers the vnet stream when offered, and falls back to QEMU stream", () => {
    const both = `${VNET_STREAM_SUBPROTOCOL}, ${QEMU_STREAM_SUBPROTOCOL}`;
    assert.equal(selectTunnelSubprotocol(both), VNET_STREAM_SUBPROTOCOL);
    assert.equal(
      selectTunnelSubprotocol(`${QEMU_STREAM_SUBPROTOCOL}, ${VNET_STREAM_SUBPROTOCOL}`),
      VNET_STREAM_SUBPROTOCOL,
    );
    assert.equal(selectTunnelSubprotocol(QEMU_STREAM_SUBPROTOCOL), QEMU_STREAM_SUBPROTOCOL);
    assert.equal(framingForSubprotocol(VNET_STREAM_SUBPROTOCOL), "vnet-stream");
  });
});

describe("tunnel with the vnet stream subprotocol", () => {
  it("carries records both ways and tells the stack its link offloads", async () => {
    await withServer(async (base, registry) => {
      const s = await createSession(base);
      const mac = parseMacAddress(s.mac);
      const c = await openVnetClient(`${s.tunnel.url}?token=${s.token}`);
      assert.equal(c.ws.protocol, VNET_STREAM_SUBPROTOCOL);
      const session = registry.get(s.id)!;
      assert.ok(await eventually(() => session.tunnelAttached));
      assert.equal(session.stack.linkOffload, LinkOffload.TSO | LinkOffload.CSUM);
      assert.match(session.tunnel!.description, /vnet-stream.*offload/);
      c.send(record(arpRequest()), record(echoRequest(mac, 7)));
      assert.ok(
        await eventually(() => c.records.some((r) => isEchoReply(7)(r.subarray(VNET_HDR_LEN)))),
      );
      const arp = c.records.find((r) => isArpReply(r.subarray(VNET_HDR_LEN)))!;
      assert.deepEqual(Array.from(arp.subarray(0, VNET_HDR_LEN)), new Array(10).fill(0));
      c.ws.close();
      assert.ok(await eventually(() => !session.tunnelAttached));
      assert.equal(session.stack.linkOffload, 0, "no offload without the tunnel");
    });
  });

  it("takes a TSO packet whole and sends large segments with their segment size", async () => {
    await withServer(async (base, registry) => {
      const s = await createSession(base);
      const mac = parseMacAddress(s.mac);
      const session = registry.get(s.id)!;
      const listener = session.withCore((stack) => stack.tcp.listen(9, 4));
      const c = await openVnetClient(`${s.tunnel.url}?token=${s.token}`);
      assert.ok(await eventually(() => session.tunnelAttached));
      c.send(record(arpRequest()));
      // The handshake, the peer's window large (scale 7) and MSS 1460.
      c.send(record(tcpFrame(mac, 9, {
        seqNumber: 100,
        flags: TcpFlags.SYN,
        mss: 1460,
        windowScale: 7,
        sackPermitted: true,
      })));
      let synAck: TcpRepr | undefined;
      assert.ok(
        await eventually(() => {
          for (const r of c.records) {
            const f = r.subarray(VNET_HDR_LEN);
            if (f[23] === IpProtocol.TCP && (f[34 + 13] & TcpFlags.SYN)) synAck = decode(f);
          }
          return synAck !== undefined;
        }),
      );
      const ack = (synAck!.seqNumber + 1) >>> 0;
      c.send(record(tcpFrame(mac, 9, { seqNumber: 101, ackNumber: ack, windowLen: 8192 })));
      const conn = await waitAccept(session, listener);
      // A TSO packet of 20 segments from the client's kernel: partial checksum, gso_size 1000.
      const data = new Uint8Array(20_000).map((_, i) => i * 13);
      const big = tcpFrame(mac, 9, {
        seqNumber: 101,
        ackNumber: ack,
        windowLen: 8192,
        flags: TcpFlags.ACK | TcpFlags.PSH,
        payload: data,
      });
      writePartialTcpChecksum(big, 34, ipv4PseudoHeaderSum(PEER_IP, STACK_IP, 6, big.length - 34));
      c.records.length = 0;
      c.send(
        record(
          big,
          (b) => writeVnetHeader(b, 0, VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, 54, 1000, 34, 16),
        ),
      );
      assert.ok(await eventually(() => conn.readableBytes === 20_000), "taken whole");
      assert.deepEqual(session.withCore((_, now) => conn.read(1 << 20, now)), data);
      // The stack sends 30,000 bytes: large segments with the peer's MSS, checksums partial.
      session.withCore((_, now) => conn.send(new Uint8Array(30_000), now));
      assert.ok(await eventually(() => c.records.some((r) => r[1] === VNET_GSO_TCPV4)));
      const gso = c.records.find((r) => r[1] === VNET_GSO_TCPV4)!;
      const h = readVnetHeader(gso, 0);
      assert.equal(h.flags, VNET_F_NEEDS_CSUM);
      assert.equal(h.gsoSize, 1460);
      assert.equal(h.csumStart, 34);
      assert.equal(h.csumOffset, 16);
      assert.equal(h.hdrLen, 54);
      assert.equal((gso.length - VNET_HDR_LEN - 54) % 1460, 0, "whole segments");
      c.ws.close();
    });
  });

  it("the client library offers it first, passes records through, falls back to QEMU stream", async () => {
    await withServer(async (base, registry) => {
      for (const serverKnowsVnet of [true, false]) {
        const s = await createSession(base);
        const mac = parseMacAddress(s.mac);
        const port = new PassthroughPort();
        // A server without the vnet stream: as if it did not know the name (it answers the other).
        const WS = serverKnowsVnet ? WsWebSocket : class extends WsWebSocket {
          constructor(url: string, protocols?: string[]) {
            super(url, protocols?.filter((p) => p !== VNET_STREAM_SUBPROTOCOL));
          }
        };
        const client = new TunnelClient({
          server: base,
          sessionId: s.id,
          token: s.token,
          port,
          framing: "vnet-stream",
          WebSocket: WS as unknown as WebSocketConstructor,
        });
        client.start();
        const session = registry.get(s.id)!;
        assert.ok(await eventually(() => session.tunnelAttached && client.state === "open"));
        assert.equal(port.passthrough, serverKnowsVnet);
        assert.equal(client.activeFraming, serverKnowsVnet ? "vnet-stream" : "qemu-stream");
        const wrap = (f: Uint8Array) => serverKnowsVnet ? record(f) : f;
        port.sink!([wrap(arpRequest()), wrap(echoRequest(mac, 3))]);
        const strip = (f: Uint8Array) => serverKnowsVnet ? f.subarray(VNET_HDR_LEN) : f;
        await port.waitFor((f) => isEchoReply(3)(strip(f)));
        assert.equal(client.stats.framesUp, 2);
        await client.close();
      }
    });
  });
});

/** A memory port that can pass records through (as a TAP with offloads). */
class PassthroughPort extends MemoryPort {
  passthrough = false;
  setVnetPassthrough(on: boolean): boolean {
    this.passthrough = on;
    return on;
  }
}

function decode(f: Uint8Array): TcpRepr {
  const len = ((f[16] << 8) | f[17]) - 20;
  const seg = f.subarray(34, 34 + len);
  return {
    srcPort: (seg[0] << 8) | seg[1],
    dstPort: (seg[2] << 8) | seg[3],
    seqNumber: ((seg[4] << 24) | (seg[5] << 16) | (seg[6] << 8) | seg[7]) >>> 0,
    ackNumber: ((seg[8] << 24) | (seg[9] << 16) | (seg[10] << 8) | seg[11]) >>> 0,
    flags: seg[13],
    windowLen: (seg[14] << 8) | seg[15],
    payload: seg.subarray((seg[12] >> 4) * 4),
  };
}

async function waitAccept(session: Session, listener: TcpListener): Promise<TcpConnection> {
  let conn: TcpConnection | undefined;
  assert.ok(
    await eventually(() => (conn ??= session.withCore(() => listener.accept())) !== undefined),
  );
  return conn!;
}
