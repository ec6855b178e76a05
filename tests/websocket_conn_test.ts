/**
 * The bounded server-side WebSocket engine (src/http/websocket_conn.ts),
 * driven over an in-memory byte connection: exact frames in, exact frames
 * out, and the message bound enforced from frame headers (RFC 6455 §5.2,
 * §5.4, §5.5, §7.4.1).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ByteConn, encodeFrame, ServerWebSocket, unmask } from "../src/http/websocket_conn.ts";
import {
  LENT_MESSAGE_MAX_BYTES,
  LENT_MESSAGE_MIN_BYTES,
  lentMessagePool,
} from "../src/http/message_buffer_pool.ts";
import { attachWebSocketTunnel } from "../src/session/tunnel_server.ts";
import { encodeStreamFrames, StreamDeframer } from "../src/wire/stream_framing.ts";
import { arpRequest, makeSession } from "../src/session/_session_test_util.ts";

/** A ByteConn fed by the test; records what the socket writes. */
class MemoryConn implements ByteConn {
  written: Uint8Array[] = [];
  closed = false;
  #chunks: Uint8Array[] = [];
  #waiter: (() => void) | undefined;
  #eof = false;
  /** Bytes handed to read() so far. */
  delivered = 0;

  feed(bytes: Uint8Array): void {
    this.#chunks.push(bytes);
    this.#waiter?.();
  }

  end(): void {
    this.#eof = true;
    this.#waiter?.();
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#eof || this.closed) return null;
      await new Promise<void>((r) => this.#waiter = r);
      this.#waiter = undefined;
    }
    const c = this.#chunks[0];
    const n = Math.min(c.length, p.length);
    p.set(c.subarray(0, n));
    if (n === c.length) this.#chunks.shift();
    else this.#chunks[0] = c.subarray(n);
    this.delivered += n;
    return n;
  }

  /** While set, writes complete only once it resolves (a slow socket). */
  gate: Promise<void> | undefined;

  async write(p: Uint8Array): Promise<number> {
    if (this.closed) throw new Error("closed");
    this.written.push(p.slice());
    if (this.gate) await this.gate;
    return p.length;
  }

  close(): void {
    this.closed = true;
    this.#waiter?.();
  }

