import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TcpFlags } from "../../wire/mod.ts";
import { bufferCost, createSessionQuota } from "../session_quota.ts";
import { BARE_PEER, bytes, established, readAll, seg } from "./tcp_harness.ts";
import { RECEIVE_MIN_CHUNK_BYTES } from "./receive_queue.ts";
import { DEFAULT_PAGE_BYTES, pageTableCost } from "./paged_ring.ts";

const { ACK } = TcpFlags;

const CHUNK_1K = bufferCost(RECEIVE_MIN_CHUNK_BYTES);
const PAGE = bufferCost(DEFAULT_PAGE_BYTES);
/**
 * The out-of-order ring's page table, charged while a page is held: the harness's 512 KiB
 * receive buffer plus a window scale's 16 KiB of slack (tcp_receiver.ts), in 4 KiB pages.
 */
const TABLE = pageTableCost((512 * 1024 + (1 << 14)) / DEFAULT_PAGE_BYTES);

/** A connection with a peer that offered no options, in a session whose memory quota is `bytes`. */
function withQuota(bytes: number) {
  const quota = createSessionQuota({ maxBufferedBytes: bytes, maxSockets: 8 });
  return { quota, ...established({ quota, peer: BARE_PEER }) };
}

describe("received bytes are copied into owned, charged storage (DESIGN.md: frames are borrowed)", () => {
  it("keeps no view of the frame: the peer's frame may be overwritten once input returns", () => {
    const { h, peer, conn } = established({ peer: BARE_PEER });
    const frame = h.frame(peer.seg({ flags: ACK, payload: bytes(100, 7) }));
    h.stack.input(frame, h.now);
    frame.fill(0);
    assert.deepEqual(conn.read(1000, h.now), bytes(100, 7));
  });

  it("coalesces 1,000 one-byte segments into one chunk: a byte costs about a byte", () => {
    const { h, peer, conn, quota, s } = withQuota(1 << 20);
    for (let i = 0; i < 1000; i++) peer.send(bytes(1, i));
    assert.equal(conn.readableBytes, 1000);
    assert.equal(conn.chargedBytes, CHUNK_1K, "one 1 KiB chunk holds them");
    assert.equal(quota.memory.used, CHUNK_1K);
    // Every second segment is acknowledged at once (RFC 5681 §4.2): the last ACK covers all.
    // The right edge moves by at least an MSS at a time (RFC 9293 §3.8.6.2.2): 464 bytes
    // since it last moved are not offered again yet.
    const acks = peer.drain();
    assert.equal(acks.length, 500);
    assert.deepEqual(
      acks[499],
      seg({ seqNumber: s, ackNumber: 2001, flags: ACK, windowLen: 65071 }),
    );
    const data = readAll(conn, h.now);
    assert.deepEqual(data, new Uint8Array(1000).map((_, i) => i & 0xff));
    assert.equal(conn.chargedBytes, 0, "read out: the chunk is freed");
    assert.equal(quota.memory.used, 0);
  });

  it("keeps out-of-order one-byte segments in one page and moves them into the queue when the hole fills", () => {
    const { h, peer, conn, quota, s } = withQuota(1 << 20);
    for (let i = 1; i <= 1000; i++) peer.sendAt(1001 + i, bytes(1, i));
    assert.equal(conn.info().outOfOrderBytes, 1000);
    assert.equal(conn.chargedBytes, PAGE + TABLE, "one page (and its table) holds the 1,000 bytes");
    assert.equal(quota.memory.used, PAGE + TABLE);
    assert.equal(peer.drain().length, 1000, "a duplicate ACK for each (RFC 5681 §4.2)");
    peer.sendAt(1001, bytes(1, 0));
    assert.deepEqual(peer.drain(), [
      seg({ seqNumber: s, ackNumber: 2002, flags: ACK, windowLen: 65535 }),
    ]);
    assert.equal(
      conn.chargedBytes,
      CHUNK_1K,
      "the page is freed, the queue's 1 KiB chunk holds all",
    );
    assert.equal(quota.memory.used, CHUNK_1K);
    assert.deepEqual(readAll(conn, h.now), new Uint8Array(1001).map((_, i) => i & 0xff));
    assert.equal(quota.memory.used, 0);
  });

  it("charges the send buffer's storage as it grows and frees it when the connection closes", () => {
    const { h, peer, conn, quota } = withQuota(1 << 20);
    conn.send(bytes(100), h.now);
    assert.equal(quota.memory.used, bufferCost(4096), "the first write allocates 4 KiB");
    conn.send(bytes(6000), h.now);
    assert.equal(
      quota.memory.used,
      bufferCost(8192),
      "grown by doubling: the old storage released",
    );
    peer.drainAndAck();
    conn.abort(h.now);
    assert.equal(quota.memory.used, 0);
  });

  it("frees the send buffer's storage once our FIN is acknowledged, not when TIME_WAIT ends", () => {
    const { h, peer, conn, quota } = withQuota(1 << 20);
    conn.send(bytes(6000), h.now);
    assert.equal(quota.memory.used, bufferCost(8192));
    conn.shutdownWrite(h.now);
    // The data and the FIN, acknowledged as they come (the window opens over a few rounds).
    for (let i = 0; i < 10 && conn.state !== "FIN_WAIT_2"; i++) peer.drainAndAck();
    assert.equal(conn.state, "FIN_WAIT_2");
    assert.equal(quota.memory.used, 0, "nothing left to send or to resend");
    peer.send(new Uint8Array(0), { flags: ACK | TcpFlags.FIN });
    assert.equal(conn.state, "TIME_WAIT");
    assert.equal(quota.memory.used, 0);
  });

  it("keeps the send buffer's storage while our FIN is unacknowledged (it may carry retransmissions)", () => {
    const { h, peer, conn, quota } = withQuota(1 << 20);
    conn.send(bytes(3000), h.now);
    conn.shutdownWrite(h.now);
    peer.drain(); // the data and the FIN sent, not acknowledged
    assert.equal(conn.state, "FIN_WAIT_1");
    assert.equal(quota.memory.used, bufferCost(4096));
  });

  it("takes only what fits when the quota refuses the send buffer's growth (the caller sees 0 with room left: ENOBUFS)", () => {
    const { h, conn, quota } = withQuota(1 << 20);
    assert.ok(quota.memory.tryCharge(quota.memory.available - 100));
    assert.equal(conn.send(bytes(100), h.now), 0);
    assert.equal(conn.canWrite, true);
    assert.ok(conn.writableBytes > 0);
    assert.deepEqual(h.drain(), [], "nothing is sent");
    assert.equal(quota.memory.stats().refused, 2, "the doubling, then the exact size");
  });
});

