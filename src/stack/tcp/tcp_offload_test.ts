import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ArpOperation,
  ArpRepr,
  EthernetRepr,
  EtherType,
  TcpFlags,
  type TcpRepr,
} from "../../wire/mod.ts";
import { finishOffloadedFrames, FrameOffload, LinkOffload } from "../frame_offload.ts";
import {
  bytes,
  decodeTcpFrame,
  established,
  FULL_SYN_OPTIONS,
  HARNESS_PEER_IP,
  HARNESS_PEER_MAC,
  HARNESS_STACK_IP,
  HARNESS_STACK_MAC,
} from "./tcp_harness.ts";

const { ACK, PSH } = TcpFlags;

/** The peer's ARP reply to the stack (10.0.2.15 is at 52:54:00:12:34:56). */
function arpReply(): Uint8Array {
  const f = new Uint8Array(60);
  EthernetRepr.emit({ dst: HARNESS_STACK_MAC, src: HARNESS_PEER_MAC, etherType: EtherType.ARP }, f);
  ArpRepr.emit({
    operation: ArpOperation.REPLY,
    senderMac: HARNESS_PEER_MAC,
    senderIp: HARNESS_PEER_IP,
    targetMac: HARNESS_STACK_MAC,
    targetIp: HARNESS_STACK_IP,
  }, f.subarray(14));
  return f;
}

/** A connection to a Linux-like peer with a 1 MiB window; `offload` tells the stack its link's. */
function bulk(offload: number) {
  const e = established({ peer: { syn: FULL_SYN_OPTIONS, window: 1 << 20 } });
  e.h.stack.setLinkOffload(offload);
  e.peer.drain();
  return e;
}

/** The TCP view of a segment, without what differs between paths (checksum, IPv4 id). */
const view = (s: TcpRepr) => ({ ...s, payload: Array.from(s.payload) });

describe("TCP segmentation offload (a link that cuts large segments itself)", () => {
  it("sends segments of up to 64 KiB in whole MSS pieces with the MSS as segment size", () => {
    const { h, conn } = bulk(LinkOffload.TSO | LinkOffload.CSUM);
    assert.equal(h.stack.linkOffload, LinkOffload.TSO | LinkOffload.CSUM);
    conn.send(bytes(100_000), h.now);
    const { frames, offload } = h.link.drainWithOffload();
    const mss = conn.info().sendMss;
    assert.equal(mss, 1448);
    // The initial window is 10 segments: one GSO packet of 10 × MSS.
    assert.equal(frames.length, 1);
    assert.equal(offload![0], FrameOffload.GSO_TCPV4 | FrameOffload.CSUM_PARTIAL | mss);
    assert.equal(frames[0].length, 14 + 20 + 32 + 10 * mss);
    // The checksum is partial: the frame does not verify as it is...
    assert.throws(() => decodeTcpFrame(frames[0]), /tcp_bad_checksum/);
    // ...and cut in software it is exactly what the stack sends without offload.
    const cut = finishOffloadedFrames(frames, offload!).map(decodeTcpFrame);
    const plain = bulk(0);
    plain.conn.send(bytes(100_000), plain.h.now);
    const want = plain.h.drain();
    assert.equal(cut.length, 10);
    assert.deepEqual(cut.map(view), want.map(view));
  });

  it("leaves only the checksum to a link with checksum offload alone", () => {
    const { h, conn } = bulk(LinkOffload.CSUM);
    conn.send(bytes(3 * 1448), h.now);
    const { frames, offload } = h.link.drainWithOffload();
    assert.equal(frames.length, 3);
    assert.deepEqual(offload, [1, 2, 3].map(() => FrameOffload.CSUM_PARTIAL));
    const done = finishOffloadedFrames(frames, offload!).map(decodeTcpFrame);
    assert.deepEqual(done.map((s) => s.payload.length), [1448, 1448, 1448]);
  });

  it("keeps a large segment to whole MSS pieces when the window cuts it", () => {
    const { h, conn, peer } = bulk(LinkOffload.TSO | LinkOffload.CSUM);
    conn.send(bytes(200_000), h.now);
    h.link.drainWithOffload();
    // ACK 4 segments: slow start opens cwnd by 2 MSS per ACK of new data (ABC, L = 2).
    peer.ackTo((peer.ack + 4 * 1448) >>> 0);
    const { frames, offload } = h.link.drainWithOffload();
    assert.equal(frames.length, 1);
    const seg = decodeTcpFrame(finishOffloadedFrames(frames, offload!)[0]);
    assert.equal(frames[0].length - 66, 6 * 1448, "4 freed + 2 grown");
    assert.equal(seg.flags, ACK);
  });

  it("takes a GSO packet from the link whole and ACKs it at once, as GRO would", () => {
    const { h, peer, conn } = established({ peer: { syn: FULL_SYN_OPTIONS } });
    const data = bytes(30 * 1448);
    peer.inject({
      flags: ACK | PSH,
      payload: data,
    });
    // A frame of 43 KiB is over the MTU: without offload metadata it is dropped.
    assert.equal(h.stack.counters.drops.ethernet_oversized, 1);
    assert.deepEqual(peer.drain(), []);
    h.inject(peer.seg({ flags: ACK | PSH, payload: data }), {
      offload: FrameOffload.GSO_TCPV4 | FrameOffload.CSUM_VALID | 1448,
    });
    peer.seq = (peer.seq + data.length) >>> 0;
    const [ack] = peer.drain();
    assert.equal(ack.ackNumber, peer.seq, "acknowledged at once: 30 segments' worth");
    assert.deepEqual(conn.read(1 << 20, h.now), data);
  });

  it("does not verify a checksum the link vouched for; verifies it otherwise", () => {
    const { h, peer, conn } = established({ peer: { syn: FULL_SYN_OPTIONS } });
    h.inject(peer.seg({ flags: ACK | PSH, payload: bytes(10) }), { corrupt: true });
    assert.equal(h.stack.counters.drops.tcp_bad_checksum, 1);
    h.inject(peer.seg({ flags: ACK | PSH, payload: bytes(10) }), {
      corrupt: true,
      offload: FrameOffload.CSUM_VALID,
    });
    assert.equal(conn.readableBytes, 10, "taken as the link said");
  });

  it("finishes offloaded frames that must wait for ARP (the link may change meanwhile)", () => {
    const { h, conn } = bulk(LinkOffload.TSO | LinkOffload.CSUM);
    h.advance(1e12 + 2000); // the peer's ARP entry expires: it must be resolved again
    conn.send(bytes(5 * 1448), h.now);
    const asked = h.link.drainWithOffload();
    assert.equal(asked.frames.length, 1, "an ARP request; the segment waits");
    assert.equal(asked.offload, undefined);
    h.stack.input(arpReply(), h.now);
    const { frames, offload } = h.link.drainWithOffload();
    assert.equal(offload, undefined, "the waiting GSO packet was cut and finished");
    assert.equal(frames.length, 5);
    assert.ok(frames.every((f) => decodeTcpFrame(f).payload.length === 1448));
  });
});