  /** Every frame written, parsed (server frames are unmasked). */
  frames(): { fin: boolean; opcode: number; payload: Uint8Array }[] {
    const all = concat(this.written);
    const out = [];
    let i = 0;
    while (i < all.length) {
      const fin = (all[i] & 0x80) !== 0;
      const opcode = all[i] & 0x0f;
      let len = all[i + 1] & 0x7f;
      let off = i + 2;
      if (len === 126) {
        len = (all[off] << 8) | all[off + 1];
        off += 2;
      } else if (len === 127) {
        len = new DataView(all.buffer, all.byteOffset + off + 4, 4).getUint32(0);
        off += 8;
      }
      out.push({ fin, opcode, payload: all.slice(off, off + len) });
      i = off + len;
    }
    return out;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const MASK = new Uint8Array([0x37, 0xfa, 0x21, 0x3d]);

/** A masked client frame (RFC 6455 §5.2); `declared` overrides the length field. */
function clientFrame(
  opcode: number,
  payload: Uint8Array,
  { fin = true, declared }: { fin?: boolean; declared?: number } = {},
): Uint8Array {
  const len = declared ?? payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const out = new Uint8Array(2 + ext + 4 + payload.length);
  out[0] = (fin ? 0x80 : 0) | opcode;
  if (ext === 0) out[1] = 0x80 | len;
  else if (ext === 2) {
    out[1] = 0x80 | 126;
    out[2] = len >>> 8;
    out[3] = len & 0xff;
  } else {
    out[1] = 0x80 | 127;
    const dv = new DataView(out.buffer);
    dv.setUint32(2, Math.floor(len / 2 ** 32));
    dv.setUint32(6, len >>> 0);
  }
  out.set(MASK, 2 + ext);
  const body = payload.slice();
  unmask(body, MASK, 0); // masking is its own inverse
  out.set(body, 2 + ext + 4);
  return out;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  assert.ok(cond(), `timed out waiting for ${what}`);
}

function open(maxMessageBytes = 1024) {
  const conn = new MemoryConn();
  const ws = new ServerWebSocket({ maxMessageBytes, idleTimeoutMs: 0 });
  const messages: unknown[] = [];
  let closeEvent: { code?: number; reason?: string } | undefined;
  ws.addEventListener("message", (ev) => messages.push(ev.data));
  ws.addEventListener("close", (ev) => closeEvent = ev);
  ws.start(conn, new Uint8Array(0));
  return { conn, ws, messages, closed: () => closeEvent };
}

/** `len` bytes that differ from one message (`seed`) to the next and along the message. */
function pattern(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = (i * 7 + (i >>> 9) + seed * 29 + 1) & 0xff;
  return out;
}

/**
 * Asserts that `actual` holds exactly the bytes `expected` (reports the first
 * difference: a diff of two large arrays would take the assertion forever).
 */
function assertSameBytes(actual: unknown, expected: Uint8Array, what: string): void {
  assert.ok(actual instanceof Uint8Array, `${what}: bytes`);
  assert.equal(actual.length, expected.length, `${what}: the length`);
  const at = actual.findIndex((b, i) => b !== expected[i]);
  assert.equal(at, -1, `${what}: differs from byte ${at} on`);
}

/** What a listener saw of one message: a copy of its bytes, and the data itself. */
interface Seen {
  data: unknown;
  bytes: Uint8Array | string;
}

/** A started socket whose listener copies each message at once (as a lending consumer must). */
function openRecording(lend: boolean, maxMessageBytes = 2 * 1024 * 1024) {
  const conn = new MemoryConn();
  const ws = new ServerWebSocket({ maxMessageBytes, idleTimeoutMs: 0 });
  if (lend) ws.lendBinaryMessages();
  const seen: Seen[] = [];
  ws.addEventListener("message", (ev) => {
    const d = ev.data;
    const bytes = typeof d === "string"
      ? d
      : d instanceof ArrayBuffer
      ? new Uint8Array(d).slice()
      : (d as Uint8Array).slice();
    seen.push({ data: d, bytes });
  });
  ws.start(conn, new Uint8Array(0));
  return { conn, ws, seen };
}

/** Feeds `bytes` to `conn` in chunks of `chunk` bytes (0: as one chunk). */
function feedChunked(conn: MemoryConn, bytes: Uint8Array, chunk: number): void {
  if (chunk === 0) conn.feed(bytes);
  else for (let at = 0; at < bytes.length; at += chunk) conn.feed(bytes.subarray(at, at + chunk));
}

/**
 * A ByteConn whose read stalls once the fed bytes ran out, until the test
 * settles it; closing it does not settle the read (a runtime may still be
 * writing into the buffer it was given).
 */
class StallingConn implements ByteConn {
  #chunks: Uint8Array[];
  stalled: { into: Uint8Array; resolve: (n: number) => void } | undefined;
  closed = false;
  constructor(chunks: Uint8Array[]) {
    this.#chunks = chunks;
  }
  read(p: Uint8Array): Promise<number | null> {
    const c = this.#chunks[0];
    if (c === undefined) {
      return new Promise((resolve) => this.stalled = { into: p, resolve });
    }
    const n = Math.min(c.length, p.length);
    p.set(c.subarray(0, n));
    if (n === c.length) this.#chunks.shift();
    else this.#chunks[0] = c.subarray(n);
    return Promise.resolve(n);
  }
  /** The stalled read completes at last, having filled its whole buffer with `fill`. */
  settle(fill: number): void {
    const s = this.stalled!;
    this.stalled = undefined;
    s.into.fill(fill);
    s.resolve(s.into.length);
  }
  write(p: Uint8Array): Promise<number> {
    return Promise.resolve(p.length);
  }
  close(): void {
    this.closed = true;
  }
}

describe("ServerWebSocket (RFC 6455, bounded)", () => {
  it("unmask matches the byte-wise definition at every offset and phase (§5.3)", () => {
    const data = new Uint8Array(67).map((_, i) => (i * 31) & 0xff);
    for (let start = 0; start < 4; start++) {
      for (let phase = 0; phase < 4; phase++) {
        const a = data.slice();
        const view = a.subarray(start);
        unmask(view, MASK, phase);
        for (let i = 0; i < view.length; i++) {
          assert.equal(view[i], data[start + i] ^ MASK[(phase + i) & 3]);
        }
      }
    }
  });

  it("delivers a binary message split at every byte boundary, and a fragmented one (§5.4)", async () => {
    const { conn, messages } = open();
    const payload = new Uint8Array(300).map((_, i) => i & 0xff);
    for (const b of clientFrame(0x2, payload)) conn.feed(new Uint8Array([b]));
    conn.feed(clientFrame(0x2, payload.subarray(0, 100), { fin: false }));
    conn.feed(clientFrame(0x0, payload.subarray(100, 200), { fin: false }));
    conn.feed(clientFrame(0x9, new Uint8Array([7]))); // a ping between fragments
    conn.feed(clientFrame(0x0, payload.subarray(200), { fin: true }));
    await until(() => messages.length === 2, "two messages");
    for (const m of messages) assert.deepEqual(new Uint8Array(m as ArrayBuffer), payload);
    const pong = conn.frames().find((f) => f.opcode === 0xa);
    assert.deepEqual(pong?.payload, new Uint8Array([7]), "the ping is answered with its payload");
  });

  it("sends a message in place: the header goes into the caller's headroom, the bytes are not copied (§5.2)", async () => {
    const { conn, ws } = open();
    const joined = () => {
      const out = new Uint8Array(conn.written.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of conn.written) {
        out.set(c, at);
        at += c.length;
      }
      return out;
    };
    for (const len of [100, 70_000]) {
      const buffer = new ArrayBuffer(32 + len);
      const payload = new Uint8Array(buffer, 32, len);
      for (let i = 0; i < len; i++) payload[i] = (i * 7) & 0xff;
      const expected = encodeFrame(0x2, payload);
      ws.sendInPlace(payload, 32);
      await until(() => joined().length >= expected.length, `the ${len}-byte message`);
      assert.deepEqual(joined(), expected, `${len} bytes: the same bytes as a copied send`);
      // The header sits right before the payload in the caller's buffer.
      const hdr = len < 126 ? 2 : 10;
      assert.deepEqual(new Uint8Array(buffer, 32 - hdr, hdr), expected.subarray(0, hdr));
      conn.written.length = 0;
    }
    // Too little headroom: copied, the caller's bytes before the payload untouched.
    const buffer = new ArrayBuffer(4 + 300);
    const payload = new Uint8Array(buffer, 4, 300).fill(9);
    ws.sendInPlace(payload, 3);
    await until(() => joined().length >= 304, "the copied message");
    assert.deepEqual(joined(), encodeFrame(0x2, payload));
    assert.deepEqual(new Uint8Array(buffer, 0, 4), new Uint8Array(4));
  });

  it("says when it is done with an in-place message's buffer: once written, or at once when copied", async () => {
    const { conn, ws } = open();
    let open_ = () => {};
    conn.gate = new Promise<void>((r) => (open_ = r));
    const done: Uint8Array[] = [];
    const payload = new Uint8Array(new ArrayBuffer(32 + 70_000), 32, 70_000).fill(5);
    ws.sendInPlace(payload, 32, (p) => done.push(p));
    await until(() => conn.written.length === 1, "the write under way");
    assert.equal(done.length, 0, "not while the socket still writes it");
    open_();
    await until(() => done.length === 1, "the buffer given back");
    assert.equal(done[0], payload);
    conn.gate = undefined;
    const small = new Uint8Array(new ArrayBuffer(3 + 300), 3, 300); // a 4-byte header
    ws.sendInPlace(small, 3, (p) => done.push(p));
    assert.equal(done[1], small, "too little headroom: copied, so given back at once");
  });

  it("sends a message of one leading byte and a payload as one frame (a stream's DATA)", async () => {
    const { conn, ws } = open();
    for (const len of [0, 124, 125, 65534, 65535, 70_000]) {
      conn.written.length = 0;
      const rest = new Uint8Array(len).map((_, i) => i & 0xff);
      ws.sendWithFirstByte(0x07, rest);
      const want = new Uint8Array(1 + len);
      want[0] = 0x07;
      want.set(rest, 1);
      const expected = encodeFrame(0x2, want);
      await until(
        () => conn.written.reduce((n, c) => n + c.length, 0) >= expected.length,
        `${len} bytes`,
      );
      assert.deepEqual(conn.written.length, 1, "one write");
      assert.deepEqual(conn.written[0], expected, `${len} bytes`);
    }
  });

  it("a text message arrives as a string; bad UTF-8 closes with 1007 (§8.1)", async () => {
    const a = open();
    a.conn.feed(clientFrame(0x1, new TextEncoder().encode("héllo")));
    await until(() => a.messages.length === 1, "the text message");
    assert.equal(a.messages[0], "héllo");
    const b = open();
    b.conn.feed(clientFrame(0x1, new Uint8Array([0xc3, 0x28])));
    await until(() => b.closed() !== undefined, "the close");
    assert.equal(b.closed()!.code, 1007);
  });

  it("refuses a message over the limit from its header, before reading the payload (1009)", async () => {
    const { conn, messages, closed } = open(1024 * 1024);
    // A 60 MiB message announced in one header: nothing of it is ever read.
    conn.feed(clientFrame(0x2, new Uint8Array(0), { declared: 60 * 1024 * 1024 }));
    await until(() => closed() !== undefined, "the close");
    assert.equal(closed()!.code, 1009);
    assert.match(closed()!.reason ?? "", /exceeds the limit of 1048576/);
    const sent = conn.frames();
    assert.equal(sent.at(-1)!.opcode, 0x8);
    assert.equal((sent.at(-1)!.payload[0] << 8) | sent.at(-1)!.payload[1], 1009);
    assert.ok(!conn.closed, "the TCP connection lingers for the client to read the close");
    conn.end();
    await until(() => conn.closed, "the TCP close once the client closed its side");
    assert.equal(messages.length, 0);
  });

  it("counts fragments together: a never-ending fragmented message closes at the limit (1009)", async () => {
    const limit = 1024 * 1024;
    const { conn, closed } = open(limit);
    const piece = new Uint8Array(256 * 1024);
    conn.feed(clientFrame(0x2, piece, { fin: false }));
    for (let i = 0; i < 20; i++) conn.feed(clientFrame(0x0, piece, { fin: false }));
    await until(() => closed() !== undefined, "the close");
    assert.equal(closed()!.code, 1009);
    // Four whole 256 KiB fragments fit; the fifth header is refused. What follows is
    // read and dropped unparsed (at most 1 MiB, the linger before the close): nothing
    // beyond the limit is held.
    assert.ok(conn.delivered <= 2 * limit + 2 * 64 * 1024, `read ${conn.delivered} bytes`);
    await until(() => conn.closed, "the TCP close after the linger");
    console.log(`never-ending fragmented message: closed 1009 after ${conn.delivered} bytes read`);
  });

  it("protocol errors close with 1002: unmasked, RSV bits, bad continuation, long control (§5.1, §5.2, §5.5)", async () => {
    const cases: [string, Uint8Array][] = [
      ["unmasked frame", new Uint8Array([0x82, 0x01, 0xff])],
      [
        "RSV1 set",
        (() => {
          const f = clientFrame(0x2, new Uint8Array([1]));
          f[0] |= 0x40;
          return f;
        })(),
      ],
      ["continuation first", clientFrame(0x0, new Uint8Array([1]))],
      ["ping of 126 bytes", clientFrame(0x9, new Uint8Array(126))],
      ["fragmented ping", clientFrame(0x9, new Uint8Array(1), { fin: false })],
      ["reserved opcode 3", clientFrame(0x3, new Uint8Array(1))],
    ];
    for (const [what, bytes] of cases) {
      const { conn, closed } = open();
      conn.feed(bytes);
      await until(() => closed() !== undefined, what);
      assert.equal(closed()!.code, 1002, what);
      conn.end();
      await until(() => conn.closed, `${what}: connection closed`);
    }
  });

  it("close handshake: the client's close is echoed, then the connection goes (§5.5.1, §7.1.1)", async () => {
    const { conn, ws, closed } = open();
    conn.feed(clientFrame(0x8, new Uint8Array([0x03, 0xe8, 0x62, 0x79, 0x65]))); // 1000 "bye"
    await until(() => closed() !== undefined, "the close event");
    assert.equal(closed()!.code, 1000);
    assert.equal(closed()!.reason, "bye");
    assert.equal(ws.readyState, 3);
    const echo = conn.frames().at(-1)!;
    assert.equal(echo.opcode, 0x8);
    assert.deepEqual([...echo.payload], [0x03, 0xe8]);
    await until(() => conn.closed, "the TCP close");
  });

  it("send frames are unmasked with the right length encoding; bufferedAmount drains (§5.2)", async () => {
    const { conn, ws } = open();
    ws.send(new Uint8Array(10));
    ws.send(new Uint8Array(300));
    ws.send(new Uint8Array(70_000));
    ws.send("hi");
    await until(() => ws.bufferedAmount === 0, "the queue to drain");
    const f = conn.frames();
    assert.deepEqual(f.map((x) => [x.opcode, x.payload.length, x.fin]), [
      [2, 10, true],
      [2, 300, true],
      [2, 70_000, true],
      [1, 2, true],
    ]);
    assert.deepEqual(
      encodeFrame(0x2, new Uint8Array([1, 2, 3])),
      new Uint8Array([0x82, 3, 1, 2, 3]),
    );
  });

  it("close() before start closes as soon as it starts; server close waits for the client's", async () => {
    const conn = new MemoryConn();
    const ws = new ServerWebSocket({ maxMessageBytes: 10, idleTimeoutMs: 0, closeTimeoutMs: 50 });
    let code: number | undefined;
    ws.addEventListener("close", (ev) => code = ev.code);
    ws.close(4000, "replaced");
    ws.start(conn, new Uint8Array(0));
    await until(() => code !== undefined, "the close");
    assert.equal(code, 4000);
    assert.ok(conn.closed);
    const b = open();
    b.ws.close(4001, "session ended");
    assert.equal(b.ws.readyState, 2, "CLOSING until the client answers or the timeout");
    b.conn.feed(clientFrame(0x8, new Uint8Array([0x0f, 0xa1])));
    await until(() => b.closed() !== undefined, "the close");
    assert.equal(b.closed()!.code, 4001);
  });

  it("lends whole binary messages of 4 KiB to 257 KiB in one reused buffer; others get their own", async () => {
    const lentSizes = [
      LENT_MESSAGE_MIN_BYTES,
      20 * 1024,
      100 * 1024,
      256 * 1024,
      LENT_MESSAGE_MAX_BYTES,
    ];
    // [payload length, fragments (1: a whole message)] in the order sent.
    const plan: [number, number][] = [
      [1, 1],
      [LENT_MESSAGE_MIN_BYTES - 1, 1],
      [lentSizes[0], 1],
      [lentSizes[2], 1],
      [100 * 1024, 2], // fragmented: never lent
      [lentSizes[3], 1],
      [lentSizes[4], 1],
      [LENT_MESSAGE_MAX_BYTES + 1, 1],
      [300 * 1024, 1],
      [lentSizes[1], 1],
      [lentSizes[0], 1],
    ];
    // Whole frames per feed (a large remainder read straight into the message), then
    // everything cut into odd chunks that split headers and payloads alike.
    for (const chunk of [0, 7001]) {
      const { conn, seen } = openRecording(true);
      const wire: Uint8Array[] = [];
      const sent: Uint8Array[] = [];
      plan.forEach(([len, parts], k) => {
        const payload = pattern(len, k + chunk);
        sent.push(payload);
        if (parts === 1) wire.push(clientFrame(0x2, payload));
        else {
          const half = len >> 1;
          wire.push(clientFrame(0x2, payload.subarray(0, half), { fin: false }));
          wire.push(clientFrame(0x9, new Uint8Array([1]))); // a ping between the fragments
          wire.push(clientFrame(0x0, payload.subarray(half)));
        }
        if (k === 3) wire.push(clientFrame(0x1, new TextEncoder().encode("text")));
      });
      if (chunk === 0) { for (const w of wire) conn.feed(w); }
      else feedChunked(conn, concat(wire), chunk);
      await until(() => seen.length === plan.length + 1, `chunks of ${chunk}: every message`);
      const binary = seen.filter((m) => typeof m.data !== "string");
      assert.equal(seen[4].bytes, "text", "the text message, in its place");
      const lentBuffers = new Set<ArrayBufferLike>();
      binary.forEach((m, k) => {
        const [len, parts] = plan[k];
        const what = `chunks of ${chunk}: message ${k} (${len} bytes, ${parts} part(s))`;
        assertSameBytes(m.bytes, sent[k], `${what}: the bytes sent`);
        const lent = parts === 1 && len >= LENT_MESSAGE_MIN_BYTES && len <= LENT_MESSAGE_MAX_BYTES;
        if (lent) {
          assert.ok(m.data instanceof Uint8Array, `${what}: lent as a view`);
          assert.equal(m.data.length, len, `${what}: a view of exactly its length`);
          assert.equal(m.data.byteOffset, 0);
          assert.equal(
            m.data.buffer.byteLength,
            LENT_MESSAGE_MAX_BYTES,
            `${what}: a pooled buffer`,
          );
          lentBuffers.add(m.data.buffer);
        } else {
          assert.ok(m.data instanceof ArrayBuffer, `${what}: an ArrayBuffer of its own`);
          assert.equal(m.data.byteLength, len);
        }
      });
      assert.equal(lentBuffers.size, 1, "one connection's lent messages reuse one buffer");
      // Reused: a lent view now shows what the last lent message wrote over it.
      const first = binary[2].data as Uint8Array;
      assert.ok(
        first.some((b, i) => b !== sent[2][i]),
        "the first lent message's buffer was overwritten",
      );
    }
  });

  it("a socket that did not opt in gets ArrayBuffers that stay intact after later messages", async () => {
    const plain = openRecording(false);
    const lending = openRecording(true);
    const sizes = [100 * 1024, 5000, 100 * 1024];
    const sent = sizes.map((len, k) => pattern(len, 50 + k));
    for (const [k, payload] of sent.entries()) {
      plain.conn.feed(clientFrame(0x2, payload));
      // Meanwhile a lending socket receives messages of the same sizes into pooled buffers.
      lending.conn.feed(clientFrame(0x2, pattern(sizes[k], 90 + k)));
      await until(() => plain.seen.length === k + 1 && lending.seen.length === k + 1, `#${k}`);
    }
    const buffers = plain.seen.map((m) => m.data);
    for (const [k, b] of buffers.entries()) {
      assert.ok(b instanceof ArrayBuffer, `message ${k} is an ArrayBuffer`);
      assertSameBytes(new Uint8Array(b), sent[k], `message ${k} intact after later messages`);
    }
    assert.equal(new Set(buffers).size, 3, "three buffers of their own");
    assert.ok(lending.seen.every((m) => m.data instanceof Uint8Array), "the other socket lent");
  });

  it("a connection that ends mid-message gives its lent buffer back; the next connection's messages are intact", async () => {
    const cases: [string, (a: ReturnType<typeof openRecording>) => void, number][] = [
      // 180 KiB still to come: the socket waits in a read straight into the lent buffer.
      ["terminated during a read into the message", (a) => a.ws.terminate(), 20 * 1024],
      // 1 KiB still to come: the socket waits in a read into its own buffer.
      ["the client's stream ended", (a) => a.conn.end(), 200 * 1024 - 1024],
    ];
    for (const [what, end, fed] of cases) {
      const a = openRecording(true);
      a.conn.feed(clientFrame(0x2, pattern(100 * 1024, 1)));
      await until(() => a.seen.length === 1, `${what}: the first message`);
      const x = (a.seen[0].data as Uint8Array).buffer;
      const free = lentMessagePool.free;
      assert.ok(free >= 1, "its buffer is back in the pool");
      const partial = clientFrame(0x2, pattern(200 * 1024, 2)); // a 14-byte header
      const target = a.conn.delivered + 14 + fed;
      a.conn.feed(partial.subarray(0, 14 + fed));
      await until(() => a.conn.delivered === target, `${what}: the partial message read`);
      assert.equal(lentMessagePool.free, free - 1, `${what}: the partial message holds a buffer`);
      end(a);
      await until(() => lentMessagePool.free === free, `${what}: the buffer given back`);
      assert.equal(a.seen.length, 1, `${what}: the partial message is not delivered`);
      const b = openRecording(true);
      const payload = pattern(150 * 1024, 3);
      b.conn.feed(clientFrame(0x2, payload));
      await until(() => b.seen.length === 1, `${what}: the next connection's message`);
      assertSameBytes(b.seen[0].bytes, payload, `${what}: the next connection's bytes`);
      assert.equal((b.seen[0].data as Uint8Array).buffer, x, `${what}: in the buffer given back`);
    }
  });

  it("a lent buffer goes back only once a read into it settled, even when the connection closed first", async () => {
    const first = pattern(100 * 1024, 4);
    const second = clientFrame(0x2, pattern(200 * 1024, 5));
    // The first message whole, then the second's header and 20 KiB: the socket then waits
    // in a read straight into the second's lent buffer, which stalls.
    const conn = new StallingConn([clientFrame(0x2, first), second.subarray(0, 14 + 20 * 1024)]);
    const a = new ServerWebSocket({ maxMessageBytes: 1 << 20, idleTimeoutMs: 0 });
    a.lendBinaryMessages();
    let x: ArrayBufferLike | undefined;
    a.addEventListener("message", (ev) => x ??= (ev.data as Uint8Array).buffer);
    a.start(conn, new Uint8Array(0));
    await until(() => conn.stalled !== undefined, "the stalled read into the second message");
    assert.equal(conn.stalled!.into.buffer, x, "the read goes into the pooled buffer");
    a.terminate();
    assert.ok(conn.closed);
    // Another connection receives a message almost whole while the read is still in flight.
    const b = openRecording(true);
    const payload = pattern(150 * 1024, 6);
    const frame = clientFrame(0x2, payload);
    b.conn.feed(frame.subarray(0, frame.length - 1000));
    await until(() => b.conn.delivered === frame.length - 1000, "most of the next message");
    // The stalled read completes late, scribbling over the whole buffer it was given.
    conn.settle(0xee);
    b.conn.feed(frame.subarray(frame.length - 1000));
    await until(() => b.seen.length === 1, "the next connection's message");
    assertSameBytes(b.seen[0].bytes, payload, "intact: not received into the stalled buffer");
    assert.notEqual((b.seen[0].data as Uint8Array).buffer, x);
  });

  it("the tunnel opts in: large upload messages are lent and their frames reach the stack", async () => {
    const session = makeSession();
    const conn = new MemoryConn();
    const ws = new ServerWebSocket({ maxMessageBytes: 1 << 20, idleTimeoutMs: 0 });
    attachWebSocketTunnel(session, ws, { framing: "qemu-stream" });
    const lent: ArrayBufferLike[] = [];
    ws.addEventListener("message", (ev) => {
      if (ev.data instanceof Uint8Array) lent.push(ev.data.buffer);
    });
    ws.start(conn, new Uint8Array(0));
    // 120 ARP requests of 46 bytes a message (5,520 bytes), and a frame cut across two.
    const stream = encodeStreamFrames(Array.from({ length: 240 }, () => arpRequest()));
    const cut = stream.length / 2 + 20;
    conn.feed(clientFrame(0x2, stream.subarray(0, cut)));
    conn.feed(clientFrame(0x2, stream.subarray(cut)));
    await until(() => session.stack.counters.rxFrames === 240, "240 frames into the stack");
    assert.equal(session.stack.counters.rxHandled, 240, "every frame intact");
    assert.equal(lent.length, 2, "both messages lent");
    assert.equal(lent[0], lent[1], "in one reused buffer");
    const replies = () => {
      let n = 0;
      const deframer = new StreamDeframer(1514, (f) => {
        if (f[12] === 0x08 && f[13] === 0x06 && f[21] === 2) n++;
      });
      for (const f of conn.frames()) deframer.push(f.payload);
      return n;
    };
    await until(() => replies() >= 240, "the replies");
    assert.equal(replies(), 240, "an ARP reply to each");
  });
});