describe("the receive window follows the memory quota", () => {
  // 100,000 bytes of quota, one 64 KiB chunk kept in reserve: seven 4 KiB pages of window.
  const QUOTA = 100_000;

  it("offers in the SYN-ACK no more than the quota can hold", () => {
    const { handshake } = withQuota(QUOTA);
    assert.equal(handshake.windowLen, 7 * DEFAULT_PAGE_BYTES);
  });

  it("shrinks the window to what the quota still allows when the session uses it elsewhere", () => {
    const { h, peer, quota, s } = withQuota(QUOTA);
    assert.ok(quota.memory.tryCharge(25_000)); // another connection's buffers
    peer.send(1000);
    h.advance(40);
    // 100,000 - 25,000 - 1,536 (the 1 KiB chunk) - 66,048 in reserve: one page, plus the
    // 24 bytes left in the chunk.
    assert.deepEqual(peer.drain(), [
      seg({ seqNumber: s, ackNumber: 2001, flags: ACK, windowLen: 4096 + 24 }),
    ]);
  });

  it("never offers what it cannot hold: a peer keeping to the window loses nothing", () => {
    const { h, peer, conn, quota } = withQuota(QUOTA);
    assert.ok(quota.memory.tryCharge(25_000));
    let window = 7 * DEFAULT_PAGE_BYTES;
    let sent = 0;
    for (let round = 0; round < 50 && window > 0; round++) {
      const n = Math.min(window, 536);
      peer.send(n);
      sent += n;
      h.advance(40);
      const acks = peer.drain();
      const last = acks[acks.length - 1];
      assert.equal(last.ackNumber, 1001 + sent, "every byte is taken");
      // No more than the quota left plus the room already paid for in the queue's chunks.
      const paidRoom = conn.chargedBytes - conn.readableBytes;
      assert.ok(
        last.windowLen <= quota.memory.available + paidRoom,
        `round ${round}: window ${last.windowLen}, quota left ${quota.memory.available}`,
      );
      window = last.windowLen;
      assert.ok(quota.memory.used <= QUOTA, `quota ${quota.memory.used} within ${QUOTA}`);
    }
    assert.equal(window, 0, "the window closes once the quota is spent");
    assert.equal(h.drops("tcp_rcv_quota"), 0);
    assert.equal(conn.readableBytes, sent);
  });

  it("drops a segment whose storage the quota refuses, counts it, and answers with the shrunk window", () => {
    const { h, peer, conn, quota, s } = withQuota(QUOTA);
    const held = quota.memory.available - 100;
    assert.ok(quota.memory.tryCharge(held)); // the window offered in the SYN-ACK is no longer backed
    peer.send(1000);
    assert.equal(conn.readableBytes, 0);
    assert.equal(h.drops("tcp_rcv_quota"), 1);
    assert.deepEqual(peer.drain(), [
      seg({ seqNumber: s, ackNumber: 1001, flags: ACK, windowLen: 0 }),
    ]);
    // The session frees memory; the peer's zero-window probe (RFC 9293 §3.8.6.1) learns the
    // window, and its retransmission gets in.
    quota.memory.release(held);
    peer.seq = 1001;
    peer.inject({ seqNumber: 1000 });
    assert.deepEqual(peer.drain(), [
      seg({ seqNumber: s, ackNumber: 1001, flags: ACK, windowLen: 7 * DEFAULT_PAGE_BYTES }),
    ]);
    peer.send(1000);
    assert.equal(conn.readableBytes, 1000);
    assert.equal(h.drops("tcp_rcv_quota"), 1);
  });

  it("drops out-of-order text whose page the quota refuses, and keeps what it holds", () => {
    const { peer, conn, quota, s } = withQuota(QUOTA);
    assert.ok(quota.memory.tryCharge(quota.memory.available - PAGE + 1));
    peer.sendAt(2001, 100);
    assert.equal(conn.info().outOfOrderBytes, 0);
    assert.equal(peer.h.drops("tcp_rcv_quota"), 1);
    assert.deepEqual(peer.drain(), [
      seg({ seqNumber: s, ackNumber: 1001, flags: ACK, windowLen: 0 }),
    ]);
  });

  it("rate-limits the ACKs of refused segments like the others (RFC 5961 §7)", () => {
    const { peer, quota } = withQuota(QUOTA);
    assert.ok(quota.memory.tryCharge(quota.memory.available));
    for (let i = 0; i < 300; i++) peer.sendAt(1001, 10);
    assert.equal(peer.h.drops("tcp_rcv_quota"), 1);
    assert.equal(peer.drain().length, 100, "100 ACKs per second");
  });
});

describe("memory held by a connection is released when it is freed", () => {
  it("an orphan's unread bytes are freed with the connection (RFC 2525 §2.17 reset)", () => {
    const { h, peer, conn, quota } = withQuota(1 << 20);
    peer.send(500);
    peer.sendAt(3000, 500); // and some out of order
    conn.send(bytes(100), h.now);
    assert.ok(quota.memory.used > 0);
    conn.close(h.now);
    assert.equal(conn.state, "CLOSED");
    assert.equal(quota.memory.used, 0);
  });

  it("a reset connection keeps its unread bytes for its owner until they are read or it is aborted", () => {
    const { h, peer, conn, quota } = withQuota(1 << 20);
    peer.send(500);
    peer.inject({ flags: 0x04, seqNumber: peer.seq });
    assert.equal(conn.state, "CLOSED");
    assert.equal(conn.error, "ECONNRESET");
    assert.equal(quota.memory.used, CHUNK_1K);
    assert.equal(conn.read(100, h.now)!.length, 100);
    conn.abort(h.now);
    assert.equal(quota.memory.used, 0);
    assert.equal(conn.read(100, h.now), undefined);
  });
});
